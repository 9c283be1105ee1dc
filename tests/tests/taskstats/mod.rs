//! taskstats: property tests per preset, the zoo, the wire decoder and malformed requests
//! (plain tests); loom models and shuttle runs (sim-core's runtime backend); all from the
//! ordinary test build.

mod ac_ppid;
mod bad_input;
mod config;
mod gen;
mod incremental;
mod locking;
mod loom;
mod property;
mod regression;
mod shrink;
mod shuttle;
mod threaded;
mod uapi;
mod wire;
mod zoo;

/// A TASKSTATS_CMD_GET query from `port` for task or group `id`, named by `attr`
/// (TASKSTATS_CMD_ATTR_PID or TASKSTATS_CMD_ATTR_TGID), as the tests send it: no ack asked,
/// sequence 1.
fn id_query(port: u32, attr: u16, id: u32) -> Vec<u8> {
    use taskstats_sim::wire::{request, NLM_F_REQUEST, TASKSTATS_CMD_GET, TASKSTATS_FAMILY_ID};
    request(
        TASKSTATS_FAMILY_ID,
        NLM_F_REQUEST,
        1,
        port,
        TASKSTATS_CMD_GET,
        &[(attr, id.to_le_bytes().to_vec())],
    )
}

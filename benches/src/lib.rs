//! Benchmarks live in benches/benches/; this library holds what several of them share: on-CPU
//! timing for the lines they print beside criterion's wall-clock rows.

use std::time::Instant;

/// This thread's time on a CPU so far, in nanoseconds (Linux's `/proc/thread-self/schedstat`),
/// so a printed figure stays meaningful on a machine shared with other builds.
pub fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// The mean time of `iterations` calls of `call`, in nanoseconds: on-CPU time where the system
/// reports it, wall time otherwise (criterion's rows are wall time).
pub fn ns_per_call(iterations: u32, mut call: impl FnMut()) -> f64 {
    let (start, cpu_start) = (Instant::now(), thread_cpu_ns());
    for _ in 0..iterations {
        call();
    }
    let elapsed = match (cpu_start, thread_cpu_ns()) {
        (Some(before), Some(after)) if after > before => (after - before) as f64,
        _ => start.elapsed().as_nanos() as f64,
    };
    elapsed / f64::from(iterations)
}

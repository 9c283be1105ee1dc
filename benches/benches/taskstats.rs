//! taskstats: exits per second with 0, 1 and 16 listeners on the exiting CPU, and the cost of a
//! TGID query against the size of the group, each beside a native baseline doing the same
//! logical work (build the record bytes, copy them to each listener's queue; sum the threads'
//! counters) without locks, lockdep, tracing or fault sites.

use std::collections::VecDeque;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sim_core::trace::TraceMode;
use sim_core::{Sim, SimConfig};
use taskstats_sim::wire::*;
use taskstats_sim::{netlink_send, task_cx, Fixes, ForkKind, Params, Taskstats};

fn world(listeners: u32) -> (Sim, Taskstats, Vec<u32>) {
    let sim = Sim::new(SimConfig::new(1).cpus(2).without_lockdep().trace(TraceMode::HashOnly));
    let params = Params { cpus: 2, queue_max: 1 << 20, tasks_max: 1 << 20, ..Params::default() };
    let model = Taskstats::new(&sim, Fixes::preset("linux-3.8").unwrap(), params);
    let mut ports = Vec::new();
    for _ in 0..listeners {
        let port = model.open_port(&task_cx(&sim, &model, 1, "socket")).unwrap();
        let bytes = request(
            TASKSTATS_FAMILY_ID,
            NLM_F_REQUEST,
            1,
            port,
            TASKSTATS_CMD_GET,
            &[(TASKSTATS_CMD_ATTR_REGISTER_CPUMASK, cpumask_payload("0"))],
        );
        netlink_send(&sim, &model, port, &bytes);
        ports.push(port);
    }
    (sim, model, ports)
}

fn exits(c: &mut Criterion) {
    let mut group = c.benchmark_group("taskstats/exit");
    group.throughput(Throughput::Elements(1));
    for listeners in [0u32, 1, 16] {
        let (sim, model, ports) = world(listeners);
        group.bench_with_input(BenchmarkId::new("model", listeners), &listeners, |b, _| {
            b.iter(|| {
                // fork, exit on cpu 0 (one record per listener), reap, drain the queues.
                let child = model.fork(&task_cx(&sim, &model, 1, "fork"), ForkKind::Process).unwrap();
                black_box(model.exit(&task_cx(&sim, &model, child, "do_exit")));
                model.reap(&sim.cx("release_task", 0), child);
                for &port in &ports {
                    black_box(model.recv(&sim.cx("recvmsg", 0), port));
                }
            })
        });
        let mut queues: Vec<VecDeque<Vec<u8>>> = vec![VecDeque::new(); listeners as usize];
        let mut seq = 0u32;
        group.bench_with_input(BenchmarkId::new("native", listeners), &listeners, |b, _| {
            b.iter(|| {
                let mut msg = MsgBuilder::genlmsg_put(TASKSTATS_FAMILY_ID, 0, seq, 0, TASKSTATS_CMD_NEW, 1);
                seq = seq.wrapping_add(1);
                msg.nest_start(TASKSTATS_TYPE_AGGR_PID);
                msg.nla_put_u32(TASKSTATS_TYPE_PID, seq);
                msg.nla_put(
                    TASKSTATS_TYPE_STATS,
                    &TaskstatsRecord { version: 8, ..Default::default() }.to_bytes(8),
                );
                msg.nest_end();
                let bytes = msg.finish();
                for queue in queues.iter_mut() {
                    queue.push_back(bytes.clone());
                }
                for queue in queues.iter_mut() {
                    black_box(queue.drain(..).count());
                }
            })
        });
    }
    group.finish();
}

fn tgid_query(c: &mut Criterion) {
    let mut group = c.benchmark_group("taskstats/tgid_query");
    for threads in [1usize, 4, 16, 64] {
        let sim = Sim::new(SimConfig::new(2).cpus(2).without_lockdep().trace(TraceMode::HashOnly));
        let params = Params { cpus: 2, queue_max: 1 << 20, tasks_max: 1 << 20, ..Params::default() };
        let model = Taskstats::new(&sim, Fixes::preset("linux-3.8").unwrap(), params);
        let leader = model.fork(&task_cx(&sim, &model, 1, "fork"), ForkKind::Process).unwrap();
        for _ in 1..threads {
            let t = model.fork(&task_cx(&sim, &model, leader, "fork"), ForkKind::Thread).unwrap();
            model.run(&task_cx(&sim, &model, t, "run"));
        }
        let port = model.open_port(&task_cx(&sim, &model, 1, "socket")).unwrap();
        let bytes = request(
            TASKSTATS_FAMILY_ID,
            NLM_F_REQUEST,
            3,
            port,
            TASKSTATS_CMD_GET,
            &[(TASKSTATS_CMD_ATTR_TGID, leader.to_le_bytes().to_vec())],
        );
        group.bench_with_input(BenchmarkId::new("model", threads), &threads, |b, _| {
            b.iter(|| black_box(netlink_send(&sim, &model, port, &bytes)))
        });
        let counters: Vec<[u64; 10]> = (0..threads).map(|i| [i as u64; 10]).collect();
        group.bench_with_input(BenchmarkId::new("native", threads), &threads, |b, _| {
            b.iter(|| {
                let mut sum = [0u64; 10];
                for c in &counters {
                    for (s, v) in sum.iter_mut().zip(c) {
                        *s += v;
                    }
                }
                let record = TaskstatsRecord {
                    version: 8,
                    cpu_count: sum[0],
                    cpu_delay_total: sum[1],
                    ..Default::default()
                };
                black_box(record.to_bytes(8))
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_secs(1));
    targets = exits, tgid_query
}
criterion_main!(benches);

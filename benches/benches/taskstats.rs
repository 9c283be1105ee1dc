//! taskstats: exits per second with 0, 1 and 16 listeners on the exiting CPU, and the cost of a
//! TGID query against the size of the group, each beside a native baseline doing the same
//! logical work (build the record bytes, copy them to each listener's queue; sum the threads'
//! counters) without locks, lockdep, tracing or fault sites.
//!
//! The model runs in the world a campaign's case runs in: lockdep on, the trace hashed only and
//! confined to this thread, a grace period after each operation (`Sim::rcu_advance`, which the
//! op-level harness runs after every operation: a reaped task is freed by its RCU callback,
//! delayed_put_task_struct(); without it no task was ever freed and each exit cost more than the
//! last). The exits run in worlds of [`EXITS_PER_WORLD`] exits each, made and dropped outside
//! the timing, so each world's first validations by lockdep are paid as a case pays them.

use std::collections::VecDeque;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sim_core::trace::TraceMode;
use sim_core::{Sim, SimConfig};
use taskstats_sim::wire::*;
use taskstats_sim::{netlink_send, task_cx, Fixes, ForkKind, Params, Taskstats};

/// Exits a world runs before the next sample's iterations go to a new one: about a campaign
/// case's operations (up to `--ops`, 200 by default, about 100 on average).
const EXITS_PER_WORLD: u64 = 128;

/// A campaign case's world: lockdep on, the trace hashed and confined to this thread.
fn sim(seed: u64) -> Sim {
    let sim = Sim::new(SimConfig::new(seed).cpus(2).trace(TraceMode::HashOnly));
    sim.trace().confine_to_this_thread();
    sim
}

fn world(listeners: u32) -> (Sim, Taskstats, Vec<u32>) {
    let sim = sim(1);
    let params = Params { cpus: 2, queue_max: 1 << 20, tasks_max: 1 << 12, ..Params::default() };
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

/// One exit as the bench times it: fork, exit on CPU 0 (one record per listener), reap, the
/// grace period that frees the task, and each listener's queue drained.
fn exit_once(sim: &Sim, model: &Taskstats, ports: &[u32]) {
    let child = model.fork(&task_cx(sim, model, 1, "fork"), ForkKind::Process).unwrap();
    black_box(model.exit(&task_cx(sim, model, child, "do_exit")));
    model.reap(&sim.cx("release_task", 0), child);
    black_box(sim.rcu_advance());
    for &port in ports {
        black_box(model.recv(&sim.cx("recvmsg", 0), port));
    }
}

/// `iters` exits in worlds of [`EXITS_PER_WORLD`] each; only the exits are timed.
fn time_exits(listeners: u32, iters: u64) -> Duration {
    let mut timed = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let batch = left.min(EXITS_PER_WORLD);
        let (sim, model, ports) = world(listeners);
        let started = Instant::now();
        for _ in 0..batch {
            exit_once(&sim, &model, &ports);
        }
        timed += started.elapsed();
        left -= batch;
    }
    timed
}

fn exits(c: &mut Criterion) {
    let mut group = c.benchmark_group("taskstats/exit");
    group.throughput(Throughput::Elements(1));
    for listeners in [0u32, 1, 16] {
        group.bench_with_input(BenchmarkId::new("model", listeners), &listeners, |b, &listeners| {
            b.iter_custom(|iters| time_exits(listeners, iters))
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
        let sim = sim(2);
        let params = Params { cpus: 2, queue_max: 1 << 20, tasks_max: 1 << 12, ..Params::default() };
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

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

/// How long one sample of [`medians_per_call`] runs on a CPU: the on-CPU clock this reads
/// (`schedstat`'s run time) moves in scheduler ticks, about 4 ms on the VMs ksim is measured on,
/// so a sample of a few milliseconds is quantised (100,000 calls of 200 ns read as 200 or 240
/// ns); 200 ms keeps that error near 2 %.
pub const SAMPLE_NS: f64 = 200e6;

/// The calls of `call` that take about `sample_ns` on a CPU: batches four times larger until one
/// runs at least 20 ms (five ticks), then scaled.
fn calls_for(sample_ns: f64, call: &mut dyn FnMut()) -> u32 {
    let mut calls = 64u32;
    loop {
        let batch_ns = ns_per_call(calls, &mut *call) * f64::from(calls);
        if batch_ns >= 20e6 || calls >= 1 << 28 {
            return (f64::from(calls) * sample_ns / batch_ns.max(1.0)).clamp(1.0, f64::from(u32::MAX)) as u32;
        }
        calls *= 4;
    }
}

/// The median time per call of each of `rows`, in on-CPU nanoseconds: `samples` samples of each
/// row, of [`SAMPLE_NS`] each, the rows taking turns sample by sample (so a change of load during
/// the run moves every row alike).
pub fn medians_per_call<const R: usize>(samples: usize, mut rows: [&mut dyn FnMut(); R]) -> [f64; R] {
    let calls = rows.each_mut().map(|row| calls_for(SAMPLE_NS, &mut **row));
    let mut times = [(); R].map(|()| Vec::with_capacity(samples));
    for _ in 0..samples {
        for ((row, calls), times) in rows.iter_mut().zip(calls).zip(&mut times) {
            times.push(ns_per_call(calls, &mut **row));
        }
    }
    times.map(|mut row| {
        row.sort_by(f64::total_cmp);
        row[row.len() / 2]
    })
}

/// The sizes a bench runs: those listed in the environment variable `var` (comma-separated,
/// e.g. `1000,1000000`, to profile one size), else all of `all`.
pub fn sizes_from_env<T: std::str::FromStr + Copy>(var: &str, all: &[T]) -> Vec<T> {
    match std::env::var(var) {
        Ok(list) => list.split(',').filter_map(|n| n.trim().parse().ok()).collect(),
        Err(_) => all.to_vec(),
    }
}

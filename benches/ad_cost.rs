//! Cost of every oracle and single-loop step on the benchmark workloads (`workloads`: the
//! library's own problems at the peer harness's sizes, through `Oracle` and `SingleLoopAid`), at
//! 1 and 2 threads, with confidence intervals. `examples/cost_table.rs` times the same calls
//! for the side-by-side table.
//!
//! Run with `cargo bench --bench ad_cost`; `BILEVEL_BENCH_THREADS=1,2` picks thread counts and
//! `BILEVEL_BENCH_WORKLOADS=A,C2000` the workloads (default `A,B50,C20,C2000`).

mod workloads;

use criterion::{Criterion, criterion_group, criterion_main};
use std::time::Duration;
use workloads::Bench;

fn list(var: &str, default: &str) -> Vec<String> {
    std::env::var(var)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn ad_cost(c: &mut Criterion) {
    bilevel::linalg::disable_global_parallelism();
    let names = list("BILEVEL_BENCH_WORKLOADS", "A,B50,C20,C2000");
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let (ws, _) = workloads::build(&names, None);
    for threads in list("BILEVEL_BENCH_THREADS", "1,2") {
        let t: usize = threads
            .parse()
            .expect("BILEVEL_BENCH_THREADS lists numbers");
        let (pool, par) = workloads::pool(t);
        for w in &ws {
            let mut group = c.benchmark_group(format!("{}/{t}t", w.name));
            group
                .sample_size(20)
                .measurement_time(Duration::from_secs(2))
                .warm_up_time(Duration::from_millis(300));
            let mut b = Bench::new(w, par);
            for op in workloads::OPS {
                if b.has(op) {
                    group.bench_function(op, |bch| pool.install(|| bch.iter(|| b.call(op))));
                }
            }
            group.finish();
        }
    }
}

criterion_group!(benches, ad_cost);
criterion_main!(benches);

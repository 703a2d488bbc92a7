//! Cost of the AD oracles on the bilevel workloads: value, gradient, Hessian-vector product
//! (with its gradient), mixed product, and one single-loop AID step, at 1 and 2 threads.
//!
//! Run with `cargo bench --bench ad_cost`; `BILEVEL_BENCH_THREADS=1,2` picks thread counts.

mod common;

use bilevel::ad::{Evaluator, Hvp2Out};
use bilevel::linalg::Mat;
use common::*;
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;

fn threads() -> Vec<usize> {
    std::env::var("BILEVEL_BENCH_THREADS")
        .ok()
        .map(|s| s.split(',').filter_map(|t| t.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 2])
}

fn bench_workload(c: &mut Criterion, tag: &str, w: &Workload) {
    let m = w.y.nrows();
    let n = w.x.nrows();
    let v = direction(m);
    for th in threads() {
        let mut group = c.benchmark_group(format!("{tag}/{th}t"));
        group
            .sample_size(20)
            .measurement_time(Duration::from_secs(3))
            .warm_up_time(Duration::from_millis(500));
        let mut ev = Evaluator::with_par(par(th));
        let mut gx = Mat::zeros(n, 1);
        let mut gy = Mat::zeros(m, 1);
        let mut hx = Mat::zeros(n, 1);
        let mut hy = Mat::zeros(m, 1);
        group.bench_function("value", |b| {
            b.iter(|| black_box(ev.value2(&*w.g, w.x.as_ref(), w.y.as_ref())))
        });
        group.bench_function("gradient", |b| {
            b.iter(|| {
                ev.grad2_into(
                    &*w.g,
                    w.x.as_ref(),
                    w.y.as_ref(),
                    Some(gx.as_mut()),
                    Some(gy.as_mut()),
                )
            })
        });
        group.bench_function("hvp+gradient", |b| {
            b.iter(|| {
                let out = Hvp2Out {
                    grad_x: Some(gx.as_mut()),
                    grad_y: Some(gy.as_mut()),
                    hv_x: Some(hx.as_mut()),
                    hv_y: Some(hy.as_mut()),
                };
                ev.hvp2_into(
                    &*w.g,
                    w.x.as_ref(),
                    w.y.as_ref(),
                    None,
                    Some(v.as_ref()),
                    out,
                )
            })
        });
        group.bench_function("hvp (recorded once)", |b| {
            let mut lin = ev.linearize2(&*w.g, w.x.as_ref(), w.y.as_ref());
            b.iter(|| lin.hvp_into(None, Some(v.as_ref()), Some(hx.as_mut()), Some(hy.as_mut())))
        });
        let u = Mat::from_fn(n, 1, |i, _| ((i % 5) as f64 - 2.0) * 0.1);
        group.bench_function("mixed yx", |b| {
            b.iter(|| {
                let out = Hvp2Out {
                    hv_y: Some(hy.as_mut()),
                    ..Default::default()
                };
                ev.hvp2_into(
                    &*w.g,
                    w.x.as_ref(),
                    w.y.as_ref(),
                    Some(u.as_ref()),
                    None,
                    out,
                )
            })
        });
        let mut state = AidState::new(w);
        group.bench_function("aid step", |b| {
            b.iter(|| aid_step(&mut ev, w, &mut state, (1e-3, 1e-3, 1e-3)))
        });
        group.finish();
    }
}

fn ad_cost(c: &mut Criterion) {
    let data = shipped_mnist();
    bench_workload(c, "A dhc-linear", &dhc_linear(&data, 1e-3));
    bench_workload(c, "B50 dhc-mlp", &dhc_mlp(&data, 50, 1e-3));
    bench_workload(c, "C20 sincos", &sincos(20, 3));
    bench_workload(c, "C2000 sincos", &sincos(2000, 3));
}

criterion_group!(benches, ad_cost);
criterion_main!(benches);

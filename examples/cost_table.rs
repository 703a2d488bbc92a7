//! Prints what each AD oracle costs on the bilevel workloads, as a table: value, gradient,
//! Hessian-vector product (with its gradient), the same HVP applied to a recorded tape, the
//! mixed product `∇²yx g·u`, and one single-loop AID step, with the ratio HVP / gradient.
//!
//! `cargo run --release --example cost_table [-- --threads N --quick]`
//!
//! Timings are medians of repeated whole-oracle calls with `std::time::Instant`; the
//! criterion bench `ad_cost` measures the same calls with confidence intervals.

#[path = "../benches/common/mod.rs"]
mod common;

use bilevel::ad::{Evaluator, Hvp2Out};
use bilevel::linalg::Mat;
use common::*;
use std::time::{Duration, Instant};

fn median_time(budget: Duration, mut f: impl FnMut()) -> Duration {
    f(); // warm the tape's buffers
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 5 || (start.elapsed() < budget && times.len() < 2000) {
        let t = Instant::now();
        f();
        times.push(t.elapsed());
    }
    times.sort();
    times[times.len() / 2]
}

fn fmt(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.1} µs")
    } else {
        format!("{:.2} ms", us / 1000.0)
    }
}

fn row(w: &Workload, threads: usize, budget: Duration) {
    let (n, m) = (w.x.nrows(), w.y.nrows());
    let v = direction(m);
    let u = Mat::from_fn(n, 1, |i, _| ((i % 5) as f64 - 2.0) * 0.1);
    let mut ev = Evaluator::with_par(par(threads));
    let mut gx = Mat::zeros(n, 1);
    let mut gy = Mat::zeros(m, 1);
    let mut hx = Mat::zeros(n, 1);
    let mut hy = Mat::zeros(m, 1);
    let value = median_time(budget, || {
        std::hint::black_box(ev.value2(&*w.g, w.x.as_ref(), w.y.as_ref()));
    });
    let grad = median_time(budget, || {
        ev.grad2_into(
            &*w.g,
            w.x.as_ref(),
            w.y.as_ref(),
            Some(gx.as_mut()),
            Some(gy.as_mut()),
        );
    });
    let hvp = median_time(budget, || {
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
        );
    });
    let hvp_rec = {
        let mut lin = ev.linearize2(&*w.g, w.x.as_ref(), w.y.as_ref());
        median_time(budget, || {
            lin.hvp_into(None, Some(v.as_ref()), Some(hx.as_mut()), Some(hy.as_mut()))
        })
    };
    let mixed = median_time(budget, || {
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
        );
    });
    let mut st = AidState::new(w);
    let aid = median_time(budget, || aid_step(&mut ev, w, &mut st, (1e-3, 1e-3, 1e-3)));
    println!(
        "| {} | {threads} | {} | {} | {} | {} | {} | {} | {:.2} |",
        w.name,
        fmt(value),
        fmt(grad),
        fmt(hvp),
        fmt(hvp_rec),
        fmt(mixed),
        fmt(aid),
        hvp.as_secs_f64() / grad.as_secs_f64()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let threads: usize = args
        .iter()
        .position(|a| a == "--threads")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let budget = Duration::from_millis(if quick { 200 } else { 1500 });
    let data = shipped_mnist();
    println!(
        "AD oracle cost on the shipped MNIST test split (5000 training, 5000 validation images), f64,\nmedian of repeated calls, {threads} thread(s)\n"
    );
    println!(
        "| workload | threads | value | gradient | HVP + gradient | HVP (recorded once) | mixed ∇²yx·u | AID step | HVP / gradient |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    row(&dhc_linear(&data, 1e-3), threads, budget);
    row(&dhc_mlp(&data, 50, 1e-3), threads, budget);
    row(&sincos(20, 3), threads, budget);
    row(&sincos(2000, 3), threads, budget);
}

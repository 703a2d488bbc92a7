//! Conjugate gradient on the exact Hessian of the data hyper-cleaning lower level, applied
//! matrix-free through the AD tape: the linear system `∇²yy g · w = ∇y f` that implicit
//! hypergradient methods (AIDBiO) solve at every outer step, on the shipped MNIST test split
//! (5000 training samples, 784 features, 10 classes, λ = 1e-3).
//!
//! `g` is recorded once at the point (`Evaluator::linearize2`), and every CG iteration applies
//! one Hessian-vector product to the recording. The bench reports the time to a relative residual
//! of 1e-8; the iteration count is printed once before timing.
//!
//! Run with `cargo bench --bench cg_hvp`.

mod common;

use bilevel::ad::Evaluator;
use bilevel::linalg::{CgParams, CgStart, CgWorkspace, Mat, MatMut, MatRef, conjugate_gradient};
use common::*;
use criterion::{Criterion, criterion_group, criterion_main};
use std::time::Duration;

fn cg_hvp(c: &mut Criterion) {
    let data = shipped_mnist();
    let w = dhc_linear(&data, 1e-3);
    let m = w.y.nrows();
    let params = CgParams {
        rel_tol: 1e-8,
        max_iter: 500,
    };
    let mut ev_f = Evaluator::new();
    let (_, _, b) = ev_f.value_and_grad2(&*w.f, w.x.as_ref(), w.y.as_ref());
    for threads in [1, 2] {
        let mut ev = Evaluator::with_par(par(threads));
        let mut ws = CgWorkspace::new(m);
        let mut sol = Mat::zeros(m, 1);
        let mut solve = |sol: &mut Mat<f64>, ws: &mut CgWorkspace| {
            let mut lin = ev.linearize2(&*w.g, w.x.as_ref(), w.y.as_ref());
            let mut op = |v: MatRef<'_, f64>, out: MatMut<'_, f64>| {
                lin.hvp_into(None, Some(v), None, Some(out))
            };
            conjugate_gradient(
                &mut op,
                b.as_ref(),
                sol.as_mut(),
                CgStart::Zero,
                &params,
                ws,
            )
            .expect("CG converges on the strongly convex lower level")
        };
        let info = solve(&mut sol, &mut ws);
        println!(
            "cg_hvp/{threads}t: {} iterations to relative residual {:.2e} (one HVP per iteration)",
            info.iterations, info.rel_residual
        );
        let mut group = c.benchmark_group(format!("cg on the dhc-linear Hessian/{threads}t"));
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(5));
        group.bench_function("solve to 1e-8", |bch| bch.iter(|| solve(&mut sol, &mut ws)));
        group.finish();
    }
}

criterion_group!(benches, cg_hvp);
criterion_main!(benches);

//! Conjugate gradient on the exact Hessian of the data hyper-cleaning lower level (workload A),
//! applied matrix-free through the AD tape: the linear system `∇²yy g · w = ∇y f` that implicit
//! hypergradient methods (AIDBiO) solve at every outer step.
//!
//! Two ways to apply the Hessian: `g` recorded once at the point (`Evaluator::linearize2`, one
//! tangent sweep and one adjoint-tangent sweep per product over whole tensors), and the
//! problem's own oracle (`Problem::hvp_yy_g`, one streamed pass over the data per product). The
//! bench reports the time to a relative residual of 1e-8; the iteration count is printed once.
//!
//! Run with `cargo bench --bench cg_hvp`.

mod workloads;

use bilevel::ad::Evaluator;
use bilevel::linalg::{CgParams, CgStart, CgWorkspace, Mat, MatMut, MatRef, conjugate_gradient};
use criterion::{Criterion, criterion_group, criterion_main};
use std::time::Duration;

fn cg_hvp(c: &mut Criterion) {
    let (ws, _) = workloads::build(&["A"], None);
    let w = &ws[0];
    let p = &*w.problem;
    let m = w.y.nrows();
    let params = CgParams {
        rel_tol: 1e-8,
        max_iter: 500,
    };
    let b = p
        .grad_f(&mut Evaluator::new(), w.x.as_ref(), w.y.as_ref())
        .y;
    for threads in [1, 2] {
        let (pool, par) = workloads::pool(threads);
        let mut ev = Evaluator::with_par(par);
        let mut cg = CgWorkspace::new(m);
        let mut sol = Mat::zeros(m, 1);
        let mut group = c.benchmark_group(format!("cg on the dhc-linear Hessian/{threads}t"));
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(5));
        for recorded in [true, false] {
            let mut solve = |sol: &mut Mat<f64>, cg: &mut CgWorkspace| {
                if recorded {
                    let mut lin = ev.linearize2(|t, x, y| p.g(t, x, y), w.x.as_ref(), w.y.as_ref());
                    let mut op = |v: MatRef<'_, f64>, out: MatMut<'_, f64>| {
                        lin.hvp_into(None, Some(v), None, Some(out))
                    };
                    conjugate_gradient(
                        &mut op,
                        b.as_ref(),
                        sol.as_mut(),
                        CgStart::Zero,
                        &params,
                        cg,
                    )
                } else {
                    let mut op = |v: MatRef<'_, f64>, mut out: MatMut<'_, f64>| {
                        out.copy_from(p.hvp_yy_g(&mut ev, w.x.as_ref(), w.y.as_ref(), v))
                    };
                    conjugate_gradient(
                        &mut op,
                        b.as_ref(),
                        sol.as_mut(),
                        CgStart::Zero,
                        &params,
                        cg,
                    )
                }
                .expect("CG converges on the strongly convex lower level")
            };
            let how = if recorded {
                "recorded once"
            } else {
                "streamed oracle"
            };
            let info = pool.install(|| solve(&mut sol, &mut cg));
            println!(
                "cg_hvp/{threads}t ({how}): {} iterations to relative residual {:.2e}",
                info.iterations, info.rel_residual
            );
            group.bench_function(format!("solve to 1e-8, {how}"), |bch| {
                pool.install(|| bch.iter(|| solve(&mut sol, &mut cg)))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, cg_hvp);
criterion_main!(benches);

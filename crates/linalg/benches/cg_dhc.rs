//! Conjugate gradient on a data-hyper-cleaning-like lower-level Hessian, applied matrix-free.
//!
//! The lower-level problem of data hyper-cleaning is weighted softmax regression; its Hessian
//! applied to `V` (`d × c`) is
//! `H V = (1/n) Σᵢ wᵢ xᵢ ((diag(pᵢ) − pᵢpᵢᵀ) Vᵀxᵢ)ᵀ + 2λV`, computed with two products:
//! `U = X V`, then `Gᵢ = wᵢ (pᵢ ⊙ Uᵢ − pᵢ (pᵢᵀUᵢ))` row by row, then `(1/n) Xᵀ G + 2λV`.
//! Synthetic data of MNIST's shape: `n = 5000`, `d = 784`, `c = 10`, features uniform in
//! `[0, 1]`, random softmax probabilities, weights in `(0, 1)`, `λ = 10⁻³`.
//!
//! Also benchmarks the Lanczos estimate of the spectrum of the same operator and a PCA fit
//! with `k = 82` on `5000 × 784` data.

use std::hint::black_box;

use bilevel_linalg::{
    Accum, CgParams, CgStart, CgWorkspace, LanczosParams, Mat, MatMut, MatRef, Par, Pca,
    conjugate_gradient, lanczos_extreme_eigenvalues, matmul, reshape_col, reshape_col_mut,
};
use criterion::{Criterion, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const N: usize = 5000;
const D: usize = 784;
const C: usize = 10;
const LAMBDA: f64 = 1e-3;

struct DhcData {
    x: Mat<f64>,
    p: Mat<f64>,
    w: Vec<f64>,
}

fn dhc_data(seed: u64) -> DhcData {
    let mut rng = StdRng::seed_from_u64(seed);
    let x = Mat::from_fn(N, D, |_, _| rng.random_range(0.0..1.0));
    let mut p = Mat::from_fn(N, C, |_, _| rng.random_range(-2.0..2.0f64).exp());
    for i in 0..N {
        let s: f64 = (0..C).map(|j| p[(i, j)]).sum();
        for j in 0..C {
            p[(i, j)] /= s;
        }
    }
    let w = (0..N).map(|_| rng.random_range(0.01..1.0)).collect();
    DhcData { x, p, w }
}

/// The matrix-free Hessian `v ↦ H v` on flattened `d·c × 1` vectors.
fn dhc_hessian(data: &DhcData, par: Par) -> impl FnMut(MatRef<'_, f64>, MatMut<'_, f64>) + '_ {
    let mut u = Mat::<f64>::zeros(N, C);
    move |v: MatRef<'_, f64>, out: MatMut<'_, f64>| {
        let v = reshape_col(v, D, C);
        let mut out = reshape_col_mut(out, D, C);
        matmul(u.as_mut(), Accum::Replace, data.x.as_ref(), v, 1.0, par);
        for i in 0..N {
            let mut pu = 0.0;
            for j in 0..C {
                pu += data.p[(i, j)] * u[(i, j)];
            }
            let wi = data.w[i];
            for j in 0..C {
                u[(i, j)] = wi * data.p[(i, j)] * (u[(i, j)] - pu);
            }
        }
        out.copy_from(v);
        matmul(
            out.as_mut(),
            Accum::Replace,
            data.x.as_ref().transpose(),
            u.as_ref(),
            1.0 / N as f64,
            par,
        );
        for j in 0..C {
            for i in 0..D {
                out[(i, j)] += 2.0 * LAMBDA * v[(i, j)];
            }
        }
    }
}

fn bench(c: &mut Criterion) {
    bilevel_linalg::disable_global_parallelism();
    let data = dhc_data(7);
    let n = D * C;
    let mut rng = StdRng::seed_from_u64(8);
    let b = Mat::from_fn(n, 1, |_, _| rng.random_range(-1.0..1.0));
    let params = CgParams {
        rel_tol: 1e-8,
        max_iter: 5000,
    };

    let mut group = c.benchmark_group("dhc_hessian_5000x784x10");
    group.sample_size(10);
    for (name, par) in [("seq", Par::Seq), ("rayon", Par::rayon(0))] {
        let mut op = dhc_hessian(&data, par);
        let mut ws = CgWorkspace::new(n);
        let mut x = Mat::zeros(n, 1);
        let info = conjugate_gradient(
            &mut op,
            b.as_ref(),
            x.as_mut(),
            CgStart::Zero,
            &params,
            &mut ws,
        )
        .expect("CG converges on the DHC Hessian");
        eprintln!(
            "cg/{name}: {} iterations to relative residual {:.2e}",
            info.iterations, info.rel_residual
        );
        group.bench_function(format!("hvp/{name}"), |bch| {
            let mut hv = Mat::zeros(n, 1);
            bch.iter(|| op(black_box(b.as_ref()), hv.as_mut()))
        });
        group.bench_function(format!("cg_1e-8/{name}"), |bch| {
            bch.iter(|| {
                conjugate_gradient(
                    &mut op,
                    black_box(b.as_ref()),
                    x.as_mut(),
                    CgStart::Zero,
                    &params,
                    &mut ws,
                )
                .unwrap()
            })
        });
    }
    let mut op = dhc_hessian(&data, Par::rayon(0));
    let lp = LanczosParams {
        max_steps: 200,
        rel_tol: 1e-6,
        seed: 0,
    };
    let est = lanczos_extreme_eigenvalues(&mut op, n, &lp, Par::Seq).unwrap();
    eprintln!(
        "lanczos: L = {:.4e}, mu = {:.4e}, kappa = {:.3e}, {} steps, converged {}",
        est.lambda_max,
        est.lambda_min,
        est.condition_number(),
        est.steps,
        est.converged
    );
    group.bench_function("lanczos_1e-6/rayon", |bch| {
        bch.iter(|| lanczos_extreme_eigenvalues(&mut op, n, &lp, Par::Seq).unwrap())
    });
    group.finish();

    let mut group = c.benchmark_group("pca_5000x784_k82");
    group.sample_size(10);
    for (name, par) in [("seq", Par::Seq), ("rayon", Par::rayon(0))] {
        group.bench_function(format!("fit/{name}"), |bch| {
            bch.iter(|| Pca::fit(black_box(data.x.as_ref()), 82, par).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

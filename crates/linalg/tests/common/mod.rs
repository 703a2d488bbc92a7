//! Seeded random matrices shared by the integration tests.
#![allow(dead_code)]

use bilevel_linalg::{Accum, Mat, MatRef, Par, matmul, svd_thin};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A generator seeded with `seed`.
pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// `m × n` matrix with entries uniform in `[-1, 1)`.
pub fn uniform(rng: &mut StdRng, m: usize, n: usize) -> Mat<f64> {
    Mat::from_fn(m, n, |_, _| rng.random_range(-1.0..1.0))
}

/// `m × n` matrix of standard normal entries (Box–Muller).
pub fn normal(rng: &mut StdRng, m: usize, n: usize) -> Mat<f64> {
    Mat::from_fn(m, n, |_, _| {
        let u1: f64 = 1.0 - rng.random::<f64>();
        let u2: f64 = rng.random();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    })
}

/// Random `n × n` orthogonal matrix (left singular vectors of a Gaussian matrix).
pub fn orthogonal(rng: &mut StdRng, n: usize) -> Mat<f64> {
    svd_thin(normal(rng, n, n).as_ref(), Par::Seq).unwrap().u
}

/// `a · b`.
pub fn mul(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> Mat<f64> {
    let mut c = Mat::zeros(a.nrows(), b.ncols());
    matmul(c.as_mut(), Accum::Replace, a, b, 1.0, Par::Seq);
    c
}

/// `Q diag(eigs) Qᵀ` for a random orthogonal `Q`: a symmetric matrix with spectrum `eigs`.
pub fn with_spectrum(rng: &mut StdRng, eigs: &[f64]) -> Mat<f64> {
    let n = eigs.len();
    let q = orthogonal(rng, n);
    let qd = Mat::from_fn(n, n, |i, j| q[(i, j)] * eigs[j]);
    let a = mul(qd.as_ref(), q.as_ref().transpose());
    // Symmetrize exactly.
    Mat::from_fn(n, n, |i, j| 0.5 * (a[(i, j)] + a[(j, i)]))
}

/// `max |a − b|`.
pub fn max_abs_diff(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    let mut m = 0.0f64;
    for j in 0..a.ncols() {
        for i in 0..a.nrows() {
            m = m.max((a[(i, j)] - b[(i, j)]).abs());
        }
    }
    m
}

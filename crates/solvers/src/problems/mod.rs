//! The problem suite: every synthetic problem of the catalog, and data hyper-cleaning ([`dhc`]).
//!
//! | type | problem | known exactly |
//! |---|---|---|
//! | [`QuadraticKappa`] | quadratic with condition number κ | `y*`, `∇Φ`, `g*`, `x*` |
//! | [`BenchoptQuadratic`] | benchopt's `benchmark_bilevel` simulated quadratic: averages of random quadratics | `y*`, `∇Φ`, `Φ` |
//! | [`ScSinCos`] | `sin(cᵀx + dᵀy) + log(‖x + y‖² + 1)` over `½‖Hy − x‖²` | `y*`, `∇Φ`, `g*` |
//! | [`NcCos`] | same `f` over the nonconvex `cos(½‖Hy − x‖²)` | nothing (metric: `‖Δ‖`) |
//! | [`Coreset`] | coreset selection with a softmax | `y*`, `g*` (`∇Φ` by a linear solve) |
//! | [`GaletExample1`] | a PL lower level with a continuum of solutions | `g*`, optimality gap |
//! | [`NastyConstrained`] | a box-constrained example with a discontinuous `Φ` | `g*`, `x* = 0` |
//! | [`LowerBound`] | `f = y`, `g = ½(y − F(x))²` with a nonconvex `F` | `y*`, `∇Φ = ∇F` |
//! | [`dhc::Dhc`] | data hyper-cleaning: linear, PCA or MLP classifier, per-sample weights `σ(xᵢ)` | test accuracy, cleaning precision/recall/F1 |
//!
//! [`QuadraticKappa`] (coordinate `i` is sample `i`), [`BenchoptQuadratic`] and [`dhc::Dhc`] (a sample is a training or
//! validation row) are data sums ([`DataSum`](crate::DataSum)): the stochastic methods run on
//! them with minibatch oracles.

mod benchopt_quadratic;
mod coreset;
pub mod dhc;
mod galet;
mod lower_bound;
mod nasty;
mod quadratic;
mod sincos;

pub use benchopt_quadratic::{BenchoptQuadratic, BenchoptQuadraticConfig};
pub use coreset::Coreset;
pub use dhc::{Activation, Cleaning, Dhc, DhcData, DhcModel};
pub use galet::GaletExample1;
pub use lower_bound::LowerBound;
pub use nasty::NastyConstrained;
pub use quadratic::QuadraticKappa;
pub use sincos::{NcCos, ScSinCos};

use bilevel_linalg::Mat;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A seeded generator of standard normal samples (Box–Muller), so problems depend only on `rand`.
pub(crate) struct Normal {
    rng: StdRng,
}

impl Normal {
    pub(crate) fn new(seed: u64) -> Self {
        Normal {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    pub(crate) fn uniform(&mut self) -> f64 {
        self.rng.random::<f64>()
    }

    pub(crate) fn sample(&mut self) -> f64 {
        let u1: f64 = 1.0 - self.rng.random::<f64>();
        let u2: f64 = self.rng.random::<f64>();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    pub(crate) fn column(&mut self, n: usize) -> Mat<f64> {
        let v: Vec<f64> = (0..n).map(|_| self.sample()).collect();
        Mat::from_fn(n, 1, |i, _| v[i])
    }

    pub(crate) fn matrix(&mut self, r: usize, c: usize) -> Mat<f64> {
        let v: Vec<f64> = (0..r * c).map(|_| self.sample()).collect();
        Mat::from_fn(r, c, |i, j| v[i * c + j])
    }
}

/// `a · b` for small dense matrices (problem construction and metrics only, not on any hot
/// path), each entry summed over `k` in order: the same bits on every CPU, where a SIMD kernel
/// chosen at run time (AVX2 or AVX-512) would sum in lanes of its own width.
pub(crate) fn small_matmul(a: &Mat<f64>, b: &Mat<f64>) -> Mat<f64> {
    assert_eq!(a.ncols(), b.nrows(), "small_matmul: inner dimensions");
    Mat::from_fn(a.nrows(), b.ncols(), |i, j| {
        (0..a.ncols()).fold(0.0, |s, k| s + a[(i, k)] * b[(k, j)])
    })
}

/// A random orthogonal `n × n` matrix: a product of `n.min(8)` Householder reflections.
pub(crate) fn random_orthogonal(rng: &mut Normal, n: usize) -> Mat<f64> {
    let mut q = Mat::from_fn(n, n, |i, j| if i == j { 1.0 } else { 0.0 });
    for _ in 0..n.min(8) {
        let v = rng.column(n);
        let vv: f64 = (0..n).map(|i| v[(i, 0)] * v[(i, 0)]).sum();
        // q ← (I − 2vvᵀ/vᵀv) q
        let mut vq = vec![0.0; n];
        for (j, s) in vq.iter_mut().enumerate() {
            *s = (0..n).map(|i| v[(i, 0)] * q[(i, j)]).sum();
        }
        for i in 0..n {
            for (j, s) in vq.iter().enumerate() {
                q[(i, j)] -= 2.0 * v[(i, 0)] * s / vv;
            }
        }
    }
    q
}

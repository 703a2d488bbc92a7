//! The simulated quadratic problem of benchopt's bilevel benchmark (Dagréou, Moreau, Vaiter and
//! Ablin's `benchmark_bilevel`, the benchmark of "A framework for bilevel optimization that
//! enables stochastic and global variance reduction algorithms", NeurIPS 2022, and of its
//! follow-ups SRBA and the benchmark paper): both levels are averages of random quadratics,
//!
//! `qᵢ(x, y) = ½ yᵀAᵢy + ½ xᵀBᵢx + xᵀCᵢy + aᵢᵀy + bᵢᵀx`,
//!
//! `g = (1/N_g) Σᵢ qᵢ` over the inner samples and `f = (1/N_f) Σⱼ qⱼ` over the outer ones, each
//! drawn as the benchmark's `gen_matrices` draws them: `Aᵢ = uᵢuᵢᵀ` with `uᵢ = S zᵢ`,
//! `S = U diag(√λ) Uᵀ` and `λ` log-spaced on `[μ, L_inner]` (so `E Aᵢ` has spectrum
//! `[μ, L_inner]`); `Bᵢ = wᵢwᵢᵀ` likewise on `{0} ∪ [μ, L_outer]` (one flat direction);
//! `Cᵢ = (P D zᵢ')(Q zᵢ')ᵀ` with `D` of singular values log-spaced on `[μ, L_cross]`; `aᵢ, bᵢ`
//! standard normal. `U, P, Q` are random orthogonal, `zᵢ, zᵢ'` standard normal.
//!
//! The benchmark's defaults (`datasets/simulated.py`, with the `config/quadratics*.yml`
//! sizes): `N_g = 32768`, `N_f = 1024`, `dim y = 100`, `dim x = 10`, `μ = 0.1`,
//! `L_inner = L_outer = 1` at both levels, `L_cross = 0.1`; start `y₀ = 0`, `x₀ = −2·1` (its
//! `objective.py`). Like the benchmark, a draw whose `Φ` is not convex (smallest eigenvalue of
//! `∇²Φ` below `1e−12`) is redrawn, up to 20 times. Our generator is `rand`'s, not JAX's, so
//! the matrices are not the benchmark's own, only drawn the same way; and `U` (the benchmark's
//! left factor of the SVD of one Gaussian vector, a Householder reflection) is our random
//! orthogonal matrix.
//!
//! Everything is known exactly from the means `Ā, B̄, C̄, ā, b̄` (inner) and `F̄_y, F̄_x, C̄', ā',
//! b̄'` (outer): `y*(x) = −Ā⁻¹(ā + C̄ᵀx)` and `∇Φ(x) = ∇ₓf − C̄Ā⁻¹∇ᵧf` at `(x, y*(x))`.
//! The benchmark's metrics are `‖∇Φ(x)‖²` (its `value`), `Φ(x)` (`func`) and `‖y − y*(x)‖²`
//! (`inner_distance`); [`Problem::metrics`] reports the last two as `phi` and
//! `inner_distance` (the first is the common `grad_phi_norm`, squared).

use super::{Normal, random_orthogonal, small_matmul};
use crate::problem::{DataSum, Problem, Smoothness};
use bilevel_ad::{Evaluator, Tape, Var};
use bilevel_linalg::{Mat, MatRef, Par};
use std::sync::Arc;

/// The sizes and constants of [`BenchoptQuadratic`] (the benchmark's `simulated` dataset
/// parameters).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BenchoptQuadraticConfig {
    /// Inner samples `N_g` (`n_samples_inner`).
    pub n_inner: usize,
    /// Outer samples `N_f` (`n_samples_outer`).
    pub n_outer: usize,
    /// `dim y` (`dim_inner`).
    pub dim_inner: usize,
    /// `dim x` (`dim_outer`).
    pub dim_outer: usize,
    /// `μ` (`mu_inner`): the smallest eigenvalue of `E Aᵢ` and of the nonzero part of `E Bᵢ`,
    /// and the smallest singular value of `E Cᵢ`.
    pub mu: f64,
    /// The largest eigenvalue of `E Aᵢ` (`L_inner_inner`, `L_inner_outer`): inner, outer.
    pub l_inner: [f64; 2],
    /// The largest eigenvalue of `E Bᵢ` (`L_outer_inner`, `L_outer_outer`).
    pub l_outer: [f64; 2],
    /// The largest singular value of `E Cᵢ` (`L_cross_inner`, `L_cross_outer`).
    pub l_cross: [f64; 2],
}

impl Default for BenchoptQuadraticConfig {
    /// The benchmark's: 32768 inner and 1024 outer samples, `dim y = 100`, `dim x = 10`.
    fn default() -> Self {
        BenchoptQuadraticConfig {
            n_inner: 32_768,
            n_outer: 1024,
            dim_inner: 100,
            dim_outer: 10,
            mu: 0.1,
            l_inner: [1.0, 1.0],
            l_outer: [1.0, 1.0],
            l_cross: [0.1, 0.1],
        }
    }
}

/// One level's samples, one per row: `uᵢ` (`Aᵢ = uᵢuᵢᵀ`), `wᵢ`, `pᵢ, qᵢ` (`Cᵢ = pᵢqᵢᵀ`),
/// `aᵢ`, `bᵢ`.
#[derive(Clone, Debug)]
struct Level {
    u: Arc<Mat<f64>>,
    w: Arc<Mat<f64>>,
    p: Arc<Mat<f64>>,
    q: Arc<Mat<f64>>,
    a: Arc<Mat<f64>>,
    b: Arc<Mat<f64>>,
    /// The means `E Aᵢ`, `E Bᵢ`, `E Cᵢ`, `E aᵢ`, `E bᵢ`.
    mean: Means,
}

#[derive(Clone, Debug)]
struct Means {
    a: Mat<f64>,
    b: Mat<f64>,
    c: Mat<f64>,
    la: Mat<f64>,
    lb: Mat<f64>,
}

/// `S = U diag(√λ) Uᵀ` for `λ` log-spaced on `[lo, hi]`, with `zeros` leading zero eigenvalues.
fn sqrt_cov(rng: &mut Normal, d: usize, lo: f64, hi: f64, zeros: usize) -> Mat<f64> {
    let u = random_orthogonal(rng, d);
    let k = d - zeros;
    let s: Vec<f64> = (0..d)
        .map(|i| {
            if i < zeros {
                0.0
            } else if k == 1 {
                hi.sqrt()
            } else {
                let t = (i - zeros) as f64 / (k - 1) as f64;
                (lo.ln() + t * (hi.ln() - lo.ln())).exp().sqrt()
            }
        })
        .collect();
    let us = Mat::from_fn(d, d, |i, j| u[(i, j)] * s[j]);
    small_matmul(&us, &u.transpose().to_owned())
}

/// `z mᵀ` for a tall `z` (one sample per row), column by column of the result so that every
/// pass reads a contiguous column of `z`; each entry summed over `k` in order, the same bits on
/// every CPU (as [`small_matmul`], whose row-wise reads of a tall `z` miss the cache).
fn times_t(z: &Mat<f64>, m: &Mat<f64>) -> Mat<f64> {
    assert_eq!(z.ncols(), m.ncols(), "times_t: inner dimensions");
    let mut out = Mat::zeros(z.nrows(), m.nrows());
    for i in 0..m.nrows() {
        for k in 0..z.ncols() {
            let c = m[(i, k)];
            if c == 0.0 {
                continue;
            }
            let (src, dst) = (z.col(k), out.col_mut(i));
            for (d, s) in dst.iter_mut().zip(src.iter()) {
                *d += s * c;
            }
        }
    }
    out
}

/// `rows × d` standard normal draws times `mᵀ` (one sample `m z` per row).
fn rows_times(rng: &mut Normal, rows: usize, m: &Mat<f64>) -> Mat<f64> {
    let z = rng.matrix(rows, m.ncols());
    times_t(&z, m)
}

/// `(1/n) XᵀY`.
fn mean_outer(x: &Mat<f64>, y: &Mat<f64>) -> Mat<f64> {
    let n = x.nrows() as f64;
    Mat::from_fn(x.ncols(), y.ncols(), |i, j| {
        let (a, b) = (x.col(i), y.col(j));
        a.iter().zip(b.iter()).fold(0.0, |s, (u, v)| s + u * v) / n
    })
}

/// The column of row means of `x`.
fn col_mean(x: &Mat<f64>) -> Mat<f64> {
    let n = x.nrows() as f64;
    Mat::from_fn(x.ncols(), 1, |j, _| {
        x.col(j).iter().fold(0.0, |s, v| s + v) / n
    })
}

impl Level {
    fn draw(
        rng: &mut Normal,
        n: usize,
        dy: usize,
        dx: usize,
        c: &BenchoptQuadraticConfig,
        lvl: usize,
    ) -> Self {
        let s_a = sqrt_cov(rng, dy, c.mu, c.l_inner[lvl], 0);
        let u = rows_times(rng, n, &s_a);
        let s_b = sqrt_cov(rng, dx, c.mu, c.l_outer[lvl], 1);
        let w = rows_times(rng, n, &s_b);
        let po = random_orthogonal(rng, dx);
        let qo = random_orthogonal(rng, dy);
        let r = dx.min(dy);
        let sing: Vec<f64> = (0..r)
            .map(|i| {
                if r == 1 {
                    c.l_cross[lvl]
                } else {
                    let t = i as f64 / (r - 1) as f64;
                    (c.mu.ln() + t * (c.l_cross[lvl].ln() - c.mu.ln())).exp()
                }
            })
            .collect();
        // pᵢ = P D zᵢ (D is dx × dy, diagonal), qᵢ = Q zᵢ, from the same zᵢ ∈ R^dy.
        let z = rng.matrix(n, dy);
        let pd = Mat::from_fn(
            dx,
            dy,
            |i, j| if j < r { po[(i, j)] * sing[j] } else { 0.0 },
        );
        let p = times_t(&z, &pd);
        let q = times_t(&z, &qo);
        let a = rng.matrix(n, dy);
        let b = rng.matrix(n, dx);
        let mean = Means {
            a: mean_outer(&u, &u),
            b: mean_outer(&w, &w),
            c: mean_outer(&p, &q),
            la: col_mean(&a),
            lb: col_mean(&b),
        };
        Level {
            u: Arc::new(u),
            w: Arc::new(w),
            p: Arc::new(p),
            q: Arc::new(q),
            a: Arc::new(a),
            b: Arc::new(b),
            mean,
        }
    }

    fn len(&self) -> usize {
        self.u.nrows()
    }

    /// The average of `qᵢ` over `rows` (every sample when `None`).
    fn record(&self, t: &mut Tape, x: Var, y: Var, rows: Option<&[usize]>) -> Var {
        let take = |t: &mut Tape, m: &Arc<Mat<f64>>| match rows {
            Some(r) => t.shared_rows(m, r),
            None => t.shared(m),
        };
        let n = rows.map_or(self.len(), <[usize]>::len) as f64;
        let (u, w, p, q, a, b) = (
            take(t, &self.u),
            take(t, &self.w),
            take(t, &self.p),
            take(t, &self.q),
            take(t, &self.a),
            take(t, &self.b),
        );
        let uy = t.matmul(u, y);
        let quad_y = t.sum_sq(uy);
        let wx = t.matmul(w, x);
        let quad_x = t.sum_sq(wx);
        let quad = t.add(quad_y, quad_x);
        let quad = t.scale(quad, 0.5);
        let px = t.matmul(p, x);
        let qy = t.matmul(q, y);
        let cross = t.dot(px, qy);
        let ay = t.matmul(a, y);
        let ay = t.sum(ay);
        let bx = t.matmul(b, x);
        let bx = t.sum(bx);
        let lin = t.add(ay, bx);
        let s = t.add(quad, cross);
        let s = t.add(s, lin);
        t.scale(s, 1.0 / n)
    }
}

/// `m v` for small dense `m` and a column `v`.
fn mv(m: &Mat<f64>, v: MatRef<'_, f64>) -> Mat<f64> {
    small_matmul(m, &v.to_owned())
}

/// `a + b` for columns.
fn add(a: &Mat<f64>, b: &Mat<f64>) -> Mat<f64> {
    Mat::from_fn(a.nrows(), 1, |i, _| a[(i, 0)] + b[(i, 0)])
}

/// The benchmark's simulated quadratic bilevel problem (see the module documentation).
#[derive(Clone, Debug)]
pub struct BenchoptQuadratic {
    config: BenchoptQuadraticConfig,
    seed: u64,
    inner: Level,
    outer: Level,
    /// `Ā⁻¹`.
    a_inv: Mat<f64>,
    /// How many draws it took to get a convex `Φ`.
    trials: usize,
    /// The smallest eigenvalue of `∇²Φ`.
    min_eig: f64,
}

impl BenchoptQuadratic {
    /// The problem of `config` drawn from `seed`, redrawn (up to 20 draws) until `Φ` is convex.
    ///
    /// # Panics
    /// If a size is zero, `dim_outer < 2` (one direction of `E Bᵢ` is flat), a constant is not
    /// positive, or no draw in 20 gives a convex `Φ`.
    pub fn new(config: BenchoptQuadraticConfig, seed: u64) -> Self {
        let c = config;
        assert!(
            c.n_inner >= 1 && c.n_outer >= 1 && c.dim_inner >= 1 && c.dim_outer >= 2,
            "BenchoptQuadratic: sizes must be positive and dim_outer >= 2"
        );
        assert!(
            c.mu > 0.0
                && c.l_inner
                    .iter()
                    .chain(&c.l_outer)
                    .chain(&c.l_cross)
                    .all(|v| *v > 0.0),
            "BenchoptQuadratic: constants must be positive"
        );
        let mut rng = Normal::new(seed);
        for trial in 1..=20 {
            let inner = Level::draw(&mut rng, c.n_inner, c.dim_inner, c.dim_outer, &c, 0);
            let outer = Level::draw(&mut rng, c.n_outer, c.dim_inner, c.dim_outer, &c, 1);
            let Ok(a_inv) = bilevel_linalg::pseudo_inverse(inner.mean.a.as_ref(), 0.0, Par::Seq)
            else {
                continue;
            };
            let mut p = BenchoptQuadratic {
                config,
                seed,
                inner,
                outer,
                a_inv,
                trials: trial,
                min_eig: f64::NAN,
            };
            let h = p.hessian_phi();
            let eig = bilevel_linalg::sym_eigenvalues(h.as_ref(), Par::Seq)
                .expect("the eigenvalues of a small symmetric matrix converge");
            p.min_eig = eig[0];
            if p.min_eig >= 1e-12 {
                return p;
            }
        }
        panic!("BenchoptQuadratic: no draw in 20 gave a convex Φ");
    }

    /// The problem with the benchmark's sizes and constants ([`BenchoptQuadraticConfig::default`]).
    pub fn benchmark(seed: u64) -> Self {
        Self::new(BenchoptQuadraticConfig::default(), seed)
    }

    /// Its configuration.
    pub fn config(&self) -> &BenchoptQuadraticConfig {
        &self.config
    }

    /// How many draws it took to get a convex `Φ` (the benchmark prints the same).
    pub fn trials(&self) -> usize {
        self.trials
    }

    /// The smallest eigenvalue of `∇²Φ` (constant: `Φ` is quadratic).
    pub fn min_eig_phi(&self) -> f64 {
        self.min_eig
    }

    /// `J = ∂y*/∂x = −Ā⁻¹C̄ᵀ` (`dim y × dim x`).
    fn jac(&self) -> Mat<f64> {
        let ct = self.inner.mean.c.transpose().to_owned();
        let j = small_matmul(&self.a_inv, &ct);
        Mat::from_fn(j.nrows(), j.ncols(), |i, k| -j[(i, k)])
    }

    /// `∇²Φ = JᵀF̄_yJ + F̄_x + sym(C̄'J)`.
    fn hessian_phi(&self) -> Mat<f64> {
        let j = self.jac();
        let o = &self.outer.mean;
        let jt = j.transpose().to_owned();
        let jfj = small_matmul(&small_matmul(&jt, &o.a), &j);
        let cj = small_matmul(&o.c, &j);
        let d = o.b.nrows();
        Mat::from_fn(d, d, |i, k| {
            jfj[(i, k)] + o.b[(i, k)] + 0.5 * (cj[(i, k)] + cj[(k, i)])
        })
    }

    /// `∇ᵧf` and `∇ₓf` at `(x, y)`, from the outer means.
    fn grad_f_exact(&self, x: MatRef<'_, f64>, y: MatRef<'_, f64>) -> (Mat<f64>, Mat<f64>) {
        let o = &self.outer.mean;
        let gy = add(
            &add(&mv(&o.a, y), &mv(&o.c.transpose().to_owned(), x)),
            &o.la,
        );
        let gx = add(&add(&mv(&o.b, x), &mv(&o.c, y)), &o.lb);
        (gy, gx)
    }

    /// `Φ(x) = f(x, y*(x))`.
    pub fn phi(&self, x: MatRef<'_, f64>) -> f64 {
        let y = self.y_star_exact(x);
        let o = &self.outer.mean;
        let q = |m: &Mat<f64>, v: &Mat<f64>| {
            let mv = small_matmul(m, v);
            (0..v.nrows()).fold(0.0, |s, i| s + v[(i, 0)] * mv[(i, 0)])
        };
        let xo = x.to_owned();
        let cy = small_matmul(&o.c, &y);
        let dot =
            |a: &Mat<f64>, b: &Mat<f64>| (0..a.nrows()).fold(0.0, |s, i| s + a[(i, 0)] * b[(i, 0)]);
        0.5 * q(&o.a, &y) + 0.5 * q(&o.b, &xo) + dot(&xo, &cy) + dot(&o.la, &y) + dot(&o.lb, &xo)
    }

    fn y_star_exact(&self, x: MatRef<'_, f64>) -> Mat<f64> {
        let m = &self.inner.mean;
        let r = add(&m.la, &mv(&m.c.transpose().to_owned(), x));
        let s = small_matmul(&self.a_inv, &r);
        Mat::from_fn(s.nrows(), 1, |i, _| -s[(i, 0)])
    }
}

impl DataSum for BenchoptQuadratic {
    fn samples_f(&self) -> usize {
        self.outer.len()
    }
    fn samples_g(&self) -> usize {
        self.inner.len()
    }
    fn f_batch(&self, t: &mut Tape, x: Var, y: Var, idx: &[usize]) -> Var {
        self.outer.record(t, x, y, Some(idx))
    }
    fn g_batch(&self, t: &mut Tape, x: Var, y: Var, idx: &[usize]) -> Var {
        self.inner.record(t, x, y, Some(idx))
    }
}

impl Problem for BenchoptQuadratic {
    fn name(&self) -> String {
        let c = &self.config;
        format!(
            "benchopt-quadratic-n{}x{}-d{}x{}-s{}",
            c.n_inner, c.n_outer, c.dim_inner, c.dim_outer, self.seed
        )
    }
    fn dim_x(&self) -> usize {
        self.config.dim_outer
    }
    fn dim_y(&self) -> usize {
        self.config.dim_inner
    }
    /// The benchmark's start, `x₀ = −2·1`.
    fn x0(&self) -> Mat<f64> {
        Mat::from_fn(self.config.dim_outer, 1, |_, _| -2.0)
    }
    fn y0(&self) -> Mat<f64> {
        Mat::zeros(self.config.dim_inner, 1)
    }
    fn f(&self, t: &mut Tape, x: Var, y: Var) -> Var {
        self.outer.record(t, x, y, None)
    }
    fn g(&self, t: &mut Tape, x: Var, y: Var) -> Var {
        self.inner.record(t, x, y, None)
    }
    fn y_star(&self, x: MatRef<'_, f64>) -> Option<Mat<f64>> {
        Some(self.y_star_exact(x))
    }
    fn grad_phi(&self, x: MatRef<'_, f64>) -> Option<Mat<f64>> {
        let y = self.y_star_exact(x);
        let (gy, gx) = self.grad_f_exact(x, y.as_ref());
        let v = small_matmul(&self.a_inv, &gy);
        let cv = small_matmul(&self.inner.mean.c, &v);
        Some(Mat::from_fn(gx.nrows(), 1, |i, _| gx[(i, 0)] - cv[(i, 0)]))
    }
    /// `phi` (`Φ(x)`, the benchmark's `func`) and `inner_distance` (`‖y − y*(x)‖²`).
    fn metrics(
        &self,
        _ev: &mut Evaluator,
        x: MatRef<'_, f64>,
        y: MatRef<'_, f64>,
    ) -> Vec<(&'static str, f64)> {
        let ys = self.y_star_exact(x);
        let d = (0..ys.nrows()).fold(0.0, |s, i| s + (y[(i, 0)] - ys[(i, 0)]).powi(2));
        vec![("phi", self.phi(x)), ("inner_distance", d)]
    }
    /// The constants of the mean matrices: `L_g` and `μ_g` the extreme eigenvalues of `Ā`,
    /// `L_g,xy` the norm of `C̄`; `f`'s and `Φ`'s from their Hessians.
    fn smoothness(&self) -> Option<Smoothness> {
        let eig = |m: &Mat<f64>| {
            bilevel_linalg::sym_eigenvalues(m.as_ref(), Par::Seq)
                .expect("small symmetric eigenvalues")
        };
        let ea = eig(&self.inner.mean.a);
        let c = &self.inner.mean.c;
        let cct = small_matmul(c, &c.transpose().to_owned());
        let c_norm = eig(&cct).last().copied().unwrap_or(0.0).max(0.0).sqrt();
        let ef = eig(&self.outer.mean.a)
            .last()
            .copied()
            .unwrap_or(0.0)
            .max(eig(&self.outer.mean.b).last().copied().unwrap_or(0.0));
        let ephi = eig(&self.hessian_phi()).last().copied().unwrap_or(0.0);
        let l_g = *ea.last().expect("dim y >= 1");
        Some(Smoothness {
            l_g,
            mu_g: Some(ea[0]),
            l_g_xy: Some(l_g.max(c_norm)),
            l_f: Some(ef),
            l_h: None,
            l_phi: Some(ephi),
        })
    }
    fn data_sum(&self) -> Option<&dyn DataSum> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(seed: u64) -> BenchoptQuadratic {
        BenchoptQuadratic::new(
            BenchoptQuadraticConfig {
                n_inner: 64,
                n_outer: 16,
                dim_inner: 6,
                dim_outer: 3,
                ..BenchoptQuadraticConfig::default()
            },
            seed,
        )
    }

    fn col(v: &[f64]) -> Mat<f64> {
        Mat::from_fn(v.len(), 1, |i, _| v[i])
    }

    fn value(
        p: &BenchoptQuadratic,
        lvl: char,
        x: &Mat<f64>,
        y: &Mat<f64>,
        rows: Option<&[usize]>,
    ) -> f64 {
        let mut t = Tape::new();
        let (xv, yv) = (t.input(x.as_ref()), t.input(y.as_ref()));
        let out = match (lvl, rows) {
            ('f', None) => p.f(&mut t, xv, yv),
            ('g', None) => p.g(&mut t, xv, yv),
            ('f', Some(r)) => p.f_batch(&mut t, xv, yv, r),
            (_, Some(r)) => p.g_batch(&mut t, xv, yv, r),
            _ => unreachable!(),
        };
        t.scalar(out)
    }

    /// The means match the samples, and the spectrum of `E Aᵢ` is about `[μ, L]` (64 samples
    /// of a rank-one matrix in dimension 6: within a factor of a few).
    #[test]
    fn the_inner_hessian_is_the_mean_of_the_samples_and_is_positive() {
        let p = small(1);
        let e = bilevel_linalg::sym_eigenvalues(p.inner.mean.a.as_ref(), Par::Seq).unwrap();
        assert!(e[0] > 0.0 && e[5] < 4.0, "{e:?}");
        assert!(p.min_eig_phi() >= 1e-12);
        // g at (x, y) equals the quadratic of the means.
        let (x, y) = (
            col(&[0.3, -1.0, 2.0]),
            col(&[1.0, 0.5, -0.2, 0.1, 0.0, -1.5]),
        );
        let m = &p.inner.mean;
        let q = |a: &Mat<f64>, v: &Mat<f64>| {
            let av = small_matmul(a, v);
            (0..v.nrows()).map(|i| v[(i, 0)] * av[(i, 0)]).sum::<f64>()
        };
        let cy = small_matmul(&m.c, &y);
        let dot =
            |a: &Mat<f64>, b: &Mat<f64>| (0..a.nrows()).map(|i| a[(i, 0)] * b[(i, 0)]).sum::<f64>();
        let expect =
            0.5 * q(&m.a, &y) + 0.5 * q(&m.b, &x) + dot(&x, &cy) + dot(&m.la, &y) + dot(&m.lb, &x);
        let got = value(&p, 'g', &x, &y, None);
        assert!(
            (got - expect).abs() < 1e-12 * expect.abs().max(1.0),
            "{got} vs {expect}"
        );
        // The whole set as a batch is the full objective; a batch is the mean of its samples.
        let all: Vec<usize> = (0..64).collect();
        assert!((value(&p, 'g', &x, &y, Some(&all)) - got).abs() < 1e-12);
        let one = |i: usize| value(&p, 'g', &x, &y, Some(&[i]));
        let pair = value(&p, 'g', &x, &y, Some(&[3, 10]));
        assert!((pair - 0.5 * (one(3) + one(10))).abs() < 1e-12);
    }

    /// The gradients and the Hessian-vector products of the tape match central differences.
    #[test]
    fn gradients_and_hvps_match_finite_differences() {
        let p = small(2);
        let (x, y) = (
            col(&[0.3, -1.0, 2.0]),
            col(&[1.0, 0.5, -0.2, 0.1, 0.0, -1.5]),
        );
        let mut ev = Evaluator::new();
        let h = 1e-5;
        for lvl in ['f', 'g'] {
            let gr = if lvl == 'f' {
                p.grad_f(&mut ev, x.as_ref(), y.as_ref())
            } else {
                p.grad_g(&mut ev, x.as_ref(), y.as_ref())
            };
            for i in 0..3 {
                let (mut xp, mut xm) = (x.clone(), x.clone());
                xp[(i, 0)] += h;
                xm[(i, 0)] -= h;
                let fd =
                    (value(&p, lvl, &xp, &y, None) - value(&p, lvl, &xm, &y, None)) / (2.0 * h);
                assert!(
                    (fd - gr.x[(i, 0)]).abs() < 1e-6,
                    "{lvl} x{i}: {fd} vs {}",
                    gr.x[(i, 0)]
                );
            }
            for i in 0..6 {
                let (mut yp, mut ym) = (y.clone(), y.clone());
                yp[(i, 0)] += h;
                ym[(i, 0)] -= h;
                let fd =
                    (value(&p, lvl, &x, &yp, None) - value(&p, lvl, &x, &ym, None)) / (2.0 * h);
                assert!(
                    (fd - gr.y[(i, 0)]).abs() < 1e-6,
                    "{lvl} y{i}: {fd} vs {}",
                    gr.y[(i, 0)]
                );
            }
        }
        // ∇²ᵧᵧg·v and ∇²ₓᵧg·v against differences of ∇ᵧg along v and of ∇ₓg along y ± h v.
        let v = col(&[0.2, -0.4, 1.0, 0.0, 0.5, -0.3]);
        let yy = p.hvp_yy_g(&mut ev, x.as_ref(), y.as_ref(), v.as_ref());
        let xy = p.jvp_xy_g(&mut ev, x.as_ref(), y.as_ref(), v.as_ref());
        let yp = Mat::from_fn(6, 1, |i, _| y[(i, 0)] + h * v[(i, 0)]);
        let ym = Mat::from_fn(6, 1, |i, _| y[(i, 0)] - h * v[(i, 0)]);
        let gp = p.grad_g(&mut ev, x.as_ref(), yp.as_ref());
        let gm = p.grad_g(&mut ev, x.as_ref(), ym.as_ref());
        for i in 0..6 {
            let fd = (gp.y[(i, 0)] - gm.y[(i, 0)]) / (2.0 * h);
            assert!(
                (fd - yy[(i, 0)]).abs() < 1e-6,
                "hvp_yy {i}: {fd} vs {}",
                yy[(i, 0)]
            );
        }
        for i in 0..3 {
            let fd = (gp.x[(i, 0)] - gm.x[(i, 0)]) / (2.0 * h);
            assert!(
                (fd - xy[(i, 0)]).abs() < 1e-6,
                "jvp_xy {i}: {fd} vs {}",
                xy[(i, 0)]
            );
        }
    }

    /// `y*(x)` zeroes `∇ᵧg`, and the closed-form `∇Φ` matches central differences of the
    /// closed-form `Φ`, and the implicit-function formula on the tape's own oracles.
    #[test]
    fn the_hypergradient_matches_the_closed_form_and_differences_of_phi() {
        let p = small(3);
        let x = col(&[0.3, -1.0, 2.0]);
        let mut ev = Evaluator::new();
        let ys = p.y_star(x.as_ref()).unwrap();
        let g = p.grad_g(&mut ev, x.as_ref(), ys.as_ref());
        assert!((0..6).all(|i| g.y[(i, 0)].abs() < 1e-10), "{:?}", g.y);
        let gp = p.grad_phi(x.as_ref()).unwrap();
        let h = 1e-5;
        for i in 0..3 {
            let (mut xp, mut xm) = (x.clone(), x.clone());
            xp[(i, 0)] += h;
            xm[(i, 0)] -= h;
            let fd = (p.phi(xp.as_ref()) - p.phi(xm.as_ref())) / (2.0 * h);
            assert!(
                (fd - gp[(i, 0)]).abs() < 1e-6,
                "x{i}: {fd} vs {}",
                gp[(i, 0)]
            );
        }
        // Φ is f at y*(x), recorded on the tape.
        let f = value(&p, 'f', &x, &ys, None);
        assert!((f - p.phi(x.as_ref())).abs() < 1e-10);
        // The metrics: Φ and the squared distance to y*.
        let y = Mat::zeros(6, 1);
        let m = p.metrics(&mut ev, x.as_ref(), y.as_ref());
        assert_eq!(m[0].0, "phi");
        let d: f64 = (0..6).map(|i| ys[(i, 0)].powi(2)).sum();
        assert!((m[1].1 - d).abs() < 1e-12);
    }

    #[test]
    fn the_same_seed_draws_the_same_problem_and_another_seed_another() {
        let (a, b, c) = (small(4), small(4), small(5));
        let x = col(&[1.0, 1.0, 1.0]);
        assert_eq!(a.phi(x.as_ref()), b.phi(x.as_ref()));
        assert_ne!(a.phi(x.as_ref()), c.phi(x.as_ref()));
        assert_eq!(a.x0()[(0, 0)], -2.0);
    }
}

use super::{Normal, random_orthogonal, small_matmul};
use crate::problem::{Problem, Smoothness};
use bilevel_ad::{Evaluator, Tape, Var};
use bilevel_linalg::{Mat, MatRef, advise_huge_pages};
use std::sync::{Arc, OnceLock};

/// What the metrics and step-size rules know of `H`: its inverse and extreme singular values.
#[derive(Clone, Debug)]
struct Spectrum {
    h_inv: Mat<f64>,
    /// The smallest and largest singular values of `H`.
    s_min: f64,
    s_max: f64,
}

/// The data shared by [`ScSinCos`] and [`NcCos`]: `c, d ∈ Rⁿ` and `H`, by default
/// `H = U diag(s) Vᵀ` with random orthogonal `U, V` and `s ∈ [1, 10]`, so `cond(H) ≤ 10`.
#[derive(Clone, Debug)]
struct SinCosData {
    n: usize,
    name: String,
    c: Mat<f64>,
    d: Mat<f64>,
    /// `Hᵀ`: the rows of `H` as columns, so that `Hy` streams row block by row block.
    ht: Arc<Mat<f64>>,
    x0: Mat<f64>,
    /// Computed from `H` on first use when `H` was given.
    spectrum: OnceLock<Spectrum>,
}

/// `Hᵀ` as the oracles read it, row by row of `H` (a column of `Hᵀ` each), on huge pages when
/// large (see [`advise_huge_pages`]).
fn stored_ht(h: MatRef<'_, f64>) -> Arc<Mat<f64>> {
    let ht = h.transpose().to_owned();
    advise_huge_pages(ht.as_ref());
    Arc::new(ht)
}

impl SinCosData {
    fn new(n: usize, seed: u64) -> Self {
        assert!(n >= 1, "sin-cos problems need n >= 1");
        let mut rng = Normal::new(seed);
        let c = rng.column(n);
        let d = rng.column(n);
        let u = random_orthogonal(&mut rng, n);
        let v = random_orthogonal(&mut rng, n);
        let s: Vec<f64> = (0..n)
            .map(|i| match i {
                0 => 1.0,
                1 => 10.0,
                _ => 10f64.powf(rng.uniform()),
            })
            .collect();
        let us = Mat::from_fn(n, n, |i, j| u[(i, j)] * s[j]);
        let h = small_matmul(&us, &v.transpose().to_owned());
        let vs = Mat::from_fn(n, n, |i, j| v[(i, j)] / s[j]);
        let h_inv = small_matmul(&vs, &u.transpose().to_owned());
        let x0 = rng.column(n);
        let s_min = s.iter().copied().fold(f64::INFINITY, f64::min);
        let s_max = s.iter().copied().fold(0.0, f64::max);
        let spectrum = OnceLock::from(Spectrum {
            h_inv,
            s_min,
            s_max,
        });
        SinCosData {
            n,
            name: format!("n{n}-s{seed}"),
            c,
            d,
            ht: stored_ht(h.as_ref()),
            x0,
            spectrum,
        }
    }

    /// Given data (see [`ScSinCos::from_parts`]).
    fn from_parts(
        name: &str,
        h: MatRef<'_, f64>,
        c: MatRef<'_, f64>,
        d: MatRef<'_, f64>,
        x0: MatRef<'_, f64>,
    ) -> Self {
        let n = h.nrows();
        assert!(
            n >= 1 && h.ncols() == n,
            "sin-cos problems need a square H, found {}x{}",
            h.nrows(),
            h.ncols()
        );
        for (what, v) in [("c", c), ("d", d), ("x0", x0)] {
            assert!(
                (v.nrows(), v.ncols()) == (n, 1),
                "sin-cos problems: {what} is {}x{}, expected {n}x1",
                v.nrows(),
                v.ncols()
            );
        }
        SinCosData {
            n,
            name: name.to_string(),
            c: c.to_owned(),
            d: d.to_owned(),
            ht: stored_ht(h.as_ref()),
            x0: x0.to_owned(),
            spectrum: OnceLock::new(),
        }
    }

    /// `H⁻¹` and the extreme singular values of `H`, computed once (by a thin SVD) when `H`
    /// was given.
    ///
    /// # Panics
    /// If `H` is singular (its smallest singular value is zero).
    fn spectrum(&self) -> &Spectrum {
        self.spectrum.get_or_init(|| {
            let h = self.ht.transpose();
            let svd = bilevel_linalg::svd_thin(h, bilevel_linalg::Par::Seq)
                .expect("the SVD of H converges");
            let s_max = svd.s.iter().copied().fold(0.0, f64::max);
            let s_min = svd.s.iter().copied().fold(f64::INFINITY, f64::min);
            assert!(s_min > 0.0, "sin-cos problems need an invertible H");
            let h_inv = svd
                .pseudo_inverse(0.0, bilevel_linalg::Par::Seq)
                .expect("the pseudo-inverse of an invertible H exists");
            Spectrum {
                h_inv,
                s_min,
                s_max,
            }
        })
    }

    /// `sin(cᵀx + dᵀy) + log(‖x + y‖² + 1)`.
    fn f(&self, t: &mut Tape, x: Var, y: Var) -> Var {
        let (cv, dv) = (t.constant(self.c.as_ref()), t.constant(self.d.as_ref()));
        let (cx, dy) = (t.dot(cv, x), t.dot(dv, y));
        let s = t.add(cx, dy);
        let s = t.sin(s);
        let xy = t.add(x, y);
        let r = t.sum_sq(xy);
        let r = t.log1p(r);
        t.add(s, r)
    }

    /// `½‖Hy − x‖²`, a sum over the rows of `H` (streamed row block by row block for a large
    /// `H`).
    fn half_residual(&self, t: &mut Tape, x: Var, y: Var) -> Var {
        let ht = t.shared(&self.ht);
        let hy = t.matmul_t(ht, true, y, false);
        let r = t.sub(hy, x);
        let s = t.sum_sq(r);
        t.scale(s, 0.5)
    }

    fn y_star(&self, x: MatRef<'_, f64>) -> Mat<f64> {
        small_matmul(&self.spectrum().h_inv, &x.to_owned())
    }

    /// `L_f ≤ ‖c‖² + ‖d‖² + 4`: the sine term's Hessian is `−sin(·)ppᵀ` with `p = (c, d)`, and
    /// `∇²log(1 + ‖u‖²)` has norm at most 2, doubled by `u = x + y`.
    fn l_f(&self) -> f64 {
        let sq = |m: &Mat<f64>| m.col_as_slice(0).iter().map(|v| v * v).sum::<f64>();
        sq(&self.c) + sq(&self.d) + 4.0
    }
}

/// The strongly convex synthetic problem of "Perturbed Gradient Descent via Convex Quadratic
/// Approximation for Nonconvex Bilevel Optimization" (App. C.1.1):
/// `f = sin(cᵀx + dᵀy) + log(‖x + y‖² + 1)`, `g = ½‖Hy − x‖²`, `x, y ∈ Rⁿ` (n = 20 by default),
/// `c, d` standard normal and `cond(H) ≤ 10`, all from a seed.
///
/// Known exactly: `y*(x) = H⁻¹x`, `∇Φ(x) = ∇ₓf + H⁻ᵀ∇ᵧf` at `(x, y*(x))`, `g* = 0`.
/// Start: `x0` standard normal from the seed, `y0 = 0`.
#[derive(Clone, Debug)]
pub struct ScSinCos {
    data: SinCosData,
}

impl ScSinCos {
    /// The problem in dimension `n = m` with data drawn from `seed`.
    pub fn new(n: usize, seed: u64) -> Self {
        ScSinCos {
            data: SinCosData::new(n, seed),
        }
    }

    /// The problem on given data: an invertible `n × n` matrix `H`, vectors `c, d` and the start
    /// `x0` (all `n × 1`); named `sc-sincos-<name>`. `H⁻¹` and the singular values of `H` that
    /// the metrics and [`Problem::smoothness`] need are computed on first use (a thin SVD,
    /// `O(n³)`).
    ///
    /// # Panics
    /// If `H` is not square or a vector has another length; on first use of the metrics, if `H`
    /// is singular.
    ///
    /// # Example
    /// ```
    /// use bilevel_linalg::Mat;
    /// use bilevel_solvers::{Problem, problems::ScSinCos};
    /// let h = Mat::from_fn(3, 3, |i, j| if i == j { 2.0 } else { 0.1 });
    /// let v = Mat::from_fn(3, 1, |i, _| i as f64);
    /// let p = ScSinCos::from_parts("mine", h.as_ref(), v.as_ref(), v.as_ref(), v.as_ref());
    /// assert_eq!(p.name(), "sc-sincos-mine");
    /// assert!((p.smoothness().unwrap().l_g - 2.2f64.powi(2)).abs() < 1e-12);
    /// ```
    pub fn from_parts(
        name: &str,
        h: MatRef<'_, f64>,
        c: MatRef<'_, f64>,
        d: MatRef<'_, f64>,
        x0: MatRef<'_, f64>,
    ) -> Self {
        ScSinCos {
            data: SinCosData::from_parts(name, h, c, d, x0),
        }
    }
}

impl Default for ScSinCos {
    /// `n = m = 20`, seed 0.
    fn default() -> Self {
        Self::new(20, 0)
    }
}

impl Problem for ScSinCos {
    /// `∇²ᵧᵧg = HᵀH`: `L_g = σ_max(H)²` (100), `μ_g = σ_min(H)²` (1). `∇ᵧg = Hᵀ(Hy − x)` is
    /// linear with `‖[−Hᵀ, HᵀH]‖² = σ_max² + σ_max⁴`, so `L_h = 2(σ_max² + σ_max⁴)` (20,200).
    /// `L_f = ‖c‖² + ‖d‖² + 4`, and `Φ(x) = f(x, H⁻¹x)` has
    /// `∇²Φ = −sin(·)qqᵀ + (I + H⁻¹)ᵀ∇²log(1 + ‖u‖²)(I + H⁻¹)` with `q = c + H⁻ᵀd`, so
    /// `L_Φ = ‖q‖² + 2(1 + 1/σ_min)²`. `L_f` and `L_Φ` depend on the seed.
    fn smoothness(&self) -> Option<Smoothness> {
        let d = &self.data;
        let sp = d.spectrum();
        let q = crate::vecops::lincomb(
            1.0,
            &d.c,
            1.0,
            &small_matmul(&sp.h_inv.transpose().to_owned(), &d.d),
        );
        let (lo, hi) = (sp.s_min, sp.s_max);
        Some(Smoothness {
            l_g: hi * hi,
            mu_g: Some(lo * lo),
            // ∇²g = JᵀJ with J = [−I, H]: ‖JJᵀ‖ = ‖I + HHᵀ‖ = 1 + σ_max².
            l_g_xy: Some(1.0 + hi * hi),
            l_f: Some(d.l_f()),
            l_h: Some(2.0 * (hi * hi + hi.powi(4))),
            l_phi: Some(crate::vecops::norm_sq(&q) + 2.0 * (1.0 + 1.0 / lo).powi(2)),
        })
    }
    fn name(&self) -> String {
        format!("sc-sincos-{}", self.data.name)
    }
    fn dim_x(&self) -> usize {
        self.data.n
    }
    fn dim_y(&self) -> usize {
        self.data.n
    }
    fn x0(&self) -> Mat<f64> {
        self.data.x0.clone()
    }
    fn y0(&self) -> Mat<f64> {
        Mat::zeros(self.data.n, 1)
    }
    fn f(&self, t: &mut Tape, x: Var, y: Var) -> Var {
        self.data.f(t, x, y)
    }
    fn g(&self, t: &mut Tape, x: Var, y: Var) -> Var {
        self.data.half_residual(t, x, y)
    }
    fn y_star(&self, x: MatRef<'_, f64>) -> Option<Mat<f64>> {
        Some(self.data.y_star(x))
    }
    fn grad_phi(&self, x: MatRef<'_, f64>) -> Option<Mat<f64>> {
        let ys = self.data.y_star(x);
        let mut ev = Evaluator::new();
        let (_, gx, gy) = ev.value_and_grad2(|t, x, y| self.data.f(t, x, y), x, ys.as_ref());
        let corr = small_matmul(&self.data.spectrum().h_inv.transpose().to_owned(), &gy);
        Some(crate::vecops::lincomb(1.0, &gx, 1.0, &corr))
    }
    fn g_star(&self, _x: MatRef<'_, f64>) -> Option<f64> {
        Some(0.0)
    }
}

/// The nonconvex-lower-level variant (App. C.1.3 of the perturbed-gradient-descent paper):
/// the same `f` and data as [`ScSinCos`], `g = cos(½‖Hy − x‖²)`.
///
/// `y = H⁻¹x` is a stationary point of `g(x, ·)` but the lower level has other critical points,
/// so no hypergradient is defined; the paper's metric is the search direction `‖Δ‖`, which the
/// PGD-QP solver reports in its trace.
#[derive(Clone, Debug)]
pub struct NcCos {
    data: SinCosData,
}

impl NcCos {
    /// The problem in dimension `n = m` with data drawn from `seed`.
    pub fn new(n: usize, seed: u64) -> Self {
        NcCos {
            data: SinCosData::new(n, seed),
        }
    }
}

impl Default for NcCos {
    /// `n = m = 20`, seed 0.
    fn default() -> Self {
        Self::new(20, 0)
    }
}

impl Problem for NcCos {
    fn name(&self) -> String {
        format!("nc-cos-{}", self.data.name)
    }
    fn dim_x(&self) -> usize {
        self.data.n
    }
    fn dim_y(&self) -> usize {
        self.data.n
    }
    fn x0(&self) -> Mat<f64> {
        self.data.x0.clone()
    }
    fn y0(&self) -> Mat<f64> {
        Mat::zeros(self.data.n, 1)
    }
    fn f(&self, t: &mut Tape, x: Var, y: Var) -> Var {
        self.data.f(t, x, y)
    }
    fn g(&self, t: &mut Tape, x: Var, y: Var) -> Var {
        let r = self.data.half_residual(t, x, y);
        t.cos(r)
    }
    /// Two measures of an iterate `(x, y)`, beside the common metrics:
    ///
    /// - `lower_r`: `r = ½‖Hy − x‖²`, which says what kind of point of `g(x, ·) = cos r` the
    ///   iterate is near. `h = ‖∇ᵧg‖² = sin²r ‖Hᵀ(Hy − x)‖²` vanishes both at `y = H⁻¹x`
    ///   (`r = 0`, where `g = 1` is the global *maximum*) and on the shell `r = π` (mod `2π`)
    ///   of lower-level minimizers (`g = −1`), so `h → 0` alone does not show closeness to a
    ///   lower-level solution.
    /// - `hypergrad_at_y`: `‖F(x, y)‖` of eq. (1a) of the PGD-QP paper at the current `y`,
    ///   `F = ∇ₓf − ∇²ₓᵧg·v` with `∇²ᵧᵧg·v = ∇ᵧf` (eq. (1b)), the measure of its App. C. The
    ///   Hessian is formed from `n` Hessian-vector products and the system solved in the least
    ///   squares sense with minimum norm (it is singular on the shell of minimizers, rank one
    ///   there); `NaN` if that fails.
    fn metrics(
        &self,
        ev: &mut Evaluator,
        x: MatRef<'_, f64>,
        y: MatRef<'_, f64>,
    ) -> Vec<(&'static str, f64)> {
        let r = ev.value2(|t, x, y| self.data.half_residual(t, x, y), x, y);
        let n = self.data.n;
        let mut hess = Mat::<f64>::zeros(n, n);
        for j in 0..n {
            let e = Mat::from_fn(n, 1, |i, _| if i == j { 1.0 } else { 0.0 });
            let (hv, _) = ev.hvp_yy(|t, x, y| self.g(t, x, y), x, y, e.as_ref());
            hess.col_as_slice_mut(j).copy_from_slice(hv.col_as_slice(0));
        }
        let (_, fx, fy) = ev.value_and_grad2(|t, x, y| self.data.f(t, x, y), x, y);
        let f_norm = match bilevel_linalg::lstsq_min_norm(
            hess.as_ref(),
            fy.as_ref(),
            1e-12,
            bilevel_linalg::Par::Seq,
        ) {
            Ok((v, _)) => {
                let mixed = ev.jvp_xy(|t, x, y| self.g(t, x, y), x, y, v.as_ref());
                crate::vecops::norm(&crate::vecops::lincomb(1.0, &fx, -1.0, &mixed))
            }
            Err(_) => f64::NAN,
        };
        vec![("lower_r", r), ("hypergrad_at_y", f_norm)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// At `y = H⁻¹x` the residual `r` is 0 and `g` is at its maximum; on the shell `r = π`
    /// `g` is at its minimum: both have `h = 0`, and `lower_r` tells them apart. On the shell,
    /// with `u = Hy − x = e` and `a = Hᵀe`, `∇²ᵧᵧg = aaᵀ` and `∇²ₓᵧg·v = −e(aᵀv)`, so eq. (1a)
    /// has the closed form `F = ∇ₓf + e(aᵀv)` with the minimum-norm `v = a(aᵀ∇ᵧf)/‖a‖⁴`.
    #[test]
    fn lower_r_tells_the_maximum_from_the_minima() {
        let p = NcCos::new(4, 3);
        let x = p.x0();
        let y_max = p.data.y_star(x.as_ref());
        let mut ev = Evaluator::new();
        let m = p.metrics(&mut ev, x.as_ref(), y_max.as_ref());
        assert_eq!(m[0].0, "lower_r");
        assert!(m[0].1.abs() < 1e-20, "{m:?}");
        // A point of the shell: y = H⁻¹(x + e), ‖e‖² = 2π.
        let mut e = Mat::<f64>::zeros(4, 1);
        e[(0, 0)] = (2.0 * std::f64::consts::PI).sqrt();
        let xe = crate::vecops::lincomb(1.0, &x, 1.0, &e);
        let y_min = p.data.y_star(xe.as_ref());
        let m = p.metrics(&mut ev, x.as_ref(), y_min.as_ref());
        assert!((m[0].1 - std::f64::consts::PI).abs() < 1e-9, "{m:?}");
        let g = ev.value2(|t, x, y| p.g(t, x, y), x.as_ref(), y_min.as_ref());
        assert!((g + 1.0).abs() < 1e-12, "{g}");
        let (_, fx, fy) =
            ev.value_and_grad2(|t, x, y| p.data.f(t, x, y), x.as_ref(), y_min.as_ref());
        let h = p.data.ht.transpose().to_owned();
        let a = small_matmul(&h.transpose().to_owned(), &e); // Hᵀe
        let aa: f64 = a.col_as_slice(0).iter().map(|v| v * v).sum();
        let afy: f64 = a
            .col_as_slice(0)
            .iter()
            .zip(fy.col_as_slice(0))
            .map(|(p, q)| p * q)
            .sum();
        let v = crate::vecops::lincomb(afy / (aa * aa), &a, 0.0, &a);
        let av: f64 = a
            .col_as_slice(0)
            .iter()
            .zip(v.col_as_slice(0))
            .map(|(p, q)| p * q)
            .sum();
        let want = crate::vecops::lincomb(1.0, &fx, av, &e);
        assert!(
            (m[1].1 - crate::vecops::norm(&want)).abs() < 1e-8 * (1.0 + m[1].1),
            "{m:?} vs {}",
            crate::vecops::norm(&want)
        );
    }
}

//! Stationarity measures evaluated along a run, outside the solver's oracle budget.

use crate::algorithms::KktMultiplier;
use crate::error::Error;
use crate::linear::cg;
use crate::named::{Named, named};
use crate::problem::Problem;
use crate::solver::{Iterate, Solver};
use crate::vecops::{dot, lincomb, norm, norm_sq, scale};
use bilevel_ad::Evaluator;
use bilevel_linalg::{CgStart, CgWorkspace, Mat, MatMut, MatRef};
use serde::{Deserialize, Serialize};

/// The measures computed at one iterate; `None` where the problem or solver does not provide
/// what the measure needs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// `f(x, y)`.
    pub f: Option<f64>,
    /// `g(x, y)`.
    pub g: Option<f64>,
    /// `h(x, y) = ‖∇ᵧg(x, y)‖²`.
    pub h: Option<f64>,
    /// `‖∇Φ(x)‖`: exact where the problem knows `∇Φ`; where it only knows `y*(x)`, from the
    /// implicit-function formula `∇ₓf − ∇²ₓᵧg·v` with `∇²ᵧᵧg·v = ∇ᵧf` solved at `y*(x)` by
    /// conjugate gradient to relative residual `1e-13`.
    pub grad_phi_norm: Option<f64>,
    /// The ε-KKT residual of Definition 2.4 in "Perturbed Gradient Descent via Convex Quadratic
    /// Approximation for Nonconvex Bilevel Optimization":
    /// `max(‖∇ᵧg‖², ‖∇ₓf + ∇²ₓᵧg·ν‖², ‖∇ᵧf + ∇²ᵧᵧg·ν‖²)` with `ν = 2λ∇ᵧg`, where `λ` is the
    /// solver's multiplier rule (eq. (8b), [`KktMultiplier`]) evaluated at the same point as
    /// everything else. The factor 2 comes from that paper's Remark 3.1
    /// (`∇h = 2[∇²ᵧₓg ∇²ᵧᵧg]ᵀ∇ᵧg`), the index from its eq. (8b) and the proof of Corollary 4.3
    /// in its Appendix A, which needs `‖∇f + [∇²ᵧₓg ∇²ᵧᵧg]ᵀν_t‖² = ‖Δ_t‖²` at `(x_t, y_t)`; the
    /// corollary's printed `ν_k = λ_k∇ᵧg` would leave `¼‖∇f‖²` where `Δ = 0`. So the last two
    /// terms are `‖Δˣ‖²` and `‖Δʸ‖²` of eq. (8a) at the point, and cost one `∇h` (1 Gc + 1 MV,
    /// uncounted) per evaluation.
    pub kkt: Option<f64>,
    /// GALET's `R_x = ‖∇ₓf + ∇²ₓᵧg·w‖²` (eq. (8a) of "A Generalized Alternating Method for
    /// Bilevel Optimization under the Polyak-Łojasiewicz Condition"), with the solver's shadow
    /// `w` ([`Solver::shadow`]) or, on a problem that opts in ([`Problem::stationarity`]) and a
    /// solver without one, the `w` of [`shadow_by_cg`].
    pub galet_rx: Option<f64>,
    /// GALET's `R_w = ‖∇²ᵧᵧg(∇ᵧf + ∇²ᵧᵧg·w)‖²` (eq. (8b)), with the `w` of
    /// [`Metrics::galet_rx`].
    pub galet_rw: Option<f64>,
    /// GALET's `R_y = g − g*(x)` (eq. (8c)), where `g*` is known ([`Problem::g_star`]) or, on a
    /// problem that opts in ([`Problem::stationarity`]), from [`lower_solution`].
    pub galet_ry: Option<f64>,
    /// The value-function KKT score of eq. (47) of the GALET paper:
    /// `‖∇ₓf‖² + ‖∇ᵧf‖² + (g − g*(x))`, where `g*` is known.
    pub vf_kkt: Option<f64>,
    /// The problem's optimality gap (see each problem's documentation).
    pub opt_gap: Option<f64>,
    /// The problem's own measures ([`Problem::metrics`]), in its order.
    #[serde(default, with = "crate::named::named_serde")]
    pub extra: Named,
}

impl Metrics {
    /// Column names, in the order of [`Metrics::values`].
    pub const NAMES: [&'static str; 10] = [
        "f",
        "g",
        "h",
        "grad_phi_norm",
        "kkt",
        "galet_rx",
        "galet_rw",
        "galet_ry",
        "vf_kkt",
        "opt_gap",
    ];

    /// The extra measure named `name` ([`Metrics::extra`]).
    pub fn extra(&self, name: &str) -> Option<f64> {
        self.extra.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
    }

    /// The measures in the order of [`Metrics::NAMES`].
    pub fn values(&self) -> [Option<f64>; 10] {
        [
            self.f,
            self.g,
            self.h,
            self.grad_phi_norm,
            self.kkt,
            self.galet_rx,
            self.galet_rw,
            self.galet_ry,
            self.vf_kkt,
            self.opt_gap,
        ]
    }
}

/// A stationarity measure among the [`Metrics`] (what a [`Tolerance`](crate::Tolerance) applies
/// to).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Measure {
    /// `‖∇Φ(x)‖²` ([`Metrics::grad_phi_norm`] squared).
    GradPhiSq,
    /// The problem's optimality gap ([`Metrics::opt_gap`]).
    OptimalityGap,
    /// `R_x + R_w + R_y`, GALET's stationarity measure.
    GaletResidual,
    /// The ε-KKT residual ([`Metrics::kkt`]).
    Kkt,
}

impl Measure {
    /// The measure's value in `m`, if available.
    pub fn of(self, m: &Metrics) -> Option<f64> {
        match self {
            Measure::GradPhiSq => m.grad_phi_norm.map(|v| v * v),
            Measure::OptimalityGap => m.opt_gap,
            Measure::GaletResidual => Some(m.galet_rx? + m.galet_rw? + m.galet_ry?),
            Measure::Kkt => m.kkt,
        }
    }
}

/// The exact hypergradient `∇Φ(x)` when the problem knows it, else by the implicit-function
/// formula at a known `y*(x)` (see [`Metrics::grad_phi_norm`]); `Ok(None)` when the problem knows
/// neither. The CG vectors live in `ws` (resized to `dim_y` if needed), so repeated calls
/// allocate nothing for the solve.
///
/// # Errors
/// [`Error::LinearSolve`] if CG fails at `y*(x)` (e.g. `∇²ᵧᵧg` is not positive definite there);
/// a solve that stops at its cap of `10m + 10` products is still used.
pub fn exact_grad_phi(
    p: &dyn Problem,
    ev: &mut Evaluator,
    ws: &mut CgWorkspace,
    x: &Mat<f64>,
) -> Result<Option<Mat<f64>>, Error> {
    if let Some(g) = p.grad_phi(x.as_ref()) {
        return Ok(Some(g));
    }
    let Some(ys) = p.y_star(x.as_ref()) else {
        return Ok(None);
    };
    let gf = p.grad_f(ev, x.as_ref(), ys.as_ref());
    let m = ys.nrows();
    let mut v = Mat::zeros(m, 1);
    let mut op = |u: MatRef<'_, f64>, mut out: MatMut<'_, f64>| {
        out.copy_from(&p.hvp_yy_g(ev, x.as_ref(), ys.as_ref(), u));
    };
    cg(
        &mut op,
        gf.y.as_ref(),
        v.as_mut(),
        CgStart::Zero,
        10 * m + 10,
        1e-13,
        ws,
    )?;
    let jv = p.jvp_xy_g(ev, x.as_ref(), ys.as_ref(), v.as_ref());
    Ok(Some(lincomb(1.0, &gf.x, -1.0, &jv)))
}

/// How the metrics compute GALET's stationarity measure on a problem whose lower level is
/// `μ`-strongly convex in `y` and knows no closed form ([`Problem::stationarity`]): `g*(x)` by
/// [`lower_solution`] and, for a solver without a shadow `w`, `w` by [`shadow_by_cg`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InnerSolve {
    /// A lower bound `μ > 0` on the strong convexity modulus of `g(x, ·)`, for every `x`.
    pub mu: f64,
    /// Newton–CG stops at `‖∇ᵧg(x, ŷ)‖ ≤ grad_tol`; by strong convexity then
    /// `0 ≤ g(x, ŷ) − g*(x) ≤ grad_tol² / (2μ)` ([`InnerSolve::value_error`]).
    pub grad_tol: f64,
}

impl InnerSolve {
    /// The bound `grad_tol² / (2μ)` on `g(x, ŷ) − g*(x)` at the end of a converged solve, from
    /// `g(x, ŷ) − g* ≤ ‖∇ᵧg(x, ŷ)‖² / (2μ)` (strong convexity).
    pub fn value_error(&self) -> f64 {
        self.grad_tol * self.grad_tol / (2.0 * self.mu)
    }
}

/// The most Newton steps [`lower_solution`] takes.
pub const NEWTON_MAX_STEPS: usize = 100;
/// The most Hessian-vector products of one Newton step's CG solve (a capped solve's iterate is
/// still a descent direction, since CG from zero on a positive definite system gives one).
pub const NEWTON_CG_MAX_PRODUCTS: usize = 2000;
/// The relative residual [`shadow_by_cg`] solves to.
pub const SHADOW_CG_REL_TOL: f64 = 1e-10;

/// A minimizer `ŷ` of the strongly convex `g(x, ·)` and its value `g(x, ŷ)`, by Newton–CG from
/// `y` (in practice the iterate, close to `y*(x)` for the methods that track it): each step
/// solves `∇²ᵧᵧg·d = −∇ᵧg` by CG to relative residual `min(½, √‖∇ᵧg‖)` (an inexact Newton
/// method with superlinear convergence, at most [`NEWTON_CG_MAX_PRODUCTS`] products) and
/// backtracks on `g` from the full step (Armijo, factor ½, slope 10⁻⁴), until
/// `‖∇ᵧg(x, ŷ)‖ ≤ grad_tol`. `Ok(None)` when [`NEWTON_MAX_STEPS`] steps or the line search
/// cannot reach it (the metric is then left out).
///
/// # Errors
/// [`Error::LinearSolve`] if a CG solve fails (the Hessian is not positive definite there).
pub fn lower_solution(
    p: &dyn Problem,
    ev: &mut Evaluator,
    ws: &mut CgWorkspace,
    x: MatRef<'_, f64>,
    y: MatRef<'_, f64>,
    solve: InnerSolve,
) -> Result<Option<(Mat<f64>, f64)>, Error> {
    let mut y = y.to_owned();
    let m = y.nrows();
    let mut d = Mat::zeros(m, 1);
    for _ in 0..NEWTON_MAX_STEPS {
        let gg = p.grad_g(ev, x, y.as_ref());
        let gnorm = norm(&gg.y);
        if gnorm <= solve.grad_tol {
            return Ok(Some((y, gg.value)));
        }
        let mut b = gg.y.clone();
        scale(&mut b, -1.0);
        let mut op = |u: MatRef<'_, f64>, mut out: MatMut<'_, f64>| {
            out.copy_from(&p.hvp_yy_g(ev, x, y.as_ref(), u));
        };
        cg(
            &mut op,
            b.as_ref(),
            d.as_mut(),
            CgStart::Zero,
            NEWTON_CG_MAX_PRODUCTS,
            gnorm.sqrt().min(0.5),
            ws,
        )?;
        let slope = dot(&gg.y, &d);
        let mut t = 1.0;
        let next = loop {
            let cand = lincomb(1.0, &y, t, &d);
            if p.value_g(ev, x, cand.as_ref()) <= gg.value + 1e-4 * t * slope {
                break Some(cand);
            }
            t *= 0.5;
            if t < 1e-12 {
                break None;
            }
        };
        match next {
            Some(c) => y = c,
            None => return Ok(None),
        }
    }
    Ok(None)
}

/// The `w` that minimizes `‖∇ᵧf + ∇²ᵧᵧg·w‖` at `(x, y)` for a solver that keeps no shadow
/// implicit gradient: the solution of `∇²ᵧᵧg·w = −∇ᵧf` (`grad_f_y`) by CG to relative residual
/// [`SHADOW_CG_REL_TOL`] (at most `10m + 10` products), so that `R_w ≈ 0` and `R_x` is the
/// squared norm of the implicit-function hypergradient at the iterate's `y`. Definition 3 asks
/// for *some* `w` with every residual small, so any `w` gives an upper bound of the best.
///
/// # Errors
/// [`Error::LinearSolve`] if CG fails (`∇²ᵧᵧg` is not positive definite at `(x, y)`).
pub fn shadow_by_cg(
    p: &dyn Problem,
    ev: &mut Evaluator,
    ws: &mut CgWorkspace,
    x: MatRef<'_, f64>,
    y: MatRef<'_, f64>,
    grad_f_y: &Mat<f64>,
) -> Result<Mat<f64>, Error> {
    let m = y.nrows();
    let mut b = grad_f_y.clone();
    scale(&mut b, -1.0);
    let mut w = Mat::zeros(m, 1);
    let mut op = |u: MatRef<'_, f64>, mut out: MatMut<'_, f64>| {
        out.copy_from(&p.hvp_yy_g(ev, x, y, u));
    };
    cg(
        &mut op,
        b.as_ref(),
        w.as_mut(),
        CgStart::Zero,
        10 * m + 10,
        SHADOW_CG_REL_TOL,
        ws,
    )?;
    Ok(w)
}

/// What the solver-specific metrics need from a solver's state: the PGD-QP multiplier rule (for
/// the ε-KKT residual) and GALET's shadow implicit gradient (for its residuals). Empty, the other
/// metrics are still evaluated.
#[derive(Clone, Copy, Debug, Default)]
pub struct Hints<'a> {
    /// [`Solver::kkt_multiplier`].
    pub kkt_multiplier: Option<KktMultiplier>,
    /// [`Solver::shadow`].
    pub shadow: Option<&'a Mat<f64>>,
}

impl<'a> Hints<'a> {
    /// What `solver` exposes.
    pub fn of(solver: &'a dyn Solver) -> Self {
        Hints {
            kkt_multiplier: solver.kkt_multiplier(),
            shadow: solver.shadow(),
        }
    }
}

/// Evaluates [`Metrics`] with its own (uncounted) AD evaluator.
///
/// # Example: `‖∇Φ‖` at a point, without a solver
/// ```
/// use bilevel_solvers::problems::QuadraticKappa;
/// use bilevel_solvers::{MetricEvaluator, Problem};
///
/// let p = QuadraticKappa::new(10.0, 2);
/// let g = MetricEvaluator::new().grad_phi_norm(&p, &p.x0()).unwrap();
/// assert!(g > 0.0);
/// ```
#[derive(Debug)]
pub struct MetricEvaluator {
    ev: Evaluator,
    ws: CgWorkspace,
}

impl Default for MetricEvaluator {
    fn default() -> Self {
        Self::new()
    }
}

impl MetricEvaluator {
    /// A fresh evaluator.
    pub fn new() -> Self {
        MetricEvaluator {
            ev: Evaluator::new(),
            ws: CgWorkspace::new(0),
        }
    }

    /// `‖∇Φ(x)‖` (see [`Metrics::grad_phi_norm`]); `None` when the problem knows neither
    /// `∇Φ` nor `y*(x)`, or the linear solve fails.
    pub fn grad_phi_norm(&mut self, p: &dyn Problem, x: &Mat<f64>) -> Option<f64> {
        exact_grad_phi(p, &mut self.ev, &mut self.ws, x)
            .ok()
            .flatten()
            .map(|g| norm(&g))
    }

    /// All measures at `it`, using what `p` knows and what `hints` gives of the solver's state.
    pub fn evaluate(&mut self, p: &dyn Problem, it: &Iterate, hints: Hints<'_>) -> Metrics {
        let grad_phi_norm = self.grad_phi_norm(p, &it.x);
        let ev = &mut self.ev;
        let (x, y) = (it.x.as_ref(), it.y.as_ref());
        let gf = p.grad_f(ev, x, y);
        let gg = p.grad_g(ev, x, y);
        let h = norm_sq(&gg.y);
        let inner = p.stationarity();
        // A failed or unconverged inner solve leaves R_y (and the value-function score) out.
        let g_star = match (p.g_star(x), inner) {
            (Some(gs), _) => Some(gs),
            (None, Some(s)) => lower_solution(p, ev, &mut self.ws, x, y, s)
                .ok()
                .flatten()
                // g* ≤ g(x, y) by definition; ŷ may be worse than y by rounding.
                .map(|(_, gs)| gs.min(gg.value)),
            (None, None) => None,
        };
        let mut m = Metrics {
            f: Some(gf.value),
            g: Some(gg.value),
            h: Some(h),
            // A failed solve (Hessian not positive definite at y*(x)) leaves the measure out.
            grad_phi_norm,
            opt_gap: p.optimality_gap(x, y),
            extra: named(p.metrics(ev, x, y)),
            ..Metrics::default()
        };
        if let Some(gs) = g_star {
            m.galet_ry = Some(gg.value - gs);
            m.vf_kkt = Some(norm_sq(&gf.x) + norm_sq(&gf.y) + (gg.value - gs));
        }
        if let Some(rule) = hints.kkt_multiplier {
            // λ at this point; with ν = 2λ∇ᵧg, [∇²ₓᵧg; ∇²ᵧᵧg]·ν = λ∇h (Remark 3.1).
            let gh = p.grad_h(ev, x, y);
            let lambda = rule.lambda(&gf, &gh);
            let rx = norm_sq(&lincomb(1.0, &gf.x, lambda, &gh.x));
            let ry = norm_sq(&lincomb(1.0, &gf.y, lambda, &gh.y));
            m.kkt = Some(h.max(rx).max(ry));
        }
        let solved;
        let w = match (hints.shadow, inner) {
            (Some(w), _) => Some(w),
            (None, Some(_)) => {
                solved = shadow_by_cg(p, ev, &mut self.ws, x, y, &gf.y).ok();
                solved.as_ref()
            }
            (None, None) => None,
        };
        if let Some(w) = w {
            let c = p.hvp_g(ev, x, y, w.as_ref());
            m.galet_rx = Some(norm_sq(&lincomb(1.0, &gf.x, 1.0, &c.xy)));
            let r = lincomb(1.0, &gf.y, 1.0, &c.yy);
            m.galet_rw = Some(norm_sq(&p.hvp_yy_g(ev, x, y, r.as_ref())));
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Oracle;
    use crate::algorithms::{PgdQp, PgdQpParams, Rho};
    use crate::problems::QuadraticKappa;

    /// The x- and y-parts of the ε-KKT residual with multiplier `ν = c·λ∇ᵧg` at `(x, y)`.
    fn kkt_parts(p: &dyn Problem, x: &Mat<f64>, y: &Mat<f64>, lambda: f64, c: f64) -> (f64, f64) {
        let mut ev = Evaluator::new();
        let gf = p.grad_f(&mut ev, x.as_ref(), y.as_ref());
        let mut nu = p.grad_g(&mut ev, x.as_ref(), y.as_ref()).y;
        crate::vecops::scale(&mut nu, c * lambda);
        let j = p.hvp_g(&mut ev, x.as_ref(), y.as_ref(), nu.as_ref());
        (
            norm_sq(&lincomb(1.0, &gf.x, 1.0, &j.xy)),
            norm_sq(&lincomb(1.0, &gf.y, 1.0, &j.yy)),
        )
    }

    /// At a KKT point `(x*, y*, ν*)` of the gradient reformulation of quadratic-κ (`x*` the
    /// minimizer of `Φ`, `y* = y*(x*)`, `ν* = −(∇²ᵧᵧg)⁻¹∇ᵧf`), approached along
    /// `y_t = y* + t(∇²ᵧᵧg)⁻¹ν*` (so that `∇ᵧg = tν*`), PGD-QP's `λ` of eq. (8b) is
    /// `1/(2t) + α`, and `ν = 2λ∇ᵧg → ν*`: the residual vanishes like `t²`. The printed
    /// `ν = λ∇ᵧg` tends to `ν*/2` and leaves `¼‖∇f‖²`.
    #[test]
    fn kkt_residual_vanishes_at_a_kkt_point() {
        let p = QuadraticKappa::new(10.0, 2);
        let mut ev = Evaluator::new();
        let xs = p.x_star();
        let ys = p.y_star(xs.as_ref()).unwrap();
        let gf = p.grad_f(&mut ev, xs.as_ref(), ys.as_ref());
        // ∇²ᵧᵧg is diagonal here: its entries from products with the unit vectors.
        let diag: Vec<f64> = (0..2)
            .map(|i| {
                let e = Mat::from_fn(2, 1, |r, _| if r == i { 1.0 } else { 0.0 });
                p.hvp_yy_g(&mut ev, xs.as_ref(), ys.as_ref(), e.as_ref())[(i, 0)]
            })
            .collect();
        let nu_star = Mat::from_fn(2, 1, |i, _| -gf.y[(i, 0)] / diag[i]);
        // The KKT conditions hold at (x*, y*, ν*) to rounding.
        let j = p.hvp_g(&mut ev, xs.as_ref(), ys.as_ref(), nu_star.as_ref());
        assert!(norm_sq(&lincomb(1.0, &gf.x, 1.0, &j.xy)) < 1e-28);
        assert!(norm_sq(&lincomb(1.0, &gf.y, 1.0, &j.yy)) < 1e-28);
        let f2 = norm_sq(&gf.x) + norm_sq(&gf.y);
        let rule = KktMultiplier {
            alpha: 0.5,
            rho: Rho::GradNormSq,
            h0: 0.0,
        };
        let hints = Hints {
            kkt_multiplier: Some(rule),
            shadow: None,
        };
        let mut mev = MetricEvaluator::new();
        let mut last = f64::INFINITY;
        for t in [1e-2, 1e-4, 1e-6, 1e-8] {
            let y = Mat::from_fn(2, 1, |i, _| ys[(i, 0)] + t * nu_star[(i, 0)] / diag[i]);
            let it = Iterate { x: xs.clone(), y };
            let kkt = mev.evaluate(&p, &it, hints).kkt.unwrap();
            let gh = p.grad_h(&mut ev, xs.as_ref(), it.y.as_ref());
            let gft = p.grad_f(&mut ev, xs.as_ref(), it.y.as_ref());
            let lambda = rule.lambda(&gft, &gh);
            assert!(
                (lambda * t - (0.5 + 0.5 * t)).abs() < 1e-6,
                "λ = {lambda} at t = {t}"
            );
            // ∇f does not depend on y here, and ∇h = 2[∇²ᵧₓg ∇²ᵧᵧg]ᵀ(tν*) = −2t∇f. The printed
            // multiplier ν = λ∇ᵧg at the same point leaves ‖∇f + ½λ∇h‖² = (½ − αt)²‖∇f‖²,
            // about a quarter of ‖∇f‖², however close the point is.
            let (ox, oy) = kkt_parts(&p, &xs, &it.y, lambda, 1.0);
            let old = (0.5 - 0.5 * t).powi(2) * f2;
            assert!((ox + oy - old).abs() < 1e-6 * f2, "{ox} + {oy} vs {old}");
            // ν = 2λ∇ᵧg: the parts are ‖∇f + λ∇h‖² = (2αt)²‖∇f‖² = t²‖∇f‖² and h = t²‖ν*‖².
            let (nx, ny) = kkt_parts(&p, &xs, &it.y, lambda, 2.0);
            let h = h_at(&p, &xs, &it.y);
            assert!((kkt - h.max(nx).max(ny)).abs() <= 1e-9 * kkt + 1e-30);
            let bound = t * t * f2.max(norm_sq(&nu_star));
            // (Up to rounding: ∇f + λ∇h cancels terms of order 1 to leave one of order t.)
            assert!(kkt <= 1.01 * bound + 1e-15, "kkt = {kkt} at t = {t}");
            assert!(kkt < last);
            last = kkt;
        }
        assert!(last < 1e-15, "{last}");
    }

    fn h_at(p: &dyn Problem, x: &Mat<f64>, y: &Mat<f64>) -> f64 {
        norm_sq(&p.grad_g(&mut Evaluator::new(), x.as_ref(), y.as_ref()).y)
    }

    /// Along a PGD-QP run, the residual at each iterate uses the multiplier of that iterate: the
    /// `λ` the next step computes there (its `lambda` scalar), so that the x- and y-parts are
    /// that step's `‖Δˣ‖²` and `‖Δʸ‖²`, with `ν = 2λ∇ᵧg`.
    #[test]
    fn kkt_residual_takes_the_multiplier_of_the_point() {
        let p = QuadraticKappa::new(10.0, 2);
        let l = p.l();
        for params in [
            PgdQpParams::theorem_4_2_max_step(0.3, l, 4.0 * l * l),
            PgdQpParams {
                warm_start_step: 1.0 / l,
                ..PgdQpParams::corollary_4_6(1000, l)
            },
        ] {
            let mut s = PgdQp::new(params).unwrap();
            let mut o = Oracle::new(&p);
            let mut it = Iterate {
                x: p.x0(),
                y: p.y0(),
            };
            s.init(&mut o, &mut it).unwrap();
            let mut mev = MetricEvaluator::new();
            for k in 0..30 {
                let kkt = mev.evaluate(&p, &it, Hints::of(&s)).kkt.unwrap();
                let at = it.clone();
                let scalars = s.step(&mut o, &mut it, k);
                let lambda = scalars.iter().find(|(n, _)| *n == "lambda").unwrap().1;
                let delta = scalars.iter().find(|(n, _)| *n == "delta_norm").unwrap().1;
                let (rx, ry) = kkt_parts(&p, &at.x, &at.y, lambda, 2.0);
                let want = h_at(&p, &at.x, &at.y).max(rx).max(ry);
                assert!(
                    (kkt - want).abs() <= 1e-9 * want,
                    "k = {k}: {kkt} vs {want}"
                );
                // The x- and y-parts add up to ‖Δ‖² at the point (the identity of Appendix A).
                assert!(
                    (rx + ry - delta * delta).abs() <= 1e-9 * delta * delta,
                    "k = {k}"
                );
            }
        }
    }

    /// Quadratic-κ without its closed forms, opting in to the computed stationarity measure.
    #[derive(Debug)]
    struct Opaque(QuadraticKappa);

    impl Problem for Opaque {
        fn name(&self) -> String {
            self.0.name()
        }
        fn dim_x(&self) -> usize {
            self.0.dim_x()
        }
        fn dim_y(&self) -> usize {
            self.0.dim_y()
        }
        fn x0(&self) -> Mat<f64> {
            self.0.x0()
        }
        fn y0(&self) -> Mat<f64> {
            self.0.y0()
        }
        fn f(
            &self,
            t: &mut bilevel_ad::Tape,
            x: bilevel_ad::Var,
            y: bilevel_ad::Var,
        ) -> bilevel_ad::Var {
            self.0.f(t, x, y)
        }
        fn g(
            &self,
            t: &mut bilevel_ad::Tape,
            x: bilevel_ad::Var,
            y: bilevel_ad::Var,
        ) -> bilevel_ad::Var {
            self.0.g(t, x, y)
        }
        fn stationarity(&self) -> Option<InnerSolve> {
            Some(InnerSolve {
                mu: self.0.mu(),
                grad_tol: 1e-10,
            })
        }
    }

    /// On quadratic-κ, `w* = −Z⁻¹∇ᵧf = −0.1 Z⁻¹1` for every `(x, y)` and `∇²ₓᵧg = −L I`, so the
    /// computed measure must give `R_x = ‖Zx + 0.1 L Z⁻¹1‖² = ‖∇Φ(x)‖²`, `R_w ≈ 0` and
    /// `R_y = g(x, y) − g*(x)` with the closed-form `g*`; at `(x*, y*(x*))` all three vanish.
    #[test]
    fn computed_stationarity_matches_the_closed_form_and_vanishes_at_the_solution() {
        let q = QuadraticKappa::new(50.0, 6);
        let p = Opaque(q.clone());
        let mut mev = MetricEvaluator::new();
        let none = Hints::default();
        // Without the opt-in, nothing is computed on a problem without closed forms.
        let plain = MetricEvaluator::new().evaluate(
            &Opaque(q.clone()).0,
            &Iterate {
                x: q.x0(),
                y: q.y0(),
            },
            none,
        );
        assert!(plain.galet_rx.is_none());
        for (x, y) in [
            (q.x0(), q.y0()),
            (
                Mat::from_fn(6, 1, |i, _| 0.3 * i as f64 - 1.0),
                Mat::from_fn(6, 1, |i, _| (i as f64).sin()),
            ),
        ] {
            let it = Iterate {
                x: x.clone(),
                y: y.clone(),
            };
            let m = mev.evaluate(&p, &it, none);
            let gphi = norm_sq(&q.grad_phi(x.as_ref()).unwrap());
            let rx = m.galet_rx.unwrap();
            assert!((rx - gphi).abs() <= 1e-8 * gphi, "R_x {rx} vs {gphi}");
            assert!(
                m.galet_rw.unwrap() <= 1e-12 * gphi.max(1.0),
                "{:?}",
                m.galet_rw
            );
            let g = m.g.unwrap();
            let ry_exact = g - q.g_star(x.as_ref()).unwrap();
            let ry = m.galet_ry.unwrap();
            assert!(
                (ry - ry_exact).abs() <= 1e-9 * g.abs().max(1.0),
                "R_y {ry} vs {ry_exact}"
            );
            assert!(ry_exact > 1e-3);
        }
        let xs = q.x_star();
        let ys = q.y_star(xs.as_ref()).unwrap();
        let m = mev.evaluate(&p, &Iterate { x: xs, y: ys }, none);
        let total = Measure::GaletResidual.of(&m).unwrap();
        assert!(total < 1e-12, "measure at the solution: {total}");
    }

    /// Newton–CG from a far start reaches its gradient tolerance and the closed-form `g*`.
    #[test]
    fn lower_solution_stops_at_its_gradient_tolerance() {
        let q = QuadraticKappa::new(1e3, 5);
        let s = InnerSolve {
            mu: q.mu(),
            grad_tol: 1e-9,
        };
        let x = q.x0();
        let y = Mat::from_fn(5, 1, |i, _| 100.0 * (i as f64 + 1.0));
        let mut ev = Evaluator::new();
        let mut ws = CgWorkspace::new(0);
        let (ys, gs) = lower_solution(&q, &mut ev, &mut ws, x.as_ref(), y.as_ref(), s)
            .unwrap()
            .unwrap();
        assert!(norm(&q.grad_g(&mut ev, x.as_ref(), ys.as_ref()).y) <= 1e-9);
        let exact = q.g_star(x.as_ref()).unwrap();
        assert!(
            (gs - exact).abs() <= 1e-9 * exact.abs().max(1.0),
            "{gs} vs {exact}"
        );
        assert!(s.value_error() > 0.0 && s.value_error() < 1e-16);
    }
}

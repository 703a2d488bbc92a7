//! Stationarity measures evaluated along a run, outside the solver's oracle budget.

use crate::error::Error;
use crate::linear::cg;
use crate::named::{Named, named};
use crate::problem::Problem;
use crate::solver::{Iterate, Solver};
use crate::vecops::{lincomb, norm, norm_sq};
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
    /// Approximation for Nonconvex Bilevel Optimization", with `ν = λ∇ᵧg` from the solver's
    /// multiplier: `max(‖∇ᵧg‖², ‖∇ₓf + ∇²ₓᵧg·ν‖², ‖∇ᵧf + ∇²ᵧᵧg·ν‖²)`.
    pub kkt: Option<f64>,
    /// GALET's `R_x = ‖∇ₓf + ∇²ₓᵧg·w‖²` (eq. (8a) of "A Generalized Alternating Method for
    /// Bilevel Optimization under the Polyak-Łojasiewicz Condition").
    pub galet_rx: Option<f64>,
    /// GALET's `R_w = ‖∇²ᵧᵧg(∇ᵧf + ∇²ᵧᵧg·w)‖²` (eq. (8b)).
    pub galet_rw: Option<f64>,
    /// GALET's `R_y = g − g*(x)` (eq. (8c)), where `g*` is known.
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

/// What the solver-specific metrics need from a solver's state: the PGD-QP multiplier (for the
/// ε-KKT residual) and GALET's shadow implicit gradient (for its residuals). Empty, the other
/// metrics are still evaluated.
#[derive(Clone, Copy, Debug, Default)]
pub struct Hints<'a> {
    /// [`Solver::kkt_multiplier`].
    pub kkt_multiplier: Option<f64>,
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
        let g_star = p.g_star(x);
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
        if let Some(lambda) = hints.kkt_multiplier {
            let mut nu = gg.y.clone();
            crate::vecops::scale(&mut nu, lambda);
            let c = p.hvp_g(ev, x, y, nu.as_ref());
            let rx = norm_sq(&lincomb(1.0, &gf.x, 1.0, &c.xy));
            let ry = norm_sq(&lincomb(1.0, &gf.y, 1.0, &c.yy));
            m.kkt = Some(h.max(rx).max(ry));
        }
        if let Some(w) = hints.shadow {
            let c = p.hvp_g(ev, x, y, w.as_ref());
            m.galet_rx = Some(norm_sq(&lincomb(1.0, &gf.x, 1.0, &c.xy)));
            let r = lincomb(1.0, &gf.y, 1.0, &c.yy);
            m.galet_rw = Some(norm_sq(&p.hvp_yy_g(ev, x, y, r.as_ref())));
        }
        m
    }
}

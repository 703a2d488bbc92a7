//! The bilevel problem abstraction: `min_x f(x, y)` subject to `y ∈ argmin_y g(x, y)`.
//!
//! A problem writes `f` and `g` once over the automatic differentiation [`Tape`]. Every oracle the
//! algorithms use is a default method computed by one AD pass (fused where one pass gives two
//! products); a problem may override any of them with a hand-written version. Optional knowledge
//! (closed-form `y*(x)`, exact `∇Φ(x)`, `g*(x)`, an optimality gap) feeds the metrics only.
//!
//! Solvers never call these methods directly: they go through [`Oracle`](crate::Oracle), which
//! counts every call.

use bilevel_ad::{Evaluator, Tape, Var};
use bilevel_linalg::{Mat, MatRef};

/// Both gradient blocks of a function at one point, with its value.
#[derive(Clone, Debug)]
pub struct Grad {
    /// The function's value.
    pub value: f64,
    /// `∇ₓ`.
    pub x: Mat<f64>,
    /// `∇ᵧ`.
    pub y: Mat<f64>,
}

/// The two products of one forward-over-reverse pass of `g` with tangent `(0, v)`.
#[derive(Clone, Debug)]
pub struct Cross {
    /// `∇²ᵧᵧg·v` (length `dim_y`).
    pub yy: Mat<f64>,
    /// `∇²ₓᵧg·v = ∇ₓ⟨∇ᵧg, v⟩` (length `dim_x`).
    pub xy: Mat<f64>,
}

/// `h = ‖∇ᵧg‖²` and its gradient.
#[derive(Clone, Debug)]
pub struct HGrad {
    /// `h(x, y) = ‖∇ᵧg(x, y)‖²`.
    pub h: f64,
    /// `∇ᵧg(x, y)`.
    pub grad_y_g: Mat<f64>,
    /// `∇ₓh = 2 ∇²ₓᵧg·∇ᵧg`.
    pub x: Mat<f64>,
    /// `∇ᵧh = 2 ∇²ᵧᵧg·∇ᵧg`.
    pub y: Mat<f64>,
}

/// A box `lo ≤ vᵢ ≤ hi` applied to every coordinate of a block.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bounds {
    /// Lower bound of every coordinate.
    pub lo: f64,
    /// Upper bound of every coordinate.
    pub hi: f64,
}

impl Bounds {
    /// Clamp every coordinate of `v` into the box (the Euclidean projection).
    pub fn project(&self, v: &mut Mat<f64>) {
        for vi in v.col_as_slice_mut(0) {
            *vi = vi.clamp(self.lo, self.hi);
        }
    }

    /// Whether every coordinate lies in the box.
    pub fn contains(&self, v: &Mat<f64>) -> bool {
        v.col_as_slice(0)
            .iter()
            .all(|vi| *vi >= self.lo && *vi <= self.hi)
    }
}

/// Smoothness constants a problem knows about itself: global bounds, valid at every `(x, y)`,
/// that the papers' step-size rules are written in. Each field is the tightest bound the
/// problem can state; `None` where it has none (for instance a Hessian that is not bounded).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Smoothness {
    /// `L_g`: a bound on `‖∇²ᵧᵧg‖`, the Lipschitz constant of `∇ᵧg` in `y` (the papers'
    /// `ℓ_{g,1}` or `L` restricted to the lower-level block, which is what a gradient step on
    /// `g(x, ·)` needs).
    pub l_g: f64,
    /// `μ_g`: the strong-convexity modulus of `g(x, ·)`, if it is strongly convex.
    pub mu_g: Option<f64>,
    /// A bound on the whole Hessian of `g` in `(x, y)` (the Lipschitz constant of `∇g`), which
    /// penalty methods need for the `x` side of `g − g*`; `None` where it is unbounded or not
    /// worked out.
    #[serde(default)]
    pub l_g_xy: Option<f64>,
    /// `L_f`: the Lipschitz constant of `∇f` in `(x, y)`.
    pub l_f: Option<f64>,
    /// `L_h`: the Lipschitz constant of `∇h` in `(x, y)`, `h = ‖∇ᵧg‖²`.
    pub l_h: Option<f64>,
    /// `L_Φ`: the Lipschitz constant of `∇Φ`, `Φ(x) = f(x, y*(x))`.
    pub l_phi: Option<f64>,
}

impl Smoothness {
    /// Constants valid for both `self` and `other` (the larger Lipschitz constants, the
    /// smaller modulus; `None` unless both know it): what one parameter choice for several
    /// instances, such as seeds, must respect.
    pub fn worst(self, other: Smoothness) -> Smoothness {
        let both = |a: Option<f64>, b: Option<f64>, f: fn(f64, f64) -> f64| Some(f(a?, b?));
        Smoothness {
            l_g: self.l_g.max(other.l_g),
            mu_g: both(self.mu_g, other.mu_g, f64::min),
            l_g_xy: both(self.l_g_xy, other.l_g_xy, f64::max),
            l_f: both(self.l_f, other.l_f, f64::max),
            l_h: both(self.l_h, other.l_h, f64::max),
            l_phi: both(self.l_phi, other.l_phi, f64::max),
        }
    }
}

/// A bilevel problem `min_x f(x, y)` subject to `y ∈ argmin_y g(x, y)`, `x ∈ Rⁿ`, `y ∈ Rᵐ`.
///
/// Implementors write [`Problem::f`] and [`Problem::g`] on the tape; every oracle below has a
/// default built on them. Problems are immutable and `Sync`: per-thread mutable state (the tape)
/// lives in the [`Evaluator`] the caller passes in.
pub trait Problem: Send + Sync + std::fmt::Debug {
    /// A short identifier, e.g. `quadratic-k10`.
    fn name(&self) -> String;
    /// `n`, the upper-level dimension.
    fn dim_x(&self) -> usize;
    /// `m`, the lower-level dimension.
    fn dim_y(&self) -> usize;
    /// The default starting upper-level point.
    fn x0(&self) -> Mat<f64>;
    /// The default starting lower-level point.
    fn y0(&self) -> Mat<f64>;
    /// The upper-level objective `f(x, y)` recorded on the tape (a 1×1 result).
    fn f(&self, t: &mut Tape, x: Var, y: Var) -> Var;
    /// The lower-level objective `g(x, y)` recorded on the tape (a 1×1 result).
    fn g(&self, t: &mut Tape, x: Var, y: Var) -> Var;

    /// A box constraint on `x`, if the problem has one.
    fn bounds_x(&self) -> Option<Bounds> {
        None
    }
    /// A box constraint on `y` (the lower-level feasible set), if the problem has one.
    fn bounds_y(&self) -> Option<Bounds> {
        None
    }

    /// `f(x, y)`: one forward pass.
    fn value_f(&self, ev: &mut Evaluator, x: MatRef<'_, f64>, y: MatRef<'_, f64>) -> f64 {
        ev.value2(|t, x, y| self.f(t, x, y), x, y)
    }
    /// `g(x, y)`: one forward pass.
    fn value_g(&self, ev: &mut Evaluator, x: MatRef<'_, f64>, y: MatRef<'_, f64>) -> f64 {
        ev.value2(|t, x, y| self.g(t, x, y), x, y)
    }
    /// `f, ∇ₓf, ∇ᵧf`: one reverse pass.
    fn grad_f(&self, ev: &mut Evaluator, x: MatRef<'_, f64>, y: MatRef<'_, f64>) -> Grad {
        let (value, gx, gy) = ev.value_and_grad2(|t, x, y| self.f(t, x, y), x, y);
        Grad {
            value,
            x: gx,
            y: gy,
        }
    }
    /// `g, ∇ₓg, ∇ᵧg`: one reverse pass.
    fn grad_g(&self, ev: &mut Evaluator, x: MatRef<'_, f64>, y: MatRef<'_, f64>) -> Grad {
        let (value, gx, gy) = ev.value_and_grad2(|t, x, y| self.g(t, x, y), x, y);
        Grad {
            value,
            x: gx,
            y: gy,
        }
    }
    /// `∇²ᵧᵧg·v` and `∇²ₓᵧg·v`: one forward-over-reverse pass with tangent `(0, v)`.
    fn hvp_g(
        &self,
        ev: &mut Evaluator,
        x: MatRef<'_, f64>,
        y: MatRef<'_, f64>,
        v: MatRef<'_, f64>,
    ) -> Cross {
        let (yy, xy) = ev.hvp_yy(|t, x, y| self.g(t, x, y), x, y, v);
        Cross { yy, xy }
    }
    /// `∇²ᵧᵧg·v` alone: one forward-over-reverse pass with tangent `(0, v)` that computes nothing
    /// only `∇²ₓᵧg·v` or the gradient would need (same values as [`Problem::hvp_g`]'s `yy`).
    fn hvp_yy_g(
        &self,
        ev: &mut Evaluator,
        x: MatRef<'_, f64>,
        y: MatRef<'_, f64>,
        v: MatRef<'_, f64>,
    ) -> Mat<f64> {
        let mut out = Mat::zeros(y.nrows(), 1);
        let o = bilevel_ad::Hvp2Out {
            hv_y: Some(out.as_mut()),
            ..Default::default()
        };
        ev.hvp2_into(|t, x, y| self.g(t, x, y), x, y, None, Some(v), o);
        out
    }
    /// The mixed product `∇²ₓᵧg·v` alone (an `x`-shaped result; same values as
    /// [`Problem::hvp_g`]'s `xy`): for data-sum losses it needs the data once, for the
    /// tangents of the forward pass only.
    fn jvp_xy_g(
        &self,
        ev: &mut Evaluator,
        x: MatRef<'_, f64>,
        y: MatRef<'_, f64>,
        v: MatRef<'_, f64>,
    ) -> Mat<f64> {
        ev.jvp_xy(|t, x, y| self.g(t, x, y), x, y, v)
    }
    /// `g`, both gradient blocks, `∇²ᵧᵧg·v` and `∇²ₓᵧg·v`, all from one forward-over-reverse
    /// pass at `(x, y)` with tangent `(0, v)`: what a single-loop method that takes every
    /// product at the current point needs per iteration.
    fn grad_hvp_g(
        &self,
        ev: &mut Evaluator,
        x: MatRef<'_, f64>,
        y: MatRef<'_, f64>,
        v: MatRef<'_, f64>,
    ) -> (Grad, Cross) {
        let r = ev.hvp2(|t, x, y| self.g(t, x, y), x, y, None, Some(v));
        (
            Grad {
                value: r.value,
                x: r.grad_x,
                y: r.grad_y,
            },
            Cross {
                yy: r.hv_y,
                xy: r.hv_x,
            },
        )
    }
    /// `∇²ᵧₓg·u` (a `y`-shaped result): one forward-over-reverse pass with tangent `(u, 0)`.
    fn jvp_yx_g(
        &self,
        ev: &mut Evaluator,
        x: MatRef<'_, f64>,
        y: MatRef<'_, f64>,
        u: MatRef<'_, f64>,
    ) -> Mat<f64> {
        ev.jvp_yx(|t, x, y| self.g(t, x, y), x, y, u)
    }
    /// `h = ‖∇ᵧg‖²` and `∇h = (2∇²ₓᵧg·∇ᵧg, 2∇²ᵧᵧg·∇ᵧg)`: one gradient pass, then one
    /// forward-over-reverse pass with tangent `(0, ∇ᵧg)`.
    fn grad_h(&self, ev: &mut Evaluator, x: MatRef<'_, f64>, y: MatRef<'_, f64>) -> HGrad {
        let gy = self.grad_g(ev, x, y).y;
        let c = self.hvp_g(ev, x, y, gy.as_ref());
        let h = crate::vecops::norm_sq(&gy);
        let mut hx = c.xy;
        let mut hy = c.yy;
        crate::vecops::scale(&mut hx, 2.0);
        crate::vecops::scale(&mut hy, 2.0);
        HGrad {
            h,
            grad_y_g: gy,
            x: hx,
            y: hy,
        }
    }

    /// The lower-level solution `y*(x)` in closed form, if known (metrics only).
    fn y_star(&self, _x: MatRef<'_, f64>) -> Option<Mat<f64>> {
        None
    }
    /// The exact hypergradient `∇Φ(x)`, if known in closed form (metrics only). When it is not
    /// but [`Problem::y_star`] is, the metrics solve the implicit-function linear system instead.
    fn grad_phi(&self, _x: MatRef<'_, f64>) -> Option<Mat<f64>> {
        None
    }
    /// The lower-level value function `g*(x) = min_y g(x, y)`, if known (metrics only).
    fn g_star(&self, _x: MatRef<'_, f64>) -> Option<f64> {
        None
    }
    /// Whether, and how, the metrics may compute GALET's stationarity measure
    /// `R_x + R_w + R_y` themselves where the problem knows no closed form: `Some` states that
    /// `g(x, ·)` is strongly convex for every `x` with the given modulus, so that `g*(x)` comes
    /// from a Newton–CG solve and, for a solver without a shadow `w`, `w` from a CG solve (see
    /// [`InnerSolve`](crate::metrics::InnerSolve)). Costly (hundreds of Hessian-vector products
    /// per evaluation), hence opt-in: `None` by default, and then neither is computed.
    fn stationarity(&self) -> Option<crate::metrics::InnerSolve> {
        None
    }
    /// A problem-specific distance to the known optimal set (metrics only): its definition is
    /// documented on each problem.
    fn optimality_gap(&self, _x: MatRef<'_, f64>, _y: MatRef<'_, f64>) -> Option<f64> {
        None
    }

    /// The problem's own measures of an iterate beyond the common [`Metrics`](crate::Metrics)
    /// (e.g. a classifier's test accuracy), as `(name, value)` pairs in a fixed order: the
    /// runner evaluates them with the other metrics, outside the solver's oracle budget, and the
    /// traces carry them as columns. `ev` is the metrics' own evaluator. None by default.
    fn metrics(
        &self,
        _ev: &mut Evaluator,
        _x: MatRef<'_, f64>,
        _y: MatRef<'_, f64>,
    ) -> Vec<(&'static str, f64)> {
        Vec::new()
    }

    /// The smoothness constants the problem can state (for step-size rules; solvers never
    /// read them). `None` by default.
    fn smoothness(&self) -> Option<Smoothness> {
        None
    }

    /// The problem as a sum over samples, when it is one: what the minibatch oracles of the
    /// stochastic methods ([`Minibatch`](crate::sampling::Minibatch)) need.
    fn data_sum(&self) -> Option<&dyn DataSum> {
        None
    }
}

/// A problem whose objectives are averages over samples, `f = (1/N_f) Σᵢ fᵢ` and
/// `g = (1/N_g) Σⱼ gⱼ` (e.g. validation and training losses), so that the average over a subset
/// `B` of sample indices is an unbiased estimate of the whole.
///
/// The batch objectives must equal [`Problem::f`] and [`Problem::g`] (up to rounding) when `idx`
/// holds every index once.
pub trait DataSum: Send + Sync {
    /// `N_f`, the number of samples of `f`.
    fn samples_f(&self) -> usize;
    /// `N_g`, the number of samples of `g`.
    fn samples_g(&self) -> usize;
    /// `(1/|B|) Σ_{i∈B} fᵢ(x, y)` for the distinct indices `B = idx` (in `0..N_f`).
    fn f_batch(&self, t: &mut Tape, x: Var, y: Var, idx: &[usize]) -> Var;
    /// `(1/|B|) Σ_{j∈B} gⱼ(x, y)` for the distinct indices `B = idx` (in `0..N_g`).
    fn g_batch(&self, t: &mut Tape, x: Var, y: Var, idx: &[usize]) -> Var;
}

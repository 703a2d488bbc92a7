//! MGBiO: a momentum-averaged hypergradient from the lower-level Hessian projected onto
//! `{H ⪰ μI}` and inverted, one gradient step on `y` per iteration.

use crate::error::{Error, check, check_pos};
use crate::oracle::Oracle;
use crate::rules::{Ctx, Rule, StepRules, inner_rule, outer_rule};
use crate::solver::{Iterate, Scalars, Solver, col, state_io};
use crate::vecops::{axpy, lincomb, norm, zeros};
use bilevel_linalg::{Mat, Par, sym_eigen};
use serde::{Deserialize, Serialize};

/// Parameters of [`Mgbio`]: the steps `λ` of `y` and `γ` of `x`, the momentum weight `η` and
/// the eigenvalue floor `μ` of the projected Hessian.
///
/// The defaults are fixed numbers that do not know the problem; the rules ([`StepRules`])
/// replace `λ` by `1/L_g`, `μ` by the lower level's `μ_g` where the problem states it, and `γ`
/// by `1/(2L_Φ)` (our rule: the theorem's `γ` involves the Lipschitz constants of the Hessians,
/// which [`crate::Smoothness`] does not state).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MgbioParams {
    /// `λ`: the gradient step of `y` on `g(x, ·)`. Default 0.1; the rule is `1/L_g`.
    pub lambda: f64,
    /// `γ`: the step of `x` along the momentum `w`. Default 0.01; the rule is `1/(2L_Φ)`.
    pub gamma: f64,
    /// `η ∈ (0, 1]`: the weight of the fresh hypergradient estimate in
    /// `w ← η∇̂F + (1 − η)w` (`1`: no memory). Default 0.5 (our choice).
    pub eta: f64,
    /// `μ > 0`: the Hessian `∇²ᵧᵧg` is projected onto `{H ⪰ μI}` (its eigenvalues below `μ`
    /// raised to `μ`) before it is inverted; the paper's `μ` is the lower bound of the
    /// Hessian's nonzero eigenvalues at the lower-level solutions (for a `μ`-strongly convex
    /// `g(x, ·)`, `μ_g`, where the projection changes nothing). Default 0.1; the rule is
    /// `μ_g`.
    pub mu: f64,
    /// The largest lower level accepted: the method forms the `dim_y × dim_y` Hessian and
    /// decomposes it (`O(dim_y³)`) every iteration, so a run on a larger `y` is refused when it
    /// starts rather than left to exhaust memory or time. Default 1000 (8 MB of Hessian).
    pub max_dim_y: usize,
}

impl Default for MgbioParams {
    /// `λ = 0.1`, `γ = 0.01`, `η = 0.5`, `μ = 0.1`, lower levels of at most 1000 entries.
    fn default() -> Self {
        MgbioParams {
            lambda: 0.1,
            gamma: 0.01,
            eta: 0.5,
            mu: 0.1,
            max_dim_y: 1000,
        }
    }
}

impl MgbioParams {
    /// Reject out-of-range values.
    pub fn validate(&self) -> Result<(), Error> {
        check_pos(NAME, "lambda", self.lambda)?;
        check_pos(NAME, "gamma", self.gamma)?;
        check(
            NAME,
            "eta",
            self.eta,
            self.eta > 0.0 && self.eta <= 1.0,
            "in (0, 1]",
        )?;
        check_pos(NAME, "mu", self.mu)
    }
}

/// `μ_g`, when the problem states it.
fn mu_g(c: &Ctx<'_, MgbioParams>) -> Option<f64> {
    c.c.mu_g
}

impl StepRules for MgbioParams {
    fn rules() -> &'static [Rule<Self>] {
        &[
            inner_rule!(MgbioParams, lambda),
            Rule {
                key: "mu",
                text: "μ_g: the floor of the projected Hessian's eigenvalues is the lower level's \
                       strong convexity (or PL) constant (MGBiO paper's assumption on the \
                       Hessian)",
                unless_set: &[],
                value: mu_g,
                set: |p, v| p.mu = v,
            },
            outer_rule!(MgbioParams, gamma),
        ]
    }
}

pub(crate) const NAME: &str = "mgbio";

#[derive(Clone, Debug, Serialize, Deserialize)]
struct State {
    /// The momentum `w` of the hypergradient estimates: empty before the first step.
    #[serde(with = "col")]
    w: Mat<f64>,
}

/// The hypergradient estimate `∇ₓf − ∇²ₓᵧg·P_μ[∇²ᵧᵧg]⁻¹∇ᵧf` at `(x, y)`, with `P_μ[H]` the
/// projection of the symmetric `H` onto `{H ⪰ μI}` in the Frobenius norm: the eigenvalues
/// below `μ` raised to `μ`. The Hessian `∇²ᵧᵧg` and the Jacobian `∇²ₓᵧg` are formed a column
/// at a time from the products with the unit vectors (`dim_y` MV, one Gc for `∇f`), the
/// Hessian symmetrized, and the projected inverse applied through its eigendecomposition.
/// Returns the estimate and the smallest eigenvalue of `∇²ᵧᵧg`; a Hessian the decomposition
/// refuses (not finite) gives a non-finite estimate, which the runner reports as divergence.
pub(crate) fn projected_hypergradient(
    o: &mut Oracle<'_>,
    x: &Mat<f64>,
    y: &Mat<f64>,
    mu: f64,
) -> (Mat<f64>, f64) {
    let (n, m) = (x.nrows(), y.nrows());
    let gf = o.grad_f(x, y);
    let mut h = Mat::<f64>::zeros(m, m);
    let mut jac = Mat::<f64>::zeros(n, m);
    let mut e = zeros(m);
    for i in 0..m {
        e[(i, 0)] = 1.0;
        let c = o.hvp_g(x, y, &e);
        e[(i, 0)] = 0.0;
        for r in 0..m {
            h[(r, i)] = c.yy[(r, 0)];
        }
        for r in 0..n {
            jac[(r, i)] = c.xy[(r, 0)];
        }
    }
    let sym = Mat::from_fn(m, m, |r, c| 0.5 * (h[(r, c)] + h[(c, r)]));
    let Ok(eig) = sym_eigen(sym.as_ref(), Par::Seq) else {
        return (Mat::from_fn(n, 1, |_, _| f64::NAN), f64::NAN);
    };
    let q = &eig.vectors;
    // v = Q diag(1/max(λᵢ, μ)) Qᵀ ∇ᵧf.
    let coef: Vec<f64> = (0..m)
        .map(|i| (0..m).map(|r| q[(r, i)] * gf.y[(r, 0)]).sum::<f64>() / eig.values[i].max(mu))
        .collect();
    let v: Mat<f64> = Mat::from_fn(m, 1, |r, _| (0..m).map(|i| q[(r, i)] * coef[i]).sum());
    let jv: Mat<f64> = Mat::from_fn(n, 1, |r, _| (0..m).map(|i| jac[(r, i)] * v[(i, 0)]).sum());
    (lincomb(1.0, &gf.x, -1.0, &jv), eig.values[0])
}

/// MGBiO, the momentum-based gradient bilevel method (Feihu Huang, "On Momentum-Based Gradient
/// Methods for Bilevel Optimization with Nonconvex Lower-Level", the deterministic method),
/// for a lower level satisfying the Polyak-Łojasiewicz condition, whose Hessian may be
/// singular: the hypergradient estimate inverts the Hessian projected onto `{H ⪰ μI}`
/// (`projected_hypergradient`), and `x` moves along a momentum average of the estimates.
///
/// Per iteration `t`, from `(xₜ, yₜ, wₜ)`, `w₀ = ∇̂F(x₀, y₀)`:
/// `xₜ₊₁ = xₜ − γwₜ`; `yₜ₊₁ = yₜ − λ∇ᵧg(xₜ, yₜ)`;
/// `wₜ₊₁ = η∇̂F(xₜ₊₁, yₜ₊₁) + (1 − η)wₜ` with
/// `∇̂F(x, y) = ∇ₓf(x, y) − ∇²ₓᵧg(x, y)·P_μ[∇²ᵧᵧg(x, y)]⁻¹∇ᵧf(x, y)`.
/// Cost: `2` Gc and `dim_y` MV per iteration (`3` and `2·dim_y` on the first, which also forms
/// `w₀`), and a symmetric eigendecomposition of order `dim_y`: a method for small lower levels,
/// and the one solver that forms a Hessian (the stated exception to the solvers' rule that
/// second-order information enters only as products; the columns still come from HVPs).
///
/// What we chose where we could not read the paper's algorithm box: one gradient step on `y`
/// per iteration; the momentum as the moving average `w` with one constant weight `η` (a
/// convex combination `xₜ + ηₜ(x̃ₜ₊₁ − xₜ)` on `x`, where the paper writes one, is a step
/// `γηₜ` and folded into `γ`); `P_μ` raising the eigenvalues below `μ` and leaving the others.
/// With `η = 1` and `μ` at most the smallest eigenvalue of a strongly convex lower level it is
/// alternating gradient descent with the exact implicit hypergradient at the current `y`.
/// The stochastic variants (MSGBiO, VR-MSGBiO) are not implemented.
#[derive(Clone, Debug)]
pub struct Mgbio {
    params: MgbioParams,
    state: State,
}

impl Mgbio {
    /// A solver with validated parameters.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first bad parameter.
    pub fn new(params: MgbioParams) -> Result<Self, Error> {
        params.validate()?;
        Ok(Mgbio {
            params,
            state: State { w: zeros(0) },
        })
    }
}

impl Solver for Mgbio {
    fn name(&self) -> &'static str {
        NAME
    }
    fn init(&mut self, o: &mut Oracle<'_>, _it: &mut Iterate) -> Result<(), Error> {
        let m = o.problem().dim_y();
        check(
            NAME,
            "max_dim_y",
            self.params.max_dim_y as f64,
            m <= self.params.max_dim_y,
            "at least the problem's dim_y (the dense Hessian is dim_y × dim_y)",
        )?;
        self.state.w = zeros(0);
        Ok(())
    }
    fn step(&mut self, o: &mut Oracle<'_>, it: &mut Iterate, _k: u64) -> Scalars {
        let p = self.params;
        let w = &mut self.state.w;
        if w.nrows() == 0 {
            *w = projected_hypergradient(o, &it.x, &it.y, p.mu).0;
        }
        let gy = o.grad_g(&it.x, &it.y).y;
        axpy(&mut it.x, -p.gamma, w);
        axpy(&mut it.y, -p.lambda, &gy);
        let (d, lmin) = projected_hypergradient(o, &it.x, &it.y, p.mu);
        *w = lincomb(p.eta, &d, 1.0 - p.eta, w);
        vec![
            ("hypergrad_est_norm", norm(&d)),
            ("momentum_norm", norm(w)),
            ("hessian_min_eig", lmin),
        ]
    }
    fn aux(&self) -> Vec<(&'static str, &Mat<f64>)> {
        vec![("w", &self.state.w)]
    }
    state_io!();
}

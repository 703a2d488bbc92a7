//! HJFBiO: single-loop steps on `y`, on the linear system's `v` and on `x`, with the
//! Hessian- and Jacobian-vector products replaced by finite differences of `∇g`.

use crate::error::{Error, check_pos};
use crate::oracle::Oracle;
use crate::rules::{LINEAR, Rule, StepRules, inner_rule, l_g_rule, outer_rule};
use crate::solver::{Iterate, Scalars, Solver, col, state_io};
use crate::vecops::{axpy, lincomb, norm, project_ball, scale, zeros};
use bilevel_linalg::Mat;
use serde::{Deserialize, Serialize};

/// Parameters of [`Hjfbio`]: the steps `λ` of `y`, `τ` of `v` and `γ` of `x`, the
/// finite-difference width `δ` and the radius `r` of the ball `v` is projected onto.
///
/// The defaults are fixed numbers that do not know the problem; the rules
/// ([`StepRules`]) replace the three steps by `1/L_g`, `1/L_g` and `1/(2L_Φ)` (our rules: the
/// theorem's steps involve the Lipschitz constants of the Hessians, which
/// [`crate::Smoothness`] does not state). `r` must bound `‖v*‖ = ‖[∇²ᵧᵧg]⁻¹∇ᵧf‖`, which is at
/// most `C_fy/μ` for `‖∇ᵧf‖ ≤ C_fy` and Hessian eigenvalues at least `μ`; neither is stated
/// here, so `r` has no rule.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct HjfbioParams {
    /// `λ`: the gradient step of `y` on `g(x, ·)`. Default 0.1; the rule is `1/L_g`.
    pub lambda: f64,
    /// `τ`: the gradient step of `v` on `½vᵀ∇²ᵧᵧg v − ∇ᵧfᵀv`, with the finite-difference
    /// product for `∇²ᵧᵧg v`. Default 0.1; the rule is `1/L_g`.
    pub tau: f64,
    /// `γ`: the step of `x`. Default 0.01; the rule is `1/(2L_Φ)`.
    pub gamma: f64,
    /// `δ > 0`: the width of the central differences. Default `1e-5` (our choice: the
    /// truncation error is `O(δ²‖v‖³)`, the rounding error `O(ε_mach/δ)`, balanced near
    /// `ε_mach^{1/3} ≈ 6e-6` for unit scales; the paper's theory takes `δ` of order `ε`, its
    /// experiments' value we could not read).
    pub delta: f64,
    /// `r > 0`: `v` is projected onto `{‖v‖ ≤ r}` after each step. Default 100 (our choice;
    /// the paper's `r = C_fy/μ` needs constants the problems do not state).
    pub radius: f64,
}

impl Default for HjfbioParams {
    /// `λ = τ = 0.1`, `γ = 0.01`, `δ = 1e-5`, `r = 100`.
    fn default() -> Self {
        HjfbioParams {
            lambda: 0.1,
            tau: 0.1,
            gamma: 0.01,
            delta: 1e-5,
            radius: 100.0,
        }
    }
}

impl HjfbioParams {
    /// Reject non-positive or non-finite values.
    pub fn validate(&self) -> Result<(), Error> {
        check_pos(NAME, "lambda", self.lambda)?;
        check_pos(NAME, "tau", self.tau)?;
        check_pos(NAME, "gamma", self.gamma)?;
        check_pos(NAME, "delta", self.delta)?;
        check_pos(NAME, "radius", self.radius)
    }
}

impl StepRules for HjfbioParams {
    fn rules() -> &'static [Rule<Self>] {
        &[
            inner_rule!(HjfbioParams, lambda),
            l_g_rule!(HjfbioParams, tau, LINEAR),
            outer_rule!(HjfbioParams, gamma),
        ]
    }
}

pub(crate) const NAME: &str = "hjfbio";

#[derive(Clone, Debug, Serialize, Deserialize)]
struct State {
    /// `v ≈ [∇²ᵧᵧg]⁻¹∇ᵧf`, from 0.
    #[serde(with = "col")]
    v: Mat<f64>,
}

/// The central differences of `∇g` at `(x, y ± δv)`: `(Ĥ, Ĵ)` with
/// `Ĥ = [∇ᵧg(x, y + δv) − ∇ᵧg(x, y − δv)]/(2δ) ≈ ∇²ᵧᵧg(x, y)·v` and the same of `∇ₓg`,
/// `Ĵ ≈ ∇²ₓᵧg(x, y)·v`, from the two gradient calls (2 Gc, no MV). For `v = 0` both are 0
/// without a call. Exact (to rounding) when `g(x, ·)` is quadratic.
pub(crate) fn central_differences(
    o: &mut Oracle<'_>,
    x: &Mat<f64>,
    y: &Mat<f64>,
    v: &Mat<f64>,
    delta: f64,
) -> (Mat<f64>, Mat<f64>) {
    if norm(v) == 0.0 {
        return (zeros(y.nrows()), zeros(x.nrows()));
    }
    let plus = o.grad_g(x, &lincomb(1.0, y, delta, v));
    let minus = o.grad_g(x, &lincomb(1.0, y, -delta, v));
    let mut h = lincomb(1.0, &plus.y, -1.0, &minus.y);
    let mut j = lincomb(1.0, &plus.x, -1.0, &minus.x);
    scale(&mut h, 0.5 / delta);
    scale(&mut j, 0.5 / delta);
    (h, j)
}

/// HJFBiO (Feihu Huang, "Optimal Hessian/Jacobian-Free Nonconvex-PL Bilevel Optimization",
/// ICML 2024, Algorithm 1): for a lower level satisfying the Polyak-Łojasiewicz condition, the
/// implicit hypergradient `∇ₓf − ∇²ₓᵧg·v` with `v` tracking `[∇²ᵧᵧg]⁻¹∇ᵧf` by one gradient
/// step per iteration on `½vᵀ∇²ᵧᵧg v − ∇ᵧfᵀv`, projected onto a ball, every second-order
/// product replaced by a finite difference of gradients (no Hessian, no Jacobian, no inverse).
///
/// Per iteration `t`, every quantity at `(xₜ, yₜ, vₜ)`:
/// `(Ĥ, Ĵ)` the central differences of `∇ᵧg` and `∇ₓg` at `(xₜ, yₜ ± δvₜ)`;
/// `yₜ₊₁ = yₜ − λ∇ᵧg(xₜ, yₜ)`;
/// `vₜ₊₁ = P_r(vₜ − τ(Ĥ − ∇ᵧf(xₜ, yₜ)))`, `P_r` the projection onto `{‖v‖ ≤ r}`;
/// `xₜ₊₁ = xₜ − γ(∇ₓf(xₜ, yₜ) − Ĵ)`.
/// Cost: `4` Gc per iteration (`2` while `v = 0`: the first), no MV.
///
/// What we chose where we could not read the paper's algorithm box: the three updates are
/// simultaneous (all from the iterate at `t`); the differences are central (`±δ`), not
/// forward; `δ`'s default is ours. With `δ → 0` the iteration tends to the same updates with
/// exact products, `∇²ᵧᵧg·v` and `∇²ₓᵧg·v` (tested); on a quadratic lower level the two agree
/// to rounding for every `δ`.
#[derive(Clone, Debug)]
pub struct Hjfbio {
    params: HjfbioParams,
    state: State,
}

impl Hjfbio {
    /// A solver with validated parameters.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first bad parameter.
    pub fn new(params: HjfbioParams) -> Result<Self, Error> {
        params.validate()?;
        Ok(Hjfbio {
            params,
            state: State { v: zeros(0) },
        })
    }
}

impl Solver for Hjfbio {
    fn name(&self) -> &'static str {
        NAME
    }
    fn init(&mut self, o: &mut Oracle<'_>, _it: &mut Iterate) -> Result<(), Error> {
        self.state.v = zeros(o.problem().dim_y());
        Ok(())
    }
    fn step(&mut self, o: &mut Oracle<'_>, it: &mut Iterate, _k: u64) -> Scalars {
        let p = self.params;
        let v = &mut self.state.v;
        let (h, j) = central_differences(o, &it.x, &it.y, v, p.delta);
        let gf = o.grad_f(&it.x, &it.y);
        let gy = o.grad_g(&it.x, &it.y).y;
        axpy(&mut it.y, -p.lambda, &gy);
        axpy(v, -p.tau, &lincomb(1.0, &h, -1.0, &gf.y));
        project_ball(v, p.radius);
        let d = lincomb(1.0, &gf.x, -1.0, &j);
        axpy(&mut it.x, -p.gamma, &d);
        vec![
            ("hypergrad_est_norm", norm(&d)),
            ("v_norm", norm(&self.state.v)),
        ]
    }
    fn aux(&self) -> Vec<(&'static str, &Mat<f64>)> {
        vec![("v", &self.state.v)]
    }
    state_io!();
}

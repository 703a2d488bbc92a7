use crate::error::{Error, check_count, check_pos};
use crate::oracle::Oracle;
use crate::rules::{Ctx, Rule, StepRules, inner_rule};
use crate::solver::{Iterate, Scalars, Solver, col, state_io};
use crate::vecops::{axpy, lincomb, norm, zeros};
use bilevel_linalg::Mat;
use serde::{Deserialize, Serialize};

/// Parameters of [`VPbgd`]. Defaults are ours (steps are problem dependent); the penalty `γ`
/// trades bias `O(1/γ)` for conditioning.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct VPbgdParams {
    /// `α`: step on `(x, y)`; needs `α ≲ 1/(γL)`.
    pub alpha: f64,
    /// `γ`: penalty weight on `g(x, y) − g*(x)`.
    pub gamma: f64,
    /// `T`: gradient steps on `g(x, ·)` per iteration for the value-function estimate `ω`
    /// (warm-started).
    pub inner_steps: usize,
    /// Step of those inner steps.
    pub inner_step: f64,
}

impl Default for VPbgdParams {
    fn default() -> Self {
        VPbgdParams {
            alpha: 0.01,
            gamma: 10.0,
            inner_steps: 10,
            inner_step: 0.1,
        }
    }
}

impl VPbgdParams {
    /// Reject out-of-range values.
    pub fn validate(&self) -> Result<(), Error> {
        check_pos(NAME, "alpha", self.alpha)?;
        check_pos(NAME, "gamma", self.gamma)?;
        check_pos(NAME, "inner_step", self.inner_step)?;
        check_count(NAME, "inner_steps", self.inner_steps, 1, ">= 1")
    }
}

/// V-PBGD's step on `f + γ(g − g*)`: with `L` a bound on the whole Hessian of `g`,
/// `‖∇²g*‖ ≤ L + L²/μ_g` (the implicit function theorem), so that sum is
/// `L_f + γ(2L + L²/μ_g)`-smooth. Problems that do not bound the whole Hessian get no rule.
fn penalty_step(c: &Ctx<'_, VPbgdParams>) -> Option<f64> {
    let (l, mu, l_f) = (c.c.l_g_xy?, c.c.mu_g?, c.c.l_f?);
    let gamma = c.params.gamma;
    (mu > 0.0).then(|| 1.0 / (l_f + gamma * (2.0 * l + l * l / mu)))
}

impl StepRules for VPbgdParams {
    fn rules() -> &'static [Rule<Self>] {
        &[
            inner_rule!(VPbgdParams, inner_step),
            Rule {
                key: "alpha",
                text: "1/(L_f + γ(2L + L²/μ_g)), L bounding the whole Hessian of g: a gradient \
                       step on f + γ(g − g*), whose smoothness this bounds (our bound; V-PBGD's \
                       paper leaves the constant implicit)",
                unless_set: &[],
                value: penalty_step,
                set: |p, v| p.alpha = v,
            },
        ]
    }
}

pub(crate) const NAME: &str = "v-pbgd";

#[derive(Clone, Debug, Serialize, Deserialize)]
struct State {
    #[serde(with = "col")]
    omega: Mat<f64>,
}

/// V-PBGD (Shen and Chen, "On Penalty-based Bilevel Gradient Descent Method"), the baseline of
/// the PGD-QP and GALET papers: gradient descent on the value-function penalty
/// `f + γ(g − g*)`.
///
/// Per iteration: `ω` ← `T` (projected) gradient steps on `g(x, ·)` from the previous `ω`; then
/// `(x, y) ← P((x, y) − α(∇f + γ(∇g(x, y) − (∇ₓg(x, ω), 0))))`. First order: `T + 3` Gc.
#[derive(Clone, Debug)]
pub struct VPbgd {
    params: VPbgdParams,
    state: State,
}

impl VPbgd {
    /// A solver with validated parameters.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first bad parameter.
    pub fn new(params: VPbgdParams) -> Result<Self, Error> {
        params.validate()?;
        Ok(VPbgd {
            params,
            state: State { omega: zeros(0) },
        })
    }
}

impl Solver for VPbgd {
    fn name(&self) -> &'static str {
        NAME
    }
    fn init(&mut self, _o: &mut Oracle<'_>, it: &mut Iterate) -> Result<(), Error> {
        self.state.omega = it.y.clone();
        Ok(())
    }
    fn step(&mut self, o: &mut Oracle<'_>, it: &mut Iterate, _k: u64) -> Scalars {
        let p = self.params;
        for _ in 0..p.inner_steps {
            let gy = o.grad_g(&it.x, &self.state.omega).y;
            axpy(&mut self.state.omega, -p.inner_step, &gy);
            o.project_y(&mut self.state.omega);
        }
        let gf = o.grad_f(&it.x, &it.y);
        let gg = o.grad_g(&it.x, &it.y);
        let gw = o.grad_g(&it.x, &self.state.omega).x;
        let dx = lincomb(1.0, &gf.x, p.gamma, &lincomb(1.0, &gg.x, -1.0, &gw));
        let dy = lincomb(1.0, &gf.y, p.gamma, &gg.y);
        axpy(&mut it.x, -p.alpha, &dx);
        axpy(&mut it.y, -p.alpha, &dy);
        o.project_x(&mut it.x);
        o.project_y(&mut it.y);
        vec![("d_norm", (norm(&dx).powi(2) + norm(&dy).powi(2)).sqrt())]
    }
    fn aux(&self) -> Vec<(&'static str, &Mat<f64>)> {
        vec![("omega", &self.state.omega)]
    }
    state_io!();
}

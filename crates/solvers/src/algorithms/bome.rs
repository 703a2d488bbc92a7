use crate::error::{Error, check_count, check_pos};
use crate::oracle::Oracle;
use crate::rules::{Rule, StepRules, inner_rule};
use crate::solver::{Iterate, Scalars, Solver, state_io};
use crate::vecops::{axpy, dot, lincomb, norm_sq};
use serde::{Deserialize, Serialize};

/// Parameters of [`Bome`]. The defaults (`η = 0.5`, `T = 10`) are ours in the range BOME's
/// experiments use; steps are problem dependent.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BomeParams {
    /// `ξ`: step on `(x, y)`.
    pub xi: f64,
    /// `η`: the control weight in `φ = η‖∇q‖²`.
    pub eta: f64,
    /// `T`: gradient steps on `g(x, ·)` giving `y_T`, started from the current `y`.
    pub inner_steps: usize,
    /// Step of those inner gradient steps.
    pub inner_step: f64,
}

impl Default for BomeParams {
    fn default() -> Self {
        BomeParams {
            xi: 0.01,
            eta: 0.5,
            inner_steps: 10,
            inner_step: 0.1,
        }
    }
}

impl BomeParams {
    /// Reject out-of-range values.
    pub fn validate(&self) -> Result<(), Error> {
        check_pos(NAME, "xi", self.xi)?;
        check_pos(NAME, "eta", self.eta)?;
        check_pos(NAME, "inner_step", self.inner_step)?;
        check_count(NAME, "inner_steps", self.inner_steps, 1, ">= 1")
    }
}

impl StepRules for BomeParams {
    fn rules() -> &'static [Rule<Self>] {
        &[inner_rule!(BomeParams, inner_step)]
    }
}

pub(crate) const NAME: &str = "bome";

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct State {}

/// BOME (Liu, Ye, Wright, Stone and Liu, "BOME! Bilevel Optimization Made Easy: A Simple
/// First-Order Approach"), the baseline of the PGD-QP and fully-first-order papers.
///
/// With `y_T` from `T` gradient steps on `g(x, ·)` and `q(x, y) = g(x, y) − g(x, y_T)` (`y_T`
/// held fixed): `∇q = (∇ₓg(x, y) − ∇ₓg(x, y_T), ∇ᵧg(x, y))`,
/// `λ = max((η‖∇q‖² − ⟨∇f, ∇q⟩)/‖∇q‖², 0)`, `(x, y) ← P((x, y) − ξ(∇f + λ∇q))`; the step
/// reports `‖∇f + λ∇q‖` as `delta_norm`. First order:
/// `T + 3` Gc per iteration.
#[derive(Clone, Debug)]
pub struct Bome {
    params: BomeParams,
    state: State,
}

impl Bome {
    /// A solver with validated parameters.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first bad parameter.
    pub fn new(params: BomeParams) -> Result<Self, Error> {
        params.validate()?;
        Ok(Bome {
            params,
            state: State {},
        })
    }
}

impl Solver for Bome {
    fn name(&self) -> &'static str {
        NAME
    }
    fn step(&mut self, o: &mut Oracle<'_>, it: &mut Iterate, _k: u64) -> Scalars {
        let p = self.params;
        let mut yt = it.y.clone();
        for _ in 0..p.inner_steps {
            let gy = o.grad_g(&it.x, &yt).y;
            axpy(&mut yt, -p.inner_step, &gy);
            o.project_y(&mut yt);
        }
        let gg = o.grad_g(&it.x, &it.y);
        let ggt = o.grad_g(&it.x, &yt);
        let gf = o.grad_f(&it.x, &it.y);
        let qx = lincomb(1.0, &gg.x, -1.0, &ggt.x);
        let qy = gg.y;
        let nq = norm_sq(&qx) + norm_sq(&qy);
        let lambda = if nq > 0.0 {
            ((p.eta * nq - dot(&gf.x, &qx) - dot(&gf.y, &qy)) / nq).max(0.0)
        } else {
            0.0
        };
        axpy(&mut it.x, -p.xi, &gf.x);
        axpy(&mut it.x, -p.xi * lambda, &qx);
        axpy(&mut it.y, -p.xi, &gf.y);
        axpy(&mut it.y, -p.xi * lambda, &qy);
        o.project_x(&mut it.x);
        o.project_y(&mut it.y);
        let dx2 = norm_sq(&lincomb(1.0, &gf.x, lambda, &qx));
        let dy2 = norm_sq(&lincomb(1.0, &gf.y, lambda, &qy));
        vec![
            ("lambda", lambda),
            ("q", gg.value - ggt.value),
            ("delta_norm", (dx2 + dy2).sqrt()),
        ]
    }
    state_io!();
}

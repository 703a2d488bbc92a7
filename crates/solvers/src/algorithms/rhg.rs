use crate::error::{Error, check, check_count, check_pos};
use crate::oracle::Oracle;
use crate::rules::{Rule, StepRules, inner_rule, outer_rule};
use crate::solver::{Iterate, Scalars, Solver, state_io};
use crate::vecops::{axpy, norm};
use serde::{Deserialize, Serialize};

/// Parameters of [`Rhg`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RhgParams {
    /// `α`: inner gradient step (the step differentiated through).
    pub alpha: f64,
    /// `β`: outer step.
    pub beta: f64,
    /// `T`: unrolled inner steps per outer iteration.
    pub inner_steps: usize,
    /// Back-propagate through only the last `K ≤ T` steps (truncated back-propagation);
    /// `None` differentiates through all `T`.
    pub truncate: Option<usize>,
    /// Start each inner run from the previous `y_T` (`true`) or from the current `y`, which
    /// then never moves (`false`).
    pub warm_start: bool,
}

impl Default for RhgParams {
    /// `α = 0.1`, `β = 0.01`, `T = 10`, untruncated, warm-started.
    fn default() -> Self {
        RhgParams {
            alpha: 0.1,
            beta: 0.01,
            inner_steps: 10,
            truncate: None,
            warm_start: true,
        }
    }
}

impl RhgParams {
    /// Reject out-of-range values.
    pub fn validate(&self) -> Result<(), Error> {
        check_pos(NAME, "alpha", self.alpha)?;
        check_pos(NAME, "beta", self.beta)?;
        check_count(NAME, "inner_steps", self.inner_steps, 1, ">= 1")?;
        if let Some(k) = self.truncate {
            check(
                NAME,
                "truncate",
                k as f64,
                k >= 1 && k <= self.inner_steps,
                "1 ..= inner_steps",
            )?;
        }
        Ok(())
    }
}

impl StepRules for RhgParams {
    fn rules() -> &'static [Rule<Self>] {
        &[inner_rule!(RhgParams, alpha), outer_rule!(RhgParams, beta)]
    }
}

pub(crate) const NAME: &str = "rhg";

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct State {}

/// RHG / ITD-T: reverse-mode differentiation through `T` unrolled gradient steps on `g(x, ·)`
/// (the reverse hypergradient of Franceschi, Donini, Frasconi and Pontil, "Forward and Reverse
/// Gradient-Based Hyperparameter Optimization"; the multi-step form of the ITD estimator in the
/// single-loop AID/ITD paper, §2.2; the RHG baseline of the GALET paper's Table 3), optionally
/// truncated to the last `K` steps.
///
/// Forward: `y_{t+1} = y_t − α∇ᵧg(x, y_t)`. Reverse from `v = ∇ᵧf(x, y_T)`, `d = ∇ₓf(x, y_T)`:
/// for `t = T−1, …, T−K`: `d ← d − α∇²ₓᵧg(x, y_t)v`, `v ← v − α∇²ᵧᵧg(x, y_t)v` (one pass per
/// step). Then `x ← x − βd`. Cost: `T + 1` Gc and `K` MV per iteration.
#[derive(Clone, Debug)]
pub struct Rhg {
    params: RhgParams,
    state: State,
}

impl Rhg {
    /// A solver with validated parameters.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first bad parameter.
    pub fn new(params: RhgParams) -> Result<Self, Error> {
        params.validate()?;
        Ok(Rhg {
            params,
            state: State {},
        })
    }
}

impl Solver for Rhg {
    fn name(&self) -> &'static str {
        NAME
    }
    fn step(&mut self, o: &mut Oracle<'_>, it: &mut Iterate, _k: u64) -> Scalars {
        let p = self.params;
        let t_max = p.inner_steps;
        let mut traj = Vec::with_capacity(t_max + 1);
        traj.push(it.y.clone());
        for t in 0..t_max {
            let gy = o.grad_g(&it.x, &traj[t]).y;
            let mut next = traj[t].clone();
            axpy(&mut next, -p.alpha, &gy);
            traj.push(next);
        }
        let gf = o.grad_f(&it.x, &traj[t_max]);
        let mut v = gf.y;
        let mut d = gf.x;
        let k = p.truncate.unwrap_or(t_max);
        for t in (t_max - k..t_max).rev() {
            let c = o.hvp_g(&it.x, &traj[t], &v);
            axpy(&mut d, -p.alpha, &c.xy);
            axpy(&mut v, -p.alpha, &c.yy);
        }
        axpy(&mut it.x, -p.beta, &d);
        if p.warm_start {
            it.y = traj.pop().expect("T >= 1");
        }
        vec![("hypergrad_est_norm", norm(&d))]
    }
    state_io!();
}

use crate::error::{Error, check, check_count, check_pos};
use crate::oracle::Oracle;
use crate::rules::{Rule, StepRules, inner_rule, outer_rule};
use crate::solver::{Iterate, Scalars, Solver, state_io};
use crate::vecops::{axpy, norm};
use bilevel_linalg::Mat;
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
    /// Start each inner run from the previous `y_T` (`true`), or from the starting point `y₀`
    /// at every outer step (`false`: the form of Franceschi et al. and of the GALET paper's RHG
    /// baseline). Either way the reported iterate `y` is the `y_T` the hypergradient used.
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
struct State {
    /// The start `y₀` of every inner run when not warm-starting: the iterate's `y` at the
    /// first step (empty until then, and when warm-starting). A checkpoint of a version without
    /// it resumes with the `y` it saved, which that version never moved from `y₀`.
    #[serde(default)]
    y0: Vec<f64>,
}

/// RHG / ITD-T: reverse-mode differentiation through `T` unrolled gradient steps on `g(x, ·)`
/// (the reverse hypergradient of Franceschi, Donini, Frasconi and Pontil, "Forward and Reverse
/// Gradient-Based Hyperparameter Optimization"; the multi-step form of the ITD estimator in the
/// single-loop AID/ITD paper, §2.2; the RHG baseline of the GALET paper's Table 3), optionally
/// truncated to the last `K` steps.
///
/// Forward: `y_{t+1} = y_t − α∇ᵧg(x, y_t)`. Reverse from `v = ∇ᵧf(x, y_T)`, `d = ∇ₓf(x, y_T)`:
/// for `t = T−1, …, T−K`: `d ← d − α∇²ₓᵧg(x, y_t)v`, `v ← v − α∇²ᵧᵧg(x, y_t)v` (one pass per
/// step). Then `x ← x − βd`, and the reported `y` is `y_T`. The inner run starts from the
/// previous `y_T` when warm-starting, else from `y₀` at every step. Cost: `T + 1` Gc and `K` MV
/// per iteration.
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
            state: State::default(),
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
        if p.warm_start {
            traj.push(it.y.clone());
        } else {
            if self.state.y0.is_empty() {
                self.state.y0 = it.y.col_as_slice(0).to_vec();
            }
            traj.push(crate::vecops::from_slice(&self.state.y0));
        }
        for t in 0..t_max {
            let gy = o.grad_g(&it.x, &traj[t]).y;
            let mut next = traj[t].clone();
            axpy(&mut next, -p.alpha, &gy);
            traj.push(next);
        }
        let k = p.truncate.unwrap_or(t_max);
        let (d, _) = reverse_through(o, &it.x, &traj[t_max - k..=t_max], p.alpha);
        axpy(&mut it.x, -p.beta, &d);
        it.y = traj.pop().expect("T >= 1");
        vec![("hypergrad_est_norm", norm(&d))]
    }
    state_io!();
}

/// Reverse-mode differentiation of `f(x, y_n)` through the unrolled gradient steps
/// `y_{t+1} = y_t − α∇ᵧg(x, y_t)` whose iterates are `run = [y_0, …, y_n]`: from
/// `v = ∇ᵧf(x, y_n)`, `d = ∇ₓf(x, y_n)`, for `t = n−1, …, 0`: `d ← d − α∇²ₓᵧg(x, y_t)v`,
/// `v ← v − α∇²ᵧᵧg(x, y_t)v`. Returns `(d, v)`: the gradients to `x` and to the run's start
/// `y_0`. Cost: 1 Gc and `n` MV. Shared by [`Rhg`] and [`IapttGm`](super::IapttGm).
pub(crate) fn reverse_through(
    o: &mut Oracle<'_>,
    x: &Mat<f64>,
    run: &[Mat<f64>],
    alpha: f64,
) -> (Mat<f64>, Mat<f64>) {
    let (last, steps) = run.split_last().expect("a run holds its start");
    let gf = o.grad_f(x, last);
    let (mut v, mut d) = (gf.y, gf.x);
    for y in steps.iter().rev() {
        let c = o.hvp_g(x, y, &v);
        axpy(&mut d, -alpha, &c.xy);
        axpy(&mut v, -alpha, &c.yy);
    }
    (d, v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Problem;
    use crate::problems::QuadraticKappa;

    /// Without warm starts every inner run starts from `y₀`, and the reported `y` is that run's
    /// `y_T` (it once stayed at `y₀`, so a run's metrics described its starting model).
    #[test]
    fn cold_starts_run_from_y0_and_report_y_t() {
        let p = QuadraticKappa::new(10.0, 2);
        let params = RhgParams {
            alpha: 0.05,
            beta: 0.1,
            inner_steps: 4,
            truncate: None,
            warm_start: false,
        };
        let mut s = Rhg::new(params).unwrap();
        let mut o = Oracle::new(&p);
        let y0 = p.y0();
        let mut it = Iterate {
            x: crate::vecops::from_slice(&[1.0, -2.0]),
            y: y0.clone(),
        };
        // y_T from y₀ at the current x, by hand.
        let inner = |o: &mut Oracle<'_>, x: &Mat<f64>| {
            let mut y = y0.clone();
            for _ in 0..params.inner_steps {
                let g = o.grad_g(x, &y).y;
                axpy(&mut y, -params.alpha, &g);
            }
            y
        };
        for _ in 0..3 {
            let want = inner(&mut o, &it.x);
            s.step(&mut o, &mut it, 0);
            assert_eq!(it.y, want);
            assert_ne!(it.y, y0);
        }
        // The start survives a checkpoint.
        let mut resumed = Rhg::new(params).unwrap();
        resumed.load_state(s.save_state()).unwrap();
        let mut again = it.clone();
        let want = inner(&mut o, &it.x);
        resumed.step(&mut o, &mut again, 0);
        assert_eq!(again.y, want);
        // A checkpoint of the version without the field resumes from the `y` it saved.
        let mut old = Rhg::new(params).unwrap();
        old.load_state(serde_json::json!({})).unwrap();
        let mut from_old = Iterate {
            x: it.x.clone(),
            y: y0.clone(),
        };
        old.step(&mut o, &mut from_old, 0);
        assert_eq!(from_old.y, want);
    }
}

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
/// reports `‖∇f + λ∇q‖` as `delta_norm`. First order: `T + 2` Gc per iteration (`∇g(x, y)`,
/// which is also the first of the `T` inner gradients, `T − 1` more inner gradients,
/// `∇g(x, y_T)` and `∇f(x, y)`).
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
        // ∇g at (x, y) serves twice: in ∇q, and as the first inner gradient (y_T's descent
        // starts at y), so the inner loop asks for T − 1 more and the step makes T + 2 calls.
        let gg = o.grad_g(&it.x, &it.y);
        let mut yt = it.y.clone();
        axpy(&mut yt, -p.inner_step, &gg.y);
        o.project_y(&mut yt);
        for _ in 1..p.inner_steps {
            let gy = o.grad_g(&it.x, &yt).y;
            axpy(&mut yt, -p.inner_step, &gy);
            o.project_y(&mut yt);
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::Problem;
    use crate::problems::ScSinCos;

    fn bits(it: &Iterate) -> Vec<u64> {
        let (x, y) = (it.x.col_as_slice(0), it.y.col_as_slice(0));
        x.iter().chain(y).map(|v| v.to_bits()).collect()
    }

    /// The step as it was written before the first inner gradient was shared: T inner calls from
    /// `y`, then `∇g(x, y)`, `∇g(x, y_T)` and `∇f(x, y)`.
    fn step_with_t_plus_3(p: BomeParams, o: &mut Oracle<'_>, it: &mut Iterate) {
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
    }

    /// `T + 2` gradient calls per step, and the same iterates, bit for bit, as the step that
    /// computed the first inner gradient again.
    #[test]
    fn one_gradient_serves_q_and_the_first_inner_step() {
        let p = ScSinCos::default();
        for t in [1, 2, 5] {
            let params = BomeParams {
                xi: 1e-3,
                inner_step: 0.01,
                inner_steps: t,
                ..BomeParams::default()
            };
            let mut s = Bome::new(params).unwrap();
            let (mut o, mut o_ref) = (Oracle::new(&p), Oracle::new(&p));
            let mut it = Iterate {
                x: p.x0(),
                y: p.y0(),
            };
            let mut it_ref = it.clone();
            for k in 0..20 {
                s.step(&mut o, &mut it, k);
                step_with_t_plus_3(params, &mut o_ref, &mut it_ref);
                assert_eq!(bits(&it), bits(&it_ref), "T = {t}, step {k}");
            }
            assert_eq!(o.counts().gc, 20 * (t as u64 + 2));
            assert_eq!(o_ref.counts().gc, 20 * (t as u64 + 3));
        }
    }
}

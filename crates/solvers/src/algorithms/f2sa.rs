use super::schedule::{PenaltySchedule, penalty_rules};
use crate::error::{Error, check_count};
use crate::oracle::Oracle;
use crate::sampling::{Minibatch, SampleStream, Source, grad_f, grad_g};
use crate::solver::{Iterate, Scalars, Solver, col, state_io};
use crate::vecops::{axpy, lincomb, zeros};
use bilevel_linalg::Mat;
use serde::{Deserialize, Serialize};

/// Parameters of [`F2sa`]: the step and penalty schedules ([`PenaltySchedule`], whose fields
/// appear at the top level of the parameters' serde form: `alpha0`, `gamma0`, ...), the inner
/// loop and the minibatch.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct F2saParams {
    /// `α_k, γ_k, λ_k` and the `x` step ratio `ξ`.
    #[serde(flatten)]
    pub schedule: PenaltySchedule,
    /// `T ≥ 1`: inner iterations on `(y, z)` per outer step (`T = 1` is the basic variant;
    /// the theory takes `T = O(κ)`).
    pub inner_steps: usize,
    /// Minibatch oracles (the stochastic variant, "F²SA: replace gradients by unbiased
    /// estimates"): every gradient is an average over freshly drawn samples. `None`: exact
    /// gradients.
    pub batch: Option<Minibatch>,
}

impl F2saParams {
    /// The fixed-penalty variant of Chen, Ma and Zhang, "Near-optimal nonconvex-strongly-convex
    /// bilevel optimization with fully first-order oracles": `λ` fixed (at `O(1/ε)`), constant
    /// steps `alpha` for `y`, `gamma` for `z`, `x_step` for `x` (their `O(κ⁻³)`, independent of
    /// `λ`), and `T = O(κ)` inner steps.
    pub fn fixed_lambda(
        lambda: f64,
        alpha: f64,
        gamma: f64,
        x_step: f64,
        inner_steps: usize,
    ) -> Self {
        F2saParams {
            schedule: PenaltySchedule {
                alpha0: alpha,
                gamma0: gamma,
                xi: x_step / alpha,
                lambda0: lambda,
                k0: 1.0,
                a: 0.0,
                c: 0.0,
            },
            inner_steps,
            batch: None,
        }
    }

    /// Reject out-of-range values.
    pub fn validate(&self) -> Result<(), Error> {
        self.schedule.validate(NAME)?;
        check_count(NAME, "inner_steps", self.inner_steps, 1, ">= 1")?;
        self.batch.map_or(Ok(()), |b| b.validate(NAME))
    }
}

impl Default for F2saParams {
    /// The exact-gradient schedule ([`PenaltySchedule`]'s default), `T = 1`, exact gradients.
    fn default() -> Self {
        F2saParams {
            schedule: PenaltySchedule::default(),
            inner_steps: 1,
            batch: None,
        }
    }
}

penalty_rules!(F2saParams);

pub(crate) const NAME: &str = "f2sa";

#[derive(Clone, Debug, Serialize, Deserialize)]
struct State {
    #[serde(with = "col")]
    z: Mat<f64>,
    stream: SampleStream,
}

/// F²SA with its inner loop ("F²SA: the most basic variant" for `T = 1`, "F²SA: inner loop for
/// y, z" otherwise, in the fully-first-order slides; Algorithm 3 of the single-loop AID/ITD
/// paper is the fixed-λ case).
///
/// Per iteration `k`, `T` times: `z ← P(z − γ_k∇ᵧg(x, z))`,
/// `y ← P(y − α_k(∇ᵧf(x, y) + λ_k∇ᵧg(x, y)))`; then
/// `x ← P(x − ξα_k(∇ₓf(x, y) + λ_k(∇ₓg(x, y) − ∇ₓg(x, z))))` at the new `y, z`. `λ` follows
/// the schedule of [`F2saParams`] (fixed when `a = c`). First order: `3T + 3` Gc.
/// `∇Φ_λ` differs from `∇Φ` by `O(κ³/λ)` (Lemma 13 of the single-loop paper).
///
/// With [`F2saParams::batch`], every gradient is a minibatch average from the solver's seeded
/// stream; the two `∇ₓg` of the `x` step share one draw, so their difference (`O(1/λ)`, then
/// multiplied by `λ`) is not swamped by sampling noise.
#[derive(Clone, Debug)]
pub struct F2sa {
    params: F2saParams,
    state: State,
}

impl F2sa {
    /// A solver with validated parameters.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first bad parameter.
    pub fn new(params: F2saParams) -> Result<Self, Error> {
        params.validate()?;
        Ok(F2sa {
            params,
            state: State {
                z: zeros(0),
                stream: SampleStream::new(params.batch.map_or(0, |b| b.seed)),
            },
        })
    }
}

impl Solver for F2sa {
    fn name(&self) -> &'static str {
        NAME
    }
    fn init(&mut self, o: &mut Oracle<'_>, it: &mut Iterate) -> Result<(), Error> {
        if let Some(b) = &self.params.batch {
            b.check(NAME, o)?;
        }
        self.state.z = it.y.clone();
        Ok(())
    }
    fn step(&mut self, o: &mut Oracle<'_>, it: &mut Iterate, k: u64) -> Scalars {
        let p = self.params;
        let ((alpha, gamma, lambda), _) = p.schedule.at(k);
        let src = p.batch.as_ref().map_or(Source::Full, Source::Batch);
        let st = &mut self.state;
        for _ in 0..p.inner_steps {
            let dz = src.draw_g(o, &mut st.stream);
            let gz = grad_g(o, &it.x, &st.z, &dz).y;
            axpy(&mut st.z, -gamma, &gz);
            o.project_y(&mut st.z);
            let (df, dg) = (src.draw_f(o, &mut st.stream), src.draw_g(o, &mut st.stream));
            let gfy = grad_f(o, &it.x, &it.y, &df).y;
            let ggy = grad_g(o, &it.x, &it.y, &dg).y;
            axpy(&mut it.y, -alpha, &gfy);
            axpy(&mut it.y, -alpha * lambda, &ggy);
            o.project_y(&mut it.y);
        }
        // The two g gradients of the x step share their samples: their difference is O(1/λ) and
        // is multiplied by λ, so independent samples would add λ times the noise of ∇ₓg.
        let (df, dg) = (src.draw_f(o, &mut st.stream), src.draw_g(o, &mut st.stream));
        let gf = grad_f(o, &it.x, &it.y, &df);
        let gg = grad_g(o, &it.x, &it.y, &dg);
        let gz = grad_g(o, &it.x, &st.z, &dg);
        let d = lincomb(1.0, &gf.x, lambda, &lincomb(1.0, &gg.x, -1.0, &gz.x));
        axpy(&mut it.x, -p.schedule.xi * alpha, &d);
        o.project_x(&mut it.x);
        vec![("lambda", lambda), ("alpha", alpha)]
    }
    fn aux(&self) -> Vec<(&'static str, &Mat<f64>)> {
        vec![("z", &self.state.z)]
    }
    state_io!();
}

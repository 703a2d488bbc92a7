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

/// The state of the penalty methods (F²SA, F²BA): the lower-level copy `z` and the sample
/// stream.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct State {
    #[serde(with = "col")]
    pub(crate) z: Mat<f64>,
    pub(crate) stream: SampleStream,
}

impl State {
    /// Before `init`: an empty `z`, the stream seeded by the batch's seed (0 without one).
    pub(crate) fn new(batch: Option<&Minibatch>) -> Self {
        State {
            z: zeros(0),
            stream: SampleStream::new(batch.map_or(0, |b| b.seed)),
        }
    }
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
            state: State::new(params.batch.as_ref()),
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
        let steps = PenaltySteps {
            alpha,
            gamma,
            lambda,
            x_step: p.schedule.xi * alpha,
            inner_steps: p.inner_steps,
        };
        let src = p.batch.as_ref().map_or(Source::Full, Source::Batch);
        penalty_iteration(o, it, &mut self.state.z, &mut self.state.stream, src, steps);
        vec![("lambda", lambda), ("alpha", alpha)]
    }
    fn aux(&self) -> Vec<(&'static str, &Mat<f64>)> {
        vec![("z", &self.state.z)]
    }
    state_io!();
}

/// The steps of one penalty iteration ([`penalty_iteration`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct PenaltySteps {
    /// Step of `y` on `∇ᵧf + λ∇ᵧg`.
    pub(crate) alpha: f64,
    /// Step of `z` on `∇ᵧg`.
    pub(crate) gamma: f64,
    /// The penalty `λ`.
    pub(crate) lambda: f64,
    /// Step of `x` on `∇ₓf + λ(∇ₓg(x, y) − ∇ₓg(x, z))`.
    pub(crate) x_step: f64,
    /// Inner iterations on `(y, z)`.
    pub(crate) inner_steps: usize,
}

/// One iteration of the fully first-order penalty scheme F²SA and F²BA share: `T` times
/// `z ← P(z − γ∇ᵧg(x, z))`, `y ← P(y − α(∇ᵧf(x, y) + λ∇ᵧg(x, y)))`; then
/// `x ← P(x − η_x(∇ₓf(x, y) + λ(∇ₓg(x, y) − ∇ₓg(x, z))))` at the new `y, z`. First order:
/// `3T + 3` Gc.
///
/// With minibatches, every gradient is an average over samples drawn from `stream`; the two
/// `∇ₓg` of the `x` step share one draw, so their difference (`O(1/λ)`, then multiplied by
/// `λ`) is not swamped by sampling noise.
pub(crate) fn penalty_iteration(
    o: &mut Oracle<'_>,
    it: &mut Iterate,
    z: &mut Mat<f64>,
    stream: &mut SampleStream,
    src: Source<'_>,
    s: PenaltySteps,
) {
    for _ in 0..s.inner_steps {
        let dz = src.draw_g(o, stream);
        let gz = grad_g(o, &it.x, z, &dz).y;
        axpy(z, -s.gamma, &gz);
        o.project_y(z);
        let (df, dg) = (src.draw_f(o, stream), src.draw_g(o, stream));
        let gfy = grad_f(o, &it.x, &it.y, &df).y;
        let ggy = grad_g(o, &it.x, &it.y, &dg).y;
        axpy(&mut it.y, -s.alpha, &gfy);
        axpy(&mut it.y, -s.alpha * s.lambda, &ggy);
        o.project_y(&mut it.y);
    }
    // The two g gradients of the x step share their samples: their difference is O(1/λ) and
    // is multiplied by λ, so independent samples would add λ times the noise of ∇ₓg.
    let (df, dg) = (src.draw_f(o, stream), src.draw_g(o, stream));
    let gf = grad_f(o, &it.x, &it.y, &df);
    let gg = grad_g(o, &it.x, &it.y, &dg);
    let gz = grad_g(o, &it.x, z, &dg);
    let d = lincomb(1.0, &gf.x, s.lambda, &lincomb(1.0, &gg.x, -1.0, &gz.x));
    axpy(&mut it.x, -s.x_step, &d);
    o.project_x(&mut it.x);
}

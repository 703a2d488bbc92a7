//! AmIGO: warm-started SGD on the lower level and on the linear system.

use super::soba::DEFAULT_BATCH;
use crate::error::{Error, check_count, check_pos};
use crate::implicit::{State, aid_iteration, sgd_linear};
use crate::oracle::Oracle;
use crate::rules::{LINEAR, Rule, StepRules, inner_rule, l_g_rule, outer_rule};
use crate::sampling::{Minibatch, Source};
use crate::solver::{Iterate, Scalars, Solver, state_io};
use crate::vecops::norm;
use bilevel_linalg::Mat;
use serde::{Deserialize, Serialize};

/// Parameters of [`Amigo`]. The defaults are those of the benchmark's solver (benchopt's
/// `benchmark_bilevel`, `solvers/amigo.py`: `step_size = 0.1` for `α` and `η`,
/// `outer_ratio = 1`, ten steps of each inner SGD, batches of 64).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AmigoParams {
    /// `α`: the step of SGD on `g(x, ·)`. Default 0.1; the rule is the shared `1/L_g`.
    pub alpha: f64,
    /// `β`: the outer step. Default 0.1.
    pub beta: f64,
    /// `η`: the step of SGD on the linear system, a quadratic whose Hessian is `∇²ᵧᵧg ⪯ L_g I`.
    /// Default 0.1; the rule is `1/L_g`.
    pub eta: f64,
    /// `T`: SGD steps on `g(x, ·)` per outer iteration, warm-started. Default 10.
    pub inner_steps: usize,
    /// `N`: SGD steps on the linear system per outer iteration, warm-started from the previous
    /// solution. Default 10 (the benchmark takes `N = T`).
    pub linear_steps: usize,
    /// Minibatch oracles: every inner gradient, every step on the linear system, the mixed
    /// product and the pair `∇ₓf, ∇ᵧf` each take a draw of their own. `None`: exact oracles.
    /// Default 64 and 64.
    pub batch: Option<Minibatch>,
}

impl Default for AmigoParams {
    /// `α = β = η = 0.1`, `T = N = 10`, batches of 64.
    fn default() -> Self {
        AmigoParams {
            alpha: 0.1,
            beta: 0.1,
            eta: 0.1,
            inner_steps: 10,
            linear_steps: 10,
            batch: Some(DEFAULT_BATCH),
        }
    }
}

impl AmigoParams {
    /// Reject out-of-range values.
    pub fn validate(&self) -> Result<(), Error> {
        check_pos(NAME, "alpha", self.alpha)?;
        check_pos(NAME, "beta", self.beta)?;
        check_pos(NAME, "eta", self.eta)?;
        check_count(NAME, "inner_steps", self.inner_steps, 1, ">= 1")?;
        check_count(NAME, "linear_steps", self.linear_steps, 1, ">= 1")?;
        self.batch.map_or(Ok(()), |b| b.validate(NAME))
    }
}

impl StepRules for AmigoParams {
    fn rules() -> &'static [Rule<Self>] {
        &[
            inner_rule!(AmigoParams, alpha),
            l_g_rule!(AmigoParams, eta, LINEAR),
            outer_rule!(AmigoParams, beta),
        ]
    }
}

pub(crate) const NAME: &str = "amigo";

/// AmIGO, Amortized Implicit Gradient Optimization (Algorithm 1 of Arbel and Mairal, "Amortized
/// implicit differentiation for stochastic bilevel optimization", ICLR 2022), with SGD as both
/// inner solvers: the lower-level iterate `y` and the linear system's solution `v` are each
/// warm-started from the previous outer iteration, so a fixed number of inner steps suffices.
///
/// Per outer iteration, each quantity on its own draw of samples:
/// `T` steps `y ← y − α∇ᵧgᵢ(x, y)`; `(∇ₓfⱼ, ∇ᵧfⱼ)` at the new `y`;
/// `N` steps `v ← v − η(∇²ᵧᵧgₗ·v − ∇ᵧfⱼ)` from the previous `v` (`v₀ = 0`);
/// `x ← x − β(∇ₓfⱼ − ∇²ₓᵧgₘ·v)`. Cost: `T + 1` Gc and `N + 1` MV. The paper's analysis keeps
/// `T` and `N` constant thanks to the warm starts, with steps of order `1/L_g` for both inner
/// solvers. Its `z` is our `−v`.
#[derive(Clone, Debug)]
pub struct Amigo {
    params: AmigoParams,
    state: State,
}

impl Amigo {
    /// A solver with validated parameters.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first bad parameter.
    pub fn new(params: AmigoParams) -> Result<Self, Error> {
        params.validate()?;
        Ok(Amigo {
            params,
            state: State::new(params.batch.as_ref()),
        })
    }
}

impl Solver for Amigo {
    fn name(&self) -> &'static str {
        NAME
    }
    fn init(&mut self, o: &mut Oracle<'_>, _it: &mut Iterate) -> Result<(), Error> {
        self.state.init(NAME, self.params.batch.as_ref(), o)
    }
    fn step(&mut self, o: &mut Oracle<'_>, it: &mut Iterate, _k: u64) -> Scalars {
        let p = self.params;
        let src = p.batch.as_ref().map_or(Source::Full, Source::Batch);
        let (x, y, st) = (&mut it.x, &mut it.y, &mut self.state);
        let inner = (p.alpha, p.inner_steps);
        let d = aid_iteration(o, x, y, st, inner, p.beta, &src, |o, x, y, b, v, src, s| {
            sgd_linear(o, x, y, v, b, p.eta, p.linear_steps, src, s);
        });
        vec![("hypergrad_est_norm", norm(&d)), ("v_norm", norm(&st.v))]
    }
    fn aux(&self) -> Vec<(&'static str, &Mat<f64>)> {
        vec![("v", &self.state.v)]
    }
    state_io!();
}

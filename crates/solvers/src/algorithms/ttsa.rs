//! TTSA: one lower-level step per outer step, on two time scales, with BSA's hypergradient.

use super::bsa::{check_series, check_steps, step};
use super::schedule::decayed;
use super::soba::DEFAULT_BATCH;
use crate::error::Error;
use crate::implicit::State;
use crate::oracle::Oracle;
use crate::rules::{NEUMANN, Rule, StepRules, inner_rule, l_g_rule, outer_rule};
use crate::sampling::Minibatch;
use crate::solver::{Iterate, Scalars, Solver, state_io};
use bilevel_linalg::Mat;
use serde::{Deserialize, Serialize};

/// Parameters of [`Ttsa`]: the steps `α_k = α/(k+1)^{a_α}` of `y` and `β_k = β/(k+1)^{a_β}` of
/// `x`, the series and the minibatch. The defaults are those of the benchmark's solver
/// (benchopt's `benchmark_bilevel`, `solvers/ttsa.py`: `step_size = 0.1` for `α` and `η`,
/// `outer_ratio = 1`, decays `2/5` and `3/5`, a series of ten, batches of 64); the decays are
/// the paper's orders `K^{−2/5}` and `K^{−3/5}` for a weakly convex `Φ` (its analysis takes
/// constant steps of those orders for a horizon `K`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TtsaParams {
    /// `α`: the lower-level step (the fast time scale) at the first iteration. Default 0.1;
    /// the rule is the shared `1/L_g`.
    pub alpha: f64,
    /// `a_α ∈ [0, 1]`: the decay exponent of `α_k`. Default `2/5`.
    pub alpha_decay: f64,
    /// `β`: the outer step (the slow time scale) at the first iteration. Default 0.1; the rule
    /// is the shared `1/(2L_Φ)` (ours: the paper's constants have no closed form here), half the
    /// rule's `α`, and the decays make `β_k/α_k → 0`.
    pub beta: f64,
    /// `a_β ∈ [0, 1]`: the decay exponent of `β_k`. Default `3/5`.
    pub beta_decay: f64,
    /// `η`: the step of the series (the paper's `c_h/L_g`, `c_h ∈ (0, 1]`; the rule takes
    /// `c_h = 1`). Default 0.1.
    pub eta: f64,
    /// `Q`: the length of the series; the truncation is uniform in `{0, …, Q − 1}`. Default 10.
    pub neumann_terms: usize,
    /// Minibatch oracles, as [`BsaParams::batch`](super::BsaParams::batch). Default 64 and 64.
    pub batch: Option<Minibatch>,
}

impl Default for TtsaParams {
    /// `α = β = η = 0.1` with decays `2/5` and `3/5`, `Q = 10`, batches of 64.
    fn default() -> Self {
        TtsaParams {
            alpha: 0.1,
            alpha_decay: 0.4,
            beta: 0.1,
            beta_decay: 0.6,
            eta: 0.1,
            neumann_terms: 10,
            batch: Some(DEFAULT_BATCH),
        }
    }
}

impl TtsaParams {
    /// Reject out-of-range values.
    pub fn validate(&self) -> Result<(), Error> {
        check_steps(
            NAME,
            self.alpha,
            self.alpha_decay,
            self.beta,
            self.beta_decay,
        )?;
        check_series(NAME, self.eta, self.neumann_terms)?;
        self.batch.map_or(Ok(()), |b| b.validate(NAME))
    }
}

impl StepRules for TtsaParams {
    fn rules() -> &'static [Rule<Self>] {
        &[
            inner_rule!(TtsaParams, alpha),
            l_g_rule!(TtsaParams, eta, NEUMANN),
            outer_rule!(TtsaParams, beta),
        ]
    }
}

pub(crate) const NAME: &str = "ttsa";

/// TTSA, the Two-Timescale Stochastic Approximation algorithm (Algorithm 1 of Hong, Wai, Wang
/// and Yang, "A Two-Timescale Stochastic Algorithm Framework for Bilevel Optimization:
/// Complexity Analysis and Application to Actor-Critic", SIAM J. Optim. 2023): one stochastic
/// gradient step on the lower level with a larger step and one projected stochastic
/// hypergradient step on `x` with a smaller one, the hypergradient from Ghadimi and Wang's
/// randomly truncated Neumann estimate.
///
/// Per iteration `k`, each quantity on its own draw of samples:
/// `y ← y − α_k∇ᵧgᵢ(x, y)`; `(∇ₓfⱼ, ∇ᵧfⱼ)` at the new `y`; `p` uniform in `{0, …, Q − 1}` and
/// `v = Qη Π_{l=1}^{p}(I − η∇²ᵧᵧgₗ) ∇ᵧfⱼ`; `x ← Π_X(x − β_k(∇ₓfⱼ − ∇²ₓᵧgₘ·v))`. Cost: 2 Gc
/// and `p + 1` MV. This is [`Bsa`](super::Bsa)'s step with one inner step (the same code);
/// the two time scales are `β_k/α_k → 0`. With a nonconvex `Φ`, steps of orders `K^{−3/5}`
/// (`x`) and `K^{−2/5}` (`y`) give an `O(K^{−2/5})`-stationary point.
///
/// The benchmark's solver (benchopt's `benchmark_bilevel`) takes the mixed product on the
/// inner step's samples; this one, as the paper's estimator, on a draw of its own.
#[derive(Clone, Debug)]
pub struct Ttsa {
    params: TtsaParams,
    state: State,
}

impl Ttsa {
    /// A solver with validated parameters.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first bad parameter.
    pub fn new(params: TtsaParams) -> Result<Self, Error> {
        params.validate()?;
        Ok(Ttsa {
            params,
            state: State::new(params.batch.as_ref()),
        })
    }
}

impl Solver for Ttsa {
    fn name(&self) -> &'static str {
        NAME
    }
    fn init(&mut self, o: &mut Oracle<'_>, _it: &mut Iterate) -> Result<(), Error> {
        self.state.init(NAME, self.params.batch.as_ref(), o)
    }
    fn step(&mut self, o: &mut Oracle<'_>, it: &mut Iterate, k: u64) -> Scalars {
        let p = self.params;
        let steps = (
            decayed(p.alpha, p.alpha_decay, k),
            decayed(p.beta, p.beta_decay, k),
        );
        let series = (p.eta, p.neumann_terms);
        step(o, it, &mut self.state, steps, 1, series, p.batch.as_ref())
    }
    fn aux(&self) -> Vec<(&'static str, &Mat<f64>)> {
        vec![("v", &self.state.v)]
    }
    state_io!();
}

//! BSA: inner SGD and a hypergradient from a randomly truncated Neumann series; its step is
//! shared with TTSA, which takes one inner step on a faster time scale.

use super::schedule::{check_decay, decayed};
use super::soba::DEFAULT_BATCH;
use crate::error::{Error, check_count, check_pos};
use crate::implicit::{State, aid_iteration, neumann_random};
use crate::oracle::Oracle;
use crate::rules::{NEUMANN, Rule, StepRules, inner_rule, l_g_rule, outer_rule};
use crate::sampling::{Minibatch, Source};
use crate::solver::{Iterate, Scalars, Solver, state_io};
use crate::vecops::norm;
use bilevel_linalg::Mat;
use serde::{Deserialize, Serialize};

/// Parameters of [`Bsa`]: the steps `α_k = α/(k+1)^{a_α}` of `y` and `β_k = β/(k+1)^{a_β}` of
/// `x`, the series and the minibatch. The defaults are those of the benchmark's solver
/// (benchopt's `benchmark_bilevel`, `solvers/bsa.py`: `step_size = 0.1` for `α` and `η`,
/// `outer_ratio = 1`, both steps decaying as `1/√(k+1)`, ten inner steps, a series of ten,
/// batches of 64).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BsaParams {
    /// `α`: the inner SGD step at the first outer iteration. Default 0.1; the rule is the
    /// shared `1/L_g`.
    pub alpha: f64,
    /// `a_α ∈ [0, 1]`: the decay exponent of `α_k`. Default `1/2`.
    pub alpha_decay: f64,
    /// `β`: the outer step at the first iteration. Default 0.1.
    pub beta: f64,
    /// `a_β ∈ [0, 1]`: the decay exponent of `β_k`. Default `1/2`.
    pub beta_decay: f64,
    /// `η`: the step of the series; the paper's Algorithm 3 takes `η = 1/L_g` (the rule).
    /// Default 0.1.
    pub eta: f64,
    /// `t`: SGD steps on `g(x, ·)` per outer iteration, warm-started. Default 10. (The paper's
    /// analysis lets this count grow with `k`.)
    pub inner_steps: usize,
    /// `Q`: the length of the series; the truncation is uniform in `{0, …, Q − 1}` (the paper's
    /// `b`). Default 10.
    pub neumann_terms: usize,
    /// Minibatch oracles: every inner gradient, every factor of the series, the mixed product
    /// and the pair `∇ₓf, ∇ᵧf` each take a draw of their own. `None`: exact oracles, and the
    /// series' mean (all `Q` terms) in place of its random truncation. Default 64 and 64.
    pub batch: Option<Minibatch>,
}

impl Default for BsaParams {
    /// `α = β = η = 0.1` with decays `1/2`, ten inner steps, `Q = 10`, batches of 64.
    fn default() -> Self {
        BsaParams {
            alpha: 0.1,
            alpha_decay: 0.5,
            beta: 0.1,
            beta_decay: 0.5,
            eta: 0.1,
            inner_steps: 10,
            neumann_terms: 10,
            batch: Some(DEFAULT_BATCH),
        }
    }
}

impl BsaParams {
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
        check_count(NAME, "inner_steps", self.inner_steps, 1, ">= 1")?;
        self.batch.map_or(Ok(()), |b| b.validate(NAME))
    }
}

/// The two decaying steps of BSA and TTSA.
pub(crate) fn check_steps(
    solver: &'static str,
    alpha: f64,
    alpha_decay: f64,
    beta: f64,
    beta_decay: f64,
) -> Result<(), Error> {
    check_pos(solver, "alpha", alpha)?;
    check_decay(solver, "alpha_decay", alpha_decay)?;
    check_pos(solver, "beta", beta)?;
    check_decay(solver, "beta_decay", beta_decay)
}

/// The randomly truncated series of BSA and TTSA.
pub(crate) fn check_series(solver: &'static str, eta: f64, terms: usize) -> Result<(), Error> {
    check_pos(solver, "eta", eta)?;
    check_count(solver, "neumann_terms", terms, 1, ">= 1")
}

impl StepRules for BsaParams {
    fn rules() -> &'static [Rule<Self>] {
        &[
            inner_rule!(BsaParams, alpha),
            l_g_rule!(BsaParams, eta, NEUMANN),
            outer_rule!(BsaParams, beta),
        ]
    }
}

pub(crate) const NAME: &str = "bsa";

/// One outer iteration of BSA (and, with one inner step, of TTSA) with the steps `α_k` of `y`
/// and `β_k` of `x`: `inner_steps` SGD steps on `g(x, ·)`, `(∇ₓfⱼ, ∇ᵧfⱼ)` at the new `y`, the
/// randomly truncated series `v ≈ [∇²ᵧᵧg]⁻¹∇ᵧfⱼ`, and the projected step
/// `x ← Π_X(x − β_k(∇ₓfⱼ − ∇²ₓᵧgₗ·v))`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn step(
    o: &mut Oracle<'_>,
    it: &mut Iterate,
    st: &mut State,
    (alpha, beta): (f64, f64),
    inner_steps: usize,
    (eta, terms): (f64, usize),
    batch: Option<&Minibatch>,
) -> Scalars {
    let src = batch.map_or(Source::Full, Source::Batch);
    let mut p = 0;
    let (x, y) = (&mut it.x, &mut it.y);
    let d = aid_iteration(
        o,
        x,
        y,
        st,
        (alpha, inner_steps),
        beta,
        &src,
        |o, x, y, b, v, src, s| {
            (*v, p) = neumann_random(o, x, y, b, eta, terms, src, s);
        },
    );
    o.project_x(&mut it.x);
    vec![
        ("alpha", alpha),
        ("beta", beta),
        ("hypergrad_est_norm", norm(&d)),
        ("v_norm", norm(&st.v)),
        ("truncation", p as f64),
    ]
}

/// BSA, Bilevel Stochastic Approximation (Algorithm 2 of Ghadimi and Wang, "Approximation
/// Methods for Bilevel Programming", 2018): SGD on the lower level, then a projected
/// stochastic gradient step on `x` with a hypergradient from their randomly truncated Neumann
/// estimate of the Hessian inverse (their Algorithm 3).
///
/// Per outer iteration `k`, each quantity on its own draw of samples:
/// `t` steps `y ← y − α_k∇ᵧgᵢ(x, y)` from the previous `y`; `(∇ₓfⱼ, ∇ᵧfⱼ)` at the new `y`;
/// `p` uniform in `{0, …, Q − 1}` and `v = Qη Π_{l=1}^{p}(I − η∇²ᵧᵧgₗ) ∇ᵧfⱼ`;
/// `x ← Π_X(x − β_k(∇ₓfⱼ − ∇²ₓᵧgₘ·v))`. Cost: `t + 1` Gc and `p + 1` MV (on average
/// `(Q + 1)/2`). Over `p` and the draws, `v`'s mean is the `Q`-term series
/// `η Σ_{q<Q}(I − η∇²ᵧᵧg)^q ∇ᵧf`, whose bias `(1 − ημ)^Q` the paper makes small with
/// `η = 1/L_g` and `Q` of order `κ log(1/ε)`.
///
/// The lower level moves before the hypergradient, as in the paper; the benchmark's solver
/// (benchopt's `benchmark_bilevel`) steps `x` first, from `y` as the previous iteration left
/// it. With exact oracles the truncation is replaced by the series' mean, so the run is
/// deterministic.
#[derive(Clone, Debug)]
pub struct Bsa {
    params: BsaParams,
    state: State,
}

impl Bsa {
    /// A solver with validated parameters.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first bad parameter.
    pub fn new(params: BsaParams) -> Result<Self, Error> {
        params.validate()?;
        Ok(Bsa {
            params,
            state: State::new(params.batch.as_ref()),
        })
    }
}

impl Solver for Bsa {
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
        step(
            o,
            it,
            &mut self.state,
            steps,
            p.inner_steps,
            series,
            p.batch.as_ref(),
        )
    }
    fn aux(&self) -> Vec<(&'static str, &Mat<f64>)> {
        vec![("v", &self.state.v)]
    }
    state_io!();
}

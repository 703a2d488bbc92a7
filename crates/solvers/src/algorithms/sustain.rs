//! SUSTAIN: double momentum (STORM-type estimators of `∇ᵧg` and of the hypergradient), single
//! loop, the hypergradient from the randomly truncated Neumann series.

use super::bsa::{check_series, check_steps};
use super::mrbo::check_momentum;
use super::schedule::decayed;
use super::soba::DEFAULT_BATCH;
use crate::error::Error;
use crate::implicit::Series;
use crate::oracle::Oracle;
use crate::recursive::Momentum;
use crate::rules::{NEUMANN, Rule, StepRules, inner_rule, l_g_rule, outer_rule};
use crate::sampling::{Minibatch, Source};
use crate::solver::{Iterate, Scalars, Solver, state_io};
use bilevel_linalg::Mat;
use serde::{Deserialize, Serialize};

/// Parameters of [`Sustain`]: the steps `α_k = α/(k+1)^{a_α}` of `y` and `β_k = β/(k+1)^{a_β}`
/// of `x`, the momentum weight `ρ_k = ρ/(k+1)^{a_ρ}`, the series and the minibatch.
///
/// The constants are the benchmark's (benchopt's `benchmark_bilevel`, `solvers/sustain.py`:
/// `step_size = 0.1` for `α`, `β` (`outer_ratio = 1`) and the series' step, `eta = 0.5` for
/// the momentum weight, `n_hia_steps = 10`, batches of 64); the decays `1/3, 1/3, 2/3` are the
/// paper's (steps `∝ (w + k)^{−1/3}`, momentum weights `∝` their square), which the benchmark
/// takes too, with `w = 1`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SustainParams {
    /// `α`: the step of `y` at the first iteration (the paper's `β_k`). Default 0.1; the rule
    /// is the shared `1/L_g`.
    pub alpha: f64,
    /// `a_α ∈ [0, 1]`: the decay exponent of `α_k`. Default `1/3`.
    pub alpha_decay: f64,
    /// `β`: the step of `x` at the first iteration (the paper's `α_k`). Default 0.1.
    pub beta: f64,
    /// `a_β ∈ [0, 1]`: the decay exponent of `β_k`. Default `1/3`.
    pub beta_decay: f64,
    /// `ρ ∈ (0, 1]`: the momentum weight at the first iteration (the paper's `η_k`, one for
    /// both estimators; the benchmark's `eta`). Default 0.5.
    pub rho: f64,
    /// `a_ρ ∈ [0, 1]`: the decay exponent of `ρ_k`. Default `2/3`.
    pub rho_decay: f64,
    /// `η`: the step of the series, the paper's `1/L_g` (the rule). Default 0.1.
    pub eta: f64,
    /// `Q`: the length of the series; the truncation is uniform in `{0, …, Q − 1}` (the
    /// paper's `K`). Default 10.
    pub neumann_terms: usize,
    /// Minibatch oracles: each recursive estimator takes one draw for both of its points, and
    /// both series one truncation; `None`: exact oracles, the series' mean in place of its
    /// random truncation, and the recursion returns the plain estimates. Default 64 and 64.
    pub batch: Option<Minibatch>,
}

impl Default for SustainParams {
    /// `α = β = η = 0.1` with decays `1/3`, `ρ = 0.5` with decay `2/3`, `Q = 10`, batches of 64.
    fn default() -> Self {
        SustainParams {
            alpha: 0.1,
            alpha_decay: 1.0 / 3.0,
            beta: 0.1,
            beta_decay: 1.0 / 3.0,
            rho: 0.5,
            rho_decay: 2.0 / 3.0,
            eta: 0.1,
            neumann_terms: 10,
            batch: Some(DEFAULT_BATCH),
        }
    }
}

impl SustainParams {
    /// Reject out-of-range values.
    pub fn validate(&self) -> Result<(), Error> {
        check_steps(
            NAME,
            self.alpha,
            self.alpha_decay,
            self.beta,
            self.beta_decay,
        )?;
        check_momentum(NAME, self.rho, self.rho_decay)?;
        check_series(NAME, self.eta, self.neumann_terms)?;
        self.batch.map_or(Ok(()), |b| b.validate(NAME))
    }

    /// `(α_k, β_k, ρ_k)` at iteration `k` (from 0).
    pub fn schedule_at(&self, k: u64) -> (f64, f64, f64) {
        (
            decayed(self.alpha, self.alpha_decay, k),
            decayed(self.beta, self.beta_decay, k),
            decayed(self.rho, self.rho_decay, k),
        )
    }
}

impl StepRules for SustainParams {
    fn rules() -> &'static [Rule<Self>] {
        &[
            inner_rule!(SustainParams, alpha),
            l_g_rule!(SustainParams, eta, NEUMANN),
            outer_rule!(SustainParams, beta),
        ]
    }
}

pub(crate) const NAME: &str = "sustain";

/// SUSTAIN (Algorithm 1 of Khanduri, Zeng, Hong, Wai, Wang and Yang, "A Near-Optimal
/// Algorithm for Stochastic Bilevel Optimization via Double-Momentum"): MRBO's iteration
/// ([`Mrbo`](super::Mrbo), the same code) with the hypergradient from Ghadimi and Wang's randomly
/// truncated Neumann series, as BSA's.
///
/// Per iteration `k`, with `pₖ = (xₖ, yₖ)` and `pₖ₋₁` the previous iterate:
/// `hᵍ ← ∇ᵧgᵢ(pₖ) + (1 − ρ_k)(hᵍ − ∇ᵧgᵢ(pₖ₋₁))` on one draw `i`;
/// `hᶠ ← ∇̄f(pₖ) + (1 − ρ_k)(hᶠ − ∇̄f(pₖ₋₁))` with
/// `∇̄f(p) = ∇ₓfⱼ(p) − ∇²ₓᵧgₗ(p)·Qη Π_{m=1}^{t}(I − η∇²ᵧᵧgₘ(p)) ∇ᵧfⱼ(p)`, `t` uniform in
/// `{0, …, Q − 1}`, and `t`, `j`, the factors `m` and `l` shared by the two points; then
/// `y ← y − α_k hᵍ`, `x ← x − β_k hᶠ`. At `k = 0` the estimates are the plain ones. Cost: `4`
/// Gc and `2(t + 1)` MV per iteration (half at `k = 0`).
///
/// The paper steps first and then estimates at the new point; this is the same sequence in
/// the benchmark's order (estimate, then step). The benchmark (benchopt's `benchmark_bilevel`)
/// starts its recursions from zero estimates and a zero "previous" point, and reuses the draw
/// of `∇ᵧg` for the mixed products; here the first estimates are the plain ones, as in the
/// paper, and the mixed products take their own draw. With exact oracles the truncation is
/// replaced by the series' mean, so the run is deterministic.
#[derive(Clone, Debug)]
pub struct Sustain {
    params: SustainParams,
    state: Momentum,
}

impl Sustain {
    /// A solver with validated parameters.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first bad parameter.
    pub fn new(params: SustainParams) -> Result<Self, Error> {
        params.validate()?;
        Ok(Sustain {
            params,
            state: Momentum::new(params.batch.map_or(0, |b| b.seed)),
        })
    }
}

impl Solver for Sustain {
    fn name(&self) -> &'static str {
        NAME
    }
    fn init(&mut self, o: &mut Oracle<'_>, _it: &mut Iterate) -> Result<(), Error> {
        if let Some(b) = &self.params.batch {
            b.check(NAME, o)?;
        }
        Ok(())
    }
    fn step(&mut self, o: &mut Oracle<'_>, it: &mut Iterate, k: u64) -> Scalars {
        let p = self.params;
        let src = p.batch.as_ref().map_or(Source::Full, Source::Batch);
        let series = Series::Random {
            eta: p.eta,
            terms: p.neumann_terms,
        };
        let (mut scalars, t) = self.state.step(o, it, p.schedule_at(k), series, &src);
        scalars.push(("truncation", t as f64));
        scalars
    }
    fn aux(&self) -> Vec<(&'static str, &Mat<f64>)> {
        vec![("d_y", &self.state.dy), ("d_x", &self.state.dx)]
    }
    state_io!();
}

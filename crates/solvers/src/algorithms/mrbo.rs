//! MRBO: momentum-based recursive estimators of `∇ᵧg` and of the hypergradient, single loop.

use super::bsa::check_steps;
use super::schedule::{check_decay, decayed};
use super::soba::DEFAULT_BATCH;
use crate::error::{Error, check, check_pos};
use crate::implicit::Series;
use crate::oracle::Oracle;
use crate::recursive::Momentum;
use crate::rules::{NEUMANN, Rule, StepRules, inner_rule, l_g_rule, outer_rule};
use crate::sampling::{Minibatch, Source};
use crate::solver::{Iterate, Scalars, Solver, state_io};
use bilevel_linalg::Mat;
use serde::{Deserialize, Serialize};

/// Parameters of [`Mrbo`]: the steps `α_k = α/(k+1)^{a_α}` of `y` and `β_k = β/(k+1)^{a_β}` of
/// `x`, the momentum weight `ρ_k = ρ/(k+1)^{a_ρ}`, the series and the minibatch.
///
/// The constants are the benchmark's (benchopt's `benchmark_bilevel`, `solvers/mrbo.py`:
/// `step_size = 0.1` for `α`, `β` (`outer_ratio = 1`) and the series' step, `eta = 0.5` for
/// the momentum weight, `n_shia_steps = 10`, batches of 64); the decays `1/3, 1/3, 2/3` are
/// the paper's (its steps scale as `(m + k)^{−1/3}` and its momentum weights as their square),
/// which the benchmark takes too, with `m = 1`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MrboParams {
    /// `α`: the step of `y` at the first iteration. Default 0.1; the rule is the shared
    /// `1/L_g`.
    pub alpha: f64,
    /// `a_α ∈ [0, 1]`: the decay exponent of `α_k`. Default `1/3`.
    pub alpha_decay: f64,
    /// `β`: the step of `x` at the first iteration. Default 0.1.
    pub beta: f64,
    /// `a_β ∈ [0, 1]`: the decay exponent of `β_k`. Default `1/3`.
    pub beta_decay: f64,
    /// `ρ ∈ (0, 1]`: the momentum weight at the first iteration (the weight of the fresh
    /// estimate; `1` keeps no memory; the benchmark's `eta`). Default 0.5.
    pub rho: f64,
    /// `a_ρ ∈ [0, 1]`: the decay exponent of `ρ_k`. Default `2/3`.
    pub rho_decay: f64,
    /// `η`: the step of the Neumann series, which converges for `η ≤ 1/L_g`. Default 0.1.
    pub eta: f64,
    /// `Q`: Hessian-vector products of the series (`Q + 1` terms). Default 10.
    pub neumann_steps: usize,
    /// Minibatch oracles: each recursive estimator takes one draw for both of its points;
    /// `None`: exact oracles, with which the recursion returns the plain estimates. Default 64
    /// and 64.
    pub batch: Option<Minibatch>,
}

impl Default for MrboParams {
    /// `α = β = η = 0.1` with decays `1/3`, `ρ = 0.5` with decay `2/3`, `Q = 10`, batches of 64.
    fn default() -> Self {
        MrboParams {
            alpha: 0.1,
            alpha_decay: 1.0 / 3.0,
            beta: 0.1,
            beta_decay: 1.0 / 3.0,
            rho: 0.5,
            rho_decay: 2.0 / 3.0,
            eta: 0.1,
            neumann_steps: 10,
            batch: Some(DEFAULT_BATCH),
        }
    }
}

/// A momentum weight `ρ ∈ (0, 1]` (FSLA's, MRBO's and SUSTAIN's).
pub(crate) fn check_weight(solver: &'static str, rho: f64) -> Result<(), Error> {
    check(solver, "rho", rho, rho > 0.0 && rho <= 1.0, "in (0, 1]")
}

/// The momentum weight of the double-momentum methods and its decay in `[0, 1]`.
pub(crate) fn check_momentum(solver: &'static str, rho: f64, rho_decay: f64) -> Result<(), Error> {
    check_weight(solver, rho)?;
    check_decay(solver, "rho_decay", rho_decay)
}

impl MrboParams {
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
        check_pos(NAME, "eta", self.eta)?;
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

impl StepRules for MrboParams {
    fn rules() -> &'static [Rule<Self>] {
        &[
            inner_rule!(MrboParams, alpha),
            l_g_rule!(MrboParams, eta, NEUMANN),
            outer_rule!(MrboParams, beta),
        ]
    }
}

pub(crate) const NAME: &str = "mrbo";

/// MRBO, the Momentum-based Recursive Bilevel Optimizer (Algorithm 1 of Yang, Ji and Liang,
/// "Provably Faster Algorithms for Bilevel Optimization"): one step on `y` and one on `x` per
/// iteration, each along a STORM-type recursive estimate, the hypergradient's from StocBiO's
/// Neumann series.
///
/// Per iteration `k`, with `pₖ = (xₖ, yₖ)` and `pₖ₋₁` the previous iterate:
/// `dʸ ← ∇ᵧgᵢ(pₖ) + (1 − ρ_k)(dʸ − ∇ᵧgᵢ(pₖ₋₁))` on one draw `i`;
/// `dˣ ← ∇̂Φ(pₖ) + (1 − ρ_k)(dˣ − ∇̂Φ(pₖ₋₁))` with
/// `∇̂Φ(p) = ∇ₓfⱼ(p) − ∇²ₓᵧgₗ(p)·η Σ_{q=0}^{Q} Π_{m≤q}(I − η∇²ᵧᵧgₘ(p)) ∇ᵧfⱼ(p)`, each of
/// `j`, the factors `m` and `l` one draw shared by the two points; then `y ← y − α_k dʸ` and
/// `x ← x − β_k dˣ`. At `k = 0` the estimates are the plain ones. Cost: `4` Gc and
/// `2(Q + 1)` MV per iteration (half at `k = 0`).
///
/// The paper steps first and then estimates at the new point; this is the same sequence,
/// written as the benchmark's solver writes it (estimate, then step). Unlike the benchmark
/// (benchopt's `benchmark_bilevel`), whose recursions start from zero estimates and a zero
/// "previous" point, the first estimates are the plain stochastic ones, as in the paper; the
/// mixed products take their own draw here, where the benchmark reuses that of `∇ᵧg`.
#[derive(Clone, Debug)]
pub struct Mrbo {
    params: MrboParams,
    state: Momentum,
}

impl Mrbo {
    /// A solver with validated parameters.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first bad parameter.
    pub fn new(params: MrboParams) -> Result<Self, Error> {
        params.validate()?;
        Ok(Mrbo {
            params,
            state: Momentum::new(params.batch.map_or(0, |b| b.seed)),
        })
    }
}

impl Solver for Mrbo {
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
        let series = Series::Fixed {
            eta: p.eta,
            products: p.neumann_steps,
        };
        self.state.step(o, it, p.schedule_at(k), series, &src).0
    }
    fn aux(&self) -> Vec<(&'static str, &Mat<f64>)> {
        vec![("d_y", &self.state.dy), ("d_x", &self.state.dx)]
    }
    state_io!();
}

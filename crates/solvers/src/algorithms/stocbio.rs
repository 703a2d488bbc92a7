//! StocBiO: stochastic AIDBiO with the Neumann-series hypergradient, as its paper states it.

use super::soba::DEFAULT_BATCH;
use crate::error::{Error, check_count, check_pos};
use crate::implicit::{State, aid_iteration, neumann};
use crate::oracle::Oracle;
use crate::rules::{NEUMANN, Rule, StepRules, inner_rule, l_g_rule, outer_rule};
use crate::sampling::{Minibatch, Source};
use crate::solver::{Iterate, Scalars, Solver, state_io};
use crate::vecops::norm;
use bilevel_linalg::Mat;
use serde::{Deserialize, Serialize};

/// Parameters of [`Stocbio`]. The defaults are those of the benchmark's solver (benchopt's
/// `benchmark_bilevel`, `solvers/stocbio.py`: `step_size = 0.1` for `α` and `η`,
/// `outer_ratio = 1`, ten inner steps, ten Neumann products, batches of 64).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StocbioParams {
    /// `α`: the inner SGD step. Default 0.1; the rule is the shared `1/L_g`.
    pub alpha: f64,
    /// `β`: the outer step. Default 0.1.
    pub beta: f64,
    /// `η`: the step of the Neumann series, which converges for `η ≤ 1/L_g` (the paper's
    /// condition `η < 1/L`). Default 0.1.
    pub eta: f64,
    /// `D`: SGD steps on `g(x, ·)` per outer iteration, warm-started. Default 10.
    pub inner_steps: usize,
    /// `Q`: Hessian-vector products of the Neumann series (`Q + 1` terms; `Q = 0` takes
    /// `v = η∇ᵧf`). Default 10.
    pub neumann_steps: usize,
    /// Minibatch oracles: every inner gradient, every factor of the series, the mixed product
    /// and the pair `∇ₓf, ∇ᵧf` each take a draw of their own. `None`: exact oracles (AIDBiO
    /// with the series). Default 64 and 64.
    pub batch: Option<Minibatch>,
}

impl Default for StocbioParams {
    /// `α = β = η = 0.1`, `D = Q = 10`, batches of 64.
    fn default() -> Self {
        StocbioParams {
            alpha: 0.1,
            beta: 0.1,
            eta: 0.1,
            inner_steps: 10,
            neumann_steps: 10,
            batch: Some(DEFAULT_BATCH),
        }
    }
}

impl StocbioParams {
    /// Reject out-of-range values.
    pub fn validate(&self) -> Result<(), Error> {
        check_pos(NAME, "alpha", self.alpha)?;
        check_pos(NAME, "beta", self.beta)?;
        check_pos(NAME, "eta", self.eta)?;
        check_count(NAME, "inner_steps", self.inner_steps, 1, ">= 1")?;
        self.batch.map_or(Ok(()), |b| b.validate(NAME))
    }
}

impl StepRules for StocbioParams {
    fn rules() -> &'static [Rule<Self>] {
        &[
            inner_rule!(StocbioParams, alpha),
            l_g_rule!(StocbioParams, eta, NEUMANN),
            outer_rule!(StocbioParams, beta),
        ]
    }
}

pub(crate) const NAME: &str = "stocbio";

/// StocBiO (Algorithm 2 of Ji, Yang and Liang, "Bilevel Optimization: Convergence Analysis and
/// Enhanced Design", ICML 2021): warm-started SGD on the lower level, then a hypergradient from
/// a Neumann series whose Hessian-vector products are minibatch estimates.
///
/// Per outer iteration, each quantity on its own draw of samples:
/// `D` steps `y ← y − α∇ᵧgᵢ(x, y)`; `(∇ₓfⱼ, ∇ᵧfⱼ)` at the new `y`;
/// `v = η Σ_{q=0}^{Q} Π_{j≤q}(I − η∇²ᵧᵧgⱼ) ∇ᵧfⱼ` (their Algorithm 3);
/// `x ← x − β(∇ₓfⱼ − ∇²ₓᵧgₗ·v)`. Cost: `D + 1` Gc and `Q + 1` MV. The paper's analysis
/// takes constant steps, `η < 1/L` for the series, and `D` and `Q` of order `κ log(1/ε)`: the
/// series' truncation error decays as `(1 − ημ)^Q`.
///
/// It is [`AidBio`](super::AidBio) with a minibatch and `LinearSolve::Neumann { terms: Q + 1 }`
/// (the same pieces, so the same bits), with the stochastic method's defaults.
/// The benchmark's solver (benchopt's `benchmark_bilevel`) draws consecutive batches in a
/// reshuffled order; this one draws each batch uniformly from the seeded stream.
#[derive(Clone, Debug)]
pub struct Stocbio {
    params: StocbioParams,
    state: State,
}

impl Stocbio {
    /// A solver with validated parameters.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first bad parameter.
    pub fn new(params: StocbioParams) -> Result<Self, Error> {
        params.validate()?;
        Ok(Stocbio {
            params,
            state: State::new(params.batch.as_ref()),
        })
    }
}

impl Solver for Stocbio {
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
            *v = neumann(o, x, y, b, p.eta, p.neumann_steps, src, s);
        });
        vec![("hypergrad_est_norm", norm(&d)), ("v_norm", norm(&st.v))]
    }
    fn aux(&self) -> Vec<(&'static str, &Mat<f64>)> {
        vec![("v", &self.state.v)]
    }
    state_io!();
}

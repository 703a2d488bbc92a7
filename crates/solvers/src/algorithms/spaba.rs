//! SPABA: SOBA's directions with PAGE's probabilistic recursive variance reduction.

use super::recursive_soba::Recursive;
use super::soba::DEFAULT_BATCH;
use crate::error::{Error, check, check_pos};
use crate::oracle::Oracle;
use crate::rules::StepRules;
use crate::sampling::{Minibatch, Source};
use crate::solver::{Iterate, Scalars, Solver, state_io};
use bilevel_linalg::Mat;
use serde::{Deserialize, Serialize};

/// Parameters of [`Spaba`]: constant steps, the restart probability, an optional ball for `v`
/// and the minibatch.
///
/// Where the defaults come from: the batch of 64 is the benchmark's (benchopt's
/// `benchmark_bilevel`, `solvers/spaba.py`); the probability is PAGE's for a finite sum, as the
/// paper takes it; the steps are SOBA's benchmark steps (0.1), not SPABA's benchmark steps (1.0
/// for all three, with a run that is almost surely full-batch gradient descent, see [`Spaba`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpabaParams {
    /// `ρ`: the constant step of `y` and `v`. Default 0.1 (our choice, SOBA's benchmark step;
    /// the paper takes separate small enough constants for `y` and `v`, the benchmark equal
    /// ones, `assis_ratio = 1`).
    pub rho: f64,
    /// `γ`: the constant step of `x`. Default 0.1 (our choice, as `ρ`).
    pub gamma: f64,
    /// `p ∈ (0, 1]`: the probability that an iteration restarts the directions from the full
    /// sums. `None`, the default: PAGE's choice for a finite sum, `p = b/(N + b)` with
    /// `b = batch_g + batch_f` and `N = N_g + N_f` (so a restart, which costs `N`, and the
    /// recursion, which costs `2b`, take comparable shares of the work).
    pub prob: Option<f64>,
    /// `r`: after each step `v` goes onto the ball `‖v‖ ≤ r`. `None`, the default: no
    /// projection (the benchmark clips every coordinate of `v` to `[−1, 1]`, which moves the
    /// fixed point `v* = −[∇²ᵧᵧg]⁻¹∇ᵧf` whenever one of its coordinates exceeds 1).
    pub v_radius: Option<f64>,
    /// Minibatch oracles: each iteration that does not restart draws `batch_g` samples of `g`
    /// and `batch_f` of `f`, used at both points. `None`: exact gradients, every iteration a
    /// restart, so SPABA is SOBA with constant steps. Default 64 and 64.
    pub batch: Option<Minibatch>,
}

impl Default for SpabaParams {
    /// `ρ = γ = 0.1`, PAGE's probability, no ball, minibatches of 64.
    fn default() -> Self {
        SpabaParams {
            rho: 0.1,
            gamma: 0.1,
            prob: None,
            v_radius: None,
            batch: Some(DEFAULT_BATCH),
        }
    }
}

impl SpabaParams {
    /// Reject out-of-range values.
    pub fn validate(&self) -> Result<(), Error> {
        check_pos(NAME, "rho", self.rho)?;
        check_pos(NAME, "gamma", self.gamma)?;
        if let Some(p) = self.prob {
            check(NAME, "prob", p, p > 0.0 && p <= 1.0, "in (0, 1]")?;
        }
        if let Some(r) = self.v_radius {
            check_pos(NAME, "v_radius", r)?;
        }
        self.batch.map_or(Ok(()), |b| b.validate(NAME))
    }

    /// The restart probability on a data sum of `n_g` samples of `g` and `n_f` of `f`.
    pub fn restart_prob(&self, n_g: usize, n_f: usize) -> f64 {
        match (self.prob, self.batch) {
            (Some(p), _) => p,
            (None, None) => 1.0,
            (None, Some(b)) => {
                let b = (b.batch_g.min(n_g) + b.batch_f.min(n_f)) as f64;
                b / ((n_g + n_f) as f64 + b)
            }
        }
    }
}

/// The paper's steps are "small enough" constants of its analysis, with no closed form in the
/// problem's smoothness constants: no rule derives them.
impl StepRules for SpabaParams {}

pub(crate) const NAME: &str = "spaba";

#[derive(Clone, Debug, Serialize, Deserialize)]
struct State {
    rec: Recursive,
    /// The restart probability `p`, from the problem's sample counts.
    prob: f64,
}

/// SPABA, the Stochastic ProbAbilistic Bilevel Algorithm (Chu, Xu, Yao and Zhang, "SPABA: A
/// single-loop and probabilistic stochastic bilevel algorithm achieving optimal sample
/// complexity"): the directions `D_y, D_v, D_x` of [`Soba`](super::Soba) estimated as PAGE
/// estimates a gradient.
///
/// The first iteration takes the directions on the full sums. At every later iteration a coin
/// of probability `p` (from the seeded stream) decides: heads, the directions afresh on the
/// full sums at the current `(y, v, x)`; tails, with one draw `i` of `g`'s samples and `j` of
/// `f`'s, `D ← D + D_{ij}(y_t, v_t, x_t) − D_{ij}(y_{t−1}, v_{t−1}, x_{t−1})`. Then SOBA's
/// joint step with constant steps, `v` onto the ball of radius `r` if one is set, from
/// `v₀ = 0`. The paper shows that this reaches the sample complexity of PAGE in single-level
/// optimization, optimal in both the finite-sum and the expectation settings.
///
/// Where this solver and the benchmark's (`solvers/spaba.py`) part: there the coin is drawn by
/// NumPy while the step is traced for JIT compilation, so one coin decides the whole run, and
/// the recursive branch has probability 0.001 (the full sums 0.999, the other way round from
/// PAGE); that branch adds `∇ᵧgᵢ − ∇ᵧgᵢ = 0` to `D_y`; `D_x` starts at ones, and `v` is clipped
/// to `[−1, 1]` per coordinate. This solver follows the paper's PAGE estimator.
#[derive(Clone, Debug)]
pub struct Spaba {
    params: SpabaParams,
    state: State,
}

impl Spaba {
    /// A solver with validated parameters.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first bad parameter.
    pub fn new(params: SpabaParams) -> Result<Self, Error> {
        params.validate()?;
        Ok(Spaba {
            params,
            state: State {
                rec: Recursive::new(params.batch.map_or(0, |b| b.seed)),
                prob: 1.0,
            },
        })
    }
}

impl Solver for Spaba {
    fn name(&self) -> &'static str {
        NAME
    }
    fn init(&mut self, o: &mut Oracle<'_>, it: &mut Iterate) -> Result<(), Error> {
        if let Some(b) = &self.params.batch {
            b.check(NAME, o)?;
            let d = o.problem().data_sum().expect("checked: a data sum");
            self.state.prob = self.params.restart_prob(d.samples_g(), d.samples_f());
        }
        self.state.rec.init(it);
        Ok(())
    }
    fn step(&mut self, o: &mut Oracle<'_>, it: &mut Iterate, k: u64) -> Scalars {
        let p = self.params;
        let src = p.batch.as_ref().map_or(Source::Full, Source::Batch);
        let st = &mut self.state;
        let restart = p.batch.is_none() || k == 0 || st.rec.stream.uniform() < st.prob;
        st.rec.step(o, it, src, restart, p.rho, p.gamma, p.v_radius)
    }
    fn aux(&self) -> Vec<(&'static str, &Mat<f64>)> {
        vec![("v", &self.state.rec.v)]
    }
    state_io!();
}

//! SRBA: SOBA's directions with SARAH's recursive variance reduction and periodic restarts.

use super::recursive_soba::Recursive;
use super::soba::DEFAULT_BATCH;
use crate::error::{Error, check_pos};
use crate::oracle::Oracle;
use crate::rules::StepRules;
use crate::sampling::{Minibatch, Source};
use crate::solver::{Iterate, Scalars, Solver, state_io};
use bilevel_linalg::Mat;
use serde::{Deserialize, Serialize};

/// Parameters of [`Srba`]: constant steps, the restart period and the minibatch. The defaults
/// are those of the benchmark's solver (benchopt's `benchmark_bilevel`, `solvers/srba.py`:
/// `step_size = 0.1`, `outer_ratio = 1`, `batch_size = 64`, `period_frac = 0.5`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SrbaParams {
    /// `ρ`: the constant step of `y` and `v`. Default 0.1, the benchmark's `step_size`. The
    /// paper's theorem takes a small enough constant of its analysis, with no closed form.
    pub rho: f64,
    /// `γ`: the constant step of `x`. Default 0.1, the benchmark's `step_size / outer_ratio`
    /// with `outer_ratio = 1`.
    pub gamma: f64,
    /// The restart period as a fraction of one pass over both levels' batches: the directions
    /// are recomputed on the full sums every
    /// `q = max(1, ⌊period_frac·(N_g/batch_g + N_f/batch_f)⌋)` iterations (batch sizes capped
    /// at the sample counts). Default 0.5, the benchmark's `period_frac`, whose period is
    /// `⌊period_frac·(N_g + N_f)/batch_size⌋`, the same for equal batches. The paper's analysis
    /// ties `q` to the number of samples `n + m`; that constant is not used here.
    pub period_frac: f64,
    /// Minibatch oracles: each iteration that does not restart draws `batch_g` samples of `g`
    /// (shared by its three terms, at both points) and `batch_f` of `f`. `None`: exact
    /// gradients, every iteration a restart (the recursion would only recompute the full
    /// directions at twice the cost), so SRBA is SOBA with constant steps. Default 64 and 64.
    pub batch: Option<Minibatch>,
}

impl Default for SrbaParams {
    /// `ρ = γ = 0.1`, `period_frac = 0.5`, minibatches of 64.
    fn default() -> Self {
        SrbaParams {
            rho: 0.1,
            gamma: 0.1,
            period_frac: 0.5,
            batch: Some(DEFAULT_BATCH),
        }
    }
}

impl SrbaParams {
    /// Reject out-of-range values.
    pub fn validate(&self) -> Result<(), Error> {
        check_pos(NAME, "rho", self.rho)?;
        check_pos(NAME, "gamma", self.gamma)?;
        check_pos(NAME, "period_frac", self.period_frac)?;
        self.batch.map_or(Ok(()), |b| b.validate(NAME))
    }

    /// The restart period `q` on a data sum of `n_g` samples of `g` and `n_f` of `f`.
    pub fn period(&self, n_g: usize, n_f: usize) -> u64 {
        let Some(b) = self.batch else { return 1 };
        let passes = |n: usize, b: usize| n as f64 / b.min(n).max(1) as f64;
        let q = (self.period_frac * (passes(n_g, b.batch_g) + passes(n_f, b.batch_f))).floor();
        (q as u64).max(1)
    }
}

/// The paper's steps are "small enough" constants of its analysis, with no closed form in the
/// problem's smoothness constants: no rule derives them.
impl StepRules for SrbaParams {}

pub(crate) const NAME: &str = "srba";

#[derive(Clone, Debug, Serialize, Deserialize)]
struct State {
    rec: Recursive,
    /// The restart period `q`, from the problem's sample counts.
    period: u64,
}

/// SRBA, the Stochastic Recursive Bilevel Algorithm (Dagréou, Moreau, Vaiter and Ablin, "A
/// lower bound and a near-optimal algorithm for bilevel empirical risk minimization"): the
/// directions `D_y, D_v, D_x` of [`Soba`](super::Soba) estimated as SARAH estimates a
/// gradient, restarted from the full sums every `q` iterations.
///
/// At iteration `t` with `t mod q = 0`, the directions on the full sums at the current
/// `(y, v, x)`; otherwise, with one draw `i` of `g`'s samples and `j` of `f`'s,
/// `D ← D + D_{ij}(y_t, v_t, x_t) − D_{ij}(y_{t−1}, v_{t−1}, x_{t−1})` for each of the three,
/// both terms on the same draws. Then SOBA's joint step with constant steps: `y ← y − ρD_y`,
/// `v ← v − ρD_v`, `x ← x − γD_x`, from `v₀ = 0`. A restart costs 2 Gc and 1 MV on the full
/// sums, a recursive iteration 4 Gc and 2 MV on the batches. The paper shows
/// `O((n + m)^{1/2} ε^{−1})` oracle calls to an ε-stationary point, and a lower bound of the
/// same order in `m`.
///
/// As the benchmark's solver, the first iteration restarts and the draws of one level serve
/// its terms at both points; the benchmark walks through reshuffled fixed batches, this solver
/// draws each batch uniformly from the seeded stream.
#[derive(Clone, Debug)]
pub struct Srba {
    params: SrbaParams,
    state: State,
}

impl Srba {
    /// A solver with validated parameters.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first bad parameter.
    pub fn new(params: SrbaParams) -> Result<Self, Error> {
        params.validate()?;
        Ok(Srba {
            params,
            state: State {
                rec: Recursive::new(params.batch.map_or(0, |b| b.seed)),
                period: 1,
            },
        })
    }
}

impl Solver for Srba {
    fn name(&self) -> &'static str {
        NAME
    }
    fn init(&mut self, o: &mut Oracle<'_>, it: &mut Iterate) -> Result<(), Error> {
        if let Some(b) = &self.params.batch {
            b.check(NAME, o)?;
            let d = o.problem().data_sum().expect("checked: a data sum");
            self.state.period = self.params.period(d.samples_g(), d.samples_f());
        }
        self.state.rec.init(it);
        Ok(())
    }
    fn step(&mut self, o: &mut Oracle<'_>, it: &mut Iterate, k: u64) -> Scalars {
        let p = self.params;
        let src = p.batch.as_ref().map_or(Source::Full, Source::Batch);
        let restart = p.batch.is_none() || k.is_multiple_of(self.state.period);
        self.state
            .rec
            .step(o, it, src, restart, p.rho, p.gamma, None)
    }
    fn aux(&self) -> Vec<(&'static str, &Mat<f64>)> {
        vec![("v", &self.state.rec.v)]
    }
    state_io!();
}

//! VRBO: SARAH/SPIDER-type recursive estimators of `∇ᵧg` and of the hypergradient, restarted
//! from the full sums every `q` outer iterations, with inner steps on `y` between `x` steps.

use super::soba::DEFAULT_BATCH;
use crate::error::{Error, check_count, check_pos};
use crate::implicit::{Series, hypergradients_at};
use crate::oracle::Oracle;
use crate::recursive::{grad_y_g_at, split, update};
use crate::rules::{NEUMANN, Rule, StepRules, inner_rule, l_g_rule, outer_rule};
use crate::sampling::{Minibatch, SampleStream, Source};
use crate::solver::{Iterate, Scalars, Solver, col, state_io};
use crate::vecops::{axpy, norm, zeros};
use bilevel_linalg::Mat;
use serde::{Deserialize, Serialize};

/// Parameters of [`Vrbo`]: constant steps, the series, the inner loop, the restart period and
/// the minibatch.
///
/// The defaults are the benchmark's (benchopt's `benchmark_bilevel`, `solvers/vrbo.py`:
/// `step_size = 0.1` for `α`, `β` (`outer_ratio = 1`) and the series' step, all constant,
/// `n_shia_steps = 10`, `n_inner_steps = 10`, batches of 64) except the period: the benchmark
/// sets it from the data set's size (`(N_f + N_g)·period_frac/batch_size` outer iterations,
/// `period_frac = 128`), here it is a parameter of its own, `q = 10` (our choice; the paper
/// takes `q` of order `1/ε`, too long to see a restart in short runs).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct VrboParams {
    /// `α`: the step of `y`. Default 0.1; the rule is the shared `1/L_g`.
    pub alpha: f64,
    /// `β`: the step of `x`. Default 0.1.
    pub beta: f64,
    /// `η`: the step of the Neumann series. Default 0.1.
    pub eta: f64,
    /// `Q`: Hessian-vector products of the series (`Q + 1` terms). Default 10.
    pub neumann_steps: usize,
    /// `m`: steps on `y` after each `x` step, each with both estimators corrected. Default 10.
    pub inner_steps: usize,
    /// `q`: the estimators restart from the full sums at every outer iteration `k` with
    /// `k mod q = 0`. Default 10.
    pub period: usize,
    /// Minibatch oracles for the corrections: each recursive estimator takes one draw for both
    /// of its points (the restarts take the full sums). `None`: exact oracles, with which the
    /// recursion returns the plain estimates. Default 64 and 64.
    pub batch: Option<Minibatch>,
}

impl Default for VrboParams {
    /// `α = β = η = 0.1`, `Q = m = 10`, `q = 10`, batches of 64.
    fn default() -> Self {
        VrboParams {
            alpha: 0.1,
            beta: 0.1,
            eta: 0.1,
            neumann_steps: 10,
            inner_steps: 10,
            period: 10,
            batch: Some(DEFAULT_BATCH),
        }
    }
}

impl VrboParams {
    /// Reject out-of-range values.
    pub fn validate(&self) -> Result<(), Error> {
        check_pos(NAME, "alpha", self.alpha)?;
        check_pos(NAME, "beta", self.beta)?;
        check_pos(NAME, "eta", self.eta)?;
        check_count(NAME, "inner_steps", self.inner_steps, 1, ">= 1")?;
        check_count(NAME, "period", self.period, 1, ">= 1")?;
        self.batch.map_or(Ok(()), |b| b.validate(NAME))
    }
}

impl StepRules for VrboParams {
    fn rules() -> &'static [Rule<Self>] {
        &[
            inner_rule!(VrboParams, alpha),
            l_g_rule!(VrboParams, eta, NEUMANN),
            outer_rule!(VrboParams, beta),
        ]
    }
}

pub(crate) const NAME: &str = "vrbo";

#[derive(Clone, Debug, Serialize, Deserialize)]
struct State {
    /// The point `(x, y)` of the last estimates; empty before the first step.
    #[serde(with = "col")]
    ex: Mat<f64>,
    #[serde(with = "col")]
    ey: Mat<f64>,
    /// The recursive estimates of `∇ᵧg` and of the hypergradient there.
    #[serde(with = "col")]
    dy: Mat<f64>,
    #[serde(with = "col")]
    dx: Mat<f64>,
    stream: SampleStream,
}

/// VRBO, the Variance-Reduced Bilevel Optimizer (Algorithm 2 of Yang, Ji and Liang, "Provably
/// Faster Algorithms for Bilevel Optimization"): SARAH/SPIDER-type recursive estimators of
/// `∇ᵧg` and of StocBiO's Neumann hypergradient, restarted from the full sums periodically.
///
/// Per outer iteration `k`: if `k mod q = 0`, `dʸ = ∇ᵧg(xₖ, yₖ)` and `dˣ = ∇̂Φ(xₖ, yₖ)` on the
/// full sums, with
/// `∇̂Φ(p) = ∇ₓfⱼ(p) − ∇²ₓᵧgₗ(p)·η Σ_{q=0}^{Q} Π_{m≤q}(I − η∇²ᵧᵧgₘ(p)) ∇ᵧfⱼ(p)`;
/// then `xₖ₊₁ = xₖ − βdˣ`, and `m` times, from `y = yₖ`, with `e` the point of the last
/// estimates: `dʸ ← dʸ + ∇ᵧgᵢ(xₖ₊₁, y) − ∇ᵧgᵢ(e)`, `dˣ ← dˣ + ∇̂Φ(xₖ₊₁, y) − ∇̂Φ(e)` (each
/// difference on samples shared by its two points), `e = (xₖ₊₁, y)`, `y ← y − αdʸ`; so the
/// next `x` step, unless it restarts, takes the estimate at the last `e`, from before the last
/// `y` step (as the benchmark's solver does). A
/// correction costs `4` Gc and `2(Q + 1)` MV, a restart `2` Gc and `Q + 1` MV on the full
/// sums.
///
/// The benchmark's solver (benchopt's `benchmark_bilevel`) runs the same loop, but the first
/// correction after an `x` step differences `(xₖ₊₁, yₖ)` against `(xₖ₊₁, y')`, with `y'` the
/// `y` before the previous inner step (zero at the start), rather than against the point of
/// the estimates, `(xₖ, yₖ)`; here every correction is against the point where the estimates
/// were taken, so that the recursion tracks the gradient at the current point.
#[derive(Clone, Debug)]
pub struct Vrbo {
    params: VrboParams,
    state: State,
}

impl Vrbo {
    /// A solver with validated parameters.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first bad parameter.
    pub fn new(params: VrboParams) -> Result<Self, Error> {
        params.validate()?;
        Ok(Vrbo {
            params,
            state: State {
                ex: zeros(0),
                ey: zeros(0),
                dy: zeros(0),
                dx: zeros(0),
                stream: SampleStream::new(params.batch.map_or(0, |b| b.seed)),
            },
        })
    }
}

impl Solver for Vrbo {
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
        let st = &mut self.state;
        let restart = k.is_multiple_of(p.period as u64) || st.ex.nrows() == 0;
        if restart {
            let (full, pt) = (Source::Full, [(&it.x, &it.y)]);
            st.dy = split(grad_y_g_at(o, &pt, &full, &mut st.stream)).0;
            let hs = hypergradients_at(o, &pt, &full, &mut st.stream, |o, pts, bs, s| {
                series.solve(o, pts, bs, &full, s).0
            });
            st.dx = split(hs).0;
            st.ex = it.x.clone();
            st.ey = it.y.clone();
        }
        axpy(&mut it.x, -p.beta, &st.dx);
        for _ in 0..p.inner_steps {
            let pts = [(&it.x, &it.y), (&st.ex, &st.ey)];
            let (g, gp) = split(grad_y_g_at(o, &pts, &src, &mut st.stream));
            update(&mut st.dy, g, gp.as_ref(), 0.0);
            let hs = hypergradients_at(o, &pts, &src, &mut st.stream, |o, pts, bs, s| {
                series.solve(o, pts, bs, &src, s).0
            });
            let (h, hp) = split(hs);
            update(&mut st.dx, h, hp.as_ref(), 0.0);
            st.ex = it.x.clone();
            st.ey = it.y.clone();
            axpy(&mut it.y, -p.alpha, &st.dy);
        }
        vec![
            ("restart", if restart { 1.0 } else { 0.0 }),
            ("hypergrad_est_norm", norm(&st.dx)),
            ("grad_y_est_norm", norm(&st.dy)),
        ]
    }
    fn aux(&self) -> Vec<(&'static str, &Mat<f64>)> {
        vec![("d_y", &self.state.dy), ("d_x", &self.state.dx)]
    }
    state_io!();
}

//! FSLA: one SGD step on `y`, one on the linear system's `v`, and an `x` step along a
//! STORM-type recursive estimate of the hypergradient: a fully single loop, no Hessian inverse.

use super::mrbo::check_weight;
use super::schedule::{check_decay, decayed};
use super::soba::DEFAULT_BATCH;
use crate::error::{Error, check_pos};
use crate::implicit::{Point, hypergradients_at, sgd_linear};
use crate::oracle::Oracle;
use crate::recursive::{grad_y_g_at, split, update};
use crate::rules::{LINEAR, Rule, StepRules, inner_rule, l_g_rule, outer_rule};
use crate::sampling::{Minibatch, SampleStream, Source, grad_f};
use crate::solver::{Iterate, Scalars, Solver, col, state_io};
use crate::vecops::{axpy, norm, zeros};
use bilevel_linalg::Mat;
use serde::{Deserialize, Serialize};

/// Parameters of [`Fsla`]: the steps `α_k` of `y`, `η_k` of `v` and `β_k` of `x` and the
/// momentum weight `ρ_k`, each its constant over `(k+1)^a` with one decay exponent `a`, and the
/// minibatch.
///
/// The defaults are the benchmark's (benchopt's `benchmark_bilevel`, `solvers/fsla.py`:
/// `step_size = 0.1` for the steps of `y` and `v` and for the momentum weight,
/// `outer_ratio = 1` for `x`'s, every one decaying as `1/√(k+1)`, batches of 64); `a = 0` gives
/// constant steps. The paper's step-size conditions are not encoded (beyond the shared rules).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FslaParams {
    /// `α`: the SGD step of `y` on `g(x, ·)`. Default 0.1; the rule is the shared `1/L_g`.
    pub alpha: f64,
    /// `η`: the SGD step of `v` on the linear system `∇²ᵧᵧg·v = ∇ᵧf` (the benchmark takes
    /// `α`'s). Default 0.1; the rule is `1/L_g`.
    pub eta: f64,
    /// `β`: the step of `x`. Default 0.1.
    pub beta: f64,
    /// `ρ ∈ (0, 1]`: the momentum weight of the hypergradient estimator (the weight of the
    /// fresh estimate; the benchmark's `eta`, which it sets to `step_size`). Default 0.1.
    pub rho: f64,
    /// `a ∈ [0, 1]`: the decay exponent of all four. Default `1/2`.
    pub decay: f64,
    /// Minibatch oracles: the `y` step, the `v` step's Hessian product and its `∇ᵧf` each take a
    /// draw; the recursive estimator one draw of `f` and one of `g` for both its points.
    /// `None`: exact oracles, with which the recursion returns the plain estimate. Default 64
    /// and 64.
    pub batch: Option<Minibatch>,
}

impl Default for FslaParams {
    /// `α = η = β = ρ = 0.1`, all decaying as `1/√(k+1)`, batches of 64.
    fn default() -> Self {
        FslaParams {
            alpha: 0.1,
            eta: 0.1,
            beta: 0.1,
            rho: 0.1,
            decay: 0.5,
            batch: Some(DEFAULT_BATCH),
        }
    }
}

impl FslaParams {
    /// Reject out-of-range values.
    pub fn validate(&self) -> Result<(), Error> {
        check_pos(NAME, "alpha", self.alpha)?;
        check_pos(NAME, "eta", self.eta)?;
        check_pos(NAME, "beta", self.beta)?;
        check_weight(NAME, self.rho)?;
        check_decay(NAME, "decay", self.decay)?;
        self.batch.map_or(Ok(()), |b| b.validate(NAME))
    }

    /// `(α_k, η_k, β_k, ρ_k)` at iteration `k` (from 0).
    pub fn schedule_at(&self, k: u64) -> (f64, f64, f64, f64) {
        let at = |c| decayed(c, self.decay, k);
        (at(self.alpha), at(self.eta), at(self.beta), at(self.rho))
    }
}

impl StepRules for FslaParams {
    fn rules() -> &'static [Rule<Self>] {
        &[
            inner_rule!(FslaParams, alpha),
            l_g_rule!(FslaParams, eta, LINEAR),
            outer_rule!(FslaParams, beta),
        ]
    }
}

pub(crate) const NAME: &str = "fsla";

#[derive(Clone, Debug, Serialize, Deserialize)]
struct State {
    /// `v ≈ [∇²ᵧᵧg]⁻¹∇ᵧf`, from 0.
    #[serde(with = "col")]
    v: Mat<f64>,
    /// `xₖ₋₁`: empty before the first step.
    #[serde(with = "col")]
    px: Mat<f64>,
    /// The recursive hypergradient estimate.
    #[serde(with = "col")]
    dx: Mat<f64>,
    stream: SampleStream,
}

/// FSLA, the Fully Single Loop Algorithm (Li, Gu and Huang, "A Fully Single Loop Algorithm for
/// Bilevel Optimization without Hessian Inverse"), as the benchmark's solver states it: `y`, the
/// linear system's solution `v` and `x` each take one step per iteration, `x` along a
/// STORM-type recursive estimate of the hypergradient.
///
/// Per iteration `k`, from `(xₖ, yₖ, vₖ)`:
/// `yₖ₊₁ = yₖ − α_k∇ᵧgᵢ(xₖ, yₖ)`;
/// `vₖ₊₁ = vₖ − η_k(∇²ᵧᵧgᵢ'(xₖ, yₖ₊₁)vₖ − ∇ᵧfⱼ(xₖ, yₖ₊₁))` (one SGD step on the linear system);
/// `dˣ ← ∇̂Φ(xₖ, yₖ₊₁, vₖ₊₁) + (1 − ρ_k)(dˣ − ∇̂Φ(xₖ₋₁, yₖ, vₖ))` with
/// `∇̂Φ(x, y, v) = ∇ₓfⱼ'(x, y) − ∇²ₓᵧgₗ(x, y)·v`, `j'` and `l` shared by the two points;
/// `xₖ₊₁ = xₖ − β_k dˣ`. At `k = 0` the estimate is the plain one. Each of `i, i', j, j', l`
/// is a draw of its own. Cost: `4` Gc and `3` MV per iteration (`3` and `2` at `k = 0`).
///
/// The points of the estimator's correction are the benchmark's (benchopt's
/// `benchmark_bilevel`): the previous estimate was taken at `(xₖ₋₁, yₖ, vₖ)`. The benchmark
/// starts the recursion from a zero estimate and a zero "previous" `x`; here the first
/// estimate is the plain one.
#[derive(Clone, Debug)]
pub struct Fsla {
    params: FslaParams,
    state: State,
}

impl Fsla {
    /// A solver with validated parameters.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first bad parameter.
    pub fn new(params: FslaParams) -> Result<Self, Error> {
        params.validate()?;
        Ok(Fsla {
            params,
            state: State {
                v: zeros(0),
                px: zeros(0),
                dx: zeros(0),
                stream: SampleStream::new(params.batch.map_or(0, |b| b.seed)),
            },
        })
    }
}

impl Solver for Fsla {
    fn name(&self) -> &'static str {
        NAME
    }
    fn init(&mut self, o: &mut Oracle<'_>, _it: &mut Iterate) -> Result<(), Error> {
        if let Some(b) = &self.params.batch {
            b.check(NAME, o)?;
        }
        self.state.v = zeros(o.problem().dim_y());
        Ok(())
    }
    fn step(&mut self, o: &mut Oracle<'_>, it: &mut Iterate, k: u64) -> Scalars {
        let p = self.params;
        let (alpha, eta, beta, rho) = p.schedule_at(k);
        let src = p.batch.as_ref().map_or(Source::Full, Source::Batch);
        let st = &mut self.state;
        let (py, pv) = (it.y.clone(), st.v.clone());
        let (gy, _) = split(grad_y_g_at(o, &[(&it.x, &it.y)], &src, &mut st.stream));
        axpy(&mut it.y, -alpha, &gy);
        let dj = src.draw_f(o, &mut st.stream);
        let fy = grad_f(o, &it.x, &it.y, &dj).y;
        sgd_linear(
            o,
            &it.x,
            &it.y,
            &mut st.v,
            &fy,
            eta,
            1,
            &src,
            &mut st.stream,
        );
        let restart = st.px.nrows() == 0 || rho >= 1.0;
        let mut pts: Vec<Point<'_>> = vec![(&it.x, &it.y)];
        let mut vs = vec![st.v.clone()];
        if !restart {
            pts.push((&st.px, &py));
            vs.push(pv);
        }
        let hs = hypergradients_at(o, &pts, &src, &mut st.stream, |_, _, _, _| vs);
        let (h, hp) = split(hs);
        update(&mut st.dx, h, hp.as_ref(), rho);
        st.px = it.x.clone();
        axpy(&mut it.x, -beta, &st.dx);
        vec![
            ("alpha", alpha),
            ("beta", beta),
            ("rho", rho),
            ("hypergrad_est_norm", norm(&st.dx)),
            ("v_norm", norm(&st.v)),
        ]
    }
    fn aux(&self) -> Vec<(&'static str, &Mat<f64>)> {
        vec![("v", &self.state.v), ("d_x", &self.state.dx)]
    }
    state_io!();
}

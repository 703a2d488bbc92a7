//! SOBA and what it shares with SABA: the framework of Dagréou, Ablin, Vaiter and Moreau, "A
//! framework for bilevel optimization that enables stochastic and global variance reduction
//! algorithms" (NeurIPS 2022), in which `y`, the linear-system solution `v` and `x` move
//! together along three directions that are sums over samples.

use super::schedule::{check_decay, decayed};
use crate::error::{Error, check_pos};
use crate::oracle::Oracle;
use crate::problem::{Cross, Grad};
use crate::recursive::storm;
use crate::rules::StepRules;
use crate::sampling::{Draw, Minibatch, SampleStream, Source, grad_f, grad_hvp_g};
use crate::solver::{Iterate, Scalars, Solver, col, state_io};
use crate::vecops::{axpy, lincomb, norm, project_ball, zeros};
use bilevel_linalg::Mat;
use serde::{Deserialize, Serialize};

/// The terms of the framework's directions at one point `(y, v, x)`: those of the lower level
/// on one draw `i` of `g`'s samples and those of the upper level on one draw `j` of `f`'s.
///
/// The directions are `D_y = ∇ᵧgᵢ`, `D_v = ∇²ᵧᵧgᵢ·v + ∇ᵧfⱼ` and `D_x = ∇²ₓᵧgᵢ·v + ∇ₓfⱼ`
/// ([`Terms::d_v`], [`Terms::d_x`]); at `D_y = D_v = 0` the point has `y = y*(x)`,
/// `v = −[∇²ᵧᵧg]⁻¹∇ᵧf` and `D_x = ∇Φ(x)` (the paper's `v` is the negative of single-loop AID's).
#[derive(Clone, Debug)]
pub(crate) struct Terms {
    /// `∇ᵧgᵢ`.
    pub gy: Mat<f64>,
    /// `∇²ᵧᵧgᵢ·v`.
    pub hv: Mat<f64>,
    /// `∇²ₓᵧgᵢ·v`.
    pub jv: Mat<f64>,
    /// `∇ᵧfⱼ`.
    pub fy: Mat<f64>,
    /// `∇ₓfⱼ`.
    pub fx: Mat<f64>,
}

impl Terms {
    /// The lower-level terms from one pass of `g` on the draw `di` (one Gc and one MV).
    pub(crate) fn lower(
        o: &mut Oracle<'_>,
        it: &Iterate,
        v: &Mat<f64>,
        di: &Draw,
    ) -> (Mat<f64>, Cross) {
        let (g, c): (Grad, Cross) = grad_hvp_g(o, &it.x, &it.y, v, di);
        (g.y, c)
    }

    /// Every term, `g`'s on `di` and `f`'s on `dj`: two Gc and one MV.
    pub(crate) fn at(o: &mut Oracle<'_>, it: &Iterate, v: &Mat<f64>, di: &Draw, dj: &Draw) -> Self {
        let (gy, c) = Self::lower(o, it, v, di);
        let f = grad_f(o, &it.x, &it.y, dj);
        Terms {
            gy,
            hv: c.yy,
            jv: c.xy,
            fy: f.y,
            fx: f.x,
        }
    }

    /// `D_v = ∇²ᵧᵧgᵢ·v + ∇ᵧfⱼ`: the gradient in `v` of `½vᵀ∇²ᵧᵧgᵢv + ∇ᵧfⱼᵀv`, whose
    /// minimizer over the full sums is `v* = −[∇²ᵧᵧg]⁻¹∇ᵧf`.
    pub(crate) fn d_v(&self) -> Mat<f64> {
        lincomb(1.0, &self.hv, 1.0, &self.fy)
    }

    /// `D_x = ∇²ₓᵧgᵢ·v + ∇ₓfⱼ`: the hypergradient estimate, `∇Φ(x)` at `y = y*(x)`, `v = v*`.
    pub(crate) fn d_x(&self) -> Mat<f64> {
        lincomb(1.0, &self.jv, 1.0, &self.fx)
    }

    /// The three directions `D_y, D_v, D_x` from these terms.
    pub(crate) fn directions(self) -> Directions {
        let (dv, dx) = (self.d_v(), self.d_x());
        Directions {
            dy: self.gy,
            dv,
            dx,
        }
    }

    /// The joint step of the framework from these terms, all taken at the same `(y, v, x)`
    /// ([`Directions::step`] without a ball for `v`).
    pub(crate) fn step(self, it: &mut Iterate, v: &mut Mat<f64>, rho: f64, gamma: f64) -> Scalars {
        self.directions().step(it, v, rho, gamma, None)
    }
}

/// The framework's three directions `D_y, D_v, D_x`: from the terms at one point ([`Terms`]),
/// or an estimate of them that SRBA and SPABA carry from one iteration to the next.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Directions {
    /// `D_y`, the direction of `y`.
    #[serde(with = "col")]
    pub dy: Mat<f64>,
    /// `D_v`, the direction of `v`.
    #[serde(with = "col")]
    pub dv: Mat<f64>,
    /// `D_x`, the direction of `x`.
    #[serde(with = "col")]
    pub dx: Mat<f64>,
}

impl Directions {
    /// Zero directions for `dim_x = n`, `dim_y = m`.
    pub(crate) fn zeros(n: usize, m: usize) -> Self {
        Directions {
            dy: zeros(m),
            dv: zeros(m),
            dx: zeros(n),
        }
    }

    /// The recursive (SARAH and PAGE) estimate: `D ← D + (new − old)` ([`storm`] with weight
    /// 0), each direction with the difference of its terms on one draw at the current and at the
    /// previous point.
    pub(crate) fn recurse(&mut self, new: &Directions, old: &Directions) {
        for (d, n, o) in [
            (&mut self.dy, &new.dy, &old.dy),
            (&mut self.dv, &new.dv, &old.dv),
            (&mut self.dx, &new.dx, &old.dx),
        ] {
            *d = storm(d, n, o, 0.0);
        }
    }

    /// The lower-level half of the joint step: `y ← y − ρD_y`, `v ← v − ρD_v`, then `v` onto
    /// the ball `‖v‖ ≤ r` when a radius `r` is given.
    pub(crate) fn step_lower(
        &self,
        it: &mut Iterate,
        v: &mut Mat<f64>,
        rho: f64,
        radius: Option<f64>,
    ) {
        axpy(&mut it.y, -rho, &self.dy);
        axpy(v, -rho, &self.dv);
        if let Some(r) = radius {
            project_ball(v, r);
        }
    }

    /// The joint step of the framework: `y ← y − ρD_y`, `v ← v − ρD_v` (then onto the ball of
    /// radius `radius`, if any), `x ← x − γD_x`. Returns the scalars SOBA's family traces:
    /// `ρ`, `γ`, `‖D_x‖` and `‖v‖` after the step.
    pub(crate) fn step(
        &self,
        it: &mut Iterate,
        v: &mut Mat<f64>,
        rho: f64,
        gamma: f64,
        radius: Option<f64>,
    ) -> Scalars {
        self.step_lower(it, v, rho, radius);
        axpy(&mut it.x, -gamma, &self.dx);
        vec![
            ("rho", rho),
            ("gamma", gamma),
            ("dx_norm", norm(&self.dx)),
            ("v_norm", norm(v)),
        ]
    }
}

/// The default minibatch of SOBA and SABA: 64 samples of `f` and of `g`, as the benchmark's
/// solvers (benchopt's `benchmark_bilevel`, `batch_size = 64`).
pub(crate) const DEFAULT_BATCH: Minibatch = Minibatch {
    batch_f: 64,
    batch_g: 64,
    seed: 0,
};

/// Parameters of [`Soba`]: the steps `ρ_t = ρ/(t+1)^{a_ρ}` of `y` and `v` and
/// `γ_t = γ/(t+1)^{a_γ}` of `x`, and the minibatch.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SobaParams {
    /// `ρ`: the step of `y` and `v` at the first iteration. Default 0.1, the benchmark's
    /// `step_size` (the paper's theorem asks only for a small enough constant).
    pub rho: f64,
    /// `γ`: the step of `x` at the first iteration. Default 0.1, the benchmark's
    /// `step_size / outer_ratio` with `outer_ratio = 1`.
    pub gamma: f64,
    /// `a_ρ ∈ [0, 1]`: the decay exponent of `ρ_t`. Default `2/5`, Theorem 1 of the paper
    /// (`ρ_t ∝ t^{−2/5}`); the benchmark's solver now takes `1/2` for both steps.
    pub rho_decay: f64,
    /// `a_γ ∈ [0, 1]`: the decay exponent of `γ_t`. Default `3/5`, Theorem 1 of the paper
    /// (`γ_t ∝ t^{−3/5}`, so `x` moves on a slower time scale than `y` and `v`).
    pub gamma_decay: f64,
    /// Minibatch oracles: each iteration draws `batch_g` samples of `g` (shared by its three
    /// terms) and `batch_f` of `f` (shared by its two). `None`: exact gradients (the framework
    /// with full sums, a deterministic single-loop method). Default 64 and 64.
    pub batch: Option<Minibatch>,
}

impl Default for SobaParams {
    /// `ρ = γ = 0.1` with the decays of Theorem 1 and minibatches of 64.
    fn default() -> Self {
        SobaParams {
            rho: 0.1,
            gamma: 0.1,
            rho_decay: 0.4,
            gamma_decay: 0.6,
            batch: Some(DEFAULT_BATCH),
        }
    }
}

impl SobaParams {
    /// Reject out-of-range values.
    pub fn validate(&self) -> Result<(), Error> {
        check_pos(NAME, "rho", self.rho)?;
        check_pos(NAME, "gamma", self.gamma)?;
        check_decay(NAME, "rho_decay", self.rho_decay)?;
        check_decay(NAME, "gamma_decay", self.gamma_decay)?;
        self.batch.map_or(Ok(()), |b| b.validate(NAME))
    }

    /// `(ρ_k, γ_k)` at iteration `k` (from 0): `ρ/(k+1)^{a_ρ}`, `γ/(k+1)^{a_γ}`.
    pub fn steps(&self, k: u64) -> (f64, f64) {
        (
            decayed(self.rho, self.rho_decay, k),
            decayed(self.gamma, self.gamma_decay, k),
        )
    }
}

/// The paper's constants `ρ̄, γ̄` are "small enough" ones of its appendix, with no closed form
/// in the problem's smoothness constants: no rule derives them.
impl StepRules for SobaParams {}

pub(crate) const NAME: &str = "soba";

#[derive(Clone, Debug, Serialize, Deserialize)]
struct State {
    #[serde(with = "col")]
    v: Mat<f64>,
    stream: SampleStream,
}

/// SOBA, the StOchastic Bilevel Algorithm (Algorithm 1 of Dagréou, Ablin, Vaiter and Moreau,
/// "A framework for bilevel optimization that enables stochastic and global variance reduction
/// algorithms"): stochastic gradient descent on the framework's three directions.
///
/// Per iteration `t`, with a draw `i` of `g`'s samples and, independently, `j` of `f`'s, at
/// the current `(y, v, x)`:
/// `D_y = ∇ᵧgᵢ`, `D_v = ∇²ᵧᵧgᵢ·v + ∇ᵧfⱼ`, `D_x = ∇²ₓᵧgᵢ·v + ∇ₓfⱼ`, then
/// `y ← y − ρ_t D_y`, `v ← v − ρ_t D_v`, `x ← x − γ_t D_x`, with `v₀ = 0`. The three
/// lower-level terms come from one forward-over-reverse pass on the batch: 2 Gc and 1 MV per
/// iteration. Theorem 1: with `ρ_t ∝ t^{−2/5}` and `γ_t ∝ t^{−3/5}`,
/// `min_{t≤T} E‖∇Φ(x_t)‖² = O(log T / T^{2/5})`.
///
/// As in the benchmark's solver (benchopt's `benchmark_bilevel`), one draw of `g` serves its
/// three terms and one of `f` its two; the benchmark walks through fixed consecutive batches
/// in a reshuffled order, this solver draws each batch uniformly from the seeded stream.
#[derive(Clone, Debug)]
pub struct Soba {
    params: SobaParams,
    state: State,
}

impl Soba {
    /// A solver with validated parameters.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first bad parameter.
    pub fn new(params: SobaParams) -> Result<Self, Error> {
        params.validate()?;
        Ok(Soba {
            params,
            state: State {
                v: zeros(0),
                stream: SampleStream::new(params.batch.map_or(0, |b| b.seed)),
            },
        })
    }
}

impl Solver for Soba {
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
        let (rho, gamma) = p.steps(k);
        let src = p.batch.as_ref().map_or(Source::Full, Source::Batch);
        let st = &mut self.state;
        let di = src.draw_g(o, &mut st.stream);
        let dj = src.draw_f(o, &mut st.stream);
        let terms = Terms::at(o, it, &st.v, &di, &dj);
        terms.step(it, &mut st.v, rho, gamma)
    }
    fn aux(&self) -> Vec<(&'static str, &Mat<f64>)> {
        vec![("v", &self.state.v)]
    }
    state_io!();
}

//! MA-SOBA: SOBA with a moving average of the `x` direction.

use super::soba::{DEFAULT_BATCH, Terms};
use crate::error::{Error, check, check_pos};
use crate::oracle::Oracle;
use crate::rules::StepRules;
use crate::sampling::{Minibatch, SampleStream, Source};
use crate::solver::{Iterate, Scalars, Solver, col, state_io};
use crate::vecops::{axpy, norm, scale, zeros};
use bilevel_linalg::Mat;
use serde::{Deserialize, Serialize};

/// Parameters of [`MaSoba`]: constant steps, the weight of the moving average, an optional
/// ball for `v` and the minibatch.
///
/// The benchmark (benchopt's `benchmark_bilevel`) has no MA-SOBA solver: the steps and the
/// batch are those of its SOBA solver (`step_size = 0.1`, `outer_ratio = 1`, `batch_size = 64`),
/// the weight `θ` is our choice within the paper's form.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MaSobaParams {
    /// `ρ`: the constant step of `y` and `v`. Default 0.1, the benchmark's SOBA step. The paper
    /// takes constant steps, all proportional to one `α ∝ K^{−1/2}` with constants of its
    /// analysis.
    pub rho: f64,
    /// `γ`: the constant step of `x`. Default 0.1, as `ρ` (`outer_ratio = 1`).
    pub gamma: f64,
    /// `θ ∈ (0, 1]`: the weight of the fresh direction in the moving average
    /// `w ← (1 − θ)w + θD_x`. Default 0.1 (our choice: the paper takes `θ` proportional to the
    /// `x` step, `θ = c_θγ`; this is `c_θ = 1`).
    pub theta: f64,
    /// `r`: after each step `v` goes onto the ball `‖v‖ ≤ r`, as the paper's algorithm does
    /// with a radius at least `sup‖∇ᵧf‖/μ_g`, so that the ball holds `v*` and the projection
    /// leaves the fixed point alone. `None`, the default: no projection (the bound on `∇ᵧf` is
    /// not among the problem's stated constants).
    pub v_radius: Option<f64>,
    /// Minibatch oracles: each iteration draws `batch_g` samples of `g` (shared by its three
    /// terms) and `batch_f` of `f` (shared by its two), as SOBA. `None`: exact gradients.
    /// Default 64 and 64.
    pub batch: Option<Minibatch>,
}

impl Default for MaSobaParams {
    /// `ρ = γ = θ = 0.1`, no ball, minibatches of 64.
    fn default() -> Self {
        MaSobaParams {
            rho: 0.1,
            gamma: 0.1,
            theta: 0.1,
            v_radius: None,
            batch: Some(DEFAULT_BATCH),
        }
    }
}

impl MaSobaParams {
    /// Reject out-of-range values.
    pub fn validate(&self) -> Result<(), Error> {
        check_pos(NAME, "rho", self.rho)?;
        check_pos(NAME, "gamma", self.gamma)?;
        let t = self.theta;
        check(NAME, "theta", t, t > 0.0 && t <= 1.0, "in (0, 1]")?;
        if let Some(r) = self.v_radius {
            check_pos(NAME, "v_radius", r)?;
        }
        self.batch.map_or(Ok(()), |b| b.validate(NAME))
    }
}

/// The paper's constants are those of its analysis, with no closed form in the problem's
/// smoothness constants: no rule derives them.
impl StepRules for MaSobaParams {}

pub(crate) const NAME: &str = "ma-soba";

#[derive(Clone, Debug, Serialize, Deserialize)]
struct State {
    #[serde(with = "col")]
    v: Mat<f64>,
    /// The moving average `w` of the `x` directions.
    #[serde(with = "col")]
    w: Mat<f64>,
    stream: SampleStream,
}

/// MA-SOBA, SOBA with a moving average (Chen, Xiao and Balasubramanian, "Optimal algorithms for
/// stochastic bilevel optimization under relaxed smoothness conditions"): the directions of
/// [`Soba`](super::Soba), with `x` moved along a moving average of its direction rather than
/// the direction itself.
///
/// Per iteration, with a draw `i` of `g`'s samples and, independently, `j` of `f`'s, at the
/// current `(y, v, x)`: SOBA's `D_y`, `D_v`, `D_x`; then `y ← y − ρD_y`, `v ← v − ρD_v` (onto
/// the ball of radius `r` if one is set), `x ← x − γw`, and `w ← (1 − θ)w + θD_x`, from
/// `v₀ = 0` and `w₀ = 0` (so `x` first moves at the second iteration). 2 Gc and 1 MV per
/// iteration, as SOBA. The paper shows `O(ε^{−2})` iterations to an ε-stationary point
/// (`E‖∇Φ‖² ≤ ε`) with constant steps, the optimal order, without SOBA's assumption that the
/// third derivatives of `g` are Lipschitz.
#[derive(Clone, Debug)]
pub struct MaSoba {
    params: MaSobaParams,
    state: State,
}

impl MaSoba {
    /// A solver with validated parameters.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first bad parameter.
    pub fn new(params: MaSobaParams) -> Result<Self, Error> {
        params.validate()?;
        Ok(MaSoba {
            params,
            state: State {
                v: zeros(0),
                w: zeros(0),
                stream: SampleStream::new(params.batch.map_or(0, |b| b.seed)),
            },
        })
    }
}

impl Solver for MaSoba {
    fn name(&self) -> &'static str {
        NAME
    }
    fn init(&mut self, o: &mut Oracle<'_>, _it: &mut Iterate) -> Result<(), Error> {
        if let Some(b) = &self.params.batch {
            b.check(NAME, o)?;
        }
        self.state.v = zeros(o.problem().dim_y());
        self.state.w = zeros(o.problem().dim_x());
        Ok(())
    }
    fn step(&mut self, o: &mut Oracle<'_>, it: &mut Iterate, _k: u64) -> Scalars {
        let p = self.params;
        let src = p.batch.as_ref().map_or(Source::Full, Source::Batch);
        let st = &mut self.state;
        let di = src.draw_g(o, &mut st.stream);
        let dj = src.draw_f(o, &mut st.stream);
        let d = Terms::at(o, it, &st.v, &di, &dj).directions();
        d.step_lower(it, &mut st.v, p.rho, p.v_radius);
        axpy(&mut it.x, -p.gamma, &st.w);
        scale(&mut st.w, 1.0 - p.theta);
        axpy(&mut st.w, p.theta, &d.dx);
        vec![
            ("rho", p.rho),
            ("gamma", p.gamma),
            ("dx_norm", norm(&d.dx)),
            ("w_norm", norm(&st.w)),
            ("v_norm", norm(&st.v)),
        ]
    }
    fn aux(&self) -> Vec<(&'static str, &Mat<f64>)> {
        vec![("v", &self.state.v), ("w", &self.state.w)]
    }
    state_io!();
}

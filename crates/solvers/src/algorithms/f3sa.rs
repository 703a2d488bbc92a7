use super::schedule::{PenaltySchedule, penalty_rules};
use crate::error::Error;
use crate::oracle::Oracle;
use crate::problem::Grad;
use crate::recursive::storm;
use crate::sampling::{Draw, Minibatch, SampleStream, Source, grad_f, grad_g};
use crate::solver::{Iterate, Scalars, Solver, col, state_io};
use crate::vecops::{axpy, lincomb, zeros};
use bilevel_linalg::Mat;
use serde::{Deserialize, Serialize};

/// Which objective a momentum estimator differentiates.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Fun {
    F,
    G,
}

/// A momentum-assisted (STORM-type) gradient estimator of Khanduri, Zeng, Hong, Wai, Wang and
/// Yang, "A near-optimal algorithm for stochastic bilevel optimization via double-momentum":
/// `h̃ᵏ = ∇F(pₖ; φᵏ) + (1 − ηₖ)(h̃ᵏ⁻¹ − ∇F(pₖ₋₁; φᵏ))`, both gradients on the same samples `φᵏ`.
/// Holds both blocks (`∇ₓ`, `∇ᵧ`) of one gradient; the recursion is [`storm`], shared with
/// FSLA, MRBO, VRBO and SUSTAIN.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Storm {
    #[serde(with = "col")]
    pub x: Mat<f64>,
    #[serde(with = "col")]
    pub y: Mat<f64>,
}

impl Storm {
    pub(crate) fn empty() -> Self {
        Storm {
            x: zeros(0),
            y: zeros(0),
        }
    }

    /// Updates the estimate at the point `cur`; `prev` is the previous point, `None` on the first
    /// iteration. With `η ≥ 1` the correction has weight 0 and is skipped (one Gc instead of two).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn update(
        &mut self,
        o: &mut Oracle<'_>,
        fun: Fun,
        cur: (&Mat<f64>, &Mat<f64>),
        prev: Option<(&Mat<f64>, &Mat<f64>)>,
        eta: f64,
        d: &Draw,
    ) {
        let grad = |o: &mut Oracle<'_>, x: &Mat<f64>, y: &Mat<f64>| -> Grad {
            match fun {
                Fun::F => grad_f(o, x, y, d),
                Fun::G => grad_g(o, x, y, d),
            }
        };
        let g = grad(o, cur.0, cur.1);
        match prev {
            Some((px, py)) if eta < 1.0 => {
                let gp = grad(o, px, py);
                // h̃ ← ∇F(p) + (1 − η)(h̃ − ∇F(p₋₁))
                self.x = storm(&self.x, &g.x, &gp.x, eta);
                self.y = storm(&self.y, &g.y, &gp.y, eta);
            }
            _ => {
                self.x = g.x;
                self.y = g.y;
            }
        }
    }
}

/// Parameters of [`F3sa`]: F²SA's schedules ([`PenaltySchedule`], flattened into the
/// parameters' serde form) plus the momentum weights `η_k = r_k^{−2c}` of the slides ("Complexity
/// of F³SA": `η_k = k^{−2c}`, offset so that `η₀ = 1`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct F3saParams {
    /// `α_k, γ_k, λ_k` (and `η_k` from `c`) and the `x` step ratio `ξ`. The default is the
    /// exact-gradient schedule of the slides, `a = 1/3`, `c = 0`, so `η_k = 1`: no momentum,
    /// which "gives no improvement in the exact-gradient case".
    #[serde(flatten)]
    pub schedule: PenaltySchedule,
    /// Minibatch oracles; `None`: exact gradients.
    pub batch: Option<Minibatch>,
}

impl F3saParams {
    /// The schedule of the slides when the gradients of both `f` and `g` are noisy: `a = 3/5`,
    /// `c = 2/5` (so `η_k ~ k^{−4/5}`), with minibatch oracles `batch`.
    pub fn stochastic(batch: Minibatch) -> Self {
        F3saParams {
            schedule: PenaltySchedule {
                a: 0.6,
                c: 0.4,
                ..PenaltySchedule::default()
            },
            batch: Some(batch),
        }
    }

    /// Reject out-of-range values.
    pub fn validate(&self) -> Result<(), Error> {
        self.schedule.validate(NAME)?;
        self.batch.map_or(Ok(()), |b| b.validate(NAME))
    }

    /// `(α_k, γ_k, λ_k, η_k)` at iteration `k`.
    pub fn schedule_at(&self, k: u64) -> (f64, f64, f64, f64) {
        let ((alpha, gamma, lambda), r) = self.schedule.at(k);
        (alpha, gamma, lambda, r.powf(-2.0 * self.schedule.c))
    }
}

penalty_rules!(F3saParams);

pub(crate) const NAME: &str = "f3sa";

#[derive(Clone, Debug, Serialize, Deserialize)]
struct State {
    #[serde(with = "col")]
    z: Mat<f64>,
    /// `x_{k−1}`, `y_{k−1}`, `z_{k−1}`, the points of the momentum corrections.
    #[serde(with = "col")]
    px: Mat<f64>,
    #[serde(with = "col")]
    py: Mat<f64>,
    #[serde(with = "col")]
    pz: Mat<f64>,
    /// `h̃_gz` (at `(x_k, z_k)`), `h̃_fy`, `h̃_gy` (at `(x_k, y_k)`).
    hgz: Storm,
    hfy: Storm,
    hgy: Storm,
    /// `h̃_fx`, `h̃_gxy` (at `(x_k, y_{k+1})`), `h̃_gxz` (at `(x_k, z_{k+1})`).
    hfx: Storm,
    hgxy: Storm,
    hgxz: Storm,
    stream: SampleStream,
}

/// F³SA, F²SA with momentum-assisted gradient estimators (Kwon, Kwon, Wright and Nowak, "A
/// Fully First-Order Method for Stochastic Bilevel Optimization", as presented in the slides
/// "Fully First-Order Methods for Bilevel Optimization", "F³SA: Variant with Momentum").
///
/// Per iteration `k`, with STORM-type estimators `h̃`:
/// `z_{k+1} = P(z_k − γ_k h̃_gz)`, `y_{k+1} = P(y_k − α_k(h̃_fy + λ_k h̃_gy))` from
/// `(x_k, y_k, z_k)`, then `x_{k+1} = P(x_k − ξα_k(h̃_fx + λ_k(h̃_gxy − h̃_gxz)))` from
/// `(x_k, y_{k+1}, z_{k+1})`, the points at which F²SA takes the same gradients (the slides
/// define the other estimators "similarly" to `h̃_gz`). `α, γ, λ` follow F²SA's schedule and
/// `η_k ~ k^{−2c}`. Each of the six estimators takes one (stochastic) gradient at its current
/// point and, when `η_k < 1`, one at the previous iteration's point on the same samples: `6` Gc
/// per iteration, `12` with momentum. With `η_k = 1` (the exact-gradient default) the method is
/// F²SA with `T = 1`, iterate for iterate.
#[derive(Clone, Debug)]
pub struct F3sa {
    params: F3saParams,
    state: State,
}

impl F3sa {
    /// A solver with validated parameters.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first bad parameter.
    pub fn new(params: F3saParams) -> Result<Self, Error> {
        params.validate()?;
        Ok(F3sa {
            params,
            state: State {
                z: zeros(0),
                px: zeros(0),
                py: zeros(0),
                pz: zeros(0),
                hgz: Storm::empty(),
                hfy: Storm::empty(),
                hgy: Storm::empty(),
                hfx: Storm::empty(),
                hgxy: Storm::empty(),
                hgxz: Storm::empty(),
                stream: SampleStream::new(params.batch.map_or(0, |b| b.seed)),
            },
        })
    }
}

impl Solver for F3sa {
    fn name(&self) -> &'static str {
        NAME
    }
    fn init(&mut self, o: &mut Oracle<'_>, it: &mut Iterate) -> Result<(), Error> {
        if let Some(b) = &self.params.batch {
            b.check(NAME, o)?;
        }
        self.state.z = it.y.clone();
        Ok(())
    }
    fn step(&mut self, o: &mut Oracle<'_>, it: &mut Iterate, k: u64) -> Scalars {
        let p = self.params;
        let (alpha, gamma, lambda, eta) = p.schedule_at(k);
        let src = p.batch.as_ref().map_or(Source::Full, Source::Batch);
        let st = &mut self.state;
        let first = k == 0 || st.px.nrows() == 0;
        // z and y from (x_k, y_k, z_k); corrections at (x_{k−1}, y_{k−1}, z_{k−1}).
        let dz = src.draw_g(o, &mut st.stream);
        let prev = (!first).then_some((&st.px, &st.pz));
        st.hgz.update(o, Fun::G, (&it.x, &st.z), prev, eta, &dz);
        let (df, dg) = (src.draw_f(o, &mut st.stream), src.draw_g(o, &mut st.stream));
        let prev = (!first).then_some((&st.px, &st.py));
        st.hfy.update(o, Fun::F, (&it.x, &it.y), prev, eta, &df);
        st.hgy.update(o, Fun::G, (&it.x, &it.y), prev, eta, &dg);
        // Keep y_k, z_k: the previous points of the x estimators at the next iteration.
        st.py = it.y.clone();
        st.pz = st.z.clone();
        axpy(&mut st.z, -gamma, &st.hgz.y);
        o.project_y(&mut st.z);
        axpy(&mut it.y, -alpha, &st.hfy.y);
        axpy(&mut it.y, -alpha * lambda, &st.hgy.y);
        o.project_y(&mut it.y);
        // x from (x_k, y_{k+1}, z_{k+1}); corrections at (x_{k−1}, y_k, z_k).
        // h̃_gxy and h̃_gxz share their samples: their difference is O(1/λ) and is multiplied by
        // λ, so independent samples would add λ times the sampling noise of ∇ₓg.
        let (df, dg) = (src.draw_f(o, &mut st.stream), src.draw_g(o, &mut st.stream));
        let prev = (!first).then_some((&st.px, &st.py));
        st.hfx.update(o, Fun::F, (&it.x, &it.y), prev, eta, &df);
        st.hgxy.update(o, Fun::G, (&it.x, &it.y), prev, eta, &dg);
        let prev = (!first).then_some((&st.px, &st.pz));
        st.hgxz.update(o, Fun::G, (&it.x, &st.z), prev, eta, &dg);
        st.px = it.x.clone();
        let d = lincomb(
            1.0,
            &st.hfx.x,
            lambda,
            &lincomb(1.0, &st.hgxy.x, -1.0, &st.hgxz.x),
        );
        axpy(&mut it.x, -p.schedule.xi * alpha, &d);
        o.project_x(&mut it.x);
        vec![("lambda", lambda), ("alpha", alpha), ("eta", eta)]
    }
    fn aux(&self) -> Vec<(&'static str, &Mat<f64>)> {
        vec![
            ("z", &self.state.z),
            ("h_fx", &self.state.hfx.x),
            ("h_gxy", &self.state.hgxy.x),
            ("h_gxz", &self.state.hgxz.x),
        ]
    }
    state_io!();
}

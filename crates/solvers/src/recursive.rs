//! Recursive gradient estimators and the iteration of the double-momentum methods.
//!
//! One recursion covers them all ([`storm`]): an estimate `d` of a gradient `G` at the current
//! point is corrected from the previous estimate by the difference of two stochastic estimates
//! of `G` on the *same* samples, one at the current point and one at the previous:
//! `d ← Ĝ(pₖ) + (1 − ρ)(d − Ĝ(pₖ₋₁))`. With a momentum weight `ρ ∈ (0, 1)` it is the STORM-type
//! estimator (Cutkosky and Orabona's, as F³SA, FSLA, MRBO and SUSTAIN take it); with `ρ = 0` it
//! is the SARAH/SPIDER recursion `d ← d + Ĝ(pₖ) − Ĝ(pₖ₋₁)` (VRBO's, restarted from a large
//! batch); with `ρ = 1` it is the plain estimate. With exact oracles and an estimate that
//! starts exact, the correction is exactly zero at every step, so the recursion returns the
//! plain gradient bit for bit: the momentum methods' exact-oracle paths are those of the plain
//! methods.
//!
//! The hypergradient estimates at two points on the same samples come from
//! [`crate::implicit::hypergradients_at`]; [`grad_y_g_at`] does the same for `∇ᵧg`.

use crate::implicit::{Point, Series, hypergradients_at};
use crate::oracle::Oracle;
use crate::sampling::{SampleStream, Source, grad_g};
use crate::solver::{Iterate, Scalars, col};
use crate::vecops::{axpy, lincomb, norm, zeros};
use bilevel_linalg::Mat;
use serde::{Deserialize, Serialize};

/// The recursion `Ĝ(pₖ) + (1 − ρ)(d − Ĝ(pₖ₋₁))` from the previous estimate `d`, the estimate
/// `g = Ĝ(pₖ)` at the current point and `g_prev = Ĝ(pₖ₋₁)` at the previous one on the same
/// samples, with momentum weight `rho` (`0`: SARAH/SPIDER, `1`: no memory).
pub(crate) fn storm(d: &Mat<f64>, g: &Mat<f64>, g_prev: &Mat<f64>, rho: f64) -> Mat<f64> {
    lincomb(1.0, g, 1.0 - rho, &lincomb(1.0, d, -1.0, g_prev))
}

/// Updates the estimate `d` with the current estimate `g` and, unless the recursion restarts
/// (`None`: the first iteration, or a weight `ρ ≥ 1` for which the correction vanishes), the
/// previous point's `g_prev`.
pub(crate) fn update(d: &mut Mat<f64>, g: Mat<f64>, g_prev: Option<&Mat<f64>>, rho: f64) {
    *d = match g_prev {
        Some(gp) => storm(d, &g, gp, rho),
        None => g,
    };
}

/// `∇ᵧg` at each of `pts` on one draw of `g`'s samples (`|pts|` Gc).
pub(crate) fn grad_y_g_at(
    o: &mut Oracle<'_>,
    pts: &[Point<'_>],
    src: &Source<'_>,
    stream: &mut SampleStream,
) -> Vec<Mat<f64>> {
    let d = src.draw_g(o, stream);
    pts.iter().map(|&(x, y)| grad_g(o, x, y, &d).y).collect()
}

/// The estimates' value at the current point and, when given, at the previous point, from a
/// list of one or two (as [`grad_y_g_at`] and [`hypergradients_at`] return them).
pub(crate) fn split(mut v: Vec<Mat<f64>>) -> (Mat<f64>, Option<Mat<f64>>) {
    let prev = (v.len() > 1).then(|| v.remove(1));
    (v.remove(0), prev)
}

/// The state of the double-momentum methods (MRBO, SUSTAIN): the previous iterate (empty
/// before the first step), the recursive estimates of `∇ᵧg` and of the hypergradient, and the
/// minibatch index stream.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Momentum {
    #[serde(with = "col")]
    pub px: Mat<f64>,
    #[serde(with = "col")]
    pub py: Mat<f64>,
    #[serde(with = "col")]
    pub dy: Mat<f64>,
    #[serde(with = "col")]
    pub dx: Mat<f64>,
    pub stream: SampleStream,
}

impl Momentum {
    /// Before the first step, with the stream of `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Momentum {
            px: zeros(0),
            py: zeros(0),
            dy: zeros(0),
            dx: zeros(0),
            stream: SampleStream::new(seed),
        }
    }

    /// One iteration of the double-momentum methods with steps `alpha` (of `y`), `beta` (of
    /// `x`) and momentum weight `rho`, the hypergradient from `series`:
    /// `dʸ ← storm(dʸ, ∇ᵧgᵢ(xₖ, yₖ), ∇ᵧgᵢ(xₖ₋₁, yₖ₋₁))` on one draw `i`,
    /// `dˣ ← storm(dˣ, ∇̂Φ(xₖ, yₖ), ∇̂Φ(xₖ₋₁, yₖ₋₁))` with both estimates on the same samples,
    /// then `y ← y − αdʸ`, `x ← x − βdˣ`. On the first iteration the estimates are the plain
    /// ones (`2` Gc and `Q + 1` MV for a series of `Q` products; twice that afterwards).
    /// Returns the scalars and the series' truncation.
    pub(crate) fn step(
        &mut self,
        o: &mut Oracle<'_>,
        it: &mut Iterate,
        (alpha, beta, rho): (f64, f64, f64),
        series: Series,
        src: &Source<'_>,
    ) -> (Scalars, usize) {
        let restart = self.px.nrows() == 0 || rho >= 1.0;
        let mut pts: Vec<Point<'_>> = vec![(&it.x, &it.y)];
        if !restart {
            pts.push((&self.px, &self.py));
        }
        let (g, gp) = split(grad_y_g_at(o, &pts, src, &mut self.stream));
        update(&mut self.dy, g, gp.as_ref(), rho);
        let mut p = 0;
        let hs = hypergradients_at(o, &pts, src, &mut self.stream, |o, pts, bs, s| {
            let (vs, q) = series.solve(o, pts, bs, src, s);
            p = q;
            vs
        });
        let (h, hp) = split(hs);
        update(&mut self.dx, h, hp.as_ref(), rho);
        self.px = it.x.clone();
        self.py = it.y.clone();
        axpy(&mut it.y, -alpha, &self.dy);
        axpy(&mut it.x, -beta, &self.dx);
        let scalars = vec![
            ("alpha", alpha),
            ("beta", beta),
            ("rho", rho),
            ("hypergrad_est_norm", norm(&self.dx)),
        ];
        (scalars, p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recursion_is_storm_spider_or_the_plain_estimate() {
        let v = |a: [f64; 2]| Mat::from_fn(2, 1, |i, _| a[i]);
        let (d, g, gp) = (v([1.0, -2.0]), v([0.5, 4.0]), v([3.0, 1.0]));
        // g + (1 − ρ)(d − g₋) with ρ = 1/4: (0.5 + 0.75·(−2), 4 + 0.75·(−3)).
        assert_eq!(storm(&d, &g, &gp, 0.25), v([-1.0, 1.75]));
        // SPIDER: d + g − g₋.
        assert_eq!(storm(&d, &g, &gp, 0.0), v([-1.5, 1.0]));
        assert_eq!(storm(&d, &g, &gp, 1.0), g);
        // A restart takes the plain estimate; an exact previous estimate is left exact.
        let mut e = d.clone();
        update(&mut e, g.clone(), None, 0.25);
        assert_eq!(e, g);
        update(&mut e, gp.clone(), Some(&g), 0.25);
        assert_eq!(e, gp);
    }
}

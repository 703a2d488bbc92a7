//! What SRBA and SPABA share: [`Soba`](super::Soba)'s three directions estimated recursively,
//! as SARAH (Nguyen, Liu, Scheinberg and Takáč, "SARAH: A Novel Method for Machine Learning
//! Problems Using Stochastic Recursive Gradient") and PAGE (Li, Bao, Zhang and Richtárik,
//! "PAGE: A Simple and Optimal Probabilistic Gradient Estimator for Nonconvex Optimization") do
//! for one gradient. The two methods differ only in when they restart the recursion from the
//! full sums: SRBA every `q` iterations, SPABA at random.

use super::soba::{Directions, Terms};
use crate::oracle::Oracle;
use crate::sampling::{SampleStream, Source};
use crate::solver::{Iterate, Scalars, col};
use crate::vecops::zeros;
use bilevel_linalg::Mat;
use serde::{Deserialize, Serialize};

/// The state of a recursive estimate of the directions: the point `(y, v, x)` of the previous
/// iteration, the directions estimated there, and the stream of draws.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Recursive {
    #[serde(with = "col")]
    pub v: Mat<f64>,
    /// `(x, y)` of the previous iteration.
    prev: Iterate,
    /// `v` of the previous iteration.
    #[serde(with = "col")]
    v_prev: Mat<f64>,
    /// The current estimate of `D_y, D_v, D_x`.
    pub d: Directions,
    pub stream: SampleStream,
}

impl Recursive {
    /// An empty state drawing from the stream `seed` ([`Recursive::init`] sizes it).
    pub(crate) fn new(seed: u64) -> Self {
        Recursive {
            v: zeros(0),
            prev: Iterate {
                x: zeros(0),
                y: zeros(0),
            },
            v_prev: zeros(0),
            d: Directions::zeros(0, 0),
            stream: SampleStream::new(seed),
        }
    }

    /// `v₀ = 0` and zero directions at the starting point (the first iteration restarts).
    pub(crate) fn init(&mut self, it: &Iterate) {
        let (n, m) = (it.x.nrows(), it.y.nrows());
        self.v = zeros(m);
        self.prev = it.clone();
        self.v_prev = zeros(m);
        self.d = Directions::zeros(n, m);
    }

    /// One iteration at the current `(y, v, x)`. On a `restart`, the directions afresh on the
    /// full sums (2 Gc and 1 MV); otherwise one draw `i` of `g`'s samples and `j` of `f`'s, and
    /// `D ← D + D_{ij}(y, v, x) − D_{ij}(y', v', x')` with the terms of the same draws at the
    /// previous point `(y', v', x')` (4 Gc and 2 MV). Then SOBA's joint step with `ρ` and `γ`,
    /// `v` onto the ball of radius `radius` if one is given. The scalars are SOBA's and
    /// `restart` (1 or 0).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn step(
        &mut self,
        o: &mut Oracle<'_>,
        it: &mut Iterate,
        src: Source<'_>,
        restart: bool,
        rho: f64,
        gamma: f64,
        radius: Option<f64>,
    ) -> Scalars {
        if restart {
            self.d = Terms::at(o, it, &self.v, &None, &None).directions();
        } else {
            let di = src.draw_g(o, &mut self.stream);
            let dj = src.draw_f(o, &mut self.stream);
            let new = Terms::at(o, it, &self.v, &di, &dj).directions();
            let old = Terms::at(o, &self.prev, &self.v_prev, &di, &dj).directions();
            self.d.recurse(&new, &old);
        }
        self.prev.clone_from(it);
        self.v_prev.clone_from(&self.v);
        let mut s = self.d.step(it, &mut self.v, rho, gamma, radius);
        s.push(("restart", if restart { 1.0 } else { 0.0 }));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::Problem;
    use crate::problems::QuadraticKappa;
    use crate::sampling::{Minibatch, grad_f};
    use crate::vecops::{lincomb, norm};

    /// The recursion against its definition, replayed: before each step the draws are taken
    /// from a copy of the stream and the expected directions computed from the stored previous
    /// point, with the same draws, by the batch oracles.
    #[test]
    fn the_recursion_adds_the_same_draws_difference_between_the_two_points() {
        let p = QuadraticKappa::new(10.0, 5);
        let mb = Minibatch {
            batch_f: 2,
            batch_g: 3,
            seed: 4,
        };
        let src = Source::Batch(&mb);
        let mut o = Oracle::new(&p);
        let mut it = Iterate {
            x: lincomb(2.0, &p.x0(), 0.0, &p.x0()),
            y: p.y0(),
        };
        let mut r = Recursive::new(mb.seed);
        r.init(&it);
        let err = |a: &Mat<f64>, b: &Mat<f64>| norm(&lincomb(1.0, a, -1.0, b)) / norm(a);
        for k in 0..12u64 {
            let restart = k.is_multiple_of(5);
            let (prev, v_prev, v) = (it.clone(), r.v.clone(), r.v.clone());
            let want = if restart {
                let (gy, c) = Terms::lower(&mut o, &it, &v, &None);
                let f = o.grad_f(&it.x, &it.y);
                (
                    gy,
                    lincomb(1.0, &c.yy, 1.0, &f.y),
                    lincomb(1.0, &c.xy, 1.0, &f.x),
                )
            } else {
                let mut replay = r.stream;
                let di = src.draw_g(&o, &mut replay);
                let dj = src.draw_f(&o, &mut replay);
                let (gy, c) = Terms::lower(&mut o, &it, &v, &di);
                let (gy0, c0) = Terms::lower(&mut o, &r.prev, &r.v_prev, &di);
                let (f, f0) = (
                    grad_f(&mut o, &it.x, &it.y, &dj),
                    grad_f(&mut o, &r.prev.x, &r.prev.y, &dj),
                );
                let diff = |a: &Mat<f64>, b: &Mat<f64>, c: &Mat<f64>, d: &Mat<f64>| {
                    lincomb(
                        1.0,
                        &lincomb(1.0, a, 1.0, b),
                        -1.0,
                        &lincomb(1.0, c, 1.0, d),
                    )
                };
                (
                    lincomb(1.0, &r.d.dy, 1.0, &lincomb(1.0, &gy, -1.0, &gy0)),
                    lincomb(1.0, &r.d.dv, 1.0, &diff(&c.yy, &f.y, &c0.yy, &f0.y)),
                    lincomb(1.0, &r.d.dx, 1.0, &diff(&c.xy, &f.x, &c0.xy, &f0.x)),
                )
            };
            let s = r.step(&mut o, &mut it, src, restart, 0.05, 0.05, None);
            assert_eq!(
                s.last(),
                Some(&("restart", if restart { 1.0 } else { 0.0 }))
            );
            assert!(err(&want.0, &r.d.dy) < 1e-12, "k {k}: D_y");
            assert!(err(&want.1, &r.d.dv) < 1e-12, "k {k}: D_v");
            assert!(err(&want.2, &r.d.dx) < 1e-12, "k {k}: D_x");
            // The step used these directions from the point it started at.
            assert_eq!(r.prev, prev);
            assert_eq!(r.v_prev, v_prev);
            let y = lincomb(1.0, &prev.y, -0.05, &r.d.dy);
            assert!(err(&y, &it.y) < 1e-15, "k {k}: y");
        }
    }
}

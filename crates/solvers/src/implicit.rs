//! The pieces of stochastic implicit differentiation that several methods share: SGD on the
//! lower level, the approximations of `[∇²ᵧᵧg]⁻¹b` (a Neumann series with a fixed or a random
//! truncation, SGD on the linear system) and the hypergradient estimate from the result.
//!
//! Every Hessian-vector and mixed product here takes its own draw of `g`'s samples from the
//! method's stream ([`Source::draw_g`]), so the factors of a product of estimates are
//! independent; with [`Source::Full`] every product is the exact one. Stochastic AIDBiO
//! ([`AidBio`](crate::algorithms::AidBio)), StocBiO, AmIGO, BSA and TTSA are written with them,
//! and so are the recursive estimators of FSLA, MRBO, VRBO and SUSTAIN ([`crate::recursive`]),
//! which take the same estimate at two points on the same samples ([`neumann_at`],
//! [`neumann_random_at`], [`hypergradients_at`]).
//! CG on the Hessian of one draw is `crate::linear::cg` (AIDBiO's other solver).

use crate::error::Error;
use crate::oracle::Oracle;
use crate::sampling::{
    Draw, Minibatch, SampleStream, Source, grad_f, grad_g, hvp_yy_g_into, jvp_xy_g,
};
use crate::solver::col;
use crate::vecops::{axpy, lincomb, scale, zeros};
use bilevel_linalg::Mat;
use serde::{Deserialize, Serialize};

/// `steps` SGD steps on `g(x, ·)` from `y`, each on its own draw: `y ← y − α∇ᵧgᵢ(x, y)`
/// (`steps` Gc).
pub(crate) fn inner_sgd(
    o: &mut Oracle<'_>,
    x: &Mat<f64>,
    y: &mut Mat<f64>,
    alpha: f64,
    steps: usize,
    src: &Source<'_>,
    stream: &mut SampleStream,
) {
    for _ in 0..steps {
        let d = src.draw_g(o, stream);
        let gy = grad_g(o, x, y, &d).y;
        axpy(y, -alpha, &gy);
    }
}

/// A point `(x, y)` at which an estimate is taken.
pub(crate) type Point<'a> = (&'a Mat<f64>, &'a Mat<f64>);

/// One factor of the Neumann products at each of `N` points on the same draw `d`:
/// `uᵢ ← (I − η∇²ᵧᵧg_d(xᵢ, yᵢ))uᵢ`, with `hp` the products' buffer (`N` MV).
fn contract(
    o: &mut Oracle<'_>,
    pts: &[Point<'_>],
    us: &mut [Mat<f64>],
    hp: &mut Mat<f64>,
    eta: f64,
    d: &Draw,
) {
    for (&(x, y), u) in pts.iter().zip(us.iter_mut()) {
        hvp_yy_g_into(o, x, y, u.as_ref(), hp.as_mut(), d);
        axpy(u, -eta, hp);
    }
}

/// The Neumann series of `[∇²ᵧᵧg]⁻¹b` truncated after `products` products,
/// `η Σ_{q=0}^{P} Π_{j≤q}(I − η∇²ᵧᵧgⱼ) b` (`P = products`, the `q = 0` term `ηb`), each factor on
/// its own draw: an unbiased estimate of the exact truncated series
/// `η Σ_{q=0}^{P} (I − η∇²ᵧᵧg)^q b`, which tends to `[∇²ᵧᵧg]⁻¹b` as `P` grows when
/// `0 < η ≤ 1/L_g` (`P` MV). Ji, Yang and Liang's estimator (stocBiO's Algorithm 3; the benchmark's
/// `shia`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn neumann(
    o: &mut Oracle<'_>,
    x: &Mat<f64>,
    y: &Mat<f64>,
    b: &Mat<f64>,
    eta: f64,
    products: usize,
    src: &Source<'_>,
    stream: &mut SampleStream,
) -> Mat<f64> {
    let mut v = neumann_at(o, &[(x, y)], &[b], eta, products, src, stream);
    v.remove(0)
}

/// [`neumann`] at each of `N` points `(xᵢ, yᵢ)` with right-hand sides `bᵢ`, the `j`-th factor of
/// every series on the same draw (`N·P` MV): the recursive estimators' difference of the
/// hypergradient estimate at two points on the same samples (the benchmark's `joint_shia`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn neumann_at(
    o: &mut Oracle<'_>,
    pts: &[Point<'_>],
    bs: &[&Mat<f64>],
    eta: f64,
    products: usize,
    src: &Source<'_>,
    stream: &mut SampleStream,
) -> Vec<Mat<f64>> {
    let mut terms: Vec<Mat<f64>> = bs.iter().map(|b| (*b).clone()).collect();
    let mut vs = terms.clone();
    let mut hp = zeros(terms[0].nrows());
    for _ in 0..products {
        let d = src.draw_g(o, stream);
        contract(o, pts, &mut terms, &mut hp, eta, &d);
        for (v, t) in vs.iter_mut().zip(&terms) {
            axpy(v, 1.0, t);
        }
    }
    for v in &mut vs {
        scale(v, eta);
    }
    vs
}

/// Ghadimi and Wang's randomly truncated Neumann estimate of `[∇²ᵧᵧg]⁻¹b` (Algorithm 3 of
/// "Approximation Methods for Bilevel Programming", with `η` for their `1/L_g` and `Q` for their
/// `b`): `p` drawn uniformly from `{0, …, Q − 1}`, then `Qη Π_{j=1}^{p}(I − η∇²ᵧᵧgⱼ) b`, each
/// factor on its own draw (`p` MV). Over `p` and the draws its mean is the exact truncated series
/// `η Σ_{q<Q} (I − η∇²ᵧᵧg)^q b`. Returns the estimate and `p`.
///
/// With exact oracles ([`Source::Full`]) it returns that mean itself, [`neumann`] with `Q − 1`
/// products (so a run with exact oracles is deterministic), and `p = Q − 1`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn neumann_random(
    o: &mut Oracle<'_>,
    x: &Mat<f64>,
    y: &Mat<f64>,
    b: &Mat<f64>,
    eta: f64,
    terms: usize,
    src: &Source<'_>,
    stream: &mut SampleStream,
) -> (Mat<f64>, usize) {
    let (mut v, p) = neumann_random_at(o, &[(x, y)], &[b], eta, terms, src, stream);
    (v.remove(0), p)
}

/// [`neumann_random`] at each of `N` points, with one truncation `p` for all and the `j`-th
/// factor of every product on the same draw (the benchmark's `joint_hia`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn neumann_random_at(
    o: &mut Oracle<'_>,
    pts: &[Point<'_>],
    bs: &[&Mat<f64>],
    eta: f64,
    terms: usize,
    src: &Source<'_>,
    stream: &mut SampleStream,
) -> (Vec<Mat<f64>>, usize) {
    if matches!(src, Source::Full) {
        let vs = neumann_at(o, pts, bs, eta, terms - 1, src, stream);
        return (vs, terms - 1);
    }
    let p = stream.pick(terms);
    let mut us: Vec<Mat<f64>> = bs.iter().map(|b| (*b).clone()).collect();
    let mut hp = zeros(us[0].nrows());
    for _ in 0..p {
        let d = src.draw_g(o, stream);
        contract(o, pts, &mut us, &mut hp, eta, &d);
    }
    for u in &mut us {
        scale(u, terms as f64 * eta);
    }
    (us, p)
}

/// `steps` SGD steps on the linear system `∇²ᵧᵧg·v = b`, warm-started from `v`: the gradient of
/// `½vᵀ∇²ᵧᵧgⱼv − bᵀv` on a fresh draw `j` per step, `v ← v − η(∇²ᵧᵧgⱼ·v − b)` (`steps` MV).
/// AmIGO's solver (Arbel and Mairal; the benchmark's `sgd_v`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn sgd_linear(
    o: &mut Oracle<'_>,
    x: &Mat<f64>,
    y: &Mat<f64>,
    v: &mut Mat<f64>,
    b: &Mat<f64>,
    eta: f64,
    steps: usize,
    src: &Source<'_>,
    stream: &mut SampleStream,
) {
    let mut hp = zeros(v.nrows());
    for _ in 0..steps {
        let d = src.draw_g(o, stream);
        hvp_yy_g_into(o, x, y, v.as_ref(), hp.as_mut(), &d);
        let r = lincomb(1.0, &hp, -1.0, b);
        axpy(v, -eta, &r);
    }
}

/// The hypergradient estimate `∇ₓf − ∇²ₓᵧgⱼ·v` from `fx = ∇ₓf` and `v ≈ [∇²ᵧᵧg]⁻¹∇ᵧf`, the
/// mixed product on a fresh draw `j` (one MV): `∇Φ(x)` at `y = y*(x)` and the exact `v`.
pub(crate) fn hypergradient(
    o: &mut Oracle<'_>,
    x: &Mat<f64>,
    y: &Mat<f64>,
    fx: &Mat<f64>,
    v: &Mat<f64>,
    src: &Source<'_>,
    stream: &mut SampleStream,
) -> Mat<f64> {
    let d = src.draw_g(o, stream);
    hypergradient_on(o, x, y, fx, v, &d)
}

/// [`hypergradient`] with the mixed product on the draw `d` (one MV).
pub(crate) fn hypergradient_on(
    o: &mut Oracle<'_>,
    x: &Mat<f64>,
    y: &Mat<f64>,
    fx: &Mat<f64>,
    v: &Mat<f64>,
    d: &Draw,
) -> Mat<f64> {
    let jv = jvp_xy_g(o, x, y, v, d);
    lincomb(1.0, fx, -1.0, &jv)
}

/// A Neumann estimate of `[∇²ᵧᵧg]⁻¹∇ᵧf` for [`hypergradients_at`]: the series with a fixed
/// number of products ([`neumann_at`]) or its random truncation ([`neumann_random_at`]).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Series {
    /// `products` products with step `eta`.
    Fixed { eta: f64, products: usize },
    /// `terms` terms with step `eta`, truncated at a `p` uniform in `{0, …, terms − 1}`.
    Random { eta: f64, terms: usize },
}

impl Series {
    /// The estimate at each of `pts` with right-hand sides `bs`, on shared draws, and the
    /// truncation (the number of products taken).
    pub(crate) fn solve(
        self,
        o: &mut Oracle<'_>,
        pts: &[Point<'_>],
        bs: &[&Mat<f64>],
        src: &Source<'_>,
        stream: &mut SampleStream,
    ) -> (Vec<Mat<f64>>, usize) {
        match self {
            Series::Fixed { eta, products } => {
                (neumann_at(o, pts, bs, eta, products, src, stream), products)
            }
            Series::Random { eta, terms } => neumann_random_at(o, pts, bs, eta, terms, src, stream),
        }
    }
}

/// The hypergradient estimate `∇ₓfⱼ − ∇²ₓᵧgₗ·vᵢ` at each of the points `pts`, all on the same
/// samples: one draw `j` of `f` for `(∇ₓf, ∇ᵧf)` at every point, `vᵢ` from `solve` (called with
/// the oracle, the points, their `∇ᵧfⱼ` and the stream; it returns one `v` per point, drawing
/// what it needs), and one draw `l` for every mixed product. With two points (the current and
/// the previous iterate) the difference of the two estimates is the correction of a recursive
/// estimator. `|pts|` Gc and `|pts|` MV besides `solve`'s.
pub(crate) fn hypergradients_at(
    o: &mut Oracle<'_>,
    pts: &[Point<'_>],
    src: &Source<'_>,
    stream: &mut SampleStream,
    solve: impl FnOnce(&mut Oracle<'_>, &[Point<'_>], &[&Mat<f64>], &mut SampleStream) -> Vec<Mat<f64>>,
) -> Vec<Mat<f64>> {
    let dj = src.draw_f(o, stream);
    let gf: Vec<_> = pts.iter().map(|&(x, y)| grad_f(o, x, y, &dj)).collect();
    let bs: Vec<&Mat<f64>> = gf.iter().map(|g| &g.y).collect();
    let vs = solve(o, pts, &bs, stream);
    let dl = src.draw_g(o, stream);
    pts.iter()
        .zip(&gf)
        .zip(&vs)
        .map(|((&(x, y), g), v)| hypergradient_on(o, x, y, &g.x, v, &dl))
        .collect()
}

/// One outer iteration of the stochastic AID methods built on these pieces (StocBiO, AmIGO,
/// BSA, TTSA), each quantity on its own draw: `inner_steps` steps of [`inner_sgd`] with step
/// `alpha`, `(∇ₓfⱼ, ∇ᵧfⱼ)` at the new `y`, `v ≈ [∇²ᵧᵧg]⁻¹∇ᵧfⱼ` from `solve` (called with the
/// oracle, `x`, `y`, `b = ∇ᵧfⱼ`, the state's `v` to overwrite or warm-start, the source and the
/// stream), the [`hypergradient`] estimate `d`, and `x ← x − βd`. Returns `d`; the caller
/// projects `x` if its method does.
#[allow(clippy::too_many_arguments)]
pub(crate) fn aid_iteration(
    o: &mut Oracle<'_>,
    x: &mut Mat<f64>,
    y: &mut Mat<f64>,
    st: &mut State,
    (alpha, inner_steps): (f64, usize),
    beta: f64,
    src: &Source<'_>,
    solve: impl FnOnce(
        &mut Oracle<'_>,
        &Mat<f64>,
        &Mat<f64>,
        &Mat<f64>,
        &mut Mat<f64>,
        &Source<'_>,
        &mut SampleStream,
    ),
) -> Mat<f64> {
    inner_sgd(o, x, y, alpha, inner_steps, src, &mut st.stream);
    let dj = src.draw_f(o, &mut st.stream);
    let gf = grad_f(o, x, y, &dj);
    solve(o, x, y, &gf.y, &mut st.v, src, &mut st.stream);
    let d = hypergradient(o, x, y, &gf.x, &st.v, src, &mut st.stream);
    axpy(x, -beta, &d);
    d
}

/// The state of the methods built on these pieces: the last (or, for AmIGO, warm-started)
/// linear-system estimate `v ≈ [∇²ᵧᵧg]⁻¹∇ᵧf` and the minibatch index stream.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct State {
    #[serde(with = "col")]
    pub v: Mat<f64>,
    pub stream: SampleStream,
}

impl State {
    /// Before `init`: an empty `v` and the stream of `batch`'s seed (0 without a batch).
    pub(crate) fn new(batch: Option<&Minibatch>) -> Self {
        State {
            v: zeros(0),
            stream: SampleStream::new(batch.map_or(0, |b| b.seed)),
        }
    }

    /// At the start of a run: checks that a minibatch has a data sum to draw from, and sets
    /// `v = 0`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming `solver` and the batch.
    pub(crate) fn init(
        &mut self,
        solver: &'static str,
        batch: Option<&Minibatch>,
        o: &Oracle<'_>,
    ) -> Result<(), Error> {
        if let Some(b) = batch {
            b.check(solver, o)?;
        }
        self.v = zeros(o.problem().dim_y());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::Problem;
    use crate::problems::QuadraticKappa;
    use crate::vecops::norm;

    fn rel(a: &Mat<f64>, b: &Mat<f64>) -> f64 {
        norm(&lincomb(1.0, a, -1.0, b)) / norm(a)
    }

    /// The quadratic's Hessian is `Z = diag(z)`: the truncated series and the linear system's
    /// solution are known coordinate by coordinate.
    fn setup() -> (QuadraticKappa, Mat<f64>, Mat<f64>, Mat<f64>) {
        let p = QuadraticKappa::new(10.0, 4);
        let x = Mat::from_fn(4, 1, |i, _| 0.5 - 0.3 * i as f64);
        let y = Mat::from_fn(4, 1, |i, _| 0.2 * i as f64);
        let b = Mat::from_fn(4, 1, |i, _| 1.0 + 0.5 * i as f64);
        (p, x, y, b)
    }

    /// The diagonal `z` of `Z`, as `Z·1` (on an oracle of its own, so no count changes).
    fn diag(p: &QuadraticKappa) -> Mat<f64> {
        let (x, y) = (p.x0(), p.y0());
        let ones = Mat::from_fn(4, 1, |_, _| 1.0);
        Oracle::new(p).hvp_g(&x, &y, &ones).yy
    }

    /// `η Σ_{q<Q} (1 − ηzᵢ)^q bᵢ`, coordinate by coordinate.
    fn series(p: &QuadraticKappa, b: &Mat<f64>, eta: f64, terms: usize) -> Mat<f64> {
        let z = diag(p);
        Mat::from_fn(4, 1, |i, _| {
            (0..terms)
                .map(|q| eta * (1.0 - eta * z[(i, 0)]).powi(q as i32) * b[(i, 0)])
                .sum()
        })
    }

    #[test]
    fn the_exact_neumann_series_and_the_random_truncation_s_mean_are_the_truncated_series() {
        let (p, x, y, b) = setup();
        let mut o = Oracle::new(&p);
        let mut s = SampleStream::new(0);
        let eta = 0.5;
        let exact = neumann(&mut o, &x, &y, &b, eta, 7, &Source::Full, &mut s);
        assert!(rel(&series(&p, &b, eta, 8), &exact) < 1e-14);
        let (mean, q) = neumann_random(&mut o, &x, &y, &b, eta, 8, &Source::Full, &mut s);
        assert_eq!((mean, q), (exact, 7));
        // 7 + 7 products, and the stream untouched by exact oracles.
        assert_eq!((o.counts().mv, s), (14, SampleStream::new(0)));
        // The mean of the random truncation over many draws (batches of 2 of the 4 samples),
        // against the same series: each draw is an unbiased estimate of it. A truncation that
        // forgot the factor Q (or drew p from 1..=Q) would be off by a factor of 4 (or by the
        // first term, ηb, a quarter to 40 % of the sum here).
        let mb = Minibatch {
            batch_f: 2,
            batch_g: 2,
            seed: 3,
        };
        let src = Source::Batch(&mb);
        let (draws, terms) = (20_000, 4);
        let target = series(&p, &b, 0.3, terms);
        let mut acc = zeros(4);
        let mut seen = [0usize; 4];
        for _ in 0..draws {
            let (v, q) = neumann_random(&mut o, &x, &y, &b, 0.3, terms, &src, &mut s);
            seen[q] += 1;
            axpy(&mut acc, 1.0 / draws as f64, &v);
        }
        assert!(seen.iter().all(|&n| (4500..5500).contains(&n)), "{seen:?}");
        let e = rel(&target, &acc);
        assert!(
            e < 0.03,
            "mean of the random truncation: relative error {e}"
        );
        // The fixed truncation with random draws is unbiased too.
        let mut acc = zeros(4);
        for _ in 0..draws / 4 {
            let v = neumann(&mut o, &x, &y, &b, 0.3, terms - 1, &src, &mut s);
            axpy(&mut acc, 4.0 / draws as f64, &v);
        }
        let e = rel(&target, &acc);
        assert!(e < 0.03, "mean of the sampled series: relative error {e}");
    }

    #[test]
    fn sgd_on_the_linear_system_converges_to_its_solution_and_the_hypergradient_is_exact_there() {
        let (p, x, y, b) = setup();
        let mut o = Oracle::new(&p);
        let mut s = SampleStream::new(0);
        let z = diag(&p);
        let solution = Mat::from_fn(4, 1, |i, _| b[(i, 0)] / z[(i, 0)]);
        let mut v = zeros(4);
        // Contraction 1 − ημ = 0.9 per step with η = 1/L = 1: 400 steps reach 0.9^400.
        sgd_linear(
            &mut o,
            &x,
            &y,
            &mut v,
            &b,
            1.0 / p.l(),
            400,
            &Source::Full,
            &mut s,
        );
        assert!(rel(&solution, &v) < 1e-12, "{}", rel(&solution, &v));
        assert_eq!(o.counts().mv, 400);
        // ∇ₓf − ∇²ₓᵧg·v with y = y*(x) and v = [∇²ᵧᵧg]⁻¹∇ᵧf is ∇Φ(x).
        let ys = p.y_star(x.as_ref()).unwrap();
        let f = o.grad_f(&x, &ys);
        let v = Mat::from_fn(4, 1, |i, _| f.y[(i, 0)] / z[(i, 0)]);
        let d = hypergradient(&mut o, &x, &ys, &f.x, &v, &Source::Full, &mut s);
        let exact = p.grad_phi(x.as_ref()).unwrap();
        assert!(rel(&exact, &d) < 1e-13, "{}", rel(&exact, &d));
        // Inner SGD with exact gradients is gradient descent: it reaches y*(x).
        let mut yy = y.clone();
        inner_sgd(&mut o, &x, &mut yy, 1.0 / p.l(), 400, &Source::Full, &mut s);
        assert!(rel(&ys, &yy) < 1e-12);
    }
}

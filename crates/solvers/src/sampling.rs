//! Minibatch oracles for data-sum problems ([`DataSum`](crate::problem::DataSum)): seeded,
//! reproducible draws of sample indices, and the estimators built on them.
//!
//! A stochastic method holds a [`Minibatch`] in its parameters and a [`SampleStream`] in its
//! (checkpointed) state, so a run, and a run resumed from a checkpoint, sees the same index
//! sequence for the same seed. The stream is SplitMix64 (Steele, Lea and Flood, "Fast splittable
//! pseudorandom number generators"), written out here so the sequence does not depend on a
//! dependency's version.

use crate::error::Error;
use crate::oracle::Oracle;
use crate::problem::{Cross, Grad};
use bilevel_linalg::{Mat, MatMut, MatRef};
use serde::{Deserialize, Serialize};

/// Batch sizes and seed of a stochastic method's minibatch oracles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Minibatch {
    /// Samples of `f` per stochastic gradient (capped at the problem's count).
    pub batch_f: usize,
    /// Samples of `g` per stochastic gradient (capped at the problem's count).
    pub batch_g: usize,
    /// Seed of the index stream.
    pub seed: u64,
}

impl Minibatch {
    /// Checks the batch sizes are at least one (part of the parameter validation of every
    /// method that takes a batch, so a bad size is refused before any run).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming `solver` and the parameter.
    pub fn validate(&self, solver: &'static str) -> Result<(), Error> {
        crate::error::check_count(solver, "batch.batch_f", self.batch_f, 1, ">= 1")?;
        crate::error::check_count(solver, "batch.batch_g", self.batch_g, 1, ">= 1")
    }

    /// Checks the batch sizes and that `o`'s problem is a data sum.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming `solver` and the parameter.
    pub(crate) fn check(&self, solver: &'static str, o: &Oracle<'_>) -> Result<(), Error> {
        self.validate(solver)?;
        if o.problem().data_sum().is_none() {
            return Err(Error::InvalidParameter {
                solver,
                name: "batch",
                value: self.batch_f as f64,
                allowed: "only on problems that are data sums (Problem::data_sum)",
            });
        }
        Ok(())
    }
}

/// A reproducible stream of sample-index sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleStream {
    state: u64,
}

impl SampleStream {
    /// The stream for `seed`.
    pub fn new(seed: u64) -> Self {
        SampleStream { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n ≥ 1`), by rejection so every value is equally likely.
    fn below(&mut self, n: usize) -> usize {
        let n = n as u64;
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let v = self.next_u64();
            if v < zone {
                return (v % n) as usize;
            }
        }
    }

    /// One index uniform in `0..n` (`n ≥ 1`): the one index of `draw(n, 1)`, so `n = 1` gives 0
    /// without consuming the stream.
    pub fn pick(&mut self, n: usize) -> usize {
        if n <= 1 { 0 } else { self.below(n) }
    }

    /// A number uniform in `[0, 1)` (the top 53 bits of the next output): a coin of
    /// probability `p` is `uniform() < p`.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// `min(b, n)` distinct indices of `0..n`, sorted, uniformly among all such sets (Floyd's
    /// algorithm); `b ≥ n` gives `0..n` without consuming the stream.
    ///
    /// Membership is kept in a bit set of `n` bits, so a draw costs `O(b + n/64)` (a list
    /// searched linearly made it `O(b²)`, noticeable for batches near a thousand).
    pub fn draw(&mut self, n: usize, b: usize) -> Vec<usize> {
        if b >= n {
            return (0..n).collect();
        }
        let mut bits = vec![0u64; n.div_ceil(64)];
        for j in n - b..n {
            let t = self.below(j + 1);
            // Every earlier pick is below j, so j is free when t is taken.
            let pick = if bits[t / 64] >> (t % 64) & 1 == 1 {
                j
            } else {
                t
            };
            bits[pick / 64] |= 1 << (pick % 64);
        }
        let mut s = Vec::with_capacity(b);
        for (w, &word) in bits.iter().enumerate() {
            let mut m = word;
            while m != 0 {
                s.push(w * 64 + m.trailing_zeros() as usize);
                m &= m - 1;
            }
        }
        s
    }
}

/// Where a method's gradients come from: the full oracles, or minibatches drawn from a stream.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Source<'a> {
    Full,
    Batch(&'a Minibatch),
}

/// A set of samples for one stochastic gradient of `f` or of `g` (`None`: the full sum).
pub type Draw = Option<Vec<usize>>;

impl Source<'_> {
    /// Draws the samples of one `f` gradient.
    pub(crate) fn draw_f(&self, o: &Oracle<'_>, s: &mut SampleStream) -> Draw {
        match self {
            Source::Full => None,
            Source::Batch(mb) => {
                let n = o.problem().data_sum().map_or(0, |d| d.samples_f());
                Some(s.draw(n, mb.batch_f))
            }
        }
    }

    /// Draws the samples of one `g` gradient.
    pub(crate) fn draw_g(&self, o: &Oracle<'_>, s: &mut SampleStream) -> Draw {
        match self {
            Source::Full => None,
            Source::Batch(mb) => {
                let n = o.problem().data_sum().map_or(0, |d| d.samples_g());
                Some(s.draw(n, mb.batch_g))
            }
        }
    }
}

/// `∇f` on the drawn samples (or the full sum): one Gc.
pub fn grad_f(o: &mut Oracle<'_>, x: &Mat<f64>, y: &Mat<f64>, d: &Draw) -> Grad {
    match d {
        None => o.grad_f(x, y),
        Some(idx) => o.grad_f_batch(x, y, idx),
    }
}

/// `∇g` on the drawn samples (or the full sum): one Gc.
pub fn grad_g(o: &mut Oracle<'_>, x: &Mat<f64>, y: &Mat<f64>, d: &Draw) -> Grad {
    match d {
        None => o.grad_g(x, y),
        Some(idx) => o.grad_g_batch(x, y, idx),
    }
}

// Second-order minibatch estimators, for stochastic AIDBiO (Ji, Yang and Liang's stocBiO): each
// call takes its own draw, so the products of one hypergradient estimate use independent samples.

/// `∇²ᵧᵧg·v` on the drawn samples of `g` (or the full sum) written into `out`: one MV.
pub(crate) fn hvp_yy_g_into(
    o: &mut Oracle<'_>,
    x: &Mat<f64>,
    y: &Mat<f64>,
    v: MatRef<'_, f64>,
    mut out: MatMut<'_, f64>,
    d: &Draw,
) {
    match d {
        None => o.hvp_g_yy_into(x, y, v, out),
        Some(idx) => out.copy_from(&o.hvp_yy_g_batch(x, y, v, idx)),
    }
}

/// The mixed product `∇²ₓᵧg·v` on the drawn samples of `g` (or the full sum): one MV.
pub(crate) fn jvp_xy_g(
    o: &mut Oracle<'_>,
    x: &Mat<f64>,
    y: &Mat<f64>,
    v: &Mat<f64>,
    d: &Draw,
) -> Mat<f64> {
    match d {
        None => o.jvp_xy_g(x, y, v),
        Some(idx) => o.jvp_xy_g_batch(x, y, v, idx),
    }
}

/// `∇²ᵧᵧg·v` and `∇²ₓᵧg·v` on the drawn samples of `g` (or the full sum): one MV. The batch
/// products are those of the batch objective, so over the sampling law their mean is the full
/// product (both are linear in the per-sample `gⱼ`).
pub fn hvp_g(o: &mut Oracle<'_>, x: &Mat<f64>, y: &Mat<f64>, v: &Mat<f64>, d: &Draw) -> Cross {
    match d {
        None => o.hvp_g(x, y, v),
        Some(idx) => o.hvp_g_batch(x, y, v, idx),
    }
}

/// `∇g` with `∇²ᵧᵧg·v` and `∇²ₓᵧg·v`, all on the same drawn samples of `g` (or the full sum),
/// from one pass: one Gc and one MV.
pub fn grad_hvp_g(
    o: &mut Oracle<'_>,
    x: &Mat<f64>,
    y: &Mat<f64>,
    v: &Mat<f64>,
    d: &Draw,
) -> (Grad, Cross) {
    match d {
        None => o.grad_hvp_g(x, y, v),
        Some(idx) => o.grad_hvp_g_batch(x, y, v, idx),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_distinct_sorted_and_cover_uniformly() {
        let mut s = SampleStream::new(7);
        let mut hits = [0usize; 10];
        for _ in 0..2000 {
            let d = s.draw(10, 3);
            assert_eq!(d.len(), 3);
            assert!(d.windows(2).all(|w| w[0] < w[1]) && d[2] < 10);
            for i in d {
                hits[i] += 1;
            }
        }
        // Each index is drawn with probability 3/10: 600 expected hits.
        assert!(hits.iter().all(|&h| (500..700).contains(&h)), "{hits:?}");
    }

    #[test]
    fn a_pick_is_the_index_of_a_draw_of_one() {
        let (mut a, mut b) = (SampleStream::new(9), SampleStream::new(9));
        for n in [1, 2, 3, 10, 1000, 1, 7] {
            for _ in 0..50 {
                assert_eq!(a.pick(n), b.draw(n, 1)[0]);
            }
        }
        assert_eq!(a, b);
    }

    /// Floyd's algorithm as first written, with a list searched linearly.
    fn draw_by_list(s: &mut SampleStream, n: usize, b: usize) -> Vec<usize> {
        let mut v: Vec<usize> = Vec::new();
        for j in n - b..n {
            let t = s.below(j + 1);
            v.push(if v.contains(&t) { j } else { t });
        }
        v.sort_unstable();
        v
    }

    #[test]
    fn the_bit_set_draws_the_same_sets_as_the_list() {
        // Same stream, same sets: traces pinned before the bit set stay bit-identical.
        for (n, b) in [
            (10, 3),
            (64, 63),
            (65, 64),
            (130, 1),
            (5000, 64),
            (5000, 1000),
        ] {
            let (mut a, mut c) = (SampleStream::new(11), SampleStream::new(11));
            for _ in 0..20 {
                let d = a.draw(n, b);
                assert_eq!(d.len(), b);
                assert_eq!(d, draw_by_list(&mut c, n, b), "n {n}, b {b}");
            }
            assert_eq!(a, c);
        }
    }
}

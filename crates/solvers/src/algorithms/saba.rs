//! SABA: the framework of SOBA with SAGA variance reduction on every direction.

use super::soba::{DEFAULT_BATCH, Terms};
use crate::error::{Error, check_pos};
use crate::oracle::Oracle;
use crate::rules::StepRules;
use crate::sampling::{Draw, Minibatch, SampleStream, grad_f, grad_g};
use crate::solver::{Iterate, Scalars, Solver, col, state_io};
use crate::vecops::{axpy, lincomb, zeros};
use bilevel_linalg::Mat;
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// What SABA's memory holds before the first iteration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemoryInit {
    /// Every block's terms at the starting point, as SAGA starts (Defazio, Bach and
    /// Lacoste-Julien, "SAGA: A Fast Incremental Gradient Method With Support for Non-Strongly
    /// Convex Composite Objectives"): one pass over the samples of `f` and of `g` before the first
    /// step (`N_g/B_g + N_f/B_f` batch gradients, counted; the products with `v₀ = 0` are zero
    /// and cost nothing). The estimates are unbiased from the first iteration.
    Full,
    /// Zeros, the benchmark's default (benchopt's `benchmark_bilevel`, `mode_init_memory =
    /// "zero"`): no start-up pass, but the estimates are biased towards zero until every block
    /// has been drawn once.
    Zero,
}

/// Parameters of [`Saba`]: constant steps, the minibatch (the blocks of the memory) and how
/// the memory starts.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SabaParams {
    /// `ρ`: the constant step of `y` and `v`. Default 0.1, the benchmark's `step_size`.
    /// Theorem 2 of the paper takes `ρ = ρ'(n + m)^{−2/3}` for a small enough `ρ'`.
    pub rho: f64,
    /// `γ`: the constant step of `x`. Default 0.1, the benchmark's `step_size / outer_ratio`
    /// with `outer_ratio = 1`. Theorem 2 takes `γ = γ'(n + m)^{−2/3}`.
    pub gamma: f64,
    /// The blocks of the memory: the samples of `g` (of `f`) are cut into consecutive blocks of
    /// `batch_g` (`batch_f`) samples, the last one shorter when the size does not divide the
    /// count, and each iteration draws one block of each uniformly. `None`: one block, the full
    /// sums (exact gradients). Default 64 and 64.
    pub batch: Option<Minibatch>,
    /// What the memory holds at the start. Default [`MemoryInit::Full`].
    pub memory_init: MemoryInit,
}

impl Default for SabaParams {
    /// `ρ = γ = 0.1`, blocks of 64, the memory filled at the start.
    fn default() -> Self {
        SabaParams {
            rho: 0.1,
            gamma: 0.1,
            batch: Some(DEFAULT_BATCH),
            memory_init: MemoryInit::Full,
        }
    }
}

impl SabaParams {
    /// Reject out-of-range values.
    pub fn validate(&self) -> Result<(), Error> {
        check_pos(NAME, "rho", self.rho)?;
        check_pos(NAME, "gamma", self.gamma)?;
        self.batch.map_or(Ok(()), |b| b.validate(NAME))
    }
}

/// The constants `ρ', γ'` of the paper's theorems are "small enough" ones of its appendix,
/// with no closed form in the problem's smoothness constants: no rule derives them.
impl StepRules for SabaParams {}

pub(crate) const NAME: &str = "saba";

/// The most numbers SABA's memory may hold (2²⁷, 1 GiB): beyond, the blocks are too small.
const MAX_MEMORY: usize = 1 << 27;

/// A fixed partition of the `n` samples of one level into blocks of `size` consecutive
/// samples (the last one shorter when `size` does not divide `n`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Blocks {
    n: usize,
    size: usize,
    /// One block standing for the full sum, evaluated by the full oracles.
    full: bool,
}

impl Blocks {
    fn new(n: usize, batch: Option<usize>) -> Self {
        match batch {
            Some(b) => Blocks {
                n,
                size: b.min(n),
                full: false,
            },
            None => Blocks {
                n: 1,
                size: 1,
                full: true,
            },
        }
    }

    fn count(&self) -> usize {
        self.n.div_ceil(self.size)
    }

    fn range(&self, b: usize) -> Range<usize> {
        b * self.size..((b + 1) * self.size).min(self.n)
    }

    /// `w_b = |b|/n`, the block's share of the average.
    fn weight(&self, b: usize) -> f64 {
        self.range(b).len() as f64 / self.n as f64
    }

    /// The samples of block `b`.
    fn draw(&self, b: usize) -> Draw {
        (!self.full).then(|| self.range(b).collect())
    }

    /// A block drawn uniformly (a single block consumes nothing from the stream).
    fn pick(&self, s: &mut SampleStream) -> usize {
        s.draw(self.count(), 1)[0]
    }
}

/// One column of numbers, serialized as an array.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Column(#[serde(with = "col")] Mat<f64>);

/// SAGA's memory for one level: per block, the stacked terms at the point where the block was
/// last drawn, and their weighted average `Σ_b w_b m_b`, kept up to date as entries change.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Memory {
    blocks: Blocks,
    entries: Vec<Column>,
    mean: Column,
}

impl Memory {
    /// A memory of zeros for terms of `len` numbers.
    fn zeros(blocks: Blocks, len: usize) -> Self {
        Memory {
            blocks,
            entries: vec![Column(zeros(len)); blocks.count()],
            mean: Column(zeros(len)),
        }
    }

    /// SAGA's estimate of the full average from the fresh terms `d` of block `b`:
    /// `c_b(d − m_b) + Σ_{b'} w_{b'} m_{b'}` with `c_b = (number of blocks)·w_b` (1 for blocks
    /// of equal size), unbiased for a block drawn uniformly; then `m_b ← d` and the average
    /// follows.
    fn reduce(&mut self, b: usize, d: Mat<f64>) -> Mat<f64> {
        let w = self.blocks.weight(b);
        let c = self.blocks.count() as f64 * w;
        let diff = lincomb(1.0, &d, -1.0, &self.entries[b].0);
        let est = lincomb(c, &diff, 1.0, &self.mean.0);
        axpy(&mut self.mean.0, w, &diff);
        self.entries[b].0 = d;
        est
    }

    /// Sets block `b`'s entry (a memory that held zeros there) and adds it to the average.
    fn fill(&mut self, b: usize, d: Mat<f64>) {
        axpy(&mut self.mean.0, self.blocks.weight(b), &d);
        self.entries[b].0 = d;
    }
}

/// `parts` one after the other in one column.
fn stack(parts: &[&Mat<f64>]) -> Mat<f64> {
    let v: Vec<f64> = parts
        .iter()
        .flat_map(|p| p.col_as_slice(0).iter().copied())
        .collect();
    crate::vecops::from_slice(&v)
}

/// The consecutive pieces of `m` of lengths `lens`.
fn split(m: &Mat<f64>, lens: &[usize]) -> Vec<Mat<f64>> {
    let s = m.col_as_slice(0);
    let mut at = 0;
    lens.iter()
        .map(|&l| {
            at += l;
            crate::vecops::from_slice(&s[at - l..at])
        })
        .collect()
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct State {
    #[serde(with = "col")]
    v: Mat<f64>,
    stream: SampleStream,
    /// `[∇ᵧgᵢ; ∇²ᵧᵧgᵢ·v; ∇²ₓᵧgᵢ·v]` per block of `g`'s samples.
    lower: Memory,
    /// `[∇ᵧfⱼ; ∇ₓfⱼ]` per block of `f`'s samples.
    upper: Memory,
}

/// SABA, the Stochastic Average Bilevel Algorithm (Algorithm 2 of Dagréou, Ablin, Vaiter and
/// Moreau, "A framework for bilevel optimization that enables stochastic and global variance
/// reduction algorithms"): [`Soba`](super::Soba)'s directions with SAGA variance reduction of
/// each of their five terms.
///
/// Per iteration, with one block `i` of `g`'s samples and one `j` of `f`'s drawn uniformly, the
/// fresh terms `tᵢ = [∇ᵧgᵢ; ∇²ᵧᵧgᵢ·v; ∇²ₓᵧgᵢ·v]` and `sⱼ = [∇ᵧfⱼ; ∇ₓfⱼ]` at the current
/// `(y, v, x)` replace the memories `mᵢ`, `m'ⱼ`, and the estimates
/// `t̂ = tᵢ − mᵢ + Σ_b w_b m_b`, `ŝ = sⱼ − m'ⱼ + Σ_b w'_b m'_b` (block weights `w_b = |b|/N`;
/// a block of unequal size scales its difference by `(number of blocks)·w_b`) give `D_y = t̂_gy`,
/// `D_v = t̂_hv + ŝ_fy`, `D_x = t̂_jv + ŝ_fx` and the same joint step as SOBA with constant
/// steps: `y ← y − ρD_y`, `v ← v − ρD_v`, `x ← x − γD_x`. 2 Gc and 1 MV per iteration, after
/// the memory's start ([`MemoryInit`]). Theorem 2: `(1/T) Σ_t E‖∇Φ(x_t)‖² = O((n+m)^{2/3}/T)`
/// with steps of order `(n+m)^{−2/3}`; Theorem 3: linear convergence under a
/// Polyak-Łojasiewicz inequality.
///
/// The memory is kept per block of consecutive samples, as in the benchmark's solver
/// (benchopt's `benchmark_bilevel`), rather than per sample as in the paper's algorithm: with
/// blocks of one sample the two agree, and per-sample tables of a large lower level (data
/// hyper-cleaning: 5000 samples × 7840 weights) would not fit. The benchmark draws the blocks
/// in reshuffled passes; this solver draws them uniformly and independently, as SAGA does.
#[derive(Clone, Debug)]
pub struct Saba {
    params: SabaParams,
    state: State,
}

impl Saba {
    /// A solver with validated parameters.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first bad parameter.
    pub fn new(params: SabaParams) -> Result<Self, Error> {
        params.validate()?;
        let none = Blocks::new(0, None);
        Ok(Saba {
            params,
            state: State {
                v: zeros(0),
                stream: SampleStream::new(params.batch.map_or(0, |b| b.seed)),
                lower: Memory::zeros(none, 0),
                upper: Memory::zeros(none, 0),
            },
        })
    }
}

impl Solver for Saba {
    fn name(&self) -> &'static str {
        NAME
    }
    fn init(&mut self, o: &mut Oracle<'_>, it: &mut Iterate) -> Result<(), Error> {
        let p = self.params;
        let (n, m) = (o.problem().dim_x(), o.problem().dim_y());
        let (bg, bf) = match &p.batch {
            Some(b) => {
                b.check(NAME, o)?;
                let d = o.problem().data_sum().expect("checked: a data sum");
                (
                    Blocks::new(d.samples_g(), Some(b.batch_g)),
                    Blocks::new(d.samples_f(), Some(b.batch_f)),
                )
            }
            None => (Blocks::new(0, None), Blocks::new(0, None)),
        };
        let too_big = |blocks: Blocks, len: usize| blocks.count().saturating_mul(len) > MAX_MEMORY;
        if too_big(bg, 2 * m + n) || too_big(bf, m + n) {
            let b = p.batch.expect("one block per level fits");
            return Err(Error::InvalidParameter {
                solver: NAME,
                name: "batch",
                value: b.batch_g.min(b.batch_f) as f64,
                allowed: "blocks large enough that the memory, (N_g/batch_g)·(2 dim_y + dim_x) \
                          + (N_f/batch_f)·(dim_y + dim_x) numbers, holds at most 2^27 numbers",
            });
        }
        let st = &mut self.state;
        st.v = zeros(m);
        st.lower = Memory::zeros(bg, 2 * m + n);
        st.upper = Memory::zeros(bf, m + n);
        if p.memory_init == MemoryInit::Full {
            // v₀ = 0: the products ∇²ᵧᵧgᵢ·v₀ and ∇²ₓᵧgᵢ·v₀ are zero.
            let (zy, zx) = (zeros(m), zeros(n));
            for b in 0..bg.count() {
                let g = grad_g(o, &it.x, &it.y, &bg.draw(b));
                st.lower.fill(b, stack(&[&g.y, &zy, &zx]));
            }
            for b in 0..bf.count() {
                let f = grad_f(o, &it.x, &it.y, &bf.draw(b));
                st.upper.fill(b, stack(&[&f.y, &f.x]));
            }
        }
        Ok(())
    }
    fn step(&mut self, o: &mut Oracle<'_>, it: &mut Iterate, _k: u64) -> Scalars {
        let p = self.params;
        let (n, m) = (it.x.nrows(), it.y.nrows());
        let st = &mut self.state;
        let bi = st.lower.blocks.pick(&mut st.stream);
        let bj = st.upper.blocks.pick(&mut st.stream);
        let (di, dj) = (st.lower.blocks.draw(bi), st.upper.blocks.draw(bj));
        let t = Terms::at(o, it, &st.v, &di, &dj);
        let lower = st.lower.reduce(bi, stack(&[&t.gy, &t.hv, &t.jv]));
        let upper = st.upper.reduce(bj, stack(&[&t.fy, &t.fx]));
        let [gy, hv, jv]: [Mat<f64>; 3] = split(&lower, &[m, m, n]).try_into().expect("3 parts");
        let [fy, fx]: [Mat<f64>; 2] = split(&upper, &[m, n]).try_into().expect("2 parts");
        let vr = Terms { gy, hv, jv, fy, fx };
        vr.step(it, &mut st.v, p.rho, p.gamma)
    }
    fn aux(&self) -> Vec<(&'static str, &Mat<f64>)> {
        vec![("v", &self.state.v)]
    }
    state_io!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::Problem;
    use crate::problems::QuadraticKappa;
    use crate::vecops::norm;

    #[test]
    fn blocks_cover_the_samples_once_and_weigh_their_share() {
        let b = Blocks::new(10, Some(4));
        assert_eq!(b.count(), 3);
        assert_eq!(
            (0..3).map(|i| b.range(i)).collect::<Vec<_>>(),
            [0..4, 4..8, 8..10]
        );
        assert_eq!((b.weight(0), b.weight(2)), (0.4, 0.2));
        assert_eq!(b.draw(2), Some(vec![8, 9]));
        let full = Blocks::new(0, None);
        assert_eq!((full.count(), full.weight(0), full.draw(0)), (1, 1.0, None));
        // A block of unequal size is scaled so that a uniform draw is unbiased.
        let mut mem = Memory::zeros(b, 1);
        let fresh = |v: f64| crate::vecops::from_slice(&[v]);
        let est = mem.reduce(2, fresh(5.0));
        assert_eq!(est[(0, 0)], 3.0 * 0.2 * 5.0);
        assert_eq!(mem.mean.0[(0, 0)], 0.2 * 5.0);
    }

    /// The memory's average against the full-batch terms at the points where each block was
    /// last drawn: the draws are replayed from a copy of the stream before each step.
    #[test]
    fn the_memory_average_is_the_full_direction_at_the_stored_points() {
        // 7 samples in blocks of 2, 2, 2 and 1 for g, of 3, 3 and 1 for f.
        let p = QuadraticKappa::new(10.0, 7);
        let batch = Minibatch {
            batch_f: 3,
            batch_g: 2,
            seed: 5,
        };
        for init in [MemoryInit::Full, MemoryInit::Zero] {
            let mut s = Saba::new(SabaParams {
                rho: 0.05,
                gamma: 0.05,
                batch: Some(batch),
                memory_init: init,
            })
            .unwrap();
            let mut o = Oracle::new(&p);
            let mut it = Iterate {
                x: p.x0(),
                y: p.y0(),
            };
            s.init(&mut o, &mut it).unwrap();
            assert_eq!(
                o.counts().gc,
                if init == MemoryInit::Full { 4 + 3 } else { 0 }
            );
            let start = (it.clone(), s.state.v.clone());
            let mut at_g = vec![start.clone(); 4];
            let mut at_f = vec![start; 3];
            let mut seen = (
                vec![init == MemoryInit::Full; 4],
                vec![init == MemoryInit::Full; 3],
            );
            for k in 0..40 {
                let mut replay = s.state.stream;
                let bi = s.state.lower.blocks.pick(&mut replay);
                let bj = s.state.upper.blocks.pick(&mut replay);
                at_g[bi] = (it.clone(), s.state.v.clone());
                at_f[bj] = (it.clone(), s.state.v.clone());
                seen.0[bi] = true;
                seen.1[bj] = true;
                s.step(&mut o, &mut it, k);
            }
            assert_eq!(o.counts().mv, 40);
            // Σ_b w_b t_b at the stored points, each block's terms by the batch oracles.
            let (n, m) = (7, 7);
            let (mut lower, mut upper) = (zeros(2 * m + n), zeros(m + n));
            for (b, (pt, v)) in at_g.iter().enumerate() {
                let blocks = s.state.lower.blocks;
                let (gy, c) = Terms::lower(&mut o, pt, v, &blocks.draw(b));
                let w = if seen.0[b] { blocks.weight(b) } else { 0.0 };
                axpy(&mut lower, w, &stack(&[&gy, &c.yy, &c.xy]));
            }
            for (b, (pt, _)) in at_f.iter().enumerate() {
                let blocks = s.state.upper.blocks;
                let f = grad_f(&mut o, &pt.x, &pt.y, &blocks.draw(b));
                let w = if seen.1[b] { blocks.weight(b) } else { 0.0 };
                axpy(&mut upper, w, &stack(&[&f.y, &f.x]));
            }
            let err = |a: &Mat<f64>, b: &Mat<f64>| norm(&lincomb(1.0, a, -1.0, b)) / norm(a);
            assert!(
                seen.0.iter().chain(&seen.1).all(|&s| s),
                "every block drawn"
            );
            assert!(
                err(&lower, &s.state.lower.mean.0) < 1e-12,
                "{init:?}: lower"
            );
            assert!(
                err(&upper, &s.state.upper.mean.0) < 1e-12,
                "{init:?}: upper"
            );
        }
        // At the start of a full memory, the averages are the full gradients.
        let mut s = Saba::new(SabaParams {
            batch: Some(batch),
            ..SabaParams::default()
        })
        .unwrap();
        let mut o = Oracle::new(&p);
        let mut it = Iterate {
            x: p.x0(),
            y: p.y0(),
        };
        // At x₀ = 1, y₀ = 0 the quadratic's ∇ᵧg = Zy − Lx + 1 vanishes for L = 1: start
        // elsewhere.
        it.x = lincomb(2.0, &it.x, 0.0, &it.x);
        s.init(&mut o, &mut it).unwrap();
        assert!(norm(&o.grad_g(&it.x, &it.y).y) > 0.1);
        let (g, f) = (o.grad_g(&it.x, &it.y), o.grad_f(&it.x, &it.y));
        let parts = split(&s.state.lower.mean.0, &[7, 7, 7]);
        assert!(norm(&lincomb(1.0, &parts[0], -1.0, &g.y)) < 1e-12 * norm(&g.y));
        assert_eq!((norm(&parts[1]), norm(&parts[2])), (0.0, 0.0));
        let parts = split(&s.state.upper.mean.0, &[7, 7]);
        assert!(norm(&lincomb(1.0, &parts[0], -1.0, &f.y)) < 1e-12 * norm(&f.y));
        assert!(norm(&lincomb(1.0, &parts[1], -1.0, &f.x)) < 1e-12 * norm(&f.x));
    }
}

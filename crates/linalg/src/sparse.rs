//! Sparse sample rows: the data matrix of a data-sum loss stored by its nonzero entries.
//!
//! Image data is mostly zeros (81 % of the MNIST training pixels are 0), so a product of a block
//! of samples with a weight matrix does a fifth of its multiply-adds on nonzero pixels and
//! reads, as a dense matrix, five times the bytes it needs. [`SparseRows`] keeps each sample's
//! nonzero features: a 16-bit feature index and the value, which for data of at most 256
//! distinct nonzero values (8-bit pixels scaled to `[0, 1]`, say) is a one-byte code into a
//! table of the exact `f64` values, and the `f64` itself otherwise (3 or 10 bytes per nonzero
//! entry, where the dense matrix takes 8 per entry, zero or not). Two kernels run the products of a data-sum
//! loss's streamed evaluation on a block of samples:
//!
//! - [`sparse_mul`]: `Z = X·B`, the block's logits or hidden pre-activations (`X` the block,
//!   `r × d`; `B` `d × k`, row-major);
//! - [`sparse_t_mul_add`]: `G += Xᵀ·Ȳ`, the block's share of a weight gradient (`G` `d × k`,
//!   row-major; `Ȳ` `r × k`, column-major).
//!
//! Both are exact: each entry is the sum of the products of the nonzero entries, which are the
//! only nonzero terms of the dense sum. Their order is fixed by the data alone: an entry of `Z`
//! adds its sample's nonzero features in increasing feature order, an entry of `G` its block's
//! samples in order, one fused multiply-add at a time (the same bits on AVX-512, AVX2 with FMA
//! and the portable fallback). The order differs from the dense kernels', so the two forms
//! agree to rounding, not bit for bit. One other difference: a zero entry times an infinite or
//! NaN weight is skipped here, where the dense product gives NaN.
//!
//! # Example
//! ```
//! use bilevel_linalg::{Mat, SparseRows, sparse_mul};
//! // Two samples of three features, mostly zeros.
//! let x = Mat::from_fn(2, 3, |i, j| if i == j { 2.0 } else { 0.0 });
//! let s = SparseRows::from_sample_rows(x.as_ref()).unwrap();
//! assert_eq!(s.nnz(), 2);
//! // `B` (3 × 2, row-major, rows padded to 4 entries).
//! let b = [1.0, 2.0, 0.0, 0.0, 3.0, 4.0, 0.0, 0.0, 5.0, 6.0, 0.0, 0.0];
//! let mut z = [0.0; 4]; // 2 × 2, column-major
//! sparse_mul(&mut z, 2, s.block(0, 2), &b, 4, 2);
//! assert_eq!(z, [2.0, 6.0, 4.0, 8.0]);
//! ```

use crate::MatRef;

/// A data matrix stored by samples, each as its nonzero features (compressed sparse rows with
/// 16-bit feature indices).
#[derive(Clone, Debug, Default)]
pub struct SparseRows {
    /// `ptr[s] .. ptr[s + 1]` are the entries of sample `s`.
    ptr: Vec<usize>,
    idx: Vec<u16>,
    val: Values,
    width: usize,
}

/// The values of the nonzero entries.
#[derive(Clone, Debug)]
enum Values {
    /// Each value.
    Plain(Vec<f64>),
    /// A code per entry into a table of the distinct values (in order of first appearance).
    Coded {
        codes: Vec<u8>,
        table: Box<[f64; 256]>,
    },
}

impl Default for Values {
    fn default() -> Self {
        Values::Plain(Vec::new())
    }
}

/// The samples `r0 .. r0 + r` of a [`SparseRows`], as read by the kernels.
#[derive(Clone, Copy, Debug)]
pub struct SparseBlock<'a> {
    ptr: &'a [usize],
    idx: &'a [u16],
    val: Vals<'a>,
    width: usize,
}

/// The values of a block's entries, by entry number.
#[derive(Clone, Copy, Debug)]
enum Vals<'a> {
    Plain(&'a [f64]),
    Coded(&'a [u8], &'a [f64; 256]),
}

/// Entry values as the kernels read them.
trait ValueAt: Copy {
    /// The value of entry `p`.
    fn at(&self, p: usize) -> f64;
}

#[derive(Clone, Copy)]
struct Plain<'a>(&'a [f64]);

#[derive(Clone, Copy)]
struct Coded<'a>(&'a [u8], &'a [f64; 256]);

impl ValueAt for Plain<'_> {
    #[inline(always)]
    fn at(&self, p: usize) -> f64 {
        self.0[p]
    }
}

impl ValueAt for Coded<'_> {
    #[inline(always)]
    fn at(&self, p: usize) -> f64 {
        self.1[self.0[p] as usize]
    }
}

impl SparseRows {
    /// The widest sample this form stores (its feature indices are 16-bit).
    pub const MAX_WIDTH: usize = 1 << 16;

    /// The samples of `m`, one per row (`n × d`, sample-major). `None` when `d` exceeds
    /// [`SparseRows::MAX_WIDTH`].
    pub fn from_sample_rows(m: MatRef<'_, f64>) -> Option<SparseRows> {
        Self::build(m.nrows(), m.ncols(), |s, j| m[(s, j)])
    }

    /// The samples of `m`, one per column (`d × n`, feature-major). `None` when `d` exceeds
    /// [`SparseRows::MAX_WIDTH`].
    pub fn from_sample_cols(m: MatRef<'_, f64>) -> Option<SparseRows> {
        Self::build(m.ncols(), m.nrows(), |s, j| m[(j, s)])
    }

    fn build(n: usize, d: usize, at: impl Fn(usize, usize) -> f64) -> Option<SparseRows> {
        if d > Self::MAX_WIDTH {
            return None;
        }
        // Counted first, so that each buffer is allocated once at its size (grown by doubling
        // and shrunk after, they would be copied twice and, for a moment, take up to three
        // times their size).
        let nnz = (0..n)
            .map(|s| (0..d).filter(|&j| at(s, j) != 0.0).count())
            .sum::<usize>();
        let mut ptr = Vec::with_capacity(n + 1);
        ptr.push(0);
        let (mut idx, mut val) = (Vec::with_capacity(nnz), Vec::new());
        // The distinct values by their bits while there are at most 256.
        let mut table: Vec<f64> = Vec::new();
        let mut code = std::collections::HashMap::new();
        let mut codes: Option<Vec<u8>> = Some(Vec::with_capacity(nnz));
        for s in 0..n {
            for j in 0..d {
                let v = at(s, j);
                if v == 0.0 {
                    continue;
                }
                // `j < d ≤ 2¹⁶`.
                idx.push(j as u16);
                let Some(cs) = &mut codes else {
                    val.push(v);
                    continue;
                };
                let next = table.len();
                let c = *code.entry(v.to_bits()).or_insert(next);
                if c == next {
                    table.push(v);
                }
                match u8::try_from(c) {
                    Ok(c) => cs.push(c),
                    Err(_) => {
                        // The 257th distinct value: the values so far, then this one, plain.
                        val = Vec::with_capacity(nnz);
                        val.extend(cs.iter().map(|&c| table[c as usize]));
                        val.push(v);
                        codes = None;
                    }
                }
            }
            ptr.push(idx.len());
        }
        let val = match codes {
            Some(codes) => {
                let mut t = Box::new([0.0; 256]);
                t[..table.len()].copy_from_slice(&table);
                Values::Coded { codes, table: t }
            }
            None => Values::Plain(val),
        };
        Some(SparseRows {
            ptr,
            idx,
            val,
            width: d,
        })
    }

    /// Whether the values are kept as one-byte codes into a table (at most 256 distinct ones).
    pub fn is_coded(&self) -> bool {
        matches!(self.val, Values::Coded { .. })
    }

    /// The fraction of nonzero entries of `m` (`0` for an empty matrix), read column by column.
    pub fn density(m: MatRef<'_, f64>) -> f64 {
        let len = m.nrows() * m.ncols();
        if len == 0 {
            return 0.0;
        }
        let mut nz = 0usize;
        for j in 0..m.ncols() {
            for i in 0..m.nrows() {
                nz += usize::from(m[(i, j)] != 0.0);
            }
        }
        nz as f64 / len as f64
    }

    /// Samples.
    pub fn samples(&self) -> usize {
        self.ptr.len() - 1
    }

    /// Features per sample.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Nonzero entries.
    pub fn nnz(&self) -> usize {
        self.idx.len()
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        let val = match &self.val {
            Values::Plain(v) => v.len() * 8,
            Values::Coded { codes, .. } => codes.len() + 256 * 8,
        };
        self.ptr.len() * size_of::<usize>() + self.idx.len() * 2 + val
    }

    /// The samples `r0 .. r0 + r`.
    ///
    /// # Panics
    /// If they are not all samples of `self`.
    pub fn block(&self, r0: usize, r: usize) -> SparseBlock<'_> {
        assert!(
            r0 + r <= self.samples(),
            "samples {r0}..{} of {}",
            r0 + r,
            self.samples()
        );
        SparseBlock {
            ptr: &self.ptr[r0..=r0 + r],
            idx: &self.idx,
            val: match &self.val {
                Values::Plain(v) => Vals::Plain(v),
                Values::Coded { codes, table } => Vals::Coded(codes, table),
            },
            width: self.width,
        }
    }
}

impl SparseBlock<'_> {
    /// Samples of the block.
    pub fn rows(&self) -> usize {
        self.ptr.len() - 1
    }

    /// Features per sample.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The entry numbers of sample `s` of the block.
    #[inline(always)]
    fn sample(&self, s: usize) -> std::ops::Range<usize> {
        self.ptr[s]..self.ptr[s + 1]
    }
}

/// Columns of the widest register tile (four AVX2 or two AVX-512 vectors).
const TILE: usize = 16;

/// The widest tile a product of at most this many columns takes as one (a value and a tangent
/// of ten classes: one pass over each sample's entries instead of two).
const ONE_TILE: usize = 24;

/// The tiles `(first column, width)`, widest first; every width is a multiple of four, so `k`
/// columns take `k.next_multiple_of(4)` computed columns.
fn tiles(k: usize) -> impl Iterator<Item = (usize, usize)> {
    let kp = k.next_multiple_of(4);
    let mut t0 = 0;
    std::iter::from_fn(move || {
        if t0 >= kp {
            return None;
        }
        let w = match kp - t0 {
            r if kp <= ONE_TILE => r,
            r if r >= TILE => TILE,
            r => r,
        };
        let t = (t0, w);
        t0 += w;
        Some(t)
    })
}

/// `out[s + c·ldo] = Σⱼ X[s, j]·b[j·ldb + c]` for the block's samples `s` and the columns
/// `c < k`: the block times the row-major `d × k` matrix `b`.
///
/// `b` holds `d` rows `ldb ≥ k.next_multiple_of(4)` entries apart (the last may stop after
/// `k.next_multiple_of(4)`); the entries of a row past `k` are read (the tiles are four columns
/// wide) and must be finite (zeros, say).
///
/// # Panics
/// If `ldb` is too small, `b` is too short, or `out` fewer than
/// `(k − 1)·ldo + r` (for `k > 0`) with `ldo ≥ r`.
pub fn sparse_mul(
    out: &mut [f64],
    ldo: usize,
    x: SparseBlock<'_>,
    b: &[f64],
    ldb: usize,
    k: usize,
) {
    if !check("sparse_mul", x, k, (b.len(), ldb), (out.len(), ldo)) {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if crate::Simd::detect() != crate::Simd::None {
        // SAFETY: `Simd::detect` found AVX2 and FMA (AVX-512 implies both).
        unsafe { mul_fma(out, ldo, x, b, ldb, k) };
        return;
    }
    mul(out, ldo, x, b, ldb, k);
}

/// The shape checks of the two products: a row-major `d × k` operand (`rm`: its length and row
/// stride) and a column-major `r × k` one (`cm`: its length and column stride). `false` when
/// there is nothing to compute.
///
/// # Panics
/// If either operand is too small for its stride, or a stride for its rows or columns.
fn check(name: &str, x: SparseBlock<'_>, k: usize, rm: (usize, usize), cm: (usize, usize)) -> bool {
    let (r, d) = (x.rows(), x.width());
    let kp = k.next_multiple_of(4);
    let ((rm_len, rm_ld), (cm_len, cm_ld)) = (rm, cm);
    assert!(rm_ld >= kp, "{name}: row stride {rm_ld} < {k} columns");
    assert!(
        d == 0 || rm_len >= (d - 1) * rm_ld + kp,
        "{name}: {rm_len} entries for {d} rows {rm_ld} apart"
    );
    if k == 0 || r == 0 {
        return false;
    }
    assert!(
        cm_ld >= r && cm_len >= (k - 1) * cm_ld + r,
        "{name}: {cm_len} entries for {k} columns of {r} rows, {cm_ld} apart"
    );
    true
}

/// `$f` called with the block's values as a [`ValueAt`] (monomorphized for each kind).
macro_rules! with_values {
    ($x:expr, |$v:ident| $f:expr) => {
        match $x.val {
            Vals::Plain(p) => {
                let $v = Plain(p);
                $f
            }
            Vals::Coded(c, t) => {
                let $v = Coded(c, t);
                $f
            }
        }
    };
}

/// The tile function `$f` called for the tile width `$w` (one of the widths [`tiles`] yields:
/// 24, 20, 16, 12, 8, else 4 columns), its const parameter counting the width in units of
/// `$unit` columns (1 for the portable tiles, 4 for the vector ones).
macro_rules! by_width {
    ($w:expr, $unit:literal, $f:ident::<$V:ty>($($arg:expr),* $(,)?)) => {
        match $w {
            24 => $f::<{ 24 / $unit }, $V>($($arg),*),
            20 => $f::<{ 20 / $unit }, $V>($($arg),*),
            16 => $f::<{ 16 / $unit }, $V>($($arg),*),
            12 => $f::<{ 12 / $unit }, $V>($($arg),*),
            8 => $f::<{ 8 / $unit }, $V>($($arg),*),
            _ => $f::<{ 4 / $unit }, $V>($($arg),*),
        }
    };
}

/// [`sparse_mul`] compiled with AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn mul_fma(
    out: &mut [f64],
    ldo: usize,
    x: SparseBlock<'_>,
    b: &[f64],
    ldb: usize,
    k: usize,
) {
    with_values!(x, |v| unsafe { x86::mul_tiles(out, ldo, x, v, b, ldb, k) })
}

/// The tiles of [`sparse_mul`].
#[inline(always)]
fn mul(out: &mut [f64], ldo: usize, x: SparseBlock<'_>, b: &[f64], ldb: usize, k: usize) {
    with_values!(x, |v| mul_tiles(out, ldo, x, v, b, ldb, k))
}

#[inline(always)]
fn mul_tiles<V: ValueAt>(
    out: &mut [f64],
    ldo: usize,
    x: SparseBlock<'_>,
    val: V,
    b: &[f64],
    ldb: usize,
    k: usize,
) {
    for (t0, w) in tiles(k) {
        by_width!(w, 1, mul_tile::<V>(out, ldo, x, val, b, ldb, t0, k));
    }
}

/// `acc[j·lda + c] += Σₛ X[s, j]·g[s + c·ldg]` for the features `j` and the columns `c < k`: the
/// block's transpose times the column-major `r × k` matrix `g`, added into the row-major
/// `d × k` matrix `acc`.
///
/// `acc` holds `d` rows `lda ≥ k.next_multiple_of(4)` entries apart (the last may stop after
/// `k.next_multiple_of(4)`); the entries of a row past `k` receive zeros added (the tiles are
/// four columns wide). `scratch` keeps the buffers of the feature-major order (see
/// [`SparseScratch`]) from call to call.
///
/// # Panics
/// If `lda` is too small, `acc` is too short, or `g` fewer than
/// `(k − 1)·ldg + r` (for `k > 0`) with `ldg ≥ r`.
pub fn sparse_t_mul_add(
    acc: &mut [f64],
    lda: usize,
    x: SparseBlock<'_>,
    g: &[f64],
    ldg: usize,
    k: usize,
    scratch: &mut SparseScratch,
) {
    if !check("sparse_t_mul_add", x, k, (acc.len(), lda), (g.len(), ldg)) {
        return;
    }
    let by_feature = k.next_multiple_of(4) >= BY_FEATURE_MIN_COLS;
    if by_feature {
        scratch.by_feature(x, g, ldg, k);
    }
    #[cfg(target_arch = "x86_64")]
    if crate::Simd::detect() != crate::Simd::None {
        // SAFETY: `Simd::detect` found AVX2 and FMA (AVX-512 implies both).
        unsafe {
            if by_feature {
                x86::t_mul_fm_tiles(acc, lda, scratch, x.width(), k);
            } else {
                t_mul_fma(acc, lda, x, g, ldg, k);
            }
        }
        return;
    }
    if by_feature {
        t_mul_fm(acc, lda, scratch, x.width(), k);
    } else {
        t_mul(acc, lda, x, g, ldg, k);
    }
}

/// Products [`sparse_t_mul_add`] of at least this many (computed) columns run in feature-major
/// order: each feature's accumulator row stays in registers over the block's samples that hold
/// the feature, where the sample-major order loads and stores it once per entry. Grouping the
/// block costs about one pass over its entries and one over `g`, which narrow products do not
/// repay. (The same order for [`sparse_mul`] loads each feature's row of `b` once per block, but
/// loads and stores the product's rows once per entry instead: measured no faster, 112 ms of
/// B256's HVP pass in the forward kernel against 100 ms, one thread.)
const BY_FEATURE_MIN_COLS: usize = 64;

/// Buffers of [`sparse_t_mul_add`]'s feature-major order, reused from call to call (one per
/// thread): the block's entries grouped by feature (a counting sort, samples in order within
/// a feature) and `g` copied tile by tile, row-major within each tile.
///
/// # Example
/// ```
/// use bilevel_linalg::{Mat, SparseRows, SparseScratch, sparse_t_mul_add};
/// let x = Mat::from_fn(2, 3, |i, j| if i == j { 2.0 } else { 0.0 });
/// let s = SparseRows::from_sample_rows(x.as_ref()).unwrap();
/// let g = [1.0, 3.0]; // 2 × 1, column-major
/// let mut acc = [0.0; 12]; // 3 × 1, rows four entries apart
/// sparse_t_mul_add(&mut acc, 4, s.block(0, 2), &g, 2, 1, &mut SparseScratch::default());
/// assert_eq!((acc[0], acc[4], acc[8]), (2.0, 6.0, 0.0));
/// ```
#[derive(Clone, Debug, Default)]
pub struct SparseScratch {
    /// `starts[j] .. starts[j + 1]` are the entries of feature `j`.
    starts: Vec<u32>,
    /// Each entry's sample within the block, and its value.
    samples: Vec<u32>,
    values: Vec<f64>,
    /// `g` by tiles: tile `(t0, w)` at `r·t0`, sample `s` of it at `r·t0 + s·w` (`w` entries,
    /// zero past `k`).
    g: Vec<f64>,
    /// The block's samples `r`.
    rows: usize,
}

impl SparseScratch {
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        4 * (self.starts.capacity() + self.samples.capacity())
            + 8 * (self.values.capacity() + self.g.capacity())
    }

    /// Group the entries of `x` by feature and copy `g` (column-major `r × k`, `ldg` apart)
    /// into its tiles.
    fn by_feature(&mut self, x: SparseBlock<'_>, g: &[f64], ldg: usize, k: usize) {
        self.group(x);
        let r = self.rows;
        self.g.resize(r * k.next_multiple_of(4), 0.0);
        for (t0, w) in tiles(k) {
            let tile = &mut self.g[r * t0..r * (t0 + w)];
            // Column by column: each column of `g` is read in order.
            for c in 0..w {
                if t0 + c < k {
                    let col = &g[(t0 + c) * ldg..(t0 + c) * ldg + r];
                    for (s, &v) in col.iter().enumerate() {
                        tile[s * w + c] = v;
                    }
                } else {
                    (0..r).for_each(|s| tile[s * w + c] = 0.0);
                }
            }
        }
    }

    /// Group the entries of `x` by feature, samples in order within each feature.
    fn group(&mut self, x: SparseBlock<'_>) {
        let (r, d) = (x.rows(), x.width());
        let (e0, e1) = (x.ptr[0], x.ptr[r]);
        let nnz = e1 - e0;
        assert!(
            u32::try_from(nnz).is_ok() && u32::try_from(r).is_ok(),
            "sparse products: a block of {r} samples and {nnz} entries (at most 2³² − 1 each)"
        );
        self.rows = r;
        self.starts.clear();
        self.starts.resize(d + 1, 0);
        for &j in &x.idx[e0..e1] {
            self.starts[j as usize + 1] += 1;
        }
        for j in 0..d {
            self.starts[j + 1] += self.starts[j];
        }
        self.samples.resize(nnz, 0);
        self.values.resize(nnz, 0.0);
        with_values!(x, |val| {
            for s in 0..r {
                for p in x.sample(s) {
                    let j = x.idx[p] as usize;
                    let e = self.starts[j] as usize;
                    self.starts[j] += 1;
                    // `s < r ≤ u32::MAX`, checked above.
                    self.samples[e] = s as u32;
                    self.values[e] = val.at(p);
                }
            }
        });
        // Each start has moved to the next feature's: move them back.
        for j in (1..=d).rev() {
            self.starts[j] = self.starts[j - 1];
        }
        self.starts[0] = 0;
    }

    /// The entries of feature `j`: samples and values.
    #[inline(always)]
    fn feature(&self, j: usize) -> (&[u32], &[f64]) {
        let (a, b) = (self.starts[j] as usize, self.starts[j + 1] as usize);
        (&self.samples[a..b], &self.values[a..b])
    }
}

/// [`sparse_t_mul_add`] compiled with AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn t_mul_fma(
    acc: &mut [f64],
    lda: usize,
    x: SparseBlock<'_>,
    g: &[f64],
    ldg: usize,
    k: usize,
) {
    with_values!(x, |v| unsafe {
        x86::t_mul_tiles(acc, lda, x, v, g, ldg, k)
    })
}

/// The tiles of [`sparse_t_mul_add`].
#[inline(always)]
fn t_mul(acc: &mut [f64], lda: usize, x: SparseBlock<'_>, g: &[f64], ldg: usize, k: usize) {
    with_values!(x, |v| t_mul_tiles(acc, lda, x, v, g, ldg, k))
}

#[inline(always)]
fn t_mul_tiles<V: ValueAt>(
    acc: &mut [f64],
    lda: usize,
    x: SparseBlock<'_>,
    val: V,
    g: &[f64],
    ldg: usize,
    k: usize,
) {
    for (t0, w) in tiles(k) {
        by_width!(w, 1, t_mul_tile::<V>(acc, lda, x, val, g, ldg, t0, k));
    }
}

/// The feature-major tiles of [`sparse_t_mul_add`] (the scratch filled by
/// [`SparseScratch::by_feature`]).
#[inline(always)]
fn t_mul_fm(acc: &mut [f64], lda: usize, fm: &SparseScratch, d: usize, k: usize) {
    for (t0, w) in tiles(k) {
        match w {
            24 => t_mul_fm_tile::<24>(acc, lda, fm, d, t0),
            20 => t_mul_fm_tile::<20>(acc, lda, fm, d, t0),
            16 => t_mul_fm_tile::<16>(acc, lda, fm, d, t0),
            12 => t_mul_fm_tile::<12>(acc, lda, fm, d, t0),
            8 => t_mul_fm_tile::<8>(acc, lda, fm, d, t0),
            _ => t_mul_fm_tile::<4>(acc, lda, fm, d, t0),
        }
    }
}

/// The columns `t0 .. t0 + T` of [`sparse_t_mul_add`] in feature-major order: for each feature,
/// its accumulator row's tile takes the block's samples in order, one fused multiply-add per
/// entry and column, so every entry of `acc` sees the same operations in the same order as in
/// [`t_mul_tile`].
#[inline(always)]
#[allow(clippy::needless_range_loop)]
fn t_mul_fm_tile<const T: usize>(
    acc: &mut [f64],
    lda: usize,
    fm: &SparseScratch,
    d: usize,
    t0: usize,
) {
    let tile = &fm.g[fm.rows * t0..fm.rows * (t0 + T)];
    for j in 0..d {
        let (ss, vs) = fm.feature(j);
        if ss.is_empty() {
            continue;
        }
        let row = &mut acc[j * lda + t0..j * lda + t0 + T];
        let mut a = [0.0f64; T];
        a.copy_from_slice(row);
        for (&s, &v) in ss.iter().zip(vs) {
            let gr = &tile[s as usize * T..s as usize * T + T];
            for c in 0..T {
                a[c] = v.mul_add(gr[c], a[c]);
            }
        }
        row.copy_from_slice(&a);
    }
}

/// The columns `t0 .. t0 + T` of [`sparse_mul`] (stored for those below `k`), two samples at
/// a time so that two independent chains of multiply-adds overlap.
///
/// The callers have checked `t0 + T ≤ k.next_multiple_of(4) ≤ ldb` and that `b` holds
/// `(d − 1)·ldb + k.next_multiple_of(4)` entries, and [`SparseRows`] keeps every feature index
/// below `d`, so every row read stays in `b`.
#[inline(always)]
// An entry number `p` indexes both the feature indices and the values.
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
fn mul_tile<const T: usize, V: ValueAt>(
    out: &mut [f64],
    ldo: usize,
    x: SparseBlock<'_>,
    val: V,
    b: &[f64],
    ldb: usize,
    t0: usize,
    k: usize,
) {
    let keep = T.min(k - t0);
    let bp = b.as_ptr();
    // SAFETY: see the function's documentation.
    let row = |j: u16| unsafe { &*bp.add(j as usize * ldb + t0).cast::<[f64; T]>() };
    let fma = |acc: &mut [f64; T], a: f64, r: &[f64; T]| {
        for c in 0..T {
            acc[c] = a.mul_add(r[c], acc[c]);
        }
    };
    let mut store = |s: usize, acc: &[f64; T]| {
        for (c, &v) in acc[..keep].iter().enumerate() {
            out[s + (t0 + c) * ldo] = v;
        }
    };
    let rows = x.rows();
    let mut s = 0;
    let idx = x.idx;
    while s + 1 < rows {
        let (e0, e1) = (x.sample(s), x.sample(s + 1));
        let m = e0.len().min(e1.len());
        let (mut a0, mut a1) = ([0.0f64; T], [0.0f64; T]);
        for p in 0..m {
            let (p0, p1) = (e0.start + p, e1.start + p);
            fma(&mut a0, val.at(p0), row(idx[p0]));
            fma(&mut a1, val.at(p1), row(idx[p1]));
        }
        for p in e0.start + m..e0.end {
            fma(&mut a0, val.at(p), row(idx[p]));
        }
        for p in e1.start + m..e1.end {
            fma(&mut a1, val.at(p), row(idx[p]));
        }
        store(s, &a0);
        store(s + 1, &a1);
        s += 2;
    }
    if s < rows {
        let mut a0 = [0.0f64; T];
        for p in x.sample(s) {
            fma(&mut a0, val.at(p), row(idx[p]));
        }
        store(s, &a0);
    }
}

/// The columns `t0 .. t0 + T` of [`sparse_t_mul_add`] (read for those below `k`).
///
/// The callers have checked `t0 + T ≤ k.next_multiple_of(4) ≤ lda` and that `acc` holds
/// `(d − 1)·lda + k.next_multiple_of(4)` entries, and [`SparseRows`] keeps every feature index
/// below `d`, so every row written stays in `acc`; the rows of one sample are distinct.
#[inline(always)]
// An entry number `p` indexes both the feature indices and the values.
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
fn t_mul_tile<const T: usize, V: ValueAt>(
    acc: &mut [f64],
    lda: usize,
    x: SparseBlock<'_>,
    val: V,
    g: &[f64],
    ldg: usize,
    t0: usize,
    k: usize,
) {
    let keep = T.min(k - t0);
    let ap = acc.as_mut_ptr();
    for s in 0..x.rows() {
        let mut gr = [0.0f64; T];
        for (c, v) in gr[..keep].iter_mut().enumerate() {
            *v = g[s + (t0 + c) * ldg];
        }
        for p in x.sample(s) {
            let (j, a) = (x.idx[p], val.at(p));
            // SAFETY: see the function's documentation.
            let row = unsafe { &mut *ap.add(j as usize * lda + t0).cast::<[f64; T]>() };
            for c in 0..T {
                row[c] = a.mul_add(gr[c], row[c]);
            }
        }
    }
}

/// The tiles with AVX2 and FMA intrinsics: the same operations as [`mul_tile`] and
/// [`t_mul_tile`] (one fused multiply-add per entry and column, in the same order), with the
/// accumulators held in vector registers (the compiler's vectorization of the portable tiles
/// spilled them for some widths).
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{SparseBlock, SparseScratch, ValueAt, tiles};
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn mul_tiles<V: ValueAt>(
        out: &mut [f64],
        ldo: usize,
        x: SparseBlock<'_>,
        val: V,
        b: &[f64],
        ldb: usize,
        k: usize,
    ) {
        for (t0, w) in tiles(k) {
            // SAFETY: as for the portable tiles (see `mul_tile`).
            unsafe {
                by_width!(w, 4, mul_tile::<V>(out, ldo, x, val, b, ldb, t0, k));
            }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn t_mul_tiles<V: ValueAt>(
        acc: &mut [f64],
        lda: usize,
        x: SparseBlock<'_>,
        val: V,
        g: &[f64],
        ldg: usize,
        k: usize,
    ) {
        for (t0, w) in tiles(k) {
            // SAFETY: as for the portable tiles (see `t_mul_tile`).
            unsafe {
                by_width!(w, 4, t_mul_tile::<V>(acc, lda, x, val, g, ldg, t0, k));
            }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn t_mul_fm_tiles(
        acc: &mut [f64],
        lda: usize,
        fm: &SparseScratch,
        d: usize,
        k: usize,
    ) {
        for (t0, w) in tiles(k) {
            // SAFETY: as for the portable tiles (see `t_mul_fm_tile`).
            unsafe {
                match w {
                    24 => t_mul_fm_tile::<6>(acc, lda, fm, d, t0),
                    20 => t_mul_fm_tile::<5>(acc, lda, fm, d, t0),
                    16 => t_mul_fm_tile::<4>(acc, lda, fm, d, t0),
                    12 => t_mul_fm_tile::<3>(acc, lda, fm, d, t0),
                    8 => t_mul_fm_tile::<2>(acc, lda, fm, d, t0),
                    _ => t_mul_fm_tile::<1>(acc, lda, fm, d, t0),
                }
            }
        }
    }

    /// `N` vectors of four columns from `t0`; see `super::t_mul_fm_tile`. The callers have
    /// checked that `acc` holds `(d − 1)·lda + k.next_multiple_of(4)` entries with
    /// `t0 + 4N ≤ k.next_multiple_of(4) ≤ lda`, and the scratch holds the tile's `r·4N` entries
    /// of `g` with every sample below `r`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn t_mul_fm_tile<const N: usize>(
        acc: &mut [f64],
        lda: usize,
        fm: &SparseScratch,
        d: usize,
        t0: usize,
    ) {
        let w = 4 * N;
        let tile = &fm.g[fm.rows * t0..fm.rows * (t0 + w)];
        let (ap, gp) = (acc.as_mut_ptr(), tile.as_ptr());
        for j in 0..d {
            let (ss, vs) = fm.feature(j);
            if ss.is_empty() {
                continue;
            }
            // SAFETY (the loop's body): the row's tile and every sample's tile row lie inside
            // `acc` and `tile` (see above).
            unsafe {
                let r = ap.add(j * lda + t0);
                let mut a = [_mm256_setzero_pd(); N];
                for (q, v) in a.iter_mut().enumerate() {
                    *v = _mm256_loadu_pd(r.add(4 * q));
                }
                for (&s, &v) in ss.iter().zip(vs) {
                    let b = _mm256_set1_pd(v);
                    let g = gp.add(s as usize * w);
                    for (q, x) in a.iter_mut().enumerate() {
                        *x = _mm256_fmadd_pd(b, _mm256_loadu_pd(g.add(4 * q)), *x);
                    }
                }
                for (q, v) in a.iter().enumerate() {
                    _mm256_storeu_pd(r.add(4 * q), *v);
                }
            }
        }
    }

    /// `N` vectors of four columns from `t0`; see `super::mul_tile` for the bounds.
    // An entry number `p` indexes both the feature indices and the values.
    #[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn mul_tile<const N: usize, V: ValueAt>(
        out: &mut [f64],
        ldo: usize,
        x: SparseBlock<'_>,
        val: V,
        b: &[f64],
        ldb: usize,
        t0: usize,
        k: usize,
    ) {
        let keep = (4 * N).min(k - t0);
        let bp = b.as_ptr();
        let idx = x.idx;
        let fma = |acc: &mut [__m256d; N], a: f64, j: u16| {
            // SAFETY: the row `j` holds `t0 + 4N` entries (see `super::mul_tile`).
            let r = unsafe { bp.add(j as usize * ldb + t0) };
            let a = _mm256_set1_pd(a);
            for (q, v) in acc.iter_mut().enumerate() {
                *v = _mm256_fmadd_pd(a, unsafe { _mm256_loadu_pd(r.add(4 * q)) }, *v);
            }
        };
        let mut store = |s: usize, acc: &[__m256d; N]| {
            let mut lanes = [[0.0f64; 4]; N];
            for (l, v) in lanes.iter_mut().zip(acc) {
                // SAFETY: four entries.
                unsafe { _mm256_storeu_pd(l.as_mut_ptr(), *v) };
            }
            for (c, &v) in lanes.as_flattened()[..keep].iter().enumerate() {
                out[s + (t0 + c) * ldo] = v;
            }
        };
        let rows = x.rows();
        let mut s = 0;
        while s + 1 < rows {
            let (e0, e1) = (x.sample(s), x.sample(s + 1));
            let m = e0.len().min(e1.len());
            let (mut a0, mut a1) = ([_mm256_setzero_pd(); N], [_mm256_setzero_pd(); N]);
            for p in 0..m {
                let (p0, p1) = (e0.start + p, e1.start + p);
                fma(&mut a0, val.at(p0), idx[p0]);
                fma(&mut a1, val.at(p1), idx[p1]);
            }
            for p in e0.start + m..e0.end {
                fma(&mut a0, val.at(p), idx[p]);
            }
            for p in e1.start + m..e1.end {
                fma(&mut a1, val.at(p), idx[p]);
            }
            store(s, &a0);
            store(s + 1, &a1);
            s += 2;
        }
        if s < rows {
            let mut a0 = [_mm256_setzero_pd(); N];
            for p in x.sample(s) {
                fma(&mut a0, val.at(p), idx[p]);
            }
            store(s, &a0);
        }
    }

    /// `N` vectors of four columns from `t0`; see `super::t_mul_tile` for the bounds.
    // An entry number `p` indexes both the feature indices and the values.
    #[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn t_mul_tile<const N: usize, V: ValueAt>(
        acc: &mut [f64],
        lda: usize,
        x: SparseBlock<'_>,
        val: V,
        g: &[f64],
        ldg: usize,
        t0: usize,
        k: usize,
    ) {
        let keep = (4 * N).min(k - t0);
        let ap = acc.as_mut_ptr();
        for s in 0..x.rows() {
            let mut lanes = [[0.0f64; 4]; N];
            for (c, v) in lanes.as_flattened_mut()[..keep].iter_mut().enumerate() {
                *v = g[s + (t0 + c) * ldg];
            }
            let mut gr = [_mm256_setzero_pd(); N];
            for (v, l) in gr.iter_mut().zip(&lanes) {
                // SAFETY: four entries.
                *v = unsafe { _mm256_loadu_pd(l.as_ptr()) };
            }
            for p in x.sample(s) {
                let a = _mm256_set1_pd(val.at(p));
                // SAFETY: the row `idx[p]` holds `t0 + 4N` entries (see `super::t_mul_tile`).
                let r = unsafe { ap.add(x.idx[p] as usize * lda + t0) };
                for (q, &gv) in gr.iter().enumerate() {
                    unsafe {
                        let d = r.add(4 * q);
                        _mm256_storeu_pd(d, _mm256_fmadd_pd(a, gv, _mm256_loadu_pd(d)));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Mat;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    /// A matrix with about `1 − p` zeros.
    fn sparse_mat(n: usize, d: usize, p: f64, seed: u64) -> Mat<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        Mat::from_fn(n, d, |_, _| {
            if rng.random::<f64>() < p {
                rng.random::<f64>() - 0.5
            } else {
                0.0
            }
        })
    }

    #[test]
    fn the_products_are_the_dense_products() {
        for &(n, d, k) in &[
            (7usize, 5usize, 1usize),
            (13, 30, 10),
            (9, 40, 17),
            (20, 33, 100),
            (1, 3, 4),
        ] {
            let x = sparse_mat(n, d, 0.3, n as u64);
            let s = SparseRows::from_sample_rows(x.as_ref()).unwrap();
            let t = SparseRows::from_sample_cols(x.transpose()).unwrap();
            assert_eq!((s.nnz(), s.samples(), s.width()), (t.nnz(), n, d));
            let ldb = k.next_multiple_of(4) + 4;
            let bm = sparse_mat(d, k, 1.0, 7);
            let mut b = vec![0.0; d * ldb];
            for j in 0..d {
                for c in 0..k {
                    b[j * ldb + c] = bm[(j, c)];
                }
            }
            // A block in the middle: samples 1.. of n.
            let r0 = usize::from(n > 1);
            let r = n - r0;
            let mut z = vec![f64::NAN; (r + 2) * k];
            sparse_mul(&mut z, r + 2, t.block(r0, r), &b, ldb, k);
            let gm = sparse_mat(r, k, 1.0, 9);
            let g: Vec<f64> = (0..k)
                .flat_map(|c| (0..r).map(move |i| (i, c)))
                .map(|(i, c)| gm[(i, c)])
                .collect();
            let mut acc = vec![1.0; d * ldb];
            sparse_t_mul_add(
                &mut acc,
                ldb,
                s.block(r0, r),
                &g,
                r,
                k,
                &mut SparseScratch::default(),
            );
            for si in 0..r {
                for c in 0..k {
                    let e: f64 = (0..d).map(|j| x[(r0 + si, j)] * bm[(j, c)]).sum();
                    assert!((z[si + c * (r + 2)] - e).abs() <= 1e-14, "{n} {d} {k}");
                }
            }
            for j in 0..d {
                for c in 0..ldb {
                    let e: f64 = if c < k {
                        1.0 + (0..r).map(|si| x[(r0 + si, j)] * gm[(si, c)]).sum::<f64>()
                    } else {
                        1.0
                    };
                    assert!((acc[j * ldb + c] - e).abs() <= 1e-14, "{n} {d} {k} {j} {c}");
                }
            }
        }
    }

    /// The vector kernels give the portable tiles' bits (the same fused multiply-adds in the
    /// same order), for every tile width.
    #[test]
    fn the_vector_kernels_give_the_portable_bits() {
        let (n, d) = (23usize, 70usize);
        let x = sparse_mat(n, d, 0.25, 17);
        let s = SparseRows::from_sample_rows(x.as_ref()).unwrap();
        let mut scratch = SparseScratch::default();
        for k in [1usize, 4, 10, 13, 20, 24, 33, 52, 63, 64, 104, 257] {
            let ld = k.next_multiple_of(4) + 8;
            let b: Vec<f64> = (0..d * ld).map(|i| (i as f64 * 0.73).sin()).collect();
            let g: Vec<f64> = (0..n * k).map(|i| (i as f64 * 0.29).cos()).collect();
            let x = s.block(2, n - 2);
            let (mut z1, mut z2) = (vec![0.0; n * k], vec![0.0; n * k]);
            sparse_mul(&mut z1, n, x, &b, ld, k);
            mul(&mut z2, n, x, &b, ld, k);
            let (mut a1, mut a2) = (b.clone(), b.clone());
            sparse_t_mul_add(&mut a1, ld, x, &g, n, k, &mut scratch);
            t_mul(&mut a2, ld, x, &g, n, k);
            let bits = |v: &[f64]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&z1), bits(&z2), "forward, {k} columns");
            assert_eq!(bits(&a1), bits(&a2), "reverse, {k} columns");
        }
    }

    /// The feature-major order gives the sample-major order's bits (every entry of the
    /// accumulator takes the block's samples in order), portable and vector tiles alike, for
    /// every tile width and for blocks that start inside the data; a scratch reused for a
    /// smaller block keeps no stale entries.
    #[test]
    fn the_feature_major_order_gives_the_sample_major_bits() {
        let (n, d) = (41usize, 90usize);
        let x = sparse_mat(n, d, 0.3, 29);
        let s = SparseRows::from_sample_rows(x.as_ref()).unwrap();
        let bits = |v: &[f64]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        let mut scratch = SparseScratch::default();
        for (k, r0, r) in [
            (1usize, 0usize, 41usize),
            (4, 3, 30),
            (10, 5, 36),
            (24, 0, 41),
            (52, 7, 20),
            (70, 1, 40),
            (130, 11, 9),
        ] {
            let ld = k.next_multiple_of(4) + 4;
            let acc0: Vec<f64> = (0..d * ld).map(|i| (i as f64 * 0.41).sin()).collect();
            let g: Vec<f64> = (0..r * k).map(|i| (i as f64 * 0.17).cos() * 3.0).collect();
            let blk = s.block(r0, r);
            let mut by_sample = acc0.clone();
            t_mul(&mut by_sample, ld, blk, &g, r, k);
            scratch.by_feature(blk, &g, r, k);
            let mut by_feature = acc0.clone();
            t_mul_fm(&mut by_feature, ld, &scratch, d, k);
            assert_eq!(bits(&by_sample), bits(&by_feature), "portable, {k} columns");
            #[cfg(target_arch = "x86_64")]
            if crate::Simd::detect() != crate::Simd::None {
                let mut v = acc0.clone();
                // SAFETY: AVX2 and FMA were detected; the scratch holds this block.
                unsafe { x86::t_mul_fm_tiles(&mut v, ld, &scratch, d, k) };
                assert_eq!(bits(&by_sample), bits(&v), "vector, {k} columns");
            }
            // And the entries really moved: the product is not the starting accumulator.
            assert_ne!(bits(&by_sample), bits(&acc0));
        }
    }

    /// Values of at most 256 distinct numbers are kept as codes, and the products are the same
    /// bits as from the plain values (one more distinct value makes them plain).
    #[test]
    fn coded_values_give_the_plain_values_products() {
        let (n, d, k) = (30usize, 50usize, 13usize);
        let noisy = sparse_mat(n, d, 0.3, 3);
        let pixels = Mat::from_fn(n, d, |i, j| (noisy[(i, j)].abs() * 510.0).floor() / 255.0);
        let coded = SparseRows::from_sample_rows(pixels.as_ref()).unwrap();
        assert!(coded.is_coded());
        let mut plain = coded.clone();
        if let Values::Coded { codes, table } = &coded.val {
            plain.val = Values::Plain(codes.iter().map(|&c| table[c as usize]).collect());
        }
        assert!(!plain.is_coded() && plain.bytes() > coded.bytes());
        let ldb = k.next_multiple_of(4);
        let b: Vec<f64> = (0..d * ldb).map(|i| (i as f64 * 0.37).sin()).collect();
        let g: Vec<f64> = (0..n * k).map(|i| (i as f64 * 0.11).cos()).collect();
        let run = |x: &SparseRows| {
            let mut z = vec![0.0; n * k];
            sparse_mul(&mut z, n, x.block(0, n), &b, ldb, k);
            let mut acc = vec![0.0; d * ldb];
            sparse_t_mul_add(
                &mut acc,
                ldb,
                x.block(0, n),
                &g,
                n,
                k,
                &mut SparseScratch::default(),
            );
            (z, acc)
        };
        assert_eq!(run(&coded), run(&plain));
        let mut many = pixels.clone();
        for (t, j) in (0..257).zip(0..) {
            many[(j / d, j % d)] = 1.0 + t as f64;
        }
        assert!(
            !SparseRows::from_sample_rows(many.as_ref())
                .unwrap()
                .is_coded()
        );
    }

    #[test]
    fn a_block_is_summed_in_feature_order_whatever_the_tile() {
        // One sample `[1, 2⁻⁵³, 2⁻⁵³]`, a column of ones: feature order rounds each tiny term
        // away (1 + 2⁻⁵³ = 1, ties to even); any other order would give 1 + 2⁻⁵².
        let e = f64::EPSILON / 2.0;
        let x = Mat::from_fn(1, 3, |_, j| if j == 0 { 1.0 } else { e });
        let s = SparseRows::from_sample_rows(x.as_ref()).unwrap();
        for k in [1usize, 5, 16, 23] {
            let ldb = k.next_multiple_of(4);
            let b = vec![1.0; 3 * ldb];
            let mut z = vec![0.0; k];
            sparse_mul(&mut z, 1, s.block(0, 1), &b, ldb, k);
            assert!(z.iter().all(|&v| v == 1.0), "{k}: {z:?}");
        }
    }

    #[test]
    fn sizes_are_checked() {
        let x = Mat::<f64>::zeros(2, 3);
        let s = SparseRows::from_sample_rows(x.as_ref()).unwrap();
        assert_eq!(s.nnz(), 0);
        assert_eq!(SparseRows::density(x.as_ref()), 0.0);
        let bad = std::panic::catch_unwind(|| {
            let mut z = [0.0; 4];
            sparse_mul(&mut z, 2, s.block(0, 2), &[0.0; 8], 2, 2);
        });
        assert!(bad.is_err(), "a row stride below the tile width is refused");
        assert!(std::panic::catch_unwind(|| s.block(1, 2)).is_err());
        let wide = Mat::<f64>::zeros(1, SparseRows::MAX_WIDTH + 1);
        assert!(SparseRows::from_sample_rows(wide.as_ref()).is_none());
    }
}

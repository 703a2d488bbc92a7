//! Fast paths of [`matmul`](crate::matmul) for the narrow products of data-sum losses.
//!
//! Two shapes dominate the oracles of the workspace's data problems, and faer runs both at a
//! third of the machine's peak (it repacks its operands at every call):
//!
//! - **dot form**, `C (m×n) = A·B` with the rows of `A` and the columns of `B` contiguous: logits
//!   of a block of samples stored feature-major, `Z = Xᵀ W` with `X` `d × R` and `W` `d × k`.
//!   Each entry is a dot product along the contiguous dimension; a tile of `4 × 5` entries keeps
//!   20 eight-lane partial sums in registers, reads 9 vectors per 20 multiply-adds, and reduces
//!   the lanes once at the end.
//! - **broadcast form**, `C (m×n) (+)= A·B` with the columns of `A` contiguous and a short inner
//!   dimension: the gradient of the weights from a block, `∇W += X Ḡ` (`X` `d × R`, `Ḡ` `R × k`).
//!   A tile of 16 rows × 10 columns of `C` stays in registers while the `R` columns of `A` stream
//!   through; each entry of `B` is broadcast once.
//!
//! Both run on AVX-512 (detected at run time) for narrow results ([`DOT_MAX_N`], [`BC_MAX_N`]
//! columns; faer's packed product wins beyond) and fall back to faer otherwise. The summation
//! order of every entry is fixed by the shapes alone, so results do not depend on how callers
//! split work between threads.

#[cfg(target_arch = "x86_64")]
// Register tiles read clearest with explicit indices.
#[allow(clippy::needless_range_loop)]
mod x86 {
    use std::arch::x86_64::*;

    /// Lines of memory to bring into the second-level cache while a kernel computes: the next
    /// block of a streamed data matrix, spread over the kernel's inner steps so that the
    /// requests overlap the arithmetic instead of stalling on the line-fill buffers.
    #[derive(Clone, Copy, Debug)]
    pub(super) struct Prefetch {
        pub next: *const u8,
        pub end: *const u8,
        /// Lines per inner step.
        pub per_step: usize,
    }

    impl Prefetch {
        pub(super) const NONE: Prefetch = Prefetch {
            next: std::ptr::null(),
            end: std::ptr::null(),
            per_step: 0,
        };

        /// Issue this step's prefetches.
        #[inline(always)]
        pub(super) fn step(&mut self) {
            for _ in 0..self.per_step {
                if self.next >= self.end {
                    return;
                }
                // SAFETY: `next` lies in the range the caller vouched for; a prefetch never
                // faults in any case.
                unsafe { _mm_prefetch::<_MM_HINT_T2>(self.next as *const i8) };
                self.next = self.next.wrapping_add(64);
            }
        }
    }

    /// How far ahead (in entries) the first pass of the dot form prefetches its rows.
    const ROW_AHEAD: usize = 128;

    /// Rows and columns of a dot-form tile.
    pub(super) const DOT_MR: usize = 4;
    pub(super) const DOT_NR: usize = super::DOT_TILE_COLS;
    /// Columns of a broadcast-form tile (its rows are two vectors of eight).
    pub(super) const BC_NR: usize = 10;

    /// `C[0..MR, 0..NR] (+)= A[0..MR, 0..k] · B[0..k, 0..NR]`, rows of `A` and columns of `B`
    /// contiguous.
    ///
    /// # Safety
    /// AVX-512F/VL/DQ must be available. `a + r·lda + p` for `r < MR, p < k`,
    /// `b + j·ldb + p` for `j < NR, p < k` must be readable, `c + r + j·ldc` for `r < MR,
    /// j < NR` writable.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f,avx512vl,avx512dq")]
    unsafe fn dot_tile<const MR: usize, const NR: usize>(
        k: usize,
        a: *const f64,
        lda: usize,
        b: *const f64,
        ldb: usize,
        c: *mut f64,
        ldc: usize,
        add: bool,
        pf: &mut Prefetch,
        ahead_rows: bool,
    ) {
        let mut acc = [[_mm512_setzero_pd(); NR]; MR];
        let full = k / 8 * 8;
        let mut p = 0;
        // SAFETY (whole body): every pointer offset below stays inside the ranges the caller
        // guarantees; the tail uses masked loads, which read no lane past `k`.
        unsafe {
            while p < full {
                pf.step();
                if ahead_rows {
                    // The rows further on (and, past their end, the next rows), a kilobyte
                    // ahead: streams from memory run about an eighth faster.
                    for r in 0..MR {
                        _mm_prefetch::<_MM_HINT_T0>(
                            a.wrapping_add(r * lda + p + ROW_AHEAD) as *const i8
                        );
                    }
                }
                let mut av = [_mm512_setzero_pd(); MR];
                for (r, v) in av.iter_mut().enumerate() {
                    *v = _mm512_loadu_pd(a.add(r * lda + p));
                }
                for j in 0..NR {
                    let bv = _mm512_loadu_pd(b.add(j * ldb + p));
                    for r in 0..MR {
                        acc[r][j] = _mm512_fmadd_pd(av[r], bv, acc[r][j]);
                    }
                }
                p += 8;
            }
            if p < k {
                let m: __mmask8 = (1u8 << (k - p)) - 1;
                let mut av = [_mm512_setzero_pd(); MR];
                for (r, v) in av.iter_mut().enumerate() {
                    *v = _mm512_maskz_loadu_pd(m, a.add(r * lda + p));
                }
                for j in 0..NR {
                    let bv = _mm512_maskz_loadu_pd(m, b.add(j * ldb + p));
                    for r in 0..MR {
                        acc[r][j] = _mm512_fmadd_pd(av[r], bv, acc[r][j]);
                    }
                }
            }
            for (r, row) in acc.iter().enumerate() {
                for (j, v) in row.iter().enumerate() {
                    let s = _mm512_reduce_add_pd(*v);
                    let d = c.add(r + j * ldc);
                    *d = if add { *d + s } else { s };
                }
            }
        }
    }

    /// The dot form over a whole `m × n` result, tile by tile (column groups outer, so that a
    /// group of `B` stays in the first-level cache while the rows of `A` stream through).
    ///
    /// # Safety
    /// AVX-512F/VL/DQ must be available and the pointers valid for the shapes and strides given.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f,avx512vl,avx512dq")]
    pub(super) unsafe fn dot_form(
        m: usize,
        n: usize,
        k: usize,
        a: *const f64,
        lda: usize,
        b: *const f64,
        ldb: usize,
        c: *mut f64,
        ldc: usize,
        add: bool,
        mut pf: Prefetch,
    ) {
        // Spread the prefetches over the inner steps of every tile.
        let steps = m.div_ceil(DOT_MR) * n.div_ceil(DOT_NR) * (k / 8).max(1);
        let lines = (pf.end as usize).saturating_sub(pf.next as usize) / 64;
        pf.per_step = lines.div_ceil(steps);
        macro_rules! tile {
            ($mr:expr, $nr:expr, $i0:expr, $j0:expr) => {
                // SAFETY: the tile lies inside the `m × n` result and `m × k`, `k × n` operands.
                unsafe {
                    dot_tile::<$mr, $nr>(
                        k,
                        a.add($i0 * lda),
                        lda,
                        b.add($j0 * ldb),
                        ldb,
                        c.add($i0 + $j0 * ldc),
                        ldc,
                        add,
                        &mut pf,
                        $j0 == 0,
                    )
                }
            };
        }
        let mut j0 = 0;
        while j0 < n {
            let nr = DOT_NR.min(n - j0);
            let mut i0 = 0;
            while i0 < m {
                let mr = DOT_MR.min(m - i0);
                match (mr, nr) {
                    (4, 5) => tile!(4, 5, i0, j0),
                    (4, 4) => tile!(4, 4, i0, j0),
                    (4, 3) => tile!(4, 3, i0, j0),
                    (4, 2) => tile!(4, 2, i0, j0),
                    (4, 1) => tile!(4, 1, i0, j0),
                    (3, 5) => tile!(3, 5, i0, j0),
                    (3, 4) => tile!(3, 4, i0, j0),
                    (3, 3) => tile!(3, 3, i0, j0),
                    (3, 2) => tile!(3, 2, i0, j0),
                    (3, 1) => tile!(3, 1, i0, j0),
                    (2, 5) => tile!(2, 5, i0, j0),
                    (2, 4) => tile!(2, 4, i0, j0),
                    (2, 3) => tile!(2, 3, i0, j0),
                    (2, 2) => tile!(2, 2, i0, j0),
                    (2, 1) => tile!(2, 1, i0, j0),
                    (1, 5) => tile!(1, 5, i0, j0),
                    (1, 4) => tile!(1, 4, i0, j0),
                    (1, 3) => tile!(1, 3, i0, j0),
                    (1, 2) => tile!(1, 2, i0, j0),
                    _ => tile!(1, 1, i0, j0),
                }
                i0 += mr;
            }
            j0 += nr;
        }
    }

    /// `C[0..16, 0..NR] (+)= A[0..16, 0..k] · B[0..k, 0..NR]` with the rows of the tile masked
    /// by `m0` (rows 0–7) and `m1` (rows 8–15); columns of `A` contiguous, `B` read through any
    /// strides.
    ///
    /// # Safety
    /// AVX-512F/VL/DQ must be available. The unmasked rows of `a + p·lda` (`p < k`) must be
    /// readable, `b + p·brs + j·bcs` (`p < k`, `j < NR`) readable, and the unmasked rows of
    /// `c + j·ldc` (`j < NR`) readable and writable.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f,avx512vl,avx512dq")]
    unsafe fn bc_tile<const NR: usize>(
        k: usize,
        a: *const f64,
        lda: usize,
        b: *const f64,
        brs: usize,
        bcs: usize,
        c: *mut f64,
        ldc: usize,
        (m0, m1): (__mmask8, __mmask8),
        add: bool,
        pf: &mut Prefetch,
    ) {
        let mut acc0 = [_mm512_setzero_pd(); NR];
        let mut acc1 = [_mm512_setzero_pd(); NR];
        // SAFETY (whole body): masked loads and stores touch only the rows the caller vouches for.
        unsafe {
            if add {
                for j in 0..NR {
                    acc0[j] = _mm512_maskz_loadu_pd(m0, c.add(j * ldc));
                    acc1[j] = _mm512_maskz_loadu_pd(m1, c.add(j * ldc + 8));
                }
            }
            for p in 0..k {
                pf.step();
                let a0 = _mm512_maskz_loadu_pd(m0, a.add(p * lda));
                let a1 = _mm512_maskz_loadu_pd(m1, a.add(p * lda + 8));
                for j in 0..NR {
                    let bj = _mm512_set1_pd(*b.add(p * brs + j * bcs));
                    acc0[j] = _mm512_fmadd_pd(a0, bj, acc0[j]);
                    acc1[j] = _mm512_fmadd_pd(a1, bj, acc1[j]);
                }
            }
            for j in 0..NR {
                _mm512_mask_storeu_pd(c.add(j * ldc), m0, acc0[j]);
                _mm512_mask_storeu_pd(c.add(j * ldc + 8), m1, acc1[j]);
            }
        }
    }

    /// The broadcast form over a whole `m × n` result: row tiles of 16 outer (a tile of `A`
    /// stays in the first-level cache), column groups of [`BC_NR`] inner.
    ///
    /// # Safety
    /// AVX-512F/VL/DQ must be available and the pointers valid for the shapes and strides given.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f,avx512vl,avx512dq")]
    pub(super) unsafe fn bc_form(
        m: usize,
        n: usize,
        k: usize,
        a: *const f64,
        lda: usize,
        b: *const f64,
        brs: usize,
        bcs: usize,
        c: *mut f64,
        ldc: usize,
        add: bool,
        mut pf: Prefetch,
    ) {
        let steps = m.div_ceil(16) * n.div_ceil(BC_NR) * k.max(1);
        let lines = (pf.end as usize).saturating_sub(pf.next as usize) / 64;
        pf.per_step = lines.div_ceil(steps);
        let mut i0 = 0;
        while i0 < m {
            let rows = (m - i0).min(16);
            let mask = |r: usize| -> __mmask8 { if r >= 8 { 0xff } else { (1u8 << r) - 1 } };
            let masks = (mask(rows), mask(rows.saturating_sub(8)));
            let mut j0 = 0;
            while j0 < n {
                let nr = BC_NR.min(n - j0);
                macro_rules! tile {
                    ($nr:expr) => {
                        // SAFETY: the tile's unmasked rows and its columns lie inside the result
                        // and the operands.
                        unsafe {
                            bc_tile::<$nr>(
                                k,
                                a.add(i0),
                                lda,
                                b.add(j0 * bcs),
                                brs,
                                bcs,
                                c.add(i0 + j0 * ldc),
                                ldc,
                                masks,
                                add,
                                &mut pf,
                            )
                        }
                    };
                }
                match nr {
                    10 => tile!(10),
                    9 => tile!(9),
                    8 => tile!(8),
                    7 => tile!(7),
                    6 => tile!(6),
                    5 => tile!(5),
                    4 => tile!(4),
                    3 => tile!(3),
                    2 => tile!(2),
                    _ => tile!(1),
                }
                j0 += nr;
            }
            i0 += rows;
        }
    }
}

use crate::{Accum, MatMut, MatRef};

/// Operands of at most this many entries (2 MiB) are streamed by the fast paths; larger ones go
/// to faer, whose packing pays off when an operand does not fit in the second-level cache.
const FAST_MAX_ENTRIES: usize = 1 << 18;

/// Columns of a dot-form register tile.
const DOT_TILE_COLS: usize = 5;

/// Whether `lhs·[B₁ B₂]`, two right-hand sides of `cols` columns each, costs less as one
/// product than as two (the value and the tangent of a data product, say): one product reads
/// `lhs` once where two read it twice, which saves time when one right-hand side is narrower
/// than a dot-form tile or the pair is wide enough for faer (which then packs `lhs` once).
/// Between, the kernels make the same passes over `lhs` either way.
///
/// # Example
/// ```
/// use bilevel_linalg::joint_product_pays;
/// assert!(joint_product_pays(1)); // two matrix-vector products
/// assert!(!joint_product_pays(10)); // the logits of ten classes and their tangent
/// assert!(joint_product_pays(50)); // a hidden layer of fifty units
/// ```
pub fn joint_product_pays(cols: usize) -> bool {
    cols < DOT_TILE_COLS || 2 * cols > DOT_MAX_N
}

/// The widest result the dot form takes: beyond it faer's packed product is faster (measured
/// here with a 80 × 784 left operand, one thread: 72 against 60 GFLOP/s at 20 columns, 56
/// against 65 at 50, 63 against 79 at 256).
const DOT_MAX_N: usize = 32;

/// The widest result the broadcast form takes (784 × 80 left operand: 77 against 80 GFLOP/s at
/// 50 columns, 76 against 88 at 100).
const BC_MAX_N: usize = 64;

/// Whether the AVX-512 kernels can run on this machine.
#[inline]
pub(crate) fn have_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("avx512dq")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A positive stride as `usize`.
#[inline]
fn stride(s: isize) -> Option<usize> {
    usize::try_from(s).ok()
}

/// Compute `dst (+)= lhs · rhs` with a fast path when one applies; `false` leaves `dst`
/// untouched for the caller's general product. Shapes are checked by the caller.
pub(crate) fn try_matmul(
    dst: &mut MatMut<'_, f64>,
    accum: Accum,
    lhs: MatRef<'_, f64>,
    rhs: MatRef<'_, f64>,
    ahead: Option<MatRef<'_, f64>>,
) -> bool {
    let (m, k, n) = (lhs.nrows(), lhs.ncols(), rhs.ncols());
    if m == 0 || n == 0 || k == 0 || !have_avx512() {
        return false;
    }
    let add = accum == Accum::Add;
    let (Some(ldc), true) = (stride(dst.col_stride()), dst.row_stride() == 1 || m == 1) else {
        return false;
    };
    #[cfg(target_arch = "x86_64")]
    {
        // The memory span of `ahead`, to prefetch while computing.
        let pf = match ahead {
            Some(v)
                if v.nrows() > 0 && v.ncols() > 0 && v.row_stride() == 1 && v.col_stride() > 0 =>
            {
                let start = v.as_ptr() as *const u8;
                let span = (v.ncols() - 1) * v.col_stride() as usize + v.nrows();
                x86::Prefetch {
                    next: start,
                    end: start.wrapping_add(8 * span),
                    per_step: 0,
                }
            }
            _ => x86::Prefetch::NONE,
        };
        // Dot form: rows of `lhs` and columns of `rhs` contiguous, a narrow result.
        if k >= 8
            && n <= DOT_MAX_N
            && lhs.col_stride() == 1
            && rhs.row_stride() == 1
            && (m * k <= FAST_MAX_ENTRIES || n <= x86::DOT_NR)
            && k * n <= 4 * FAST_MAX_ENTRIES
            && let (Some(lda), Some(ldb)) = (stride(lhs.row_stride()), stride(rhs.col_stride()))
        {
            {
                // SAFETY: the kernels read `lhs` and `rhs` and write `dst` only inside their
                // shapes, through the strides read from the views; AVX-512 was detected.
                unsafe {
                    x86::dot_form(
                        m,
                        n,
                        k,
                        lhs.as_ptr(),
                        lda,
                        rhs.as_ptr(),
                        ldb,
                        dst.as_ptr_mut(),
                        ldc,
                        add,
                        pf,
                    )
                };
                return true;
            }
        }
        // Broadcast form: columns of `lhs` contiguous, `lhs` small enough to stream from cache,
        // a result of at most `BC_MAX_N` columns (but not two, which faer runs faster).
        if m >= 8
            && n <= BC_MAX_N
            && n != 2
            && lhs.row_stride() == 1
            && m * k <= FAST_MAX_ENTRIES
            && let (Some(lda), Some(brs), Some(bcs)) = (
                stride(lhs.col_stride()),
                stride(rhs.row_stride()),
                stride(rhs.col_stride()),
            )
        {
            {
                // SAFETY: as above; masked tails never touch rows past `m`.
                unsafe {
                    x86::bc_form(
                        m,
                        n,
                        k,
                        lhs.as_ptr(),
                        lda,
                        rhs.as_ptr(),
                        brs,
                        bcs,
                        dst.as_ptr_mut(),
                        ldc,
                        add,
                        pf,
                    )
                };
                return true;
            }
        }
    }
    let _ = (add, ldc, ahead);
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Mat;

    fn det(i: usize, j: usize, s: usize) -> f64 {
        ((i * 31 + j * 17 + s * 7) % 23) as f64 / 23.0 - 0.4
    }

    /// On an AVX-512 machine the shapes of the data problems take the fast paths (and give the
    /// naive product); elsewhere `try_matmul` declines and faer computes the product.
    #[test]
    fn the_data_shapes_take_the_fast_paths() {
        let cases: [(usize, usize, usize, bool); 4] = [
            (64, 784, 20, true),  // logits of a block: Xᵀ[W V]
            (50, 64, 10, true),   // a hidden layer's weight gradient: Zᵀ Ȳ
            (784, 64, 20, false), // the data weights' gradient: X [Ḡ Ġ]
            (64, 50, 10, false),  // a hidden layer's product: Z W₂
        ];
        for (m, k, n, dot) in cases {
            let lhs_t = Mat::from_fn(k, m, |i, j| det(i, j, 1));
            let lhs = Mat::from_fn(m, k, |i, j| det(i, j, 2));
            let rhs = Mat::from_fn(k, n, |i, j| det(i, j, 3));
            let l = if dot { lhs_t.transpose() } else { lhs.as_ref() };
            let mut c = Mat::zeros(m, n);
            let taken = try_matmul(&mut c.as_mut(), Accum::Replace, l, rhs.as_ref(), None);
            assert_eq!(taken, have_avx512(), "{m}x{k}x{n}");
            if taken {
                for j in 0..n {
                    for i in 0..m {
                        let want: f64 = (0..k).map(|p| l[(i, p)] * rhs[(p, j)]).sum();
                        assert!((c[(i, j)] - want).abs() < 1e-12);
                    }
                }
            }
        }
    }

    /// Every entry's summation order is fixed by the shapes: the same product of a block gives
    /// the same bits whether computed alone or as part of a taller product.
    #[test]
    fn a_block_of_rows_gives_the_same_bits_as_the_whole() {
        let (m, k, n) = (37, 101, 13);
        let xt = Mat::from_fn(k, m, |i, j| det(i, j, 4));
        let w = Mat::from_fn(k, n, |i, j| det(i, j, 5));
        let mut whole = Mat::zeros(m, n);
        crate::matmul(
            whole.as_mut(),
            Accum::Replace,
            xt.transpose(),
            w.as_ref(),
            1.0,
            crate::Par::Seq,
        );
        let mut part = Mat::zeros(9, n);
        crate::matmul(
            part.as_mut(),
            Accum::Replace,
            xt.as_ref().subcols(20, 9).transpose(),
            w.as_ref(),
            1.0,
            crate::Par::Seq,
        );
        for j in 0..n {
            for i in 0..9 {
                assert_eq!(part[(i, j)].to_bits(), whole[(20 + i, j)].to_bits());
            }
        }
    }
}

//! The AVX-512 kernels of the dot and broadcast forms.

// Register tiles read clearest with explicit indices.
#![allow(clippy::needless_range_loop)]

use super::x86::{Prefetch, reduce_lanes};
use std::arch::x86_64::*;

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
                let s = reduce_lanes(_mm512_castpd512_pd256(*v), _mm512_extractf64x4_pd::<1>(*v));
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

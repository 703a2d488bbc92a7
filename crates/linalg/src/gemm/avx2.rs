//! The AVX2 + FMA kernels of the dot and broadcast forms, for machines without AVX-512.
//!
//! They compute every entry in the order of the AVX-512 kernels, so a product gives the same
//! bits on either kind of machine:
//!
//! - a dot-form entry keeps the same eight lane sums (lane `l` takes the products at `p ≡ l mod
//!   8`, fused, in increasing `p`), held as two four-lane halves, with the same masked tail and
//!   the same reduction tree ([`reduce_lanes`]);
//! - a broadcast-form entry is one fused multiply-add per inner step, from zero or from the
//!   entry's old value, whatever the vector width.
//!
//! Only the register tiles differ, to fit sixteen vector registers: 2 × 3 entries (twelve
//! accumulators) for the dot form (4 × 1 and 3 × 2 for one and two columns), 8 rows × 6 columns for the broadcast form (32 × 1 and 16 × 2 for one and two columns; plain loads and
//! stores in full tiles: AVX2's masked ones are slow on some machines, and the broadcast form
//! ran at half of faer's speed with them).

// Register tiles read clearest with explicit indices.
#![allow(clippy::needless_range_loop)]

use super::x86::{Prefetch, reduce_lanes};
use std::arch::x86_64::*;

/// How far ahead (in entries) the first pass of the dot form prefetches its rows.
const ROW_AHEAD: usize = 128;

/// Rows and columns of a dot-form tile.
const DOT_MR: usize = 2;
const DOT_NR: usize = 3;
/// Rows (two vectors of four) and columns of a broadcast-form tile.
const BC_MR: usize = 8;
const BC_NR: usize = 6;

/// A load mask of the first `n` of four lanes (all four for `n ≥ 4`).
#[inline]
#[target_feature(enable = "avx2")]
fn first_lanes(n: usize) -> __m256i {
    let on = |l: usize| if l < n { -1i64 } else { 0 };
    _mm256_setr_epi64x(on(0), on(1), on(2), on(3))
}

/// One four-lane half of a dot-form step: `acc[r][j] += A[r, p..p+4] ∘ B[p..p+4, j]`, fused,
/// with the vectors read by `load`.
///
/// # Safety
/// As [`dot_tile`], for the four entries from `p` that `load` reads.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn half_step<const MR: usize, const NR: usize>(
    a: *const f64,
    lda: usize,
    b: *const f64,
    ldb: usize,
    p: usize,
    load: impl Fn(*const f64) -> __m256d,
    acc: &mut [[__m256d; NR]; MR],
) {
    // SAFETY: the caller vouches for the rows of `a` and columns of `b` at `p`.
    unsafe {
        let mut av = [_mm256_setzero_pd(); MR];
        for (r, v) in av.iter_mut().enumerate() {
            *v = load(a.add(r * lda + p));
        }
        for j in 0..NR {
            let bv = load(b.add(j * ldb + p));
            for r in 0..MR {
                acc[r][j] = _mm256_fmadd_pd(av[r], bv, acc[r][j]);
            }
        }
    }
}

/// `C[0..MR, 0..NR] (+)= A[0..MR, 0..k] · B[0..k, 0..NR]`, rows of `A` and columns of `B`
/// contiguous.
///
/// # Safety
/// AVX2 and FMA must be available. `a + r·lda + p` for `r < MR, p < k`, `b + j·ldb + p` for
/// `j < NR, p < k` must be readable, `c + r + j·ldc` for `r < MR, j < NR` writable.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
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
    let mut lo = [[_mm256_setzero_pd(); NR]; MR];
    let mut hi = [[_mm256_setzero_pd(); NR]; MR];
    let full = k / 8 * 8;
    let mut p = 0;
    // SAFETY (whole body): every pointer offset below stays inside the ranges the caller
    // guarantees; the tail uses masked loads, which read no lane past `k`.
    unsafe {
        while p < full {
            pf.step();
            if ahead_rows {
                for r in 0..MR {
                    _mm_prefetch::<_MM_HINT_T0>(
                        a.wrapping_add(r * lda + p + ROW_AHEAD) as *const i8
                    );
                }
            }
            let load = |q: *const f64| _mm256_loadu_pd(q);
            half_step::<MR, NR>(a, lda, b, ldb, p, load, &mut lo);
            half_step::<MR, NR>(a, lda, b, ldb, p + 4, load, &mut hi);
            p += 8;
        }
        if p < k {
            // As the AVX-512 tail: all eight lanes take a product, zero past `k`.
            let rest = k - p;
            let (m_lo, m_hi) = (first_lanes(rest), first_lanes(rest.saturating_sub(4)));
            let load_lo = |q: *const f64| _mm256_maskload_pd(q, m_lo);
            let load_hi = |q: *const f64| _mm256_maskload_pd(q, m_hi);
            half_step::<MR, NR>(a, lda, b, ldb, p, load_lo, &mut lo);
            half_step::<MR, NR>(a, lda, b, ldb, p + 4, load_hi, &mut hi);
        }
        for r in 0..MR {
            for j in 0..NR {
                let s = reduce_lanes(lo[r][j], hi[r][j]);
                let d = c.add(r + j * ldc);
                *d = if add { *d + s } else { s };
            }
        }
    }
}

/// The dot form over a whole `m × n` result, tile by tile (column groups outer).
///
/// # Safety
/// AVX2 and FMA must be available and the pointers valid for the shapes and strides given.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
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
    // One or two columns: a single pass over `A`'s rows with more of them at a time (eight or
    // six lane-sum pairs in registers), and no software prefetch: the hardware prefetchers
    // follow these sequential streams, and the prefetch instructions only compete with the
    // loads (measured on a 2000 × 2000 matrix-vector product, 2 threads: 1.80 → 1.09 ms with
    // four rows and no prefetch, 2.13 → 1.53 ms for two columns with three rows). Wider
    // results pass over the rows once per column group, and prefetching the rows of the first
    // pass and the next block pays there (workload A's value, 5.3 → 4.4 ms).
    let mr_max = match n {
        1 => 4,
        2 => 3,
        _ => DOT_MR,
    };
    if n <= DOT_NR {
        pf = Prefetch::NONE;
    }
    let steps = m.div_ceil(mr_max) * n.div_ceil(DOT_NR) * (k / 8).max(1);
    let lines = (pf.end as usize).saturating_sub(pf.next as usize) / 64;
    pf.per_step = lines.div_ceil(steps);
    let ahead_rows = n > DOT_NR;
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
                    ahead_rows && $j0 == 0,
                )
            }
        };
    }
    let mut j0 = 0;
    while j0 < n {
        let nr = DOT_NR.min(n - j0);
        let mut i0 = 0;
        while i0 < m {
            let mr = mr_max.min(m - i0);
            match (mr, nr) {
                (4, 1) => tile!(4, 1, i0, j0),
                (3, 1) => tile!(3, 1, i0, j0),
                (3, 2) => tile!(3, 2, i0, j0),
                (2, 3) => tile!(2, 3, i0, j0),
                (2, 2) => tile!(2, 2, i0, j0),
                (2, 1) => tile!(2, 1, i0, j0),
                (1, 3) => tile!(1, 3, i0, j0),
                (1, 2) => tile!(1, 2, i0, j0),
                _ => tile!(1, 1, i0, j0),
            }
            i0 += mr;
        }
        j0 += nr;
    }
}

/// `C[0..8, 0..NR] (+)= A[0..8, 0..k] · B[0..k, 0..NR]` with the rows of the tile masked by `m0`
/// (rows 0–3) and `m1` (rows 4–7); columns of `A` contiguous, `B` read through any strides.
///
/// # Safety
/// AVX2 and FMA must be available. The unmasked rows of `a + p·lda` (`p < k`) must be readable,
/// `b + p·brs + j·bcs` (`p < k`, `j < NR`) readable, and the unmasked rows of `c + j·ldc`
/// (`j < NR`) readable and writable.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
unsafe fn bc_tile<const NR: usize, const FULL: bool>(
    k: usize,
    a: *const f64,
    lda: usize,
    b: *const f64,
    brs: usize,
    bcs: usize,
    c: *mut f64,
    ldc: usize,
    (m0, m1): (__m256i, __m256i),
    add: bool,
    pf: &mut Prefetch,
) {
    let mut acc0 = [_mm256_setzero_pd(); NR];
    let mut acc1 = [_mm256_setzero_pd(); NR];
    // SAFETY (whole body): masked loads and stores touch only the rows the caller vouches for.
    unsafe {
        if add && FULL {
            for j in 0..NR {
                acc0[j] = _mm256_loadu_pd(c.add(j * ldc));
                acc1[j] = _mm256_loadu_pd(c.add(j * ldc + 4));
            }
        } else if add {
            for j in 0..NR {
                acc0[j] = _mm256_maskload_pd(c.add(j * ldc), m0);
                acc1[j] = _mm256_maskload_pd(c.add(j * ldc + 4), m1);
            }
        }
        for p in 0..k {
            pf.step();
            let (a0, a1) = if FULL {
                (
                    _mm256_loadu_pd(a.add(p * lda)),
                    _mm256_loadu_pd(a.add(p * lda + 4)),
                )
            } else {
                (
                    _mm256_maskload_pd(a.add(p * lda), m0),
                    _mm256_maskload_pd(a.add(p * lda + 4), m1),
                )
            };
            for j in 0..NR {
                let bj = _mm256_set1_pd(*b.add(p * brs + j * bcs));
                acc0[j] = _mm256_fmadd_pd(a0, bj, acc0[j]);
                acc1[j] = _mm256_fmadd_pd(a1, bj, acc1[j]);
            }
        }
        for j in 0..NR {
            if FULL {
                _mm256_storeu_pd(c.add(j * ldc), acc0[j]);
                _mm256_storeu_pd(c.add(j * ldc + 4), acc1[j]);
            } else {
                _mm256_maskstore_pd(c.add(j * ldc), m0, acc0[j]);
                _mm256_maskstore_pd(c.add(j * ldc + 4), m1, acc1[j]);
            }
        }
    }
}

/// `C[0..4V, 0..NC] (+)= A[0..4V, 0..k] · B[0..k, 0..NC]`: a tall broadcast-form tile of `V`
/// vectors and `NC` (one or two) columns, every entry one fused multiply-add per step as in
/// [`bc_tile`], with `V · NC` independent sums in flight instead of `2 · NC` (a tile of eight
/// rows leaves the fused multiply-adds waiting on each other when the result has one or two
/// columns).
///
/// # Safety
/// AVX2 and FMA must be available; `a + p·lda + i` (`p < k`, `i < 4V`) and `b + p·brs + j·bcs`
/// (`j < NC`) readable, `c + i + j·ldc` (`i < 4V`, `j < NC`) readable and writable.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
unsafe fn bc_tall<const V: usize, const NC: usize>(
    k: usize,
    a: *const f64,
    lda: usize,
    b: *const f64,
    brs: usize,
    bcs: usize,
    c: *mut f64,
    ldc: usize,
    add: bool,
    pf: &mut Prefetch,
) {
    let mut acc = [[_mm256_setzero_pd(); V]; NC];
    // SAFETY (whole body): the offsets stay inside the ranges the caller vouches for.
    unsafe {
        if add {
            for j in 0..NC {
                for v in 0..V {
                    acc[j][v] = _mm256_loadu_pd(c.add(j * ldc + 4 * v));
                }
            }
        }
        for p in 0..k {
            pf.step();
            let bp: [__m256d; NC] =
                std::array::from_fn(|j| _mm256_set1_pd(*b.add(p * brs + j * bcs)));
            for v in 0..V {
                let av = _mm256_loadu_pd(a.add(p * lda + 4 * v));
                for j in 0..NC {
                    acc[j][v] = _mm256_fmadd_pd(av, bp[j], acc[j][v]);
                }
            }
        }
        for j in 0..NC {
            for v in 0..V {
                _mm256_storeu_pd(c.add(j * ldc + 4 * v), acc[j][v]);
            }
        }
    }
}

/// Rows of a tall broadcast-form tile ([`bc_tall`]) of `n` columns (one or two; zero: none).
const fn tall_rows(n: usize) -> usize {
    match n {
        1 => 32,
        2 => 16,
        _ => 0,
    }
}

/// The broadcast form over a whole `m × n` result: row tiles of eight outer, column groups of
/// [`BC_NR`] inner (one or two columns: tall tiles of [`tall_rows`] rows first, then of eight).
///
/// # Safety
/// AVX2 and FMA must be available and the pointers valid for the shapes and strides given.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
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
    let tr = tall_rows(n);
    let tall = m.checked_div(tr).unwrap_or(0);
    let steps = (tall + (m - tall * tr).div_ceil(BC_MR) * n.div_ceil(BC_NR)) * k.max(1);
    let lines = (pf.end as usize).saturating_sub(pf.next as usize) / 64;
    pf.per_step = lines.div_ceil(steps);
    let mut i0 = 0;
    for _ in 0..tall {
        // SAFETY: the tile's rows and columns lie inside the result and the operands.
        unsafe {
            let (a, c) = (a.add(i0), c.add(i0));
            if n == 1 {
                bc_tall::<8, 1>(k, a, lda, b, brs, bcs, c, ldc, add, &mut pf)
            } else {
                bc_tall::<4, 2>(k, a, lda, b, brs, bcs, c, ldc, add, &mut pf)
            }
        };
        i0 += tr;
    }
    while i0 < m {
        let rows = (m - i0).min(BC_MR);
        let masks = (first_lanes(rows), first_lanes(rows.saturating_sub(4)));
        let mut j0 = 0;
        while j0 < n {
            let nr = BC_NR.min(n - j0);
            macro_rules! tile {
                ($nr:expr) => {
                    tile!($nr, true, false)
                };
                ($nr:expr, $($full:expr),+) => {
                    // SAFETY: the tile's unmasked rows and its columns lie inside the result and
                    // the operands.
                    unsafe {
                        match rows == BC_MR {
                            $($full => bc_tile::<$nr, $full>(
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
                            ),)+
                        }
                    }
                };
            }
            match nr {
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

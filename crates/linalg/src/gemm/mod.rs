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
//! Both run on AVX-512 or, with the same bits, on AVX2 with FMA (detected at run time; see
//! [`Simd`]) for narrow results ([`DOT_MAX_N`], [`BC_MAX_N`] columns; faer's packed product
//! wins beyond) and fall back to faer otherwise. The summation order of every entry is fixed by
//! the shapes alone, so results depend neither on how callers split work between threads nor
//! on which of the two vector widths the machine has.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "x86_64")]
mod x86;

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

/// The vector kernels this machine runs: AVX-512 (F, VL, DQ), else AVX2 with FMA, else none
/// (faer computes every product). The first two give the same bits: their kernels compute
/// every entry in one specified order (eight fused lane sums reduced in a fixed tree for a dot
/// product, one fused multiply-add per step for a broadcast product, the same operations for
/// `exp`), which the tests check bit for bit against scalar code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Simd {
    /// 512-bit vectors.
    Avx512,
    /// 256-bit vectors with fused multiply-add.
    Avx2,
    /// No fast path.
    None,
}

impl Simd {
    /// The kernels [`matmul`](crate::matmul) and [`exp_diff_into`](crate::exp_diff_into) use
    /// on this machine (detected at run time).
    ///
    /// # Example
    /// ```
    /// println!("vector kernels: {:?}", bilevel_linalg::Simd::detect());
    /// ```
    #[inline]
    pub fn detect() -> Simd {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx512f") && has!("avx512vl") && has!("avx512dq") {
                return Simd::Avx512;
            }
            if has!("avx2") && has!("fma") {
                return Simd::Avx2;
            }
        }
        Simd::None
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
    try_matmul_on(Simd::detect(), dst, accum, lhs, rhs, ahead)
}

/// [`try_matmul`] with the kernels of `level` (which the machine must run).
fn try_matmul_on(
    level: Simd,
    dst: &mut MatMut<'_, f64>,
    accum: Accum,
    lhs: MatRef<'_, f64>,
    rhs: MatRef<'_, f64>,
    ahead: Option<MatRef<'_, f64>>,
) -> bool {
    let (m, k, n) = (lhs.nrows(), lhs.ncols(), rhs.ncols());
    if m == 0 || n == 0 || k == 0 || level == Simd::None {
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
            && (m * k <= FAST_MAX_ENTRIES || n <= DOT_TILE_COLS)
            && k * n <= 4 * FAST_MAX_ENTRIES
            && let (Some(lda), Some(ldb)) = (stride(lhs.row_stride()), stride(rhs.col_stride()))
        {
            {
                let (a, b, c) = (lhs.as_ptr(), rhs.as_ptr(), dst.as_ptr_mut());
                // SAFETY: the kernels read `lhs` and `rhs` and write `dst` only inside their
                // shapes, through the strides read from the views; the caller's `level` runs
                // here.
                unsafe {
                    match level {
                        Simd::Avx512 => avx512::dot_form(m, n, k, a, lda, b, ldb, c, ldc, add, pf),
                        _ => avx2::dot_form(m, n, k, a, lda, b, ldb, c, ldc, add, pf),
                    }
                };
                return true;
            }
        }
        // Broadcast form: columns of `lhs` contiguous, `lhs` small enough to stream from cache,
        // a result of at most `BC_MAX_N` columns (but not two with AVX-512, whose tiles of two
        // columns faer outruns; the AVX2 kernels have a tall tile for them).
        if m >= 8
            && n <= BC_MAX_N
            && (n != 2 || level == Simd::Avx2)
            && lhs.row_stride() == 1
            && m * k <= FAST_MAX_ENTRIES
            && let (Some(lda), Some(brs), Some(bcs)) = (
                stride(lhs.col_stride()),
                stride(rhs.row_stride()),
                stride(rhs.col_stride()),
            )
        {
            {
                let (a, b, c) = (lhs.as_ptr(), rhs.as_ptr(), dst.as_ptr_mut());
                // SAFETY: as above; masked tails never touch rows past `m`.
                unsafe {
                    match level {
                        Simd::Avx512 => {
                            avx512::bc_form(m, n, k, a, lda, b, brs, bcs, c, ldc, add, pf)
                        }
                        _ => avx2::bc_form(m, n, k, a, lda, b, brs, bcs, c, ldc, add, pf),
                    }
                };
                return true;
            }
        }
    }
    let _ = (add, ldc, ahead, level);
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Mat;

    fn det(i: usize, j: usize, s: usize) -> f64 {
        ((i * 31 + j * 17 + s * 7) % 23) as f64 / 23.0 - 0.4
    }

    /// On an AVX-512 or AVX2 machine the shapes of the data problems take the fast paths (and
    /// give the naive product); elsewhere `try_matmul` declines and faer computes the product.
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
            assert_eq!(taken, Simd::detect() != Simd::None, "{m}x{k}x{n}");
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

    /// The levels this machine runs.
    fn levels() -> Vec<Simd> {
        match Simd::detect() {
            Simd::Avx512 => vec![Simd::Avx512, Simd::Avx2],
            Simd::Avx2 => vec![Simd::Avx2],
            Simd::None => vec![],
        }
    }

    /// An entry of the dot form in its specified order: eight lane sums (lane `l` takes
    /// `p ≡ l mod 8`, fused), a tail that adds `0·0` to the lanes past `k`, then the tree of
    /// `reduce_lanes`.
    fn dot_in_lane_order(a: impl Fn(usize) -> f64, b: impl Fn(usize) -> f64, k: usize) -> f64 {
        let mut lane = [0.0f64; 8];
        for p in 0..k.div_ceil(8) * 8 {
            let (x, y) = if p < k { (a(p), b(p)) } else { (0.0, 0.0) };
            lane[p % 8] = x.mul_add(y, lane[p % 8]);
        }
        let s4: [f64; 4] = std::array::from_fn(|l| lane[l] + lane[l + 4]);
        let s2 = [s4[0] + s4[2], s4[1] + s4[3]];
        s2[0] + s2[1]
    }

    /// Entries in which signed zeros, cancellations and magnitudes of every size meet.
    fn awkward(i: usize, j: usize, s: usize) -> f64 {
        match (i * 7 + j * 13 + s * 5) % 11 {
            0 => -0.0,
            1 => 0.0,
            2 => 1e16,
            3 => -1e16,
            4 => 1e-300,
            _ => det(i, j, s) * 3.7,
        }
    }

    /// Both kernels compute every entry in the specified order, bit for bit: so a product gives
    /// the same bits on an AVX2 machine as on an AVX-512 one (where both levels are checked).
    #[test]
    fn the_kernels_give_the_bits_of_the_specified_order() {
        for level in levels() {
            for (m, k, n) in [
                (1, 8, 1),
                (11, 37, 1), // the one-column tiles: 4, 4, 3 rows
                (10, 21, 1), // 4, 4, 2
                (8, 29, 2),  // the two-column tiles: 3, 3, 2 rows
                (7, 19, 2),  // 3, 3, 1
                (2, 9, 2),
                (3, 11, 3),
                (5, 12, 4),
                (7, 13, 5),
                (4, 16, 7),
                (9, 100, 13),
                (6, 101, 32),
                (3, 797, 6),
            ] {
                for add in [false, true] {
                    let xt = Mat::from_fn(k, m, |i, j| awkward(i, j, 1));
                    let w = Mat::from_fn(k, n, |i, j| awkward(i, j, 2));
                    let old = Mat::from_fn(m, n, |i, j| awkward(i, j, 3));
                    let mut c = old.clone();
                    let accum = if add { Accum::Add } else { Accum::Replace };
                    let lhs = xt.transpose();
                    let taken = try_matmul_on(level, &mut c.as_mut(), accum, lhs, w.as_ref(), None);
                    assert!(taken, "{level:?} dot form {m}x{k}x{n}");
                    for i in 0..m {
                        for j in 0..n {
                            let s = dot_in_lane_order(|p| xt[(p, i)], |p| w[(p, j)], k);
                            let want = if add { old[(i, j)] + s } else { s };
                            assert_eq!(
                                c[(i, j)].to_bits(),
                                want.to_bits(),
                                "{level:?} dot form {m}x{k}x{n} add={add} ({i}, {j})"
                            );
                        }
                    }
                }
            }
            for (m, k, n) in [
                (8, 1, 1),
                (70, 9, 1), // two 32-row one-column tiles, then 6 rows
                (64, 33, 1),
                (9, 3, 3),
                (15, 7, 5),
                (16, 10, 6),
                (21, 33, 11),
                (40, 5, 64),
                (16, 4, 2),  // one tall two-column tile (AVX2)
                (35, 17, 2), // two tall tiles, then three rows
                (64, 9, 1),  // two tall one-column tiles
            ] {
                if n == 2 && level == Simd::Avx512 {
                    continue; // faer's product (see `try_matmul_on`)
                }
                for add in [false, true] {
                    let x = Mat::from_fn(m, k, |i, j| awkward(i, j, 4));
                    let g = Mat::from_fn(k, n, |i, j| awkward(i, j, 5));
                    let old = Mat::from_fn(m, n, |i, j| awkward(i, j, 6));
                    let mut c = old.clone();
                    let accum = if add { Accum::Add } else { Accum::Replace };
                    let taken =
                        try_matmul_on(level, &mut c.as_mut(), accum, x.as_ref(), g.as_ref(), None);
                    assert!(taken, "{level:?} broadcast form {m}x{k}x{n}");
                    for i in 0..m {
                        for j in 0..n {
                            let start = if add { old[(i, j)] } else { 0.0 };
                            let want = (0..k).fold(start, |s, p| x[(i, p)].mul_add(g[(p, j)], s));
                            assert_eq!(
                                c[(i, j)].to_bits(),
                                want.to_bits(),
                                "{level:?} broadcast form {m}x{k}x{n} add={add} ({i}, {j})"
                            );
                        }
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

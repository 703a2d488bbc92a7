//! Matrix products with explicit parallelism and a sequential fallback for small sizes.

use crate::{Accum, MatMut, MatRef, Par};

/// Products with fewer multiply-adds than this run sequentially whatever [`Par`] is asked for.
///
/// Waking a thread pool costs a few microseconds; a product of `m·n·k < 2¹⁸` multiply-adds takes
/// about as long sequentially.
pub const PAR_MIN_FLOPS: usize = 1 << 18;

/// The parallelism a kernel of `flops` multiply-adds actually uses when `par` is asked for.
#[inline]
pub fn effective_par(par: Par, flops: usize) -> Par {
    if flops < PAR_MIN_FLOPS { Par::Seq } else { par }
}

/// `dst ← alpha · lhs · rhs` ([`Accum::Replace`]) or `dst ← dst + alpha · lhs · rhs`
/// ([`Accum::Add`]).
///
/// Transposed operands are passed as views (`a.transpose()`), which costs nothing.
///
/// # Panics
/// If the shapes do not agree: `dst` must be `lhs.nrows() × rhs.ncols()` and
/// `lhs.ncols() == rhs.nrows()`. The message names all three shapes.
///
/// # Example
/// ```
/// use bilevel_linalg::{matmul, Accum, Mat, Par};
/// let a = Mat::from_fn(2, 3, |i, j| (i + j) as f64);
/// let b = Mat::from_fn(3, 1, |i, _| i as f64);
/// let mut c = Mat::zeros(2, 1);
/// matmul(c.as_mut(), Accum::Replace, a.as_ref(), b.as_ref(), 1.0, Par::Seq);
/// assert_eq!(c[(0, 0)], 0.0 * 0.0 + 1.0 * 1.0 + 2.0 * 2.0);
/// ```
#[track_caller]
#[inline]
pub fn matmul(
    dst: MatMut<'_, f64>,
    accum: Accum,
    lhs: MatRef<'_, f64>,
    rhs: MatRef<'_, f64>,
    alpha: f64,
    par: Par,
) {
    assert_product_shapes(&dst, lhs, rhs);
    let mut dst = dst;
    if alpha == 1.0 && crate::gemm::try_matmul(&mut dst, accum, lhs, rhs, None) {
        return;
    }
    let flops = lhs.nrows() * lhs.ncols() * rhs.ncols();
    faer::linalg::matmul::matmul(dst, accum, lhs, rhs, alpha, effective_par(par, flops));
    clear_upper_simd_state();
}

/// [`matmul`] with `alpha = 1` on the calling thread that, while it computes, brings the memory
/// of `ahead` (if any) into the second-level cache: the next block of a data matrix streamed
/// block by block, so that its first product reads from cache instead of waiting on memory.
/// Same result as [`matmul`] (prefetching changes no arithmetic); without a fast path for the
/// shapes, no prefetch is issued.
///
/// # Panics
/// As [`matmul`].
#[track_caller]
pub fn matmul_ahead(
    dst: MatMut<'_, f64>,
    accum: Accum,
    lhs: MatRef<'_, f64>,
    rhs: MatRef<'_, f64>,
    ahead: Option<MatRef<'_, f64>>,
) {
    assert_product_shapes(&dst, lhs, rhs);
    let mut dst = dst;
    if crate::gemm::try_matmul(&mut dst, accum, lhs, rhs, ahead) {
        return;
    }
    matmul(dst, accum, lhs, rhs, 1.0, Par::Seq);
}

/// Panics unless `dst` is `lhs.nrows() × rhs.ncols()` and `lhs.ncols() == rhs.nrows()`, naming
/// the three shapes.
#[track_caller]
#[inline]
fn assert_product_shapes(dst: &MatMut<'_, f64>, lhs: MatRef<'_, f64>, rhs: MatRef<'_, f64>) {
    assert!(
        dst.nrows() == lhs.nrows() && dst.ncols() == rhs.ncols() && lhs.ncols() == rhs.nrows(),
        "matmul shape mismatch: dst {}x{}, lhs {}x{}, rhs {}x{}",
        dst.nrows(),
        dst.ncols(),
        lhs.nrows(),
        lhs.ncols(),
        rhs.nrows(),
        rhs.ncols()
    );
}

/// Leave the CPU's wide-vector state clean after a faer kernel.
///
/// faer's AVX-512 matrix-product kernels can return with the upper halves of the vector
/// registers dirty. Until a `vzeroupper`, every legacy-SSE instruction that follows (the
/// scalar `exp`, `ln`, ... of the C maths library, and any code compiled for the baseline
/// x86-64 target) pays a state-transition penalty: measured here, 50,000 calls of `f64::exp`
/// took 0.2 ms before a product and 6 ms after one. Clearing the state costs one instruction.
#[inline]
pub fn clear_upper_simd_state() {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: the `avx` feature was detected at run time, which is what
            // `_mm256_zeroupper` requires. All vector registers are caller-saved, so zeroing
            // their upper halves cannot disturb any value the compiler keeps live across the call.
            unsafe { zeroupper() }
        }
    }
}

/// Clears the wide-vector state when dropped: put one at the top of a function that calls faer
/// kernels, and every return path leaves the state clean (see [`clear_upper_simd_state`]).
pub(crate) struct CleanSimdOnDrop;

impl Drop for CleanSimdOnDrop {
    fn drop(&mut self) {
        clear_upper_simd_state();
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn zeroupper() {
    std::arch::x86_64::_mm256_zeroupper();
}

/// `dst ← alpha · a · x` ([`Accum::Replace`]) or `dst ← dst + alpha · a · x` ([`Accum::Add`]),
/// for a column vector `x` (`n × 1`).
///
/// The same kernel as [`matmul`], with the vector shape checked.
///
/// # Panics
/// If `x` or `dst` is not a single column, or the shapes do not agree (`a` is `m × n`, `x` must
/// be `n × 1`, `dst` must be `m × 1`).
///
/// # Example
/// ```
/// use bilevel_linalg::{matvec, Accum, Mat, Par};
/// let a = Mat::from_fn(2, 2, |i, j| if i == j { 2.0 } else { 0.0 });
/// let x = Mat::from_fn(2, 1, |i, _| i as f64 + 1.0);
/// let mut y = Mat::zeros(2, 1);
/// matvec(y.as_mut(), Accum::Replace, a.as_ref(), x.as_ref(), 1.0, Par::Seq);
/// assert_eq!((y[(0, 0)], y[(1, 0)]), (2.0, 4.0));
/// ```
#[track_caller]
#[inline]
pub fn matvec(
    dst: MatMut<'_, f64>,
    accum: Accum,
    a: MatRef<'_, f64>,
    x: MatRef<'_, f64>,
    alpha: f64,
    par: Par,
) {
    assert!(
        x.ncols() == 1 && dst.ncols() == 1,
        "matvec expects column vectors: x {}x{}, dst {}x{}",
        x.nrows(),
        x.ncols(),
        dst.nrows(),
        dst.ncols()
    );
    matmul(dst, accum, a, x, alpha, par);
}

#[track_caller]
#[inline]
fn assert_same_shape(op: &str, a: (usize, usize), b: (usize, usize)) {
    assert!(
        a == b,
        "{op} shape mismatch: {}x{} vs {}x{}",
        a.0,
        a.1,
        b.0,
        b.1
    );
}

/// Frobenius inner product `Σᵢⱼ aᵢⱼ bᵢⱼ` (the dot product for `n × 1` vectors).
///
/// Level-1 kernels ([`dot`], [`axpy`], [`axpby`], [`scale`], the norms and the maps) are
/// memory-bound and always run sequentially: on the sizes of this workspace a thread pool would
/// cost more than it saves. They take no [`Par`].
///
/// The sum runs in one fixed order on every machine (eight running sums, entry `i` into sum
/// `i mod 8`, added pairwise at the end; plain multiplies and adds), where a kernel that
/// picks its vector width at run time would give other bits on an AVX2 machine than on an
/// AVX-512 one, and a conjugate-gradient solve built on it another iterate.
///
/// # Panics
/// If `a` and `b` have different shapes.
///
/// # Example
/// ```
/// use bilevel_linalg::{dot, Mat};
/// let a = Mat::from_fn(3, 1, |i, _| i as f64);
/// assert_eq!(dot(a.as_ref(), a.as_ref()), 5.0);
/// ```
#[track_caller]
#[inline]
pub fn dot(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> f64 {
    assert_same_shape("dot", a.shape(), b.shape());
    let n = a.nrows();
    let mut acc = 0.0;
    for j in 0..a.ncols() {
        let (a, b) = (a.col(j), b.col(j));
        acc += match (a.try_as_col_major(), b.try_as_col_major()) {
            (Some(a), Some(b)) => {
                let (a, b) = (a.as_slice(), b.as_slice());
                lane_sum(n, |i| a[i] * b[i])
            }
            _ => lane_sum(n, |i| a[i] * b[i]),
        };
    }
    acc
}

/// `Σᵢ term(i)` for `i < n` in a fixed order: eight running sums (term `i` into sum `i mod 8`,
/// in increasing `i`), then `((s₀ + s₄) + (s₂ + s₆)) + ((s₁ + s₅) + (s₃ + s₇))`. Plain adds, no
/// fused multiply-add and no lane width chosen at run time, so the same bits on every machine;
/// the eight independent sums still vectorize.
#[inline]
fn lane_sum(n: usize, term: impl Fn(usize) -> f64) -> f64 {
    let mut s = [0.0f64; 8];
    let full = n / 8 * 8;
    let mut i = 0;
    while i < full {
        for (l, sl) in s.iter_mut().enumerate() {
            *sl += term(i + l);
        }
        i += 8;
    }
    for (l, sl) in s.iter_mut().enumerate().take(n - full) {
        *sl += term(full + l);
    }
    ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]))
}

/// `y ← y + alpha · x`.
///
/// # Panics
/// If `x` and `y` have different shapes.
///
/// # Example
/// ```
/// use bilevel_linalg::{axpy, Mat};
/// let x = Mat::from_fn(2, 1, |_, _| 1.0);
/// let mut y = Mat::from_fn(2, 1, |i, _| i as f64);
/// axpy(2.0, x.as_ref(), y.as_mut());
/// assert_eq!((y[(0, 0)], y[(1, 0)]), (2.0, 3.0));
/// ```
#[track_caller]
#[inline]
pub fn axpy(alpha: f64, x: MatRef<'_, f64>, y: MatMut<'_, f64>) {
    assert_same_shape("axpy", x.shape(), y.shape());
    faer::zip!(y, x).for_each(|faer::unzip!(y, x)| *y += alpha * *x);
}

/// `y ← alpha · x + beta · y`.
///
/// # Panics
/// If `x` and `y` have different shapes.
///
/// # Example
/// ```
/// use bilevel_linalg::{axpby, Mat};
/// let x = Mat::from_fn(2, 1, |_, _| 1.0);
/// let mut y = Mat::from_fn(2, 1, |i, _| i as f64);
/// axpby(2.0, x.as_ref(), 3.0, y.as_mut());
/// assert_eq!((y[(0, 0)], y[(1, 0)]), (2.0, 5.0));
/// ```
#[track_caller]
#[inline]
pub fn axpby(alpha: f64, x: MatRef<'_, f64>, beta: f64, y: MatMut<'_, f64>) {
    assert_same_shape("axpby", x.shape(), y.shape());
    faer::zip!(y, x).for_each(|faer::unzip!(y, x)| *y = alpha * *x + beta * *y);
}

/// `x ← alpha · x`.
///
/// # Example
/// ```
/// use bilevel_linalg::{scale, Mat};
/// let mut x = Mat::from_fn(2, 1, |i, _| i as f64);
/// scale(3.0, x.as_mut());
/// assert_eq!(x[(1, 0)], 3.0);
/// ```
#[inline]
pub fn scale(alpha: f64, x: MatMut<'_, f64>) {
    faer::zip!(x).for_each(|faer::unzip!(x)| *x *= alpha);
}

/// Euclidean (Frobenius) norm `√Σ aᵢⱼ²`: the square root of [`norm_l2_sqr`] (the same bits on
/// every machine), or, where the sum of squares overflows or underflows, faer's scaled norm.
///
/// # Example
/// ```
/// use bilevel_linalg::{norm_l2, Mat};
/// let a = Mat::from_fn(2, 1, |i, _| if i == 0 { 3.0 } else { 4.0 });
/// assert_eq!(norm_l2(a.as_ref()), 5.0);
/// ```
#[inline]
pub fn norm_l2(a: MatRef<'_, f64>) -> f64 {
    let ss = norm_l2_sqr(a);
    if ss.is_finite() && (ss > 1e-280 || ss == 0.0 && norm_max(a) == 0.0) {
        ss.sqrt()
    } else {
        let n = a.norm_l2();
        clear_upper_simd_state();
        n
    }
}

/// Squared Euclidean (Frobenius) norm `Σ aᵢⱼ²`, summed in the order of [`dot`].
///
/// # Example
/// ```
/// use bilevel_linalg::{norm_l2_sqr, Mat};
/// let a = Mat::from_fn(2, 1, |i, _| if i == 0 { 3.0 } else { 4.0 });
/// assert_eq!(norm_l2_sqr(a.as_ref()), 25.0);
/// ```
#[inline]
pub fn norm_l2_sqr(a: MatRef<'_, f64>) -> f64 {
    dot(a, a)
}

/// Largest absolute entry `maxᵢⱼ |aᵢⱼ|` (`0` for an empty matrix).
///
/// # Example
/// ```
/// use bilevel_linalg::{norm_max, Mat};
/// let a = Mat::from_fn(2, 1, |i, _| if i == 0 { 3.0 } else { -4.0 });
/// assert_eq!(norm_max(a.as_ref()), 4.0);
/// ```
#[inline]
pub fn norm_max(a: MatRef<'_, f64>) -> f64 {
    a.norm_max()
}

/// `true` if no entry of `a` is NaN or infinite.
///
/// # Example
/// ```
/// use bilevel_linalg::{all_finite, Mat};
/// let mut a = Mat::<f64>::zeros(2, 2);
/// assert!(all_finite(a.as_ref()));
/// a[(1, 0)] = f64::NAN;
/// assert!(!all_finite(a.as_ref()));
/// ```
#[inline]
pub fn all_finite(a: MatRef<'_, f64>) -> bool {
    let mut ok = true;
    faer::zip!(a).for_each(|faer::unzip!(a)| ok &= a.is_finite());
    ok
}

/// `dst[i, j] ← f(src[i, j])`.
///
/// # Panics
/// If `dst` and `src` have different shapes.
///
/// # Example
/// ```
/// use bilevel_linalg::{map, Mat};
/// let x = Mat::from_fn(2, 1, |i, _| i as f64);
/// let mut y = Mat::zeros(2, 1);
/// map(y.as_mut(), x.as_ref(), |v| v.exp());
/// assert_eq!(y[(0, 0)], 1.0);
/// ```
#[track_caller]
#[inline]
pub fn map(dst: MatMut<'_, f64>, src: MatRef<'_, f64>, f: impl Fn(f64) -> f64) {
    assert_same_shape("map", dst.shape(), src.shape());
    faer::zip!(dst, src).for_each(|faer::unzip!(d, s)| *d = f(*s));
}

/// `x[i, j] ← f(x[i, j])`.
///
/// # Example
/// ```
/// use bilevel_linalg::{map_inplace, Mat};
/// let mut x = Mat::from_fn(2, 1, |i, _| i as f64 - 1.0);
/// map_inplace(x.as_mut(), |v| v.max(0.0));
/// assert_eq!(x[(0, 0)], 0.0);
/// ```
#[inline]
pub fn map_inplace(x: MatMut<'_, f64>, f: impl Fn(f64) -> f64) {
    faer::zip!(x).for_each(|faer::unzip!(x)| *x = f(*x));
}

/// `dst[i, j] ← f(a[i, j], b[i, j])`.
///
/// # Panics
/// If the three shapes differ.
///
/// # Example
/// ```
/// use bilevel_linalg::{zip_map, Mat};
/// let a = Mat::from_fn(2, 1, |i, _| i as f64);
/// let b = Mat::from_fn(2, 1, |_, _| 2.0);
/// let mut c = Mat::zeros(2, 1);
/// zip_map(c.as_mut(), a.as_ref(), b.as_ref(), |x, y| x * y);
/// assert_eq!(c[(1, 0)], 2.0);
/// ```
#[track_caller]
#[inline]
pub fn zip_map(
    dst: MatMut<'_, f64>,
    a: MatRef<'_, f64>,
    b: MatRef<'_, f64>,
    f: impl Fn(f64, f64) -> f64,
) {
    assert_same_shape("zip_map", dst.shape(), a.shape());
    assert_same_shape("zip_map", a.shape(), b.shape());
    faer::zip!(dst, a, b).for_each(|faer::unzip!(d, a, b)| *d = f(*a, *b));
}

/// The entries of `m` as one column-major slice, when they are stored contiguously (unit row
/// stride, and a column stride equal to the row count unless there is at most one column).
/// faer pads the columns of an owned matrix whose row count is not a multiple of its SIMD width,
/// and such a matrix is not contiguous; nor is a strided view.
///
/// # Example
/// ```
/// use bilevel_linalg::{as_contiguous_slice, Mat};
/// let m = Mat::from_fn(8, 2, |i, j| (i + 8 * j) as f64);
/// let s = as_contiguous_slice(m.as_ref()).unwrap();
/// assert_eq!(s[9], 9.0); // entry (1, 1)
/// assert!(as_contiguous_slice(m.as_ref().transpose()).is_none());
/// ```
pub fn as_contiguous_slice(m: MatRef<'_, f64>) -> Option<&[f64]> {
    let (r, c) = (m.nrows(), m.ncols());
    let unit_rows = m.row_stride() == 1 || r <= 1;
    let packed_cols = c <= 1 || m.col_stride() == r as isize;
    if !(unit_rows && packed_cols) {
        return None;
    }
    if r == 0 || c == 0 {
        return Some(&[]);
    }
    // SAFETY: with unit row stride and a column stride equal to the row count (or a single
    // column), entry (i, j) lives at `ptr + i + j·r`, so the `r·c` entries of the view are the
    // contiguous range starting at `ptr`, valid and immutable for the view's lifetime `'_`.
    Some(unsafe { std::slice::from_raw_parts(m.as_ptr(), r * c) })
}

/// Views the `n × 1` vector `v` (with unit row stride, as every owned [`Mat`](crate::Mat)
/// column is) as a column-major `nrows × ncols` matrix, without copying: the inverse of
/// flattening a matrix parameter into the workspace's vector convention.
///
/// # Panics
/// If `v` is not a single column, is not contiguous, or `nrows · ncols != v.nrows()`.
///
/// # Example
/// ```
/// use bilevel_linalg::{reshape_col, Mat};
/// let v = Mat::from_fn(6, 1, |i, _| i as f64);
/// let m = reshape_col(v.as_ref(), 2, 3);
/// assert_eq!(m[(1, 2)], 5.0); // column-major: entry (1, 2) is v[1 + 2·2]
/// ```
#[track_caller]
pub fn reshape_col(v: MatRef<'_, f64>, nrows: usize, ncols: usize) -> MatRef<'_, f64> {
    assert!(
        v.ncols() == 1 && v.nrows() == nrows * ncols,
        "reshape_col: cannot view a {}x{} matrix as {nrows}x{ncols} (expected a {}x1 vector)",
        v.nrows(),
        v.ncols(),
        nrows * ncols
    );
    let col = v.col(0).try_as_col_major().unwrap_or_else(|| {
        panic!(
            "reshape_col: the vector is not contiguous (row stride {})",
            v.row_stride()
        )
    });
    MatRef::from_column_major_slice(col.as_slice(), nrows, ncols)
}

/// Mutable counterpart of [`reshape_col`].
///
/// # Panics
/// As [`reshape_col`].
///
/// # Example
/// ```
/// use bilevel_linalg::{reshape_col_mut, Mat};
/// let mut v = Mat::<f64>::zeros(6, 1);
/// reshape_col_mut(v.as_mut(), 3, 2)[(2, 1)] = 1.0;
/// assert_eq!(v[(5, 0)], 1.0);
/// ```
#[track_caller]
pub fn reshape_col_mut(v: MatMut<'_, f64>, nrows: usize, ncols: usize) -> MatMut<'_, f64> {
    assert!(
        v.ncols() == 1 && v.nrows() == nrows * ncols,
        "reshape_col_mut: cannot view a {}x{} matrix as {nrows}x{ncols} (expected a {}x1 vector)",
        v.nrows(),
        v.ncols(),
        nrows * ncols
    );
    let stride = v.row_stride();
    let col = v.col_mut(0).try_as_col_major_mut().unwrap_or_else(|| {
        panic!("reshape_col_mut: the vector is not contiguous (row stride {stride})")
    });
    MatMut::from_column_major_slice_mut(col.as_slice_mut(), nrows, ncols)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Mat;

    /// `dot` sums in the order [`lane_sum`] specifies, for contiguous and strided operands
    /// alike: the bits are those of the scalar sum written out, on any machine.
    #[test]
    fn dot_sums_in_its_fixed_order() {
        let v = |i: usize, s: usize| match (i * 7 + s) % 5 {
            0 => 1e16,
            1 => -1e16,
            _ => ((i * 31 + s * 17) % 23) as f64 / 7.0 - 1.3,
        };
        for n in [0, 1, 7, 8, 9, 15, 16, 17, 100, 1001] {
            let a = Mat::from_fn(n, 1, |i, _| v(i, 1));
            let b = Mat::from_fn(n, 1, |i, _| v(i, 2));
            let mut s = [0.0f64; 8];
            for i in 0..n {
                s[i % 8] += a[(i, 0)] * b[(i, 0)];
            }
            let want = ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
            assert_eq!(
                dot(a.as_ref(), b.as_ref()).to_bits(),
                want.to_bits(),
                "n = {n}"
            );
            // A row of a matrix (stride n) gives the same bits as the column.
            let at = a.transpose().to_owned();
            let bt = b.transpose().to_owned();
            let strided = dot(at.as_ref().transpose(), bt.as_ref().transpose());
            assert_eq!(strided.to_bits(), want.to_bits(), "strided, n = {n}");
        }
    }

    /// The norm neither overflows nor underflows where its square would.
    #[test]
    fn norm_survives_huge_and_tiny_entries() {
        for scale in [1e200, 1e-200, 1.0] {
            let a = Mat::from_fn(2, 1, |i, _| scale * if i == 0 { 3.0 } else { 4.0 });
            let n = norm_l2(a.as_ref());
            assert!((n / (5.0 * scale) - 1.0).abs() < 1e-15, "{n:e}");
        }
        assert_eq!(norm_l2(Mat::<f64>::zeros(3, 1).as_ref()), 0.0);
    }
}

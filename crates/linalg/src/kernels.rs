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
    let flops = lhs.nrows() * lhs.ncols() * rhs.ncols();
    faer::linalg::matmul::matmul(dst, accum, lhs, rhs, alpha, effective_par(par, flops));
}

//! Reductions and broadcasts: sum of all entries, per-row and per-column sums, sum of squares,
//! dot product, and the row broadcast `a + 1·bᵀ` (a bias added to every row).
//!
//! Sums and the broadcast are linear: JVP = the operation on tangents, VJP = its adjoint
//! (a broadcast of `ȳ`, or a sum of it), VJP tangent = the VJP applied to `ȳ̇`.
//! The sum of squares and the dot product are quadratic:
//!
//! - sum of squares `y = Σ a²`: `ẏ = 2⟨a, ȧ⟩`, `ā += 2ȳ a`, `ā̇ += 2ȳ̇ a + 2ȳ ȧ`
//! - dot `y = ⟨a, b⟩`: `ẏ = ⟨ȧ, b⟩ + ⟨a, ḃ⟩`, `ā += ȳ b`, `ā̇ += ȳ̇ b + ȳ ḃ` (and symmetrically)

use super::arith::dot;

/// Sum of all entries.
pub(crate) fn sum(a: &[f64]) -> f64 {
    // Pairwise-free but fixed-order: four lanes, then the tail.
    let mut acc = [0.0; 4];
    let n4 = a.len() / 4 * 4;
    for c in a[..n4].chunks_exact(4) {
        for k in 0..4 {
            acc[k] += c[k];
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for &x in &a[n4..] {
        s += x;
    }
    s
}

/// Sum of squares.
pub(crate) fn sum_sq(a: &[f64]) -> f64 {
    dot(a, a)
}

/// Per-row sums of a column-major `rows × cols` tensor: `out[i] = Σ_j a[i, j]`.
pub(crate) fn sum_rows(a: &[f64], rows: usize, out: &mut [f64]) {
    out.copy_from_slice(&a[..rows]);
    for c in a[rows..].chunks_exact(rows) {
        for (o, &x) in out.iter_mut().zip(c) {
            *o += x;
        }
    }
}

/// Per-column sums: `out[j] = Σ_i a[i, j]`.
pub(crate) fn sum_cols(a: &[f64], rows: usize, out: &mut [f64]) {
    for (o, c) in out.iter_mut().zip(a.chunks_exact(rows)) {
        *o = sum(c);
    }
}

/// Adjoint of [`sum_rows`]: `ā[i, j] += ȳ[i]`.
pub(crate) fn sum_rows_adjoint(ybar: &[f64], rows: usize, abar: &mut [f64]) {
    for c in abar.chunks_exact_mut(rows) {
        for (o, &y) in c.iter_mut().zip(ybar) {
            *o += y;
        }
    }
}

/// Adjoint of [`sum_cols`]: `ā[i, j] += ȳ[j]`.
pub(crate) fn sum_cols_adjoint(ybar: &[f64], rows: usize, abar: &mut [f64]) {
    for (c, &y) in abar.chunks_exact_mut(rows).zip(ybar) {
        for o in c {
            *o += y;
        }
    }
}

/// Row broadcast `out[i, j] = a[i, j] + b[j]`.
pub(crate) fn add_row(a: &[f64], b: &[f64], rows: usize, out: &mut [f64]) {
    for ((oc, ac), &bj) in out.chunks_exact_mut(rows).zip(a.chunks_exact(rows)).zip(b) {
        for (o, &x) in oc.iter_mut().zip(ac) {
            *o = x + bj;
        }
    }
}

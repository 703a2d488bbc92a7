//! Shape operations: a rectangular slice, vertical concatenation, reshape and a gather of rows
//! by index.
//!
//! All four only move entries, so they are linear: JVP = the same move on tangents, VJP = the
//! reverse move accumulated into the input adjoint, VJP tangent = the VJP applied to `ȳ̇`.
//! Reshape keeps the column-major order of the entries, as `numpy.reshape(order='F')` does.

/// Copy the block at `(r0, c0)` of size `rows × cols` out of a column-major `ar`-row tensor.
pub(crate) fn slice(a: &[f64], ar: usize, r0: usize, c0: usize, rows: usize, out: &mut [f64]) {
    for (k, oc) in out.chunks_exact_mut(rows).enumerate() {
        let s = (c0 + k) * ar + r0;
        oc.copy_from_slice(&a[s..s + rows]);
    }
}

/// Adjoint of [`slice`]: add `ȳ` into the block of `ā`.
pub(crate) fn slice_adjoint(
    ybar: &[f64],
    ar: usize,
    r0: usize,
    c0: usize,
    rows: usize,
    abar: &mut [f64],
) {
    for (k, yc) in ybar.chunks_exact(rows).enumerate() {
        let s = (c0 + k) * ar + r0;
        for (o, &y) in abar[s..s + rows].iter_mut().zip(yc) {
            *o += y;
        }
    }
}

/// `out = [a; b]`, with `a` of `ra` rows and `b` of `rb` rows and the same number of columns;
/// a missing block is zero (a tangent of a constant).
pub(crate) fn concat_rows(
    a: Option<&[f64]>,
    ra: usize,
    b: Option<&[f64]>,
    rb: usize,
    out: &mut [f64],
) {
    for (j, oc) in out.chunks_exact_mut(ra + rb).enumerate() {
        match a {
            Some(a) => oc[..ra].copy_from_slice(&a[j * ra..(j + 1) * ra]),
            None => oc[..ra].fill(0.0),
        }
        match b {
            Some(b) => oc[ra..].copy_from_slice(&b[j * rb..(j + 1) * rb]),
            None => oc[ra..].fill(0.0),
        }
    }
}

/// Adjoint of [`concat_rows`] into the top (`top = true`, rows `0..ra`) or bottom block.
pub(crate) fn concat_rows_adjoint(ybar: &[f64], ra: usize, rb: usize, top: bool, xbar: &mut [f64]) {
    let (start, len) = if top { (0, ra) } else { (ra, rb) };
    for (yc, xc) in ybar.chunks_exact(ra + rb).zip(xbar.chunks_exact_mut(len)) {
        for (o, &y) in xc.iter_mut().zip(&yc[start..start + len]) {
            *o += y;
        }
    }
}

/// `out[i, ·] = a[rows[i], ·]` for a column-major `ar`-row tensor `a`.
pub(crate) fn gather_rows(a: &[f64], ar: usize, rows: &[u32], out: &mut [f64]) {
    for (ac, oc) in a.chunks_exact(ar).zip(out.chunks_exact_mut(rows.len())) {
        for (o, &i) in oc.iter_mut().zip(rows) {
            *o = ac[i as usize];
        }
    }
}

/// Adjoint of [`gather_rows`]: add row `i` of `ȳ` into row `rows[i]` of `ā` (a repeated index
/// accumulates).
pub(crate) fn gather_rows_adjoint(ybar: &[f64], ar: usize, rows: &[u32], abar: &mut [f64]) {
    for (yc, ac) in ybar.chunks_exact(rows.len()).zip(abar.chunks_exact_mut(ar)) {
        for (&y, &i) in yc.iter().zip(rows) {
            ac[i as usize] += y;
        }
    }
}

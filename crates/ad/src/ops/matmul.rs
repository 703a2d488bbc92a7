//! Matrix product `C = op(A) · op(B)`, where `op` is the identity or the transpose.
//!
//! - JVP: `Ċ = op(Ȧ) op(B) + op(A) op(Ḃ)`
//! - VJP: `Ā_eff += C̄ op(B)ᵀ`, `B̄_eff += op(A)ᵀ C̄`
//! - VJP tangent: `Ā̇_eff += C̄̇ op(B)ᵀ + C̄ op(Ḃ)ᵀ`, `B̄̇_eff += op(A)ᵀ C̄̇ + op(Ȧ)ᵀ C̄`
//!
//! where `X_eff` is the stored adjoint seen through the same `op` as its operand (a transposed
//! view, which costs nothing). Each rule is one or two calls of the [`bilevel_linalg::matmul`]
//! kernel accumulating in place, so no temporary is formed.

use bilevel_linalg::{Accum, MatMut, MatRef, Par, matmul};

#[inline]
fn op(m: MatRef<'_, f64>, t: bool) -> MatRef<'_, f64> {
    if t { m.transpose() } else { m }
}

#[inline]
fn op_mut(m: MatMut<'_, f64>, t: bool) -> MatMut<'_, f64> {
    if t { m.transpose_mut() } else { m }
}

/// Value: `out = op(a) op(b)`.
pub(crate) fn forward(
    a: MatRef<'_, f64>,
    ta: bool,
    b: MatRef<'_, f64>,
    tb: bool,
    out: MatMut<'_, f64>,
    par: Par,
) {
    matmul(out, Accum::Replace, op(a, ta), op(b, tb), 1.0, par);
}

/// Operands of one product: values, transposition flags and (optional) tangents.
#[derive(Clone, Copy)]
pub(crate) struct Operands<'a> {
    pub a: MatRef<'a, f64>,
    pub ta: bool,
    pub da: Option<MatRef<'a, f64>>,
    pub b: MatRef<'a, f64>,
    pub tb: bool,
    pub db: Option<MatRef<'a, f64>>,
}

/// JVP: `dy = op(ȧ) op(b) + op(a) op(ḃ)`; a missing tangent is zero.
pub(crate) fn tangent(o: Operands<'_>, mut dy: MatMut<'_, f64>, par: Par) {
    let mut accum = Accum::Replace;
    if let Some(da) = o.da {
        matmul(dy.as_mut(), accum, op(da, o.ta), op(o.b, o.tb), 1.0, par);
        accum = Accum::Add;
    }
    if let Some(db) = o.db {
        matmul(dy.as_mut(), accum, op(o.a, o.ta), op(db, o.tb), 1.0, par);
        accum = Accum::Add;
    }
    if accum == Accum::Replace {
        dy.fill(0.0);
    }
}

/// VJP into the stored adjoint of `a`.
pub(crate) fn vjp_a(o: Operands<'_>, ybar: MatRef<'_, f64>, abar: MatMut<'_, f64>, par: Par) {
    matmul(
        op_mut(abar, o.ta),
        Accum::Add,
        ybar,
        op(o.b, o.tb).transpose(),
        1.0,
        par,
    );
}

/// VJP into the stored adjoint of `b`.
pub(crate) fn vjp_b(o: Operands<'_>, ybar: MatRef<'_, f64>, bbar: MatMut<'_, f64>, par: Par) {
    matmul(
        op_mut(bbar, o.tb),
        Accum::Add,
        op(o.a, o.ta).transpose(),
        ybar,
        1.0,
        par,
    );
}

/// VJP tangent into the stored adjoint tangent of `a`.
pub(crate) fn vjp_tangent_a(
    o: Operands<'_>,
    ybar: MatRef<'_, f64>,
    dybar: MatRef<'_, f64>,
    dabar: MatMut<'_, f64>,
    par: Par,
) {
    let mut d = op_mut(dabar, o.ta);
    matmul(
        d.as_mut(),
        Accum::Add,
        dybar,
        op(o.b, o.tb).transpose(),
        1.0,
        par,
    );
    if let Some(db) = o.db {
        matmul(d, Accum::Add, ybar, op(db, o.tb).transpose(), 1.0, par);
    }
}

/// VJP tangent into the stored adjoint tangent of `b`.
pub(crate) fn vjp_tangent_b(
    o: Operands<'_>,
    ybar: MatRef<'_, f64>,
    dybar: MatRef<'_, f64>,
    dbbar: MatMut<'_, f64>,
    par: Par,
) {
    let mut d = op_mut(dbbar, o.tb);
    matmul(
        d.as_mut(),
        Accum::Add,
        op(o.a, o.ta).transpose(),
        dybar,
        1.0,
        par,
    );
    if let Some(da) = o.da {
        matmul(d, Accum::Add, op(da, o.ta).transpose(), ybar, 1.0, par);
    }
}

/// Value and tangent together when `a` is constant: one product `op(a)·[op(b) op(ḃ)]`
/// reads `a` once for both. `pair` holds `(k + m)·2n` entries for the packed right-hand side
/// and the result; `y` and `dy` receive the two halves.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward_paired(
    a: MatRef<'_, f64>,
    ta: bool,
    b: MatRef<'_, f64>,
    db: MatRef<'_, f64>,
    tb: bool,
    y: &mut [f64],
    dy: &mut [f64],
    pair: &mut [f64],
    par: Par,
) {
    let oa = op(a, ta);
    let (ob, odb) = (op(b, tb), op(db, tb));
    let (m, k, n) = (oa.nrows(), oa.ncols(), ob.ncols());
    let (rhs, res) = pair[..2 * n * (k + m)].split_at_mut(2 * k * n);
    let mut rhs = MatMut::from_column_major_slice_mut(rhs, k, 2 * n);
    rhs.as_mut().subcols_mut(0, n).copy_from(ob);
    rhs.as_mut().subcols_mut(n, n).copy_from(odb);
    let res_m = MatMut::from_column_major_slice_mut(res, m, 2 * n);
    matmul(res_m, Accum::Replace, oa, rhs.as_ref(), 1.0, par);
    y.copy_from_slice(&res[..m * n]);
    dy.copy_from_slice(&res[m * n..2 * m * n]);
}

/// VJP and VJP tangent into `b` together when `a` is constant: one product
/// `op(a)ᵀ·[ȳ ȳ̇]` reads `a` once for both. `pair` holds `(m + k)·2n` entries.
#[allow(clippy::too_many_arguments)]
pub(crate) fn vjp_paired_b(
    a: MatRef<'_, f64>,
    ta: bool,
    ybar: &[f64],
    dybar: &[f64],
    tb: bool,
    bbar: MatMut<'_, f64>,
    dbbar: MatMut<'_, f64>,
    pair: &mut [f64],
    par: Par,
) {
    let oa = op(a, ta);
    let (m, k) = (oa.nrows(), oa.ncols());
    let n = ybar.len() / m;
    let (p, r) = pair[..2 * n * (m + k)].split_at_mut(2 * m * n);
    p[..m * n].copy_from_slice(ybar);
    p[m * n..].copy_from_slice(dybar);
    let pm = MatRef::from_column_major_slice(p, m, 2 * n);
    let mut rm = MatMut::from_column_major_slice_mut(r, k, 2 * n);
    matmul(rm.as_mut(), Accum::Replace, oa.transpose(), pm, 1.0, par);
    let rm = rm.as_ref();
    for (half, dst) in [(0, op_mut(bbar, tb)), (n, op_mut(dbbar, tb))] {
        let mut dst = dst;
        for j in 0..n {
            for i in 0..k {
                dst[(i, j)] += rm[(i, half + j)];
            }
        }
    }
}

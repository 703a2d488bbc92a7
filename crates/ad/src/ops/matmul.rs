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

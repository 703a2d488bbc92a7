//! Arithmetic: add, sub, neg, elementwise mul and div, scalar scale and shift, and the product
//! of a 1×1 variable with a tensor.
//!
//! Add, sub, neg, scale and shift are linear: their JVP is the operation applied to the tangents
//! and their VJP tangent is the VJP applied to `ȳ̇`. Mul, div and the scalar product are bilinear
//! (or rational) and carry their own second-order terms, written out below each rule.

/// `out += alpha · x`.
#[inline]
pub(crate) fn axpy(out: &mut [f64], alpha: f64, x: &[f64]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o += alpha * v;
    }
}

/// `out += alpha · x ⊙ y`.
#[inline]
pub(crate) fn axpy_mul(out: &mut [f64], alpha: f64, x: &[f64], y: &[f64]) {
    for ((o, &u), &v) in out.iter_mut().zip(x).zip(y) {
        *o += alpha * u * v;
    }
}

/// `⟨x, y⟩`.
#[inline]
pub(crate) fn dot(x: &[f64], y: &[f64]) -> f64 {
    // Four partial sums keep the loop vectorisable and the order fixed (determinism).
    let mut acc = [0.0; 4];
    let n4 = x.len() / 4 * 4;
    for (cx, cy) in x[..n4].chunks_exact(4).zip(y[..n4].chunks_exact(4)) {
        for k in 0..4 {
            acc[k] += cx[k] * cy[k];
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for i in n4..x.len() {
        s += x[i] * y[i];
    }
    s
}

/// Values of the binary elementwise operations.
pub(crate) mod value {
    /// `out = a + b`.
    pub(crate) fn add(a: &[f64], b: &[f64], out: &mut [f64]) {
        for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
            *o = x + y;
        }
    }
    /// `out = a − b`.
    pub(crate) fn sub(a: &[f64], b: &[f64], out: &mut [f64]) {
        for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
            *o = x - y;
        }
    }
    /// `out = a ⊙ b`.
    pub(crate) fn mul(a: &[f64], b: &[f64], out: &mut [f64]) {
        for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
            *o = x * y;
        }
    }
    /// `out = a ⊘ b`.
    pub(crate) fn div(a: &[f64], b: &[f64], out: &mut [f64]) {
        for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
            *o = x / y;
        }
    }
    /// `out = alpha · a + beta`.
    pub(crate) fn affine(a: &[f64], alpha: f64, beta: f64, out: &mut [f64]) {
        for (o, &x) in out.iter_mut().zip(a) {
            *o = alpha * x + beta;
        }
    }
}

/// Mul `y = a ⊙ b`.
///
/// - JVP: `ẏ = ȧ ⊙ b + a ⊙ ḃ`
/// - VJP: `ā += ȳ ⊙ b`, `b̄ += ȳ ⊙ a`
/// - VJP tangent: `ā̇ += ȳ̇ ⊙ b + ȳ ⊙ ḃ`, `b̄̇ += ȳ̇ ⊙ a + ȳ ⊙ ȧ`
pub(crate) mod mul {
    use super::axpy_mul;
    /// JVP; a missing tangent is zero.
    pub(crate) fn tangent(
        a: &[f64],
        b: &[f64],
        da: Option<&[f64]>,
        db: Option<&[f64]>,
        dy: &mut [f64],
    ) {
        dy.fill(0.0);
        if let Some(da) = da {
            axpy_mul(dy, 1.0, da, b);
        }
        if let Some(db) = db {
            axpy_mul(dy, 1.0, a, db);
        }
    }
    /// VJP into the adjoint of one operand, given the other operand's value.
    pub(crate) fn vjp(other: &[f64], ybar: &[f64], xbar: &mut [f64]) {
        axpy_mul(xbar, 1.0, ybar, other);
    }
    /// VJP tangent into one operand, given the other operand's value and tangent.
    pub(crate) fn vjp_tangent(
        other: &[f64],
        dother: Option<&[f64]>,
        ybar: &[f64],
        dybar: &[f64],
        dxbar: &mut [f64],
    ) {
        axpy_mul(dxbar, 1.0, dybar, other);
        if let Some(d) = dother {
            axpy_mul(dxbar, 1.0, ybar, d);
        }
    }
}

/// Div `y = a ⊘ b`.
///
/// - JVP: `ẏ = ȧ/b − a ḃ/b²`
/// - VJP: `ā += ȳ/b`, `b̄ += −ȳ a/b²`
/// - VJP tangent: `ā̇ += ȳ̇/b − ȳ ḃ/b²`,
///   `b̄̇ += −ȳ̇ a/b² − ȳ ȧ/b² + 2 ȳ a ḃ/b³`
pub(crate) mod div {
    /// JVP; a missing tangent is zero.
    pub(crate) fn tangent(
        a: &[f64],
        b: &[f64],
        da: Option<&[f64]>,
        db: Option<&[f64]>,
        dy: &mut [f64],
    ) {
        for i in 0..dy.len() {
            let mut t = 0.0;
            if let Some(da) = da {
                t += da[i] / b[i];
            }
            if let Some(db) = db {
                t -= a[i] * db[i] / (b[i] * b[i]);
            }
            dy[i] = t;
        }
    }
    /// VJP into `ā`.
    pub(crate) fn vjp_a(b: &[f64], ybar: &[f64], abar: &mut [f64]) {
        for i in 0..abar.len() {
            abar[i] += ybar[i] / b[i];
        }
    }
    /// VJP into `b̄`.
    pub(crate) fn vjp_b(a: &[f64], b: &[f64], ybar: &[f64], bbar: &mut [f64]) {
        for i in 0..bbar.len() {
            bbar[i] -= ybar[i] * a[i] / (b[i] * b[i]);
        }
    }
    /// VJP tangent into `ā̇`.
    pub(crate) fn vjp_tangent_a(
        b: &[f64],
        db: Option<&[f64]>,
        ybar: &[f64],
        dybar: &[f64],
        dabar: &mut [f64],
    ) {
        for i in 0..dabar.len() {
            let mut t = dybar[i] / b[i];
            if let Some(db) = db {
                t -= ybar[i] * db[i] / (b[i] * b[i]);
            }
            dabar[i] += t;
        }
    }
    /// VJP tangent into `b̄̇`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn vjp_tangent_b(
        a: &[f64],
        b: &[f64],
        da: Option<&[f64]>,
        db: Option<&[f64]>,
        ybar: &[f64],
        dybar: &[f64],
        dbbar: &mut [f64],
    ) {
        for i in 0..dbbar.len() {
            let b2 = b[i] * b[i];
            let mut t = -dybar[i] * a[i] / b2;
            if let Some(da) = da {
                t -= ybar[i] * da[i] / b2;
            }
            if let Some(db) = db {
                t += 2.0 * ybar[i] * a[i] * db[i] / (b2 * b[i]);
            }
            dbbar[i] += t;
        }
    }
}

/// Scalar product `y = s · a`, `s` a 1×1 variable.
///
/// - JVP: `ẏ = ṡ a + s ȧ`
/// - VJP: `ā += s ȳ`, `s̄ += ⟨ȳ, a⟩`
/// - VJP tangent: `ā̇ += s ȳ̇ + ṡ ȳ`, `s̄̇ += ⟨ȳ̇, a⟩ + ⟨ȳ, ȧ⟩`
pub(crate) mod scalar_mul {
    use super::{axpy, dot};
    /// JVP; a missing tangent is zero.
    pub(crate) fn tangent(s: f64, a: &[f64], ds: Option<f64>, da: Option<&[f64]>, dy: &mut [f64]) {
        dy.fill(0.0);
        if let Some(ds) = ds {
            axpy(dy, ds, a);
        }
        if let Some(da) = da {
            axpy(dy, s, da);
        }
    }
    /// VJP into `s̄` (returns the increment).
    pub(crate) fn vjp_s(a: &[f64], ybar: &[f64]) -> f64 {
        dot(ybar, a)
    }
    /// VJP tangent into `s̄̇` (returns the increment).
    pub(crate) fn vjp_tangent_s(a: &[f64], da: Option<&[f64]>, ybar: &[f64], dybar: &[f64]) -> f64 {
        dot(dybar, a) + da.map_or(0.0, |da| dot(ybar, da))
    }
    /// VJP tangent into `ā̇`.
    pub(crate) fn vjp_tangent_a(
        s: f64,
        ds: Option<f64>,
        ybar: &[f64],
        dybar: &[f64],
        dabar: &mut [f64],
    ) {
        axpy(dabar, s, dybar);
        if let Some(ds) = ds {
            axpy(dabar, ds, ybar);
        }
    }
}

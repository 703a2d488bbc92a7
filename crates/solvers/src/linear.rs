//! Linear solves over a Hessian-vector-product operator.
//!
//! TO BE REPLACED: `bilevel_linalg` is getting a conjugate gradient solver on another branch.
//! Everything here goes through [`LinOp`] so that AIDBiO and the exact-hypergradient metric can
//! switch to it by swapping this one function.

use crate::vecops::{axpy, dot, lincomb, norm, zeros};
use bilevel_linalg::Mat;

/// A symmetric linear operator `v ↦ A·v` on columns.
pub(crate) trait LinOp {
    /// `A·v`.
    fn apply(&mut self, v: &Mat<f64>) -> Mat<f64>;
}

impl<F: FnMut(&Mat<f64>) -> Mat<f64>> LinOp for F {
    fn apply(&mut self, v: &Mat<f64>) -> Mat<f64> {
        self(v)
    }
}

/// Outcome of [`cg`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct CgInfo {
    /// Iterations (operator applications) used.
    pub iters: usize,
    /// Final residual norm `‖b − A·x‖`.
    pub residual: f64,
}

/// Conjugate gradient for `A·x = b` with `A` symmetric positive definite, from `x0` (or 0),
/// stopping after `max_iter` applications or when `‖r‖ ≤ tol·‖b‖`.
pub(crate) fn cg(
    op: &mut dyn LinOp,
    b: &Mat<f64>,
    x0: Option<&Mat<f64>>,
    max_iter: usize,
    tol: f64,
) -> (Mat<f64>, CgInfo) {
    let mut x = x0.cloned().unwrap_or_else(|| zeros(b.nrows()));
    let mut iters = 0;
    let mut r = if x0.is_some() {
        iters += 1;
        let ax = op.apply(&x);
        lincomb(1.0, b, -1.0, &ax)
    } else {
        b.clone()
    };
    let bn = norm(b);
    let mut p = r.clone();
    let mut rr = dot(&r, &r);
    while iters < max_iter && rr.sqrt() > tol * bn {
        let ap = op.apply(&p);
        iters += 1;
        let pap = dot(&p, &ap);
        if pap <= 0.0 || !pap.is_finite() {
            break;
        }
        let a = rr / pap;
        axpy(&mut x, a, &p);
        axpy(&mut r, -a, &ap);
        let rr_new = dot(&r, &r);
        p = lincomb(1.0, &r, rr_new / rr, &p);
        rr = rr_new;
    }
    (
        x,
        CgInfo {
            iters,
            residual: rr.sqrt(),
        },
    )
}

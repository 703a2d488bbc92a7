//! The hypergradient linear system `∇²ᵧᵧg·v = ∇ᵧf`, solved by `bilevel_linalg`'s conjugate
//! gradient over a Hessian-vector-product operator.
//!
//! A capped CG solve that stops short of its tolerance is what truncated methods (AIDBiO with a
//! product budget) ask for, so [`cg`] reports it as a result; a failure of the method itself
//! (non-positive curvature, a NaN or infinity, a bad tolerance) becomes [`Error::LinearSolve`].

use crate::error::Error;
use bilevel_linalg::{
    CgError, CgParams, CgStart, CgWorkspace, LinOp, MatMut, MatRef, conjugate_gradient,
};

/// Outcome of a CG solve that did not fail (it may have stopped at its product cap).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Solve {
    /// Operator applications, including the one for a warm start's initial residual.
    pub products: usize,
    /// Final relative residual `‖b − A·x‖ / ‖b‖` (as tracked by the recursion).
    pub rel_residual: f64,
}

/// Solves `A·x = b` for a symmetric positive definite `A` into `x` with at most `max_products`
/// operator applications (a warm start spends one of them on the initial residual), stopping at
/// relative residual `rel_tol`. Uses and allocates nothing beyond `ws` (resized if its dimension
/// differs from `b`'s).
///
/// On every outcome `x` holds the last CG iterate.
///
/// # Errors
/// [`Error::LinearSolve`] with the [`CgError`] when CG fails for another reason than its cap.
pub(crate) fn cg<O: LinOp + ?Sized>(
    op: &mut O,
    b: MatRef<'_, f64>,
    x: MatMut<'_, f64>,
    start: CgStart,
    max_products: usize,
    rel_tol: f64,
    ws: &mut CgWorkspace,
) -> Result<Solve, Error> {
    if ws.dim() != b.nrows() {
        *ws = CgWorkspace::new(b.nrows());
    }
    let extra = usize::from(start == CgStart::Warm);
    let params = CgParams {
        rel_tol,
        max_iter: max_products.saturating_sub(extra),
    };
    match conjugate_gradient(op, b, x, start, &params, ws) {
        Ok(info) => Ok(Solve {
            products: info.iterations + extra,
            rel_residual: info.rel_residual,
        }),
        Err(CgError::NoConvergence {
            residual,
            iterations,
        }) => Ok(Solve {
            products: iterations + extra,
            rel_residual: residual,
        }),
        Err(e) => Err(Error::LinearSolve(e)),
    }
}

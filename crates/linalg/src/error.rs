//! Typed errors of this crate: [`LinalgError`] for factorizations, decompositions and spectral
//! estimates, [`CgError`] for the conjugate gradient method.
//!
//! Shape mismatches are programmer errors and panic (with `#[track_caller]`, naming the shapes);
//! everything that depends on the *values* (a non-positive pivot, a non-finite entry, a bad
//! tolerance) is reported through these enums.

use std::fmt;

/// Failure of a dense factorization, decomposition, series or spectral estimate.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum LinalgError {
    /// Cholesky factorization met a pivot `≤ 0` (or NaN): the matrix is not positive definite.
    NonPositivePivot {
        /// Zero-based index of the offending pivot.
        index: usize,
    },
    /// LU factorization met a pivot that is zero relative to the matrix scale: the matrix is
    /// singular to working precision.
    Singular {
        /// Zero-based index of the offending pivot (diagonal entry of `U`).
        index: usize,
    },
    /// An iterative dense algorithm (faer's eigenvalue or singular value iteration) did not
    /// converge.
    DecompositionFailed {
        /// Which decomposition failed, e.g. `"symmetric eigendecomposition"`.
        algorithm: &'static str,
    },
    /// An eigenvalue estimate (power iteration, Lanczos) did not reach its tolerance.
    NoConvergence {
        /// Which algorithm, e.g. `"power iteration"`.
        algorithm: &'static str,
        /// Operator applications performed.
        iterations: usize,
        /// Final relative residual `‖Hv − θv‖ / |θ|` of the estimate.
        residual: f64,
    },
    /// An input or an intermediate quantity was NaN or infinite.
    NotFinite {
        /// What was not finite, e.g. `"input matrix"` or `"operator output"`.
        what: &'static str,
    },
    /// A parameter is out of its valid range (negative tolerance, `k > d`, …).
    InvalidParameter {
        /// Name of the parameter.
        name: &'static str,
        /// What is wrong with it, including the value given.
        reason: String,
    },
    /// A conjugate gradient solve failed inside a larger computation.
    Cg(CgError),
}

impl fmt::Display for LinalgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NonPositivePivot { index } => write!(
                f,
                "Cholesky factorization failed: pivot {index} is not positive \
                 (the matrix is not symmetric positive definite)"
            ),
            Self::Singular { index } => write!(
                f,
                "LU factorization failed: pivot {index} is zero to working precision \
                 (the matrix is singular)"
            ),
            Self::DecompositionFailed { algorithm } => {
                write!(f, "{algorithm} did not converge")
            }
            Self::NoConvergence {
                algorithm,
                iterations,
                residual,
            } => write!(
                f,
                "{algorithm} did not converge: relative residual {residual:e} after \
                 {iterations} iterations"
            ),
            Self::NotFinite { what } => write!(f, "{what} contains NaN or infinite values"),
            Self::InvalidParameter { name, reason } => {
                write!(f, "invalid parameter `{name}`: {reason}")
            }
            Self::Cg(e) => write!(f, "conjugate gradient failed: {e}"),
        }
    }
}

impl std::error::Error for LinalgError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Cg(e) => Some(e),
            _ => None,
        }
    }
}

impl From<CgError> for LinalgError {
    fn from(e: CgError) -> Self {
        Self::Cg(e)
    }
}

/// Failure of [`conjugate_gradient`](crate::conjugate_gradient).
///
/// On every error the solution argument holds the last iterate, which callers may still use
/// (e.g. as a warm start).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum CgError {
    /// The iteration cap was reached before the relative residual fell below the tolerance.
    NoConvergence {
        /// Relative residual `‖b − Hx‖ / ‖b‖` of the last iterate (recursively updated).
        residual: f64,
        /// Iterations performed (operator applications in the main loop).
        iterations: usize,
    },
    /// A search direction `p` had `pᵀHp ≤ 0`: the operator is not positive definite.
    NonPositiveCurvature {
        /// The normalized curvature `pᵀHp / pᵀp` that was found.
        curvature: f64,
        /// Zero-based iteration at which it was found.
        iteration: usize,
    },
    /// A NaN or infinity appeared (in the right-hand side, the initial guess or the operator
    /// output).
    NotFinite {
        /// Zero-based iteration at which it was found.
        iteration: usize,
    },
    /// A parameter is out of its valid range (e.g. a negative tolerance).
    InvalidParameter {
        /// Name of the parameter.
        name: &'static str,
        /// What is wrong with it, including the value given.
        reason: String,
    },
}

impl fmt::Display for CgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoConvergence {
                residual,
                iterations,
            } => write!(
                f,
                "no convergence: relative residual {residual:e} after {iterations} iterations"
            ),
            Self::NonPositiveCurvature {
                curvature,
                iteration,
            } => write!(
                f,
                "non-positive curvature pᵀHp/pᵀp = {curvature:e} at iteration {iteration} \
                 (the operator is not positive definite)"
            ),
            Self::NotFinite { iteration } => {
                write!(f, "NaN or infinity encountered at iteration {iteration}")
            }
            Self::InvalidParameter { name, reason } => {
                write!(f, "invalid parameter `{name}`: {reason}")
            }
        }
    }
}

impl std::error::Error for CgError {}

/// `Err(InvalidParameter)` unless `value` is finite and `≥ 0`.
pub(crate) fn check_nonneg(name: &'static str, value: f64) -> Result<(), LinalgError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(LinalgError::InvalidParameter {
            name,
            reason: format!("must be finite and non-negative, got {value}"),
        })
    }
}

/// `Err(NotFinite)` unless every entry of `a` is finite.
pub(crate) fn check_finite(
    what: &'static str,
    a: crate::MatRef<'_, f64>,
) -> Result<(), LinalgError> {
    if crate::kernels::all_finite(a) {
        Ok(())
    } else {
        Err(LinalgError::NotFinite { what })
    }
}

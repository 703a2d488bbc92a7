//! Extreme eigenvalues of a symmetric operator from matrix-vector products only: the
//! smoothness constant `L = λ_max`, the strong-convexity constant `μ = λ_min` and the condition
//! number `κ = L / μ` of a lower-level Hessian, used to set step sizes.
//!
//! [`power_iteration`] finds the dominant eigenpair (optionally of a shifted operator);
//! [`lanczos_extreme_eigenvalues`] estimates both ends of the spectrum at once and converges
//! much faster. Both start from a random vector drawn from a seeded generator, so their results
//! are deterministic.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::dense::sym_eigen;
use crate::error::LinalgError;
use crate::iterative::LinOp;
use crate::kernels::{all_finite, axpy, dot, matmul, norm_l2, scale};
use crate::{Accum, Mat, Par};

fn random_unit(n: usize, seed: u64) -> Mat<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut v = Mat::from_fn(n, 1, |_, _| rng.random_range(-1.0..1.0));
    let nrm = norm_l2(v.as_ref());
    scale(1.0 / nrm, v.as_mut());
    v
}

fn check_tol(name: &'static str, tol: f64) -> Result<(), LinalgError> {
    crate::error::check_nonneg(name, tol)
}

fn check_dim(n: usize) -> Result<(), LinalgError> {
    if n == 0 {
        Err(LinalgError::InvalidParameter {
            name: "n",
            reason: "the operator dimension must be positive, got 0".into(),
        })
    } else {
        Ok(())
    }
}

/// Parameters of [`power_iteration`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PowerParams {
    /// Most operator applications.
    pub max_iter: usize,
    /// Stop when `‖(H − σI)v − θv‖ ≤ rel_tol · |θ|` for the Rayleigh quotient `θ` (finite, `≥ 0`).
    pub rel_tol: f64,
    /// Seed of the random start vector.
    pub seed: u64,
    /// The shift `σ`: the iteration runs on `H − σI`. With `σ = 0` it finds the eigenvalue of
    /// largest magnitude (`λ_max` for a positive semidefinite `H`); with `σ ≥ λ_max` it finds
    /// `λ_min`.
    pub shift: f64,
}

impl Default for PowerParams {
    /// `max_iter = 1000`, `rel_tol = 1e-6`, `seed = 0`, `shift = 0`.
    fn default() -> Self {
        Self {
            max_iter: 1000,
            rel_tol: 1e-6,
            seed: 0,
            shift: 0.0,
        }
    }
}

/// Outcome of [`power_iteration`].
#[derive(Debug, Clone)]
pub struct PowerResult {
    /// The eigenvalue of `H` (the shift added back): `θ + σ`.
    pub eigenvalue: f64,
    /// The unit eigenvector estimate, `n × 1`.
    pub eigenvector: Mat<f64>,
    /// Operator applications performed.
    pub iterations: usize,
    /// Final relative residual `‖(H − σI)v − θv‖ / |θ|`.
    pub residual: f64,
}

/// Power iteration for the dominant eigenpair of `H − σI` (`σ = params.shift`), for a symmetric
/// operator of dimension `n`.
///
/// Converges linearly at the rate `|λ₂ / λ₁|` of the two largest-magnitude eigenvalues of the
/// shifted operator; prefer [`lanczos_extreme_eigenvalues`] unless an eigenvector is needed.
///
/// # Errors
/// [`LinalgError::NoConvergence`] with the residual if `params.max_iter` iterations do not reach
/// `params.rel_tol`; [`LinalgError::NotFinite`] if the operator returns a NaN or infinity;
/// [`LinalgError::InvalidParameter`] for `n = 0`, a negative tolerance or a non-finite shift.
///
/// # Example
/// ```
/// use bilevel_linalg::{power_iteration, Mat, MatMut, MatRef, PowerParams};
/// let mut h = |v: MatRef<'_, f64>, mut out: MatMut<'_, f64>| {
///     for i in 0..3 {
///         out[(i, 0)] = (i + 1) as f64 * v[(i, 0)];
///     }
/// };
/// let top = power_iteration(&mut h, 3, &PowerParams { rel_tol: 1e-10, ..Default::default() })?;
/// assert!((top.eigenvalue - 3.0).abs() < 1e-9);
/// let params = PowerParams { rel_tol: 1e-10, shift: top.eigenvalue, ..Default::default() };
/// let bottom = power_iteration(&mut h, 3, &params)?;
/// assert!((bottom.eigenvalue - 1.0).abs() < 1e-9);
/// # Ok::<(), bilevel_linalg::LinalgError>(())
/// ```
pub fn power_iteration<O: LinOp + ?Sized>(
    op: &mut O,
    n: usize,
    params: &PowerParams,
) -> Result<PowerResult, LinalgError> {
    check_dim(n)?;
    check_tol("rel_tol", params.rel_tol)?;
    if !params.shift.is_finite() {
        return Err(LinalgError::InvalidParameter {
            name: "shift",
            reason: format!("must be finite, got {}", params.shift),
        });
    }
    let sigma = params.shift;
    let mut v = random_unit(n, params.seed);
    let mut w = Mat::zeros(n, 1);
    let mut residual = f64::INFINITY;
    for it in 1..=params.max_iter {
        op.apply(v.as_ref(), w.as_mut());
        if sigma != 0.0 {
            axpy(-sigma, v.as_ref(), w.as_mut());
        }
        let theta = dot(v.as_ref(), w.as_ref());
        let wnorm = norm_l2(w.as_ref());
        if !(theta.is_finite() && wnorm.is_finite()) {
            return Err(LinalgError::NotFinite {
                what: "operator output",
            });
        }
        if wnorm == 0.0 {
            // v is in the null space of H − σI: an exact eigenvector with eigenvalue σ.
            return Ok(PowerResult {
                eigenvalue: sigma,
                eigenvector: v,
                iterations: it,
                residual: 0.0,
            });
        }
        // ‖w − θv‖, computed directly: the shortcut √(‖w‖² − θ²) cancels catastrophically
        // below a relative residual of about √ε.
        let mut r2 = 0.0;
        faer::zip!(w.as_ref(), v.as_ref()).for_each(|faer::unzip!(w, v)| {
            let d = *w - theta * *v;
            r2 += d * d;
        });
        residual = r2.sqrt() / theta.abs();
        if residual <= params.rel_tol {
            return Ok(PowerResult {
                eigenvalue: theta + sigma,
                eigenvector: v,
                iterations: it,
                residual,
            });
        }
        v.copy_from(&w);
        scale(1.0 / wnorm, v.as_mut());
    }
    Err(LinalgError::NoConvergence {
        algorithm: "power iteration",
        iterations: params.max_iter,
        residual,
    })
}

/// Parameters of [`lanczos_extreme_eigenvalues`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LanczosParams {
    /// Most Lanczos steps (operator applications); capped at the dimension `n`. Memory is
    /// `n × (max_steps + 1)` for the fully reorthogonalized basis.
    pub max_steps: usize,
    /// Stop when both extreme Ritz values have residual bounds `≤ rel_tol · |θ|` (finite, `≥ 0`).
    pub rel_tol: f64,
    /// Seed of the random start vector.
    pub seed: u64,
}

impl Default for LanczosParams {
    /// `max_steps = 100`, `rel_tol = 1e-8`, `seed = 0`.
    fn default() -> Self {
        Self {
            max_steps: 100,
            rel_tol: 1e-8,
            seed: 0,
        }
    }
}

/// Extreme eigenvalue estimates of a symmetric operator, from [`lanczos_extreme_eigenvalues`].
///
/// Ritz values lie inside the spectrum: `lambda_max ≤ λ_max(H)` and `lambda_min ≥ λ_min(H)`,
/// each within its residual bound of a true eigenvalue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpectrumEstimate {
    /// Largest Ritz value, estimating `λ_max` (the smoothness constant `L`).
    pub lambda_max: f64,
    /// Smallest Ritz value, estimating `λ_min` (the strong-convexity constant `μ`).
    pub lambda_min: f64,
    /// Relative residual bound `β_m |s_m| / |θ|` of `lambda_max`.
    pub residual_max: f64,
    /// Relative residual bound `β_m |s_m| / |θ|` of `lambda_min`.
    pub residual_min: f64,
    /// Lanczos steps (operator applications) performed.
    pub steps: usize,
    /// Whether both residual bounds reached the tolerance (or the Krylov space became
    /// invariant, which makes the Ritz values exact eigenvalues).
    pub converged: bool,
}

impl SpectrumEstimate {
    /// `κ = λ_max / λ_min`; `+∞` when `λ_min ≤ 0`.
    ///
    /// # Example
    /// ```
    /// use bilevel_linalg::SpectrumEstimate;
    /// let s = SpectrumEstimate {
    ///     lambda_max: 10.0, lambda_min: 0.5, residual_max: 0.0, residual_min: 0.0,
    ///     steps: 3, converged: true,
    /// };
    /// assert_eq!(s.condition_number(), 20.0);
    /// ```
    pub fn condition_number(&self) -> f64 {
        if self.lambda_min > 0.0 {
            self.lambda_max / self.lambda_min
        } else {
            f64::INFINITY
        }
    }
}

/// Estimates the largest and smallest eigenvalues of a symmetric operator of dimension `n` by
/// the Lanczos method with full reorthogonalization (Lanczos, "An iteration method for the
/// solution of the eigenvalue problem of linear differential and integral operators"; Golub
/// and Van Loan, "Matrix Computations", ch. 10).
///
/// Not reaching the tolerance in `params.max_steps` steps is not an error: the estimate is
/// returned with `converged = false` and its residual bounds, since Ritz values are always
/// inner bounds of the spectrum and usually good enough to set step sizes. `par` is used for
/// the reorthogonalization products.
///
/// # Errors
/// [`LinalgError::NotFinite`] if the operator returns a NaN or infinity;
/// [`LinalgError::InvalidParameter`] for `n = 0`, `max_steps = 0` or a negative tolerance;
/// [`LinalgError::DecompositionFailed`] if the small tridiagonal eigenproblem fails.
///
/// # Example
/// ```
/// use bilevel_linalg::{lanczos_extreme_eigenvalues, LanczosParams, Mat, MatMut, MatRef, Par};
/// let mut h = |v: MatRef<'_, f64>, mut out: MatMut<'_, f64>| {
///     for i in 0..50 {
///         out[(i, 0)] = (i + 1) as f64 * v[(i, 0)];
///     }
/// };
/// let est = lanczos_extreme_eigenvalues(&mut h, 50, &LanczosParams::default(), Par::Seq)?;
/// assert!(est.converged);
/// assert!((est.lambda_max - 50.0).abs() < 1e-6 && (est.lambda_min - 1.0).abs() < 1e-6);
/// assert!((est.condition_number() - 50.0).abs() < 1e-4);
/// # Ok::<(), bilevel_linalg::LinalgError>(())
/// ```
pub fn lanczos_extreme_eigenvalues<O: LinOp + ?Sized>(
    op: &mut O,
    n: usize,
    params: &LanczosParams,
    par: Par,
) -> Result<SpectrumEstimate, LinalgError> {
    check_dim(n)?;
    check_tol("rel_tol", params.rel_tol)?;
    if params.max_steps == 0 {
        return Err(LinalgError::InvalidParameter {
            name: "max_steps",
            reason: "at least one Lanczos step is needed, got 0".into(),
        });
    }
    let m = params.max_steps.min(n);
    let mut q = Mat::<f64>::zeros(n, m + 1);
    q.col_mut(0).copy_from(random_unit(n, params.seed).col(0));
    let mut w = Mat::<f64>::zeros(n, 1);
    let mut c = Mat::<f64>::zeros(m, 1);
    let mut alpha: Vec<f64> = Vec::with_capacity(m);
    let mut beta: Vec<f64> = Vec::with_capacity(m);
    let mut est = SpectrumEstimate {
        lambda_max: 0.0,
        lambda_min: 0.0,
        residual_max: f64::INFINITY,
        residual_min: f64::INFINITY,
        steps: 0,
        converged: false,
    };
    for j in 0..m {
        op.apply(q.as_ref().subcols(j, 1), w.as_mut());
        if !all_finite(w.as_ref()) {
            return Err(LinalgError::NotFinite {
                what: "operator output",
            });
        }
        let a = dot(q.as_ref().subcols(j, 1), w.as_ref());
        alpha.push(a);
        // Full reorthogonalization against q₀…q_j, twice ("twice is enough").
        for _ in 0..2 {
            let basis = q.as_ref().subcols(0, j + 1);
            let mut cj = c.as_mut().subrows_mut(0, j + 1);
            matmul(
                cj.as_mut(),
                Accum::Replace,
                basis.transpose(),
                w.as_ref(),
                1.0,
                par,
            );
            matmul(w.as_mut(), Accum::Add, basis, cj.as_ref(), -1.0, par);
        }
        let b = norm_l2(w.as_ref());
        beta.push(b);
        est.steps = j + 1;

        // Ritz values of the (j+1) × (j+1) tridiagonal T and their residual bounds β_j |s_{j,i}|.
        let k = j + 1;
        let t = Mat::from_fn(k, k, |r, s| {
            if r == s {
                alpha[r]
            } else if r == s + 1 {
                beta[s]
            } else if s == r + 1 {
                beta[r]
            } else {
                0.0
            }
        });
        let eig = sym_eigen(t.as_ref(), Par::Seq)?;
        let (tmin, tmax) = (eig.values[0], eig.values[k - 1]);
        let rel = |theta: f64, s_last: f64| {
            let r = b * s_last.abs();
            if r == 0.0 { 0.0 } else { r / theta.abs() }
        };
        est.lambda_min = tmin;
        est.lambda_max = tmax;
        est.residual_min = rel(tmin, eig.vectors[(k - 1, 0)]);
        est.residual_max = rel(tmax, eig.vectors[(k - 1, k - 1)]);
        let scale_t = tmax.abs().max(tmin.abs());
        let invariant = b <= f64::EPSILON * scale_t * (n as f64).sqrt() || k == n;
        if invariant {
            // The Krylov space is invariant: the Ritz values are eigenvalues.
            est.residual_min = 0.0;
            est.residual_max = 0.0;
            est.converged = true;
            return Ok(est);
        }
        if est.residual_min <= params.rel_tol && est.residual_max <= params.rel_tol {
            est.converged = true;
            return Ok(est);
        }
        let mut qn = q.as_mut().subcols_mut(j + 1, 1);
        qn.copy_from(&w);
        scale(1.0 / b, qn);
    }
    Ok(est)
}

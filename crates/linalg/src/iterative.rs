//! Matrix-free solvers for `H x = b` with a symmetric positive definite operator `H` known only
//! through products `v ↦ H v` (a [`LinOp`], typically a Hessian-vector product from the AD
//! engine): the conjugate gradient method ([`conjugate_gradient`]) and the truncated Neumann
//! series ([`neumann_series`]).
//!
//! Both run inside every outer iteration of a bilevel method, so they allocate nothing: their
//! vectors live in a reusable workspace ([`CgWorkspace`], [`NeumannWorkspace`]).

use crate::error::{CgError, LinalgError};
use crate::kernels::{axpby, dot, matmul, norm_l2, scale};
use crate::{Accum, Mat, MatMut, MatRef, Par};

/// A linear operator `v ↦ H v` on `n × 1` vectors.
///
/// Implemented by every closure `FnMut(MatRef<'_, f64>, MatMut<'_, f64>)` that writes `H v`
/// into its second argument (which it must overwrite, not accumulate into), and by [`DenseOp`].
///
/// # Example
/// ```
/// use bilevel_linalg::{LinOp, Mat, MatMut, MatRef};
/// // H = 2 I
/// let mut op = |v: MatRef<'_, f64>, mut out: MatMut<'_, f64>| {
///     for i in 0..v.nrows() {
///         out[(i, 0)] = 2.0 * v[(i, 0)];
///     }
/// };
/// let v = Mat::from_fn(3, 1, |i, _| i as f64);
/// let mut hv = Mat::zeros(3, 1);
/// op.apply(v.as_ref(), hv.as_mut());
/// assert_eq!(hv[(2, 0)], 4.0);
/// ```
pub trait LinOp {
    /// Writes `H v` into `out` (same shape as `v`), overwriting its contents.
    fn apply(&mut self, v: MatRef<'_, f64>, out: MatMut<'_, f64>);
}

impl<F> LinOp for F
where
    F: FnMut(MatRef<'_, f64>, MatMut<'_, f64>),
{
    #[inline]
    fn apply(&mut self, v: MatRef<'_, f64>, out: MatMut<'_, f64>) {
        self(v, out)
    }
}

/// A dense square matrix as a [`LinOp`], applied with the given parallelism.
#[derive(Debug, Clone, Copy)]
pub struct DenseOp<'a> {
    a: MatRef<'a, f64>,
    par: Par,
}

impl<'a> DenseOp<'a> {
    /// Wraps the square matrix `a`.
    ///
    /// # Panics
    /// If `a` is not square.
    ///
    /// # Example
    /// ```
    /// use bilevel_linalg::{DenseOp, LinOp, Mat, Par};
    /// let a = Mat::from_fn(2, 2, |i, j| (i + j) as f64);
    /// let mut op = DenseOp::new(a.as_ref(), Par::Seq);
    /// let v = Mat::from_fn(2, 1, |_, _| 1.0);
    /// let mut hv = Mat::zeros(2, 1);
    /// op.apply(v.as_ref(), hv.as_mut());
    /// assert_eq!((hv[(0, 0)], hv[(1, 0)]), (1.0, 3.0));
    /// ```
    #[track_caller]
    pub fn new(a: MatRef<'a, f64>, par: Par) -> Self {
        assert!(
            a.nrows() == a.ncols(),
            "DenseOp expects a square matrix, got {}x{}",
            a.nrows(),
            a.ncols()
        );
        Self { a, par }
    }
}

impl LinOp for DenseOp<'_> {
    #[track_caller]
    #[inline]
    fn apply(&mut self, v: MatRef<'_, f64>, out: MatMut<'_, f64>) {
        matmul(out, Accum::Replace, self.a, v, 1.0, self.par);
    }
}

/// Stopping rule of [`conjugate_gradient`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CgParams {
    /// Stop when `‖b − H x‖ ≤ rel_tol · ‖b‖` (finite, `≥ 0`).
    pub rel_tol: f64,
    /// Most operator applications in the main loop.
    pub max_iter: usize,
}

impl Default for CgParams {
    /// `rel_tol = 1e-8`, `max_iter = 1000`.
    fn default() -> Self {
        Self {
            rel_tol: 1e-8,
            max_iter: 1000,
        }
    }
}

/// Where [`conjugate_gradient`] starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CgStart {
    /// From `x = 0` (the contents of `x` are ignored).
    #[default]
    Zero,
    /// From the current contents of `x` (warm start, e.g. the previous outer iteration's
    /// solution); costs one extra operator application for the initial residual.
    Warm,
}

/// Outcome of a converged [`conjugate_gradient`] solve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CgInfo {
    /// Iterations performed (operator applications in the main loop; a warm start costs one
    /// more).
    pub iterations: usize,
    /// Final relative residual `‖b − Hx‖ / ‖b‖`, as updated by the recursion (it tracks the true
    /// residual down to about `ε · κ(H)`).
    pub rel_residual: f64,
}

/// Reusable vectors of [`conjugate_gradient`] for systems of dimension `n`.
#[derive(Debug, Clone)]
pub struct CgWorkspace {
    r: Mat<f64>,
    p: Mat<f64>,
    hp: Mat<f64>,
}

impl CgWorkspace {
    /// Workspace for `n × 1` systems.
    ///
    /// # Example
    /// ```
    /// let ws = bilevel_linalg::CgWorkspace::new(10);
    /// assert_eq!(ws.dim(), 10);
    /// ```
    pub fn new(n: usize) -> Self {
        Self {
            r: Mat::zeros(n, 1),
            p: Mat::zeros(n, 1),
            hp: Mat::zeros(n, 1),
        }
    }

    /// The dimension `n` this workspace serves.
    pub fn dim(&self) -> usize {
        self.r.nrows()
    }
}

#[track_caller]
fn assert_vectors(what: &str, n: usize, b: MatRef<'_, f64>, x: &MatMut<'_, f64>) {
    assert!(
        b.ncols() == 1 && x.ncols() == 1 && b.nrows() == n && x.nrows() == n,
        "{what} shape mismatch: workspace dimension {n}, b {}x{}, x {}x{} (expected {n}x1)",
        b.nrows(),
        b.ncols(),
        x.nrows(),
        x.ncols()
    );
}

/// Solves `H x = b` by the conjugate gradient method (Hestenes and Stiefel, "Methods of
/// conjugate gradients for solving linear systems") for a symmetric positive definite operator
/// `H` given matrix-free.
///
/// `x` (`n × 1`) receives the solution; with [`CgStart::Warm`] its contents are the initial
/// guess. Allocates nothing: the iteration vectors live in `ws`. A zero right-hand side gives
/// `x = 0` at once.
///
/// # Errors
/// - [`CgError::NoConvergence`] with the relative residual and iteration count when
///   `params.max_iter` iterations do not reach `params.rel_tol`;
/// - [`CgError::NonPositiveCurvature`] if a direction with `pᵀHp ≤ 0` is met (`H` is not positive
///   definite);
/// - [`CgError::NotFinite`] if `b`, the initial guess or an operator output has a NaN or
///   infinity;
/// - [`CgError::InvalidParameter`] if `params.rel_tol` is negative or not finite.
///
/// On every error after the parameter check, `x` holds the last iterate.
///
/// # Panics
/// If `b` or `x` is not `n × 1` with `n = ws.dim()`.
///
/// # Example
/// ```
/// use bilevel_linalg::{conjugate_gradient, CgParams, CgStart, CgWorkspace, Mat, MatMut, MatRef};
/// // H = diag(1, 2, 3), b = (1, 1, 1): x = (1, 1/2, 1/3).
/// let mut h = |v: MatRef<'_, f64>, mut out: MatMut<'_, f64>| {
///     for i in 0..3 {
///         out[(i, 0)] = (i + 1) as f64 * v[(i, 0)];
///     }
/// };
/// let b = Mat::from_fn(3, 1, |_, _| 1.0);
/// let mut x = Mat::zeros(3, 1);
/// let mut ws = CgWorkspace::new(3);
/// let params = CgParams { rel_tol: 1e-12, max_iter: 10 };
/// let info = conjugate_gradient(&mut h, b.as_ref(), x.as_mut(), CgStart::Zero, &params, &mut ws)?;
/// assert!(info.iterations <= 3 && info.rel_residual <= 1e-12);
/// assert!((x[(2, 0)] - 1.0 / 3.0).abs() < 1e-12);
/// # Ok::<(), bilevel_linalg::CgError>(())
/// ```
#[track_caller]
pub fn conjugate_gradient<O: LinOp + ?Sized>(
    op: &mut O,
    b: MatRef<'_, f64>,
    mut x: MatMut<'_, f64>,
    start: CgStart,
    params: &CgParams,
    ws: &mut CgWorkspace,
) -> Result<CgInfo, CgError> {
    assert_vectors("conjugate_gradient", ws.dim(), b, &x);
    if !(params.rel_tol.is_finite() && params.rel_tol >= 0.0) {
        return Err(CgError::InvalidParameter {
            name: "rel_tol",
            reason: format!("must be finite and non-negative, got {}", params.rel_tol),
        });
    }
    let CgWorkspace { r, p, hp } = ws;
    let bnorm = norm_l2(b);
    if !bnorm.is_finite() {
        return Err(CgError::NotFinite { iteration: 0 });
    }
    if bnorm == 0.0 {
        x.fill(0.0);
        return Ok(CgInfo {
            iterations: 0,
            rel_residual: 0.0,
        });
    }
    match start {
        CgStart::Zero => {
            x.fill(0.0);
            r.copy_from(b);
        }
        CgStart::Warm => {
            op.apply(x.as_ref(), hp.as_mut());
            r.copy_from(b);
            crate::kernels::axpy(-1.0, hp.as_ref(), r.as_mut());
        }
    }
    let mut rr = dot(r.as_ref(), r.as_ref());
    if !rr.is_finite() {
        return Err(CgError::NotFinite { iteration: 0 });
    }
    let mut res = rr.sqrt() / bnorm;
    if res <= params.rel_tol {
        return Ok(CgInfo {
            iterations: 0,
            rel_residual: res,
        });
    }
    p.copy_from(&*r);
    for it in 0..params.max_iter {
        op.apply(p.as_ref(), hp.as_mut());
        let php = dot(p.as_ref(), hp.as_ref());
        if !php.is_finite() {
            return Err(CgError::NotFinite { iteration: it });
        }
        if php <= 0.0 {
            return Err(CgError::NonPositiveCurvature {
                curvature: php / dot(p.as_ref(), p.as_ref()),
                iteration: it,
            });
        }
        let alpha = rr / php;
        // x ← x + α p and r ← r − α H p in one pass, accumulating rᵀr on the way.
        let mut rr_new = 0.0;
        faer::zip!(x.as_mut(), r.as_mut(), p.as_ref(), hp.as_ref()).for_each(
            |faer::unzip!(x, r, p, hp)| {
                *x += alpha * *p;
                *r -= alpha * *hp;
                rr_new += *r * *r;
            },
        );
        if !rr_new.is_finite() {
            return Err(CgError::NotFinite { iteration: it });
        }
        res = rr_new.sqrt() / bnorm;
        if res <= params.rel_tol {
            return Ok(CgInfo {
                iterations: it + 1,
                rel_residual: res,
            });
        }
        axpby(1.0, r.as_ref(), rr_new / rr, p.as_mut());
        rr = rr_new;
    }
    Err(CgError::NoConvergence {
        residual: res,
        iterations: params.max_iter,
    })
}

/// Outcome of [`neumann_series`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NeumannInfo {
    /// Operator applications performed (`terms − 1`, or 0).
    pub applications: usize,
    /// `‖(I − ηH)^{K−1} b‖ / ‖b‖`, the size of the last term relative to the first: small when
    /// the series has converged.
    pub last_term_rel_norm: f64,
}

/// Reusable vectors of [`neumann_series`] for dimension `n`.
#[derive(Debug, Clone)]
pub struct NeumannWorkspace {
    p: Mat<f64>,
    hp: Mat<f64>,
}

impl NeumannWorkspace {
    /// Workspace for `n × 1` vectors.
    ///
    /// # Example
    /// ```
    /// assert_eq!(bilevel_linalg::NeumannWorkspace::new(4).dim(), 4);
    /// ```
    pub fn new(n: usize) -> Self {
        Self {
            p: Mat::zeros(n, 1),
            hp: Mat::zeros(n, 1),
        }
    }

    /// The dimension `n` this workspace serves.
    pub fn dim(&self) -> usize {
        self.p.nrows()
    }
}

/// Truncated Neumann series `x = η Σ_{k=0}^{K−1} (I − η H)^k b` approximating `H⁻¹ b`, with
/// `K = terms` (Lorraine, Vicol and Duvenaud, "Optimizing millions of hyperparameters by
/// implicit differentiation"; Ghadimi and Wang, "Approximation methods for bilevel
/// programming").
///
/// The series converges to `H⁻¹ b` when `0 < η < 2 / λ_max(H)` for a symmetric positive definite
/// `H`; the error after `K` terms is `(I − ηH)^K H⁻¹ b`. Costs `K − 1` operator applications and
/// allocates nothing. `terms = 0` gives `x = 0`.
///
/// # Errors
/// [`LinalgError::InvalidParameter`] if `eta` is not finite and positive;
/// [`LinalgError::NotFinite`] if `b` or the result has a NaN or infinity (e.g. a divergent
/// series).
///
/// # Panics
/// If `b` or `x` is not `n × 1` with `n = ws.dim()`.
///
/// # Example
/// ```
/// use bilevel_linalg::{neumann_series, Mat, MatMut, MatRef, NeumannWorkspace};
/// // H = 2 I, η = 0.5: (I − ηH) = 0, so one term gives H⁻¹ b exactly.
/// let mut h = |v: MatRef<'_, f64>, mut out: MatMut<'_, f64>| {
///     for i in 0..v.nrows() {
///         out[(i, 0)] = 2.0 * v[(i, 0)];
///     }
/// };
/// let b = Mat::from_fn(2, 1, |_, _| 1.0);
/// let mut x = Mat::zeros(2, 1);
/// let info = neumann_series(&mut h, b.as_ref(), 0.5, 5, x.as_mut(), &mut NeumannWorkspace::new(2))?;
/// assert_eq!(x[(0, 0)], 0.5);
/// assert_eq!(info.applications, 4);
/// # Ok::<(), bilevel_linalg::LinalgError>(())
/// ```
#[track_caller]
pub fn neumann_series<O: LinOp + ?Sized>(
    op: &mut O,
    b: MatRef<'_, f64>,
    eta: f64,
    terms: usize,
    mut x: MatMut<'_, f64>,
    ws: &mut NeumannWorkspace,
) -> Result<NeumannInfo, LinalgError> {
    assert_vectors("neumann_series", ws.dim(), b, &x);
    if !(eta.is_finite() && eta > 0.0) {
        return Err(LinalgError::InvalidParameter {
            name: "eta",
            reason: format!("the step must be finite and positive, got {eta}"),
        });
    }
    let bnorm = norm_l2(b);
    if !bnorm.is_finite() {
        return Err(LinalgError::NotFinite {
            what: "right-hand side",
        });
    }
    if terms == 0 || bnorm == 0.0 {
        x.fill(0.0);
        return Ok(NeumannInfo {
            applications: 0,
            last_term_rel_norm: if terms == 0 { 1.0 } else { 0.0 },
        });
    }
    let NeumannWorkspace { p, hp } = ws;
    p.copy_from(b);
    x.copy_from(b);
    for _ in 1..terms {
        op.apply(p.as_ref(), hp.as_mut());
        // p ← p − η H p;  x ← x + p
        faer::zip!(x.as_mut(), p.as_mut(), hp.as_ref()).for_each(|faer::unzip!(x, p, hp)| {
            *p -= eta * *hp;
            *x += *p;
        });
    }
    scale(eta, x.as_mut());
    let last = norm_l2(p.as_ref()) / bnorm;
    if !last.is_finite() || !crate::kernels::all_finite(x.as_ref()) {
        return Err(LinalgError::NotFinite {
            what: "Neumann series",
        });
    }
    Ok(NeumannInfo {
        applications: terms - 1,
        last_term_rel_norm: last,
    })
}

//! Dense factorizations and decompositions: Cholesky and LU solves, the symmetric
//! eigendecomposition, the thin SVD, and minimal-norm least squares / the pseudo-inverse.
//!
//! All of them wrap faer's low-level routines with an explicit [`Par`] (never the global
//! parallelism setting) and turn faer's failures into [`LinalgError`]s.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::{cholesky::llt, evd, lu::partial_pivoting as plu, svd};

use crate::error::{check_finite, check_nonneg};
use crate::kernels::{effective_par, matmul, norm_max};
use crate::{Accum, LinalgError, Mat, MatMut, MatRef, Par};

#[track_caller]
fn assert_square(what: &str, a: MatRef<'_, f64>) {
    assert!(
        a.nrows() == a.ncols(),
        "{what} expects a square matrix, got {}x{}",
        a.nrows(),
        a.ncols()
    );
}

#[track_caller]
fn assert_rhs_rows(what: &str, n: usize, rhs: (usize, usize)) {
    assert!(
        rhs.0 == n,
        "{what}: right-hand side is {}x{} but the factored matrix is {n}x{n}",
        rhs.0,
        rhs.1
    );
}

/// Cholesky factorization `A = L Lᵀ` of a symmetric positive definite matrix.
///
/// Only the lower triangle of `A` is read.
#[derive(Debug, Clone)]
pub struct Cholesky {
    l: Mat<f64>,
}

impl Cholesky {
    /// Factors `a` (`n × n`, symmetric positive definite, lower triangle read).
    ///
    /// # Errors
    /// [`LinalgError::NonPositivePivot`] naming the first pivot `≤ 0` if `a` is not positive
    /// definite; [`LinalgError::NotFinite`] if the lower triangle has a NaN or infinity.
    ///
    /// # Panics
    /// If `a` is not square.
    ///
    /// # Example
    /// ```
    /// use bilevel_linalg::{Cholesky, Mat, Par};
    /// let a = Mat::from_fn(2, 2, |i, j| if i == j { 4.0 } else { 1.0 });
    /// let b = Mat::from_fn(2, 1, |_, _| 5.0);
    /// let x = Cholesky::factor(a.as_ref(), Par::Seq)?.solve(b.as_ref(), Par::Seq);
    /// assert!((x[(0, 0)] - 1.0).abs() < 1e-14 && (x[(1, 0)] - 1.0).abs() < 1e-14);
    /// # Ok::<(), bilevel_linalg::LinalgError>(())
    /// ```
    #[track_caller]
    pub fn factor(a: MatRef<'_, f64>, par: Par) -> Result<Self, LinalgError> {
        let _simd = crate::kernels::CleanSimdOnDrop;
        assert_square("Cholesky::factor", a);
        let n = a.nrows();
        let mut l = Mat::from_fn(n, n, |i, j| if i >= j { a[(i, j)] } else { 0.0 });
        check_finite("matrix to factor", l.as_ref())?;
        let par = effective_par(par, n * n * n / 3);
        let mut buf = MemBuffer::new(llt::factor::cholesky_in_place_scratch::<f64>(
            n,
            par,
            Default::default(),
        ));
        llt::factor::cholesky_in_place(
            l.as_mut(),
            Default::default(),
            par,
            MemStack::new(&mut buf),
            Default::default(),
        )
        .map_err(|e| match e {
            llt::factor::LltError::NonPositivePivot { index } => {
                LinalgError::NonPositivePivot { index }
            }
        })?;
        // faer may leave intermediate values in the strict upper triangle.
        for j in 1..n {
            for i in 0..j {
                l[(i, j)] = 0.0;
            }
        }
        Ok(Self { l })
    }

    /// The lower-triangular factor `L` (its strict upper triangle is zero).
    pub fn l(&self) -> MatRef<'_, f64> {
        self.l.as_ref()
    }

    /// Solves `A X = rhs` in place (`rhs` is overwritten by `X`).
    ///
    /// # Panics
    /// If `rhs.nrows()` differs from the dimension of `A`.
    #[track_caller]
    pub fn solve_in_place(&self, rhs: MatMut<'_, f64>, par: Par) {
        let _simd = crate::kernels::CleanSimdOnDrop;
        let n = self.l.nrows();
        assert_rhs_rows("Cholesky::solve", n, rhs.shape());
        let par = effective_par(par, n * n * rhs.ncols());
        llt::solve::solve_in_place(
            self.l.as_ref(),
            rhs,
            par,
            MemStack::new(&mut MemBuffer::new(
                llt::solve::solve_in_place_scratch::<f64>(n, 0, par),
            )),
        );
    }

    /// Returns the solution `X` of `A X = rhs`.
    ///
    /// # Panics
    /// If `rhs.nrows()` differs from the dimension of `A`.
    #[track_caller]
    pub fn solve(&self, rhs: MatRef<'_, f64>, par: Par) -> Mat<f64> {
        let mut x = rhs.to_owned();
        self.solve_in_place(x.as_mut(), par);
        x
    }
}

/// Solves `A X = B` for a symmetric positive definite `A` by Cholesky (lower triangle of `A`
/// read).
///
/// # Errors
/// As [`Cholesky::factor`].
///
/// # Panics
/// If `a` is not square or `b.nrows() != a.nrows()`.
///
/// # Example
/// ```
/// use bilevel_linalg::{cholesky_solve, Mat, Par};
/// let a = Mat::from_fn(2, 2, |i, j| if i == j { 2.0 } else { 0.0 });
/// let b = Mat::from_fn(2, 1, |_, _| 1.0);
/// let x = cholesky_solve(a.as_ref(), b.as_ref(), Par::Seq)?;
/// assert!((x[(1, 0)] - 0.5).abs() < 1e-15);
/// # Ok::<(), bilevel_linalg::LinalgError>(())
/// ```
#[track_caller]
pub fn cholesky_solve(
    a: MatRef<'_, f64>,
    b: MatRef<'_, f64>,
    par: Par,
) -> Result<Mat<f64>, LinalgError> {
    assert_square("cholesky_solve", a);
    assert_rhs_rows("cholesky_solve", a.nrows(), b.shape());
    Ok(Cholesky::factor(a, par)?.solve(b, par))
}

/// LU factorization with partial pivoting `P A = L U` of a square matrix.
#[derive(Debug, Clone)]
pub struct Lu {
    lu: Mat<f64>,
    perm: Vec<usize>,
    perm_inv: Vec<usize>,
}

impl Lu {
    /// Factors the square matrix `a`.
    ///
    /// A pivot is taken as zero when `|uᵢᵢ| ≤ n · ε · maxᵢⱼ |aᵢⱼ|` (ε the machine epsilon).
    ///
    /// # Errors
    /// [`LinalgError::Singular`] naming the first zero pivot; [`LinalgError::NotFinite`] if `a`
    /// has a NaN or infinity.
    ///
    /// # Panics
    /// If `a` is not square.
    ///
    /// # Example
    /// ```
    /// use bilevel_linalg::{Lu, Mat, Par};
    /// let a = Mat::from_fn(2, 2, |i, j| if i == j { 0.0 } else { 2.0 }); // needs pivoting
    /// let b = Mat::from_fn(2, 1, |i, _| i as f64);
    /// let x = Lu::factor(a.as_ref(), Par::Seq)?.solve(b.as_ref(), Par::Seq);
    /// assert_eq!((x[(0, 0)], x[(1, 0)]), (0.5, 0.0));
    /// # Ok::<(), bilevel_linalg::LinalgError>(())
    /// ```
    #[track_caller]
    pub fn factor(a: MatRef<'_, f64>, par: Par) -> Result<Self, LinalgError> {
        let _simd = crate::kernels::CleanSimdOnDrop;
        assert_square("Lu::factor", a);
        check_finite("matrix to factor", a)?;
        let n = a.nrows();
        let mut lu = a.to_owned();
        let mut perm = vec![0usize; n];
        let mut perm_inv = vec![0usize; n];
        let par = effective_par(par, 2 * n * n * n / 3);
        let mut buf = MemBuffer::new(plu::factor::lu_in_place_scratch::<usize, f64>(
            n,
            n,
            par,
            Default::default(),
        ));
        plu::factor::lu_in_place(
            lu.as_mut(),
            &mut perm,
            &mut perm_inv,
            par,
            MemStack::new(&mut buf),
            Default::default(),
        );
        let tol = n as f64 * f64::EPSILON * norm_max(a);
        if let Some(index) = (0..n).find(|&i| lu[(i, i)].abs() <= tol) {
            return Err(LinalgError::Singular { index });
        }
        Ok(Self { lu, perm, perm_inv })
    }

    /// Solves `A X = rhs` in place (`rhs` is overwritten by `X`).
    ///
    /// # Panics
    /// If `rhs.nrows()` differs from the dimension of `A`.
    #[track_caller]
    pub fn solve_in_place(&self, rhs: MatMut<'_, f64>, par: Par) {
        let _simd = crate::kernels::CleanSimdOnDrop;
        let n = self.lu.nrows();
        assert_rhs_rows("Lu::solve", n, rhs.shape());
        let k = rhs.ncols();
        let par = effective_par(par, n * n * k);
        let perm = faer::perm::PermRef::new_checked(&self.perm, &self.perm_inv, n);
        plu::solve::solve_in_place(
            self.lu.as_ref(),
            self.lu.as_ref(),
            perm,
            rhs,
            par,
            MemStack::new(&mut MemBuffer::new(plu::solve::solve_in_place_scratch::<
                usize,
                f64,
            >(n, k, par))),
        );
    }

    /// Returns the solution `X` of `A X = rhs`.
    ///
    /// # Panics
    /// If `rhs.nrows()` differs from the dimension of `A`.
    #[track_caller]
    pub fn solve(&self, rhs: MatRef<'_, f64>, par: Par) -> Mat<f64> {
        let mut x = rhs.to_owned();
        self.solve_in_place(x.as_mut(), par);
        x
    }
}

/// Solves `A X = B` for a square nonsingular `A` by LU with partial pivoting.
///
/// # Errors
/// As [`Lu::factor`].
///
/// # Panics
/// If `a` is not square or `b.nrows() != a.nrows()`.
///
/// # Example
/// ```
/// use bilevel_linalg::{lu_solve, Mat, Par};
/// let a = Mat::from_fn(2, 2, |i, j| (i + 2 * j + 1) as f64);
/// let b = Mat::from_fn(2, 1, |i, _| (i + 1) as f64);
/// let x = lu_solve(a.as_ref(), b.as_ref(), Par::Seq)?;
/// // a = [[1, 3], [2, 4]], x = [1, 0]
/// assert!((x[(0, 0)] - 1.0).abs() < 1e-14 && x[(1, 0)].abs() < 1e-14);
/// # Ok::<(), bilevel_linalg::LinalgError>(())
/// ```
#[track_caller]
pub fn lu_solve(a: MatRef<'_, f64>, b: MatRef<'_, f64>, par: Par) -> Result<Mat<f64>, LinalgError> {
    assert_square("lu_solve", a);
    assert_rhs_rows("lu_solve", a.nrows(), b.shape());
    Ok(Lu::factor(a, par)?.solve(b, par))
}

/// Eigendecomposition `A = V diag(λ) Vᵀ` of a symmetric matrix.
#[derive(Debug, Clone)]
pub struct SymEigen {
    /// Eigenvalues in nondecreasing order.
    pub values: Vec<f64>,
    /// Orthonormal eigenvectors, column `i` for `values[i]` (`n × n`).
    pub vectors: Mat<f64>,
}

fn sym_evd(
    a: MatRef<'_, f64>,
    vectors: Option<MatMut<'_, f64>>,
    par: Par,
) -> Result<Vec<f64>, LinalgError> {
    let _simd = crate::kernels::CleanSimdOnDrop;
    let n = a.nrows();
    // Only the lower triangle is read, so only it is checked.
    let mut finite = true;
    for j in 0..n {
        for i in j..n {
            finite &= a[(i, j)].is_finite();
        }
    }
    if !finite {
        return Err(LinalgError::NotFinite {
            what: "symmetric matrix",
        });
    }
    let compute = if vectors.is_some() {
        evd::ComputeEigenvectors::Yes
    } else {
        evd::ComputeEigenvectors::No
    };
    let par = effective_par(par, n * n * n);
    let mut s = faer::diag::Diag::<f64>::zeros(n);
    let mut buf = MemBuffer::new(evd::self_adjoint_evd_scratch::<f64>(
        n,
        compute,
        par,
        Default::default(),
    ));
    evd::self_adjoint_evd(
        a,
        s.as_mut(),
        vectors,
        par,
        MemStack::new(&mut buf),
        Default::default(),
    )
    .map_err(|_| LinalgError::DecompositionFailed {
        algorithm: "symmetric eigendecomposition",
    })?;
    Ok(s.column_vector().iter().copied().collect())
}

/// Eigenvalues (nondecreasing) and orthonormal eigenvectors of the symmetric matrix `a`.
///
/// Only the lower triangle of `a` is read.
///
/// # Errors
/// [`LinalgError::NotFinite`] if the lower triangle has a NaN or infinity;
/// [`LinalgError::DecompositionFailed`] if faer's iteration does not converge.
///
/// # Panics
/// If `a` is not square.
///
/// # Example
/// ```
/// use bilevel_linalg::{sym_eigen, Mat, Par};
/// let a = Mat::from_fn(2, 2, |i, j| if i == j { 2.0 } else { 1.0 });
/// let e = sym_eigen(a.as_ref(), Par::Seq)?;
/// assert!((e.values[0] - 1.0).abs() < 1e-14 && (e.values[1] - 3.0).abs() < 1e-14);
/// # Ok::<(), bilevel_linalg::LinalgError>(())
/// ```
#[track_caller]
pub fn sym_eigen(a: MatRef<'_, f64>, par: Par) -> Result<SymEigen, LinalgError> {
    assert_square("sym_eigen", a);
    let n = a.nrows();
    let mut vectors = Mat::zeros(n, n);
    let values = sym_evd(a, Some(vectors.as_mut()), par)?;
    Ok(SymEigen { values, vectors })
}

/// Eigenvalues (nondecreasing) of the symmetric matrix `a`, without the eigenvectors.
///
/// Only the lower triangle of `a` is read.
///
/// # Errors
/// As [`sym_eigen`].
///
/// # Panics
/// If `a` is not square.
///
/// # Example
/// ```
/// use bilevel_linalg::{sym_eigenvalues, Mat, Par};
/// let a = Mat::from_fn(3, 3, |i, j| if i == j { (3 - i) as f64 } else { 0.0 });
/// assert_eq!(sym_eigenvalues(a.as_ref(), Par::Seq)?, vec![1.0, 2.0, 3.0]);
/// # Ok::<(), bilevel_linalg::LinalgError>(())
/// ```
#[track_caller]
pub fn sym_eigenvalues(a: MatRef<'_, f64>, par: Par) -> Result<Vec<f64>, LinalgError> {
    assert_square("sym_eigenvalues", a);
    sym_evd(a, None, par)
}

/// Thin singular value decomposition `A = U diag(s) Vᵀ` of an `m × n` matrix, with
/// `r = min(m, n)` singular triplets.
#[derive(Debug, Clone)]
pub struct Svd {
    /// Left singular vectors, `m × r`, orthonormal columns.
    pub u: Mat<f64>,
    /// Singular values, nonnegative and nonincreasing, length `r`.
    pub s: Vec<f64>,
    /// Right singular vectors, `n × r`, orthonormal columns.
    pub v: Mat<f64>,
}

/// The relative rank tolerance `max(m, n) · ε` commonly used for an `m × n` matrix: singular
/// values below `rcond · σ_max` are treated as zero.
///
/// # Example
/// ```
/// assert_eq!(bilevel_linalg::default_rcond(10, 3), 10.0 * f64::EPSILON);
/// ```
pub fn default_rcond(m: usize, n: usize) -> f64 {
    m.max(n) as f64 * f64::EPSILON
}

impl Svd {
    /// Number of singular values `> rcond · σ_max` (0 for a zero matrix).
    ///
    /// # Example
    /// ```
    /// use bilevel_linalg::{svd_thin, Mat, Par};
    /// let a = Mat::from_fn(3, 2, |i, _| i as f64); // two equal columns: rank 1
    /// assert_eq!(svd_thin(a.as_ref(), Par::Seq)?.rank(1e-12), 1);
    /// # Ok::<(), bilevel_linalg::LinalgError>(())
    /// ```
    pub fn rank(&self, rcond: f64) -> usize {
        let smax = self.s.first().copied().unwrap_or(0.0);
        self.s
            .iter()
            .take_while(|&&s| s > rcond * smax && s > 0.0)
            .count()
    }

    /// The minimal-norm least-squares solution `X = V_r diag(1/s_r) U_rᵀ B` of `A X ≈ B`, where
    /// `r` = [`rank(rcond)`](Self::rank); returns `(X, r)`.
    ///
    /// # Errors
    /// [`LinalgError::InvalidParameter`] if `rcond` is negative or not finite.
    ///
    /// # Panics
    /// If `b.nrows()` differs from the number of rows of `A`.
    ///
    /// # Example
    /// ```
    /// use bilevel_linalg::{svd_thin, Mat, Par};
    /// let a = Mat::from_fn(2, 2, |i, j| if i == j { 2.0 } else { 0.0 });
    /// let b = Mat::from_fn(2, 1, |_, _| 1.0);
    /// let (x, rank) = svd_thin(a.as_ref(), Par::Seq)?.solve_min_norm(b.as_ref(), 1e-12, Par::Seq)?;
    /// assert_eq!(rank, 2);
    /// assert!((x[(0, 0)] - 0.5).abs() < 1e-15);
    /// # Ok::<(), bilevel_linalg::LinalgError>(())
    /// ```
    #[track_caller]
    pub fn solve_min_norm(
        &self,
        b: MatRef<'_, f64>,
        rcond: f64,
        par: Par,
    ) -> Result<(Mat<f64>, usize), LinalgError> {
        assert!(
            b.nrows() == self.u.nrows(),
            "solve_min_norm: right-hand side is {}x{} but A has {} rows",
            b.nrows(),
            b.ncols(),
            self.u.nrows()
        );
        check_nonneg("rcond", rcond)?;
        let r = self.rank(rcond);
        let ur = self.u.as_ref().subcols(0, r);
        let vr = self.v.as_ref().subcols(0, r);
        let mut c = Mat::zeros(r, b.ncols());
        matmul(c.as_mut(), Accum::Replace, ur.transpose(), b, 1.0, par);
        for i in 0..r {
            let inv = 1.0 / self.s[i];
            for j in 0..c.ncols() {
                c[(i, j)] *= inv;
            }
        }
        let mut x = Mat::zeros(self.v.nrows(), b.ncols());
        matmul(x.as_mut(), Accum::Replace, vr, c.as_ref(), 1.0, par);
        Ok((x, r))
    }

    /// The Moore–Penrose pseudo-inverse `A⁺ = V_r diag(1/s_r) U_rᵀ` (`n × m`), singular values
    /// `≤ rcond · σ_max` being treated as zero.
    ///
    /// # Errors
    /// [`LinalgError::InvalidParameter`] if `rcond` is negative or not finite.
    ///
    /// # Example
    /// ```
    /// use bilevel_linalg::{svd_thin, Mat, Par};
    /// let a = Mat::from_fn(2, 1, |_, _| 1.0);
    /// let p = svd_thin(a.as_ref(), Par::Seq)?.pseudo_inverse(1e-12, Par::Seq)?;
    /// assert!((p[(0, 0)] - 0.5).abs() < 1e-15 && (p[(0, 1)] - 0.5).abs() < 1e-15);
    /// # Ok::<(), bilevel_linalg::LinalgError>(())
    /// ```
    pub fn pseudo_inverse(&self, rcond: f64, par: Par) -> Result<Mat<f64>, LinalgError> {
        check_nonneg("rcond", rcond)?;
        let r = self.rank(rcond);
        let vr = self.v.as_ref().subcols(0, r);
        let mut us = self.u.as_ref().subcols(0, r).to_owned();
        for j in 0..r {
            let inv = 1.0 / self.s[j];
            for i in 0..us.nrows() {
                us[(i, j)] *= inv;
            }
        }
        let mut p = Mat::zeros(self.v.nrows(), self.u.nrows());
        matmul(
            p.as_mut(),
            Accum::Replace,
            vr,
            us.as_ref().transpose(),
            1.0,
            par,
        );
        Ok(p)
    }
}

/// Thin SVD of `a` (`m × n`): `r = min(m, n)` singular values (nonincreasing) and vectors.
///
/// # Errors
/// [`LinalgError::NotFinite`] if `a` has a NaN or infinity; [`LinalgError::DecompositionFailed`]
/// if faer's iteration does not converge.
///
/// # Example
/// ```
/// use bilevel_linalg::{svd_thin, Mat, Par};
/// let a = Mat::from_fn(3, 2, |i, j| if i == j { (2 - j) as f64 } else { 0.0 });
/// let svd = svd_thin(a.as_ref(), Par::Seq)?;
/// assert_eq!((svd.u.shape(), svd.v.shape()), ((3, 2), (2, 2)));
/// assert!((svd.s[0] - 2.0).abs() < 1e-15 && (svd.s[1] - 1.0).abs() < 1e-15);
/// # Ok::<(), bilevel_linalg::LinalgError>(())
/// ```
pub fn svd_thin(a: MatRef<'_, f64>, par: Par) -> Result<Svd, LinalgError> {
    let _simd = crate::kernels::CleanSimdOnDrop;
    check_finite("matrix to decompose", a)?;
    let (m, n) = a.shape();
    let r = m.min(n);
    let par = effective_par(par, m * n * r);
    let mut s = faer::diag::Diag::<f64>::zeros(r);
    let mut u = Mat::zeros(m, r);
    let mut v = Mat::zeros(n, r);
    let thin = svd::ComputeSvdVectors::Thin;
    let mut buf = MemBuffer::new(svd::svd_scratch::<f64>(
        m,
        n,
        thin,
        thin,
        par,
        Default::default(),
    ));
    svd::svd(
        a,
        s.as_mut(),
        Some(u.as_mut()),
        Some(v.as_mut()),
        par,
        MemStack::new(&mut buf),
        Default::default(),
    )
    .map_err(|_| LinalgError::DecompositionFailed {
        algorithm: "singular value decomposition",
    })?;
    Ok(Svd {
        u,
        s: s.column_vector().iter().copied().collect(),
        v,
    })
}

/// Minimal-norm least-squares solution of `A X ≈ B` (`A` is `m × n`, any rank, `B` is
/// `m × k`), through the thin SVD: the `X` of smallest Frobenius norm among the minimizers of
/// `‖A X − B‖`, singular values `≤ rcond · σ_max` being treated as zero (see
/// [`default_rcond`]). Returns `(X, rank)`.
///
/// # Errors
/// [`LinalgError::InvalidParameter`] if `rcond` is negative or not finite; otherwise as
/// [`svd_thin`].
///
/// # Panics
/// If `b.nrows() != a.nrows()`.
///
/// # Example
/// ```
/// use bilevel_linalg::{lstsq_min_norm, Mat, Par};
/// // x₁ + x₂ = 2 has minimal-norm solution (1, 1).
/// let a = Mat::from_fn(1, 2, |_, _| 1.0);
/// let b = Mat::from_fn(1, 1, |_, _| 2.0);
/// let (x, rank) = lstsq_min_norm(a.as_ref(), b.as_ref(), 1e-12, Par::Seq)?;
/// assert_eq!(rank, 1);
/// assert!((x[(0, 0)] - 1.0).abs() < 1e-14 && (x[(1, 0)] - 1.0).abs() < 1e-14);
/// # Ok::<(), bilevel_linalg::LinalgError>(())
/// ```
#[track_caller]
pub fn lstsq_min_norm(
    a: MatRef<'_, f64>,
    b: MatRef<'_, f64>,
    rcond: f64,
    par: Par,
) -> Result<(Mat<f64>, usize), LinalgError> {
    assert!(
        b.nrows() == a.nrows(),
        "lstsq_min_norm shape mismatch: a {}x{}, b {}x{}",
        a.nrows(),
        a.ncols(),
        b.nrows(),
        b.ncols()
    );
    check_nonneg("rcond", rcond)?;
    svd_thin(a, par)?.solve_min_norm(b, rcond, par)
}

/// Moore–Penrose pseudo-inverse of `a` (`m × n` → `n × m`), through the thin SVD, singular
/// values `≤ rcond · σ_max` being treated as zero.
///
/// # Errors
/// As [`lstsq_min_norm`].
///
/// # Example
/// ```
/// use bilevel_linalg::{pseudo_inverse, Mat, Par};
/// let a = Mat::from_fn(2, 2, |_, _| 1.0); // rank 1: A⁺ = A / 4
/// let p = pseudo_inverse(a.as_ref(), 1e-12, Par::Seq)?;
/// assert!((p[(0, 1)] - 0.25).abs() < 1e-15);
/// # Ok::<(), bilevel_linalg::LinalgError>(())
/// ```
pub fn pseudo_inverse(a: MatRef<'_, f64>, rcond: f64, par: Par) -> Result<Mat<f64>, LinalgError> {
    check_nonneg("rcond", rcond)?;
    svd_thin(a, par)?.pseudo_inverse(rcond, par)
}

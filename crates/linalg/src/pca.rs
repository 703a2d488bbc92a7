//! Principal component analysis: [`Pca::fit`] on the rows of a data matrix (samples × features)
//! and [`Pca::transform`] to project samples onto the leading components.
//!
//! The fit eigendecomposes the `d × d` sample covariance when there are at least as many
//! samples as features (the cheaper route for MNIST-sized data, 5000 × 784), and takes the thin
//! SVD of the centred data otherwise. Components have a deterministic sign: the entry of
//! largest magnitude of each component is positive, so fits are reproducible bit for bit on the
//! same machine and comparable across decomposition routes.

use crate::dense::{svd_thin, sym_eigen};
use crate::error::check_finite;
use crate::kernels::matmul;
use crate::{Accum, LinalgError, Mat, MatRef, Par};

/// A fitted principal component analysis.
#[derive(Debug, Clone)]
pub struct Pca {
    /// Feature means of the fitted data, `1 × d`.
    mean: Mat<f64>,
    /// Principal directions as orthonormal columns, `d × k`, by decreasing variance.
    components: Mat<f64>,
    /// Variance of the data along each component (sample variance, divisor `n − 1`).
    explained_variance: Vec<f64>,
    /// Total variance of the data (trace of the sample covariance).
    total_variance: f64,
}

impl Pca {
    /// Fits `k` principal components to the rows of `x` (`n` samples × `d` features).
    ///
    /// Only the given rows are used (fit on the training split, then [`transform`](Self::transform)
    /// any split). The explained variances use the unbiased divisor `n − 1`.
    ///
    /// # Errors
    /// [`LinalgError::InvalidParameter`] if `k == 0`, `k > d` or `n < 2`;
    /// [`LinalgError::NotFinite`] if `x` has a NaN or infinity; [`LinalgError::DecompositionFailed`]
    /// if the eigendecomposition or SVD does not converge.
    ///
    /// # Example
    /// ```
    /// use bilevel_linalg::{Mat, Par, Pca};
    /// // Points on the line y = 2x: one component carries all the variance.
    /// let x = Mat::from_fn(5, 2, |i, j| (i as f64) * (j as f64 + 1.0));
    /// let pca = Pca::fit(x.as_ref(), 1, Par::Seq)?;
    /// let w = pca.components();
    /// assert!((w[(0, 0)] - 1.0 / 5f64.sqrt()).abs() < 1e-12);
    /// assert!((w[(1, 0)] - 2.0 / 5f64.sqrt()).abs() < 1e-12);
    /// assert!((pca.explained_variance_ratio()[0] - 1.0).abs() < 1e-12);
    /// let z = pca.transform(x.as_ref(), Par::Seq);
    /// assert_eq!(z.shape(), (5, 1));
    /// # Ok::<(), bilevel_linalg::LinalgError>(())
    /// ```
    pub fn fit(x: MatRef<'_, f64>, k: usize, par: Par) -> Result<Pca, LinalgError> {
        let (n, d) = x.shape();
        if k == 0 || k > d {
            return Err(LinalgError::InvalidParameter {
                name: "k",
                reason: format!("the number of components must be in 1..={d} (features), got {k}"),
            });
        }
        if n < 2 {
            return Err(LinalgError::InvalidParameter {
                name: "x",
                reason: format!("PCA needs at least 2 samples, got {n}"),
            });
        }
        check_finite("PCA data", x)?;

        let inv_n = 1.0 / n as f64;
        let mean = Mat::from_fn(1, d, |_, j| x.col(j).iter().sum::<f64>() * inv_n);
        let xc = Mat::from_fn(n, d, |i, j| x[(i, j)] - mean[(0, j)]);
        let denom = (n - 1) as f64;

        let (mut components, explained_variance, total_variance) = if n >= d || k > n {
            // d × d covariance, then its eigendecomposition (ascending order).
            let mut cov = Mat::zeros(d, d);
            matmul(
                cov.as_mut(),
                Accum::Replace,
                xc.as_ref().transpose(),
                xc.as_ref(),
                1.0 / denom,
                par,
            );
            let total: f64 = (0..d).map(|j| cov[(j, j)]).sum();
            let eig = sym_eigen(cov.as_ref(), par)?;
            let comps = Mat::from_fn(d, k, |i, j| eig.vectors[(i, d - 1 - j)]);
            let var = (0..k).map(|j| eig.values[d - 1 - j].max(0.0)).collect();
            (comps, var, total)
        } else {
            // Fewer samples than features: thin SVD of the centred data, Xc = U S Vᵀ, whose
            // `n` right singular vectors include the `k ≤ n` wanted.
            let svd = svd_thin(xc.as_ref(), par)?;
            let comps = svd.v.as_ref().subcols(0, k).to_owned();
            let var = svd.s[..k].iter().map(|s| s * s / denom).collect();
            let total = svd.s.iter().map(|s| s * s).sum::<f64>() / denom;
            (comps, var, total)
        };
        fix_signs(&mut components);
        Ok(Pca {
            mean,
            components,
            explained_variance,
            total_variance,
        })
    }
}

impl Pca {
    /// Projects the rows of `x` (samples × `d` features) onto the components:
    /// `(x − 1·mean) · components`, a `samples × k` matrix.
    ///
    /// # Panics
    /// If `x.ncols()` differs from the number of features `d` of the fit.
    ///
    /// # Example
    /// ```
    /// use bilevel_linalg::{Mat, Par, Pca};
    /// let x = Mat::from_fn(4, 3, |i, j| ((i * 7 + j * 3) % 5) as f64);
    /// let pca = Pca::fit(x.as_ref(), 2, Par::Seq)?;
    /// let z = pca.transform(pca.mean(), Par::Seq); // the mean maps to the origin
    /// assert!(z[(0, 0)].abs() < 1e-12 && z[(0, 1)].abs() < 1e-12);
    /// # Ok::<(), bilevel_linalg::LinalgError>(())
    /// ```
    #[track_caller]
    pub fn transform(&self, x: MatRef<'_, f64>, par: Par) -> Mat<f64> {
        let d = self.n_features();
        assert!(
            x.ncols() == d,
            "Pca::transform: data is {}x{} but the PCA was fitted on {d} features",
            x.nrows(),
            x.ncols()
        );
        let k = self.n_components();
        // (x − 1·μ) W = x W − 1·(μ W): no centred copy of x is needed.
        let mut mw = Mat::zeros(1, k);
        matmul(
            mw.as_mut(),
            Accum::Replace,
            self.mean.as_ref(),
            self.components.as_ref(),
            1.0,
            Par::Seq,
        );
        let mut z = Mat::from_fn(x.nrows(), k, |_, j| -mw[(0, j)]);
        matmul(
            z.as_mut(),
            Accum::Add,
            x,
            self.components.as_ref(),
            1.0,
            par,
        );
        z
    }

    /// Feature means of the fitted data, `1 × d`.
    pub fn mean(&self) -> MatRef<'_, f64> {
        self.mean.as_ref()
    }

    /// Principal directions, `d × k`, orthonormal columns by decreasing explained variance; the
    /// entry of largest magnitude of each column is positive.
    pub fn components(&self) -> MatRef<'_, f64> {
        self.components.as_ref()
    }

    /// Sample variance (divisor `n − 1`) of the fitted data along each component, nonincreasing.
    pub fn explained_variance(&self) -> &[f64] {
        &self.explained_variance
    }

    /// Fraction of the total variance explained by each component (all zero if the data has
    /// no variance).
    pub fn explained_variance_ratio(&self) -> Vec<f64> {
        let t = self.total_variance;
        self.explained_variance
            .iter()
            .map(|v| if t > 0.0 { v / t } else { 0.0 })
            .collect()
    }

    /// Total variance of the fitted data (trace of the sample covariance).
    pub fn total_variance(&self) -> f64 {
        self.total_variance
    }

    /// Number of components `k`.
    pub fn n_components(&self) -> usize {
        self.components.ncols()
    }

    /// Number of features `d`.
    pub fn n_features(&self) -> usize {
        self.components.nrows()
    }
}

/// Flips each column so that its entry of largest magnitude (the first one on ties) is positive.
fn fix_signs(w: &mut Mat<f64>) {
    for j in 0..w.ncols() {
        let mut best = 0.0f64;
        let mut sign = 1.0;
        for i in 0..w.nrows() {
            let v = w[(i, j)];
            if v.abs() > best {
                best = v.abs();
                sign = v.signum();
            }
        }
        if sign < 0.0 {
            for i in 0..w.nrows() {
                w[(i, j)] = -w[(i, j)];
            }
        }
    }
}

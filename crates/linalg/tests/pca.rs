//! PCA recovers known principal directions and variances.

mod common;

use bilevel_linalg::{LinalgError, Mat, Par, Pca};
use common::*;

/// Data with covariance `Q diag(σ²) Qᵀ` and mean `μ`: `X = Z diag(σ) Qᵀ + 1 μ`.
fn synthetic(seed: u64, n: usize, sigmas: &[f64]) -> (Mat<f64>, Mat<f64>, Mat<f64>) {
    let mut r = rng(seed);
    let d = sigmas.len();
    let q = orthogonal(&mut r, d);
    let mu = uniform(&mut r, 1, d);
    let z = normal(&mut r, n, d);
    let zs = Mat::from_fn(n, d, |i, j| z[(i, j)] * sigmas[j]);
    let x0 = mul(zs.as_ref(), q.as_ref().transpose());
    let x = Mat::from_fn(n, d, |i, j| x0[(i, j)] + 5.0 * mu[(0, j)]);
    (x, q, mu)
}

#[test]
fn recovers_principal_directions_and_variances() {
    bilevel_linalg::disable_global_parallelism();
    let sigmas = [5.0, 3.0, 2.0, 0.5, 0.4, 0.3, 0.2, 0.1];
    let (x, q, _) = synthetic(1, 20_000, &sigmas);
    let pca = Pca::fit(x.as_ref(), 3, Par::Seq).unwrap();
    assert_eq!(pca.components().shape(), (8, 3));
    for j in 0..3 {
        let cos: f64 = (0..8).map(|i| pca.components()[(i, j)] * q[(i, j)]).sum();
        assert!(cos.abs() > 0.995, "component {j}: |cos| = {}", cos.abs());
        let var = pca.explained_variance()[j];
        let want = sigmas[j] * sigmas[j];
        assert!(
            (var / want - 1.0).abs() < 0.05,
            "variance {j}: {var} vs {want}"
        );
    }
    // Orthonormal columns.
    let w = pca.components();
    let g = mul(w.transpose(), w);
    assert!(max_abs_diff(g.as_ref(), Mat::<f64>::identity(3, 3).as_ref()) < 1e-12);
    // Sign convention: largest-magnitude entry of each component is positive.
    for j in 0..3 {
        let (mut best, mut val) = (0.0f64, 0.0);
        for i in 0..8 {
            if w[(i, j)].abs() > best {
                best = w[(i, j)].abs();
                val = w[(i, j)];
            }
        }
        assert!(val > 0.0);
    }
    let total: f64 = sigmas.iter().map(|s| s * s).sum();
    assert!((pca.total_variance() / total - 1.0).abs() < 0.05);
}

#[test]
fn transform_of_mean_is_zero_and_matches_projection() {
    bilevel_linalg::disable_global_parallelism();
    let (x, _, _) = synthetic(2, 500, &[3.0, 2.0, 1.0, 0.5, 0.1]);
    let pca = Pca::fit(x.as_ref(), 2, Par::Seq).unwrap();
    let zm = pca.transform(pca.mean(), Par::Seq);
    assert_eq!(zm.shape(), (1, 2));
    assert!(zm[(0, 0)].abs() < 1e-12 && zm[(0, 1)].abs() < 1e-12);
    // transform = (x − mean) W, and the projections are centred with the fitted variances.
    let z = pca.transform(x.as_ref(), Par::Seq);
    let xc = Mat::from_fn(500, 5, |i, j| x[(i, j)] - pca.mean()[(0, j)]);
    let z2 = mul(xc.as_ref(), pca.components());
    assert!(max_abs_diff(z.as_ref(), z2.as_ref()) < 1e-10);
    for j in 0..2 {
        let mean: f64 = z.col(j).iter().sum::<f64>() / 500.0;
        let var: f64 = z.col(j).iter().map(|v| v * v).sum::<f64>() / 499.0;
        assert!(mean.abs() < 1e-10);
        assert!((var - pca.explained_variance()[j]).abs() < 1e-9 * var);
    }
}

#[test]
fn fewer_samples_than_features_uses_svd_route_consistently() {
    bilevel_linalg::disable_global_parallelism();
    // n = 6 < d = 10: the SVD route; compare with the covariance route on the same data
    // (k = 7 > n forces the covariance route).
    let mut r = rng(3);
    let x = uniform(&mut r, 6, 10);
    let a = Pca::fit(x.as_ref(), 4, Par::Seq).unwrap();
    let b = Pca::fit(x.as_ref(), 7, Par::Seq).unwrap();
    for j in 0..4 {
        assert!((a.explained_variance()[j] - b.explained_variance()[j]).abs() < 1e-10);
        for i in 0..10 {
            assert!((a.components()[(i, j)] - b.components()[(i, j)]).abs() < 1e-8);
        }
    }
    assert!(b.explained_variance()[6] < 1e-10); // rank ≤ n − 1 = 5
}

#[test]
fn fit_is_deterministic_and_rejects_bad_parameters() {
    let (x, _, _) = synthetic(4, 100, &[2.0, 1.0, 0.5]);
    let a = Pca::fit(x.as_ref(), 2, Par::Seq).unwrap();
    let b = Pca::fit(x.as_ref(), 2, Par::Seq).unwrap();
    assert_eq!(a.components(), b.components());
    assert!(matches!(
        Pca::fit(x.as_ref(), 4, Par::Seq),
        Err(LinalgError::InvalidParameter { name: "k", .. })
    ));
    assert!(matches!(
        Pca::fit(x.as_ref(), 0, Par::Seq),
        Err(LinalgError::InvalidParameter { name: "k", .. })
    ));
    assert!(matches!(
        Pca::fit(x.as_ref().subrows(0, 1), 1, Par::Seq),
        Err(LinalgError::InvalidParameter { name: "x", .. })
    ));
    let mut bad = x.clone();
    bad[(3, 1)] = f64::NAN;
    assert!(matches!(
        Pca::fit(bad.as_ref(), 1, Par::Seq),
        Err(LinalgError::NotFinite { .. })
    ));
}

#[test]
#[should_panic(expected = "fitted on 3 features")]
fn transform_panics_on_feature_mismatch() {
    let (x, _, _) = synthetic(5, 20, &[2.0, 1.0, 0.5]);
    let pca = Pca::fit(x.as_ref(), 2, Par::Seq).unwrap();
    let _ = pca.transform(Mat::<f64>::zeros(2, 4).as_ref(), Par::Seq);
}

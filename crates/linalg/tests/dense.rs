//! Cholesky, LU, symmetric eigendecomposition, SVD and minimal-norm least squares against
//! closed forms.

mod common;

use bilevel_linalg::{
    Cholesky, LinalgError, Lu, Mat, Par, cholesky_solve, default_rcond, lstsq_min_norm, lu_solve,
    pseudo_inverse, svd_thin, sym_eigen, sym_eigenvalues,
};
use common::*;

#[test]
fn lu_solves_random_nonsingular_system() {
    bilevel_linalg::disable_global_parallelism();
    let mut r = rng(10);
    for n in [1, 7, 150] {
        let a = uniform(&mut r, n, n);
        let x_true = uniform(&mut r, n, 2);
        let b = mul(a.as_ref(), x_true.as_ref());
        let x = lu_solve(a.as_ref(), b.as_ref(), Par::rayon(2)).unwrap();
        let err = max_abs_diff(x.as_ref(), x_true.as_ref());
        assert!(err < 1e-9, "n = {n}: error {err}");
    }
}

#[test]
fn lu_reports_singular_pivot() {
    // Third column = first + second: rank 2, the last pivot vanishes.
    let a = Mat::from_fn(3, 3, |i, j| match j {
        0 => (i + 1) as f64,
        1 => ((i * i) as f64) - 1.0,
        _ => (i + 1) as f64 + ((i * i) as f64) - 1.0,
    });
    match Lu::factor(a.as_ref(), Par::Seq) {
        Err(LinalgError::Singular { index }) => assert_eq!(index, 2),
        other => panic!("expected Singular, got {other:?}"),
    }
    let z = Mat::<f64>::zeros(2, 2);
    assert!(matches!(
        Lu::factor(z.as_ref(), Par::Seq),
        Err(LinalgError::Singular { index: 0 })
    ));
}

#[test]
fn cholesky_solves_spd_and_names_bad_pivot() {
    bilevel_linalg::disable_global_parallelism();
    let mut r = rng(11);
    let eigs: Vec<f64> = (0..40).map(|i| 1.0 + i as f64).collect();
    let a = with_spectrum(&mut r, &eigs);
    let x_true = uniform(&mut r, 40, 1);
    let b = mul(a.as_ref(), x_true.as_ref());
    let x = cholesky_solve(a.as_ref(), b.as_ref(), Par::Seq).unwrap();
    assert!(max_abs_diff(x.as_ref(), x_true.as_ref()) < 1e-12);
    // L Lᵀ = A, L lower triangular.
    let chol = Cholesky::factor(a.as_ref(), Par::Seq).unwrap();
    let l = chol.l();
    assert!(l[(0, 1)] == 0.0 && l[(3, 7)] == 0.0);
    let llt = mul(l, l.transpose());
    assert!(max_abs_diff(llt.as_ref(), a.as_ref()) < 1e-12);

    let indefinite = Mat::from_fn(4, 4, |i, j| {
        if i == j {
            [1.0, 2.0, -1.0, 3.0][i]
        } else {
            0.0
        }
    });
    let err = Cholesky::factor(indefinite.as_ref(), Par::Seq).unwrap_err();
    assert_eq!(err, LinalgError::NonPositivePivot { index: 2 });
    assert!(err.to_string().contains("pivot 2"));
}

#[test]
fn symmetric_eigendecomposition_recovers_known_spectrum() {
    bilevel_linalg::disable_global_parallelism();
    let mut r = rng(12);
    let eigs = [-3.0, 0.0, 0.5, 1.0, 2.0, 10.0];
    let a = with_spectrum(&mut r, &eigs);
    let e = sym_eigen(a.as_ref(), Par::Seq).unwrap();
    for (got, want) in e.values.iter().zip(eigs) {
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }
    // A V = V Λ and VᵀV = I.
    let av = mul(a.as_ref(), e.vectors.as_ref());
    let vl = Mat::from_fn(6, 6, |i, j| e.vectors[(i, j)] * e.values[j]);
    assert!(max_abs_diff(av.as_ref(), vl.as_ref()) < 1e-12);
    let vtv = mul(e.vectors.as_ref().transpose(), e.vectors.as_ref());
    assert!(max_abs_diff(vtv.as_ref(), Mat::<f64>::identity(6, 6).as_ref()) < 1e-12);
    assert_eq!(
        sym_eigenvalues(a.as_ref(), Par::Seq).unwrap().len(),
        eigs.len()
    );
}

#[test]
fn thin_svd_reconstructs() {
    bilevel_linalg::disable_global_parallelism();
    let mut r = rng(13);
    for (m, n) in [(9, 4), (4, 9), (30, 30)] {
        let a = uniform(&mut r, m, n);
        let s = svd_thin(a.as_ref(), Par::Seq).unwrap();
        let k = m.min(n);
        assert_eq!((s.u.shape(), s.v.shape(), s.s.len()), ((m, k), (n, k), k));
        assert!(s.s.windows(2).all(|w| w[0] >= w[1]));
        let us = Mat::from_fn(m, k, |i, j| s.u[(i, j)] * s.s[j]);
        let rec = mul(us.as_ref(), s.v.as_ref().transpose());
        assert!(max_abs_diff(rec.as_ref(), a.as_ref()) < 1e-12);
    }
}

#[test]
fn pseudo_inverse_gives_minimal_norm_least_squares_solution() {
    bilevel_linalg::disable_global_parallelism();
    let mut r = rng(14);
    // A = B C with B (8×3) full column rank and C = [I₃ | M] (3×6): rank 3, and
    // null(A) = null(C) is spanned by the columns of N = [−M; I₃].
    let b_fac = uniform(&mut r, 8, 3);
    let m_blk = uniform(&mut r, 3, 3);
    let c = Mat::from_fn(3, 6, |i, j| {
        if j < 3 {
            if i == j { 1.0 } else { 0.0 }
        } else {
            m_blk[(i, j - 3)]
        }
    });
    let null = Mat::from_fn(6, 3, |i, j| {
        if i < 3 {
            -m_blk[(i, j)]
        } else if i - 3 == j {
            1.0
        } else {
            0.0
        }
    });
    let a = mul(b_fac.as_ref(), c.as_ref());
    assert!(
        max_abs_diff(
            mul(a.as_ref(), null.as_ref()).as_ref(),
            Mat::zeros(8, 3).as_ref()
        ) < 1e-12
    );
    let rhs = uniform(&mut r, 8, 1); // not in the range of A: a true least-squares problem

    let (x, rank) = lstsq_min_norm(a.as_ref(), rhs.as_ref(), 1e-10, Par::Seq).unwrap();
    assert_eq!(rank, 3);
    // Normal equations: Aᵀ (A x − b) = 0, i.e. x minimizes ‖Ax − b‖.
    let ax = mul(a.as_ref(), x.as_ref());
    let resid = Mat::from_fn(8, 1, |i, _| ax[(i, 0)] - rhs[(i, 0)]);
    let normal = mul(a.as_ref().transpose(), resid.as_ref());
    assert!(
        normal.norm_max() < 1e-12,
        "normal equations: {}",
        normal.norm_max()
    );
    assert!(
        resid.norm_l2() > 1e-3,
        "the test must be a genuine least-squares problem"
    );
    // Minimal norm: x is orthogonal to the null space.
    let ntx = mul(null.as_ref().transpose(), x.as_ref());
    assert!(
        ntx.norm_max() < 1e-12,
        "null-space component: {}",
        ntx.norm_max()
    );

    // The pseudo-inverse gives the same x and satisfies the Penrose identities.
    let p = pseudo_inverse(a.as_ref(), 1e-10, Par::Seq).unwrap();
    assert_eq!(p.shape(), (6, 8));
    let px = mul(p.as_ref(), rhs.as_ref());
    assert!(max_abs_diff(px.as_ref(), x.as_ref()) < 1e-12);
    let apa = mul(mul(a.as_ref(), p.as_ref()).as_ref(), a.as_ref());
    assert!(max_abs_diff(apa.as_ref(), a.as_ref()) < 1e-12);
    let pap = mul(mul(p.as_ref(), a.as_ref()).as_ref(), p.as_ref());
    assert!(max_abs_diff(pap.as_ref(), p.as_ref()) < 1e-10);

    // With rcond = 0 the tiny spurious singular values would be inverted: rank is then 6, not 3,
    // unless they are exactly zero. The default tolerance must find rank 3.
    let (_, rank_default) =
        lstsq_min_norm(a.as_ref(), rhs.as_ref(), default_rcond(8, 6), Par::Seq).unwrap();
    assert_eq!(rank_default, 3);
}

#[test]
fn bad_parameters_and_non_finite_inputs_are_typed_errors() {
    let a = Mat::<f64>::identity(3, 3);
    let b = Mat::<f64>::zeros(3, 1);
    assert!(matches!(
        lstsq_min_norm(a.as_ref(), b.as_ref(), -1.0, Par::Seq),
        Err(LinalgError::InvalidParameter { name: "rcond", .. })
    ));
    assert!(matches!(
        pseudo_inverse(a.as_ref(), f64::NAN, Par::Seq),
        Err(LinalgError::InvalidParameter { name: "rcond", .. })
    ));
    let mut nan = a.clone();
    nan[(2, 1)] = f64::NAN;
    assert!(matches!(
        svd_thin(nan.as_ref(), Par::Seq),
        Err(LinalgError::NotFinite { .. })
    ));
    assert!(matches!(
        sym_eigen(nan.as_ref(), Par::Seq),
        Err(LinalgError::NotFinite { .. })
    ));
    assert!(matches!(
        Cholesky::factor(nan.as_ref(), Par::Seq),
        Err(LinalgError::NotFinite { .. })
    ));
    assert!(matches!(
        Lu::factor(nan.as_ref(), Par::Seq),
        Err(LinalgError::NotFinite { .. })
    ));
}

#[test]
#[should_panic(expected = "right-hand side is 4x1 but the factored matrix is 3x3")]
fn solve_panics_on_shape_mismatch() {
    let a = Mat::<f64>::identity(3, 3);
    let _ = lu_solve(a.as_ref(), Mat::<f64>::zeros(4, 1).as_ref(), Par::Seq);
}

//! Conjugate gradient and the truncated Neumann series on matrix-free operators.

mod common;

use bilevel_linalg::{
    CgError, CgParams, CgStart, CgWorkspace, DenseOp, LinOp, LinalgError, Mat, MatMut, MatRef,
    NeumannWorkspace, Par, cholesky_solve, conjugate_gradient, neumann_series,
};
use common::*;

fn rel_residual(a: &Mat<f64>, x: &Mat<f64>, b: &Mat<f64>) -> f64 {
    let ax = mul(a.as_ref(), x.as_ref());
    let r = Mat::from_fn(b.nrows(), 1, |i, _| b[(i, 0)] - ax[(i, 0)]);
    r.norm_l2() / b.norm_l2()
}

#[test]
fn cg_agrees_with_cholesky_on_random_spd_systems() {
    bilevel_linalg::disable_global_parallelism();
    let mut r = rng(20);
    for (n, cond) in [(5, 3.0), (80, 100.0), (200, 1e3)] {
        let eigs: Vec<f64> = (0..n)
            .map(|i| 1.0 + (cond - 1.0) * i as f64 / (n - 1) as f64)
            .collect();
        let a = with_spectrum(&mut r, &eigs);
        let b = uniform(&mut r, n, 1);
        let x_chol = cholesky_solve(a.as_ref(), b.as_ref(), Par::Seq).unwrap();
        let mut x = Mat::zeros(n, 1);
        let mut ws = CgWorkspace::new(n);
        let params = CgParams {
            rel_tol: 1e-14,
            max_iter: 10 * n,
        };
        let info = conjugate_gradient(
            &mut DenseOp::new(a.as_ref(), Par::Seq),
            b.as_ref(),
            x.as_mut(),
            CgStart::Zero,
            &params,
            &mut ws,
        )
        .unwrap();
        assert!(info.rel_residual <= 1e-14);
        let diff = max_abs_diff(x.as_ref(), x_chol.as_ref());
        assert!(diff < 1e-10, "n = {n}: CG and Cholesky differ by {diff}");
        // The reported residual tracks the true one.
        assert!(rel_residual(&a, &x, &b) < 1e-12);
    }
}

#[test]
fn cg_warm_start_from_the_solution_needs_no_iteration() {
    let mut r = rng(21);
    let eigs: Vec<f64> = (1..=30).map(|i| i as f64).collect();
    let a = with_spectrum(&mut r, &eigs);
    let b = uniform(&mut r, 30, 1);
    let mut op = DenseOp::new(a.as_ref(), Par::Seq);
    let mut ws = CgWorkspace::new(30);
    let params = CgParams {
        rel_tol: 1e-10,
        max_iter: 300,
    };
    let mut x = Mat::zeros(30, 1);
    let cold = conjugate_gradient(
        &mut op,
        b.as_ref(),
        x.as_mut(),
        CgStart::Zero,
        &params,
        &mut ws,
    )
    .unwrap();
    assert!(cold.iterations > 5);
    let warm = conjugate_gradient(
        &mut op,
        b.as_ref(),
        x.as_mut(),
        CgStart::Warm,
        &params,
        &mut ws,
    )
    .unwrap();
    assert_eq!(warm.iterations, 0);
    // A perturbed warm start converges, and faster than from zero.
    for i in 0..30 {
        x[(i, 0)] *= 1.0 + 1e-6 * (i as f64 - 15.0);
    }
    let near = conjugate_gradient(
        &mut op,
        b.as_ref(),
        x.as_mut(),
        CgStart::Warm,
        &params,
        &mut ws,
    )
    .unwrap();
    assert!(near.iterations < cold.iterations, "{near:?} vs {cold:?}");
    assert!(rel_residual(&a, &x, &b) < 1e-9);
}

#[test]
fn cg_non_convergence_is_a_typed_error_with_the_residual() {
    let mut r = rng(22);
    let eigs: Vec<f64> = (0..100)
        .map(|i| 10f64.powf(4.0 * i as f64 / 99.0))
        .collect();
    let a = with_spectrum(&mut r, &eigs);
    let b = uniform(&mut r, 100, 1);
    let mut x = Mat::zeros(100, 1);
    let params = CgParams {
        rel_tol: 1e-12,
        max_iter: 5,
    };
    let err = conjugate_gradient(
        &mut DenseOp::new(a.as_ref(), Par::Seq),
        b.as_ref(),
        x.as_mut(),
        CgStart::Zero,
        &params,
        &mut CgWorkspace::new(100),
    )
    .unwrap_err();
    match err {
        CgError::NoConvergence {
            residual,
            iterations,
        } => {
            assert_eq!(iterations, 5);
            assert!(residual > 1e-12 && residual.is_finite());
            // x holds the last iterate, whose true residual is the one reported.
            let true_res = rel_residual(&a, &x, &b);
            assert!((true_res - residual).abs() < 1e-8 * residual.max(1.0));
        }
        other => panic!("expected NoConvergence, got {other:?}"),
    }
    assert!(err.to_string().contains("after 5 iterations"));
}

#[test]
fn cg_detects_non_positive_curvature_nan_and_bad_tolerance() {
    let mut ws = CgWorkspace::new(3);
    let mut x = Mat::zeros(3, 1);
    let b = Mat::from_fn(3, 1, |_, _| 1.0);
    // diag(1, -3, 1): bᵀHb = -1 < 0 on the first step.
    let mut indefinite = |v: MatRef<'_, f64>, mut out: MatMut<'_, f64>| {
        for i in 0..3 {
            out[(i, 0)] = if i == 1 { -3.0 } else { 1.0 } * v[(i, 0)];
        }
    };
    let params = CgParams::default();
    match conjugate_gradient(
        &mut indefinite,
        b.as_ref(),
        x.as_mut(),
        CgStart::Zero,
        &params,
        &mut ws,
    ) {
        Err(CgError::NonPositiveCurvature {
            curvature,
            iteration,
        }) => {
            assert_eq!(iteration, 0);
            assert!((curvature + 1.0 / 3.0).abs() < 1e-15);
        }
        other => panic!("expected NonPositiveCurvature, got {other:?}"),
    }
    let mut nan_op = |_: MatRef<'_, f64>, mut out: MatMut<'_, f64>| out.fill(f64::NAN);
    assert_eq!(
        conjugate_gradient(
            &mut nan_op,
            b.as_ref(),
            x.as_mut(),
            CgStart::Zero,
            &params,
            &mut ws
        ),
        Err(CgError::NotFinite { iteration: 0 })
    );
    let bad = CgParams {
        rel_tol: -1.0,
        ..CgParams::default()
    };
    let mut id = |v: MatRef<'_, f64>, mut out: MatMut<'_, f64>| out.copy_from(v);
    assert!(matches!(
        conjugate_gradient(
            &mut id,
            b.as_ref(),
            x.as_mut(),
            CgStart::Zero,
            &bad,
            &mut ws
        ),
        Err(CgError::InvalidParameter {
            name: "rel_tol",
            ..
        })
    ));
    // Zero right-hand side: x = 0 without any iteration.
    x.fill(7.0);
    let zero = Mat::<f64>::zeros(3, 1);
    let info = conjugate_gradient(
        &mut id,
        zero.as_ref(),
        x.as_mut(),
        CgStart::Warm,
        &params,
        &mut ws,
    )
    .unwrap();
    assert_eq!((info.iterations, x.norm_max()), (0, 0.0));
}

#[test]
fn neumann_series_converges_to_the_cg_solution() {
    bilevel_linalg::disable_global_parallelism();
    let mut r = rng(23);
    let n = 60;
    let eigs: Vec<f64> = (0..n).map(|i| 1.0 + i as f64 / (n - 1) as f64).collect(); // [1, 2]
    let a = with_spectrum(&mut r, &eigs);
    let b = uniform(&mut r, n, 1);
    let mut x_cg = Mat::zeros(n, 1);
    conjugate_gradient(
        &mut DenseOp::new(a.as_ref(), Par::Seq),
        b.as_ref(),
        x_cg.as_mut(),
        CgStart::Zero,
        &CgParams {
            rel_tol: 1e-14,
            max_iter: 500,
        },
        &mut CgWorkspace::new(n),
    )
    .unwrap();

    // η = 0.5: ‖I − ηH‖ = 0.5, so the error after K terms is at most 0.5^K ‖H⁻¹b‖.
    let mut ws = NeumannWorkspace::new(n);
    let mut x = Mat::zeros(n, 1);
    let mut prev_err = f64::INFINITY;
    for terms in [1, 5, 20, 60] {
        let info = neumann_series(
            &mut DenseOp::new(a.as_ref(), Par::Seq),
            b.as_ref(),
            0.5,
            terms,
            x.as_mut(),
            &mut ws,
        )
        .unwrap();
        assert_eq!(info.applications, terms - 1);
        let err = max_abs_diff(x.as_ref(), x_cg.as_ref());
        let bound = 0.5f64.powi(terms as i32) * x_cg.norm_l2();
        assert!(
            err <= bound + 1e-13,
            "K = {terms}: error {err} > bound {bound}"
        );
        assert!(err < prev_err);
        assert!(info.last_term_rel_norm <= 0.5f64.powi(terms as i32 - 1) + 1e-15);
        prev_err = err;
    }
    assert!(prev_err < 1e-10);

    assert!(matches!(
        neumann_series(
            &mut DenseOp::new(a.as_ref(), Par::Seq),
            b.as_ref(),
            0.0,
            3,
            x.as_mut(),
            &mut ws
        ),
        Err(LinalgError::InvalidParameter { name: "eta", .. })
    ));
    // η = 3 > 2/λ_max: the series diverges to infinity and is reported as non-finite.
    assert!(matches!(
        neumann_series(
            &mut DenseOp::new(a.as_ref(), Par::Seq),
            b.as_ref(),
            3.0,
            2000,
            x.as_mut(),
            &mut ws
        ),
        Err(LinalgError::NotFinite { .. })
    ));
}

#[test]
fn closures_and_dense_operators_are_interchangeable() {
    let mut r = rng(24);
    let a = uniform(&mut r, 5, 5);
    let v = uniform(&mut r, 5, 1);
    let mut hv1 = Mat::zeros(5, 1);
    let mut hv2 = Mat::zeros(5, 1);
    DenseOp::new(a.as_ref(), Par::Seq).apply(v.as_ref(), hv1.as_mut());
    let mut closure = |v: MatRef<'_, f64>, mut out: MatMut<'_, f64>| {
        out.copy_from(mul(a.as_ref(), v).as_ref());
    };
    closure.apply(v.as_ref(), hv2.as_mut());
    assert_eq!(hv1, hv2);
}

#[test]
#[should_panic(expected = "workspace dimension 4")]
fn cg_panics_on_workspace_mismatch() {
    let b = Mat::<f64>::zeros(3, 1);
    let mut x = Mat::<f64>::zeros(3, 1);
    let mut id = |v: MatRef<'_, f64>, mut out: MatMut<'_, f64>| out.copy_from(v);
    let _ = conjugate_gradient(
        &mut id,
        b.as_ref(),
        x.as_mut(),
        CgStart::Zero,
        &CgParams::default(),
        &mut CgWorkspace::new(4),
    );
}

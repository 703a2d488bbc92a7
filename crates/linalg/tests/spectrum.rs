//! Power iteration and Lanczos recover known spectra of rotated diagonal matrices.

mod common;

use bilevel_linalg::{
    DenseOp, LanczosParams, LinalgError, MatMut, MatRef, Par, PowerParams,
    lanczos_extreme_eigenvalues, power_iteration,
};
use common::*;

#[test]
fn lanczos_recovers_extreme_eigenvalues() {
    bilevel_linalg::disable_global_parallelism();
    let mut r = rng(30);
    let n = 150;
    // Spectrum in [0.01, 50]: κ = 5000.
    let eigs: Vec<f64> = (0..n)
        .map(|i| 0.01 + 49.99 * (i as f64 / (n - 1) as f64).powi(2))
        .collect();
    let a = with_spectrum(&mut r, &eigs);
    let params = LanczosParams {
        max_steps: 150,
        rel_tol: 1e-10,
        seed: 1,
    };
    let est = lanczos_extreme_eigenvalues(
        &mut DenseOp::new(a.as_ref(), Par::Seq),
        n,
        &params,
        Par::Seq,
    )
    .unwrap();
    assert!(est.converged, "{est:?}");
    assert!((est.lambda_max - 50.0).abs() < 1e-8, "{est:?}");
    assert!((est.lambda_min - 0.01).abs() < 1e-9, "{est:?}");
    assert!((est.condition_number() / 5000.0 - 1.0).abs() < 1e-6);
    // Ritz values are inner bounds of the spectrum.
    assert!(est.lambda_max <= 50.0 + 1e-12 && est.lambda_min >= 0.01 - 1e-12);

    // Deterministic for a seed.
    let again = lanczos_extreme_eigenvalues(
        &mut DenseOp::new(a.as_ref(), Par::Seq),
        n,
        &params,
        Par::Seq,
    )
    .unwrap();
    assert_eq!(est, again);
}

#[test]
fn lanczos_with_few_steps_reports_non_convergence_honestly() {
    let mut r = rng(31);
    let eigs: Vec<f64> = (0..100).map(|i| 1.0 + i as f64).collect();
    let a = with_spectrum(&mut r, &eigs);
    let params = LanczosParams {
        max_steps: 4,
        rel_tol: 1e-12,
        seed: 0,
    };
    let est = lanczos_extreme_eigenvalues(
        &mut DenseOp::new(a.as_ref(), Par::Seq),
        100,
        &params,
        Par::Seq,
    )
    .unwrap();
    assert!(!est.converged);
    assert_eq!(est.steps, 4);
    assert!(est.residual_min > 1e-12 && est.lambda_min >= 1.0 && est.lambda_max <= 100.0);
}

#[test]
fn lanczos_on_a_small_space_terminates_exactly() {
    // Three distinct eigenvalues in dimension 40: the Krylov space is invariant after 3 steps.
    let mut r = rng(32);
    let eigs: Vec<f64> = (0..40).map(|i| [1.0, 4.0, 9.0][i % 3]).collect();
    let a = with_spectrum(&mut r, &eigs);
    let est = lanczos_extreme_eigenvalues(
        &mut DenseOp::new(a.as_ref(), Par::Seq),
        40,
        &LanczosParams::default(),
        Par::Seq,
    )
    .unwrap();
    assert!(est.converged && est.steps <= 4, "{est:?}");
    assert!((est.lambda_max - 9.0).abs() < 1e-10 && (est.lambda_min - 1.0).abs() < 1e-10);
}

#[test]
fn power_iteration_recovers_largest_and_smallest_eigenvalues() {
    bilevel_linalg::disable_global_parallelism();
    let mut r = rng(33);
    let mut eigs: Vec<f64> = (0..50).map(|i| 1.0 + 0.1 * i as f64).collect(); // [1, 5.9]
    eigs.push(10.0); // gap ratio 5.9 / 10
    let a = with_spectrum(&mut r, &eigs);
    let n = eigs.len();
    let mut op = DenseOp::new(a.as_ref(), Par::Seq);
    let top = power_iteration(
        &mut op,
        n,
        &PowerParams {
            rel_tol: 1e-10,
            seed: 5,
            ..PowerParams::default()
        },
    )
    .unwrap();
    assert!((top.eigenvalue - 10.0).abs() < 1e-9, "{}", top.eigenvalue);
    // The eigenvector satisfies A v = λ v.
    let av = mul(a.as_ref(), top.eigenvector.as_ref());
    let lv = bilevel_linalg::Mat::from_fn(n, 1, |i, _| top.eigenvalue * top.eigenvector[(i, 0)]);
    let d = max_abs_diff(av.as_ref(), lv.as_ref());
    assert!(d < 1e-8, "{d} {} {}", top.iterations, top.residual);

    // Shifted by λ_max, the dominant eigenvalue is λ_min − λ_max.
    let bottom = power_iteration(
        &mut op,
        n,
        &PowerParams {
            rel_tol: 1e-9,
            max_iter: 5000,
            seed: 5,
            shift: top.eigenvalue,
        },
    )
    .unwrap();
    assert!(
        (bottom.eigenvalue - 1.0).abs() < 1e-6,
        "{}",
        bottom.eigenvalue
    );
}

#[test]
fn power_iteration_failures_are_typed() {
    let mut r = rng(34);
    let eigs: Vec<f64> = (0..30).map(|i| 1.0 + i as f64).collect();
    let a = with_spectrum(&mut r, &eigs);
    let err = power_iteration(
        &mut DenseOp::new(a.as_ref(), Par::Seq),
        30,
        &PowerParams {
            max_iter: 3,
            rel_tol: 1e-12,
            ..PowerParams::default()
        },
    )
    .unwrap_err();
    match err {
        LinalgError::NoConvergence {
            iterations,
            residual,
            ..
        } => assert!(iterations == 3 && residual > 1e-12),
        other => panic!("expected NoConvergence, got {other:?}"),
    }
    let mut nan_op = |_: MatRef<'_, f64>, mut out: MatMut<'_, f64>| out.fill(f64::NAN);
    assert!(matches!(
        power_iteration(&mut nan_op, 3, &PowerParams::default()),
        Err(LinalgError::NotFinite { .. })
    ));
    assert!(matches!(
        lanczos_extreme_eigenvalues(&mut nan_op, 3, &LanczosParams::default(), Par::Seq),
        Err(LinalgError::NotFinite { .. })
    ));
    assert!(matches!(
        lanczos_extreme_eigenvalues(
            &mut nan_op,
            3,
            &LanczosParams {
                rel_tol: -1.0,
                ..LanczosParams::default()
            },
            Par::Seq
        ),
        Err(LinalgError::InvalidParameter {
            name: "rel_tol",
            ..
        })
    ));
}

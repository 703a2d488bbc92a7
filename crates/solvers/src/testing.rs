//! Shared test fixtures (behind the `testing` feature): every solver with parameters suited to a
//! lower level of a given smoothness, as the snapshot and checkpoint tests and the per-iteration
//! bench use them.

use crate::algorithms::*;
use crate::problem::Problem;
use crate::record::Status;
use crate::runner::{RunConfig, RunResult, Runner};
use crate::solver::Solver;

/// `iters` iterations of `s` on `p` through the [`Runner`], metrics at the end only.
///
/// # Panics
/// If the run fails or stops before `iters` iterations (naming the solver).
pub fn run_iters(p: &dyn Problem, s: &mut dyn Solver, iters: u64) -> RunResult {
    let r = Runner::new(RunConfig {
        metrics_every: iters,
        ..RunConfig::iters(iters)
    })
    .unwrap()
    .run(p, s)
    .unwrap();
    assert_eq!(r.status, Status::MaxIter, "{}", s.name());
    r
}

/// Every implemented solver, labelled, with parameters suited to a lower level of smoothness
/// `l`; a label names the variant where one solver appears twice (`aidbio-cg`,
/// `aidbio-neumann`), and the snapshots are named by it.
pub fn solvers(l: f64) -> Vec<(&'static str, Box<dyn Solver>)> {
    vec![
        (
            "aid-single-loop",
            Box::new(SingleLoopAid::new(SingleLoopAidParams::for_lipschitz(l, 0.5 / l)).unwrap()),
        ),
        (
            "itd-single-loop",
            Box::new(SingleLoopItd::new(SingleLoopItdParams::for_lipschitz(l, 0.5 / l)).unwrap()),
        ),
        // Theorem 4.2 needs γ ≤ 1/(L_f + αL_h). For both problems here ∇ᵧg = Zy − Lx + 1 or
        // Hᵀ(Hy − x), so L_h = 2‖[∇²ᵧᵧg, ∇²ᵧₓg]‖² ≤ 4l² (quadratic: 4L²; sc-sincos:
        // 2‖H‖²(‖H‖² + 1) ≈ 2.0e4 ≤ 4e4). The step 0.1/l alone ignores L_h and is 40 times too
        // large on sc-sincos, where it diverged.
        (
            "pgd-qp-rho-grad-sq",
            Box::new(
                PgdQp::new(PgdQpParams::theorem_4_2(
                    (0.1 / l).min(1.0 / (l + 4.0 * l * l)),
                    1.0,
                ))
                .unwrap(),
            ),
        ),
        (
            "pgd-qp-rho-sqrt-h0",
            Box::new(
                PgdQp::new(PgdQpParams {
                    warm_start_step: 1.0 / l,
                    ..PgdQpParams::corollary_4_6(1000, l)
                })
                .unwrap(),
            ),
        ),
        (
            "galet",
            Box::new(
                Galet::new(GaletParams {
                    alpha: 0.5 / l,
                    beta: 1.0 / l,
                    rho: 1.0 / (l * l),
                    ..GaletParams::default()
                })
                .unwrap(),
            ),
        ),
        (
            "rhg",
            Box::new(
                Rhg::new(RhgParams {
                    alpha: 1.0 / l,
                    beta: 0.5 / l,
                    ..RhgParams::default()
                })
                .unwrap(),
            ),
        ),
        (
            "rhg-truncated",
            Box::new(
                Rhg::new(RhgParams {
                    alpha: 1.0 / l,
                    beta: 0.5 / l,
                    truncate: Some(3),
                    ..RhgParams::default()
                })
                .unwrap(),
            ),
        ),
        (
            "iaptt-gm",
            Box::new(
                IapttGm::new(IapttGmParams {
                    alpha: 1.0 / l,
                    beta: 0.5 / l,
                    beta_z: 0.5 / l,
                    inner_steps: 10,
                })
                .unwrap(),
            ),
        ),
        (
            "aidbio-cg",
            Box::new(
                AidBio::new(AidBioParams {
                    alpha: 1.0 / l,
                    beta: 0.5 / l,
                    ..AidBioParams::default()
                })
                .unwrap(),
            ),
        ),
        (
            "aidbio-neumann",
            Box::new(
                AidBio::new(AidBioParams {
                    alpha: 1.0 / l,
                    beta: 0.5 / l,
                    inner_steps: 10,
                    solve: LinearSolve::Neumann {
                        terms: 10,
                        eta: 1.0 / l,
                    },
                    batch: None,
                })
                .unwrap(),
            ),
        ),
        (
            "bome",
            Box::new(
                Bome::new(BomeParams {
                    xi: 0.1 / l,
                    inner_step: 1.0 / l,
                    ..BomeParams::default()
                })
                .unwrap(),
            ),
        ),
        (
            "v-pbgd",
            Box::new(
                VPbgd::new(VPbgdParams {
                    alpha: 0.05 / l,
                    inner_step: 1.0 / l,
                    ..VPbgdParams::default()
                })
                .unwrap(),
            ),
        ),
        (
            "meha",
            Box::new(
                Meha::new(MehaParams {
                    alpha: 0.5 / l,
                    beta: 0.9 / l,
                    eta: 0.9 / l,
                    gamma: 10.0 / l,
                    ..MehaParams::default()
                })
                .unwrap(),
            ),
        ),
        (
            "f2sa",
            Box::new(
                F2sa::new(F2saParams {
                    schedule: PenaltySchedule {
                        alpha0: 0.05 / l,
                        gamma0: 1.0 / l,
                        ..PenaltySchedule::default()
                    },
                    ..F2saParams::default()
                })
                .unwrap(),
            ),
        ),
        (
            "f2sa-fixed-lambda",
            Box::new(
                F2sa::new(F2saParams::fixed_lambda(
                    10.0,
                    0.05 / l,
                    1.0 / l,
                    0.05 / l,
                    5,
                ))
                .unwrap(),
            ),
        ),
        (
            "prox-f2sa-two-loop",
            Box::new(
                // The default z_ratio = 3 puts z's prox parameter and step at 1/l and 0.5/l.
                ProxF2saTwoLoop::new(ProxF2saParams {
                    gamma: 0.5 / (3.0 * l),
                    rho: 1.0 / (3.0 * l),
                    ..ProxF2saParams::default()
                })
                .unwrap(),
            ),
        ),
        (
            "f3sa",
            Box::new(
                F3sa::new(F3saParams {
                    schedule: PenaltySchedule {
                        alpha0: 0.05 / l,
                        gamma0: 1.0 / l,
                        // c > 0 turns the momentum on (η_k < 1 after the first step).
                        a: 0.5,
                        c: 0.25,
                        ..PenaltySchedule::default()
                    },
                    ..F3saParams::default()
                })
                .unwrap(),
            ),
        ),
        (
            "mgbio",
            Box::new(
                Mgbio::new(MgbioParams {
                    lambda: 1.0 / l,
                    gamma: 0.5 / l,
                    ..MgbioParams::default()
                })
                .unwrap(),
            ),
        ),
        (
            "hjfbio",
            Box::new(
                Hjfbio::new(HjfbioParams {
                    lambda: 1.0 / l,
                    tau: 1.0 / l,
                    gamma: 0.5 / l,
                    ..HjfbioParams::default()
                })
                .unwrap(),
            ),
        ),
        (
            "prox-f2sa-momentum",
            Box::new(
                // As for the two-loop method: z gets 1/l and 0.5/l.
                ProxF2saMomentum::new(ProxF2saMomentumParams {
                    gamma0: 0.5 / (3.0 * l),
                    rho: 1.0 / (3.0 * l),
                    n: 0.5,
                    ..ProxF2saMomentumParams::default()
                })
                .unwrap(),
            ),
        ),
    ]
}

//! Convergence tests that could fail: each method against its theory on problems with known
//! answers.

use bilevel_solvers::algorithms::*;
use bilevel_solvers::problems::{GaletExample1, NastyConstrained, QuadraticKappa, ScSinCos};
use bilevel_solvers::{Metrics, Problem, RunConfig, Runner, Solver, Status};

fn final_metrics(p: &dyn Problem, s: &mut dyn Solver, iters: u64) -> Metrics {
    let cfg = RunConfig {
        metrics_every: iters,
        ..RunConfig::iters(iters)
    };
    let r = Runner::new(cfg).unwrap().run(p, s).unwrap();
    assert_eq!(r.status, Status::MaxIter, "{}", s.name());
    r.last_metrics().unwrap().clone()
}

fn grad_phi_sq(p: &dyn Problem, s: &mut dyn Solver, iters: u64) -> f64 {
    final_metrics(p, s, iters).grad_phi_norm.unwrap().powi(2)
}

/// The floor `Σᵢ (0.1 L/zᵢ · (1 − s zᵢ)^T)²` of `‖∇Φ‖²` at the fixed point of a method whose
/// linear-system solution is the `T`-term Neumann series `Z⁻¹(I − (I − sZ)^T)∇ᵧf` on the
/// quadratic problem (`Z = diag(L, μ)`, `∇ᵧf = 0.1·1`, `∇²ₓᵧg = −L I`): at the fixed point
/// `Zx = L·w`, so `∇Φᵢ = 0.1 L/zᵢ − L wᵢ = 0.1 L/zᵢ (1 − s zᵢ)^T`.
fn neumann_floor(p: &QuadraticKappa, s_of_z: impl Fn(f64) -> f64, t: i32) -> f64 {
    let (l, mu) = (p.l(), p.mu());
    [l, mu]
        .iter()
        .map(|&z| (0.1 * l / z * (1.0 - s_of_z(z)).powi(t)).powi(2))
        .sum()
}

/// `‖∇Φ‖² ≤ 1e-8`, or, when theory predicts a floor above that, within 1% of the floor.
#[track_caller]
fn assert_reaches(name: &str, got: f64, floor: f64) {
    eprintln!("{name}: ‖∇Φ‖² = {got:.3e} (floor {floor:.3e})");
    if floor <= 1e-9 {
        assert!(got <= 1e-8, "{name}: ‖∇Φ‖² = {got:e} > 1e-8");
    } else {
        assert!(
            (got - floor).abs() <= 0.01 * floor + 1e-10,
            "{name}: ‖∇Φ‖² = {got:e}, predicted floor {floor:e}"
        );
    }
}

#[test]
fn quadratic_kappa_each_method_reaches_its_floor() {
    for kappa in [2.0, 10.0] {
        let p = QuadraticKappa::new(kappa, 2);
        let l = p.l();
        let iters = 3000;
        // Single-loop AID: exact in the limit (Theorem 1), no floor.
        let mut s = SingleLoopAid::new(SingleLoopAidParams::from_smoothness(l, 0.5 / l)).unwrap();
        assert_reaches(
            &format!("aid k{kappa}"),
            grad_phi_sq(&p, &mut s, iters),
            0.0,
        );
        // Single-loop ITD with α = 1/L: one unrolled step is a 1-term Neumann series, so
        // ‖∇Φ‖² → 0.01(κ − 1)² (the Θ(κ²) floor of Theorem 4).
        let mut s = SingleLoopItd::new(SingleLoopItdParams::from_smoothness(l, 0.5 / l)).unwrap();
        let floor = 0.01 * (kappa - 1.0).powi(2);
        assert_reaches(
            &format!("itd k{kappa}"),
            grad_phi_sq(&p, &mut s, iters),
            floor,
        );
        // RHG through T = 20 steps with α = 1/L: a 20-term Neumann series.
        let mut s = Rhg::new(RhgParams {
            alpha: 1.0 / l,
            beta: 0.5 / l,
            inner_steps: 20,
            ..RhgParams::default()
        })
        .unwrap();
        let floor = neumann_floor(&p, |z| z / l, 20);
        assert_reaches(
            &format!("rhg k{kappa}"),
            grad_phi_sq(&p, &mut s, iters),
            floor,
        );
        // Truncated RHG: only the last K = 5 steps count, a 5-term series.
        let mut s = Rhg::new(RhgParams {
            alpha: 1.0 / l,
            beta: 0.5 / l,
            inner_steps: 20,
            truncate: Some(5),
            warm_start: true,
        })
        .unwrap();
        let floor = neumann_floor(&p, |z| z / l, 5);
        assert_reaches(
            &format!("rhg-trunc k{kappa}"),
            grad_phi_sq(&p, &mut s, iters),
            floor,
        );
        // AIDBiO with CG: the 2×2 system is solved exactly.
        let mut s = AidBio::new(AidBioParams {
            alpha: 1.0 / l,
            beta: 0.5 / l,
            inner_steps: 5,
            ..AidBioParams::default()
        })
        .unwrap();
        assert_reaches(
            &format!("aidbio-cg k{kappa}"),
            grad_phi_sq(&p, &mut s, iters),
            0.0,
        );
        // AIDBiO with a Q = 10 term Neumann series, η = 1/L.
        let mut s = AidBio::new(AidBioParams {
            alpha: 1.0 / l,
            beta: 0.5 / l,
            inner_steps: 5,
            solve: LinearSolve::Neumann {
                terms: 10,
                eta: 1.0 / l,
            },
        })
        .unwrap();
        let floor = neumann_floor(&p, |z| z / l, 10);
        assert_reaches(
            &format!("aidbio-neumann k{kappa}"),
            grad_phi_sq(&p, &mut s, iters),
            floor,
        );
        // GALET with T w-steps from w = 0 (eq. (12)): w = −Z⁻¹(I − (I − ρZ²)^T)∇ᵧf, a floor
        // that vanishes only as T → ∞ (Lemma 5). Paper defaults except α (the paper's 0.3 is for
        // its Example 1) and ρ = 1/L² (Lemma 5's bound).
        let t = 50;
        let mut s = Galet::new(GaletParams {
            alpha: 0.5 / l,
            beta: 1.0 / l,
            rho: 1.0 / (l * l),
            t_inner: t as usize,
            warm_start_w: false,
            ..GaletParams::default()
        })
        .unwrap();
        let floor = neumann_floor(&p, |z| z * z / (l * l), t);
        assert_reaches(
            &format!("galet k{kappa}"),
            grad_phi_sq(&p, &mut s, 1000),
            floor,
        );
        // F²SA with fixed λ: for this quadratic g, ∇Φ_λ = ∇Φ exactly (y*_λ − y* = −Z⁻¹1/(10λ)
        // and λ·L·Z⁻¹1/(10λ) is the exact correction), so there is no O(1/λ) bias.
        let lam = 10.0;
        let mut s = F2sa::new(F2saParams::fixed_lambda(
            lam,
            0.5 / (l * (lam + 1.0)),
            1.0 / l,
            0.05 / l,
            10,
        ))
        .unwrap();
        assert_reaches(
            &format!("f2sa-fixed k{kappa}"),
            grad_phi_sq(&p, &mut s, 5 * iters),
            0.0,
        );
        // V-PBGD: the same exact-penalty argument; joint gradient descent on f + γ(g − g*) is
        // slowly conditioned (its step must be ≲ 1/(γL)). At κ = 10 it is still at
        // ‖∇Φ‖² ≈ 4e-2 after 36000 iterations, so only κ = 2 is checked here.
        if kappa > 2.0 {
            continue;
        }
        let mut s = VPbgd::new(VPbgdParams {
            alpha: 0.5 / (l * (lam + 1.0)),
            gamma: lam,
            inner_steps: 5,
            inner_step: 1.0 / l,
        })
        .unwrap();
        assert_reaches(
            &format!("vpbgd k{kappa}"),
            grad_phi_sq(&p, &mut s, 12 * iters),
            0.0,
        );
    }
}

#[test]
fn single_loop_itd_floor_grows_with_kappa() {
    let mut floors = Vec::new();
    for kappa in [2.0, 4.0, 8.0, 16.0] {
        let p = QuadraticKappa::new(kappa, 2);
        let l = p.l();
        let mut s = SingleLoopItd::new(SingleLoopItdParams::from_smoothness(l, 0.5 / l)).unwrap();
        floors.push(grad_phi_sq(&p, &mut s, 4000));
    }
    eprintln!("itd floors {floors:?}");
    assert!(floors.windows(2).all(|w| w[1] > 2.0 * w[0]), "{floors:?}");
}

#[test]
fn sc_sincos_hypergradient_methods_reach_1e_4() {
    let p = ScSinCos::default();
    let l = 100.0; // ∇²ᵧᵧg = HᵀH has eigenvalues in [1, 100].
    let mut solvers: Vec<Box<dyn Solver>> = vec![
        Box::new(SingleLoopAid::new(SingleLoopAidParams::from_smoothness(l, 0.05)).unwrap()),
        Box::new(
            AidBio::new(AidBioParams {
                alpha: 1.0 / l,
                beta: 0.05,
                inner_steps: 10,
                ..AidBioParams::default()
            })
            .unwrap(),
        ),
    ];
    for s in &mut solvers {
        let g = grad_phi_sq(&p, &mut **s, 3000).sqrt();
        eprintln!("{}: ‖∇Φ‖ = {g:e}", s.name());
        assert!(g < 1e-4, "{}: {g}", s.name());
    }
}

#[test]
fn galet_example1_reaches_optimal_set_from_two_starts() {
    for (x0, y0) in [(2.0, [2.0, 2.0]), (-1.0, [-2.0, 0.5])] {
        let p = GaletExample1::with_start(x0, y0);
        let mut s = Galet::new(GaletParams::default()).unwrap();
        let m = final_metrics(&p, &mut s, 200);
        eprintln!("galet from {x0}: {m:?}");
        assert!(m.opt_gap.unwrap() < 1e-6, "{m:?}");
        // The value-function KKT score (eq. (47)) stays away from 0: ∇_{y₁}f = 1 always.
        assert!(m.vf_kkt.unwrap() > 0.5, "{m:?}");
    }
}

#[test]
fn nasty_constrained_projected_methods_stay_feasible_and_reach_zero() {
    // Only V-PBGD is checked: F²SA (increasing or fixed λ) and the proximal two-loop F²SA with
    // their default steps cycle around x = 0 on this example (|x| ≈ 0.1–0.5 after 2000
    // iterations), which is left open.
    let p = NastyConstrained;
    let mut solvers: Vec<Box<dyn Solver>> =
        vec![Box::new(VPbgd::new(VPbgdParams::default()).unwrap())];
    let bx = p.bounds_x().unwrap();
    let by = p.bounds_y().unwrap();
    let mut ok = true;
    for s in &mut solvers {
        let r = Runner::new(RunConfig::iters(2000))
            .unwrap()
            .run(&p, &mut **s)
            .unwrap();
        let x = r.iterate.x[(0, 0)];
        eprintln!("{}: x = {x}, y = {}", s.name(), r.iterate.y[(0, 0)]);
        assert!(
            bx.contains(&r.iterate.x) && by.contains(&r.iterate.y),
            "{}",
            s.name()
        );
        ok &= x.abs() < 0.05;
    }
    assert!(ok);
}

#[test]
fn momentum_methods_on_nasty_constrained_stay_feasible_and_band_around_zero() {
    // With the slides' exact-gradient defaults neither method can settle at x = 0: the lower
    // level g = xy has y*(x) = −sign(x) on the box, so the penalty direction ∇ₓg(x, y) − ∇ₓg(x, z)
    // = y − z flips between about ±2 as x crosses 0 while the x step does not shrink (F³SA:
    // ξα_kλ_k = α₀λ₀ = 0.1 when c = 0; the proximal method: a = 0 keeps α = 0.1). So x ends in a
    // band of about one step, |x| ≲ 0.1·2, around 0, like F²SA and the two-loop method. Pinned
    // for F³SA: feasible and |x| ≤ 0.25 over the last 200 iterations (from |x₀| = 0.5). The
    // proximal method stays feasible (every step ends in a projection or a convex combination of
    // feasible points) but, like the two-loop method, x goes round a slow cycle through the whole
    // box: over iterations 1960–2000 |x| drifts down from 0.41 to 0.22 by about 0.006 a step,
    // and within the last 200 it has touched |x| = 1. We have not analysed the cycle (the
    // smoothed y, z lag x by the prox subproblems' slow γ-steps); a decaying α (a = 1/4) does
    // not remove it either (|x| ≈ 0.38 at the end). Pinned as feasible only.
    let p = NastyConstrained;
    let mut solvers: Vec<Box<dyn Solver>> = vec![
        Box::new(F3sa::new(F3saParams::default()).unwrap()),
        Box::new(ProxF2saMomentum::new(ProxF2saMomentumParams::default()).unwrap()),
    ];
    let bx = p.bounds_x().unwrap();
    let by = p.bounds_y().unwrap();
    for s in &mut solvers {
        let r = Runner::new(RunConfig::iters(2000))
            .unwrap()
            .run(&p, &mut **s)
            .unwrap();
        assert_eq!(r.status, Status::MaxIter, "{}", s.name());
        assert!(
            bx.contains(&r.iterate.x) && by.contains(&r.iterate.y),
            "{}",
            s.name()
        );
        let band = r.trace[r.trace.len() - 200..]
            .iter()
            .map(|rec| rec.metrics.as_ref().unwrap().opt_gap.unwrap())
            .fold(0.0, f64::max);
        eprintln!("{}: x = {}, band {band}", s.name(), r.iterate.x[(0, 0)]);
        if s.name() == "f3sa" {
            assert!(band <= 0.25, "{}: {band}", s.name());
        }
    }
}

#[test]
fn momentum_methods_on_quadratic_reach_their_penalty_floor() {
    // Penalty methods approximate ∇Φ with a bias O(κ³/λ) (O(σ) for the proximal one), and the
    // exact-gradient schedules grow λ_k ~ k^{1/3} (shrink σ_k ~ k^{−1/3}), so after 3000
    // iterations ‖∇Φ‖² sits around 2e-3 (F³SA) and 2e-4 (proximal), far above 1e-8: pinned with
    // a factor-5 margin.
    let p = QuadraticKappa::new(2.0, 2);
    let l = p.l();
    let cases: Vec<(Box<dyn Solver>, f64)> = vec![
        (
            Box::new(
                F3sa::new(F3saParams {
                    alpha0: 0.05 / l,
                    gamma0: 1.0 / l,
                    ..F3saParams::default()
                })
                .unwrap(),
            ),
            1e-2,
        ),
        (
            Box::new(
                ProxF2saMomentum::new(ProxF2saMomentumParams {
                    gamma0: 0.5 / l,
                    rho: 1.0 / l,
                    ..ProxF2saMomentumParams::default()
                })
                .unwrap(),
            ),
            1e-3,
        ),
    ];
    for (mut s, bound) in cases {
        let g = grad_phi_sq(&p, &mut *s, 3000);
        eprintln!("{}: ‖∇Φ‖² = {g:e}", s.name());
        assert!(g < bound, "{}: {g}", s.name());
    }
}

#[test]
fn f3sa_without_momentum_is_f2sa_with_one_inner_step() {
    // η_k = 1 (c = 0) drops the corrections, and F³SA takes its gradients where F²SA does.
    let p = ScSinCos::default();
    let (a, g) = (0.05 / 100.0, 1.0 / 100.0);
    let mut f3 = F3sa::new(F3saParams {
        alpha0: a,
        gamma0: g,
        ..F3saParams::default()
    })
    .unwrap();
    let mut f2 = F2sa::new(F2saParams {
        alpha0: a,
        gamma0: g,
        ..F2saParams::default()
    })
    .unwrap();
    let r3 = Runner::new(RunConfig::iters(50))
        .unwrap()
        .run(&p, &mut f3)
        .unwrap();
    let r2 = Runner::new(RunConfig::iters(50))
        .unwrap()
        .run(&p, &mut f2)
        .unwrap();
    assert_eq!(r3.iterate, r2.iterate);
    assert_eq!(r3.counts, r2.counts);
}

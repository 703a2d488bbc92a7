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
fn sc_sincos_every_hypergradient_method_from_the_same_start() {
    let p = ScSinCos::default();
    let l = 100.0; // ∇²ᵧᵧg = HᵀH has eigenvalues in [1, 100].
    // Methods whose hypergradient estimate is exact at their fixed point: below 1e-4.
    let mut exact: Vec<(Box<dyn Solver>, u64)> = vec![
        (
            Box::new(SingleLoopAid::new(SingleLoopAidParams::from_smoothness(l, 0.05)).unwrap()),
            3000,
        ),
        (
            Box::new(
                AidBio::new(AidBioParams {
                    alpha: 1.0 / l,
                    beta: 0.05,
                    inner_steps: 10,
                    ..AidBioParams::default()
                })
                .unwrap(),
            ),
            3000,
        ),
        // GALET's w-steps contract by 1 − ρμ² = 1 − 1e-4 with ρ = 1/L²: 50 of them per outer
        // step (warm-started) make w track the shadow gradient.
        (
            Box::new(
                Galet::new(GaletParams {
                    alpha: 0.05,
                    beta: 1.0 / l,
                    rho: 1.0 / (l * l),
                    n_inner: 5,
                    t_inner: 50,
                    ..GaletParams::default()
                })
                .unwrap(),
            ),
            2100,
        ),
    ];
    for (s, iters) in &mut exact {
        let g = grad_phi_sq(&p, &mut **s, *iters).sqrt();
        eprintln!("{}: ‖∇Φ‖ = {g:e}", s.name());
        assert!(g < 1e-4, "{}: {g}", s.name());
    }
    // Methods that approximate ∇²ᵧᵧg⁻¹∇ᵧf by a T-term Neumann series with step 1/L cannot: at
    // their fixed point the direction is ∇ₓf − ∇²ₓᵧg·v_T, v_T = (1/L)Σ_{t<T}(I − ∇²ᵧᵧg/L)^t∇ᵧf,
    // whose error keeps (1 − μ/L)^T = 0.99^T of the μ = 1 component: 90% at T = 10, and
    // ‖∇Φ‖ ≤ 1e-4 would take T ≈ 1000. Pinned: the floors order by T (single-loop ITD: 1 term;
    // RHG truncated to its last 3 steps: 3; RHG through 10 steps and AIDBiO with a 10-term
    // series: 10), and RHG and AIDBiO, which use the same series, share their fixed point.
    let floor = |s: &mut dyn Solver| grad_phi_sq(&p, s, 3000).sqrt();
    let itd =
        floor(&mut SingleLoopItd::new(SingleLoopItdParams::from_smoothness(l, 0.05)).unwrap());
    let rhg_params = RhgParams {
        alpha: 1.0 / l,
        beta: 0.05,
        ..RhgParams::default()
    };
    let rhg = floor(&mut Rhg::new(rhg_params).unwrap());
    let rhg3 = floor(
        &mut Rhg::new(RhgParams {
            truncate: Some(3),
            ..rhg_params
        })
        .unwrap(),
    );
    let neumann = floor(
        &mut AidBio::new(AidBioParams {
            alpha: 1.0 / l,
            beta: 0.05,
            inner_steps: 10,
            solve: LinearSolve::Neumann {
                terms: 10,
                eta: 1.0 / l,
            },
        })
        .unwrap(),
    );
    eprintln!("floors: itd {itd:e}, rhg-trunc3 {rhg3:e}, rhg {rhg:e}, aidbio-neumann {neumann:e}");
    assert!(itd > rhg3 && rhg3 > rhg && rhg > 0.1, "{itd} {rhg3} {rhg}");
    assert!((rhg - neumann).abs() <= 1e-6 * rhg, "{rhg} vs {neumann}");
}

#[test]
fn sc_sincos_neumann_methods_reach_1e4_with_enough_terms() {
    // The floor above is set by T alone: the error of the T-term series keeps (1 − μ/L)^T of
    // the μ = 1 component, and the T = 10 floor ‖∇Φ‖ ≈ 0.295 is 0.99^10 ≈ 0.90 of a component
    // of size c ≈ 0.33 (the faster components are gone by then). So ‖∇Φ‖ ≤ 1e-4 needs
    // c·0.99^T ≤ 1e-4, T ≥ ln(3300)/0.01005 ≈ 810; T = 1000 leaves c·0.99^1000 ≈ 1.4e-5. Same start and outer step β = 0.05 as the exact methods; 1500
    // outer iterations (larger outer steps are unstable here: β = 0.1 ends at ‖∇Φ‖ ≈ 2.4).
    let p = ScSinCos::default();
    let l = 100.0;
    let t = 1000;
    let mut solvers: Vec<Box<dyn Solver>> = vec![
        Box::new(
            Rhg::new(RhgParams {
                alpha: 1.0 / l,
                beta: 0.05,
                inner_steps: t,
                ..RhgParams::default()
            })
            .unwrap(),
        ),
        Box::new(
            AidBio::new(AidBioParams {
                alpha: 1.0 / l,
                beta: 0.05,
                inner_steps: 10,
                solve: LinearSolve::Neumann {
                    terms: t,
                    eta: 1.0 / l,
                },
            })
            .unwrap(),
        ),
    ];
    for s in &mut solvers {
        let g = grad_phi_sq(&p, &mut **s, 1500).sqrt();
        eprintln!("{} T = {t}: ‖∇Φ‖ = {g:e}", s.name());
        assert!(g < 1e-4, "{}: {g}", s.name());
    }
}

/// The last `n` values of a step's scalar `key`.
fn last_scalars(r: &bilevel_solvers::RunResult, key: &str, n: usize) -> Vec<f64> {
    r.trace[r.trace.len() - n..]
        .iter()
        .map(|rec| rec.scalars.iter().find(|(k, _)| *k == key).unwrap().1)
        .collect()
}

/// Runs `iters` iterations; returns `‖∇Φ‖²` at the end and whether the last iterates alternate
/// between two points (the scalar `key` repeats with period 2 but not 1).
fn floor_and_two_cycle(p: &dyn Problem, s: &mut dyn Solver, iters: u64, key: &str) -> (f64, bool) {
    let cfg = RunConfig {
        metrics_every: iters,
        ..RunConfig::iters(iters)
    };
    let r = Runner::new(cfg).unwrap().run(p, s).unwrap();
    assert_eq!(r.status, Status::MaxIter, "{}", s.name());
    let v = last_scalars(&r, key, 3);
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-6 * a.abs().max(b.abs());
    let cycle = close(v[0], v[2]) && !close(v[0], v[1]);
    (
        r.last_metrics().unwrap().grad_phi_norm.unwrap().powi(2),
        cycle,
    )
}

#[test]
fn pgd_qp_on_quadratic_kappa() {
    // ρ = ‖∇h‖² (Theorem 4.2) with constant γ, α: the bound on the average ‖Δ‖² keeps a term
    // 2α²L_hC_f² that does not vanish with K. What happens: near h = 0 the multiplier
    // λ ≈ −⟨∇h, ∇f⟩/‖∇h‖² normalizes ∇h, so the correction γλ∇h keeps a length of order
    // γ‖∇f‖ however close the iterate is to y = y*(x); the iterates end on a period-2 orbit
    // straddling that set, at a ‖∇Φ‖ that shrinks with the step (≈ γ² here).
    let p2 = QuadraticKappa::new(2.0, 2);
    let l = p2.l();
    let params = |a: f64| PgdQpParams::theorem_4_2_max_step(a, l, 4.0 * l * l);
    let (g01, _) = floor_and_two_cycle(&p2, &mut PgdQp::new(params(0.1)).unwrap(), 20000, "h");
    let (g03, c03) = floor_and_two_cycle(&p2, &mut PgdQp::new(params(0.3)).unwrap(), 20000, "h");
    eprintln!("pgd-qp κ=2: ‖∇Φ‖² = {g01:e} (γ = α = 0.1), {g03:e} (0.3)");
    assert!(g01 <= 1e-8, "{g01}");
    assert!(c03 && g03 > 20.0 * g01, "{g03} vs {g01}");
    // κ = 10, γ = α = 0.1: the orbit sits at ‖∇Φ‖² ≈ 2.8e-5 (reached after ~70000 steps).
    let p10 = QuadraticKappa::new(10.0, 2);
    let l = p10.l();
    let mut s = PgdQp::new(PgdQpParams::theorem_4_2_max_step(0.1, l, 4.0 * l * l)).unwrap();
    let (g, cycle) = floor_and_two_cycle(&p10, &mut s, 80000, "h");
    eprintln!("pgd-qp κ=10: ‖∇Φ‖² = {g:e}, two-cycle {cycle}");
    assert!(cycle && (1e-5..1e-4).contains(&g), "{g}");
    // ρ = ‖∇h‖√h₀ with Corollary 4.6's γ = K^{−2/3}, α = K^{−1/6}: the O(K^{−1/3}) rate by
    // design; after K = 20000 steps (γ = 1.4e-3) ‖∇Φ‖² has only fallen by ~4× (κ = 2) and ~2×
    // (κ = 10).
    for (p, factor) in [(&p2, 0.3), (&p10, 0.6)] {
        let g0 = p.grad_phi(p.x0().as_ref()).unwrap();
        let g0 = bilevel_solvers::vecops::norm_sq(&g0);
        let mut s = PgdQp::new(PgdQpParams {
            warm_start_step: 1.0 / p.l(),
            ..PgdQpParams::corollary_4_6(20000, p.l())
        })
        .unwrap();
        let g = grad_phi_sq(p, &mut s, 20000);
        eprintln!("pgd-qp-sqrt-h0 {}: ‖∇Φ‖² {g0:e} → {g:e}", p.name());
        assert!(g < factor * g0 && g > 1e-3, "{g0} → {g}");
    }
}

#[test]
fn bome_on_quadratic_kappa() {
    // BOME's λ = max((η‖∇q‖² − ⟨∇f, ∇q⟩)/‖∇q‖², 0) also normalizes ∇q, so with a constant
    // step ξ the iterates settle on a period-2 orbit around y = y*(x) at a ‖∇Φ‖ proportional
    // to ξ (no finite-T effect: T = 50 inner steps give the same floor). κ = 2: 5.1e-8 at
    // ξ = 0.01/L, 4.8e-6 at ξ = 0.1/L.
    let p = QuadraticKappa::new(2.0, 2);
    let l = p.l();
    let bome = |xi: f64| {
        Bome::new(BomeParams {
            xi: xi / l,
            inner_step: 1.0 / l,
            ..BomeParams::default()
        })
        .unwrap()
    };
    let (small, c1) = floor_and_two_cycle(&p, &mut bome(0.01), 20000, "lambda");
    let (large, c2) = floor_and_two_cycle(&p, &mut bome(0.1), 5000, "lambda");
    eprintln!("bome κ=2: ‖∇Φ‖² = {small:e} (ξ = 0.01/L), {large:e} (ξ = 0.1/L)");
    assert!(c1 && c2);
    assert!(
        small < 1e-7 && (30.0..300.0).contains(&(large / small)),
        "{small} {large}"
    );
    // κ = 10: the set y = y*(x) is steep (∂y*/∂x = L/z reaches κ = 10), and BOME moves x and y
    // together, so along it x advances by only ~1/(1 + κ²) of its step: the μ-coordinate
    // contracts by about 1 − ξμ/101 ≈ 1 − 1e-4 a step, and after 20000 steps ‖∇Φ‖² ≈ 0.15
    // (from 2.4).
    let p = QuadraticKappa::new(10.0, 2);
    let l = p.l();
    let mut s = Bome::new(BomeParams {
        xi: 0.1 / l,
        inner_step: 1.0 / l,
        ..BomeParams::default()
    })
    .unwrap();
    let g = grad_phi_sq(&p, &mut s, 20000);
    eprintln!("bome κ=10: ‖∇Φ‖² = {g:e}");
    assert!((0.05..0.3).contains(&g), "{g}");
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
    // With the slides' exact-gradient defaults neither method can settle at x = 0.
    // F³SA (η = 1: F²SA with T = 1) descends the penalized L*_λ(x) = min_y f + λ(g − g*),
    // which near 0 is x²(1 − λ²/4) + λ|x|: a kink of slope λ at the minimizer x = 0. Its x step
    // there has length about α_kλ_k = α₀λ₀ = 0.1 at every k (c = 0 keeps α_kλ_k constant), and
    // a constant-length step cannot settle at a kink: x keeps crossing 0 within one or two steps
    // of it. Pinned: feasible, and |x| ≤ 0.25 over the last 200 of 2000 iterations (from 0.5).
    // The proximal method stays feasible (every step ends in a projection or a convex
    // combination of feasible points) but, like the two-loop method, x goes round a slow cycle
    // through the whole box: over iterations 1960–2000 |x| drifts down from 0.41 to 0.22 by
    // about 0.006 a step, and within the last 200 it has touched |x| = 1. We have not analysed
    // that cycle (the smoothed y, z lag x through the prox subproblems' small γ-steps); a
    // decaying α (a = 1/4) does not remove it either (|x| ≈ 0.38 at the end). Pinned as
    // feasible only.
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

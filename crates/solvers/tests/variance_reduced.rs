//! SRBA (Dagréou, Moreau, Vaiter and Ablin, "A lower bound and a near-optimal algorithm for
//! bilevel empirical risk minimization"), MA-SOBA (Chen, Xiao and Balasubramanian, "Optimal
//! algorithms for stochastic bilevel optimization under relaxed smoothness conditions") and
//! SPABA (Chu, Xu, Yao and Zhang, "SPABA: A single-loop and probabilistic stochastic bilevel
//! algorithm achieving optimal sample complexity"), SOBA's variations, on the quadratic problem.

use bilevel_solvers::algorithms::{
    MaSoba, MaSobaParams, Soba, SobaParams, Spaba, SpabaParams, Srba, SrbaParams,
};
use bilevel_solvers::problems::{QuadraticKappa, ScSinCos};
use bilevel_solvers::sampling::Minibatch;
use bilevel_solvers::vecops::norm;
use bilevel_solvers::{
    Checkpoint, Error, Problem, Record, RunConfig, RunResult, Runner, Solver, Status, registry,
};

fn run(p: &dyn Problem, s: &mut dyn Solver, iters: u64) -> RunResult {
    let r = Runner::new(RunConfig::iters(iters))
        .unwrap()
        .run(p, s)
        .unwrap();
    assert_eq!(r.status, Status::MaxIter, "{}", s.name());
    r
}

/// The `restart` scalar of SRBA's and SPABA's records: 1 when the step restarted.
fn restart(rec: &Record) -> f64 {
    let (k, v) = &rec.scalars[4];
    assert_eq!(k, "restart");
    *v
}

fn one(seed: u64) -> Option<Minibatch> {
    Some(Minibatch {
        batch_f: 1,
        batch_g: 1,
        seed,
    })
}

/// With exact oracles every iteration of SRBA and SPABA restarts from the full sums, so both
/// are SOBA with constant steps: the same bits, the same counts, the same scalars.
#[test]
fn with_exact_oracles_srba_and_spaba_are_soba_with_constant_steps_bit_for_bit() {
    let p = ScSinCos::default();
    let (rho, gamma) = (0.004, 0.003);
    let soba = run(
        &p,
        &mut Soba::new(SobaParams {
            rho,
            gamma,
            rho_decay: 0.0,
            gamma_decay: 0.0,
            batch: None,
        })
        .unwrap(),
        40,
    );
    let others: Vec<Box<dyn Solver>> = vec![
        Box::new(
            Srba::new(SrbaParams {
                rho,
                gamma,
                batch: None,
                ..SrbaParams::default()
            })
            .unwrap(),
        ),
        Box::new(
            Spaba::new(SpabaParams {
                rho,
                gamma,
                prob: Some(0.01),
                batch: None,
                ..SpabaParams::default()
            })
            .unwrap(),
        ),
    ];
    assert!(norm(&soba.iterate.x) > 0.0);
    for mut s in others {
        let r = run(&p, &mut *s, 40);
        assert_eq!(r.iterate, soba.iterate, "{}", s.name());
        assert_eq!(r.counts, soba.counts, "{}", s.name());
        assert_eq!((r.counts.gc, r.counts.mv), (80, 40));
        assert_eq!(r.trace.len(), 41);
        for (a, b) in r.trace.iter().zip(&soba.trace).skip(1) {
            assert_eq!(a.scalars[..4], b.scalars[..], "{}", s.name());
            assert_eq!(restart(a), 1.0);
        }
    }
}

/// The mean over `seeds` seeds of the final `(x, y)` of `make(batch of one)` against `exact`,
/// coordinate by coordinate, within 4 standard errors; and the test has power: the path moves
/// much farther than the standard error.
fn assert_mean_on_path(
    name: &str,
    p: &QuadraticKappa,
    make: &dyn Fn(Option<Minibatch>) -> Box<dyn Solver>,
    exact: &RunResult,
    iters: u64,
    seeds: u64,
) {
    let runs: Vec<RunResult> = (0..seeds)
        .map(|seed| run(p, &mut *make(one(seed)), iters))
        .collect();
    let (x0, y0) = (p.x0(), p.y0());
    let pick = |r: &RunResult, i: usize| -> f64 {
        let n = r.iterate.x.nrows();
        if i < n {
            r.iterate.x[(i, 0)]
        } else {
            r.iterate.y[(i - n, 0)]
        }
    };
    let start = |i: usize| -> f64 {
        let n = x0.nrows();
        if i < n { x0[(i, 0)] } else { y0[(i - n, 0)] }
    };
    for i in 0..x0.nrows() + y0.nrows() {
        let xs: Vec<f64> = runs.iter().map(|r| pick(r, i)).collect();
        let mean = xs.iter().sum::<f64>() / seeds as f64;
        let var = xs.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (seeds - 1) as f64;
        let se = (var / seeds as f64).sqrt();
        let want = pick(exact, i);
        let moved = (want - start(i)).abs();
        eprintln!("{name} [{i}]: exact {want:.5}, mean {mean:.5} ± {se:.1e} (moved {moved:.3})");
        assert!(var > 0.0, "{name}: the draws differ");
        assert!(
            (mean - want).abs() <= 4.0 * se,
            "{name} [{i}]: mean {mean} vs exact {want} (standard error {se})"
        );
        assert!(moved > 10.0 * se, "{name} [{i}]: moved {moved}, se {se}");
    }
}

/// On the quadratic problem every term of the directions is affine in `(y, v, x)` with a
/// coefficient that depends on the current draw only, and the draws (and SPABA's coins) are
/// independent of the past. So the recursions of SRBA and SPABA, `D ← D + A_i(z_t − z_{t−1})`,
/// and MA-SOBA's average are linear in the state with independent random coefficients, and
/// the expected path of each is exactly its path with exact gradients: for SRBA and SPABA
/// SOBA's with constant steps (the recursion on the full sums reproduces the full directions),
/// for MA-SOBA its own. Both `x` and `y` are checked, so a wrong `D_y` recursion shows too (on
/// this problem `x`'s path does not see `y`). A recursion that used the previous point's
/// terms at the wrong point, with the wrong sign, or not at all, would be biased.
#[test]
fn the_mean_over_seeds_approaches_the_exact_path() {
    let p = QuadraticKappa::new(10.0, 4);
    let (iters, seeds) = (60, 400);
    let (rho, gamma) = (0.05, 0.05);
    let soba = run(
        &p,
        &mut Soba::new(SobaParams {
            rho,
            gamma,
            rho_decay: 0.0,
            gamma_decay: 0.0,
            batch: None,
        })
        .unwrap(),
        iters,
    );
    // Batches of one of 4 samples: SRBA restarts every ⌊0.625·(4 + 4)⌋ = 5 iterations.
    let srba = move |batch| -> Box<dyn Solver> {
        Box::new(
            Srba::new(SrbaParams {
                rho,
                gamma,
                period_frac: 0.625,
                batch,
            })
            .unwrap(),
        )
    };
    let spaba = move |batch| -> Box<dyn Solver> {
        Box::new(
            Spaba::new(SpabaParams {
                rho,
                gamma,
                prob: Some(0.2),
                v_radius: None,
                batch,
            })
            .unwrap(),
        )
    };
    let ma = move |batch| -> Box<dyn Solver> {
        Box::new(
            MaSoba::new(MaSobaParams {
                rho,
                gamma,
                theta: 0.3,
                v_radius: None,
                batch,
            })
            .unwrap(),
        )
    };
    assert_eq!(run(&p, &mut *srba(None), iters).iterate, soba.iterate);
    assert_mean_on_path("srba", &p, &srba, &soba, iters, seeds);
    assert_mean_on_path("spaba", &p, &spaba, &soba, iters, seeds);
    let ma_exact = run(&p, &mut *ma(None), iters);
    assert_ne!(ma_exact.iterate, soba.iterate);
    assert_mean_on_path("ma-soba", &p, &ma, &ma_exact, iters, seeds);
}

/// MA-SOBA's first iterations by hand on the one-dimensional quadratic, where `Z = L`:
/// `∇ᵧg = Ly − Lx + 1`, `∇²ᵧᵧg·v = Lv`, `∇²ₓᵧg·v = −Lv`, `∇ᵧf = 0.1`, `∇ₓf = Lx`; from
/// `x = 1`, `y = v = w = 0`. With a ball small enough to bind, the projection shows too.
#[test]
fn ma_soba_takes_the_hand_computed_steps() {
    let p = QuadraticKappa::new(20.0, 1);
    let l = p.l();
    assert_eq!(l, 2.0);
    let (rho, gamma, theta) = (0.2, 0.3, 0.25);
    for radius in [None, Some(0.03)] {
        let (mut x, mut y, mut v, mut w) = (1.0f64, 0.0f64, 0.0f64, 0.0f64);
        let mut s = MaSoba::new(MaSobaParams {
            rho,
            gamma,
            theta,
            v_radius: radius,
            batch: None,
        })
        .unwrap();
        let r = run(&p, &mut s, 6);
        let mut clipped = false;
        for rec in r.trace.iter().filter(|rec| rec.iter > 0) {
            let (dy, dv, dx) = (l * y - l * x + 1.0, l * v + 0.1, -l * v + l * x);
            y -= rho * dy;
            v -= rho * dv;
            if let Some(r) = radius
                && v.abs() > r
            {
                v = r * v.signum();
                clipped = true;
            }
            x -= gamma * w;
            w = (1.0 - theta) * w + theta * dx;
            let got = |k: &str| rec.scalars.iter().find(|(n, _)| *n == k).unwrap().1;
            assert!((got("v_norm") - v.abs()).abs() <= 1e-13, "{radius:?}");
            assert!((got("w_norm") - w.abs()).abs() <= 1e-13, "{radius:?}");
            assert!((got("dx_norm") - dx.abs()).abs() <= 1e-13, "{radius:?}");
        }
        assert_eq!(clipped, radius.is_some());
        assert!((r.iterate.x[(0, 0)] - x).abs() <= 1e-13, "{radius:?}");
        assert!((r.iterate.y[(0, 0)] - y).abs() <= 1e-13, "{radius:?}");
        // x stays put at the first iteration (w₀ = 0), then moves.
        assert!(x < 1.0);
    }
}

fn grad_phi_sq(p: &dyn Problem, s: &mut dyn Solver, iters: u64) -> f64 {
    let r = Runner::new(RunConfig {
        metrics_every: iters,
        ..RunConfig::iters(iters)
    })
    .unwrap()
    .run(p, s)
    .unwrap();
    assert_eq!(r.status, Status::MaxIter);
    r.last_metrics().unwrap().grad_phi_norm.unwrap().powi(2)
}

/// SRBA and SPABA reduce their variance to zero at the solution, so with constant steps and
/// batches of one they converge on quadratic-κ to rounding (‖∇Φ‖² about 1e-23 from 5.7 in 3000
/// iterations), as with exact gradients; MA-SOBA does not, and
/// with constant steps it stalls at a noise floor proportional to its steps, which the test
/// pins (halving `ρ`, `γ` and `θ` lowers it), while with exact gradients it converges.
#[test]
fn quadratic_kappa_srba_and_spaba_converge_and_ma_soba_has_a_floor_set_by_its_steps() {
    let p = QuadraticKappa::new(10.0, 8);
    let g0 = norm(&p.grad_phi(p.x0().as_ref()).unwrap()).powi(2);
    for seed in 0..3 {
        let mut s = Srba::new(SrbaParams {
            batch: one(seed),
            ..SrbaParams::default()
        })
        .unwrap();
        let got = grad_phi_sq(&p, &mut s, 3000);
        eprintln!("srba seed {seed}: ‖∇Φ‖² {g0:.3e} → {got:.3e}");
        assert!(got <= 1e-20, "srba seed {seed}: ‖∇Φ‖² = {got:e}");
        let mut s = Spaba::new(SpabaParams {
            batch: one(seed),
            ..SpabaParams::default()
        })
        .unwrap();
        let got = grad_phi_sq(&p, &mut s, 3000);
        eprintln!("spaba seed {seed}: ‖∇Φ‖² {g0:.3e} → {got:.3e}");
        assert!(got <= 1e-20, "spaba seed {seed}: ‖∇Φ‖² = {got:e}");
    }
    let ma = |batch, scale: f64| {
        let mut s = MaSoba::new(MaSobaParams {
            rho: 0.1 * scale,
            gamma: 0.1 * scale,
            theta: 0.1 * scale,
            v_radius: None,
            batch,
        })
        .unwrap();
        grad_phi_sq(&p, &mut s, 3000)
    };
    let exact = ma(None, 1.0);
    eprintln!("ma-soba exact: ‖∇Φ‖² {g0:.3e} → {exact:.3e}");
    assert!(exact <= 1e-12, "{exact:e}");
    // ‖∇Φ‖² at the last iteration fluctuates from seed to seed: the floor is the mean over
    // five seeds (about 0.1 with batches of one of the 8 samples, 0.03 with halved steps).
    let floor = |scale| (0..5).map(|seed| ma(one(seed), scale)).sum::<f64>() / 5.0;
    let (full, half) = (floor(1.0), floor(0.5));
    eprintln!("ma-soba: floor {full:.3e}, with halved steps {half:.3e}");
    assert!(full > 1e-3 && full < 0.5, "{full:e}");
    assert!(half < 0.5 * full, "{half:e} vs {full:e}");
}

/// SRBA restarts every `q` iterations (2 Gc and 1 MV on the full sums) and otherwise takes
/// the recursion (4 Gc and 2 MV); SPABA restarts at the first iteration and then with
/// probability `p`, PAGE's `b/(N + b)` by default.
#[test]
fn restarts_come_on_schedule_and_cost_what_they_should() {
    let p = QuadraticKappa::new(10.0, 9);
    let batch = Some(Minibatch {
        batch_f: 4,
        batch_g: 2,
        seed: 3,
    });
    // q = ⌊0.5·(9/2 + 9/4)⌋ = 3: restarts at 0, 3, …, 27.
    let params = SrbaParams {
        batch,
        ..SrbaParams::default()
    };
    assert_eq!(params.period(9, 9), 3);
    let r = run(&p, &mut Srba::new(params).unwrap(), 30);
    for rec in r.trace.iter().filter(|rec| rec.iter > 0) {
        let want = if (rec.iter - 1).is_multiple_of(3) {
            1.0
        } else {
            0.0
        };
        assert_eq!(restart(rec), want, "iteration {}", rec.iter);
    }
    assert_eq!((r.counts.gc, r.counts.mv), (10 * 2 + 20 * 4, 10 + 20 * 2));
    // p = (2 + 4)/(18 + 6) = 1/4.
    let params = SpabaParams {
        batch,
        ..SpabaParams::default()
    };
    assert_eq!(params.restart_prob(9, 9), 0.25);
    let iters = 2000;
    let r = run(&p, &mut Spaba::new(params).unwrap(), iters);
    let restarts: Vec<bool> = r.trace[1..].iter().map(|rec| restart(rec) == 1.0).collect();
    assert!(restarts[0]);
    let n = restarts[1..].iter().filter(|&&b| b).count() as f64;
    let (m, pr) = ((iters - 1) as f64, 0.25);
    let sd = (m * pr * (1.0 - pr)).sqrt();
    eprintln!("spaba: {n} restarts of {m}, expected {} ± {sd:.1}", m * pr);
    assert!((n - m * pr).abs() < 4.0 * sd, "{n}");
    let total = restarts.iter().filter(|&&b| b).count() as u64;
    assert_eq!(
        (r.counts.gc, r.counts.mv),
        (2 * total + 4 * (iters - total), total + 2 * (iters - total))
    );
}

#[test]
fn the_three_resume_bit_identically() {
    // The stream, the previous point, the directions, the average and the coin's probability
    // are part of the state, so a resumed run continues exactly.
    let p = QuadraticKappa::new(10.0, 9);
    let batch = Some(Minibatch {
        batch_f: 4,
        batch_g: 2,
        seed: 7,
    });
    let make = || -> Vec<Box<dyn Solver>> {
        vec![
            Box::new(
                Srba::new(SrbaParams {
                    batch,
                    ..SrbaParams::default()
                })
                .unwrap(),
            ),
            Box::new(
                MaSoba::new(MaSobaParams {
                    batch,
                    v_radius: Some(0.5),
                    ..MaSobaParams::default()
                })
                .unwrap(),
            ),
            Box::new(
                Spaba::new(SpabaParams {
                    batch,
                    v_radius: Some(0.5),
                    ..SpabaParams::default()
                })
                .unwrap(),
            ),
        ]
    };
    for ((mut a, mut b), mut c) in make().into_iter().zip(make()).zip(make()) {
        let full = run(&p, &mut *a, 30);
        let half = run(&p, &mut *b, 13);
        let ck = Checkpoint::from_json(&half.checkpoint.unwrap().to_json().unwrap()).unwrap();
        let rest = Runner::new(RunConfig::iters(30))
            .unwrap()
            .resume(&p, &mut *c, &ck)
            .unwrap();
        assert_eq!(full.iterate, rest.iterate, "{}", a.name());
        assert_eq!(full.counts, rest.counts, "{}", a.name());
        assert_eq!(
            full.trace.last().unwrap().scalars,
            rest.trace.last().unwrap().scalars,
            "{}",
            a.name()
        );
    }
}

#[test]
fn bad_parameters_and_problems_that_are_not_data_sums_are_refused() {
    let bad: Vec<(&str, Error)> = vec![
        (
            "theta",
            MaSoba::new(MaSobaParams {
                theta: 1.5,
                ..MaSobaParams::default()
            })
            .unwrap_err(),
        ),
        (
            "v_radius",
            MaSoba::new(MaSobaParams {
                v_radius: Some(0.0),
                ..MaSobaParams::default()
            })
            .unwrap_err(),
        ),
        (
            "prob",
            Spaba::new(SpabaParams {
                prob: Some(0.0),
                ..SpabaParams::default()
            })
            .unwrap_err(),
        ),
        (
            "period_frac",
            Srba::new(SrbaParams {
                period_frac: -1.0,
                ..SrbaParams::default()
            })
            .unwrap_err(),
        ),
        (
            "gamma",
            Srba::new(SrbaParams {
                gamma: f64::NAN,
                ..SrbaParams::default()
            })
            .unwrap_err(),
        ),
    ];
    for (key, e) in bad {
        assert!(
            matches!(&e, Error::InvalidParameter { name, .. } if *name == key),
            "{key}: {e}"
        );
    }
    let p = ScSinCos::default();
    let solvers: Vec<Box<dyn Solver>> = vec![
        Box::new(Srba::new(SrbaParams::default()).unwrap()),
        Box::new(MaSoba::new(MaSobaParams::default()).unwrap()),
        Box::new(Spaba::new(SpabaParams::default()).unwrap()),
    ];
    for mut s in solvers {
        let e = Runner::new(RunConfig::iters(5))
            .unwrap()
            .run(&p, &mut *s)
            .unwrap_err();
        assert!(
            matches!(e, Error::InvalidParameter { name: "batch", .. }),
            "{e}"
        );
    }
    // The registry knows them, with their keys.
    for (name, key) in [
        ("srba", "period_frac"),
        ("ma-soba", "theta"),
        ("spaba", "prob"),
    ] {
        let mut params = registry::solver(name).unwrap().defaults();
        assert!(params.keys().iter().any(|k| k == key), "{name}: {key}");
        assert!(params.keys().iter().any(|k| k == "batch.batch_g"), "{name}");
        params.set("batch", "none").unwrap();
        assert_eq!(params.build().unwrap().name(), name);
    }
    // The optional numbers, `none` by default, take fractions and `none` again.
    let mut params = registry::solver("spaba").unwrap().defaults();
    params.set("prob", "0.3").unwrap();
    params.set("v_radius", "2.5").unwrap();
    assert_eq!(params.to_json()["prob"], 0.3);
    assert_eq!(params.to_json()["v_radius"], 2.5);
    params.set("v_radius", "none").unwrap();
    assert!(params.to_json()["v_radius"].is_null());
    let e = params.set("v_radius", "often").unwrap_err();
    assert!(e.to_string().contains("a number or `none`"), "{e}");
    let e = params
        .set("prob", "1.5")
        .and_then(|_| params.build().map(|_| ()))
        .unwrap_err();
    assert!(
        matches!(e, Error::InvalidParameter { name: "prob", .. }),
        "{e}"
    );
}

//! SOBA and SABA (Dagréou, Ablin, Vaiter and Moreau, "A framework for bilevel optimization that
//! enables stochastic and global variance reduction algorithms") on the quadratic problem, and
//! the minibatch Hessian-vector estimators they are built on.

use bilevel_linalg::Mat;
use bilevel_solvers::algorithms::{MemoryInit, Saba, SabaParams, Soba, SobaParams};
use bilevel_solvers::problems::{QuadraticKappa, ScSinCos};
use bilevel_solvers::sampling::{self, Minibatch, SampleStream};
use bilevel_solvers::vecops::{lincomb, norm};
use bilevel_solvers::{Error, Oracle, Problem, RunConfig, Runner, Solver, Status};

fn rel(a: &Mat<f64>, b: &Mat<f64>) -> f64 {
    norm(&lincomb(1.0, a, -1.0, b)) / norm(a).max(1e-300)
}

#[test]
fn batch_hvp_estimators_equal_the_exact_oracle_on_the_full_batch_and_are_unbiased() {
    let p = QuadraticKappa::new(10.0, 6);
    let mut o = Oracle::new(&p);
    let x = Mat::from_fn(6, 1, |i, _| 0.3 * i as f64 - 0.7);
    let y = Mat::from_fn(6, 1, |i, _| 1.0 - 0.2 * i as f64);
    let v = Mat::from_fn(6, 1, |i, _| ((i % 3) as f64 - 1.0) * 0.5 + 0.1);
    let exact = o.hvp_g(&x, &y, &v);
    let (eg, ec) = o.grad_hvp_g(&x, &y, &v);
    let all = Some((0..6).collect::<Vec<_>>());
    for d in [None, all] {
        let c = sampling::hvp_g(&mut o, &x, &y, &v, &d);
        let (g, c2) = sampling::grad_hvp_g(&mut o, &x, &y, &v, &d);
        assert!(rel(&exact.yy, &c.yy) <= 1e-14 && rel(&exact.xy, &c.xy) <= 1e-14);
        assert!(rel(&ec.yy, &c2.yy) <= 1e-14 && rel(&ec.xy, &c2.xy) <= 1e-14);
        assert!(rel(&eg.y, &g.y) <= 1e-14 && rel(&eg.x, &g.x) <= 1e-14);
    }
    // Counted: hvp_g one MV, grad_hvp_g one Gc and one MV.
    assert_eq!((o.counts().gc, o.counts().mv), (1 + 2, 2 + 4));
    // The mean over many random batches of 2 approaches the exact products (each coordinate
    // of a batch product is 3 zᵢvᵢ or 0, so the standard error of the mean over 4000 draws is
    // about 2 % of the largest entry; a biased estimator, such as one that forgets the N/|B|
    // weight, is off by 200 %).
    let mut s = SampleStream::new(3);
    let draws = 4000;
    let (mut yy, mut xy) = (Mat::zeros(6, 1), Mat::zeros(6, 1));
    for _ in 0..draws {
        let d = Some(s.draw(6, 2));
        let c = sampling::hvp_g(&mut o, &x, &y, &v, &d);
        yy = lincomb(1.0, &yy, 1.0 / draws as f64, &c.yy);
        xy = lincomb(1.0, &xy, 1.0 / draws as f64, &c.xy);
    }
    let (ey, ex) = (rel(&exact.yy, &yy), rel(&exact.xy, &xy));
    eprintln!("mean of 4000 batch products: relative errors {ey:.2e}, {ex:.2e}");
    assert!(ey < 0.06 && ex < 0.06, "{ey} {ex}");
}

/// The final `x` of a run of `s` for `iters` iterations.
fn final_x(p: &dyn Problem, s: &mut dyn Solver, iters: u64) -> Mat<f64> {
    let r = Runner::new(RunConfig {
        metrics_every: iters,
        ..RunConfig::iters(iters)
    })
    .unwrap()
    .run(p, s)
    .unwrap();
    assert_eq!(r.status, Status::MaxIter);
    r.iterate.x
}

/// On the quadratic problem every term of the directions is affine in `(y, v, x)` with a
/// coefficient that depends on the current draw only, so the expected path of SOBA (and of
/// SABA, whose estimates are unbiased given the past when its memory starts full) is exactly
/// the path of the method with exact gradients and the same steps: the mean over seeds must
/// approach it within its standard error.
#[test]
fn the_mean_over_seeds_approaches_the_exact_hypergradient_path() {
    let p = QuadraticKappa::new(10.0, 4);
    let iters = 60;
    let seeds = 400u64;
    let soba = |batch| SobaParams {
        rho: 0.05,
        gamma: 0.05,
        batch,
        ..SobaParams::default()
    };
    let saba = |batch| SabaParams {
        rho: 0.05,
        gamma: 0.05,
        batch,
        memory_init: MemoryInit::Full,
    };
    type Make = Box<dyn Fn(Option<Minibatch>) -> Box<dyn Solver>>;
    let makers: Vec<(&str, Make)> = vec![
        (
            "soba",
            Box::new(move |b| Box::new(Soba::new(soba(b)).unwrap())),
        ),
        (
            "saba",
            Box::new(move |b| Box::new(Saba::new(saba(b)).unwrap())),
        ),
    ];
    for (name, make) in makers {
        let exact = final_x(&p, &mut *make(None), iters);
        let runs: Vec<Mat<f64>> = (0..seeds)
            .map(|seed| {
                let b = Minibatch {
                    batch_f: 1,
                    batch_g: 1,
                    seed,
                };
                final_x(&p, &mut *make(Some(b)), iters)
            })
            .collect();
        let x0 = p.x0();
        for i in 0..4 {
            let xs: Vec<f64> = runs.iter().map(|x| x[(i, 0)]).collect();
            let mean = xs.iter().sum::<f64>() / seeds as f64;
            let var = xs.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (seeds - 1) as f64;
            let se = (var / seeds as f64).sqrt();
            let moved = (exact[(i, 0)] - x0[(i, 0)]).abs();
            eprintln!(
                "{name} x[{i}]: exact {:.5}, mean {mean:.5} ± {se:.1e} (moved {moved:.3})",
                exact[(i, 0)]
            );
            assert!(var > 0.0, "{name}: the draws differ");
            assert!(
                (mean - exact[(i, 0)]).abs() <= 4.0 * se,
                "{name} x[{i}]: mean {mean} vs exact {} (standard error {se})",
                exact[(i, 0)]
            );
            // The test has power: the path moves much farther than the standard error.
            assert!(moved > 10.0 * se, "{name} x[{i}]: moved {moved}, se {se}");
        }
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

#[test]
fn quadratic_kappa_saba_converges_and_soba_decays_at_its_rate() {
    let p = QuadraticKappa::new(10.0, 2);
    let one = |seed| Minibatch {
        batch_f: 1,
        batch_g: 1,
        seed,
    };
    let g0 = norm(&p.grad_phi(p.x0().as_ref()).unwrap()).powi(2);
    for seed in 0..3 {
        for init in [MemoryInit::Full, MemoryInit::Zero] {
            let mut s = Saba::new(SabaParams {
                rho: 0.1,
                gamma: 0.1,
                batch: Some(one(seed)),
                memory_init: init,
            })
            .unwrap();
            let got = grad_phi_sq(&p, &mut s, 4000);
            eprintln!("saba {init:?} seed {seed}: ‖∇Φ‖² {g0:.3e} → {got:.3e}");
            assert!(got <= 1e-8, "saba {init:?} seed {seed}: ‖∇Φ‖² = {got:e}");
        }
    }
    // SOBA's decreasing steps set its pace here, not its noise: γ_t = 0.1/(t+1)^{3/5} on Φ,
    // whose slow direction has curvature μ = 0.1, contracts that error by exp(−μ Σ_t γ_t),
    // about e^{−1.2} after 16000 iterations. So the stochastic runs stay within 10 % of SOBA
    // with exact gradients and the same steps, which the test pins together with the decay.
    let run = |batch, iters| {
        let mut s = Soba::new(SobaParams {
            batch,
            ..SobaParams::default()
        })
        .unwrap();
        grad_phi_sq(&p, &mut s, iters)
    };
    let (ea, eb) = (run(None, 1000), run(None, 16000));
    eprintln!("soba exact: ‖∇Φ‖² {g0:.3e} → {ea:.3e} (1000) → {eb:.3e} (16000)");
    assert!(ea < 0.5 * g0 && eb < 0.3 * ea, "{g0} → {ea} → {eb}");
    for seed in 0..3 {
        let (a, b) = (run(Some(one(seed)), 1000), run(Some(one(seed)), 16000));
        eprintln!("soba seed {seed}: ‖∇Φ‖² {g0:.3e} → {a:.3e} (1000) → {b:.3e} (16000)");
        assert!(
            (a - ea).abs() < 0.1 * ea && (b - eb).abs() < 0.1 * eb,
            "{a} {b}"
        );
    }
}

#[test]
fn soba_and_saba_refuse_bad_parameters_and_problems_that_are_not_data_sums() {
    let e = Soba::new(SobaParams {
        rho_decay: 1.5,
        ..SobaParams::default()
    })
    .unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidParameter {
                name: "rho_decay",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("[0, 1]"), "{e}");
    let e = Saba::new(SabaParams {
        gamma: 0.0,
        ..SabaParams::default()
    })
    .unwrap_err();
    assert!(
        matches!(e, Error::InvalidParameter { name: "gamma", .. }),
        "{e}"
    );
    let zero = Minibatch {
        batch_f: 0,
        batch_g: 4,
        seed: 0,
    };
    let e = Saba::new(SabaParams {
        batch: Some(zero),
        ..SabaParams::default()
    })
    .unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidParameter {
                name: "batch.batch_f",
                ..
            }
        ),
        "{e}"
    );
    // The default minibatch needs a data sum; without one, exact gradients run.
    let p = ScSinCos::default();
    let solvers: Vec<Box<dyn Solver>> = vec![
        Box::new(Soba::new(SobaParams::default()).unwrap()),
        Box::new(Saba::new(SabaParams::default()).unwrap()),
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
        assert!(e.to_string().contains("data sums"), "{e}");
    }
    let mut s = Soba::new(SobaParams {
        rho: 0.01,
        gamma: 0.01,
        batch: None,
        ..SobaParams::default()
    })
    .unwrap();
    let r = Runner::new(RunConfig::iters(5))
        .unwrap()
        .run(&p, &mut s)
        .unwrap();
    assert_eq!(r.status, Status::MaxIter);
    // 2 Gc and 1 MV per iteration.
    assert_eq!((r.counts.gc, r.counts.mv), (10, 5));
}

#[test]
fn soba_and_saba_resume_bit_identically_and_count_their_oracles() {
    // The stream and SABA's memory are part of the state, so a resumed run continues exactly.
    let p = QuadraticKappa::new(10.0, 9);
    let batch = Minibatch {
        batch_f: 4,
        batch_g: 2,
        seed: 7,
    };
    let make = || -> Vec<Box<dyn Solver>> {
        vec![
            Box::new(
                Soba::new(SobaParams {
                    batch: Some(batch),
                    ..SobaParams::default()
                })
                .unwrap(),
            ),
            Box::new(
                Saba::new(SabaParams {
                    batch: Some(batch),
                    ..SabaParams::default()
                })
                .unwrap(),
            ),
            Box::new(
                Saba::new(SabaParams {
                    batch: Some(batch),
                    memory_init: MemoryInit::Zero,
                    ..SabaParams::default()
                })
                .unwrap(),
            ),
        ]
    };
    for (((mut a, mut b), mut c), start_gc) in
        make()
            .into_iter()
            .zip(make())
            .zip(make())
            .zip([0, 5 + 3, 0])
    {
        let full = Runner::new(RunConfig::iters(30))
            .unwrap()
            .run(&p, &mut *a)
            .unwrap();
        let half = Runner::new(RunConfig::iters(12))
            .unwrap()
            .run(&p, &mut *b)
            .unwrap();
        let ck =
            bilevel_solvers::Checkpoint::from_json(&half.checkpoint.unwrap().to_json().unwrap())
                .unwrap();
        let rest = Runner::new(RunConfig::iters(30))
            .unwrap()
            .resume(&p, &mut *c, &ck)
            .unwrap();
        assert_eq!(full.iterate, rest.iterate, "{}", a.name());
        assert_eq!(full.counts, rest.counts, "{}", a.name());
        assert_eq!(
            full.trace.last().unwrap().scalars,
            rest.trace.last().unwrap().scalars
        );
        // 9 samples of g in blocks of 2 (five blocks), of f in blocks of 4 (three blocks).
        assert_eq!(
            (full.counts.gc, full.counts.mv),
            (start_gc + 60, 30),
            "{}",
            a.name()
        );
    }
}

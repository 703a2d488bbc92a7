//! StocBiO (Ji, Yang and Liang), AmIGO (Arbel and Mairal), BSA (Ghadimi and Wang) and TTSA
//! (Hong, Wai, Wang and Yang) on the quadratic problem: the mean over seeds on the exact path,
//! the floors their Hessian-inverse estimates leave, what they share with each other and with
//! AIDBiO, typed errors, counts and resumes.

use bilevel_linalg::Mat;
use bilevel_solvers::algorithms::{
    AidBio, AidBioParams, Amigo, AmigoParams, Bsa, BsaParams, LinearSolve, Stocbio, StocbioParams,
    Ttsa, TtsaParams,
};
use bilevel_solvers::problems::{QuadraticKappa, ScSinCos};
use bilevel_solvers::sampling::Minibatch;
use bilevel_solvers::{Checkpoint, Error, Oracle, Problem, Record, RunConfig, Runner, Solver};

/// The diagonal `z` of the quadratic's `Z = ∇²ᵧᵧg`, as `Z·1`.
fn diag(p: &QuadraticKappa) -> Vec<f64> {
    let ones = Mat::from_fn(p.dim_y(), 1, |_, _| 1.0);
    let h = Oracle::new(p).hvp_g(&p.x0(), &p.y0(), &ones).yy;
    h.col_as_slice(0).to_vec()
}

use bilevel_solvers::testing::run_iters as run;

fn one(seed: u64) -> Option<Minibatch> {
    Some(Minibatch {
        batch_f: 1,
        batch_g: 1,
        seed,
    })
}

type Make = Box<dyn Fn(Option<Minibatch>) -> Box<dyn Solver>>;

/// The four methods with few inner steps and short series, as functions of the minibatch.
fn makers() -> Vec<(&'static str, Make)> {
    vec![
        (
            "stocbio",
            Box::new(|batch| {
                Box::new(
                    Stocbio::new(StocbioParams {
                        inner_steps: 3,
                        neumann_steps: 3,
                        batch,
                        ..StocbioParams::default()
                    })
                    .unwrap(),
                )
            }),
        ),
        (
            "amigo",
            Box::new(|batch| {
                Box::new(
                    Amigo::new(AmigoParams {
                        inner_steps: 3,
                        linear_steps: 3,
                        batch,
                        ..AmigoParams::default()
                    })
                    .unwrap(),
                )
            }),
        ),
        (
            "bsa",
            Box::new(|batch| {
                Box::new(
                    Bsa::new(BsaParams {
                        inner_steps: 3,
                        neumann_terms: 4,
                        batch,
                        ..BsaParams::default()
                    })
                    .unwrap(),
                )
            }),
        ),
        (
            "ttsa",
            Box::new(|batch| {
                Box::new(
                    Ttsa::new(TtsaParams {
                        neumann_terms: 4,
                        batch,
                        ..TtsaParams::default()
                    })
                    .unwrap(),
                )
            }),
        ),
    ]
}

/// On the quadratic problem every estimate these methods form is affine in the iterates with
/// coefficients that depend on the current draws only (fresh ones for every gradient, every
/// factor of a series and every mixed product), and the random truncation's mean is the full
/// series, which is what they compute with exact oracles. So the expected path of each, `x`
/// and `y`, is exactly its path with exact oracles: the mean over seeds must approach it
/// within its standard error.
#[test]
fn the_mean_over_seeds_approaches_the_exact_hypergradient_path() {
    let p = QuadraticKappa::new(10.0, 4);
    let (iters, seeds) = (40, 1000u64);
    for (name, make) in makers() {
        let exact = run(&p, &mut *make(None), iters).iterate;
        let runs: Vec<_> = (0..seeds)
            .map(|seed| run(&p, &mut *make(one(seed)), iters).iterate)
            .collect();
        let start = (p.x0(), p.y0());
        for (block, pick) in [("x", 0), ("y", 1)] {
            for i in 0..4 {
                let get = |it: &bilevel_solvers::Iterate| {
                    if pick == 0 {
                        it.x[(i, 0)]
                    } else {
                        it.y[(i, 0)]
                    }
                };
                let xs: Vec<f64> = runs.iter().map(get).collect();
                let mean = xs.iter().sum::<f64>() / seeds as f64;
                let var = xs.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (seeds - 1) as f64;
                let se = (var / seeds as f64).sqrt();
                let e = get(&exact);
                let s0 = if pick == 0 {
                    start.0[(i, 0)]
                } else {
                    start.1[(i, 0)]
                };
                let moved = (e - s0).abs();
                eprintln!(
                    "{name} {block}[{i}]: exact {e:.5}, mean {mean:.5} ± {se:.1e} (moved {moved:.3})"
                );
                assert!(var > 0.0, "{name}: the draws differ");
                assert!(
                    (mean - e).abs() <= 4.0 * se,
                    "{name} {block}[{i}]: mean {mean} vs exact {e} (standard error {se})"
                );
                // The test has power: the path moves much farther than the standard error.
                assert!(
                    moved > 10.0 * se,
                    "{name} {block}[{i}]: moved {moved}, se {se}"
                );
            }
        }
    }
}

/// `‖∇Φ‖` where a hypergradient estimate built on the `Q`-term series
/// `η Σ_{q<Q}(I − ηZ)^q ∇ᵧf` vanishes. The quadratic's estimate there is
/// `Zx + L·0.1(1 − (1 − ηz)^Q)/z` (coordinate-wise, `∇ᵧf = 0.1·1` and `∇²ₓᵧg = −L I`), while
/// `∇Φ(x) = Zx + 0.1 L/z`: the fixed point's `∇Φ` is the series' tail `0.1 L (1 − ηz)^Q/z`.
fn truncation_floor(p: &QuadraticKappa, eta: f64, terms: i32) -> f64 {
    let l = p.l();
    let tail: Vec<f64> = diag(p)
        .iter()
        .map(|z| 0.1 * l * (1.0 - eta * z).powi(terms) / z)
        .collect();
    tail.iter().map(|t| t * t).sum::<f64>().sqrt()
}

fn grad_phi(r: &bilevel_solvers::RunResult) -> f64 {
    r.last_metrics().unwrap().grad_phi_norm.unwrap()
}

/// With exact oracles a truncated Neumann series is a biased estimate of the hypergradient:
/// StocBiO (`Q` products, `Q + 1` terms), BSA and TTSA (the mean of their random truncation,
/// `Q` terms) converge to the point where their estimate vanishes, whose `‖∇Φ‖` is the series'
/// tail, known in closed form; more terms lower it. AmIGO's warm-started SGD on the linear
/// system converges to the exact solution, so it has no floor.
#[test]
fn exact_oracles_stop_at_the_truncation_floor_and_amigo_has_none() {
    let p = QuadraticKappa::new(10.0, 2); // z = (1, 0.1), L = 1: x contracts by 0.9 per step
    let eta = 0.5;
    let iters = 400;
    for q in [5usize, 50] {
        let mut s = Stocbio::new(StocbioParams {
            alpha: 0.5,
            beta: 1.0,
            eta,
            inner_steps: 1,
            neumann_steps: q,
            batch: None,
        })
        .unwrap();
        let (got, want) = (
            grad_phi(&run(&p, &mut s, iters)),
            truncation_floor(&p, eta, q as i32 + 1),
        );
        eprintln!("stocbio Q = {q}: ‖∇Φ‖ {got:.6e}, floor {want:.6e}");
        assert!(
            (got - want).abs() <= 1e-9 * want,
            "stocbio Q = {q}: {got} vs {want}"
        );
        let bsa = BsaParams {
            alpha: 0.5,
            beta: 1.0,
            beta_decay: 0.0,
            eta,
            inner_steps: 1,
            neumann_terms: q,
            batch: None,
            ..BsaParams::default()
        };
        let ttsa = TtsaParams {
            alpha: 0.5,
            beta: 1.0,
            beta_decay: 0.0,
            eta,
            neumann_terms: q,
            batch: None,
            ..TtsaParams::default()
        };
        let solvers: Vec<Box<dyn Solver>> = vec![
            Box::new(Bsa::new(bsa).unwrap()),
            Box::new(Ttsa::new(ttsa).unwrap()),
        ];
        for mut s in solvers {
            let (got, want) = (
                grad_phi(&run(&p, &mut *s, iters)),
                truncation_floor(&p, eta, q as i32),
            );
            eprintln!("{} Q = {q}: ‖∇Φ‖ {got:.6e}, floor {want:.6e}", s.name());
            assert!(
                (got - want).abs() <= 1e-9 * want,
                "{} Q = {q}: {got} vs {want}",
                s.name()
            );
        }
    }
    // The floors are far apart, so the test tells the series' lengths apart.
    assert!(truncation_floor(&p, eta, 6) > 5.0 * truncation_floor(&p, eta, 51));
    let mut s = Amigo::new(AmigoParams {
        alpha: 0.5,
        beta: 1.0,
        eta: 1.0 / p.l(),
        inner_steps: 1,
        linear_steps: 1,
        batch: None,
    })
    .unwrap();
    let got = grad_phi(&run(&p, &mut s, 600));
    eprintln!("amigo: ‖∇Φ‖ {got:.3e}");
    assert!(got < 1e-10, "amigo: ‖∇Φ‖ = {got:e}");
}

fn bits(m: &Mat<f64>) -> Vec<u64> {
    m.col_as_slice(0).iter().map(|v| v.to_bits()).collect()
}

fn scalar_bits(trace: &[Record]) -> Vec<Vec<(String, u64)>> {
    trace
        .iter()
        .map(|r| {
            r.scalars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_bits()))
                .collect()
        })
        .collect()
}

/// StocBiO is stochastic AIDBiO with the Neumann series, and TTSA is BSA's step with one
/// inner step: the same pieces give the same bits, draws included.
#[test]
fn stocbio_is_aidbio_with_the_series_and_ttsa_is_bsa_with_one_inner_step() {
    let p = QuadraticKappa::new(10.0, 6);
    let batch = Some(Minibatch {
        batch_f: 3,
        batch_g: 2,
        seed: 4,
    });
    let mut a = Stocbio::new(StocbioParams {
        alpha: 0.2,
        beta: 0.05,
        eta: 0.3,
        inner_steps: 4,
        neumann_steps: 6,
        batch,
    })
    .unwrap();
    let mut b = AidBio::new(AidBioParams {
        alpha: 0.2,
        beta: 0.05,
        inner_steps: 4,
        solve: LinearSolve::Neumann { terms: 7, eta: 0.3 },
        batch,
    })
    .unwrap();
    let (ra, rb) = (run(&p, &mut a, 25), run(&p, &mut b, 25));
    assert_eq!(bits(&ra.iterate.x), bits(&rb.iterate.x));
    assert_eq!(bits(&ra.iterate.y), bits(&rb.iterate.y));
    // 4 + 1 Gc and 6 + 1 MV per iteration.
    assert_eq!(ra.counts, rb.counts);
    assert_eq!((ra.counts.gc, ra.counts.mv), (25 * 5, 25 * 7));
    let bsa = BsaParams {
        alpha: 0.3,
        alpha_decay: 0.4,
        beta: 0.2,
        beta_decay: 0.6,
        eta: 0.25,
        inner_steps: 1,
        neumann_terms: 5,
        batch,
    };
    let ttsa = TtsaParams {
        alpha: 0.3,
        alpha_decay: 0.4,
        beta: 0.2,
        beta_decay: 0.6,
        eta: 0.25,
        neumann_terms: 5,
        batch,
    };
    let (mut a, mut b) = (Ttsa::new(ttsa).unwrap(), Bsa::new(bsa).unwrap());
    let cfg = RunConfig {
        metrics_every: 1,
        ..RunConfig::iters(25)
    };
    let ra = Runner::new(cfg.clone()).unwrap().run(&p, &mut a).unwrap();
    let rb = Runner::new(cfg).unwrap().run(&p, &mut b).unwrap();
    assert_eq!(bits(&ra.iterate.x), bits(&rb.iterate.x));
    assert_eq!(bits(&ra.iterate.y), bits(&rb.iterate.y));
    assert_eq!(scalar_bits(&ra.trace), scalar_bits(&rb.trace));
    // 2 Gc per iteration, and p + 1 MV for the truncation p each iteration drew.
    let mv: f64 = ra.trace[1..]
        .iter()
        .map(|r| 1.0 + r.scalars.iter().find(|(k, _)| k == "truncation").unwrap().1)
        .sum();
    assert_eq!((ra.counts.gc, ra.counts.mv), (50, mv as u64));
    // The truncations vary, within {0, …, Q − 1}.
    let ps: Vec<f64> = ra.trace[1..].iter().map(|r| r.scalars[4].1).collect();
    assert!(ps.iter().all(|&q| (0.0..5.0).contains(&q)), "{ps:?}");
    assert!(ps.iter().any(|&q| q != ps[0]), "{ps:?}");
    // The steps decay as written.
    let (alpha, beta) = (ra.trace[3].scalars[0].1, ra.trace[3].scalars[1].1);
    assert_eq!((alpha, beta), (0.3 / 3f64.powf(0.4), 0.2 / 3f64.powf(0.6)));
}

fn invalid(e: Error, key: &str) {
    assert!(
        matches!(&e, Error::InvalidParameter { name, .. } if *name == key),
        "{key}: {e}"
    );
}

#[test]
fn bad_parameters_are_typed_errors_and_problems_must_be_data_sums() {
    invalid(
        Stocbio::new(StocbioParams {
            eta: 0.0,
            ..StocbioParams::default()
        })
        .unwrap_err(),
        "eta",
    );
    invalid(
        Stocbio::new(StocbioParams {
            inner_steps: 0,
            ..StocbioParams::default()
        })
        .unwrap_err(),
        "inner_steps",
    );
    invalid(
        Amigo::new(AmigoParams {
            linear_steps: 0,
            ..AmigoParams::default()
        })
        .unwrap_err(),
        "linear_steps",
    );
    invalid(
        Amigo::new(AmigoParams {
            beta: f64::NAN,
            ..AmigoParams::default()
        })
        .unwrap_err(),
        "beta",
    );
    let e = Bsa::new(BsaParams {
        alpha_decay: 1.5,
        ..BsaParams::default()
    })
    .unwrap_err();
    assert!(e.to_string().contains("[0, 1]"), "{e}");
    invalid(e, "alpha_decay");
    invalid(
        Bsa::new(BsaParams {
            neumann_terms: 0,
            ..BsaParams::default()
        })
        .unwrap_err(),
        "neumann_terms",
    );
    invalid(
        Ttsa::new(TtsaParams {
            beta_decay: -0.1,
            ..TtsaParams::default()
        })
        .unwrap_err(),
        "beta_decay",
    );
    invalid(
        Ttsa::new(TtsaParams {
            alpha: -1.0,
            ..TtsaParams::default()
        })
        .unwrap_err(),
        "alpha",
    );
    invalid(
        Ttsa::new(TtsaParams {
            batch: Some(Minibatch {
                batch_f: 2,
                batch_g: 0,
                seed: 0,
            }),
            ..TtsaParams::default()
        })
        .unwrap_err(),
        "batch.batch_g",
    );
    // The default minibatch needs a data sum; without one, exact oracles run.
    let p = ScSinCos::default();
    let defaults: Vec<Box<dyn Solver>> = vec![
        Box::new(Stocbio::new(StocbioParams::default()).unwrap()),
        Box::new(Amigo::new(AmigoParams::default()).unwrap()),
        Box::new(Bsa::new(BsaParams::default()).unwrap()),
        Box::new(Ttsa::new(TtsaParams::default()).unwrap()),
    ];
    for mut s in defaults {
        let e = Runner::new(RunConfig::iters(5))
            .unwrap()
            .run(&p, &mut *s)
            .unwrap_err();
        assert!(e.to_string().contains("data sums"), "{}: {e}", s.name());
        invalid(e, "batch");
    }
    // sc-sincos has L_g = 100: steps of 0.005. Counts per iteration: StocBiO D + 1 Gc and
    // Q + 1 MV; AmIGO T + 1 and N + 1; BSA t + 1 and Q (the mean of the truncation, all its
    // Q − 1 products, and the mixed product); TTSA 2 and Q.
    let h = 0.005;
    let exact: Vec<(Box<dyn Solver>, (u64, u64))> = vec![
        (
            Box::new(
                Stocbio::new(StocbioParams {
                    alpha: h,
                    beta: h,
                    eta: h,
                    batch: None,
                    ..StocbioParams::default()
                })
                .unwrap(),
            ),
            (11, 11),
        ),
        (
            Box::new(
                Amigo::new(AmigoParams {
                    alpha: h,
                    beta: h,
                    eta: h,
                    linear_steps: 4,
                    batch: None,
                    ..AmigoParams::default()
                })
                .unwrap(),
            ),
            (11, 5),
        ),
        (
            Box::new(
                Bsa::new(BsaParams {
                    alpha: h,
                    beta: h,
                    eta: h,
                    inner_steps: 3,
                    batch: None,
                    ..BsaParams::default()
                })
                .unwrap(),
            ),
            (4, 10),
        ),
        (
            Box::new(
                Ttsa::new(TtsaParams {
                    alpha: h,
                    beta: h,
                    eta: h,
                    batch: None,
                    ..TtsaParams::default()
                })
                .unwrap(),
            ),
            (2, 10),
        ),
    ];
    for (mut s, (gc, mv)) in exact {
        let r = run(&p, &mut *s, 5);
        assert_eq!((r.counts.gc, r.counts.mv), (5 * gc, 5 * mv), "{}", s.name());
    }
}

#[test]
fn the_four_resume_bit_identically() {
    // The stream and v are the state, so a resumed run continues exactly.
    let p = QuadraticKappa::new(10.0, 9);
    let batch = Some(Minibatch {
        batch_f: 4,
        batch_g: 2,
        seed: 7,
    });
    for (name, make) in makers() {
        let (mut a, mut b, mut c) = (make(batch), make(batch), make(batch));
        let full = Runner::new(RunConfig::iters(30))
            .unwrap()
            .run(&p, &mut *a)
            .unwrap();
        let half = Runner::new(RunConfig::iters(12))
            .unwrap()
            .run(&p, &mut *b)
            .unwrap();
        let ck = Checkpoint::from_json(&half.checkpoint.unwrap().to_json().unwrap()).unwrap();
        let rest = Runner::new(RunConfig::iters(30))
            .unwrap()
            .resume(&p, &mut *c, &ck)
            .unwrap();
        assert_eq!(bits(&full.iterate.x), bits(&rest.iterate.x), "{name}");
        assert_eq!(bits(&full.iterate.y), bits(&rest.iterate.y), "{name}");
        assert_eq!(full.counts, rest.counts, "{name}");
        assert_eq!(
            scalar_bits(&full.trace[full.trace.len() - 1..]),
            scalar_bits(&rest.trace[rest.trace.len() - 1..]),
            "{name}"
        );
    }
}

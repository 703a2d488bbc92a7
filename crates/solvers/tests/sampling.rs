//! Minibatch oracles: the full batch is the full oracle, and a seed fixes the sample sequence.

use bilevel_solvers::algorithms::{
    F2sa, F2saParams, F3sa, F3saParams, ProxF2saMomentum, ProxF2saMomentumParams,
};
use bilevel_solvers::problems::{QuadraticKappa, ScSinCos};
use bilevel_solvers::sampling::{Minibatch, SampleStream};
use bilevel_solvers::vecops::{lincomb, norm};
use bilevel_solvers::{Error, Oracle, Problem, RunConfig, Runner, Solver};

#[test]
fn full_batch_equals_full_oracle() {
    let p = QuadraticKappa::new(10.0, 5);
    let mut o = Oracle::new(&p);
    let (x, y) = (p.x0(), lincomb(1.0, &p.x0(), 0.5, &p.x0()));
    let all: Vec<usize> = (0..5).collect();
    let (a, b) = (o.grad_f(&x, &y), o.grad_f_batch(&x, &y, &all));
    assert!((a.value - b.value).abs() <= 1e-12 * a.value.abs().max(1.0));
    assert!(norm(&lincomb(1.0, &a.x, -1.0, &b.x)) <= 1e-12);
    assert!(norm(&lincomb(1.0, &a.y, -1.0, &b.y)) <= 1e-12);
    let (a, b) = (o.grad_g(&x, &y), o.grad_g_batch(&x, &y, &all));
    assert!((a.value - b.value).abs() <= 1e-12 * a.value.abs().max(1.0));
    assert!(norm(&lincomb(1.0, &a.x, -1.0, &b.x)) <= 1e-12);
    assert!(norm(&lincomb(1.0, &a.y, -1.0, &b.y)) <= 1e-12);
    // Each batch gradient is one Gc.
    assert_eq!(o.counts().gc, 4);
    // A batch average is unbiased: the mean over all single-sample batches is the full value.
    let mean: f64 = (0..5)
        .map(|i| o.grad_g_batch(&x, &y, &[i]).value)
        .sum::<f64>()
        / 5.0;
    assert!((mean - a.value).abs() <= 1e-12 * a.value.abs().max(1.0));
}

#[test]
fn a_seed_reproduces_the_sample_sequence() {
    let draws = |seed| {
        let mut s = SampleStream::new(seed);
        (0..50).map(|_| s.draw(100, 7)).collect::<Vec<_>>()
    };
    assert_eq!(draws(11), draws(11));
    assert_ne!(draws(11), draws(12));
    // A full batch consumes nothing from the stream.
    let mut s = SampleStream::new(5);
    assert_eq!(s.draw(4, 4), vec![0, 1, 2, 3]);
    assert_eq!(s, SampleStream::new(5));
}

fn stochastic_run(seed: u64) -> (Vec<u64>, f64) {
    let p = QuadraticKappa::new(2.0, 8);
    let l = p.l();
    // Half of the 8 samples per gradient. A batch reweights its samples by N/|B| = 2, which
    // doubles the curvature the steps see, so the steps are halved.
    let batch = Minibatch {
        batch_f: 4,
        batch_g: 4,
        seed,
    };
    let mut s = F3sa::new(F3saParams {
        alpha0: 0.025 / l,
        gamma0: 0.25 / l,
        k0: 100.0,
        ..F3saParams::stochastic(batch)
    })
    .unwrap();
    let r = Runner::new(RunConfig::iters(3000))
        .unwrap()
        .run(&p, &mut s)
        .unwrap();
    let bits = r
        .iterate
        .x
        .col_as_slice(0)
        .iter()
        .map(|v| v.to_bits())
        .collect();
    (bits, r.last_metrics().unwrap().grad_phi_norm.unwrap())
}

#[test]
fn stochastic_f3sa_is_reproducible_for_a_seed_and_makes_progress() {
    let (a, ga) = stochastic_run(1);
    let (b, _) = stochastic_run(1);
    let (c, gc) = stochastic_run(2);
    assert_eq!(a, b);
    assert_ne!(a, c);
    let p = QuadraticKappa::new(2.0, 8);
    let g0 = norm(&p.grad_phi(p.x0().as_ref()).unwrap());
    eprintln!("stochastic F³SA: ‖∇Φ‖ {g0:e} → {ga:e} (seed 1), {gc:e} (seed 2)");
    // The noisy-gradient schedule (a = 3/5, c = 2/5) decays slowly: ‖∇Φ‖ ≈ 0.03 after 3000
    // iterations from 0.82 (seed 1).
    assert!(ga < 0.1 * g0 && gc < 0.1 * g0, "{g0} → {ga}, {gc}");
}

#[test]
fn stochastic_f2sa_runs_on_minibatches_and_rejects_other_problems() {
    let batch = Minibatch {
        batch_f: 2,
        batch_g: 2,
        seed: 3,
    };
    let p = QuadraticKappa::new(2.0, 4);
    let mut s = F2sa::new(F2saParams {
        batch: Some(batch),
        ..F2saParams::default()
    })
    .unwrap();
    let r = Runner::new(RunConfig::iters(10))
        .unwrap()
        .run(&p, &mut s)
        .unwrap();
    // T = 1: three stochastic gradients in the inner step, three for x.
    assert_eq!(r.counts.gc, 60);
    let mut s: Box<dyn Solver> = Box::new(
        F2sa::new(F2saParams {
            batch: Some(batch),
            ..F2saParams::default()
        })
        .unwrap(),
    );
    let e = Runner::new(RunConfig::iters(10))
        .unwrap()
        .run(&ScSinCos::default(), &mut *s)
        .unwrap_err();
    assert!(
        matches!(e, Error::InvalidParameter { name: "batch", .. }),
        "{e}"
    );
}

#[test]
fn stochastic_runs_resume_bit_identically_from_a_checkpoint() {
    // The index stream is part of the solver state, so a resumed run draws the same samples.
    let p = QuadraticKappa::new(2.0, 8);
    let batch = Minibatch {
        batch_f: 3,
        batch_g: 5,
        seed: 9,
    };
    let make = || -> Vec<Box<dyn Solver>> {
        vec![
            Box::new(F3sa::new(F3saParams::stochastic(batch)).unwrap()),
            Box::new(
                F2sa::new(F2saParams {
                    batch: Some(batch),
                    ..F2saParams::default()
                })
                .unwrap(),
            ),
            Box::new(ProxF2saMomentum::new(ProxF2saMomentumParams::stochastic(batch)).unwrap()),
        ]
    };
    for ((mut a, mut b), mut c) in make().into_iter().zip(make()).zip(make()) {
        let full = Runner::new(RunConfig::iters(30))
            .unwrap()
            .run(&p, &mut *a)
            .unwrap();
        let half = Runner::new(RunConfig::iters(12))
            .unwrap()
            .run(&p, &mut *b)
            .unwrap();
        let ck = half.checkpoint.unwrap();
        let rest = Runner::new(RunConfig::iters(30))
            .unwrap()
            .resume(&p, &mut *c, &ck)
            .unwrap();
        assert_eq!(full.iterate, rest.iterate, "{}", a.name());
        assert_eq!(full.counts, rest.counts, "{}", a.name());
    }
}

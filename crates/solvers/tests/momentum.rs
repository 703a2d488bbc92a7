//! FSLA (Li, Gu and Huang), MRBO and VRBO (Yang, Ji and Liang) and SUSTAIN (Khanduri, Zeng,
//! Hong, Wai, Wang and Yang): their recursive estimators against the papers' updates written
//! out here on a data-sum problem whose every derivative depends on `y`, the mean over seeds on
//! the exact path, the floors their series leave on the quadratic problem, the exact-oracle
//! recursion's exactness, typed errors, counts and resumes.

use bilevel_ad::Evaluator;
use bilevel_linalg::Mat;
use bilevel_solvers::algorithms::{
    Fsla, FslaParams, Mrbo, MrboParams, Sustain, SustainParams, Vrbo, VrboParams,
};
use bilevel_solvers::problems::{Dhc, DhcData, DhcModel, QuadraticKappa, ScSinCos};
use bilevel_solvers::sampling::{Draw, Minibatch, SampleStream, grad_f, grad_g, hvp_g};
use bilevel_solvers::vecops::{self, axpy, lincomb, norm};
use bilevel_solvers::{
    Checkpoint, Error, Iterate, Oracle, Problem, Record, RunConfig, RunResult, Runner, Solver,
    Status,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;

/// A solver under test, named, with the iterate `(x, y)` its iteration written out reaches.
type Case = (&'static str, Box<dyn Solver>, (Mat<f64>, Mat<f64>));

use bilevel_solvers::testing::run_iters as run;

fn bits(m: &Mat<f64>) -> Vec<u64> {
    m.col_as_slice(0).iter().map(|v| v.to_bits()).collect()
}

fn rel(a: &Mat<f64>, b: &Mat<f64>) -> f64 {
    norm(&lincomb(1.0, a, -1.0, b)) / norm(a).max(1e-300)
}

fn sub(a: &Mat<f64>, b: &Mat<f64>) -> Mat<f64> {
    lincomb(1.0, a, -1.0, b)
}

// ----- the papers' updates, written out ---------------------------------------------------------

/// The draws a method's stream gives, in the order the method takes them (`batch: None`: the
/// full sums, and the stream untouched).
struct Draws {
    s: SampleStream,
    batch: Option<Minibatch>,
    nf: usize,
    ng: usize,
}

impl Draws {
    fn new(p: &dyn Problem, batch: Option<Minibatch>) -> Self {
        let d = p.data_sum().unwrap();
        Draws {
            s: SampleStream::new(batch.map_or(0, |b| b.seed)),
            batch,
            nf: d.samples_f(),
            ng: d.samples_g(),
        }
    }
    fn f(&mut self) -> Draw {
        self.batch.map(|b| self.s.draw(self.nf, b.batch_f))
    }
    fn g(&mut self) -> Draw {
        self.batch.map(|b| self.s.draw(self.ng, b.batch_g))
    }
}

/// The momentum update in the papers' form, `ρĝ + (1 − ρ)(d + ĝ − ĝ₋)`.
fn storm(d: &Mat<f64>, g: &Mat<f64>, gp: &Mat<f64>, rho: f64) -> Mat<f64> {
    let mut m = lincomb(1.0, d, 1.0, g);
    axpy(&mut m, -1.0, gp);
    lincomb(rho, g, 1.0 - rho, &m)
}

/// How `v` is formed at each point from `∇ᵧf` there.
#[derive(Clone, Copy)]
enum V {
    /// `η Σ_{q=0}^{Q} Π_{m≤q}(I − ηHₘ) b`, `Q` products, the `m`-th factor of each point on one
    /// draw.
    Series(f64, usize),
    /// `Qη Π_{m=1}^{t}(I − ηHₘ) b` with `t` from the stream, uniform in `0..Q` (the series' mean
    /// with full sums).
    Random(f64, usize),
}

/// `∇ₓfⱼ − ∇²ₓᵧgₗ·v` at each point on shared draws `j` (and `l`), `v` given or from `how`.
fn hyper(
    o: &mut Oracle<'_>,
    pts: &[(Mat<f64>, Mat<f64>)],
    given: Option<Vec<Mat<f64>>>,
    how: V,
    dr: &mut Draws,
) -> Vec<Mat<f64>> {
    let dj = dr.f();
    let fs: Vec<_> = pts.iter().map(|(x, y)| grad_f(o, x, y, &dj)).collect();
    let vs = given.unwrap_or_else(|| {
        let (eta, products, scale) = match how {
            V::Series(eta, q) => (eta, q, eta),
            V::Random(eta, q) if dr.batch.is_none() => (eta, q - 1, eta),
            V::Random(eta, q) => (eta, dr.s.pick(q), q as f64 * eta),
        };
        let series = matches!(how, V::Series(..)) || dr.batch.is_none();
        let mut terms: Vec<Mat<f64>> = fs.iter().map(|f| f.y.clone()).collect();
        let mut sums = terms.clone();
        for _ in 0..products {
            let d = dr.g();
            for ((x, y), t) in pts.iter().zip(terms.iter_mut()) {
                let h = hvp_g(o, x, y, t, &d).yy;
                axpy(t, -eta, &h);
            }
            for (s, t) in sums.iter_mut().zip(&terms) {
                axpy(s, 1.0, t);
            }
        }
        let mut out = if series { sums } else { terms };
        for v in &mut out {
            vecops::scale(v, scale);
        }
        out
    });
    let dl = dr.g();
    pts.iter()
        .zip(&fs)
        .zip(&vs)
        .map(|(((x, y), f), v)| sub(&f.x, &hvp_g(o, x, y, v, &dl).xy))
        .collect()
}

/// `∇ᵧgᵢ` at each point on one draw.
fn grad_y(o: &mut Oracle<'_>, pts: &[(Mat<f64>, Mat<f64>)], dr: &mut Draws) -> Vec<Mat<f64>> {
    let d = dr.g();
    pts.iter().map(|(x, y)| grad_g(o, x, y, &d).y).collect()
}

fn decayed(c: f64, a: f64, k: u64) -> f64 {
    c / ((k + 1) as f64).powf(a)
}

/// MRBO (`V::Series`) and SUSTAIN (`V::Random`): `iters` iterations of Algorithm 1 of either
/// paper, the estimates at `pₖ` and `pₖ₋₁` on the same samples, plain at `k = 0`.
#[allow(clippy::too_many_arguments)]
fn double_momentum(
    p: &dyn Problem,
    batch: Option<Minibatch>,
    (alpha, a_alpha, beta, a_beta, rho, a_rho): (f64, f64, f64, f64, f64, f64),
    how: V,
    iters: u64,
) -> (Mat<f64>, Mat<f64>) {
    let mut o = Oracle::new(p);
    let mut dr = Draws::new(p, batch);
    let (mut x, mut y) = (p.x0(), p.y0());
    let (mut dy, mut dx) = (Mat::zeros(0, 1), Mat::zeros(0, 1));
    let mut prev: Option<(Mat<f64>, Mat<f64>)> = None;
    for k in 0..iters {
        let r = decayed(rho, a_rho, k);
        let mut pts = vec![(x.clone(), y.clone())];
        pts.extend(prev.clone());
        let g = grad_y(&mut o, &pts, &mut dr);
        dy = if k == 0 {
            g[0].clone()
        } else {
            storm(&dy, &g[0], &g[1], r)
        };
        let h = hyper(&mut o, &pts, None, how, &mut dr);
        dx = if k == 0 {
            h[0].clone()
        } else {
            storm(&dx, &h[0], &h[1], r)
        };
        prev = Some((x.clone(), y.clone()));
        axpy(&mut y, -decayed(alpha, a_alpha, k), &dy);
        axpy(&mut x, -decayed(beta, a_beta, k), &dx);
    }
    (x, y)
}

/// FSLA: `y`, then `v` at the new `y`, then the recursive estimate from
/// `(xₖ, yₖ₊₁, vₖ₊₁)` and `(xₖ₋₁, yₖ, vₖ)` on shared draws, then `x`.
fn fsla(p: &dyn Problem, prm: FslaParams, iters: u64) -> (Mat<f64>, Mat<f64>) {
    let mut o = Oracle::new(p);
    let mut dr = Draws::new(p, prm.batch);
    let (mut x, mut y) = (p.x0(), p.y0());
    let mut v = Mat::zeros(p.dim_y(), 1);
    let (mut dx, mut px) = (Mat::zeros(0, 1), Mat::zeros(0, 1));
    for k in 0..iters {
        let at = |c| decayed(c, prm.decay, k);
        let (py, pv) = (y.clone(), v.clone());
        let g = grad_y(&mut o, &[(x.clone(), y.clone())], &mut dr).remove(0);
        axpy(&mut y, -at(prm.alpha), &g);
        let dj = dr.f();
        let fy = grad_f(&mut o, &x, &y, &dj).y;
        let di = dr.g();
        let r = sub(&hvp_g(&mut o, &x, &y, &v, &di).yy, &fy);
        axpy(&mut v, -at(prm.eta), &r);
        let mut pts = vec![(x.clone(), y.clone())];
        let mut vs = vec![v.clone()];
        if k > 0 {
            pts.push((px.clone(), py));
            vs.push(pv);
        }
        let h = hyper(&mut o, &pts, Some(vs), V::Series(0.0, 0), &mut dr);
        dx = if k == 0 {
            h[0].clone()
        } else {
            storm(&dx, &h[0], &h[1], at(prm.rho))
        };
        px = x.clone();
        axpy(&mut x, -at(prm.beta), &dx);
    }
    (x, y)
}

/// VRBO, Algorithm 2: full sums every `q` outer iterations, an `x` step, then `m` SPIDER
/// corrections against the point of the last estimates, each followed by a `y` step.
fn vrbo(p: &dyn Problem, prm: VrboParams, iters: u64) -> (Mat<f64>, Mat<f64>) {
    let mut o = Oracle::new(p);
    let mut dr = Draws::new(p, prm.batch);
    let mut full = Draws::new(p, None);
    let how = V::Series(prm.eta, prm.neumann_steps);
    let (mut x, mut y) = (p.x0(), p.y0());
    let (mut dy, mut dx) = (Mat::zeros(0, 1), Mat::zeros(0, 1));
    let mut e = (x.clone(), y.clone());
    for k in 0..iters {
        if k.is_multiple_of(prm.period as u64) {
            let pt = [(x.clone(), y.clone())];
            dy = grad_y(&mut o, &pt, &mut full).remove(0);
            dx = hyper(&mut o, &pt, None, how, &mut full).remove(0);
            e = (x.clone(), y.clone());
        }
        axpy(&mut x, -prm.beta, &dx);
        for _ in 0..prm.inner_steps {
            let pts = [(x.clone(), y.clone()), e.clone()];
            let g = grad_y(&mut o, &pts, &mut dr);
            dy = storm(&dy, &g[0], &g[1], 0.0);
            let h = hyper(&mut o, &pts, None, how, &mut dr);
            dx = storm(&dx, &h[0], &h[1], 0.0);
            e = (x.clone(), y.clone());
            axpy(&mut y, -prm.alpha, &dy);
        }
    }
    (x, y)
}

/// A small hyper-cleaning task (softmax regression on `k` clusters, a quarter of the training
/// labels corrupted): `f` and `g`, their gradients and Hessians all depend on `y`, so a
/// correction taken at the wrong point, or a `y` from the wrong step, changes the path.
fn dhc() -> Dhc {
    dhc_task(4, 12, 9, 1e-2)
}

/// `k = 3` clusters in `d` dimensions, `n_tr` training samples (a quarter relabelled) and `n_val`
/// clean validation samples.
fn dhc_task(d: usize, n_tr: usize, n_val: usize, lambda: f64) -> Dhc {
    let k = 3;
    let mut rng = StdRng::seed_from_u64(5);
    let centers = Mat::from_fn(k, d, |_, _| rng.random_range(-1.5..1.5));
    let mut set = |n: usize, corrupt: bool| {
        let labels: Vec<u32> = (0..n).map(|i| (i % k) as u32).collect();
        let a = Mat::from_fn(d, n, |j, i| {
            centers[(labels[i] as usize, j)] + rng.random_range(-1.0..1.0)
        });
        let labels = labels
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                if corrupt && i % 4 == 1 {
                    (c + 1) % k as u32
                } else {
                    c
                }
            })
            .collect();
        (Arc::new(a), labels)
    };
    let (train, train_labels) = set(n_tr, true);
    let (val, val_labels) = set(n_val, false);
    let (test, test_labels) = set(6, false);
    let data = DhcData {
        train,
        train_labels,
        val,
        val_labels,
        test,
        test_labels,
        classes: k,
    };
    Dhc::new(Arc::new(data), DhcModel::Linear, lambda, "momentum-test", 3)
}

/// Each solver against its paper's update written out above, on minibatches (3 of the 9 `f`
/// samples, 2 of the 12 `g` samples) and with exact oracles, over iterations that include the
/// recursions' corrections (and, for VRBO, two restarts): the same draws in the same order, so
/// the same path up to rounding. A correction on independent draws, at the wrong point (a
/// stale `y`, the new `x`), with the weight on the wrong term, or a step before the estimate
/// would move the path by far more than the tolerance.
#[test]
fn each_method_follows_its_paper_s_updates_draw_for_draw() {
    let p = dhc();
    let batch = Some(Minibatch {
        batch_f: 3,
        batch_g: 2,
        seed: 11,
    });
    let iters = 6;
    for b in [batch, None] {
        let mrbo = MrboParams {
            alpha: 0.5,
            beta: 2.0,
            rho: 0.6,
            neumann_steps: 3,
            eta: 0.5,
            batch: b,
            ..MrboParams::default()
        };
        let sustain = SustainParams {
            alpha: 0.5,
            beta: 2.0,
            rho: 0.6,
            neumann_terms: 4,
            eta: 0.5,
            batch: b,
            ..SustainParams::default()
        };
        let fsla_p = FslaParams {
            alpha: 0.5,
            eta: 0.5,
            beta: 2.0,
            rho: 0.6,
            batch: b,
            ..FslaParams::default()
        };
        let vrbo_p = VrboParams {
            alpha: 0.5,
            beta: 2.0,
            eta: 0.5,
            neumann_steps: 2,
            inner_steps: 3,
            period: 4,
            batch: b,
        };
        let sched = (0.5, 1.0 / 3.0, 2.0, 1.0 / 3.0, 0.6, 2.0 / 3.0);
        let cases: Vec<Case> = vec![
            (
                "mrbo",
                Box::new(Mrbo::new(mrbo).unwrap()),
                double_momentum(&p, b, sched, V::Series(0.5, 3), iters),
            ),
            (
                "sustain",
                Box::new(Sustain::new(sustain).unwrap()),
                double_momentum(&p, b, sched, V::Random(0.5, 4), iters),
            ),
            (
                "fsla",
                Box::new(Fsla::new(fsla_p).unwrap()),
                fsla(&p, fsla_p, iters),
            ),
            (
                "vrbo",
                Box::new(Vrbo::new(vrbo_p).unwrap()),
                vrbo(&p, vrbo_p, iters),
            ),
        ];
        for (name, mut s, (x, y)) in cases {
            let r = run(&p, &mut *s, iters);
            let (ex, ey) = (rel(&x, &r.iterate.x), rel(&y, &r.iterate.y));
            let moved = norm(&sub(&x, &p.x0())).min(norm(&sub(&y, &p.y0())));
            eprintln!("{name} {}: x {ex:.1e}, y {ey:.1e}", b.is_some());
            assert!(ex < 1e-11 && ey < 1e-11, "{name}: x {ex:e}, y {ey:e}");
            assert!(moved > 1e-3, "{name}: the path moves");
        }
    }
}

/// With exact oracles the recursive estimate starts exact and each correction is exactly
/// zero, so a momentum weight below 1 (corrections taken) gives the bits of weight 1 (the plain
/// estimate, no correction). A correction against the wrong point would be nonzero and change
/// the bits. (VRBO has no such twin: its `x` step takes the estimate at the point of the last
/// correction, before the last `y` step, where a restart takes it at the current point, so its
/// period changes even the exact path; the test above checks that path against Algorithm 2.)
#[test]
fn with_exact_oracles_the_recursion_is_the_plain_estimate_bit_for_bit() {
    let p = dhc();
    let pair = |a: Box<dyn Solver>, b: Box<dyn Solver>| (a, b);
    let cases = vec![
        pair(
            Box::new(
                Mrbo::new(MrboParams {
                    rho: 0.3,
                    batch: None,
                    ..MrboParams::default()
                })
                .unwrap(),
            ),
            Box::new(
                Mrbo::new(MrboParams {
                    rho: 1.0,
                    rho_decay: 0.0,
                    batch: None,
                    ..MrboParams::default()
                })
                .unwrap(),
            ),
        ),
        pair(
            Box::new(
                Sustain::new(SustainParams {
                    rho: 0.3,
                    batch: None,
                    ..SustainParams::default()
                })
                .unwrap(),
            ),
            Box::new(
                Sustain::new(SustainParams {
                    rho: 1.0,
                    rho_decay: 0.0,
                    batch: None,
                    ..SustainParams::default()
                })
                .unwrap(),
            ),
        ),
        pair(
            Box::new(
                Fsla::new(FslaParams {
                    rho: 0.3,
                    decay: 0.0,
                    batch: None,
                    ..FslaParams::default()
                })
                .unwrap(),
            ),
            Box::new(
                Fsla::new(FslaParams {
                    rho: 1.0,
                    decay: 0.0,
                    batch: None,
                    ..FslaParams::default()
                })
                .unwrap(),
            ),
        ),
    ];
    for (mut a, mut b) in cases {
        let (ra, rb) = (run(&p, &mut *a, 15), run(&p, &mut *b, 15));
        assert_eq!(bits(&ra.iterate.x), bits(&rb.iterate.x), "{}", a.name());
        assert_eq!(bits(&ra.iterate.y), bits(&rb.iterate.y), "{}", a.name());
    }
}

fn one(seed: u64) -> Option<Minibatch> {
    Some(Minibatch {
        batch_f: 1,
        batch_g: 1,
        seed,
    })
}

type Make = Box<dyn Fn(Option<Minibatch>) -> Box<dyn Solver>>;

/// The four with short series and few inner steps, as functions of the minibatch.
fn makers() -> Vec<(&'static str, Make)> {
    vec![
        (
            "fsla",
            Box::new(|batch| {
                Box::new(
                    Fsla::new(FslaParams {
                        rho: 0.5,
                        batch,
                        ..FslaParams::default()
                    })
                    .unwrap(),
                )
            }),
        ),
        (
            "mrbo",
            Box::new(|batch| {
                Box::new(
                    Mrbo::new(MrboParams {
                        neumann_steps: 3,
                        batch,
                        ..MrboParams::default()
                    })
                    .unwrap(),
                )
            }),
        ),
        (
            "vrbo",
            Box::new(|batch| {
                Box::new(
                    Vrbo::new(VrboParams {
                        neumann_steps: 3,
                        inner_steps: 2,
                        period: 7,
                        batch,
                        ..VrboParams::default()
                    })
                    .unwrap(),
                )
            }),
        ),
        (
            "sustain",
            Box::new(|batch| {
                Box::new(
                    Sustain::new(SustainParams {
                        neumann_terms: 4,
                        batch,
                        ..SustainParams::default()
                    })
                    .unwrap(),
                )
            }),
        ),
    ]
}

/// On the quadratic problem every estimate is affine in the iterates (and in the previous
/// estimates) with coefficients that depend on the current draws only: the gradients and
/// series at the current and the previous point share their draws, but those draws are
/// independent of everything before. So the mean path over seeds is the path of the mean
/// maps, the path with exact oracles: the mean over seeds must approach it within its standard
/// error. (The recursions' corrections have mean zero only if they difference the same
/// estimate at two points: a correction with a wrong sign or scale would bias the mean.)
#[test]
fn the_mean_over_seeds_approaches_the_exact_hypergradient_path() {
    let p = QuadraticKappa::new(10.0, 4);
    let (iters, seeds) = (30, 1000u64);
    for (name, make) in makers() {
        let exact = run(&p, &mut *make(None), iters).iterate;
        let runs: Vec<Iterate> = (0..seeds)
            .map(|seed| run(&p, &mut *make(one(seed)), iters).iterate)
            .collect();
        for (block, pick) in [("x", 0), ("y", 1)] {
            let start = if pick == 0 { p.x0() } else { p.y0() };
            for i in 0..4 {
                let get = |it: &Iterate| {
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
                let moved = (e - start[(i, 0)]).abs();
                eprintln!(
                    "{name} {block}[{i}]: exact {e:.5}, mean {mean:.5} ± {se:.1e} (moved {moved:.3})"
                );
                assert!(var > 0.0, "{name}: the draws differ");
                assert!(
                    (mean - e).abs() <= 4.0 * se,
                    "{name} {block}[{i}]: mean {mean} vs exact {e} (standard error {se})"
                );
                assert!(
                    moved > 10.0 * se,
                    "{name} {block}[{i}]: moved {moved}, se {se}"
                );
            }
        }
    }
}

/// The diagonal `z` of the quadratic's `Z = ∇²ᵧᵧg`, as `Z·1`.
fn diag(p: &QuadraticKappa) -> Vec<f64> {
    let ones = Mat::from_fn(p.dim_y(), 1, |_, _| 1.0);
    let h = Oracle::new(p).hvp_g(&p.x0(), &p.y0(), &ones).yy;
    h.col_as_slice(0).to_vec()
}

/// `‖∇Φ‖` where an estimate built on the `Q`-term series `η Σ_{q<Q}(I − ηZ)^q ∇ᵧf` vanishes:
/// the series' tail `0.1 L (1 − ηz)^Q/z`, coordinate-wise (as in `tests/implicit.rs`). On the
/// quadratic that estimate does not depend on `y`, so `x` converges to this point whatever the
/// single-loop `y` does.
fn truncation_floor(p: &QuadraticKappa, eta: f64, terms: i32) -> f64 {
    let l = p.l();
    diag(p)
        .iter()
        .map(|z| (0.1 * l * (1.0 - eta * z).powi(terms) / z).powi(2))
        .sum::<f64>()
        .sqrt()
}

fn grad_phi(r: &RunResult) -> f64 {
    r.last_metrics().unwrap().grad_phi_norm.unwrap()
}

/// With exact oracles (and constant steps) MRBO and VRBO stop where StocBiO does, at the tail
/// of the `Q + 1`-term series, SUSTAIN where BSA does, at the tail of the `Q`-term series; FSLA's
/// `v` converges to the linear system's solution, so it has no floor.
#[test]
fn exact_oracles_stop_at_the_truncation_floor_and_fsla_has_none() {
    let p = QuadraticKappa::new(10.0, 2); // z = (1, 0.1), L = 1: x contracts by 0.9 per step
    let eta = 0.5;
    for q in [5usize, 50] {
        let cases: Vec<(Box<dyn Solver>, i32, u64)> = vec![
            (
                Box::new(
                    Mrbo::new(MrboParams {
                        alpha: 0.5,
                        alpha_decay: 0.0,
                        beta: 1.0,
                        beta_decay: 0.0,
                        eta,
                        neumann_steps: q,
                        batch: None,
                        ..MrboParams::default()
                    })
                    .unwrap(),
                ),
                q as i32 + 1,
                400,
            ),
            (
                Box::new(
                    Vrbo::new(VrboParams {
                        alpha: 0.5,
                        beta: 1.0,
                        eta,
                        neumann_steps: q,
                        inner_steps: 1,
                        batch: None,
                        ..VrboParams::default()
                    })
                    .unwrap(),
                ),
                q as i32 + 1,
                400,
            ),
            (
                Box::new(
                    Sustain::new(SustainParams {
                        alpha: 0.5,
                        alpha_decay: 0.0,
                        beta: 1.0,
                        beta_decay: 0.0,
                        eta,
                        neumann_terms: q,
                        batch: None,
                        ..SustainParams::default()
                    })
                    .unwrap(),
                ),
                q as i32,
                400,
            ),
        ];
        for (mut s, terms, iters) in cases {
            let (got, want) = (
                grad_phi(&run(&p, &mut *s, iters)),
                truncation_floor(&p, eta, terms),
            );
            eprintln!("{} Q = {q}: ‖∇Φ‖ {got:.6e}, floor {want:.6e}", s.name());
            assert!(
                (got - want).abs() <= 1e-9 * want,
                "{} Q = {q}: {got} vs {want}",
                s.name()
            );
        }
    }
    // Q and Q + 1 terms are told apart: their floors differ by far more than the tolerance.
    assert!(truncation_floor(&p, eta, 50) > 1.01 * truncation_floor(&p, eta, 51));
    let mut s = Fsla::new(FslaParams {
        alpha: 0.5,
        eta: 1.0 / p.l(),
        beta: 1.0,
        rho: 0.5,
        decay: 0.0,
        batch: None,
    })
    .unwrap();
    let got = grad_phi(&run(&p, &mut s, 600));
    eprintln!("fsla: ‖∇Φ‖ {got:.3e}");
    assert!(got < 1e-10, "fsla: ‖∇Φ‖ = {got:e}");
}

fn invalid(e: Error, key: &str) {
    assert!(
        matches!(&e, Error::InvalidParameter { name, .. } if *name == key),
        "{key}: {e}"
    );
}

#[test]
fn bad_parameters_are_typed_errors_and_counts_are_as_documented() {
    invalid(
        Mrbo::new(MrboParams {
            rho: 1.5,
            ..MrboParams::default()
        })
        .unwrap_err(),
        "rho",
    );
    invalid(
        Mrbo::new(MrboParams {
            rho_decay: 2.0,
            ..MrboParams::default()
        })
        .unwrap_err(),
        "rho_decay",
    );
    invalid(
        Sustain::new(SustainParams {
            neumann_terms: 0,
            ..SustainParams::default()
        })
        .unwrap_err(),
        "neumann_terms",
    );
    invalid(
        Sustain::new(SustainParams {
            rho: 0.0,
            ..SustainParams::default()
        })
        .unwrap_err(),
        "rho",
    );
    invalid(
        Fsla::new(FslaParams {
            decay: -0.5,
            ..FslaParams::default()
        })
        .unwrap_err(),
        "decay",
    );
    invalid(
        Fsla::new(FslaParams {
            eta: f64::NAN,
            ..FslaParams::default()
        })
        .unwrap_err(),
        "eta",
    );
    invalid(
        Vrbo::new(VrboParams {
            period: 0,
            ..VrboParams::default()
        })
        .unwrap_err(),
        "period",
    );
    invalid(
        Vrbo::new(VrboParams {
            inner_steps: 0,
            ..VrboParams::default()
        })
        .unwrap_err(),
        "inner_steps",
    );
    // The default minibatch needs a data sum.
    let p = ScSinCos::default();
    let defaults: Vec<Box<dyn Solver>> = vec![
        Box::new(Fsla::new(FslaParams::default()).unwrap()),
        Box::new(Mrbo::new(MrboParams::default()).unwrap()),
        Box::new(Vrbo::new(VrboParams::default()).unwrap()),
        Box::new(Sustain::new(SustainParams::default()).unwrap()),
    ];
    for mut s in defaults {
        let e = Runner::new(RunConfig::iters(5))
            .unwrap()
            .run(&p, &mut *s)
            .unwrap_err();
        assert!(e.to_string().contains("data sums"), "{}: {e}", s.name());
        invalid(e, "batch");
    }
    // Counts over 5 iterations with exact oracles, the first without corrections: FSLA 3 Gc
    // and 2 MV, then 4 and 3; MRBO 2 and Q + 1 = 11, then 4 and 22; SUSTAIN the same with the
    // series' mean (Q − 1 = 9 products) for its truncation, 2 and 10, then 4 and 20; VRBO with
    // a restart at k = 0 only (2 Gc, Q + 1 = 11 MV) and per iteration m = 10 corrections of
    // 4 Gc and 22 MV each.
    let h = 0.005;
    let cases: Vec<(Box<dyn Solver>, (u64, u64))> = vec![
        (
            Box::new(
                Fsla::new(FslaParams {
                    alpha: h,
                    eta: h,
                    beta: h,
                    batch: None,
                    ..FslaParams::default()
                })
                .unwrap(),
            ),
            (3 + 4 * 4, 2 + 4 * 3),
        ),
        (
            Box::new(
                Mrbo::new(MrboParams {
                    alpha: h,
                    eta: h,
                    beta: h,
                    batch: None,
                    ..MrboParams::default()
                })
                .unwrap(),
            ),
            (2 + 4 * 4, 11 + 4 * 22),
        ),
        (
            Box::new(
                Sustain::new(SustainParams {
                    alpha: h,
                    eta: h,
                    beta: h,
                    batch: None,
                    ..SustainParams::default()
                })
                .unwrap(),
            ),
            (2 + 4 * 4, 10 + 4 * 20),
        ),
        (
            Box::new(
                Vrbo::new(VrboParams {
                    alpha: h,
                    eta: h,
                    beta: h,
                    batch: None,
                    ..VrboParams::default()
                })
                .unwrap(),
            ),
            (2 + 5 * 10 * 4, 11 + 5 * 10 * 22),
        ),
    ];
    for (mut s, counts) in cases {
        let r = run(&p, &mut *s, 5);
        assert_eq!((r.counts.gc, r.counts.mv), counts, "{}", s.name());
    }
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

#[test]
fn the_four_resume_bit_identically() {
    // The stream, the previous point and the recursive estimates are the state, so a resumed
    // run continues exactly (VRBO's restart period straddles the cut).
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

fn val_loss(p: &Dhc, y: &Mat<f64>) -> f64 {
    p.value_f(&mut Evaluator::new(), p.x0().as_ref(), y.as_ref())
}

/// On minibatches of a hyper-cleaning task (where `∇ᵧf` depends on `y`, unlike the
/// quadratic's), the four methods' steps on the sample weights lower the validation loss well
/// below what the lower level reaches with the weights it starts from (the same method with a
/// vanishing outer step), as `tests/sampling.rs` asks of StocBiO, AmIGO, BSA and TTSA. The
/// single-loop three take 3000 iterations (one `y` step each, the steps decaying), VRBO 300
/// (ten `y` steps each). Measured: FSLA 0.56 → 0.37, MRBO 0.53 → 0.29, VRBO 0.53 → 0.27,
/// SUSTAIN 0.52 → 0.30.
#[test]
fn the_recursive_methods_clean_labels_on_dhc() {
    let p = dhc_task(6, 150, 60, 1e-3);
    let batch = Some(Minibatch {
        batch_f: 16,
        batch_g: 16,
        seed: 1,
    });
    let make = |beta: f64| -> Vec<Box<dyn Solver>> {
        vec![
            Box::new(
                Fsla::new(FslaParams {
                    beta,
                    batch,
                    ..FslaParams::default()
                })
                .unwrap(),
            ),
            Box::new(
                Mrbo::new(MrboParams {
                    beta,
                    batch,
                    ..MrboParams::default()
                })
                .unwrap(),
            ),
            Box::new(
                Vrbo::new(VrboParams {
                    beta,
                    batch,
                    ..VrboParams::default()
                })
                .unwrap(),
            ),
            Box::new(
                Sustain::new(SustainParams {
                    beta,
                    batch,
                    ..SustainParams::default()
                })
                .unwrap(),
            ),
        ]
    };
    for (mut bilevel, mut alone) in make(10.0).into_iter().zip(make(1e-12)) {
        let loss = |s: &mut dyn Solver| {
            let iters = if s.name() == "vrbo" { 300 } else { 3000 };
            let r = Runner::new(RunConfig::iters(iters))
                .unwrap()
                .run(&p, s)
                .unwrap();
            assert_eq!(r.status, Status::MaxIter, "{}", s.name());
            val_loss(&p, &r.iterate.y)
        };
        let (lb, la) = (loss(&mut *bilevel), loss(&mut *alone));
        eprintln!(
            "{}: validation loss {la:.4} (lower level alone) → {lb:.4}",
            bilevel.name()
        );
        assert!(lb < 0.9 * la, "{}: {lb} vs {la}", bilevel.name());
    }
}

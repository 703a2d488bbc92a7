//! BGS (Arbel and Mairal, "Non-Convex Bilevel Games with Critical Point Selection Maps"):
//! its first iterations written out by hand, the exact hypergradient at its fixed point (no
//! floor from the truncated unrolling), AmIGO when nothing is unrolled, counts, typed errors
//! and resumes.

use bilevel_linalg::Mat;
use bilevel_solvers::algorithms::{Amigo, AmigoParams, Bgs, BgsParams};
use bilevel_solvers::problems::{NcCos, QuadraticKappa, ScSinCos};
use bilevel_solvers::sampling::Minibatch;
use bilevel_solvers::{Checkpoint, Error, Oracle, Problem, RunConfig, Runner};

use bilevel_solvers::testing::run_iters as run;

fn axpy(y: &mut Mat<f64>, a: f64, x: &Mat<f64>) {
    for i in 0..y.nrows() {
        y[(i, 0)] += a * x[(i, 0)];
    }
}

fn dist(a: &Mat<f64>, b: &Mat<f64>) -> f64 {
    (0..a.nrows())
        .map(|i| (a[(i, 0)] - b[(i, 0)]).powi(2))
        .sum::<f64>()
        .sqrt()
}

fn bits(m: &Mat<f64>) -> Vec<u64> {
    m.col_as_slice(0).iter().map(|v| v.to_bits()).collect()
}

/// The authors' iteration with exact oracles, written from `core/selection.py` (the unrolled
/// steps and their backward pass) and `core/linear_solvers.py` (SGD on `½zᵀHz + aᵀz` from the
/// previous `z`), in their sign: `z`, with `Hz + a = 0`. Returns the iterates after `k` steps.
fn by_hand(p: &dyn Problem, q: BgsParams, k: usize) -> (Mat<f64>, Mat<f64>) {
    let mut o = Oracle::new(p);
    let (mut x, mut y) = (p.x0(), p.y0());
    let mut z = Mat::<f64>::zeros(p.dim_y(), 1);
    for _ in 0..k {
        for _ in 0..q.warm_start_steps {
            let g = o.grad_g(&x, &y).y;
            axpy(&mut y, -q.alpha, &g);
        }
        let mut ys = vec![y.clone()];
        for _ in 0..q.unrolled_steps {
            let g = o.grad_g(&x, &y).y;
            axpy(&mut y, -q.alpha, &g);
            ys.push(y.clone());
        }
        // Backward through y_{j+1} = y_j − α∇ᵧg(x, y_j), from ∂f/∂y at the last iterate.
        let f = o.grad_f(&x, &y);
        let mut adj = f.y;
        let mut gx = f.x;
        for yj in ys[..q.unrolled_steps].iter().rev() {
            let c = o.hvp_g(&x, yj, &adj);
            axpy(&mut gx, -q.alpha, &c.xy);
            axpy(&mut adj, -q.alpha, &c.yy);
        }
        // The correction: z ← z − η(Hz + adj) at the last iterate, then ∇²ₓᵧg·z added.
        for _ in 0..q.linear_steps {
            let hz = o.hvp_g(&x, &y, &z).yy;
            for i in 0..z.nrows() {
                z[(i, 0)] -= q.eta * (hz[(i, 0)] + adj[(i, 0)]);
            }
        }
        let c = o.hvp_g(&x, &y, &z).xy;
        axpy(&mut gx, 1.0, &c);
        axpy(&mut x, -q.beta, &gx);
    }
    (x, y)
}

/// On nc-cos (`g = cos(½‖Hy − x‖²)`, whose Hessians change with `y`, so the order of the
/// backward products and the points they are taken at matter), with warm-start steps, two unrolled steps and two linear steps, the solver's
/// iterates are the hand-written iteration's to rounding, over several outer steps (so `z`'s
/// warm start is in them). Reversing the backward pass, evaluating its products at the
/// forward step's output, dropping the correction or restarting `z` would each be far off.
#[test]
fn bgs_is_the_authors_iteration_written_out() {
    let p = NcCos::default();
    let h = 1e-4; // lower-level curvature up to about 1000
    for (t, u, n) in [(0, 1, 1), (2, 2, 2), (1, 3, 1)] {
        let q = BgsParams {
            alpha: 2.0 * h,
            beta: 3.0 * h,
            eta: 1.5 * h,
            warm_start_steps: t,
            unrolled_steps: u,
            linear_steps: n,
            batch: None,
        };
        let r = run(&p, &mut Bgs::new(q).unwrap(), 4);
        let (x, y) = by_hand(&p, q, 4);
        let (ex, ey) = (dist(&x, &r.iterate.x), dist(&y, &r.iterate.y));
        assert!(ex < 1e-13 && ey < 1e-13, "T {t} U {u} N {n}: {ex:e} {ey:e}");
        // The test has power: x moved far more than the tolerance.
        assert!(dist(&x, &p.x0()) > 1e-6, "{}", dist(&x, &p.x0()));
    }
}

/// With exact oracles BGS converges to a stationary point of Φ on quadratic-κ, to rounding:
/// the correction makes its fixed point's estimate the exact hypergradient whatever `U`.
/// Unrolling alone (the gradient through the last step, no correction) would stop where
/// `∇ₓf − α∇²ₓᵧg∇ᵧf` vanishes, with `‖∇Φ‖` of order 1 here; a correction on the right-hand side
/// `∇ᵧf` instead of the adjoint would count the unrolled step twice.
#[test]
fn exact_oracles_reach_a_stationary_point_of_phi() {
    let p = QuadraticKappa::new(10.0, 2); // z = (1, 0.1), L = 1
    for u in [1, 3] {
        let mut s = Bgs::new(BgsParams {
            alpha: 0.5,
            beta: 1.0,
            eta: 1.0 / p.l(),
            warm_start_steps: 0,
            unrolled_steps: u,
            linear_steps: 1,
            batch: None,
        })
        .unwrap();
        let r = run(&p, &mut s, 600);
        let got = r.last_metrics().unwrap().grad_phi_norm.unwrap();
        eprintln!("bgs U = {u}: ‖∇Φ‖ {got:.3e}");
        assert!(got < 1e-10, "U = {u}: ‖∇Φ‖ = {got:e}");
    }
}

/// With nothing unrolled (`U = 0`) the adjoint is `∇ᵧf` and BGS is AmIGO, bit for bit, draws
/// included; the counts per iteration are `T + U + 1` Gc and `U + N + 1` MV.
#[test]
fn without_unrolled_steps_bgs_is_amigo_and_the_counts_are_as_documented() {
    let p = QuadraticKappa::new(10.0, 6);
    let batch = Some(Minibatch {
        batch_f: 3,
        batch_g: 2,
        seed: 4,
    });
    let mut a = Bgs::new(BgsParams {
        alpha: 0.2,
        beta: 0.05,
        eta: 0.3,
        warm_start_steps: 4,
        unrolled_steps: 0,
        linear_steps: 3,
        batch,
    })
    .unwrap();
    let mut b = Amigo::new(AmigoParams {
        alpha: 0.2,
        beta: 0.05,
        eta: 0.3,
        inner_steps: 4,
        linear_steps: 3,
        batch,
    })
    .unwrap();
    let (ra, rb) = (run(&p, &mut a, 25), run(&p, &mut b, 25));
    assert_eq!(bits(&ra.iterate.x), bits(&rb.iterate.x));
    assert_eq!(bits(&ra.iterate.y), bits(&rb.iterate.y));
    assert_eq!(ra.counts, rb.counts);
    let mut c = Bgs::new(BgsParams {
        warm_start_steps: 2,
        unrolled_steps: 3,
        linear_steps: 4,
        batch,
        ..BgsParams::default()
    })
    .unwrap();
    let rc = run(&p, &mut c, 5);
    assert_eq!((rc.counts.gc, rc.counts.mv), (5 * 6, 5 * 8));
}

fn invalid(e: Error, key: &str) {
    assert!(
        matches!(&e, Error::InvalidParameter { name, .. } if *name == key),
        "{key}: {e}"
    );
}

#[test]
fn bad_parameters_are_typed_errors() {
    let e = Bgs::new(BgsParams {
        warm_start_steps: 0,
        unrolled_steps: 0,
        ..BgsParams::default()
    })
    .unwrap_err();
    assert!(e.to_string().contains("warm_start_steps"), "{e}");
    invalid(e, "unrolled_steps");
    // T alone, or U alone, is a method.
    for (t, u) in [(1, 0), (0, 1)] {
        Bgs::new(BgsParams {
            warm_start_steps: t,
            unrolled_steps: u,
            ..BgsParams::default()
        })
        .unwrap();
    }
    invalid(
        Bgs::new(BgsParams {
            linear_steps: 0,
            ..BgsParams::default()
        })
        .unwrap_err(),
        "linear_steps",
    );
    invalid(
        Bgs::new(BgsParams {
            eta: f64::NAN,
            ..BgsParams::default()
        })
        .unwrap_err(),
        "eta",
    );
    invalid(
        Bgs::new(BgsParams {
            alpha: 0.0,
            ..BgsParams::default()
        })
        .unwrap_err(),
        "alpha",
    );
    // The default minibatch needs a data sum.
    let e = Runner::new(RunConfig::iters(5))
        .unwrap()
        .run(
            &ScSinCos::default(),
            &mut Bgs::new(BgsParams::default()).unwrap(),
        )
        .unwrap_err();
    invalid(e, "batch");
}

#[test]
fn bgs_resumes_bit_identically() {
    // The stream and v are the state, so a resumed run continues exactly.
    let p = QuadraticKappa::new(10.0, 9);
    let q = BgsParams {
        warm_start_steps: 1,
        unrolled_steps: 2,
        linear_steps: 2,
        batch: Some(Minibatch {
            batch_f: 4,
            batch_g: 2,
            seed: 7,
        }),
        ..BgsParams::default()
    };
    let (mut a, mut b, mut c) = (
        Bgs::new(q).unwrap(),
        Bgs::new(q).unwrap(),
        Bgs::new(q).unwrap(),
    );
    let full = Runner::new(RunConfig::iters(30))
        .unwrap()
        .run(&p, &mut a)
        .unwrap();
    let half = Runner::new(RunConfig::iters(12))
        .unwrap()
        .run(&p, &mut b)
        .unwrap();
    let ck = Checkpoint::from_json(&half.checkpoint.unwrap().to_json().unwrap()).unwrap();
    let rest = Runner::new(RunConfig::iters(30))
        .unwrap()
        .resume(&p, &mut c, &ck)
        .unwrap();
    assert_eq!(bits(&full.iterate.x), bits(&rest.iterate.x));
    assert_eq!(bits(&full.iterate.y), bits(&rest.iterate.y));
    assert_eq!(full.counts, rest.counts);
}

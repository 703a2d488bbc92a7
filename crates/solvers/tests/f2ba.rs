//! F²BA and F²BSA (Chen, Ma and Zhang): one iteration written out on the quadratic problem, the
//! warm-`z` variant against F²SA with a fixed penalty bit for bit, the floors on the quadratic
//! (closed form with `z` restarted from `y`, none with `z` warm), counts, typed errors, the
//! registry entries and resumes.

use bilevel_linalg::Mat;
use bilevel_solvers::algorithms::{F2ba, F2baParams, F2bsaParams, F2sa, F2saParams};
use bilevel_solvers::problems::{QuadraticKappa, ScSinCos};
use bilevel_solvers::sampling::Minibatch;
use bilevel_solvers::vecops::{from_slice, lincomb, norm};
use bilevel_solvers::{
    Checkpoint, Error, Iterate, Oracle, Problem, RunConfig, RunResult, Runner, Solver, registry,
};

/// Builds a solver under test for a minibatch setting.
type MakeF2ba = fn(Option<Minibatch>) -> F2ba;

use bilevel_solvers::testing::run_iters as run;

fn bits(m: &Mat<f64>) -> Vec<u64> {
    m.col_as_slice(0).iter().map(|v| v.to_bits()).collect()
}

fn col(m: &Mat<f64>) -> Vec<f64> {
    m.col_as_slice(0).to_vec()
}

/// The diagonal `Z` of the quadratic (`∇²ᵧᵧg = Z`), as `Z·1`.
fn diag(p: &QuadraticKappa) -> Vec<f64> {
    let ones = Mat::from_fn(p.dim_y(), 1, |_, _| 1.0);
    let h = Oracle::new(p).hvp_g(&p.x0(), &p.y0(), &ones).yy;
    col(&h)
}

/// One F²BA iteration on the quadratic, coordinate by coordinate from its closed-form
/// gradients (`∇ᵧf = 0.1`, `∇ₓf = zx`, `∇ᵧg = zy − Lx + 1`, `∇ₓg = −Ly`): `z` from `y` (or
/// kept), `K` steps on both, then the `x` step. Returns `(x, y, z)`.
fn by_hand(
    p: &QuadraticKappa,
    prm: &F2baParams,
    x: &[f64],
    y: &[f64],
    z: &[f64],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (l, d) = (p.l(), diag(p));
    let (mut x, mut y) = (x.to_vec(), y.to_vec());
    let mut z = if prm.z_from_y { y.clone() } else { z.to_vec() };
    for i in 0..d.len() {
        for _ in 0..prm.inner_steps {
            z[i] -= prm.eta_z * (d[i] * z[i] - l * x[i] + 1.0);
            y[i] -= prm.eta_y * (0.1 + prm.lambda * (d[i] * y[i] - l * x[i] + 1.0));
        }
        let gx = d[i] * x[i] + prm.lambda * (-l * y[i] + l * z[i]);
        x[i] -= prm.eta_x * gx;
    }
    (x, y, z)
}

fn close(a: &[f64], b: &[f64], what: &str) {
    for (u, v) in a.iter().zip(b) {
        assert!(
            (u - v).abs() <= 1e-13 * (1.0 + v.abs()),
            "{what}: {a:?} vs {b:?}"
        );
    }
}

#[test]
fn three_iterations_are_the_updates_written_out() {
    let p = QuadraticKappa::new(10.0, 3);
    for z_from_y in [true, false] {
        let prm = F2baParams {
            lambda: 7.0,
            eta_y: 0.03,
            eta_z: 0.6,
            eta_x: 0.2,
            inner_steps: 3,
            z_from_y,
            batch: None,
        };
        let mut s = F2ba::new(prm).unwrap();
        let mut o = Oracle::new(&p);
        // A start with y ≠ z after the first iteration's restart matters.
        let mut it = Iterate {
            x: p.x0(),
            y: from_slice(&[0.3, -0.2, 0.5]),
        };
        s.init(&mut o, &mut it).unwrap();
        let (mut x, mut y, mut z) = (col(&it.x), col(&it.y), col(&it.y));
        for k in 0..3 {
            s.step(&mut o, &mut it, k);
            (x, y, z) = by_hand(&p, &prm, &x, &y, &z);
            let got_z = col(s.aux()[0].1);
            close(&col(&it.x), &x, "x");
            close(&col(&it.y), &y, "y");
            close(&got_z, &z, "z");
        }
    }
}

#[test]
fn with_z_warm_it_is_f2sa_with_a_fixed_penalty_bit_for_bit() {
    // Powers of two, so that F²SA's ξα = (η_x/α)α is η_x exactly.
    let (lambda, alpha, gamma, x_step, k) = (8.0, 2f64.powi(-12), 2f64.powi(-7), 2f64.powi(-10), 4);
    let sincos = ScSinCos::default();
    let quad = QuadraticKappa::new(10.0, 8);
    let batch = Some(Minibatch {
        batch_f: 2,
        batch_g: 3,
        seed: 5,
    });
    let cases: [(&dyn Problem, Option<Minibatch>); 3] =
        [(&sincos, None), (&quad, None), (&quad, batch)];
    for (p, batch) in cases {
        let mut a = F2ba::new(F2baParams {
            lambda,
            eta_y: alpha,
            eta_z: gamma,
            eta_x: x_step,
            inner_steps: k,
            z_from_y: false,
            batch,
        })
        .unwrap();
        let mut b = F2sa::new(F2saParams {
            batch,
            ..F2saParams::fixed_lambda(lambda, alpha, gamma, x_step, k)
        })
        .unwrap();
        let (ra, rb) = (run(p, &mut a, 25), run(p, &mut b, 25));
        assert_eq!(bits(&ra.iterate.x), bits(&rb.iterate.x));
        assert_eq!(bits(&ra.iterate.y), bits(&rb.iterate.y));
        assert_eq!(bits(a.aux()[0].1), bits(b.aux()[0].1));
        assert_eq!(ra.counts, rb.counts);
        // With z restarted, the iterates differ.
        let mut c = F2ba::new(F2baParams {
            z_from_y: true,
            ..F2baParams {
                lambda,
                eta_y: alpha,
                eta_z: gamma,
                eta_x: x_step,
                inner_steps: k,
                z_from_y: false,
                batch,
            }
        })
        .unwrap();
        let rc = run(p, &mut c, 25);
        assert_ne!(bits(&rc.iterate.x), bits(&ra.iterate.x));
    }
}

/// On the quadratic, `∇L*_λ` is `∇Φ` exactly (`f` is linear in `y`, `g` quadratic), so what is
/// left is the inner loops' error. At a fixed point `y = y*_λ(x)` (its own map's fixed point);
/// `z` restarted from `y` ends at `y* + q^K(y*_λ − y*)`, `q = 1 − η_z z`, so `x` stops where
/// `‖∇Φ‖ = ‖0.1 L q^K / z‖` (the `K`-term Neumann tail); a warm `z` converges to `y*`, and `x` to
/// `x*`.
#[test]
fn on_the_quadratic_a_restarted_z_leaves_the_k_step_floor_and_a_warm_z_none() {
    let p = QuadraticKappa::new(10.0, 2); // Z = diag(1, 0.1), L = 1
    let (l, d) = (p.l(), diag(&p));
    let floor = |eta_z: f64, k: i32| {
        d.iter()
            .map(|z| (0.1 * l * (1.0 - eta_z * z).powi(k) / z).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    let grad_phi = |r: &RunResult| r.last_metrics().unwrap().grad_phi_norm.unwrap();
    for (k, eta_z) in [(10usize, 1.0), (25, 0.5)] {
        let prm = F2baParams {
            eta_z,
            eta_y: eta_z / 10.0,
            eta_x: 0.5,
            inner_steps: k,
            ..F2baParams::default()
        };
        let mut s = F2ba::new(prm).unwrap();
        let (got, want) = (grad_phi(&run(&p, &mut s, 600)), floor(eta_z, k as i32));
        eprintln!("K = {k}, η_z = {eta_z}: ‖∇Φ‖ {got:.6e}, floor {want:.6e}");
        assert!((got - want).abs() <= 1e-9 * want, "{got} vs {want}");
        // K and K + 1 steps are told apart.
        assert!(floor(eta_z, k as i32) > 1.01 * floor(eta_z, k as i32 + 1));
        let mut warm = F2ba::new(F2baParams {
            z_from_y: false,
            ..prm
        })
        .unwrap();
        let r = run(&p, &mut warm, 600);
        eprintln!("K = {k}, warm z: ‖∇Φ‖ {:.3e}", grad_phi(&r));
        assert!(grad_phi(&r) < 1e-10, "{}", grad_phi(&r));
        let dx = norm(&lincomb(1.0, &r.iterate.x, -1.0, &p.x_star()));
        assert!(dx < 1e-9, "‖x − x*‖ = {dx:e}");
    }
}

#[test]
fn an_iteration_costs_3k_plus_3_gradients() {
    let p = QuadraticKappa::new(10.0, 4);
    for k in [1usize, 4] {
        let mk = || {
            F2ba::new(F2baParams {
                inner_steps: k,
                ..F2baParams::default()
            })
            .unwrap()
        };
        let (r3, r5) = (run(&p, &mut mk(), 3), run(&p, &mut mk(), 5));
        assert_eq!(r5.counts.gc - r3.counts.gc, 2 * (3 * k as u64 + 3));
        assert_eq!(r5.counts.mv, r3.counts.mv);
    }
}

fn invalid(e: Error, solver: &str, key: &str) {
    assert!(
        matches!(&e, Error::InvalidParameter { solver: s, name, .. } if *name == key && *s == solver),
        "{key}: {e}"
    );
}

#[test]
fn bad_parameters_are_typed_errors_naming_the_solver() {
    let d = F2baParams::default();
    let bad: [(F2baParams, &str); 6] = [
        (F2baParams { lambda: 0.0, ..d }, "lambda"),
        (F2baParams { eta_y: -1.0, ..d }, "eta_y"),
        (
            F2baParams {
                eta_z: f64::NAN,
                ..d
            },
            "eta_z",
        ),
        (
            F2baParams {
                eta_x: f64::INFINITY,
                ..d
            },
            "eta_x",
        ),
        (
            F2baParams {
                inner_steps: 0,
                ..d
            },
            "inner_steps",
        ),
        (
            F2baParams {
                batch: Some(Minibatch {
                    batch_f: 0,
                    batch_g: 1,
                    seed: 0,
                }),
                ..d
            },
            "batch.batch_f",
        ),
    ];
    for (prm, key) in bad {
        invalid(F2ba::new(prm).unwrap_err(), "f2ba", key);
        invalid(
            F2ba::stochastic(F2bsaParams { f2ba: prm }).unwrap_err(),
            "f2bsa",
            key,
        );
    }
    // Minibatches need a data-sum problem.
    let mut s = F2ba::stochastic(F2bsaParams::default()).unwrap();
    let e = Runner::new(RunConfig::iters(2))
        .unwrap()
        .run(&ScSinCos::default(), &mut s)
        .unwrap_err();
    invalid(e, "f2bsa", "batch");
}

#[test]
fn the_registry_knows_both_with_their_defaults_and_rules() {
    let p = QuadraticKappa::new(10.0, 8);
    for (name, batch) in [("f2ba", false), ("f2bsa", true)] {
        let e = registry::solver(name).unwrap();
        let mut prm = e.defaults();
        assert_eq!(prm.solver(), name);
        assert_eq!(prm.to_json()["batch"].is_object(), batch, "{name}");
        assert_eq!(prm.to_json()["lambda"], 10.0);
        assert_eq!(prm.to_json()["inner_steps"], 10);
        assert_eq!(prm.to_json()["z_from_y"], true);
        prm.set("z_from_y", "false").unwrap();
        prm.set("lambda", "4").unwrap();
        let derived = prm.derive(&p.smoothness().unwrap(), Some(100), &[]);
        let keys: Vec<&str> = derived.iter().map(|d| d.key.as_str()).collect();
        assert_eq!(keys[..2], ["eta_z", "eta_y"], "{name}");
        assert_eq!(derived[0].value, 1.0 / p.l());
        assert_eq!(derived[1].value, 1.0 / p.l() / 4.0);
        let mut s = prm.build().unwrap();
        assert_eq!(s.name(), name);
        run(&p, &mut *s, 3);
    }
}

#[test]
fn both_resume_bit_identically() {
    // z (when warm) and the sample stream are the state.
    let p = QuadraticKappa::new(10.0, 9);
    let batch = Some(Minibatch {
        batch_f: 4,
        batch_g: 2,
        seed: 7,
    });
    let makers: [(&str, MakeF2ba); 2] = [
        ("f2ba warm z", |batch| {
            F2ba::new(F2baParams {
                z_from_y: false,
                inner_steps: 3,
                batch,
                ..F2baParams::default()
            })
            .unwrap()
        }),
        ("f2bsa", |batch| {
            F2ba::stochastic(F2bsaParams {
                f2ba: F2baParams {
                    inner_steps: 3,
                    batch,
                    ..F2baParams::default()
                },
            })
            .unwrap()
        }),
    ];
    for (name, make) in makers {
        for batch in [None, batch] {
            let (mut a, mut b, mut c) = (make(batch), make(batch), make(batch));
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
            assert_eq!(bits(&full.iterate.x), bits(&rest.iterate.x), "{name}");
            assert_eq!(bits(&full.iterate.y), bits(&rest.iterate.y), "{name}");
            assert_eq!(bits(a.aux()[0].1), bits(c.aux()[0].1), "{name}");
            assert_eq!(full.counts, rest.counts, "{name}");
        }
    }
}

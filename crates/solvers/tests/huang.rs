//! MGBiO and HJFBiO (Huang): iterations written out on the quadratic problem, their accuracy
//! and floors on quadratic-kappa, the PL example with a singular lower-level Hessian, HJFBiO's
//! finite differences against the exact products as `δ → 0`, counts, typed errors and the
//! registry entries.

use bilevel_linalg::Mat;
use bilevel_solvers::algorithms::{Hjfbio, HjfbioParams, Mgbio, MgbioParams};
use bilevel_solvers::problems::{GaletExample1, QuadraticKappa};
use bilevel_solvers::testing::run_iters as run;
use bilevel_solvers::vecops::{axpy, from_slice, lincomb, norm, project_ball};
use bilevel_solvers::{Error, Iterate, Oracle, Problem, Solver, registry};

fn col(m: &Mat<f64>) -> Vec<f64> {
    m.col_as_slice(0).to_vec()
}

/// The diagonal `Z` of the quadratic (`∇²ᵧᵧg = Z`), as `Z·1`.
fn diag(p: &QuadraticKappa) -> Vec<f64> {
    let ones = Mat::from_fn(p.dim_y(), 1, |_, _| 1.0);
    col(&Oracle::new(p).hvp_g(&p.x0(), &p.y0(), &ones).yy)
}

#[track_caller]
fn close(a: &[f64], b: &[f64], tol: f64, what: &str) {
    for (u, v) in a.iter().zip(b) {
        assert!(
            (u - v).abs() <= tol * (1.0 + v.abs()),
            "{what}: {a:?} vs {b:?}"
        );
    }
}

fn grad_phi(p: &dyn Problem, s: &mut dyn Solver, iters: u64) -> f64 {
    run(p, s, iters)
        .last_metrics()
        .unwrap()
        .grad_phi_norm
        .unwrap()
}

#[test]
fn mgbio_iterations_are_the_updates_written_out() {
    // On the quadratic (∇ₓf = Zx, ∇ᵧf = 0.1, ∇ᵧg = Zy − Lx + 1, ∇²ᵧᵧg = Z, ∇²ₓᵧg = −L I) the
    // estimate is Zx + L·0.1/max(zᵢ, μ) coordinate by coordinate, whatever y. μ = 0.5 lies
    // inside the spectrum (0.1 … 1 for κ = 10), so the projection raises some eigenvalues.
    let p = QuadraticKappa::new(10.0, 3);
    let (l, z) = (p.l(), diag(&p));
    for mu in [0.05, 0.5] {
        let prm = MgbioParams {
            lambda: 0.7,
            gamma: 0.3,
            eta: 0.25,
            mu,
            ..MgbioParams::default()
        };
        let est = |x: &[f64]| -> Vec<f64> {
            (0..3)
                .map(|i| z[i] * x[i] + l * 0.1 / z[i].max(mu))
                .collect()
        };
        let mut s = Mgbio::new(prm).unwrap();
        let mut o = Oracle::new(&p);
        let mut it = Iterate {
            x: p.x0(),
            y: from_slice(&[0.3, -0.2, 0.5]),
        };
        s.init(&mut o, &mut it).unwrap();
        let (mut x, mut y) = (col(&it.x), col(&it.y));
        let mut w = est(&x);
        for k in 0..3 {
            s.step(&mut o, &mut it, k);
            for i in 0..3 {
                let gy = z[i] * y[i] - l * x[i] + 1.0;
                x[i] -= prm.gamma * w[i];
                y[i] -= prm.lambda * gy;
            }
            let d = est(&x);
            for i in 0..3 {
                w[i] = prm.eta * d[i] + (1.0 - prm.eta) * w[i];
            }
            close(&col(&it.x), &x, 1e-13, "x");
            close(&col(&it.y), &y, 1e-13, "y");
            close(&col(s.aux()[0].1), &w, 1e-13, "w");
        }
        // 3 Gc and 2·3 MV on the first iteration (w₀ too), 2 and 3 afterwards.
        let c = o.counts();
        assert_eq!((c.gc, c.mv), (3 + 2 * 2, 6 + 2 * 3), "{c:?}");
    }
}

#[test]
fn hjfbio_iterations_are_the_updates_written_out() {
    // On the quadratic the central differences are exact up to rounding: Ĥ = Zv, Ĵ = −Lv.
    // r = 0.5 is below ‖v‖ after a few steps (v tends to Z⁻¹·0.1 = (0.1, 0.32, 1)), so the
    // projection acts.
    let p = QuadraticKappa::new(10.0, 3);
    let (l, z) = (p.l(), diag(&p));
    let prm = HjfbioParams {
        lambda: 0.7,
        tau: 0.9,
        gamma: 0.3,
        delta: 1e-4,
        radius: 0.5,
    };
    let mut s = Hjfbio::new(prm).unwrap();
    let mut o = Oracle::new(&p);
    let mut it = Iterate {
        x: p.x0(),
        y: from_slice(&[0.3, -0.2, 0.5]),
    };
    s.init(&mut o, &mut it).unwrap();
    let (mut x, mut y, mut v) = (col(&it.x), col(&it.y), vec![0.0; 3]);
    let mut projected = false;
    for k in 0..8 {
        s.step(&mut o, &mut it, k);
        let (x0, y0, v0) = (x.clone(), y.clone(), v.clone());
        for i in 0..3 {
            y[i] = y0[i] - prm.lambda * (z[i] * y0[i] - l * x0[i] + 1.0);
            v[i] = v0[i] - prm.tau * (z[i] * v0[i] - 0.1);
            x[i] = x0[i] - prm.gamma * (z[i] * x0[i] + l * v0[i]);
        }
        let mut vm = from_slice(&v);
        projected |= norm(&vm) > prm.radius;
        project_ball(&mut vm, prm.radius);
        v = col(&vm);
        // Rounding of the differences, about ε‖∇g‖/δ ≈ 1e-12, reaches y through x.
        close(&col(&it.x), &x, 1e-9, "x");
        close(&col(&it.y), &y, 1e-9, "y");
        close(&col(s.aux()[0].1), &v, 1e-9, "v");
    }
    assert!(projected, "the radius never bound");
    // 2 Gc on the first iteration (v = 0: no differences), 4 afterwards; no MV.
    let c = o.counts();
    assert_eq!((c.gc, c.mv), (2 + 7 * 4, 0), "{c:?}");
}

#[test]
fn quadratic_kappa_both_reach_1e_6_and_mgbio_s_projection_has_its_floor() {
    for kappa in [2.0, 10.0] {
        let p = QuadraticKappa::new(kappa, 2);
        let l = p.l();
        // μ = 0.1 = μ_g: the projection leaves Z alone and the estimate is ∇Φ(x) itself.
        let mut m = Mgbio::new(MgbioParams {
            lambda: 1.0 / l,
            gamma: 0.5 / l,
            ..MgbioParams::default()
        })
        .unwrap();
        let g = grad_phi(&p, &mut m, 2000);
        eprintln!("mgbio κ = {kappa}: ‖∇Φ‖ = {g:e}");
        assert!(g < 1e-6, "mgbio κ = {kappa}: {g}");
        let mut h = Hjfbio::new(HjfbioParams {
            lambda: 1.0 / l,
            tau: 1.0 / l,
            gamma: 0.5 / l,
            ..HjfbioParams::default()
        })
        .unwrap();
        let g = grad_phi(&p, &mut h, 2000);
        eprintln!("hjfbio κ = {kappa}: ‖∇Φ‖ = {g:e}");
        assert!(g < 1e-6, "hjfbio κ = {kappa}: {g}");
    }
    // μ = 0.5 above μ_g = 0.1 (κ = 10, Z = diag(1, 0.1)): the fixed point has
    // Zx = −0.1L/max(z, μ), so ∇Φ = 0.1L(1/z − 1/max(z, μ)) = (0, 0.1·(10 − 2)) = (0, 0.8).
    let p = QuadraticKappa::new(10.0, 2);
    let mut m = Mgbio::new(MgbioParams {
        lambda: 1.0,
        gamma: 0.5,
        mu: 0.5,
        ..MgbioParams::default()
    })
    .unwrap();
    let g = grad_phi(&p, &mut m, 2000);
    eprintln!("mgbio μ = 0.5: ‖∇Φ‖ = {g:e} (floor 0.8)");
    assert!((g - 0.8).abs() < 1e-9, "{g}");
}

#[test]
fn mgbio_reaches_the_optimal_set_of_the_pl_example_with_a_singular_hessian() {
    // GALET's Example 1: at a lower-level solution ∇²ᵧᵧg = aaᵀ, a = (1, −cos y₂), is singular;
    // ∇ᵧf = a is an eigenvector of eigenvalue ‖a‖² ≥ 1 > μ, so P_μ[∇²ᵧᵧg]⁻¹∇ᵧf = a/‖a‖²,
    // ∇²ₓᵧg·v = aᵀv = 1 and the estimate is 2x − 1: x → 0.5, the optimal set.
    for (x0, y0) in [(2.0, [2.0, 2.0]), (-1.0, [-2.0, 0.5])] {
        let p = GaletExample1::with_start(x0, y0);
        let mut s = Mgbio::new(MgbioParams {
            lambda: 0.5,
            gamma: 0.1,
            ..MgbioParams::default()
        })
        .unwrap();
        let r = run(&p, &mut s, 500);
        let m = r.last_metrics().unwrap();
        let last = &r.trace.last().unwrap().scalars;
        let lmin = last
            .iter()
            .find(|(k, _)| *k == "hessian_min_eig")
            .unwrap()
            .1;
        eprintln!("mgbio from {x0}: {m:?}, λ_min(∇²ᵧᵧg) = {lmin:e}");
        assert!(m.opt_gap.unwrap() < 1e-6, "{m:?}");
        // The projection acted: the Hessian is (numerically) singular there.
        assert!(lmin.abs() < 1e-6, "{lmin}");
    }
}

#[test]
fn hjfbio_reaches_the_optimal_set_of_the_pl_example() {
    // The same example: with v → a/‖a‖² (the minimal-norm solution of aaᵀv = a, which gradient
    // descent from 0 on the singular system reaches) the x step is again along 2x − 1.
    for (x0, y0) in [(2.0, [2.0, 2.0]), (-1.0, [-2.0, 0.5])] {
        let p = GaletExample1::with_start(x0, y0);
        let mut s = Hjfbio::new(HjfbioParams {
            lambda: 0.5,
            tau: 0.5,
            gamma: 0.1,
            radius: 10.0,
            ..HjfbioParams::default()
        })
        .unwrap();
        let r = run(&p, &mut s, 800);
        let m = r.last_metrics().unwrap();
        eprintln!("hjfbio from {x0}: {m:?}");
        assert!(m.opt_gap.unwrap() < 1e-6, "{m:?}");
    }
}

/// `iters` HJFBiO iterations on `p` with exact products `∇²ᵧᵧg·v` and `∇²ₓᵧg·v` in place of
/// the differences: the updates of [`Hjfbio`]'s documentation, written with the oracle's HVPs.
fn hjfbio_exact(p: &dyn Problem, prm: &HjfbioParams, iters: usize) -> (Mat<f64>, Mat<f64>) {
    let mut o = Oracle::new(p);
    let (mut x, mut y) = (p.x0(), p.y0());
    let mut v = Mat::zeros(p.dim_y(), 1);
    for _ in 0..iters {
        let c = o.hvp_g(&x, &y, &v);
        let gf = o.grad_f(&x, &y);
        let gy = o.grad_g(&x, &y).y;
        axpy(&mut y, -prm.lambda, &gy);
        axpy(&mut v, -prm.tau, &lincomb(1.0, &c.yy, -1.0, &gf.y));
        project_ball(&mut v, prm.radius);
        axpy(&mut x, -prm.gamma, &lincomb(1.0, &gf.x, -1.0, &c.xy));
    }
    (x, y)
}

#[test]
fn hjfbio_tends_to_the_exact_product_path_as_delta_goes_to_zero() {
    // GALET's Example 1 has a lower level that is not quadratic, so the differences carry a
    // truncation error: O(δ²) for central differences (a forward difference would give O(δ),
    // and a ratio of 0.1 per decade, not 0.01).
    let p = GaletExample1::default();
    let base = HjfbioParams {
        lambda: 0.5,
        tau: 0.5,
        gamma: 0.1,
        radius: 10.0,
        ..HjfbioParams::default()
    };
    let iters = 30;
    let (xe, ye) = hjfbio_exact(&p, &base, iters);
    let err = |delta: f64| {
        let mut s = Hjfbio::new(HjfbioParams { delta, ..base }).unwrap();
        let r = run(&p, &mut s, iters as u64);
        norm(&lincomb(1.0, &r.iterate.x, -1.0, &xe)) + norm(&lincomb(1.0, &r.iterate.y, -1.0, &ye))
    };
    let errs: Vec<f64> = [1e-1, 1e-2, 1e-3].iter().map(|&d| err(d)).collect();
    let fine = err(base.delta);
    eprintln!("hjfbio: distance to the exact path {errs:?}, at δ = 1e-5: {fine:e}");
    // About 2.4e-7, 2.4e-9, 2.4e-11: far above the rounding (below 1e-12, as at δ = 1e-5).
    assert!(
        errs[0] > 1e-8,
        "the example must exercise the truncation: {errs:?}"
    );
    for w in errs.windows(2) {
        assert!(w[1] < 0.03 * w[0], "not O(δ²): {errs:?}");
    }
    assert!(fine < 1e-8, "{fine}");
}

#[test]
fn bad_parameters_are_typed_errors_and_the_registry_builds_both() {
    let bad: [(MgbioParams, &str); 4] = [
        (
            MgbioParams {
                eta: 0.0,
                ..MgbioParams::default()
            },
            "eta",
        ),
        (
            MgbioParams {
                eta: 1.5,
                ..MgbioParams::default()
            },
            "eta",
        ),
        (
            MgbioParams {
                mu: -1.0,
                ..MgbioParams::default()
            },
            "mu",
        ),
        (
            MgbioParams {
                gamma: f64::NAN,
                ..MgbioParams::default()
            },
            "gamma",
        ),
    ];
    // A lower level above max_dim_y is refused when the run starts.
    let p = QuadraticKappa::new(10.0, 4);
    let mut s = Mgbio::new(MgbioParams {
        max_dim_y: 3,
        ..MgbioParams::default()
    })
    .unwrap();
    let e = bilevel_solvers::Runner::new(bilevel_solvers::RunConfig::iters(5))
        .unwrap()
        .run(&p, &mut s)
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidParameter {
                name: "max_dim_y",
                ..
            }
        ),
        "{e}"
    );
    for (prm, key) in bad {
        let e = Mgbio::new(prm).unwrap_err();
        assert!(
            matches!(e, Error::InvalidParameter { name, .. } if name == key),
            "{e}"
        );
    }
    for (prm, key) in [
        (
            HjfbioParams {
                delta: 0.0,
                ..HjfbioParams::default()
            },
            "delta",
        ),
        (
            HjfbioParams {
                radius: -2.0,
                ..HjfbioParams::default()
            },
            "radius",
        ),
        (
            HjfbioParams {
                tau: f64::INFINITY,
                ..HjfbioParams::default()
            },
            "tau",
        ),
    ] {
        let e = Hjfbio::new(prm).unwrap_err();
        assert!(
            matches!(e, Error::InvalidParameter { name, .. } if name == key),
            "{e}"
        );
    }
    // The rules: 1/L_g for the lower-level steps, μ_g for MGBiO's floor, 1/(2L_Φ) for x.
    let quad = QuadraticKappa::new(20.0, 2);
    let c = quad.smoothness().unwrap(); // L_g = L_Φ = 2, μ_g = 0.1
    for (name, want) in [
        (
            "mgbio",
            &[("lambda", 0.5), ("mu", 0.1), ("gamma", 0.25)][..],
        ),
        ("hjfbio", &[("lambda", 0.5), ("tau", 0.5), ("gamma", 0.25)]),
    ] {
        let mut prm = registry::solver(name).unwrap().defaults();
        let d = prm.derive(&c, Some(100), &[]);
        let got: Vec<(&str, f64)> = d.iter().map(|d| (d.key.as_str(), d.value)).collect();
        assert_eq!(got, want, "{name}");
        prm.set("gamma", "-1").unwrap();
        let e = prm.build().unwrap_err();
        assert!(
            matches!(e, Error::InvalidParameter { name: "gamma", .. }),
            "{e}"
        );
        prm.set("gamma", "0.25").unwrap();
        assert_eq!(prm.build().unwrap().name(), name);
    }
}

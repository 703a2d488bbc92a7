//! The single-loop AID/ITD paper's experiments: the κ sweep on quadratic-κ and data reweighting
//! with an MLP (Appendix D).

use super::plan::*;
use super::{ReproduceArgs, SINGLE_LOOP_PAPER};
use crate::cli::CliError;
use crate::cli::folder::Folder;
use crate::cli::folder::seeds_in;
use crate::cli::plot::{Series, draw};
use crate::cli::summary::{Stats, trace_table};
use crate::cli::text::fmt;

pub(super) fn kappa_sweep(args: &ReproduceArgs, out: &Folder) -> Result<(String, bool), CliError> {
    let (kappas, iters): (&[f64], u64) = if args.smoke {
        (&[2.0, 4.0, 8.0], 300)
    } else {
        (&[2.0, 5.0, 10.0, 20.0, 50.0, 100.0], 10_000)
    };
    let mu = 0.1;
    let mut rows = String::from(
        "| κ | L | β | AID ‖∇Φ‖² final | ITD ‖∇Φ‖² final | ITD floor (mean of last 10 %) |\n|---|---|---|---|---|---|\n",
    );
    let mut floors = Vec::new();
    let mut aid_dirs = Vec::new();
    let mut itd_dirs = Vec::new();
    for &kappa in kappas {
        let l = kappa * mu;
        let alpha = 1.0 / l;
        let beta = KAPPA_BETA_L / l;
        let mut finals = Vec::new();
        for (solver, list) in [
            ("aid-single-loop", &mut aid_dirs),
            ("itd-single-loop", &mut itd_dirs),
        ] {
            let dir = out.dir().join(format!("{solver}-k{kappa}"));
            let mut sets = vec![
                format!("kappa={kappa}"),
                format!("alpha={alpha}"),
                format!("beta={beta}"),
            ];
            if solver == "aid-single-loop" {
                sets.push(format!("eta={alpha}"));
            }
            if !one(
                args,
                "quadratic",
                solver,
                &sets,
                Plan {
                    seeds: "0",
                    iters,
                    metrics_every: Some(iters / 100),
                    time_budget: None,
                },
                &dir,
            )? {
                return Ok((String::new(), true));
            }
            let t = trace_table(&dir, 0)?;
            let g: Vec<(f64, f64)> = t
                .pairs("iter", "grad_phi_norm")
                .into_iter()
                .map(|(k, v)| (k, v * v))
                .collect();
            let floor = tail_mean(&g);
            finals.push((g.last().map_or(f64::NAN, |p| p.1), floor));
            // A per-κ squared-norm trace for the plots.
            list.push((format!("κ = {kappa}"), dir));
        }
        floors.push((kappa, finals[1].1));
        rows += &format!(
            "| {kappa} | {} | {} | {} | {} | {} |\n",
            fmt(l),
            fmt(beta),
            fmt(finals[0].0),
            fmt(finals[1].0),
            fmt(finals[1].1)
        );
    }
    let slope = loglog_slope(&floors);
    for (name, dirs) in [("aid", &aid_dirs), ("itd", &itd_dirs)] {
        let mut s = curves(dirs, "grad_phi_norm")?;
        for c in &mut s {
            for v in c.y.iter_mut().chain(&mut c.lo).chain(&mut c.hi) {
                *v *= *v;
            }
            c.lo.clear();
            c.hi.clear();
        }
        draw(
            &out.file(&format!("{name}_grad_phi_sq.svg"))?,
            &format!(
                "single-loop {}: ‖∇Φ(x_k)‖² on quadratic-κ",
                name.to_uppercase()
            ),
            "iteration",
            "‖∇Φ‖²",
            &s,
            true,
        )?;
    }
    let fl = Series {
        name: format!("ITD floor, fitted slope {slope:.2}"),
        x: floors.iter().map(|p| p.0.log10()).collect(),
        y: floors.iter().map(|p| p.1).collect(),
        ..Series::default()
    };
    draw(
        &out.file("itd_floor_vs_kappa.svg")?,
        "single-loop ITD error floor against κ",
        "log10 κ",
        "‖∇Φ‖² floor",
        &[fl],
        true,
    )?;
    let text = format!(
        "# reproduce kappa-sweep: single-loop AID and ITD on quadratic-κ\n\n\
         §5 of {SINGLE_LOOP_PAPER}: μ = {mu}, \
         L = κμ, α = η = 1/L, {iters} iterations, start x0 = 1, y0 = 0. The outer step is not given \
         numerically in the paper; we use β = {KAPPA_BETA_L}/L (∇Φ is L-Lipschitz here).\n\n{rows}\n\
         Fitted exponent of the ITD floor against κ (least squares in log–log over all κ): \
         **{slope:.2}**, against the theory's 2 (Theorems 3 and 4; the paper prints no slope \
         for this quadratic). On this problem the floor equals (L − μ)² = μ²(κ − 1)² to the \
         printed digits, whose local log–log slope 2κ/(κ − 1) tends to 2, so a fit over small κ \
         lands above 2. (The paper's measured exponent 2.26 is from another experiment, feature \
         learning on the LIBSVM `space` data in its App. D.2, of the mean of ‖∇Φ‖² over the \
         run, which is not run here.)\n\
         Published for AID: ‖∇Φ‖² keeps falling with K.\n\n\
         Plots: aid_grad_phi_sq.svg, itd_grad_phi_sq.svg, itd_floor_vs_kappa.svg in {}\n",
        out.dir().display()
    );
    Ok((text, false))
}

/// `β = KAPPA_BETA_L / L` in the κ sweep.
const KAPPA_BETA_L: f64 = 0.5;

/// `M` and `ρ` of the single-loop paper's §5 ("μ = 0.1, M = 0.1, ρ = 0.1"), the constants its
/// bounds are evaluated with (on quadratic-κ the Hessians are constant, so `ρ = 0` would do, and
/// `f` is Lipschitz only on bounded sets; the paper plugs in 0.1 for both).
const SECTION5_M_RHO: f64 = 0.1;

/// `‖∇Φ(x_k)‖²` of a run, against `k`, from its trace.
fn grad_phi_sq(dir: &std::path::Path) -> Result<Vec<(f64, f64)>, CliError> {
    Ok(trace_table(dir, 0)?
        .pairs("iter", "grad_phi_norm")
        .into_iter()
        .map(|(k, v)| (k, v * v))
        .collect())
}

/// The mean of `‖∇Φ(x_k)‖²` over the recorded `k < big_k` (evenly spaced, so the mean of the
/// samples estimates `(1/K)Σ_{k<K}`).
fn mean_before(g: &[(f64, f64)], big_k: f64) -> f64 {
    let v: Vec<f64> = g.iter().filter(|p| p.0 < big_k).map(|p| p.1).collect();
    v.iter().sum::<f64>() / v.len() as f64
}

/// The factor `c` that best fits `c·upper ≈ measured` in log–log least squares: the geometric
/// mean of the ratios.
fn fitted_factor(measured: &[f64], upper: &[f64]) -> f64 {
    let n = measured.len() as f64;
    (measured
        .iter()
        .zip(upper)
        .map(|(m, u)| (m / u).ln())
        .sum::<f64>()
        / n)
        .exp()
}

/// The single-loop paper's Figures 1 and 2: its Theorem 1 and 3 upper bounds, Ji et al.'s and
/// the Theorem 4 lower bound (formulas in [`super::bounds`]), evaluated on quadratic-κ runs at
/// the theorems' steps, against κ and (AID, κ = 2) against K.
pub(super) fn singleloop_bounds(
    args: &ReproduceArgs,
    out: &Folder,
) -> Result<(String, bool), CliError> {
    use super::bounds::{Consts, Start};
    let (kappas, iters, every): (&[f64], u64, u64) = if args.smoke {
        (&[2.0, 4.0], 300, 3)
    } else {
        (&[2.0, 5.0, 10.0, 20.0, 50.0, 100.0], 10_000, 20)
    };
    let mu = 0.1;
    let big_k = iters as f64;
    let mut aid_rows = String::from(
        "| κ | β printed | A at printed β | β run (derived) | mean ‖∇Φ‖², k < K | ‖∇Φ(x_K)‖² | Theorem 1 bound | Ji et al. bound (derived) |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    let mut itd_rows = String::from(
        "| κ | β run (Theorem 3) | mean ‖∇Φ‖², k < K | ‖∇Φ(x_K)‖² | floor, β = 0.5/L | Theorem 3 bound | its non-vanishing term | Ji et al. bound (derived) | Theorem 4 lower bound (derived) |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    // Per κ: (κ, measured mean, final, Theorem 1, Ji) for AID and (κ, mean, final, floor,
    // Theorem 3, Ji, Theorem 4) for ITD.
    let mut aid_pts: Vec<[f64; 5]> = Vec::new();
    let mut itd_pts: Vec<[f64; 7]> = Vec::new();
    // Theorem 3's non-vanishing term per κ.
    let mut itd_nv: Vec<f64> = Vec::new();
    let mut aid_vs_k = None;
    for &kappa in kappas {
        let l = kappa * mu;
        let c = Consts {
            l,
            mu,
            m: SECTION5_M_RHO,
            rho: SECTION5_M_RHO,
        };
        let start = Start::quadratic(l, mu);
        let alpha = c.alpha();
        let runs = [
            ("aid-single-loop", "aid", c.beta_thm1(), every),
            ("itd-single-loop", "itd", c.beta_thm3(), every),
            (
                "itd-single-loop",
                "itd-floor",
                KAPPA_BETA_L / l,
                iters / 100,
            ),
        ];
        let mut g = Vec::new();
        for (solver, label, beta, m_every) in runs {
            let dir = out.dir().join(format!("{label}-k{kappa}"));
            let mut sets = vec![
                format!("kappa={kappa}"),
                format!("alpha={alpha}"),
                format!("beta={beta}"),
            ];
            if solver == "aid-single-loop" {
                sets.push(format!("eta={alpha}"));
            }
            let plan = Plan {
                seeds: "0",
                iters,
                metrics_every: Some(m_every),
                time_budget: None,
            };
            if !one(args, "quadratic", solver, &sets, plan, &dir)? {
                return Ok((String::new(), true));
            }
            g.push(grad_phi_sq(&dir)?);
        }
        let last = |t: &[(f64, f64)]| t.last().map_or(f64::NAN, |p| p.1);
        // AID against Theorem 1 and Ji et al.
        let b1 = c.beta_thm1();
        let e0 = start.e0(&c);
        let (a_mean, a_fin) = (mean_before(&g[0], big_k), last(&g[0]));
        let t1 = c.thm1_upper(b1, start.phi_gap, e0, big_k);
        let j1 = c.ji_aid_upper(b1, start.phi_gap, e0, big_k);
        aid_rows += &format!(
            "| {kappa} | {} | {} | {} | {} | {} | {} | {} |\n",
            fmt(c.beta_thm1_printed()),
            fmt(c.a_thm1(c.beta_thm1_printed())),
            fmt(b1),
            fmt(a_mean),
            fmt(a_fin),
            fmt(t1),
            fmt(j1)
        );
        aid_pts.push([kappa, a_mean, a_fin, t1, j1]);
        if aid_vs_k.is_none() {
            // Figure 1 (right): the smallest κ against K.
            let ks: Vec<f64> = g[0].iter().map(|p| p.0).filter(|&k| k > 0.0).collect();
            let series = |name: &str, f: &dyn Fn(f64) -> f64| Series {
                name: name.to_string(),
                x: ks.clone(),
                y: ks.iter().map(|&k| f(k)).collect(),
                ..Series::default()
            };
            let g0 = g[0].clone();
            aid_vs_k = Some((
                kappa,
                vec![
                    series("‖∇Φ(x_K)‖²", &|k| {
                        g0.iter().find(|p| p.0 == k).map_or(f64::NAN, |p| p.1)
                    }),
                    series("mean of ‖∇Φ(x_k)‖², k < K", &|k| {
                        mean_before(&g0, k)
                    }),
                    series("Theorem 1 bound", &|k| {
                        c.thm1_upper(b1, start.phi_gap, e0, k)
                    }),
                    series("Ji et al. bound (derived)", &|k| {
                        c.ji_aid_upper(b1, start.phi_gap, e0, k)
                    }),
                ],
            ));
        }
        // ITD against Theorem 3, Ji et al. and Theorem 4.
        let b3 = c.beta_thm3();
        let (i_mean, i_fin, floor) = (mean_before(&g[1], big_k), last(&g[1]), tail_mean(&g[2]));
        let t3 = c.thm3_upper(b3, start.phi_gap, start.y_err, big_k);
        let (_, nv) = c.thm3_parts(b3, start.phi_gap, start.y_err, big_k);
        let j3 = c.ji_itd_upper(b3, start.phi_gap, start.y_err, big_k);
        let lb = c.thm4_lower();
        itd_rows += &format!(
            "| {kappa} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            fmt(b3),
            fmt(i_mean),
            fmt(i_fin),
            fmt(floor),
            fmt(t3),
            fmt(nv),
            fmt(j3),
            fmt(lb)
        );
        itd_pts.push([kappa, i_mean, i_fin, floor, t3, j3, lb]);
        itd_nv.push(nv);
    }
    // Figure 2 (right): the factors that bring Theorem 3's bound onto the floor and onto the
    // lower bound, beside the paper's ×0.32 and ×0.39.
    let col = |pts: &[[f64; 7]], i: usize| pts.iter().map(|p| p[i]).collect::<Vec<f64>>();
    let upper = col(&itd_pts, 4);
    let c_floor = fitted_factor(&col(&itd_pts, 3), &upper);
    let c_final = fitted_factor(&col(&itd_pts, 2), &upper);
    let c_lower = fitted_factor(&col(&itd_pts, 6), &upper);
    let c_nv = fitted_factor(&col(&itd_pts, 3), &itd_nv);
    let ratios: String = itd_pts
        .iter()
        .zip(&itd_nv)
        .map(|(p, nv)| {
            format!(
                "| {} | {} | {} | {} | {} |\n",
                p[0],
                fmt(p[3] / p[4]),
                fmt(p[2] / p[4]),
                fmt(p[6] / p[4]),
                fmt(p[3] / nv)
            )
        })
        .collect();
    // The plots.
    let lk = |k: f64| k.log10();
    let vs_kappa = |name: &str, pts: &[(f64, f64)]| Series {
        name: name.to_string(),
        x: pts.iter().map(|p| lk(p.0)).collect(),
        y: pts.iter().map(|p| p.1).collect(),
        ..Series::default()
    };
    let aid_col = |i: usize| aid_pts.iter().map(|p| (p[0], p[i])).collect::<Vec<_>>();
    let itd_col = |i: usize| itd_pts.iter().map(|p| (p[0], p[i])).collect::<Vec<_>>();
    let scaled = |f: f64| itd_pts.iter().map(|p| (p[0], f * p[4])).collect::<Vec<_>>();
    let mut plots = Vec::new();
    let mut plot = |file: &str, title: &str, x: &str, s: &[Series]| -> Result<(), CliError> {
        let p = out.file(file)?;
        draw(&p, title, x, "‖∇Φ‖²", s, true)?;
        plots.push(p);
        Ok(())
    };
    plot(
        "fig1_left_aid_vs_kappa.svg",
        &format!("single-loop AID at Theorem 1's β, K = {iters}"),
        "log10 κ",
        &[
            vs_kappa("mean ‖∇Φ(x_k)‖², k < K", &aid_col(1)),
            vs_kappa("‖∇Φ(x_K)‖²", &aid_col(2)),
            vs_kappa("Theorem 1 bound", &aid_col(3)),
            vs_kappa("Ji et al. bound (derived)", &aid_col(4)),
        ],
    )?;
    let (k_right, right) = aid_vs_k.unwrap_or_default();
    plot(
        "fig1_right_aid_vs_k.svg",
        &format!("single-loop AID at Theorem 1's β, κ = {k_right}"),
        "K",
        &right,
    )?;
    plot(
        "fig2_left_itd_vs_kappa.svg",
        &format!("single-loop ITD at Theorem 3's β, K = {iters}"),
        "log10 κ",
        &[
            vs_kappa("mean ‖∇Φ(x_k)‖², k < K", &itd_col(1)),
            vs_kappa("‖∇Φ(x_K)‖²", &itd_col(2)),
            vs_kappa("floor (β = 0.5/L)", &itd_col(3)),
            vs_kappa("Theorem 3 bound", &itd_col(4)),
            vs_kappa("Ji et al. bound (derived)", &itd_col(5)),
            vs_kappa("Theorem 4 lower bound (derived)", &itd_col(6)),
        ],
    )?;
    plot(
        "fig2_right_itd_scaled.svg",
        "single-loop ITD: Theorem 3's bound scaled",
        "log10 κ",
        &[
            vs_kappa("Theorem 3 bound × 0.32", &scaled(0.32)),
            vs_kappa("Theorem 3 bound × 0.39", &scaled(0.39)),
            vs_kappa(
                "Theorem 3 non-vanishing term",
                &itd_pts
                    .iter()
                    .zip(&itd_nv)
                    .map(|(p, nv)| (p[0], *nv))
                    .collect::<Vec<_>>(),
            ),
            vs_kappa("floor (β = 0.5/L)", &itd_col(3)),
            vs_kappa("Theorem 4 lower bound (derived)", &itd_col(6)),
        ],
    )?;
    let text = format!(
        "# reproduce singleloop-bounds: the single-loop paper's bounds on quadratic-κ\n\n\
         Figures 1 and 2 of {SINGLE_LOOP_PAPER}, §5: quadratic-κ (x, y ∈ R²), μ = {mu}, \
         M = ρ = {SECTION5_M_RHO} (the constants the bounds are evaluated with), L = κμ, \
         α = η = 1/L, K = {iters} iterations from x0 = 1, y0 = 0 (v0 = 0). The runs use the \
         theorems' outer steps: Theorem 3's β = μ³/(2L(2L² + ρM)) for ITD, and for AID the \
         derived β of Theorem 1 (its printed step makes the proof's A negative, column 3, so we \
         also impose β ≤ 1/(8L_Φ) and 12β²C₂²L⁴/μ² ≤ 1/8). Means of ‖∇Φ(x_k)‖² over k < K are \
         over the recorded iterates (one every {every} iterations). The ITD floor is the last tenth of a run at \
         the κ sweep's β = 0.5/L, outside Theorem 3's range, where ITD reaches the fixed point \
         its theorem-step run is still heading for.\n\n\
         Derived, not printed by the paper: L_Φ is the theorems' statement; Ji et al.'s AID bound \
         is κ × Theorem 1's (O(κ⁶/K) against O(κ⁵/K)); Ji et al.'s ITD bound is Theorem 3's with \
         its non-vanishing term over αμ (O(κ³) against O(κ²)); Theorem 4's lower bound is \
         (M(1 − αμ)L/μ)², the square of the non-vanishing part of the one-step ITD \
         hypergradient error (Lemmas 6 and 9).\n\n\
         ## AID (Figure 1)\n\n{aid_rows}\n\
         ## ITD (Figure 2, left)\n\n{itd_rows}\n\
         ## ITD, scaled bound (Figure 2, right)\n\n\
         | κ | floor / Theorem 3 | ‖∇Φ(x_K)‖² / Theorem 3 | Theorem 4 / Theorem 3 | floor / non-vanishing term |\n|---|---|---|---|---|\n{ratios}\n\
         Best single factors (log least squares): floor ≈ **{c_floor:.3}** × Theorem 3, \
         ‖∇Φ(x_K)‖² ≈ {c_final:.3} × Theorem 3, Theorem 4 ≈ **{c_lower:.3}** × Theorem 3; \
         against Theorem 3's non-vanishing term alone (its O(κ²) part, the K → ∞ limit of the \
         bound), floor ≈ **{c_nv:.3}** × that term (the floor equals the Theorem 4 bound here, \
         so the same factor holds for it). \
         Published (Figure 2, right): × 0.32 brings the bound onto the measured ‖∇Φ(x_K)‖², \
         × 0.39 onto the lower bound.\n\n\
         Plots: {}\n",
        list_paths(&plots)
    );
    Ok((text, false))
}

/// Single-loop ITD and AID on data reweighting with an MLP (Appendix D of the single-loop
/// paper): the two methods, their `--set` pairs.
const ITD_D_METHODS: [Method; 2] = [
    Method {
        label: "single-loop ITD",
        solver: "itd-single-loop",
        folder: None,
        set: &[("alpha", "0.05"), ("beta", "0.001")],
    },
    Method {
        label: "single-loop AID",
        solver: "aid-single-loop",
        folder: None,
        set: &[("alpha", "0.05"), ("eta", "0.05"), ("beta", "0.001")],
    },
];

pub(super) fn itd_appendix_d(
    args: &ReproduceArgs,
    out: &Folder,
) -> Result<(String, bool), CliError> {
    // The training split is loaded by the first run, whose error lists the folders searched
    // and how to point at full MNIST; under --redraw finished runs need no data at all.
    let reduced = args.quick || args.smoke;
    let (iters, size, label): (u64, &[&str], &str) = if reduced {
        (
            40,
            &["n=200", "val=100", "test=200", "hidden=32"],
            "reduced (--quick): 200 train / 100 validation / 200 test, hidden width 32, 40 iterations",
        )
    } else {
        (
            3000,
            &["hidden=256"],
            "2000 train / 500 validation (10,000 test), MLP 784-256-10, 3000 iterations",
        )
    };
    let mut base: Vec<String> = size.iter().map(|s| s.to_string()).collect();
    base.push("preset=single-loop-itd".into());
    let seeds = seeds_of(args, "0");
    let plan = Plan {
        seeds,
        iters,
        metrics_every: Some((iters / 100).max(1)),
        time_budget: None,
    };
    // The two methods run side by side, one thread each.
    let mut child = args.clone();
    child.common.threads = Some(1);
    let results: Vec<Result<bool, CliError>> = std::thread::scope(|s| {
        let handles: Vec<_> = ITD_D_METHODS
            .iter()
            .map(|m| {
                let solver = m.solver;
                let mut all = m.sets();
                all.extend(base.iter().cloned());
                let dir = out.dir().join(solver);
                let child = &child;
                s.spawn(move || one(child, "dhc-mlp", solver, &all, plan, &dir))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(CliError::new("a run panicked")))
            })
            .collect()
    });
    for r in results {
        if !r? {
            return Ok((String::new(), true));
        }
    }
    let mut rows = String::from(
        "| method | iters | validation loss, final | plateau (mean of last 10 %) | minimum | test accuracy % | Gc | MV | wall s |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut dirs = Vec::new();
    for Method {
        label: name,
        solver,
        ..
    } in ITD_D_METHODS
    {
        let dir = out.dir().join(solver);
        // Per seed: iterations, final, plateau and minimum validation loss, test accuracy, Gc,
        // MV, wall time.
        let mut per: [Vec<f64>; 8] = Default::default();
        for s in seeds_in(&dir)? {
            let t = trace_table(&dir, s)?;
            let tr = &t;
            let v = t.pairs("iter", "val_loss");
            let vals = [
                tr.last("iter").unwrap_or(f64::NAN),
                v.last().map_or(f64::NAN, |p| p.1),
                tail_mean(&v),
                v.iter().map(|p| p.1).fold(f64::INFINITY, f64::min),
                100.0 * t.last("test_acc").unwrap_or(f64::NAN),
                tr.last("gc").unwrap_or(f64::NAN),
                tr.last("mv").unwrap_or(f64::NAN),
                tr.last("elapsed_s").unwrap_or(f64::NAN),
            ];
            for (col, x) in per.iter_mut().zip(vals) {
                col.push(x);
            }
        }
        let st: Vec<Stats> = per
            .iter()
            .map(|v| Stats::of(v).ok_or_else(|| CliError::new("no finished seed")))
            .collect::<Result<_, _>>()?;
        // Mean ± std when there is more than one seed, the value alone otherwise.
        let pm = |s: &Stats, f: &dyn Fn(f64) -> String| {
            if s.n > 1 {
                format!("{} ± {}", f(s.mean), f(s.std))
            } else {
                f(s.mean)
            }
        };
        rows += &format!(
            "| {name} | {:.0} | {} | {} | {} | {} | {:.0} | {:.0} | {:.1} |\n",
            st[0].mean,
            pm(&st[1], &fmt),
            pm(&st[2], &fmt),
            pm(&st[3], &fmt),
            pm(&st[4], &|x| format!("{x:.2}")),
            st[5].mean,
            st[6].mean,
            st[7].mean,
        );
        dirs.push((name.to_string(), dir));
    }
    let mut plots = Vec::new();
    for (col, title) in [
        ("val_loss", "validation loss"),
        ("test_acc", "test accuracy"),
    ] {
        let s = curves(&dirs, col)?;
        let p = out.file(&format!("{col}.svg"))?;
        draw(
            &p,
            &format!("data reweighting, MLP (MNIST): {title}"),
            "iteration",
            title,
            &s,
            false,
        )?;
        plots.push(p);
    }
    let text = format!(
        "# reproduce itd-appendix-d: single-loop ITD (and AID) on data reweighting with an MLP\n\n\
         Appendix D of {SINGLE_LOOP_PAPER}: \
         MNIST training split, each training label replaced by a uniformly sampled wrong label \
         with probability 0.2, weights σ(x) on the training samples, MLP lower level, \
         outer learning rate β = 1e-3, inner learning rate α = 5e-2 (plain gradient steps; AID's \
         linear-system step η = 5e-2 is our choice), x0 = 0; seeds {seeds} (each seed draws its \
         own training and validation samples and corruption; mean ± std over seeds, curves are \
         medians; Gc, MV and wall s are means per seed); {label}.\n\n{rows}\n\
         Published (same paper, Fig. 3 right, single-loop ITD only): the validation loss falls \
         quickly, then stays near **0.65**.\n\nPlots: {}\n",
        list_paths(&plots)
    );
    Ok((text, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn means_and_factors_match_hand_values() {
        let g = [(0.0, 4.0), (10.0, 2.0), (20.0, 1.0), (30.0, 0.5)];
        // (4 + 2 + 1)/3 over k < 30; (4 + 2)/2 over k < 20.
        assert_eq!(mean_before(&g, 30.0), 7.0 / 3.0);
        assert_eq!(mean_before(&g, 20.0), 3.0);
        // The geometric mean of 1/2 and 1/8 is 1/4.
        assert!((fitted_factor(&[1.0, 1.0], &[2.0, 8.0]) - 0.25).abs() < 1e-15);
    }

    #[test]
    fn the_appendix_d_methods_build_through_the_registry() {
        ITD_D_METHODS.iter().for_each(check_method);
    }
}

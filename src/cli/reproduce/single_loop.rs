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
    fn the_appendix_d_methods_build_through_the_registry() {
        ITD_D_METHODS.iter().for_each(check_method);
    }
}

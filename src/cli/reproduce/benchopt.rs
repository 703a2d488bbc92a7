//! `benchopt-quadratic` and `benchopt-datacleaning`: the protocol of benchopt's bilevel benchmark
//! (Dagréou, Moreau, Vaiter and Ablin's `benchmark_bilevel`, run by benchopt): its simulated
//! quadratic problem and its MNIST data cleaning at corruption 0.5, 0.7 and 0.9, every
//! stochastic method of the registry with the benchmark's solver settings (its
//! `config/*_best_params.yml` where it tuned one, its defaults otherwise), minibatches of 64,
//! curves of the median and the 20–80 % band over seeds against wall time, iterations and
//! oracle calls, and the runs in benchopt's result schema (`benchopt.csv`).
//!
//! [`METHODS`] is the one table of the methods, one line each: a new method is one more row
//! (and, when the benchmark tuned it, one more line of the setting's [`Tuned`] table).

use super::ReproduceArgs;
use super::plan::*;
use crate::cli::CliError;
use crate::cli::benchopt::{self as schema, BenchoptRun, Metric, Schema};
use crate::cli::folder::{Folder, seeds_in};
use crate::cli::plot::{Series, Table, band, draw};
use crate::cli::summary::{final_stats, trace_table};
use crate::cli::text::fmt;
use std::path::{Path, PathBuf};

/// How the citation of the benchmark reads in the reports.
const BENCHMARK: &str = "benchopt's `benchmark_bilevel` (Mathieu Dagréou, Thomas Moreau, Samuel \
Vaiter and Pierre Ablin; the benchmark of \"A framework for bilevel optimization that enables \
stochastic and global variance reduction algorithms\", NeurIPS 2022)";

/// How a method takes the benchmark's `step_size` (the inner steps) and
/// `step_size / outer_ratio` (the outer step).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Steps {
    /// `rho` inner (`y` and `v`), `gamma` outer: the SOBA framework.
    RhoGamma,
    /// `alpha` (`y`) and `eta` (the linear system or series) inner, `beta` outer.
    AlphaEtaBeta,
    /// `alpha` inner, `beta` outer (AIDBiO; its Neumann step is set in its row).
    AlphaBeta,
    /// `eta_y` and `eta_z` inner, `eta_x` outer (F²BA, F²BSA).
    F2ba,
    /// `alpha0` and `gamma0` inner; `x`'s step is `ξα_k`, so `xi = 1/outer_ratio` (F²SA).
    F2sa,
    /// `beta` (`y`) and `eta` (the proximal variable `θ`) inner, `alpha` outer (MEHA).
    Meha,
    /// `lambda` (`y`) and `tau` (the linear system's `v`) inner, `gamma` outer (HJFBiO).
    LambdaTauGamma,
}

/// One method of the comparison.
#[derive(Clone, Copy, Debug)]
struct Bench {
    /// Its solver name in benchmark_bilevel (the `solver_name` of `benchopt.csv`), or ours for
    /// a method the benchmark has not.
    benchopt: &'static str,
    /// The solver's registry name.
    solver: &'static str,
    /// How it takes the steps.
    steps: Steps,
    /// The benchmark's constants beyond the steps, as `--set` pairs.
    set: &'static [(&'static str, &'static str)],
    /// It takes a minibatch (64, the benchmark's); without, it runs with exact oracles, on the
    /// first seed only (its runs do not depend on the seed).
    batch: bool,
}

/// Every method, one line each. The constants are the benchmark's solvers' (`solvers/*.py`):
/// ten inner steps and ten series terms where it takes them, SOBA's decays `1/2`, SABA's zero
/// memory.
#[rustfmt::skip]
const METHODS: &[Bench] = &[
    Bench { benchopt: "SOBA", solver: "soba", steps: Steps::RhoGamma, set: &[("rho_decay", "0.5"), ("gamma_decay", "0.5")], batch: true },
    Bench { benchopt: "SABA", solver: "saba", steps: Steps::RhoGamma, set: &[("memory_init", "Zero")], batch: true },
    Bench { benchopt: "SRBA", solver: "srba", steps: Steps::RhoGamma, set: &[], batch: true },
    Bench { benchopt: "MA-SOBA", solver: "ma-soba", steps: Steps::RhoGamma, set: &[], batch: true },
    Bench { benchopt: "SPABA", solver: "spaba", steps: Steps::RhoGamma, set: &[], batch: true },
    Bench { benchopt: "StocBiO", solver: "stocbio", steps: Steps::AlphaEtaBeta, set: &[("inner_steps", "10"), ("neumann_steps", "10")], batch: true },
    Bench { benchopt: "AmIGO", solver: "amigo", steps: Steps::AlphaEtaBeta, set: &[("inner_steps", "10"), ("linear_steps", "10")], batch: true },
    Bench { benchopt: "TTSA", solver: "ttsa", steps: Steps::AlphaEtaBeta, set: &[("neumann_terms", "10")], batch: true },
    Bench { benchopt: "BSA", solver: "bsa", steps: Steps::AlphaEtaBeta, set: &[("inner_steps", "10"), ("neumann_terms", "10")], batch: true },
    Bench { benchopt: "FSLA", solver: "fsla", steps: Steps::AlphaEtaBeta, set: &[], batch: true },
    Bench { benchopt: "MRBO", solver: "mrbo", steps: Steps::AlphaEtaBeta, set: &[("rho", "0.5"), ("neumann_steps", "10")], batch: true },
    Bench { benchopt: "VRBO", solver: "vrbo", steps: Steps::AlphaEtaBeta, set: &[("inner_steps", "10"), ("neumann_steps", "10")], batch: true },
    Bench { benchopt: "SUSTAIN", solver: "sustain", steps: Steps::AlphaEtaBeta, set: &[("rho", "0.5"), ("neumann_terms", "10")], batch: true },
    Bench { benchopt: "BGS", solver: "bgs", steps: Steps::AlphaEtaBeta, set: &[], batch: true },
    Bench { benchopt: "F2SA", solver: "f2sa", steps: Steps::F2sa, set: &[("lambda0", "1"), ("inner_steps", "10")], batch: true },
    Bench { benchopt: "F2BSA", solver: "f2bsa", steps: Steps::F2ba, set: &[("lambda", "10"), ("inner_steps", "10")], batch: true },
    Bench { benchopt: "AIDBiO (stochastic)", solver: "aidbio", steps: Steps::AlphaBeta, set: &[("inner_steps", "10"), ("solve", r#"{"Neumann":{"terms":10,"eta":0.1}}"#)], batch: true },
    Bench { benchopt: "AID (single loop)", solver: "aid-single-loop", steps: Steps::AlphaEtaBeta, set: &[], batch: false },
    Bench { benchopt: "F2BA", solver: "f2ba", steps: Steps::F2ba, set: &[("lambda", "10"), ("inner_steps", "10")], batch: false },
    Bench { benchopt: "MEHA", solver: "meha", steps: Steps::Meha, set: &[], batch: false },
    Bench { benchopt: "HJFBiO", solver: "hjfbio", steps: Steps::LambdaTauGamma, set: &[], batch: false },
];

/// A method's tuned setting in one of the benchmark's `config/*_best_params.yml`:
/// `(benchopt name, step_size, outer_ratio, further pairs)`.
type Tuned = (
    &'static str,
    f64,
    f64,
    &'static [(&'static str, &'static str)],
);

/// The benchmark's steps for a method it did not tune here: its solvers' usual default.
const DEFAULT_STEPS: (f64, f64) = (0.1, 1.0);

/// `config/quadratics_021424_best_params.yml`. VRBO's period is the benchmark's
/// `int((N_f + N_g)·period_frac/batch)` outer iterations, `int(33792·0.01/64) = 5`.
const QUADRATIC_TUNED: &[Tuned] = &[
    ("AmIGO", 0.01, 0.1, &[]),
    ("MRBO", 0.1, 0.1, &[]),
    ("SABA", 0.1, 1.0, &[]),
    ("SRBA", 0.1, 1.0, &[("period_frac", "0.5")]),
    ("StocBiO", 0.1, 1.0, &[]),
    ("VRBO", 0.1, 1.0, &[("period", "5")]),
    ("F2SA", 0.1, 1.0, &[]),
];

/// `config/datacleaning0_5_best_params.yml`. VRBO's period: `int(25000·0.5/64) = 195`.
const CLEANING_05: &[Tuned] = &[
    ("AmIGO", 0.001, 1e-5, &[]),
    ("MRBO", 0.1, 1e-4, &[]),
    ("VRBO", 0.1, 1e-4, &[("period", "195")]),
    ("SABA", 0.1, 1e-3, &[]),
    ("StocBiO", 0.01, 1e-5, &[]),
    ("SRBA", 0.001, 1e-5, &[("period_frac", "512")]),
    ("FSLA", 1.0, 1e-4, &[]),
    ("SUSTAIN", 0.1, 1e-4, &[]),
    ("SOBA", 1.0, 1e-4, &[]),
    ("TTSA", 0.1, 1e-5, &[]),
    ("BSA", 0.1, 1e-5, &[]),
];

/// `config/datacleaning0_7_best_params.yml`.
const CLEANING_07: &[Tuned] = &[
    ("AmIGO", 0.001, 1e-5, &[]),
    ("MRBO", 0.1, 1e-4, &[]),
    ("VRBO", 0.1, 1e-4, &[("period", "195")]),
    ("SABA", 0.01, 1e-4, &[]),
    ("StocBiO", 0.01, 1e-5, &[]),
    ("SRBA", 0.001, 1e-5, &[("period_frac", "512")]),
    ("FSLA", 1.0, 1e-5, &[]),
    ("SUSTAIN", 0.1, 1e-4, &[]),
    ("SOBA", 1.0, 1e-4, &[]),
    ("TTSA", 0.1, 1e-5, &[]),
    ("BSA", 0.1, 1e-5, &[]),
];

/// `config/datacleaning0_9_best_params.yml`.
const CLEANING_09: &[Tuned] = &[
    ("AmIGO", 0.001, 1e-5, &[]),
    ("MRBO", 1.0, 0.01, &[]),
    ("VRBO", 0.1, 1e-3, &[("period", "195")]),
    ("SABA", 0.1, 1e-3, &[]),
    ("StocBiO", 0.01, 1e-5, &[]),
    ("SRBA", 0.001, 1e-5, &[("period_frac", "512")]),
    ("FSLA", 1.0, 1e-3, &[]),
    ("SUSTAIN", 0.1, 1e-4, &[]),
    ("SOBA", 1.0, 1e-3, &[]),
    ("TTSA", 0.1, 1e-5, &[]),
    ("BSA", 0.1, 1e-5, &[]),
];

/// `(step_size, outer_ratio, further pairs, tuned by the benchmark)` of `b` in `tuned`.
fn steps_of(
    b: &Bench,
    tuned: &[Tuned],
) -> (f64, f64, &'static [(&'static str, &'static str)], bool) {
    tuned
        .iter()
        .find(|t| t.0 == b.benchopt)
        .map_or((DEFAULT_STEPS.0, DEFAULT_STEPS.1, &[][..], false), |t| {
            (t.1, t.2, t.3, true)
        })
}

/// The `--set` pairs of `b` at `step` and `ratio` (outer step `step/ratio`).
fn sets(b: &Bench, step: f64, ratio: f64, extra: &[(&str, &str)]) -> Vec<String> {
    // `step / ratio` to 13 significant digits, so that 0.01 / 0.1 reads 0.1 (not
    // 0.09999999999999999) as the benchmark's configuration means it.
    let outer: f64 = format!("{:.12e}", step / ratio)
        .parse()
        .expect("a formatted float parses");
    let mut s: Vec<String> = match b.steps {
        Steps::RhoGamma => vec![format!("rho={step}"), format!("gamma={outer}")],
        Steps::AlphaEtaBeta => vec![
            format!("alpha={step}"),
            format!("eta={step}"),
            format!("beta={outer}"),
        ],
        Steps::AlphaBeta => vec![format!("alpha={step}"), format!("beta={outer}")],
        Steps::F2ba => vec![
            format!("eta_y={step}"),
            format!("eta_z={step}"),
            format!("eta_x={outer}"),
        ],
        Steps::F2sa => vec![
            format!("alpha0={step}"),
            format!("gamma0={step}"),
            format!("xi={}", 1.0 / ratio),
        ],
        Steps::Meha => vec![
            format!("beta={step}"),
            format!("eta={step}"),
            format!("alpha={outer}"),
        ],
        Steps::LambdaTauGamma => vec![
            format!("lambda={step}"),
            format!("tau={step}"),
            format!("gamma={outer}"),
        ],
    };
    s.extend(b.set.iter().chain(extra).map(|(k, v)| format!("{k}={v}")));
    if b.batch {
        s.push("batch=64".into());
    }
    s
}

/// One setting of an experiment: a problem, its parameters and the benchmark's tuned steps.
struct Setting<'a> {
    /// The sub-folder (empty: the experiment's folder).
    sub: &'a str,
    title: String,
    problem: &'a str,
    sets: Vec<String>,
    tuned: &'a [Tuned],
    plan: Plan<'a>,
    /// The iteration cap of the methods with exact oracles (a full pass over the data per
    /// oracle call, so far costlier per iteration than a minibatch method's).
    exact_iters: u64,
    /// Smaller iteration caps of some methods, by benchopt name (VRBO with the quadratic's
    /// tuned period of 5 makes a full pass every 5 iterations).
    caps: &'a [(&'a str, u64)],
    /// The column plotted as the objective, its label and whether on a log axis, then others.
    plots: &'a [(&'a str, &'a str, bool)],
    schema: Schema,
}

/// The first seed of `seeds` (`0..10` → `0`), for the methods without randomness.
fn first_seed(seeds: &str) -> String {
    crate::cli::parse_seeds(seeds)
        .ok()
        .and_then(|v| v.first().copied())
        .unwrap_or(0)
        .to_string()
}

/// Run every method of [`METHODS`] on `s` into `out/<sub>/<benchopt-name>`; the report section
/// and whether a run was stopped.
fn run_setting(
    args: &ReproduceArgs,
    out: &Folder,
    s: &Setting<'_>,
) -> Result<(String, bool), CliError> {
    let base = out.dir().join(s.sub);
    let mut dirs = Vec::new();
    let mut runs = Vec::new();
    let first = first_seed(s.plan.seeds);
    let mut rows = String::from(
        "| method | solver | step_size | outer_ratio | tuned | seeds | objective, median [20 %, 80 %] | iters | Gc + MV | wall s |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for b in METHODS {
        let (step, ratio, extra, tuned) = steps_of(b, s.tuned);
        let mut all = sets(b, step, ratio, extra);
        all.extend(s.sets.iter().cloned());
        let dir = base.join(slug(b.benchopt));
        let cap = s.caps.iter().find(|c| c.0 == b.benchopt).map(|c| c.1);
        let plan = if let Some(iters) = cap {
            Plan { iters, ..s.plan }
        } else if b.batch {
            s.plan
        } else {
            Plan {
                seeds: &first,
                iters: s.exact_iters,
                metrics_every: s
                    .plan
                    .metrics_every
                    .map(|m| m.min((s.exact_iters / 8).max(1))),
                ..s.plan
            }
        };
        if !one(args, s.problem, b.solver, &all, plan, &dir)? {
            return Ok((String::new(), true));
        }
        let (col, _, _) = s.plots[0];
        let st = final_stats(&dir)?;
        let last = final_column(&dir, col)?;
        let calls: Vec<f64> = seeds_in(&dir)?
            .into_iter()
            .filter_map(|seed| {
                let t = trace_table(&dir, seed).ok()?;
                Some(t.last("gc")? + t.last("mv")?)
            })
            .collect();
        let med =
            |v: &[f64]| crate::cli::summary::Stats::of(v).map_or("–".into(), |x| fmt(x.median));
        rows += &format!(
            "| {} | `{}` | {step} | {ratio} | {} | {} | {} | {} | {} | {} |\n",
            b.benchopt,
            b.solver,
            if tuned {
                "benchmark's best"
            } else {
                "benchmark's default"
            },
            plan.seeds,
            crate::cli::summary::Stats::of(&last).map_or("–".into(), |x| format!(
                "{} [{}, {}]",
                fmt(x.median),
                fmt(x.q20),
                fmt(x.q80)
            )),
            stat(&st, "iter").map_or("–".into(), |x| fmt(x.median)),
            med(&calls),
            stat(&st, "elapsed_s").map_or("–".into(), |x| format!("{:.2}", x.median)),
        );
        dirs.push((b.benchopt.to_string(), dir.clone()));
        runs.push(BenchoptRun {
            name: b.benchopt.to_string(),
            description: format!("our `{}` with {}", b.solver, all.join(" ")),
            dir,
        });
    }
    let mut plots = Vec::new();
    for (col, label, log) in s.plots {
        for (x, x_label, suffix) in [
            (Axis::Time, "wall time (s, without the metrics)", "time"),
            (Axis::Iter, "iteration", "iter"),
            (Axis::Calls, "oracle calls (Gc + MV)", "calls"),
        ] {
            let series = against(&dirs, col, x)?;
            let name = if s.sub.is_empty() {
                format!("{col}_{suffix}.svg")
            } else {
                format!("{}/{col}_{suffix}.svg", s.sub)
            };
            let p = out.file(&name)?;
            draw(
                &p,
                &format!("{}: {label}, median and 20–80 % band over seeds", s.title),
                x_label,
                label,
                &series,
                *log,
            )?;
            plots.push(p);
        }
    }
    let csv = schema::write(&base, &s.schema, &runs)?;
    Ok((
        format!(
            "{rows}\nPlots: {}\n\nbenchopt's result table: {}\n",
            list_paths(&plots),
            csv.display()
        ),
        false,
    ))
}

/// The last value of column `col` per seed of the run in `dir`.
fn final_column(dir: &Path, col: &str) -> Result<Vec<f64>, CliError> {
    Ok(seeds_in(dir)?
        .into_iter()
        .filter_map(|s| {
            trace_table(dir, s)
                .ok()?
                .pairs("iter", col)
                .last()
                .map(|p| p.1)
        })
        .collect())
}

/// An abscissa of the curves.
#[derive(Clone, Copy, Debug)]
enum Axis {
    /// The solver's wall time (`elapsed_s`, which excludes the metrics).
    Time,
    /// The outer iteration.
    Iter,
    /// The oracle calls so far, `Gc + MV`.
    Calls,
}

/// The abscissa of every trace row: `(iter, x)`.
fn abscissa(t: &Table, x: Axis) -> Vec<(f64, f64)> {
    match x {
        Axis::Time => t.pairs("iter", "elapsed_s"),
        Axis::Iter => t.pairs("iter", "iter"),
        Axis::Calls => t
            .pairs("iter", "gc")
            .into_iter()
            .zip(t.pairs("iter", "mv"))
            .map(|((i, g), (_, m))| (i, g + m))
            .collect(),
    }
}

/// The median and 20–80 % band over seeds of column `col` at each recorded iteration every seed
/// reached, placed at the median over seeds of the abscissa `x` there (as benchopt's own plots
/// place each stopping point at its median time).
fn against(dirs: &[(String, PathBuf)], col: &str, x: Axis) -> Result<Vec<Series>, CliError> {
    let mut out = Vec::new();
    for (name, dir) in dirs {
        let mut ys = Vec::new();
        let mut xs = Vec::new();
        for s in seeds_in(dir)? {
            let t = trace_table(dir, s)?;
            ys.push(t.pairs("iter", col));
            xs.push(abscissa(&t, x));
        }
        if ys.is_empty() {
            continue;
        }
        let y = band(name, &ys);
        let at = band(name, &xs);
        let mut keep = Series {
            name: name.clone(),
            ..Series::default()
        };
        for i in 0..y.x.len() {
            if !ys.iter().all(|t| t.iter().any(|(it, _)| *it == y.x[i])) {
                continue;
            }
            if let Some(j) = at.x.iter().position(|&it| it == y.x[i]) {
                keep.x.push(at.y[j]);
                keep.y.push(y.y[i]);
                keep.lo.push(y.lo[i]);
                keep.hi.push(y.hi[i]);
            }
        }
        out.push(keep);
    }
    Ok(out)
}

fn square(v: f64) -> f64 {
    v * v
}

fn error(acc: f64) -> f64 {
    1.0 - acc
}

/// `benchopt-quadratic`: the benchmark's simulated quadratic (see the module documentation).
pub(super) fn benchopt_quadratic(
    args: &ReproduceArgs,
    out: &Folder,
) -> Result<(String, bool), CliError> {
    let (own, iters, every, size, mode): (&str, u64, u64, Vec<(&str, &str)>, &str) = if args.smoke {
        (
            "0..2",
            20,
            5,
            vec![
                ("n_inner", "256"),
                ("n_outer", "64"),
                ("dim_inner", "10"),
                ("dim_outer", "3"),
            ],
            "smoke: 256 inner and 64 outer samples, dim y = 10, dim x = 3, 20 iterations, seeds 0..2",
        )
    } else if args.quick {
        (
            "0..3",
            1024,
            32,
            Vec::new(),
            "reduced: 1024 iterations, seeds 0..3",
        )
    } else {
        (
            "0..10",
            4096,
            64,
            Vec::new(),
            "4096 iterations (8 passes over the inner samples at batch 64; VRBO 512, as its tuned \
             period of 5 makes a full pass every 5 iterations, and the exact-oracle methods \
             512), seeds 0..10",
        )
    };
    let seeds = seeds_of(args, own);
    let mut dataset_params: Vec<(String, String)> = vec![
        ("n_samples_inner".into(), "32768".into()),
        ("n_samples_outer".into(), "1024".into()),
        ("dim_inner".into(), "100".into()),
        ("dim_outer".into(), "10".into()),
    ];
    for (k, v) in &size {
        let key = match *k {
            "n_inner" => "n_samples_inner",
            "n_outer" => "n_samples_outer",
            other => other,
        };
        if let Some(p) = dataset_params.iter_mut().find(|p| p.0 == key) {
            p.1 = (*v).to_string();
        }
    }
    dataset_params.extend([
        ("mu_inner".to_string(), "0.1".to_string()),
        ("L_cross_inner".to_string(), "0.1".to_string()),
        ("L_cross_outer".to_string(), "0.1".to_string()),
        ("random_state".to_string(), "2442".to_string()),
    ]);
    let s = Setting {
        sub: "",
        title: "benchopt quadratic".into(),
        problem: "benchopt-quadratic",
        sets: size.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        tuned: QUADRATIC_TUNED,
        plan: Plan {
            seeds,
            iters,
            metrics_every: Some(every),
            time_budget: None,
        },
        // The exact-oracle methods read the 33792 samples per call (F²BA 21 times an
        // iteration): a cap of 512 in the full run.
        exact_iters: iters.min(512),
        caps: if args.smoke || args.quick {
            &[]
        } else {
            &[("VRBO", 512)]
        },
        plots: &[
            ("grad_phi_norm", "‖∇Φ(x)‖", true),
            ("inner_distance", "‖y − y*(x)‖²", true),
        ],
        schema: Schema {
            objective: "Bilevel Optimization".into(),
            dataset: "simulated".into(),
            dataset_params,
            file_dataset: "datasets/simulated.py".into(),
            metrics: vec![
                Metric {
                    key: "value",
                    column: "grad_phi_norm",
                    map: square,
                },
                Metric {
                    key: "func",
                    column: "phi",
                    map: std::convert::identity,
                },
                Metric {
                    key: "inner_distance",
                    column: "inner_distance",
                    map: std::convert::identity,
                },
            ],
        },
    };
    let (section, stopped) = run_setting(args, out, &s)?;
    if stopped {
        return Ok((String::new(), true));
    }
    let text = format!(
        "# reproduce benchopt-quadratic: the simulated quadratic of benchopt's bilevel benchmark\n\n\
         The `simulated` dataset of {BENCHMARK}: both levels averages of random quadratics \
         (`datasets/simulated.py`, `benchmark_utils/gen_matrices.py`) with the sizes of its \
         `config/quadratics_021424.yml`: 32768 inner and 1024 outer samples, dim y = 100, dim x = \
         10, μ = 0.1, cross constants 0.1, drawn once (`data_seed = 2442`, its `random_state`; our \
         generator is not JAX's, so the draw is ours) and shared by every method and seed; \
         start x₀ = −2·1, y₀ = 0 (its `objective.py`). The seeds drive the minibatches only. \
         Every stochastic method at batch 64; steps from the benchmark's \
         `config/quadratics_021424_best_params.yml` where it tuned the method (\"benchmark's \
         best\"), else its solvers' default `step_size = 0.1`, `outer_ratio = 1`; the outer step \
         is `step_size / outer_ratio`. Methods without a minibatch run with exact oracles on \
         the first seed. {mode}. The objective is benchmark_bilevel's `value`, ‖∇Φ(x)‖² \
         (the table shows its square root ‖∇Φ‖ at the last iteration, the curves ‖∇Φ‖). Wall \
         time excludes the metrics, as benchopt's does.\n\n{section}\n"
    );
    Ok((text, false))
}

/// `benchopt-datacleaning`: the benchmark's MNIST data cleaning at three corruption ratios.
pub(super) fn benchopt_datacleaning(
    args: &ReproduceArgs,
    out: &Folder,
) -> Result<(String, bool), CliError> {
    type Mode<'a> = (&'a str, u64, u64, u64, Vec<&'a str>, &'a str);
    let (own, iters, exact_iters, every, size, mode): Mode<'_> = if args.smoke {
        (
            "0",
            6,
            6,
            3,
            vec!["n=300", "val=100", "test=200"],
            "smoke: 300 training, 100 validation and 200 test images, 6 iterations, seed 0",
        )
    } else if args.quick {
        (
            "0..2",
            1024,
            64,
            128,
            Vec::new(),
            "reduced: 1024 iterations (about 3 passes over the training set at batch 64; the \
             methods with exact oracles 64), seeds 0..2",
        )
    } else {
        (
            "0..10",
            8192,
            512,
            512,
            Vec::new(),
            "8192 iterations (about 26 passes over the training set at batch 64; the methods \
             with exact oracles 512), seeds 0..10",
        )
    };
    let seeds = seeds_of(args, own);
    let mut text = format!(
        "# reproduce benchopt-datacleaning: MNIST data cleaning of benchopt's bilevel benchmark\n\n\
         The `mnist` dataset of {BENCHMARK} (`datasets/mnist.py`): 20,000 training and 5,000 \
         validation images from MNIST's training split, the 10,000 test images, pixels \
         standardized over the training set (scikit-learn's StandardScaler), each training \
         label replaced by a uniformly random class with probability `ratio`; lower level the \
         σ(x)-weighted softmax regression plus 0.2‖W‖² (its `reg`), upper level the \
         validation cross-entropy; start x₀ = −2·1, W₀ = 0. Our split and corruption are drawn \
         per seed by our generator (the benchmark draws one with `random_state = 32` and varies \
         the solvers' seeds). Every stochastic method at batch 64 with the benchmark's \
         `config/datacleaning0_{{5,7,9}}_best_params.yml` steps where it tuned it, else its \
         default `step_size = 0.1`, `outer_ratio = 1`; outer step `step_size / outer_ratio`. \
         Methods without a minibatch run with exact oracles on the first seed. {mode}. The \
         objective plotted is the test accuracy (benchmark_bilevel reports the test error as \
         `test_accuracy`, and its `value` is the validation error; `benchopt.csv` keeps its \
         names and meanings). Wall time excludes the metrics.\n",
    );
    for (ratio, tuned) in [
        ("0.5", CLEANING_05),
        ("0.7", CLEANING_07),
        ("0.9", CLEANING_09),
    ] {
        let mut sets: Vec<String> = size.iter().map(|s| (*s).to_string()).collect();
        sets.extend([
            "preset=benchopt".to_string(),
            format!("p={ratio}"),
            "lambda=0.2".to_string(),
            "standardize=true".to_string(),
            "x0=-2".to_string(),
            "accuracies=true".to_string(),
        ]);
        let sub = format!("ratio{ratio}");
        let s = Setting {
            sub: &sub,
            title: format!("benchopt data cleaning, ratio {ratio}"),
            problem: "dhc-linear",
            sets,
            tuned,
            plan: Plan {
                seeds,
                iters,
                metrics_every: Some(every),
                time_budget: None,
            },
            exact_iters,
            caps: &[],
            plots: &[
                ("test_acc", "test accuracy", false),
                ("val_loss", "validation loss", false),
            ],
            schema: Schema {
                objective: "Bilevel Optimization".into(),
                dataset: "mnist".into(),
                dataset_params: vec![("ratio".into(), ratio.into()), ("reg".into(), "0.2".into())],
                file_dataset: "datasets/mnist.py".into(),
                metrics: vec![
                    Metric {
                        key: "value",
                        column: "val_acc",
                        map: error,
                    },
                    Metric {
                        key: "test_accuracy",
                        column: "test_acc",
                        map: error,
                    },
                    Metric {
                        key: "train_accuracy",
                        column: "train_acc",
                        map: error,
                    },
                    Metric {
                        key: "val_loss",
                        column: "val_loss",
                        map: std::convert::identity,
                    },
                ],
            },
        };
        let (section, stopped) = run_setting(args, out, &s)?;
        if stopped {
            return Ok((String::new(), true));
        }
        text += &format!(
            "\n## ratio = {ratio}\n\nThe objective column is the final test accuracy.\n\n{section}"
        );
    }
    Ok((text, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_builds_through_the_registry_at_every_setting() {
        for tuned in [QUADRATIC_TUNED, CLEANING_05, CLEANING_07, CLEANING_09] {
            for b in METHODS {
                let (step, ratio, extra, _) = steps_of(b, tuned);
                let mut p = crate::solvers::registry::solver(b.solver)
                    .unwrap_or_else(|e| panic!("{}: {e}", b.benchopt))
                    .defaults();
                for kv in sets(b, step, ratio, extra) {
                    let (k, v) = kv.split_once('=').unwrap();
                    p.set(k, v)
                        .unwrap_or_else(|e| panic!("{}: {kv}: {e}", b.benchopt));
                }
                p.build().unwrap_or_else(|e| panic!("{}: {e}", b.benchopt));
            }
            // Every tuned row names a method of the table.
            for t in tuned {
                assert!(METHODS.iter().any(|b| b.benchopt == t.0), "{}", t.0);
            }
        }
        let names: Vec<&str> = METHODS.iter().map(|b| b.benchopt).collect();
        for (i, n) in names.iter().enumerate() {
            assert!(!names[..i].contains(n), "{n} twice");
        }
    }

    #[test]
    fn the_outer_step_is_the_step_over_the_ratio() {
        let soba = METHODS.iter().find(|b| b.benchopt == "SOBA").unwrap();
        let s = sets(soba, 1.0, 1e-4, &[]);
        assert!(s.contains(&"rho=1".to_string()), "{s:?}");
        assert!(s.contains(&"gamma=10000".to_string()), "{s:?}");
        assert!(s.contains(&"batch=64".to_string()));
        let amigo = METHODS.iter().find(|b| b.benchopt == "AmIGO").unwrap();
        assert!(sets(amigo, 0.01, 0.1, &[]).contains(&"beta=0.1".to_string()));
        assert!(sets(amigo, 0.001, 1e-5, &[]).contains(&"beta=100".to_string()));
        let (step, ratio, _, tuned) = steps_of(soba, CLEANING_05);
        assert_eq!((step, ratio, tuned), (1.0, 1e-4, true));
        assert!(!steps_of(soba, QUADRATIC_TUNED).3);
    }
}

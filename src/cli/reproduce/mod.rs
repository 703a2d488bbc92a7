//! `bilevel reproduce ID`: the papers' experiments, each writing under `results/<ID>/` and
//! printing our numbers beside the published ones.
//!
//! [`EXPERIMENTS`] is the one table of them. `plan` holds what they share (running one method
//! into a folder, reusing finished runs, curves over seeds); `dhc` the data hyper-cleaning
//! comparisons (`f2sa` the F²SA slides' stochastic one), `galet` GALET's Example 1 and its sensitivity grid, `single_loop` the
//! single-loop AID/ITD experiments (`bounds` the single-loop paper's bounds as formulas),
//! `synthetic` PGD-QP's synthetic comparisons and `benchopt` the protocol of benchopt's bilevel
//! benchmark (writing `benchopt.csv` through [`crate::cli::benchopt`]).

mod benchopt;
mod bounds;
mod dhc;
mod f2sa;
mod galet;
mod plan;
mod single_loop;
mod synthetic;

use super::CliError;
use super::folder::Folder;
use clap::Args;
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `bilevel reproduce`.
#[derive(Debug, Clone, Default, Args)]
pub struct ReproduceArgs {
    /// Experiment: `quick`, `kappa-sweep`, `singleloop-bounds`, `galet-example1`, `galet-fig3`,
    /// `galet-sensitivity`, `galet-table3`, `galet-table3-mlp`, `galet-table3-fashion`,
    /// `galet-fig5`, `synthetic`, `itd-appendix-d`, `pgdqp-dhc`, `pgdqp-time`, `f2sa-cleaning`,
    /// `benchopt-quadratic` or `benchopt-datacleaning`.
    pub id: String,
    /// A reduced mode that runs in seconds (for tests).
    #[arg(long)]
    pub smoke: bool,
    /// Reduced seeds, iterations or budgets (`galet-table3`, `galet-table3-mlp`,
    /// `galet-table3-fashion`, `galet-fig5`, `pgdqp-dhc`, `pgdqp-time`, `f2sa-cleaning`,
    /// `benchopt-quadratic`, `benchopt-datacleaning`); a reduced mode that runs in seconds (`synthetic`, `itd-appendix-d`,
    /// `galet-sensitivity`).
    #[arg(long)]
    pub quick: bool,
    /// Output folder, data folder, threads and progress.
    #[command(flatten)]
    pub common: crate::cli::Common,
    /// Reuse the finished runs already in the output folder and only redraw the plots and the
    /// report; runs that are missing or unfinished are run as usual. A folder that holds some of
    /// the seeds asked for, with the same settings otherwise, keeps them: only the missing seeds
    /// are run (so `--seeds 0..5 --redraw` adds seeds 2 to 4 to a folder made with `--seeds 0..2`).
    #[arg(long)]
    pub redraw: bool,
    /// Seeds to run instead of the experiment's own (`0..5`, `0,3`), for the experiments that run
    /// over seeds: `quick`, `galet-table3`, `galet-table3-mlp`, `galet-table3-fashion`, `galet-fig5`,
    /// `synthetic`, `itd-appendix-d`, `pgdqp-dhc`, `pgdqp-time`, `f2sa-cleaning`,
    /// `benchopt-quadratic` and `benchopt-datacleaning`.
    #[arg(long)]
    pub seeds: Option<String>,
}

/// How the reports cite the PGD-QP paper.
const PGDQP_PAPER: &str = "anonymous authors, \"Perturbed Gradient Descent via Convex Quadratic \
Approximation for Nonconvex Bilevel Optimization\" (under review)";
/// How the reports cite the GALET paper.
const GALET_PAPER: &str = "Quan Xiao, Songtao Lu and Tianyi Chen, \"A Generalized Alternating \
Method for Bilevel Optimization under the Polyak-Łojasiewicz Condition\"";
/// How the reports cite the single-loop AID/ITD paper.
const SINGLE_LOOP_PAPER: &str = "anonymous authors, \"Sharper Analysis of Single-Loop Methods for \
Bilevel Optimization\" (under review)";

/// How the reports cite the F²SA slides.
const F2SA_SLIDES: &str = "Jeongyeol Kwon, Dohyun Kwon, Stephen Wright, Rob Nowak and Hanbaek Lyu, \
\"Fully First-Order Methods for Bilevel Optimization\" (slides)";
/// How the reports cite the F²SA paper.
const F2SA_PAPER: &str = "Jeongyeol Kwon, Dohyun Kwon, Stephen Wright and Robert Nowak, \"A Fully \
First-Order Method for Stochastic Bilevel Optimization\" (ICML 2023)";

/// The report of a reproduction, in its folder.
pub const REPORT: &str = "report.md";

/// What an experiment returns: its report, or that a run was stopped before the end.
type Outcome = Result<(String, bool), CliError>;

/// One experiment of the papers.
#[derive(Clone, Copy)]
pub struct Experiment {
    /// The `reproduce` argument.
    pub id: &'static str,
    /// What it reproduces.
    pub summary: &'static str,
    /// It runs over seeds, so it takes `--seeds`.
    pub seeded: bool,
    /// It has a reduced mode, so it takes `--quick`.
    pub reduced: bool,
    run: fn(&ReproduceArgs, &Folder) -> Outcome,
}

impl std::fmt::Debug for Experiment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Experiment").field("id", &self.id).finish()
    }
}

/// Every experiment `reproduce` knows.
pub const EXPERIMENTS: &[Experiment] = &[
    Experiment {
        id: "quick",
        summary: "four methods cleaning MNIST labels with a linear classifier (PGD-QP paper, §5 setup)",
        seeded: true,
        reduced: false,
        run: dhc::quick,
    },
    Experiment {
        id: "kappa-sweep",
        summary: "single-loop AID and ITD on quadratic-κ (single-loop paper, §5)",
        seeded: false,
        reduced: false,
        run: single_loop::kappa_sweep,
    },
    Experiment {
        id: "singleloop-bounds",
        summary: "the single-loop paper's Theorem 1, 3 and 4 bounds and Ji et al.'s on quadratic-κ (single-loop paper, Figures 1 and 2)",
        seeded: false,
        reduced: false,
        run: single_loop::singleloop_bounds,
    },
    Experiment {
        id: "galet-example1",
        summary: "GALET on its Example 1 from two starts",
        seeded: false,
        reduced: false,
        run: galet::galet_example1,
    },
    Experiment {
        id: "galet-fig3",
        summary: "GALET's w-increment (12b) against (15) on Example 1 (GALET paper, Figure 3)",
        seeded: false,
        reduced: false,
        run: galet::galet_fig3,
    },
    Experiment {
        id: "galet-sensitivity",
        summary: "GALET's parameter sensitivity on Example 1 (GALET paper, Figure 4)",
        seeded: false,
        reduced: true,
        run: galet::galet_sensitivity,
    },
    Experiment {
        id: "galet-table3",
        summary: "data hyper-cleaning, linear classifier (GALET paper, Table 3)",
        seeded: true,
        reduced: true,
        run: dhc::galet_table3,
    },
    Experiment {
        id: "galet-table3-mlp",
        summary: "data hyper-cleaning, MLP 784-50-10 (GALET paper, Table 3)",
        seeded: true,
        reduced: true,
        run: dhc::galet_table3_mlp,
    },
    Experiment {
        id: "galet-table3-fashion",
        summary: "data hyper-cleaning on Fashion-MNIST, MLP 784-50-10 (GALET paper, Table 3)",
        seeded: true,
        reduced: true,
        run: dhc::galet_table3_fashion,
    },
    Experiment {
        id: "galet-fig5",
        summary: "test loss and stationarity of BOME, IAPTT-GM, V-PBGD, GALET (GALET paper, Table 2 and Figure 5)",
        seeded: true,
        reduced: true,
        run: dhc::galet_fig5,
    },
    Experiment {
        id: "synthetic",
        summary: "PGD-QP's synthetic comparisons (PGD-QP paper, App. C.1)",
        seeded: true,
        reduced: true,
        run: synthetic::synthetic,
    },
    Experiment {
        id: "itd-appendix-d",
        summary: "single-loop ITD and AID on data reweighting with an MLP (single-loop paper, App. D)",
        seeded: true,
        reduced: true,
        run: single_loop::itd_appendix_d,
    },
    Experiment {
        id: "pgdqp-dhc",
        summary: "data hyper-cleaning on PCA, pixels and a network (PGD-QP paper, §5)",
        seeded: true,
        reduced: true,
        run: dhc::pgdqp_dhc,
    },
    Experiment {
        id: "pgdqp-time",
        summary: "the same under a fixed time budget (PGD-QP paper, App. C.2)",
        seeded: true,
        reduced: true,
        run: dhc::pgdqp_time,
    },
    Experiment {
        id: "f2sa-cleaning",
        summary: "F²SA, F³SA and stochastic AIDBiO cleaning labels with minibatches (F²SA slides, \"Classification with Corrupted Labels\")",
        seeded: true,
        reduced: true,
        run: f2sa::f2sa_cleaning,
    },
    Experiment {
        id: "benchopt-quadratic",
        summary: "every stochastic method on benchopt's benchmark_bilevel simulated quadratic, its settings, with benchopt.csv",
        seeded: true,
        reduced: true,
        run: benchopt::benchopt_quadratic,
    },
    Experiment {
        id: "benchopt-datacleaning",
        summary: "every stochastic method on benchopt's benchmark_bilevel MNIST data cleaning at corruption 0.5, 0.7, 0.9, with benchopt.csv",
        seeded: true,
        reduced: true,
        run: benchopt::benchopt_datacleaning,
    },
];

/// The experiment named `id`.
///
/// # Errors
/// An unknown id, with the closest known ones.
pub fn experiment(id: &str) -> Result<&'static Experiment, CliError> {
    EXPERIMENTS
        .iter()
        .find(|e| e.id == id)
        .ok_or_else(|| super::registry::unknown("experiment", id, EXPERIMENTS.iter().map(|e| e.id)))
}

/// The ids of the experiments with `flag`.
fn ids(flag: fn(&Experiment) -> bool) -> String {
    EXPERIMENTS
        .iter()
        .filter(|e| flag(e))
        .map(|e| e.id)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Run experiment `args.id`; returns the exit code.
///
/// # Errors
/// Unknown id (with a suggestion), run errors.
pub fn reproduce(args: &ReproduceArgs) -> Result<i32, CliError> {
    let exp = experiment(&args.id)?;
    let out = args
        .common
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("results").join(&args.id));
    if args.seeds.is_some() && !exp.seeded {
        return Err(CliError::new(format!(
            "--seeds: {} does not run over seeds; the experiments that do are {}",
            args.id,
            ids(|e| e.seeded)
        )));
    }
    if args.quick && !exp.reduced {
        return Err(CliError::new(format!(
            "--quick: {} has no reduced mode (it already runs in about a minute or less); the \
             experiments that have one are {}",
            args.id,
            ids(|e| e.reduced)
        )));
    }
    let t0 = Instant::now();
    let folder = Folder::take_experiment(&out, exp.id)?;
    // A report of the user's stops the reproduction before any work.
    folder.claim([REPORT])?;
    let (text, interrupted) = (exp.run)(args, &folder)?;
    if interrupted {
        eprintln!(
            "stopped; the same command with --redraw keeps the finished runs and continues the \
             interrupted ones from their checkpoints"
        );
        return Ok(crate::cli::EXIT_INTERRUPTED);
    }
    let total = format!(
        "Total wall time: {:.1} s{}.",
        t0.elapsed().as_secs_f64(),
        if args.redraw {
            ", reusing the finished runs in this folder (`--redraw`); each run's own wall \
             time is the `elapsed_s` of its summary"
        } else {
            ""
        }
    );
    // The command that makes this report from an empty folder (`--redraw` only saves work).
    let text = format!(
        "{text}\n{total} Command: `bilevel reproduce {}{}{}`\n",
        args.id,
        if args.smoke {
            " --smoke"
        } else if args.quick {
            " --quick"
        } else {
            ""
        },
        args.seeds
            .as_ref()
            .map_or(String::new(), |s| format!(" --seeds {s}"))
    );
    folder.write(REPORT, &text)?;
    println!("{text}");
    println!("wrote {}", out.join(REPORT).display());
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn experiment_ids_are_unique_and_found() {
        for (i, e) in EXPERIMENTS.iter().enumerate() {
            assert!(
                EXPERIMENTS[..i].iter().all(|o| o.id != e.id),
                "{} twice",
                e.id
            );
            assert_eq!(experiment(e.id).unwrap().id, e.id);
        }
        let err = experiment("kappa-swep").unwrap_err().0;
        assert!(err.contains("did you mean `kappa-sweep`"), "{err}");
    }
}

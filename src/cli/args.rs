//! The program's arguments: the command line (clap) and the TOML run file, and the parsers of
//! their texts (seeds, durations, `key=value`).

use super::CliError;
use super::reproduce;
use clap::{Args, Parser, Subcommand};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Gradient-based bilevel optimization: run solvers on problems, plot and reproduce papers.
#[derive(Debug, Parser)]
#[command(
    name = "bilevel",
    version,
    about,
    after_help = "Exit codes: 0 done; 2 bad arguments, unknown names, missing data or a refused \
                  output folder; 3 a run diverged (its traces and summary are written, and \
                  summary.md names the seeds); 130 stopped by Ctrl-C (continue with --resume)."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List problems, solvers, their parameters and defaults.
    List,
    /// Run one or more solvers on a problem over several seeds.
    Run(RunArgs),
    /// Redraw the plots of a run folder from its traces (or, for a folder of runs written by
    /// `run --solver a,b`, those of each run and their comparison).
    Plot {
        /// The run folder, or a folder of run folders.
        dir: PathBuf,
    },
    /// Time each oracle of a problem and its ratio to one gradient.
    Oracles {
        /// Problem name.
        #[arg(long)]
        problem: String,
        /// Problem parameters, `key=value`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Data folder, as for `run`.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Repetitions per oracle.
        #[arg(long, default_value_t = 5)]
        reps: usize,
        /// Also time the minibatch gradients on this many samples (data-sum problems).
        #[arg(long)]
        batch: Option<usize>,
    },
    /// Reproduce an experiment of the papers (`quick`, `kappa-sweep`, `singleloop-bounds`,
    /// `galet-example1`, `galet-fig3`, `galet-sensitivity`, `galet-table3`, `galet-table3-mlp`,
    /// `galet-table3-fashion`, `galet-fig5`, `synthetic`, `itd-appendix-d`, `pgdqp-dhc`,
    /// `pgdqp-time`, `f2sa-cleaning`).
    Reproduce(reproduce::ReproduceArgs),
}

/// The flags `run` and `reproduce` share.
#[derive(Debug, Clone, Default, Args)]
pub struct Common {
    /// Output folder (`run`: default `runs/<problem>-<solver>`, or `runs/<problem>` for several
    /// solvers; `reproduce`: default `results/<ID>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Data folder of the hyper-cleaning problems: MNIST's (default: `BILEVEL_DATA_DIR`, then
    /// the shipped test split), or Fashion-MNIST's under `--set dataset=fashion-mnist` (default:
    /// `BILEVEL_FASHION_MNIST_DIR`, then `/usr/share/datasets/fashion-mnist`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Worker threads (default: available cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Hide the progress bars.
    #[arg(long)]
    pub quiet: bool,
}

/// Arguments of `bilevel run`.
#[derive(Debug, Clone, Default, Args)]
pub struct RunArgs {
    /// Problem name (see `bilevel list`).
    #[arg(long)]
    pub problem: Option<String>,
    /// Solver name (see `bilevel list`), or several separated by commas (`bome,v-pbgd`): they
    /// run side by side, each into `<out>/<solver>`, with comparison plots and a summary in
    /// `<out>`.
    #[arg(long)]
    pub solver: Option<String>,
    /// Solver or problem parameter, `key=value` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Seeds: `0..5`, `3` or `1,2,7`.
    #[arg(long)]
    pub seeds: Option<String>,
    /// Iteration cap (default 1000; none under --time-budget).
    #[arg(long)]
    pub iters: Option<u64>,
    /// Wall-time budget per seed, e.g. `250s`, `4m`; without --iters the budget alone stops
    /// each seed.
    #[arg(long)]
    pub time_budget: Option<String>,
    /// Evaluate metrics every this many iterations (default: iters/100, or 100 under a time
    /// budget without --iters); the traces keep these iterations and the last one.
    #[arg(long)]
    pub metrics_every: Option<u64>,
    /// Checkpoint every this many iterations (default: iters/20, or ten times --metrics-every
    /// under a time budget without --iters); metrics are also evaluated at checkpoints.
    #[arg(long)]
    pub checkpoint_every: Option<u64>,
    /// Output folder, data folder, threads and progress.
    #[command(flatten)]
    pub common: Common,
    /// A TOML run file; command-line arguments override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Continue an interrupted run from its checkpoints.
    #[arg(long)]
    pub resume: bool,
    /// Replace a run of another problem or solver in the output folder (only the files that run
    /// wrote are deleted; without this flag such a folder is refused).
    #[arg(long)]
    pub force: bool,
    /// Keep the solver's fixed defaults: do not derive step sizes from the problem's
    /// smoothness constants (see `bilevel list`).
    #[arg(long)]
    pub library_defaults: bool,
    /// Testing aid: stop as if interrupted after this many checkpoints of each seed.
    #[arg(long, hide = true)]
    pub interrupt_after: Option<u64>,
}

/// A TOML run file: the same keys as the `run` arguments (spelled as the flags, `time-budget`,
/// or with underscores, `time_budget`), `set` as a table. `seeds` is a string as on the command
/// line (`"0..5"`), one integer, or a list of integers.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunFile {
    pub(crate) problem: Option<String>,
    pub(crate) solver: Option<String>,
    pub(crate) seeds: Option<toml::Value>,
    pub(crate) iters: Option<u64>,
    #[serde(alias = "time-budget")]
    pub(crate) time_budget: Option<String>,
    #[serde(alias = "metrics-every")]
    pub(crate) metrics_every: Option<u64>,
    #[serde(alias = "checkpoint-every")]
    pub(crate) checkpoint_every: Option<u64>,
    pub(crate) out: Option<PathBuf>,
    #[serde(alias = "data-dir")]
    pub(crate) data_dir: Option<PathBuf>,
    pub(crate) threads: Option<usize>,
    #[serde(alias = "library-defaults")]
    pub(crate) library_defaults: Option<bool>,
    #[serde(default)]
    pub(crate) set: BTreeMap<String, toml::Value>,
}

/// The `seeds` of a run file in the command line's form.
pub(crate) fn file_seeds(v: &toml::Value) -> Result<String, CliError> {
    let bad = || {
        CliError::new(format!(
            "--config: seeds = {v}: expected a string like \"0..5\", an integer, or a list of \
             integers"
        ))
    };
    let int = |x: &toml::Value| x.as_integer().filter(|i| *i >= 0).ok_or_else(bad);
    Ok(match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Array(a) if !a.is_empty() => a
            .iter()
            .map(|x| int(x).map(|i| i.to_string()))
            .collect::<Result<Vec<_>, _>>()?
            .join(","),
        other => int(other)?.to_string(),
    })
}

/// The most seeds one run takes.
pub const MAX_SEEDS: usize = 10_000;

fn too_many(s: &str, n: u64) -> CliError {
    CliError::new(format!(
        "--seeds {s}: {n} seeds; a run takes at most {MAX_SEEDS}"
    ))
}

/// Parse `0..5`, `3` or `1,2,7` (at most [`MAX_SEEDS`] seeds).
///
/// # Errors
/// A message showing the accepted forms, or naming a seed listed twice.
pub fn parse_seeds(s: &str) -> Result<Vec<u64>, CliError> {
    let bad = || {
        CliError::new(format!(
            "--seeds {s}: expected a range `0..5`, one seed `3` or a list `1,2,7`"
        ))
    };
    if let Some((a, b)) = s.split_once("..") {
        let (a, b): (u64, u64) = (
            a.trim().parse().map_err(|_| bad())?,
            b.trim().parse().map_err(|_| bad())?,
        );
        if b <= a {
            return Err(bad());
        }
        if b - a > MAX_SEEDS as u64 {
            return Err(too_many(s, b - a));
        }
        return Ok((a..b).collect());
    }
    let seeds: Vec<u64> = s
        .split(',')
        .map(|t| t.trim().parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    if seeds.len() > MAX_SEEDS {
        return Err(too_many(s, seeds.len() as u64));
    }
    // Two workers on one seed would write the same files.
    if let Some(d) = (1..seeds.len()).find(|&i| seeds[..i].contains(&seeds[i])) {
        return Err(CliError::new(format!(
            "--seeds {s}: seed {} appears twice",
            seeds[d]
        )));
    }
    Ok(seeds)
}

/// Parse `250s`, `4m`, `1h` or a bare number of seconds.
///
/// # Errors
/// A message showing the accepted forms.
pub fn parse_duration(s: &str) -> Result<f64, CliError> {
    let t = s.trim();
    let (num, mult) = match t.chars().last() {
        Some('s') => (&t[..t.len() - 1], 1.0),
        Some('m') => (&t[..t.len() - 1], 60.0),
        Some('h') => (&t[..t.len() - 1], 3600.0),
        _ => (t, 1.0),
    };
    num.parse::<f64>()
        .ok()
        .filter(|v| *v > 0.0 && v.is_finite())
        .map(|v| v * mult)
        .ok_or_else(|| {
            CliError::new(format!(
                "--time-budget {s}: expected a positive duration like `250s`, `4m` or `1h`"
            ))
        })
}

/// Split `key=value`.
pub(crate) fn split_set(s: &str) -> Result<(String, String), CliError> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| CliError::new(format!("--set {s}: expected key=value")))
}

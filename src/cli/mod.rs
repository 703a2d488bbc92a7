//! The `bilevel` program: list problems and solvers, run them over seeds, plot traces, time
//! oracles and reproduce the papers' experiments.
//!
//! Every function the program calls is public here, so tests can drive it without a process.

pub mod oracles;
pub mod plot;
pub mod registry;
pub mod reproduce;
pub mod run;
pub mod text;

use crate::solvers;
use clap::{Args, Parser, Subcommand};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// An error a person can act on: the message says what was wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError(pub String);

impl CliError {
    /// An error with `msg`.
    pub fn new(msg: impl Into<String>) -> Self {
        CliError(msg.into())
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CliError {}

/// Write `text` to `path` through a temporary sibling and a rename.
///
/// # Errors
/// I/O, naming the path.
pub fn write_atomic(path: &Path, text: &str) -> Result<(), CliError> {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| CliError::new(format!("writing {}: {e}", path.display())))
}

/// Gradient-based bilevel optimization: run solvers on problems, plot and reproduce papers.
#[derive(Debug, Parser)]
#[command(name = "bilevel", version, about)]
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
        /// MNIST folder.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Repetitions per oracle.
        #[arg(long, default_value_t = 5)]
        reps: usize,
        /// Also time the minibatch gradients on this many samples (data-sum problems).
        #[arg(long)]
        batch: Option<usize>,
    },
    /// Reproduce an experiment of the papers (`quick`, `kappa-sweep`, `galet-example1`,
    /// `galet-sensitivity`, `galet-table3`, `galet-table3-mlp`, `synthetic`, `itd-appendix-d`,
    /// `pgdqp-dhc`, `pgdqp-time`).
    Reproduce(reproduce::ReproduceArgs),
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
    /// under a time budget without --iters); the hyper-cleaning metrics are taken at
    /// checkpoints.
    #[arg(long)]
    pub checkpoint_every: Option<u64>,
    /// Output folder (default `runs/<problem>-<solver>`, or `runs/<problem>` for several
    /// solvers).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// MNIST folder (default: `BILEVEL_DATA_DIR`, then the shipped test split).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Worker threads (default: available cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// A TOML run file; command-line arguments override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Continue an interrupted run from its checkpoints.
    #[arg(long)]
    pub resume: bool,
    /// Hide the progress bar.
    #[arg(long)]
    pub quiet: bool,
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
    problem: Option<String>,
    solver: Option<String>,
    seeds: Option<toml::Value>,
    iters: Option<u64>,
    #[serde(alias = "time-budget")]
    time_budget: Option<String>,
    #[serde(alias = "metrics-every")]
    metrics_every: Option<u64>,
    #[serde(alias = "checkpoint-every")]
    checkpoint_every: Option<u64>,
    out: Option<PathBuf>,
    #[serde(alias = "data-dir")]
    data_dir: Option<PathBuf>,
    threads: Option<usize>,
    #[serde(alias = "library-defaults")]
    library_defaults: Option<bool>,
    #[serde(default)]
    set: BTreeMap<String, toml::Value>,
}

/// The `seeds` of a run file in the command line's form.
fn file_seeds(v: &toml::Value) -> Result<String, CliError> {
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

/// The default metric spacing of a run that only a time budget stops.
const UNCAPPED_METRICS_EVERY: u64 = 100;

/// Parse `0..5`, `3` or `1,2,7`.
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
        return Ok((a..b).collect());
    }
    let seeds: Vec<u64> = s
        .split(',')
        .map(|t| t.trim().parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
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
fn split_set(s: &str) -> Result<(String, String), CliError> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| CliError::new(format!("--set {s}: expected key=value")))
}

/// Resolve `run` arguments (with the run file) into a spec, its folder and execution options.
///
/// # Errors
/// Unknown names (with suggestions), bad values (naming the key and its allowed range), or more
/// than one solver (see [`resolve_runs`]).
pub fn resolve_run(args: &RunArgs) -> Result<(run::Run, run::Exec), CliError> {
    let (mut runs, exec) = resolve_runs(args)?;
    if runs.len() != 1 {
        return Err(CliError::new(format!(
            "--solver: expected one solver here, got {}",
            runs.len()
        )));
    }
    Ok((runs.remove(0), exec))
}

/// Resolve `run` arguments (with the run file) into one spec and folder per solver, and the
/// execution options. `--solver a,b` names several solvers: each runs on the same problem and
/// seeds into `<out>/<solver>` (`<out>` defaulting to `runs/<problem>`); one solver runs into
/// `<out>` itself (default `runs/<problem>-<solver>`). A `--set` key goes to the problem when
/// it is a problem parameter, else to every solver that has it, and must belong to one of them.
///
/// # Errors
/// Unknown names (with suggestions), bad values (naming the key and its allowed range).
pub fn resolve_runs(args: &RunArgs) -> Result<(Vec<run::Run>, run::Exec), CliError> {
    let file: RunFile = match &args.config {
        Some(p) => toml::from_str(
            &std::fs::read_to_string(p)
                .map_err(|e| CliError::new(format!("--config {}: {e}", p.display())))?,
        )
        .map_err(|e| CliError::new(format!("--config {}: {e}", p.display())))?,
        None => RunFile::default(),
    };
    let problem = args
        .problem
        .clone()
        .or(file.problem)
        .ok_or_else(|| CliError::new("--problem is required (see `bilevel list`)"))?;
    let solver_arg = args
        .solver
        .clone()
        .or(file.solver)
        .ok_or_else(|| CliError::new("--solver is required (see `bilevel list`)"))?;
    let solvers: Vec<String> = solver_arg
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    if solvers.iter().any(String::is_empty) {
        return Err(CliError::new(format!(
            "--solver {solver_arg}: expected a name or a comma-separated list of names"
        )));
    }
    if let Some(i) = (1..solvers.len()).find(|&i| solvers[..i].contains(&solvers[i])) {
        return Err(CliError::new(format!(
            "--solver {solver_arg}: {} appears twice",
            solvers[i]
        )));
    }
    let pspec = registry::problem_spec(&problem)?;
    let mut params = Vec::new();
    for solver in &solvers {
        let d = solvers::registry::solver(solver)
            .map_err(registry::explain)?
            .defaults();
        let keys = d.keys();
        params.push((d, keys, Vec::<String>::new()));
    }
    let mut sets: Vec<(String, String)> = file
        .set
        .iter()
        .map(|(k, v)| {
            let text = match v {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), text)
        })
        .collect();
    for s in &args.set {
        sets.push(split_set(s)?);
    }
    let mut problem_sets = BTreeMap::new();
    for (k, v) in sets {
        if pspec.params.iter().any(|p| p.key == k) {
            problem_sets.insert(k, v);
            continue;
        }
        let mut taken = false;
        for (solver_params, keys, explicit) in &mut params {
            if keys.contains(&k) {
                solver_params.set(&k, &v).map_err(registry::explain)?;
                explicit.push(k.clone());
                taken = true;
            }
        }
        if !taken {
            let all = pspec.params.iter().map(|p| p.key).chain(
                params
                    .iter()
                    .flat_map(|(_, keys, _)| keys.iter().map(String::as_str)),
            );
            return Err(registry::unknown_in(
                "--set key",
                &k,
                &format!(" for solver {solver_arg} on problem {problem}"),
                all,
            ));
        }
    }
    let problem_params = registry::problem_params(pspec, &problem_sets)?;
    let file_seeds = file.seeds.as_ref().map(file_seeds).transpose()?;
    let seeds = parse_seeds(
        args.seeds
            .as_deref()
            .or(file_seeds.as_deref())
            .unwrap_or("0"),
    )?;
    let time_budget_s = args
        .time_budget
        .as_deref()
        .or(file.time_budget.as_deref())
        .map(parse_duration)
        .transpose()?;
    // A time budget without --iters stops on time alone.
    let iters = match (args.iters.or(file.iters), time_budget_s) {
        (Some(k), _) => k,
        (None, Some(_)) => run::UNCAPPED,
        (None, None) => 1000,
    };
    if iters == 0 {
        return Err(CliError::new("--iters must be >= 1"));
    }
    let metrics_every =
        args.metrics_every
            .or(file.metrics_every)
            .unwrap_or(if iters == run::UNCAPPED {
                UNCAPPED_METRICS_EVERY
            } else {
                (iters / 100).max(1)
            });
    if metrics_every == 0 {
        return Err(CliError::new("--metrics-every must be >= 1"));
    }
    // Without a cap a twentieth of it is no spacing: checkpoint (and take the hyper-cleaning
    // metrics, which come with checkpoints) every tenth metric row. Each checkpoint rewrites the
    // seed's records, so much closer spacing would make the run quadratic in its length.
    let checkpoint_every =
        args.checkpoint_every
            .or(file.checkpoint_every)
            .unwrap_or(if iters == run::UNCAPPED {
                metrics_every.saturating_mul(10)
            } else {
                (iters / 20).max(1)
            });
    if checkpoint_every == 0 {
        return Err(CliError::new("--checkpoint-every must be >= 1"));
    }
    // Step sizes from the problem's smoothness constants, where the user set none.
    let constants = if args.library_defaults || file.library_defaults == Some(true) {
        None
    } else {
        registry::problem_smoothness(&problem, &problem_params, &seeds)?
    };
    let out = args.out.clone().or(file.out);
    let data_dir = args.data_dir.clone().or(file.data_dir);
    let several = solvers.len() > 1;
    let mut runs = Vec::new();
    for (solver, (mut solver_params, _, explicit)) in solvers.into_iter().zip(params) {
        let derived = match &constants {
            Some(c) => {
                let cap = (iters != run::UNCAPPED).then_some(iters);
                solver_params.derive(c, cap, &explicit)
            }
            None => Vec::new(),
        };
        // Validate the solver's ranges now, naming the key.
        solver_params.build().map_err(registry::explain)?;
        let dir = match (&out, several) {
            (Some(o), false) => o.clone(),
            (Some(o), true) => o.join(&solver),
            (None, false) => PathBuf::from(format!("runs/{problem}-{solver}")),
            (None, true) => PathBuf::from(format!("runs/{problem}/{solver}")),
        };
        runs.push(run::Run {
            spec: run::RunSpec {
                problem: problem.clone(),
                solver,
                problem_params: problem_params.clone(),
                solver_params: solver_params.to_json(),
                derived,
                seeds: seeds.clone(),
                iters,
                time_budget_s,
                metrics_every,
                checkpoint_every,
                data_dir: data_dir.clone(),
            },
            params: solver_params,
            dir,
        });
    }
    let exec = run::Exec {
        threads: args
            .threads
            .or(file.threads)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        progress: !args.quiet,
        resume: args.resume,
        interrupt_after: args.interrupt_after,
        no_plots: false,
        observer: None,
    };
    Ok((runs, exec))
}

/// The text of `bilevel list`.
pub fn list_text() -> String {
    let mut s = String::from(
        "PROBLEMS (--problem NAME, --set KEY=VALUE; `constants` are the smoothness bounds a \
         problem states)\n",
    );
    for p in registry::PROBLEMS {
        s += &format!("  {:<18} {}\n", p.name, p.about);
        for q in p.params {
            s += &format!("      {:<12} = {:<8} {}\n", q.key, q.default, q.help);
        }
        let c = registry::problem_params(p, &BTreeMap::new())
            .and_then(|m| registry::problem_smoothness(p.name, &m, &[0]));
        if let Ok(Some(c)) = c {
            s += &format!("      constants (seed 0): {}\n", text::constants_text(&c));
        }
    }
    s += "\nSOLVERS (--solver NAME, --set KEY=VALUE; dotted keys reach nested fields)\n\
          A key marked `from the problem` takes the value of its rule instead of the number \
          shown when the problem states the constants the rule needs and the key is not set; \
          --library-defaults keeps the numbers shown.\n";
    for sv in solvers::registry::SOLVERS {
        s += &format!("  {:<18} {}\n", sv.name, sv.summary);
        let d = sv.defaults();
        let rules = d.rules();
        for (k, v) in solvers::registry::flatten(&d.to_json()) {
            if k == "batch" && v.is_null() {
                for (bk, help) in solvers::registry::BATCH_KEYS {
                    let def = if bk == "batch" { "none" } else { "" };
                    s += &format!("      {bk:<22} = {def:<6} {help}\n");
                }
                continue;
            }
            s += &format!("      {k:<22} = {v}\n");
            if let Some((_, text)) = rules.iter().find(|(key, _)| *key == k) {
                s += &format!("          from the problem: {text}\n");
            }
        }
    }
    s
}

/// Run the program on `args` (without the program name), printing to stdout. Returns the exit
/// code: 0 on success, 130 when interrupted.
///
/// # Errors
/// Any [`CliError`].
pub fn run_cli(cli: Cli) -> Result<i32, CliError> {
    match cli.command {
        Command::List => {
            print!("{}", list_text());
            Ok(0)
        }
        Command::Run(args) => {
            let (runs, exec) = resolve_runs(&args)?;
            // One solver reports in its folder, several in the folder above theirs.
            let out = match &runs[..] {
                [one] => one.dir.clone(),
                more => more[0]
                    .dir
                    .parent()
                    .map_or_else(PathBuf::new, Path::to_path_buf),
            };
            match run::run_many(&runs, &exec)? {
                run::Outcome::Complete => {
                    println!(
                        "{}",
                        std::fs::read_to_string(out.join("summary.md")).unwrap_or_default()
                    );
                    println!("wrote traces, summary and plots to {}", out.display());
                    Ok(0)
                }
                run::Outcome::Interrupted => {
                    eprintln!(
                        "stopped; checkpoints are in {}. Continue with the same command and --resume.",
                        out.display()
                    );
                    Ok(130)
                }
            }
        }
        Command::Plot { dir } => {
            for p in run::plot_any(&dir)? {
                println!("{}", p.display());
            }
            Ok(0)
        }
        Command::Oracles {
            problem,
            set,
            data_dir,
            reps,
            batch,
        } => {
            let sets = set
                .iter()
                .map(|s| split_set(s))
                .collect::<Result<BTreeMap<_, _>, _>>()?;
            print!(
                "{}",
                oracles::oracle_table(&problem, &sets, data_dir.as_deref(), reps, batch)?
            );
            Ok(0)
        }
        Command::Reproduce(args) => reproduce::reproduce(&args),
    }
}

/// The program's entry point: parse arguments, install the Ctrl-C handler, run.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let _ = ctrlc::set_handler(|| {
        if run::STOP.requested() {
            std::process::exit(130);
        }
        run::STOP.request();
        eprintln!("\nstopping after the current iteration (Ctrl-C again to quit at once)...");
    });
    match run_cli(cli) {
        Ok(code) => std::process::ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

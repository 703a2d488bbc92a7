//! `bilevel run`: every (solver, seed) pair a job of one thread pool, each driven by one
//! `solvers::Runner` that checkpoints into the run folder, so a stopped run leaves only complete
//! files and `--resume` continues it bit-identically.

use super::plot::{Series, Table, band, draw, quantile};
use super::registry::{DataCache, ProblemParams, build_problem, explain};
use super::text::fmt;
use super::{CliError, write_atomic};
use crate::solvers::observe::{CsvWriter, JsonlWriter, Observe};
use crate::solvers::registry::Params;
use crate::solvers::{
    Checkpoint, Derived, Iterate, Keep, Problem, Record, RunConfig, RunInfo, Runner, Status, Stop,
};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

/// The iteration cap of a run that only its time budget stops (`--time-budget` without
/// `--iters`).
pub const UNCAPPED: u64 = u64::MAX;

/// Set by Ctrl-C: every run stops before its next iteration, keeping a checkpoint of where it
/// stopped.
pub static STOP: LazyLock<Stop> = LazyLock::new(Stop::new);

/// Everything that determines a run (saved as `run.json` in its folder).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    /// Problem name.
    pub problem: String,
    /// Solver name.
    pub solver: String,
    /// Problem parameters, all keys.
    pub problem_params: ProblemParams,
    /// Solver parameters, all fields.
    pub solver_params: Value,
    /// The parameters among them whose defaults came from the problem's smoothness constants.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub derived: Vec<Derived>,
    /// Seeds.
    pub seeds: Vec<u64>,
    /// Iteration cap ([`UNCAPPED`] when only the time budget stops the run).
    pub iters: u64,
    /// Wall-time budget per seed, in seconds.
    pub time_budget_s: Option<f64>,
    /// Metrics every this many iterations.
    pub metrics_every: u64,
    /// Checkpoint every this many iterations.
    pub checkpoint_every: u64,
    /// Data folder.
    pub data_dir: Option<PathBuf>,
}

/// One solver's run as the arguments resolve it: what it records, its typed parameters (parsed
/// once, from which each seed's solver is built) and its folder.
#[derive(Clone, Debug)]
pub struct Run {
    /// The run's identity (`run.json`).
    pub spec: RunSpec,
    /// The solver's parameters (the same as `spec.solver_params`).
    pub params: Box<dyn Params>,
    /// The run folder.
    pub dir: PathBuf,
}

/// A seed's progress: its last checkpoint and the records to be written up to it (those with
/// metrics), saved in `seed<s>.state.json` at every checkpoint.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct SeedState {
    checkpoint: Option<Checkpoint>,
    records: Vec<Record>,
}

/// How a call to [`run`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every seed finished; traces, summary and plots are written.
    Complete,
    /// Stopped (Ctrl-C); checkpoints are saved, `--resume` continues.
    Interrupted,
}

/// Builds one more observer for the job of a seed (the reproductions use it to follow iterates).
pub type ObserverFactory = Arc<dyn Fn(u64) -> Box<dyn Observe> + Send + Sync>;

/// Options of one call that are not part of the run's identity.
#[derive(Clone, Default)]
pub struct Exec {
    /// Worker threads.
    pub threads: usize,
    /// Show a progress bar.
    pub progress: bool,
    /// Continue from the checkpoints in the folder.
    pub resume: bool,
    /// Testing aid: behave as if Ctrl-C came after this many checkpoints of each seed.
    pub interrupt_after: Option<u64>,
    /// Skip the per-run plots (the reproductions draw their own).
    pub no_plots: bool,
    /// One more observer per seed.
    pub observer: Option<ObserverFactory>,
}

impl std::fmt::Debug for Exec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exec")
            .field("threads", &self.threads)
            .field("progress", &self.progress)
            .field("resume", &self.resume)
            .field("interrupt_after", &self.interrupt_after)
            .field("no_plots", &self.no_plots)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

fn state_path(dir: &Path, seed: u64) -> PathBuf {
    dir.join(format!("seed{seed}.state.json"))
}

/// Run `run` into its folder.
///
/// # Errors
/// Bad parameters, missing data, I/O.
pub fn run(run: &Run, exec: &Exec) -> Result<Outcome, CliError> {
    run_many(std::slice::from_ref(run), exec)
}

/// Run several specs, each into its folder, with every (spec, seed) pair a job of one thread
/// pool: the solvers of `bilevel run --solver a,b` run side by side as well as their seeds. The
/// specs share the problem and seeds, so each seed's problem (and its data) is built once. With
/// more than one spec the parent folder of the first also gets comparison plots and a summary
/// (see [`compare_dir`]).
///
/// # Errors
/// Bad parameters, missing data, I/O.
pub fn run_many(runs: &[Run], exec: &Exec) -> Result<Outcome, CliError> {
    let Some(first) = runs.first().map(|r| &r.spec) else {
        return Ok(Outcome::Complete);
    };
    if let Some(other) = runs.iter().map(|r| &r.spec).find(|s| {
        s.problem != first.problem
            || s.problem_params != first.problem_params
            || s.seeds != first.seeds
            || s.data_dir != first.data_dir
    }) {
        return Err(CliError::new(format!(
            "run_many: solver {} runs another problem or other seeds than solver {}",
            other.solver, first.solver
        )));
    }
    for r in runs {
        if exec.resume {
            check_resume(&r.spec, &r.dir)?;
        }
        // Fail on bad solver parameters before loading any data.
        r.params.build().map_err(explain)?;
    }
    let mut data = DataCache::new(first.data_dir.as_deref());
    let mut built = Vec::new();
    for &seed in &first.seeds {
        built.push(build_problem(
            &first.problem,
            &first.problem_params,
            seed,
            &mut data,
        )?);
    }
    // Only now, with the problems built, touch the output folders.
    for Run { spec, dir, .. } in runs {
        std::fs::create_dir_all(dir)
            .map_err(|e| CliError::new(format!("creating {}: {e}", dir.display())))?;
        if !exec.resume {
            clear_outputs(dir)?;
        }
        write_atomic(
            &dir.join("run.json"),
            &serde_json::to_string_pretty(spec).expect("spec serializes"),
        )?;
    }
    let bar = progress_bar(runs, exec);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(exec.threads.max(1))
        .build()
        .map_err(|e| CliError::new(format!("thread pool: {e}")))?;
    // Jobs in (spec, seed) order; each job is independent, so the order does not change a trace.
    let jobs: Vec<(&Run, u64, &Arc<dyn Problem>)> = runs
        .iter()
        .flat_map(|r| {
            r.spec
                .seeds
                .iter()
                .zip(&built)
                .map(move |(&seed, b)| (r, seed, b))
        })
        .collect();
    let results: Vec<Result<bool, CliError>> = pool.install(|| {
        use rayon::prelude::*;
        jobs.par_iter()
            .map(|&(r, seed, b)| run_seed(r, seed, b, exec, &bar))
            .collect()
    });
    bar.finish_and_clear();
    let mut all_done = true;
    for r in results {
        all_done &= r?;
    }
    if !all_done {
        return Ok(Outcome::Interrupted);
    }
    for r in runs {
        summarize(&r.dir)?;
        if !exec.no_plots {
            plot_dir(&r.dir)?;
        }
    }
    if runs.len() > 1 {
        if let Some(parent) = runs[0].dir.parent() {
            compare_dir(parent)?;
        }
    }
    Ok(Outcome::Complete)
}

/// The progress bar of a call: iterations against the total, or a spinner for runs that only a
/// time budget stops.
fn progress_bar(runs: &[Run], exec: &Exec) -> ProgressBar {
    if !exec.progress {
        return ProgressBar::hidden();
    }
    let first = &runs[0].spec;
    let (b, template) = if first.iters == UNCAPPED {
        (
            ProgressBar::new_spinner(),
            "{spinner} {msg} [{elapsed_precise}] {pos} it ({per_sec})",
        )
    } else {
        let total = runs.iter().fold(0u64, |t, r| {
            t.saturating_add(r.spec.iters.saturating_mul(r.spec.seeds.len() as u64))
        });
        (
            ProgressBar::new(total),
            "{spinner} {msg} [{elapsed_precise}] {wide_bar} {pos}/{len} it (eta {eta})",
        )
    };
    b.set_style(ProgressStyle::with_template(template).expect("template"));
    let names: Vec<&str> = runs.iter().map(|r| r.spec.solver.as_str()).collect();
    b.set_message(format!("{} on {}", names.join(", "), first.problem));
    b
}

/// With `--resume`, the folder must hold a run started with the same settings.
fn check_resume(spec: &RunSpec, dir: &Path) -> Result<(), CliError> {
    let spec_path = dir.join("run.json");
    let saved: RunSpec =
        serde_json::from_str(&std::fs::read_to_string(&spec_path).map_err(|e| {
            CliError::new(format!(
                "--resume: no run to resume in {} ({e})",
                dir.display()
            ))
        })?)
        .map_err(|e| CliError::new(format!("{}: {e}", spec_path.display())))?;
    if &saved != spec {
        return Err(CliError::new(format!(
            "--resume: the run in {} was started with other settings; use the same arguments, or another --out",
            dir.display()
        )));
    }
    Ok(())
}

/// What the observer of a seed's run keeps, shared with the job that reads it afterwards.
#[derive(Debug, Default)]
struct Log {
    state: SeedState,
    /// The last record if it carries no metrics (the end of a diverged run).
    last: Option<Record>,
}

/// The observer of one seed: keeps the records with metrics (and the last), saves the seed's
/// state at every checkpoint and moves the progress bar.
struct SeedLog {
    log: Arc<Mutex<Log>>,
    state_path: PathBuf,
    bar: ProgressBar,
    interrupt_after: Option<u64>,
    checkpoints: u64,
    stop: Stop,
}

impl std::fmt::Debug for SeedLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeedLog")
            .field("state_path", &self.state_path)
            .finish()
    }
}

impl Observe for SeedLog {
    fn on_record(&mut self, rec: &Record, _it: &Iterate) -> io::Result<()> {
        if rec.iter > 0 {
            self.bar.inc(1);
        }
        let mut log = self.log.lock().expect("log");
        if rec.metrics.is_some() {
            log.state.records.push(rec.clone());
            log.last = None;
        } else {
            log.last = Some(rec.clone());
        }
        Ok(())
    }

    fn on_checkpoint(&mut self, ck: &Checkpoint) -> io::Result<()> {
        let mut log = self.log.lock().expect("log");
        log.state.checkpoint = Some(ck.clone());
        // A checkpoint where a stop came can follow a record without metrics, which the
        // continued run does not repeat: keep it.
        if let Some(r) = log.last.take() {
            log.state.records.push(r);
        }
        let text = serde_json::to_string(&log.state).map_err(io::Error::other)?;
        crate::solvers::atomic::write(&self.state_path, text)?;
        drop(log);
        self.checkpoints += 1;
        if self.interrupt_after.is_some_and(|n| self.checkpoints >= n) {
            self.stop.request();
        }
        Ok(())
    }
}

/// Drive one seed; `Ok(false)` if it was stopped before finishing.
fn run_seed(
    run: &Run,
    seed: u64,
    problem: &Arc<dyn Problem>,
    exec: &Exec,
    bar: &ProgressBar,
) -> Result<bool, CliError> {
    let (spec, dir) = (&run.spec, run.dir.as_path());
    let sp = state_path(dir, seed);
    if exec.resume && !sp.exists() && dir.join(format!("seed{seed}.csv")).exists() {
        // Finished before the interruption.
        if spec.iters != UNCAPPED {
            bar.inc(spec.iters);
        }
        return Ok(true);
    }
    let state: SeedState = if exec.resume && sp.exists() {
        serde_json::from_str(
            &std::fs::read_to_string(&sp)
                .map_err(|e| CliError::new(format!("{}: {e}", sp.display())))?,
        )
        .map_err(|e| CliError::new(format!("{}: {e}", sp.display())))?
    } else {
        SeedState::default()
    };
    let problem: &dyn Problem = &**problem;
    if let Some(ck) = &state.checkpoint {
        bar.inc(ck.iter);
    }
    let cfg = RunConfig {
        max_iter: spec.iters,
        time_budget: spec.time_budget_s.map(Duration::from_secs_f64),
        metrics_every: spec.metrics_every.max(1),
        checkpoint_every: Some(spec.checkpoint_every.max(1)),
        keep: Keep::Metrics,
        ..RunConfig::default()
    };
    let mut solver = run.params.for_seed(seed).build().map_err(explain)?;
    let checkpoint = state.checkpoint.clone();
    let log = Arc::new(Mutex::new(Log { state, last: None }));
    let stop = STOP.child();
    let observer = SeedLog {
        log: log.clone(),
        state_path: sp.clone(),
        bar: bar.clone(),
        interrupt_after: exec.interrupt_after,
        checkpoints: 0,
        stop: stop.clone(),
    };
    let mut runner = Runner::new(cfg)
        .map_err(|e| CliError::new(e.to_string()))?
        .with_stop(stop)
        .observe(observer);
    if let Some(make) = &exec.observer {
        runner = runner.observe_boxed(make(seed));
    }
    let r = match &checkpoint {
        None => runner.run(problem, &mut *solver),
        Some(ck) => runner.resume(problem, &mut *solver, ck),
    }
    .map_err(|e| CliError::new(format!("seed {seed}: {e}")))?;
    if r.status == Status::Stopped {
        return Ok(false);
    }
    let mut log = std::mem::take(&mut *log.lock().expect("log"));
    if let Some(last) = log.last.take() {
        log.state.records.push(last);
    }
    write_traces(spec, dir, seed, problem, &log.state, &r.status)?;
    if sp.exists() {
        std::fs::remove_file(&sp)
            .map_err(|e| CliError::new(format!("removing {}: {e}", sp.display())))?;
    }
    Ok(true)
}

/// Remove the files an earlier run left in `dir` (traces, states, summaries, plots).
fn clear_outputs(dir: &Path) -> Result<(), CliError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| CliError::new(format!("reading {}: {e}", dir.display())))?;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let ours = (name.starts_with("seed")
            && [".csv", ".jsonl", ".json"]
                .iter()
                .any(|x| name.ends_with(x)))
            || (name.starts_with("plot_") && name.ends_with(".svg"))
            || name == "summary.csv"
            || name == "summary.md";
        if ours {
            std::fs::remove_file(e.path())
                .map_err(|err| CliError::new(format!("removing {}: {err}", e.path().display())))?;
        }
    }
    Ok(())
}

fn write_traces(
    spec: &RunSpec,
    dir: &Path,
    seed: u64,
    problem: &dyn Problem,
    st: &SeedState,
    status: &Status,
) -> Result<(), CliError> {
    let info = RunInfo {
        problem: problem.name(),
        solver: spec.solver.clone(),
        dim_x: problem.dim_x(),
        dim_y: problem.dim_y(),
    };
    let io = |e: io::Error| CliError::new(format!("writing traces in {}: {e}", dir.display()));
    CsvWriter::write_records(
        &dir.join(format!("seed{seed}.csv")),
        &info,
        &st.records,
        status,
    )
    .map_err(io)?;
    JsonlWriter::write_records(
        &dir.join(format!("seed{seed}.jsonl")),
        &info,
        &st.records,
        status,
    )
    .map_err(io)?;
    Ok(())
}

/// How seed `seed` of the run in `dir` ended: the status line that closes its JSON Lines trace.
pub fn seed_status(dir: &Path, seed: u64) -> Option<Status> {
    #[derive(Deserialize)]
    struct Line {
        status: Status,
    }
    let text = std::fs::read_to_string(dir.join(format!("seed{seed}.jsonl"))).ok()?;
    serde_json::from_str::<Line>(text.lines().last()?)
        .ok()
        .map(|l| l.status)
}

/// The seeds with a finished trace in `dir`, in order.
pub fn seeds_in(dir: &Path) -> Result<Vec<u64>, CliError> {
    let mut seeds: Vec<u64> = std::fs::read_dir(dir)
        .map_err(|e| CliError::new(format!("reading {}: {e}", dir.display())))?
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().into_owned();
            name.strip_prefix("seed")?
                .strip_suffix(".csv")?
                .parse()
                .ok()
        })
        .collect();
    seeds.sort_unstable();
    Ok(seeds)
}

/// The trace of seed `seed` in `dir` as a table: `seed<s>.csv`, joined by iteration with the
/// columns of a `seed<s>.extras.csv`, where the data hyper-cleaning metrics of runs made before
/// they moved into the trace live (at checkpoints).
///
/// # Errors
/// A trace that cannot be read.
pub fn trace_table(dir: &Path, seed: u64) -> Result<Table, CliError> {
    let mut t = Table::read(&dir.join(format!("seed{seed}.csv")))?;
    let legacy = dir.join(format!("seed{seed}.extras.csv"));
    if legacy.is_file() {
        t.join(&Table::read(&legacy)?, "iter");
    }
    Ok(t)
}

/// Columns summarized when present: trace columns, then hyper-cleaning columns.
pub const SUMMARY_TRACE: [&str; 11] = [
    "iter",
    "gc",
    "mv",
    "elapsed_s",
    "f",
    "g",
    "h",
    "grad_phi_norm",
    "kkt",
    "vf_kkt",
    "opt_gap",
];
/// Hyper-cleaning columns.
pub const SUMMARY_EXTRA: [&str; 5] = ["val_loss", "test_acc", "precision", "recall", "f1"];

/// Mean, standard deviation, median and 20/80 % quantiles.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    /// Number of values.
    pub n: usize,
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (0 for one value).
    pub std: f64,
    /// Median.
    pub median: f64,
    /// 20 % quantile.
    pub q20: f64,
    /// 80 % quantile.
    pub q80: f64,
}

impl Stats {
    /// Statistics of `v` (`None` if empty).
    pub fn of(v: &[f64]) -> Option<Self> {
        if v.is_empty() {
            return None;
        }
        let n = v.len();
        let mean = v.iter().sum::<f64>() / n as f64;
        let var = if n > 1 {
            v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64
        } else {
            0.0
        };
        Some(Stats {
            n,
            mean,
            std: var.sqrt(),
            median: quantile(v, 0.5),
            q20: quantile(v, 0.2),
            q80: quantile(v, 0.8),
        })
    }
}

/// The final value of each summarized column per seed, then statistics over seeds.
pub fn final_stats(dir: &Path) -> Result<Vec<(String, Stats)>, CliError> {
    let seeds = seeds_in(dir)?;
    let mut out = Vec::new();
    let traces: Vec<Table> = seeds
        .iter()
        .map(|&s| trace_table(dir, s))
        .collect::<Result<_, _>>()?;
    for c in SUMMARY_TRACE.iter().chain(&SUMMARY_EXTRA) {
        let v: Vec<f64> = traces.iter().filter_map(|t| t.last(c)).collect();
        if let Some(s) = Stats::of(&v) {
            out.push((c.to_string(), s));
        }
    }
    Ok(out)
}

/// Write `summary.csv` and `summary.md` for the traces in `dir`.
///
/// # Errors
/// I/O.
pub fn summarize(dir: &Path) -> Result<(), CliError> {
    let stats = final_stats(dir)?;
    let mut csv = String::from("metric,n,mean,std,median,q20,q80\n");
    let mut md = String::from(
        "| final value | mean ± std | median [20 %, 80 %] | seeds |\n|---|---|---|---|\n",
    );
    for (k, s) in &stats {
        csv += &format!(
            "{k},{},{:e},{:e},{:e},{:e},{:e}\n",
            s.n, s.mean, s.std, s.median, s.q20, s.q80
        );
        md += &format!(
            "| {k} | {} ± {} | {} [{}, {}] | {} |\n",
            fmt(s.mean),
            fmt(s.std),
            fmt(s.median),
            fmt(s.q20),
            fmt(s.q80),
            s.n
        );
    }
    let mut statuses = String::new();
    for s in seeds_in(dir)? {
        let p = dir.join(format!("seed{s}.jsonl"));
        let last = std::fs::read_to_string(&p)
            .ok()
            .and_then(|t| t.lines().last().map(str::to_string))
            .unwrap_or_default();
        statuses += &format!("- seed {s}: {last}\n");
    }
    let spec = std::fs::read_to_string(dir.join("run.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<RunSpec>(&t).ok());
    let title = spec
        .as_ref()
        .map(|s| format!("# {} on {}\n\n", s.solver, s.problem))
        .unwrap_or_default();
    let derived = spec
        .as_ref()
        .filter(|s| !s.derived.is_empty())
        .map(|s| {
            let mut t =
                String::from("\nDefaults from the problem's smoothness constants (not --set):\n\n");
            for d in &s.derived {
                t += &format!("- {} = {}: {}\n", d.key, fmt(d.value), d.rule);
            }
            t
        })
        .unwrap_or_default();
    write_atomic(&dir.join("summary.csv"), &csv)?;
    write_atomic(
        &dir.join("summary.md"),
        &format!("{title}{md}\nStatus per seed:\n\n{statuses}{derived}"),
    )
}

/// The traces of column `col` (against the iteration) of every finished seed in `dir`; empty
/// traces where a seed lacks the column.
pub fn traces_of(dir: &Path, col: &str) -> Result<Vec<Vec<(f64, f64)>>, CliError> {
    seeds_in(dir)?
        .into_iter()
        .map(|s| Ok(trace_table(dir, s)?.pairs("iter", col)))
        .collect()
}

/// Every plotted column.
fn plotted_columns() -> impl Iterator<Item = &'static str> {
    SUMMARY_TRACE[4..].iter().chain(&SUMMARY_EXTRA).copied()
}

/// Columns drawn on a linear axis: losses, accuracies and cleaning scores.
fn linear_axis(col: &str) -> bool {
    matches!(
        col,
        "f" | "g" | "val_loss" | "test_acc" | "precision" | "recall" | "f1"
    )
}

/// Redraw the plots of `dir` from its traces: one SVG per metric present, median over seeds
/// with a 20–80 % band, against iterations.
///
/// # Errors
/// I/O, or no traces in `dir`.
pub fn plot_dir(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    let seeds = seeds_in(dir)?;
    if seeds.is_empty() {
        return Err(CliError::new(format!(
            "no traces (seed*.csv) in {}",
            dir.display()
        )));
    }
    let name = std::fs::read_to_string(dir.join("run.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<RunSpec>(&t).ok())
        .map(|s| format!("{} on {}", s.solver, s.problem))
        .unwrap_or_else(|| dir.display().to_string());
    let mut written = Vec::new();
    for c in plotted_columns() {
        let traces = traces_of(dir, c)?;
        if traces.iter().all(Vec::is_empty) {
            continue;
        }
        let log = !linear_axis(c) && traces.iter().flatten().all(|p| p.1 > 0.0);
        let s: Series = band(&name, &traces);
        let path = dir.join(format!("plot_{c}.svg"));
        draw(&path, &format!("{c}: {name}"), "iteration", c, &[s], log)?;
        written.push(path);
    }
    Ok(written)
}

/// The finished runs in the subfolders of `parent` (those with a `run.json` and at least one
/// trace), by solver name, in folder-name order.
fn runs_below(parent: &Path) -> Result<Vec<(String, PathBuf)>, CliError> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(parent)
        .map_err(|e| CliError::new(format!("reading {}: {e}", parent.display())))?
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|d| d.join("run.json").is_file())
        .collect();
    dirs.sort();
    let mut out = Vec::new();
    for d in dirs {
        if seeds_in(&d)?.is_empty() {
            continue;
        }
        let name = std::fs::read_to_string(d.join("run.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<RunSpec>(&t).ok())
            .map_or_else(
                || {
                    d.file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned()
                },
                |s| s.solver,
            );
        out.push((name, d));
    }
    Ok(out)
}

/// Compare the runs in the subfolders of `parent` (as `bilevel run --solver a,b` writes them):
/// one SVG per metric with every solver's median over seeds and 20–80 % band
/// (`parent/plot_<metric>.svg`), and `parent/summary.md` with each metric's final values side
/// by side. Returns the plots written.
///
/// # Errors
/// I/O, or fewer than one finished run below `parent`.
pub fn compare_dir(parent: &Path) -> Result<Vec<PathBuf>, CliError> {
    let runs = runs_below(parent)?;
    if runs.is_empty() {
        return Err(CliError::new(format!(
            "no finished runs (subfolders with run.json and seed*.csv) in {}",
            parent.display()
        )));
    }
    let mut written = Vec::new();
    for c in plotted_columns() {
        let mut series = Vec::new();
        let mut all_positive = true;
        for (name, dir) in &runs {
            let traces = traces_of(dir, c)?;
            if traces.iter().all(Vec::is_empty) {
                continue;
            }
            all_positive &= traces.iter().flatten().all(|p| p.1 > 0.0);
            series.push(band(name, &traces));
        }
        if series.is_empty() {
            continue;
        }
        let path = parent.join(format!("plot_{c}.svg"));
        let log = !linear_axis(c) && all_positive;
        draw(&path, c, "iteration", c, &series, log)?;
        written.push(path);
    }
    // Final values: one row per metric, one column per solver.
    let stats: Vec<Vec<(String, Stats)>> = runs
        .iter()
        .map(|(_, d)| final_stats(d))
        .collect::<Result<_, _>>()?;
    let mut md = String::from("| final value (mean ± std) |");
    for (name, _) in &runs {
        md += &format!(" {name} |");
    }
    md += "\n|---|";
    md += &"---|".repeat(runs.len());
    md += "\n";
    let metrics: Vec<&str> = SUMMARY_TRACE
        .iter()
        .chain(&SUMMARY_EXTRA)
        .copied()
        .collect();
    for m in metrics {
        if !stats.iter().any(|st| st.iter().any(|(k, _)| k == m)) {
            continue;
        }
        md += &format!("| {m} |");
        for st in &stats {
            let cell = st
                .iter()
                .find(|(k, _)| k == m)
                .map_or("–".to_string(), |(_, s)| {
                    format!("{} ± {} (n = {})", fmt(s.mean), fmt(s.std), s.n)
                });
            md += &format!(" {cell} |");
        }
        md += "\n";
    }
    let mut folders = String::new();
    for (name, d) in &runs {
        folders += &format!("- {name}: {}\n", d.display());
    }
    write_atomic(
        &parent.join("summary.md"),
        &format!("# Comparison\n\n{md}\nEach solver's traces, summary and plots:\n\n{folders}"),
    )?;
    Ok(written)
}

/// `bilevel plot DIR`: redraw the plots of the run in `dir`, or, when `dir` holds no traces but
/// runs in its subfolders (`bilevel run --solver a,b`), those of every run and the comparison.
///
/// # Errors
/// I/O, or no traces in `dir` or below it.
pub fn plot_any(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    if !seeds_in(dir)?.is_empty() {
        return plot_dir(dir);
    }
    let runs = runs_below(dir)?;
    if runs.is_empty() {
        return Err(CliError::new(format!(
            "no traces (seed*.csv) in {} or in its subfolders",
            dir.display()
        )));
    }
    let mut written = Vec::new();
    for (_, d) in &runs {
        written.extend(plot_dir(d)?);
    }
    if runs.len() > 1 {
        written.extend(compare_dir(dir)?);
    }
    Ok(written)
}

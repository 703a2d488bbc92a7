//! `bilevel run`: every (seed, solver) pair a job of one pool of workers, each driven by one
//! `solvers::Runner` that checkpoints into the run folder (the program's `seed` module), so a
//! stopped run leaves only complete files and `--resume` continues it bit-identically; the run
//! folders are taken, locked and cleaned through [`folder`].

use super::CliError;
use super::compare::{compare_dir, plot_dir};
use super::folder::{self, Folder, Take};
use super::registry::{DataCache, ProblemParams, build_problem, explain};
use super::seed::{SeedEnd, run_seed};
use super::summary::{self, summarize};
use crate::solvers::observe::Observe;
use crate::solvers::registry::Params;
use crate::solvers::{Derived, Problem, Stop};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

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

/// How a call to [`run`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every seed finished; traces, summary and plots are written. `diverged` seeds (over all
    /// runs) ended by diverging.
    Complete {
        /// How many seeds diverged.
        diverged: usize,
    },
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
    /// Replace a run of another problem or solver in the folder.
    pub force: bool,
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
            .field("force", &self.force)
            .field("interrupt_after", &self.interrupt_after)
            .field("no_plots", &self.no_plots)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

/// Run `run` into its folder.
///
/// # Errors
/// Bad parameters, missing data, I/O.
pub fn run(run: &Run, exec: &Exec) -> Result<Outcome, CliError> {
    run_many(std::slice::from_ref(run), exec)
}

/// Run several specs, each into its folder, with every (seed, spec) pair a job of one pool of
/// `exec.threads` workers: the solvers of `bilevel run --solver a,b` run side by side as well as
/// their seeds. The specs share the problem and seeds; a seed's problem (and its data) is built
/// when its first job starts, shared by that seed's jobs and dropped after the last one, so
/// memory does not grow with the number of seeds. With more than one spec the parent folder of
/// the first also gets comparison plots and a summary (see [`compare_dir`]).
///
/// # Errors
/// Bad parameters, missing data, a folder in use or holding another run, I/O.
pub fn run_many(runs: &[Run], exec: &Exec) -> Result<Outcome, CliError> {
    let Some(first) = runs.first().map(|r| &r.spec) else {
        return Ok(Outcome::Complete { diverged: 0 });
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
    let problems = SeedProblems::new(first, runs.len());
    // The first seed's problem is built before any folder is touched: it checks the problem's
    // parameters and that its data can be read.
    if !first.seeds.is_empty() {
        problems.get(0)?;
    }
    let take = Take {
        resume: exec.resume,
        force: exec.force,
    };
    let parent = match (runs.len() > 1, runs[0].dir.parent()) {
        (true, Some(p)) => Some(Folder::take(p, &first.problem, None, take)?),
        _ => None,
    };
    let folders: Vec<Folder> = runs
        .iter()
        .map(|r| Folder::take(&r.dir, &r.spec.problem, Some(&r.spec.solver), take))
        .collect::<Result<_, _>>()?;
    // Every file a run will write is claimed before the first is written: a file of that name
    // the program did not write stops the run here, before any work.
    if let Some(p) = &parent {
        p.claim([folder::SUMMARY_MD])?;
    }
    let seed_files: Vec<String> = first
        .seeds
        .iter()
        .flat_map(|&s| {
            [
                folder::trace_csv(s),
                folder::trace_jsonl(s),
                folder::state(s),
            ]
        })
        .collect();
    for f in &folders {
        f.claim(
            [folder::SPEC, folder::SUMMARY_CSV, folder::SUMMARY_MD]
                .into_iter()
                .chain(seed_files.iter().map(String::as_str)),
        )?;
    }
    for (r, f) in runs.iter().zip(&folders) {
        f.write(
            folder::SPEC,
            &serde_json::to_string_pretty(&r.spec).expect("spec serializes"),
        )?;
    }
    let bar = progress_bar(runs, exec);
    // Jobs seed by seed, so the seeds alive at once are about as many as the workers; each job is
    // independent, so the order does not change a trace.
    let jobs: Vec<(usize, usize)> = (0..first.seeds.len())
        .flat_map(|s| (0..runs.len()).map(move |r| (s, r)))
        .collect();
    // A job's oracles use the global pool's threads when the jobs leave some idle (the workers
    // below are plain threads, so a job never runs another inside its wait).
    let par = crate::solvers::job_par(jobs.len(), exec.threads.max(1));
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let ends: Mutex<Vec<Result<SeedEnd, CliError>>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..exec.threads.clamp(1, jobs.len().max(1)) {
            scope.spawn(|| {
                // After Ctrl-C no job starts: the running ones stop at their next iteration.
                while !failed.load(Ordering::SeqCst) && !STOP.requested() {
                    let Some(&(s, r)) = jobs.get(next.fetch_add(1, Ordering::SeqCst)) else {
                        break;
                    };
                    let seed = first.seeds[s];
                    let end = problems
                        .get(s)
                        .and_then(|p| run_seed(&runs[r], &folders[r], seed, &*p, exec, par, &bar));
                    problems.done(s);
                    if end.is_err() {
                        failed.store(true, Ordering::SeqCst);
                    }
                    ends.lock().expect("ends").push(end);
                }
            });
        }
    });
    bar.finish_and_clear();
    let ends = ends.into_inner().expect("ends");
    let mut stopped = ends.len() < jobs.len();
    for end in ends {
        stopped |= end? == SeedEnd::Stopped;
    }
    if stopped {
        return Ok(Outcome::Interrupted);
    }
    let mut diverged = 0;
    for f in &folders {
        summarize(f)?;
        diverged += summary::diverged(f.dir())?.len();
        if !exec.no_plots {
            plot_dir(f)?;
        }
    }
    if let Some(p) = &parent {
        let names = runs
            .iter()
            .filter_map(|r| Some(r.dir.file_name()?.to_string_lossy().into_owned()))
            .collect();
        p.set_runs(names)?;
        compare_dir(p)?;
    }
    Ok(Outcome::Complete { diverged })
}

/// The problems of a run's seeds, each built when its first job asks and dropped when its last
/// job is done.
struct SeedProblems<'a> {
    spec: &'a RunSpec,
    data: Mutex<DataCache>,
    slots: Vec<Mutex<Slot>>,
}

/// A seed's problem, once built, and how many of its jobs have not finished.
type Slot = (Option<Arc<dyn Problem>>, usize);

impl<'a> SeedProblems<'a> {
    fn new(spec: &'a RunSpec, jobs_per_seed: usize) -> Self {
        SeedProblems {
            spec,
            data: Mutex::new(DataCache::new(spec.data_dir.as_deref())),
            slots: spec
                .seeds
                .iter()
                .map(|_| Mutex::new((None, jobs_per_seed)))
                .collect(),
        }
    }

    /// The problem of the seed at index `i`, built if needed.
    fn get(&self, i: usize) -> Result<Arc<dyn Problem>, CliError> {
        let mut slot = self.slots[i].lock().expect("slot");
        if let Some(p) = &slot.0 {
            return Ok(p.clone());
        }
        let mut data = self.data.lock().expect("data");
        let p = build_problem(
            &self.spec.problem,
            &self.spec.problem_params,
            self.spec.seeds[i],
            &mut data,
        )?;
        slot.0 = Some(p.clone());
        Ok(p)
    }

    /// One job of the seed at index `i` is done; after the last, its problem is dropped.
    fn done(&self, i: usize) {
        let mut slot = self.slots[i].lock().expect("slot");
        slot.1 = slot.1.saturating_sub(1);
        if slot.1 == 0 {
            slot.0 = None;
        }
    }
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
    let saved = summary::spec_of(dir).ok_or_else(|| {
        CliError::new(format!(
            "--resume: no run to resume in {} (no readable {})",
            dir.display(),
            folder::SPEC
        ))
    })?;
    if &saved != spec {
        return Err(CliError::new(format!(
            "--resume: the run in {} was started with other settings; use the same arguments, or another --out",
            dir.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seeds_problem_is_built_by_its_first_job_and_dropped_after_its_last() {
        let (run, _) = crate::cli::resolve_run(&crate::cli::RunArgs {
            problem: Some("quadratic".into()),
            solver: Some("aid-single-loop".into()),
            seeds: Some("0..3".into()),
            ..Default::default()
        })
        .unwrap();
        let problems = SeedProblems::new(&run.spec, 2);
        let built = |p: &SeedProblems<'_>| -> Vec<bool> {
            p.slots
                .iter()
                .map(|s| s.lock().unwrap().0.is_some())
                .collect()
        };
        assert_eq!(built(&problems), [false, false, false]);
        let a = problems.get(1).unwrap();
        let b = problems.get(1).unwrap();
        assert!(
            Arc::ptr_eq(&a, &b),
            "one problem per seed, shared by its jobs"
        );
        assert_eq!(built(&problems), [false, true, false]);
        problems.done(1);
        assert_eq!(built(&problems), [false, true, false]);
        problems.done(1);
        assert_eq!(built(&problems), [false, false, false]);
        drop(b);
        assert_eq!(
            Arc::strong_count(&a),
            1,
            "the runner holds the last reference"
        );
    }
}

//! One seed of a run: a `solvers::Runner` whose observer keeps the records with metrics, saves
//! the seed's state at every checkpoint and, when the seed ends, writes its traces.

use super::CliError;
use super::folder::{self, Folder};
use super::registry::explain;
use super::run::{Exec, Run, STOP, UNCAPPED};
use crate::solvers::observe::{CsvWriter, JsonlWriter, Observe};
use crate::solvers::{
    Checkpoint, Iterate, Keep, Problem, Record, RunConfig, RunInfo, Runner, Status, Stop,
};
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A seed's progress: its last checkpoint and the records to be written up to it (those with
/// metrics), saved in `seed<s>.state.json` at every checkpoint.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct SeedState {
    checkpoint: Option<Checkpoint>,
    records: Vec<Record>,
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

/// How a seed's job ended.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum SeedEnd {
    /// Its traces are written (its status is in them and in the summary).
    Done,
    /// Finished before (`--resume`): nothing to do.
    Finished,
    /// Stopped before the end; its state is saved.
    Stopped,
}

/// Run seed `seed` of `run` on `problem` into the folder `f`.
///
/// # Errors
/// A bad state file, solver errors, I/O.
pub(super) fn run_seed(
    run: &Run,
    f: &Folder,
    seed: u64,
    problem: &dyn Problem,
    exec: &Exec,
    par: crate::linalg::Par,
    bar: &ProgressBar,
) -> Result<SeedEnd, CliError> {
    let spec = &run.spec;
    let dir = f.dir();
    let state_name = folder::state(seed);
    let sp = dir.join(&state_name);
    if exec.resume && !sp.exists() && dir.join(folder::trace_csv(seed)).exists() {
        if spec.iters != UNCAPPED {
            bar.inc(spec.iters);
        }
        return Ok(SeedEnd::Finished);
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
        state_path: f.file(&state_name)?,
        bar: bar.clone(),
        interrupt_after: exec.interrupt_after,
        checkpoints: 0,
        stop: stop.clone(),
    };
    let mut runner = Runner::new(cfg)
        .map_err(|e| CliError::new(e.to_string()))?
        .with_stop(stop)
        .with_par(par)
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
        return Ok(SeedEnd::Stopped);
    }
    let mut log = std::mem::take(&mut *log.lock().expect("log"));
    if let Some(last) = log.last.take() {
        log.state.records.push(last);
    }
    let info = RunInfo {
        problem: problem.name(),
        solver: spec.solver.clone(),
        dim_x: problem.dim_x(),
        dim_y: problem.dim_y(),
    };
    let io = |e: io::Error| CliError::new(format!("writing traces in {}: {e}", dir.display()));
    let records = &log.state.records;
    CsvWriter::write_records(
        &f.file(&folder::trace_csv(seed))?,
        &info,
        records,
        &r.status,
    )
    .map_err(io)?;
    JsonlWriter::write_records(
        &f.file(&folder::trace_jsonl(seed))?,
        &info,
        records,
        &r.status,
    )
    .map_err(io)?;
    f.remove(&state_name)?;
    Ok(SeedEnd::Done)
}

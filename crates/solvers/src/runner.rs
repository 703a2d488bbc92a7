//! The run loop: stopping rules, divergence detection, metrics, observers, checkpoints and
//! parallel runs.

use crate::error::Error;
use crate::metrics::{Hints, Measure, MetricEvaluator, Metrics};
use crate::named::named;
use crate::observe::Observe;
use crate::oracle::Oracle;
use crate::problem::Problem;
use crate::record::{Checkpoint, Divergence, Record, RunInfo, Status};
use crate::solver::{Iterate, Solver};
use crate::vecops::{first_non_finite, from_slice, norm_ref, to_vec};
use bilevel_linalg::Par;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Stop when `measure ≤ value` (checked whenever metrics are evaluated).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tolerance {
    /// What is measured.
    pub measure: Measure,
    /// The threshold.
    pub value: f64,
}

/// How a run is driven.
#[derive(Clone, Debug, PartialEq)]
pub struct RunConfig {
    /// Stop after this many outer iterations in total (counting those before a resume).
    pub max_iter: u64,
    /// Stop once the solver has used this much wall time in total (counting the time before a
    /// resume, leaving out metrics and observers).
    pub time_budget: Option<Duration>,
    /// Stop once a stationarity measure is small enough.
    pub tolerance: Option<Tolerance>,
    /// A run diverges when any entry of `x`, `y` or the solver's auxiliary vectors is not
    /// finite, or when one of their norms exceeds this bound.
    pub divergence_bound: f64,
    /// Evaluate [`Metrics`] every this many iterations; they are also evaluated at the start,
    /// at every checkpoint and at the last iteration of a run that ends on its iteration cap or
    /// its time budget, so a run's final record always carries them.
    pub metrics_every: u64,
    /// Hand a [`Checkpoint`] to the observers ([`Observe::on_checkpoint`]) every this many
    /// iterations, and once more where a [`Stop`] ends the run.
    pub checkpoint_every: Option<u64>,
    /// Which records [`RunResult::trace`] keeps (observers see every one either way).
    pub keep: Keep,
}

/// Which records a run keeps in [`RunResult::trace`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Keep {
    /// Every record.
    #[default]
    All,
    /// The records that carry metrics, and the last one: memory then grows with the number of
    /// metric evaluations, not of iterations.
    Metrics,
}

impl Default for RunConfig {
    /// [`RunConfig::iters`]`(100)`.
    fn default() -> Self {
        Self::iters(100)
    }
}

impl RunConfig {
    /// `max_iter` iterations with metrics at about a hundred points along the run
    /// (every `max(1, max_iter / 100)` iterations, and at the last); no time budget, tolerance
    /// or checkpoints; divergence bound `1e12`; every record kept.
    pub fn iters(max_iter: u64) -> Self {
        RunConfig {
            max_iter,
            time_budget: None,
            tolerance: None,
            divergence_bound: 1e12,
            metrics_every: (max_iter / 100).max(1),
            checkpoint_every: None,
            keep: Keep::All,
        }
    }

    /// Reject out-of-range values.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |name, value: String, allowed| {
            Err(Error::InvalidConfig {
                name,
                value,
                allowed,
            })
        };
        if self.metrics_every == 0 {
            return bad("metrics_every", "0".into(), ">= 1");
        }
        if self.checkpoint_every == Some(0) {
            return bad("checkpoint_every", "0".into(), ">= 1");
        }
        if self.divergence_bound.is_nan() || self.divergence_bound <= 0.0 {
            return bad(
                "divergence_bound",
                self.divergence_bound.to_string(),
                "> 0 (may be infinite)",
            );
        }
        if let Some(t) = self.tolerance
            && (t.value.is_nan() || t.value < 0.0)
        {
            return bad("tolerance.value", t.value.to_string(), ">= 0");
        }
        Ok(())
    }
}

/// A request to stop, shared between threads: a run checks it before every step and, once it is
/// set, ends with [`Status::Stopped`] after handing its observers a checkpoint of where it
/// stopped. A [`Stop::child`] is also set when its parent is, so one signal (Ctrl-C) can stop
/// every run while each run can still be stopped alone.
#[derive(Clone, Debug, Default)]
pub struct Stop(Arc<StopInner>);

#[derive(Debug, Default)]
struct StopInner {
    flag: AtomicBool,
    parent: Option<Stop>,
}

impl Stop {
    /// A signal nobody has requested yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A signal that is requested when `self` is, and can also be requested alone.
    pub fn child(&self) -> Stop {
        Stop(Arc::new(StopInner {
            flag: AtomicBool::new(false),
            parent: Some(self.clone()),
        }))
    }

    /// Ask every run watching this signal (or a child of it) to stop.
    pub fn request(&self) {
        self.0.flag.store(true, Ordering::SeqCst);
    }

    /// Whether this signal or one of its parents was requested.
    pub fn requested(&self) -> bool {
        self.0.flag.load(Ordering::SeqCst) || self.0.parent.as_ref().is_some_and(Stop::requested)
    }
}

/// The outcome of a run.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// Why it stopped.
    pub status: Status,
    /// The last iterate (the last finite one if the run diverged).
    pub iterate: Iterate,
    /// Iterations completed (excluding a diverged step).
    pub iter: u64,
    /// Oracle calls, including those of a diverged step.
    pub counts: Counts,
    /// The records of this call, in order: every one, or those with metrics and the last one
    /// ([`RunConfig::keep`]).
    pub trace: Vec<Record>,
    /// A checkpoint to resume from (`None` after divergence).
    pub checkpoint: Option<Checkpoint>,
}

use crate::oracle::Counts;

impl RunResult {
    /// The last record that carries metrics.
    pub fn last_metrics(&self) -> Option<&Metrics> {
        self.trace.iter().rev().find_map(|r| r.metrics.as_ref())
    }
}

/// Owns the iteration loop: runs a [`Solver`] on a [`Problem`] under a [`RunConfig`], evaluates
/// metrics, hands every [`Record`] (with the iterate) and every checkpoint to its observers,
/// and stops on the iteration cap, the time budget, a tolerance, divergence or a [`Stop`].
///
/// # Example
/// ```
/// use bilevel_solvers::algorithms::{SingleLoopAid, SingleLoopAidParams};
/// use bilevel_solvers::problems::QuadraticKappa;
/// use bilevel_solvers::{RunConfig, Runner, Status};
///
/// let problem = QuadraticKappa::new(2.0, 2);
/// let params = SingleLoopAidParams::for_lipschitz(problem.l(), 0.5);
/// let mut solver = SingleLoopAid::new(params).unwrap();
/// let result = Runner::new(RunConfig::iters(300)).unwrap().run(&problem, &mut solver).unwrap();
/// assert_eq!(result.status, Status::MaxIter);
/// let grad_phi = result.last_metrics().unwrap().grad_phi_norm.unwrap();
/// assert!(grad_phi * grad_phi < 1e-8);
/// // Two gradient calls and two Hessian-vector products per iteration (Table 1's Gc and MV).
/// assert_eq!((result.counts.gc, result.counts.mv), (600, 600));
/// ```
#[derive(Debug)]
pub struct Runner {
    config: RunConfig,
    observers: Vec<Box<dyn Observe>>,
    par: Par,
    stop: Option<Stop>,
}

/// The loop's clock: wall time since the call started, less the time spent on metrics and
/// observers, plus the solver time before a resume.
struct Clock {
    start: Instant,
    excluded: Duration,
    before: f64,
}

impl Clock {
    fn solver_time(&self) -> f64 {
        self.before
            + self
                .start
                .elapsed()
                .saturating_sub(self.excluded)
                .as_secs_f64()
    }

    /// Run `f` without charging its time to the solver.
    fn exclude<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let out = f();
        self.excluded += t.elapsed();
        out
    }
}

impl Runner {
    /// A runner with no observers.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if the configuration is out of range.
    pub fn new(config: RunConfig) -> Result<Self, Error> {
        config.validate()?;
        Ok(Runner {
            config,
            observers: Vec::new(),
            par: Par::rayon(0),
            stop: None,
        })
    }

    /// Where the solver's oracles spread their work: the threads of the current rayon pool (the
    /// default) or, with [`Par::Seq`], the calling thread only. Results are the same either way
    /// (see [`Evaluator`](bilevel_ad::Evaluator)); [`run_many`] runs each job sequentially when
    /// there are at least as many jobs as threads, so that a job never waits on another's work.
    pub fn with_par(mut self, par: Par) -> Self {
        self.par = par;
        self
    }

    /// Add an observer.
    pub fn observe(mut self, obs: impl Observe + 'static) -> Self {
        self.observers.push(Box::new(obs));
        self
    }

    /// Add a boxed observer.
    pub fn observe_boxed(mut self, obs: Box<dyn Observe>) -> Self {
        self.observers.push(obs);
        self
    }

    /// Stop when `stop` is requested (checked before every step).
    pub fn with_stop(mut self, stop: Stop) -> Self {
        self.stop = Some(stop);
        self
    }

    /// Run from the problem's default start.
    ///
    /// # Errors
    /// Errors from the solver's `init` or from observers (I/O).
    pub fn run(
        &mut self,
        problem: &dyn Problem,
        solver: &mut dyn Solver,
    ) -> Result<RunResult, Error> {
        let it = Iterate {
            x: problem.x0(),
            y: problem.y0(),
        };
        self.run_from(problem, solver, it)
    }

    /// Run from a given start.
    ///
    /// # Errors
    /// As [`Runner::run`].
    pub fn run_from(
        &mut self,
        problem: &dyn Problem,
        solver: &mut dyn Solver,
        mut it: Iterate,
    ) -> Result<RunResult, Error> {
        let mut o = Oracle::with_par(problem, self.par);
        solver.init(&mut o, &mut it)?;
        self.drive(problem, solver, o, it, 0, 0.0, true)
    }

    /// Continue a run from a checkpoint, up to [`RunConfig::max_iter`] iterations and
    /// [`RunConfig::time_budget`] in total. The continuation is bit-identical to an
    /// uninterrupted run; its trace starts after the checkpointed iteration.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] if the checkpoint belongs to another problem or solver.
    pub fn resume(
        &mut self,
        problem: &dyn Problem,
        solver: &mut dyn Solver,
        ck: &Checkpoint,
    ) -> Result<RunResult, Error> {
        if ck.problem != problem.name() || ck.solver != solver.name() {
            return Err(Error::Checkpoint(format!(
                "checkpoint is for {} on {}, not {} on {}",
                ck.solver,
                ck.problem,
                solver.name(),
                problem.name()
            )));
        }
        if ck.x.len() != problem.dim_x() || ck.y.len() != problem.dim_y() {
            return Err(Error::Checkpoint(
                "dimensions differ from the problem's".into(),
            ));
        }
        solver.load_state(ck.solver_state.clone())?;
        let mut o = Oracle::with_par(problem, self.par);
        o.set_counts(ck.counts);
        let it = Iterate {
            x: from_slice(&ck.x),
            y: from_slice(&ck.y),
        };
        self.drive(problem, solver, o, it, ck.iter, ck.elapsed, false)
    }

    #[allow(clippy::too_many_arguments)]
    fn drive(
        &mut self,
        problem: &dyn Problem,
        solver: &mut dyn Solver,
        mut o: Oracle<'_>,
        mut it: Iterate,
        k0: u64,
        elapsed0: f64,
        record_start: bool,
    ) -> Result<RunResult, Error> {
        let cfg = self.config.clone();
        let mut clock = Clock {
            start: Instant::now(),
            excluded: Duration::ZERO,
            before: elapsed0,
        };
        let mut mev = MetricEvaluator::new();
        let mut trace = Vec::new();
        let info = RunInfo {
            problem: problem.name(),
            solver: solver.name().to_string(),
            dim_x: problem.dim_x(),
            dim_y: problem.dim_y(),
        };
        for obs in &mut self.observers {
            obs.on_start(&info)?;
        }
        let budget_used = |t: f64| cfg.time_budget.is_some_and(|b| t >= b.as_secs_f64());
        let mut k = k0;
        // The iteration of the last checkpoint handed to the observers.
        let mut checkpointed = (!record_start).then_some(k0);
        let mut status = None;
        if let Some((quantity, reason)) = diverged(&it, &*solver, &[], cfg.divergence_bound) {
            status = Some(Status::Diverged {
                iter: k,
                quantity,
                reason,
            });
        } else if record_start {
            let metrics = clock.exclude(|| mev.evaluate(problem, &it, Hints::of(&*solver)));
            let rec = Record {
                iter: k,
                counts: o.counts(),
                scalars: Vec::new(),
                metrics: Some(metrics),
                elapsed: clock.solver_time(),
            };
            status = clock.exclude(|| self.emit(rec, &it, &mut trace, &cfg))?;
        }
        // Decided once per step, from the time its record carries: a run stops on its budget
        // right after a record that was taken as the last (with its metrics), never on a clock
        // read a moment later.
        let mut out_of_time = budget_used(clock.solver_time());
        let status = loop {
            if let Some(s) = status.take() {
                break s;
            }
            if k >= cfg.max_iter {
                break Status::MaxIter;
            }
            if out_of_time {
                break Status::TimeBudget;
            }
            if self.stop.as_ref().is_some_and(Stop::requested) {
                break Status::Stopped;
            }
            let prev = it.clone();
            let scalars = solver.step(&mut o, &mut it, k);
            k += 1;
            if let Some((quantity, reason)) =
                diverged(&it, &*solver, &scalars, cfg.divergence_bound)
            {
                it = prev;
                k -= 1;
                break Status::Diverged {
                    iter: k + 1,
                    quantity,
                    reason,
                };
            }
            let elapsed = clock.solver_time();
            out_of_time = budget_used(elapsed);
            let last = k >= cfg.max_iter || out_of_time;
            let ck_due = cfg.checkpoint_every.is_some_and(|c| k.is_multiple_of(c));
            let metrics = (k.is_multiple_of(cfg.metrics_every) || ck_due || last)
                .then(|| clock.exclude(|| mev.evaluate(problem, &it, Hints::of(&*solver))));
            let rec = Record {
                iter: k,
                counts: o.counts(),
                scalars: named(scalars),
                metrics,
                elapsed,
            };
            status = clock.exclude(|| self.emit(rec, &it, &mut trace, &cfg))?;
            if ck_due {
                let ck = checkpoint(problem, &*solver, &it, k, &o, elapsed);
                clock.exclude(|| self.hand_checkpoint(&ck))?;
                checkpointed = Some(k);
            }
        };
        let checkpoint = (!status.is_diverged())
            .then(|| checkpoint(problem, &*solver, &it, k, &o, clock.solver_time()));
        if let (Status::Stopped, Some(ck)) = (&status, &checkpoint)
            && checkpointed != Some(k)
        {
            self.hand_checkpoint(ck)?;
        }
        for obs in &mut self.observers {
            obs.on_finish(&status)?;
        }
        Ok(RunResult {
            status,
            iterate: it,
            iter: k,
            counts: o.counts(),
            trace,
            checkpoint,
        })
    }

    fn hand_checkpoint(&mut self, ck: &Checkpoint) -> Result<(), Error> {
        for obs in &mut self.observers {
            obs.on_checkpoint(ck)?;
        }
        Ok(())
    }

    /// Hand `rec` to the observers and keep it in `trace` (under [`Keep::Metrics`], replacing
    /// a previous last record that carries no metrics); the status if the tolerance is met.
    fn emit(
        &mut self,
        rec: Record,
        it: &Iterate,
        trace: &mut Vec<Record>,
        cfg: &RunConfig,
    ) -> Result<Option<Status>, Error> {
        for obs in &mut self.observers {
            obs.on_record(&rec, it)?;
        }
        let done = match (cfg.tolerance, &rec.metrics) {
            (Some(t), Some(m)) => {
                t.measure
                    .of(m)
                    .filter(|v| *v <= t.value)
                    .map(|value| Status::Converged {
                        measure: t.measure,
                        value,
                    })
            }
            _ => None,
        };
        if cfg.keep == Keep::Metrics && trace.last().is_some_and(|r: &Record| r.metrics.is_none()) {
            trace.pop();
        }
        trace.push(rec);
        Ok(done)
    }
}

fn checkpoint(
    problem: &dyn Problem,
    solver: &dyn Solver,
    it: &Iterate,
    k: u64,
    o: &Oracle<'_>,
    elapsed: f64,
) -> Checkpoint {
    Checkpoint {
        problem: problem.name(),
        solver: solver.name().to_string(),
        iter: k,
        x: to_vec(&it.x),
        y: to_vec(&it.y),
        counts: o.counts(),
        elapsed,
        solver_state: solver.save_state(),
    }
}

/// The first diverged quantity among `x`, `y`, the solver's auxiliary vectors and the step's
/// scalars.
fn diverged(
    it: &Iterate,
    solver: &dyn Solver,
    scalars: &[(&'static str, f64)],
    bound: f64,
) -> Option<(String, Divergence)> {
    let mut vecs = vec![("x", &it.x), ("y", &it.y)];
    vecs.extend(solver.aux());
    for (name, v) in vecs {
        if let Some(i) = first_non_finite(v.as_ref()) {
            return Some((format!("{name}[{i}]"), Divergence::NonFinite));
        }
        if norm_ref(v.as_ref()) > bound {
            return Some((name.to_string(), Divergence::TooLarge));
        }
    }
    for (name, s) in scalars {
        if !s.is_finite() {
            return Some((name.to_string(), Divergence::NonFinite));
        }
    }
    None
}

/// One run of a batch: a problem, a solver and a configuration.
#[derive(Debug)]
pub struct Job {
    /// A label to find the result by (e.g. `"aid/seed3/beta0.1"`).
    pub label: String,
    /// The problem (shared, immutable).
    pub problem: Arc<dyn Problem>,
    /// The solver, with its parameters.
    pub solver: Box<dyn Solver>,
    /// How to run it.
    pub config: RunConfig,
}

/// A job's label and its outcome.
pub type JobResult = (String, Result<RunResult, Error>);

/// Run many jobs on a pool of `threads` threads, each with its own evaluators; when the jobs do
/// not fill the pool, their oracles spread over the idle threads ([`job_par`]). Results do not
/// depend on the thread count and come back in the order of `jobs`.
///
/// # Errors
/// [`Error::ThreadPool`] if the pool cannot be built; each job's own error is in its slot.
pub fn run_many(jobs: Vec<Job>, threads: usize) -> Result<Vec<JobResult>, Error> {
    use rayon::prelude::*;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|e| Error::ThreadPool(e.to_string()))?;
    let par = job_par(jobs.len(), threads.max(1));
    Ok(pool.install(|| {
        jobs.into_par_iter()
            .map(|mut job| {
                let r = Runner::new(job.config.clone())
                    .and_then(|r| r.with_par(par).run(&*job.problem, &mut *job.solver));
                (job.label, r)
            })
            .collect()
    }))
}

/// How each of `jobs` jobs sharing a pool of `threads` threads runs its oracles: on its own
/// thread when the jobs fill the pool (a job waiting on parallel work could otherwise pick up
/// another whole job meanwhile, and its wall time would include it), on the pool otherwise.
pub fn job_par(jobs: usize, threads: usize) -> Par {
    if jobs >= threads {
        Par::Seq
    } else {
        Par::rayon(0)
    }
}

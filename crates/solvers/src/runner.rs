//! The run loop: stopping rules, divergence detection, observers, checkpoints and parallel runs.

use crate::error::Error;
use crate::metrics::{MetricEvaluator, Metrics};
use crate::observe::Observe;
use crate::oracle::{Counts, Oracle};
use crate::problem::Problem;
use crate::solver::{Iterate, Scalars, Solver};
use crate::vecops::{first_non_finite, from_slice, norm_ref, to_vec};
use bilevel_linalg::Par;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The stationarity measure a [`Tolerance`] applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Measure {
    /// `‖∇Φ(x)‖²` ([`Metrics::grad_phi_norm`] squared).
    GradPhiSq,
    /// The problem's optimality gap ([`Metrics::opt_gap`]).
    OptimalityGap,
    /// `R_x + R_w + R_y`, GALET's stationarity measure.
    GaletResidual,
    /// The ε-KKT residual ([`Metrics::kkt`]).
    Kkt,
}

impl Measure {
    /// The measure's value in `m`, if available.
    pub fn of(self, m: &Metrics) -> Option<f64> {
        match self {
            Measure::GradPhiSq => m.grad_phi_norm.map(|v| v * v),
            Measure::OptimalityGap => m.opt_gap,
            Measure::GaletResidual => Some(m.galet_rx? + m.galet_rw? + m.galet_ry?),
            Measure::Kkt => m.kkt,
        }
    }
}

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
    /// Stop once this much wall time has passed in this call.
    pub time_budget: Option<Duration>,
    /// Stop once a stationarity measure is small enough.
    pub tolerance: Option<Tolerance>,
    /// A run diverges when any entry of `x`, `y` or the solver's auxiliary vectors is not
    /// finite, or when one of their norms exceeds this bound.
    pub divergence_bound: f64,
    /// Evaluate [`Metrics`] every this many iterations (and at the start and the last iteration).
    pub metrics_every: u64,
}

impl Default for RunConfig {
    /// 100 iterations, no time budget or tolerance, bound `1e12`, metrics every iteration.
    fn default() -> Self {
        RunConfig {
            max_iter: 100,
            time_budget: None,
            tolerance: None,
            divergence_bound: 1e12,
            metrics_every: 1,
        }
    }
}

impl RunConfig {
    /// `max_iter` iterations, otherwise the defaults.
    pub fn iters(max_iter: u64) -> Self {
        RunConfig {
            max_iter,
            ..Self::default()
        }
    }

    /// Reject out-of-range values.
    pub fn validate(&self) -> Result<(), Error> {
        if self.metrics_every == 0 {
            return Err(Error::InvalidConfig {
                name: "metrics_every",
                value: "0".into(),
                allowed: ">= 1",
            });
        }
        if self.divergence_bound.is_nan() || self.divergence_bound <= 0.0 {
            return Err(Error::InvalidConfig {
                name: "divergence_bound",
                value: self.divergence_bound.to_string(),
                allowed: "> 0 (may be infinite)",
            });
        }
        if let Some(t) = self.tolerance
            && (t.value.is_nan() || t.value < 0.0)
        {
            return Err(Error::InvalidConfig {
                name: "tolerance.value",
                value: t.value.to_string(),
                allowed: ">= 0",
            });
        }
        Ok(())
    }
}

/// Why a quantity counts as diverged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Divergence {
    /// An entry is NaN or infinite.
    NonFinite,
    /// The norm exceeds [`RunConfig::divergence_bound`].
    TooLarge,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Status {
    /// [`RunConfig::max_iter`] reached.
    MaxIter,
    /// [`RunConfig::time_budget`] used up.
    TimeBudget,
    /// The tolerance was met.
    Converged {
        /// The measure.
        measure: Measure,
        /// Its value.
        value: f64,
    },
    /// A quantity stopped being finite or grew past the bound at step `iter`; the result keeps
    /// the iterate from before that step.
    Diverged {
        /// The iteration whose step produced the bad quantity.
        iter: u64,
        /// The first bad quantity, e.g. `x[3]` or `v` (a solver's auxiliary vector).
        quantity: String,
        /// What was wrong with it.
        reason: Divergence,
    },
}

/// One iteration as seen by observers and kept in the trace.
#[derive(Clone, Debug)]
pub struct Record {
    /// Iterations completed (0 is the starting point after `init`).
    pub iter: u64,
    /// Oracle calls so far.
    pub counts: Counts,
    /// The step's reported quantities.
    pub scalars: Scalars,
    /// The metrics, on the iterations where they were evaluated.
    pub metrics: Option<Metrics>,
    /// Wall time of this run call so far, in seconds, without the time spent evaluating
    /// metrics and in observers (so a metric that is costly for one solver does not eat its
    /// time budget); never part of snapshots or checkpoints.
    pub elapsed: f64,
}

/// What observers learn when a run starts.
#[derive(Clone, Debug)]
pub struct RunInfo {
    /// [`Problem::name`].
    pub problem: String,
    /// [`Solver::name`].
    pub solver: String,
    /// `dim_x`.
    pub dim_x: usize,
    /// `dim_y`.
    pub dim_y: usize,
}

/// Everything needed to continue a run bit-identically: the iterate, the counts and the
/// solver's full state, with every f64 written exactly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// [`Problem::name`] of the run.
    pub problem: String,
    /// [`Solver::name`] of the run.
    pub solver: String,
    /// Iterations completed.
    pub iter: u64,
    /// `x`.
    pub x: Vec<f64>,
    /// `y`.
    pub y: Vec<f64>,
    /// Oracle counts so far.
    pub counts: Counts,
    /// [`Solver::save_state`].
    pub solver_state: serde_json::Value,
}

impl Checkpoint {
    /// The checkpoint as JSON text.
    pub fn to_json(&self) -> Result<String, Error> {
        Ok(serde_json::to_string(self)?)
    }

    /// Parse [`Checkpoint::to_json`] output.
    pub fn from_json(s: &str) -> Result<Self, Error> {
        Ok(serde_json::from_str(s)?)
    }

    /// Write to `path` atomically (a temporary file in the same folder, then a rename).
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let tmp = crate::observe::tmp_path(path);
        std::fs::write(&tmp, self.to_json()?)?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }

    /// Read a checkpoint written by [`Checkpoint::save`].
    pub fn load(path: &Path) -> Result<Self, Error> {
        Self::from_json(&std::fs::read_to_string(path)?)
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
    /// Every record of this call, in order.
    pub trace: Vec<Record>,
    /// A checkpoint to resume from (`None` after divergence).
    pub checkpoint: Option<Checkpoint>,
}

impl RunResult {
    /// The last record that carries metrics.
    pub fn last_metrics(&self) -> Option<&Metrics> {
        self.trace.iter().rev().find_map(|r| r.metrics.as_ref())
    }
}

/// Owns the iteration loop: runs a [`Solver`] on a [`Problem`] under a [`RunConfig`], feeding
/// every [`Record`] to its observers.
///
/// # Example
/// ```
/// use bilevel_solvers::algorithms::{SingleLoopAid, SingleLoopAidParams};
/// use bilevel_solvers::problems::QuadraticKappa;
/// use bilevel_solvers::{RunConfig, Runner, Status};
///
/// let problem = QuadraticKappa::new(2.0, 2);
/// let params = SingleLoopAidParams::from_smoothness(problem.l(), 0.5);
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
        self.drive(problem, solver, o, it, 0, true)
    }

    /// Continue a run from a checkpoint, up to [`RunConfig::max_iter`] iterations in total. The
    /// continuation is bit-identical to an uninterrupted run; its trace starts after the
    /// checkpointed iteration.
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
        self.drive(problem, solver, o, it, ck.iter, false)
    }

    fn drive(
        &mut self,
        problem: &dyn Problem,
        solver: &mut dyn Solver,
        mut o: Oracle<'_>,
        mut it: Iterate,
        k0: u64,
        record_start: bool,
    ) -> Result<RunResult, Error> {
        let cfg = self.config.clone();
        let start = Instant::now();
        // Time spent on metrics and observers, which the budget and `elapsed` leave out.
        let mut excluded = Duration::ZERO;
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
        let mut k = k0;
        let mut status = None;
        if let Some((quantity, reason)) = diverged(&it, &*solver, &[], cfg.divergence_bound) {
            status = Some(Status::Diverged {
                iter: k,
                quantity,
                reason,
            });
        } else if record_start {
            let t = Instant::now();
            let metrics = Some(mev.evaluate(problem, &it, &*solver));
            excluded += t.elapsed();
            let rec = Record {
                iter: k,
                counts: o.counts(),
                scalars: Vec::new(),
                metrics,
                elapsed: start.elapsed().saturating_sub(excluded).as_secs_f64(),
            };
            let t = Instant::now();
            status = self.emit(rec, &mut trace, cfg.tolerance)?;
            excluded += t.elapsed();
        }
        let status = loop {
            if let Some(s) = status.take() {
                break s;
            }
            if k >= cfg.max_iter {
                break Status::MaxIter;
            }
            if let Some(b) = cfg.time_budget
                && start.elapsed().saturating_sub(excluded) >= b
            {
                break Status::TimeBudget;
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
            let elapsed = start.elapsed().saturating_sub(excluded).as_secs_f64();
            let t = Instant::now();
            let metrics = (k.is_multiple_of(cfg.metrics_every) || k == cfg.max_iter)
                .then(|| mev.evaluate(problem, &it, &*solver));
            let rec = Record {
                iter: k,
                counts: o.counts(),
                scalars,
                metrics,
                elapsed,
            };
            status = self.emit(rec, &mut trace, cfg.tolerance)?;
            excluded += t.elapsed();
        };
        for obs in &mut self.observers {
            obs.on_finish(&status)?;
        }
        let checkpoint = (!matches!(status, Status::Diverged { .. })).then(|| Checkpoint {
            problem: problem.name(),
            solver: solver.name().to_string(),
            iter: k,
            x: to_vec(&it.x),
            y: to_vec(&it.y),
            counts: o.counts(),
            solver_state: solver.save_state(),
        });
        Ok(RunResult {
            status,
            iterate: it,
            iter: k,
            counts: o.counts(),
            trace,
            checkpoint,
        })
    }

    fn emit(
        &mut self,
        rec: Record,
        trace: &mut Vec<Record>,
        tol: Option<Tolerance>,
    ) -> Result<Option<Status>, Error> {
        for obs in &mut self.observers {
            obs.on_record(&rec)?;
        }
        let done = match (tol, &rec.metrics) {
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
        trace.push(rec);
        Ok(done)
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

/// Run many jobs on a pool of `threads` threads. Each job runs sequentially on one thread with
/// its own evaluators, so results do not depend on the thread count; they come back in the
/// order of `jobs`.
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

//! What a run reports: one [`Record`] per iteration, the [`Status`] it ended with, and
//! [`Checkpoint`]s to continue it. Every type here serializes directly (serde), with every f64
//! written exactly.

use crate::error::Error;
use crate::metrics::Metrics;
use crate::named::{Named, named_serde};
use crate::oracle::Counts;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One iteration as seen by observers and kept in the trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Iterations completed (0 is the starting point after `init`).
    pub iter: u64,
    /// Oracle calls so far.
    pub counts: Counts,
    /// The step's reported quantities.
    #[serde(with = "named_serde")]
    pub scalars: Named,
    /// The metrics, on the iterations where they were evaluated.
    pub metrics: Option<Metrics>,
    /// The solver's wall time so far in seconds, counting the time before a resume and leaving
    /// out the time spent evaluating metrics and in observers (so a metric that is costly for
    /// one solver does not eat its time budget); never part of snapshots.
    pub elapsed: f64,
}

impl Record {
    /// The scalar named `name`, if the step reported it.
    pub fn scalar(&self, name: &str) -> Option<f64> {
        self.scalars
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| *v)
    }
}

/// What observers learn when a run starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// [`Problem::name`](crate::Problem::name).
    pub problem: String,
    /// [`Solver::name`](crate::Solver::name).
    pub solver: String,
    /// `dim_x`.
    pub dim_x: usize,
    /// `dim_y`.
    pub dim_y: usize,
}

/// Why a quantity counts as diverged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Divergence {
    /// An entry is NaN or infinite.
    NonFinite,
    /// The norm exceeds [`RunConfig::divergence_bound`](crate::RunConfig::divergence_bound).
    TooLarge,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Status {
    /// [`RunConfig::max_iter`](crate::RunConfig::max_iter) reached.
    MaxIter,
    /// [`RunConfig::time_budget`](crate::RunConfig::time_budget) used up.
    TimeBudget,
    /// The tolerance was met.
    Converged {
        /// The measure.
        measure: crate::metrics::Measure,
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
    /// The run's [`Stop`](crate::Stop) was requested; its last checkpoint continues it.
    Stopped,
}

impl Status {
    /// Whether the run ended by diverging.
    pub fn is_diverged(&self) -> bool {
        matches!(self, Status::Diverged { .. })
    }

    /// The status in words, e.g. `diverged at k = 12 (x[3] not finite)`.
    pub fn describe(&self) -> String {
        match self {
            Status::MaxIter => "ran its iterations".into(),
            Status::TimeBudget => "used its time budget".into(),
            Status::Converged { measure, value } => {
                format!("converged ({measure:?} = {value:e})")
            }
            Status::Diverged {
                iter,
                quantity,
                reason,
            } => format!(
                "diverged at k = {iter} ({quantity} {})",
                match reason {
                    Divergence::NonFinite => "not finite",
                    Divergence::TooLarge => "too large",
                }
            ),
            Status::Stopped => "stopped before the end".into(),
        }
    }
}

/// Everything needed to continue a run bit-identically: the iterate, the counts and the
/// solver's full state, with every f64 written exactly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// [`Problem::name`](crate::Problem::name) of the run.
    pub problem: String,
    /// [`Solver::name`](crate::Solver::name) of the run.
    pub solver: String,
    /// Iterations completed.
    pub iter: u64,
    /// `x`.
    pub x: Vec<f64>,
    /// `y`.
    pub y: Vec<f64>,
    /// Oracle counts so far.
    pub counts: Counts,
    /// The solver's wall time so far, in seconds (see [`Record::elapsed`]): a resumed run's
    /// time budget counts it.
    #[serde(default)]
    pub elapsed: f64,
    /// [`Solver::save_state`](crate::Solver::save_state).
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
        Ok(crate::atomic::write(path, self.to_json()?)?)
    }

    /// Read a checkpoint written by [`Checkpoint::save`].
    pub fn load(path: &Path) -> Result<Self, Error> {
        Self::from_json(&std::fs::read_to_string(path)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::named::named;

    #[test]
    fn records_round_trip_through_json_with_non_finite_scalars() {
        let r = Record {
            iter: 3,
            counts: Counts {
                gc: 2,
                mv: 1,
                value: 0,
            },
            scalars: named(vec![("b", 0.1 + 0.2), ("a", f64::INFINITY)]),
            metrics: Some(Metrics {
                f: Some(1.0 / 3.0),
                ..Metrics::default()
            }),
            elapsed: 0.25,
        };
        let back: Record = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(
            back.scalars[0],
            ("b".into(), 0.1 + 0.2),
            "order and bits kept"
        );
        assert!(
            back.scalars[1].1.is_nan(),
            "a non-finite value is read back as NaN"
        );
        assert_eq!(back.metrics, r.metrics);
        assert_eq!(back.scalar("b"), Some(0.1 + 0.2));
    }
}

//! The crate's error type.

use thiserror::Error;

/// Everything that can go wrong when configuring or running a solver.
///
/// Numerical divergence is *not* an error: it ends a run with
/// [`Status::Diverged`](crate::Status::Diverged) and keeps the last finite iterate.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// A solver parameter is outside its allowed range.
    #[error("{solver}: parameter `{name}` = {value} is invalid (allowed: {allowed})")]
    InvalidParameter {
        /// The solver whose parameter is wrong.
        solver: &'static str,
        /// The parameter's field name.
        name: &'static str,
        /// The rejected value.
        value: f64,
        /// The allowed range, in words.
        allowed: &'static str,
    },
    /// A run configuration value is outside its allowed range.
    #[error("run configuration: `{name}` = {value} is invalid (allowed: {allowed})")]
    InvalidConfig {
        /// The configuration field name.
        name: &'static str,
        /// The rejected value, printed.
        value: String,
        /// The allowed range, in words.
        allowed: &'static str,
    },
    /// A checkpoint does not belong to this solver or problem, or is malformed.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// Reading or writing a trace or checkpoint file failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// (De)serializing a checkpoint failed.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// A conjugate gradient solve failed (not positive definite, a NaN or infinity, a bad
    /// tolerance); reaching its iteration cap is not an error.
    #[error("linear solve: {0}")]
    LinearSolve(#[from] bilevel_linalg::CgError),
    /// A name (of a solver, an experiment, ...) is not known.
    #[error("unknown {what} `{name}`")]
    UnknownName {
        /// What was looked up.
        what: &'static str,
        /// The name asked for.
        name: String,
        /// The names known.
        known: Vec<String>,
    },
    /// A parameter key a solver does not have.
    #[error("unknown parameter `{key}` of solver {solver}")]
    UnknownKey {
        /// The solver.
        solver: &'static str,
        /// The key asked for.
        key: String,
        /// Every key the solver has.
        known: Vec<String>,
    },
    /// A parameter given as text that does not parse as its type.
    #[error("`{key}` of solver {solver} expects {expected}, not `{text}`")]
    BadValue {
        /// The solver.
        solver: &'static str,
        /// The key.
        key: String,
        /// The text given.
        text: String,
        /// What the key takes.
        expected: String,
    },
    /// The thread pool for parallel runs could not be built.
    #[error("thread pool: {0}")]
    ThreadPool(String),
}

/// Reject `value` for parameter `name` of `solver` unless `ok`.
pub(crate) fn check(
    solver: &'static str,
    name: &'static str,
    value: f64,
    ok: bool,
    allowed: &'static str,
) -> Result<(), Error> {
    if ok && !value.is_nan() {
        Ok(())
    } else {
        Err(Error::InvalidParameter {
            solver,
            name,
            value,
            allowed,
        })
    }
}

/// `value` must be finite and strictly positive.
pub(crate) fn check_pos(solver: &'static str, name: &'static str, value: f64) -> Result<(), Error> {
    check(
        solver,
        name,
        value,
        value.is_finite() && value > 0.0,
        "finite and > 0",
    )
}

/// `value` must be an integer count of at least `min`.
pub(crate) fn check_count(
    solver: &'static str,
    name: &'static str,
    value: usize,
    min: usize,
    allowed: &'static str,
) -> Result<(), Error> {
    check(solver, name, value as f64, value >= min, allowed)
}

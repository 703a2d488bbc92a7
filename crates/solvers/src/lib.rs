//! Gradient-based bilevel optimization: `min_x f(x, y)` subject to `y ∈ argmin_y g(x, y)`.
//!
//! - [`Problem`]: `f` and `g` written once over the AD tape; every oracle (gradients,
//!   Hessian- and Jacobian-vector products, `∇‖∇ᵧg‖²`) derived from them, overridable.
//! - [`Oracle`]: counted access to those oracles (Gc, MV and value calls, [`Counts`]).
//! - [`Solver`]: a method's state and one step; the [`algorithms`] module holds the methods.
//! - [`Runner`]: the whole loop: stopping rules (iterations, time budget, tolerance, a shared
//!   [`Stop`] signal), divergence detection, metrics ([`Metrics`]), checkpoints and observers
//!   ([`observe`]) that see every [`Record`] with its iterate; parallel batches ([`run_many`]).
//! - [`sampling`]: seeded minibatch oracles for problems that are sums over samples
//!   ([`DataSum`]).
//! - [`rules`]: each method's theory-backed step sizes from a problem's [`Smoothness`]
//!   ([`StepRules::from_smoothness`]), written next to the method.
//! - [`registry`]: every solver by name, with its defaults, builder and rules, and parameters
//!   set from `key=value` text.
//! - [`problems`]: the synthetic test problems with their known solutions.
//!
//! Nothing here forms a Hessian: every second-order quantity is a product computed by one
//! forward-over-reverse pass.
//!
//! # Example: single-loop AID on the quadratic problem
//! ```
//! use bilevel_solvers::algorithms::{SingleLoopAid, SingleLoopAidParams};
//! use bilevel_solvers::problems::QuadraticKappa;
//! use bilevel_solvers::{RunConfig, Runner};
//!
//! let problem = QuadraticKappa::new(10.0, 2);
//! let mut solver = SingleLoopAid::new(SingleLoopAidParams::for_lipschitz(problem.l(), 0.5)).unwrap();
//! let result = Runner::new(RunConfig::iters(500)).unwrap().run(&problem, &mut solver).unwrap();
//! let m = result.last_metrics().unwrap();
//! assert!(m.grad_phi_norm.unwrap() < 1e-4);
//! ```

pub mod algorithms;
pub mod atomic;
mod error;
mod implicit;
mod linear;
pub mod metrics;
mod named;
pub mod observe;
mod oracle;
pub mod problem;
pub mod problems;
pub mod record;
mod recursive;
pub mod registry;
pub mod rules;
pub mod runner;
pub mod sampling;
pub mod solver;
#[cfg(feature = "testing")]
pub mod testing;
pub mod vecops;

pub use error::Error;
pub use metrics::{Hints, InnerSolve, Measure, MetricEvaluator, Metrics};
pub use named::{Name, Named};
pub use oracle::{Counts, Oracle};
pub use problem::{Bounds, DataSum, Problem, Smoothness};
pub use record::{Checkpoint, Divergence, Record, RunInfo, Status};
pub use rules::{Derived, StepRules};
pub use runner::{
    Job, JobResult, Keep, RunConfig, RunResult, Runner, Stop, Tolerance, job_par, run_many,
};
pub use solver::{Iterate, Scalars, Solver};

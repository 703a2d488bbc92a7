//! The solver interface: a concrete state plus [`Solver::step`]; the [`Runner`](crate::Runner)
//! owns the loop.

use crate::error::Error;
use crate::oracle::Oracle;
use bilevel_linalg::Mat;
use serde::{Deserialize, Serialize};

/// The iterate every bilevel method carries: the upper-level `x` and lower-level `y`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Iterate {
    /// Upper-level variable.
    #[serde(with = "col")]
    pub x: Mat<f64>,
    /// Lower-level variable (for penalty methods: the penalized lower-level iterate).
    #[serde(with = "col")]
    pub y: Mat<f64>,
}

/// Named per-iteration quantities a step reports (step sizes, multipliers, direction norms).
pub type Scalars = Vec<(&'static str, f64)>;

/// A bilevel optimization method.
///
/// The method keeps its auxiliary state (warm-started linear-system solutions, multipliers,
/// momentum estimators, ...) in its own fields; `x` and `y` live in the [`Iterate`] the runner
/// passes in. Parameters are validated when the solver is built, so `step` cannot fail.
pub trait Solver: Send + std::fmt::Debug {
    /// The method's name in the [`registry`](crate::registry), e.g. `aid-single-loop` (the same
    /// for every parameter choice; checkpoints record it).
    fn name(&self) -> &'static str;

    /// Prepare the state from the starting iterate (warm starts, initial estimators). Called
    /// once by the runner before the first step; oracle calls made here are counted.
    fn init(&mut self, _o: &mut Oracle<'_>, _it: &mut Iterate) -> Result<(), Error> {
        Ok(())
    }

    /// One outer iteration `k` (counting from 0).
    fn step(&mut self, o: &mut Oracle<'_>, it: &mut Iterate, k: u64) -> Scalars;

    /// Auxiliary vectors, checked for divergence after each step.
    fn aux(&self) -> Vec<(&'static str, &Mat<f64>)> {
        Vec::new()
    }

    /// The rule giving the multiplier `λ` at a point, such that `ν = 2λ∇ᵧg` there is the
    /// method's estimate of the KKT multiplier of the gradient reformulation (PGD-QP), for the
    /// ε-KKT metric ([`KktMultiplier`](crate::algorithms::KktMultiplier) says why the factor 2).
    fn kkt_multiplier(&self) -> Option<crate::algorithms::KktMultiplier> {
        None
    }

    /// The shadow implicit gradient `w` (GALET), for the GALET residual metrics.
    fn shadow(&self) -> Option<&Mat<f64>> {
        None
    }

    /// The full auxiliary state as JSON (f64 written exactly), for checkpoints.
    fn save_state(&self) -> serde_json::Value;

    /// Restore the state written by [`Solver::save_state`].
    fn load_state(&mut self, state: serde_json::Value) -> Result<(), Error>;
}

/// Implements [`Solver::save_state`] and [`Solver::load_state`] for a solver whose whole mutable
/// state is a serde field named `state`.
macro_rules! state_io {
    () => {
        fn save_state(&self) -> serde_json::Value {
            serde_json::to_value(&self.state).expect("solver state serializes")
        }
        fn load_state(&mut self, state: serde_json::Value) -> Result<(), crate::Error> {
            self.state = serde_json::from_value(state)?;
            Ok(())
        }
    };
}
pub(crate) use state_io;

/// Serde for `n × 1` columns as plain arrays of numbers.
pub(crate) mod col {
    use bilevel_linalg::Mat;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(m: &Mat<f64>, s: S) -> Result<S::Ok, S::Error> {
        m.col_as_slice(0).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Mat<f64>, D::Error> {
        let v = Vec::<f64>::deserialize(d)?;
        Ok(crate::vecops::from_slice(&v))
    }
}

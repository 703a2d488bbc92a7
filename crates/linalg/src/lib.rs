//! Dense linear algebra for the `bilevel` workspace, on [faer].
//!
//! This crate is the only one in the workspace whose public API names faer types; every other
//! crate uses the re-exports below ([`Mat`], [`MatRef`], [`MatMut`], [`Par`], [`Accum`]), so that
//! a faer upgrade touches one crate. Everything is `f64`.
//!
//! Every kernel takes its parallelism explicitly as a [`Par`]. Below a size threshold
//! ([`PAR_MIN_FLOPS`]) a kernel runs sequentially whatever it is asked, so that tiny matrices never
//! pay for thread wake-ups.
//!
//! Vectors are `n × 1` matrices ([`Mat`] with one column) throughout the workspace, so that a
//! single storage type serves the automatic differentiation tape and the solvers alike.

pub use faer::{Accum, Mat, MatMut, MatRef, Par};

pub mod kernels;

pub use kernels::{effective_par, matmul, PAR_MIN_FLOPS};

//! Exact automatic differentiation on dense `f64` tensors, built for bilevel optimization.
//!
//! - [`Tape`]: a Wengert list of tensor operations (matrix products, elementwise functions,
//!   reductions, softmax cross-entropy, ...) recorded eagerly; reverse sweeps give gradients and
//!   VJPs, a forward tangent sweep gives JVPs, and a forward-over-reverse sweep gives a
//!   Hessian-vector product together with the gradient in one pass.
//! - [`api`]: the JAX vocabulary on top ([`value_and_grad`], [`jvp`], [`vjp`], [`hvp`]) and
//!   [`Evaluator`] for two-block functions `g(x, y)` with the products bilevel methods need:
//!   `∇ₓg`, `∇ᵧg`, `∇²ᵧᵧg·v`, `∇²ₓᵧg·v`, `∇²ᵧₓg·u`.
//! - [`Dual`]: a forward-mode dual number for scalar code; [`DualMat`] its tensor form (value and
//!   tangent as two matrices), returned by [`jvp`].
//!
//! Nothing here forms a Hessian: every second-order product costs a small constant times one
//! gradient.

pub mod api;
pub mod dual;
mod ops;
pub mod tape;

pub use api::{DualMat, Evaluator, Hvp, Hvp2, Hvp2Out, Linearized, hvp, jvp, value_and_grad, vjp};
pub use dual::Dual;
pub use tape::{SPARSE_MAX_DENSITY, Tape, Var};

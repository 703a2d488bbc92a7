//! Dense linear algebra for the `bilevel` workspace, on [faer].
//!
//! This crate is the only one in the workspace whose public API names faer types; every other
//! crate uses the re-exports below ([`Mat`], [`MatRef`], [`MatMut`], [`Par`], [`Accum`]), so that
//! a faer upgrade touches one crate. Everything is `f64`.
//!
//! Every kernel takes its parallelism explicitly as a [`Par`]. Below a size threshold
//! ([`PAR_MIN_FLOPS`]) a kernel runs sequentially whatever it is asked, so that tiny matrices never
//! pay for thread wake-ups. faer's high-level APIs that read the global parallelism setting are
//! never used; tests and benchmarks call [`disable_global_parallelism`] so that any such use
//! would panic.
//!
//! Vectors are `n × 1` matrices ([`Mat`] with one column) throughout the workspace, so that a
//! single storage type serves the automatic differentiation tape and the solvers alike.
//!
//! Modules:
//! - [`kernels`]: matrix products and level-1 kernels (dot, `axpy`, norms, elementwise maps);
//! - [`dense`]: Cholesky and LU solves, symmetric eigendecomposition, thin SVD, minimal-norm
//!   least squares and the pseudo-inverse;
//! - [`iterative`]: matrix-free solvers on a [`LinOp`]: conjugate gradient and the truncated
//!   Neumann series;
//! - [`spectrum`]: extreme eigenvalues of a symmetric operator from matrix-vector products
//!   (power iteration, Lanczos), for step sizes and condition numbers;
//! - [`pca`]: principal component analysis;
//! - [`sparse`]: data matrices stored by their nonzero entries, and their block products;
//! - [`simd`]: vectorized elementary functions (`exp`);
//! - [`aligned`]: cache-line aligned buffers for the product kernels;
//! - [`error`]: the typed errors [`LinalgError`] and [`CgError`].

#![deny(missing_docs)]

pub use faer::{Accum, Mat, MatMut, MatRef, Par};

pub mod aligned;
pub mod dense;
pub mod error;
mod gemm;
pub mod iterative;
pub mod kernels;
mod pages;
pub mod pca;
pub mod simd;
pub mod sparse;
pub mod spectrum;

pub use aligned::{AlignedVec, LANES};
pub use dense::{
    Cholesky, Lu, Svd, SymEigen, cholesky_solve, default_rcond, lstsq_min_norm, lu_solve,
    pseudo_inverse, svd_thin, sym_eigen, sym_eigenvalues,
};
pub use error::{CgError, LinalgError};
pub use gemm::{Simd, joint_product_pays};
pub use iterative::{
    CgInfo, CgParams, CgStart, CgWorkspace, DenseOp, LinOp, NeumannInfo, NeumannWorkspace,
    conjugate_gradient, neumann_series,
};
pub use kernels::{
    PAR_MIN_FLOPS, all_finite, as_contiguous_slice, axpby, axpy, clear_upper_simd_state, dot,
    effective_par, map, map_inplace, matmul, matmul_ahead, matvec, norm_l2, norm_l2_sqr, norm_max,
    reshape_col, reshape_col_mut, scale, zip_map,
};
pub use pages::advise_huge_pages;
pub use pca::Pca;
pub use simd::exp_diff_into;
pub use sparse::{SparseBlock, SparseRows, SparseScratch, sparse_mul, sparse_t_mul_add};
pub use spectrum::{
    LanczosParams, PowerParams, PowerResult, SpectrumEstimate, lanczos_extreme_eigenvalues,
    power_iteration,
};

/// Makes faer panic whenever code uses its global parallelism setting.
///
/// Every kernel of this crate takes its [`Par`] explicitly, so nothing here reads the global
/// setting; call this at the start of tests and benchmarks so that an accidental use of faer's
/// high-level API (`&a * &b`, `Mat::llt`, …) is caught.
///
/// # Example
/// ```
/// bilevel_linalg::disable_global_parallelism();
/// let a = bilevel_linalg::Mat::<f64>::identity(2, 2);
/// assert_eq!(bilevel_linalg::dot(a.as_ref(), a.as_ref()), 2.0);
/// ```
pub fn disable_global_parallelism() {
    faer::disable_global_parallelism();
}

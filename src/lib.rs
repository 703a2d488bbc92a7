#![doc = include_str!("../README.md")]
pub use bilevel_ad as ad;
pub use bilevel_datasets as datasets;
pub use bilevel_linalg as linalg;
pub use bilevel_solvers as solvers;

pub mod cli;

//! Data for the `bilevel` workspace: IDX files, MNIST and Fashion-MNIST, and data hyper-cleaning
//! tasks built from them.
//!
//! - [`idx`] reads any IDX file (memory-mapped, zero-copy where possible) and writes small ones.
//! - [`cache`] decompresses `.gz` files once into a cache that later reads map directly.
//! - [`checksum`] verifies files against a `sha256sum`-format sums file.
//! - [`mnist`] finds, loads and checks the MNIST / Fashion-MNIST splits, resolves data folders
//!   (`BILEVEL_DATA_DIR`, the test split shipped in `data/mnist`), and builds feature matrices.
//! - [`hyperclean`] draws data hyper-cleaning tasks (corrupted training set, clean validation and
//!   test sets, ground-truth corruption mask) with presets for the published protocols.
//!
//! Every fallible function returns a [`DatasetError`] naming the file and the fault; bad input
//! never panics.
//!
//! The MNIST test split shipped with the repository is the MNIST database by Yann LeCun, Corinna
//! Cortes and Christopher J. C. Burges, licensed CC BY-SA 3.0.
//!
//! # Example
//! ```
//! use bilevel_datasets::hyperclean::{HypercleanConfig, Preset};
//! use bilevel_datasets::mnist::{load_mnist, LoadOptions, Split};
//!
//! // The test split is always available (shipped); the training split needs BILEVEL_DATA_DIR.
//! let test = load_mnist(None, Split::Test)?;
//! assert_eq!(test.len(), 10_000);
//!
//! let task = HypercleanConfig::preset(Preset::PgdQp).with_seed(7).with_bias(true).build(None, Some(&test))?;
//! assert_eq!((task.train.x.nrows(), task.train.x.ncols()), (5000, 785));
//! # Ok::<(), bilevel_datasets::DatasetError>(())
//! ```

pub mod cache;
pub mod checksum;
pub mod error;
mod header;
pub mod hyperclean;
pub mod idx;
mod kinds;
pub mod mnist;

pub use cache::CachePolicy;
pub use error::{DatasetError, Result};
pub use hyperclean::{Corruption, HypercleanConfig, HypercleanTask, Preset};
pub use idx::{ElementType, IdxFile};
pub use mnist::{Dataset, DatasetKind, LoadOptions, Split};

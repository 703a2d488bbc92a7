//! MNIST and Fashion-MNIST: finding the files of a split, loading and checking them, and turning
//! images into feature matrices.
//!
//! Both datasets use the same file names, in either of two spellings, each raw or gzipped:
//!
//! | split | images | labels |
//! |---|---|---|
//! | [`Split::Train`] (60,000) | `train-images-idx3-ubyte` or `train-images.idx3-ubyte` | `train-labels-idx1-ubyte` or `train-labels.idx1-ubyte` |
//! | [`Split::Test`] (10,000) | `t10k-images-idx3-ubyte` or `t10k-images.idx3-ubyte` | `t10k-labels-idx1-ubyte` or `t10k-labels.idx1-ubyte` |
//!
//! The repository ships the MNIST test split (gzipped, with its SHA-256 sums) in `data/mnist`
//! ([`shipped_mnist_dir`]); full MNIST comes from a folder named by the caller or by the
//! environment variable [`DATA_DIR_ENV`] (`BILEVEL_DATA_DIR`). Fashion-MNIST comes from a folder
//! named by the caller, else by [`FASHION_DIR_ENV`] (`BILEVEL_FASHION_MNIST_DIR`), else from
//! where Debian's package `dataset-fashion-mnist` installs it ([`DEBIAN_FASHION_MNIST_DIR`]).
//! [`find_dir`] searches them.
//!
//! Files are checked as they load ([`Verify`]): by default against a `SHA256SUMS` file beside
//! them, when there is one; [`Verify::Published`] checks them against the digests of the
//! published files built into this crate, for folders that ship none (such as Debian's).

use std::path::{Path, PathBuf};

use bilevel_linalg::Mat;

use crate::cache::{self, CachePolicy};
use crate::checksum::Sha256Sums;
use crate::error::{DatasetError, Result};
use crate::idx::{ElementType, IdxFile};
pub use crate::kinds::{DatasetKind, Split};

/// Environment variable naming a folder with full MNIST (all four files).
pub const DATA_DIR_ENV: &str = "BILEVEL_DATA_DIR";

/// Environment variable naming a folder with Fashion-MNIST (all four files).
pub const FASHION_DIR_ENV: &str = "BILEVEL_FASHION_MNIST_DIR";

/// Where Debian's package `dataset-fashion-mnist` installs the four Fashion-MNIST files.
pub const DEBIAN_FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Name of the sums file shipped beside the data, in the `sha256sum` format.
pub const SUMS_FILE_NAME: &str = "SHA256SUMS";

/// The folder holding the MNIST test split shipped with this repository (`data/mnist`).
///
/// It is found from this crate's source location, so it is meant for code, tests, examples and
/// benchmarks built from the repository.
pub fn shipped_mnist_dir() -> PathBuf {
    repo_root().join("data").join("mnist")
}

/// The folder named by [`DATA_DIR_ENV`], if that variable is set and not empty.
///
/// A relative path is taken relative to the current folder when it exists there, else relative
/// to the repository root when it exists there (`cargo test` runs each crate's tests from the
/// crate's own folder, so `BILEVEL_DATA_DIR=../shared/data/mnist` set at the repository root
/// still works), else returned as given.
pub fn env_data_dir() -> Option<PathBuf> {
    env_dir(DATA_DIR_ENV)
}

/// The folder named by [`FASHION_DIR_ENV`], if that variable is set and not empty (a relative
/// path is resolved as for [`env_data_dir`]).
pub fn env_fashion_dir() -> Option<PathBuf> {
    env_dir(FASHION_DIR_ENV)
}

fn env_dir(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(|v| resolve_relative(PathBuf::from(v), &repo_root()))
}

/// The repository root, found from this crate's source location.
fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    // crates/datasets → the repository root.
    manifest
        .parent()
        .and_then(Path::parent)
        .map_or_else(|| manifest.join("..").join(".."), Path::to_path_buf)
}

/// `path` if absolute or existing from the current folder, else `root/path` if that exists, else
/// `path`.
fn resolve_relative(path: PathBuf, root: &Path) -> PathBuf {
    if path.is_absolute() || path.exists() {
        return path;
    }
    let from_root = root.join(&path);
    if from_root.exists() { from_root } else { path }
}

/// The folders [`find_dir`] searches, in order. For MNIST: `explicit` if given, else
/// [`env_data_dir`] if set; then [`shipped_mnist_dir`] (which holds the test split only). For
/// Fashion-MNIST: `explicit` if given, else [`env_fashion_dir`] if set, else
/// [`DEBIAN_FASHION_MNIST_DIR`] (a folder named by [`DATA_DIR_ENV`] is MNIST's, never searched
/// for Fashion-MNIST).
pub fn search_dirs(kind: DatasetKind, explicit: Option<&Path>) -> Vec<PathBuf> {
    let named = explicit.map(Path::to_path_buf);
    match kind {
        DatasetKind::Mnist => named
            .or_else(env_data_dir)
            .into_iter()
            .chain([shipped_mnist_dir()])
            .collect(),
        DatasetKind::FashionMnist => vec![
            named
                .or_else(env_fashion_dir)
                .unwrap_or_else(|| PathBuf::from(DEBIAN_FASHION_MNIST_DIR)),
        ],
    }
}

/// The first folder of [`search_dirs`] that holds both files of `split`.
///
/// # Errors
/// [`DatasetError::NotFound`], listing the folders searched and how to point at full MNIST.
///
/// # Example
/// ```
/// use bilevel_datasets::mnist::{find_dir, DatasetKind, Split};
/// // The test split is always found: at worst in the shipped folder.
/// let dir = find_dir(DatasetKind::Mnist, None, Split::Test).unwrap();
/// assert!(dir.join("t10k-labels-idx1-ubyte.gz").exists() || dir.join("t10k-labels-idx1-ubyte").exists()
///     || dir.join("t10k-labels.idx1-ubyte.gz").exists() || dir.join("t10k-labels.idx1-ubyte").exists());
/// ```
pub fn find_dir(kind: DatasetKind, explicit: Option<&Path>, split: Split) -> Result<PathBuf> {
    let searched = search_dirs(kind, explicit);
    searched
        .iter()
        .find(|d| find_split_files(d, split).is_some())
        .cloned()
        .ok_or(DatasetError::NotFound {
            kind,
            split,
            searched,
        })
}

/// The image and label files of one split in a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitFiles {
    /// The image file (`…-images-idx3-ubyte`, possibly `.gz`).
    pub images: PathBuf,
    /// The label file (`…-labels-idx1-ubyte`, possibly `.gz`).
    pub labels: PathBuf,
}

/// Finds the files of `split` in `dir`, trying for each file the dash spelling then the dot
/// spelling, each gzipped first then raw (so that a stale decompressed copy beside a `.gz` is
/// checked and rebuilt rather than trusted). `None` unless both files are there.
pub fn find_split_files(dir: &Path, split: Split) -> Option<SplitFiles> {
    let find = |names: [&str; 2]| {
        names.iter().find_map(|n| {
            [format!("{n}.gz"), (*n).to_owned()]
                .into_iter()
                .map(|f| dir.join(f))
                .find(|p| p.is_file())
        })
    };
    Some(SplitFiles {
        images: find(split.image_file_names())?,
        labels: find(split.label_file_names())?,
    })
}

/// How the files of a split are checked against SHA-256 digests as they load.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Verify {
    /// Not checked.
    Off,
    /// Against the [`SUMS_FILE_NAME`] file in each file's folder, when there is one; a file it
    /// does not list is not checked.
    #[default]
    IfListed,
    /// Against this `sha256sum`-format file, which must list every file loaded.
    SumsFile(PathBuf),
    /// Against the digests of the published files of the dataset kind
    /// ([`DatasetKind::published_sums`]); a file that is not one of them (by its standard name)
    /// is an error.
    Published,
}

/// How to load a split: which dataset it is, how to verify it, where to cache decompressed files.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    kind: DatasetKind,
    verify: Verify,
    cache: CachePolicy,
}

impl LoadOptions {
    /// MNIST, [`Verify::IfListed`], cache from [`CachePolicy::from_env`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets which dataset the files hold.
    pub fn with_kind(mut self, kind: DatasetKind) -> Self {
        self.kind = kind;
        self
    }

    /// Sets how the files are verified.
    ///
    /// A file is looked up in a sums file by its own name, by its name without `.gz`, and by the
    /// standard dash spelling; a listed `.gz` name is checked against the compressed bytes, any
    /// other name against the decompressed IDX bytes.
    pub fn with_verify(mut self, verify: Verify) -> Self {
        self.verify = verify;
        self
    }

    /// Verifies each file against the `sha256sum`-format file `sums`; `None` turns verification
    /// off. Shorthand for [`LoadOptions::with_verify`] with [`Verify::SumsFile`] or
    /// [`Verify::Off`].
    pub fn with_checksums(self, sums: Option<PathBuf>) -> Self {
        self.with_verify(sums.map_or(Verify::Off, Verify::SumsFile))
    }

    /// Sets where decompressed copies of `.gz` files are kept.
    pub fn with_cache(mut self, cache: CachePolicy) -> Self {
        self.cache = cache;
        self
    }

    /// The dataset kind.
    pub fn kind(&self) -> DatasetKind {
        self.kind
    }

    /// How files are verified.
    pub fn verify(&self) -> &Verify {
        &self.verify
    }

    /// The cache policy.
    pub fn cache(&self) -> &CachePolicy {
        &self.cache
    }
}

/// Loads `split` from the folder `dir`.
///
/// # Errors
/// [`DatasetError::NotFound`] if the folder lacks either file, and any error of [`load_files`].
///
/// # Example
/// ```
/// use bilevel_datasets::mnist::{load_split, shipped_mnist_dir, LoadOptions, Split};
/// let dir = shipped_mnist_dir();
/// let opts = LoadOptions::new().with_checksums(Some(dir.join("SHA256SUMS")));
/// let test = load_split(&dir, Split::Test, &opts)?;
/// assert_eq!((test.len(), test.rows(), test.cols()), (10_000, 28, 28));
/// assert_eq!(test.label(0), 7);
/// let x = test.features(&[0, 1, 2], true); // 3 × 785, pixels in [0, 1], then a bias column
/// assert_eq!((x.nrows(), x.ncols()), (3, 785));
/// assert_eq!(x[(0, 784)], 1.0);
/// # Ok::<(), bilevel_datasets::DatasetError>(())
/// ```
pub fn load_split(dir: &Path, split: Split, opts: &LoadOptions) -> Result<Dataset> {
    let files = find_split_files(dir, split).ok_or_else(|| DatasetError::NotFound {
        kind: opts.kind,
        split,
        searched: vec![dir.to_path_buf()],
    })?;
    load_files(&files.images, &files.labels, opts)
}

/// Loads `split` of MNIST from the first folder of [`search_dirs`] that has it (`explicit`, else
/// `$BILEVEL_DATA_DIR`, then the shipped test split), without checksum verification.
///
/// # Errors
/// [`DatasetError::NotFound`] naming the folders searched and how to point at full MNIST, and
/// any error of [`load_files`].
pub fn load_mnist(explicit: Option<&Path>, split: Split) -> Result<Dataset> {
    let dir = find_dir(DatasetKind::Mnist, explicit, split)?;
    load_split(&dir, split, &LoadOptions::new())
}

/// Loads an image file and a label file (raw or `.gz`), checks them against each other and
/// against SHA-256 digests as `opts` says ([`Verify`]).
///
/// # Errors
/// Any IDX fault of [`IdxFile::open_with`]; the shape and label faults of [`Dataset::from_idx`];
/// and the checksum faults of [`Sha256Sums`].
pub fn load_files(images: &Path, labels: &Path, opts: &LoadOptions) -> Result<Dataset> {
    let image_file = IdxFile::open_with(images, &opts.cache)?;
    let label_file = IdxFile::open_with(labels, &opts.cache)?;
    for (source, idx) in [(images, &image_file), (labels, &label_file)] {
        let listed = |sums: &Sha256Sums| verify(sums, source, idx, true);
        match &opts.verify {
            Verify::Off => {}
            Verify::IfListed => {
                let sums = source
                    .parent()
                    .map(|d| d.join(SUMS_FILE_NAME))
                    .filter(|p| p.is_file());
                if let Some(path) = sums {
                    verify(&Sha256Sums::read(path)?, source, idx, false)?;
                }
            }
            Verify::SumsFile(path) => listed(&Sha256Sums::read(path)?)?,
            Verify::Published => {
                let name = format!("<published {} digests>", opts.kind);
                listed(&Sha256Sums::parse(opts.kind.published_sums(), name)?)?;
            }
        }
    }
    Dataset::from_idx(opts.kind, image_file, label_file, images, labels)
}

/// Checks the file loaded from `source` against `sums`; a file `sums` does not list is an error
/// when `required`, else not checked.
fn verify(sums: &Sha256Sums, source: &Path, idx: &IdxFile, required: bool) -> Result<()> {
    let name = source
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = without_gz(&name).to_owned();
    let dash = stem.replacen(".idx", "-idx", 1);
    if cache::is_gz(source) && sums.get(&name).is_some() {
        let bytes = std::fs::read(source).map_err(crate::error::io_err(source, "cannot read"))?;
        return sums.verify(&[&name], source, &bytes);
    }
    let names = [stem.as_str(), dash.as_str()];
    if !required && names.iter().all(|n| sums.get(n).is_none()) {
        return Ok(());
    }
    sums.verify_digest(&names, source, &idx.sha256())
}

/// Whether `path`'s file name is a standard image file name (either spelling, raw or `.gz`).
fn is_standard_image_name(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    Split::ALL
        .iter()
        .any(|s| s.image_file_names().contains(&without_gz(name)))
}

/// `name` without a `.gz` (or `.GZ`) suffix.
fn without_gz(name: &str) -> &str {
    name.strip_suffix(".gz")
        .or_else(|| name.strip_suffix(".GZ"))
        .unwrap_or(name)
}

/// The images and labels of one split, checked against each other.
///
/// Images stay in their (memory-mapped) file; [`Dataset::features`] turns chosen samples into an
/// `f64` feature matrix.
#[derive(Debug)]
pub struct Dataset {
    kind: DatasetKind,
    images: IdxFile,
    labels: IdxFile,
    images_source: PathBuf,
    labels_source: PathBuf,
    len: usize,
    rows: usize,
    cols: usize,
}

impl Dataset {
    /// Builds a dataset from opened IDX files; `images_source` and `labels_source` name them in
    /// errors (e.g. the `.gz` files they came from).
    ///
    /// # Errors
    /// [`DatasetError::TypeMismatch`] or [`DatasetError::UnexpectedShape`] unless the images are
    /// `u8` of shape `n × rows × cols` with `n`, `rows` and `cols` non-zero (and `rows × cols`
    /// the kind's [`DatasetKind::image_shape`] when `images_source` has a standard image file
    /// name, such as `train-images-idx3-ubyte.gz`) and the labels `u8` of shape `n`;
    /// [`DatasetError::CountMismatch`] if the `n` differ; [`DatasetError::LabelOutOfRange`] for
    /// the first label `≥ kind.num_classes()`. Every size a [`Dataset`] allocates from later
    /// (feature matrices) is then bounded by the data the files hold.
    pub fn from_idx(
        kind: DatasetKind,
        images: IdxFile,
        labels: IdxFile,
        images_source: &Path,
        labels_source: &Path,
    ) -> Result<Self> {
        for (f, src) in [(&images, images_source), (&labels, labels_source)] {
            if f.header().element_type() != ElementType::U8 {
                return Err(DatasetError::TypeMismatch {
                    path: src.to_path_buf(),
                    expected: ElementType::U8,
                    found: f.header().element_type(),
                });
            }
        }
        let &[n, rows, cols] = images.header().dims() else {
            return Err(DatasetError::UnexpectedShape {
                path: images_source.to_path_buf(),
                expected: "rank 3 (count × rows × columns)",
                found: images.header().dims().to_vec(),
            });
        };
        if n == 0 || rows == 0 || cols == 0 {
            return Err(DatasetError::UnexpectedShape {
                path: images_source.to_path_buf(),
                expected: "count, rows and columns all non-zero",
                found: images.header().dims().to_vec(),
            });
        }
        if is_standard_image_name(images_source) && (rows, cols) != kind.image_shape() {
            return Err(DatasetError::UnexpectedShape {
                path: images_source.to_path_buf(),
                expected: "count × 28 × 28, as every file of that standard MNIST / Fashion-MNIST name",
                found: images.header().dims().to_vec(),
            });
        }
        let &[n_labels] = labels.header().dims() else {
            return Err(DatasetError::UnexpectedShape {
                path: labels_source.to_path_buf(),
                expected: "rank 1 (count)",
                found: labels.header().dims().to_vec(),
            });
        };
        if n != n_labels {
            return Err(DatasetError::CountMismatch {
                images_path: images_source.to_path_buf(),
                labels_path: labels_source.to_path_buf(),
                images: n,
                labels: n_labels,
            });
        }
        let classes = kind.num_classes();
        if let Some((index, &label)) = labels
            .data_bytes()
            .iter()
            .enumerate()
            .find(|(_, l)| usize::from(**l) >= classes)
        {
            return Err(DatasetError::LabelOutOfRange {
                path: labels_source.to_path_buf(),
                index,
                label,
                classes,
            });
        }
        Ok(Self {
            kind,
            images,
            labels,
            images_source: images_source.to_path_buf(),
            labels_source: labels_source.to_path_buf(),
            len: n,
            rows,
            cols,
        })
    }

    /// Which dataset this is.
    pub fn kind(&self) -> DatasetKind {
        self.kind
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there is no sample.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Image height in pixels (28).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Image width in pixels (28).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Pixels per image (784), the number of features without bias.
    pub fn pixels(&self) -> usize {
        self.rows * self.cols
    }

    /// Number of classes (10).
    pub fn num_classes(&self) -> usize {
        self.kind.num_classes()
    }

    /// The file the images came from (as given: `.gz` or raw).
    pub fn images_path(&self) -> &Path {
        &self.images_source
    }

    /// The file the labels came from (as given: `.gz` or raw).
    pub fn labels_path(&self) -> &Path {
        &self.labels_source
    }

    /// All pixels, image after image, row-major within an image, borrowed from the mapped file.
    pub fn pixel_bytes(&self) -> &[u8] {
        self.images.data_bytes()
    }

    /// All labels, borrowed from the mapped file; each is `< num_classes()`.
    pub fn labels(&self) -> &[u8] {
        self.labels.data_bytes()
    }

    /// The pixels of image `i`, row-major.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn image(&self, i: usize) -> &[u8] {
        let d = self.pixels();
        &self.pixel_bytes()[i * d..(i + 1) * d]
    }

    /// The label of sample `i`.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn label(&self, i: usize) -> u8 {
        self.labels()[i]
    }

    /// The images `indices` as an `indices.len() × (pixels + bias)` matrix, one sample per row,
    /// each pixel scaled to `[0, 1]` as `value / 255`, followed by a column of ones if `bias`.
    ///
    /// # Panics
    /// If an index is `>= self.len()`.
    pub fn features(&self, indices: &[usize], bias: bool) -> Mat<f64> {
        let d = self.pixels();
        let n = indices.len();
        let mut x = Mat::<f64>::zeros(n, d + usize::from(bias));
        // The matrix is column-major and the images row-major: copy in blocks of rows so that the
        // images of a block stay in cache while their columns are written contiguously.
        const BLOCK: usize = 64;
        let mut block: Vec<&[u8]> = Vec::with_capacity(BLOCK);
        for (b, chunk) in indices.chunks(BLOCK).enumerate() {
            block.clear();
            block.extend(chunk.iter().map(|&i| self.image(i)));
            let start = b * BLOCK;
            for j in 0..d {
                let col = &mut x.col_as_slice_mut(j)[start..start + chunk.len()];
                for (dst, img) in col.iter_mut().zip(&block) {
                    *dst = f64::from(img[j]) / 255.0;
                }
            }
        }
        if bias {
            x.col_as_slice_mut(d).fill(1.0);
        }
        x
    }

    /// The images `indices` feature-major: a `(pixels + bias) × indices.len()` matrix, one sample
    /// per column (each image's pixels contiguous), scaled as in [`Dataset::features`]. This is
    /// the layout the data hyper-cleaning problems store.
    ///
    /// # Panics
    /// If an index is `>= self.len()`.
    ///
    /// # Example
    /// ```no_run
    /// use bilevel_datasets::{Split, mnist::load_mnist};
    /// let test = load_mnist(None, Split::Test)?;
    /// let x = test.feature_columns(&[0, 1, 2], true);
    /// assert_eq!((x.nrows(), x.ncols()), (785, 3));
    /// assert_eq!(x[(784, 0)], 1.0); // the bias feature
    /// # Ok::<(), bilevel_datasets::DatasetError>(())
    /// ```
    pub fn feature_columns(&self, indices: &[usize], bias: bool) -> Mat<f64> {
        let d = self.pixels();
        let mut x = Mat::<f64>::zeros(d + usize::from(bias), indices.len());
        for (k, &i) in indices.iter().enumerate() {
            let col = x.col_as_slice_mut(k);
            for (dst, &p) in col.iter_mut().zip(self.image(i)) {
                *dst = f64::from(p) / 255.0;
            }
            if bias {
                col[d] = 1.0;
            }
        }
        x
    }

    /// All images as features ([`Dataset::features`] of `0..len`).
    pub fn all_features(&self, bias: bool) -> Mat<f64> {
        let all: Vec<usize> = (0..self.len).collect();
        self.features(&all, bias)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_data_dir_falls_back_to_the_repository_root() {
        let root = repo_root();
        assert!(root.join("data").join("mnist").is_dir());
        // Exists from the repository root only (tests run from crates/datasets).
        let rel = PathBuf::from("data/mnist");
        assert_eq!(
            resolve_relative(rel.clone(), &root),
            root.join("data/mnist")
        );
        // Exists from the current folder: kept.
        assert_eq!(
            resolve_relative(PathBuf::from("src"), &root),
            PathBuf::from("src")
        );
        // Exists nowhere, or absolute: unchanged.
        let nowhere = PathBuf::from("no/such/folder");
        assert_eq!(resolve_relative(nowhere.clone(), &root), nowhere);
        let abs = root.join("no-such");
        assert_eq!(resolve_relative(abs.clone(), &root), abs);
    }
}

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
//! environment variable [`DATA_DIR_ENV`] (`BILEVEL_DATA_DIR`); [`find_dir`] searches them.

use std::path::{Path, PathBuf};

use bilevel_linalg::Mat;

use crate::cache::{self, CachePolicy};
use crate::checksum::Sha256Sums;
use crate::error::{DatasetError, Result};
use crate::idx::{ElementType, IdxFile};
pub use crate::kinds::Split;

/// Environment variable naming a folder with full MNIST (all four files).
pub const DATA_DIR_ENV: &str = "BILEVEL_DATA_DIR";

/// Name of the sums file shipped beside the data, in the `sha256sum` format.
pub const SUMS_FILE_NAME: &str = "SHA256SUMS";

/// Which dataset a folder holds; both have 28×28 grey images in 10 classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DatasetKind {
    /// Handwritten digits: the MNIST database by Yann LeCun, Corinna Cortes and Christopher J. C.
    /// Burges.
    #[default]
    Mnist,
    /// Zalando's Fashion-MNIST (Han Xiao, Kashif Rasul and Roland Vollgraf): clothing images.
    FashionMnist,
}

impl DatasetKind {
    /// Number of classes (10 for both).
    pub fn num_classes(self) -> usize {
        10
    }

    /// Human-readable class names, indexed by label.
    pub fn class_names(self) -> [&'static str; 10] {
        match self {
            DatasetKind::Mnist => ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
            DatasetKind::FashionMnist => [
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ],
        }
    }
}

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
    std::env::var_os(DATA_DIR_ENV)
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

/// The folders [`find_dir`] searches, in order: `explicit` if given, else [`env_data_dir`] if set;
/// then, for MNIST only, [`shipped_mnist_dir`] (which holds the test split only).
pub fn search_dirs(kind: DatasetKind, explicit: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = explicit
        .map(Path::to_path_buf)
        .or_else(env_data_dir)
        .into_iter()
        .collect();
    if kind == DatasetKind::Mnist {
        dirs.push(shipped_mnist_dir());
    }
    dirs
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
        .ok_or(DatasetError::NotFound { split, searched })
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

/// How to load a split: which dataset it is, whether to verify SHA-256 sums, where to cache
/// decompressed files.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    kind: DatasetKind,
    checksums: Option<PathBuf>,
    cache: CachePolicy,
}

impl LoadOptions {
    /// MNIST, no checksum verification, cache from [`CachePolicy::from_env`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets which dataset the files hold.
    pub fn with_kind(mut self, kind: DatasetKind) -> Self {
        self.kind = kind;
        self
    }

    /// Verifies each file against the `sha256sum`-format file `sums` (`None`: no verification).
    ///
    /// A file is looked up in the sums file by its own name, by its name without `.gz`, and by
    /// the standard dash spelling; a listed `.gz` name is checked against the compressed bytes,
    /// any other name against the decompressed IDX bytes.
    pub fn with_checksums(mut self, sums: Option<PathBuf>) -> Self {
        self.checksums = sums;
        self
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

    /// The sums file, if verification is on.
    pub fn checksums(&self) -> Option<&Path> {
        self.checksums.as_deref()
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

/// Loads an image file and a label file (raw or `.gz`), checks them against each other and,
/// if asked, against SHA-256 sums.
///
/// # Errors
/// Any IDX fault of [`IdxFile::open_with`]; [`DatasetError::TypeMismatch`] or
/// [`DatasetError::UnexpectedShape`] unless the images are `u8` of shape `n × rows × cols` and the
/// labels `u8` of shape `n`; [`DatasetError::CountMismatch`];
/// [`DatasetError::LabelOutOfRange`]; and the checksum faults of [`Sha256Sums`].
pub fn load_files(images: &Path, labels: &Path, opts: &LoadOptions) -> Result<Dataset> {
    let image_file = IdxFile::open_with(images, &opts.cache)?;
    let label_file = IdxFile::open_with(labels, &opts.cache)?;
    if let Some(sums_path) = &opts.checksums {
        let sums = Sha256Sums::read(sums_path)?;
        verify(&sums, images, &image_file)?;
        verify(&sums, labels, &label_file)?;
    }
    Dataset::from_idx(opts.kind, image_file, label_file, images, labels)
}

/// Checks the file loaded from `source` against `sums`.
fn verify(sums: &Sha256Sums, source: &Path, idx: &IdxFile) -> Result<()> {
    let name = source
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name
        .strip_suffix(".gz")
        .or_else(|| name.strip_suffix(".GZ"))
        .unwrap_or(&name)
        .to_owned();
    let dash = stem.replacen(".idx", "-idx", 1);
    if cache::is_gz(source) && sums.get(&name).is_some() {
        let bytes = std::fs::read(source).map_err(crate::error::io_err(source, "cannot read"))?;
        return sums.verify(&[&name], source, &bytes);
    }
    sums.verify(&[&stem, &dash], source, idx.as_bytes())
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
    /// `u8` of shape `n × rows × cols` and the labels `u8` of shape `n`;
    /// [`DatasetError::CountMismatch`] if the `n` differ; [`DatasetError::LabelOutOfRange`] for
    /// the first label `≥ kind.num_classes()`.
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

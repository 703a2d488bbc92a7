//! The error type of this crate.
//!
//! Every fault that bad input can cause is a [`DatasetError`] variant naming the file (where there
//! is one) and what is wrong with it, so that a message shown to a user says which file to fix.
//! Nothing in this crate panics on bad input.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::kinds::{DatasetKind, ElementType, Split};

/// Everything that can go wrong while reading, checking or preparing data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatasetError {
    /// An I/O operation on `path` failed (open, read, map, create, rename).
    #[error("{}: {action}: {source}", .path.display())]
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// What was being done, e.g. "cannot open".
        action: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// A gzip file could not be decompressed (bad header, corrupt stream, CRC mismatch).
    #[error("{}: bad gzip data: {source}", .path.display())]
    Gzip {
        /// The `.gz` file.
        path: PathBuf,
        /// The error reported by the decoder.
        #[source]
        source: io::Error,
    },

    /// No cache folder for decompressed data is named: none of `BILEVEL_CACHE_DIR`,
    /// `XDG_CACHE_HOME` or `HOME` is set.
    #[error(
        "no folder for decompressed data: none of BILEVEL_CACHE_DIR, XDG_CACHE_HOME or HOME is set; set BILEVEL_CACHE_DIR to a folder of your own (it is created, private, if missing)"
    )]
    NoCacheFolder,

    /// The cache folder for decompressed data cannot be used: it cannot be created or written, it
    /// is not a folder, or another user owns it or can write to it.
    #[error("{}: cannot use as the cache of decompressed data: {problem}; set BILEVEL_CACHE_DIR to a folder of your own (it is created, private, if missing)", .path.display())]
    CacheFolder {
        /// The folder (or file in it) concerned.
        path: PathBuf,
        /// What is wrong, in words.
        problem: String,
    },

    /// A gzipped IDX file's header declares more data than the compressed file can hold.
    #[error("{}: the IDX header declares {declared} bytes, more than a {compressed}-byte gzip file can decompress to (deflate expands at most 1032-fold)", .path.display())]
    ImplausibleSize {
        /// The `.gz` file.
        path: PathBuf,
        /// File length (header plus data) the header declares.
        declared: u64,
        /// Length of the compressed file.
        compressed: u64,
    },

    /// The first two bytes of an IDX file are not zero.
    #[error("{}: not an IDX file: magic starts with {:#04x} {:#04x}, expected 0x00 0x00", .path.display(), .found[0], .found[1])]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The first two bytes found.
        found: [u8; 2],
    },

    /// The third byte of an IDX file is not one of the known element type codes.
    #[error("{}: unknown IDX element type code {code:#04x} (known: 0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64)", .path.display())]
    UnknownElementType {
        /// The file.
        path: PathBuf,
        /// The type code found.
        code: u8,
    },

    /// The file ends inside its header (magic plus one 4-byte size per dimension).
    #[error("{}: truncated IDX header: needs {expected} bytes, file has {actual}", .path.display())]
    TruncatedHeader {
        /// The file.
        path: PathBuf,
        /// Bytes the header needs.
        expected: u64,
        /// Bytes available.
        actual: u64,
    },

    /// The header's dimensions call for more data than the file holds.
    #[error("{}: truncated IDX data: header {dims:?} calls for {expected} bytes in all, file has {actual}", .path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// The dimensions the header declares.
        dims: Vec<u32>,
        /// Total file length (header plus data) the header calls for.
        expected: u64,
        /// Actual length.
        actual: u64,
    },

    /// The file holds more bytes than its header declares.
    #[error("{}: {extra} trailing bytes after the IDX data (header {dims:?} calls for {expected} bytes in all)", .path.display())]
    TrailingBytes {
        /// The file.
        path: PathBuf,
        /// The dimensions the header declares.
        dims: Vec<u32>,
        /// Total file length the header calls for.
        expected: u64,
        /// Bytes beyond that length (at least this many; a gzip stream is not read to its end).
        extra: u64,
    },

    /// The product of the header's dimensions (times the element size) does not fit in memory
    /// addresses.
    #[error("{}: IDX header dimensions {dims:?} overflow: the data size does not fit in {} bits", .path.display(), usize::BITS)]
    SizeOverflow {
        /// The file.
        path: PathBuf,
        /// The dimensions the header declares.
        dims: Vec<u32>,
    },

    /// The data was asked for as one element type but the file holds another.
    #[error("{}: IDX element type is {found}, expected {expected}", .path.display())]
    TypeMismatch {
        /// The file.
        path: PathBuf,
        /// The type asked for.
        expected: ElementType,
        /// The type the file declares.
        found: ElementType,
    },

    /// The file has the wrong rank or dimensions for its role (e.g. images must be `n × rows × cols`).
    #[error("{}: unexpected IDX shape {found:?}: expected {expected}", .path.display())]
    UnexpectedShape {
        /// The file.
        path: PathBuf,
        /// What was expected, in words.
        expected: &'static str,
        /// The dimensions found.
        found: Vec<usize>,
    },

    /// An image file and its label file disagree on the number of samples.
    #[error("{} holds {images} images but {} holds {labels} labels", .images_path.display(), .labels_path.display())]
    CountMismatch {
        /// The image file.
        images_path: PathBuf,
        /// The label file.
        labels_path: PathBuf,
        /// Number of images.
        images: usize,
        /// Number of labels.
        labels: usize,
    },

    /// A label is not smaller than the number of classes.
    #[error("{}: label {label} at index {index} is out of range for {classes} classes", .path.display())]
    LabelOutOfRange {
        /// The label file.
        path: PathBuf,
        /// Index of the first bad label.
        index: usize,
        /// Its value.
        label: u8,
        /// Number of classes.
        classes: usize,
    },

    /// A line of a `sha256sum`-format file cannot be parsed.
    #[error("{}:{line}: not a sha256sum line: {reason}", .path.display())]
    BadChecksumFile {
        /// The sums file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },

    /// A file to verify is not listed in the sums file.
    #[error("{}: no SHA-256 listed for it in {}", .path.display(), .sums.display())]
    ChecksumMissing {
        /// The file that could not be verified.
        path: PathBuf,
        /// The sums file.
        sums: PathBuf,
    },

    /// A file's SHA-256 differs from the one listed.
    #[error("{}: SHA-256 mismatch: expected {expected}, got {actual}", .path.display())]
    ChecksumMismatch {
        /// The file.
        path: PathBuf,
        /// Lower-case hex digest listed in the sums file.
        expected: String,
        /// Lower-case hex digest computed.
        actual: String,
    },

    /// The files of a split were not found in any of the folders searched.
    #[error(
        "{kind} {split} files ({images}[.gz] and {labels}[.gz], or the spellings with '.idx') not found; looked in: {searched}. {hint}",
        images = .split.image_file_name(),
        labels = .split.label_file_name(),
        searched = PathList(.searched),
        hint = not_found_hint(*.kind),
    )]
    NotFound {
        /// The dataset asked for.
        kind: DatasetKind,
        /// The split asked for.
        split: Split,
        /// Folders searched, in order (empty when no folder was given at all).
        searched: Vec<PathBuf>,
    },

    /// A task asks for more samples from a split than the split holds.
    #[error("{requested} samples requested from the {split} split, which holds {available}")]
    NotEnoughSamples {
        /// The source split.
        split: Split,
        /// Samples requested from it, summed over task splits.
        requested: usize,
        /// Samples it holds.
        available: usize,
    },

    /// PCA of the training features failed (e.g. more components than features or samples).
    #[error("PCA failed: {0}")]
    Pca(#[from] bilevel_linalg::LinalgError),

    /// A task configuration is invalid (e.g. a corruption rate outside `[0, 1]`).
    #[error("invalid task configuration: {0}")]
    InvalidConfig(String),
}

/// How to point at the data, appended to [`DatasetError::NotFound`] messages.
fn not_found_hint(kind: DatasetKind) -> &'static str {
    match kind {
        DatasetKind::Mnist => {
            "To use full MNIST, set BILEVEL_DATA_DIR to a folder holding \
train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and \
t10k-labels-idx1-ubyte.gz (raw or gzipped), or pass that folder explicitly."
        }
        DatasetKind::FashionMnist => {
            "To use Fashion-MNIST, install it (apt-get install dataset-fashion-mnist puts it in \
/usr/share/datasets/fashion-mnist) or set BILEVEL_FASHION_MNIST_DIR to a folder holding its \
four files under the same names as MNIST's (raw or gzipped), or pass that folder explicitly."
        }
    }
}

/// Displays a list of paths separated by commas, or "(no folder given)".
struct PathList<'a>(&'a [PathBuf]);

impl fmt::Display for PathList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(no folder given)");
        }
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}", p.display())?;
        }
        Ok(())
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = DatasetError> = std::result::Result<T, E>;

/// Builds a closure mapping an [`io::Error`] to [`DatasetError::Io`] for `path`.
pub(crate) fn io_err(path: &Path, action: &'static str) -> impl FnOnce(io::Error) -> DatasetError {
    let path = path.to_path_buf();
    move |source| DatasetError::Io {
        path,
        action,
        source,
    }
}

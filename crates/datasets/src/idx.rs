//! Reading (and writing) files in the IDX format of the MNIST distribution.
//!
//! An IDX file is a big-endian header followed by the elements in row-major order:
//!
//! | bytes | meaning |
//! |---|---|
//! | 0–1 | zero |
//! | 2 | element type code ([`ElementType`]) |
//! | 3 | rank `r` (number of dimensions, 0–255) |
//! | 4 … 4 + 4r | each dimension as a big-endian `u32` |
//! | then | `∏ dims` elements, each big-endian |
//!
//! [`IdxFile::open`] memory-maps a raw file and checks that its length is exactly what the header
//! declares, so that a truncated or padded file is reported instead of misread. A path ending in
//! `.gz` is decompressed once into a cache (see [`crate::cache`]) and the cache is mapped.
//!
//! Element access is zero-copy where the type allows: `u8` and `i8` data are viewed in place
//! ([`IdxFile::data`] returns [`Cow::Borrowed`]); multi-byte elements are big-endian on disk, so
//! on a little-endian machine they are converted into a fresh vector.
//!
//! No allocation is ever sized from a header before the header has been checked against the
//! file's actual length; the dimension product is computed with overflow checks.

use std::borrow::Cow;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use sha2::Digest;

use crate::cache::{self, CachePolicy};
use crate::error::{DatasetError, Result, io_err};
pub use crate::header::IdxHeader;
pub use crate::kinds::ElementType;

mod sealed {
    pub trait Sealed {}
}

/// A Rust type that an IDX element type maps to: `u8`, `i8`, `i16`, `i32`, `f32`, `f64`.
///
/// This trait is sealed.
pub trait IdxElement: bytemuck::Pod + sealed::Sealed {
    /// The IDX element type of `Self`.
    const TYPE: ElementType;
    /// Decodes one element from its big-endian bytes (`bytes.len() == size_of::<Self>()`).
    fn from_be(bytes: &[u8]) -> Self;
    /// Appends the big-endian bytes of `self` to `out`.
    fn write_be(self, out: &mut Vec<u8>);
    /// The value as `f64` (exact for every type but `f64` itself, which is unchanged).
    fn to_f64(self) -> f64;
}

macro_rules! idx_element {
    ($t:ty, $variant:ident) => {
        impl sealed::Sealed for $t {}
        impl IdxElement for $t {
            const TYPE: ElementType = ElementType::$variant;
            #[inline]
            fn from_be(bytes: &[u8]) -> Self {
                let mut a = [0u8; std::mem::size_of::<$t>()];
                a.copy_from_slice(bytes);
                <$t>::from_be_bytes(a)
            }
            #[inline]
            fn write_be(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_be_bytes());
            }
            #[inline]
            fn to_f64(self) -> f64 {
                f64::from(self)
            }
        }
    };
}

idx_element!(u8, U8);
idx_element!(i8, I8);
idx_element!(i16, I16);
idx_element!(i32, I32);
idx_element!(f32, F32);
idx_element!(f64, F64);

/// Encodes `data` with dimensions `dims` as a complete IDX file.
///
/// # Errors
/// [`DatasetError::InvalidConfig`] if the product of `dims` differs from `data.len()` or the rank
/// exceeds 255.
///
/// # Example
/// ```
/// use bilevel_datasets::idx::{encode_idx, IdxFile};
/// let bytes = encode_idx(&[2, 3], &[1i16, -2, 3, -4, 5, -6]).unwrap();
/// let file = IdxFile::from_bytes(bytes, "example.idx").unwrap();
/// assert_eq!(file.header().dims(), &[2, 3]);
/// assert_eq!(&*file.data::<i16>().unwrap(), &[1, -2, 3, -4, 5, -6]);
/// ```
pub fn encode_idx<T: IdxElement>(dims: &[u32], data: &[T]) -> Result<Vec<u8>> {
    let header = IdxHeader::from_dims(T::TYPE, dims, Path::new("<encode>"))?;
    if header.len() != data.len() {
        return Err(DatasetError::InvalidConfig(format!(
            "IDX dimensions {dims:?} call for {} elements, {} given",
            header.len(),
            data.len()
        )));
    }
    let mut out = header.to_bytes();
    out.reserve(header.data_len());
    for &x in data {
        x.write_be(&mut out);
    }
    Ok(out)
}

/// Where the bytes of an [`IdxFile`] live.
#[derive(Debug)]
enum Storage {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

/// An IDX file whose header has been checked against its length, with its bytes mapped or owned.
#[derive(Debug)]
pub struct IdxFile {
    path: PathBuf,
    header: IdxHeader,
    storage: Storage,
    /// SHA-256 of the bytes, when already computed (a verified cache entry).
    sha256: Option<[u8; 32]>,
}

impl IdxFile {
    /// Opens an IDX file; a path ending in `.gz` is decompressed through the cache configured by
    /// [`CachePolicy::from_env`].
    ///
    /// # Errors
    /// Any [`DatasetError`] of [`IdxFile::open_with`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, &CachePolicy::from_env())
    }

    /// Opens an IDX file; a path ending in `.gz` is decompressed once into the cache chosen by
    /// `policy` (see [`cache::decompress_cached`]) and the cached file is mapped.
    ///
    /// # Errors
    /// [`DatasetError::Io`] if the file cannot be opened or mapped, the cache faults of
    /// [`cache::decompress_cached`] (no private cache folder, bad gzip data, a header declaring
    /// more than the compressed file can hold), and the header faults of [`IdxHeader::parse`]
    /// and [`IdxHeader::check_len`]; faults in the decompressed data name the `.gz` file.
    ///
    /// # Example
    /// ```
    /// use bilevel_datasets::idx::{ElementType, IdxFile};
    /// let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
    /// let labels = IdxFile::open(dir.join("t10k-labels-idx1-ubyte.gz"))?;
    /// assert_eq!(labels.header().element_type(), ElementType::U8);
    /// assert_eq!(labels.header().dims(), &[10_000]);
    /// assert_eq!(labels.data::<u8>()?[0], 7);
    /// # Ok::<(), bilevel_datasets::DatasetError>(())
    /// ```
    pub fn open_with(path: impl AsRef<Path>, policy: &CachePolicy) -> Result<Self> {
        let path = path.as_ref();
        if cache::is_gz(path) {
            let entry = cache::open_cached(path, policy)?;
            let header = IdxHeader::parse(&entry.map, path)?;
            header.check_len(entry.map.len() as u64, path)?;
            Ok(Self {
                path: entry.path,
                header,
                storage: Storage::Mapped(entry.map),
                sha256: Some(entry.sha256),
            })
        } else {
            Self::open_raw(path)
        }
    }

    /// Memory-maps an uncompressed IDX file (whatever its name) and checks its header.
    ///
    /// # Errors
    /// [`DatasetError::Io`] if the file cannot be opened or mapped, and the header faults of
    /// [`IdxHeader::parse`] and [`IdxHeader::check_len`].
    pub fn open_raw(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = File::open(path).map_err(io_err(path, "cannot open"))?;
        let len = file
            .metadata()
            .map_err(io_err(path, "cannot read metadata of"))?
            .len();
        if len < 4 {
            // Too short for any header (and zero-length maps are refused on some platforms).
            return Err(DatasetError::TruncatedHeader {
                path: path.to_path_buf(),
                expected: 4,
                actual: len,
            });
        }
        // SAFETY: the map is read-only. Its contents could change (or the file shrink) if another
        // process modified the file while it is mapped; IDX inputs and this crate's caches are
        // written once and replaced only by an atomic rename (which leaves this mapping intact),
        // so the bytes are stable for the life of the map.
        let map = unsafe { Mmap::map(&file) }.map_err(io_err(path, "cannot memory-map"))?;
        let header = IdxHeader::parse(&map, path)?;
        header.check_len(map.len() as u64, path)?;
        Ok(Self {
            path: path.to_path_buf(),
            header,
            storage: Storage::Mapped(map),
            sha256: None,
        })
    }

    /// Takes ownership of the bytes of an IDX file (e.g. one built in memory) and checks them.
    ///
    /// `path` only names the data in errors.
    ///
    /// # Errors
    /// The header faults of [`IdxHeader::parse`] and [`IdxHeader::check_len`].
    pub fn from_bytes(bytes: Vec<u8>, path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let header = IdxHeader::parse(&bytes, &path)?;
        header.check_len(bytes.len() as u64, &path)?;
        Ok(Self {
            path,
            header,
            storage: Storage::Owned(bytes),
            sha256: None,
        })
    }

    /// The path the data came from (for a `.gz` source, the decompressed cache file).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// SHA-256 of all bytes of the file (computed on first need; a cache entry's was computed
    /// when it was verified).
    pub fn sha256(&self) -> [u8; 32] {
        self.sha256
            .unwrap_or_else(|| sha2::Sha256::digest(self.as_bytes()).into())
    }

    /// The checked header.
    pub fn header(&self) -> &IdxHeader {
        &self.header
    }

    /// Whether the bytes are memory-mapped (as opposed to owned in memory).
    pub fn is_mapped(&self) -> bool {
        matches!(self.storage, Storage::Mapped(_))
    }

    /// All bytes of the file, header included.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.storage {
            Storage::Mapped(m) => m,
            Storage::Owned(v) => v,
        }
    }

    /// The data section: the elements as stored (big-endian for multi-byte types).
    pub fn data_bytes(&self) -> &[u8] {
        &self.as_bytes()[self.header.header_len()..]
    }

    /// The elements as `T`, which must be the file's element type.
    ///
    /// `u8` and `i8` are borrowed from the file without copying. Multi-byte types are stored
    /// big-endian: on a big-endian machine they are borrowed when the data is suitably aligned;
    /// otherwise they are decoded into a new vector.
    ///
    /// # Errors
    /// [`DatasetError::TypeMismatch`] if `T` is not the file's element type.
    pub fn data<T: IdxElement>(&self) -> Result<Cow<'_, [T]>> {
        if T::TYPE != self.header.element_type() {
            return Err(DatasetError::TypeMismatch {
                path: self.path.clone(),
                expected: T::TYPE,
                found: self.header.element_type(),
            });
        }
        let bytes = self.data_bytes();
        if (std::mem::size_of::<T>() == 1 || cfg!(target_endian = "big"))
            && let Ok(view) = bytemuck::try_cast_slice::<u8, T>(bytes)
        {
            return Ok(Cow::Borrowed(view));
        }
        Ok(Cow::Owned(
            bytes
                .chunks_exact(std::mem::size_of::<T>())
                .map(T::from_be)
                .collect(),
        ))
    }

    /// All elements converted to `f64`, whatever the element type.
    pub fn to_f64_vec(&self) -> Vec<f64> {
        fn conv<T: IdxElement>(bytes: &[u8]) -> Vec<f64> {
            bytes
                .chunks_exact(std::mem::size_of::<T>())
                .map(|c| T::from_be(c).to_f64())
                .collect()
        }
        let b = self.data_bytes();
        match self.header.element_type() {
            ElementType::U8 => b.iter().map(|&x| f64::from(x)).collect(),
            ElementType::I8 => conv::<i8>(b),
            ElementType::I16 => conv::<i16>(b),
            ElementType::I32 => conv::<i32>(b),
            ElementType::F32 => conv::<f32>(b),
            ElementType::F64 => conv::<f64>(b),
        }
    }
}

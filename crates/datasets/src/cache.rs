//! Decompress-once cache for gzipped IDX files.
//!
//! A `.gz` IDX file is decompressed the first time it is opened and the result is kept as a plain
//! IDX file that later opens simply memory-map. The cache file goes
//!
//! 1. beside the `.gz` file, under the name without `.gz`, when its folder is writable (has a
//!    write permission bit, and a file can actually be created there) and no file of that name
//!    is there yet, else
//! 2. in a cache folder ([`CachePolicy::dir`]): `$BILEVEL_CACHE_DIR` if set, else
//!    `bilevel-cache` in the system temp folder, under a subfolder named after a hash of the
//!    `.gz` file's absolute path (so that MNIST and Fashion-MNIST, whose files have the same
//!    names, never share a cache entry).
//!
//! Decompression writes to a temporary name in the target folder and renames the result into
//! place only when the whole stream has been read and checked against its header, so an
//! interrupted decompression never leaves a file that looks complete. A cache file is reused only
//! when its length is exactly what its header declares and it is not older than the `.gz` file.
//! A file beside the source that fails this test (truncated, stale, garbage) may not be the
//! program's own, so it is never replaced: the copy goes to the cache folder, whose entries
//! are rebuilt in place.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use flate2::read::MultiGzDecoder;
use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;

use crate::error::{DatasetError, Result, io_err};
use crate::header::IdxHeader;

/// Environment variable naming the fallback cache folder.
pub const CACHE_DIR_ENV: &str = "BILEVEL_CACHE_DIR";

/// Where decompressed copies of `.gz` files are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachePolicy {
    beside_source: bool,
    dir: PathBuf,
}

impl Default for CachePolicy {
    fn default() -> Self {
        Self::from_env()
    }
}

impl CachePolicy {
    /// Beside the source when possible, else `$BILEVEL_CACHE_DIR`, else `bilevel-cache` in the
    /// system temp folder.
    pub fn from_env() -> Self {
        let dir = std::env::var_os(CACHE_DIR_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::temp_dir().join("bilevel-cache"));
        Self {
            beside_source: true,
            dir,
        }
    }

    /// Always in `dir`, never beside the source.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        Self {
            beside_source: false,
            dir: dir.into(),
        }
    }

    /// Whether to try the source's own folder first.
    pub fn with_beside_source(mut self, beside_source: bool) -> Self {
        self.beside_source = beside_source;
        self
    }

    /// The fallback cache folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the source's own folder is tried first.
    pub fn beside_source(&self) -> bool {
        self.beside_source
    }

    /// The cache file used for `gz` when it is not kept beside the source.
    pub fn dir_entry(&self, gz: &Path) -> PathBuf {
        let abs = fs::canonicalize(gz).unwrap_or_else(|_| gz.to_path_buf());
        let digest = Sha256::digest(abs.as_os_str().as_encoded_bytes());
        let tag: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(tag).join(stem_of(gz))
    }
}

/// Whether `path` names a gzip file (extension `.gz`, any case).
pub fn is_gz(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
}

/// File name of `gz` without its `.gz` extension.
fn stem_of(gz: &Path) -> OsString {
    gz.file_stem()
        .map(OsString::from)
        .unwrap_or_else(|| OsString::from("idx"))
}

/// Returns the path of an up-to-date decompressed copy of the gzipped IDX file `gz`, creating or
/// rebuilding it if needed (see the [module documentation](self) for where it goes).
///
/// # Errors
/// [`DatasetError::Io`] if `gz` cannot be read or no cache location can be written,
/// [`DatasetError::Gzip`] for bad gzip data, and the IDX header faults of [`IdxHeader::parse`]
/// and [`IdxHeader::check_len`] for the decompressed content (naming `gz`).
pub fn decompress_cached(gz: &Path, policy: &CachePolicy) -> Result<PathBuf> {
    let meta = fs::metadata(gz).map_err(io_err(gz, "cannot read metadata of"))?;
    let gz_mtime = meta.modified().ok();

    let beside = gz.with_file_name(stem_of(gz));
    let in_dir = policy.dir_entry(gz);
    let beside = (policy.beside_source && beside != gz && folder_writable(gz)).then_some(beside);
    for c in beside.iter().chain([&in_dir]) {
        if is_fresh(c, gz_mtime) {
            return Ok(c.clone());
        }
    }
    // Check the gzip file is readable before touching any cache location.
    let source = File::open(gz).map_err(io_err(gz, "cannot open"))?;
    // Beside the source only where nothing is yet, and never onto a file that appears meanwhile.
    if let Some(target) = beside.filter(|b| fs::symlink_metadata(b).is_err())
        && let Ok(tmp) = temp_beside(&target)
    {
        let source = source.try_clone().map_err(io_err(gz, "cannot open"))?;
        let tmp = decompress_checked(gz, source, tmp)?;
        match tmp.persist_noclobber(&target) {
            Ok(_) => return Ok(target),
            Err(_) if is_fresh(&target, gz_mtime) => return Ok(target),
            Err(_) => {} // someone else's file: leave it, use the cache folder
        }
    }
    let tmp = decompress_checked(gz, source, temp_beside(&in_dir)?)?;
    tmp.persist(&in_dir)
        .map_err(|e| io_err(&in_dir, "cannot rename cache file into place")(e.error))?;
    Ok(in_dir)
}

/// Whether the folder holding `path` has any write permission bit.
fn folder_writable(path: &Path) -> bool {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::metadata(parent).is_ok_and(|m| m.is_dir() && !m.permissions().readonly())
}

/// Whether `cache` exists, holds exactly what its IDX header declares, and is not older than the
/// source.
fn is_fresh(cache: &Path, source_mtime: Option<SystemTime>) -> bool {
    let Ok(meta) = fs::metadata(cache) else {
        return false;
    };
    if !meta.is_file() {
        return false;
    }
    if let (Some(src), Ok(own)) = (source_mtime, meta.modified())
        && own < src
    {
        return false;
    }
    let Ok(mut f) = File::open(cache) else {
        return false;
    };
    let mut head = [0u8; 4];
    if f.read_exact(&mut head).is_err() {
        return false;
    }
    let mut header = head.to_vec();
    header.resize(4 + 4 * usize::from(head[3]), 0);
    if f.read_exact(&mut header[4..]).is_err() {
        return false;
    }
    IdxHeader::parse(&header, cache).is_ok_and(|h| h.check_len(meta.len(), cache).is_ok())
}

/// A temporary file in the target's folder (`.<name>.partial-<random>`), removed on drop unless
/// persisted.
fn temp_beside(target: &Path) -> Result<NamedTempFile> {
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::create_dir_all(parent).map_err(io_err(parent, "cannot create cache folder"))?;
    let mut prefix = OsString::from(".");
    prefix.push(target.file_name().unwrap_or_default());
    prefix.push(".partial-");
    tempfile::Builder::new()
        .prefix(&prefix)
        .tempfile_in(parent)
        .map_err(io_err(target, "cannot create cache file for"))
}

/// Decompresses `source` (the file `gz`) into `tmp` and checks it against its header; the caller
/// renames the checked file into place.
fn decompress_checked(gz: &Path, source: File, tmp: NamedTempFile) -> Result<NamedTempFile> {
    let gz_err = |source: io::Error| DatasetError::Gzip {
        path: gz.to_path_buf(),
        source,
    };
    let mut dec = MultiGzDecoder::new(BufReader::with_capacity(1 << 16, source));

    // Header: 4 bytes, then 4 per dimension. A stream that ends early is a truncated header.
    let mut header = Vec::with_capacity(4 + 4 * 255);
    read_up_to(&mut dec, &mut header, 4).map_err(gz_err)?;
    if header.len() == 4 {
        let need = 4 + 4 * usize::from(header[3]);
        read_up_to(&mut dec, &mut header, need).map_err(gz_err)?;
    }
    let h = IdxHeader::parse(&header, gz)?;

    let tmp_path = tmp.path().to_path_buf();
    let write_err = io_err(&tmp_path, "cannot write cache file");
    let mut out = BufWriter::with_capacity(1 << 20, tmp.as_file());
    out.write_all(&header)
        .map_err(io_err(&tmp_path, "cannot write cache file"))?;
    let data_len = h.data_len() as u64;
    let copied = copy_counted(&mut (&mut dec).take(data_len), &mut out, gz, &tmp_path)?;
    let actual = h.header_len() as u64 + copied;
    h.check_len(actual, gz)?;
    // Anything after the data is an error too; count a bounded amount of it.
    let extra = io::copy(&mut (&mut dec).take(1 << 16), &mut io::sink()).map_err(gz_err)?;
    if extra > 0 {
        h.check_len(actual + extra, gz)?;
    }
    out.flush().map_err(write_err)?;
    drop(out);
    Ok(tmp)
}

/// Reads from `r` until `buf` holds `n` bytes or the stream ends.
fn read_up_to(r: &mut impl Read, buf: &mut Vec<u8>, n: usize) -> io::Result<()> {
    let have = buf.len();
    if have >= n {
        return Ok(());
    }
    r.take((n - have) as u64).read_to_end(buf)?;
    Ok(())
}

/// `io::copy` that tells decoder errors (gzip faults) from writer errors (cache faults).
fn copy_counted(r: &mut impl Read, w: &mut impl Write, gz: &Path, out: &Path) -> Result<u64> {
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(DatasetError::Gzip {
                    path: gz.to_path_buf(),
                    source,
                });
            }
        };
        w.write_all(&buf[..n])
            .map_err(io_err(out, "cannot write cache file"))?;
        total += n as u64;
    }
}

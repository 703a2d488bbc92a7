//! Decompress-once cache for gzipped IDX files: private, verified, bounded.
//!
//! A `.gz` IDX file is decompressed the first time it is opened and the result is kept as a plain
//! IDX file that later opens memory-map. Every entry lives in a cache folder the user owns
//! ([`CachePolicy`]): `$BILEVEL_CACHE_DIR` if set, else `bilevel` under `$XDG_CACHE_HOME`, else
//! `~/.cache/bilevel`. Nothing is ever written into the folder that holds the data.
//!
//! - **Private.** The cache folder and its subfolders are created with mode 0700; a folder owned
//!   by another user, or writable by group or others, is refused with
//!   [`DatasetError::CacheFolder`], whose message says to set `BILEVEL_CACHE_DIR`.
//! - **Verified.** Each entry `<tag>/<name>` (the tag is a hash of the `.gz` file's absolute path,
//!   so MNIST and Fashion-MNIST, whose files share names, never share an entry) has a record
//!   `<tag>/<name>.source` holding the SHA-256 and length of the compressed file it came from
//!   and the SHA-256 and length of the decompressed content. An entry is used only when the
//!   `.gz` file's content hashes to the recorded digest (so a replaced source is noticed whatever
//!   its modification time) and the mapped entry hashes to the recorded content digest (so a
//!   truncated, altered or planted entry is noticed). Any other entry is rebuilt.
//! - **Bounded.** Before a byte is written, the IDX header's declared size is checked against
//!   what the compressed file can hold: deflate expands at most [`MAX_EXPANSION`]-fold, and the
//!   gzip trailer records the decompressed size modulo 2³². When the trailer disagrees with the
//!   header (a lying header, or a stream of several gzip members) the stream is first decompressed
//!   without writing, counting, and rejected unless it holds exactly what the header declares.
//!   Decompression stops at the first byte past the declared length.
//! - **No leftovers.** Decompression writes to `.<name>.partial-<pid>-<random>` in the entry's
//!   folder and renames the checked result into place, so an interrupted run never leaves a file
//!   that looks complete. Partial files of a process that is gone (and untouched for a minute)
//!   are removed on the next open.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use flate2::read::MultiGzDecoder;
use memmap2::Mmap;
use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;

use crate::checksum::{parse_hex, to_hex};
use crate::error::{DatasetError, Result, io_err};
use crate::header::IdxHeader;

/// Environment variable naming the cache folder.
pub const CACHE_DIR_ENV: &str = "BILEVEL_CACHE_DIR";

/// The most bytes deflate can decompress from one compressed byte: a 258-byte match costs at
/// least two bits, so no stream expands more than 1032-fold.
pub const MAX_EXPANSION: u64 = 1032;

/// A partial file untouched for this long, whose process is gone, is removed.
const STALE_PARTIAL_AGE: Duration = Duration::from_secs(60);

/// Where a cache folder was named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// `$BILEVEL_CACHE_DIR`.
    Env,
    /// The per-user default (`$XDG_CACHE_HOME/bilevel` or `~/.cache/bilevel`).
    User,
    /// A folder given in code ([`CachePolicy::in_dir`]).
    Given,
}

/// Where decompressed copies of `.gz` files are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachePolicy {
    dir: Option<PathBuf>,
    origin: Origin,
}

impl Default for CachePolicy {
    fn default() -> Self {
        Self::from_env()
    }
}

impl CachePolicy {
    /// `$BILEVEL_CACHE_DIR` if set and not empty, else `$XDG_CACHE_HOME/bilevel` (when that
    /// variable holds an absolute path), else `$HOME/.cache/bilevel`. With none of these set
    /// there is no cache folder, and opening a `.gz` file fails with
    /// [`DatasetError::NoCacheFolder`].
    pub fn from_env() -> Self {
        Self::from_vars(|k| std::env::var_os(k))
    }

    /// [`CachePolicy::from_env`] with the environment read through `get`.
    fn from_vars(get: impl Fn(&str) -> Option<OsString>) -> Self {
        let var = |k: &str| get(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        if let Some(dir) = var(CACHE_DIR_ENV) {
            return Self {
                dir: Some(dir),
                origin: Origin::Env,
            };
        }
        let dir = var("XDG_CACHE_HOME")
            .filter(|p| p.is_absolute())
            .or_else(|| var("HOME").map(|h| h.join(".cache")))
            .map(|base| base.join("bilevel"));
        Self {
            dir,
            origin: Origin::User,
        }
    }

    /// Always `dir` (created, private, if missing).
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: Some(dir.into()),
            origin: Origin::Given,
        }
    }

    /// The cache folder, if one is named.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The cache folder, or the error saying how to name one.
    fn folder(&self) -> Result<&Path> {
        self.dir.as_deref().ok_or(DatasetError::NoCacheFolder)
    }

    /// The cache entry (decompressed file) used for `gz`.
    ///
    /// # Errors
    /// [`DatasetError::NoCacheFolder`] if no cache folder is named.
    pub fn dir_entry(&self, gz: &Path) -> Result<PathBuf> {
        Ok(self.folder()?.join(source_tag(gz)).join(stem_of(gz)))
    }

    /// A [`DatasetError::CacheFolder`] for `path`, saying where the folder was named.
    fn refuse(&self, path: &Path, problem: String) -> DatasetError {
        let named = match self.origin {
            Origin::Env => format!(" (named by {CACHE_DIR_ENV})"),
            Origin::User => String::new(),
            Origin::Given => " (given by the caller)".to_owned(),
        };
        DatasetError::CacheFolder {
            path: path.to_path_buf(),
            problem: format!("{problem}{named}"),
        }
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

/// First 16 hex digits of the SHA-256 of `gz`'s absolute path.
fn source_tag(gz: &Path) -> String {
    let abs = fs::canonicalize(gz).unwrap_or_else(|_| gz.to_path_buf());
    let digest = Sha256::digest(abs.as_os_str().as_encoded_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// A verified cache entry, mapped.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The entry's path.
    pub path: PathBuf,
    /// Its bytes.
    pub map: Mmap,
    /// SHA-256 of its bytes (checked against the record).
    pub sha256: [u8; 32],
}

/// Returns the path of a verified decompressed copy of the gzipped IDX file `gz`, creating or
/// rebuilding it if needed (see the [module documentation](self)).
///
/// # Errors
/// [`DatasetError::Io`] if `gz` cannot be read; [`DatasetError::NoCacheFolder`] or
/// [`DatasetError::CacheFolder`] if no private cache folder can be used;
/// [`DatasetError::Gzip`] for bad gzip data; [`DatasetError::ImplausibleSize`] when the header
/// declares more than the compressed file can hold; and the IDX header faults of
/// [`IdxHeader::parse`] and [`IdxHeader::check_len`] for the decompressed content (naming `gz`).
pub fn decompress_cached(gz: &Path, policy: &CachePolicy) -> Result<PathBuf> {
    open_cached(gz, policy).map(|e| e.path)
}

/// [`decompress_cached`], returning the mapped, verified entry.
pub(crate) fn open_cached(gz: &Path, policy: &CachePolicy) -> Result<Entry> {
    let source = Source::read(gz)?;
    let root = policy.folder()?;
    private_folder(root, policy)?;
    let folder = root.join(source_tag(gz));
    private_folder(&folder, policy)?;
    remove_stale_partials(&folder);

    let stem = stem_of(gz);
    let entry = folder.join(&stem);
    let mut record_name = stem.clone();
    record_name.push(".source");
    let record = folder.join(record_name);
    if let Some(e) = verified(&entry, &record, &source) {
        return Ok(e);
    }
    let (tmp, made) = decompress_bounded(gz, &source, &entry, policy)?;
    let rec_tmp = partial_in(&record, policy)?;
    fs::write(rec_tmp.path(), made.to_text(gz))
        .map_err(|e| policy.refuse(&folder, format!("cannot write a cache record: {e}")))?;
    // The record first: a crash between the renames leaves a record whose content digest the old
    // entry fails, so the entry is rebuilt.
    rec_tmp.persist(&record).map_err(|e| {
        policy.refuse(
            &folder,
            format!("cannot rename a cache record: {}", e.error),
        )
    })?;
    tmp.persist(&entry)
        .map_err(|e| policy.refuse(&folder, format!("cannot rename a cache entry: {}", e.error)))?;
    // The bytes used are the bytes mapped, checked once more against the record just written.
    verified(&entry, &record, &made.source).ok_or_else(|| {
        policy.refuse(
            &folder,
            format!(
                "the cache entry {} changed while it was being written",
                entry.display()
            ),
        )
    })
}

/// Identity of a compressed source: length, SHA-256 and the gzip trailer's size field.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Source {
    len: u64,
    sha256: [u8; 32],
    /// The last member's ISIZE: its decompressed length modulo 2³² (`None` if the file is too
    /// short to hold a trailer).
    isize: Option<u32>,
}

impl Source {
    fn read(gz: &Path) -> Result<Self> {
        let mut f = File::open(gz).map_err(io_err(gz, "cannot open"))?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut len = 0u64;
        let mut tail = [0u8; 4];
        loop {
            let n = match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err(gz, "cannot read")(e)),
            };
            h.update(&buf[..n]);
            // Keep the last four bytes seen.
            if n >= 4 {
                tail.copy_from_slice(&buf[n - 4..n]);
            } else {
                tail.rotate_left(n);
                tail[4 - n..].copy_from_slice(&buf[..n]);
            }
            len += n as u64;
        }
        Ok(Self {
            len,
            sha256: h.finalize().into(),
            isize: (len >= 18).then(|| u32::from_le_bytes(tail)),
        })
    }
}

/// What an entry was made from and holds: the content of its `.source` record.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Made {
    source: Source,
    content_len: u64,
    content_sha256: [u8; 32],
}

const RECORD_MAGIC: &str = "bilevel decompressed IDX cache entry v1";

impl Made {
    fn to_text(&self, gz: &Path) -> String {
        format!(
            "{RECORD_MAGIC}\nsource {}\nsource_len {}\nsource_sha256 {}\ncontent_len {}\ncontent_sha256 {}\n",
            gz.display(),
            self.source.len,
            to_hex(&self.source.sha256),
            self.content_len,
            to_hex(&self.content_sha256),
        )
    }

    /// Parses a record; `None` for anything that is not one.
    fn parse(text: &str) -> Option<(u64, [u8; 32], u64, [u8; 32])> {
        let mut lines = text.lines();
        if lines.next()? != RECORD_MAGIC {
            return None;
        }
        let mut field = |key: &str| {
            lines
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
                .map(str::to_owned)
        };
        let _source = field("source")?;
        let source_len = field("source_len")?.parse().ok()?;
        let source_sha = parse_hex(&field("source_sha256")?)?;
        let content_len = field("content_len")?.parse().ok()?;
        let content_sha = parse_hex(&field("content_sha256")?)?;
        Some((source_len, source_sha, content_len, content_sha))
    }
}

/// The entry, mapped, if its record names `source` and its bytes hash to the recorded digest.
fn verified(entry: &Path, record: &Path, source: &Source) -> Option<Entry> {
    let mut text = String::new();
    File::open(record)
        .ok()?
        .take(4096)
        .read_to_string(&mut text)
        .ok()?;
    let (source_len, source_sha, content_len, content_sha) = Made::parse(&text)?;
    if source_len != source.len || source_sha != source.sha256 {
        return None;
    }
    let file = File::open(entry).ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() != content_len || content_len < 4 {
        return None;
    }
    // SAFETY: the map is read-only, of a file in a folder only this user can write, which this
    // crate replaces only by an atomic rename (leaving this mapping intact).
    let map = unsafe { Mmap::map(&file) }.ok()?;
    let sha256: [u8; 32] = Sha256::digest(&map[..]).into();
    if sha256 != content_sha {
        return None;
    }
    Some(Entry {
        path: entry.to_path_buf(),
        map,
        sha256,
    })
}

/// Creates `dir` (mode 0700) if missing and checks that it is a folder of this user's own that
/// nobody else can write.
fn private_folder(dir: &Path, policy: &CachePolicy) -> Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| policy.refuse(dir, format!("cannot create the folder: {e}")))?;
    let meta = fs::metadata(dir)
        .map_err(|e| policy.refuse(dir, format!("cannot read its metadata: {e}")))?;
    if !meta.is_dir() {
        return Err(policy.refuse(dir, "not a folder".to_owned()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me {
            return Err(policy.refuse(
                dir,
                format!(
                    "owned by user id {}, not by this user ({me}); another user could have placed files in it",
                    meta.uid()
                ),
            ));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(policy.refuse(
                dir,
                format!(
                    "writable by other users (mode {:o}); another user could place files in it",
                    meta.mode() & 0o7777
                ),
            ));
        }
    }
    Ok(())
}

/// A temporary file `.<name>.partial-<pid>-<random>` beside `target`, removed on drop unless
/// persisted.
fn partial_in(target: &Path, policy: &CachePolicy) -> Result<NamedTempFile> {
    let parent = target.parent().unwrap_or(Path::new("."));
    let mut prefix = OsString::from(".");
    prefix.push(target.file_name().unwrap_or_default());
    prefix.push(format!(".partial-{}-", std::process::id()));
    tempfile::Builder::new()
        .prefix(&prefix)
        .tempfile_in(parent)
        .map_err(|e| policy.refuse(parent, format!("cannot create a file in it: {e}")))
}

/// The process id in a partial file's name `.<name>.partial-<pid>-<random>`.
fn partial_pid(name: &str) -> Option<u32> {
    let rest = &name[name.rfind(".partial-")? + ".partial-".len()..];
    rest.split_once('-')?.0.parse().ok()
}

/// Whether process `pid` is running (on other platforms than Unix: assumed so).
fn process_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return false;
        };
        if pid <= 0 {
            return true; // not a single process: never act on it
        }
        // SAFETY: signal 0 only checks whether the process exists.
        if unsafe { libc::kill(pid, 0) } == 0 {
            return true;
        }
        io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// Removes the partial files in `folder` (a private cache folder) whose process is gone and
/// that nobody has written for [`STALE_PARTIAL_AGE`]. Failures are ignored: a partial file left
/// behind is harmless and is tried again on the next open.
fn remove_stale_partials(folder: &Path) {
    let Ok(rd) = fs::read_dir(folder) else {
        return;
    };
    let now = SystemTime::now();
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with('.') {
            continue;
        }
        let Some(pid) = partial_pid(name) else {
            continue;
        };
        let idle = e
            .metadata()
            .ok()
            .filter(fs::Metadata::is_file)
            .and_then(|m| m.modified().ok())
            .and_then(|t| now.duration_since(t).ok());
        if pid != std::process::id()
            && idle.is_some_and(|d| d >= STALE_PARTIAL_AGE)
            && !process_alive(pid)
        {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// A reader that hashes every byte it reads.
struct Hashing<R> {
    inner: R,
    sha: Sha256,
    len: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}

/// Decompresses `gz` into a partial file beside `entry`, checked against its header and bounded
/// as the [module documentation](self) says; returns it with the record of what it holds.
fn decompress_bounded(
    gz: &Path,
    expected: &Source,
    entry: &Path,
    policy: &CachePolicy,
) -> Result<(NamedTempFile, Made)> {
    let gz_err = |source: io::Error| DatasetError::Gzip {
        path: gz.to_path_buf(),
        source,
    };
    let open = || File::open(gz).map_err(io_err(gz, "cannot open"));
    let mut hashing = Hashing {
        inner: open()?,
        sha: Sha256::new(),
        len: 0,
    };
    let mut dec = MultiGzDecoder::new(BufReader::with_capacity(1 << 16, &mut hashing));
    let (header, h) = read_header(&mut dec, gz)?;

    // Bounds, before anything is written.
    if h.file_len() > expected.len.saturating_mul(MAX_EXPANSION) {
        return Err(DatasetError::ImplausibleSize {
            path: gz.to_path_buf(),
            declared: h.file_len(),
            compressed: expected.len,
        });
    }
    if expected.isize != Some(h.file_len() as u32) {
        // The trailer disagrees: a lying header, or several gzip members. Count first.
        let mut count = MultiGzDecoder::new(BufReader::with_capacity(1 << 16, open()?));
        let (_, _) = read_header(&mut count, gz)?;
        let data = io::copy(
            &mut (&mut count).take(h.data_len() as u64 + 1),
            &mut io::sink(),
        )
        .map_err(gz_err)?;
        h.check_len(h.header_len() as u64 + data, gz)?;
    }

    let tmp = partial_in(entry, policy)?;
    let tmp_path = tmp.path().to_path_buf();
    let write_err = |e: io::Error| policy.refuse(&tmp_path, format!("cannot write: {e}"));
    let mut content = Sha256::new();
    content.update(&header);
    let mut out = BufWriter::with_capacity(1 << 20, tmp.as_file());
    out.write_all(&header).map_err(write_err)?;
    let copied = copy_hashed(
        &mut (&mut dec).take(h.data_len() as u64),
        &mut out,
        &mut content,
        gz,
        &write_err,
    )?;
    let actual = h.header_len() as u64 + copied;
    h.check_len(actual, gz)?;
    // Stop at the first byte past the declared length.
    let mut one = [0u8; 1];
    if read_fully(&mut dec, &mut one).map_err(gz_err)? > 0 {
        h.check_len(actual + 1, gz)?;
    }
    out.flush().map_err(write_err)?;
    drop(out);
    tmp.as_file().sync_all().map_err(write_err)?;
    // The rest of the compressed file (gzip trailer, padding) completes its digest.
    let mut rest = dec.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(io_err(gz, "cannot read"))?;
    drop(rest);
    let source = Source {
        len: hashing.len,
        sha256: hashing.sha.finalize().into(),
        isize: expected.isize,
    };
    let made = Made {
        source,
        content_len: actual,
        content_sha256: content.finalize().into(),
    };
    Ok((tmp, made))
}

/// Reads the IDX header at the start of a decompressed stream: 4 bytes, then 4 per dimension.
fn read_header(dec: &mut impl Read, gz: &Path) -> Result<(Vec<u8>, IdxHeader)> {
    let gz_err = |source: io::Error| DatasetError::Gzip {
        path: gz.to_path_buf(),
        source,
    };
    let mut header = Vec::with_capacity(4 + 4 * 255);
    read_up_to(dec, &mut header, 4).map_err(gz_err)?;
    if header.len() == 4 {
        let need = 4 + 4 * usize::from(header[3]);
        read_up_to(dec, &mut header, need).map_err(gz_err)?;
    }
    let h = IdxHeader::parse(&header, gz)?;
    Ok((header, h))
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

/// Fills `buf` from `r` as far as the stream goes; returns the bytes read.
fn read_fully(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Copies `r` to `w`, hashing what passes; tells decoder errors (gzip faults) from writer errors
/// (cache faults).
fn copy_hashed(
    r: &mut impl Read,
    w: &mut impl Write,
    sha: &mut Sha256,
    gz: &Path,
    write_err: &dyn Fn(io::Error) -> DatasetError,
) -> Result<u64> {
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
        sha.update(&buf[..n]);
        w.write_all(&buf[..n]).map_err(write_err)?;
        total += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_names_carry_the_pid() {
        assert_eq!(
            partial_pid(".t10k-images-idx3-ubyte.partial-4242-a1B2c3"),
            Some(4242)
        );
        assert_eq!(partial_pid(".x.source.partial-7-zz"), Some(7));
        assert_eq!(partial_pid(".x.partial-abc-zz"), None);
        assert_eq!(partial_pid(".x.partial-12"), None);
        assert_eq!(partial_pid("plain"), None);
    }

    #[test]
    fn the_default_folder_is_per_user_and_never_the_shared_temp_folder() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        let p = CachePolicy::from_vars(env(&[("HOME", "/home/ann")]));
        assert_eq!(p.dir(), Some(Path::new("/home/ann/.cache/bilevel")));
        assert_eq!(p.origin, Origin::User);
        let p = CachePolicy::from_vars(env(&[("HOME", "/home/ann"), ("XDG_CACHE_HOME", "/c")]));
        assert_eq!(p.dir(), Some(Path::new("/c/bilevel")));
        // A relative XDG_CACHE_HOME is invalid (XDG Base Directory specification): ignored.
        let p = CachePolicy::from_vars(env(&[("HOME", "/h"), ("XDG_CACHE_HOME", "rel")]));
        assert_eq!(p.dir(), Some(Path::new("/h/.cache/bilevel")));
        let p = CachePolicy::from_vars(env(&[("HOME", "/h"), (CACHE_DIR_ENV, "/mine")]));
        assert_eq!((p.dir(), p.origin), (Some(Path::new("/mine")), Origin::Env));
        let p = CachePolicy::from_vars(env(&[("HOME", "/h"), (CACHE_DIR_ENV, "")]));
        assert_eq!(p.dir(), Some(Path::new("/h/.cache/bilevel")));
        // Nothing set: no folder, and an error that says what to set.
        let p = CachePolicy::from_vars(env(&[]));
        assert_eq!(p.dir(), None);
        let err = p.dir_entry(Path::new("x.gz")).unwrap_err();
        assert!(err.to_string().contains(CACHE_DIR_ENV), "{err}");
        // The real environment's default is not under the shared temp folder.
        if let Some(d) = CachePolicy::from_env().dir()
            && std::env::var_os(CACHE_DIR_ENV).is_none()
        {
            assert!(!d.starts_with(std::env::temp_dir()), "{}", d.display());
        }
    }

    #[test]
    fn this_process_is_alive() {
        assert!(process_alive(std::process::id()));
    }

    #[test]
    fn records_round_trip_and_reject_garbage() {
        let made = Made {
            source: Source {
                len: 12,
                sha256: [3; 32],
                isize: Some(5),
            },
            content_len: 99,
            content_sha256: [0xAB; 32],
        };
        let text = made.to_text(Path::new("/data/x.gz"));
        assert_eq!(Made::parse(&text), Some((12, [3; 32], 99, [0xAB; 32])));
        assert_eq!(Made::parse("garbage"), None);
        assert_eq!(
            Made::parse(&text.replace("content_len 99", "content_len x")),
            None
        );
        assert_eq!(Made::parse(&text[..text.len() - 10]), None);
    }
}

//! SHA-256 verification against a sums file in the `sha256sum` format.
//!
//! Each line of such a file is 64 hex digits, a space, a mode character (a space for text mode or
//! `*` for binary mode, which mean the same here) and a file name:
//!
//! ```text
//! 0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7  t10k-images-idx3-ubyte
//! ```
//!
//! Blank lines and lines starting with `#` are ignored.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{DatasetError, Result, io_err};

/// The digests listed in a `sha256sum`-format file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sha256Sums {
    path: PathBuf,
    entries: Vec<(String, [u8; 32])>,
}

impl Sha256Sums {
    /// Reads and parses a sums file.
    ///
    /// # Errors
    /// [`DatasetError::Io`] if it cannot be read, [`DatasetError::BadChecksumFile`] for a line
    /// that is not in the `sha256sum` format (or not UTF-8).
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(io_err(path, "cannot read"))?;
        let text = String::from_utf8(bytes).map_err(|e| DatasetError::BadChecksumFile {
            path: path.to_path_buf(),
            line: 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count(),
            reason: "not UTF-8",
        })?;
        Self::parse(&text, path)
    }

    /// Parses the text of a sums file; `path` names it in errors.
    ///
    /// # Errors
    /// [`DatasetError::BadChecksumFile`] for a malformed line.
    pub fn parse(text: &str, path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let bad = |reason| DatasetError::BadChecksumFile {
                path: path.clone(),
                line: i + 1,
                reason,
            };
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let (hex, rest) = line
                .split_at_checked(64)
                .ok_or_else(|| bad("does not start with a 64-digit digest"))?;
            let digest = parse_hex(hex).ok_or_else(|| bad("digest is not 64 hex digits"))?;
            let name = rest
                .strip_prefix(' ')
                .ok_or_else(|| bad("no space after the digest"))?;
            let name = name
                .strip_prefix(' ')
                .or_else(|| name.strip_prefix('*'))
                .unwrap_or(name);
            if name.is_empty() {
                return Err(bad("no file name"));
            }
            entries.push((name.to_owned(), digest));
        }
        Ok(Self { path, entries })
    }

    /// The sums file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The digest listed for `name` (compared with the listed names exactly, and with their final
    /// path component), if any.
    pub fn get(&self, name: &str) -> Option<&[u8; 32]> {
        self.entries
            .iter()
            .find(|(n, _)| n == name || Path::new(n).file_name().is_some_and(|f| f == name))
            .map(|(_, d)| d)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the file lists nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Checks `bytes` (the content of `file`) against the first of `names` that is listed.
    ///
    /// # Errors
    /// [`DatasetError::ChecksumMissing`] if none of `names` is listed,
    /// [`DatasetError::ChecksumMismatch`] if the digest differs.
    pub fn verify(&self, names: &[&str], file: &Path, bytes: &[u8]) -> Result<()> {
        self.verify_digest(names, file, &Sha256::digest(bytes).into())
    }

    /// Checks the SHA-256 `actual` of `file`'s content against the first of `names` that is
    /// listed.
    ///
    /// # Errors
    /// As [`Sha256Sums::verify`].
    pub fn verify_digest(&self, names: &[&str], file: &Path, actual: &[u8; 32]) -> Result<()> {
        let expected = names.iter().find_map(|n| self.get(n)).ok_or_else(|| {
            DatasetError::ChecksumMissing {
                path: file.to_path_buf(),
                sums: self.path.clone(),
            }
        })?;
        if actual != expected {
            return Err(DatasetError::ChecksumMismatch {
                path: file.to_path_buf(),
                expected: to_hex(expected),
                actual: to_hex(actual),
            });
        }
        Ok(())
    }
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    to_hex(&Sha256::digest(bytes).into())
}

pub(crate) fn to_hex(d: &[u8; 32]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn parse_hex(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let nib = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        *o = (nib(pair[0])? << 4) | nib(pair[1])?;
    }
    Some(out)
}

//! Files that appear whole or not at all: everything is written to a uniquely named temporary
//! file in the target's folder and renamed over the target when complete.
//!
//! Temporary files are named `.bilevel-<random>.tmp`, so two writers never share one, and a
//! folder's leftovers from a killed process can be recognized ([`is_temporary`]) and removed.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;

/// The prefix of every temporary file written here.
pub const TMP_PREFIX: &str = ".bilevel-";
/// The suffix of every temporary file written here.
pub const TMP_SUFFIX: &str = ".tmp";

/// Whether a file name is one of this module's temporary files.
pub fn is_temporary(name: &str) -> bool {
    name.starts_with(TMP_PREFIX) && name.ends_with(TMP_SUFFIX)
}

/// Write `bytes` to `path` atomically.
///
/// # Errors
/// I/O errors of creating, writing or renaming the temporary file.
pub fn write(path: &Path, bytes: impl AsRef<[u8]>) -> io::Result<()> {
    let mut f = Staged::create(path)?;
    f.write_all(bytes.as_ref())?;
    f.commit()
}

/// An open temporary file that becomes `path` on [`Staged::commit`]; dropped without a commit,
/// it is removed.
#[derive(Debug)]
pub struct Staged {
    path: PathBuf,
    out: BufWriter<NamedTempFile>,
}

impl Staged {
    /// A temporary file beside `path` (in the same folder, so the rename is atomic).
    ///
    /// # Errors
    /// I/O errors of creating it.
    pub fn create(path: &Path) -> io::Result<Self> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(TMP_PREFIX)
            .suffix(TMP_SUFFIX)
            .tempfile_in(dir)?;
        Ok(Staged {
            path: path.to_path_buf(),
            out: BufWriter::new(tmp),
        })
    }

    /// The path the file becomes.
    pub fn target(&self) -> &Path {
        &self.path
    }

    /// Flush and rename over the target.
    ///
    /// # Errors
    /// I/O errors of flushing or renaming.
    pub fn commit(self) -> io::Result<()> {
        let tmp = self.out.into_inner().map_err(|e| e.into_error())?;
        tmp.as_file().sync_data().ok();
        tmp.persist(&self.path)
            .map(|_: File| ())
            .map_err(|e| e.error)
    }
}

impl Write for Staged {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_appears_only_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.txt");
        let mut f = Staged::create(&p).unwrap();
        f.write_all(b"half").unwrap();
        assert!(!p.exists());
        let names = |d: &Path| -> Vec<String> {
            std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        };
        assert!(names(dir.path()).iter().all(|n| is_temporary(n)));
        f.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "half");
        // A dropped file leaves nothing behind.
        drop(Staged::create(&p).unwrap());
        assert_eq!(names(dir.path()), ["out.txt"]);
        write(&p, "whole").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "whole");
    }

    #[test]
    fn two_writers_get_two_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("same.txt");
        let (a, b) = (Staged::create(&p).unwrap(), Staged::create(&p).unwrap());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
        a.commit().unwrap();
        b.commit().unwrap();
        assert!(p.exists());
    }
}

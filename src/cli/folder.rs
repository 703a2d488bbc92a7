//! Run folders: the name of every file a run writes, the manifest of the files the program
//! wrote in a folder, and the lock that keeps two runs out of one folder.
//!
//! A folder the program writes into holds `manifest.json`: what the folder holds (a run of a
//! solver on a problem, or a comparison of the runs in some of its subfolders) and the name of
//! every file the program wrote there. A name enters the manifest before its file is written, so
//! a later run deletes exactly the files of the run before it (and a user's own files in the
//! folder survive), and readers take only the traces it lists. While a run writes, it holds
//! `.bilevel.lock` (with its process id); a second run into the folder is refused until the
//! first ends, and a lock whose process is gone (a killed run) is taken over, with the killed
//! run's temporary files removed. Folders written before manifests existed are read as they
//! are and replaced by the file names runs have always used.

use super::CliError;
use crate::solvers::atomic;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The manifest's file name.
pub const MANIFEST: &str = "manifest.json";
/// The lock's file name.
pub const LOCK: &str = ".bilevel.lock";
/// A run's settings.
pub const SPEC: &str = "run.json";
/// A run's final values per metric.
pub const SUMMARY_CSV: &str = "summary.csv";
/// A run's (or a comparison's) summary for people.
pub const SUMMARY_MD: &str = "summary.md";

/// The CSV trace of seed `seed`.
pub fn trace_csv(seed: u64) -> String {
    format!("seed{seed}.csv")
}

/// The JSON Lines trace of seed `seed`.
pub fn trace_jsonl(seed: u64) -> String {
    format!("seed{seed}.jsonl")
}

/// The checkpoint and records of seed `seed` while it runs.
pub fn state(seed: u64) -> String {
    format!("seed{seed}.state.json")
}

/// The hyper-cleaning metrics of seed `seed` in runs made before they moved into the trace.
pub fn legacy_extras(seed: u64) -> String {
    format!("seed{seed}.extras.csv")
}

/// The plot of column `col`.
pub fn plot(col: &str) -> String {
    format!("plot_{col}.svg")
}

/// The seed of a trace file name `seed<s>.csv`.
fn seed_of_trace(name: &str) -> Option<u64> {
    name.strip_prefix("seed")?
        .strip_suffix(".csv")?
        .parse()
        .ok()
}

/// What a folder holds and which files the program wrote there.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The problem of the run (or of every run compared); empty for a reproduction.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub problem: String,
    /// The solver of the run; `None` for a comparison.
    pub solver: Option<String>,
    /// Every file the program wrote here, by name.
    pub files: BTreeSet<String>,
    /// For a comparison: the subfolders holding the runs compared.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<String>,
    /// For the folder of a reproduction (`bilevel reproduce ID`): its id. The runs it makes
    /// live in subfolders with manifests of their own; this one lists its report, plots and
    /// other files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<String>,
}

impl Manifest {
    /// The manifest of `dir`, if it has one.
    ///
    /// # Errors
    /// A manifest that cannot be read or parsed.
    pub fn read(dir: &Path) -> Result<Option<Manifest>, CliError> {
        let p = dir.join(MANIFEST);
        match fs::read_to_string(&p) {
            Ok(t) => serde_json::from_str(&t)
                .map(Some)
                .map_err(|e| CliError::new(format!("{}: {e}", p.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(CliError::new(format!("reading {}: {e}", p.display()))),
        }
    }

    fn what(&self) -> String {
        match (&self.experiment, &self.solver) {
            (Some(e), _) => format!("the reproduction {e}"),
            (None, Some(s)) => format!("a run of {s} on {}", self.problem),
            (None, None) => format!("a comparison on {}", self.problem),
        }
    }
}

/// The seeds whose trace the run in `dir` wrote, in order: those its manifest lists, or for a
/// folder without one, every `seed<s>.csv`.
///
/// # Errors
/// A folder or manifest that cannot be read.
pub fn seeds_in(dir: &Path) -> Result<Vec<u64>, CliError> {
    let mut seeds: Vec<u64> = match Manifest::read(dir)? {
        Some(m) => m.files.iter().filter_map(|n| seed_of_trace(n)).collect(),
        None => fs::read_dir(dir)
            .map_err(|e| CliError::new(format!("reading {}: {e}", dir.display())))?
            .filter_map(|e| seed_of_trace(&e.ok()?.file_name().to_string_lossy()))
            .collect(),
    };
    seeds.retain(|&s| dir.join(trace_csv(s)).is_file());
    seeds.sort_unstable();
    seeds.dedup();
    Ok(seeds)
}

/// A folder the program writes into, locked for as long as this value lives.
#[derive(Debug)]
pub struct Folder {
    dir: PathBuf,
    manifest: Mutex<Manifest>,
}

/// How to take a folder over.
#[derive(Clone, Copy, Debug, Default)]
pub struct Take {
    /// Continue the run in it (keep its files).
    pub resume: bool,
    /// Replace a run of another problem or solver (deleting only the files it wrote).
    pub force: bool,
}

impl Folder {
    /// Take `dir` for a run of `solver` on `problem` (or, with `solver = None`, for a
    /// comparison): create it, lock it, remove a killed run's temporary files and, unless
    /// resuming, the files of the run it held before.
    ///
    /// # Errors
    /// The folder is locked by another run; it holds a run of another problem or solver (unless
    /// `take.force`); I/O.
    pub fn take(
        dir: &Path,
        problem: &str,
        solver: Option<&str>,
        take: Take,
    ) -> Result<Folder, CliError> {
        let wanted = Manifest {
            problem: problem.to_string(),
            solver: solver.map(str::to_string),
            ..Manifest::default()
        };
        Folder::take_as(dir, wanted, take)
    }

    /// Take `dir` for the reproduction `id`, keeping what the folder holds from earlier
    /// reproductions of it (their runs are reused or resumed by `--redraw`; their report and
    /// plots are replaced when written again).
    ///
    /// # Errors
    /// As [`Folder::take`]: the folder is locked, or holds something else.
    pub fn take_experiment(dir: &Path, id: &str) -> Result<Folder, CliError> {
        let wanted = Manifest {
            experiment: Some(id.to_string()),
            ..Manifest::default()
        };
        Folder::take_as(
            dir,
            wanted,
            Take {
                resume: true,
                force: false,
            },
        )
    }

    fn take_as(dir: &Path, wanted: Manifest, take: Take) -> Result<Folder, CliError> {
        fs::create_dir_all(dir)
            .map_err(|e| CliError::new(format!("creating {}: {e}", dir.display())))?;
        lock(dir)?;
        let taken = (|| {
            remove_temporaries(dir)?;
            let old = match Manifest::read(dir)? {
                Some(m) => Some(m),
                None => legacy_manifest(dir)?,
            };
            let mut manifest = wanted.clone();
            if let Some(old) = old {
                let same = old.problem == wanted.problem
                    && old.solver == wanted.solver
                    && old.experiment == wanted.experiment;
                if !same && !take.force {
                    let how = if wanted.experiment.is_some() {
                        "choose another --out"
                    } else {
                        "pass --force to replace it (only the files that run wrote are \
                         deleted), or choose another --out"
                    };
                    return Err(CliError::new(format!(
                        "{} holds {}, not {}: {how}",
                        dir.display(),
                        old.what(),
                        wanted.what()
                    )));
                }
                if take.resume && same {
                    manifest = old;
                } else {
                    for name in &old.files {
                        remove(&inside(dir, name)?)?;
                    }
                }
            }
            let f = Folder {
                dir: dir.to_path_buf(),
                manifest: Mutex::new(Manifest::default()),
            };
            f.save(&manifest)?;
            *f.manifest.lock().expect("manifest") = manifest;
            Ok(f)
        })();
        if taken.is_err() {
            unlock(dir);
        }
        taken
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Record that the program writes `name` here (before writing it); its path.
    ///
    /// # Errors
    /// A file of that name is there and the manifest does not list it (the program did not
    /// write it, so it is not replaced); a name that is not a relative path inside the folder;
    /// writing the manifest.
    pub fn file(&self, name: &str) -> Result<PathBuf, CliError> {
        self.claim([name])?;
        Ok(self.dir.join(name))
    }

    /// Record at once every name in `names` that the program is about to write here (one
    /// manifest write), after checking that none of them is a file the program did not write.
    ///
    /// # Errors
    /// As [`Folder::file`], for the first such name; nothing is recorded then.
    pub fn claim<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Result<(), CliError> {
        let mut m = self.manifest.lock().expect("manifest");
        let mut new = Vec::new();
        for name in names {
            if m.files.contains(name) || new.contains(&name) {
                continue;
            }
            let path = inside(&self.dir, name)?;
            if fs::symlink_metadata(&path).is_ok() {
                return Err(CliError::new(format!(
                    "{} is already there and this folder's {MANIFEST} does not list it (the \
                     program did not write it, so it does not replace it): move it away, or \
                     choose another --out",
                    path.display()
                )));
            }
            new.push(name);
        }
        if new.is_empty() {
            return Ok(());
        }
        m.files.extend(new.into_iter().map(str::to_string));
        self.save(&m)
    }

    /// Write `text` to the file `name` (recorded first, written atomically).
    ///
    /// # Errors
    /// I/O, naming the file.
    pub fn write(&self, name: &str, text: &str) -> Result<(), CliError> {
        super::write_atomic(&self.file(name)?, text)
    }

    /// Remove the file `name` and its entry.
    ///
    /// # Errors
    /// I/O.
    pub fn remove(&self, name: &str) -> Result<(), CliError> {
        let mut m = self.manifest.lock().expect("manifest");
        if !m.files.contains(name) {
            return Ok(()); // not the program's: left alone
        }
        remove(&self.dir.join(name))?;
        m.files.remove(name);
        self.save(&m)
    }

    /// Set the runs a comparison compares.
    ///
    /// # Errors
    /// Writing the manifest.
    pub fn set_runs(&self, runs: Vec<String>) -> Result<(), CliError> {
        let mut m = self.manifest.lock().expect("manifest");
        m.runs = runs;
        self.save(&m)
    }

    /// Write the manifest `m`, whose guard the caller holds until the file is in place (so two
    /// threads' saves cannot land out of order).
    fn save(&self, m: &Manifest) -> Result<(), CliError> {
        let text = serde_json::to_string_pretty(m).expect("manifest serializes");
        super::write_atomic(&self.dir.join(MANIFEST), &text)
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        unlock(&self.dir);
    }
}

/// `dir/name`, for a `name` that stays inside `dir`: a relative path of plain components (a
/// manifest edited to name `../x` or an absolute path must not reach outside its folder).
fn inside(dir: &Path, name: &str) -> Result<PathBuf, CliError> {
    let rel = Path::new(name);
    let plain = !name.is_empty()
        && rel
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    if !plain {
        return Err(CliError::new(format!(
            "{}: `{name}` is not a file name inside the folder",
            dir.join(MANIFEST).display()
        )));
    }
    Ok(dir.join(rel))
}

/// Remove `path` if it exists.
fn remove(path: &Path) -> Result<(), CliError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(CliError::new(format!("removing {}: {e}", path.display()))),
    }
}

/// The temporary files a killed run left in `dir`.
fn remove_temporaries(dir: &Path) -> Result<(), CliError> {
    let entries =
        fs::read_dir(dir).map_err(|e| CliError::new(format!("reading {}: {e}", dir.display())))?;
    for e in entries.flatten() {
        if atomic::is_temporary(&e.file_name().to_string_lossy()) {
            remove(&e.path())?;
        }
    }
    Ok(())
}

/// The manifest of a folder written before manifests existed: its `run.json` says what it
/// holds, and the files are those runs have always written under these names.
fn legacy_manifest(dir: &Path) -> Result<Option<Manifest>, CliError> {
    #[derive(Deserialize)]
    struct Spec {
        problem: String,
        solver: String,
        seeds: Vec<u64>,
    }
    let Ok(text) = fs::read_to_string(dir.join(SPEC)) else {
        return Ok(None);
    };
    let spec: Spec = serde_json::from_str(&text)
        .map_err(|e| CliError::new(format!("{}: {e}", dir.join(SPEC).display())))?;
    let mut files: BTreeSet<String> = [SPEC, SUMMARY_CSV, SUMMARY_MD]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for s in spec.seeds {
        files.extend([trace_csv(s), trace_jsonl(s), state(s), legacy_extras(s)]);
    }
    files.extend(super::summary::plotted().map(plot));
    Ok(Some(Manifest {
        problem: spec.problem,
        solver: Some(spec.solver),
        files,
        ..Manifest::default()
    }))
}

/// Take the lock of `dir`, or say which run holds it. A lock whose process is gone is taken
/// over under an exclusive lock of the folder itself, and checked again there, so that two runs
/// finding the same dead lock cannot both take it (nor one delete the other's).
fn lock(dir: &Path) -> Result<(), CliError> {
    let p = dir.join(LOCK);
    if create_lock(&p)? {
        return Ok(());
    }
    holder_gone(dir, &p)?;
    let _guard = FolderGuard::take(dir)?;
    holder_gone(dir, &p)?;
    remove(&p)?;
    if create_lock(&p)? {
        return Ok(());
    }
    holder_gone(dir, &p)?;
    Err(CliError::new(format!("cannot lock {}", dir.display())))
}

/// Create the lock file `p` holding this process's id; `false` if it is there already.
fn create_lock(p: &Path) -> Result<bool, CliError> {
    match OpenOptions::new().write(true).create_new(true).open(p) {
        Ok(mut f) => {
            write!(f, "{}", std::process::id())
                .map_err(|e| CliError::new(format!("writing {}: {e}", p.display())))?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(CliError::new(format!("creating {}: {e}", p.display()))),
    }
}

/// `Ok` when the run that holds the lock `p` of `dir` is gone, else the error naming it.
fn holder_gone(dir: &Path, p: &Path) -> Result<(), CliError> {
    let mut pid = fs::read_to_string(p).unwrap_or_default();
    if pid.is_empty() {
        // Its writer may be between creating and writing it.
        std::thread::sleep(std::time::Duration::from_millis(100));
        pid = fs::read_to_string(p).unwrap_or_default();
    }
    if alive(pid.trim()) {
        return Err(CliError::new(format!(
            "{} is in use by another run (process {}); wait for it to end, or choose another \
             --out",
            dir.display(),
            pid.trim()
        )));
    }
    Ok(())
}

/// An exclusive advisory lock on a folder's directory handle, released when dropped. Off Unix
/// it is nothing: there [`alive`] takes every lock with a process id to be held, so only an
/// unreadable lock is ever taken over.
struct FolderGuard {
    _held: Option<fs::File>,
}

impl FolderGuard {
    fn take(dir: &Path) -> Result<FolderGuard, CliError> {
        #[cfg(unix)]
        {
            let f = fs::File::open(dir)
                .map_err(|e| CliError::new(format!("opening {}: {e}", dir.display())))?;
            f.lock()
                .map_err(|e| CliError::new(format!("locking {}: {e}", dir.display())))?;
            Ok(FolderGuard { _held: Some(f) })
        }
        #[cfg(not(unix))]
        {
            let _ = dir;
            Ok(FolderGuard { _held: None })
        }
    }
}

fn unlock(dir: &Path) {
    let _ = fs::remove_file(dir.join(LOCK));
}

/// Whether the process `pid` (as written in a lock) still runs. Where the system does not say
/// (no `/proc`), a lock is taken to be held.
fn alive(pid: &str) -> bool {
    let Ok(pid) = pid.parse::<u32>() else {
        // Not a lock this program wrote whole (a killed run between creating and writing it).
        return false;
    };
    let proc = Path::new("/proc");
    !proc.is_dir() || proc.join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(dir: &Path) -> Folder {
        Folder::take(dir, "quadratic", Some("bome"), Take::default()).unwrap()
    }

    #[test]
    fn a_file_the_manifest_does_not_list_is_never_replaced_nor_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        fs::write(dir.join("seed0.csv"), "the user's").unwrap();
        let f = folder(dir);
        let err = f.claim(["run.json", "seed0.csv"]).unwrap_err().0;
        assert!(err.contains("seed0.csv is already there"), "{err}");
        // Nothing of the refused claim is recorded.
        assert!(f.manifest.lock().unwrap().files.is_empty());
        assert!(f.file("seed0.csv").is_err());
        f.remove("seed0.csv").unwrap();
        assert_eq!(
            fs::read_to_string(dir.join("seed0.csv")).unwrap(),
            "the user's"
        );
        // A name the program recorded is its own to replace and remove.
        let p = f.file("seed1.csv").unwrap();
        fs::write(&p, "ours").unwrap();
        assert_eq!(f.file("seed1.csv").unwrap(), p);
        f.remove("seed1.csv").unwrap();
        assert!(!p.exists());
    }

    #[test]
    fn a_manifest_cannot_name_a_file_outside_its_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let (dir, outside) = (tmp.path().join("run"), tmp.path().join("x"));
        fs::create_dir(&dir).unwrap();
        fs::write(&outside, "keep").unwrap();
        for name in ["../x", "/etc/passwd", "", "a/../../x"] {
            let m = Manifest {
                problem: "quadratic".into(),
                solver: Some("bome".into()),
                files: [name.to_string()].into(),
                ..Manifest::default()
            };
            fs::write(dir.join(MANIFEST), serde_json::to_string(&m).unwrap()).unwrap();
            let err = Folder::take(&dir, "quadratic", Some("bome"), Take::default())
                .unwrap_err()
                .0;
            assert!(
                err.contains("is not a file name inside the folder"),
                "{err}"
            );
            assert!(!dir.join(LOCK).exists(), "a refused take leaves no lock");
        }
        assert_eq!(fs::read_to_string(&outside).unwrap(), "keep");
        // A relative path inside the folder is fine.
        assert_eq!(
            inside(&dir, "ul/t1/trajectory.csv").unwrap(),
            dir.join("ul/t1/trajectory.csv")
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn of_many_runs_taking_over_one_dead_lock_exactly_one_gets_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut gone = std::process::Command::new("true").spawn().unwrap();
        let pid = gone.id();
        gone.wait().unwrap();
        for _ in 0..20 {
            fs::write(dir.join(LOCK), pid.to_string()).unwrap();
            let start = std::sync::Barrier::new(8);
            let won: usize = std::thread::scope(|s| {
                let hs: Vec<_> = (0..8)
                    .map(|_| {
                        s.spawn(|| {
                            start.wait();
                            lock(dir).is_ok()
                        })
                    })
                    .collect();
                hs.into_iter().map(|h| usize::from(h.join().unwrap())).sum()
            });
            assert_eq!(won, 1);
            assert_eq!(
                fs::read_to_string(dir.join(LOCK)).unwrap(),
                std::process::id().to_string()
            );
            unlock(dir);
        }
    }
}

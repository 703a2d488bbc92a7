//! Observers of a run: file writers (CSV, JSON Lines) and a progress callback.
//!
//! Writers write to a temporary file in the target folder and rename it into place when the run
//! finishes, so the target path never holds a half-written file. Non-finite numbers are never
//! written: CSV leaves the cell empty and JSON writes `null`; the run's [`Status`] says why.

use crate::metrics::Metrics;
use crate::runner::{Record, RunInfo, Status};
use serde_json::{Map, Value, json};
use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Sees each run's start, every record and the end.
pub trait Observe: Send + fmt::Debug {
    /// The run starts.
    fn on_start(&mut self, _info: &RunInfo) -> io::Result<()> {
        Ok(())
    }
    /// An iteration finished (or, for iteration 0, the run was initialized).
    fn on_record(&mut self, rec: &Record) -> io::Result<()>;
    /// The run ended with `status`.
    fn on_finish(&mut self, _status: &Status) -> io::Result<()> {
        Ok(())
    }
}

/// The temporary sibling `.<name>.tmp` of `path`.
pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    path.with_file_name(format!(".{name}.tmp"))
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// An open temporary file that becomes `path` on [`Staged::commit`].
#[derive(Debug)]
struct Staged {
    path: PathBuf,
    tmp: PathBuf,
    out: BufWriter<File>,
}

impl Staged {
    fn create(path: &Path) -> io::Result<Self> {
        let tmp = tmp_path(path);
        let out = BufWriter::new(File::create(&tmp)?);
        Ok(Staged {
            path: path.to_path_buf(),
            tmp,
            out,
        })
    }

    fn commit(mut self) -> io::Result<()> {
        self.out.flush()?;
        drop(self.out);
        std::fs::rename(&self.tmp, &self.path)
    }
}

/// Writes every `every`-th record as a CSV row: `iter, gc, mv, value_calls, elapsed_s`, the
/// [`Metrics::NAMES`] columns, then the solver's scalars (named in the header from the first
/// step record; rows before it wait in memory). A scalar whose name is already a column (PGD-QP
/// reports the `h` it stepped from, which is also a metric) is headed `step_<name>`, so every
/// header name is unique.
#[derive(Debug)]
pub struct CsvWriter {
    path: PathBuf,
    every: u64,
    file: Option<Staged>,
    names: Option<Vec<&'static str>>,
    pending: Vec<Record>,
}

impl CsvWriter {
    /// A writer to `path`, keeping iterations that are multiples of `every` (at least 1).
    pub fn new(path: impl Into<PathBuf>, every: u64) -> Self {
        CsvWriter {
            path: path.into(),
            every: every.max(1),
            file: None,
            names: None,
            pending: Vec::new(),
        }
    }

    fn row(rec: &Record, names: &[&'static str]) -> String {
        let cell = |v: Option<f64>| {
            v.and_then(finite)
                .map(|v| format!("{v:e}"))
                .unwrap_or_default()
        };
        let mut cells = vec![
            rec.iter.to_string(),
            rec.counts.gc.to_string(),
            rec.counts.mv.to_string(),
            rec.counts.value.to_string(),
            cell(Some(rec.elapsed)),
        ];
        let m = rec.metrics.clone().unwrap_or_default();
        cells.extend(m.values().iter().map(|v| cell(*v)));
        for n in names {
            cells.push(cell(
                rec.scalars.iter().find(|(k, _)| k == n).map(|(_, v)| *v),
            ));
        }
        cells.join(",")
    }

    /// Fix the scalar columns, write the header and the rows waiting for it.
    fn start_rows(&mut self, names: Vec<&'static str>) -> io::Result<()> {
        let f = self.file.as_mut().expect("on_start was called");
        let mut header: Vec<String> = ["iter", "gc", "mv", "value_calls", "elapsed_s"]
            .iter()
            .chain(Metrics::NAMES.iter())
            .map(|s| (*s).to_string())
            .collect();
        for n in &names {
            let name = if header.iter().any(|h| h == n) {
                format!("step_{n}")
            } else {
                (*n).to_string()
            };
            header.push(name);
        }
        writeln!(f.out, "{}", header.join(","))?;
        for rec in self.pending.drain(..) {
            writeln!(f.out, "{}", Self::row(&rec, &names))?;
        }
        self.names = Some(names);
        Ok(())
    }
}

impl Observe for CsvWriter {
    fn on_start(&mut self, _info: &RunInfo) -> io::Result<()> {
        self.file = Some(Staged::create(&self.path)?);
        self.names = None;
        self.pending.clear();
        Ok(())
    }

    fn on_record(&mut self, rec: &Record) -> io::Result<()> {
        if !rec.iter.is_multiple_of(self.every) {
            return Ok(());
        }
        if self.names.is_none() {
            if rec.scalars.is_empty() {
                self.pending.push(rec.clone());
                return Ok(());
            }
            self.start_rows(rec.scalars.iter().map(|(k, _)| *k).collect())?;
        }
        let line = Self::row(rec, self.names.as_deref().unwrap_or_default());
        let f = self.file.as_mut().expect("on_start was called");
        writeln!(f.out, "{line}")
    }

    fn on_finish(&mut self, _status: &Status) -> io::Result<()> {
        if self.names.is_none() {
            self.start_rows(Vec::new())?;
        }
        if let Some(f) = self.file.take() {
            f.commit()?;
        }
        Ok(())
    }
}

/// Writes every `every`-th record as one JSON object per line, then a final
/// `{"status": ...}` line.
#[derive(Debug)]
pub struct JsonlWriter {
    path: PathBuf,
    every: u64,
    file: Option<Staged>,
}

impl JsonlWriter {
    /// A writer to `path`, keeping iterations that are multiples of `every` (at least 1).
    pub fn new(path: impl Into<PathBuf>, every: u64) -> Self {
        JsonlWriter {
            path: path.into(),
            every: every.max(1),
            file: None,
        }
    }

    /// The JSON form of a record (non-finite numbers as `null`).
    pub fn record_json(rec: &Record) -> Value {
        let num = |v: Option<f64>| v.and_then(finite).map_or(Value::Null, |v| json!(v));
        let mut metrics = Map::new();
        if let Some(m) = &rec.metrics {
            for (k, v) in Metrics::NAMES.iter().zip(m.values()) {
                metrics.insert((*k).to_string(), num(v));
            }
        }
        let mut scalars = Map::new();
        for (k, v) in &rec.scalars {
            scalars.insert((*k).to_string(), num(Some(*v)));
        }
        json!({
            "iter": rec.iter,
            "gc": rec.counts.gc,
            "mv": rec.counts.mv,
            "value_calls": rec.counts.value,
            "elapsed_s": num(Some(rec.elapsed)),
            "metrics": if rec.metrics.is_some() { Value::Object(metrics) } else { Value::Null },
            "scalars": scalars,
        })
    }
}

impl Observe for JsonlWriter {
    fn on_start(&mut self, info: &RunInfo) -> io::Result<()> {
        let mut f = Staged::create(&self.path)?;
        writeln!(
            f.out,
            "{}",
            json!({"problem": info.problem, "solver": info.solver, "dim_x": info.dim_x, "dim_y": info.dim_y})
        )?;
        self.file = Some(f);
        Ok(())
    }

    fn on_record(&mut self, rec: &Record) -> io::Result<()> {
        if !rec.iter.is_multiple_of(self.every) {
            return Ok(());
        }
        let f = self.file.as_mut().expect("started");
        writeln!(f.out, "{}", Self::record_json(rec))
    }

    fn on_finish(&mut self, status: &Status) -> io::Result<()> {
        if let Some(mut f) = self.file.take() {
            let mut s = serde_json::to_value(status).map_err(io::Error::other)?;
            sanitize(&mut s);
            writeln!(f.out, "{}", json!({ "status": s }))?;
            f.commit()?;
        }
        Ok(())
    }
}

/// serde_json already writes non-finite floats as `null`; this keeps that explicit.
fn sanitize(v: &mut Value) {
    match v {
        Value::Array(a) => a.iter_mut().for_each(sanitize),
        Value::Object(o) => o.values_mut().for_each(sanitize),
        _ => {}
    }
}

/// Calls a closure on every `every`-th record (for progress bars or logging).
pub struct Progress {
    every: u64,
    f: Box<dyn FnMut(&Record) + Send>,
}

impl Progress {
    /// Call `f` on iterations that are multiples of `every` (at least 1).
    pub fn new(every: u64, f: impl FnMut(&Record) + Send + 'static) -> Self {
        Progress {
            every: every.max(1),
            f: Box::new(f),
        }
    }
}

impl fmt::Debug for Progress {
    fn fmt(&self, fm: &mut fmt::Formatter<'_>) -> fmt::Result {
        fm.debug_struct("Progress")
            .field("every", &self.every)
            .finish()
    }
}

impl Observe for Progress {
    fn on_record(&mut self, rec: &Record) -> io::Result<()> {
        if rec.iter.is_multiple_of(self.every) {
            (self.f)(rec);
        }
        Ok(())
    }
}

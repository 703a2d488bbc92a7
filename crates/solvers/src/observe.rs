//! Observers of a run: file writers (CSV, JSON Lines) and a progress callback.
//!
//! Writers write to a temporary file in the target folder and rename it into place when the run
//! finishes, so the target path never holds a half-written file. Non-finite numbers are never
//! written: CSV leaves the cell empty and JSON writes `null`; the run's [`Status`] says why.

use crate::atomic::Staged;
use crate::metrics::Metrics;
use crate::named::Name;
use crate::record::{Checkpoint, Record, RunInfo, Status};
use crate::solver::Iterate;
use serde_json::{Map, Value, json};
use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Sees each run's start, every record with its iterate, every checkpoint and the end.
pub trait Observe: Send + fmt::Debug {
    /// The run starts.
    fn on_start(&mut self, _info: &RunInfo) -> io::Result<()> {
        Ok(())
    }
    /// An iteration finished (or, for iteration 0, the run was initialized) at iterate `it`.
    fn on_record(&mut self, rec: &Record, it: &Iterate) -> io::Result<()>;
    /// The runner made a checkpoint (every
    /// [`RunConfig::checkpoint_every`](crate::RunConfig::checkpoint_every) iterations, and
    /// where a [`Stop`](crate::Stop) ended the run).
    fn on_checkpoint(&mut self, _ck: &Checkpoint) -> io::Result<()> {
        Ok(())
    }
    /// The run ended with `status`.
    fn on_finish(&mut self, _status: &Status) -> io::Result<()> {
        Ok(())
    }
}

/// A trace writer: what it does with one record, without the iterate.
trait Lines: Observe {
    fn push(&mut self, rec: &Record) -> io::Result<()>;
}

/// Feed `records` to a fresh writer `w` as one run ending with `status`.
fn write_all(
    mut w: impl Lines,
    info: &RunInfo,
    records: &[Record],
    status: &Status,
) -> io::Result<()> {
    w.on_start(info)?;
    for r in records {
        w.push(r)?;
    }
    w.on_finish(status)
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// Writes every `every`-th record as a CSV row: `iter, gc, mv, value_calls, elapsed_s`, the
/// [`Metrics::NAMES`] columns, the problem's extra metrics ([`Metrics::extra`], named from the
/// first record with metrics), then the solver's scalars (named in the header from the first
/// step record; rows before it wait in memory). A scalar whose name is already a column (PGD-QP
/// reports the `h` it stepped from, which is also a metric) is headed `step_<name>`, so every
/// header name is unique.
#[derive(Debug)]
pub struct CsvWriter {
    path: PathBuf,
    every: u64,
    file: Option<Staged>,
    /// The problem's extra metric columns and the scalar columns, once fixed.
    names: Option<(Vec<Name>, Vec<Name>)>,
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

    fn row(rec: &Record, extra: &[Name], names: &[Name]) -> String {
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
        let none = Metrics::default();
        let m = rec.metrics.as_ref().unwrap_or(&none);
        cells.extend(m.values().iter().map(|v| cell(*v)));
        for n in extra {
            cells.push(cell(m.extra(n)));
        }
        for n in names {
            cells.push(cell(rec.scalar(n)));
        }
        cells.join(",")
    }

    /// Fix the columns (the extra metrics of the first record that has metrics, the scalars
    /// `names`), write the header and the rows waiting for it.
    fn start_rows(&mut self, names: Vec<Name>) -> io::Result<()> {
        let extra: Vec<Name> = self
            .pending
            .iter()
            .find_map(|r| r.metrics.as_ref())
            .map(|m| m.extra.iter().map(|(k, _)| k.clone()).collect())
            .unwrap_or_default();
        let f = self.file.as_mut().expect("on_start was called");
        let mut header: Vec<String> = ["iter", "gc", "mv", "value_calls", "elapsed_s"]
            .iter()
            .chain(Metrics::NAMES.iter())
            .map(|s| (*s).to_string())
            .chain(extra.iter().map(|n| n.to_string()))
            .collect();
        for n in &names {
            let name = if header.iter().any(|h| h == n) {
                format!("step_{n}")
            } else {
                n.to_string()
            };
            header.push(name);
        }
        writeln!(f, "{}", header.join(","))?;
        for rec in self.pending.drain(..) {
            writeln!(f, "{}", Self::row(&rec, &extra, &names))?;
        }
        self.names = Some((extra, names));
        Ok(())
    }
}

impl Lines for CsvWriter {
    fn push(&mut self, rec: &Record) -> io::Result<()> {
        self.push_record(rec)
    }
}

impl Lines for JsonlWriter {
    fn push(&mut self, rec: &Record) -> io::Result<()> {
        self.push_record(rec)
    }
}

impl Observe for CsvWriter {
    fn on_start(&mut self, _info: &RunInfo) -> io::Result<()> {
        self.file = Some(Staged::create(&self.path)?);
        self.names = None;
        self.pending.clear();
        Ok(())
    }

    fn on_record(&mut self, rec: &Record, _it: &Iterate) -> io::Result<()> {
        self.push_record(rec)
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

impl CsvWriter {
    /// Write `records` to `path` in one go, as a run ending with `status` would have.
    ///
    /// # Errors
    /// I/O errors.
    pub fn write_records(
        path: &Path,
        info: &RunInfo,
        records: &[Record],
        status: &Status,
    ) -> io::Result<()> {
        write_all(CsvWriter::new(path, 1), info, records, status)
    }

    fn push_record(&mut self, rec: &Record) -> io::Result<()> {
        if !rec.iter.is_multiple_of(self.every) {
            return Ok(());
        }
        if self.names.is_none() {
            self.pending.push(rec.clone());
            if rec.scalars.is_empty() {
                return Ok(());
            }
            return self.start_rows(rec.scalars.iter().map(|(k, _)| k.clone()).collect());
        }
        let (extra, names) = self.names.as_ref().expect("columns are fixed");
        let line = Self::row(rec, extra, names);
        let f = self.file.as_mut().expect("on_start was called");
        writeln!(f, "{line}")
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

    /// Write `records` to `path` in one go, as a run ending with `status` would have.
    ///
    /// # Errors
    /// I/O errors.
    pub fn write_records(
        path: &Path,
        info: &RunInfo,
        records: &[Record],
        status: &Status,
    ) -> io::Result<()> {
        write_all(JsonlWriter::new(path, 1), info, records, status)
    }

    fn push_record(&mut self, rec: &Record) -> io::Result<()> {
        if !rec.iter.is_multiple_of(self.every) {
            return Ok(());
        }
        let f = self.file.as_mut().expect("started");
        writeln!(f, "{}", Self::record_json(rec))
    }

    /// The JSON form of a record (non-finite numbers as `null`).
    pub fn record_json(rec: &Record) -> Value {
        let num = |v: Option<f64>| v.and_then(finite).map_or(Value::Null, |v| json!(v));
        let mut metrics = Map::new();
        if let Some(m) = &rec.metrics {
            for (k, v) in Metrics::NAMES.iter().zip(m.values()) {
                metrics.insert((*k).to_string(), num(v));
            }
            for (k, v) in &m.extra {
                metrics.insert(k.to_string(), num(Some(*v)));
            }
        }
        let mut scalars = Map::new();
        for (k, v) in &rec.scalars {
            scalars.insert(k.to_string(), num(Some(*v)));
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
            f,
            "{}",
            json!({"problem": info.problem, "solver": info.solver, "dim_x": info.dim_x, "dim_y": info.dim_y})
        )?;
        self.file = Some(f);
        Ok(())
    }

    fn on_record(&mut self, rec: &Record, _it: &Iterate) -> io::Result<()> {
        self.push_record(rec)
    }

    fn on_finish(&mut self, status: &Status) -> io::Result<()> {
        if let Some(mut f) = self.file.take() {
            let s = serde_json::to_value(status).map_err(io::Error::other)?;
            writeln!(f, "{}", json!({ "status": s }))?;
            f.commit()?;
        }
        Ok(())
    }
}

/// Calls a closure on every `every`-th record (for progress bars or logging).
pub struct Progress {
    every: u64,
    f: ProgressFn,
}

type ProgressFn = Box<dyn FnMut(&Record) + Send>;

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
    fn on_record(&mut self, rec: &Record, _it: &Iterate) -> io::Result<()> {
        if rec.iter.is_multiple_of(self.every) {
            (self.f)(rec);
        }
        Ok(())
    }
}

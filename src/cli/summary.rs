//! What the program reads back from a run folder: each seed's trace as a table, its status,
//! and the final values over seeds (`summary.csv`, `summary.md`).

use super::CliError;
use super::folder::{self, Folder, seeds_in};
use super::plot::{Table, quantile};
use super::run::RunSpec;
use super::text::fmt;
use crate::solvers::Status;
use serde::Deserialize;
use std::path::Path;

/// Columns summarized when present: trace columns, then hyper-cleaning columns.
pub const SUMMARY_TRACE: [&str; 11] = [
    "iter",
    "gc",
    "mv",
    "elapsed_s",
    "f",
    "g",
    "h",
    "grad_phi_norm",
    "kkt",
    "vf_kkt",
    "opt_gap",
];
/// Hyper-cleaning columns.
pub const SUMMARY_EXTRA: [&str; 5] = ["val_loss", "test_acc", "precision", "recall", "f1"];
/// Every plotted column: the metrics of the trace and the hyper-cleaning columns.
pub fn plotted() -> impl Iterator<Item = &'static str> {
    SUMMARY_TRACE[4..].iter().chain(&SUMMARY_EXTRA).copied()
}

/// The trace of seed `seed` in `dir` as a table: `seed<s>.csv`, joined by iteration with the
/// columns of a `seed<s>.extras.csv`, where the data hyper-cleaning metrics of runs made before
/// they moved into the trace live (at checkpoints).
///
/// # Errors
/// A trace that cannot be read.
pub fn trace_table(dir: &Path, seed: u64) -> Result<Table, CliError> {
    let mut t = Table::read(&dir.join(folder::trace_csv(seed)))?;
    let legacy = dir.join(folder::legacy_extras(seed));
    if legacy.is_file() {
        t.join(&Table::read(&legacy)?, "iter");
    }
    Ok(t)
}

/// The traces of column `col` (against the iteration) of every finished seed in `dir`; empty
/// traces where a seed lacks the column.
///
/// # Errors
/// A trace that cannot be read.
pub fn traces_of(dir: &Path, col: &str) -> Result<Vec<Vec<(f64, f64)>>, CliError> {
    seeds_in(dir)?
        .into_iter()
        .map(|s| Ok(trace_table(dir, s)?.pairs("iter", col)))
        .collect()
}

/// How seed `seed` of the run in `dir` ended: the status line that closes its JSON Lines trace.
pub fn seed_status(dir: &Path, seed: u64) -> Option<Status> {
    #[derive(Deserialize)]
    struct Line {
        status: Status,
    }
    let text = std::fs::read_to_string(dir.join(folder::trace_jsonl(seed))).ok()?;
    serde_json::from_str::<Line>(text.lines().last()?)
        .ok()
        .map(|l| l.status)
}

/// The settings of the run in `dir`, if it has them; problem parameters added since it was
/// written are at their defaults, which are what it ran with
/// ([`registry::with_new_defaults`](super::registry::with_new_defaults)).
pub fn spec_of(dir: &Path) -> Option<RunSpec> {
    let text = std::fs::read_to_string(dir.join(folder::SPEC)).ok()?;
    let mut spec: RunSpec = serde_json::from_str(&text).ok()?;
    spec.problem_params =
        super::registry::with_new_defaults(&spec.problem, std::mem::take(&mut spec.problem_params));
    Some(spec)
}

/// Mean, standard deviation, median and 20/80 % quantiles.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    /// Number of values.
    pub n: usize,
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (0 for one value).
    pub std: f64,
    /// Median.
    pub median: f64,
    /// 20 % quantile.
    pub q20: f64,
    /// 80 % quantile.
    pub q80: f64,
}

impl Stats {
    /// Statistics of `v` (`None` if empty).
    pub fn of(v: &[f64]) -> Option<Self> {
        if v.is_empty() {
            return None;
        }
        let n = v.len();
        let mean = v.iter().sum::<f64>() / n as f64;
        let var = if n > 1 {
            v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64
        } else {
            0.0
        };
        Some(Stats {
            n,
            mean,
            std: var.sqrt(),
            median: quantile(v, 0.5),
            q20: quantile(v, 0.2),
            q80: quantile(v, 0.8),
        })
    }
}

/// The final row of a trace: its last row with metrics (whose `f` is present), else its last
/// row. Every final value of a seed comes from this one row.
fn final_row(t: &Table) -> Option<&Vec<Option<f64>>> {
    let f = t.col("f");
    t.rows
        .iter()
        .rev()
        .find(|r| f.is_some_and(|i| r.get(i).copied().flatten().is_some()))
        .or_else(|| t.rows.last())
}

/// The final value of each summarized column per seed, all from one row (the seed's last row
/// with metrics, else its last), then statistics over seeds.
///
/// # Errors
/// A trace that cannot be read.
pub fn final_stats(dir: &Path) -> Result<Vec<(String, Stats)>, CliError> {
    let traces: Vec<Table> = seeds_in(dir)?
        .into_iter()
        .map(|s| trace_table(dir, s))
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for c in SUMMARY_TRACE.iter().chain(&SUMMARY_EXTRA) {
        let v: Vec<f64> = traces
            .iter()
            .filter_map(|t| final_row(t)?.get(t.col(c)?).copied().flatten())
            .collect();
        if let Some(s) = Stats::of(&v) {
            out.push((c.to_string(), s));
        }
    }
    Ok(out)
}

/// The seeds of the run in `dir` that diverged, with their status.
pub fn diverged(dir: &Path) -> Result<Vec<(u64, Status)>, CliError> {
    Ok(seeds_in(dir)?
        .into_iter()
        .filter_map(|s| Some((s, seed_status(dir, s)?)))
        .filter(|(_, st)| st.is_diverged())
        .collect())
}

/// Write `summary.csv` and `summary.md` for the traces of the run in `f`.
///
/// # Errors
/// I/O.
pub fn summarize(f: &Folder) -> Result<(), CliError> {
    let dir = f.dir();
    let stats = final_stats(dir)?;
    let mut csv = String::from("metric,n,mean,std,median,q20,q80\n");
    let mut md = String::from(
        "| final value | mean ± std | median [20 %, 80 %] | seeds |\n|---|---|---|---|\n",
    );
    for (k, s) in &stats {
        csv += &format!(
            "{k},{},{:e},{:e},{:e},{:e},{:e}\n",
            s.n, s.mean, s.std, s.median, s.q20, s.q80
        );
        md += &format!(
            "| {k} | {} ± {} | {} [{}, {}] | {} |\n",
            fmt(s.mean),
            fmt(s.std),
            fmt(s.median),
            fmt(s.q20),
            fmt(s.q80),
            s.n
        );
    }
    let seeds = seeds_in(dir)?;
    let mut statuses = String::new();
    for &s in &seeds {
        let st = seed_status(dir, s).map_or("no status".into(), |st| st.describe());
        statuses += &format!("- seed {s}: {st}\n");
    }
    let bad = diverged(dir)?;
    let warning = if bad.is_empty() {
        String::new()
    } else {
        format!(
            "**Diverged: {} of {} seeds** ({}); their final values are those of the last \
             finite iterate with metrics.\n\n",
            bad.len(),
            seeds.len(),
            bad.iter()
                .map(|(s, _)| format!("seed {s}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let spec = spec_of(dir);
    let title = spec
        .as_ref()
        .map(|s| format!("# {} on {}\n\n", s.solver, s.problem))
        .unwrap_or_default();
    let derived = spec
        .as_ref()
        .filter(|s| !s.derived.is_empty())
        .map(|s| {
            let mut t =
                String::from("\nDefaults from the problem's smoothness constants (not --set):\n\n");
            for d in &s.derived {
                t += &format!("- {} = {}: {}\n", d.key, fmt(d.value), d.rule);
            }
            t
        })
        .unwrap_or_default();
    f.write(folder::SUMMARY_CSV, &csv)?;
    f.write(
        folder::SUMMARY_MD,
        &format!("{title}{warning}{md}\nStatus per seed:\n\n{statuses}{derived}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_final_values_of_a_seed_come_from_one_row() {
        // A diverged run: its last row (iteration 12) has no metrics, and h is missing from
        // the row before. Every column comes from iteration 10.
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join("seed0.csv"),
            "iter,gc,mv,value_calls,elapsed_s,f,g,h\n0,0,0,0,0,3,1,1\n10,20,10,0,1,2,1,\n12,24,12,0,1.2,,,\n",
        )
        .unwrap();
        let st = final_stats(tmp.path()).unwrap();
        let get = |k: &str| st.iter().find(|(n, _)| n == k).map(|(_, s)| s.mean);
        assert_eq!(get("iter"), Some(10.0));
        assert_eq!(get("gc"), Some(20.0));
        assert_eq!(get("f"), Some(2.0));
        assert_eq!(get("h"), None, "not taken from an earlier row");
    }
}

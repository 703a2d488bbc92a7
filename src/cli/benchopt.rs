//! Our runs in benchopt's result schema, `benchopt.csv`, so that benchopt's own tools
//! (`benchopt plot -f benchopt.csv`, `benchopt.results.read_results`) read them.
//!
//! benchopt (the benchmarking framework of Moreau et al., "Benchopt: Reproducible, efficient and
//! collaborative optimization benchmarks", NeurIPS 2022) writes one row per solver × repetition
//! × stopping point. Its runner builds each row from the run's meta (`_generate_runs.py`:
//! `base_seed`, `objective_name`, `obj_description`, `solver_name`, `solver_description`,
//! `dataset_name`, `idx_rep`, `sampling_strategy`, `file_objective`, `p_obj_<param>`,
//! `file_solver`, `p_solver_<param>`, `file_dataset`, `p_dataset_<param>`), then `stop_val`,
//! `time` (the solver's time only: the timer stops while the objective is evaluated), one
//! `objective_<key>` per key the objective's `evaluate_result` returns (`objective_value` is
//! the one plotted by default) and the system information (`platform`, `platform-release`,
//! `platform-architecture`, `system-cpus`, `version-numpy`, …), and `run_date` when the
//! results are merged. The names follow benchopt's `Name[param=value,...]` form with the
//! parameters sorted by name (`ParametrizedNameMixin.__repr__`).
//!
//! What we write, per row:
//!
//! | column | ours |
//! |---|---|
//! | `objective_name` | [`Schema::objective`] (benchmark_bilevel's is `Bilevel Optimization`) |
//! | `solver_name` | `NAME[k=v,...]` from [`BenchoptRun::name`] and the run's solver parameters, sorted, nested ones dotted (`batch.batch_f`), the per-seed sampler seed left out |
//! | `dataset_name` | `NAME[k=v,...]` from [`Schema::dataset`] and its parameters |
//! | `idx_rep` | the run seed (our seeds `0..n` are the repetitions) |
//! | `stop_val` | the outer iteration of the trace row; `sampling_strategy` is `Iteration` |
//! | `time` | the trace's `elapsed_s`, which excludes the metrics as benchopt's `time` does |
//! | `objective_<key>` | a trace column through [`Metric`] (`objective_value` among them) |
//! | `p_solver_<k>`, `p_dataset_<k>` | each parameter of the names, as text |
//! | `file_*`, `*_description`, `base_seed`, system columns | filled so that benchopt's HTML page, which reads them, draws the file (`version-numpy` says `none (Rust)`) |
//!
//! The file is written to a temporary name and renamed ([`write_atomic`]). Fields are quoted as
//! RFC 4180 says (names hold commas); floats are written in Rust's shortest exact form
//! (`{:e}`), so a reader gets back the very `f64` of the trace.

use super::CliError;
use super::folder::seeds_in;
use super::summary::{spec_of, trace_table};
use super::write_atomic;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The file name of the result table in a reproduction's folder.
pub const FILE: &str = "benchopt.csv";

/// One benchopt metric: `objective_<key>` taken from trace column `column` through `map`.
#[derive(Clone, Copy, Debug)]
pub struct Metric {
    /// The objective's key (`value` for `objective_value`).
    pub key: &'static str,
    /// Our trace column.
    pub column: &'static str,
    /// From our value to benchopt's (e.g. a norm to its square, an accuracy to an error).
    pub map: fn(f64) -> f64,
}

/// The experiment-wide part of the rows.
#[derive(Clone, Debug)]
pub struct Schema {
    /// `objective_name` (and `obj_description`).
    pub objective: String,
    /// The dataset's name, without parameters.
    pub dataset: String,
    /// The dataset's parameters (`p_dataset_<k>` and the bracket of `dataset_name`).
    pub dataset_params: Vec<(String, String)>,
    /// benchmark_bilevel's file of the dataset (`file_dataset`, e.g. `datasets/simulated.py`).
    pub file_dataset: String,
    /// The metrics, `value` first.
    pub metrics: Vec<Metric>,
}

/// One run folder of a reproduction under its benchopt solver name.
#[derive(Clone, Debug)]
pub struct BenchoptRun {
    /// The solver's name in benchopt (`SOBA`, `F2SA`), or ours for a method it has not.
    pub name: String,
    /// What it is (`solver_description`).
    pub description: String,
    /// The folder of the run (`run.json`, `seed<s>.csv`).
    pub dir: PathBuf,
}

/// The columns every row has, in order, before the parameters and the metrics.
const META: [&str; 11] = [
    "objective_name",
    "obj_description",
    "solver_name",
    "solver_description",
    "dataset_name",
    "idx_rep",
    "base_seed",
    "sampling_strategy",
    "file_objective",
    "file_solver",
    "file_dataset",
];

/// The system columns, after the metrics.
const SYSTEM: [&str; 6] = [
    "platform",
    "platform-release",
    "platform-architecture",
    "system-cpus",
    "version-numpy",
    "run_date",
];

/// `name[k=v,...]` with the parameters sorted by key, benchopt's form; `name` alone without any.
pub fn parametrized(name: &str, params: &[(String, String)]) -> String {
    if params.is_empty() {
        return name.to_string();
    }
    let mut p: Vec<&(String, String)> = params.iter().collect();
    p.sort_by(|a, b| a.0.cmp(&b.0));
    let inner: Vec<String> = p.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{name}[{}]", inner.join(","))
}

/// A run's solver parameters as `(key, text)` pairs: nested objects dotted, `null` as benchopt's
/// Python `None`, the minibatch's per-seed sampler seed left out (each repetition has its own).
pub fn solver_params(v: &Value) -> Vec<(String, String)> {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    if key == "batch.seed" {
                        continue;
                    }
                    walk(&key, x, out);
                }
            }
            Value::Null => out.push((prefix.to_string(), "None".into())),
            Value::String(s) => out.push((prefix.to_string(), s.clone())),
            other => out.push((prefix.to_string(), other.to_string())),
        }
    }
    let mut out = Vec::new();
    walk("", v, &mut out);
    out.sort();
    out
}

/// A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180).
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A float in its shortest exact form; empty for a missing value.
fn float(v: Option<f64>) -> String {
    v.map_or(String::new(), |x| format!("{x:e}"))
}

/// The rows of `runs` as benchopt's table: the header and one row per run × seed × trace row
/// where the first metric (`objective_value`) was evaluated.
///
/// # Errors
/// A run folder without its `run.json`, or a trace that cannot be read.
pub fn table(schema: &Schema, runs: &[BenchoptRun]) -> Result<Vec<Vec<String>>, CliError> {
    let dataset_name = parametrized(&schema.dataset, &schema.dataset_params);
    let mut solver_keys: BTreeMap<String, ()> = BTreeMap::new();
    let mut per_run = Vec::new();
    for r in runs {
        let spec = spec_of(&r.dir).ok_or_else(|| {
            CliError::new(format!("{}: no run.json to describe", r.dir.display()))
        })?;
        let params = solver_params(&spec.solver_params);
        for (k, _) in &params {
            solver_keys.insert(k.clone(), ());
        }
        per_run.push((r, spec, params));
    }
    let mut header: Vec<String> = META.iter().map(|s| s.to_string()).collect();
    header.extend(solver_keys.keys().map(|k| format!("p_solver_{k}")));
    header.extend(
        schema
            .dataset_params
            .iter()
            .map(|(k, _)| format!("p_dataset_{k}")),
    );
    header.extend(["stop_val".to_string(), "time".to_string()]);
    header.extend(
        schema
            .metrics
            .iter()
            .map(|m| format!("objective_{}", m.key)),
    );
    header.extend(SYSTEM.iter().map(|s| s.to_string()));
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let date = run_date();
    let mut rows = vec![header];
    for (r, spec, params) in &per_run {
        let name = parametrized(&r.name, params);
        let by_key: BTreeMap<&str, &str> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        for seed in seeds_in(&r.dir)? {
            let t = trace_table(&r.dir, seed)?;
            let (Some(it), Some(el)) = (t.col("iter"), t.col("elapsed_s")) else {
                continue;
            };
            let cols: Vec<Option<usize>> = schema.metrics.iter().map(|m| t.col(m.column)).collect();
            for row in &t.rows {
                let (Some(Some(iter)), Some(Some(time))) = (row.get(it), row.get(el)) else {
                    continue;
                };
                // A stopping point is a row where the objective was evaluated.
                let evaluated = cols
                    .first()
                    .copied()
                    .flatten()
                    .is_some_and(|c| row.get(c).copied().flatten().is_some());
                if !evaluated {
                    continue;
                }
                let mut out = vec![
                    schema.objective.clone(),
                    schema.objective.clone(),
                    name.clone(),
                    r.description.clone(),
                    dataset_name.clone(),
                    seed.to_string(),
                    seed.to_string(),
                    "Iteration".into(),
                    "objective.py".into(),
                    format!("solvers/{}.py", spec.solver),
                    schema.file_dataset.clone(),
                ];
                out.extend(solver_keys.keys().map(|k| {
                    by_key
                        .get(k.as_str())
                        .map_or(String::new(), |v| (*v).into())
                }));
                out.extend(schema.dataset_params.iter().map(|(_, v)| v.clone()));
                out.push(format!("{}", *iter as u64));
                out.push(float(Some(*time)));
                for (m, c) in schema.metrics.iter().zip(&cols) {
                    out.push(float(
                        c.and_then(|c| row.get(c).copied().flatten()).map(m.map),
                    ));
                }
                out.extend([
                    std::env::consts::OS.to_string(),
                    String::new(),
                    std::env::consts::ARCH.to_string(),
                    cpus.to_string(),
                    "none (Rust)".into(),
                    date.clone(),
                ]);
                rows.push(out);
            }
        }
    }
    Ok(rows)
}

/// The current UTC time as benchopt's `run_date` (ISO 8601, seconds).
fn run_date() -> String {
    let s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (s / 86_400, s % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Write [`table`] as CSV to `dir/benchopt.csv`, atomically; returns the path.
///
/// # Errors
/// Those of [`table`], and I/O.
pub fn write(dir: &Path, schema: &Schema, runs: &[BenchoptRun]) -> Result<PathBuf, CliError> {
    let rows = table(schema, runs)?;
    let mut text = String::new();
    for r in &rows {
        let line: Vec<String> = r.iter().map(|s| field(s)).collect();
        text += &line.join(",");
        text.push('\n');
    }
    let path = dir.join(FILE);
    write_atomic(&path, &text)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_benchopts_sorted_bracket_form() {
        let p = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert_eq!(
            parametrized("SOBA", &[p("step_size", "0.1"), p("batch_size", "64")]),
            "SOBA[batch_size=64,step_size=0.1]"
        );
        assert_eq!(parametrized("simulated", &[]), "simulated");
    }

    #[test]
    fn nested_parameters_are_dotted_and_the_sampler_seed_left_out() {
        let v = serde_json::json!({
            "rho": 0.1,
            "batch": {"batch_f": 64, "batch_g": 64, "seed": 3},
            "prob": null,
            "memory_init": "Zero"
        });
        let got = solver_params(&v);
        let keys: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "batch.batch_f",
                "batch.batch_g",
                "memory_init",
                "prob",
                "rho"
            ]
        );
        assert_eq!(got[3].1, "None");
        assert_eq!(got[4].1, "0.1");
    }

    #[test]
    fn fields_with_commas_or_quotes_are_quoted() {
        assert_eq!(field("a"), "a");
        assert_eq!(field("S[a=1,b=2]"), "\"S[a=1,b=2]\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn run_date_is_iso() {
        let d = run_date();
        assert_eq!(d.len(), 19, "{d}");
        assert!(d.starts_with("20"), "{d}");
        assert_eq!(&d[10..11], "T");
    }
}

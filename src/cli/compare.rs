//! Plots of a run folder (`plot_<metric>.svg`) and the comparison of the runs of
//! `bilevel run --solver a,b` in their parent folder.

use super::CliError;
use super::folder::{self, Folder, Manifest, Take, seeds_in};
use super::plot::{Series, band, draw};
use super::summary::{
    SUMMARY_EXTRA, SUMMARY_TRACE, Stats, final_stats, plotted, spec_of, traces_of,
};
use super::text::fmt;
use std::path::{Path, PathBuf};

/// Columns drawn on a linear axis: losses, accuracies and cleaning scores.
fn linear_axis(col: &str) -> bool {
    matches!(
        col,
        "f" | "g" | "val_loss" | "test_acc" | "precision" | "recall" | "f1"
    )
}

/// Redraw the plots of the run in `f` from its traces: one SVG per metric present, median over
/// seeds with a 20–80 % band, against iterations.
///
/// # Errors
/// I/O, or no traces in the folder.
pub fn plot_dir(f: &Folder) -> Result<Vec<PathBuf>, CliError> {
    let dir = f.dir();
    if seeds_in(dir)?.is_empty() {
        return Err(CliError::new(format!(
            "no traces (seed*.csv) in {}",
            dir.display()
        )));
    }
    let name = spec_of(dir)
        .map(|s| format!("{} on {}", s.solver, s.problem))
        .unwrap_or_else(|| dir.display().to_string());
    let mut written = Vec::new();
    for c in plotted() {
        let traces = traces_of(dir, c)?;
        if traces.iter().all(Vec::is_empty) {
            continue;
        }
        let log = !linear_axis(c) && traces.iter().flatten().all(|p| p.1 > 0.0);
        let s: Series = band(&name, &traces);
        let path = f.file(&folder::plot(c))?;
        draw(&path, &format!("{c}: {name}"), "iteration", c, &[s], log)?;
        written.push(path);
    }
    Ok(written)
}

/// The runs a comparison in `parent` compares, by solver name: those its manifest lists (with
/// traces of the comparison's problem), or, for a folder written before manifests, every
/// subfolder with a `run.json` and a trace.
fn runs_of(parent: &Path) -> Result<Vec<(String, PathBuf)>, CliError> {
    let dirs: Vec<PathBuf> = match Manifest::read(parent)? {
        Some(m) if m.solver.is_none() => m
            .runs
            .iter()
            .map(|r| parent.join(r))
            .filter(|d| spec_of(d).is_some_and(|s| s.problem == m.problem))
            .collect(),
        Some(_) => Vec::new(),
        None => {
            let mut d: Vec<PathBuf> = std::fs::read_dir(parent)
                .map_err(|e| CliError::new(format!("reading {}: {e}", parent.display())))?
                .filter_map(|e| Some(e.ok()?.path()))
                .filter(|d| d.join(folder::SPEC).is_file())
                .collect();
            d.sort();
            d
        }
    };
    let mut out = Vec::new();
    for d in dirs {
        if seeds_in(&d)?.is_empty() {
            continue;
        }
        let name = spec_of(&d).map_or_else(
            || {
                d.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            },
            |s| s.solver,
        );
        out.push((name, d));
    }
    Ok(out)
}

/// Compare the runs of the comparison in `f` (as `bilevel run --solver a,b` writes them): one
/// SVG per metric with every solver's median over seeds and 20–80 % band
/// (`plot_<metric>.svg`), and `summary.md` with each metric's final values side by side.
/// Returns the plots written.
///
/// # Errors
/// I/O, or no finished run to compare.
pub fn compare_dir(f: &Folder) -> Result<Vec<PathBuf>, CliError> {
    let parent = f.dir();
    let runs = runs_of(parent)?;
    if runs.is_empty() {
        return Err(CliError::new(format!(
            "no finished runs to compare in {}",
            parent.display()
        )));
    }
    let mut written = Vec::new();
    for c in plotted() {
        let mut series = Vec::new();
        let mut all_positive = true;
        for (name, dir) in &runs {
            let traces = traces_of(dir, c)?;
            if traces.iter().all(Vec::is_empty) {
                continue;
            }
            all_positive &= traces.iter().flatten().all(|p| p.1 > 0.0);
            series.push(band(name, &traces));
        }
        if series.is_empty() {
            continue;
        }
        let path = f.file(&folder::plot(c))?;
        let log = !linear_axis(c) && all_positive;
        draw(&path, c, "iteration", c, &series, log)?;
        written.push(path);
    }
    // Final values: one row per metric, one column per solver.
    let stats: Vec<Vec<(String, Stats)>> = runs
        .iter()
        .map(|(_, d)| final_stats(d))
        .collect::<Result<_, _>>()?;
    let mut md = String::from("| final value (mean ± std) |");
    for (name, _) in &runs {
        md += &format!(" {name} |");
    }
    md += "\n|---|";
    md += &"---|".repeat(runs.len());
    md += "\n";
    for m in SUMMARY_TRACE.iter().chain(&SUMMARY_EXTRA) {
        if !stats.iter().any(|st| st.iter().any(|(k, _)| k == m)) {
            continue;
        }
        md += &format!("| {m} |");
        for st in &stats {
            let cell = st
                .iter()
                .find(|(k, _)| k == m)
                .map_or("–".to_string(), |(_, s)| {
                    format!("{} ± {} (n = {})", fmt(s.mean), fmt(s.std), s.n)
                });
            md += &format!(" {cell} |");
        }
        md += "\n";
    }
    let mut folders = String::new();
    for (name, d) in &runs {
        folders += &format!("- {name}: {}\n", d.display());
    }
    f.write(
        folder::SUMMARY_MD,
        &format!("# Comparison\n\n{md}\nEach solver's traces, summary and plots:\n\n{folders}"),
    )?;
    Ok(written)
}

/// Take `dir` again to redraw what the program wrote there (locked, nothing deleted).
fn reopen(dir: &Path) -> Result<Folder, CliError> {
    let (problem, solver) = match Manifest::read(dir)? {
        Some(m) => (m.problem, m.solver),
        None => match spec_of(dir) {
            Some(s) => (s.problem, Some(s.solver)),
            None => {
                let runs = runs_of(dir)?;
                let problem = runs
                    .first()
                    .and_then(|(_, d)| spec_of(d))
                    .map(|s| s.problem)
                    .unwrap_or_default();
                (problem, None)
            }
        },
    };
    let f = Folder::take(
        dir,
        &problem,
        solver.as_deref(),
        Take {
            resume: true,
            force: false,
        },
    )?;
    Ok(f)
}

/// `bilevel plot DIR`: redraw the plots of the run in `dir`, or, when `dir` holds a comparison
/// (`bilevel run --solver a,b`), those of every run it compares and the comparison.
///
/// # Errors
/// I/O, or no traces in `dir` or in the runs it compares.
pub fn plot_any(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    if !dir.is_dir() {
        return Err(CliError::new(format!("{}: no such folder", dir.display())));
    }
    if !seeds_in(dir)?.is_empty() {
        return plot_dir(&reopen(dir)?);
    }
    let runs = runs_of(dir)?;
    if runs.is_empty() {
        return Err(CliError::new(format!(
            "no traces (seed*.csv) in {} or in the runs it compares",
            dir.display()
        )));
    }
    let mut written = Vec::new();
    for (_, d) in &runs {
        written.extend(plot_dir(&reopen(d)?)?);
    }
    if runs.len() > 1 {
        written.extend(compare_dir(&reopen(dir)?)?);
    }
    Ok(written)
}

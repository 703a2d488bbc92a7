//! What the experiments share: running one method into its folder (reusing a finished run under
//! `--redraw`), the methods as data, and the curves and statistics drawn from the traces.

use super::ReproduceArgs;
use crate::cli::folder::{self, seeds_in};
use crate::cli::plot::{Series, band};
use crate::cli::run::{ObserverFactory, Outcome, run};
use crate::cli::summary::{Stats, trace_table, traces_of};
use crate::cli::{CliError, RunArgs, resolve_run, write_atomic};
use std::path::{Path, PathBuf};

/// One method of a comparison, as data: its label in the tables and plots, the solver, and the
/// parameters it sets (`key`, `value`, as `--set key=value`).
#[derive(Clone, Copy, Debug)]
pub(super) struct Method {
    /// The label in the tables and plots.
    pub label: &'static str,
    /// The solver's registry name.
    pub solver: &'static str,
    /// The folder name, when it is not [`slug`] of the label: a row relabelled after its run was
    /// committed keeps its folder, so that `--redraw` reuses the run.
    pub folder: Option<&'static str>,
    /// The parameters set.
    pub set: &'static [(&'static str, &'static str)],
}

impl Method {
    /// The folder the method runs into: [`Method::folder`], else [`slug`] of the label.
    pub fn dir_name(&self) -> String {
        self.folder.map_or_else(|| slug(self.label), String::from)
    }

    /// The `--set` pairs.
    pub fn sets(&self) -> Vec<String> {
        self.set.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }
}

/// Seeds, iterations and metric spacing of one run.
#[derive(Clone, Copy, Debug)]
pub(super) struct Plan<'a> {
    /// Seeds, as `--seeds` takes them.
    pub seeds: &'a str,
    /// Iteration cap.
    pub iters: u64,
    /// Metric spacing.
    pub metrics_every: Option<u64>,
    /// Wall-time budget per seed (`250s`), on top of the iteration cap.
    pub time_budget: Option<&'a str>,
}

pub(super) fn one(
    args: &ReproduceArgs,
    problem: &str,
    solver: &str,
    sets: &[String],
    plan: Plan<'_>,
    dir: &Path,
) -> Result<bool, CliError> {
    Ok(one_observed(args, problem, solver, sets, plan, dir, None)? != Ran::Stopped)
}

/// How [`one_observed`] went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ran {
    /// The run ran (or continued) to its end.
    Fresh,
    /// `--redraw` reused the finished run in the folder.
    Reused,
    /// Stopped before the end (Ctrl-C).
    Stopped,
}

/// [`one`] with one more observer per seed, which sees the run only when it is not reused.
pub(super) fn one_observed(
    args: &ReproduceArgs,
    problem: &str,
    solver: &str,
    sets: &[String],
    plan: Plan<'_>,
    dir: &Path,
    observer: Option<ObserverFactory>,
) -> Result<Ran, CliError> {
    let Plan {
        seeds,
        iters,
        metrics_every,
        time_budget,
    } = plan;
    let ra = RunArgs {
        problem: Some(problem.into()),
        solver: Some(solver.into()),
        set: sets.to_vec(),
        seeds: Some(seeds.into()),
        iters: Some(iters),
        metrics_every,
        time_budget: time_budget.map(String::from),
        // Under a time budget, checkpoint at every metric row: an interrupted run then loses
        // little, and the committed runs, made when the hyper-cleaning metrics came only with
        // checkpoints, keep their settings (so --redraw reuses them).
        checkpoint_every: time_budget.and(metrics_every),
        common: crate::cli::Common {
            out: Some(dir.to_path_buf()),
            ..args.common.clone()
        },
        // The experiments state every parameter they depend on; problem-aware defaults would
        // change the committed results of those that rely on a solver's fixed defaults.
        library_defaults: true,
        ..RunArgs::default()
    };
    let (r, mut exec) = resolve_run(&ra)?;
    let (spec, dir) = (&r.spec, &r.dir);
    if args.redraw {
        match reusable(dir, spec)? {
            Reuse::All => return Ok(Ran::Reused),
            Reuse::Some => {
                // Take the folder over with the new seed list; `resume` keeps the finished
                // seeds, continues interrupted ones and runs the missing ones.
                write_atomic(
                    &dir.join(folder::SPEC),
                    &serde_json::to_string_pretty(spec).expect("spec serializes"),
                )?;
                exec.resume = true;
            }
            Reuse::None => {}
        }
    }
    exec.no_plots = true;
    exec.observer = observer;
    Ok(match run(&r, &exec)? {
        Outcome::Complete { .. } => Ran::Fresh,
        Outcome::Interrupted => Ran::Stopped,
    })
}

/// A folder name for a method label: lower case, runs of other characters as one `-`
/// (`PGD-QP (Thm 4.2)` → `pgd-qp-thm-4-2`, `V-PBGD` → `v-pbgd`).
pub(super) fn slug(label: &str) -> String {
    let mut s = String::new();
    for c in label.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.ends_with('-') && !s.is_empty() {
            s.push('-');
        }
    }
    s.trim_end_matches('-').to_string()
}

/// What `--redraw` can keep of the run in a folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Reuse {
    /// The folder holds a finished run of exactly this spec.
    All,
    /// Same settings, but only some of the seeds asked for (and none others) are finished or
    /// have a checkpoint of an interrupted run.
    Some,
    /// Nothing: other settings, other seeds, or no run.
    None,
}

/// What of `spec` the folder `dir` already holds: its `run.json` must have the same settings
/// (the data folder aside) and its seeds must be among `spec`'s; a seed is finished when its JSON
/// Lines trace ends with its status line, and started when it left a checkpoint (`--resume`
/// continues it).
pub(super) fn reusable(dir: &Path, spec: &crate::cli::run::RunSpec) -> Result<Reuse, CliError> {
    let Some(mut saved) = crate::cli::summary::spec_of(dir) else {
        return Ok(Reuse::None);
    };
    saved.data_dir.clone_from(&spec.data_dir);
    let saved_seeds = std::mem::replace(&mut saved.seeds, spec.seeds.clone());
    if &saved != spec || !saved_seeds.iter().all(|s| spec.seeds.contains(s)) {
        return Ok(Reuse::None);
    }
    let done = |s: &u64| {
        std::fs::read_to_string(dir.join(folder::trace_jsonl(*s))).is_ok_and(|text| {
            text.lines()
                .last()
                .is_some_and(|l| l.starts_with("{\"status\""))
        })
    };
    Ok(if spec.seeds.iter().all(done) {
        Reuse::All
    } else if spec
        .seeds
        .iter()
        .any(|s| done(s) || dir.join(folder::state(*s)).is_file())
    {
        Reuse::Some
    } else {
        Reuse::None
    })
}

pub(super) fn stat(stats: &[(String, Stats)], k: &str) -> Option<Stats> {
    stats.iter().find(|(n, _)| n == k).map(|(_, s)| *s)
}

/// Median curves over seeds of column `col` of the traces in each folder.
pub(super) fn curves(dirs: &[(String, PathBuf)], col: &str) -> Result<Vec<Series>, CliError> {
    let mut out = Vec::new();
    for (name, dir) in dirs {
        let traces = traces_of(dir, col)?;
        if !traces.is_empty() {
            out.push(band(name, &traces));
        }
    }
    Ok(out)
}

/// Median curves over seeds of hyper-cleaning column `col` against wall time: the band over
/// seeds at each recorded iteration, placed at the median over seeds of the time it was reached.
pub(super) fn curves_vs_time(
    dirs: &[(String, PathBuf)],
    col: &str,
) -> Result<Vec<Series>, CliError> {
    let mut out = Vec::new();
    for (name, dir) in dirs {
        let mut traces = Vec::new();
        let mut times = Vec::new();
        for s in seeds_in(dir)? {
            let t = trace_table(dir, s)?;
            traces.push(t.pairs("iter", col));
            times.push(t.pairs("iter", "elapsed_s"));
        }
        if traces.is_empty() {
            continue;
        }
        let mut s = band(name, &traces);
        let when = band(name, &times);
        // Keep the iterations every seed reached, placed at their median time.
        let mut keep = Series {
            name: s.name.clone(),
            ..Series::default()
        };
        for i in 0..s.x.len() {
            let everyone = traces.iter().all(|t| t.iter().any(|(it, _)| *it == s.x[i]));
            if !everyone {
                continue;
            }
            if let Some(j) = when.x.iter().position(|&it| it == s.x[i]) {
                keep.x.push(when.y[j]);
                keep.y.push(s.y[i]);
                keep.lo.push(s.lo[i]);
                keep.hi.push(s.hi[i]);
            }
        }
        s = keep;
        out.push(s);
    }
    Ok(out)
}

pub(super) fn list_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Least-squares slope of `log y` against `log x`.
pub(super) fn loglog_slope(pts: &[(f64, f64)]) -> f64 {
    let n = pts.len() as f64;
    let (lx, ly): (Vec<f64>, Vec<f64>) = pts.iter().map(|(x, y)| (x.ln(), y.ln())).unzip();
    let (mx, my) = (lx.iter().sum::<f64>() / n, ly.iter().sum::<f64>() / n);
    let sxy: f64 = lx.iter().zip(&ly).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = lx.iter().map(|a| (a - mx).powi(2)).sum();
    sxy / sxx
}

/// The mean of the last tenth of a trace's values (at least one point).
pub(super) fn tail_mean(pts: &[(f64, f64)]) -> f64 {
    let k = (pts.len() / 10).max(1).min(pts.len());
    if k == 0 {
        return f64::NAN;
    }
    pts[pts.len() - k..].iter().map(|p| p.1).sum::<f64>() / k as f64
}

/// Per seed, the last finite value and the minimum of column `col`, and the last iteration
/// where it is finite; averaged over seeds.
pub(super) fn trace_summary(dir: &Path, col: &str) -> Result<(f64, f64, f64, f64), CliError> {
    let mut last = Vec::new();
    let mut mins = Vec::new();
    let mut iters = Vec::new();
    for s in seeds_in(dir)? {
        let t = trace_table(dir, s)?;
        let v = t.pairs("iter", col);
        if let Some(p) = v.last() {
            last.push(p.1);
            iters.push(p.0);
        }
        mins.push(v.iter().map(|p| p.1).fold(f64::INFINITY, f64::min));
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let m = mean(&last);
    let sd = if last.len() > 1 {
        (last.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (last.len() - 1) as f64).sqrt()
    } else {
        0.0
    };
    Ok((m, sd, mean(&mins), mean(&iters)))
}

/// `s` cut before its first point where `keep` fails; whether it was cut.
pub(super) fn cut(mut s: Series, keep: impl Fn(f64, f64) -> bool) -> (Series, bool) {
    let n =
        s.x.iter()
            .zip(&s.y)
            .take_while(|(x, y)| keep(**x, **y))
            .count();
    let was = n < s.x.len();
    s.x.truncate(n);
    s.y.truncate(n);
    (s, was)
}

/// The seeds of an experiment: `--seeds` if given, else the experiment's own.
pub(super) fn seeds_of<'a>(args: &'a ReproduceArgs, own: &'a str) -> &'a str {
    args.seeds.as_deref().unwrap_or(own)
}

/// Panics unless `m` names a solver of the registry whose parameters take every pair of
/// `m.set` and build (the experiments' tables are data: this is their type check).
#[cfg(test)]
pub(super) fn check_method(m: &Method) {
    let mut p = crate::solvers::registry::solver(m.solver)
        .unwrap_or_else(|e| panic!("{}: {e}", m.label))
        .defaults();
    for (k, v) in m.set {
        p.set(k, v)
            .unwrap_or_else(|e| panic!("{}: {k}={v}: {e}", m.label));
    }
    p.build().unwrap_or_else(|e| panic!("{}: {e}", m.label));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redraw_keeps_finished_seeds_and_continues_checkpointed_ones() {
        let ra = RunArgs {
            problem: Some("quadratic".into()),
            solver: Some("aid-single-loop".into()),
            seeds: Some("0..2".into()),
            ..RunArgs::default()
        };
        let (run, _) = resolve_run(&ra).unwrap();
        let spec = run.spec;
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let put = |name: &str, text: &str| std::fs::write(d.join(name), text).unwrap();
        assert_eq!(reusable(d, &spec).unwrap(), Reuse::None, "no run.json");
        put("run.json", &serde_json::to_string(&spec).unwrap());
        assert_eq!(reusable(d, &spec).unwrap(), Reuse::None, "nothing run yet");
        put("seed1.state.json", "{}");
        assert_eq!(reusable(d, &spec).unwrap(), Reuse::Some, "a checkpoint");
        let finished = "{\"iter\":0}\n{\"status\":\"MaxIter\"}\n";
        put("seed0.jsonl", finished);
        assert_eq!(
            reusable(d, &spec).unwrap(),
            Reuse::Some,
            "one seed finished"
        );
        put("seed1.jsonl", finished);
        assert_eq!(reusable(d, &spec).unwrap(), Reuse::All);
        put("seed1.jsonl", "{\"iter\":0}\n");
        assert_eq!(
            reusable(d, &spec).unwrap(),
            Reuse::Some,
            "a trace cut short"
        );
        let mut other = spec.clone();
        other.iters += 1;
        assert_eq!(reusable(d, &other).unwrap(), Reuse::None, "other settings");
    }

    /// A hyper-cleaning run recorded before the problems took `dataset` ran on MNIST, the
    /// parameter's default: `--redraw` still reuses it, and not for a Fashion-MNIST run.
    #[test]
    fn a_run_recorded_before_a_problem_parameter_existed_ran_at_its_default() {
        let spec = |dataset: &str| {
            let ra = RunArgs {
                problem: Some("dhc-mlp".into()),
                solver: Some("bome".into()),
                set: vec![format!("dataset={dataset}")],
                ..RunArgs::default()
            };
            resolve_run(&ra).unwrap().0.spec
        };
        let mnist = spec("mnist");
        assert_eq!(mnist.problem_params["dataset"], "mnist");
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let mut old = serde_json::to_value(&mnist).unwrap();
        old["problem_params"]
            .as_object_mut()
            .unwrap()
            .remove("dataset")
            .expect("the key was recorded");
        std::fs::write(d.join("run.json"), old.to_string()).unwrap();
        std::fs::write(
            d.join("seed0.jsonl"),
            "{\"iter\":0}\n{\"status\":\"MaxIter\"}\n",
        )
        .unwrap();
        assert_eq!(reusable(d, &mnist).unwrap(), Reuse::All);
        assert_eq!(reusable(d, &spec("fashion-mnist")).unwrap(), Reuse::None);
    }
}

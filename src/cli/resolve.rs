//! From the arguments to the runs: one spec, typed parameters and folder per solver, with the
//! problem-aware step sizes applied.

use super::args::{RunArgs, RunFile, file_seeds, parse_duration, parse_seeds, split_set};
use super::{CliError, registry, run, solvers};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The most worker threads a run starts.
const MAX_THREADS: usize = 1024;

/// The default metric spacing of a run that only a time budget stops.
const UNCAPPED_METRICS_EVERY: u64 = 100;

/// Resolve `run` arguments (with the run file) into a spec, its folder and execution options.
///
/// # Errors
/// Unknown names (with suggestions), bad values (naming the key and its allowed range), or more
/// than one solver (see [`resolve_runs`]).
pub fn resolve_run(args: &RunArgs) -> Result<(run::Run, run::Exec), CliError> {
    let (mut runs, exec) = resolve_runs(args)?;
    if runs.len() != 1 {
        return Err(CliError::new(format!(
            "--solver: expected one solver here, got {}",
            runs.len()
        )));
    }
    Ok((runs.remove(0), exec))
}

/// Resolve `run` arguments (with the run file) into one spec and folder per solver, and the
/// execution options. `--solver a,b` names several solvers: each runs on the same problem and
/// seeds into `<out>/<solver>` (`<out>` defaulting to `runs/<problem>`); one solver runs into
/// `<out>` itself (default `runs/<problem>-<solver>`). A `--set` key goes to the problem when
/// it is a problem parameter, else to every solver that has it, and must belong to one of them.
///
/// # Errors
/// Unknown names (with suggestions), bad values (naming the key and its allowed range).
pub fn resolve_runs(args: &RunArgs) -> Result<(Vec<run::Run>, run::Exec), CliError> {
    let file: RunFile = match &args.config {
        Some(p) => toml::from_str(
            &std::fs::read_to_string(p)
                .map_err(|e| CliError::new(format!("--config {}: {e}", p.display())))?,
        )
        .map_err(|e| CliError::new(format!("--config {}: {e}", p.display())))?,
        None => RunFile::default(),
    };
    let problem = args
        .problem
        .clone()
        .or(file.problem)
        .ok_or_else(|| CliError::new("--problem is required (see `bilevel list`)"))?;
    let solver_arg = args
        .solver
        .clone()
        .or(file.solver)
        .ok_or_else(|| CliError::new("--solver is required (see `bilevel list`)"))?;
    let solvers: Vec<String> = solver_arg
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    if solvers.iter().any(String::is_empty) {
        return Err(CliError::new(format!(
            "--solver {solver_arg}: expected a name or a comma-separated list of names"
        )));
    }
    if let Some(i) = (1..solvers.len()).find(|&i| solvers[..i].contains(&solvers[i])) {
        return Err(CliError::new(format!(
            "--solver {solver_arg}: {} appears twice",
            solvers[i]
        )));
    }
    let pspec = registry::problem_spec(&problem)?;
    let mut params = Vec::new();
    for solver in &solvers {
        let d = solvers::registry::solver(solver)
            .map_err(registry::explain)?
            .defaults();
        let keys = d.keys();
        params.push((d, keys, Vec::<String>::new()));
    }
    let mut sets: Vec<(String, String)> = file
        .set
        .iter()
        .map(|(k, v)| {
            let text = match v {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), text)
        })
        .collect();
    for s in &args.set {
        sets.push(split_set(s)?);
    }
    let mut problem_sets = BTreeMap::new();
    for (k, v) in sets {
        if pspec.params.iter().any(|p| p.key == k) {
            problem_sets.insert(k, v);
            continue;
        }
        let mut taken = false;
        for (solver_params, keys, explicit) in &mut params {
            // A key with dotted keys below it (`solve`) takes its whole value as JSON.
            let parent = format!("{k}.");
            if keys.contains(&k) || keys.iter().any(|key| key.starts_with(&parent)) {
                solver_params.set(&k, &v).map_err(registry::explain)?;
                explicit.push(k.clone());
                taken = true;
            }
        }
        if !taken {
            let all = pspec.params.iter().map(|p| p.key).chain(
                params
                    .iter()
                    .flat_map(|(_, keys, _)| keys.iter().map(String::as_str)),
            );
            return Err(registry::unknown_in(
                "--set key",
                &k,
                &format!(" for solver {solver_arg} on problem {problem}"),
                all,
            ));
        }
    }
    let problem_params = registry::problem_params(pspec, &problem_sets)?;
    let file_seeds = file.seeds.as_ref().map(file_seeds).transpose()?;
    let seeds = parse_seeds(
        args.seeds
            .as_deref()
            .or(file_seeds.as_deref())
            .unwrap_or("0"),
    )?;
    let time_budget_s = args
        .time_budget
        .as_deref()
        .or(file.time_budget.as_deref())
        .map(parse_duration)
        .transpose()?;
    // A time budget without --iters stops on time alone.
    let iters = match (args.iters.or(file.iters), time_budget_s) {
        (Some(k), _) => k,
        (None, Some(_)) => run::UNCAPPED,
        (None, None) => 1000,
    };
    if iters == 0 {
        return Err(CliError::new("--iters must be >= 1"));
    }
    let metrics_every =
        args.metrics_every
            .or(file.metrics_every)
            .unwrap_or(if iters == run::UNCAPPED {
                UNCAPPED_METRICS_EVERY
            } else {
                (iters / 100).max(1)
            });
    if metrics_every == 0 {
        return Err(CliError::new("--metrics-every must be >= 1"));
    }
    // Without a cap a twentieth of it is no spacing: checkpoint (and take the hyper-cleaning
    // metrics, which come with checkpoints) every tenth metric row. Each checkpoint rewrites the
    // seed's records, so much closer spacing would make the run quadratic in its length.
    let checkpoint_every =
        args.checkpoint_every
            .or(file.checkpoint_every)
            .unwrap_or(if iters == run::UNCAPPED {
                metrics_every.saturating_mul(10)
            } else {
                (iters / 20).max(1)
            });
    if checkpoint_every == 0 {
        return Err(CliError::new("--checkpoint-every must be >= 1"));
    }
    // Step sizes from the problem's smoothness constants, where the user set none.
    let constants = if args.library_defaults || file.library_defaults == Some(true) {
        None
    } else {
        registry::problem_smoothness(&problem, &problem_params, &seeds)?
    };
    let out = args.common.out.clone().or(file.out);
    let data_dir = args.common.data_dir.clone().or(file.data_dir);
    let several = solvers.len() > 1;
    let mut runs = Vec::new();
    for (solver, (mut solver_params, _, explicit)) in solvers.into_iter().zip(params) {
        let derived = match &constants {
            Some(c) => {
                let cap = (iters != run::UNCAPPED).then_some(iters);
                solver_params.derive(c, cap, &explicit)
            }
            None => Vec::new(),
        };
        // Validate the solver's ranges now, naming the key.
        solver_params.build().map_err(registry::explain)?;
        let dir = match (&out, several) {
            (Some(o), false) => o.clone(),
            (Some(o), true) => o.join(&solver),
            (None, false) => PathBuf::from(format!("runs/{problem}-{solver}")),
            (None, true) => PathBuf::from(format!("runs/{problem}/{solver}")),
        };
        runs.push(run::Run {
            spec: run::RunSpec {
                problem: problem.clone(),
                solver,
                problem_params: problem_params.clone(),
                solver_params: solver_params.to_json(),
                derived,
                seeds: seeds.clone(),
                iters,
                time_budget_s,
                metrics_every,
                checkpoint_every,
                data_dir: data_dir.clone(),
            },
            params: solver_params,
            dir,
        });
    }
    let threads = args.common.threads.or(file.threads);
    if let Some(t) = threads.filter(|t| !(1..=MAX_THREADS).contains(t)) {
        return Err(CliError::new(format!(
            "--threads {t}: expected an integer in 1..={MAX_THREADS}"
        )));
    }
    let exec = run::Exec {
        threads: threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        progress: !args.common.quiet,
        resume: args.resume,
        force: args.force,
        interrupt_after: args.interrupt_after,
        no_plots: false,
        observer: None,
    };
    Ok((runs, exec))
}

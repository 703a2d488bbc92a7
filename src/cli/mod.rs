//! The `bilevel` program: list problems and solvers, run them over seeds, plot traces, time
//! oracles and reproduce the papers' experiments.
//!
//! Every function the program calls is public here, so tests can drive it without a process.

pub mod args;
pub mod benchopt;
pub mod compare;
pub mod folder;
pub mod list;
pub mod oracles;
pub mod plot;
pub mod registry;
pub mod reproduce;
pub mod resolve;
pub mod run;
mod seed;
pub mod summary;
pub mod text;

pub use args::{Cli, Command, Common, RunArgs, parse_duration, parse_seeds};
pub use list::list_text;
pub use resolve::{resolve_run, resolve_runs};

use crate::solvers;
use clap::Parser;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The exit code of an error: bad arguments, unknown names, missing data, a folder refused, I/O.
pub const EXIT_USAGE: i32 = 2;
/// The exit code of `bilevel run` when a seed diverged: its files and summary are written, and
/// `summary.md` says which seeds diverged and where.
pub const EXIT_DIVERGED: i32 = 3;
/// The exit code of a run stopped by Ctrl-C (its checkpoints continue it with `--resume`).
pub const EXIT_INTERRUPTED: i32 = 130;

/// An error a person can act on: the message says what was wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError(pub String);

impl CliError {
    /// An error with `msg`.
    pub fn new(msg: impl Into<String>) -> Self {
        CliError(msg.into())
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CliError {}

/// Write `text` to `path` atomically ([`solvers::atomic::write`]).
///
/// # Errors
/// I/O, naming the path.
pub fn write_atomic(path: &Path, text: &str) -> Result<(), CliError> {
    solvers::atomic::write(path, text)
        .map_err(|e| CliError::new(format!("writing {}: {e}", path.display())))
}

/// Run the program on `args` (without the program name), printing to stdout. Returns the exit
/// code ([`EXIT_DIVERGED`], [`EXIT_INTERRUPTED`]; errors are [`EXIT_USAGE`]).
///
/// # Errors
/// Any [`CliError`].
pub fn run_cli(cli: Cli) -> Result<i32, CliError> {
    match cli.command {
        Command::List => {
            print!("{}", list_text());
            Ok(0)
        }
        Command::Run(args) => {
            let (runs, exec) = resolve_runs(&args)?;
            // One solver reports in its folder, several in the folder above theirs.
            let out = match &runs[..] {
                [one] => one.dir.clone(),
                more => more[0]
                    .dir
                    .parent()
                    .map_or_else(PathBuf::new, Path::to_path_buf),
            };
            match run::run_many(&runs, &exec)? {
                run::Outcome::Complete { diverged } => {
                    println!(
                        "{}",
                        std::fs::read_to_string(out.join(folder::SUMMARY_MD)).unwrap_or_default()
                    );
                    println!("wrote traces, summary and plots to {}", out.display());
                    if diverged > 0 {
                        eprintln!(
                            "{diverged} seed(s) diverged (see {}); exit code {EXIT_DIVERGED}",
                            out.join(folder::SUMMARY_MD).display()
                        );
                        return Ok(EXIT_DIVERGED);
                    }
                    Ok(0)
                }
                run::Outcome::Interrupted => {
                    eprintln!(
                        "stopped; checkpoints are in {}. Continue with the same command and --resume.",
                        out.display()
                    );
                    Ok(EXIT_INTERRUPTED)
                }
            }
        }
        Command::Plot { dir } => {
            for p in compare::plot_any(&dir)? {
                println!("{}", p.display());
            }
            Ok(0)
        }
        Command::Oracles {
            problem,
            set,
            data_dir,
            reps,
            batch,
        } => {
            let sets = set
                .iter()
                .map(|s| args::split_set(s))
                .collect::<Result<BTreeMap<_, _>, _>>()?;
            print!(
                "{}",
                oracles::oracle_table(&problem, &sets, data_dir.as_deref(), reps, batch)?
            );
            Ok(0)
        }
        Command::Reproduce(args) => reproduce::reproduce(&args),
    }
}

/// The program's entry point: parse arguments, install the Ctrl-C handler, run.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let _ = ctrlc::set_handler(|| {
        if run::STOP.requested() {
            std::process::exit(EXIT_INTERRUPTED);
        }
        run::STOP.request();
        eprintln!("\nstopping after the current iteration (Ctrl-C again to quit at once)...");
    });
    match run_cli(cli) {
        Ok(code) => std::process::ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(EXIT_USAGE as u8)
        }
    }
}

//! What each oracle and each single-loop step costs on the benchmark workloads, through the
//! library's own path: the problems of `bilevel::solvers::problems`, the counting `Oracle`, and
//! the real `SingleLoopAid::step`.
//!
//! ```text
//! cargo run --release --example cost_table -- [--threads N] [--json] [--quick]
//!     [--workloads A,B50,B256,C20,C2000] [--ops g,grad_g,...] [--data-dir DIR] [--target-s S]
//! ```
//!
//! Ops (the peer harness's names, `../shared/peers/README.md`): `g` (value), `grad_g` (both
//! gradient blocks), `hvp` (one pass giving the gradient, `∇²yy g·v` and `∇²xy g·v`), `hvp_yy`
//! (`∇²yy g·v` alone), `mixed` (`∇²xy g·v` alone), `grad_f`, `hvp_f` (C only), `step` (the
//! harness's single-loop step: every product at the current point, state fed back) and
//! `aid_step` (Algorithm 1 of the single-loop AID paper: two gradients and two products, the
//! mixed product at the updated `v̂`). Timing as the harness's: three warm-up calls, then at
//! least 20 calls or `--target-s` seconds (0.5), and the median; `--json` prints one JSON line
//! per measurement (`{"fw": "bilevel", "threads": N, "workload": "A", "op": "grad_g",
//! "median_ms": …}`) for `../shared/peers/side_by_side.sh`, and the table on standard error.
//! `--ops` times only the ops named (to profile one of them, say); the others print `–`.

#[path = "../benches/workloads/mod.rs"]
mod workloads;

use bilevel::linalg::Par;
use std::path::PathBuf;
use std::time::Duration;
use workloads::{Bench, Stats, Workload};

/// The ops of one workload among `only`, in the order of [`workloads::OPS`].
fn ops(w: &Workload, par: Par, target: Duration, only: &[String]) -> Vec<(&'static str, Stats)> {
    let mut b = Bench::new(w, par);
    let ops: Vec<&'static str> = workloads::OPS
        .into_iter()
        .filter(|op| b.has(op) && only.iter().any(|o| o == op))
        .collect();
    ops.into_iter()
        .map(|op| (op, workloads::measure(target, 3, 20, 2000, || b.call(op))))
        .collect()
}

fn fmt(ms: f64) -> String {
    if ms < 1.0 {
        format!("{:.1} µs", ms * 1e3)
    } else {
        format!("{ms:.2} ms")
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().position(|a| a == name);
    let value = |name: &str| flag(name).and_then(|i| args.get(i + 1)).cloned();
    for a in &args {
        if a.starts_with("--")
            && ![
                "--threads",
                "--json",
                "--quick",
                "--workloads",
                "--ops",
                "--data-dir",
                "--target-s",
            ]
            .contains(&a.as_str())
        {
            eprintln!("cost_table: unknown flag {a}");
            std::process::exit(2);
        }
    }
    let threads: usize = value("--threads").map_or(2, |s| {
        s.parse().unwrap_or_else(|_| {
            eprintln!("cost_table: --threads takes a number, found {s}");
            std::process::exit(2)
        })
    });
    let json = flag("--json").is_some();
    let target = Duration::from_secs_f64(match value("--target-s") {
        Some(s) => s.parse().unwrap_or_else(|_| {
            eprintln!("cost_table: --target-s takes seconds, found {s}");
            std::process::exit(2)
        }),
        None if flag("--quick").is_some() => 0.1,
        None => 0.5,
    });
    let names = value("--workloads").unwrap_or_else(|| "A,B50,B256,C20,C2000".into());
    let names: Vec<&str> = names.split(',').collect();
    let only: Vec<String> = match value("--ops") {
        Some(list) => list.split(',').map(str::to_owned).collect(),
        None => workloads::OPS.iter().map(|&o| o.to_owned()).collect(),
    };
    if let Some(bad) = only.iter().find(|o| !workloads::OPS.contains(&o.as_str())) {
        eprintln!(
            "cost_table: unknown op {bad} (ops: {})",
            workloads::OPS.join(", ")
        );
        std::process::exit(2);
    }
    let data_dir = value("--data-dir").map(PathBuf::from);
    let (ws, source) = workloads::build(&names, data_dir.as_deref());
    let (pool, par) = workloads::pool(threads);
    let mut table = String::new();
    table += &format!(
        "Oracle and step cost, f64, {threads} thread(s), median of repeated calls{}\n\n",
        source.map_or(String::new(), |s| format!("; images: {s}"))
    );
    table += "| workload | value | gradient | HVP + gradient + mixed (one pass) | HVP alone | mixed alone | grad f | step (one point) | AID step | HVP / gradient |\n";
    table += "|---|---|---|---|---|---|---|---|---|---|\n";
    for w in &ws {
        let rows = pool.install(|| ops(w, par, target, &only));
        let get = |op: &str| rows.iter().find(|(o, _)| *o == op).map(|(_, s)| s.median);
        for (op, s) in &rows {
            if json {
                println!(
                    "{{\"fw\": \"bilevel\", \"threads\": {threads}, \"dtype\": \"f64\", \"workload\": \"{}\", \"op\": \"{op}\", \"variant\": \"-\", \"median_ms\": {:.6}, \"p10_ms\": {:.6}, \"p90_ms\": {:.6}, \"reps\": {}}}",
                    w.name, s.median, s.p10, s.p90, s.reps
                );
            }
        }
        let cell = |op: &str| get(op).map_or("–".into(), fmt);
        table += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.2} |\n",
            w.label,
            cell("g"),
            cell("grad_g"),
            cell("hvp"),
            cell("hvp_yy"),
            cell("mixed"),
            cell("grad_f"),
            cell("step"),
            cell("aid_step"),
            get("hvp").unwrap_or(f64::NAN) / get("grad_g").unwrap_or(f64::NAN)
        );
    }
    if json {
        eprint!("{table}");
    } else {
        print!("{table}");
    }
}

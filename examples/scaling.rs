//! How an oracle's cost grows with the number of training samples, and what memory it takes.
//!
//! ```text
//! cargo run --release --example scaling -- [--sizes 5000,10000,20000,40000,60000]
//!     [--models linear,mlp256] [--threads N] [--data-dir DIR] [--target-s S]
//! cargo run --release --example scaling -- --memory --sizes 60000 --models mlp256
//! ```
//!
//! The data hyper-cleaning lower level of the benchmark (`Dhc`, λ = 1e-3, no bias) on the first
//! `n` images of MNIST's training split; the validation and test sets are the first 2500 test
//! images (no timed oracle reads them). For each model and size: the median time of the gradient
//! of `g` and of the one-pass gradient + HVP + mixed product, and the least-squares slope of
//! log time against log `n` over the sizes.
//!
//! With `--memory`, for each model and size: the feature matrix's bytes, the process's peak
//! resident memory (`VmHWM` of `/proc/self/status`) after building the problem and after five
//! gradients and five HVP passes, and their difference, the oracles' own working memory. The
//! peak is the process's, so each model and size runs in a process of its own (the example
//! starts itself once per row).

use bilevel::datasets::Split;
use bilevel::datasets::mnist::load_mnist;
use bilevel::linalg::Mat;
use bilevel::solvers::problems::{Activation, Dhc, DhcData, DhcModel};
use bilevel::solvers::{Oracle, Problem};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[path = "../benches/workloads/mod.rs"]
mod workloads;

fn median(target: Duration, f: impl FnMut()) -> f64 {
    workloads::measure(target, 1, 5, 200, f).median
}

/// The header of the memory table.
const MEMORY_HEADER: &str = "| model | n | features | peak after build | peak after oracles | oracles' own |\n|---|---|---|---|---|---|";

/// The memory table, each row from a process of its own (a process's peak resident memory
/// never goes down, so a row measured after another would carry the earlier peak).
fn memory_rows(args: &[String], models: &[String], sizes: &[usize]) {
    let exe = std::env::current_exe().expect("the example knows its own path");
    // The arguments without the lists, which each child gets one entry of.
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--sizes" || a == "--models" {
            it.next();
        } else {
            rest.push(a.clone());
        }
    }
    println!("{MEMORY_HEADER}");
    for m in models {
        for n in sizes {
            let out = std::process::Command::new(&exe)
                .args(&rest)
                .args(["--models", m, "--sizes", &n.to_string()])
                .output()
                .expect("the example starts itself");
            let text = String::from_utf8_lossy(&out.stdout);
            if !out.status.success() {
                eprint!("{}", String::from_utf8_lossy(&out.stderr));
                eprintln!("scaling: the row for {m}, n = {n} failed ({})", out.status);
                std::process::exit(1);
            }
            if let Some(row) = text.lines().last() {
                println!("{row}");
            }
        }
    }
}

/// Peak resident memory of this process in MiB, where the system reports it.
fn peak_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn model(name: &str) -> DhcModel {
    match name {
        "linear" => DhcModel::Linear,
        _ => match name.strip_prefix("mlp").and_then(|h| h.parse().ok()) {
            Some(hidden) => DhcModel::Mlp {
                hidden,
                activation: Activation::Relu,
            },
            None => {
                eprintln!("scaling: unknown model {name} (linear, mlp<h>)");
                std::process::exit(2)
            }
        },
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let memory = args.iter().any(|a| a == "--memory");
    let list = |name: &str, default: &str| -> Vec<String> {
        value(name)
            .unwrap_or_else(|| default.into())
            .split(',')
            .map(str::to_string)
            .collect()
    };
    let sizes: Vec<usize> = list("--sizes", "5000,10000,20000,40000,60000")
        .iter()
        .map(|s| {
            s.parse().unwrap_or_else(|_| {
                eprintln!("scaling: --sizes takes numbers, found {s}");
                std::process::exit(2)
            })
        })
        .collect();
    let models = list("--models", "linear,mlp256");
    let threads: usize = value("--threads").and_then(|s| s.parse().ok()).unwrap_or(2);
    let target = Duration::from_secs_f64(
        value("--target-s")
            .and_then(|s| s.parse().ok())
            .unwrap_or(1.0),
    );
    let dir = value("--data-dir").map(PathBuf::from);
    if memory && models.len() * sizes.len() > 1 {
        memory_rows(&args, &models, &sizes);
        return;
    }
    let train = load_mnist(dir.as_deref(), Split::Train).unwrap_or_else(|e| {
        eprintln!(
            "scaling: the MNIST training split is needed (--data-dir or BILEVEL_DATA_DIR): {e}"
        );
        std::process::exit(2)
    });
    let test = load_mnist(dir.as_deref(), Split::Test).expect("the MNIST test split loads");
    let held: Vec<usize> = (0..2500).collect();
    let held_x = Arc::new(test.feature_columns(&held, false));
    let held_labels: Vec<u32> = held.iter().map(|&i| u32::from(test.label(i))).collect();
    let (pool, par) = workloads::pool(threads);
    if memory {
        println!("{MEMORY_HEADER}");
    } else {
        println!(
            "Oracle cost against training samples, {threads} thread(s), median ms\n\n| model | n | gradient | HVP + gradient + mixed |\n|---|---|---|---|"
        );
    }
    for m in &models {
        let mut points = Vec::new();
        for &n in &sizes {
            let n = n.min(train.len());
            let idx: Vec<usize> = (0..n).collect();
            let data = DhcData {
                train: Arc::new(train.feature_columns(&idx, false)),
                train_labels: idx.iter().map(|&i| u32::from(train.label(i))).collect(),
                val: Arc::clone(&held_x),
                val_labels: held_labels.clone(),
                test: Arc::clone(&held_x),
                test_labels: held_labels.clone(),
                classes: 10,
            };
            let feature_mib = (data.train.nrows() * data.train.ncols() * 8) as f64 / 1048576.0;
            let p = Dhc::new(Arc::new(data), model(m), 1e-3, m.clone(), 0);
            let (x, y) = (p.x0(), p.y0());
            let v = Mat::from_fn(p.dim_y(), 1, |i, _| ((i % 7) as f64 - 3.0) * 0.01);
            let built = peak_mib();
            let mut o = Oracle::with_par(&p, par);
            if memory {
                pool.install(|| {
                    for _ in 0..5 {
                        drop(o.grad_g(&x, &y));
                        drop(o.grad_hvp_g(&x, &y, &v));
                    }
                });
                let after = peak_mib();
                let f = |v: Option<f64>| v.map_or("n/a".into(), |v| format!("{v:.0} MiB"));
                println!(
                    "| {m} | {n} | {feature_mib:.0} MiB | {} | {} | {} |",
                    f(built),
                    f(after),
                    f(after.zip(built).map(|(a, b)| a - b))
                );
                continue;
            }
            let (tg, th) = pool.install(|| {
                (
                    median(target, || drop(o.grad_g(&x, &y))),
                    median(target, || drop(o.grad_hvp_g(&x, &y, &v))),
                )
            });
            println!("| {m} | {n} | {tg:.3} | {th:.3} |");
            points.push((n as f64, tg, th));
        }
        if points.len() >= 2 {
            let slope = |pick: fn(&(f64, f64, f64)) -> f64| {
                let k = points.len() as f64;
                let xs: Vec<f64> = points.iter().map(|p| p.0.ln()).collect();
                let ys: Vec<f64> = points.iter().map(|p| pick(p).ln()).collect();
                let (mx, my) = (xs.iter().sum::<f64>() / k, ys.iter().sum::<f64>() / k);
                let sxy: f64 = xs.iter().zip(&ys).map(|(a, b)| (a - mx) * (b - my)).sum();
                let sxx: f64 = xs.iter().map(|a| (a - mx) * (a - mx)).sum();
                sxy / sxx
            };
            println!(
                "| {m} | log-log slope | {:.3} | {:.3} |",
                slope(|p| p.1),
                slope(|p| p.2)
            );
        }
    }
}

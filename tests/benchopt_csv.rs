//! `benchopt.csv` read back by a CSV parser that is not ours (the `csv` crate): every row,
//! column and value of real runs comes back as written, floats bit for bit.

use assert_cmd::Command;
use bilevel::cli::benchopt::{self, BenchoptRun, Metric, Schema};
use bilevel::cli::summary::trace_table;
use std::path::Path;

fn run(out: &Path, solver: &str, sets: &[&str]) {
    let mut c = Command::cargo_bin("bilevel").unwrap();
    c.args(["run", "--problem", "quadratic", "--solver", solver])
        .args(["--seeds", "0..2", "--iters", "30", "--metrics-every", "10"])
        .args(["--quiet", "--out"])
        .arg(out);
    for s in sets {
        c.args(["--set", s]);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn square(v: f64) -> f64 {
    v * v
}

#[test]
fn benchopt_csv_round_trips_through_a_csv_reader() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("soba"), tmp.path().join("aid"));
    run(&a, "soba", &["batch=none"]);
    run(&b, "aid-single-loop", &[]);
    let schema = Schema {
        objective: "Bilevel Optimization".into(),
        dataset: "quadratic".into(),
        dataset_params: vec![("kappa".into(), "10".into()), ("dim".into(), "2".into())],
        file_dataset: "datasets/quadratic.py".into(),
        metrics: vec![
            Metric {
                key: "value",
                column: "grad_phi_norm",
                map: square,
            },
            Metric {
                key: "func",
                column: "f",
                map: std::convert::identity,
            },
        ],
    };
    let runs = [
        BenchoptRun {
            name: "SOBA".into(),
            description: "SOBA, \"quoted\", with commas".into(),
            dir: a.clone(),
        },
        BenchoptRun {
            name: "AID (single loop)".into(),
            description: String::new(),
            dir: b.clone(),
        },
    ];
    let path = benchopt::write(tmp.path(), &schema, &runs).unwrap();
    assert_eq!(path.file_name().unwrap(), "benchopt.csv");
    let mut rd = csv::Reader::from_path(&path).unwrap();
    let header: Vec<String> = rd.headers().unwrap().iter().map(String::from).collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name} in {header:?}"))
    };
    for required in [
        "objective_name",
        "solver_name",
        "dataset_name",
        "idx_rep",
        "stop_val",
        "time",
        "objective_value",
        "objective_func",
        "p_solver_rho",
        "p_solver_alpha",
        "p_dataset_kappa",
        "p_dataset_dim",
        "sampling_strategy",
        "file_solver",
        "version-numpy",
    ] {
        col(required);
    }
    let rows: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
    // What the writer made of the same runs, cell by cell.
    let written = benchopt::table(&schema, &runs).unwrap();
    assert_eq!(written[0], header);
    assert_eq!(rows.len(), written.len() - 1);
    for (r, w) in rows.iter().zip(&written[1..]) {
        assert_eq!(r.len(), header.len());
        assert_eq!(
            r.iter().collect::<Vec<_>>(),
            w.iter().map(String::as_str).collect::<Vec<_>>()
        );
    }
    // And against the traces themselves: every row of the 2 runs × 2 seeds whose objective was
    // evaluated (these cheap metrics are evaluated at every iteration, 0 to 30).
    let mut seen = 0;
    for (dir, name_start) in [(&a, "SOBA["), (&b, "AID (single loop)[")] {
        for seed in 0..2u64 {
            let t = trace_table(dir, seed).unwrap();
            let mine: Vec<&csv::StringRecord> = rows
                .iter()
                .filter(|r| {
                    r[col("solver_name")].starts_with(name_start)
                        && r[col("idx_rep")] == *seed.to_string()
                })
                .collect();
            assert_eq!(mine.len(), t.rows.len());
            for (r, tr) in mine.iter().zip(&t.rows) {
                let get = |c: &str| tr[t.col(c).unwrap()].unwrap();
                let parse = |c: &str| r[col(c)].parse::<f64>().unwrap();
                assert_eq!(parse("stop_val"), get("iter"));
                assert_eq!(parse("time").to_bits(), get("elapsed_s").to_bits());
                let g = get("grad_phi_norm");
                assert_eq!(parse("objective_value").to_bits(), (g * g).to_bits());
                assert_eq!(parse("objective_func").to_bits(), get("f").to_bits());
                assert_eq!(&r[col("objective_name")], "Bilevel Optimization");
                assert_eq!(&r[col("dataset_name")], "quadratic[dim=2,kappa=10]");
                assert_eq!(&r[col("sampling_strategy")], "Iteration");
                seen += 1;
            }
        }
    }
    assert_eq!(seen, rows.len());
    assert_eq!(seen, 2 * 2 * 31);
    // Solver names carry the sorted parameters, quoted through their commas; each solver's own
    // parameters are filled and the other's left empty.
    let soba = rows
        .iter()
        .find(|r| r[col("solver_name")].starts_with("SOBA["))
        .unwrap();
    assert!(
        soba[col("solver_name")].contains("gamma=0.1,gamma_decay=0.6"),
        "{soba:?}"
    );
    assert_eq!(&soba[col("p_solver_alpha")], "");
    assert_eq!(&soba[col("p_solver_batch")], "None");
    assert_eq!(
        &soba[col("solver_description")],
        "SOBA, \"quoted\", with commas"
    );
    assert_eq!(&soba[col("file_solver")], "solvers/soba.py");
    let aid = rows
        .iter()
        .find(|r| r[col("solver_name")].starts_with("AID"))
        .unwrap();
    assert_eq!(&aid[col("p_solver_rho")], "");
    assert!(!aid[col("p_solver_alpha")].is_empty());
}

fn bilevel() -> Command {
    let mut c = Command::cargo_bin("bilevel").unwrap();
    c.env_remove("BILEVEL_DATA_DIR");
    c
}

/// The benchopt table of a reproduction's folder, read back: header and rows.
fn read_table(path: &Path) -> (Vec<String>, Vec<csv::StringRecord>) {
    let mut rd = csv::Reader::from_path(path).unwrap();
    let header = rd.headers().unwrap().iter().map(String::from).collect();
    (header, rd.records().map(Result::unwrap).collect())
}

/// The benchopt names of the methods every benchopt reproduction runs.
const METHODS: [&str; 19] = [
    "SOBA",
    "SABA",
    "SRBA",
    "MA-SOBA",
    "SPABA",
    "StocBiO",
    "AmIGO",
    "TTSA",
    "BSA",
    "FSLA",
    "MRBO",
    "VRBO",
    "SUSTAIN",
    "BGS",
    "F2SA",
    "F2BSA",
    "AIDBiO (stochastic)",
    "AID (single loop)",
    "F2BA",
];

/// Every method appears in the report and in `benchopt.csv` with each of its seeds, and the
/// table's `time` never decreases along a run.
fn check_reproduction(dir: &Path, report: &str, seeds: &[&str], value: &str) {
    let (header, rows) = read_table(&dir.join("benchopt.csv"));
    let col = |n: &str| {
        header
            .iter()
            .position(|h| h == n)
            .unwrap_or_else(|| panic!("{n}"))
    };
    for m in METHODS {
        assert!(report.contains(&format!("| {m} |")), "row {m}:\n{report}");
        let mine: Vec<&csv::StringRecord> = rows
            .iter()
            .filter(|r| r[col("solver_name")].starts_with(&format!("{m}[")))
            .collect();
        assert!(!mine.is_empty(), "{m} not in benchopt.csv");
        let exact = m == "AID (single loop)" || m == "F2BA";
        for s in if exact { &seeds[..1] } else { seeds } {
            let rep: Vec<_> = mine.iter().filter(|r| &r[col("idx_rep")] == *s).collect();
            assert!(rep.len() >= 2, "{m} seed {s}");
            let t: Vec<f64> = rep
                .iter()
                .map(|r| r[col("time")].parse().unwrap())
                .collect();
            assert!(t.windows(2).all(|w| w[0] <= w[1]), "{m}: {t:?}");
            assert!(
                rep.iter()
                    .all(|r| r[col(value)].parse::<f64>().unwrap().is_finite())
            );
        }
    }
}

#[test]
fn benchopt_quadratic_smoke_runs_every_method_into_benchopts_table() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("bq");
    let o = bilevel()
        .args([
            "reproduce",
            "benchopt-quadratic",
            "--smoke",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    check_reproduction(&out, &report, &["0", "1"], "objective_value");
    for axis in ["time", "iter", "calls"] {
        assert!(
            out.join(format!("grad_phi_norm_{axis}.svg")).is_file(),
            "{axis}"
        );
    }
    // The benchmark's tuned steps: AmIGO's outer step is 0.01 / 0.1.
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("amigo/run.json")).unwrap())
            .unwrap();
    assert_eq!(run["solver_params"]["beta"], 0.1);
    assert_eq!(run["solver_params"]["alpha"], 0.01);
    assert_eq!(run["problem_params"]["data_seed"], "2442");
    let (header, _) = read_table(&out.join("benchopt.csv"));
    for c in [
        "objective_func",
        "objective_inner_distance",
        "p_dataset_dim_inner",
    ] {
        assert!(header.iter().any(|h| h == c), "{c}");
    }
    assert!(report.contains("Command: `bilevel reproduce benchopt-quadratic --smoke`"));
}

#[test]
fn benchopt_datacleaning_smoke_runs_every_method_at_every_ratio() {
    let Some(data) = std::env::var_os("BILEVEL_DATA_DIR").filter(|d| !d.is_empty()) else {
        eprintln!(
            "skipped: BILEVEL_DATA_DIR is not set (the benchmark's split needs MNIST's training images)"
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("bd");
    let o = bilevel()
        .env("BILEVEL_DATA_DIR", data)
        .args([
            "reproduce",
            "benchopt-datacleaning",
            "--smoke",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for ratio in ["0.5", "0.7", "0.9"] {
        assert!(report.contains(&format!("## ratio = {ratio}")), "{report}");
        let dir = out.join(format!("ratio{ratio}"));
        let section = report.split(&format!("## ratio = {ratio}")).nth(1).unwrap();
        check_reproduction(&dir, section, &["0"], "objective_test_accuracy");
        for axis in ["time", "iter", "calls"] {
            assert!(
                dir.join(format!("test_acc_{axis}.svg")).is_file(),
                "{ratio} {axis}"
            );
        }
        let run: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("soba/run.json")).unwrap())
                .unwrap();
        assert_eq!(run["problem_params"]["p"], ratio);
        assert_eq!(run["problem_params"]["standardize"], "true");
        assert_eq!(run["problem_params"]["x0"], "-2");
        // benchopt's accuracies are errors: test_accuracy is 1 − our test accuracy.
        let (header, rows) = read_table(&dir.join("benchopt.csv"));
        let c = header
            .iter()
            .position(|h| h == "objective_test_accuracy")
            .unwrap();
        let e: f64 = rows[0][c].parse().unwrap();
        assert!((0.0..=1.0).contains(&e), "{e}");
    }
}

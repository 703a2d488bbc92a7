//! End-to-end tests of the `bilevel` program: error messages, complete output files, resume
//! after an interruption, and the reduced `reproduce quick`.

use assert_cmd::Command;
use bilevel::cli::{parse_duration, parse_seeds, registry};
use std::path::Path;

fn bilevel() -> Command {
    let mut c = Command::cargo_bin("bilevel").expect("the bilevel binary is built");
    c.env_remove("BILEVEL_DATA_DIR");
    c.env_remove("BILEVEL_FASHION_MNIST_DIR");
    c
}

/// The Fashion-MNIST folder the program would read without `--data-dir`, if there is one:
/// `BILEVEL_FASHION_MNIST_DIR` (as the caller's environment sets it), else Debian's folder.
fn fashion_mnist_dir() -> Option<std::path::PathBuf> {
    let dir = std::env::var_os("BILEVEL_FASHION_MNIST_DIR")
        .filter(|d| !d.is_empty())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/usr/share/datasets/fashion-mnist".into());
    dir.is_dir().then_some(dir)
}

fn stderr_of(args: &[&str]) -> (i32, String) {
    let out = bilevel().args(args).output().expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unknown_names_suggest_the_closest() {
    let (code, err) = stderr_of(&[
        "run",
        "--problem",
        "quadratc",
        "--solver",
        "aid-single-loop",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("did you mean `quadratic`"), "{err}");
    let (_, err) = stderr_of(&["run", "--problem", "quadratic", "--solver", "pgdqp"]);
    assert!(err.contains("did you mean `pgd-qp`"), "{err}");
    let (_, err) = stderr_of(&["reproduce", "kappa-swep"]);
    assert!(err.contains("`kappa-sweep`"), "{err}");
    let (_, err) = stderr_of(&[
        "run",
        "--problem",
        "quadratic",
        "--solver",
        "aid-single-loop",
        "--set",
        "alpa=0.1",
    ]);
    assert!(
        err.contains("`alpa`") && err.contains("did you mean `alpha`"),
        "{err}"
    );
}

#[test]
fn bad_set_values_name_the_key_and_range() {
    let base = [
        "run",
        "--problem",
        "quadratic",
        "--solver",
        "aid-single-loop",
    ];
    let with = |kv: &str| {
        let mut a = base.to_vec();
        a.extend(["--set", kv]);
        stderr_of(&a).1
    };
    let err = with("alpha=-1");
    assert!(
        err.contains("`alpha`") && err.contains("allowed: finite and > 0"),
        "{err}"
    );
    let err = with("kappa=0.5");
    assert!(err.contains("`kappa`") && err.contains(">= 1"), "{err}");
    let err = with("beta=fast");
    assert!(err.contains("`beta`") && err.contains("a number"), "{err}");
    let err = with("dim=2.5");
    assert!(err.contains("`dim`"), "{err}");
}

#[test]
fn a_missing_data_folder_says_where_it_looked() {
    let (_, err) = stderr_of(&[
        "run",
        "--problem",
        "dhc-linear",
        "--solver",
        "pgd-qp",
        "--set",
        "preset=galet",
        "--data-dir",
        "/nonexistent/mnist",
    ]);
    assert!(err.contains("/nonexistent/mnist"), "{err}");
    assert!(
        err.contains("BILEVEL_DATA_DIR") && err.contains("--data-dir"),
        "{err}"
    );
}

fn no_temp_files(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.contains(".tmp"), "temporary file left: {name}");
        assert!(
            !name.ends_with(".state.json"),
            "state left after completion: {name}"
        );
    }
}

#[test]
fn run_writes_complete_traces_summary_and_plots() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("run.toml");
    std::fs::write(
        &cfg,
        "problem = \"quadratic\"\nsolver = \"aid-single-loop\"\nseeds = \"0..3\"\niters = 200\n[set]\nkappa = 5\nbeta = 0.5\n",
    )
    .unwrap();
    let out = tmp.path().join("out");
    bilevel()
        .args(["run", "--config"])
        .arg(&cfg)
        .args(["--quiet", "--threads", "2", "--out"])
        .arg(&out)
        .assert()
        .success();
    for s in 0..3 {
        let csv = std::fs::read_to_string(out.join(format!("seed{s}.csv"))).unwrap();
        assert_eq!(
            csv.lines().count(),
            102,
            "header + iterations 0, 2, ..., 200"
        );
        assert!(csv.lines().next().unwrap().starts_with("iter,gc,mv"));
        let jsonl = std::fs::read_to_string(out.join(format!("seed{s}.jsonl"))).unwrap();
        assert!(jsonl.lines().last().unwrap().contains("\"status\""));
    }
    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert!(summary.starts_with("metric,n,mean,std,median,q20,q80"));
    assert!(summary.contains("\ngrad_phi_norm,3,"));
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("| grad_phi_norm |"));
    let svg = std::fs::read_to_string(out.join("plot_grad_phi_norm.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    no_temp_files(&out);
    // `plot` redraws from the traces alone.
    std::fs::remove_file(out.join("plot_f.svg")).unwrap();
    bilevel().arg("plot").arg(&out).assert().success();
    assert!(out.join("plot_f.svg").exists());
}

fn csv_without_time(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let t = header.iter().position(|h| *h == "elapsed_s").unwrap();
    text.lines()
        .map(|l| {
            l.split(',')
                .enumerate()
                .filter(|(i, _)| *i != t)
                .map(|(_, c)| c)
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect()
}

#[test]
fn resume_continues_bit_identically() {
    let tmp = tempfile::tempdir().unwrap();
    let args = |out: &Path| {
        let mut a: Vec<String> = [
            "run",
            "--problem",
            "quadratic",
            "--solver",
            "aid-single-loop",
            "--set",
            "dim=5",
            "--set",
            "beta=0.5",
            "--seeds",
            "0..2",
            "--iters",
            "120",
            "--checkpoint-every",
            "10",
            "--metrics-every",
            "3",
            "--quiet",
            "--out",
        ]
        .map(String::from)
        .to_vec();
        a.push(out.display().to_string());
        a
    };
    let whole = tmp.path().join("whole");
    bilevel().args(args(&whole)).assert().success();
    let parts = tmp.path().join("parts");
    let mut first = args(&parts);
    first.extend(["--interrupt-after".into(), "4".into()]);
    bilevel().args(&first).assert().code(130);
    assert!(
        !parts.join("seed0.csv").exists(),
        "no trace before completion"
    );
    assert!(parts.join("seed0.state.json").exists());
    no_temp_files_but_state(&parts);
    let mut second = args(&parts);
    second.push("--resume".into());
    bilevel().args(&second).assert().success();
    for s in 0..2 {
        let a = csv_without_time(&whole.join(format!("seed{s}.csv")));
        let b = csv_without_time(&parts.join(format!("seed{s}.csv")));
        assert_eq!(a.len(), 50, "header + multiples of 3 and of 10 up to 120");
        assert_eq!(a, b, "seed {s}: resumed trace differs");
    }
    no_temp_files(&parts);
    // Resuming with other settings is refused.
    let mut other = args(&parts);
    other[12] = "130".into();
    other.push("--resume".into());
    let out = bilevel().args(&other).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("other settings"));
}

#[test]
fn several_solvers_run_side_by_side_with_a_comparison() {
    let tmp = tempfile::tempdir().unwrap();
    let args = |solver: &str, out: &Path, extra: &[&str]| {
        let mut a: Vec<String> = [
            "run",
            "--problem",
            "quadratic",
            "--solver",
            solver,
            "--set",
            "dim=5",
            "--set",
            "beta=0.5",
            "--seeds",
            "0..2",
            "--iters",
            "60",
            "--threads",
            "3",
            "--quiet",
            "--out",
        ]
        .map(String::from)
        .to_vec();
        a.push(out.display().to_string());
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let both = tmp.path().join("both");
    // `alpha` belongs to both solvers, `eta` to single-loop AID only.
    let o = bilevel()
        .args(args(
            "aid-single-loop,itd-single-loop",
            &both,
            &["--set", "alpha=0.2", "--set", "eta=0.3"],
        ))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for solver in ["aid-single-loop", "itd-single-loop"] {
        let dir = both.join(solver);
        for s in 0..2 {
            assert!(
                dir.join(format!("seed{s}.csv")).exists(),
                "{solver} seed {s}"
            );
        }
        assert_eq!(run_json(&dir)["solver"], solver);
        assert_eq!(run_json(&dir)["solver_params"]["alpha"], 0.2);
        no_temp_files(&dir);
    }
    assert_eq!(
        run_json(&both.join("aid-single-loop"))["solver_params"]["eta"],
        0.3
    );
    let summary = std::fs::read_to_string(both.join("summary.md")).unwrap();
    assert!(
        summary.contains("| aid-single-loop | itd-single-loop |")
            && summary.contains("| grad_phi_norm |"),
        "{summary}"
    );
    let svg = std::fs::read_to_string(both.join("plot_grad_phi_norm.svg")).unwrap();
    assert!(svg.contains("aid-single-loop") && svg.contains("itd-single-loop"));
    // Side by side or alone, a solver's traces are the same.
    let alone = tmp.path().join("alone");
    bilevel()
        .args(args("itd-single-loop", &alone, &["--set", "alpha=0.2"]))
        .assert()
        .success();
    for s in 0..2 {
        assert_eq!(
            csv_without_time(&alone.join(format!("seed{s}.csv"))),
            csv_without_time(&both.join("itd-single-loop").join(format!("seed{s}.csv")))
        );
    }
    // `plot` on the parent redraws the comparison.
    std::fs::remove_file(both.join("plot_grad_phi_norm.svg")).unwrap();
    bilevel().arg("plot").arg(&both).assert().success();
    assert!(both.join("plot_grad_phi_norm.svg").exists());
    // A key no solver and not the problem has, and a solver named twice, are refused.
    let (_, err) = stderr_of(&[
        "run",
        "--problem",
        "quadratic",
        "--solver",
        "aid-single-loop,itd-single-loop",
        "--set",
        "xi=1",
    ]);
    assert!(err.contains("`xi`"), "{err}");
    let (_, err) = stderr_of(&["run", "--problem", "quadratic", "--solver", "bome,bome"]);
    assert!(err.contains("bome appears twice"), "{err}");
}

fn no_temp_files_but_state(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.contains(".tmp"), "temporary file left: {name}");
    }
}

/// A reproduction's folder is the program's only where its manifest says so: a report or plot
/// of the user's is never replaced, and another reproduction's folder is refused.
#[test]
fn reproduce_never_replaces_a_file_it_did_not_write() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("mine");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("f1.svg"), "the user's plot").unwrap();
    let o = bilevel()
        .args(["reproduce", "quick", "--smoke", "--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("f1.svg is already there"), "{err}");
    assert_eq!(
        std::fs::read_to_string(out.join("f1.svg")).unwrap(),
        "the user's plot"
    );
    assert!(!out.join("report.md").exists());
    // Without the user's file the reproduction runs, and records what it wrote.
    std::fs::remove_file(out.join("f1.svg")).unwrap();
    let o = bilevel()
        .args(["reproduce", "quick", "--smoke", "--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    for name in ["report.md", "f1.svg", "\"experiment\": \"quick\""] {
        assert!(m.contains(name), "{name} in {m}");
    }
    // Another reproduction into the same folder is refused, and nothing is touched.
    let (code, err) = stderr_of(&[
        "reproduce",
        "kappa-sweep",
        "--smoke",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains("holds the reproduction quick, not the reproduction kappa-sweep"),
        "{err}"
    );
    assert!(out.join("report.md").exists());
}

#[test]
fn reproduce_quick_smoke_prints_the_table() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("quick");
    let o = bilevel()
        .args(["reproduce", "quick", "--smoke", "--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for method in ["| PGD-QP |", "| V-PBGD |", "| BOME |", "| AIDBiO |"] {
        assert!(report.contains(method), "missing row {method}:\n{report}");
    }
    assert!(report.contains("test accuracy"));
    for plot in ["val_loss.svg", "test_acc.svg", "f1.svg"] {
        assert!(out.join(plot).exists(), "{plot}");
    }
    // --redraw reuses the finished runs: same table, traces untouched.
    let trace = out.join("pgd-qp/seed0.csv");
    let modified = std::fs::metadata(&trace).unwrap().modified().unwrap();
    let o = bilevel()
        .args([
            "reproduce",
            "quick",
            "--smoke",
            "--quiet",
            "--redraw",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let again = std::fs::read_to_string(out.join("report.md")).unwrap();
    let table = |r: &str| {
        r.lines()
            .filter(|l| l.starts_with('|'))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(table(&report), table(&again));
    assert_eq!(
        std::fs::metadata(&trace).unwrap().modified().unwrap(),
        modified
    );
    assert!(again.contains("reusing the finished runs"), "{again}");
    // A folder whose settings differ from the experiment's is run again, not reused.
    let spec = out.join("pgd-qp/run.json");
    let text = std::fs::read_to_string(&spec).unwrap();
    std::fs::write(&spec, text.replace("\"gamma\": 0.5", "\"gamma\": 0.25")).unwrap();
    let bome = out.join("bome/seed0.csv");
    let bome_modified = std::fs::metadata(&bome).unwrap().modified().unwrap();
    let o = bilevel()
        .args([
            "reproduce",
            "quick",
            "--smoke",
            "--quiet",
            "--redraw",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        std::fs::read_to_string(&spec)
            .unwrap()
            .contains("\"gamma\": 0.5")
    );
    assert_ne!(
        std::fs::metadata(&trace).unwrap().modified().unwrap(),
        modified
    );
    assert_eq!(
        std::fs::metadata(&bome).unwrap().modified().unwrap(),
        bome_modified
    );
}

/// `seed<s>.csv` without its wall-time column, which no two runs share.
fn trace_without_time(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let col = text
        .lines()
        .next()
        .unwrap()
        .split(',')
        .position(|c| c == "elapsed_s")
        .unwrap();
    text.lines()
        .map(|l| {
            l.split(',')
                .enumerate()
                .filter(|&(i, _)| i != col)
                .map(|(_, v)| v)
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn reproduce_seeds_adds_seeds_to_a_finished_run_under_redraw() {
    let tmp = tempfile::tempdir().unwrap();
    let reproduce = |out: &Path, extra: &[&str]| {
        let o = bilevel()
            .args(["reproduce", "quick", "--smoke", "--quiet", "--out"])
            .arg(out)
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read_to_string(out.join("report.md")).unwrap()
    };
    let out = tmp.path().join("grown");
    reproduce(&out, &["--seeds", "0"]);
    let seed0 = out.join("bome/seed0.csv");
    let modified = std::fs::metadata(&seed0).unwrap().modified().unwrap();
    assert!(!out.join("bome/seed1.csv").exists());
    // Asking for seeds 0 and 1 under --redraw keeps seed 0 and runs seed 1 only.
    let report = reproduce(&out, &["--seeds", "0..2", "--redraw"]);
    assert_eq!(
        std::fs::metadata(&seed0).unwrap().modified().unwrap(),
        modified
    );
    assert!(out.join("bome/seed1.csv").exists());
    assert!(report.contains("seeds 0..2"), "{report}");
    assert!(
        report.contains("Command: `bilevel reproduce quick --smoke --seeds 0..2`"),
        "{report}"
    );
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("bome/run.json")).unwrap()).unwrap();
    assert_eq!(spec["seeds"], serde_json::json!([0, 1]));
    // The grown folder holds what one run of both seeds writes, bit for bit (wall time aside).
    let fresh = tmp.path().join("fresh");
    reproduce(&fresh, &["--seeds", "0..2"]);
    for method in ["pgd-qp", "v-pbgd", "bome", "aidbio"] {
        for s in 0..2 {
            let name = format!("{method}/seed{s}.csv");
            assert_eq!(
                trace_without_time(&out.join(&name)),
                trace_without_time(&fresh.join(&name)),
                "{name}"
            );
        }
    }
    // Fewer seeds than the folder holds is a new run: the extra seed is gone.
    reproduce(&out, &["--seeds", "0", "--redraw"]);
    assert!(!out.join("bome/seed1.csv").exists());
    // Experiments that do not run over seeds refuse the flag.
    let (code, err) = stderr_of(&["reproduce", "kappa-sweep", "--seeds", "0..2"]);
    assert_eq!(code, 2);
    assert!(err.contains("does not run over seeds"), "{err}");
}

#[test]
fn reproduce_pgdqp_dhc_and_time_smoke_run_every_setting() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |id: &str| {
        let out = tmp.path().join(id);
        let o = bilevel()
            .args(["reproduce", id, "--smoke", "--quiet", "--out"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let report = std::fs::read_to_string(out.join("report.md")).unwrap();
        (out, report)
    };
    let sections =
        |r: &str| -> Vec<String> { r.split("\n## ").skip(1).map(String::from).collect() };
    let rows = |sec: &str| {
        sec.lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| method"))
            .count()
    };
    // By iterations: PCA has AIDBiO, the network no Thm 4.5 row.
    let (out, report) = run("pgdqp-dhc");
    let secs = sections(&report);
    assert_eq!(secs.len(), 3, "{report}");
    for (sec, n) in secs.iter().zip([5, 4, 3]) {
        assert_eq!(rows(sec), n, "{sec}");
    }
    assert!(secs[0].contains("| AIDBiO |") && secs[1].contains("| PGD-QP (Thm 4.5) |"));
    for dir in ["pca", "linear", "mlp"] {
        assert!(out.join(dir).join("test_acc.svg").exists(), "{dir}");
    }
    // The two PGD-QP variants run the same solver with different ρ, each in its own folder.
    let spec = |m: &str| std::fs::read_to_string(out.join("pca").join(m).join("run.json")).unwrap();
    assert!(spec("pgd-qp-thm-4-2").contains("\"GradNormSq\""));
    assert!(spec("pgd-qp-thm-4-5").contains("\"GradNormSqrtH0\""));
    // Under a time budget: runs stop on time, not on the iteration cap, and plot against time.
    let (out, report) = run("pgdqp-time");
    let secs = sections(&report);
    assert_eq!(secs.len(), 2, "{report}");
    for (sec, n) in secs.iter().zip([5, 3]) {
        assert_eq!(rows(sec), n, "{sec}");
        assert!(sec.contains("per seed"), "{sec}");
        for row in sec.lines().filter(|l| l.starts_with("| PGD-QP")) {
            let iters: u64 = row.split('|').nth(2).unwrap().trim().parse().unwrap();
            assert!(iters > 0 && iters < 10_000_000, "{row}");
        }
    }
    let svg = std::fs::read_to_string(out.join("budget-pca/val_loss.svg")).unwrap();
    assert!(svg.contains("wall time"));
}

#[test]
fn list_names_every_problem_and_solver() {
    let out = bilevel().arg("list").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for p in registry::PROBLEMS {
        assert!(text.contains(p.name));
    }
    for s in bilevel::solvers::registry::SOLVERS {
        assert!(text.contains(s.name) && text.contains(s.summary));
    }
    let reproductions = &text[text.find("REPRODUCTIONS").expect("a REPRODUCTIONS section")..];
    for e in bilevel::cli::reproduce::EXPERIMENTS {
        assert!(reproductions.contains(&format!("  {:<22} {}", e.id, e.summary)));
    }
    // The hyper-cleaning problems say which datasets they read and where from.
    assert!(
        text.contains("dataset      = mnist    mnist or fashion-mnist")
            && text.contains("BILEVEL_FASHION_MNIST_DIR"),
        "{text}"
    );
    assert!(text.contains("solve.Cg.max_iter"));
    assert!(text.contains("batch.batch_g"));
    // Problems state their constants, and solvers say which defaults follow them.
    assert!(
        text.contains("constants (seed 0): L_g = 100, μ_g = 1"),
        "{text}"
    );
    assert!(text.contains("from the problem: 1/L_g (single-loop AID/ITD paper, Theorem 1"));
}

#[test]
fn seeds_and_durations_parse() {
    assert_eq!(parse_seeds("0..5").unwrap(), vec![0, 1, 2, 3, 4]);
    assert_eq!(parse_seeds("3").unwrap(), vec![3]);
    assert_eq!(parse_seeds("1,2,7").unwrap(), vec![1, 2, 7]);
    assert!(parse_seeds("5..2").unwrap_err().0.contains("0..5"));
    assert!(
        parse_seeds("1,2,1")
            .unwrap_err()
            .0
            .contains("seed 1 appears twice")
    );
    assert_eq!(parse_duration("250s").unwrap(), 250.0);
    assert_eq!(parse_duration("4m").unwrap(), 240.0);
    assert!(parse_duration("soon").is_err());
    assert_eq!(registry::edit_distance("kitten", "sitting"), 3);
}

#[test]
fn a_data_folder_given_must_exist_and_hold_the_split() {
    // The pgdqp preset reads only the test split, which the repository ships: a folder named
    // by mistake must not silently fall back to it.
    let args = |dir: &str| {
        [
            "run",
            "--problem",
            "dhc-linear",
            "--solver",
            "bome",
            "--set",
            "preset=pgdqp",
            "--iters",
            "1",
            "--quiet",
            "--data-dir",
        ]
        .into_iter()
        .map(String::from)
        .chain([dir.to_string()])
        .collect::<Vec<_>>()
    };
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nowhere");
    let o = bilevel()
        .args(args(missing.to_str().unwrap()))
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("no such folder") && err.contains("nowhere"),
        "{err}"
    );
    let o = bilevel()
        .args(args(tmp.path().to_str().unwrap()))
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("has no MNIST test files"), "{err}");
    let o = bilevel()
        .env("BILEVEL_DATA_DIR", &missing)
        .args(&args(missing.to_str().unwrap())[..10])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("BILEVEL_DATA_DIR=") && err.contains("no such folder"),
        "{err}"
    );
    // Nothing was written: the default output folder does not exist.
    assert!(!tmp.path().join("runs").exists());
}

#[cfg(unix)]
#[test]
fn a_cache_folder_others_can_write_stops_the_run_naming_bilevel_cache_dir() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let shared = tmp.path().join("shared-cache");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let o = bilevel()
        .env("BILEVEL_CACHE_DIR", &shared)
        .args([
            "run",
            "--problem",
            "dhc-linear",
            "--solver",
            "bome",
            "--set",
            "preset=pgdqp",
            "--iters",
            "1",
            "--quiet",
        ])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_ne!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("BILEVEL_CACHE_DIR") && err.contains("writable by other users"),
        "{err}"
    );
    // Nothing was read from or written to that folder, and no run folder was made.
    assert_eq!(std::fs::read_dir(&shared).unwrap().count(), 0);
    assert!(!tmp.path().join("runs").exists());
}

#[test]
fn a_run_file_takes_the_flags_spelling_and_a_seed_list() {
    use bilevel::cli::{RunArgs, resolve_run, run::UNCAPPED};
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("run.toml");
    let resolve = |text: &str| {
        std::fs::write(&cfg, text).unwrap();
        resolve_run(&RunArgs {
            config: Some(cfg.clone()),
            ..RunArgs::default()
        })
    };
    let head = "problem = \"quadratic\"\nsolver = \"aid-single-loop\"\n";
    let spec = resolve(&format!(
        "{head}seeds = [0, 2]\ntime-budget = \"2s\"\nmetrics-every = 5\n"
    ))
    .unwrap()
    .0
    .spec;
    assert_eq!(spec.seeds, vec![0, 2]);
    assert_eq!(spec.time_budget_s, Some(2.0));
    // A budget without an iteration cap stops on time alone, checkpointing every tenth
    // metric row.
    assert_eq!(spec.iters, UNCAPPED);
    assert_eq!((spec.metrics_every, spec.checkpoint_every), (5, 50));
    let spec = resolve(&format!(
        "{head}seeds = 3\ntime_budget = \"2s\"\niters = 40\n"
    ))
    .unwrap()
    .0
    .spec;
    assert_eq!(spec.seeds, vec![3]);
    assert_eq!((spec.iters, spec.metrics_every), (40, 1));
    let err = resolve(&format!("{head}seeds = [1, 1]\n")).unwrap_err().0;
    assert!(err.contains("seed 1 appears twice"), "{err}");
    let err = resolve(&format!("{head}seeds = 1.5\n")).unwrap_err().0;
    assert!(err.contains("a list of integers"), "{err}");
}

#[test]
fn a_time_budget_alone_stops_the_run_on_time() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("budget");
    bilevel()
        .args([
            "run",
            "--problem",
            "quadratic",
            "--solver",
            "aid-single-loop",
            "--time-budget",
            "1s",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .assert()
        .success();
    let jsonl = std::fs::read_to_string(out.join("seed0.jsonl")).unwrap();
    assert!(
        jsonl.lines().last().unwrap().contains("TimeBudget"),
        "{}",
        jsonl.lines().last().unwrap()
    );
    // No iteration cap was set (the status above cannot come from one).
    assert_eq!(run_json(&out)["iters"], serde_json::json!(u64::MAX));
}

#[test]
fn galet_table3_smoke_needs_the_training_split() {
    let Some(dir) = std::env::var_os("BILEVEL_DATA_DIR").filter(|d| !d.is_empty()) else {
        eprintln!("skipped: BILEVEL_DATA_DIR is not set (galet-table3 needs the training split)");
        let (code, err) = stderr_of(&["reproduce", "galet-table3", "--smoke", "--quiet"]);
        assert_eq!(code, 2);
        assert!(err.contains("BILEVEL_DATA_DIR"), "{err}");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("t3");
    let o = bilevel()
        .env("BILEVEL_DATA_DIR", dir)
        .args(["reproduce", "galet-table3", "--smoke", "--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for method in [
        "| RHG |",
        "| BOME |",
        "| IAPTT-GM |",
        "| V-PBGD |",
        "| GALET |",
        "| GALET, w from 0 (Algorithm 1 as printed) |",
        "| GALET, α = 3000 (outside the paper's grid) |",
        "| RHG, warm-started (not the published form) |",
    ] {
        assert!(report.contains(method), "missing row {method}:\n{report}");
    }
    // The RHG row is the published form, the warm-started one keeps the committed folder.
    let cold = std::fs::read_to_string(out.join("rhg-cold-start/run.json")).unwrap();
    assert!(cold.contains("\"warm_start\": false"), "{cold}");
    let warm = std::fs::read_to_string(out.join("rhg/run.json")).unwrap();
    assert!(warm.contains("\"warm_start\": true"), "{warm}");
    assert!(report.contains("GALET 90.20") && report.contains("IAPTT-GM 90.13"));
    // IAPTT-GM ran at the table's setting, with its learned start.
    let iaptt = std::fs::read_to_string(out.join("iaptt-gm/run.json")).unwrap();
    assert!(
        iaptt.contains("\"beta_z\": 5.0") || iaptt.contains("\"beta_z\": 5"),
        "{iaptt}"
    );
    assert!(report.contains("learned start"), "{report}");
}

#[test]
fn galet_fig5_smoke_computes_the_stationarity_measure_for_every_method() {
    let Some(dir) = std::env::var_os("BILEVEL_DATA_DIR").filter(|d| !d.is_empty()) else {
        eprintln!("skipped: BILEVEL_DATA_DIR is not set (galet-fig5 needs the training split)");
        let (code, err) = stderr_of(&["reproduce", "galet-fig5", "--smoke", "--quiet"]);
        assert_eq!(code, 2);
        assert!(err.contains("BILEVEL_DATA_DIR"), "{err}");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("f5");
    let o = bilevel()
        .env("BILEVEL_DATA_DIR", dir)
        .args(["reproduce", "galet-fig5", "--smoke", "--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for (method, published) in [
        ("BOME", "88.20"),
        ("IAPTT-GM", "90.13"),
        ("V-PBGD", "90.24"),
        ("GALET", "90.20"),
    ] {
        let row = report
            .lines()
            .find(|l| l.starts_with(&format!("| {method} |")))
            .unwrap_or_else(|| panic!("missing row {method}:\n{report}"));
        assert!(row.contains(published), "{row}");
        assert!(!row.contains("| – |"), "a measure is missing: {row}");
    }
    assert!(report.contains("GALET's exponent"), "{report}");
    for svg in ["test_loss.svg", "stationarity.svg"] {
        assert!(out.join(svg).is_file(), "{svg}");
    }
    // Every recorded iteration of every method carries the three residuals and the test loss,
    // and R_w vanishes (to the CG tolerance) where the metrics solved for w.
    for folder in ["bome", "iaptt-gm", "v-pbgd", "galet"] {
        let csv = std::fs::read_to_string(out.join(folder).join("seed0.csv")).unwrap();
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let col = |n: &str| {
            header
                .iter()
                .position(|h| *h == n)
                .unwrap_or_else(|| panic!("{n}"))
        };
        let (rx, rw, ry, tl) = (
            col("galet_rx"),
            col("galet_rw"),
            col("galet_ry"),
            col("test_loss"),
        );
        let mut rows = 0;
        for l in lines {
            let c: Vec<&str> = l.split(',').collect();
            if c[tl].is_empty() {
                continue;
            }
            rows += 1;
            let v = |i: usize| c[i].parse::<f64>().unwrap();
            assert!(v(rx) >= 0.0 && v(ry) >= 0.0 && v(tl) > 0.0, "{folder}: {l}");
            if folder != "galet" {
                assert!(v(rw) < 1e-12 * (1.0 + v(rx)), "{folder}: R_w = {}", v(rw));
            }
        }
        assert!(rows >= 3, "{folder}: {rows} rows with metrics");
    }
}

#[test]
fn stationarity_is_refused_for_the_network() {
    let (code, err) = stderr_of(&[
        "run",
        "--problem",
        "dhc-mlp",
        "--solver",
        "galet",
        "--set",
        "stationarity=true",
        "--quiet",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("stationarity"), "{err}");
}

#[test]
fn the_dataset_parameter_picks_the_folder_and_names_it_when_the_data_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let run = |dataset: &str, extra: &[&str]| {
        let mut c = bilevel();
        c.args([
            "run",
            "--problem",
            "dhc-linear",
            "--solver",
            "bome",
            "--set",
            &format!("dataset={dataset}"),
            "--set",
            "preset=pgdqp",
            "--iters",
            "1",
            "--quiet",
        ])
        .args(extra)
        .current_dir(tmp.path());
        c
    };
    let fail = |mut c: Command| {
        let o = c.output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(2), "{err}");
        err
    };
    // --data-dir names the Fashion-MNIST folder when the problem reads Fashion-MNIST.
    let err = fail(run(
        "fashion-mnist",
        &["--data-dir", "/nonexistent/fashion"],
    ));
    assert!(
        err.contains("--data-dir /nonexistent/fashion: no such folder")
            && err.contains("Fashion-MNIST")
            && err.contains("BILEVEL_FASHION_MNIST_DIR"),
        "{err}"
    );
    // So does BILEVEL_FASHION_MNIST_DIR, and MNIST's folder is never taken instead: the shipped
    // MNIST test split, which the pgdqp preset needs, is not Fashion-MNIST.
    let mut c = run("fashion-mnist", &[]);
    c.env("BILEVEL_FASHION_MNIST_DIR", &empty);
    let err = fail(c);
    assert!(
        err.contains(&format!("BILEVEL_FASHION_MNIST_DIR={}", empty.display()))
            && err.contains("has no Fashion-MNIST test files")
            && err.contains("--data-dir"),
        "{err}"
    );
    let mut c = run("fashion-mnist", &[]);
    c.env("BILEVEL_FASHION_MNIST_DIR", &empty).env(
        "BILEVEL_DATA_DIR",
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist"),
    );
    let err = fail(c);
    assert!(err.contains("has no Fashion-MNIST test files"), "{err}");
    // An unknown dataset is named with the known ones.
    let err = fail(run("kmnist", &[]));
    assert!(
        err.contains("unknown dataset")
            && err.contains("`kmnist`")
            && err.contains("fashion-mnist"),
        "{err}"
    );
    // Nothing was written.
    assert!(!tmp.path().join("runs").exists());
}

#[test]
fn dataset_fashion_mnist_reads_its_own_folder_and_says_so_in_the_traces() {
    // Any folder with the four standard names will do to check which folder is read: here a
    // copy of the shipped test split (with its sums), named by BILEVEL_FASHION_MNIST_DIR while
    // BILEVEL_DATA_DIR names a folder that does not exist.
    let tmp = tempfile::tempdir().unwrap();
    let fake = tmp.path().join("fashion");
    std::fs::create_dir(&fake).unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    for f in [
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
        "SHA256SUMS",
    ] {
        std::fs::copy(shipped.join(f), fake.join(f)).unwrap();
    }
    let out = tmp.path().join("run");
    let o = bilevel()
        .env("BILEVEL_FASHION_MNIST_DIR", &fake)
        .env("BILEVEL_DATA_DIR", tmp.path().join("no-mnist-here"))
        .args([
            "run",
            "--problem",
            "dhc-linear",
            "--solver",
            "bome",
            "--set",
            "dataset=fashion-mnist",
            "--set",
            "preset=pgdqp",
            "--set",
            "n=100",
            "--set",
            "val=50",
            "--set",
            "test=50",
            "--iters",
            "2",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let spec = std::fs::read_to_string(out.join("run.json")).unwrap();
    assert!(spec.contains("\"dataset\": \"fashion-mnist\""), "{spec}");
    let trace = std::fs::read_to_string(out.join("seed0.jsonl")).unwrap();
    assert!(
        trace.contains("\"problem\":\"dhc-linear-fashion-mnist-n100-d784\""),
        "{trace}"
    );
    // The same run on MNIST reads BILEVEL_DATA_DIR, which does not exist.
    let o = bilevel()
        .env("BILEVEL_FASHION_MNIST_DIR", &fake)
        .env("BILEVEL_DATA_DIR", tmp.path().join("no-mnist-here"))
        .args([
            "run",
            "--problem",
            "dhc-linear",
            "--solver",
            "bome",
            "--set",
            "preset=pgdqp",
            "--iters",
            "1",
            "--quiet",
            "--out",
        ])
        .arg(tmp.path().join("mnist-run"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.code() == Some(2)
            && err.contains("BILEVEL_DATA_DIR=")
            && err.contains("no such folder"),
        "{err}"
    );
}

#[test]
fn galet_table3_fashion_smoke_runs_every_method_on_fashion_mnist() {
    let Some(dir) = fashion_mnist_dir() else {
        eprintln!(
            "skipped: no Fashion-MNIST folder (BILEVEL_FASHION_MNIST_DIR is not set and \
             /usr/share/datasets/fashion-mnist does not exist); checked only that \
             galet-table3-fashion says where to put it"
        );
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("t3fashion");
        let (code, err) = stderr_of(&[
            "reproduce",
            "galet-table3-fashion",
            "--smoke",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, 2);
        assert!(
            err.contains("BILEVEL_FASHION_MNIST_DIR") && err.contains("--data-dir"),
            "{err}"
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("t3fashion");
    let o = bilevel()
        .env("BILEVEL_FASHION_MNIST_DIR", &dir)
        .args([
            "reproduce",
            "galet-table3-fashion",
            "--smoke",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for method in [
        "| RHG |",
        "| BOME |",
        "| IAPTT-GM |",
        "| V-PBGD |",
        "| GALET |",
        "| GALET, w from 0 (Algorithm 1 as printed) |",
        "| GALET, α = 3000 (outside the paper's grid) |",
        "| RHG, warm-started (not the published form) |",
    ] {
        assert!(report.contains(method), "missing row {method}:\n{report}");
    }
    assert!(
        report.contains("Fashion-MNIST, 5000 training images")
            && report.contains("GALET 84.03")
            && report.contains("RHG 81.87")
            && report.contains("not tuned on Fashion-MNIST"),
        "{report}"
    );
    for m in [
        "rhg-cold-start",
        "bome",
        "iaptt-gm",
        "v-pbgd",
        "galet",
        "rhg",
    ] {
        let run = std::fs::read_to_string(out.join(m).join("run.json")).unwrap();
        assert!(run.contains("\"dataset\": \"fashion-mnist\""), "{m}: {run}");
        assert!(run.contains("\"lambda\": \"0\""), "{m}: {run}");
        let trace = std::fs::read_to_string(out.join(m).join("seed0.jsonl")).unwrap();
        assert!(
            trace.contains("dhc-mlp50-fashion-mnist-n200"),
            "{m}: {trace}"
        );
    }
    // Every method ran at its MNIST-MLP setting: GALET's ρ of that column.
    let galet = std::fs::read_to_string(out.join("galet/run.json")).unwrap();
    assert!(galet.contains("\"rho\": 0.05"), "{galet}");
    // GALET in the paper's grid, with w carried over and restarted from 0.
    let grid = std::fs::read_to_string(out.join("galet-grid/run.json")).unwrap();
    assert!(
        grid.contains("\"alpha\": 500") && grid.contains("\"warm_start_w\": true"),
        "{grid}"
    );
    let w0 = std::fs::read_to_string(out.join("galet-grid-w0/run.json")).unwrap();
    assert!(w0.contains("\"warm_start_w\": false"), "{w0}");
    for plot in ["val_loss.svg", "test_acc.svg", "f1.svg"] {
        assert!(out.join(plot).exists(), "{plot}");
    }
}

#[test]
fn galet_table3_mlp_smoke_runs_every_method() {
    let Some(dir) = std::env::var_os("BILEVEL_DATA_DIR").filter(|d| !d.is_empty()) else {
        eprintln!(
            "skipped: BILEVEL_DATA_DIR is not set (galet-table3-mlp needs the training split)"
        );
        let (code, err) = stderr_of(&["reproduce", "galet-table3-mlp", "--smoke", "--quiet"]);
        assert_eq!(code, 2);
        assert!(err.contains("BILEVEL_DATA_DIR"), "{err}");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("t3mlp");
    let o = bilevel()
        .env("BILEVEL_DATA_DIR", dir)
        .args([
            "reproduce",
            "galet-table3-mlp",
            "--smoke",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for method in [
        "| RHG |",
        "| BOME |",
        "| IAPTT-GM |",
        "| V-PBGD |",
        "| GALET |",
        "| GALET, w from 0 (Algorithm 1 as printed) |",
        "| GALET, α = 3000 (outside the paper's grid) |",
        "| RHG, warm-started (not the published form) |",
    ] {
        assert!(report.contains(method), "missing row {method}:\n{report}");
    }
    // The RHG row is the published form, the warm-started one keeps the committed folder.
    let cold = std::fs::read_to_string(out.join("rhg-cold-start/run.json")).unwrap();
    assert!(cold.contains("\"warm_start\": false"), "{cold}");
    let warm = std::fs::read_to_string(out.join("rhg/run.json")).unwrap();
    assert!(warm.contains("\"warm_start\": true"), "{warm}");
    assert!(report.contains("GALET 91.48") && report.contains("50 hidden units"));
    // The network has no ridge term: the runs record lambda = 0.
    let run = std::fs::read_to_string(out.join("galet/run.json")).unwrap();
    assert!(run.contains("\"lambda\": \"0\""), "{run}");
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_cleanly_leaving_only_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sigint");
    let bin = assert_cmd::cargo::cargo_bin("bilevel");
    let mut child = std::process::Command::new(bin)
        .args([
            "run",
            "--problem",
            "quadratic",
            "--solver",
            "aid-single-loop",
            "--iters",
            "50000000",
            "--checkpoint-every",
            "20000",
            "--metrics-every",
            "20000",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let state = out.join("seed0.state.json");
    let t0 = std::time::Instant::now();
    while !state.exists() {
        assert!(t0.elapsed().as_secs() < 20, "no checkpoint after 20 s");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let pid = child.id().to_string();
    std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(
        !out.join("seed0.csv").exists(),
        "no trace of an unfinished run"
    );
    assert!(state.exists() && out.join("run.json").exists());
    no_temp_files_but_state(&out);
}

#[test]
fn synthetic_quick_reports_every_problem_and_method() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("syn");
    let o = bilevel()
        .args(["reproduce", "synthetic", "--quick", "--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for section in ["## sc-sincos", "## coreset", "## nc-cos"] {
        assert!(report.contains(section), "missing {section}:\n{report}");
    }
    for row in [
        "| PGD-QP, Thm 4.2 (ρ = ‖∇h‖²), K = 30 |",
        "| PGD-QP, Thm 4.5 (ρ = ‖∇h‖√h₀), K = 100 |",
        "| V-PBGD (",
        "| BOME (",
        "| AIDBiO (",
    ] {
        assert!(report.contains(row), "missing row {row}:\n{report}");
    }
    // sc-sincos: 2 theorems × 2 horizons + 3 methods; coreset: 5; nc-cos: 3.
    let rows = report.lines().filter(|l| l.starts_with("| PGD-QP")).count();
    assert_eq!(rows, 8, "{report}");
    assert_eq!(report.matches("| BOME (").count(), 3, "{report}");
    for plot in [
        "sc-sincos/grad_phi_norm_pgdqp_thm42_over_k.svg",
        "sc-sincos/grad_phi_norm_methods.svg",
        "coreset/grad_phi_norm_methods.svg",
        "nc-cos/delta_norm_methods.svg",
    ] {
        assert!(out.join(plot).exists(), "{plot}");
    }
}

#[test]
fn itd_appendix_d_quick_needs_the_training_split() {
    let Some(dir) = std::env::var_os("BILEVEL_DATA_DIR").filter(|d| !d.is_empty()) else {
        eprintln!("skipped: BILEVEL_DATA_DIR is not set (itd-appendix-d needs the training split)");
        let (code, err) = stderr_of(&["reproduce", "itd-appendix-d", "--quick", "--quiet"]);
        assert_ne!(code, 0);
        assert!(err.contains("BILEVEL_DATA_DIR"), "{err}");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("itd");
    let o = bilevel()
        .env("BILEVEL_DATA_DIR", dir)
        .args([
            "reproduce",
            "itd-appendix-d",
            "--quick",
            "--quiet",
            "--seeds",
            "0..2",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for method in ["| single-loop ITD | 40 |", "| single-loop AID | 40 |"] {
        let row = report
            .lines()
            .find(|l| l.starts_with(method))
            .unwrap_or_else(|| panic!("missing row {method}:\n{report}"));
        // Two seeds: the losses and the accuracy are a mean ± std.
        assert_eq!(row.matches(" ± ").count(), 4, "{row}");
    }
    assert!(report.contains("seeds 0..2"), "{report}");
    assert!(report.contains("0.65"));
    assert!(out.join("val_loss.svg").exists());
}

#[test]
fn galet_fig3_smoke_compares_both_increments_everywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("fig3");
    let o = bilevel()
        .args(["reproduce", "galet-fig3", "--smoke", "--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    let rows: Vec<Vec<&str>> = report
        .lines()
        .filter(|l| l.starts_with("| (") || l.starts_with("| (-"))
        .map(|l| l.split('|').map(str::trim).collect())
        .collect();
    // 3 starts × 3 settings × 2 increments.
    assert_eq!(rows.len(), 18, "{report}");
    assert_eq!(rows.iter().filter(|r| r[3] == "(12b)").count(), 9);
    assert_eq!(rows.iter().filter(|r| r[3] == "(15)").count(), 9);
    // Eq. (15) takes one product per w-step, eq. (12b) two: fewer MV with the same Gc.
    for pair in rows.chunks(2) {
        let mv = |r: &Vec<&str>| r[8].parse::<f64>().unwrap();
        assert_eq!(pair[0][7], pair[1][7], "{pair:?}");
        assert!(mv(&pair[1]) < mv(&pair[0]), "{pair:?}");
    }
    assert!(out.join("opt_gap.svg").exists());
}

#[test]
fn galet_sensitivity_smoke_covers_the_grid() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sens");
    let o = bilevel()
        .args([
            "reproduce",
            "galet-sensitivity",
            "--smoke",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    let rows: Vec<Vec<&str>> = report
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| panel"))
        .map(|l| l.split('|').map(str::trim).collect())
        .collect();
    // α: 5; T × γ: 6; N × β: 8; T × γ with w from 0: 6.
    assert_eq!(rows.len(), 25, "{report}");
    let gap = |r: &[&str]| r[4].parse::<f64>().unwrap();
    // The paper's default, in each of the three panels that contain it, ends near the
    // optimal set: with K = 10 from (2, 2, 2) its gap falls from 4.78 to about 0.067.
    let defaults: Vec<&Vec<&str>> = rows.iter().filter(|r| r[2].contains("(default)")).collect();
    assert_eq!(defaults.len(), 3, "{report}");
    for r in defaults {
        assert!(
            gap(r) < 0.1,
            "default setting did not approach the optimal set: {r:?}"
        );
        assert_eq!(r[3], "ran K iterations");
    }
    // β = 3 is the setting the paper reports diverging.
    for r in rows.iter().filter(|r| r[2].contains("β = 3")) {
        assert!(r[3].starts_with("diverged"), "{r:?}");
    }
    // The iterates come from a run stopped and resumed after every iteration; they must end
    // where the uninterrupted run's trace ends.
    let traj = std::fs::read_to_string(out.join("ul/alpha0.3/trajectory.csv")).unwrap();
    assert_eq!(traj.lines().count(), 12, "header + k = 0..=10");
    let last_traj: f64 = traj
        .lines()
        .last()
        .unwrap()
        .split(',')
        .nth(4)
        .unwrap()
        .parse()
        .unwrap();
    let trace = std::fs::read_to_string(out.join("ul/alpha0.3/seed0.csv")).unwrap();
    let header: Vec<&str> = trace.lines().next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "opt_gap").unwrap();
    let last_trace: f64 = trace
        .lines()
        .last()
        .unwrap()
        .split(',')
        .nth(col)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(last_traj, last_trace);
    for plot in ["path_ul.svg", "gap_ll.svg", "path_lm-w0.svg"] {
        assert!(out.join(plot).exists(), "{plot}");
    }
}

/// The first and last values of column `col` of a trace.
fn first_last(path: &Path, col: &str) -> (f64, f64) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let i = lines
        .next()
        .unwrap()
        .split(',')
        .position(|h| h == col)
        .unwrap_or_else(|| panic!("no column {col} in {}", path.display()));
    let vals: Vec<f64> = lines
        .filter_map(|l| l.split(',').nth(i)?.parse().ok())
        .collect();
    (vals[0], *vals.last().unwrap())
}

fn run_json(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap()
}

fn run_sc_sincos(out: &Path, solver: &str, extra: &[&str]) {
    let o = sc_sincos(out, solver, extra);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn sc_sincos(out: &Path, solver: &str, extra: &[&str]) -> std::process::Output {
    bilevel()
        .args(["run", "--problem", "sc-sincos", "--solver", solver])
        .args(["--iters", "1000", "--quiet"])
        .args(extra)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn run_derives_step_sizes_from_the_problem_smoothness() {
    let tmp = tempfile::tempdir().unwrap();
    // sc-sincos has L_g = 100: the solvers' fixed defaults (steps of order 1) diverge.
    let lib = tmp.path().join("library");
    // A diverged run writes its files, says so in its summary and exits with code 3.
    let o = sc_sincos(&lib, "aid-single-loop", &["--library-defaults"]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("diverged"));
    let last = std::fs::read_to_string(lib.join("seed0.jsonl")).unwrap();
    assert!(last.contains("Diverged"), "{last}");
    let summary = std::fs::read_to_string(lib.join("summary.md")).unwrap();
    assert!(
        summary.contains("**Diverged: 1 of 1 seeds** (seed 0)")
            && summary.contains("- seed 0: diverged at k = "),
        "{summary}"
    );
    assert!(run_json(&lib).get("derived").is_none());
    for solver in ["pgd-qp", "aid-single-loop"] {
        let out = tmp.path().join(solver);
        run_sc_sincos(&out, solver, &[]);
        let last = std::fs::read_to_string(out.join("seed0.jsonl")).unwrap();
        let status = last.lines().last().unwrap();
        assert_eq!(status, r#"{"status":"MaxIter"}"#, "{solver}");
        let (g0, g) = first_last(&out.join("seed0.csv"), "grad_phi_norm");
        assert!(g < 0.25 * g0, "{solver}: ‖∇Φ‖ {g0} -> {g}");
        let spec = run_json(&out);
        let derived: Vec<&str> = spec["derived"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["key"].as_str().unwrap())
            .collect();
        let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
        assert!(summary.contains("Defaults from the problem's smoothness constants"));
        match solver {
            "pgd-qp" => {
                assert_eq!(derived, ["alpha", "gamma", "warm_start_step"]);
                // Theorem 4.2 for K = 1000: α = K^(−1/3) = 0.1, γ = 1/(L_f + αL_h) < 1/2020.
                let p = &spec["solver_params"];
                assert!((p["alpha"].as_f64().unwrap() - 0.1).abs() < 1e-12);
                assert!(p["gamma"].as_f64().unwrap() < 1.0 / 2020.0);
                assert_eq!(p["warm_start_step"].as_f64(), Some(0.01));
            }
            _ => {
                assert_eq!(derived, ["alpha", "eta", "beta"]);
                assert_eq!(spec["solver_params"]["alpha"].as_f64(), Some(0.01));
            }
        }
    }
    // An explicit value wins, and PGD-QP's α is then not derived either (γ ≤ α is chosen as a
    // pair by Theorem 4.2).
    let out = tmp.path().join("set");
    run_sc_sincos(&out, "aid-single-loop", &["--set", "beta=0.002"]);
    let spec = run_json(&out);
    assert_eq!(spec["solver_params"]["beta"].as_f64(), Some(0.002));
    assert_eq!(spec["solver_params"]["eta"].as_f64(), Some(0.01));
    assert!(
        !spec["derived"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["key"] == "beta")
    );
    let out = tmp.path().join("set-pgd");
    run_sc_sincos(&out, "pgd-qp", &["--set", "gamma=0.0001"]);
    let p = &run_json(&out)["solver_params"];
    assert_eq!(
        (p["gamma"].as_f64(), p["alpha"].as_f64()),
        (Some(0.0001), Some(1.0))
    );
    // The override changes the run: a smaller outer step moves x less in the same iterations.
    let (_, g_set) = first_last(&tmp.path().join("set/seed0.csv"), "grad_phi_norm");
    let (_, g_def) = first_last(
        &tmp.path().join("aid-single-loop/seed0.csv"),
        "grad_phi_norm",
    );
    assert_ne!(g_set, g_def);
    // V-PBGD's step follows the smoothness of f + γ(g − g*), which grows like κ: on quadratic-κ
    // with κ = 50 the derived inner step alone (with the fixed α = 0.01) diverged.
    let out = tmp.path().join("vpbgd");
    let o = bilevel()
        .args(["run", "--problem", "quadratic", "--set", "kappa=50"])
        .args(["--solver", "v-pbgd", "--iters", "1000", "--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let last = std::fs::read_to_string(out.join("seed0.jsonl")).unwrap();
    assert_eq!(last.lines().last().unwrap(), r#"{"status":"MaxIter"}"#);
    let (g0, g) = first_last(&out.join("seed0.csv"), "grad_phi_norm");
    assert!(g < g0, "v-pbgd: ‖∇Φ‖ {g0} -> {g}");
    // L_f = 5, γ = 10, μ_g = 0.1 and the whole Hessian of g bounded by L = 5(1 + √5)/2.
    let alpha = run_json(&out)["solver_params"]["alpha"].as_f64().unwrap();
    let l = 5.0 * (1.0 + 5f64.sqrt()) / 2.0;
    let expect = 1.0 / (5.0 + 10.0 * (2.0 * l + l * l / 0.1));
    assert!(
        (alpha - expect).abs() < 1e-12 * expect,
        "{alpha} vs {expect}"
    );
}

/// MEHA runs from `bilevel run` with its `θ` and `y` steps from the problem's constants: on
/// quadratic-κ (`L_g = L_f = 1`, γ = 10, c̲ = 1) `η = 1/(L_g + 1/γ)` and `β = 1/(L_f/c̲ + L_g)`,
/// and with a fixed penalty (`p=0`) `‖∇Φ‖` falls linearly, if slowly at that `β` (measured:
/// 1.56 → 6.4e-2 in 3000 iterations, 8.6e-5 in 10000; with `β = 0.9`, 3.0e-14).
#[test]
fn meha_runs_with_its_derived_steps() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("meha");
    let o = bilevel()
        .args([
            "run",
            "--problem",
            "quadratic",
            "--solver",
            "meha",
            "--set",
            "p=0",
        ])
        .args(["--iters", "10000", "--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let p = &run_json(&out)["solver_params"];
    assert_eq!(p["eta"].as_f64(), Some(1.0 / 1.1));
    assert_eq!(p["beta"].as_f64(), Some(0.5));
    assert_eq!(p["p"].as_f64(), Some(0.0));
    let (g0, g) = first_last(&out.join("seed0.csv"), "grad_phi_norm");
    eprintln!("meha, p = 0: ‖∇Φ‖ {g0:.3e} -> {g:.3e}");
    assert!(g < 1e-4 * g0, "meha: ‖∇Φ‖ {g0} -> {g}");
}

#[test]
fn stochastic_solvers_take_a_minibatch_from_set() {
    let tmp = tempfile::tempdir().unwrap();
    // DHC on the shipped test split (the pgdqp preset draws from it only), minibatches of 32.
    let out = tmp.path().join("dhc");
    let o = bilevel()
        .args([
            "run",
            "--problem",
            "dhc-linear",
            "--solver",
            "f2sa",
            "--set",
            "batch=32",
            "--set",
            "batch.seed=5",
            "--set",
            "n=200",
            "--set",
            "val=100",
            "--set",
            "test=100",
            "--iters",
            "40",
            "--quiet",
            "--threads",
            "1",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(
        spec["solver_params"]["batch"],
        serde_json::json!({"batch_f": 32, "batch_g": 32, "seed": 5})
    );
    // The problem's own metrics are columns of the trace, at every metric evaluation.
    assert!(!out.join("seed0.extras.csv").exists());
    let trace = std::fs::read_to_string(out.join("seed0.csv")).unwrap();
    let header: Vec<&str> = trace.lines().next().unwrap().split(',').collect();
    let at = |c: &str| {
        header
            .iter()
            .position(|h| *h == c)
            .unwrap_or_else(|| panic!("{c}"))
    };
    let (f, val_loss, f1) = (at("f"), at("val_loss"), at("f1"));
    assert!(
        at("test_acc") > at("opt_gap") && at("precision") < f1,
        "{header:?}"
    );
    let rows: Vec<Vec<&str>> = trace
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(
        rows.len(),
        41,
        "metrics at every iteration of 40 (iters/100 rounds up to 1)"
    );
    for r in &rows {
        // The validation loss is the upper-level objective itself.
        assert_eq!(r[f], r[val_loss], "{r:?}");
        assert!(!r[f1].is_empty(), "{r:?}");
    }
    let last = std::fs::read_to_string(out.join("seed0.jsonl")).unwrap();
    assert_eq!(last.lines().last().unwrap(), r#"{"status":"MaxIter"}"#);
    // Each run seed draws its own samples: on the (unseeded) quadratic problem the traces of
    // two seeds differ only through the minibatch streams.
    let out = tmp.path().join("quad");
    bilevel()
        .args([
            "run",
            "--problem",
            "quadratic",
            "--solver",
            "f3sa",
            "--set",
            "dim=6",
            "--set",
            "batch.batch_f=2",
            "--set",
            "batch.batch_g=3",
            "--seeds",
            "0..2",
            "--iters",
            "20",
            "--quiet",
            "--threads",
            "1",
            "--out",
        ])
        .arg(&out)
        .assert()
        .success();
    let (a, b) = (
        csv_without_time(&out.join("seed0.csv")),
        csv_without_time(&out.join("seed1.csv")),
    );
    assert_eq!(a.len(), b.len());
    assert_ne!(a, b, "both seeds drew the same samples");
    // Bad batches name the key; deterministic solvers have no batch.
    let base = ["run", "--problem", "quadratic", "--solver", "f2sa"];
    let with = |kv: &[&str]| {
        let mut a = base.to_vec();
        for s in kv {
            a.extend(["--set", s]);
        }
        stderr_of(&a).1
    };
    let err = with(&["batch=0"]);
    assert!(err.contains("`batch`") && err.contains(">= 1"), "{err}");
    let err = with(&["batch.batch_f=4"]);
    assert!(
        err.contains("batch.batch_g") && err.contains(">= 1"),
        "{err}"
    );
    let (_, err) = stderr_of(&[
        "run",
        "--problem",
        "quadratic",
        "--solver",
        "aid-single-loop",
        "--set",
        "batch=4",
    ]);
    assert!(err.contains("unknown --set key `batch`"), "{err}");
}

#[test]
fn the_library_reproduces_a_run_as_the_readme_shows() {
    use bilevel::solvers::observe::CsvWriter;
    use bilevel::solvers::problems::QuadraticKappa;
    use bilevel::solvers::{Problem, RunConfig, Runner, registry};
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("program");
    bilevel()
        .args([
            "run",
            "--problem",
            "quadratic",
            "--solver",
            "aid-single-loop",
        ])
        .args(["--iters", "500", "--quiet", "--out"])
        .arg(&out)
        .assert()
        .success();
    // The README's code ("Writing a problem"): metrics every 5 iterations (iters/100), a
    // checkpoint every 25 (iters/20), the rows with metrics written.
    let problem = QuadraticKappa::new(10.0, 2);
    let mut params = registry::solver("aid-single-loop").unwrap().defaults();
    let derived = params.derive(&problem.smoothness().unwrap(), Some(500), &[]);
    assert_eq!(derived.len(), 3);
    let mut solver = params.for_seed(0).build().unwrap();
    let config = RunConfig {
        checkpoint_every: Some(25),
        ..RunConfig::iters(500)
    };
    let lib = tmp.path().join("library.csv");
    Runner::new(config)
        .unwrap()
        .observe(CsvWriter::new(&lib, 5))
        .run(&problem, &mut *solver)
        .unwrap();
    assert_eq!(
        csv_without_time(&lib),
        csv_without_time(&out.join("seed0.csv"))
    );
    assert_eq!(
        run_json(&out)["solver_params"],
        params.to_json(),
        "the same parameters"
    );
}

#[test]
fn singleloop_bounds_smoke_bounds_hold_and_the_floor_meets_the_lower_bound() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("bounds");
    let o = bilevel()
        .args([
            "reproduce",
            "singleloop-bounds",
            "--smoke",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    // The rows of the table under `heading`, as numbers.
    let table = |heading: &str| -> Vec<Vec<f64>> {
        report
            .split(heading)
            .nth(1)
            .unwrap_or_else(|| panic!("no {heading}:\n{report}"))
            .lines()
            .skip_while(|l| !l.starts_with("|---"))
            .skip(1)
            .take_while(|l| l.starts_with("| "))
            .map(|l| {
                l.split('|')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(|c| c.parse::<f64>().unwrap_or_else(|_| panic!("{c} in {l}")))
                    .collect()
            })
            .collect()
    };
    let aid = table("## AID (Figure 1)");
    let itd = table("## ITD (Figure 2, left)");
    assert_eq!(aid.len(), 2, "{report}");
    assert_eq!(itd.len(), 2, "{report}");
    for r in &aid {
        // κ, β printed, A at it, β run, mean, final, Theorem 1, Ji et al.
        assert!(r[2] < 0.0, "the printed step voids the bound: {r:?}");
        assert!(r[3] < r[1], "{r:?}");
        assert!(
            r[6].is_finite() && r[6] >= r[4],
            "Theorem 1 below the run: {r:?}"
        );
        assert!((r[7] / r[6] - r[0]).abs() < 1e-3 * r[0], "{r:?}");
        // The run moved: AID at Theorem 1's step descends.
        assert!(r[5] < r[4], "{r:?}");
    }
    for r in &itd {
        // κ, β, mean, final, floor, Theorem 3, its non-vanishing term, Ji et al., Theorem 4.
        assert!(
            r[5] >= r[2] && r[5] >= r[6],
            "Theorem 3 below the run: {r:?}"
        );
        assert!(r[7] > r[5], "{r:?}");
        // On quadratic-κ ITD's fixed point attains the derived lower bound M²(κ − 1)².
        let lb = 0.01 * (r[0] - 1.0).powi(2);
        assert!((r[8] - lb).abs() < 1e-3 * lb, "{r:?}");
        assert!((r[4] - lb).abs() < 1e-3 * lb, "floor {} against {lb}", r[4]);
        assert!(r[3] >= r[4] * (1.0 - 1e-9), "{r:?}");
    }
    assert!(report.contains("0.32") && report.contains("0.39"));
    for f in [
        "fig1_left_aid_vs_kappa.svg",
        "fig1_right_aid_vs_k.svg",
        "fig2_left_itd_vs_kappa.svg",
        "fig2_right_itd_scaled.svg",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
}

#[test]
fn f2sa_cleaning_smoke_runs_every_method_at_both_rates() {
    let Some(dir) = std::env::var_os("BILEVEL_DATA_DIR").filter(|d| !d.is_empty()) else {
        eprintln!("skipped: BILEVEL_DATA_DIR is not set (f2sa-cleaning needs the training split)");
        let (code, err) = stderr_of(&["reproduce", "f2sa-cleaning", "--smoke", "--quiet"]);
        assert_eq!(code, 2);
        assert!(err.contains("BILEVEL_DATA_DIR"), "{err}");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("f2sa");
    let o = bilevel()
        .env("BILEVEL_DATA_DIR", dir)
        .args(["reproduce", "f2sa-cleaning", "--smoke", "--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for p in ["0.1", "0.3"] {
        assert!(report.contains(&format!("## p = {p}")), "{report}");
        for plot in ["val_loss.svg", "val_loss_samples.svg", "f1.svg"] {
            assert!(out.join(format!("p{p}/{plot}")).is_file(), "p{p}/{plot}");
        }
        // Each run recorded its corruption rate and, for the stochastic ones, its batch.
        let run = run_json(&out.join(format!("p{p}/stocbio-sobo-batch-50")));
        assert_eq!(run["problem_params"]["p"], p);
        assert_eq!(run["solver_params"]["batch"]["batch_g"], 50);
        assert!(
            run["solver_params"]["solve"]["Neumann"].is_object(),
            "{run}"
        );
        let base = run_json(&out.join(format!("p{p}/without-bo")));
        assert_eq!(base["solver_params"]["beta"], 0.0);
        assert!(base["solver_params"].get("batch").is_none(), "{base}");
    }
    for method in [
        "| F²SA, batch 50 |",
        "| F²SA, batch 500 |",
        "| F³SA, batch 50 |",
        "| F³SA, batch 500 |",
        "| stocBiO (SOBO), batch 50 |",
        "| stocBiO (SOBO), batch 500 |",
        "| without BO (uniform weights) |",
    ] {
        assert_eq!(report.matches(method).count(), 2, "row {method}:\n{report}");
    }
    // The baseline never moves the weights: its cleaning scores stay those of x = 0, which
    // flags nothing (σ(0) = ½ is not below ½).
    let csv = std::fs::read_to_string(out.join("p0.3/without-bo/seed0.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let (mv, recall) = (
        header.iter().position(|h| *h == "mv").unwrap(),
        header.iter().position(|h| *h == "recall").unwrap(),
    );
    for line in csv.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells[mv], "0", "{line}");
        assert_eq!(cells[recall].parse::<f64>().unwrap(), 0.0, "{line}");
    }
    assert!(report.contains("Command: `bilevel reproduce f2sa-cleaning --smoke`"));
}

#[test]
fn huang_s_pl_baselines_run_side_by_side_and_reach_galet_example1_s_optimal_set() {
    // MGBiO and HJFBiO with their fixed defaults (GALET's Example 1 states no constants) on a
    // lower level with a continuum of solutions and a singular Hessian there: both end within
    // 1e-8 of the optimal set after 500 iterations (about 6e-9 and 8e-9).
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("pl");
    let o = bilevel()
        .args([
            "run",
            "--problem",
            "galet-example1",
            "--solver",
            "mgbio,hjfbio",
            "--iters",
            "500",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for solver in ["mgbio", "hjfbio"] {
        let dir = out.join(solver);
        assert_eq!(run_json(&dir)["solver"], solver);
        no_temp_files(&dir);
    }
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.contains("| mgbio | hjfbio |"), "{summary}");
    let row = summary
        .lines()
        .find(|l| l.starts_with("| opt_gap |"))
        .unwrap_or_else(|| panic!("{summary}"));
    let gaps: Vec<f64> = row
        .split('|')
        .skip(2)
        .filter_map(|c| c.split_whitespace().next()?.parse().ok())
        .collect();
    assert_eq!(gaps.len(), 2, "{row}");
    assert!(gaps.iter().all(|g| *g < 1e-8), "{row}");
}

//! Run folders never lose or mix a user's files: each case of the program's folder rules, tried
//! as a new user would.

use assert_cmd::Command;
use std::path::Path;

fn bilevel() -> Command {
    let mut c = Command::cargo_bin("bilevel").expect("the bilevel binary is built");
    c.env_remove("BILEVEL_DATA_DIR");
    c
}

/// `bilevel run` on the quadratic problem with `solver` into `out`, and its output.
fn run(out: &Path, solver: &str, extra: &[&str]) -> std::process::Output {
    bilevel()
        .args(["run", "--problem", "quadratic", "--solver", solver])
        .args([
            "--set",
            "beta=0.5",
            "--iters",
            "30",
            "--quiet",
            "--threads",
            "2",
        ])
        .args(extra)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

fn ok(o: &std::process::Output) {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn refused(o: &std::process::Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
}

#[test]
fn a_run_deletes_only_the_files_it_wrote() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let mine = ["seed-bank.csv", "notes.md", "plot_final.svg"];
    for f in mine {
        std::fs::write(out.join(f), "the user's").unwrap();
    }
    ok(&run(&out, "aid-single-loop", &["--seeds", "0..3"]));
    let m = manifest(&out);
    let listed: Vec<&str> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for f in [
        "run.json",
        "seed2.csv",
        "seed2.jsonl",
        "summary.md",
        "plot_f.svg",
    ] {
        assert!(listed.contains(&f), "{f} not in {listed:?}");
    }
    assert!(!listed.iter().any(|f| mine.contains(f)), "{listed:?}");
    // Again with fewer seeds: the earlier run's seed 2 goes, the user's files stay.
    ok(&run(&out, "aid-single-loop", &["--seeds", "0"]));
    for f in mine {
        assert_eq!(
            std::fs::read_to_string(out.join(f)).unwrap(),
            "the user's",
            "{f}"
        );
    }
    assert!(!out.join("seed2.csv").exists() && !out.join("seed1.jsonl").exists());
    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert!(summary.contains("\ngrad_phi_norm,1,"), "{summary}");
    assert!(
        !names(&out)
            .iter()
            .any(|n| n.contains(".tmp") || n.contains("lock"))
    );
}

#[test]
fn a_folder_holding_another_run_is_refused_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    ok(&run(&out, "aid-single-loop", &[]));
    std::fs::write(out.join("notes.md"), "keep").unwrap();
    let before = std::fs::read_to_string(out.join("seed0.csv")).unwrap();
    let err = refused(&run(&out, "itd-single-loop", &[]));
    assert!(
        err.contains("holds a run of aid-single-loop on quadratic")
            && err.contains("--force")
            && err.contains("another --out"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("seed0.csv")).unwrap(),
        before
    );
    assert_eq!(manifest(&out)["solver"], "aid-single-loop");
    // Another problem is refused the same way.
    let o = bilevel()
        .args([
            "run",
            "--problem",
            "lower-bound",
            "--solver",
            "aid-single-loop",
        ])
        .args(["--iters", "5", "--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(refused(&o).contains("not a run of aid-single-loop on lower-bound"));
    ok(&run(&out, "itd-single-loop", &["--force"]));
    assert_eq!(manifest(&out)["solver"], "itd-single-loop");
    assert_eq!(
        std::fs::read_to_string(out.join("notes.md")).unwrap(),
        "keep"
    );
}

#[test]
fn two_runs_into_one_folder_the_second_is_refused_and_a_killed_run_is_cleaned() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    // A long run holds the folder.
    let mut first = std::process::Command::new(env!("CARGO_BIN_EXE_bilevel"))
        .args([
            "run",
            "--problem",
            "quadratic",
            "--solver",
            "aid-single-loop",
        ])
        .args(["--time-budget", "3s", "--quiet", "--out"])
        .arg(&out)
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lock = out.join(".bilevel.lock");
    let t0 = std::time::Instant::now();
    while !lock.exists() {
        assert!(t0.elapsed().as_secs() < 20, "no lock after 20 s");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let err = refused(&run(&out, "aid-single-loop", &[]));
    assert!(err.contains("is in use by another run"), "{err}");
    assert!(first.wait().unwrap().success());
    assert!(!lock.exists(), "the lock goes with its run");
    assert!(out.join("seed0.csv").exists());
    // A killed run leaves its lock and a temporary file: the next run takes both over.
    let gone = std::process::Command::new("true").spawn().unwrap();
    let pid = gone.id();
    let mut gone = gone;
    gone.wait().unwrap();
    std::fs::write(&lock, pid.to_string()).unwrap();
    std::fs::write(out.join(".bilevel-abc123.tmp"), "half a trace").unwrap();
    ok(&run(&out, "aid-single-loop", &[]));
    assert!(!out.join(".bilevel-abc123.tmp").exists());
    assert!(!lock.exists());
}

#[test]
fn a_comparison_takes_only_the_runs_of_its_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let parent = tmp.path().join("cmp");
    ok(&run(
        &parent,
        "aid-single-loop,itd-single-loop",
        &["--seeds", "0..2"],
    ));
    assert_eq!(
        manifest(&parent)["runs"],
        serde_json::json!(["aid-single-loop", "itd-single-loop"])
    );
    // A stale sibling (a run of another solver, and one of another problem) does not enter.
    for (name, problem) in [("bome", "quadratic"), ("other", "lower-bound")] {
        let stale = parent.join(name);
        std::fs::create_dir_all(&stale).unwrap();
        let spec = std::fs::read_to_string(parent.join("aid-single-loop/run.json")).unwrap();
        let spec = spec
            .replace("\"aid-single-loop\"", &format!("\"{name}\""))
            .replace("\"quadratic\"", &format!("\"{problem}\""));
        std::fs::write(stale.join("run.json"), spec).unwrap();
        std::fs::copy(
            parent.join("aid-single-loop/seed0.csv"),
            stale.join("seed0.csv"),
        )
        .unwrap();
    }
    std::fs::remove_file(parent.join("summary.md")).unwrap();
    bilevel().arg("plot").arg(&parent).assert().success();
    let summary = std::fs::read_to_string(parent.join("summary.md")).unwrap();
    assert!(
        summary.contains("| aid-single-loop | itd-single-loop |"),
        "{summary}"
    );
    assert!(
        !summary.contains("bome") && !summary.contains("other"),
        "{summary}"
    );
    // No metric is listed twice.
    let rows: Vec<&str> = summary
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| final"))
        .map(|l| l.split('|').nth(1).unwrap())
        .collect();
    let mut unique = rows.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(rows.len(), unique.len(), "{summary}");
}

#[test]
fn traces_have_one_row_per_iteration_and_the_summary_takes_one_row() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    // Checkpoints every 7 and metrics every 5, interrupted and resumed.
    let args = ["--metrics-every", "5", "--checkpoint-every", "7"];
    let mut first = args.to_vec();
    first.extend(["--interrupt-after", "2"]);
    let o = run(&out, "aid-single-loop", &first);
    assert_eq!(o.status.code(), Some(130));
    let mut again = args.to_vec();
    again.push("--resume");
    ok(&run(&out, "aid-single-loop", &again));
    let text = std::fs::read_to_string(out.join("seed0.csv")).unwrap();
    let iters: Vec<u64> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(iters, [0, 5, 7, 10, 14, 15, 20, 21, 25, 28, 30], "{text}");
    // The final values come from the last row: iteration 30 with its gradient count.
    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert!(summary.contains("\niter,1,3e1,"), "{summary}");
    assert!(summary.contains("\ngc,1,6e1,"), "{summary}");
}

#[test]
fn sizes_and_values_from_arguments_are_checked_before_anything_is_built() {
    let (code, err) = stderr_of(&["--seeds", "0..18446744073709551615"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--seeds 0..18446744073709551615") && err.contains("at most 10000"),
        "{err}"
    );
    let (code, err) = stderr_of(&["--set", "dim=100000000000"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--set dim=100000000000") && err.contains("`dim`"),
        "{err}"
    );
    let o = bilevel()
        .args(["run", "--problem", "quadratic", "--solver", "bome"])
        .args(["--set", "inner_steps=1.5", "--quiet"])
        .output()
        .unwrap();
    let err = refused(&o);
    assert!(
        err.contains("--set inner_steps=1.5")
            && err.contains("`inner_steps`")
            && err.contains("integer"),
        "{err}"
    );
    let (code, err) = stderr_of(&["--threads", "0"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--threads 0"), "{err}");
}

/// `bilevel run` of single-loop AID on the quadratic problem with `extra`, in a fresh folder:
/// its exit code and error output.
fn stderr_of(extra: &[&str]) -> (i32, String) {
    let tmp = tempfile::tempdir().unwrap();
    let o = bilevel()
        .args([
            "run",
            "--problem",
            "quadratic",
            "--solver",
            "aid-single-loop",
            "--quiet",
        ])
        .args(extra)
        .arg("--out")
        .arg(tmp.path().join("out"))
        .output()
        .unwrap();
    assert!(!tmp.path().join("out").exists(), "nothing is written");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

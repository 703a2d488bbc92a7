//! Runner behaviour: divergence, written files, checkpoint/resume, thread-count independence,
//! parameter validation and snapshots of the first iterations of every solver.

use bilevel_solvers::algorithms::*;
use bilevel_solvers::observe::{CsvWriter, JsonlWriter};
use bilevel_solvers::problems::{NcCos, QuadraticKappa, ScSinCos};
use bilevel_solvers::{
    Checkpoint, Error, Iterate, Job, Problem, Record, RunConfig, Runner, Solver, Status, run_many,
};
use std::sync::Arc;

/// Every implemented solver, labelled, with parameters suited to a lower level of smoothness
/// `l` (the fixtures shared with the bench).
fn all_solvers(l: f64) -> Vec<(&'static str, Box<dyn Solver>)> {
    bilevel_solvers::testing::solvers(l)
}

/// Six significant digits, `-` for a missing value.
fn sig(v: Option<f64>) -> String {
    match v {
        Some(v) => format!("{v:.5e}"),
        None => "-".into(),
    }
}

fn trace_text(trace: &[Record]) -> String {
    let mut out =
        String::from("# par=Seq threads=1\niter gc mv value f g grad_phi_norm kkt opt_gap\n");
    for r in trace {
        let m = r.metrics.clone().unwrap_or_default();
        out += &format!(
            "{} {} {} {} {} {} {} {} {}\n",
            r.iter,
            r.counts.gc,
            r.counts.mv,
            r.counts.value,
            sig(m.f),
            sig(m.g),
            sig(m.grad_phi_norm),
            sig(m.kkt),
            sig(m.opt_gap)
        );
    }
    out
}

/// A snapshot case: the snapshot-name prefix, the problem and its solvers.
type Case = (
    &'static str,
    Arc<dyn Problem>,
    Vec<(&'static str, Box<dyn Solver>)>,
);

/// The snapshot cases.
fn snapshot_cases() -> Vec<Case> {
    let quad = QuadraticKappa::new(10.0, 2);
    let l = quad.l();
    vec![
        (
            "quadratic",
            Arc::new(quad),
            all_solvers(l).into_iter().chain(f2ba_solvers()).collect(),
        ),
        ("sincos", Arc::new(ScSinCos::default()), all_solvers(100.0)),
        ("nccos", Arc::new(NcCos::default()), nc_cos_solvers()),
        (
            "quadratic-minibatch",
            Arc::new(QuadraticKappa::new(10.0, 8)),
            minibatch_solvers(),
        ),
    ]
}

/// F²BA with its defaults (`z` restarted from `y`) and with a warm `z`, besides the bench's
/// fixtures.
fn f2ba_solvers() -> Vec<(&'static str, Box<dyn Solver>)> {
    let warm = F2baParams {
        z_from_y: false,
        ..F2baParams::default()
    };
    vec![
        ("f2ba", Box::new(F2ba::new(F2baParams::default()).unwrap())),
        ("f2ba-warm-z", Box::new(F2ba::new(warm).unwrap())),
    ]
}

/// SOBA, SABA, StocBiO, AmIGO, BGS, BSA, TTSA, FSLA, MRBO, VRBO, SUSTAIN, SRBA, MA-SOBA, SPABA and
/// F²BSA on minibatches of 2 of the 8 samples (the draws are part of the snapshot), with their
/// default steps.
fn minibatch_solvers() -> Vec<(&'static str, Box<dyn Solver>)> {
    let batch = Some(bilevel_solvers::sampling::Minibatch {
        batch_f: 2,
        batch_g: 2,
        seed: 1,
    });
    vec![
        (
            "soba",
            Box::new(
                Soba::new(SobaParams {
                    batch,
                    ..SobaParams::default()
                })
                .unwrap(),
            ),
        ),
        (
            "saba",
            Box::new(
                Saba::new(SabaParams {
                    batch,
                    ..SabaParams::default()
                })
                .unwrap(),
            ),
        ),
        (
            "stocbio",
            Box::new(
                Stocbio::new(StocbioParams {
                    batch,
                    ..StocbioParams::default()
                })
                .unwrap(),
            ),
        ),
        (
            "amigo",
            Box::new(
                Amigo::new(AmigoParams {
                    batch,
                    ..AmigoParams::default()
                })
                .unwrap(),
            ),
        ),
        (
            "bgs",
            Box::new(
                Bgs::new(BgsParams {
                    batch,
                    ..BgsParams::default()
                })
                .unwrap(),
            ),
        ),
        (
            "bsa",
            Box::new(
                Bsa::new(BsaParams {
                    batch,
                    ..BsaParams::default()
                })
                .unwrap(),
            ),
        ),
        (
            "ttsa",
            Box::new(
                Ttsa::new(TtsaParams {
                    batch,
                    ..TtsaParams::default()
                })
                .unwrap(),
            ),
        ),
        (
            "fsla",
            Box::new(
                Fsla::new(FslaParams {
                    batch,
                    ..FslaParams::default()
                })
                .unwrap(),
            ),
        ),
        (
            "mrbo",
            Box::new(
                Mrbo::new(MrboParams {
                    batch,
                    ..MrboParams::default()
                })
                .unwrap(),
            ),
        ),
        (
            // A restart every 4 outer iterations, so the 20 have five.
            "vrbo",
            Box::new(
                Vrbo::new(VrboParams {
                    period: 4,
                    batch,
                    ..VrboParams::default()
                })
                .unwrap(),
            ),
        ),
        (
            "sustain",
            Box::new(
                Sustain::new(SustainParams {
                    batch,
                    ..SustainParams::default()
                })
                .unwrap(),
            ),
        ),
        (
            "srba",
            Box::new(
                Srba::new(SrbaParams {
                    batch,
                    ..SrbaParams::default()
                })
                .unwrap(),
            ),
        ),
        (
            "ma-soba",
            Box::new(
                MaSoba::new(MaSobaParams {
                    batch,
                    ..MaSobaParams::default()
                })
                .unwrap(),
            ),
        ),
        (
            "spaba",
            Box::new(
                Spaba::new(SpabaParams {
                    batch,
                    ..SpabaParams::default()
                })
                .unwrap(),
            ),
        ),
        (
            "f2bsa",
            Box::new(
                F2ba::stochastic(F2bsaParams {
                    f2ba: F2baParams {
                        batch,
                        ..F2bsaParams::default().f2ba
                    },
                })
                .unwrap(),
            ),
        ),
    ]
}

/// `trace_text` plus every scalar a step reports, in order.
fn trace_text_with_scalars(trace: &[Record]) -> String {
    let mut out = trace_text(trace);
    out += "iter scalars\n";
    for r in trace {
        let s: Vec<String> = r
            .scalars
            .iter()
            .map(|(k, v)| format!("{k}={}", sig(Some(*v))))
            .collect();
        out += &format!("{} {}\n", r.iter, s.join(" "));
    }
    out
}

/// PGD-QP, GALET and BOME with the nc-cos steps of `tests/problems.rs` (lower-level curvature
/// up to about 1000).
fn nc_cos_solvers() -> Vec<(&'static str, Box<dyn Solver>)> {
    let l = 1000.0;
    let solvers: Vec<Box<dyn Solver>> = vec![
        Box::new(PgdQp::new(PgdQpParams::theorem_4_2_max_step(1.0, 100.0, 4.0e4)).unwrap()),
        Box::new(
            Galet::new(GaletParams {
                alpha: 0.1 / l,
                beta: 1.0 / l,
                rho: 1.0 / (l * l),
                n_inner: 5,
                t_inner: 5,
                ..GaletParams::default()
            })
            .unwrap(),
        ),
        Box::new(
            Bome::new(BomeParams {
                xi: 0.01 / l,
                inner_step: 1.0 / l,
                ..BomeParams::default()
            })
            .unwrap(),
        ),
    ];
    ["pgd-qp-rho-grad-sq", "galet", "bome"]
        .into_iter()
        .zip(solvers)
        .collect()
}

/// `trace_text` plus the step's search-direction norm (`delta_norm` or GALET's `dx_norm`),
/// the nc-cos measure.
fn trace_text_with_direction(trace: &[Record]) -> String {
    let mut out = trace_text(trace);
    out += "iter direction_norm\n";
    for r in trace {
        let d = r
            .scalars
            .iter()
            .find(|(k, _)| *k == "delta_norm" || *k == "dx_norm")
            .map(|(_, v)| *v);
        out += &format!("{} {}\n", r.iter, sig(d));
    }
    out
}

fn snapshot_text(pname: &str, trace: &[Record]) -> String {
    if pname == "nccos" {
        trace_text_with_direction(trace)
    } else if pname == "quadratic-minibatch" {
        trace_text_with_scalars(trace)
    } else {
        trace_text(trace)
    }
}

#[test]
fn snapshots_first_20_iterations() {
    for (pname, p, solvers) in snapshot_cases() {
        for (label, mut s) in solvers {
            let r = Runner::new(RunConfig::iters(20))
                .unwrap()
                .run(&*p, &mut *s)
                .unwrap();
            let name = format!("{pname}__{label}");
            insta::assert_snapshot!(name, snapshot_text(pname, &r.trace));
        }
    }
}

#[test]
fn snapshot_text_is_the_same_on_one_and_two_threads() {
    let texts = |threads| {
        let mut jobs = Vec::new();
        let mut names = Vec::new();
        for (pname, p, solvers) in snapshot_cases() {
            for (label, s) in solvers {
                names.push(pname);
                jobs.push(Job {
                    label: format!("{pname}__{label}"),
                    problem: p.clone(),
                    solver: s,
                    config: RunConfig::iters(20),
                });
            }
        }
        run_many(jobs, threads)
            .unwrap()
            .into_iter()
            .zip(names)
            .map(|((label, r), pname)| (label, snapshot_text(pname, &r.unwrap().trace)))
            .collect::<Vec<_>>()
    };
    let (one, two) = (texts(1), texts(2));
    assert_eq!(one.len(), two.len());
    for ((la, ta), (lb, tb)) in one.iter().zip(&two) {
        assert_eq!(la, lb);
        assert_eq!(ta, tb, "{la}");
    }
}

#[test]
fn wall_time_budget_stops_the_run() {
    let p = ScSinCos::default();
    let mut s = SingleLoopAid::new(SingleLoopAidParams::for_lipschitz(100.0, 0.05)).unwrap();
    let r = Runner::new(RunConfig {
        time_budget: Some(std::time::Duration::from_millis(20)),
        ..RunConfig::iters(u64::MAX)
    })
    .unwrap()
    .run(&p, &mut s)
    .unwrap();
    assert_eq!(r.status, Status::TimeBudget);
    assert!(r.checkpoint.is_some());
    assert_eq!(r.trace.last().unwrap().iter, r.iter);
}

/// An observer that takes 20 ms per record, standing in for costly metrics or slow output.
#[derive(Debug)]
struct Slow;

impl bilevel_solvers::observe::Observe for Slow {
    fn on_record(&mut self, _rec: &Record, _it: &Iterate) -> std::io::Result<()> {
        std::thread::sleep(std::time::Duration::from_millis(20));
        Ok(())
    }
}

#[test]
fn time_budget_leaves_out_metrics_and_observers() {
    // 15 iterations take about 0.3 s of observer time but microseconds of solver time, so a
    // 100 ms budget must not end the run; the recorded elapsed times stay far below 0.3 s.
    let p = ScSinCos::default();
    let mut s = SingleLoopAid::new(SingleLoopAidParams::for_lipschitz(100.0, 0.05)).unwrap();
    let r = Runner::new(RunConfig {
        time_budget: Some(std::time::Duration::from_millis(100)),
        ..RunConfig::iters(15)
    })
    .unwrap()
    .observe(Slow)
    .run(&p, &mut s)
    .unwrap();
    assert_eq!(r.status, Status::MaxIter);
    assert!(
        r.trace.last().unwrap().elapsed < 0.1,
        "{:?}",
        r.trace.last()
    );
}

#[test]
fn huge_step_diverges_and_files_hold_no_nan() {
    let dir = std::env::temp_dir().join(format!("bilevel-div-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (csv, jsonl) = (dir.join("trace.csv"), dir.join("trace.jsonl"));
    let p = QuadraticKappa::new(10.0, 2);
    let mut s = SingleLoopAid::new(SingleLoopAidParams::for_lipschitz(p.l(), 1e6)).unwrap();
    let r = Runner::new(RunConfig {
        divergence_bound: f64::INFINITY,
        ..RunConfig::iters(1000)
    })
    .unwrap()
    .observe(CsvWriter::new(&csv, 1))
    .observe(JsonlWriter::new(&jsonl, 1))
    .run(&p, &mut s)
    .unwrap();
    assert!(
        matches!(r.status, Status::Diverged { .. }),
        "{:?}",
        r.status
    );
    assert!(r.iterate.x.col_as_slice(0).iter().all(|v| v.is_finite()));
    assert!(r.checkpoint.is_none());
    for f in [&csv, &jsonl] {
        let text = std::fs::read_to_string(f).unwrap();
        let low = text.to_lowercase();
        assert!(
            !low.contains("nan") && !low.contains("inf"),
            "{}",
            f.display()
        );
        assert!(text.lines().count() > 2);
    }
    let last = std::fs::read_to_string(&jsonl).unwrap();
    assert!(last.lines().last().unwrap().contains("Diverged"));
    // No temporary files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
    // With the default bound the growth is caught before any overflow.
    let mut s = SingleLoopAid::new(SingleLoopAidParams::for_lipschitz(p.l(), 1e6)).unwrap();
    let r = Runner::new(RunConfig::iters(1000))
        .unwrap()
        .run(&p, &mut s)
        .unwrap();
    assert!(
        matches!(r.status, Status::Diverged { .. }),
        "{:?}",
        r.status
    );
}

#[test]
fn csv_header_names_are_unique_when_a_scalar_shares_a_metric_name() {
    // PGD-QP reports the `h` it stepped from; `h` is also a metric column.
    let dir = std::env::temp_dir().join(format!("bilevel-csv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("trace.csv");
    let p = QuadraticKappa::new(2.0, 2);
    let mut s = PgdQp::new(PgdQpParams::theorem_4_2(0.1, 0.1)).unwrap();
    Runner::new(RunConfig::iters(5))
        .unwrap()
        .observe(CsvWriter::new(&csv, 1))
        .run(&p, &mut s)
        .unwrap();
    let text = std::fs::read_to_string(&csv).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let mut sorted = header.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), header.len(), "{header:?}");
    assert!(
        header.contains(&"h") && header.contains(&"step_h"),
        "{header:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn same(a: &[Record], b: &[Record]) {
    assert_eq!(a.len(), b.len());
    for (ra, rb) in a.iter().zip(b) {
        assert_eq!(ra.iter, rb.iter);
        assert_eq!(ra.counts, rb.counts);
        assert_eq!(ra.metrics, rb.metrics);
        let bits = |r: &Record| {
            r.scalars
                .iter()
                .map(|(k, v)| (k.clone(), v.to_bits()))
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(ra), bits(rb));
    }
}

#[test]
fn checkpoint_resume_is_bit_identical() {
    let p = ScSinCos::default();
    for ((label, mut a), (_, mut b)) in all_solvers(100.0).into_iter().zip(all_solvers(100.0)) {
        let full = Runner::new(RunConfig::iters(30))
            .unwrap()
            .run(&p, &mut *a)
            .unwrap();
        let half = Runner::new(RunConfig::iters(12))
            .unwrap()
            .run(&p, &mut *b)
            .unwrap();
        let json = half.checkpoint.unwrap().to_json().unwrap();
        let ck = Checkpoint::from_json(&json).unwrap();
        let (_, mut fresh) = all_solvers(100.0)
            .into_iter()
            .find(|(l, _)| *l == label)
            .unwrap();
        let rest = Runner::new(RunConfig::iters(30))
            .unwrap()
            .resume(&p, &mut *fresh, &ck)
            .unwrap();
        let bits = |m: &bilevel_linalg::Mat<f64>| {
            m.col_as_slice(0)
                .iter()
                .map(|v| v.to_bits())
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(&full.iterate.x), bits(&rest.iterate.x), "{label}");
        assert_eq!(bits(&full.iterate.y), bits(&rest.iterate.y), "{label}");
        assert_eq!(full.counts, rest.counts);
        same(&full.trace[13..], &rest.trace);
        assert_eq!(without_time(full.checkpoint), without_time(rest.checkpoint));
    }
}

/// A checkpoint without its wall time, which no two runs share.
fn without_time(ck: Option<Checkpoint>) -> Option<Checkpoint> {
    ck.map(|c| Checkpoint { elapsed: 0.0, ..c })
}

/// Keeps every checkpoint it is handed and stops the run (through its signal) at the `n`-th.
#[derive(Debug)]
struct StopAt {
    n: usize,
    stop: bilevel_solvers::Stop,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Checkpoint>>>,
}

impl bilevel_solvers::observe::Observe for StopAt {
    fn on_record(&mut self, _rec: &Record, _it: &Iterate) -> std::io::Result<()> {
        Ok(())
    }
    fn on_checkpoint(&mut self, ck: &Checkpoint) -> std::io::Result<()> {
        let mut seen = self.seen.lock().unwrap();
        seen.push(ck.clone());
        if seen.len() == self.n {
            self.stop.request();
        }
        Ok(())
    }
}

#[test]
fn the_runner_checkpoints_stops_on_its_signal_and_resumes_to_the_same_end() {
    let p = QuadraticKappa::new(10.0, 3);
    let cfg = RunConfig {
        checkpoint_every: Some(7),
        metrics_every: 5,
        keep: bilevel_solvers::Keep::Metrics,
        ..RunConfig::iters(40)
    };
    let solver = || SingleLoopAid::new(SingleLoopAidParams::for_lipschitz(p.l(), 0.1)).unwrap();
    let whole = Runner::new(cfg.clone())
        .unwrap()
        .run(&p, &mut solver())
        .unwrap();
    // Metrics at multiples of 5 and of 7, and at the last iteration; the trace keeps exactly
    // those records.
    let iters: Vec<u64> = whole.trace.iter().map(|r| r.iter).collect();
    assert_eq!(
        iters,
        [0, 5, 7, 10, 14, 15, 20, 21, 25, 28, 30, 35, 40],
        "{iters:?}"
    );
    assert!(whole.trace.iter().all(|r| r.metrics.is_some()));
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let parent = bilevel_solvers::Stop::new();
    let stop = parent.child();
    let stopped = Runner::new(cfg.clone())
        .unwrap()
        .with_stop(stop.clone())
        .observe(StopAt {
            n: 2,
            stop,
            seen: seen.clone(),
        })
        .run(&p, &mut solver())
        .unwrap();
    assert_eq!(stopped.status, Status::Stopped);
    assert!(
        !parent.requested(),
        "a child's request does not reach its parent"
    );
    let cks = seen.lock().unwrap().clone();
    assert_eq!(cks.iter().map(|c| c.iter).collect::<Vec<_>>(), [7, 14]);
    assert_eq!(stopped.iter, 14);
    let rest = Runner::new(cfg)
        .unwrap()
        .resume(&p, &mut solver(), &cks[1])
        .unwrap();
    assert_eq!(rest.status, Status::MaxIter);
    same(&whole.trace[5..], &rest.trace);
    assert_eq!(
        without_time(whole.checkpoint),
        without_time(rest.checkpoint)
    );
    // A parent's request stops its children before their first step.
    let parent = bilevel_solvers::Stop::new();
    parent.request();
    let r = Runner::new(RunConfig::iters(40))
        .unwrap()
        .with_stop(parent.child())
        .run(&p, &mut solver())
        .unwrap();
    assert_eq!((r.status, r.iter), (Status::Stopped, 0));
}

#[test]
fn a_time_budget_counts_the_time_before_a_resume_and_the_last_record_has_metrics() {
    let p = ScSinCos::default();
    let solver = || SingleLoopAid::new(SingleLoopAidParams::for_lipschitz(100.0, 0.05)).unwrap();
    let budget = std::time::Duration::from_millis(30);
    let cfg = RunConfig {
        time_budget: Some(budget),
        metrics_every: 1_000_000,
        keep: bilevel_solvers::Keep::Metrics,
        ..RunConfig::iters(u64::MAX)
    };
    let r = Runner::new(cfg.clone())
        .unwrap()
        .run(&p, &mut solver())
        .unwrap();
    assert_eq!(r.status, Status::TimeBudget);
    let last = r.trace.last().unwrap();
    assert_eq!(last.iter, r.iter);
    assert!(
        last.metrics.is_some(),
        "the final record carries the metrics"
    );
    assert_eq!(r.trace.len(), 2, "the start and the end");
    // A checkpoint that used the whole budget resumes into an immediate stop.
    let ck = r.checkpoint.unwrap();
    assert!(ck.elapsed >= budget.as_secs_f64());
    let again = Runner::new(cfg)
        .unwrap()
        .resume(&p, &mut solver(), &ck)
        .unwrap();
    assert_eq!((again.status, again.iter), (Status::TimeBudget, ck.iter));
}

fn jobs() -> Vec<Job> {
    let mut jobs = Vec::new();
    for seed in 0..3 {
        let p: Arc<dyn Problem> = Arc::new(ScSinCos::new(8, seed));
        for (label, s) in all_solvers(100.0) {
            jobs.push(Job {
                label: format!("{label}/{seed}"),
                problem: p.clone(),
                solver: s,
                config: RunConfig::iters(15),
            });
        }
    }
    jobs
}

#[test]
fn one_and_two_threads_give_identical_results() {
    let a = run_many(jobs(), 1).unwrap();
    let b = run_many(jobs(), 2).unwrap();
    assert_eq!(a.len(), b.len());
    for ((la, ra), (lb, rb)) in a.iter().zip(&b) {
        assert_eq!(la, lb);
        let (ra, rb) = (ra.as_ref().unwrap(), rb.as_ref().unwrap());
        same(&ra.trace, &rb.trace);
        assert_eq!(
            without_time(ra.checkpoint.clone()),
            without_time(rb.checkpoint.clone())
        );
    }
}

#[test]
fn invalid_parameters_name_the_parameter_and_range() {
    let e = SingleLoopAid::new(SingleLoopAidParams {
        beta: -1.0,
        ..SingleLoopAidParams::default()
    })
    .unwrap_err();
    assert!(matches!(e, Error::InvalidParameter { name: "beta", .. }));
    assert!(e.to_string().contains("beta") && e.to_string().contains("> 0"));
    let e = F2sa::new(F2saParams {
        schedule: PenaltySchedule {
            c: 0.9,
            a: 0.5,
            ..PenaltySchedule::default()
        },
        ..F2saParams::default()
    })
    .unwrap_err();
    assert!(
        e.to_string().contains("`c`") && e.to_string().contains("[0, a]"),
        "{e}"
    );
    let e = Rhg::new(RhgParams {
        truncate: Some(50),
        ..RhgParams::default()
    })
    .unwrap_err();
    assert!(e.to_string().contains("truncate"), "{e}");
    for z_ratio in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let e = ProxF2saTwoLoop::new(ProxF2saParams {
            z_ratio,
            ..ProxF2saParams::default()
        })
        .unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidParameter {
                    name: "z_ratio",
                    ..
                }
            ),
            "{e}"
        );
        let e = ProxF2saMomentum::new(ProxF2saMomentumParams {
            z_ratio,
            ..ProxF2saMomentumParams::default()
        })
        .unwrap_err();
        assert!(
            e.to_string().contains("`z_ratio`") && e.to_string().contains("> 0"),
            "{e}"
        );
    }
    assert!(
        Runner::new(RunConfig {
            metrics_every: 0,
            ..RunConfig::default()
        })
        .is_err()
    );
}

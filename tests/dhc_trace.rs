//! Pinned traces on real data: solvers on a small data hyper-cleaning task built from the MNIST
//! test split the repository ships (`data/mnist`), with the linear model and an MLP. MNIST's
//! pixels are four in five zero, so these oracles run through the streamed sparse data products;
//! a change to those kernels, to the streaming or to the problem shows here as a changed
//! snapshot, which needs its reason in the commit message.

use bilevel::datasets::Split;
use bilevel::datasets::mnist::load_mnist;
use bilevel::solvers::algorithms::{F2sa, F2saParams, SingleLoopAid, SingleLoopAidParams};
use bilevel::solvers::problems::{Activation, Dhc, DhcData, DhcModel};
use bilevel::solvers::{Job, Problem, Record, RunConfig, Solver, run_many};
use std::path::Path;
use std::sync::Arc;

/// Training, validation and test samples of the task (consecutive images of the test split).
const TRAIN: usize = 1200;
const VAL: usize = 300;
const TEST: usize = 300;

/// A hyper-cleaning task on the first images of the shipped test split: every third training
/// label is moved to the next class (a fixed corruption, no random draw), the validation and
/// test labels are clean.
fn task(model: DhcModel, tag: &str) -> Arc<dyn Problem> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    let images = load_mnist(Some(&dir), Split::Test).expect("the shipped MNIST test split loads");
    let range = |a: usize, b: usize| (a..b).collect::<Vec<_>>();
    let (tr, va, te) = (
        range(0, TRAIN),
        range(TRAIN, TRAIN + VAL),
        range(TRAIN + VAL, TRAIN + VAL + TEST),
    );
    let labels =
        |idx: &[usize]| -> Vec<u32> { idx.iter().map(|&i| u32::from(images.label(i))).collect() };
    let mut train_labels = labels(&tr);
    for (k, l) in train_labels.iter_mut().enumerate() {
        if k % 3 == 0 {
            *l = (*l + 1) % 10;
        }
    }
    let data = DhcData {
        train: Arc::new(images.feature_columns(&tr, false)),
        train_labels,
        val: Arc::new(images.feature_columns(&va, false)),
        val_labels: labels(&va),
        test: Arc::new(images.feature_columns(&te, false)),
        test_labels: labels(&te),
        classes: 10,
    };
    Arc::new(Dhc::new(Arc::new(data), model, 1e-3, tag, 0))
}

/// The cases: problem label, problem, and solver label with a solver factory.
type Case = (
    &'static str,
    Arc<dyn Problem>,
    &'static str,
    fn() -> Box<dyn Solver>,
);

fn cases() -> Vec<Case> {
    let linear = task(DhcModel::Linear, "linear");
    let mlp = task(
        DhcModel::Mlp {
            hidden: 20,
            activation: Activation::Relu,
        },
        "mlp20",
    );
    let aid: fn() -> Box<dyn Solver> = || {
        let p = SingleLoopAidParams {
            alpha: 0.5,
            eta: 0.5,
            beta: 10.0,
        };
        Box::new(SingleLoopAid::new(p).unwrap())
    };
    let f2sa: fn() -> Box<dyn Solver> = || Box::new(F2sa::new(F2saParams::default()).unwrap());
    vec![
        ("linear", linear.clone(), "aid-single-loop", aid),
        ("linear", linear, "f2sa", f2sa),
        ("mlp20", mlp, "aid-single-loop", aid),
    ]
}

/// Iterations, oracle counts and every metric of each record, each value in full (the shortest
/// text that reads back to the same bits), so that any change of rounding shows.
fn trace_text(trace: &[Record]) -> String {
    let mut out = String::new();
    for r in trace {
        let m = r.metrics.clone().unwrap_or_default();
        let mut line = format!("{} gc={} mv={}", r.iter, r.counts.gc, r.counts.mv);
        for (k, v) in [("f", m.f), ("g", m.g)] {
            if let Some(v) = v {
                line += &format!(" {k}={v:?}");
            }
        }
        for (k, v) in &m.extra {
            line += &format!(" {k}={v:?}");
        }
        out += &line;
        out += "\n";
    }
    out
}

/// Every case's first iterations, on `threads` threads (three jobs: at two threads each job's
/// oracles run on its own thread, at four the idle threads join the streamed products).
fn texts(threads: usize) -> Vec<(String, String)> {
    let jobs = cases()
        .into_iter()
        .map(|(pname, problem, sname, solver)| Job {
            label: format!("{pname}__{sname}"),
            problem,
            solver: solver(),
            config: RunConfig::iters(8),
        })
        .collect();
    run_many(jobs, threads)
        .unwrap()
        .into_iter()
        .map(|(label, r)| (label, trace_text(&r.unwrap().trace)))
        .collect()
}

#[test]
fn snapshots_of_the_first_iterations_on_mnist() {
    for (label, text) in texts(1) {
        insta::assert_snapshot!(label, text);
    }
}

#[test]
fn mnist_traces_are_the_same_on_one_two_and_four_threads() {
    let one = texts(1);
    for threads in [2, 4] {
        let other = texts(threads);
        assert_eq!(one.len(), other.len());
        for ((la, ta), (lb, tb)) in one.iter().zip(&other) {
            assert_eq!(la, lb);
            assert_eq!(ta, tb, "{la} at {threads} threads");
        }
    }
}

//! The benchmark workloads: the library's own problems, at the sizes and starting points of the
//! peer harness (`../shared/peers/hvp_bench.py`), shared by the `cost_table` example and the
//! criterion benches. Every measurement goes through [`Oracle`] and the real solvers' `step`, so
//! it is what a user of the library gets.
//!
//! - **A**: data hyper-cleaning with softmax regression, [`Dhc`] with `λ = 1e-3` on the first
//!   5000 MNIST training images (784 features, no bias, 10 classes, a quarter of the labels
//!   replaced by a wrong class); `f` on images 5000..7499.
//! - **B50, B256**: the same with an MLP 784-h-10 (ReLU, biases).
//! - **C20, C2000**: [`ScSinCos`] on the harness's data: `H = N(0, 1)/√n`, `c, d = N(0, 1)/√n`
//!   from numpy's `default_rng(2)` ([`npy`]).
//! - Starting points `x, y` and the direction `v` as the harness draws them (`default_rng(1)`):
//!   `x = 0`, `y, v = 0.01·N(0, 1)` for A; He-scaled weights and zero biases for B; standard
//!   normal `x, y, v` for C.
//!
//! The harness reads MNIST's training split; without it (no `--data-dir` and no
//! `BILEVEL_DATA_DIR`) the shipped test split stands in, with the same shapes.
#![allow(dead_code)]

pub mod npy;

use bilevel::ad::Evaluator;
use bilevel::datasets::mnist::load_mnist;
use bilevel::datasets::{Dataset, Split};
use bilevel::linalg::{Mat, Par};
use bilevel::solvers::algorithms::{SingleLoopAid, SingleLoopAidParams};
use bilevel::solvers::problems::{Activation, Dhc, DhcData, DhcModel, ScSinCos};
use bilevel::solvers::{Iterate, Oracle, Problem, Solver, vecops};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Training samples of the data workloads.
pub const N_TRAIN: usize = 5000;
/// Validation samples.
pub const N_VAL: usize = 2500;
/// Step sizes of the harness's single-loop step (`ALPHA, BETA, GAMMA`).
pub const STEPS: (f64, f64, f64) = (0.05, 0.05, 0.5);

/// A problem with the point and direction its oracles are timed at.
pub struct Workload {
    /// The harness's name: `A`, `B50`, `B256`, `C20`, `C2000`.
    pub name: String,
    /// What it is, for tables.
    pub label: String,
    pub problem: Box<dyn Problem>,
    pub x: Mat<f64>,
    pub y: Mat<f64>,
    pub v: Mat<f64>,
    /// The outer step of the single-loop step (the harness scales it by 0.01 on C).
    pub gamma: f64,
}

/// MNIST images for the data workloads, and where they came from.
pub struct Images {
    pub set: Dataset,
    pub source: String,
    /// The data workloads' features and labels, built once for all of them.
    dhc: std::sync::OnceLock<Arc<DhcData>>,
}

/// A pool of `threads` threads (at least one) and the parallelism the oracles take inside it:
/// sequential for one thread.
pub fn pool(threads: usize) -> (rayon::ThreadPool, Par) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .expect("thread pool");
    let par = if threads <= 1 {
        Par::Seq
    } else {
        Par::rayon(0)
    };
    (pool, par)
}

/// MNIST's training split from `dir` (or `BILEVEL_DATA_DIR`), else the shipped test split.
pub fn images(dir: Option<&Path>) -> Images {
    let named = dir.is_some() || std::env::var_os(bilevel::datasets::mnist::DATA_DIR_ENV).is_some();
    if named {
        match load_mnist(dir, Split::Train) {
            Ok(set) => {
                return Images {
                    set,
                    source: "MNIST training split".into(),
                    dhc: Default::default(),
                };
            }
            Err(e) => {
                eprintln!("cost: no MNIST training split ({e}); using the shipped test split")
            }
        }
    }
    Images {
        set: load_mnist(None, Split::Test)
            .expect("the shipped MNIST test split (data/mnist) loads"),
        source: "shipped MNIST test split (the harness uses the training split)".into(),
        dhc: Default::default(),
    }
}

/// Features and labels of the data workloads: samples `0..5000` train, `5000..7500` validate
/// (and stand in for the test set, which no oracle reads).
fn dhc_data(img: &Images) -> Arc<DhcData> {
    Arc::clone(img.dhc.get_or_init(|| build_dhc_data(&img.set)))
}

fn build_dhc_data(set: &Dataset) -> Arc<DhcData> {
    assert!(
        set.len() >= N_TRAIN + N_VAL,
        "the data workloads need {} images",
        N_TRAIN + N_VAL
    );
    let tr: Vec<usize> = (0..N_TRAIN).collect();
    let va: Vec<usize> = (N_TRAIN..N_TRAIN + N_VAL).collect();
    let labels = |idx: &[usize]| idx.iter().map(|&i| u32::from(set.label(i))).collect();
    let mut train_labels: Vec<u32> = labels(&tr);
    // A quarter of the training labels replaced by a wrong class (fixed seed).
    let mut g = npy::Pcg64::new(0);
    for l in &mut train_labels {
        if g.next_f64() < 0.25 {
            *l = (*l + 1 + (g.next_u64() % 9) as u32) % 10;
        }
    }
    let val = Arc::new(set.feature_columns(&va, false));
    let val_labels: Vec<u32> = labels(&va);
    Arc::new(DhcData {
        train: Arc::new(set.feature_columns(&tr, false)),
        train_labels,
        val: Arc::clone(&val),
        val_labels: val_labels.clone(),
        test: val,
        test_labels: val_labels,
        classes: 10,
    })
}

/// numpy draws of a `rows × cols` array (row-major order) scaled by `s`, packed column-major
/// into a vector, as the library packs a matrix parameter.
fn packed(n: &mut npy::Normal, rows: usize, cols: usize, s: f64) -> Vec<f64> {
    let a = n.take(rows * cols);
    let mut out = vec![0.0; rows * cols];
    for i in 0..rows {
        for j in 0..cols {
            out[i + j * rows] = s * a[i * cols + j];
        }
    }
    out
}

/// Workload A: softmax regression.
pub fn a(img: &Images) -> Workload {
    let data = dhc_data(img);
    let (d, k) = (data.train.nrows(), data.classes);
    let mut n = npy::Normal::new(1);
    let y = packed(&mut n, d, k, 0.01);
    let v = packed(&mut n, d, k, 0.01);
    Workload {
        name: "A".into(),
        label: format!("A dhc-linear {N_TRAIN}x{d}, {k} classes"),
        problem: Box::new(Dhc::new(data, DhcModel::Linear, 1e-3, "linear", 0)),
        x: Mat::zeros(N_TRAIN, 1),
        y: vecops::from_slice(&y),
        v: vecops::from_slice(&v),
        gamma: STEPS.2,
    }
}

/// Workload B`h`: an MLP 784-h-10 with ReLU and biases.
pub fn b(img: &Images, h: usize) -> Workload {
    let data = dhc_data(img);
    let (d, k) = (data.train.nrows(), data.classes);
    let mut n = npy::Normal::new(1);
    let mut y = packed(&mut n, d, h, (2.0 / d as f64).sqrt());
    y.extend(std::iter::repeat_n(0.0, h));
    y.extend(packed(&mut n, h, k, (1.0 / h as f64).sqrt()));
    y.extend(std::iter::repeat_n(0.0, k));
    let mut v = packed(&mut n, d, h, 0.01);
    v.extend(n.take(h).iter().map(|z| 0.01 * z));
    v.extend(packed(&mut n, h, k, 0.01));
    v.extend(n.take(k).iter().map(|z| 0.01 * z));
    let model = DhcModel::Mlp {
        hidden: h,
        activation: Activation::Relu,
    };
    Workload {
        name: format!("B{h}"),
        label: format!("B{h} dhc-mlp {N_TRAIN}x{d}-{h}-{k}"),
        problem: Box::new(Dhc::new(data, model, 1e-3, format!("mlp{h}"), 0)),
        x: Mat::zeros(N_TRAIN, 1),
        y: vecops::from_slice(&y),
        v: vecops::from_slice(&v),
        gamma: STEPS.2,
    }
}

/// Workload C`n`: the synthetic sin/cos pair on the harness's `H, c, d`.
pub fn c(n: usize) -> Workload {
    let mut g = npy::Normal::new(2);
    let s = 1.0 / (n as f64).sqrt();
    let h = g.take(n * n);
    let h = Mat::from_fn(n, n, |i, j| s * h[i * n + j]);
    let cv = vecops::from_slice(&g.take(n).iter().map(|z| s * z).collect::<Vec<_>>());
    let dv = vecops::from_slice(&g.take(n).iter().map(|z| s * z).collect::<Vec<_>>());
    let mut r = npy::Normal::new(1);
    let x = vecops::from_slice(&r.take(n));
    let y = vecops::from_slice(&r.take(n));
    let v = vecops::from_slice(&r.take(n));
    let problem = ScSinCos::from_parts(
        &format!("harness-n{n}"),
        h.as_ref(),
        cv.as_ref(),
        dv.as_ref(),
        x.as_ref(),
    );
    Workload {
        name: format!("C{n}"),
        label: format!("C{n} sincos n=m={n}"),
        problem: Box::new(problem),
        x,
        y,
        v,
        gamma: 0.01 * STEPS.2,
    }
}

/// The named workloads (`A`, `B50`, `B256`, `C20`, `C2000`), building the data once.
pub fn build(names: &[&str], data_dir: Option<&Path>) -> (Vec<Workload>, Option<String>) {
    let needs_images = names
        .iter()
        .any(|n| n.starts_with('A') || n.starts_with('B'));
    let img = needs_images.then(|| images(data_dir));
    let mut out = Vec::new();
    for &name in names {
        let w = match name {
            "A" => a(img.as_ref().unwrap()),
            _ if name.starts_with('B') => {
                let h = name[1..]
                    .parse()
                    .unwrap_or_else(|_| panic!("bad workload {name}"));
                b(img.as_ref().unwrap(), h)
            }
            _ if name.starts_with('C') => c(name[1..]
                .parse()
                .unwrap_or_else(|_| panic!("bad workload {name}"))),
            _ => panic!("unknown workload {name} (A, B50, B256, C20, C2000)"),
        };
        out.push(w);
    }
    (out, img.map(|i| i.source))
}

/// The measured operations, named as the peer harness names them (plus `hvp_yy` and
/// `aid_step`).
pub const OPS: [&str; 9] = [
    "g", "grad_g", "hvp", "hvp_yy", "mixed", "grad_f", "hvp_f", "step", "aid_step",
];

/// One workload's oracles and single-loop steps through the library's [`Oracle`] and
/// [`SingleLoopAid`], callable repeatedly.
pub struct Bench<'a> {
    w: &'a Workload,
    o: Oracle<'a>,
    ev: Evaluator,
    /// The harness's step: its state, fed back.
    step: (Mat<f64>, Mat<f64>, Mat<f64>),
    aid: SingleLoopAid,
    it: Iterate,
    k: u64,
}

impl<'a> Bench<'a> {
    /// Oracles of `w` whose evaluations use `par`.
    pub fn new(w: &'a Workload, par: Par) -> Self {
        let mut o = Oracle::with_par(&*w.problem, par);
        let params = SingleLoopAidParams {
            alpha: STEPS.0,
            eta: STEPS.1,
            beta: w.gamma,
        };
        let mut aid = SingleLoopAid::new(params).expect("valid steps");
        let mut it = Iterate {
            x: w.x.clone(),
            y: w.y.clone(),
        };
        aid.init(&mut o, &mut it).expect("init");
        Bench {
            w,
            o,
            ev: Evaluator::with_par(par),
            step: (w.x.clone(), w.y.clone(), w.v.clone()),
            aid,
            it,
            k: 0,
        }
    }

    /// Whether `op` applies to the workload (`hvp_f` is measured on C only, as the harness
    /// does).
    pub fn has(&self, op: &str) -> bool {
        op != "hvp_f" || self.w.name.starts_with('C')
    }

    /// Run `op` once.
    pub fn call(&mut self, op: &str) {
        let w = self.w;
        let (x, y, v) = (&w.x, &w.y, &w.v);
        let o = &mut self.o;
        match op {
            "g" => {
                std::hint::black_box(o.g(x, y));
            }
            "grad_g" => drop(o.grad_g(x, y)),
            "hvp" => drop(o.grad_hvp_g(x, y, v)),
            "hvp_yy" => drop(o.hvp_yy_g(x, y, v)),
            "mixed" => drop(o.jvp_xy_g(x, y, v)),
            "grad_f" => drop(o.grad_f(x, y)),
            "hvp_f" => {
                let p = &*w.problem;
                drop(self.ev.hvp2(
                    |t, a, b| p.f(t, a, b),
                    x.as_ref(),
                    y.as_ref(),
                    None,
                    Some(v.as_ref()),
                ));
            }
            "step" => {
                // y −= α∇y g; v −= β(∇²yy g·v − ∇y f); x −= γ(∇x f − ∇²xy g·v), all at one point.
                let (sx, sy, sv) = &mut self.step;
                let (gg, cr) = o.grad_hvp_g(sx, sy, sv);
                let gf = o.grad_f(sx, sy);
                vecops::axpy(sy, -STEPS.0, &gg.y);
                vecops::axpy(sv, -STEPS.1, &cr.yy);
                vecops::axpy(sv, STEPS.1, &gf.y);
                vecops::axpy(sx, -w.gamma, &gf.x);
                vecops::axpy(sx, w.gamma, &cr.xy);
            }
            "aid_step" => {
                self.aid.step(o, &mut self.it, self.k);
                self.k += 1;
            }
            _ => panic!("unknown op {op}"),
        }
    }
}

/// Median, 10th and 90th percentile (ms) and the number of timed calls.
pub struct Stats {
    pub median: f64,
    pub p10: f64,
    pub p90: f64,
    pub reps: usize,
}

/// Time `f` as the peer harness does: `warmups` untimed calls, then at least `min_reps` calls
/// and more until `target` has passed (at most `max_reps`).
pub fn measure(
    target: Duration,
    warmups: usize,
    min_reps: usize,
    max_reps: usize,
    mut f: impl FnMut(),
) -> Stats {
    for _ in 0..warmups {
        f();
    }
    let mut t = Vec::new();
    let start = Instant::now();
    while t.len() < min_reps || (start.elapsed() < target && t.len() < max_reps) {
        let s = Instant::now();
        f();
        t.push(s.elapsed().as_secs_f64() * 1e3);
    }
    t.sort_by(f64::total_cmp);
    let q = |p: usize| t[(t.len() * p / 100).min(t.len() - 1)];
    Stats {
        median: t[t.len() / 2],
        p10: q(10),
        p90: q(90),
        reps: t.len(),
    }
}

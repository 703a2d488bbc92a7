//! Benchmark workloads shared by the criterion benches and the `cost_table` example: the data
//! hyper-cleaning lower level (A: softmax regression, B: an MLP) and the synthetic sin/cos pair
//! (C), each with the single-loop AID step built from its oracles.
#![allow(dead_code)]

use bilevel::ad::{Evaluator, Hvp2Out, Tape, Var};
use bilevel::linalg::{Mat, MatMut, MatRef, Par};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;

/// A two-block scalar function over the tape.
pub type Fn2 = Box<dyn Fn(&mut Tape, Var, Var) -> Var + Send + Sync>;

/// A bilevel pair `(f, g)` over the tape with its starting point.
pub struct Workload {
    pub name: String,
    pub f: Fn2,
    pub g: Fn2,
    pub x: Mat<f64>,
    pub y: Mat<f64>,
}

fn uniform(rng: &mut StdRng, r: usize, c: usize, lo: f64, hi: f64) -> Mat<f64> {
    Mat::from_fn(r, c, |_, _| rng.random_range(lo..hi))
}

/// Training/validation features (`n × d`, in [0, 1]) and labels, synthetic or supplied.
pub struct Data {
    pub train: Arc<Mat<f64>>,
    pub train_labels: Vec<u32>,
    pub val: Arc<Mat<f64>>,
    pub val_labels: Vec<u32>,
    pub classes: usize,
}

/// Synthetic data of the MNIST shape: `n` samples of dimension `d`, `k` classes.
pub fn synthetic_data(n: usize, d: usize, k: usize, seed: u64) -> Data {
    let mut rng = StdRng::seed_from_u64(seed);
    let train = Arc::new(uniform(&mut rng, n, d, 0.0, 1.0));
    let val = Arc::new(uniform(&mut rng, n, d, 0.0, 1.0));
    let train_labels = (0..n).map(|_| rng.random_range(0..k as u32)).collect();
    let val_labels = (0..n).map(|_| rng.random_range(0..k as u32)).collect();
    Data {
        train,
        train_labels,
        val,
        val_labels,
        classes: k,
    }
}

/// The MNIST test split shipped with the repository: images 0..5000 as the training set and
/// 5000..10000 as the validation set, features in [0, 1].
pub fn shipped_mnist() -> Data {
    use bilevel::datasets::mnist::{Split, load_mnist};
    let test =
        load_mnist(None, Split::Test).expect("the shipped MNIST test split (data/mnist) loads");
    let first: Vec<usize> = (0..5000).collect();
    let second: Vec<usize> = (5000..10000).collect();
    let labels = |idx: &[usize]| {
        idx.iter()
            .map(|&i| u32::from(test.label(i)))
            .collect::<Vec<u32>>()
    };
    Data {
        train: Arc::new(test.features(&first, false)),
        train_labels: labels(&first),
        val: Arc::new(test.features(&second, false)),
        val_labels: labels(&second),
        classes: 10,
    }
}

/// (A) Data hyper-cleaning with a linear classifier: `x` one weight logit per training sample,
/// `y` the `d × k` weights as a vector; `g` = weighted mean training cross-entropy + λ‖y‖²,
/// `f` = mean validation cross-entropy.
pub fn dhc_linear(data: &Data, lambda: f64) -> Workload {
    let (n, d) = (data.train.nrows(), data.train.ncols());
    let k = data.classes;
    let (tr, trl) = (Arc::clone(&data.train), data.train_labels.clone());
    let (va, val) = (Arc::clone(&data.val), data.val_labels.clone());
    Workload {
        name: format!("dhc-linear {n}x{d}, {k} classes"),
        g: Box::new(move |t, x, y| {
            let w = t.reshape(y, d, k);
            let a = t.shared(&tr);
            let z = t.matmul(a, w);
            let s = t.sigmoid(x);
            let l = t.cross_entropy(z, &trl, Some(s));
            let r = t.sum_sq(y);
            let r = t.scale(r, lambda);
            t.add(l, r)
        }),
        f: Box::new(move |t, _x, y| {
            let w = t.reshape(y, d, k);
            let a = t.shared(&va);
            let z = t.matmul(a, w);
            t.cross_entropy(z, &val, None)
        }),
        x: Mat::zeros(n, 1),
        y: Mat::from_fn(d * k, 1, |i, _| 1e-3 * ((i * 37 % 11) as f64 - 5.0)),
    }
}

/// (B) Data hyper-cleaning with an MLP `d-h-k` (ReLU, biases), parameters packed in `y`.
pub fn dhc_mlp(data: &Data, h: usize, lambda: f64) -> Workload {
    let (n, d) = (data.train.nrows(), data.train.ncols());
    let k = data.classes;
    let p = d * h + h + h * k + k;
    let net = move |t: &mut Tape, y: Var, a: Var| {
        let w1 = t.slice(y, 0, 0, d * h, 1);
        let w1 = t.reshape(w1, d, h);
        let b1 = t.slice(y, d * h, 0, h, 1);
        let b1 = t.reshape(b1, 1, h);
        let w2 = t.slice(y, d * h + h, 0, h * k, 1);
        let w2 = t.reshape(w2, h, k);
        let b2 = t.slice(y, d * h + h + h * k, 0, k, 1);
        let b2 = t.reshape(b2, 1, k);
        let z = t.matmul(a, w1);
        let z = t.add_row(z, b1);
        let z = t.relu(z);
        let z = t.matmul(z, w2);
        t.add_row(z, b2)
    };
    let (tr, trl) = (Arc::clone(&data.train), data.train_labels.clone());
    let (va, val) = (Arc::clone(&data.val), data.val_labels.clone());
    let mut rng = StdRng::seed_from_u64(7);
    let scale = (2.0 / d as f64).sqrt();
    Workload {
        name: format!("dhc-mlp {n}x{d}-{h}-{k}"),
        g: Box::new(move |t, x, y| {
            let a = t.shared(&tr);
            let z = net(t, y, a);
            let s = t.sigmoid(x);
            let l = t.cross_entropy(z, &trl, Some(s));
            let r = t.sum_sq(y);
            let r = t.scale(r, lambda);
            t.add(l, r)
        }),
        f: Box::new(move |t, _x, y| {
            let a = t.shared(&va);
            let z = net(t, y, a);
            t.cross_entropy(z, &val, None)
        }),
        x: Mat::zeros(n, 1),
        y: Mat::from_fn(p, 1, |_, _| scale * rng.random_range(-1.0..1.0)),
    }
}

/// (C) The synthetic pair `f = sin(cᵀx + dᵀy) + log(‖x + y‖² + 1)`, `g = ½‖Hy − x‖²`, with a
/// random `H` of condition number at most 10.
pub fn sincos(n: usize, seed: u64) -> Workload {
    let mut rng = StdRng::seed_from_u64(seed);
    let c = uniform(&mut rng, n, 1, -1.0, 1.0);
    let dv = uniform(&mut rng, n, 1, -1.0, 1.0);
    // H = I + 0.45·(B/‖B‖_F) keeps singular values in [0.55, 1.45]: condition number ≤ 2.7.
    let b = uniform(&mut rng, n, n, -1.0, 1.0);
    let fro = (0..n)
        .flat_map(|i| (0..n).map(move |j| (i, j)))
        .map(|(i, j)| b[(i, j)] * b[(i, j)])
        .sum::<f64>()
        .sqrt();
    let h = Arc::new(Mat::from_fn(
        n,
        n,
        |i, j| if i == j { 1.0 } else { 0.0 } + 0.45 * b[(i, j)] / fro,
    ));
    Workload {
        name: format!("sincos n=m={n}"),
        f: Box::new(move |t, x, y| {
            let (cv, dvv) = (t.constant(c.as_ref()), t.constant(dv.as_ref()));
            let (cx, dy) = (t.dot(cv, x), t.dot(dvv, y));
            let s = t.add(cx, dy);
            let s = t.sin(s);
            let xy = t.add(x, y);
            let q = t.sum_sq(xy);
            let q = t.log1p(q);
            t.add(s, q)
        }),
        g: Box::new(move |t, x, y| {
            let hv = t.shared(&h);
            let hy = t.matmul(hv, y);
            let r = t.sub(hy, x);
            let s = t.sum_sq(r);
            t.scale(s, 0.5)
        }),
        x: uniform(&mut rng, n, 1, -1.0, 1.0),
        y: uniform(&mut rng, n, 1, -1.0, 1.0),
    }
}

/// State and buffers of the single-loop AID step (Algorithm 1 of "Sharper Analysis of
/// Single-Loop Methods for Bilevel Optimization"): `ŷ = y − α∇y g(x, y)`,
/// `v̂ = v − η(∇²yy g(x, ŷ)·v − ∇y f(x, ŷ))`, `x ← x − β(∇x f(x, ŷ) − ∇²xy g(x, ŷ)·v̂)`.
/// Two gradients and two matrix-vector products (the mixed product is taken at the new `v̂`).
pub struct AidState {
    pub x: Mat<f64>,
    pub y: Mat<f64>,
    pub v: Mat<f64>,
    gy: Mat<f64>,
    fx: Mat<f64>,
    fy: Mat<f64>,
    hx: Mat<f64>,
    hy: Mat<f64>,
}

impl AidState {
    pub fn new(w: &Workload) -> Self {
        let (n, m) = (w.x.nrows(), w.y.nrows());
        AidState {
            x: w.x.clone(),
            y: w.y.clone(),
            v: Mat::zeros(m, 1),
            gy: Mat::zeros(m, 1),
            fx: Mat::zeros(n, 1),
            fy: Mat::zeros(m, 1),
            hx: Mat::zeros(n, 1),
            hy: Mat::zeros(m, 1),
        }
    }
}

fn axpy(mut dst: MatMut<'_, f64>, alpha: f64, src: MatRef<'_, f64>) {
    for i in 0..dst.nrows() {
        dst[(i, 0)] += alpha * src[(i, 0)];
    }
}

/// One single-loop AID step with step sizes `(α, η, β)`.
pub fn aid_step(
    ev: &mut Evaluator,
    w: &Workload,
    s: &mut AidState,
    (alpha, eta, beta): (f64, f64, f64),
) {
    ev.grad2_into(&*w.g, s.x.as_ref(), s.y.as_ref(), None, Some(s.gy.as_mut()));
    axpy(s.y.as_mut(), -alpha, s.gy.as_ref());
    ev.grad2_into(
        &*w.f,
        s.x.as_ref(),
        s.y.as_ref(),
        Some(s.fx.as_mut()),
        Some(s.fy.as_mut()),
    );
    // v̂ = v − η(Hyy v − ∇y f)
    let out = Hvp2Out {
        hv_y: Some(s.hy.as_mut()),
        ..Default::default()
    };
    ev.hvp2_into(
        &*w.g,
        s.x.as_ref(),
        s.y.as_ref(),
        None,
        Some(s.v.as_ref()),
        out,
    );
    axpy(s.v.as_mut(), -eta, s.hy.as_ref());
    axpy(s.v.as_mut(), eta, s.fy.as_ref());
    // x ← x − β(∇x f − Jxy v̂)
    let out = Hvp2Out {
        hv_x: Some(s.hx.as_mut()),
        ..Default::default()
    };
    ev.hvp2_into(
        &*w.g,
        s.x.as_ref(),
        s.y.as_ref(),
        None,
        Some(s.v.as_ref()),
        out,
    );
    axpy(s.x.as_mut(), -beta, s.fx.as_ref());
    axpy(s.x.as_mut(), beta, s.hx.as_ref());
}

/// The tangent direction used by the HVP benches.
pub fn direction(m: usize) -> Mat<f64> {
    Mat::from_fn(m, 1, |i, _| ((i * 13 % 7) as f64 - 3.0) * 0.1)
}

/// Parallelism for `threads` threads (1 = sequential).
pub fn par(threads: usize) -> Par {
    if threads <= 1 {
        Par::Seq
    } else {
        Par::rayon(threads)
    }
}

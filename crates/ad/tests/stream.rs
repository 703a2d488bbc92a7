//! The streamed evaluation of data-sum losses (block by block, one pass over the data) gives the
//! same derivatives as the whole-tensor evaluation, is exact against finite differences, keeps
//! the HVP symmetric, and gives the same bits at any thread count.

mod common;

use bilevel_ad::{Evaluator, Hvp2Out, Tape, Var};
use bilevel_linalg::{Mat, MatRef, Par};
use common::*;
use std::sync::Arc;

/// Feature-major data: `d × n`, one column per sample, entries in [0, 1).
struct Data {
    x: Arc<Mat<f64>>,
    xs: Arc<Mat<f64>>,
    labels: Vec<u32>,
    d: usize,
    k: usize,
}

fn data(n: usize, d: usize, k: usize, seed: u64) -> Data {
    with_labels(rand_mat(&mut rng(seed), d, n, 0.0, 1.0), k)
}

/// Feature-major `x` (`d × n`) with its sample-major copy and `k` classes of labels.
fn with_labels(x: Mat<f64>, k: usize) -> Data {
    let (d, n) = (x.nrows(), x.ncols());
    let xs = x.transpose().to_owned();
    let labels = (0..n).map(|i| ((i * 7 + i / 3) % k) as u32).collect();
    Data {
        x: Arc::new(x),
        xs: Arc::new(xs),
        labels,
        d,
        k,
    }
}

/// Like [`data`] with about four entries in five zero (as MNIST's pixels are), so that its
/// streamed products run through the data's sparse form: 8-bit pixels scaled to `[0, 1]`
/// (kept as codes into a table of values) with `pixels`, any values otherwise.
fn sparse_data(n: usize, d: usize, k: usize, seed: u64, pixels: bool) -> Data {
    let mut r = rng(seed);
    let x = rand_mat(&mut r, d, n, 0.0, 1.0);
    let keep = rand_mat(&mut r, d, n, 0.0, 1.0);
    let x = Mat::from_fn(d, n, |i, j| match x[(i, j)] {
        _ if keep[(i, j)] >= 0.2 => 0.0,
        v if pixels => (v * 255.0).ceil() / 255.0,
        v => v,
    });
    with_labels(x, k)
}

/// The data hyper-cleaning lower level: `(1/n) Σ σ(wᵢ) CE(xᵢᵀW, bᵢ) + λ‖W‖²`.
fn dhc<'a>(dt: &'a Data, sample_major: bool) -> impl Fn(&mut Tape, Var, Var) -> Var + 'a {
    move |t: &mut Tape, w: Var, y: Var| {
        let wm = t.reshape(y, dt.d, dt.k);
        let z = if sample_major {
            let a = t.shared(&dt.xs);
            t.matmul(a, wm)
        } else {
            let a = t.shared(&dt.x);
            t.matmul_t(a, true, wm, false)
        };
        let s = t.sigmoid(w);
        let l = t.cross_entropy(z, &dt.labels, Some(s));
        let r = t.sum_sq(y);
        let r = t.scale(r, 1e-3);
        t.add(l, r)
    }
}

/// An MLP `d-h-k` lower level with biases and the given hidden activation.
fn mlp<'a>(dt: &'a Data, h: usize, tanh: bool) -> impl Fn(&mut Tape, Var, Var) -> Var + 'a {
    move |t: &mut Tape, w: Var, y: Var| {
        let (d, k) = (dt.d, dt.k);
        let w1 = t.slice(y, 0, 0, d * h, 1);
        let w1 = t.reshape(w1, d, h);
        let b1 = t.slice(y, d * h, 0, h, 1);
        let b1 = t.reshape(b1, 1, h);
        let w2 = t.slice(y, d * h + h, 0, h * k, 1);
        let w2 = t.reshape(w2, h, k);
        let b2 = t.slice(y, d * h + h + h * k, 0, k, 1);
        let b2 = t.reshape(b2, 1, k);
        let a = t.shared(&dt.x);
        let z = t.matmul_t(a, true, w1, false);
        let z = t.add_row(z, b1);
        let z = if tanh { t.tanh(z) } else { t.relu(z) };
        let z = t.matmul(z, w2);
        let z = t.add_row(z, b2);
        let s = t.sigmoid(w);
        let l = t.cross_entropy(z, &dt.labels, Some(s));
        let r = t.sum_sq(y);
        let r = t.scale(r, 1e-3);
        t.add(l, r)
    }
}

/// `½‖Hy − x‖²` with `H` stored row by row (`Hᵀ`, feature-major).
fn residual(ht: &Arc<Mat<f64>>) -> impl Fn(&mut Tape, Var, Var) -> Var + '_ {
    move |t: &mut Tape, x: Var, y: Var| {
        let h = t.shared(ht);
        let hy = t.matmul_t(h, true, y, false);
        let r = t.sub(hy, x);
        let s = t.sum_sq(r);
        t.scale(s, 0.5)
    }
}

/// Every oracle of `f` at `(x, y)` along `(u, v)`, as one list of matrices.
fn oracles(
    ev: &mut Evaluator,
    f: &dyn Fn(&mut Tape, Var, Var) -> Var,
    x: MatRef<'_, f64>,
    y: MatRef<'_, f64>,
    u: MatRef<'_, f64>,
    v: MatRef<'_, f64>,
) -> Vec<Mat<f64>> {
    let value = ev.value2(f, x, y);
    let (gval, gx, gy) = ev.value_and_grad2(f, x, y);
    let h = ev.hvp2(f, x, y, None, Some(v));
    let hu = ev.hvp2(f, x, y, Some(u), Some(v));
    let (hyy, hxy) = ev.hvp_yy(f, x, y, v);
    let jxy = ev.jvp_xy(f, x, y, v);
    let jyx = ev.jvp_yx(f, x, y, u);
    let gxo = ev.grad_x(f, x, y);
    let gyo = ev.grad_y(f, x, y);
    let mut only_hy = Mat::zeros(y.nrows(), 1);
    let into_value = ev.hvp2_into(
        f,
        x,
        y,
        None,
        Some(v),
        Hvp2Out {
            value: true,
            hv_y: Some(only_hy.as_mut()),
            ..Default::default()
        },
    );
    let into_value = into_value.expect("the value was asked for");
    // Without the value, the same product (the data products compute their tangents alone).
    let mut hy_alone = Mat::zeros(y.nrows(), 1);
    let none = ev.hvp2_into(
        f,
        x,
        y,
        None,
        Some(v),
        Hvp2Out {
            hv_y: Some(hy_alone.as_mut()),
            ..Default::default()
        },
    );
    assert_eq!(none, None);
    let bits = |m: &Mat<f64>| {
        (0..m.nrows())
            .map(|i| m[(i, 0)].to_bits())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        bits(&hy_alone),
        bits(&only_hy),
        "∇²ᵧᵧg·v with and without the value"
    );
    let scalar = |s: f64| Mat::from_fn(1, 1, |_, _| s);
    vec![
        scalar(value),
        scalar(gval),
        gx,
        gy,
        scalar(h.value),
        h.grad_x,
        h.grad_y,
        h.hv_x,
        h.hv_y,
        hu.hv_x,
        hu.hv_y,
        hyy,
        hxy,
        jxy,
        jyx,
        gxo,
        gyo,
        only_hy,
        scalar(into_value),
    ]
}

fn point(dt_n: usize, m: usize, seed: u64) -> (Mat<f64>, Mat<f64>, Mat<f64>, Mat<f64>) {
    let mut r = rng(seed);
    (
        rand_mat(&mut r, dt_n, 1, -1.0, 1.0),
        rand_mat(&mut r, m, 1, -0.1, 0.1),
        rand_mat(&mut r, dt_n, 1, -1.0, 1.0),
        rand_mat(&mut r, m, 1, -1.0, 1.0),
    )
}

/// Streamed and whole-tensor evaluations of every oracle agree to rounding, and the first one
/// does stream.
#[track_caller]
fn check_against_whole(name: &str, f: &dyn Fn(&mut Tape, Var, Var) -> Var, n: usize, m: usize) {
    let (x, y, u, v) = point(n, m, 11);
    let mut streamed = Evaluator::new();
    let mut whole = Evaluator::sequential();
    whole.set_streaming(false);
    let a = oracles(
        &mut streamed,
        f,
        x.as_ref(),
        y.as_ref(),
        u.as_ref(),
        v.as_ref(),
    );
    assert!(streamed.streamed(), "{name}: the evaluation did not stream");
    let b = oracles(
        &mut whole,
        f,
        x.as_ref(),
        y.as_ref(),
        u.as_ref(),
        v.as_ref(),
    );
    assert!(!whole.streamed());
    for (k, (p, q)) in a.iter().zip(&b).enumerate() {
        assert_close(
            &format!("{name} oracle #{k}"),
            p.as_ref(),
            q.as_ref(),
            1e-11,
        );
    }
}

/// On sparse data: the streamed oracles read the data's sparse form, and agree to rounding with
/// the streamed dense products and with the whole-tensor evaluation.
#[track_caller]
fn check_sparse_against_whole(
    name: &str,
    f: &dyn Fn(&mut Tape, Var, Var) -> Var,
    n: usize,
    m: usize,
) {
    let differ = sparse_matches_dense(name, f, n, m);
    // The two forms add in different orders: equal bits everywhere would mean one form ran
    // twice.
    assert!(
        differ,
        "{name}: the sparse and dense forms gave the same bits"
    );
}

/// The checks of [`check_sparse_against_whole`] but the last; whether some bits differ between
/// the sparse and dense forms.
#[track_caller]
fn sparse_matches_dense(
    name: &str,
    f: &dyn Fn(&mut Tape, Var, Var) -> Var,
    n: usize,
    m: usize,
) -> bool {
    check_against_whole(name, f, n, m);
    let (x, y, u, v) = point(n, m, 11);
    let run = |ev: &mut Evaluator| oracles(ev, f, x.as_ref(), y.as_ref(), u.as_ref(), v.as_ref());
    let mut sparse = Evaluator::new();
    let a = run(&mut sparse);
    assert!(
        sparse.streamed_sparse(),
        "{name}: the sparse form was not used"
    );
    let mut dense = Evaluator::new();
    dense.set_sparse_data(false);
    let b = run(&mut dense);
    assert!(dense.streamed() && !dense.streamed_sparse());
    let mut differ = false;
    for (k, (p, q)) in a.iter().zip(&b).enumerate() {
        assert_close(
            &format!("{name} sparse/dense #{k}"),
            p.as_ref(),
            q.as_ref(),
            1e-11,
        );
        differ |= p.as_ref() != q.as_ref();
    }
    differ
}

#[test]
fn streamed_products_on_sparse_data_match_the_dense_ones() {
    let any = sparse_data(3000, 100, 10, 20, false);
    check_sparse_against_whole("sparse dhc, any values", &dhc(&any, false), 3000, 1000);
    let dt = sparse_data(3000, 100, 10, 21, true);
    check_sparse_against_whole("sparse dhc feature-major", &dhc(&dt, false), 3000, 1000);
    check_sparse_against_whole("sparse dhc sample-major", &dhc(&dt, true), 3000, 1000);
    // One-tile widths (7, and 14 with the tangent), several tiles (20, 40), a remainder tile
    // (3, 6), rows padded by a cache line (32 and its tangent: 64 columns); the weight
    // gradients of 32 hidden units with their tangents (64 columns) in feature-major order.
    for h in [3, 7, 20, 32] {
        let p = 100 * h + h + h * 10 + 10;
        check_sparse_against_whole("sparse mlp relu", &mlp(&dt, h, false), 3000, p);
    }
    let p = 100 * 7 + 7 + 70 + 10;
    check_sparse_against_whole("sparse mlp tanh", &mlp(&dt, 7, true), 3000, p);
    // Weights stored transposed (`k × d`, the product reading `Wᵀ`).
    let wt = |t: &mut Tape, w: Var, y: Var| {
        let wm = t.reshape(y, dt.k, dt.d);
        let a = t.shared(&dt.x);
        let z = t.matmul_t(a, true, wm, true);
        let s = t.sigmoid(w);
        t.cross_entropy(z, &dt.labels, Some(s))
    };
    // The dense product with transposed weights adds each entry in feature order too, so the
    // two forms may agree bit for bit here.
    sparse_matches_dense("sparse dhc, transposed weights", &wt, 3000, 1000);
    // A weight read by two sparse products: each product's accumulator is added into the
    // weight's partial sums (a weight read by one sparse product alone keeps its gradient in
    // the product's accumulator, as in every MLP above).
    let two = |t: &mut Tape, w: Var, y: Var| {
        let wm = t.reshape(y, dt.d, dt.k);
        let a = t.shared(&dt.x);
        let z1 = t.matmul_t(a, true, wm, false);
        let z2 = t.matmul_t(a, true, wm, false);
        let z2 = t.tanh(z2);
        let z = t.add(z1, z2);
        let s = t.sigmoid(w);
        t.cross_entropy(z, &dt.labels, Some(s))
    };
    check_sparse_against_whole("sparse dhc, a weight read twice", &two, 3000, 1000);
    // A log of the loss streams in two passes.
    let g = dhc(&dt, false);
    let f = |t: &mut Tape, w: Var, y: Var| {
        let l = g(t, w, y);
        t.log(l)
    };
    check_sparse_against_whole("log of sparse dhc", &f, 3000, 1000);
    // Dense data (every entry nonzero) keeps the dense products.
    let dense = data(3000, 100, 10, 22);
    let (x, y, _, _) = point(3000, 1000, 3);
    let mut ev = Evaluator::new();
    ev.value_and_grad2(dhc(&dense, false), x.as_ref(), y.as_ref());
    assert!(ev.streamed() && !ev.streamed_sparse());
}

#[test]
fn streamed_oracles_match_whole_tensor_evaluation() {
    let dt = data(3000, 100, 10, 1);
    check_against_whole("dhc feature-major", &dhc(&dt, false), 3000, 1000);
    check_against_whole("dhc sample-major", &dhc(&dt, true), 3000, 1000);
    let h = 7;
    let p = 100 * h + h + h * 10 + 10;
    check_against_whole("mlp relu", &mlp(&dt, h, false), 3000, p);
    check_against_whole("mlp tanh", &mlp(&dt, h, true), 3000, p);
    // Hidden widths below a kernel tile and beyond the narrow kernels take the paired
    // products (value and tangent, adjoint and adjoint tangent, in one product each).
    for h in [3, 20] {
        let p = 100 * h + h + h * 10 + 10;
        check_against_whole("mlp relu, paired products", &mlp(&dt, h, false), 3000, p);
    }
    let mut r = rng(5);
    let ht = Arc::new(rand_mat(&mut r, 400, 400, -0.05, 0.05));
    check_against_whole("residual", &residual(&ht), 400, 400);
    // Rows wider than 1024 entries take smaller blocks (24 rows here, 3 blocks).
    let ht = Arc::new(rand_mat(&mut r, 1100, 64, -0.05, 0.05));
    check_against_whole("residual, wide rows", &residual(&ht), 64, 1100);
}

/// A loss whose nodes after the reductions are not linear (`log` of the mean loss) streams in
/// two passes and still agrees.
#[test]
fn a_nonlinear_tail_streams_in_two_passes() {
    let dt = data(3000, 100, 10, 2);
    let g = dhc(&dt, false);
    let f = |t: &mut Tape, w: Var, y: Var| {
        let l = g(t, w, y);
        t.log(l)
    };
    check_against_whole("log of dhc", &f, 3000, 1000);
}

/// A recording that mixes rows (a gather of a row-indexed intermediate) is evaluated over whole
/// tensors, with the same results.
#[test]
fn a_row_mixing_recording_falls_back_to_whole_tensors() {
    let dt = data(3000, 100, 10, 3);
    let f = |t: &mut Tape, _w: Var, y: Var| {
        let wm = t.reshape(y, dt.d, dt.k);
        let a = t.shared(&dt.x);
        let z = t.matmul_t(a, true, wm, false);
        let z = t.gather_rows(z, &[0, 5, 17, 2999]);
        t.sum_sq(z)
    };
    let (x, y, _, v) = point(3000, 1000, 4);
    let mut ev = Evaluator::new();
    let h = ev.hvp2(f, x.as_ref(), y.as_ref(), None, Some(v.as_ref()));
    assert!(!ev.streamed());
    let mut t = Tape::new();
    let xv = t.input(x.as_ref());
    let yv = t.input(y.as_ref());
    let out = f(&mut t, xv, yv);
    t.set_tangent(yv, v.as_ref());
    t.forward_tangent();
    t.backward_with_tangent(out);
    assert_close(
        "gather fallback",
        h.hv_y.as_ref(),
        t.adjoint_tangent(yv),
        1e-12,
    );
}

/// Central finite differences of the value confirm the streamed gradient, and of the streamed
/// gradient its Hessian-vector product; the HVP is symmetric.
#[test]
fn streamed_derivatives_are_exact() {
    derivatives_are_exact(&data(2000, 40, 5, 6), false);
    derivatives_are_exact(&sparse_data(2000, 40, 5, 6, true), true);
    derivatives_are_exact(&sparse_data(2000, 40, 5, 6, false), true);
}

/// The checks of [`streamed_derivatives_are_exact`] on `dt`, whose products run through its
/// sparse form when `sparse`.
fn derivatives_are_exact(dt: &Data, sparse: bool) {
    let g = dhc(dt, false);
    let (x, y, u, v) = point(2000, 200, 7);
    let mut ev = Evaluator::new();
    let (_, gx, gy) = ev.value_and_grad2(&g, x.as_ref(), y.as_ref());
    assert!(ev.streamed());
    assert_eq!(ev.streamed_sparse(), sparse);
    // Directional derivatives along (u, v) and along a coordinate of y.
    let h = 1e-5;
    let fd = |dx: &Mat<f64>, dy: &Mat<f64>, ev: &mut Evaluator| {
        let p = ev.value2(
            &g,
            axpy(x.as_ref(), h, dx.as_ref()).as_ref(),
            axpy(y.as_ref(), h, dy.as_ref()).as_ref(),
        );
        let m = ev.value2(
            &g,
            axpy(x.as_ref(), -h, dx.as_ref()).as_ref(),
            axpy(y.as_ref(), -h, dy.as_ref()).as_ref(),
        );
        (p - m) / (2.0 * h)
    };
    let dir = fd(&u, &v, &mut ev);
    let exact = inner(gx.as_ref(), u.as_ref()) + inner(gy.as_ref(), v.as_ref());
    assert!(
        (dir - exact).abs() < 1e-7 * exact.abs().max(1.0),
        "fd {dir} exact {exact}"
    );
    // HVP against a central difference of the streamed gradient.
    let (fx, fy) = fd_hvp(&g, x.as_ref(), y.as_ref(), u.as_ref(), v.as_ref(), 1e-5);
    let hb = ev.hvp2(
        &g,
        x.as_ref(),
        y.as_ref(),
        Some(u.as_ref()),
        Some(v.as_ref()),
    );
    assert_close("hv_x", hb.hv_x.as_ref(), fx.as_ref(), 1e-6);
    assert_close("hv_y", hb.hv_y.as_ref(), fy.as_ref(), 1e-6);
    // ⟨(u2, v2), H (u, v)⟩ = ⟨(u, v), H (u2, v2)⟩.
    let (_, _, u2, v2) = point(2000, 200, 8);
    let h2 = ev.hvp2(
        &g,
        x.as_ref(),
        y.as_ref(),
        Some(u2.as_ref()),
        Some(v2.as_ref()),
    );
    let left = inner(u2.as_ref(), hb.hv_x.as_ref()) + inner(v2.as_ref(), hb.hv_y.as_ref());
    let right = inner(u.as_ref(), h2.hv_x.as_ref()) + inner(v.as_ref(), h2.hv_y.as_ref());
    assert!(
        (left - right).abs() < 1e-10 * left.abs().max(1.0),
        "{left} vs {right}"
    );
}

/// The same oracles on pools of 1, 2, 3 and 7 threads (more threads than the six chunks of
/// these streams) and on the calling thread: the same bits.
#[test]
fn streamed_results_do_not_depend_on_the_thread_count() {
    let dt = data(3000, 100, 10, 9);
    same_bits_at_any_thread_count(&mlp(&dt, 6, true), 3000, 100 * 6 + 6 + 60 + 10);
    let dt = sparse_data(3000, 100, 10, 9, true);
    same_bits_at_any_thread_count(&mlp(&dt, 20, false), 3000, 100 * 20 + 20 + 200 + 10);
    // Wide enough for the weight gradients' feature-major order (40 and 80 columns).
    same_bits_at_any_thread_count(&mlp(&dt, 40, false), 3000, 100 * 40 + 40 + 400 + 10);
    same_bits_at_any_thread_count(&dhc(&dt, true), 3000, 1000);
    let ht = Arc::new(rand_mat(&mut rng(11), 1100, 300, -0.05, 0.05));
    same_bits_at_any_thread_count(&residual(&ht), 300, 1100);
}

/// Every oracle of `g` at a random point, at 1, 2, 3 and 7 threads, against a sequential run.
fn same_bits_at_any_thread_count(
    g: &(dyn Fn(&mut Tape, Var, Var) -> Var + Sync),
    n: usize,
    p: usize,
) {
    let (x, y, u, v) = point(n, p, 10);
    let run = |ev: &mut Evaluator| oracles(ev, g, x.as_ref(), y.as_ref(), u.as_ref(), v.as_ref());
    let reference = run(&mut Evaluator::sequential());
    for threads in [1, 2, 3, 7] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let got = pool.install(|| {
            let mut ev = Evaluator::with_par(Par::rayon(0));
            let r = run(&mut ev);
            assert!(ev.streamed());
            r
        });
        for (k, (a, b)) in got.iter().zip(&reference).enumerate() {
            for j in 0..a.ncols() {
                for i in 0..a.nrows() {
                    assert_eq!(
                        a[(i, j)].to_bits(),
                        b[(i, j)].to_bits(),
                        "oracle #{k} entry ({i}, {j}) at {threads} threads"
                    );
                }
            }
        }
    }
}

/// Re-evaluating the same oracle grows nothing, and an intermediate indexed by samples is not
/// kept (reading it says why).
#[test]
fn streamed_evaluations_reuse_their_buffers() {
    let dt = data(3000, 100, 10, 12);
    let g = dhc(&dt, false);
    let (x, y, _, v) = point(3000, 1000, 13);
    let mut ev = Evaluator::new();
    let mut hy = Mat::zeros(1000, 1);
    let mut step = |ev: &mut Evaluator| {
        ev.hvp2_into(
            &g,
            x.as_ref(),
            y.as_ref(),
            None,
            Some(v.as_ref()),
            Hvp2Out {
                hv_y: Some(hy.as_mut()),
                ..Default::default()
            },
        )
    };
    step(&mut ev);
    let grown = ev.tape().growths();
    for _ in 0..3 {
        step(&mut ev);
    }
    assert_eq!(ev.tape().growths(), grown);
    assert!(ev.streamed());
}

#[test]
#[should_panic(expected = "computed block by block")]
fn a_streamed_intermediate_is_not_readable() {
    let dt = data(3000, 100, 10, 14);
    let mut ev = Evaluator::new();
    let mut logits = None;
    let (x, y, _, _) = point(3000, 1000, 15);
    ev.value2(
        |t, w, y| {
            let wm = t.reshape(y, dt.d, dt.k);
            let a = t.shared(&dt.x);
            let z = t.matmul_t(a, true, wm, false);
            logits = Some(z);
            let s = t.sigmoid(w);
            t.cross_entropy(z, &dt.labels, Some(s))
        },
        x.as_ref(),
        y.as_ref(),
    );
    assert!(ev.streamed());
    let _ = ev.tape().value(logits.unwrap());
}

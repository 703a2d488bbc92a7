//! Composite functions: closed forms, dense Hessians, the losses the solvers use, stability,
//! memory reuse, and misuse.

#![allow(
    clippy::needless_borrows_for_generic_args,
    clippy::needless_range_loop,
    clippy::type_complexity
)]

mod common;

use bilevel_ad::{Dual, Evaluator, Tape, Var, dual, hvp, jvp, value_and_grad, vjp};
use bilevel_linalg::{Mat, MatRef};
use common::*;
use std::sync::Arc;

fn spd(n: usize, seed: u64) -> Mat<f64> {
    let mut r = rng(seed);
    let b = rand_mat(&mut r, n, n, -1.0, 1.0);
    Mat::from_fn(n, n, |i, j| {
        (0..n).map(|k| b[(k, i)] * b[(k, j)]).sum::<f64>() + if i == j { 0.5 } else { 0.0 }
    })
}

#[test]
fn quadratic_hvp_is_exact() {
    let n = 7;
    let a = spd(n, 1);
    let mut r = rng(2);
    let b = rand_mat(&mut r, n, 1, -1.0, 1.0);
    let x = rand_mat(&mut r, n, 1, -1.0, 1.0);
    let v = rand_mat(&mut r, n, 1, -1.0, 1.0);
    let f = |t: &mut Tape, x: Var| {
        let av = t.constant(a.as_ref());
        let bv = t.constant(b.as_ref());
        let ax = t.matmul(av, x);
        let q = t.dot(x, ax);
        let q = t.scale(q, 0.5);
        let l = t.dot(bv, x);
        t.add(q, l)
    };
    let res = hvp(f, x.as_ref(), v.as_ref());
    let av = Mat::from_fn(n, 1, |i, _| {
        (0..n).map(|k| a[(i, k)] * v[(k, 0)]).sum::<f64>()
    });
    let g = Mat::from_fn(n, 1, |i, _| {
        (0..n).map(|k| a[(i, k)] * x[(k, 0)]).sum::<f64>() + b[(i, 0)]
    });
    assert_close("quadratic hvp", res.hv.as_ref(), av.as_ref(), 1e-12);
    assert_close("quadratic grad", res.grad.as_ref(), g.as_ref(), 1e-12);
    // Also through sum_sq of a linear map: ∇²(½‖Bx‖²) = BᵀB.
    let f2 = |t: &mut Tape, x: Var| {
        let av = t.constant(a.as_ref());
        let y = t.matmul(av, x);
        let s = t.sum_sq(y);
        t.scale(s, 0.5)
    };
    let res = hvp(f2, x.as_ref(), v.as_ref());
    let want = Mat::from_fn(n, 1, |i, _| {
        (0..n)
            .map(|k| (0..n).map(|l| a[(l, i)] * a[(l, k)]).sum::<f64>() * v[(k, 0)])
            .sum::<f64>()
    });
    assert_close("‖Ax‖² hvp", res.hv.as_ref(), want.as_ref(), 1e-12);
}

/// A two-layer MLP loss over packed parameters, labels fixed: x holds W1 (d×h), b1 (1×h),
/// W2 (h×k) stacked into one vector.
fn mlp_loss<'a>(
    data: &'a Arc<Mat<f64>>,
    labels: &[u32],
    d: usize,
    h: usize,
    k: usize,
) -> impl Fn(&mut Tape, Var) -> Var + 'a {
    let labels = labels.to_vec();
    move |t: &mut Tape, p: Var| {
        let w1 = t.slice(p, 0, 0, d * h, 1);
        let w1 = t.reshape(w1, d, h);
        let b1 = t.slice(p, d * h, 0, h, 1);
        let b1 = t.reshape(b1, 1, h);
        let w2 = t.slice(p, d * h + h, 0, h * k, 1);
        let w2 = t.reshape(w2, h, k);
        let a = t.shared(data);
        let z = t.matmul(a, w1);
        let z = t.add_row(z, b1);
        let z = t.tanh(z);
        let logits = t.matmul(z, w2);
        t.cross_entropy(logits, &labels, None)
    }
}

#[test]
fn hvp_equals_dense_hessian_times_v() {
    let (n, d, h, k) = (9, 3, 4, 3);
    let mut r = rng(5);
    let data = Arc::new(rand_mat(&mut r, n, d, -1.0, 1.0));
    let labels: Vec<u32> = (0..n as u32).map(|i| i % k as u32).collect();
    let f = mlp_loss(&data, &labels, d, h, k);
    let p = d * h + h + h * k;
    let x = rand_mat(&mut r, p, 1, -0.8, 0.8);
    let mut ev = Evaluator::new();
    // Dense Hessian, column by column (only ever done in tests, on small sizes).
    let mut hess = Mat::zeros(p, p);
    for j in 0..p {
        let e = Mat::from_fn(p, 1, |i, _| if i == j { 1.0 } else { 0.0 });
        let col = ev.hvp(&f, x.as_ref(), e.as_ref()).hv;
        for i in 0..p {
            hess[(i, j)] = col[(i, 0)];
        }
    }
    for i in 0..p {
        for j in 0..i {
            assert!(
                (hess[(i, j)] - hess[(j, i)]).abs() <= 1e-10,
                "Hessian not symmetric at ({i}, {j})"
            );
        }
    }
    for s in 0..3 {
        let v = rand_mat(&mut rng(100 + s), p, 1, -1.0, 1.0);
        let hv = ev.hvp(&f, x.as_ref(), v.as_ref()).hv;
        let want = Mat::from_fn(p, 1, |i, _| {
            (0..p).map(|j| hess[(i, j)] * v[(j, 0)]).sum::<f64>()
        });
        assert_close("hvp vs dense", hv.as_ref(), want.as_ref(), 1e-12);
    }
    // And the gradient against finite differences.
    let (_, g) = ev.value_and_grad(&f, x.as_ref());
    let fd = Mat::from_fn(p, 1, |i, _| {
        let hh = 1e-6;
        let mut xp = x.clone();
        let mut xm = x.clone();
        xp[(i, 0)] += hh;
        xm[(i, 0)] -= hh;
        (value_and_grad(&f, xp.as_ref()).0 - value_and_grad(&f, xm.as_ref()).0) / (2.0 * hh)
    });
    assert_close("mlp grad", g.as_ref(), fd.as_ref(), 1e-6);
}

/// The data hyper-cleaning lower level: `g(x, W) = (1/n) Σ σ(xᵢ) CE(aᵢ W, bᵢ) + λ‖W‖²`.
fn dhc_lower<'a>(
    data: &'a Arc<Mat<f64>>,
    labels: &[u32],
    d: usize,
    k: usize,
    lambda: f64,
) -> impl Fn(&mut Tape, Var, Var) -> Var + 'a {
    let labels = labels.to_vec();
    move |t: &mut Tape, x: Var, w: Var| {
        let w = t.reshape(w, d, k);
        let a = t.shared(data);
        let logits = t.matmul(a, w);
        let s = t.sigmoid(x);
        let l = t.cross_entropy(logits, &labels, Some(s));
        let r = t.sum_sq(w);
        let r = t.scale(r, lambda);
        t.add(l, r)
    }
}

/// A two-layer MLP lower level with per-sample weights, for the mixed products.
fn mlp_lower<'a>(
    data: &'a Arc<Mat<f64>>,
    labels: &[u32],
    d: usize,
    h: usize,
    k: usize,
) -> impl Fn(&mut Tape, Var, Var) -> Var + 'a {
    let labels = labels.to_vec();
    move |t: &mut Tape, x: Var, p: Var| {
        let w1 = t.slice(p, 0, 0, d * h, 1);
        let w1 = t.reshape(w1, d, h);
        let w2 = t.slice(p, d * h, 0, h * k, 1);
        let w2 = t.reshape(w2, h, k);
        let a = t.shared(data);
        let z = t.matmul(a, w1);
        let z = t.relu(z);
        let logits = t.matmul(z, w2);
        let s = t.sigmoid(x);
        let l = t.cross_entropy(logits, &labels, Some(s));
        let r = t.sum_sq(p);
        let r = t.scale(r, 1e-3);
        t.add(l, r)
    }
}

fn check_two_block(name: &str, f: F2<'_>, x: &Mat<f64>, y: &Mat<f64>, seed: u64) {
    let mut r = rng(seed);
    let mut ev = Evaluator::new();
    let (_, gx, gy) = ev.value_and_grad2(f, x.as_ref(), y.as_ref());
    let (fx, fy) = fd_grad(f, x.as_ref(), y.as_ref(), 1e-6);
    assert_close(&format!("{name}: ∇x"), gx.as_ref(), fx.as_ref(), 1e-6);
    assert_close(&format!("{name}: ∇y"), gy.as_ref(), fy.as_ref(), 1e-6);
    let u = rand_mat(&mut r, x.nrows(), 1, -1.0, 1.0);
    let v = rand_mat(&mut r, y.nrows(), 1, -1.0, 1.0);
    let zx = Mat::zeros(x.nrows(), 1);
    let zy = Mat::zeros(y.nrows(), 1);
    // Tangent (0, v): ∇²yy g·v and ∇²xy g·v.
    let (hyy, hxy) = ev.hvp_yy(f, x.as_ref(), y.as_ref(), v.as_ref());
    let (fxy, fyy) = fd_hvp(f, x.as_ref(), y.as_ref(), zx.as_ref(), v.as_ref(), 1e-5);
    assert_close(&format!("{name}: ∇²yy·v"), hyy.as_ref(), fyy.as_ref(), 1e-6);
    assert_close(&format!("{name}: ∇²xy·v"), hxy.as_ref(), fxy.as_ref(), 1e-6);
    assert_close(
        &format!("{name}: jvp_xy"),
        ev.jvp_xy(f, x.as_ref(), y.as_ref(), v.as_ref()).as_ref(),
        fxy.as_ref(),
        1e-6,
    );
    // Tangent (u, 0): ∇²yx g·u.
    let hyx = ev.jvp_yx(f, x.as_ref(), y.as_ref(), u.as_ref());
    let (_, fyx) = fd_hvp(f, x.as_ref(), y.as_ref(), u.as_ref(), zy.as_ref(), 1e-5);
    assert_close(&format!("{name}: ∇²yx·u"), hyx.as_ref(), fyx.as_ref(), 1e-6);
    // The two mixed products are transposes of each other: ⟨u, ∇²xy v⟩ = ⟨v, ∇²yx u⟩.
    let l = inner(u.as_ref(), hxy.as_ref());
    let rr = inner(v.as_ref(), hyx.as_ref());
    assert!(
        (l - rr).abs() <= 1e-10 * l.abs().max(1.0),
        "{name}: mixed products not adjoint: {l} vs {rr}"
    );
    // Symmetry of the full Hessian on random directions.
    let w = (
        rand_mat(&mut r, x.nrows(), 1, -1.0, 1.0),
        rand_mat(&mut r, y.nrows(), 1, -1.0, 1.0),
    );
    let h1 = ev.hvp2(
        f,
        x.as_ref(),
        y.as_ref(),
        Some(u.as_ref()),
        Some(v.as_ref()),
    );
    let h2 = ev.hvp2(
        f,
        x.as_ref(),
        y.as_ref(),
        Some(w.0.as_ref()),
        Some(w.1.as_ref()),
    );
    let a = inner(w.0.as_ref(), h1.hv_x.as_ref()) + inner(w.1.as_ref(), h1.hv_y.as_ref());
    let b = inner(u.as_ref(), h2.hv_x.as_ref()) + inner(v.as_ref(), h2.hv_y.as_ref());
    assert!(
        (a - b).abs() <= 1e-10 * a.abs().max(1.0),
        "{name}: asymmetric Hessian {a} vs {b}"
    );
}

#[test]
fn softmax_regression_lower_level() {
    let (n, d, k) = (12, 5, 4);
    let mut r = rng(11);
    let data = Arc::new(rand_mat(&mut r, n, d, 0.0, 1.0));
    let labels: Vec<u32> = (0..n as u32).map(|i| (i * 7) % k as u32).collect();
    let g = dhc_lower(&data, &labels, d, k, 1e-2);
    let x = rand_mat(&mut r, n, 1, -2.0, 2.0);
    let y = rand_mat(&mut r, d * k, 1, -1.0, 1.0);
    check_two_block("softmax regression", &g, &x, &y, 12);
}

#[test]
fn mlp_lower_level() {
    let (n, d, h, k) = (10, 4, 5, 3);
    let mut r = rng(21);
    let data = Arc::new(rand_mat(&mut r, n, d, 0.0, 1.0));
    let labels: Vec<u32> = (0..n as u32).map(|i| i % k as u32).collect();
    let g = mlp_lower(&data, &labels, d, h, k);
    let x = rand_mat(&mut r, n, 1, -2.0, 2.0);
    // Keep pre-activations away from relu's kink: positive weights on positive data.
    let y = rand_mat(&mut r, d * h + h * k, 1, 0.1, 1.0);
    check_two_block("mlp", &g, &x, &y, 22);
}

#[test]
fn synthetic_sincos_upper_level_matches_closed_form() {
    // f(x, y) = sin(cᵀx + dᵀy) + log(‖x + y‖² + 1).
    let n = 20;
    let mut r = rng(31);
    let c = rand_mat(&mut r, n, 1, -1.0, 1.0);
    let d = rand_mat(&mut r, n, 1, -1.0, 1.0);
    let f = |t: &mut Tape, x: Var, y: Var| {
        let (cv, dv) = (t.constant(c.as_ref()), t.constant(d.as_ref()));
        let (cx, dy) = (t.dot(cv, x), t.dot(dv, y));
        let s = t.add(cx, dy);
        let s = t.sin(s);
        let xy = t.add(x, y);
        let q = t.sum_sq(xy);
        let q = t.log1p(q);
        t.add(s, q)
    };
    let x = rand_mat(&mut r, n, 1, -1.0, 1.0);
    let y = rand_mat(&mut r, n, 1, -1.0, 1.0);
    let (val, gx, gy) = Evaluator::new().value_and_grad2(&f, x.as_ref(), y.as_ref());
    let arg: f64 = (0..n)
        .map(|i| c[(i, 0)] * x[(i, 0)] + d[(i, 0)] * y[(i, 0)])
        .sum();
    let s: Vec<f64> = (0..n).map(|i| x[(i, 0)] + y[(i, 0)]).collect();
    let q: f64 = s.iter().map(|v| v * v).sum();
    assert!((val - (arg.sin() + (q + 1.0).ln())).abs() < 1e-13);
    let wx = Mat::from_fn(n, 1, |i, _| arg.cos() * c[(i, 0)] + 2.0 * s[i] / (q + 1.0));
    let wy = Mat::from_fn(n, 1, |i, _| arg.cos() * d[(i, 0)] + 2.0 * s[i] / (q + 1.0));
    assert_close("∇x closed form", gx.as_ref(), wx.as_ref(), 1e-13);
    assert_close("∇y closed form", gy.as_ref(), wy.as_ref(), 1e-13);
    check_two_block("sincos", &f, &x, &y, 32);
}

#[test]
fn cross_entropy_is_finite_and_exact_for_large_logits() {
    let (n, k) = (4, 6);
    let mut r = rng(41);
    let base = rand_mat(&mut r, n, k, -3.0, 3.0);
    let big = Mat::from_fn(n, k, |i, j| {
        base[(i, j)] + 1e3 * if j % 2 == 0 { 1.0 } else { -1.0 }
    });
    let labels = [0u32, 1, 2, 5];
    let f = |t: &mut Tape, a: Var| t.cross_entropy(a, &labels, None);
    let u = rand_mat(&mut r, n, k, -1.0, 1.0);
    let res = hvp(f, big.as_ref(), u.as_ref());
    assert!(res.value.is_finite());
    // The loss is invariant to shifting each row: compare with the same logits shifted by 1e3
    // per row, computed in closed form for the reference.
    let mut want = 0.0;
    for i in 0..n {
        let m = (0..k)
            .map(|j| big[(i, j)])
            .fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = (0..k).map(|j| (big[(i, j)] - m).exp()).sum();
        want += m + s.ln() - big[(i, labels[i] as usize)];
    }
    want /= n as f64;
    assert!(
        (res.value - want).abs() <= 1e-12 * want.abs().max(1.0),
        "{} vs {want}",
        res.value
    );
    for j in 0..k {
        for i in 0..n {
            assert!(res.grad[(i, j)].is_finite() && res.hv[(i, j)].is_finite());
        }
    }
    // Gradient: (p − e_y)/n; at these logits p is one-hot on the largest even column.
    let mut t = Tape::new();
    let a = t.input(big.as_ref());
    let l = t.cross_entropy(a, &labels, None);
    t.backward(l);
    for i in 0..n {
        let row: Vec<f64> = (0..k).map(|j| big[(i, j)]).collect();
        let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = row.iter().map(|v| (v - m).exp()).sum();
        for j in 0..k {
            let p = (row[j] - m).exp() / z;
            let want = (p - if j == labels[i] as usize { 1.0 } else { 0.0 }) / n as f64;
            assert!((t.adjoint(a)[(i, j)] - want).abs() < 1e-15);
        }
    }
    // Log-sum-exp and softmax at the same scale.
    let l = t.logsumexp_rows(a);
    let sm = t.softmax_rows(a);
    for i in 0..n {
        assert!(t.value(l)[(i, 0)].is_finite());
        let s: f64 = (0..k).map(|j| t.value(sm)[(i, j)]).sum();
        assert!((s - 1.0).abs() < 1e-14);
    }
}

#[test]
fn rerecording_does_not_grow_the_tape() {
    let (n, d, k) = (50, 8, 3);
    let mut r = rng(51);
    let data = Arc::new(rand_mat(&mut r, n, d, 0.0, 1.0));
    let labels: Vec<u32> = (0..n as u32).map(|i| i % k as u32).collect();
    let g = dhc_lower(&data, &labels, d, k, 1e-3);
    let x = rand_mat(&mut r, n, 1, -1.0, 1.0);
    let y = rand_mat(&mut r, d * k, 1, -1.0, 1.0);
    let v = rand_mat(&mut r, d * k, 1, -1.0, 1.0);
    let mut ev = Evaluator::new();
    let mut gx = Mat::zeros(n, 1);
    let mut gy = Mat::zeros(d * k, 1);
    let mut hx = Mat::zeros(n, 1);
    let mut hy = Mat::zeros(d * k, 1);
    let run = |ev: &mut Evaluator,
               gx: &mut Mat<f64>,
               gy: &mut Mat<f64>,
               hx: &mut Mat<f64>,
               hy: &mut Mat<f64>| {
        ev.grad2_into(
            &g,
            x.as_ref(),
            y.as_ref(),
            Some(gx.as_mut()),
            Some(gy.as_mut()),
        );
        let mut lin = ev.linearize2(&g, x.as_ref(), y.as_ref());
        lin.hvp_into(None, Some(v.as_ref()), Some(hx.as_mut()), Some(hy.as_mut()));
    };
    run(&mut ev, &mut gx, &mut gy, &mut hx, &mut hy);
    let (growths, bytes) = (ev.tape().growths(), ev.tape().capacity_bytes());
    let first = (gx.clone(), hy.clone());
    for _ in 0..10_000 {
        run(&mut ev, &mut gx, &mut gy, &mut hx, &mut hy);
    }
    assert_eq!(
        ev.tape().growths(),
        growths,
        "the tape reallocated while re-recording"
    );
    assert_eq!(ev.tape().capacity_bytes(), bytes);
    assert_eq!(first.0, gx, "same inputs, same gradient, bit for bit");
    assert_eq!(first.1, hy);
}

#[test]
fn a_gathered_minibatch_loss_is_exact_and_reuses_the_tape() {
    // The data hyper-cleaning lower level on the rows `idx` only: gathering every row in order
    // gives the full loss bit for bit; a batch's gradient in x is zero off the batch; and
    // recording batches of one size again and again allocates nothing. 43 rows: faer pads the
    // columns, which `shared_rows` reads through.
    let (n, d, k) = (43, 6, 3);
    let mut r = rng(71);
    let data = Arc::new(rand_mat(&mut r, n, d, 0.0, 1.0));
    let labels: Vec<u32> = (0..n as u32).map(|i| (i * 7) % k as u32).collect();
    let batch = |idx: Vec<usize>| {
        let (data, labels) = (Arc::clone(&data), labels.clone());
        move |t: &mut Tape, x: Var, y: Var| {
            let w = t.reshape(y, d, k);
            let a = t.shared_rows(&data, &idx);
            let z = t.matmul(a, w);
            let xb = t.gather_rows(x, &idx);
            let s = t.sigmoid(xb);
            let lb: Vec<u32> = idx.iter().map(|&i| labels[i]).collect();
            t.cross_entropy(z, &lb, Some(s))
        }
    };
    let x = rand_mat(&mut r, n, 1, -1.0, 1.0);
    let y = rand_mat(&mut r, d * k, 1, -1.0, 1.0);
    let v = rand_mat(&mut r, d * k, 1, -1.0, 1.0);
    let mut ev = Evaluator::new();
    let full = dhc_lower(&data, &labels, d, k, 0.0);
    let (fv, fx, fy) = ev.value_and_grad2(&full, x.as_ref(), y.as_ref());
    let fh = ev.hvp2(&full, x.as_ref(), y.as_ref(), None, Some(v.as_ref()));
    let all = batch((0..n).collect());
    let (bv, bx, by) = ev.value_and_grad2(&all, x.as_ref(), y.as_ref());
    let bh = ev.hvp2(&all, x.as_ref(), y.as_ref(), None, Some(v.as_ref()));
    assert_eq!((fv, &fx, &fy), (bv, &bx, &by));
    assert_eq!((&fh.hv_x, &fh.hv_y), (&bh.hv_x, &bh.hv_y));
    let (_, gx, _) = ev.value_and_grad2(&batch(vec![3, 17, 5]), x.as_ref(), y.as_ref());
    for i in 0..n {
        assert_eq!(gx[(i, 0)] != 0.0, [3, 5, 17].contains(&i), "row {i}");
    }
    let growths = ev.tape().growths();
    for s in 0..200 {
        let idx: Vec<usize> = (0..3).map(|j| (s * 13 + j * 7) % n).collect();
        let f = batch(idx);
        let _ = ev.value_and_grad2(&f, x.as_ref(), y.as_ref());
        let _ = ev.hvp2(&f, x.as_ref(), y.as_ref(), None, Some(v.as_ref()));
    }
    assert_eq!(ev.tape().growths(), growths, "the tape reallocated");
    // `shared_rows` is `gather_rows` of `shared`.
    let mut t = Tape::new();
    let idx = [42, 0, 17, 17, 5];
    let a = t.shared_rows(&data, &idx);
    let s = t.shared(&data);
    let b = t.gather_rows(s, &idx);
    assert_eq!(t.value(a), t.value(b));
    assert_eq!(t.value(a)[(0, 2)], data[(42, 2)]);
}

#[test]
fn jvp_and_vjp_of_a_matrix_function() {
    // f(X) = softmax(X) row-wise: check JVP/VJP duality and against finite differences.
    let mut r = rng(61);
    let x = rand_mat(&mut r, 3, 4, -1.0, 1.0);
    let v = rand_mat(&mut r, 3, 4, -1.0, 1.0);
    let u = rand_mat(&mut r, 3, 4, -1.0, 1.0);
    let f = |t: &mut Tape, x: Var| t.softmax_rows(x);
    let bilevel_ad::api::DualMat {
        primal: y,
        tangent: jv,
    } = jvp(f, x.as_ref(), v.as_ref());
    let (y2, ju) = vjp(f, x.as_ref(), u.as_ref());
    assert_eq!(y, y2);
    let l = inner(u.as_ref(), jv.as_ref());
    let rr = inner(ju.as_ref(), v.as_ref());
    assert!((l - rr).abs() < 1e-14);
    let h = 1e-6;
    let yp = jvp(f, axpy(x.as_ref(), h, v.as_ref()).as_ref(), v.as_ref()).primal;
    let ym = jvp(f, axpy(x.as_ref(), -h, v.as_ref()).as_ref(), v.as_ref()).primal;
    let fd = Mat::from_fn(3, 4, |i, j| (yp[(i, j)] - ym[(i, j)]) / (2.0 * h));
    assert_close("softmax jvp", jv.as_ref(), fd.as_ref(), 1e-7);
}

#[test]
fn dual_numbers_match_closed_forms() {
    let x: f64 = 0.7;
    let checks: [(&str, fn(Dual) -> Dual, f64); 8] = [
        ("exp", |d| d.exp(), x.exp()),
        ("ln", |d| d.ln(), 1.0 / x),
        ("ln_1p", |d| d.ln_1p(), 1.0 / (1.0 + x)),
        ("sqrt", |d| d.sqrt(), 0.5 / x.sqrt()),
        ("sin", |d| d.sin(), x.cos()),
        ("cos", |d| d.cos(), -x.sin()),
        ("tanh", |d| d.tanh(), 1.0 - x.tanh().powi(2)),
        ("powi", |d| d.powi(4), 4.0 * x.powi(3)),
    ];
    for (name, f, want) in checks {
        let got = dual::derivative(f, x);
        assert!((got - want).abs() < 1e-15, "{name}: {got} vs {want}");
    }
    let q = dual::derivative(|d| (d * d + 1.0) / (d - 3.0) * 2.0 - d.sigmoid(), x);
    let s = 1.0 / (1.0 + (-x).exp());
    let want = 2.0 * (2.0 * x * (x - 3.0) - (x * x + 1.0)) / (x - 3.0f64).powi(2) - s * (1.0 - s);
    assert!((q - want).abs() < 1e-14);
    assert_eq!(-Dual::new(1.0, 2.0), Dual::new(-1.0, -2.0));
}

#[test]
#[should_panic(expected = "variable from another tape")]
fn variable_from_another_tape_is_caught() {
    let mut t1 = Tape::new();
    let mut t2 = Tape::new();
    let x = t1.input(Mat::<f64>::zeros(2, 1).as_ref());
    t2.exp(x);
}

#[test]
#[should_panic(expected = "variable from another tape or from a recording cleared since")]
fn variable_from_a_cleared_recording_is_caught() {
    let mut t = Tape::new();
    let x = t.input(Mat::<f64>::zeros(2, 1).as_ref());
    t.clear();
    t.exp(x);
}

#[test]
#[should_panic(expected = "add: shape mismatch, left is 2x1, right is 3x1")]
fn shape_mismatch_names_the_shapes() {
    let mut t = Tape::new();
    let a = t.input(Mat::<f64>::zeros(2, 1).as_ref());
    let b = t.input(Mat::<f64>::zeros(3, 1).as_ref());
    t.add(a, b);
}

#[test]
#[should_panic(
    expected = "matmul: inner dimensions differ, op(a) is 2x3 (a is 2x3), op(b) is 2x1 (b is 2x1)"
)]
fn matmul_mismatch_names_the_shapes() {
    let mut t = Tape::new();
    let a = t.input(Mat::<f64>::zeros(2, 3).as_ref());
    let b = t.input(Mat::<f64>::zeros(2, 1).as_ref());
    t.matmul(a, b);
}

#[test]
#[should_panic(expected = "the function must return a scalar (1x1), it returned 3x1")]
fn non_scalar_output_is_caught() {
    value_and_grad(|t, x| t.exp(x), Mat::<f64>::zeros(3, 1).as_ref());
}

#[test]
#[should_panic(expected = "label 3 of sample 1 is out of range for 3 classes")]
fn out_of_range_label_is_caught() {
    let mut t = Tape::new();
    let a = t.input(Mat::<f64>::zeros(2, 3).as_ref());
    t.cross_entropy_rows(a, &[0, 3]);
}

#[test]
fn constants_get_no_adjoint_and_inputs_do() {
    let mut t = Tape::new();
    let x = t.input(Mat::from_fn(2, 1, |i, _| i as f64).as_ref());
    let c = t.constant(Mat::from_fn(2, 1, |_, _| 3.0).as_ref());
    let y = t.dot(x, c);
    t.backward(y);
    assert_eq!(t.adjoint(x)[(1, 0)], 3.0);
    let _ = MatRef::from_column_major_slice(&[0.0], 1, 1);
}

#[test]
fn eager_and_lazy_tangents_agree_on_a_data_matrix_product() {
    // hvp2 records with eager tangents (A·[W Ẇ] and Aᵀ·[Ȳ Ȳ̇] in one product each); the
    // linearized path sweeps lazily with separate products. Both must give the same HVP.
    let (n, d, k) = (40, 12, 3);
    let mut r = rng(71);
    let data = Arc::new(rand_mat(&mut r, n, d, 0.0, 1.0));
    let labels: Vec<u32> = (0..n as u32).map(|i| i % k as u32).collect();
    let g = dhc_lower(&data, &labels, d, k, 1e-3);
    let x = rand_mat(&mut r, n, 1, -1.0, 1.0);
    let y = rand_mat(&mut r, d * k, 1, -1.0, 1.0);
    let u = rand_mat(&mut r, n, 1, -1.0, 1.0);
    let v = rand_mat(&mut r, d * k, 1, -1.0, 1.0);
    let mut ev = Evaluator::new();
    let eager = ev.hvp2(
        &g,
        x.as_ref(),
        y.as_ref(),
        Some(u.as_ref()),
        Some(v.as_ref()),
    );
    let mut hx = Mat::zeros(n, 1);
    let mut hy = Mat::zeros(d * k, 1);
    let mut lin = ev.linearize2(&g, x.as_ref(), y.as_ref());
    lin.hvp_into(
        Some(u.as_ref()),
        Some(v.as_ref()),
        Some(hx.as_mut()),
        Some(hy.as_mut()),
    );
    assert_close(
        "eager vs lazy hv_x",
        eager.hv_x.as_ref(),
        hx.as_ref(),
        1e-13,
    );
    assert_close(
        "eager vs lazy hv_y",
        eager.hv_y.as_ref(),
        hy.as_ref(),
        1e-13,
    );
    assert_close(
        "eager vs lazy grad",
        eager.grad_y.as_ref(),
        lin.grad_y(),
        1e-13,
    );
}

#[test]
#[should_panic(expected = "set input tangents before recording operations")]
fn eager_tangents_must_be_set_before_recording() {
    let mut t = Tape::new();
    let x = t.input(Mat::<f64>::zeros(2, 1).as_ref());
    t.begin_tangents();
    let _ = t.exp(x);
    t.set_tangent(x, Mat::<f64>::zeros(2, 1).as_ref());
}

#[test]
fn a_shared_constant_larger_than_the_rest_of_the_tape_takes_tangents() {
    // A shared matrix owns no arena slot; tangent preparation must not index the arena with
    // its extent (it used to, and panicked when the matrix outgrew the rest of the tape).
    let h = Arc::new(Mat::from_fn(30, 30, |i, j| if i == j { 2.0 } else { 0.01 }));
    let x = Mat::from_fn(30, 1, |i, _| i as f64 * 0.1);
    let v = Mat::from_fn(30, 1, |_, _| 1.0);
    let f = |t: &mut Tape, y: Var| {
        let hv = t.shared(&h);
        let hy = t.matmul(hv, y);
        let s = t.sum_sq(hy);
        t.scale(s, 0.5)
    };
    let mut t = Tape::new();
    let y = t.input(x.as_ref());
    let out = f(&mut t, y);
    t.set_tangent(y, v.as_ref());
    t.forward_tangent();
    t.backward_with_tangent(out);
    let want = Mat::from_fn(30, 1, |i, _| {
        (0..30)
            .map(|k| (0..30).map(|l| h[(l, i)] * h[(l, k)]).sum::<f64>())
            .sum::<f64>()
    });
    assert_close("HᵀH·1", t.adjoint_tangent(y), want.as_ref(), 1e-13);
    let r = hvp(f, x.as_ref(), v.as_ref());
    assert_close("eager HᵀH·1", r.hv.as_ref(), want.as_ref(), 1e-13);
}

#[test]
fn a_padded_shared_matrix_is_copied_once_across_recordings() {
    let mut r = rng(71);
    // 2501 rows: faer pads the columns, so the matrix is not one contiguous block.
    let data = Arc::new(rand_mat(&mut r, 2501, 6, -1.0, 1.0));
    assert_ne!(data.col_stride(), 2501, "the test needs a padded matrix");
    let y = rand_mat(&mut r, 6, 1, -1.0, 1.0);
    let f = |d: &Arc<Mat<f64>>| {
        let d = Arc::clone(d);
        move |t: &mut Tape, y: Var| {
            let a = t.shared(&d);
            let z = t.matmul(a, y);
            t.sum_sq(z)
        }
    };
    // Reference: the same function on a plain (copied) constant.
    let plain = {
        let d = Arc::clone(&data);
        move |t: &mut Tape, y: Var| {
            let a = t.constant((*d).as_ref());
            let z = t.matmul(a, y);
            t.sum_sq(z)
        }
    };
    let mut ev = Evaluator::new();
    let want = ev.value_and_grad(&plain, y.as_ref());
    let g = f(&data);
    for _ in 0..5 {
        let got = ev.value_and_grad(&g, y.as_ref());
        assert_eq!(got.0, want.0);
        assert_eq!(got.1, want.1);
    }
    assert_eq!(ev.tape().shared_copies(), 1);
    // Another matrix with the same entries is another copy; the tape keeps the last eight.
    let others: Vec<Arc<Mat<f64>>> = (0..8).map(|_| Arc::new((*data).clone())).collect();
    for o in &others {
        let _ = ev.value_and_grad(&f(o), y.as_ref());
        let _ = ev.value_and_grad(&f(o), y.as_ref());
    }
    assert_eq!(ev.tape().shared_copies(), 9);
    // `data`'s copy was the oldest and was dropped: recording it again copies it again.
    let got = ev.value_and_grad(&g, y.as_ref());
    assert_eq!(got.1, want.1);
    assert_eq!(ev.tape().shared_copies(), 10);
    // A contiguous matrix (row count a multiple of 8) is never copied.
    let even = Arc::new(rand_mat(&mut r, 2504, 6, -1.0, 1.0));
    let _ = ev.value_and_grad(&f(&even), y.as_ref());
    assert_eq!(ev.tape().shared_copies(), 10);
}

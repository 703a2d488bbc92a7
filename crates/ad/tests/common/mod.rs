//! Shared test helpers: seeded random matrices and central finite differences.
#![allow(dead_code)]

use bilevel_ad::{Evaluator, Tape, Var};
use bilevel_linalg::{Mat, MatRef};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// Uniform entries in `[lo, hi)`.
pub fn rand_mat(rng: &mut StdRng, r: usize, c: usize, lo: f64, hi: f64) -> Mat<f64> {
    Mat::from_fn(r, c, |_, _| rng.random_range(lo..hi))
}

pub fn norm(m: MatRef<'_, f64>) -> f64 {
    let mut s = 0.0;
    for j in 0..m.ncols() {
        for i in 0..m.nrows() {
            s += m[(i, j)] * m[(i, j)];
        }
    }
    s.sqrt()
}

pub fn inner(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> f64 {
    let mut s = 0.0;
    for j in 0..a.ncols() {
        for i in 0..a.nrows() {
            s += a[(i, j)] * b[(i, j)];
        }
    }
    s
}

pub fn axpy(a: MatRef<'_, f64>, h: f64, d: MatRef<'_, f64>) -> Mat<f64> {
    Mat::from_fn(a.nrows(), a.ncols(), |i, j| a[(i, j)] + h * d[(i, j)])
}

/// `‖a − b‖ / max(‖a‖, ‖b‖, floor)`.
pub fn rel_err(a: MatRef<'_, f64>, b: MatRef<'_, f64>, floor: f64) -> f64 {
    let d = Mat::from_fn(a.nrows(), a.ncols(), |i, j| a[(i, j)] - b[(i, j)]);
    norm(d.as_ref()) / norm(a).max(norm(b)).max(floor)
}

#[track_caller]
pub fn assert_close(what: &str, got: MatRef<'_, f64>, want: MatRef<'_, f64>, tol: f64) {
    assert_eq!(
        (got.nrows(), got.ncols()),
        (want.nrows(), want.ncols()),
        "{what}: shapes differ"
    );
    let e = rel_err(got, want, 1e-3);
    assert!(
        e <= tol,
        "{what}: relative error {e:e} > {tol:e}\n got  {got:?}\n want {want:?}"
    );
}

/// A two-block scalar test function.
pub type F2<'a> = &'a dyn Fn(&mut Tape, Var, Var) -> Var;

/// Central-difference gradient of `f` at `(x, y)`, both blocks.
pub fn fd_grad(f: F2<'_>, x: MatRef<'_, f64>, y: MatRef<'_, f64>, h: f64) -> (Mat<f64>, Mat<f64>) {
    let mut ev = Evaluator::new();
    let mut gx = Mat::zeros(x.nrows(), x.ncols());
    let mut gy = Mat::zeros(y.nrows(), y.ncols());
    for j in 0..x.ncols() {
        for i in 0..x.nrows() {
            let mut xp = x.to_owned();
            let mut xm = x.to_owned();
            xp[(i, j)] += h;
            xm[(i, j)] -= h;
            gx[(i, j)] = (ev.value2(f, xp.as_ref(), y) - ev.value2(f, xm.as_ref(), y)) / (2.0 * h);
        }
    }
    for j in 0..y.ncols() {
        for i in 0..y.nrows() {
            let mut yp = y.to_owned();
            let mut ym = y.to_owned();
            yp[(i, j)] += h;
            ym[(i, j)] -= h;
            gy[(i, j)] = (ev.value2(f, x, yp.as_ref()) - ev.value2(f, x, ym.as_ref())) / (2.0 * h);
        }
    }
    (gx, gy)
}

/// Central difference of the exact gradient along `(u, v)`: the Hessian-vector product.
pub fn fd_hvp(
    f: F2<'_>,
    x: MatRef<'_, f64>,
    y: MatRef<'_, f64>,
    u: MatRef<'_, f64>,
    v: MatRef<'_, f64>,
    h: f64,
) -> (Mat<f64>, Mat<f64>) {
    let mut ev = Evaluator::new();
    let (_, gxp, gyp) = ev.value_and_grad2(f, axpy(x, h, u).as_ref(), axpy(y, h, v).as_ref());
    let (_, gxm, gym) = ev.value_and_grad2(f, axpy(x, -h, u).as_ref(), axpy(y, -h, v).as_ref());
    let d = |p: &Mat<f64>, m: &Mat<f64>| {
        Mat::from_fn(p.nrows(), p.ncols(), |i, j| {
            (p[(i, j)] - m[(i, j)]) / (2.0 * h)
        })
    };
    (d(&gxp, &gxm), d(&gyp, &gym))
}

//! Small vector helpers on `n × 1` matrices (the workspace's vector type).

use bilevel_linalg::{Mat, MatRef};

/// A column of zeros.
pub fn zeros(n: usize) -> Mat<f64> {
    Mat::zeros(n, 1)
}

/// A column holding `v`.
pub fn from_slice(v: &[f64]) -> Mat<f64> {
    Mat::from_fn(v.len(), 1, |i, _| v[i])
}

/// The entries of a column.
pub fn to_vec(m: &Mat<f64>) -> Vec<f64> {
    m.col_as_slice(0).to_vec()
}

/// `⟨a, b⟩`.
#[track_caller]
pub fn dot(a: &Mat<f64>, b: &Mat<f64>) -> f64 {
    assert_eq!(a.nrows(), b.nrows(), "dot: lengths differ");
    a.col_as_slice(0)
        .iter()
        .zip(b.col_as_slice(0))
        .map(|(x, y)| x * y)
        .sum()
}

/// `‖a‖²`.
pub fn norm_sq(a: &Mat<f64>) -> f64 {
    dot(a, a)
}

/// `‖a‖`.
pub fn norm(a: &Mat<f64>) -> f64 {
    norm_sq(a).sqrt()
}

/// `y ← y + alpha·x`.
#[track_caller]
pub fn axpy(y: &mut Mat<f64>, alpha: f64, x: &Mat<f64>) {
    assert_eq!(y.nrows(), x.nrows(), "axpy: lengths differ");
    for (yi, xi) in y.col_as_slice_mut(0).iter_mut().zip(x.col_as_slice(0)) {
        *yi += alpha * xi;
    }
}

/// `a·x + b·y` as a new column.
#[track_caller]
pub fn lincomb(a: f64, x: &Mat<f64>, b: f64, y: &Mat<f64>) -> Mat<f64> {
    assert_eq!(x.nrows(), y.nrows(), "lincomb: lengths differ");
    Mat::from_fn(x.nrows(), 1, |i, _| a * x[(i, 0)] + b * y[(i, 0)])
}

/// `x ← alpha·x`.
pub fn scale(x: &mut Mat<f64>, alpha: f64) {
    for xi in x.col_as_slice_mut(0) {
        *xi *= alpha;
    }
}

/// `v` onto the ball `‖v‖ ≤ r`: scaled by `r/‖v‖` when outside, unchanged inside.
pub fn project_ball(v: &mut Mat<f64>, r: f64) {
    let n = norm(v);
    if n > r {
        scale(v, r / n);
    }
}

/// The first non-finite entry of `m`, if any.
pub fn first_non_finite(m: MatRef<'_, f64>) -> Option<usize> {
    (0..m.nrows() * m.ncols()).find(|&k| !m[(k % m.nrows(), k / m.nrows())].is_finite())
}

/// The Frobenius norm of a view.
pub fn norm_ref(m: MatRef<'_, f64>) -> f64 {
    let mut s = 0.0;
    for j in 0..m.ncols() {
        for i in 0..m.nrows() {
            s += m[(i, j)] * m[(i, j)];
        }
    }
    s.sqrt()
}

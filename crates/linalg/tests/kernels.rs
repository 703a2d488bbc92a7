//! Level-1 and level-2 kernels against naive loops, on contiguous and strided views.

mod common;

use bilevel_linalg::{
    Accum, Mat, Par, all_finite, axpby, axpy, dot, map, map_inplace, matmul, matvec, norm_l2,
    norm_l2_sqr, norm_max, reshape_col, reshape_col_mut, scale, zip_map,
};
use common::*;

#[test]
fn level1_kernels_match_naive_loops() {
    bilevel_linalg::disable_global_parallelism();
    let mut r = rng(40);
    for (m, n) in [(1, 1), (17, 1), (1000, 1), (33, 7)] {
        let a = uniform(&mut r, m, n);
        let b = uniform(&mut r, m, n);
        let naive_dot: f64 = (0..n)
            .flat_map(|j| (0..m).map(move |i| (i, j)))
            .map(|(i, j)| a[(i, j)] * b[(i, j)])
            .sum();
        assert!((dot(a.as_ref(), b.as_ref()) - naive_dot).abs() < 1e-12);
        assert!((norm_l2_sqr(a.as_ref()) - dot(a.as_ref(), a.as_ref())).abs() < 1e-12);
        assert!((norm_l2(a.as_ref()) - dot(a.as_ref(), a.as_ref()).sqrt()).abs() < 1e-12);
        let naive_max = (0..n)
            .flat_map(|j| (0..m).map(move |i| (i, j)))
            .map(|(i, j)| a[(i, j)].abs())
            .fold(0.0, f64::max);
        assert_eq!(norm_max(a.as_ref()), naive_max);

        let mut y = b.clone();
        axpy(0.5, a.as_ref(), y.as_mut());
        let want = Mat::from_fn(m, n, |i, j| b[(i, j)] + 0.5 * a[(i, j)]);
        assert!(max_abs_diff(y.as_ref(), want.as_ref()) < 1e-15);

        let mut y = b.clone();
        axpby(2.0, a.as_ref(), -3.0, y.as_mut());
        let want = Mat::from_fn(m, n, |i, j| 2.0 * a[(i, j)] - 3.0 * b[(i, j)]);
        assert!(max_abs_diff(y.as_ref(), want.as_ref()) < 1e-15);

        let mut y = a.clone();
        scale(-4.0, y.as_mut());
        assert!(
            max_abs_diff(
                y.as_ref(),
                Mat::from_fn(m, n, |i, j| -4.0 * a[(i, j)]).as_ref()
            ) == 0.0
        );

        let mut y = Mat::zeros(m, n);
        map(y.as_mut(), a.as_ref(), f64::tanh);
        assert_eq!(y, Mat::from_fn(m, n, |i, j| a[(i, j)].tanh()));
        map_inplace(y.as_mut(), |v| v * v);
        assert_eq!(y, Mat::from_fn(m, n, |i, j| a[(i, j)].tanh().powi(2)));
        zip_map(y.as_mut(), a.as_ref(), b.as_ref(), f64::max);
        assert_eq!(y, Mat::from_fn(m, n, |i, j| a[(i, j)].max(b[(i, j)])));
    }
}

#[test]
fn kernels_accept_strided_views() {
    let mut r = rng(41);
    let a = uniform(&mut r, 6, 9);
    // A row of a column-major matrix is a strided 1 × 9 view; its transpose a 9 × 1 one.
    let row = a.as_ref().row(2).transpose().as_mat();
    let col = a.as_ref().subcols(4, 1);
    let rt = Mat::from_fn(9, 1, |i, _| a[(2, i)]);
    assert!((dot(row, row) - dot(rt.as_ref(), rt.as_ref())).abs() < 1e-14);
    let mut y = Mat::from_fn(6, 1, |i, _| i as f64);
    axpy(1.0, col, y.as_mut());
    assert_eq!(y[(5, 0)], 5.0 + a[(5, 4)]);
}

#[test]
fn matvec_and_matmul_agree_with_naive_products_in_both_parallel_modes() {
    bilevel_linalg::disable_global_parallelism();
    let mut r = rng(42);
    let a = uniform(&mut r, 300, 200);
    let x = uniform(&mut r, 200, 1);
    let naive = Mat::from_fn(300, 1, |i, _| {
        (0..200).map(|k| a[(i, k)] * x[(k, 0)]).sum::<f64>()
    });
    for par in [Par::Seq, Par::rayon(2)] {
        let mut y = Mat::from_fn(300, 1, |_, _| 1.0);
        matvec(y.as_mut(), Accum::Add, a.as_ref(), x.as_ref(), 2.0, par);
        let want = Mat::from_fn(300, 1, |i, _| 1.0 + 2.0 * naive[(i, 0)]);
        assert!(max_abs_diff(y.as_ref(), want.as_ref()) < 1e-12);
        // Large enough to run in parallel (above PAR_MIN_FLOPS).
        let b = uniform(&mut r, 200, 50);
        let mut c = Mat::zeros(300, 50);
        matmul(c.as_mut(), Accum::Replace, a.as_ref(), b.as_ref(), 1.0, par);
        let naive_c = Mat::from_fn(300, 50, |i, j| {
            (0..200).map(|k| a[(i, k)] * b[(k, j)]).sum::<f64>()
        });
        assert!(max_abs_diff(c.as_ref(), naive_c.as_ref()) < 1e-12);
    }
}

#[test]
fn finiteness_and_reshape() {
    let mut a = Mat::<f64>::zeros(4, 3);
    assert!(all_finite(a.as_ref()));
    a[(3, 2)] = f64::INFINITY;
    assert!(!all_finite(a.as_ref()));
    a[(3, 2)] = f64::NAN;
    assert!(!all_finite(a.as_ref()));

    let mut v = Mat::from_fn(12, 1, |i, _| i as f64);
    let m = reshape_col(v.as_ref(), 4, 3);
    assert_eq!(
        (m.shape(), m[(3, 0)], m[(0, 1)], m[(2, 2)]),
        ((4, 3), 3.0, 4.0, 10.0)
    );
    reshape_col_mut(v.as_mut(), 3, 4)[(1, 1)] = -1.0;
    assert_eq!(v[(4, 0)], -1.0);
}

#[test]
#[should_panic(expected = "axpy shape mismatch: 3x1 vs 4x1")]
fn axpy_panics_naming_shapes() {
    axpy(
        1.0,
        Mat::<f64>::zeros(3, 1).as_ref(),
        Mat::<f64>::zeros(4, 1).as_mut(),
    );
}

#[test]
#[should_panic(expected = "matmul shape mismatch: dst 2x2, lhs 2x3, rhs 2x2")]
fn matmul_panics_naming_shapes() {
    let mut c = Mat::<f64>::zeros(2, 2);
    matmul(
        c.as_mut(),
        Accum::Replace,
        Mat::<f64>::zeros(2, 3).as_ref(),
        Mat::<f64>::zeros(2, 2).as_ref(),
        1.0,
        Par::Seq,
    );
}

/// `dst ← dst0 + lhs·rhs` (or `lhs·rhs`) by the textbook triple loop.
fn naive_product(
    dst0: &Mat<f64>,
    add: bool,
    lhs: bilevel_linalg::MatRef<'_, f64>,
    rhs: bilevel_linalg::MatRef<'_, f64>,
) -> Mat<f64> {
    Mat::from_fn(lhs.nrows(), rhs.ncols(), |i, j| {
        let s: f64 = (0..lhs.ncols()).map(|p| lhs[(i, p)] * rhs[(p, j)]).sum();
        if add { dst0[(i, j)] + s } else { s }
    })
}

/// The narrow-product fast paths (rows of the left operand contiguous, as for feature-major data
/// read transposed; or a short inner dimension with contiguous columns) agree with the naive
/// product on every tile shape and tail: inner dimensions that are not multiples of 8, row and
/// column counts that are not multiples of the tiles, and both accumulation modes.
#[test]
fn narrow_products_match_naive_loops() {
    bilevel_linalg::disable_global_parallelism();
    let mut r = rng(41);
    for &(m, k, n) in &[
        (1, 8, 1),
        (3, 9, 2),
        (4, 16, 5),
        (7, 23, 11),
        (13, 784, 10),
        (64, 784, 20),
        (9, 5, 3),
        (16, 64, 10),
        (17, 63, 21),
        (33, 1, 7),
        (64, 50, 10),
        (100, 10, 50),
    ] {
        // Dot form: the left operand is the transpose of a k × m column-major matrix.
        let xt = uniform(&mut r, k, m);
        let w = uniform(&mut r, k, n);
        let dst0 = uniform(&mut r, m, n);
        for (accum, add) in [(Accum::Replace, false), (Accum::Add, true)] {
            let mut c = dst0.clone();
            matmul(c.as_mut(), accum, xt.transpose(), w.as_ref(), 1.0, Par::Seq);
            let want = naive_product(&dst0, add, xt.transpose(), w.as_ref());
            assert!(
                max_abs_diff(c.as_ref(), want.as_ref()) < 1e-12 * k as f64,
                "dot form {m}x{k}x{n} add={add}"
            );
        }
        // Broadcast form: column-major left operand, right operand plain and transposed.
        let a = uniform(&mut r, m, k);
        let b = uniform(&mut r, k, n);
        let bt = uniform(&mut r, n, k);
        for (accum, add) in [(Accum::Replace, false), (Accum::Add, true)] {
            for rhs in [b.as_ref(), bt.transpose()] {
                let mut c = dst0.clone();
                matmul(c.as_mut(), accum, a.as_ref(), rhs, 1.0, Par::Seq);
                let want = naive_product(&dst0, add, a.as_ref(), rhs);
                assert!(
                    max_abs_diff(c.as_ref(), want.as_ref()) < 1e-12 * k as f64,
                    "broadcast form {m}x{k}x{n} add={add}"
                );
            }
        }
    }
}

/// A product into a strided block of a larger matrix writes that block only.
#[test]
fn narrow_products_write_only_their_block() {
    let mut r = rng(42);
    let (m, k, n) = (13, 37, 7);
    let xt = uniform(&mut r, k, m);
    let w = uniform(&mut r, k, n);
    let mut big = Mat::from_fn(m + 5, n + 3, |i, j| (i * 100 + j) as f64);
    let before = big.clone();
    matmul(
        big.as_mut().submatrix_mut(2, 1, m, n),
        Accum::Replace,
        xt.transpose(),
        w.as_ref(),
        1.0,
        Par::Seq,
    );
    let want = naive_product(&Mat::zeros(m, n), false, xt.transpose(), w.as_ref());
    for j in 0..n + 3 {
        for i in 0..m + 5 {
            let inside = (2..2 + m).contains(&i) && (1..1 + n).contains(&j);
            if inside {
                assert!((big[(i, j)] - want[(i - 2, j - 1)]).abs() < 1e-12);
            } else {
                assert_eq!(big[(i, j)], before[(i, j)], "({i}, {j}) outside the block");
            }
        }
    }
}

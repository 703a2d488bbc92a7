//! Every tape operation checked against central finite differences: gradient (VJP of a scalar),
//! Hessian-vector product (VJP tangent), JVP and seeded VJP of the raw operation, symmetry of
//! the Hessian, and record-once HVPs, on seeded random inputs of several shapes.

#![allow(
    clippy::needless_borrows_for_generic_args,
    clippy::needless_range_loop,
    clippy::type_complexity
)]

mod common;

use bilevel_ad::{Evaluator, Tape, Var};
use bilevel_linalg::{Mat, MatRef};
use common::*;

/// Input domain of a test operand.
#[derive(Clone, Copy)]
enum Dom {
    Any,
    Pos,
    /// Away from zero (for relu's kink).
    AwayFromZero,
}

fn sample(rng: &mut rand::rngs::StdRng, (r, c): (usize, usize), d: Dom) -> Mat<f64> {
    match d {
        Dom::Any => rand_mat(rng, r, c, -1.5, 1.5),
        Dom::Pos => rand_mat(rng, r, c, 0.5, 2.0),
        Dom::AwayFromZero => {
            let m = rand_mat(rng, r, c, 0.2, 1.5);
            let s = rand_mat(rng, r, c, -1.0, 1.0);
            Mat::from_fn(r, c, |i, j| {
                if s[(i, j)] < 0.0 {
                    -m[(i, j)]
                } else {
                    m[(i, j)]
                }
            })
        }
    }
}

/// Check `op(a, b)` with all rules. Single-input operations ignore `b`.
fn check(
    name: &str,
    sa: (usize, usize),
    da: Dom,
    sb: (usize, usize),
    db: Dom,
    op: &dyn Fn(&mut Tape, Var, Var) -> Var,
) {
    for seed in 0..3u64 {
        let mut rng = rng(seed * 7919 + name.len() as u64);
        let a = sample(&mut rng, sa, da);
        let b = sample(&mut rng, sb, db);
        // Output shape, and a random projection R of the output.
        let (yr, yc) = {
            let mut t = Tape::new();
            let (av, bv) = (t.input(a.as_ref()), t.input(b.as_ref()));
            let y = op(&mut t, av, bv);
            t.shape(y)
        };
        let r = rand_mat(&mut rng, yr, yc, -1.0, 1.0);
        // Scalar test function: ⟨R, y⟩ + ½‖y‖², so both ȳ and ȳ̇ are nonzero.
        let f = |t: &mut Tape, a: Var, b: Var| {
            let y = op(t, a, b);
            let rv = t.constant(r.as_ref());
            let d = t.dot(rv, y);
            let s = t.sum_sq(y);
            let s = t.scale(s, 0.5);
            t.add(d, s)
        };
        let h = 1e-5;
        let tol = 1e-6;
        let mut ev = Evaluator::new();
        // Gradient.
        let (_, gx, gy) = ev.value_and_grad2(&f, a.as_ref(), b.as_ref());
        let (fx, fy) = fd_grad(&f, a.as_ref(), b.as_ref(), h);
        assert_close(
            &format!("{name} seed {seed}: grad a"),
            gx.as_ref(),
            fx.as_ref(),
            tol,
        );
        assert_close(
            &format!("{name} seed {seed}: grad b"),
            gy.as_ref(),
            fy.as_ref(),
            tol,
        );
        // Hessian-vector product along a random direction.
        let u = rand_mat(&mut rng, sa.0, sa.1, -1.0, 1.0);
        let v = rand_mat(&mut rng, sb.0, sb.1, -1.0, 1.0);
        let hv = ev.hvp2(
            &f,
            a.as_ref(),
            b.as_ref(),
            Some(u.as_ref()),
            Some(v.as_ref()),
        );
        let (hx, hy) = fd_hvp(&f, a.as_ref(), b.as_ref(), u.as_ref(), v.as_ref(), h);
        assert_close(
            &format!("{name} seed {seed}: hvp a"),
            hv.hv_x.as_ref(),
            hx.as_ref(),
            tol,
        );
        assert_close(
            &format!("{name} seed {seed}: hvp b"),
            hv.hv_y.as_ref(),
            hy.as_ref(),
            tol,
        );
        // Symmetry ⟨w, H z⟩ = ⟨z, H w⟩.
        let (wu, wv) = (
            rand_mat(&mut rng, sa.0, sa.1, -1.0, 1.0),
            rand_mat(&mut rng, sb.0, sb.1, -1.0, 1.0),
        );
        let hw = ev.hvp2(
            &f,
            a.as_ref(),
            b.as_ref(),
            Some(wu.as_ref()),
            Some(wv.as_ref()),
        );
        let lhs = inner(wu.as_ref(), hv.hv_x.as_ref()) + inner(wv.as_ref(), hv.hv_y.as_ref());
        let rhs = inner(u.as_ref(), hw.hv_x.as_ref()) + inner(v.as_ref(), hw.hv_y.as_ref());
        assert!(
            (lhs - rhs).abs() <= 1e-10 * lhs.abs().max(1.0),
            "{name}: asymmetric Hessian {lhs} vs {rhs}"
        );
        // Record once, apply many: same products as the one-pass HVP.
        {
            let mut lin = ev.linearize2(&f, a.as_ref(), b.as_ref());
            let mut hx2 = Mat::zeros(sa.0, sa.1);
            let mut hy2 = Mat::zeros(sb.0, sb.1);
            for _ in 0..2 {
                lin.hvp_into(
                    Some(u.as_ref()),
                    Some(v.as_ref()),
                    Some(hx2.as_mut()),
                    Some(hy2.as_mut()),
                );
            }
            assert_close(
                &format!("{name}: linearized hvp a"),
                hx2.as_ref(),
                hv.hv_x.as_ref(),
                1e-13,
            );
            assert_close(
                &format!("{name}: linearized hvp b"),
                hy2.as_ref(),
                hv.hv_y.as_ref(),
                1e-13,
            );
        }
        // JVP of the raw operation against a central difference of its value.
        let mut t = Tape::new();
        let (av, bv) = (t.input(a.as_ref()), t.input(b.as_ref()));
        let y = op(&mut t, av, bv);
        t.set_tangent(av, u.as_ref());
        t.set_tangent(bv, v.as_ref());
        t.forward_tangent();
        let jv = t.tangent(y).to_owned();
        let val = |a: MatRef<'_, f64>, b: MatRef<'_, f64>| {
            let mut t = Tape::new();
            let (av, bv) = (t.input(a), t.input(b));
            let y = op(&mut t, av, bv);
            t.value(y).to_owned()
        };
        let yp = val(
            axpy(a.as_ref(), h, u.as_ref()).as_ref(),
            axpy(b.as_ref(), h, v.as_ref()).as_ref(),
        );
        let ym = val(
            axpy(a.as_ref(), -h, u.as_ref()).as_ref(),
            axpy(b.as_ref(), -h, v.as_ref()).as_ref(),
        );
        let fdj = Mat::from_fn(yr, yc, |i, j| (yp[(i, j)] - ym[(i, j)]) / (2.0 * h));
        assert_close(
            &format!("{name} seed {seed}: jvp"),
            jv.as_ref(),
            fdj.as_ref(),
            tol,
        );
        // Seeded VJP: ⟨R, J·[u; v]⟩ = ⟨Jᵀ R, [u; v]⟩.
        t.backward_seeded(y, r.as_ref());
        let lhs = inner(r.as_ref(), jv.as_ref());
        let rhs = inner(t.adjoint(av), u.as_ref()) + inner(t.adjoint(bv), v.as_ref());
        assert!(
            (lhs - rhs).abs() <= 1e-10 * lhs.abs().max(1.0),
            "{name}: VJP/JVP transpose mismatch {lhs} vs {rhs}"
        );
    }
}

const S: (usize, usize) = (1, 1);

macro_rules! unary_test {
    ($test:ident, $method:ident, $dom:expr) => {
        #[test]
        fn $test() {
            for shape in [(1, 1), (5, 1), (4, 3)] {
                check(stringify!($method), shape, $dom, S, Dom::Any, &|t, a, _| {
                    t.$method(a)
                });
            }
        }
    };
}

unary_test!(exp, exp, Dom::Any);
unary_test!(log, log, Dom::Pos);
unary_test!(log1p, log1p, Dom::Pos);
unary_test!(sqrt, sqrt, Dom::Pos);
unary_test!(sin, sin, Dom::Any);
unary_test!(cos, cos, Dom::Any);
unary_test!(tanh, tanh, Dom::Any);
unary_test!(sigmoid, sigmoid, Dom::Any);
unary_test!(softplus, softplus, Dom::Any);
unary_test!(relu, relu, Dom::AwayFromZero);
unary_test!(neg, neg, Dom::Any);
unary_test!(sum, sum, Dom::Any);
unary_test!(mean, mean, Dom::Any);
unary_test!(sum_rows, sum_rows, Dom::Any);
unary_test!(mean_rows, mean_rows, Dom::Any);
unary_test!(sum_cols, sum_cols, Dom::Any);
unary_test!(mean_cols, mean_cols, Dom::Any);
unary_test!(sum_sq, sum_sq, Dom::Any);
unary_test!(logsumexp_rows, logsumexp_rows, Dom::Any);
unary_test!(logsumexp, logsumexp, Dom::Any);
unary_test!(softmax_rows, softmax_rows, Dom::Any);

#[test]
fn powi() {
    for n in [-2, 0, 1, 2, 3] {
        check("powi", (4, 2), Dom::Pos, S, Dom::Any, &move |t, a, _| {
            t.powi(a, n)
        });
    }
    check(
        "powi odd, negative base",
        (3, 1),
        Dom::AwayFromZero,
        S,
        Dom::Any,
        &|t, a, _| t.powi(a, 3),
    );
}

#[test]
fn scale_and_shift() {
    check("scale", (3, 2), Dom::Any, S, Dom::Any, &|t, a, _| {
        t.scale(a, -2.5)
    });
    check("shift", (3, 2), Dom::Any, S, Dom::Any, &|t, a, _| {
        t.shift(a, 0.75)
    });
}

#[test]
fn binary_elementwise() {
    for shape in [(1, 1), (6, 1), (3, 4)] {
        check("add", shape, Dom::Any, shape, Dom::Any, &|t, a, b| {
            t.add(a, b)
        });
        check("sub", shape, Dom::Any, shape, Dom::Any, &|t, a, b| {
            t.sub(a, b)
        });
        check("mul", shape, Dom::Any, shape, Dom::Any, &|t, a, b| {
            t.mul(a, b)
        });
        check("div", shape, Dom::Any, shape, Dom::Pos, &|t, a, b| {
            t.div(a, b)
        });
        check("dot", shape, Dom::Any, shape, Dom::Any, &|t, a, b| {
            t.dot(a, b)
        });
        check(
            "same input twice",
            shape,
            Dom::Pos,
            S,
            Dom::Any,
            &|t, a, _| {
                let m = t.mul(a, a);
                t.div(m, a)
            },
        );
    }
}

#[test]
fn scalar_mul() {
    check("scalar_mul", S, Dom::Any, (4, 3), Dom::Any, &|t, s, a| {
        t.scalar_mul(s, a)
    });
}

#[test]
fn matmul_all_transpositions() {
    let (m, k, n) = (4, 3, 5);
    check(
        "matmul nn",
        (m, k),
        Dom::Any,
        (k, n),
        Dom::Any,
        &|t, a, b| t.matmul(a, b),
    );
    check(
        "matmul tn",
        (k, m),
        Dom::Any,
        (k, n),
        Dom::Any,
        &|t, a, b| t.matmul_t(a, true, b, false),
    );
    check(
        "matmul nt",
        (m, k),
        Dom::Any,
        (n, k),
        Dom::Any,
        &|t, a, b| t.matmul_t(a, false, b, true),
    );
    check(
        "matmul tt",
        (k, m),
        Dom::Any,
        (n, k),
        Dom::Any,
        &|t, a, b| t.matmul_t(a, true, b, true),
    );
    check("matvec", (m, k), Dom::Any, (k, 1), Dom::Any, &|t, a, b| {
        t.matmul(a, b)
    });
    check(
        "self product aᵀa",
        (m, k),
        Dom::Any,
        S,
        Dom::Any,
        &|t, a, _| t.matmul_t(a, true, a, false),
    );
}

#[test]
fn matmul_with_constant_operand() {
    let mut rng = rng(3);
    let c = rand_mat(&mut rng, 6, 4, -1.0, 1.0);
    check("const · x", (4, 2), Dom::Any, S, Dom::Any, &|t, a, _| {
        let cv = t.constant(c.as_ref());
        t.matmul(cv, a)
    });
    let shared = std::sync::Arc::new(c.clone());
    check(
        "shared constantᵀ · x",
        (6, 3),
        Dom::Any,
        S,
        Dom::Any,
        &|t, a, _| {
            let cv = t.shared(&shared);
            t.matmul_t(cv, true, a, false)
        },
    );
}

#[test]
fn add_row_bias() {
    check("add_row", (5, 3), Dom::Any, (1, 3), Dom::Any, &|t, a, b| {
        t.add_row(a, b)
    });
}

#[test]
fn cross_entropy() {
    let labels = [2u32, 0, 1, 2, 1];
    check(
        "cross_entropy_rows",
        (5, 3),
        Dom::Any,
        S,
        Dom::Any,
        &|t, a, _| t.cross_entropy_rows(a, &labels),
    );
    check(
        "cross_entropy weighted",
        (5, 3),
        Dom::Any,
        (5, 1),
        Dom::Pos,
        &|t, a, w| t.cross_entropy(a, &labels, Some(w)),
    );
    check(
        "cross_entropy mean",
        (5, 3),
        Dom::Any,
        S,
        Dom::Any,
        &|t, a, _| t.cross_entropy(a, &labels, None),
    );
}

#[test]
fn shape_ops() {
    check("slice", (5, 4), Dom::Any, S, Dom::Any, &|t, a, _| {
        t.slice(a, 1, 2, 3, 2)
    });
    check("slice column", (7, 1), Dom::Any, S, Dom::Any, &|t, a, _| {
        t.slice(a, 2, 0, 4, 1)
    });
    check(
        "concat_rows",
        (3, 2),
        Dom::Any,
        (4, 2),
        Dom::Any,
        &|t, a, b| t.concat_rows(a, b),
    );
    check("reshape", (6, 2), Dom::Any, S, Dom::Any, &|t, a, _| {
        t.reshape(a, 3, 4)
    });
    check("gather_rows", (6, 3), Dom::Any, S, Dom::Any, &|t, a, _| {
        t.gather_rows(a, &[4, 0, 5, 2])
    });
    check(
        "gather_rows repeated",
        (5, 1),
        Dom::Any,
        S,
        Dom::Any,
        &|t, a, _| t.gather_rows(a, &[3, 1, 3, 3]),
    );
    check(
        "gather_rows of a constant times an input",
        (3, 2),
        Dom::Any,
        (4, 1),
        Dom::Any,
        &|t, w, x| {
            let c = Mat::from_fn(7, 3, |i, j| (i as f64 - 2.0 * j as f64) / 5.0);
            let c = t.constant(c.as_ref());
            let cb = t.gather_rows(c, &[6, 1, 4, 2]);
            let z = t.matmul(cb, w);
            let z = t.tanh(z);
            let xb = t.gather_rows(x, &[3, 0]);
            let s = t.sum_sq(xb);
            t.scalar_mul(s, z)
        },
    );
    check(
        "concat with constant",
        (3, 1),
        Dom::Any,
        S,
        Dom::Any,
        &|t, a, _| {
            let c = t.constant_scalar(2.0);
            let y = t.concat_rows(c, a);
            t.concat_rows(y, c)
        },
    );
}

use crate::problem::{Bounds, Problem};
use bilevel_ad::{Tape, Var};
use bilevel_linalg::{Mat, MatRef};

/// The "elementary (nasty) example" of Kwon, Kwon, Wright, Nowak and Lyu, "Fully First-Order
/// Methods for Bilevel Optimization" (part III):
/// `min_{x ∈ [−1, 1]} x² + y²` subject to `y ∈ argmin_{y ∈ [−1, 1]} xy`.
///
/// `y*(x) = −sign(x)` for `x ≠ 0` (the whole box at `x = 0`), so `Φ(x) = x² + 1` for `x ≠ 0` and
/// `Φ(0) = 0`: the minimizer `x* = 0` is isolated and `Φ` is discontinuous there. Known:
/// `g*(x) = −|x|`; the optimality gap is `|x|`. Both blocks carry the box `[−1, 1]`.
/// Start: `x0 = 0.5`, `y0 = 0`.
#[derive(Clone, Copy, Debug, Default)]
pub struct NastyConstrained;

impl Problem for NastyConstrained {
    fn name(&self) -> String {
        "nasty-constrained".into()
    }
    fn dim_x(&self) -> usize {
        1
    }
    fn dim_y(&self) -> usize {
        1
    }
    fn x0(&self) -> Mat<f64> {
        Mat::from_fn(1, 1, |_, _| 0.5)
    }
    fn y0(&self) -> Mat<f64> {
        Mat::zeros(1, 1)
    }
    fn f(&self, t: &mut Tape, x: Var, y: Var) -> Var {
        let a = t.sum_sq(x);
        let b = t.sum_sq(y);
        t.add(a, b)
    }
    fn g(&self, t: &mut Tape, x: Var, y: Var) -> Var {
        t.mul(x, y)
    }
    fn bounds_x(&self) -> Option<Bounds> {
        Some(Bounds { lo: -1.0, hi: 1.0 })
    }
    fn bounds_y(&self) -> Option<Bounds> {
        Some(Bounds { lo: -1.0, hi: 1.0 })
    }
    fn g_star(&self, x: MatRef<'_, f64>) -> Option<f64> {
        Some(-x[(0, 0)].abs())
    }
    fn optimality_gap(&self, x: MatRef<'_, f64>, _y: MatRef<'_, f64>) -> Option<f64> {
        Some(x[(0, 0)].abs())
    }
}

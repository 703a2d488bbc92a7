use crate::problem::Problem;
use bilevel_ad::{Tape, Var};
use bilevel_linalg::{Mat, MatRef};

/// Example 1 of "A Generalized Alternating Method for Bilevel Optimization under the
/// Polyak-Łojasiewicz Condition" (eq. (6)):
/// `f = x² + y₁ − sin(y₂)`, `g = ½(x + y₁ − sin y₂)²`, `x ∈ R`, `y ∈ R²`.
///
/// The lower level satisfies the PL condition with a continuum of minimizers. The global
/// optimal set is eq. (7): `x = 0.5`, `0.5 + y₁ − sin(y₂) = 0`; the optimality gap is eq. (46):
/// `‖x − 0.5‖² + ‖0.5 + y₁ − sin(y₂)‖²`. `g* = 0`. Start: the one given to
/// [`GaletExample1::with_start`], by default `x0 = 2`, `y0 = (2, 2)`.
#[derive(Clone, Debug)]
pub struct GaletExample1 {
    x0: f64,
    y0: [f64; 2],
}

impl Default for GaletExample1 {
    fn default() -> Self {
        GaletExample1 {
            x0: 2.0,
            y0: [2.0, 2.0],
        }
    }
}

impl GaletExample1 {
    /// The example started at `(x0, y0)`.
    pub fn with_start(x0: f64, y0: [f64; 2]) -> Self {
        GaletExample1 { x0, y0 }
    }

    /// `x + y₁ − sin(y₂)`.
    fn inner(t: &mut Tape, x: Var, y: Var) -> Var {
        let y1 = t.slice(y, 0, 0, 1, 1);
        let y2 = t.slice(y, 1, 0, 1, 1);
        let s = t.sin(y2);
        let a = t.add(x, y1);
        t.sub(a, s)
    }
}

impl Problem for GaletExample1 {
    fn name(&self) -> String {
        "galet-example1".into()
    }
    fn dim_x(&self) -> usize {
        1
    }
    fn dim_y(&self) -> usize {
        2
    }
    fn x0(&self) -> Mat<f64> {
        Mat::from_fn(1, 1, |_, _| self.x0)
    }
    fn y0(&self) -> Mat<f64> {
        Mat::from_fn(2, 1, |i, _| self.y0[i])
    }
    fn f(&self, t: &mut Tape, x: Var, y: Var) -> Var {
        let x2 = t.mul(x, x);
        let y1 = t.slice(y, 0, 0, 1, 1);
        let y2 = t.slice(y, 1, 0, 1, 1);
        let s = t.sin(y2);
        let a = t.add(x2, y1);
        t.sub(a, s)
    }
    fn g(&self, t: &mut Tape, x: Var, y: Var) -> Var {
        let r = Self::inner(t, x, y);
        let r2 = t.mul(r, r);
        t.scale(r2, 0.5)
    }
    fn g_star(&self, _x: MatRef<'_, f64>) -> Option<f64> {
        Some(0.0)
    }
    fn optimality_gap(&self, x: MatRef<'_, f64>, y: MatRef<'_, f64>) -> Option<f64> {
        let x = x[(0, 0)];
        Some((x - 0.5).powi(2) + (0.5 + y[(0, 0)] - y[(1, 0)].sin()).powi(2))
    }
}

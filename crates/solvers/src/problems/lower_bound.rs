use crate::problem::{Problem, Smoothness};
use bilevel_ad::{Tape, Var};
use bilevel_linalg::{Mat, MatRef};

/// The lower-bound construction of Kwon, Kwon, Wright, Nowak and Lyu, "Fully First-Order Methods
/// for Bilevel Optimization" ("Lower Bounds"): `f = y`, `g = ½(y − F(x))²`, `y ∈ R`, turning a
/// single-level nonconvex `F` into a bilevel problem with `y*(x) = F(x)` and `Φ = F`.
///
/// Here `F(x) = Σᵢ cos(xᵢ) + 0.1‖x‖²` (nonconvex, bounded below, smooth), so
/// `∇Φ(x) = ∇F(x) = 0.2x − sin(x)` and `g* = 0`. Start: `x0 = (0.5, …)`, `y0 = 0`.
#[derive(Clone, Copy, Debug)]
pub struct LowerBound {
    n: usize,
}

impl LowerBound {
    /// The construction with `x ∈ Rⁿ`.
    ///
    /// # Panics
    /// If `n == 0`.
    pub fn new(n: usize) -> Self {
        assert!(n >= 1, "LowerBound: n >= 1");
        LowerBound { n }
    }

    fn big_f(t: &mut Tape, x: Var) -> Var {
        let c = t.cos(x);
        let c = t.sum(c);
        let q = t.sum_sq(x);
        let q = t.scale(q, 0.1);
        t.add(c, q)
    }
}

impl Problem for LowerBound {
    /// `∇²ᵧᵧg = 1`, `f = y` is linear (`L_f = 0`), and `Φ = F` with
    /// `∇²F = diag(0.2 − cos xᵢ)`, so `L_Φ = 1.2`.
    fn smoothness(&self) -> Option<Smoothness> {
        Some(Smoothness {
            l_g: 1.0,
            l_g_xy: None,
            mu_g: Some(1.0),
            l_f: Some(0.0),
            l_h: None,
            l_phi: Some(1.2),
        })
    }
    fn name(&self) -> String {
        format!("lower-bound-n{}", self.n)
    }
    fn dim_x(&self) -> usize {
        self.n
    }
    fn dim_y(&self) -> usize {
        1
    }
    fn x0(&self) -> Mat<f64> {
        Mat::from_fn(self.n, 1, |_, _| 0.5)
    }
    fn y0(&self) -> Mat<f64> {
        Mat::zeros(1, 1)
    }
    fn f(&self, t: &mut Tape, _x: Var, y: Var) -> Var {
        t.sum(y)
    }
    fn g(&self, t: &mut Tape, x: Var, y: Var) -> Var {
        let fx = Self::big_f(t, x);
        let r = t.sub(y, fx);
        let r2 = t.mul(r, r);
        t.scale(r2, 0.5)
    }
    fn y_star(&self, x: MatRef<'_, f64>) -> Option<Mat<f64>> {
        let v: f64 = (0..self.n)
            .map(|i| x[(i, 0)].cos() + 0.1 * x[(i, 0)] * x[(i, 0)])
            .sum();
        Some(Mat::from_fn(1, 1, |_, _| v))
    }
    fn grad_phi(&self, x: MatRef<'_, f64>) -> Option<Mat<f64>> {
        Some(Mat::from_fn(self.n, 1, |i, _| {
            0.2 * x[(i, 0)] - x[(i, 0)].sin()
        }))
    }
    fn g_star(&self, _x: MatRef<'_, f64>) -> Option<f64> {
        Some(0.0)
    }
}

use super::{Normal, small_matmul};
use crate::problem::{Problem, Smoothness};
use bilevel_ad::{Tape, Var};
use bilevel_linalg::{Mat, MatRef};

/// Coreset selection (App. C.1.2 of "Perturbed Gradient Descent via Convex Quadratic
/// Approximation for Nonconvex Bilevel Optimization", after BOME):
/// `f = ‖y − y₀‖²`, `g = ‖y − Aσ(x)‖²`, `σ` the softmax, `x ∈ R⁴`, `y ∈ R²`, `A ∈ R^{2×4}`.
///
/// `A` and the target `y₀` are standard normal from a seed. Known exactly: `y*(x) = Aσ(x)`,
/// `g* = 0`; the metrics get `∇Φ` by the implicit-function linear solve at `y*`.
/// Start: `x0 = 0` (uniform weights), `y0 = 0`.
#[derive(Clone, Debug)]
pub struct Coreset {
    seed: u64,
    a: Mat<f64>,
    target: Mat<f64>,
}

impl Coreset {
    /// The problem with `A` and `y₀` drawn from `seed`.
    pub fn new(seed: u64) -> Self {
        let mut rng = Normal::new(seed);
        let a = rng.matrix(2, 4);
        let target = rng.column(2);
        Coreset { seed, a, target }
    }

    fn a_sigma(&self, t: &mut Tape, x: Var) -> Var {
        let xr = t.reshape(x, 1, 4);
        let s = t.softmax_rows(xr);
        let s = t.reshape(s, 4, 1);
        let a = t.constant(self.a.as_ref());
        t.matmul(a, s)
    }
}

impl Problem for Coreset {
    /// `∇²ᵧᵧg = 2I` and `∇²f = 2I` on the `y` block: `L_g = μ_g = L_f = 2`. `∇h` and `∇Φ`
    /// involve the softmax and get no stated bound.
    fn smoothness(&self) -> Option<Smoothness> {
        Some(Smoothness {
            l_g: 2.0,
            l_g_xy: None,
            mu_g: Some(2.0),
            l_f: Some(2.0),
            l_h: None,
            l_phi: None,
        })
    }
    fn name(&self) -> String {
        format!("coreset-s{}", self.seed)
    }
    fn dim_x(&self) -> usize {
        4
    }
    fn dim_y(&self) -> usize {
        2
    }
    fn x0(&self) -> Mat<f64> {
        Mat::zeros(4, 1)
    }
    fn y0(&self) -> Mat<f64> {
        Mat::zeros(2, 1)
    }
    fn f(&self, t: &mut Tape, _x: Var, y: Var) -> Var {
        let y0 = t.constant(self.target.as_ref());
        let r = t.sub(y, y0);
        t.sum_sq(r)
    }
    fn g(&self, t: &mut Tape, x: Var, y: Var) -> Var {
        let s = self.a_sigma(t, x);
        let r = t.sub(y, s);
        t.sum_sq(r)
    }
    fn y_star(&self, x: MatRef<'_, f64>) -> Option<Mat<f64>> {
        let m = (0..4).map(|i| x[(i, 0)]).fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = (0..4).map(|i| (x[(i, 0)] - m).exp()).collect();
        let z: f64 = e.iter().sum();
        let s = Mat::from_fn(4, 1, |i, _| e[i] / z);
        Some(small_matmul(&self.a, &s))
    }
    fn g_star(&self, _x: MatRef<'_, f64>) -> Option<f64> {
        Some(0.0)
    }
}

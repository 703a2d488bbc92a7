use crate::problem::{Problem, Smoothness};
use bilevel_ad::{Tape, Var};
use bilevel_linalg::{Mat, MatRef};

/// The quadratic test problem of "Sharper Analysis of Single-Loop Methods for Bilevel
/// Optimization" (§5):
/// `f = ½xᵀZx + (1/10)1ᵀy`, `g = ½yᵀZy − L xᵀy + 1ᵀy`, `Z = diag(L, …, μ)`.
///
/// With `μ = 0.1` and `L = κμ`. In dimension 2, `Z = diag(L, μ)` as in the paper; in higher
/// dimension the diagonal is log-spaced from `L` down to `μ`.
///
/// Known exactly: `y*(x) = Z⁻¹(Lx − 1)` and, since `∂y*/∂x = L Z⁻¹`,
/// `∇Φ(x) = Zx + (L/10) Z⁻¹1` (the paper's eq. (11) drops the factor 1/10), so
/// `x* = −(L/10) Z⁻²1`; `g*(x) = −½(Lx − 1)ᵀZ⁻¹(Lx − 1)`. The optimality gap is
/// `‖x − x*‖² + ‖y − y*(x)‖²`. Start: `x0 = 1`, `y0 = 0`.
#[derive(Clone, Debug)]
pub struct QuadraticKappa {
    kappa: f64,
    mu: f64,
    z: Mat<f64>,
}

impl QuadraticKappa {
    /// The problem with condition number `kappa ≥ 1` (`μ = 0.1`, `L = κμ`) in dimension `dim ≥ 1`.
    ///
    /// # Panics
    /// If `kappa < 1` or `dim == 0`.
    pub fn new(kappa: f64, dim: usize) -> Self {
        assert!(
            kappa >= 1.0 && dim >= 1,
            "QuadraticKappa: need kappa >= 1 and dim >= 1"
        );
        let mu = 0.1;
        let l = kappa * mu;
        let z = Mat::from_fn(dim, 1, |i, _| {
            if dim == 1 {
                l
            } else {
                l * (mu / l).powf(i as f64 / (dim - 1) as f64)
            }
        });
        QuadraticKappa { kappa, mu, z }
    }

    /// `L = κμ`, the smoothness constant of `g(x, ·)` (and of `Φ`).
    pub fn l(&self) -> f64 {
        self.kappa * self.mu
    }

    /// `μ`, the strong convexity constant of `g(x, ·)`.
    pub fn mu(&self) -> f64 {
        self.mu
    }

    /// The minimizer `x* = −(L/10) Z⁻²1` of `Φ`.
    pub fn x_star(&self) -> Mat<f64> {
        let l = self.l();
        Mat::from_fn(self.z.nrows(), 1, |i, _| {
            -0.1 * l / (self.z[(i, 0)] * self.z[(i, 0)])
        })
    }
}

impl QuadraticKappa {
    /// The weights `N/|B|` on the coordinates in `idx`, 0 elsewhere.
    fn batch_mask(&self, idx: &[usize]) -> Mat<f64> {
        let n = self.z.nrows();
        let w = n as f64 / idx.len() as f64;
        let mut m = Mat::zeros(n, 1);
        for &i in idx {
            m[(i, 0)] = w;
        }
        m
    }
}

/// Both objectives are separable, so coordinate `i` is sample `i` (`N_f = N_g = dim`):
/// `fᵢ = N(½zᵢxᵢ² + 0.1yᵢ)`, `gᵢ = N(½zᵢyᵢ² − Lxᵢyᵢ + yᵢ)`; a batch average reweights the chosen
/// coordinates by `N/|B|`.
impl crate::problem::DataSum for QuadraticKappa {
    fn samples_f(&self) -> usize {
        self.z.nrows()
    }
    fn samples_g(&self) -> usize {
        self.z.nrows()
    }
    fn f_batch(&self, t: &mut Tape, x: Var, y: Var, idx: &[usize]) -> Var {
        let m = self.batch_mask(idx);
        let mz = Mat::from_fn(m.nrows(), 1, |i, _| m[(i, 0)] * self.z[(i, 0)]);
        let mz = t.constant(mz.as_ref());
        let m = t.constant(m.as_ref());
        let zx = t.mul(mz, x);
        let q = t.dot(x, zx);
        let q = t.scale(q, 0.5);
        let s = t.dot(m, y);
        let s = t.scale(s, 0.1);
        t.add(q, s)
    }
    fn g_batch(&self, t: &mut Tape, x: Var, y: Var, idx: &[usize]) -> Var {
        let m = self.batch_mask(idx);
        let mz = Mat::from_fn(m.nrows(), 1, |i, _| m[(i, 0)] * self.z[(i, 0)]);
        let mz = t.constant(mz.as_ref());
        let m = t.constant(m.as_ref());
        let zy = t.mul(mz, y);
        let q = t.dot(y, zy);
        let q = t.scale(q, 0.5);
        let my = t.mul(m, y);
        let xy = t.dot(x, my);
        let xy = t.scale(xy, -self.l());
        let s = t.dot(m, y);
        let a = t.add(q, xy);
        t.add(a, s)
    }
}

impl Problem for QuadraticKappa {
    /// `L_g = L_f = L_Φ = L` (`∇Φ(x) = Zx + const`), `μ_g = μ`, and `L_h = 2‖[−LI, Z]‖² = 4L²`
    /// for the affine `∇ᵧg = Zy − Lx + 1`.
    fn smoothness(&self) -> Option<Smoothness> {
        let l = self.l();
        Some(Smoothness {
            l_g: l,
            mu_g: Some(self.mu),
            // ∇²g = [[0, −L I], [−L I, Z]] with Z ⪯ L I: each 2 × 2 block [[0, −L], [−L, z]]
            // has spectral radius (z + √(z² + 4L²))/2 ≤ L(1 + √5)/2.
            l_g_xy: Some(l * (1.0 + 5f64.sqrt()) / 2.0),
            l_f: Some(l),
            l_h: Some(4.0 * l * l),
            l_phi: Some(l),
        })
    }
    fn data_sum(&self) -> Option<&dyn crate::problem::DataSum> {
        Some(self)
    }
    fn name(&self) -> String {
        format!("quadratic-k{}-d{}", self.kappa, self.z.nrows())
    }
    fn dim_x(&self) -> usize {
        self.z.nrows()
    }
    fn dim_y(&self) -> usize {
        self.z.nrows()
    }
    fn x0(&self) -> Mat<f64> {
        Mat::from_fn(self.z.nrows(), 1, |_, _| 1.0)
    }
    fn y0(&self) -> Mat<f64> {
        Mat::zeros(self.z.nrows(), 1)
    }
    fn f(&self, t: &mut Tape, x: Var, y: Var) -> Var {
        let z = t.constant(self.z.as_ref());
        let zx = t.mul(z, x);
        let q = t.dot(x, zx);
        let q = t.scale(q, 0.5);
        let s = t.sum(y);
        let s = t.scale(s, 0.1);
        t.add(q, s)
    }
    fn g(&self, t: &mut Tape, x: Var, y: Var) -> Var {
        let z = t.constant(self.z.as_ref());
        let zy = t.mul(z, y);
        let q = t.dot(y, zy);
        let q = t.scale(q, 0.5);
        let xy = t.dot(x, y);
        let xy = t.scale(xy, -self.l());
        let s = t.sum(y);
        let a = t.add(q, xy);
        t.add(a, s)
    }
    fn y_star(&self, x: MatRef<'_, f64>) -> Option<Mat<f64>> {
        let l = self.l();
        Some(Mat::from_fn(x.nrows(), 1, |i, _| {
            (l * x[(i, 0)] - 1.0) / self.z[(i, 0)]
        }))
    }
    fn grad_phi(&self, x: MatRef<'_, f64>) -> Option<Mat<f64>> {
        let l = self.l();
        Some(Mat::from_fn(x.nrows(), 1, |i, _| {
            self.z[(i, 0)] * x[(i, 0)] + 0.1 * l / self.z[(i, 0)]
        }))
    }
    fn g_star(&self, x: MatRef<'_, f64>) -> Option<f64> {
        let l = self.l();
        Some(
            (0..x.nrows())
                .map(|i| {
                    let r = l * x[(i, 0)] - 1.0;
                    -0.5 * r * r / self.z[(i, 0)]
                })
                .sum(),
        )
    }
    fn optimality_gap(&self, x: MatRef<'_, f64>, y: MatRef<'_, f64>) -> Option<f64> {
        let xs = self.x_star();
        let ys = self.y_star(x)?;
        Some(
            (0..x.nrows())
                .map(|i| (x[(i, 0)] - xs[(i, 0)]).powi(2) + (y[(i, 0)] - ys[(i, 0)]).powi(2))
                .sum(),
        )
    }
}

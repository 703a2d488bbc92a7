//! Forward-mode dual numbers for scalar code.
//!
//! A [`Dual`] carries a value and one directional derivative; arithmetic and the elementary
//! functions propagate both, so evaluating `f(Dual::variable(x))` gives `f(x)` and `f′(x)`
//! exactly. Tensor code uses the tape's tangent sweep instead, which keeps primal and tangent
//! as two matrices so every rule stays a matrix kernel.

use std::ops::{Add, Div, Mul, Neg, Sub};

/// A dual number `re + eps·ε` with `ε² = 0`.
///
/// # Example
/// ```
/// use bilevel_ad::Dual;
/// let x = Dual::variable(0.5);
/// let y = (x * x).sin() + x.exp();
/// assert!((y.eps - (2.0 * 0.5 * (0.25f64).cos() + 0.5f64.exp())).abs() < 1e-15);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Dual {
    /// The value.
    pub re: f64,
    /// The directional derivative.
    pub eps: f64,
}

impl Dual {
    /// `re + eps·ε`.
    pub const fn new(re: f64, eps: f64) -> Self {
        Dual { re, eps }
    }
    /// A constant (zero derivative).
    pub const fn constant(re: f64) -> Self {
        Dual { re, eps: 0.0 }
    }
    /// The variable of differentiation (derivative one).
    pub const fn variable(re: f64) -> Self {
        Dual { re, eps: 1.0 }
    }
    #[inline]
    fn chain(self, f: f64, df: f64) -> Self {
        Dual {
            re: f,
            eps: df * self.eps,
        }
    }
    /// `eˣ`.
    pub fn exp(self) -> Self {
        let e = self.re.exp();
        self.chain(e, e)
    }
    /// Natural logarithm.
    pub fn ln(self) -> Self {
        self.chain(self.re.ln(), 1.0 / self.re)
    }
    /// `ln(1 + x)`.
    pub fn ln_1p(self) -> Self {
        self.chain(self.re.ln_1p(), 1.0 / (1.0 + self.re))
    }
    /// Square root.
    pub fn sqrt(self) -> Self {
        let s = self.re.sqrt();
        self.chain(s, 0.5 / s)
    }
    /// Sine.
    pub fn sin(self) -> Self {
        self.chain(self.re.sin(), self.re.cos())
    }
    /// Cosine.
    pub fn cos(self) -> Self {
        self.chain(self.re.cos(), -self.re.sin())
    }
    /// Hyperbolic tangent.
    pub fn tanh(self) -> Self {
        let t = self.re.tanh();
        self.chain(t, 1.0 - t * t)
    }
    /// Logistic sigmoid.
    pub fn sigmoid(self) -> Self {
        let s = crate::ops::elementwise::sigmoid(self.re);
        self.chain(s, s * (1.0 - s))
    }
    /// Integer power.
    pub fn powi(self, n: i32) -> Self {
        let d = if n == 0 {
            0.0
        } else {
            f64::from(n) * self.re.powi(n - 1)
        };
        self.chain(self.re.powi(n), d)
    }
}

/// The derivative of a scalar function at `x`, by forward mode.
///
/// # Example
/// ```
/// let d = bilevel_ad::dual::derivative(|x| x.powi(3), 2.0);
/// assert_eq!(d, 12.0);
/// ```
pub fn derivative(f: impl FnOnce(Dual) -> Dual, x: f64) -> f64 {
    f(Dual::variable(x)).eps
}

impl Add for Dual {
    type Output = Dual;
    fn add(self, o: Dual) -> Dual {
        Dual::new(self.re + o.re, self.eps + o.eps)
    }
}
impl Sub for Dual {
    type Output = Dual;
    fn sub(self, o: Dual) -> Dual {
        Dual::new(self.re - o.re, self.eps - o.eps)
    }
}
impl Mul for Dual {
    type Output = Dual;
    fn mul(self, o: Dual) -> Dual {
        Dual::new(self.re * o.re, self.eps * o.re + self.re * o.eps)
    }
}
impl Div for Dual {
    type Output = Dual;
    fn div(self, o: Dual) -> Dual {
        Dual::new(
            self.re / o.re,
            (self.eps * o.re - self.re * o.eps) / (o.re * o.re),
        )
    }
}
impl Neg for Dual {
    type Output = Dual;
    fn neg(self) -> Dual {
        Dual::new(-self.re, -self.eps)
    }
}
impl Add<f64> for Dual {
    type Output = Dual;
    fn add(self, o: f64) -> Dual {
        Dual::new(self.re + o, self.eps)
    }
}
impl Sub<f64> for Dual {
    type Output = Dual;
    fn sub(self, o: f64) -> Dual {
        Dual::new(self.re - o, self.eps)
    }
}
impl Mul<f64> for Dual {
    type Output = Dual;
    fn mul(self, o: f64) -> Dual {
        Dual::new(self.re * o, self.eps * o)
    }
}
impl Div<f64> for Dual {
    type Output = Dual;
    fn div(self, o: f64) -> Dual {
        Dual::new(self.re / o, self.eps / o)
    }
}

//! Elementwise functions `y = φ(a)`: exp, log, log1p, sqrt, sin, cos, tanh, sigmoid, softplus,
//! relu, and integer powers.
//!
//! Each function supplies `φ`, `φ′` and `φ″` (the idea of num-dual's `chain_rule`), from which
//! all four rules follow:
//!
//! - JVP: `ẏ = φ′(a) ⊙ ȧ`
//! - VJP: `ā += ȳ ⊙ φ′(a)`
//! - VJP tangent: `ā̇ += ȳ̇ ⊙ φ′(a) + ȳ ⊙ φ″(a) ⊙ ȧ`

/// The elementwise functions of the tape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unary {
    Exp,
    Log,
    Log1p,
    Sqrt,
    Sin,
    Cos,
    Tanh,
    Sigmoid,
    Softplus,
    Relu,
}

/// A function with its first two derivatives; `Powi` carries its exponent.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Fun {
    U(Unary),
    Powi(i32),
}

/// Logistic sigmoid, stable for large `|a|`.
#[inline]
pub(crate) fn sigmoid(a: f64) -> f64 {
    if a >= 0.0 {
        1.0 / (1.0 + (-a).exp())
    } else {
        let e = a.exp();
        e / (1.0 + e)
    }
}

impl Fun {
    /// `φ(a)`.
    #[inline]
    pub(crate) fn value(self, a: f64) -> f64 {
        match self {
            Fun::U(u) => match u {
                Unary::Exp => a.exp(),
                Unary::Log => a.ln(),
                Unary::Log1p => a.ln_1p(),
                Unary::Sqrt => a.sqrt(),
                Unary::Sin => a.sin(),
                Unary::Cos => a.cos(),
                Unary::Tanh => a.tanh(),
                Unary::Sigmoid => sigmoid(a),
                Unary::Softplus => a.max(0.0) + (-a.abs()).exp().ln_1p(),
                Unary::Relu => a.max(0.0),
            },
            Fun::Powi(n) => a.powi(n),
        }
    }

    /// `(φ′(a), φ″(a))`, given `y = φ(a)` to avoid recomputing it.
    #[inline]
    pub(crate) fn d12(self, a: f64, y: f64) -> (f64, f64) {
        match self {
            Fun::U(u) => match u {
                Unary::Exp => (y, y),
                Unary::Log => (1.0 / a, -1.0 / (a * a)),
                Unary::Log1p => {
                    let r = 1.0 / (1.0 + a);
                    (r, -r * r)
                }
                Unary::Sqrt => (0.5 / y, -0.25 / (y * a)),
                Unary::Sin => (a.cos(), -y),
                Unary::Cos => (-a.sin(), -y),
                Unary::Tanh => {
                    let d = 1.0 - y * y;
                    (d, -2.0 * y * d)
                }
                Unary::Sigmoid => {
                    let d = y * (1.0 - y);
                    (d, d * (1.0 - 2.0 * y))
                }
                Unary::Softplus => {
                    let s = sigmoid(a);
                    (s, s * (1.0 - s))
                }
                Unary::Relu => (if a > 0.0 { 1.0 } else { 0.0 }, 0.0),
            },
            Fun::Powi(n) => match n {
                0 => (0.0, 0.0),
                1 => (1.0, 0.0),
                _ => {
                    let nf = f64::from(n);
                    (nf * a.powi(n - 1), nf * (nf - 1.0) * a.powi(n - 2))
                }
            },
        }
    }
}

/// Value: `out = φ(a)`.
pub(crate) fn forward(f: Fun, a: &[f64], out: &mut [f64]) {
    for (o, &x) in out.iter_mut().zip(a) {
        *o = f.value(x);
    }
}

/// JVP: `ẏ = φ′(a) ⊙ ȧ`.
pub(crate) fn tangent(f: Fun, a: &[f64], y: &[f64], da: &[f64], dy: &mut [f64]) {
    for i in 0..dy.len() {
        dy[i] = f.d12(a[i], y[i]).0 * da[i];
    }
}

/// VJP: `ā += ȳ ⊙ φ′(a)`.
pub(crate) fn vjp(f: Fun, a: &[f64], y: &[f64], ybar: &[f64], abar: &mut [f64]) {
    for i in 0..abar.len() {
        abar[i] += ybar[i] * f.d12(a[i], y[i]).0;
    }
}

/// VJP tangent: `ā̇ += ȳ̇ ⊙ φ′(a) + ȳ ⊙ φ″(a) ⊙ ȧ` (a missing `ȧ` is zero).
pub(crate) fn vjp_tangent(
    f: Fun,
    a: &[f64],
    y: &[f64],
    da: Option<&[f64]>,
    ybar: &[f64],
    dybar: &[f64],
    dabar: &mut [f64],
) {
    match da {
        Some(da) => {
            for i in 0..dabar.len() {
                let (d1, d2) = f.d12(a[i], y[i]);
                dabar[i] += dybar[i] * d1 + ybar[i] * d2 * da[i];
            }
        }
        // A zero input tangent leaves the first-order term only.
        None => {
            for i in 0..dabar.len() {
                dabar[i] += dybar[i] * f.d12(a[i], y[i]).0;
            }
        }
    }
}

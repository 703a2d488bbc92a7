//! The JAX vocabulary on top of the [`Tape`]: [`value_and_grad`], [`jvp`], [`vjp`], [`hvp`],
//! and the reusable [`Evaluator`] with the two-block products of bilevel optimization.
//!
//! A function is written once as a closure `|t: &mut Tape, x: Var| -> Var` (or
//! `|t, x, y| -> Var` for two blocks) calling the tape's operations. Inputs are matrices;
//! vectors are `n × 1` matrices.
//!
//! # Example: the synthetic bilevel upper level `sin(cᵀx + dᵀy) + log(‖x + y‖² + 1)`
//! ```
//! use bilevel_ad::{Evaluator, Tape, Var};
//! use bilevel_linalg::Mat;
//! let n = 4;
//! let c = Mat::from_fn(n, 1, |i, _| 0.1 * i as f64);
//! let d = Mat::from_fn(n, 1, |i, _| 0.2 - 0.05 * i as f64);
//! let f = |t: &mut Tape, x: Var, y: Var| {
//!     let (cv, dv) = (t.constant(c.as_ref()), t.constant(d.as_ref()));
//!     let (cx, dy) = (t.dot(cv, x), t.dot(dv, y));
//!     let s = t.add(cx, dy);
//!     let s = t.sin(s);
//!     let xy = t.add(x, y);
//!     let r = t.sum_sq(xy);
//!     let r = t.log1p(r);
//!     t.add(s, r)
//! };
//! let x = Mat::from_fn(n, 1, |i, _| 1.0 + i as f64);
//! let y = Mat::from_fn(n, 1, |i, _| -0.5 * i as f64);
//! let v = Mat::from_fn(n, 1, |_, _| 1.0);
//! let mut ev = Evaluator::new();
//! // One forward-over-reverse pass with tangent (0, v): ∇²yy f·v and ∇²xy f·v together.
//! let r = ev.hvp2(&f, x.as_ref(), y.as_ref(), None, Some(v.as_ref()));
//! assert_eq!(r.hv_y.nrows(), n); // ∇²yy f · v
//! assert_eq!(r.hv_x.nrows(), n); // ∇²xy f · v
//! ```
//!
//! # Example: the data hyper-cleaning lower level
//! Weighted softmax regression plus ridge: `g(x, W) = (1/n) Σᵢ σ(xᵢ) CE(aᵢW, bᵢ) + λ‖W‖²`.
//! ```
//! use bilevel_ad::{Evaluator, Tape, Var};
//! use bilevel_linalg::Mat;
//! use std::sync::Arc;
//! let (n, d, k, lambda) = (6, 3, 2, 1e-3);
//! let a = Arc::new(Mat::from_fn(n, d, |i, j| ((i * 7 + j * 3) % 5) as f64 / 5.0));
//! let labels: Vec<u32> = (0..n).map(|i| (i % k) as u32).collect();
//! let g = |t: &mut Tape, x: Var, w: Var| {
//!     let w = t.reshape(w, d, k);          // the solver sees W as a d·k vector
//!     let av = t.shared(&a);               // data is shared, not copied
//!     let logits = t.matmul(av, w);
//!     let weights = t.sigmoid(x);          // σ(xᵢ), one per training sample
//!     let loss = t.cross_entropy(logits, &labels, Some(weights));
//!     let ridge = t.sum_sq(w);
//!     let ridge = t.scale(ridge, lambda);
//!     t.add(loss, ridge)
//! };
//! let x = Mat::zeros(n, 1);
//! let w = Mat::zeros(d * k, 1);
//! let mut ev = Evaluator::new();
//! let (value, _gx, gw) = ev.value_and_grad2(&g, x.as_ref(), w.as_ref());
//! // At W = 0 every class has probability 1/2, and σ(0) = 1/2.
//! assert!((value - 0.5 * 2f64.ln()).abs() < 1e-12);
//! assert_eq!(gw.nrows(), d * k);
//! ```

use crate::tape::{Sweep, Tape, Target, Var};
use bilevel_linalg::{Mat, MatMut, MatRef, Par};

/// A dual tensor: a value and one directional derivative, kept as two matrices (struct of
/// arrays), as the tape keeps them, so that every rule stays a matrix kernel.
#[derive(Clone, Debug, PartialEq)]
pub struct DualMat {
    /// The value.
    pub primal: Mat<f64>,
    /// The directional derivative (tangent).
    pub tangent: Mat<f64>,
}

/// Value, gradient and Hessian-vector product of a scalar function at one point.
#[derive(Clone, Debug)]
pub struct Hvp {
    /// `f(x)`.
    pub value: f64,
    /// `∇f(x)`.
    pub grad: Mat<f64>,
    /// `∇²f(x) · v`.
    pub hv: Mat<f64>,
}

/// Value, both gradient blocks and both blocks of a Hessian-vector product of `g(x, y)` along
/// the tangent `(u, v)`.
#[derive(Clone, Debug)]
pub struct Hvp2 {
    /// `g(x, y)`.
    pub value: f64,
    /// `∇ₓg`.
    pub grad_x: Mat<f64>,
    /// `∇ᵧg`.
    pub grad_y: Mat<f64>,
    /// `∇²ₓₓg·u + ∇²ₓᵧg·v` (with `u = 0`: the mixed product `∇²ₓᵧg·v`).
    pub hv_x: Mat<f64>,
    /// `∇²ᵧₓg·u + ∇²ᵧᵧg·v` (with `u = 0`: the Hessian-vector product `∇²ᵧᵧg·v`).
    pub hv_y: Mat<f64>,
}

/// Output buffers of [`Evaluator::hvp2_into`]; a `None` block is not copied out, and `g`'s
/// value is computed only when `value` asks for it.
///
/// # Example
/// ```
/// use bilevel_ad::{Evaluator, Hvp2Out};
/// use bilevel_linalg::Mat;
/// // g(x, y) = ½‖y − x‖², so ∇²ᵧᵧg·v = v.
/// let g = |t: &mut bilevel_ad::Tape, x, y| {
///     let r = t.sub(y, x);
///     let s = t.sum_sq(r);
///     t.scale(s, 0.5)
/// };
/// let (x, y, v) = (Mat::zeros(3, 1), Mat::from_fn(3, 1, |i, _| i as f64), Mat::ones(3, 1));
/// let mut ev = Evaluator::new();
/// let mut hv = Mat::zeros(3, 1);
/// let out = Hvp2Out { hv_y: Some(hv.as_mut()), ..Default::default() };
/// // The product alone: no value is computed (nothing the product reads needs it).
/// assert_eq!(ev.hvp2_into(g, x.as_ref(), y.as_ref(), None, Some(v.as_ref()), out), None);
/// assert_eq!(hv, v);
/// let out = Hvp2Out { value: true, ..Default::default() };
/// assert_eq!(ev.hvp2_into(g, x.as_ref(), y.as_ref(), None, Some(v.as_ref()), out), Some(2.5));
/// ```
#[derive(Debug, Default)]
pub struct Hvp2Out<'a> {
    /// Compute and return `g(x, y)` (else values that no requested block reads may be skipped:
    /// a data product whose value only `g` needs computes its tangent alone).
    pub value: bool,
    /// Receives `∇ₓg`.
    pub grad_x: Option<MatMut<'a, f64>>,
    /// Receives `∇ᵧg`.
    pub grad_y: Option<MatMut<'a, f64>>,
    /// Receives `∇²ₓₓg·u + ∇²ₓᵧg·v`.
    pub hv_x: Option<MatMut<'a, f64>>,
    /// Receives `∇²ᵧₓg·u + ∇²ᵧᵧg·v`.
    pub hv_y: Option<MatMut<'a, f64>>,
}

fn owned(m: MatRef<'_, f64>) -> Mat<f64> {
    m.to_owned()
}

#[track_caller]
fn check_out(what: &str, dst: &MatMut<'_, f64>, src: MatRef<'_, f64>) {
    assert!(
        (dst.nrows(), dst.ncols()) == (src.nrows(), src.ncols()),
        "{what}: output buffer is {}x{}, result is {}x{}",
        dst.nrows(),
        dst.ncols(),
        src.nrows(),
        src.ncols()
    );
}

#[track_caller]
fn scalar_out(t: &Tape, out: Var) {
    let (r, c) = t.shape(out);
    assert!(
        r == 1 && c == 1,
        "the function must return a scalar (1x1), it returned {r}x{c}"
    );
}

/// Value and gradient of a scalar function.
///
/// # Example
/// ```
/// use bilevel_linalg::Mat;
/// let x = Mat::from_fn(2, 1, |i, _| i as f64 + 1.0);
/// let (v, g) = bilevel_ad::value_and_grad(|t, x| t.sum_sq(x), x.as_ref());
/// assert_eq!((v, g[(1, 0)]), (5.0, 4.0));
/// ```
///
/// # Panics
/// If `f` does not return a 1×1 variable.
#[track_caller]
pub fn value_and_grad<F>(f: F, x: MatRef<'_, f64>) -> (f64, Mat<f64>)
where
    F: FnOnce(&mut Tape, Var) -> Var,
{
    Evaluator::new().value_and_grad(f, x)
}

/// Jacobian-vector product: the dual tensor `(f(x), J(x)·v)` for any (matrix-valued) `f`.
///
/// # Example
/// ```
/// use bilevel_linalg::Mat;
/// let x = Mat::from_fn(2, 1, |i, _| i as f64);
/// let v = Mat::from_fn(2, 1, |_, _| 1.0);
/// let y = bilevel_ad::jvp(|t, x| t.exp(x), x.as_ref(), v.as_ref());
/// assert_eq!(y.tangent[(1, 0)], y.primal[(1, 0)]); // d/dx eˣ = eˣ
/// ```
#[track_caller]
pub fn jvp<F>(f: F, x: MatRef<'_, f64>, v: MatRef<'_, f64>) -> DualMat
where
    F: FnOnce(&mut Tape, Var) -> Var,
{
    let mut t = Tape::new();
    let xv = t.input(x);
    let out = f(&mut t, xv);
    t.set_tangent(xv, v);
    t.forward_tangent();
    DualMat {
        primal: owned(t.value(out)),
        tangent: owned(t.tangent(out)),
    }
}

/// Vector-Jacobian product: `(f(x), J(x)ᵀ·u)` for any (matrix-valued) `f`, with `u` shaped
/// like `f(x)`.
///
/// # Example
/// ```
/// use bilevel_linalg::Mat;
/// let x = Mat::from_fn(2, 1, |i, _| i as f64 + 1.0);
/// let u = Mat::from_fn(2, 1, |_, _| 1.0);
/// let (_, ju) = bilevel_ad::vjp(|t, x| t.powi(x, 2), x.as_ref(), u.as_ref());
/// assert_eq!(ju[(1, 0)], 4.0);
/// ```
#[track_caller]
pub fn vjp<F>(f: F, x: MatRef<'_, f64>, u: MatRef<'_, f64>) -> (Mat<f64>, Mat<f64>)
where
    F: FnOnce(&mut Tape, Var) -> Var,
{
    let mut t = Tape::new();
    let xv = t.input(x);
    let out = f(&mut t, xv);
    t.backward_seeded(out, u);
    (owned(t.value(out)), owned(t.adjoint(xv)))
}

/// Value, gradient and Hessian-vector product `∇²f(x)·v` of a scalar function, in one
/// forward-over-reverse pass.
///
/// # Example
/// ```
/// use bilevel_linalg::Mat;
/// let x = Mat::from_fn(3, 1, |i, _| i as f64);
/// let v = Mat::from_fn(3, 1, |_, _| 1.0);
/// let r = bilevel_ad::hvp(|t, x| t.sum_sq(x), x.as_ref(), v.as_ref());
/// assert_eq!(r.hv[(0, 0)], 2.0); // ∇²‖x‖² = 2I
/// ```
#[track_caller]
pub fn hvp<F>(f: F, x: MatRef<'_, f64>, v: MatRef<'_, f64>) -> Hvp
where
    F: FnOnce(&mut Tape, Var) -> Var,
{
    Evaluator::new().hvp(f, x, v)
}

/// A reusable evaluator: one [`Tape`] recorded afresh at each call, keeping its buffers, so
/// repeated evaluations allocate only their returned matrices (or nothing, with the `_into`
/// variants).
///
/// Two-block functions `g(x, y)` get the products of bilevel optimization. One
/// forward-over-reverse pass with tangent `(0, v)` gives `∇²ᵧᵧg·v` and `∇²ₓᵧg·v` together
/// ([`Evaluator::hvp_yy`]); tangent `(u, 0)` gives `∇²ᵧₓg·u` ([`Evaluator::jvp_yx`]).
/// [`Evaluator::linearize2`] records once and applies many Hessian-vector products at one point.
///
/// Each oracle computes only what it returns: [`Evaluator::jvp_xy`] skips the adjoints of `y`,
/// [`Evaluator::grad2_into`] and [`Evaluator::hvp2_into`] compute the blocks asked for.
///
/// The evaluator records in deferred mode ([`Tape::defer`]), so a loss that sums over the rows of
/// a large shared data matrix is evaluated block by block, in one pass over the data per oracle,
/// with the blocks spread over the threads of the current rayon pool
/// ([`Evaluator::new`]; [`Evaluator::sequential`] stays on the calling thread). Results do not
/// depend on the number of threads: the blocks and the order in which their partial sums are
/// added are fixed by the shapes alone.
#[derive(Debug)]
pub struct Evaluator {
    tape: Tape,
}

impl Default for Evaluator {
    fn default() -> Self {
        Self::new()
    }
}

/// Which blocks of the two inputs an oracle reads afterwards: `(adjoint, adjoint tangent)` of `x`
/// and of `y`.
#[derive(Clone, Copy)]
struct Reads {
    x: (bool, bool),
    y: (bool, bool),
    /// Whether the output's value is read (else values no rule reads may be skipped).
    value: bool,
}

impl Evaluator {
    /// An evaluator whose streamed evaluations use the threads of the current rayon pool.
    pub fn new() -> Self {
        Self::with_par(Par::rayon(0))
    }

    /// An evaluator that runs everything on the calling thread.
    pub fn sequential() -> Self {
        Self::with_par(Par::Seq)
    }

    /// An evaluator whose streamed evaluations use `par` ([`Par::Seq`]: the calling thread;
    /// otherwise the current rayon pool).
    pub fn with_par(par: Par) -> Self {
        Evaluator {
            tape: Tape::with_par(par),
        }
    }

    /// The parallelism of streamed evaluations.
    pub fn par(&self) -> Par {
        self.tape.par()
    }

    /// Set the parallelism of streamed evaluations.
    pub fn set_par(&mut self, par: Par) {
        self.tape.set_par(par);
    }

    /// Allow or forbid streaming (allowed by default; see [`Tape::set_streaming`]).
    pub fn set_streaming(&mut self, on: bool) {
        self.tape.set_streaming(on);
    }

    /// Whether the last oracle streamed its function block by block.
    pub fn streamed(&self) -> bool {
        self.tape.streamed()
    }

    /// Allow or forbid reading streamed data through its sparse form (allowed by default; see
    /// [`Tape::set_sparse_data`]).
    pub fn set_sparse_data(&mut self, on: bool) {
        self.tape.set_sparse_data(on);
    }

    /// Whether the last oracle streamed a data matrix through its sparse form.
    pub fn streamed_sparse(&self) -> bool {
        self.tape.streamed_sparse()
    }

    /// The underlying tape (holding the last recording).
    pub fn tape(&mut self) -> &mut Tape {
        &mut self.tape
    }

    fn record1<F: FnOnce(&mut Tape, Var) -> Var>(
        &mut self,
        f: F,
        x: MatRef<'_, f64>,
        v: Option<MatRef<'_, f64>>,
    ) -> (Var, Var) {
        self.tape.clear();
        self.tape.defer();
        let xv = self.tape.input(x);
        if let Some(v) = v {
            self.tape.begin_tangents();
            self.tape.set_tangent(xv, v);
        }
        let out = f(&mut self.tape, xv);
        scalar_out(&self.tape, out);
        (xv, out)
    }

    /// Record `f` at `(x, y)` in deferred mode, with eager tangents `(u, v)` when either is
    /// given (a missing block is zero): every operation then computes its tangent with its
    /// value, so products with constant data read it once for both.
    fn record2<F: FnOnce(&mut Tape, Var, Var) -> Var>(
        &mut self,
        f: F,
        x: MatRef<'_, f64>,
        y: MatRef<'_, f64>,
        u: Option<MatRef<'_, f64>>,
        v: Option<MatRef<'_, f64>>,
    ) -> (Var, Var, Var) {
        self.tape.clear();
        self.tape.defer();
        let xv = self.tape.input(x);
        let yv = self.tape.input(y);
        if u.is_some() || v.is_some() {
            self.tape.begin_tangents();
            if let Some(u) = u {
                self.tape.set_tangent(xv, u);
            }
            if let Some(v) = v {
                self.tape.set_tangent(yv, v);
            }
        }
        let out = f(&mut self.tape, xv, yv);
        scalar_out(&self.tape, out);
        (xv, yv, out)
    }

    /// Evaluate the recording for the blocks `reads` asks of `x` and `y`, and for the value
    /// unless `reads.value` is false.
    fn run2(&mut self, (xv, yv, out): (Var, Var, Var), sweep: Sweep, reads: Reads) {
        let t = |var, (adjoint, tangent): (bool, bool)| Target {
            var,
            adjoint,
            tangent,
        };
        self.tape
            .run(out, sweep, &[t(xv, reads.x), t(yv, reads.y)], reads.value);
    }

    /// Value and gradient of a scalar function of one block.
    #[track_caller]
    pub fn value_and_grad<F: FnOnce(&mut Tape, Var) -> Var>(
        &mut self,
        f: F,
        x: MatRef<'_, f64>,
    ) -> (f64, Mat<f64>) {
        let (xv, out) = self.record1(f, x, None);
        let target = Target {
            var: xv,
            adjoint: true,
            tangent: false,
        };
        self.tape.run(out, Sweep::Adjoint, &[target], true);
        (self.tape.scalar(out), owned(self.tape.adjoint(xv)))
    }

    /// Value, gradient and `∇²f·v` of a scalar function of one block.
    #[track_caller]
    pub fn hvp<F: FnOnce(&mut Tape, Var) -> Var>(
        &mut self,
        f: F,
        x: MatRef<'_, f64>,
        v: MatRef<'_, f64>,
    ) -> Hvp {
        let (xv, out) = self.record1(f, x, Some(v));
        let target = Target {
            var: xv,
            adjoint: true,
            tangent: true,
        };
        self.tape.run(out, Sweep::Both, &[target], true);
        Hvp {
            value: self.tape.scalar(out),
            grad: owned(self.tape.adjoint(xv)),
            hv: owned(self.tape.adjoint_tangent(xv)),
        }
    }

    /// Value of `g(x, y)`.
    #[track_caller]
    pub fn value2<F: FnOnce(&mut Tape, Var, Var) -> Var>(
        &mut self,
        f: F,
        x: MatRef<'_, f64>,
        y: MatRef<'_, f64>,
    ) -> f64 {
        let vars = self.record2(f, x, y, None, None);
        let none = (false, false);
        self.run2(
            vars,
            Sweep::None,
            Reads {
                x: none,
                y: none,
                value: true,
            },
        );
        self.tape.scalar(vars.2)
    }

    /// Value and both gradient blocks `(g, ∇ₓg, ∇ᵧg)`.
    #[track_caller]
    pub fn value_and_grad2<F: FnOnce(&mut Tape, Var, Var) -> Var>(
        &mut self,
        f: F,
        x: MatRef<'_, f64>,
        y: MatRef<'_, f64>,
    ) -> (f64, Mat<f64>, Mat<f64>) {
        let vars = self.record2(f, x, y, None, None);
        let g = (true, false);
        self.run2(
            vars,
            Sweep::Adjoint,
            Reads {
                x: g,
                y: g,
                value: true,
            },
        );
        let (xv, yv, out) = vars;
        (
            self.tape.scalar(out),
            owned(self.tape.adjoint(xv)),
            owned(self.tape.adjoint(yv)),
        )
    }

    /// Value, writing the gradient blocks that are asked for into the given buffers (no
    /// allocation once the tape has grown to the function's size); a block not asked for is not
    /// computed.
    ///
    /// # Panics
    /// If a buffer's shape differs from its block's.
    #[track_caller]
    pub fn grad2_into<F: FnOnce(&mut Tape, Var, Var) -> Var>(
        &mut self,
        f: F,
        x: MatRef<'_, f64>,
        y: MatRef<'_, f64>,
        gx: Option<MatMut<'_, f64>>,
        gy: Option<MatMut<'_, f64>>,
    ) -> f64 {
        let vars = self.record2(f, x, y, None, None);
        let reads = Reads {
            x: (gx.is_some(), false),
            y: (gy.is_some(), false),
            value: true,
        };
        self.run2(vars, Sweep::Adjoint, reads);
        let (xv, yv, out) = vars;
        if let Some(mut gx) = gx {
            check_out("grad2_into (x)", &gx, self.tape.adjoint(xv));
            gx.copy_from(self.tape.adjoint(xv));
        }
        if let Some(mut gy) = gy {
            check_out("grad2_into (y)", &gy, self.tape.adjoint(yv));
            gy.copy_from(self.tape.adjoint(yv));
        }
        self.tape.scalar(out)
    }

    /// `∇ₓg(x, y)` (the adjoints of `y` are not computed).
    #[track_caller]
    pub fn grad_x<F: FnOnce(&mut Tape, Var, Var) -> Var>(
        &mut self,
        f: F,
        x: MatRef<'_, f64>,
        y: MatRef<'_, f64>,
    ) -> Mat<f64> {
        let vars = self.record2(f, x, y, None, None);
        let reads = Reads {
            x: (true, false),
            y: (false, false),
            value: false,
        };
        self.run2(vars, Sweep::Adjoint, reads);
        owned(self.tape.adjoint(vars.0))
    }

    /// `∇ᵧg(x, y)` (the adjoints of `x` are not computed).
    #[track_caller]
    pub fn grad_y<F: FnOnce(&mut Tape, Var, Var) -> Var>(
        &mut self,
        f: F,
        x: MatRef<'_, f64>,
        y: MatRef<'_, f64>,
    ) -> Mat<f64> {
        let vars = self.record2(f, x, y, None, None);
        let reads = Reads {
            x: (false, false),
            y: (true, false),
            value: false,
        };
        self.run2(vars, Sweep::Adjoint, reads);
        owned(self.tape.adjoint(vars.1))
    }

    /// Value, gradients and the Hessian-vector product along the tangent `(u, v)` (a missing
    /// block is zero), in one forward-over-reverse pass.
    #[track_caller]
    pub fn hvp2<F: FnOnce(&mut Tape, Var, Var) -> Var>(
        &mut self,
        f: F,
        x: MatRef<'_, f64>,
        y: MatRef<'_, f64>,
        u: Option<MatRef<'_, f64>>,
        v: Option<MatRef<'_, f64>>,
    ) -> Hvp2 {
        let vars = self.record2(f, x, y, u, v);
        let all = (true, true);
        self.run2(
            vars,
            Sweep::Both,
            Reads {
                x: all,
                y: all,
                value: true,
            },
        );
        let (xv, yv, out) = vars;
        let t = &self.tape;
        Hvp2 {
            value: t.scalar(out),
            grad_x: owned(t.adjoint(xv)),
            grad_y: owned(t.adjoint(yv)),
            hv_x: owned(t.adjoint_tangent(xv)),
            hv_y: owned(t.adjoint_tangent(yv)),
        }
    }

    /// [`Evaluator::hvp2`] writing into caller buffers: the blocks of `out` that are `Some`
    /// receive the gradient and Hessian-vector product blocks, and only those are computed.
    /// Returns `g(x, y)` when `out.value` asks for it (`None` otherwise). Allocates nothing once
    /// the tape has grown to the function's size.
    ///
    /// # Panics
    /// If a buffer's shape differs from its block's.
    #[track_caller]
    pub fn hvp2_into<F: FnOnce(&mut Tape, Var, Var) -> Var>(
        &mut self,
        f: F,
        x: MatRef<'_, f64>,
        y: MatRef<'_, f64>,
        u: Option<MatRef<'_, f64>>,
        v: Option<MatRef<'_, f64>>,
        out: Hvp2Out<'_>,
    ) -> Option<f64> {
        let vars = self.record2(f, x, y, u, v);
        let reads = Reads {
            x: (out.grad_x.is_some(), out.hv_x.is_some()),
            y: (out.grad_y.is_some(), out.hv_y.is_some()),
            value: out.value,
        };
        self.run2(vars, Sweep::Both, reads);
        let (xv, yv, o) = vars;
        let t = &self.tape;
        if let Some(mut dst) = out.grad_x {
            check_out("hvp2_into (grad_x)", &dst, t.adjoint(xv));
            dst.copy_from(t.adjoint(xv));
        }
        if let Some(mut dst) = out.grad_y {
            check_out("hvp2_into (grad_y)", &dst, t.adjoint(yv));
            dst.copy_from(t.adjoint(yv));
        }
        if let Some(mut dst) = out.hv_x {
            check_out("hvp2_into (hv_x)", &dst, t.adjoint_tangent(xv));
            dst.copy_from(t.adjoint_tangent(xv));
        }
        if let Some(mut dst) = out.hv_y {
            check_out("hvp2_into (hv_y)", &dst, t.adjoint_tangent(yv));
            dst.copy_from(t.adjoint_tangent(yv));
        }
        out.value.then(|| t.scalar(o))
    }

    /// `(∇²ᵧᵧg·v, ∇²ₓᵧg·v)`: both products of one pass with tangent `(0, v)`.
    #[track_caller]
    pub fn hvp_yy<F: FnOnce(&mut Tape, Var, Var) -> Var>(
        &mut self,
        f: F,
        x: MatRef<'_, f64>,
        y: MatRef<'_, f64>,
        v: MatRef<'_, f64>,
    ) -> (Mat<f64>, Mat<f64>) {
        let vars = self.record2(f, x, y, None, Some(v));
        let hv = (false, true);
        self.run2(
            vars,
            Sweep::Both,
            Reads {
                x: hv,
                y: hv,
                value: false,
            },
        );
        let t = &self.tape;
        (
            owned(t.adjoint_tangent(vars.1)),
            owned(t.adjoint_tangent(vars.0)),
        )
    }

    /// The mixed product `∇²ₓᵧg·v = ∇ₓ⟨∇ᵧg, v⟩` (an `x`-shaped result; nothing of `y` is
    /// computed beyond what it needs).
    #[track_caller]
    pub fn jvp_xy<F: FnOnce(&mut Tape, Var, Var) -> Var>(
        &mut self,
        f: F,
        x: MatRef<'_, f64>,
        y: MatRef<'_, f64>,
        v: MatRef<'_, f64>,
    ) -> Mat<f64> {
        let vars = self.record2(f, x, y, None, Some(v));
        let reads = Reads {
            x: (false, true),
            y: (false, false),
            value: false,
        };
        self.run2(vars, Sweep::Both, reads);
        owned(self.tape.adjoint_tangent(vars.0))
    }

    /// The mixed product `∇²ᵧₓg·u = ∇ᵧ⟨∇ₓg, u⟩` (a `y`-shaped result).
    #[track_caller]
    pub fn jvp_yx<F: FnOnce(&mut Tape, Var, Var) -> Var>(
        &mut self,
        f: F,
        x: MatRef<'_, f64>,
        y: MatRef<'_, f64>,
        u: MatRef<'_, f64>,
    ) -> Mat<f64> {
        let vars = self.record2(f, x, y, Some(u), None);
        let reads = Reads {
            x: (false, false),
            y: (false, true),
            value: false,
        };
        self.run2(vars, Sweep::Both, reads);
        owned(self.tape.adjoint_tangent(vars.1))
    }

    /// Record `g` once at `(x, y)` and sweep its adjoints; the returned [`Linearized`] applies
    /// Hessian-vector products at that point without recording again. The recording is
    /// evaluated over whole tensors (never streamed), since every intermediate is kept.
    #[track_caller]
    pub fn linearize2<F: FnOnce(&mut Tape, Var, Var) -> Var>(
        &mut self,
        f: F,
        x: MatRef<'_, f64>,
        y: MatRef<'_, f64>,
    ) -> Linearized<'_> {
        self.tape.clear();
        let xv = self.tape.input(x);
        let yv = self.tape.input(y);
        let out = f(&mut self.tape, xv, yv);
        scalar_out(&self.tape, out);
        self.tape.backward(out);
        Linearized {
            tape: &mut self.tape,
            x: xv,
            y: yv,
            out,
        }
    }
}

/// A two-block function recorded at one point with its gradient swept: each
/// [`Linearized::hvp_into`] costs one tangent sweep and one adjoint-tangent sweep (about two
/// gradients), with no recording and no allocation.
#[derive(Debug)]
pub struct Linearized<'t> {
    tape: &'t mut Tape,
    x: Var,
    y: Var,
    out: Var,
}

impl Linearized<'_> {
    /// `g(x, y)`.
    pub fn value(&self) -> f64 {
        self.tape.scalar(self.out)
    }

    /// `∇ₓg(x, y)`.
    pub fn grad_x(&self) -> MatRef<'_, f64> {
        self.tape.adjoint(self.x)
    }

    /// `∇ᵧg(x, y)`.
    pub fn grad_y(&self) -> MatRef<'_, f64> {
        self.tape.adjoint(self.y)
    }

    /// The Hessian-vector product along `(u, v)` (a missing block is zero), written into the
    /// blocks asked for: `hx ← ∇²ₓₓg·u + ∇²ₓᵧg·v`, `hy ← ∇²ᵧₓg·u + ∇²ᵧᵧg·v`.
    ///
    /// # Panics
    /// If a shape differs from its block's.
    #[track_caller]
    pub fn hvp_into(
        &mut self,
        u: Option<MatRef<'_, f64>>,
        v: Option<MatRef<'_, f64>>,
        hx: Option<MatMut<'_, f64>>,
        hy: Option<MatMut<'_, f64>>,
    ) {
        self.tape.reset_tangents();
        if let Some(u) = u {
            self.tape.set_tangent(self.x, u);
        }
        if let Some(v) = v {
            self.tape.set_tangent(self.y, v);
        }
        self.tape.forward_tangent();
        self.tape.backward_tangent_only(self.out);
        if let Some(mut hx) = hx {
            check_out("hvp_into (x)", &hx, self.tape.adjoint_tangent(self.x));
            hx.copy_from(self.tape.adjoint_tangent(self.x));
        }
        if let Some(mut hy) = hy {
            check_out("hvp_into (y)", &hy, self.tape.adjoint_tangent(self.y));
            hy.copy_from(self.tape.adjoint_tangent(self.y));
        }
    }
}

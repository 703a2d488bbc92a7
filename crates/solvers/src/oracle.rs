//! Counted access to a problem's oracles.
//!
//! [`Oracle`] owns the per-thread AD [`Evaluator`] and counts every call by kind in fixed fields
//! ([`Counts`]), following the complexity measures of Table 1 in "Sharper Analysis of Single-Loop
//! Methods for Bilevel Optimization": gradient computations (Gc) and Jacobian-/Hessian-vector
//! products (MV). Metric evaluations use a separate, uncounted evaluator and are never charged
//! to the solver.

use crate::problem::{Bounds, Cross, Grad, HGrad, Problem};
use bilevel_ad::Evaluator;
use bilevel_linalg::{Mat, MatMut, MatRef, Par};
use serde::{Deserialize, Serialize};

/// Oracle calls by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Gradient computations (Gc): one reverse pass of `f` or of `g`, each giving both blocks.
    pub gc: u64,
    /// Matrix-vector products (MV): one forward-over-reverse pass of `g`, giving `∇²ᵧᵧg·v` and
    /// `∇²ₓᵧg·v` together (or `∇²ᵧₓg·u`).
    pub mv: u64,
    /// Function values alone (one forward pass of `f` or `g`).
    pub value: u64,
}

/// A problem together with the evaluator solvers call it through, counting every call.
///
/// # Example
/// ```
/// use bilevel_solvers::{problems::QuadraticKappa, Oracle, Problem};
/// let p = QuadraticKappa::new(10.0, 2);
/// let mut o = Oracle::new(&p);
/// let (x, y) = (p.x0(), p.y0());
/// let g = o.grad_g(&x, &y);
/// let _ = o.hvp_g(&x, &y, &g.y);
/// assert_eq!((o.counts().gc, o.counts().mv), (1, 1));
/// ```
#[derive(Debug)]
pub struct Oracle<'p> {
    problem: &'p dyn Problem,
    ev: Evaluator,
    counts: Counts,
}

impl<'p> Oracle<'p> {
    /// A counting oracle for `problem`, with zero counts, whose evaluations use the current
    /// rayon pool (see [`Evaluator::new`]).
    pub fn new(problem: &'p dyn Problem) -> Self {
        Self::with_par(problem, Par::rayon(0))
    }

    /// A counting oracle whose evaluations use `par` ([`Par::Seq`]: the calling thread only).
    pub fn with_par(problem: &'p dyn Problem, par: Par) -> Self {
        Oracle {
            problem,
            ev: Evaluator::with_par(par),
            counts: Counts::default(),
        }
    }

    /// The counts so far.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Replace the counts (used when resuming from a checkpoint).
    pub fn set_counts(&mut self, c: Counts) {
        self.counts = c;
    }

    /// The wrapped problem.
    pub fn problem(&self) -> &'p dyn Problem {
        self.problem
    }

    /// `f(x, y)` (one value call).
    pub fn f(&mut self, x: &Mat<f64>, y: &Mat<f64>) -> f64 {
        self.counts.value += 1;
        self.problem.value_f(&mut self.ev, x.as_ref(), y.as_ref())
    }

    /// `g(x, y)` (one value call).
    pub fn g(&mut self, x: &Mat<f64>, y: &Mat<f64>) -> f64 {
        self.counts.value += 1;
        self.problem.value_g(&mut self.ev, x.as_ref(), y.as_ref())
    }

    /// `f, ∇ₓf, ∇ᵧf` (one Gc).
    pub fn grad_f(&mut self, x: &Mat<f64>, y: &Mat<f64>) -> Grad {
        self.counts.gc += 1;
        self.problem.grad_f(&mut self.ev, x.as_ref(), y.as_ref())
    }

    /// `g, ∇ₓg, ∇ᵧg` (one Gc).
    pub fn grad_g(&mut self, x: &Mat<f64>, y: &Mat<f64>) -> Grad {
        self.counts.gc += 1;
        self.problem.grad_g(&mut self.ev, x.as_ref(), y.as_ref())
    }

    /// `f, ∇ₓf, ∇ᵧf` averaged over the samples `idx` of a data-sum problem (one Gc: a stochastic
    /// gradient counts as one gradient computation, as in the stochastic complexity bounds).
    ///
    /// # Panics
    /// If the problem is not a [`DataSum`](crate::problem::DataSum).
    pub fn grad_f_batch(&mut self, x: &Mat<f64>, y: &Mat<f64>, idx: &[usize]) -> Grad {
        self.counts.gc += 1;
        let d = self
            .problem
            .data_sum()
            .expect("grad_f_batch needs a data-sum problem");
        let (value, gx, gy) =
            self.ev
                .value_and_grad2(|t, x, y| d.f_batch(t, x, y, idx), x.as_ref(), y.as_ref());
        Grad {
            value,
            x: gx,
            y: gy,
        }
    }

    /// `g, ∇ₓg, ∇ᵧg` averaged over the samples `idx` of a data-sum problem (one Gc).
    ///
    /// # Panics
    /// If the problem is not a [`DataSum`](crate::problem::DataSum).
    pub fn grad_g_batch(&mut self, x: &Mat<f64>, y: &Mat<f64>, idx: &[usize]) -> Grad {
        self.counts.gc += 1;
        let d = self
            .problem
            .data_sum()
            .expect("grad_g_batch needs a data-sum problem");
        let (value, gx, gy) =
            self.ev
                .value_and_grad2(|t, x, y| d.g_batch(t, x, y, idx), x.as_ref(), y.as_ref());
        Grad {
            value,
            x: gx,
            y: gy,
        }
    }

    /// `∇²ᵧᵧg·v` of the average of `g` over the samples `idx` of a data-sum problem (one MV:
    /// a stochastic product counts as one product, as a stochastic gradient counts as one Gc).
    ///
    /// # Panics
    /// If the problem is not a [`DataSum`](crate::problem::DataSum).
    pub fn hvp_yy_g_batch(
        &mut self,
        x: &Mat<f64>,
        y: &Mat<f64>,
        v: MatRef<'_, f64>,
        idx: &[usize],
    ) -> Mat<f64> {
        self.counts.mv += 1;
        let d = self
            .problem
            .data_sum()
            .expect("hvp_yy_g_batch needs a data-sum problem");
        let mut out = Mat::zeros(y.nrows(), 1);
        let o = bilevel_ad::Hvp2Out {
            hv_y: Some(out.as_mut()),
            ..Default::default()
        };
        self.ev.hvp2_into(
            |t, x, y| d.g_batch(t, x, y, idx),
            x.as_ref(),
            y.as_ref(),
            None,
            Some(v),
            o,
        );
        out
    }

    /// The mixed product `∇²ₓᵧg·v` of the average of `g` over the samples `idx` of a data-sum
    /// problem (one MV).
    ///
    /// # Panics
    /// If the problem is not a [`DataSum`](crate::problem::DataSum).
    pub fn jvp_xy_g_batch(
        &mut self,
        x: &Mat<f64>,
        y: &Mat<f64>,
        v: &Mat<f64>,
        idx: &[usize],
    ) -> Mat<f64> {
        self.counts.mv += 1;
        let d = self
            .problem
            .data_sum()
            .expect("jvp_xy_g_batch needs a data-sum problem");
        self.ev.jvp_xy(
            |t, x, y| d.g_batch(t, x, y, idx),
            x.as_ref(),
            y.as_ref(),
            v.as_ref(),
        )
    }

    /// `∇²ᵧᵧg·v` and `∇²ₓᵧg·v` averaged over the samples `idx` of a data-sum problem (one MV):
    /// the products of the batch objective `(1/|B|) Σ_{j∈B} gⱼ`, one forward-over-reverse pass
    /// with tangent `(0, v)`.
    ///
    /// # Panics
    /// If the problem is not a [`DataSum`](crate::problem::DataSum).
    pub fn hvp_g_batch(
        &mut self,
        x: &Mat<f64>,
        y: &Mat<f64>,
        v: &Mat<f64>,
        idx: &[usize],
    ) -> Cross {
        self.counts.mv += 1;
        let d = self
            .problem
            .data_sum()
            .expect("hvp_g_batch needs a data-sum problem");
        let (yy, xy) = self.ev.hvp_yy(
            |t, x, y| d.g_batch(t, x, y, idx),
            x.as_ref(),
            y.as_ref(),
            v.as_ref(),
        );
        Cross { yy, xy }
    }

    /// `g, ∇ₓg, ∇ᵧg` and `∇²ᵧᵧg·v, ∇²ₓᵧg·v` of the batch objective on the samples `idx`, from
    /// one pass (one Gc and one MV): [`Oracle::grad_hvp_g`] on a minibatch.
    ///
    /// # Panics
    /// If the problem is not a [`DataSum`](crate::problem::DataSum).
    pub fn grad_hvp_g_batch(
        &mut self,
        x: &Mat<f64>,
        y: &Mat<f64>,
        v: &Mat<f64>,
        idx: &[usize],
    ) -> (Grad, Cross) {
        self.counts.gc += 1;
        self.counts.mv += 1;
        let d = self
            .problem
            .data_sum()
            .expect("grad_hvp_g_batch needs a data-sum problem");
        let r = self.ev.hvp2(
            |t, x, y| d.g_batch(t, x, y, idx),
            x.as_ref(),
            y.as_ref(),
            None,
            Some(v.as_ref()),
        );
        (
            Grad {
                value: r.value,
                x: r.grad_x,
                y: r.grad_y,
            },
            Cross {
                yy: r.hv_y,
                xy: r.hv_x,
            },
        )
    }

    /// `∇²ᵧᵧg·v` and `∇²ₓᵧg·v` (one MV).
    pub fn hvp_g(&mut self, x: &Mat<f64>, y: &Mat<f64>, v: &Mat<f64>) -> Cross {
        self.counts.mv += 1;
        self.problem
            .hvp_g(&mut self.ev, x.as_ref(), y.as_ref(), v.as_ref())
    }

    /// `∇²ᵧᵧg·v` alone (one MV; nothing of the mixed product is computed).
    pub fn hvp_yy_g(&mut self, x: &Mat<f64>, y: &Mat<f64>, v: &Mat<f64>) -> Mat<f64> {
        self.counts.mv += 1;
        self.problem
            .hvp_yy_g(&mut self.ev, x.as_ref(), y.as_ref(), v.as_ref())
    }

    /// `∇²ₓᵧg·v` alone (one MV).
    pub fn jvp_xy_g(&mut self, x: &Mat<f64>, y: &Mat<f64>, v: &Mat<f64>) -> Mat<f64> {
        self.counts.mv += 1;
        self.problem
            .jvp_xy_g(&mut self.ev, x.as_ref(), y.as_ref(), v.as_ref())
    }

    /// `g, ∇ₓg, ∇ᵧg` and `∇²ᵧᵧg·v, ∇²ₓᵧg·v` from one pass at `(x, y)` (one Gc and one MV).
    pub fn grad_hvp_g(&mut self, x: &Mat<f64>, y: &Mat<f64>, v: &Mat<f64>) -> (Grad, Cross) {
        self.counts.gc += 1;
        self.counts.mv += 1;
        self.problem
            .grad_hvp_g(&mut self.ev, x.as_ref(), y.as_ref(), v.as_ref())
    }

    /// `∇²ᵧᵧg·v` written into `out` (one MV): the operator of the hypergradient linear system.
    pub(crate) fn hvp_g_yy_into(
        &mut self,
        x: &Mat<f64>,
        y: &Mat<f64>,
        v: MatRef<'_, f64>,
        mut out: MatMut<'_, f64>,
    ) {
        self.counts.mv += 1;
        let c = self
            .problem
            .hvp_yy_g(&mut self.ev, x.as_ref(), y.as_ref(), v);
        out.copy_from(&c);
    }

    /// `∇²ᵧₓg·u` (one MV).
    pub fn jvp_yx_g(&mut self, x: &Mat<f64>, y: &Mat<f64>, u: &Mat<f64>) -> Mat<f64> {
        self.counts.mv += 1;
        self.problem
            .jvp_yx_g(&mut self.ev, x.as_ref(), y.as_ref(), u.as_ref())
    }

    /// `h = ‖∇ᵧg‖²` and `∇h` (one Gc and one MV).
    pub fn grad_h(&mut self, x: &Mat<f64>, y: &Mat<f64>) -> HGrad {
        self.counts.gc += 1;
        self.counts.mv += 1;
        self.problem.grad_h(&mut self.ev, x.as_ref(), y.as_ref())
    }

    /// The problem's box on `x`, if any.
    pub fn bounds_x(&self) -> Option<Bounds> {
        self.problem.bounds_x()
    }

    /// Project `x` onto the problem's box (a no-op without one).
    pub fn project_x(&self, x: &mut Mat<f64>) {
        if let Some(b) = self.problem.bounds_x() {
            b.project(x);
        }
    }

    /// Project `y` onto the problem's lower-level box (a no-op without one).
    pub fn project_y(&self, y: &mut Mat<f64>) {
        if let Some(b) = self.problem.bounds_y() {
            b.project(y);
        }
    }
}

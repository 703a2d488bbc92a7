//! Which adjoints and adjoint tangents a request needs.
//!
//! An oracle rarely needs every derivative the reverse sweep could produce: the mixed product
//! `∇²ₓᵧg·v` alone needs no adjoint of the weights, so the product `Xᵀ·Ḡ` that makes it is
//! skipped. For every node, `adj` says whether its adjoint `ȳ` must be computed and `tan` whether
//! its adjoint tangent `ȳ̇` must. Both are decided from the node's inputs, in recording order:
//!
//! - `tan[n]` if some input `i` needs `tan[i]` (the adjoint tangent flows to inputs only);
//! - `adj[n]` if some input needs its adjoint, or needs its adjoint tangent through a rule that
//!   reads `ȳ` (the `J̇ᵀȳ` term of a nonlinear operation, see
//!   [`Op::tangent_rule_reads_adjoint`](crate::ops::Op::tangent_rule_reads_adjoint)).
//!
//! Inputs need what the request asks of them; constants need nothing.
//!
//! A request that does not report the output's value (a Hessian-vector or mixed product alone)
//! may not need every value either: in `½‖Hy − x‖²` the products `∇²ᵧᵧg·v` and `∇²ₓᵧg·v` read
//! only the tangent `Hv` of the residual, never the residual `Hy − x` itself. [`Needs::values`]
//! works out, from the output back, which values (`val`) and forward tangents (`tanf`) the rules
//! that run read, with the adjoint tangents known to be identically zero (`zt`: the output's, and
//! what only linear operations pass on from it) ruling out the `Jᵀȳ̇` terms that vanish.
//! Values no rule reads need not be computed; a streamed evaluation skips the data products'.

use super::{Node, Var};
use crate::ops::{Op, Side};

/// One input of a request and what is read of it afterwards.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Target {
    pub var: Var,
    /// Its adjoint (a gradient block).
    pub adjoint: bool,
    /// Its adjoint tangent (a Hessian-vector product block).
    pub tangent: bool,
}

/// Per-node needs of a request (buffers reused across requests).
#[derive(Debug, Default)]
pub(super) struct Needs {
    pub adj: Vec<bool>,
    pub tan: Vec<bool>,
    /// Values that some rule that runs reads (see [`Needs::values`]).
    pub val: Vec<bool>,
    /// Forward tangents that some rule that runs reads.
    pub tanf: Vec<bool>,
    /// Adjoint tangents that are identically zero.
    pub zt: Vec<bool>,
}

impl Needs {
    /// Work out the needs of the nodes `0..=out` for a sweep with (`with_tan`) or without
    /// adjoint tangents; `targets = None` asks for everything of every input.
    pub fn compute(
        &mut self,
        nodes: &[Node],
        out: usize,
        targets: Option<&[Target]>,
        with_tan: bool,
    ) {
        let len = out + 1;
        self.adj.clear();
        self.tan.clear();
        self.adj.resize(len, false);
        self.tan.resize(len, false);
        for (i, n) in nodes[..len].iter().enumerate() {
            match n.op {
                Op::Input => {
                    let (a, t) = match targets {
                        None => (true, true),
                        Some(ts) => ts
                            .iter()
                            .filter(|t| t.var.id as usize == i)
                            .fold((false, false), |(a, t), x| (a || x.adjoint, t || x.tangent)),
                    };
                    self.adj[i] = a;
                    self.tan[i] = t && with_tan;
                }
                Op::Const | Op::Shared(_) => {}
                op if n.grad => {
                    let (a, b) = (n.a as usize, n.b as usize);
                    let (la, lb) = (nodes[a].live, op.is_binary() && nodes[b].live);
                    let side = |j: usize, s: Side, own: bool, other: bool| {
                        let g = nodes[j].grad;
                        let adj = g && self.adj[j];
                        let tan = g && self.tan[j];
                        let reads = tan && op.tangent_rule_reads_adjoint(s, own, other);
                        (adj || reads, tan)
                    };
                    let (adj_a, tan_a) = side(a, Side::A, la, lb);
                    let (adj_b, tan_b) = if op.is_binary() {
                        side(b, Side::B, lb, la)
                    } else {
                        (false, false)
                    };
                    self.adj[i] = adj_a || adj_b;
                    self.tan[i] = with_tan && (tan_a || tan_b);
                }
                _ => {}
            }
        }
    }

    /// After [`Needs::compute`]: which values (`val`) and forward tangents (`tanf`) of nodes
    /// `0..=out` the rules of the sweep read, when the output's value is reported (`value`) or
    /// not, with eager `tangents` or without. Conservative: an operation that is not linear is
    /// taken to read every value and tangent of its inputs and itself in each of its tangent
    /// and reverse rules that runs (products and `sum_sq`: of their inputs only), except the
    /// adjoint-tangent rules of `sum_sq`, `dot` and `mul` when their own adjoint tangent is
    /// identically zero (`x̄̇ += J̇ᵀȳ`: input tangents and the adjoint only). Values nobody reads may then be left uncomputed (or computed from
    /// such values: nothing that is read depends on them).
    pub fn values(
        &mut self,
        nodes: &[Node],
        out: usize,
        value: bool,
        tangents: bool,
        with_adj: bool,
        with_tan: bool,
    ) {
        let len = out + 1;
        for v in [&mut self.val, &mut self.tanf] {
            v.clear();
            v.resize(len, false);
        }
        self.zt.clear();
        self.zt.resize(len, true);
        self.val[out] = value;
        for c in (0..len).rev() {
            let n = &nodes[c];
            if n.op.is_leaf() {
                continue;
            }
            let (a, b) = (n.a as usize, n.b as usize);
            let ins: &[usize] = if n.op.is_binary() { &[a, b] } else { &[a] };
            let runs = |j: usize, need: &[bool], on: bool| on && nodes[j].grad && need[j];
            let adj_rule = n.grad && ins.iter().any(|&j| runs(j, &self.adj, with_adj));
            let tan_rule = n.grad && ins.iter().any(|&j| runs(j, &self.tan, with_tan));
            let linear = n.op.is_linear();
            let refined = self.zt[c] && matches!(n.op, Op::SumSq | Op::Dot | Op::Mul);
            // Products and sums of squares read their inputs in every rule, never their own
            // value or tangent; the other nonlinear operations are taken to read all of them.
            let own = !matches!(
                n.op,
                Op::Mul | Op::Dot | Op::MatMul { .. } | Op::ScalarMul | Op::SumSq
            );
            // What the node's reverse rules read of itself and of its inputs.
            let mut in_val = false;
            let mut in_tan = tan_rule && refined;
            if !linear && (adj_rule || (tan_rule && !refined)) {
                in_val = true;
                in_tan |= tan_rule;
                self.val[c] |= own;
                self.tanf[c] |= own && tan_rule;
            }
            if tangents && n.live && self.tanf[c] {
                // The tangent rule reads the inputs' tangents, and values unless linear.
                in_tan = true;
                if !linear {
                    in_val = true;
                    self.val[c] |= own;
                }
            }
            if self.val[c] {
                in_val = true; // the value rule reads the inputs
            }
            for &j in ins {
                self.val[j] |= in_val;
                self.tanf[j] |= in_tan;
                // Its adjoint tangent takes `Jᵀȳ̇` (zero with ours) and, unless linear, `J̇ᵀȳ`.
                if !(self.zt[c] && linear) {
                    self.zt[j] = false;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tape;
    use bilevel_linalg::Mat;
    use std::sync::Arc;

    /// Record `f(x, y)` deferred with a tangent on `y`, and work out the needs of the mixed
    /// product `∇²ₓᵧf·v` (the adjoint tangent of `x` alone, no value).
    fn mixed_needs(f: impl FnOnce(&mut Tape, Var, Var) -> Var) -> (Tape, Vec<bool>) {
        let mut t = Tape::new();
        t.defer();
        let x = t.input(Mat::from_fn(6, 1, |i, _| i as f64).as_ref());
        let y = t.input(Mat::from_fn(4, 1, |i, _| 1.0 - i as f64).as_ref());
        t.begin_tangents();
        t.set_tangent(y, Mat::from_fn(4, 1, |i, _| 0.5 + i as f64).as_ref());
        let out = f(&mut t, x, y);
        let o = out.id as usize;
        let targets = [
            Target {
                var: x,
                adjoint: false,
                tangent: true,
            },
            Target {
                var: y,
                adjoint: false,
                tangent: false,
            },
        ];
        let mut need = Needs::default();
        need.compute(&t.nodes, o, Some(&targets), true);
        need.values(&t.nodes, o, false, true, true, true);
        (t, need.val)
    }

    #[test]
    fn a_quadratic_residual_needs_no_value_for_its_products() {
        let h = Arc::new(Mat::from_fn(6, 4, |i, j| (i * 4 + j) as f64 * 0.1));
        let mut hy = None;
        let (t, val) = mixed_needs(|t, x, y| {
            let ht = t.shared(&h);
            let p = t.matmul(ht, y);
            hy = Some(p.id as usize);
            let r = t.sub(p, x);
            let s = t.sum_sq(r);
            t.scale(s, 0.5)
        });
        let hy = hy.unwrap();
        assert!(
            !val[hy],
            "½‖Hy − x‖²: Hy is read by no rule of the mixed product"
        );
        // Only leaves (whose values are data) are read.
        let computed = |i: usize| val[i] && !t.nodes[i].is_leaf();
        assert!(!(0..val.len()).any(computed), "{val:?}");
        // The same residual through a nonlinearity: its rules read the residual.
        let mut hy = None;
        let (_, val) = mixed_needs(|t, x, y| {
            let ht = t.shared(&h);
            let p = t.matmul(ht, y);
            hy = Some(p.id as usize);
            let r = t.sub(p, x);
            let s = t.sum_sq(r);
            let s = t.scale(s, 0.5);
            t.cos(s)
        });
        assert!(val[hy.unwrap()], "cos(½‖Hy − x‖²) reads the residual");
    }
}

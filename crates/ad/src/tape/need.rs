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
}

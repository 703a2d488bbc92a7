//! Values and tangents over whole tensors: the eager computation of one node, the deferred
//! evaluation of a whole recording, and the forward tangent sweep (JVP).

use super::{Tape, UNSET, Var, grow_vec, value_of};
use crate::ops::{Op, RuleArgs, ValueArgs, matmul};
use bilevel_linalg::{MatMut, MatRef, Par};

#[inline]
pub(super) fn view(s: &[f64], rows: usize, cols: usize) -> MatRef<'_, f64> {
    MatRef::from_column_major_slice(s, rows, cols)
}

#[inline]
pub(super) fn view_mut(s: &mut [f64], rows: usize, cols: usize) -> MatMut<'_, f64> {
    MatMut::from_column_major_slice_mut(s, rows, cols)
}

impl Tape {
    /// Compute node `i`'s value, and its tangent when tangents are eager; its inputs are
    /// computed.
    pub(super) fn compute_node(&mut self, i: usize) {
        let n = self.nodes[i];
        let d = self.dims(&n);
        grow_vec(
            &mut self.scratch,
            n.op.scratch_len(n.rows),
            &mut self.growths,
        );
        let (na, nb) = (self.nodes[n.a as usize], self.nodes[n.b as usize]);
        // A product with a constant left operand computes value and tangent in one pass.
        if self.eager_tangents && n.live && matches!(n.op, Op::MatMul { .. }) && !na.grad && nb.live
        {
            return self.matmul_paired(i);
        }
        let Tape {
            nodes,
            vals,
            aux,
            shared,
            scratch,
            ints,
            ..
        } = self;
        let (pre, post) = vals.split_at_mut(n.off);
        n.op.value(ValueArgs {
            dims: d,
            a: value_of(nodes, pre, shared, n.a),
            b: value_of(nodes, pre, shared, n.b),
            out: &mut post[..n.len()],
            aux: &mut aux[n.aux..n.aux + n.op.aux_len(d)],
            ints: n.op.ints(ints, 0, n.rows),
            scratch: scratch.as_mut_slice(),
            par: Par::Seq,
        });
        if self.eager_tangents && n.live {
            self.tangent_node(i);
        }
    }

    /// Value and tangent of a product `op(A)·op(B)` with a constant `A`: one product
    /// `op(A)·[op(B) op(Ḃ)]` reads `A` once for both.
    fn matmul_paired(&mut self, i: usize) {
        let n = self.nodes[i];
        let Op::MatMul { ta, tb } = n.op else {
            unreachable!()
        };
        let (na, nb) = (self.nodes[n.a as usize], self.nodes[n.b as usize]);
        let k = if ta { na.rows } else { na.cols };
        super::grow(&mut self.pair, 2 * n.cols * (k + n.rows), &mut self.growths);
        let Tape {
            nodes,
            vals,
            tans,
            shared,
            pair,
            ..
        } = self;
        let (vpre, vpost) = vals.split_at_mut(n.off);
        let (tpre, tpost) = tans.split_at_mut(n.off);
        matmul::forward_paired(
            view(value_of(nodes, vpre, shared, n.a), na.rows, na.cols),
            ta,
            view(value_of(nodes, vpre, shared, n.b), nb.rows, nb.cols),
            view(&tpre[nb.off..nb.off + nb.len()], nb.rows, nb.cols),
            tb,
            &mut vpost[..n.len()],
            &mut tpost[..n.len()],
            pair,
            Par::Seq,
        );
    }

    /// Deferred mode: compute every node recorded so far over whole tensors (no streaming), and
    /// keep computing eagerly from now on.
    pub(super) fn compute_all(&mut self) {
        if self.computed == self.nodes.len() {
            return;
        }
        let (from, to) = (self.computed, self.nodes.len());
        self.reserve_lay_out(to, |t, i| i >= from && t.nodes[i].off == UNSET);
        for i in from..to {
            if self.nodes[i].off == UNSET {
                self.lay_out(i);
            }
            if let Op::Shared(k) = self.nodes[i].op {
                self.shared.make_contiguous(k);
            }
        }
        for i in self.computed..self.nodes.len() {
            if !self.nodes[i].is_leaf() {
                self.compute_node(i);
            }
        }
        self.computed = self.nodes.len();
        self.streamed = false;
    }

    pub(super) fn prepare_tangents(&mut self) {
        if self.tangents_prepared {
            return;
        }
        let len = self.vals.len();
        super::grow(&mut self.tans, len, &mut self.growths);
        for n in &self.nodes {
            // Inputs start from zero; so do nodes no input reaches, whose tangent stays zero.
            if n.off != UNSET && (n.op == Op::Input || (!n.grad && !matches!(n.op, Op::Shared(_))))
            {
                self.tans[n.off..n.off + n.len()].fill(0.0);
            }
        }
        for n in &mut self.nodes {
            if n.op == Op::Input {
                n.live = false;
            }
        }
        self.tangents_prepared = true;
        self.tangents_valid = self.eager_tangents;
    }

    /// Whether an input with a tangent reaches each node, from the inputs' flags.
    fn refresh_live(&mut self) {
        for i in 0..self.nodes.len() {
            let n = self.nodes[i];
            if n.is_leaf() {
                continue;
            }
            let live = n.grad
                && (self.nodes[n.a as usize].live
                    || (n.op.is_binary() && self.nodes[n.b as usize].live));
            self.nodes[i].live = live;
        }
    }

    /// Set every input's tangent back to zero (before [`Tape::set_tangent`] calls for a new
    /// direction).
    pub fn reset_tangents(&mut self) {
        self.tangents_prepared = false;
        self.prepare_tangents();
    }

    /// Set the tangent (direction) of an input for the next [`Tape::forward_tangent`]; inputs
    /// without one have a zero tangent.
    ///
    /// # Panics
    /// If `v` is not an input of this recording or `t` has another shape.
    #[track_caller]
    pub fn set_tangent(&mut self, v: Var, t: MatRef<'_, f64>) {
        let n = *self.node(v);
        assert!(n.op == Op::Input, "set_tangent: only inputs take a tangent");
        assert!(
            (t.nrows(), t.ncols()) == (n.rows, n.cols),
            "set_tangent: tangent is {}x{}, input is {}x{}",
            t.nrows(),
            t.ncols(),
            n.rows,
            n.cols
        );
        assert!(
            !self.eager_tangents || self.nodes.iter().all(|n| n.is_leaf()),
            "set_tangent: with eager tangents, set input tangents before recording operations"
        );
        self.prepare_tangents();
        let out = &mut self.tans[n.off..n.off + n.len()];
        for j in 0..n.cols {
            for i in 0..n.rows {
                out[j * n.rows + i] = t[(i, j)];
            }
        }
        self.nodes[v.id as usize].live = true;
        self.tangents_valid = self.eager_tangents;
    }

    /// Forward tangent sweep (JVP): propagate the input tangents set by
    /// [`Tape::set_tangent`] through every recorded operation.
    pub fn forward_tangent(&mut self) {
        if self.tangents_valid {
            return;
        }
        self.compute_all();
        self.prepare_tangents();
        self.refresh_live();
        let len = self.vals.len();
        super::grow(&mut self.tans, len, &mut self.growths);
        let need = self.scratch_need();
        grow_vec(&mut self.scratch, need, &mut self.growths);
        for i in 0..self.nodes.len() {
            let n = self.nodes[i];
            if n.is_leaf() || !n.grad {
                continue;
            }
            if n.live {
                self.tangent_node(i);
            } else {
                self.tans[n.off..n.off + n.len()].fill(0.0);
            }
        }
        self.tangents_valid = true;
    }

    /// JVP rule of node `i`, reading its inputs' tangents (all earlier in the arena).
    pub(super) fn tangent_node(&mut self, i: usize) {
        let n = self.nodes[i];
        let d = self.dims(&n);
        let Tape {
            nodes,
            vals,
            tans,
            aux,
            shared,
            scratch,
            ints,
            ..
        } = self;
        let (na, nb) = (nodes[n.a as usize], nodes[n.b as usize]);
        let (tpre, tpost) = tans.split_at_mut(n.off);
        let r = RuleArgs {
            dims: d,
            a: value_of(nodes, vals, shared, n.a),
            b: value_of(nodes, vals, shared, n.b),
            y: &vals[n.off..n.off + n.len()],
            da: na.live.then(|| &tpre[na.off..na.off + na.len()]),
            db: (n.op.is_binary() && nb.live).then(|| &tpre[nb.off..nb.off + nb.len()]),
            dy: &[],
            ybar: &[],
            dybar: &[],
            aux: &aux[n.aux..n.aux + n.op.aux_len(d)],
            ints: n.op.ints(ints, 0, n.rows),
            par: Par::Seq,
        };
        n.op.tangent(&r, &mut tpost[..n.len()], scratch);
    }
}

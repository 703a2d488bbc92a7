//! Reverse sweeps over whole tensors: gradients and VJPs, and the forward-over-reverse sweep that
//! carries adjoint tangents (Hessian-vector products) together with the adjoints.

use super::{Sweep, Tape, Target, UNSET, Var, grow, grow_vec, value_of};
use crate::ops::{Op, RuleArgs, Side, matmul};
use bilevel_linalg::{MatRef, Par};

impl Tape {
    /// Reverse sweep from the scalar `out`: afterwards [`Tape::adjoint`] gives `∂out/∂v`.
    ///
    /// # Panics
    /// If `out` is not 1×1.
    #[track_caller]
    pub fn backward(&mut self, out: Var) {
        let n = *self.node(out);
        assert!(
            n.len() == 1,
            "backward: the output must be a scalar (1x1), found {}x{}",
            n.rows,
            n.cols
        );
        self.compute_all();
        self.reverse_plain(out, None, Sweep::Adjoint, None);
    }

    /// Reverse sweep seeded with `seed` (same shape as `out`): afterwards [`Tape::adjoint`] of
    /// an input `x` is the vector-Jacobian product `J_xᵀ · seed`.
    #[track_caller]
    pub fn backward_seeded(&mut self, out: Var, seed: MatRef<'_, f64>) {
        let n = *self.node(out);
        assert!(
            (seed.nrows(), seed.ncols()) == (n.rows, n.cols),
            "backward_seeded: seed is {}x{}, output is {}x{}",
            seed.nrows(),
            seed.ncols(),
            n.rows,
            n.cols
        );
        self.compute_all();
        self.reverse_plain(out, Some(seed), Sweep::Adjoint, None);
    }

    /// Forward-over-reverse sweep from the scalar `out`, after [`Tape::forward_tangent`]:
    /// afterwards [`Tape::adjoint`] is the gradient and [`Tape::adjoint_tangent`] the
    /// Hessian-vector product `H · ẋ` along the input tangents.
    ///
    /// # Panics
    /// If `out` is not 1×1 or no tangent sweep has run since the last recording.
    #[track_caller]
    pub fn backward_with_tangent(&mut self, out: Var) {
        let n = *self.node(out);
        assert!(
            n.len() == 1,
            "backward_with_tangent: the output must be a scalar (1x1), found {}x{}",
            n.rows,
            n.cols
        );
        assert!(
            self.tangents_valid,
            "backward_with_tangent: run forward_tangent first"
        );
        self.compute_all();
        self.reverse_plain(out, None, Sweep::Both, None);
    }

    /// Like [`Tape::backward_with_tangent`], but reuses the adjoints of the last
    /// [`Tape::backward`] (or `backward_with_tangent`) from the same `out`, computing only the
    /// adjoint tangents: the cheap way to apply many Hessian-vector products at one point.
    ///
    /// # Panics
    /// If the adjoints of `out` are not available or no tangent sweep has run.
    #[track_caller]
    pub fn backward_tangent_only(&mut self, out: Var) {
        self.node(out);
        assert!(
            self.tangents_valid,
            "backward_tangent_only: run forward_tangent first"
        );
        assert!(
            self.adjoints_of == Some(out.id) && !self.streamed,
            "backward_tangent_only: run backward from this output first"
        );
        self.reverse_plain(out, None, Sweep::TangentOnly, None);
    }

    /// Evaluate a deferred recording for an oracle: values (and tangents), then the reverse
    /// `sweep` from the scalar `out`, computing only what `targets` read afterwards. Streams the
    /// recording block by block when it is a data-sum loss over a large shared matrix and
    /// streaming is allowed; evaluates whole tensors otherwise. Without `value` (the output's
    /// value is not read), a streamed evaluation may skip the values no rule of the sweep reads
    /// (see `need.rs`); values and tangents are then not readable until the next evaluation.
    pub(crate) fn run(&mut self, out: Var, sweep: Sweep, targets: &[Target], value: bool) {
        self.node(out);
        if self.deferred
            && self.computed < self.nodes.len()
            && self.streaming
            && self.try_stream(out, sweep, targets, value)
        {
            return;
        }
        self.compute_all();
        if sweep != Sweep::None {
            self.reverse_plain(out, None, sweep, Some(targets));
        }
    }

    /// Public-facing evaluation of a deferred recording without a reverse sweep: computes
    /// values (and eager tangents) so that [`Tape::value`] can read them. Never streams.
    pub fn evaluate(&mut self) {
        self.compute_all();
    }

    /// Zero the adjoint arenas a sweep fills, over the `len` entries laid out.
    pub(super) fn zero_adjoints(&mut self, with_adj: bool, with_tan: bool) {
        let len = self.vals.len();
        let need = self.scratch_need();
        grow_vec(&mut self.scratch, need, &mut self.growths);
        if with_adj {
            grow(&mut self.adj, len, &mut self.growths);
            self.adj[..len].fill(0.0);
        }
        if with_tan {
            grow(&mut self.adjt, len, &mut self.growths);
            self.adjt[..len].fill(0.0);
        }
        if with_adj && with_tan {
            let need = self
                .nodes
                .iter()
                // Products over whole tensors only (a streamed row node has no storage and
                // runs its products block by block without this buffer).
                .filter(|n| n.grad && n.off != UNSET && matches!(n.op, Op::MatMul { .. }))
                .map(|n| {
                    let nb = &self.nodes[n.b as usize];
                    2 * n.cols * (n.rows + nb.len() / n.cols.max(1))
                })
                .max()
                .unwrap_or(0);
            grow(&mut self.pair, need, &mut self.growths);
        }
    }

    fn reverse_plain(
        &mut self,
        out: Var,
        seed: Option<MatRef<'_, f64>>,
        sweep: Sweep,
        targets: Option<&[Target]>,
    ) {
        let with_adj = matches!(sweep, Sweep::Adjoint | Sweep::Both);
        let with_tan = matches!(sweep, Sweep::Both | Sweep::TangentOnly);
        if sweep == Sweep::TangentOnly {
            // The adjoints of the last sweep are complete; only adjoint tangents are wanted.
            self.need.compute(&self.nodes, out.id as usize, None, true);
        } else {
            self.need
                .compute(&self.nodes, out.id as usize, targets, with_tan);
        }
        self.zero_adjoints(with_adj, with_tan);
        let no = self.nodes[out.id as usize];
        if with_adj {
            let dst = &mut self.adj[no.off..no.off + no.len()];
            match seed {
                None => dst[0] = 1.0,
                Some(s) => {
                    for j in 0..no.cols {
                        for i in 0..no.rows {
                            dst[j * no.rows + i] = s[(i, j)];
                        }
                    }
                }
            }
        }
        self.adjoints_of = Some(out.id);
        for i in (0..=out.id as usize).rev() {
            self.reverse_node(i, with_adj, with_tan);
        }
    }

    /// The reverse rules of node `i` over whole tensors: adjoints (if `with_adj`) and adjoint
    /// tangents (if `with_tan`) of its inputs, as far as the current needs ask. Inputs without
    /// storage (row-indexed intermediates of a streamed evaluation) are skipped.
    pub(super) fn reverse_node(&mut self, i: usize, with_adj: bool, with_tan: bool) {
        let n = self.nodes[i];
        if !n.grad || n.is_leaf() || !(self.need.adj[i] || self.need.tan[i]) {
            return;
        }
        let d = self.dims(&n);
        let Tape {
            nodes,
            vals,
            tans,
            adj,
            adjt,
            aux,
            shared,
            scratch,
            ints,
            pair,
            need,
            ..
        } = self;
        let (na, nb) = (nodes[n.a as usize], nodes[n.b as usize]);
        let stored = |m: &super::Node| m.grad && m.off != UNSET;
        let want_a = stored(&na);
        let want_b = n.op.is_binary() && stored(&nb);
        let adj_a = with_adj && want_a && need.adj[n.a as usize];
        let adj_b = with_adj && want_b && need.adj[n.b as usize];
        let tan_a = with_tan && want_a && need.tan[n.a as usize];
        let tan_b = with_tan && want_b && need.tan[n.b as usize];
        if !(adj_a || adj_b || tan_a || tan_b) {
            return;
        }
        let a = value_of(nodes, vals, shared, n.a);
        let b = value_of(nodes, vals, shared, n.b);
        let y = &vals[n.off..n.off + n.len()];
        let live = |m: &super::Node| m.live && m.off != UNSET;
        let (da, db, dy) = if with_tan {
            (
                live(&na).then(|| &tans[na.off..na.off + na.len()]),
                (n.op.is_binary() && live(&nb)).then(|| &tans[nb.off..nb.off + nb.len()]),
                if n.live {
                    &tans[n.off..n.off + n.len()]
                } else {
                    &[][..]
                },
            )
        } else {
            (None, None, &[][..])
        };
        let (apre, apost) = adj.split_at_mut(n.off);
        let ybar = &apost[..n.len()];
        let (tpre, tpost) = if with_tan {
            adjt.split_at_mut(n.off)
        } else {
            (&mut [][..], &mut [][..])
        };
        let dybar = if with_tan { &tpost[..n.len()] } else { &[][..] };
        // A product with a constant left operand takes both reverse rules of its right operand
        // as one product `op(A)ᵀ·[Ȳ Ȳ̇]`, reading `A` once.
        if let (Op::MatMul { ta, tb }, false, true, true) = (n.op, na.grad, adj_b, tan_b) {
            matmul::vjp_paired_b(
                forward_view(a, na.rows, na.cols),
                ta,
                ybar,
                dybar,
                tb,
                super::forward::view_mut(&mut apre[nb.off..nb.off + nb.len()], nb.rows, nb.cols),
                super::forward::view_mut(&mut tpre[nb.off..nb.off + nb.len()], nb.rows, nb.cols),
                pair,
                Par::Seq,
            );
            return;
        }
        let r = RuleArgs {
            dims: d,
            a,
            b,
            y,
            da,
            db,
            dy,
            ybar,
            dybar,
            aux: &aux[n.aux..n.aux + n.op.aux_len(d)],
            ints: n.op.ints(ints, 0, n.rows),
            par: Par::Seq,
        };
        if adj_a {
            n.op.vjp(Side::A, &r, &mut apre[na.off..na.off + na.len()], scratch);
        }
        if adj_b {
            n.op.vjp(Side::B, &r, &mut apre[nb.off..nb.off + nb.len()], scratch);
        }
        if tan_a {
            n.op.vjp_tangent(Side::A, &r, &mut tpre[na.off..na.off + na.len()], scratch);
        }
        if tan_b {
            n.op.vjp_tangent(Side::B, &r, &mut tpre[nb.off..nb.off + nb.len()], scratch);
        }
    }
}

#[inline]
fn forward_view(s: &[f64], rows: usize, cols: usize) -> MatRef<'_, f64> {
    super::forward::view(s, rows, cols)
}

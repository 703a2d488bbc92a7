//! Recording: leaves (inputs, constants, shared data) and the operation builders.
//!
//! Each builder checks its operands' shapes (panicking with a message that names them) and
//! records one node; in eager mode the node's value (and tangent) is computed at once.

use super::{Node, Tape, UNSET, Var, grow, place};
use crate::ops::{Op, Unary};
use bilevel_linalg::{AlignedVec, Mat, MatRef};
use std::sync::Arc;

impl Tape {
    /// Append a node; in eager mode lay it out and compute it.
    pub(super) fn push(
        &mut self,
        op: Op,
        a: u32,
        b: u32,
        (rows, cols): (usize, usize),
        grad: bool,
    ) -> Var {
        assert!(
            self.nodes.len() < u32::MAX as usize,
            "tape is full ({} nodes)",
            self.nodes.len()
        );
        let live = !op.is_leaf()
            && grad
            && (self.nodes[a as usize].live || (op.is_binary() && self.nodes[b as usize].live));
        if self.nodes.len() == self.nodes.capacity() {
            self.growths += 1;
        }
        let id = self.nodes.len() as u32;
        self.nodes.push(Node {
            op,
            a,
            b,
            rows,
            cols,
            off: UNSET,
            aux: UNSET,
            grad,
            live,
        });
        self.adjoints_of = None;
        if !self.eager_tangents {
            self.tangents_prepared = false;
            self.tangents_valid = false;
        }
        if op.is_leaf() || !self.deferred {
            self.lay_out(id as usize);
        }
        if !self.deferred && !op.is_leaf() {
            self.compute_node(id as usize);
            self.computed = self.nodes.len();
        }
        Var {
            id,
            generation: self.generation,
        }
    }

    /// Entries node `i` takes in the value arena and in the auxiliary arena.
    fn arena_lens(&self, i: usize) -> (usize, usize) {
        let n = self.nodes[i];
        let len = if matches!(n.op, Op::Shared(_)) {
            0
        } else {
            n.len()
        };
        let aux_len = if n.is_leaf() {
            0
        } else {
            n.op.aux_len(self.dims(&n))
        };
        (len, aux_len)
    }

    /// Make room, exactly, for laying out the nodes `i < upto` that `pick` selects, in order: an
    /// evaluation that lays out many nodes at once would otherwise leave the arenas up to twice
    /// their size (the buffers grow by doubling).
    pub(super) fn reserve_lay_out(&mut self, upto: usize, pick: impl Fn(&Tape, usize) -> bool) {
        let (mut end, mut aux_end) = (self.vals.len(), self.aux.len());
        for i in (0..upto).filter(|&i| pick(self, i)) {
            let (len, aux_len) = self.arena_lens(i);
            end = place(end, len) + len;
            aux_end = place(aux_end, aux_len) + aux_len;
        }
        let growths = &mut self.growths;
        let mut fit = |v: &mut AlignedVec, total: usize| {
            if total > v.capacity() {
                *growths += 1;
                v.reserve_total(total);
            }
        };
        fit(&mut self.vals, end);
        fit(&mut self.aux, aux_end);
        if self.eager_tangents {
            fit(&mut self.tans, end);
        }
    }

    /// Give node `i` its place in the arenas (and zero its tangent when tangents are eager).
    pub(super) fn lay_out(&mut self, i: usize) {
        let n = self.nodes[i];
        let (len, aux_len) = self.arena_lens(i);
        let off = place(self.vals.len(), len);
        grow(&mut self.vals, off + len, &mut self.growths);
        let aux = place(self.aux.len(), aux_len);
        grow(&mut self.aux, aux + aux_len, &mut self.growths);
        // A streamed evaluation reads shared data in place; whole-tensor evaluation makes a
        // padded matrix contiguous when it lays out (see `compute_all`).
        if let (Op::Shared(k), false) = (n.op, self.deferred) {
            self.shared.make_contiguous(k);
        }
        if self.eager_tangents {
            grow(&mut self.tans, off + len, &mut self.growths);
            if !n.live {
                self.tans[off..off + len].fill(0.0);
            }
        }
        let node = &mut self.nodes[i];
        node.off = off;
        node.aux = aux;
    }

    fn leaf(&mut self, op: Op, m: MatRef<'_, f64>, grad: bool) -> Var {
        let (r, c) = (m.nrows(), m.ncols());
        let v = self.push(op, 0, 0, (r, c), grad);
        let off = self.nodes[v.id as usize].off;
        let out = &mut self.vals[off..off + r * c];
        for j in 0..c {
            for i in 0..r {
                out[j * r + i] = m[(i, j)];
            }
        }
        v
    }

    /// Record a differentiable input with the given value.
    pub fn input(&mut self, m: MatRef<'_, f64>) -> Var {
        self.leaf(Op::Input, m, true)
    }

    /// Record a constant (not differentiated), copied into the tape.
    pub fn constant(&mut self, m: MatRef<'_, f64>) -> Var {
        self.leaf(Op::Const, m, false)
    }

    /// Record a 1×1 constant.
    pub fn constant_scalar(&mut self, x: f64) -> Var {
        self.leaf(
            Op::Const,
            MatRef::from_column_major_slice(std::slice::from_ref(&x), 1, 1),
            false,
        )
    }

    /// Record a constant shared by reference. Use it for data matrices, which would cost a pass
    /// over memory to copy at every recording.
    ///
    /// No copy is made when `m` is stored contiguously (unit row stride, column stride equal to
    /// the row count). faer pads the columns of a matrix whose row count is not a multiple of
    /// the SIMD width; such a matrix is copied once into a contiguous buffer that the tape keeps
    /// across [`Tape::clear`] for the same `Arc` (for the last few such matrices), so recording
    /// the same function again copies nothing ([`Tape::shared_copies`] counts the copies). A
    /// streamed evaluation (see [`Tape::defer`]) reads the matrix in place and never copies it.
    ///
    /// Store a data matrix **feature-major**, one column per sample (`d × N`), and record its
    /// product with the weights as `matmul_t(x, true, w, false)` (`Xᵀ W`, one row per sample):
    /// a sample's features are then contiguous, which is the layout the streamed evaluation
    /// reads fastest.
    pub fn shared(&mut self, m: &Arc<Mat<f64>>) -> Var {
        let k = self.shared.push(m);
        self.push(Op::Shared(k), 0, 0, (m.nrows(), m.ncols()), false)
    }

    /// Record the rows `rows` of a shared data matrix, in that order, as a constant: only those
    /// rows are copied, into the tape's arena (whose capacity is kept across recordings), read
    /// through the matrix's strides. This is how a loss is recorded on a minibatch of samples
    /// stored one per row: the same value as [`Tape::gather_rows`] on [`Tape::shared`]`(m)`,
    /// without ever copying the whole matrix.
    ///
    /// # Panics
    /// If `rows` is empty or an index is not below `m.nrows()`.
    #[track_caller]
    pub fn shared_rows(&mut self, m: &Arc<Mat<f64>>, rows: &[usize]) -> Var {
        let (ar, ac) = (m.nrows(), m.ncols());
        check_rows("shared_rows", rows, ar, ac);
        let r = rows.len();
        let v = self.push(Op::Const, 0, 0, (r, ac), false);
        let off = self.nodes[v.id as usize].off;
        let out = &mut self.vals[off..off + r * ac];
        for (j, oc) in out.chunks_exact_mut(r).enumerate() {
            let col = m.col_as_slice(j);
            for (o, &i) in oc.iter_mut().zip(rows) {
                *o = col[i];
            }
        }
        v
    }

    /// Record the columns `cols` of a shared data matrix, in that order, as a constant: the
    /// minibatch form of a feature-major data matrix (one column per sample). Only those columns
    /// are copied, into the tape's arena.
    ///
    /// # Panics
    /// If `cols` is empty or an index is not below `m.ncols()`.
    #[track_caller]
    pub fn shared_cols(&mut self, m: &Arc<Mat<f64>>, cols: &[usize]) -> Var {
        let (ar, ac) = (m.nrows(), m.ncols());
        assert!(
            !cols.is_empty(),
            "shared_cols: no columns selected from {ar}x{ac}"
        );
        if let Some((i, &c)) = cols.iter().enumerate().find(|(_, c)| **c >= ac) {
            panic!("shared_cols: index {c} (position {i}) is out of range for {ar}x{ac}");
        }
        let v = self.push(Op::Const, 0, 0, (ar, cols.len()), false);
        let off = self.nodes[v.id as usize].off;
        let out = &mut self.vals[off..off + ar * cols.len()];
        for (oc, &j) in out.chunks_exact_mut(ar).zip(cols) {
            oc.copy_from_slice(m.col_as_slice(j));
        }
        v
    }

    // ----- recording helpers --------------------------------------------------------------

    /// Record an operation on `a` (and `b`) with an output of shape `shape`.
    fn record(&mut self, op: Op, a: Var, b: Option<Var>, shape: (usize, usize)) -> Var {
        let ga = self.node(a).grad;
        let gb = b.is_some_and(|b| self.node(b).grad);
        self.push(op, a.id, b.map_or(a.id, |b| b.id), shape, ga || gb)
    }

    #[track_caller]
    fn same_shape(&self, what: &str, a: Var, b: Var) -> (usize, usize) {
        let (sa, sb) = (self.shape(a), self.shape(b));
        assert!(
            sa == sb,
            "{what}: shape mismatch, left is {}x{}, right is {}x{}",
            sa.0,
            sa.1,
            sb.0,
            sb.1
        );
        sa
    }

    // ----- operations ---------------------------------------------------------------------

    /// `a + b` (same shapes).
    #[track_caller]
    pub fn add(&mut self, a: Var, b: Var) -> Var {
        let s = self.same_shape("add", a, b);
        self.record(Op::Add, a, Some(b), s)
    }

    /// `a − b` (same shapes).
    #[track_caller]
    pub fn sub(&mut self, a: Var, b: Var) -> Var {
        let s = self.same_shape("sub", a, b);
        self.record(Op::Sub, a, Some(b), s)
    }

    /// `−a`.
    #[track_caller]
    pub fn neg(&mut self, a: Var) -> Var {
        let s = self.shape(a);
        self.record(Op::Neg, a, None, s)
    }

    /// Elementwise product `a ⊙ b` (same shapes).
    #[track_caller]
    pub fn mul(&mut self, a: Var, b: Var) -> Var {
        let s = self.same_shape("mul", a, b);
        self.record(Op::Mul, a, Some(b), s)
    }

    /// Elementwise quotient `a ⊘ b` (same shapes).
    #[track_caller]
    pub fn div(&mut self, a: Var, b: Var) -> Var {
        let s = self.same_shape("div", a, b);
        self.record(Op::Div, a, Some(b), s)
    }

    /// `alpha · a` for a constant `alpha`.
    #[track_caller]
    pub fn scale(&mut self, a: Var, alpha: f64) -> Var {
        let s = self.shape(a);
        self.record(Op::Scale(alpha), a, None, s)
    }

    /// `a + beta` (every entry) for a constant `beta`.
    #[track_caller]
    pub fn shift(&mut self, a: Var, beta: f64) -> Var {
        let s = self.shape(a);
        self.record(Op::Shift(beta), a, None, s)
    }

    /// `s · a` where `s` is a 1×1 variable.
    ///
    /// # Panics
    /// If `s` is not 1×1.
    #[track_caller]
    pub fn scalar_mul(&mut self, s: Var, a: Var) -> Var {
        let (sr, sc) = self.shape(s);
        assert!(
            sr == 1 && sc == 1,
            "scalar_mul: the scalar must be 1x1, found {sr}x{sc}"
        );
        let sh = self.shape(a);
        self.record(Op::ScalarMul, s, Some(a), sh)
    }

    /// Matrix product `a · b`.
    #[track_caller]
    pub fn matmul(&mut self, a: Var, b: Var) -> Var {
        self.matmul_t(a, false, b, false)
    }

    /// Matrix product `op(a) · op(b)`, where `op` transposes its operand when the flag is set:
    /// `matmul_t(a, true, b, false)` is `aᵀ b`. Transposition is free (a view).
    #[track_caller]
    pub fn matmul_t(&mut self, a: Var, ta: bool, b: Var, tb: bool) -> Var {
        let (ar, ac) = self.shape(a);
        let (br, bc) = self.shape(b);
        let (m, k1) = if ta { (ac, ar) } else { (ar, ac) };
        let (k2, n) = if tb { (bc, br) } else { (br, bc) };
        assert!(
            k1 == k2,
            "matmul: inner dimensions differ, op(a) is {m}x{k1} (a is {ar}x{ac}{}), op(b) is {k2}x{n} (b is {br}x{bc}{})",
            if ta { ", transposed" } else { "" },
            if tb { ", transposed" } else { "" }
        );
        self.record(Op::MatMul { ta, tb }, a, Some(b), (m, n))
    }

    /// Inner product `⟨a, b⟩` of two tensors of the same shape (a 1×1 result).
    #[track_caller]
    pub fn dot(&mut self, a: Var, b: Var) -> Var {
        self.same_shape("dot", a, b);
        self.record(Op::Dot, a, Some(b), (1, 1))
    }

    /// Sum of all entries (1×1).
    #[track_caller]
    pub fn sum(&mut self, a: Var) -> Var {
        self.node(a);
        self.record(Op::Sum, a, None, (1, 1))
    }

    /// Mean of all entries (1×1).
    #[track_caller]
    pub fn mean(&mut self, a: Var) -> Var {
        let (r, c) = self.shape(a);
        let s = self.sum(a);
        self.scale(s, 1.0 / (r * c) as f64)
    }

    /// Per-row sums: an `r × c` tensor gives an `r × 1` column.
    #[track_caller]
    pub fn sum_rows(&mut self, a: Var) -> Var {
        let (r, _) = self.shape(a);
        self.record(Op::SumRows, a, None, (r, 1))
    }

    /// Per-row means (`r × 1`).
    #[track_caller]
    pub fn mean_rows(&mut self, a: Var) -> Var {
        let (_, c) = self.shape(a);
        let s = self.sum_rows(a);
        self.scale(s, 1.0 / c as f64)
    }

    /// Per-column sums: an `r × c` tensor gives a `1 × c` row.
    #[track_caller]
    pub fn sum_cols(&mut self, a: Var) -> Var {
        let (_, cols) = self.shape(a);
        self.record(Op::SumCols, a, None, (1, cols))
    }

    /// Per-column means (`1 × c`).
    #[track_caller]
    pub fn mean_cols(&mut self, a: Var) -> Var {
        let (r, _) = self.shape(a);
        let s = self.sum_cols(a);
        self.scale(s, 1.0 / r as f64)
    }

    /// Sum of squares `Σ a²` (1×1).
    #[track_caller]
    pub fn sum_sq(&mut self, a: Var) -> Var {
        self.node(a);
        self.record(Op::SumSq, a, None, (1, 1))
    }

    /// Row broadcast: `a + 1·b`, adding the `1 × c` row `b` to every row of the `r × c` tensor
    /// `a` (a bias).
    #[track_caller]
    pub fn add_row(&mut self, a: Var, b: Var) -> Var {
        let (r, c) = self.shape(a);
        let (br, bc) = self.shape(b);
        assert!(
            br == 1 && bc == c,
            "add_row: expected a 1x{c} row for a {r}x{c} tensor, found {br}x{bc}"
        );
        self.record(Op::AddRow, a, Some(b), (r, c))
    }

    fn unary(&mut self, a: Var, u: Unary) -> Var {
        let s = self.shape(a);
        self.record(Op::Unary(u), a, None, s)
    }

    /// Elementwise `exp`.
    #[track_caller]
    pub fn exp(&mut self, a: Var) -> Var {
        self.unary(a, Unary::Exp)
    }
    /// Elementwise natural logarithm.
    #[track_caller]
    pub fn log(&mut self, a: Var) -> Var {
        self.unary(a, Unary::Log)
    }
    /// Elementwise `log(1 + a)`, accurate near 0.
    #[track_caller]
    pub fn log1p(&mut self, a: Var) -> Var {
        self.unary(a, Unary::Log1p)
    }
    /// Elementwise square root.
    #[track_caller]
    pub fn sqrt(&mut self, a: Var) -> Var {
        self.unary(a, Unary::Sqrt)
    }
    /// Elementwise sine.
    #[track_caller]
    pub fn sin(&mut self, a: Var) -> Var {
        self.unary(a, Unary::Sin)
    }
    /// Elementwise cosine.
    #[track_caller]
    pub fn cos(&mut self, a: Var) -> Var {
        self.unary(a, Unary::Cos)
    }
    /// Elementwise hyperbolic tangent.
    #[track_caller]
    pub fn tanh(&mut self, a: Var) -> Var {
        self.unary(a, Unary::Tanh)
    }
    /// Elementwise logistic sigmoid `1 / (1 + e^(−a))`, stable for large `|a|`.
    #[track_caller]
    pub fn sigmoid(&mut self, a: Var) -> Var {
        self.unary(a, Unary::Sigmoid)
    }
    /// Elementwise softplus `log(1 + e^a)`, stable for large `|a|`.
    #[track_caller]
    pub fn softplus(&mut self, a: Var) -> Var {
        self.unary(a, Unary::Softplus)
    }
    /// Elementwise `max(a, 0)` (its second derivative is taken as 0 everywhere).
    #[track_caller]
    pub fn relu(&mut self, a: Var) -> Var {
        self.unary(a, Unary::Relu)
    }

    /// Elementwise integer power `aⁿ`.
    #[track_caller]
    pub fn powi(&mut self, a: Var, n: i32) -> Var {
        let s = self.shape(a);
        self.record(Op::Powi(n), a, None, s)
    }

    /// Row-wise log-sum-exp: an `r × c` tensor gives the `r × 1` column
    /// `log Σⱼ exp(a[i, j])`, computed stably.
    #[track_caller]
    pub fn logsumexp_rows(&mut self, a: Var) -> Var {
        let (r, _) = self.shape(a);
        self.record(Op::LogSumExpRows, a, None, (r, 1))
    }

    /// Log-sum-exp of all entries (1×1).
    #[track_caller]
    pub fn logsumexp(&mut self, a: Var) -> Var {
        let (r, c) = self.shape(a);
        let flat = self.reshape(a, 1, r * c);
        self.logsumexp_rows(flat)
    }

    /// Row-wise softmax: each row of the result is `exp(a[i, ·]) / Σⱼ exp(a[i, j])`.
    #[track_caller]
    pub fn softmax_rows(&mut self, a: Var) -> Var {
        let s = self.shape(a);
        self.record(Op::SoftmaxRows, a, None, s)
    }

    /// Per-sample softmax cross-entropy: for `n × k` logits and `n` labels in `0..k`, the
    /// `n × 1` column `log Σⱼ exp(a[i, j]) − a[i, labels[i]]`, fused and stable.
    ///
    /// # Panics
    /// If `labels.len()` is not the number of rows, or a label is not below the number of
    /// columns (the message names the first bad label).
    #[track_caller]
    pub fn cross_entropy_rows(&mut self, logits: Var, labels: &[u32]) -> Var {
        let (r, c) = self.shape(logits);
        assert!(
            labels.len() == r,
            "cross_entropy: {} labels for {r}x{c} logits",
            labels.len()
        );
        if let Some((i, &l)) = labels.iter().enumerate().find(|(_, l)| **l as usize >= c) {
            panic!("cross_entropy: label {l} of sample {i} is out of range for {c} classes");
        }
        let lo = self.push_ints(labels.iter().copied());
        self.record(Op::XentRows { labels: lo }, logits, None, (r, 1))
    }

    /// Mean softmax cross-entropy `(1/n) Σᵢ wᵢ lᵢ` over the rows of `logits`, with optional
    /// per-sample weights `w` (an `n × 1` variable, differentiable like any other).
    #[track_caller]
    pub fn cross_entropy(&mut self, logits: Var, labels: &[u32], weights: Option<Var>) -> Var {
        let (r, _) = self.shape(logits);
        let l = self.cross_entropy_rows(logits, labels);
        let s = match weights {
            Some(w) => self.dot(w, l),
            None => self.sum(l),
        };
        self.scale(s, 1.0 / r as f64)
    }

    /// The `rows × cols` block of `a` starting at `(r0, c0)`.
    #[track_caller]
    pub fn slice(&mut self, a: Var, r0: usize, c0: usize, rows: usize, cols: usize) -> Var {
        let (ar, ac) = self.shape(a);
        assert!(
            r0 + rows <= ar && c0 + cols <= ac && rows > 0 && cols > 0,
            "slice: block {rows}x{cols} at ({r0}, {c0}) does not fit in {ar}x{ac}"
        );
        self.record(Op::Slice { r0, c0 }, a, None, (rows, cols))
    }

    /// Vertical concatenation `[a; b]` (same number of columns).
    #[track_caller]
    pub fn concat_rows(&mut self, a: Var, b: Var) -> Var {
        let (ar, ac) = self.shape(a);
        let (br, bc) = self.shape(b);
        assert!(
            ac == bc,
            "concat_rows: column counts differ, top is {ar}x{ac}, bottom is {br}x{bc}"
        );
        self.record(Op::ConcatRows, a, Some(b), (ar + br, ac))
    }

    /// The rows `rows` of `a`, in that order: `out[i, ·] = a[rows[i], ·]` (an index may repeat;
    /// its adjoints then add up). On a constant the result is a constant; the rows of a data
    /// matrix are better taken with [`Tape::shared_rows`], which never copies the whole matrix.
    ///
    /// # Panics
    /// If `rows` is empty or an index is not below the number of rows of `a`.
    #[track_caller]
    pub fn gather_rows(&mut self, a: Var, rows: &[usize]) -> Var {
        let (ar, ac) = self.shape(a);
        check_rows("gather_rows", rows, ar, ac);
        assert!(
            u32::try_from(ar).is_ok(),
            "gather_rows: {ar} rows is too many to index"
        );
        let lo = self.push_ints(rows.iter().map(|&i| i as u32));
        self.record(Op::GatherRows { rows: lo }, a, None, (rows.len(), ac))
    }

    /// The same entries in column-major order with a new shape (`rows · cols` must match).
    #[track_caller]
    pub fn reshape(&mut self, a: Var, rows: usize, cols: usize) -> Var {
        let (ar, ac) = self.shape(a);
        assert!(
            ar * ac == rows * cols,
            "reshape: cannot view {ar}x{ac} as {rows}x{cols}"
        );
        self.record(Op::Reshape, a, None, (rows, cols))
    }

    /// Append integer data; returns its offset.
    fn push_ints(&mut self, it: impl ExactSizeIterator<Item = u32>) -> usize {
        let lo = self.ints.len();
        if lo + it.len() > self.ints.capacity() {
            self.growths += 1;
        }
        self.ints.extend(it);
        lo
    }
}

/// Panics unless `rows` is a nonempty list of row indices of an `ar × ac` matrix.
#[track_caller]
fn check_rows(what: &str, rows: &[usize], ar: usize, ac: usize) {
    assert!(!rows.is_empty(), "{what}: no rows selected from {ar}x{ac}");
    if let Some((i, &r)) = rows.iter().enumerate().find(|(_, r)| **r >= ar) {
        panic!("{what}: index {r} (position {i}) is out of range for {ar}x{ac}");
    }
}

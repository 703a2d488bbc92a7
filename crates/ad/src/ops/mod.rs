//! The closed set of tape operations and their differentiation rules.
//!
//! Every operation keeps four rules together in its family module:
//!
//! - **value**: the primal result;
//! - **JVP** (tangent): `ẏ = J·ẋ`, used by the forward tangent sweep;
//! - **VJP** (adjoint): `x̄ += Jᵀ·ȳ`, used by the reverse sweep;
//! - **VJP tangent**: the directional derivative of the VJP along the input tangent,
//!   `x̄̇ += Jᵀ·ȳ̇ + (J̇)ᵀ·ȳ`, which turns the reverse sweep into a forward-over-reverse sweep that
//!   returns a Hessian-vector product alongside the gradient.
//!
//! This module is the one dispatch from an [`Op`] to its family's rules ([`Op::value`],
//! [`Op::tangent`], [`Op::vjp`], [`Op::vjp_tangent`]) and the facts the executors need about it
//! (arity, linearity, auxiliary storage, which rules read the adjoint, how it treats rows). Both
//! executors of the tape (whole tensors, and blocks of rows when a data-sum loss is streamed) call
//! these and nothing else, so adding an operation is one enum arm here plus its family module.
//!
//! Rules work on column-major contiguous slices (and `MatRef` views of them for products).

pub(crate) mod arith;
pub(crate) mod elementwise;
pub(crate) mod matmul;
pub(crate) mod reduce;
pub(crate) mod shape;
pub(crate) mod softmax;

pub(crate) use elementwise::Unary;

use bilevel_linalg::{MatMut, MatRef, Par};
use elementwise::Fun;

/// One recorded operation. Inputs live in the node (`a`, `b`); extra data is stored inline.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Op {
    /// A differentiable input.
    Input,
    /// A constant copied into the arena.
    Const,
    /// A constant shared by reference (index into the tape's shared list).
    Shared(u32),
    Add,
    Sub,
    Neg,
    Mul,
    Div,
    Scale(f64),
    Shift(f64),
    /// `s · a` with `s` a 1×1 variable (`a` is input `b`).
    ScalarMul,
    MatMul {
        ta: bool,
        tb: bool,
    },
    Dot,
    Sum,
    SumRows,
    SumCols,
    SumSq,
    /// `a + 1·bᵀ`: `b` is a 1×m row added to every row of `a`.
    AddRow,
    Unary(Unary),
    Powi(i32),
    LogSumExpRows,
    SoftmaxRows,
    /// Per-row softmax cross-entropy; `labels` is the offset of the labels in the tape's
    /// integer arena.
    XentRows {
        labels: usize,
    },
    Slice {
        r0: usize,
        c0: usize,
    },
    ConcatRows,
    Reshape,
    /// Rows of `a` picked by index; `rows` is the offset of the indices in the tape's integer
    /// arena.
    GatherRows {
        rows: usize,
    },
}

/// Which input of a binary operation a rule is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    A,
    B,
}

/// Shapes of a node and of its inputs, as the rules see them (for a block of rows, the block's
/// row count).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Dims {
    pub rows: usize,
    pub cols: usize,
    pub a: (usize, usize),
    pub b: (usize, usize),
}

/// How an operation relates the rows of its inputs to the rows of its output, for streaming a
/// data-sum loss block of rows by block of rows (see the tape's `stream` module).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RowRule {
    /// Row `i` of the output depends on row `i` of the inputs that have the output's rows, and
    /// on whole parameters otherwise.
    Local,
    /// A sum over the rows of its row-indexed inputs: the output is a parameter-sized partial
    /// sum per block.
    Reduce,
    /// Mixes rows: the operation cannot be streamed.
    Mixing,
}

#[inline]
pub(crate) fn view(s: &[f64], rows: usize, cols: usize) -> MatRef<'_, f64> {
    MatRef::from_column_major_slice(s, rows, cols)
}

#[inline]
pub(crate) fn view_mut(s: &mut [f64], rows: usize, cols: usize) -> MatMut<'_, f64> {
    MatMut::from_column_major_slice_mut(s, rows, cols)
}

/// What an operation's value rule reads and writes.
pub(crate) struct ValueArgs<'a> {
    pub dims: Dims,
    pub a: &'a [f64],
    pub b: &'a [f64],
    pub out: &'a mut [f64],
    pub aux: &'a mut [f64],
    /// The operation's integer data (labels of its rows, or gathered indices).
    pub ints: &'a [u32],
    /// At least `2 · rows` entries.
    pub scratch: &'a mut [f64],
    pub par: Par,
}

/// What an operation's tangent and reverse rules read: input and output values, tangents (a
/// missing input tangent is zero), auxiliary data, and for the reverse rules the output's adjoint
/// and adjoint tangent.
pub(crate) struct RuleArgs<'a> {
    pub dims: Dims,
    pub a: &'a [f64],
    pub b: &'a [f64],
    pub y: &'a [f64],
    pub da: Option<&'a [f64]>,
    pub db: Option<&'a [f64]>,
    pub dy: &'a [f64],
    pub ybar: &'a [f64],
    pub dybar: &'a [f64],
    pub aux: &'a [f64],
    pub ints: &'a [u32],
    pub par: Par,
}

impl Op {
    /// Leaves hold data; every other operation is computed from its inputs.
    #[inline]
    pub(crate) fn is_leaf(self) -> bool {
        matches!(self, Op::Input | Op::Const | Op::Shared(_))
    }

    /// Whether the operation reads input `b` (else `b` repeats `a`).
    #[inline]
    pub(crate) fn is_binary(self) -> bool {
        matches!(
            self,
            Op::Add
                | Op::Sub
                | Op::Mul
                | Op::Div
                | Op::ScalarMul
                | Op::MatMul { .. }
                | Op::Dot
                | Op::AddRow
                | Op::ConcatRows
        )
    }

    /// Linear operations: the JVP is the operation on tangents and the VJP tangent is the VJP
    /// applied to `ȳ̇`; no rule reads a value.
    #[inline]
    pub(crate) fn is_linear(self) -> bool {
        matches!(
            self,
            Op::Add
                | Op::Sub
                | Op::Neg
                | Op::Scale(_)
                | Op::Shift(_)
                | Op::Reshape
                | Op::Sum
                | Op::SumRows
                | Op::SumCols
                | Op::AddRow
                | Op::Slice { .. }
                | Op::ConcatRows
                | Op::GatherRows { .. }
        )
    }

    /// Entries of scratch the operation's rules use, for an output of `rows` rows (the row
    /// sums of the softmax family; nothing for the others).
    #[inline]
    pub(crate) fn scratch_len(self, rows: usize) -> usize {
        match self {
            Op::LogSumExpRows | Op::XentRows { .. } | Op::SoftmaxRows => 2 * rows,
            _ => 0,
        }
    }

    /// Entries of auxiliary storage the operation keeps (the row probabilities of a softmax
    /// family operation).
    #[inline]
    pub(crate) fn aux_len(self, d: Dims) -> usize {
        match self {
            Op::LogSumExpRows | Op::XentRows { .. } => d.a.0 * d.a.1,
            Op::SoftmaxRows => d.rows,
            _ => 0,
        }
    }

    /// The integer data of the operation within the tape's integer arena, for its rows
    /// `row0 .. row0 + rows`.
    #[inline]
    pub(crate) fn ints(self, all: &[u32], row0: usize, rows: usize) -> &[u32] {
        match self {
            Op::XentRows { labels } => &all[labels + row0..labels + row0 + rows],
            Op::GatherRows { rows: lo } => &all[lo..lo + rows],
            _ => &[],
        }
    }

    /// Whether the VJP tangent into `side` reads the output adjoint `ȳ` (its `J̇ᵀȳ` term), given
    /// whether the other input (`other`) and this input (`own`) carry a tangent.
    pub(crate) fn tangent_rule_reads_adjoint(self, side: Side, own: bool, other: bool) -> bool {
        if self.is_linear() {
            return false;
        }
        match self {
            // Bilinear: the J̇ term is the other operand's tangent.
            Op::Mul | Op::Dot | Op::MatMul { .. } => other,
            Op::ScalarMul => other,
            Op::Div => match side {
                Side::A => other,
                Side::B => own || other,
            },
            _ => own,
        }
    }

    /// How the operation treats rows (see [`RowRule`]), given which inputs are row-indexed.
    pub(crate) fn row_rule(self, d: Dims, a_rows: bool, b_rows: bool) -> RowRule {
        let any = a_rows || (self.is_binary() && b_rows);
        match self {
            Op::Add | Op::Sub | Op::Mul | Op::Div => RowRule::Local,
            Op::Neg | Op::Scale(_) | Op::Shift(_) | Op::Unary(_) | Op::Powi(_) => RowRule::Local,
            Op::LogSumExpRows | Op::SoftmaxRows | Op::XentRows { .. } | Op::SumRows => {
                RowRule::Local
            }
            // A bias row added to every row; a scalar times a tensor.
            Op::AddRow if a_rows && !b_rows => RowRule::Local,
            Op::ScalarMul if b_rows && !a_rows => RowRule::Local,
            // A block of rows times a parameter matrix.
            Op::MatMul { ta: false, .. } if a_rows && !b_rows => RowRule::Local,
            // Whole columns of a row-indexed tensor.
            Op::Slice { r0: 0, .. } if d.rows == d.a.0 => RowRule::Local,
            Op::Reshape if (d.rows, d.cols) == d.a => RowRule::Local,
            Op::Dot | Op::Sum | Op::SumSq | Op::SumCols if any => RowRule::Reduce,
            _ => RowRule::Mixing,
        }
    }

    /// The value rule: fills `out` (and the auxiliary data).
    pub(crate) fn value(self, v: ValueArgs<'_>) {
        let d = v.dims;
        let (a, b, out) = (v.a, v.b, v.out);
        match self {
            Op::Input | Op::Const | Op::Shared(_) => unreachable!("leaves are not computed"),
            Op::Add => arith::value::add(a, b, out),
            Op::Sub => arith::value::sub(a, b, out),
            Op::Neg => arith::value::affine(a, -1.0, 0.0, out),
            Op::Mul => arith::value::mul(a, b, out),
            Op::Div => arith::value::div(a, b, out),
            Op::Scale(c) => arith::value::affine(a, c, 0.0, out),
            Op::Shift(c) => arith::value::affine(a, 1.0, c, out),
            Op::ScalarMul => arith::value::affine(b, a[0], 0.0, out),
            Op::MatMul { ta, tb } => matmul::forward(
                view(a, d.a.0, d.a.1),
                ta,
                view(b, d.b.0, d.b.1),
                tb,
                view_mut(out, d.rows, d.cols),
                v.par,
            ),
            Op::Dot => out[0] = arith::dot(a, b),
            Op::Sum => out[0] = reduce::sum(a),
            Op::SumRows => reduce::sum_rows(a, d.a.0, out),
            Op::SumCols => reduce::sum_cols(a, d.a.0, out),
            Op::SumSq => out[0] = reduce::sum_sq(a),
            Op::AddRow => reduce::add_row(a, b, d.rows, out),
            Op::Unary(u) => elementwise::forward(Fun::U(u), a, out),
            Op::Powi(k) => elementwise::forward(Fun::Powi(k), a, out),
            Op::LogSumExpRows => {
                softmax::softmax_lse(a, d.rows, v.aux, out, &mut v.scratch[..d.rows])
            }
            Op::SoftmaxRows => {
                softmax::softmax_lse(a, d.rows, out, v.aux, &mut v.scratch[..d.rows])
            }
            Op::XentRows { .. } => {
                softmax::xent_forward(a, v.ints, d.rows, v.aux, out, &mut v.scratch[..d.rows])
            }
            Op::Slice { r0, c0 } => shape::slice(a, d.a.0, r0, c0, d.rows, out),
            Op::ConcatRows => shape::concat_rows(Some(a), d.a.0, Some(b), d.b.0, out),
            Op::GatherRows { .. } => shape::gather_rows(a, d.a.0, v.ints, out),
            Op::Reshape => out.copy_from_slice(a),
        }
    }

    /// The JVP rule: fills `dy` from the input tangents (`r.dy`, `r.ybar` and `r.dybar` are not
    /// read). `scratch` holds at least `rows` entries.
    pub(crate) fn tangent(self, r: &RuleArgs<'_>, dy: &mut [f64], scratch: &mut [f64]) {
        let d = r.dims;
        let (a, b, da, db, y) = (r.a, r.b, r.da, r.db, r.y);
        let both = |dy: &mut [f64], sb: f64| {
            dy.fill(0.0);
            if let Some(da) = da {
                arith::axpy(dy, 1.0, da);
            }
            if let Some(db) = db {
                arith::axpy(dy, sb, db);
            }
        };
        match self {
            Op::Input | Op::Const | Op::Shared(_) => unreachable!("leaves have no rule"),
            Op::Add => both(dy, 1.0),
            Op::Sub => both(dy, -1.0),
            Op::Neg => arith::value::affine(da.unwrap(), -1.0, 0.0, dy),
            Op::Scale(c) => arith::value::affine(da.unwrap(), c, 0.0, dy),
            Op::Shift(_) | Op::Reshape => dy.copy_from_slice(da.unwrap()),
            Op::Mul => arith::mul::tangent(a, b, da, db, dy),
            Op::Div => arith::div::tangent(a, b, da, db, dy),
            Op::ScalarMul => arith::scalar_mul::tangent(a[0], b, da.map(|d| d[0]), db, dy),
            Op::MatMul { ta, tb } => {
                matmul::tangent(operands(r, ta, tb), view_mut(dy, d.rows, d.cols), r.par)
            }
            Op::Dot => {
                dy[0] = da.map_or(0.0, |d| arith::dot(d, b)) + db.map_or(0.0, |d| arith::dot(a, d))
            }
            Op::Sum => dy[0] = reduce::sum(da.unwrap()),
            Op::SumRows => reduce::sum_rows(da.unwrap(), d.a.0, dy),
            Op::SumCols => reduce::sum_cols(da.unwrap(), d.a.0, dy),
            Op::SumSq => dy[0] = 2.0 * arith::dot(a, da.unwrap()),
            Op::AddRow => {
                dy.fill(0.0);
                if let Some(da) = da {
                    arith::axpy(dy, 1.0, da);
                }
                if let Some(db) = db {
                    for (c, &v) in dy.chunks_exact_mut(d.rows).zip(db) {
                        c.iter_mut().for_each(|x| *x += v);
                    }
                }
            }
            Op::Unary(u) => elementwise::tangent(Fun::U(u), a, y, da.unwrap(), dy),
            Op::Powi(k) => elementwise::tangent(Fun::Powi(k), a, y, da.unwrap(), dy),
            Op::LogSumExpRows => softmax::lse_tangent(r.aux, da.unwrap(), None, d.rows, dy),
            Op::XentRows { .. } => {
                softmax::lse_tangent(r.aux, da.unwrap(), Some(r.ints), d.rows, dy)
            }
            Op::SoftmaxRows => {
                softmax::softmax_tangent(y, da.unwrap(), d.rows, dy, &mut scratch[..d.rows])
            }
            Op::Slice { r0, c0 } => shape::slice(da.unwrap(), d.a.0, r0, c0, d.rows, dy),
            Op::ConcatRows => shape::concat_rows(da, d.a.0, db, d.b.0, dy),
            Op::GatherRows { .. } => shape::gather_rows(da.unwrap(), d.a.0, r.ints, dy),
        }
    }

    /// The adjoint of a linear operation: map `src` (an output adjoint or adjoint tangent) into
    /// the adjoint of input `side`.
    fn linear_adjoint(self, side: Side, d: Dims, ints: &[u32], src: &[f64], dst: &mut [f64]) {
        match self {
            Op::Add | Op::Shift(_) | Op::Reshape => arith::axpy(dst, 1.0, src),
            Op::Sub => arith::axpy(dst, if side == Side::A { 1.0 } else { -1.0 }, src),
            Op::Neg => arith::axpy(dst, -1.0, src),
            Op::Scale(c) => arith::axpy(dst, c, src),
            Op::Sum => dst.iter_mut().for_each(|x| *x += src[0]),
            Op::SumRows => reduce::sum_rows_adjoint(src, d.a.0, dst),
            Op::SumCols => reduce::sum_cols_adjoint(src, d.a.0, dst),
            Op::AddRow => match side {
                Side::A => arith::axpy(dst, 1.0, src),
                Side::B => {
                    for (x, c) in dst.iter_mut().zip(src.chunks_exact(d.rows)) {
                        *x += reduce::sum(c);
                    }
                }
            },
            Op::Slice { r0, c0 } => shape::slice_adjoint(src, d.a.0, r0, c0, d.rows, dst),
            Op::ConcatRows => shape::concat_rows_adjoint(src, d.a.0, d.b.0, side == Side::A, dst),
            Op::GatherRows { .. } => shape::gather_rows_adjoint(src, d.a.0, ints, dst),
            _ => unreachable!("not a linear operation: {self:?}"),
        }
    }

    /// The VJP rule: `x̄ += Jᵀ ȳ` for input `side`. `scratch` holds at least `rows` entries.
    pub(crate) fn vjp(self, side: Side, r: &RuleArgs<'_>, xbar: &mut [f64], scratch: &mut [f64]) {
        let d = r.dims;
        let (a, b, ybar) = (r.a, r.b, r.ybar);
        if self.is_linear() {
            return self.linear_adjoint(side, d, r.ints, ybar, xbar);
        }
        match self {
            Op::Mul => arith::mul::vjp(if side == Side::A { b } else { a }, ybar, xbar),
            Op::Div => match side {
                Side::A => arith::div::vjp_a(b, ybar, xbar),
                Side::B => arith::div::vjp_b(a, b, ybar, xbar),
            },
            Op::ScalarMul => match side {
                Side::A => xbar[0] += arith::scalar_mul::vjp_s(b, ybar),
                Side::B => arith::axpy(xbar, a[0], ybar),
            },
            Op::MatMul { ta, tb } => {
                let o = operands(r, ta, tb);
                let yb = view(ybar, d.rows, d.cols);
                match side {
                    Side::A => matmul::vjp_a(o, yb, view_mut(xbar, d.a.0, d.a.1), r.par),
                    Side::B => matmul::vjp_b(o, yb, view_mut(xbar, d.b.0, d.b.1), r.par),
                }
            }
            Op::Dot => arith::axpy(xbar, ybar[0], if side == Side::A { b } else { a }),
            Op::SumSq => arith::axpy(xbar, 2.0 * ybar[0], a),
            Op::Unary(u) => elementwise::vjp(Fun::U(u), a, r.y, ybar, xbar),
            Op::Powi(k) => elementwise::vjp(Fun::Powi(k), a, r.y, ybar, xbar),
            Op::LogSumExpRows => softmax::lse_vjp(r.aux, ybar, None, d.rows, xbar),
            Op::XentRows { .. } => softmax::lse_vjp(r.aux, ybar, Some(r.ints), d.rows, xbar),
            Op::SoftmaxRows => {
                softmax::softmax_vjp(r.y, ybar, d.rows, xbar, &mut scratch[..d.rows])
            }
            _ => unreachable!("no VJP rule for {self:?}"),
        }
    }

    /// The VJP tangent rule: `x̄̇ += Jᵀ ȳ̇ + J̇ᵀ ȳ` for input `side`. `scratch` holds at least
    /// `2 · rows` entries.
    pub(crate) fn vjp_tangent(
        self,
        side: Side,
        r: &RuleArgs<'_>,
        dxbar: &mut [f64],
        scratch: &mut [f64],
    ) {
        let d = r.dims;
        let (a, b, ybar, dybar, da, db) = (r.a, r.b, r.ybar, r.dybar, r.da, r.db);
        if self.is_linear() {
            return self.linear_adjoint(side, d, r.ints, dybar, dxbar);
        }
        match self {
            Op::Mul => match side {
                Side::A => arith::mul::vjp_tangent(b, db, ybar, dybar, dxbar),
                Side::B => arith::mul::vjp_tangent(a, da, ybar, dybar, dxbar),
            },
            Op::Div => match side {
                Side::A => arith::div::vjp_tangent_a(b, db, ybar, dybar, dxbar),
                Side::B => arith::div::vjp_tangent_b(a, b, da, db, ybar, dybar, dxbar),
            },
            Op::ScalarMul => match side {
                Side::A => dxbar[0] += arith::scalar_mul::vjp_tangent_s(b, db, ybar, dybar),
                Side::B => {
                    arith::scalar_mul::vjp_tangent_a(a[0], da.map(|d| d[0]), ybar, dybar, dxbar)
                }
            },
            Op::MatMul { ta, tb } => {
                let o = operands(r, ta, tb);
                let (yb, dyb) = (view(ybar, d.rows, d.cols), view(dybar, d.rows, d.cols));
                match side {
                    Side::A => {
                        matmul::vjp_tangent_a(o, yb, dyb, view_mut(dxbar, d.a.0, d.a.1), r.par)
                    }
                    Side::B => {
                        matmul::vjp_tangent_b(o, yb, dyb, view_mut(dxbar, d.b.0, d.b.1), r.par)
                    }
                }
            }
            Op::Dot => {
                let (other, dother) = if side == Side::A { (b, db) } else { (a, da) };
                arith::axpy(dxbar, dybar[0], other);
                if let Some(dd) = dother {
                    arith::axpy(dxbar, ybar[0], dd);
                }
            }
            Op::SumSq => {
                arith::axpy(dxbar, 2.0 * dybar[0], a);
                if let Some(da) = da {
                    arith::axpy(dxbar, 2.0 * ybar[0], da);
                }
            }
            Op::Unary(u) => elementwise::vjp_tangent(Fun::U(u), a, r.y, da, ybar, dybar, dxbar),
            Op::Powi(k) => elementwise::vjp_tangent(Fun::Powi(k), a, r.y, da, ybar, dybar, dxbar),
            Op::LogSumExpRows => softmax::lse_vjp_tangent(
                r.aux,
                da,
                ybar,
                dybar,
                None,
                d.rows,
                dxbar,
                &mut scratch[..d.rows],
            ),
            Op::XentRows { .. } => softmax::lse_vjp_tangent(
                r.aux,
                da,
                ybar,
                dybar,
                Some(r.ints),
                d.rows,
                dxbar,
                &mut scratch[..d.rows],
            ),
            Op::SoftmaxRows => {
                let (s1, s2) = scratch.split_at_mut(d.rows);
                softmax::softmax_vjp_tangent(
                    r.y,
                    da.map(|_| r.dy),
                    ybar,
                    dybar,
                    d.rows,
                    dxbar,
                    s1,
                    &mut s2[..d.rows],
                )
            }
            _ => unreachable!("no VJP tangent rule for {self:?}"),
        }
    }
}

#[inline]
fn operands<'a>(r: &RuleArgs<'a>, ta: bool, tb: bool) -> matmul::Operands<'a> {
    let d = r.dims;
    matmul::Operands {
        a: view(r.a, d.a.0, d.a.1),
        ta,
        da: r.da.map(|x| view(x, d.a.0, d.a.1)),
        b: view(r.b, d.b.0, d.b.1),
        tb,
        db: r.db.map(|x| view(x, d.b.0, d.b.1)),
    }
}

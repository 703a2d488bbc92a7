//! The closed set of tape operations and their differentiation rules.
//!
//! Every operation keeps four rules together in its module:
//!
//! - **value**: the primal result, computed eagerly when the operation is recorded;
//! - **JVP** (tangent): `ẏ = J·ẋ`, used by the forward tangent sweep;
//! - **VJP** (adjoint): `x̄ += Jᵀ·ȳ`, used by the reverse sweep;
//! - **VJP tangent**: the directional derivative of the VJP along the input tangent,
//!   `x̄̇ += Jᵀ·ȳ̇ + (J̇)ᵀ·ȳ`, which turns the reverse sweep into a forward-over-reverse sweep that
//!   returns a Hessian-vector product alongside the gradient.
//!
//! The tape stores every tensor column-major and contiguous (in its arena, or a shared constant
//! with unit strides), so rules work on slices, and on `MatRef` views of them for products.

pub(crate) mod arith;
pub(crate) mod elementwise;
pub(crate) mod matmul;
pub(crate) mod reduce;
pub(crate) mod shape;
pub(crate) mod softmax;

pub(crate) use elementwise::Unary;

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
    /// Per-row softmax cross-entropy; `labels` is the offset of the labels in the tape.
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

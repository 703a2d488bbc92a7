//! The tape: an arena of recorded tensor operations, a forward sweep for values and tangents,
//! and a reverse sweep that carries adjoints and their tangents.
//!
//! Every tensor lives column-major in one flat arena, addressed by offset; tangents, adjoints and
//! adjoint tangents live in parallel arenas with the same offsets. Nodes are kept in topological
//! order, so each sweep is one loop over the node list. [`Tape::clear`] keeps every buffer's
//! capacity, so re-recording the same function allocates nothing.
//!
//! A tape evaluates in one of two modes:
//!
//! - **eager** ([`Tape::new`]): each operation computes its value when it is recorded
//!   (define-by-run), so [`Tape::value`] works at any time;
//! - **deferred** ([`Tape::defer`], what [`Evaluator`](crate::Evaluator) uses): operations are
//!   recorded without computing anything, and the first sweep that needs values computes the
//!   whole function at once. That is what lets the tape stream a loss that sums over the rows of a
//!   large data matrix block by block (the `stream` module): one pass over the data per oracle,
//!   with blocks spread over the threads of the current rayon pool.
//!
//! Code map: `build` records operations; `shared` keeps data matrices shared by reference;
//! `forward` computes values and tangents over whole tensors; `reverse` runs the reverse sweeps;
//! `stream` plans and runs the block-streamed evaluation; `need` works out which adjoints a
//! request needs.

mod build;
mod forward;
mod need;
mod reverse;
mod shared;
mod stream;

use crate::ops::{Dims, Op};
use bilevel_linalg::{AlignedVec, LANES, MatRef, Par};
use std::sync::atomic::{AtomicU32, Ordering};

pub(crate) use need::Target;
pub use shared::SPARSE_MAX_DENSITY;

static NEXT_GENERATION: AtomicU32 = AtomicU32::new(1);

fn next_generation() -> u32 {
    NEXT_GENERATION.fetch_add(1, Ordering::Relaxed)
}

/// A handle to a tensor recorded on a [`Tape`]: small, `Copy`, valid only for the recording
/// (between two [`Tape::clear`] calls) of the tape that made it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Var {
    id: u32,
    generation: u32,
}

/// Offset of a node whose storage is not laid out yet (deferred mode).
const UNSET: usize = usize::MAX;

/// One recorded operation.
#[derive(Clone, Copy, Debug)]
struct Node {
    op: Op,
    a: u32,
    b: u32,
    rows: usize,
    cols: usize,
    /// Offset in the arenas ([`UNSET`] until laid out).
    off: usize,
    /// Offset of the auxiliary data.
    aux: usize,
    /// Whether any differentiable input reaches this node (else it needs no tangent or adjoint).
    grad: bool,
    /// Whether an input with a tangent reaches this node (else its tangent is zero and never
    /// stored).
    live: bool,
}

impl Node {
    #[inline]
    fn len(&self) -> usize {
        self.rows * self.cols
    }
    #[inline]
    fn is_leaf(&self) -> bool {
        self.op.is_leaf()
    }
}

/// Which adjoint arenas a reverse sweep fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sweep {
    /// No reverse sweep: values (and tangents) only.
    None,
    /// Adjoints only (a gradient or VJP).
    Adjoint,
    /// Adjoints and adjoint tangents (gradient and Hessian-vector product together).
    Both,
    /// Adjoint tangents only, reusing the adjoints of an earlier sweep from the same output.
    TangentOnly,
}

/// A Wengert list of tensor operations on dense `f64` matrices.
///
/// Functions are written as plain Rust calling the tape's operation methods on [`Var`]
/// handles. The higher-level entry points in [`crate::api`] ([`crate::value_and_grad`],
/// [`crate::hvp`], [`crate::Evaluator`]) drive the tape for you; use it directly to record once
/// and sweep several times.
///
/// # Example
/// ```
/// use bilevel_ad::Tape;
/// use bilevel_linalg::Mat;
/// let mut t = Tape::new();
/// let x = t.input(Mat::from_fn(3, 1, |i, _| i as f64 + 1.0).as_ref()); // (1, 2, 3)
/// let y = t.sum_sq(x); // ‖x‖² = 14
/// t.backward(y);
/// assert_eq!(t.scalar(y), 14.0);
/// assert_eq!(t.adjoint(x)[(2, 0)], 6.0); // ∂/∂x₃ = 2x₃
/// ```
#[derive(Debug)]
pub struct Tape {
    generation: u32,
    par: Par,
    nodes: Vec<Node>,
    vals: AlignedVec,
    tans: AlignedVec,
    adj: AlignedVec,
    adjt: AlignedVec,
    aux: AlignedVec,
    /// Integer data of operations: class labels of cross-entropies, row indices of gathers.
    ints: Vec<u32>,
    shared: shared::SharedStore,
    scratch: Vec<f64>,
    /// Packing buffer for paired products (`A·[B Ḃ]`, `Aᵀ·[Ȳ Ȳ̇]`).
    pair: AlignedVec,
    growths: u64,
    /// Deferred mode: operations are recorded without computing their values.
    deferred: bool,
    /// Nodes `0..computed` have their values (and, with eager tangents, their tangents).
    computed: usize,
    /// Tangents are computed with the values (see [`Tape::begin_tangents`]).
    eager_tangents: bool,
    tangents_prepared: bool,
    tangents_valid: bool,
    adjoints_of: Option<u32>,
    /// Whether the last evaluation streamed (intermediates indexed by samples are not kept).
    streamed: bool,
    /// Whether the last evaluation left values it did not need uncomputed (see
    /// [`Tape::run`]): values and tangents are then not readable.
    values_partial: bool,
    need: need::Needs,
    stream: stream::Streamer,
    /// Whether streaming is allowed (see [`Tape::set_streaming`]).
    streaming: bool,
    /// Whether a streamed data matrix may be read through its sparse form (see
    /// [`Tape::set_sparse_data`]).
    sparse_data: bool,
}

impl Default for Tape {
    fn default() -> Self {
        Self::new()
    }
}

/// Grow `v` to `len` entries, counting reallocations.
#[inline]
fn grow(v: &mut AlignedVec, len: usize, growths: &mut u64) {
    if len > v.capacity() {
        *growths += 1;
    }
    if len > v.len() {
        v.resize(len, 0.0);
    }
}

/// Grow a plain vector to `len` entries, counting reallocations.
#[inline]
fn grow_vec(v: &mut Vec<f64>, len: usize, growths: &mut u64) {
    if len > v.capacity() {
        *growths += 1;
    }
    if len > v.len() {
        v.resize(len, 0.0);
    }
}

/// The offset at which a tensor of `len` entries is placed after `end`: tensors of a vector's
/// length or more start on a cache line, so that the product kernels load them aligned.
#[inline]
fn place(end: usize, len: usize) -> usize {
    if len >= LANES {
        end.next_multiple_of(LANES)
    } else {
        end
    }
}

impl Tape {
    /// An empty tape in eager mode whose products run sequentially.
    pub fn new() -> Self {
        Self::with_par(Par::Seq)
    }

    /// An empty eager tape whose streamed evaluations (see [`Tape::defer`]) spread their blocks
    /// over the current rayon pool, unless `par` is [`Par::Seq`]. Products over whole tensors
    /// always run on the calling thread, so that results never depend on the thread count.
    pub fn with_par(par: Par) -> Self {
        Tape {
            generation: next_generation(),
            par,
            nodes: Vec::new(),
            vals: AlignedVec::new(),
            tans: AlignedVec::new(),
            adj: AlignedVec::new(),
            adjt: AlignedVec::new(),
            aux: AlignedVec::new(),
            ints: Vec::new(),
            shared: shared::SharedStore::default(),
            scratch: Vec::new(),
            pair: AlignedVec::new(),
            growths: 0,
            deferred: false,
            computed: 0,
            eager_tangents: false,
            tangents_prepared: false,
            tangents_valid: false,
            adjoints_of: None,
            streamed: false,
            values_partial: false,
            need: need::Needs::default(),
            stream: stream::Streamer::default(),
            streaming: true,
            sparse_data: true,
        }
    }

    /// The parallelism of streamed evaluations.
    pub fn par(&self) -> Par {
        self.par
    }

    /// Set the parallelism of streamed evaluations.
    pub fn set_par(&mut self, par: Par) {
        self.par = par;
    }

    /// Allow or forbid streamed evaluation of deferred recordings (allowed by default). Streaming
    /// changes only the order of floating-point sums, never the derivatives; turning it off
    /// evaluates whole tensors, which keeps every intermediate value readable.
    pub fn set_streaming(&mut self, on: bool) {
        self.streaming = on;
    }

    /// Allow or forbid reading a streamed data matrix through its sparse form (allowed by
    /// default). A data matrix with at most [`SPARSE_MAX_DENSITY`] of its entries nonzero (image
    /// data, typically) is then kept by its nonzero entries, built once per matrix, and its products
    /// skip the zeros: the same derivatives to rounding, not bit for bit the dense ones (the
    /// order of the sums differs), and the same bits at any thread count either way.
    ///
    /// # Example
    /// ```
    /// let mut t = bilevel_ad::Tape::new();
    /// t.set_sparse_data(false); // the dense products, for comparison
    /// assert!(!t.streamed_sparse());
    /// ```
    pub fn set_sparse_data(&mut self, on: bool) {
        self.sparse_data = on;
    }

    /// Whether the last evaluation streamed a data matrix through its sparse form (see
    /// [`Tape::set_sparse_data`]).
    pub fn streamed_sparse(&self) -> bool {
        self.streamed && self.stream.sparse_products() > 0
    }

    /// Forget every recorded operation, keeping all buffers' capacity. Every [`Var`] of the
    /// previous recording becomes invalid (using one panics). The tape returns to eager mode.
    pub fn clear(&mut self) {
        self.generation = next_generation();
        self.nodes.clear();
        self.vals.clear();
        self.aux.clear();
        self.ints.clear();
        self.shared.clear();
        self.deferred = false;
        self.computed = 0;
        self.eager_tangents = false;
        self.tangents_prepared = false;
        self.tangents_valid = false;
        self.adjoints_of = None;
        self.streamed = false;
        self.values_partial = false;
    }

    /// Switch this (empty) recording to deferred mode: from now on operations are recorded
    /// without computing anything, and the first sweep that needs values ([`Tape::backward`],
    /// [`Tape::forward_tangent`], [`Tape::evaluate`], ...) computes the whole function. A loss
    /// that sums over the rows of a large shared data matrix is then evaluated block by block
    /// in one pass over the data, and the values of intermediates indexed by its rows are not
    /// kept (reading one panics with a message).
    ///
    /// # Panics
    /// If anything has been recorded already.
    pub fn defer(&mut self) {
        assert!(
            self.nodes.is_empty(),
            "defer: call it on an empty recording (after clear)"
        );
        self.deferred = true;
    }

    /// Whether the tape records in deferred mode (see [`Tape::defer`]).
    pub fn is_deferred(&self) -> bool {
        self.deferred
    }

    /// Whether the last evaluation streamed a data-sum loss block by block (see
    /// [`Tape::defer`]).
    pub fn streamed(&self) -> bool {
        self.streamed
    }

    /// Switch this recording to eager tangents: every operation computes its tangent (JVP)
    /// together with its value, from input tangents given by [`Tape::set_tangent`] right after
    /// the inputs are created. A later [`Tape::forward_tangent`] is then free, and products with
    /// a constant left operand compute value and tangent in one pass over the constant
    /// (`A·[B Ḃ]`), which is what makes a Hessian-vector product cost close to a gradient on
    /// data-sum losses.
    ///
    /// # Panics
    /// If anything but inputs and constants has been recorded already.
    pub fn begin_tangents(&mut self) {
        assert!(
            self.nodes.iter().all(Node::is_leaf),
            "begin_tangents: call it before recording any operation"
        );
        self.prepare_tangents();
        self.eager_tangents = true;
        self.tangents_valid = true;
    }

    /// Number of recorded nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// How many times any of the tape's buffers had to grow since it was created. Re-recording
    /// the same function after [`Tape::clear`] leaves this unchanged.
    pub fn growths(&self) -> u64 {
        self.growths + self.stream.growths() + self.shared.growths()
    }

    /// How many times [`Tape::shared`] has copied a matrix whose columns are padded (each such
    /// matrix is copied once and the copy kept for later recordings).
    pub fn shared_copies(&self) -> u64 {
        self.shared.copies()
    }

    /// Bytes currently reserved by the tape's buffers (the block buffers of streamed
    /// evaluations included).
    pub fn capacity_bytes(&self) -> usize {
        8 * (self.vals.capacity()
            + self.tans.capacity()
            + self.adj.capacity()
            + self.adjt.capacity()
            + self.aux.capacity()
            + self.scratch.capacity()
            + self.pair.capacity())
            + 4 * self.ints.capacity()
            + std::mem::size_of::<Node>() * self.nodes.capacity()
            + self.stream.capacity_bytes()
    }

    /// Scratch entries the whole-tensor rules of the recording need (see [`Op::scratch_len`]).
    fn scratch_need(&self) -> usize {
        let need = |n: &Node| n.op.scratch_len(n.rows);
        self.nodes.iter().map(need).max().unwrap_or(0)
    }

    #[track_caller]
    fn node(&self, v: Var) -> &Node {
        assert!(
            v.generation == self.generation,
            "variable from another tape or from a recording cleared since (tape generation {}, variable generation {})",
            self.generation,
            v.generation
        );
        &self.nodes[v.id as usize]
    }

    #[inline]
    fn dims(&self, n: &Node) -> Dims {
        let (na, nb) = (&self.nodes[n.a as usize], &self.nodes[n.b as usize]);
        Dims {
            rows: n.rows,
            cols: n.cols,
            a: (na.rows, na.cols),
            b: (nb.rows, nb.cols),
        }
    }

    /// The shape `(rows, cols)` of a variable.
    #[track_caller]
    pub fn shape(&self, v: Var) -> (usize, usize) {
        let n = self.node(v);
        (n.rows, n.cols)
    }

    /// Panics unless the value of `v` is stored: computed, and kept by the last evaluation.
    #[track_caller]
    fn check_value(&self, v: Var, what: &str) {
        let n = self.node(v);
        assert!(
            (v.id as usize) < self.computed,
            "{what}: the tape records in deferred mode and has not been evaluated yet; run a sweep \
             (backward, forward_tangent, evaluate) before reading values"
        );
        assert!(
            n.off != UNSET || n.is_leaf(),
            "{what}: this intermediate is indexed by the rows of a data matrix and was computed \
             block by block (a streamed evaluation keeps only parameter-sized values); turn \
             streaming off (Tape::set_streaming, Evaluator::set_streaming) to keep it"
        );
    }

    /// Panics if the last evaluation computed only the values its products needed.
    #[track_caller]
    fn check_values_complete(&self, what: &str) {
        assert!(
            !self.values_partial,
            "{what}: the last evaluation computed derivative products alone and skipped the \
             values they do not read; evaluate with the value requested to read it"
        );
    }

    /// The value of a variable.
    ///
    /// # Panics
    /// In deferred mode, before the tape has been evaluated, or for an intermediate that a
    /// streamed evaluation did not keep.
    #[track_caller]
    pub fn value(&self, v: Var) -> MatRef<'_, f64> {
        self.check_value(v, "value");
        self.check_values_complete("value");
        let n = *self.node(v);
        forward::view(self.value_slice(v.id), n.rows, n.cols)
    }

    /// The value of a 1×1 variable.
    ///
    /// # Panics
    /// If `v` is not 1×1, or its value is not available (see [`Tape::value`]).
    #[track_caller]
    pub fn scalar(&self, v: Var) -> f64 {
        let n = *self.node(v);
        assert!(
            n.len() == 1,
            "expected a scalar (1x1) variable, found {}x{}",
            n.rows,
            n.cols
        );
        self.check_value(v, "scalar");
        self.check_values_complete("scalar");
        self.value_slice(v.id)[0]
    }

    /// The stored value of node `id` (a shared constant's own storage, or the arena).
    #[inline]
    fn value_slice(&self, id: u32) -> &[f64] {
        value_of(&self.nodes, &self.vals, &self.shared, id)
    }

    /// The tangent of a variable after [`Tape::forward_tangent`] (zero for a variable no input
    /// tangent reaches).
    ///
    /// # Panics
    /// If no tangent sweep has run since the last recording.
    #[track_caller]
    pub fn tangent(&self, v: Var) -> MatRef<'_, f64> {
        let n = *self.node(v);
        assert!(self.tangents_valid, "tangent: run forward_tangent first");
        assert!(
            !matches!(n.op, Op::Shared(_)),
            "tangent: a shared constant has no tangent storage (its tangent is zero)"
        );
        self.check_value(v, "tangent");
        self.check_values_complete("tangent");
        forward::view(&self.tans[n.off..n.off + n.len()], n.rows, n.cols)
    }

    /// The adjoint `∂out/∂v` after a reverse sweep.
    ///
    /// # Panics
    /// If no reverse sweep has run, or `v` depends on no input.
    #[track_caller]
    pub fn adjoint(&self, v: Var) -> MatRef<'_, f64> {
        let n = *self.node(v);
        assert!(self.adjoints_of.is_some(), "adjoint: run backward first");
        assert!(
            n.grad,
            "adjoint: the variable does not depend on any input (its adjoint is not tracked)"
        );
        self.check_value(v, "adjoint");
        forward::view(&self.adj[n.off..n.off + n.len()], n.rows, n.cols)
    }

    /// The adjoint tangent (the Hessian-vector product for an input) after
    /// [`Tape::backward_with_tangent`] or [`Tape::backward_tangent_only`].
    ///
    /// # Panics
    /// If no such sweep has run, or `v` depends on no input.
    #[track_caller]
    pub fn adjoint_tangent(&self, v: Var) -> MatRef<'_, f64> {
        let n = *self.node(v);
        assert!(
            self.adjoints_of.is_some(),
            "adjoint_tangent: run a tangent reverse sweep first"
        );
        assert!(
            n.grad,
            "adjoint_tangent: the variable does not depend on any input"
        );
        self.check_value(v, "adjoint_tangent");
        forward::view(&self.adjt[n.off..n.off + n.len()], n.rows, n.cols)
    }
}

/// The stored value of node `id`: a shared constant's own storage, or its place in `vals`.
#[inline]
fn value_of<'a>(
    nodes: &[Node],
    vals: &'a [f64],
    shared: &'a shared::SharedStore,
    id: u32,
) -> &'a [f64] {
    let n = &nodes[id as usize];
    match n.op {
        Op::Shared(k) => shared.contiguous(k),
        _ => &vals[n.off..n.off + n.len()],
    }
}

//! The tape: an arena of recorded tensor operations with eager values, a forward tangent sweep
//! and a reverse sweep that carries adjoints and their tangents.
//!
//! Values are computed when an operation is recorded (define-by-run). Every tensor lives
//! column-major in one flat arena (`Vec<f64>`), addressed by offset; tangents, adjoints and
//! adjoint tangents live in parallel arenas with the same offsets. Arena order is topological
//! order, so each sweep is one loop over the node list. [`Tape::clear`] keeps every buffer's
//! capacity, so re-recording the same function allocates nothing.

use crate::ops::{Op, Unary, arith, elementwise, elementwise::Fun, matmul, reduce, shape, softmax};
use bilevel_linalg::{Mat, MatMut, MatRef, Par};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

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

/// One recorded operation.
#[derive(Clone, Copy, Debug)]
struct Node {
    op: Op,
    a: u32,
    b: u32,
    rows: usize,
    cols: usize,
    off: usize,
    aux: usize,
    /// Whether any differentiable input reaches this node (else it needs no tangent or adjoint).
    grad: bool,
}

impl Node {
    #[inline]
    fn len(&self) -> usize {
        self.rows * self.cols
    }
    #[inline]
    fn is_leaf(&self) -> bool {
        matches!(self.op, Op::Input | Op::Const | Op::Shared(_))
    }
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
    vals: Vec<f64>,
    tans: Vec<f64>,
    adj: Vec<f64>,
    adjt: Vec<f64>,
    aux: Vec<f64>,
    /// Integer data of operations: class labels of cross-entropies, row indices of gathers.
    labels: Vec<u32>,
    shared: Vec<SharedData>,
    /// Contiguous copies of the padded matrices recorded with [`Tape::shared`], kept across
    /// [`Tape::clear`] (at most [`PACKED_KEEP`], the oldest dropped first) so that re-recording
    /// a function copies such a matrix once, not at every recording.
    packed: Vec<Packed>,
    /// How many contiguous copies [`Tape::shared`] has made.
    shared_copies: u64,
    scratch: Vec<f64>,
    /// Packing buffer for paired products (`A·[B Ḃ]`, `Aᵀ·[Ȳ Ȳ̇]`).
    pair: Vec<f64>,
    growths: u64,
    /// Tangents are computed as each operation is recorded (see [`Tape::begin_tangents`]).
    eager: bool,
    tangents_prepared: bool,
    tangents_valid: bool,
    adjoints_of: Option<u32>,
}

impl Default for Tape {
    fn default() -> Self {
        Self::new()
    }
}

/// Grow `v` to `len` entries, counting reallocations.
#[inline]
fn grow(v: &mut Vec<f64>, len: usize, growths: &mut u64) {
    if len > v.capacity() {
        *growths += 1;
    }
    if len > v.len() {
        v.resize(len, 0.0);
    }
}

/// Most padded matrices whose contiguous copies a tape keeps (see [`Tape::shared`]).
const PACKED_KEEP: usize = 8;

/// A padded matrix and its contiguous copy.
type Packed = (Arc<Mat<f64>>, Arc<[f64]>);

/// Where the value of a shared constant lives.
#[derive(Clone, Debug)]
enum SharedData {
    /// The caller's matrix, stored contiguously.
    Mat(Arc<Mat<f64>>),
    /// A contiguous copy of a matrix whose columns are padded.
    Packed(Arc<[f64]>),
}

#[inline]
fn value<'a>(nodes: &[Node], vals: &'a [f64], shared: &'a [SharedData], id: u32) -> &'a [f64] {
    let n = &nodes[id as usize];
    match n.op {
        Op::Shared(k) => match &shared[k as usize] {
            SharedData::Mat(m) => {
                // SAFETY: `Tape::shared` only registers matrices with unit row stride and a
                // column stride equal to the number of rows, so their `nrows · ncols` entries
                // are one contiguous allocation owned by the `Arc`, which the tape keeps alive.
                unsafe { std::slice::from_raw_parts(m.as_ptr(), n.len()) }
            }
            SharedData::Packed(p) => &p[..n.len()],
        },
        _ => &vals[n.off..n.off + n.len()],
    }
}

#[inline]
fn view(s: &[f64], rows: usize, cols: usize) -> MatRef<'_, f64> {
    MatRef::from_column_major_slice(s, rows, cols)
}

#[inline]
fn view_mut(s: &mut [f64], rows: usize, cols: usize) -> MatMut<'_, f64> {
    MatMut::from_column_major_slice_mut(s, rows, cols)
}

impl Tape {
    /// An empty tape whose products run sequentially.
    pub fn new() -> Self {
        Self::with_par(Par::Seq)
    }

    /// An empty tape whose matrix products use `par` (small products still run sequentially).
    pub fn with_par(par: Par) -> Self {
        Tape {
            generation: next_generation(),
            par,
            nodes: Vec::new(),
            vals: Vec::new(),
            tans: Vec::new(),
            adj: Vec::new(),
            adjt: Vec::new(),
            aux: Vec::new(),
            labels: Vec::new(),
            shared: Vec::new(),
            packed: Vec::new(),
            shared_copies: 0,
            scratch: Vec::new(),
            pair: Vec::new(),
            growths: 0,
            eager: false,
            tangents_prepared: false,
            tangents_valid: false,
            adjoints_of: None,
        }
    }

    /// The parallelism of the tape's matrix products.
    pub fn par(&self) -> Par {
        self.par
    }

    /// Set the parallelism of the tape's matrix products.
    pub fn set_par(&mut self, par: Par) {
        self.par = par;
    }

    /// Forget every recorded operation, keeping all buffers' capacity. Every [`Var`] of the
    /// previous recording becomes invalid (using one panics).
    pub fn clear(&mut self) {
        self.generation = next_generation();
        self.nodes.clear();
        self.vals.clear();
        self.aux.clear();
        self.labels.clear();
        self.shared.clear();
        self.tangents_prepared = false;
        self.tangents_valid = false;
        self.adjoints_of = None;
        self.eager = false;
    }

    /// Switch this recording to eager tangents: from now on every operation computes its
    /// tangent (JVP) as it is recorded, from input tangents given by [`Tape::set_tangent`]
    /// right after the inputs are created. A later [`Tape::forward_tangent`] is then free, and
    /// products with a constant left operand compute value and tangent in one pass over the
    /// constant (`A·[B Ḃ]`), which is what makes a Hessian-vector product cost close to a
    /// gradient on data-sum losses.
    ///
    /// # Panics
    /// If anything but inputs and constants has been recorded already.
    pub fn begin_tangents(&mut self) {
        assert!(
            self.nodes.iter().all(Node::is_leaf),
            "begin_tangents: call it before recording any operation"
        );
        self.prepare_tangents();
        self.eager = true;
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
        self.growths
    }

    /// How many times [`Tape::shared`] has copied a matrix whose columns are padded (each such
    /// matrix is copied once and the copy kept for later recordings).
    pub fn shared_copies(&self) -> u64 {
        self.shared_copies
    }

    /// Bytes currently reserved by the tape's buffers.
    pub fn capacity_bytes(&self) -> usize {
        8 * (self.vals.capacity()
            + self.tans.capacity()
            + self.adj.capacity()
            + self.adjt.capacity()
            + self.aux.capacity()
            + self.scratch.capacity()
            + self.pair.capacity())
            + 4 * self.labels.capacity()
            + std::mem::size_of::<Node>() * self.nodes.capacity()
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

    /// The shape `(rows, cols)` of a variable.
    #[track_caller]
    pub fn shape(&self, v: Var) -> (usize, usize) {
        let n = self.node(v);
        (n.rows, n.cols)
    }

    /// The value of a variable.
    #[track_caller]
    pub fn value(&self, v: Var) -> MatRef<'_, f64> {
        let n = *self.node(v);
        view(
            value(&self.nodes, &self.vals, &self.shared, v.id),
            n.rows,
            n.cols,
        )
    }

    /// The value of a 1×1 variable.
    ///
    /// # Panics
    /// If `v` is not 1×1.
    #[track_caller]
    pub fn scalar(&self, v: Var) -> f64 {
        let n = *self.node(v);
        assert!(
            n.len() == 1,
            "expected a scalar (1x1) variable, found {}x{}",
            n.rows,
            n.cols
        );
        value(&self.nodes, &self.vals, &self.shared, v.id)[0]
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        op: Op,
        a: u32,
        b: u32,
        rows: usize,
        cols: usize,
        aux_len: usize,
        grad: bool,
    ) -> Var {
        assert!(
            self.nodes.len() < u32::MAX as usize,
            "tape is full ({} nodes)",
            self.nodes.len()
        );
        let off = self.vals.len();
        let len = if matches!(op, Op::Shared(_)) {
            0
        } else {
            rows * cols
        };
        grow(&mut self.vals, off + len, &mut self.growths);
        let aux = self.aux.len();
        grow(&mut self.aux, aux + aux_len, &mut self.growths);
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
            off,
            aux,
            grad,
        });
        self.adjoints_of = None;
        if self.eager {
            grow(&mut self.tans, off + len, &mut self.growths);
            if !grad || op == Op::Input {
                self.tans[off..off + len].fill(0.0);
            }
        } else {
            self.tangents_prepared = false;
            self.tangents_valid = false;
        }
        Var {
            id,
            generation: self.generation,
        }
    }

    fn leaf(&mut self, op: Op, m: MatRef<'_, f64>, grad: bool) -> Var {
        let (r, c) = (m.nrows(), m.ncols());
        let v = self.push(op, 0, 0, r, c, 0, grad);
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
    /// the same function again copies nothing ([`Tape::shared_copies`] counts the copies).
    pub fn shared(&mut self, m: &Arc<Mat<f64>>) -> Var {
        let contiguous = m.ncols() <= 1 || m.col_stride() == m.nrows() as isize;
        let data = if (m.row_stride() == 1 || m.nrows() <= 1) && contiguous {
            SharedData::Mat(Arc::clone(m))
        } else {
            // The tape holds a clone of the `Arc`, so the matrix cannot change while its copy is
            // kept, and the pointer cannot be reused by another matrix.
            let found = self.packed.iter().find(|(a, _)| Arc::ptr_eq(a, m));
            let p = match found {
                Some((_, p)) => Arc::clone(p),
                None => {
                    let mut v = Vec::with_capacity(m.nrows() * m.ncols());
                    for j in 0..m.ncols() {
                        let col = m.col(j);
                        v.extend((0..m.nrows()).map(|i| col[i]));
                    }
                    let p: Arc<[f64]> = v.into();
                    if self.packed.len() == PACKED_KEEP {
                        self.packed.remove(0);
                    }
                    self.packed.push((Arc::clone(m), Arc::clone(&p)));
                    self.shared_copies += 1;
                    p
                }
            };
            SharedData::Packed(p)
        };
        if self.shared.len() == self.shared.capacity() {
            self.growths += 1;
        }
        let k = self.shared.len() as u32;
        self.shared.push(data);
        self.push(Op::Shared(k), 0, 0, m.nrows(), m.ncols(), 0, false)
    }

    /// Record the rows `rows` of a shared data matrix, in that order, as a constant: only those
    /// rows are copied, into the tape's arena (whose capacity is kept across recordings), read
    /// through the matrix's strides. This is how a loss is recorded on a minibatch of samples:
    /// the same value as [`Tape::gather_rows`] on [`Tape::shared`]`(m)`, without ever copying
    /// the whole matrix (which `shared` does once for a matrix whose columns are padded, as
    /// faer pads them when the row count is not a multiple of the SIMD width).
    ///
    /// # Panics
    /// If `rows` is empty or an index is not below `m.nrows()`.
    #[track_caller]
    pub fn shared_rows(&mut self, m: &Arc<Mat<f64>>, rows: &[usize]) -> Var {
        let (ar, ac) = (m.nrows(), m.ncols());
        check_rows("shared_rows", rows, ar, ac);
        let r = rows.len();
        let v = self.push(Op::Const, 0, 0, r, ac, 0, false);
        let off = self.nodes[v.id as usize].off;
        let out = &mut self.vals[off..off + r * ac];
        for (j, oc) in out.chunks_exact_mut(r).enumerate() {
            let col = m.col(j);
            for (o, &i) in oc.iter_mut().zip(rows) {
                *o = col[i];
            }
        }
        v
    }

    // ----- recording helpers --------------------------------------------------------------

    /// Push a node computed from `a` (and `b`), then fill its value with `f`.
    fn record(
        &mut self,
        op: Op,
        a: Var,
        b: Option<Var>,
        (rows, cols): (usize, usize),
        aux_len: usize,
        f: impl FnOnce(&mut ForwardCtx<'_>),
    ) -> Var {
        let ga = self.node(a).grad;
        let gb = b.is_some_and(|b| self.node(b).grad);
        let v = self.push(
            op,
            a.id,
            b.map_or(a.id, |b| b.id),
            rows,
            cols,
            aux_len,
            ga || gb,
        );
        let n = self.nodes[v.id as usize];
        let Tape {
            nodes,
            vals,
            aux,
            shared,
            scratch,
            labels,
            par,
            ..
        } = self;
        let (pre, post) = vals.split_at_mut(n.off);
        let mut ctx = ForwardCtx {
            a: value(nodes, pre, shared, a.id),
            b: b.map(|b| value(nodes, pre, shared, b.id)).unwrap_or(&[]),
            out: &mut post[..n.len()],
            aux: &mut aux[n.aux..n.aux + aux_len],
            scratch: scratch.as_mut_slice(),
            labels: labels.as_slice(),
            par: *par,
        };
        f(&mut ctx);
        if self.eager && n.grad {
            self.ensure_scratch(2 * rows);
            self.tangent_node(v.id as usize);
        }
        v
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

    fn ensure_scratch(&mut self, len: usize) {
        grow(&mut self.scratch, len, &mut self.growths);
    }

    // ----- operations ---------------------------------------------------------------------

    /// `a + b` (same shapes).
    #[track_caller]
    pub fn add(&mut self, a: Var, b: Var) -> Var {
        let s = self.same_shape("add", a, b);
        self.record(Op::Add, a, Some(b), s, 0, |c| {
            arith::value::add(c.a, c.b, c.out)
        })
    }

    /// `a − b` (same shapes).
    #[track_caller]
    pub fn sub(&mut self, a: Var, b: Var) -> Var {
        let s = self.same_shape("sub", a, b);
        self.record(Op::Sub, a, Some(b), s, 0, |c| {
            arith::value::sub(c.a, c.b, c.out)
        })
    }

    /// `−a`.
    #[track_caller]
    pub fn neg(&mut self, a: Var) -> Var {
        let s = self.shape(a);
        self.record(Op::Neg, a, None, s, 0, |c| {
            arith::value::affine(c.a, -1.0, 0.0, c.out)
        })
    }

    /// Elementwise product `a ⊙ b` (same shapes).
    #[track_caller]
    pub fn mul(&mut self, a: Var, b: Var) -> Var {
        let s = self.same_shape("mul", a, b);
        self.record(Op::Mul, a, Some(b), s, 0, |c| {
            arith::value::mul(c.a, c.b, c.out)
        })
    }

    /// Elementwise quotient `a ⊘ b` (same shapes).
    #[track_caller]
    pub fn div(&mut self, a: Var, b: Var) -> Var {
        let s = self.same_shape("div", a, b);
        self.record(Op::Div, a, Some(b), s, 0, |c| {
            arith::value::div(c.a, c.b, c.out)
        })
    }

    /// `alpha · a` for a constant `alpha`.
    #[track_caller]
    pub fn scale(&mut self, a: Var, alpha: f64) -> Var {
        let s = self.shape(a);
        self.record(Op::Scale(alpha), a, None, s, 0, |c| {
            arith::value::affine(c.a, alpha, 0.0, c.out)
        })
    }

    /// `a + beta` (every entry) for a constant `beta`.
    #[track_caller]
    pub fn shift(&mut self, a: Var, beta: f64) -> Var {
        let s = self.shape(a);
        self.record(Op::Shift(beta), a, None, s, 0, |c| {
            arith::value::affine(c.a, 1.0, beta, c.out)
        })
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
        self.record(Op::ScalarMul, s, Some(a), sh, 0, |c| {
            arith::value::affine(c.b, c.a[0], 0.0, c.out)
        })
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
        if self.eager && !self.node(a).grad && self.node(b).grad {
            return self.matmul_paired(a, ta, b, tb, (m, k1, n));
        }
        self.record(Op::MatMul { ta, tb }, a, Some(b), (m, n), 0, |c| {
            matmul::forward(
                view(c.a, ar, ac),
                ta,
                view(c.b, br, bc),
                tb,
                view_mut(c.out, m, n),
                c.par,
            )
        })
    }

    /// Eager-tangent product with a constant left operand: value and tangent in one pass.
    fn matmul_paired(
        &mut self,
        a: Var,
        ta: bool,
        b: Var,
        tb: bool,
        (m, k, n): (usize, usize, usize),
    ) -> Var {
        grow(&mut self.pair, 2 * n * (k + m), &mut self.growths);
        let v = self.push(Op::MatMul { ta, tb }, a.id, b.id, m, n, 0, true);
        let (node, na, nb) = (self.nodes[v.id as usize], *self.node(a), *self.node(b));
        let Tape {
            nodes,
            vals,
            tans,
            shared,
            pair,
            par,
            ..
        } = self;
        let (vpre, vpost) = vals.split_at_mut(node.off);
        let (tpre, tpost) = tans.split_at_mut(node.off);
        let av = view(value(nodes, vpre, shared, a.id), na.rows, na.cols);
        let bv = view(value(nodes, vpre, shared, b.id), nb.rows, nb.cols);
        let db = view(&tpre[nb.off..nb.off + nb.len()], nb.rows, nb.cols);
        matmul::forward_paired(
            av,
            ta,
            bv,
            db,
            tb,
            &mut vpost[..node.len()],
            &mut tpost[..node.len()],
            pair,
            *par,
        );
        v
    }

    /// Inner product `⟨a, b⟩` of two tensors of the same shape (a 1×1 result).
    #[track_caller]
    pub fn dot(&mut self, a: Var, b: Var) -> Var {
        self.same_shape("dot", a, b);
        self.record(Op::Dot, a, Some(b), (1, 1), 0, |c| {
            c.out[0] = arith::dot(c.a, c.b)
        })
    }

    /// Sum of all entries (1×1).
    #[track_caller]
    pub fn sum(&mut self, a: Var) -> Var {
        self.record(Op::Sum, a, None, (1, 1), 0, |c| c.out[0] = reduce::sum(c.a))
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
        self.record(Op::SumRows, a, None, (r, 1), 0, |c| {
            reduce::sum_rows(c.a, r, c.out)
        })
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
        let (r, cols) = self.shape(a);
        self.record(Op::SumCols, a, None, (1, cols), 0, |c| {
            reduce::sum_cols(c.a, r, c.out)
        })
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
        self.record(Op::SumSq, a, None, (1, 1), 0, |c| {
            c.out[0] = reduce::sum_sq(c.a)
        })
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
        self.record(Op::AddRow, a, Some(b), (r, c), 0, |x| {
            reduce::add_row(x.a, x.b, r, x.out)
        })
    }

    fn unary(&mut self, a: Var, u: Unary) -> Var {
        let s = self.shape(a);
        self.record(Op::Unary(u), a, None, s, 0, |c| {
            elementwise::forward(Fun::U(u), c.a, c.out)
        })
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
        self.record(Op::Powi(n), a, None, s, 0, |c| {
            elementwise::forward(Fun::Powi(n), c.a, c.out)
        })
    }

    /// Row-wise log-sum-exp: an `r × c` tensor gives the `r × 1` column
    /// `log Σⱼ exp(a[i, j])`, computed stably.
    #[track_caller]
    pub fn logsumexp_rows(&mut self, a: Var) -> Var {
        let (r, c) = self.shape(a);
        self.ensure_scratch(2 * r);
        self.record(Op::LogSumExpRows, a, None, (r, 1), r * c, |x| {
            softmax::softmax_lse(x.a, r, x.aux, x.out, &mut x.scratch[..r])
        })
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
        let (r, c) = self.shape(a);
        self.ensure_scratch(2 * r);
        self.record(Op::SoftmaxRows, a, None, (r, c), r, |x| {
            softmax::softmax_lse(x.a, r, x.out, x.aux, &mut x.scratch[..r])
        })
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
        let lo = self.labels.len();
        if lo + r > self.labels.capacity() {
            self.growths += 1;
        }
        self.labels.extend_from_slice(labels);
        self.ensure_scratch(2 * r);
        self.record(
            Op::XentRows { labels: lo },
            logits,
            None,
            (r, 1),
            r * c,
            |x| {
                softmax::xent_forward(
                    x.a,
                    &x.labels[lo..lo + r],
                    r,
                    x.aux,
                    x.out,
                    &mut x.scratch[..r],
                )
            },
        )
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
        self.record(Op::Slice { r0, c0 }, a, None, (rows, cols), 0, |x| {
            shape::slice(x.a, ar, r0, c0, rows, x.out)
        })
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
        self.record(Op::ConcatRows, a, Some(b), (ar + br, ac), 0, |x| {
            shape::concat_rows(Some(x.a), ar, Some(x.b), br, x.out)
        })
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
        let (lo, r) = (self.labels.len(), rows.len());
        if lo + r > self.labels.capacity() {
            self.growths += 1;
        }
        self.labels.extend(rows.iter().map(|&i| i as u32));
        self.record(Op::GatherRows { rows: lo }, a, None, (r, ac), 0, |x| {
            shape::gather_rows(x.a, ar, &x.labels[lo..lo + r], x.out)
        })
    }

    /// The same entries in column-major order with a new shape (`rows · cols` must match).
    #[track_caller]
    pub fn reshape(&mut self, a: Var, rows: usize, cols: usize) -> Var {
        let (ar, ac) = self.shape(a);
        assert!(
            ar * ac == rows * cols,
            "reshape: cannot view {ar}x{ac} as {rows}x{cols}"
        );
        self.record(Op::Reshape, a, None, (rows, cols), 0, |x| {
            x.out.copy_from_slice(x.a)
        })
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

/// What an operation's value rule sees when it is recorded.
struct ForwardCtx<'a> {
    a: &'a [f64],
    b: &'a [f64],
    out: &'a mut [f64],
    aux: &'a mut [f64],
    scratch: &'a mut [f64],
    labels: &'a [u32],
    par: Par,
}

// ----- sweeps -------------------------------------------------------------------------------

impl Tape {
    fn prepare_tangents(&mut self) {
        if self.tangents_prepared {
            return;
        }
        let len = self.vals.len();
        grow(&mut self.tans, len, &mut self.growths);
        for n in &self.nodes {
            // Inputs start from zero; so do nodes no input reaches, whose tangent stays zero.
            if n.op == Op::Input || (!n.grad && !matches!(n.op, Op::Shared(_))) {
                self.tans[n.off..n.off + n.len()].fill(0.0);
            }
        }
        self.tangents_prepared = true;
        self.tangents_valid = self.eager;
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
            !self.eager || self.nodes.iter().all(Node::is_leaf),
            "set_tangent: with eager tangents, set input tangents before recording operations"
        );
        self.prepare_tangents();
        let out = &mut self.tans[n.off..n.off + n.len()];
        for j in 0..n.cols {
            for i in 0..n.rows {
                out[j * n.rows + i] = t[(i, j)];
            }
        }
        self.tangents_valid = self.eager;
    }

    /// Forward tangent sweep (JVP): propagate the input tangents set by
    /// [`Tape::set_tangent`] through every recorded operation.
    pub fn forward_tangent(&mut self) {
        if self.tangents_valid {
            return;
        }
        self.prepare_tangents();
        let max_rows = self.nodes.iter().map(|n| n.rows).max().unwrap_or(0);
        self.ensure_scratch(2 * max_rows);
        for i in 0..self.nodes.len() {
            self.tangent_node(i);
        }
        self.tangents_valid = true;
    }

    /// JVP rule of node `i`, reading its inputs' tangents (all earlier in the arena).
    fn tangent_node(&mut self, i: usize) {
        let Tape {
            nodes,
            vals,
            tans,
            aux,
            shared,
            scratch,
            labels,
            par,
            ..
        } = self;
        let n = nodes[i];
        if !n.grad || n.is_leaf() {
            return;
        }
        let (na, nb) = (nodes[n.a as usize], nodes[n.b as usize]);
        let (tpre, tpost) = tans.split_at_mut(n.off);
        let dy = &mut tpost[..n.len()];
        let a = value(nodes, vals, shared, n.a);
        let b = value(nodes, vals, shared, n.b);
        let y = &vals[n.off..n.off + n.len()];
        let da = na.grad.then(|| &tpre[na.off..na.off + na.len()]);
        let db = nb.grad.then(|| &tpre[nb.off..nb.off + nb.len()]);
        let aux = &aux[n.aux..];
        match n.op {
            Op::Input | Op::Const | Op::Shared(_) => unreachable!(),
            Op::Add | Op::Sub => {
                let sign = if n.op == Op::Sub { -1.0 } else { 1.0 };
                dy.fill(0.0);
                if let Some(da) = da {
                    arith::axpy(dy, 1.0, da);
                }
                if let Some(db) = db {
                    arith::axpy(dy, sign, db);
                }
            }
            Op::Neg => arith::value::affine(da.unwrap(), -1.0, 0.0, dy),
            Op::Scale(c) => arith::value::affine(da.unwrap(), c, 0.0, dy),
            Op::Shift(_) | Op::Reshape => dy.copy_from_slice(da.unwrap()),
            Op::Mul => arith::mul::tangent(a, b, da, db, dy),
            Op::Div => arith::div::tangent(a, b, da, db, dy),
            Op::ScalarMul => arith::scalar_mul::tangent(a[0], b, da.map(|d| d[0]), db, dy),
            Op::MatMul { ta, tb } => {
                let o = operands(&na, &nb, a, b, da, db, ta, tb);
                matmul::tangent(o, view_mut(dy, n.rows, n.cols), *par);
            }
            Op::Dot => {
                dy[0] = da.map_or(0.0, |d| arith::dot(d, b)) + db.map_or(0.0, |d| arith::dot(a, d));
            }
            Op::Sum => dy[0] = reduce::sum(da.unwrap()),
            Op::SumRows => reduce::sum_rows(da.unwrap(), na.rows, dy),
            Op::SumCols => reduce::sum_cols(da.unwrap(), na.rows, dy),
            Op::SumSq => dy[0] = 2.0 * arith::dot(a, da.unwrap()),
            Op::AddRow => {
                dy.fill(0.0);
                if let Some(da) = da {
                    arith::axpy(dy, 1.0, da);
                }
                if let Some(db) = db {
                    for (c, &d) in dy.chunks_exact_mut(n.rows).zip(db) {
                        c.iter_mut().for_each(|x| *x += d);
                    }
                }
            }
            Op::Unary(u) => elementwise::tangent(Fun::U(u), a, y, da.unwrap(), dy),
            Op::Powi(k) => elementwise::tangent(Fun::Powi(k), a, y, da.unwrap(), dy),
            Op::LogSumExpRows => {
                softmax::lse_tangent(&aux[..na.len()], da.unwrap(), None, n.rows, dy)
            }
            Op::XentRows { labels: lo } => softmax::lse_tangent(
                &aux[..na.len()],
                da.unwrap(),
                Some(&labels[lo..lo + n.rows]),
                n.rows,
                dy,
            ),
            Op::SoftmaxRows => {
                softmax::softmax_tangent(y, da.unwrap(), n.rows, dy, &mut scratch[..n.rows])
            }
            Op::Slice { r0, c0 } => shape::slice(da.unwrap(), na.rows, r0, c0, n.rows, dy),
            Op::ConcatRows => shape::concat_rows(da, na.rows, db, nb.rows, dy),
            Op::GatherRows { rows: lo } => {
                shape::gather_rows(da.unwrap(), na.rows, &labels[lo..lo + n.rows], dy)
            }
        }
    }

    /// The tangent of a variable after [`Tape::forward_tangent`].
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
        view(&self.tans[n.off..n.off + n.len()], n.rows, n.cols)
    }
}

#[allow(clippy::too_many_arguments)]
#[inline]
fn operands<'a>(
    na: &Node,
    nb: &Node,
    a: &'a [f64],
    b: &'a [f64],
    da: Option<&'a [f64]>,
    db: Option<&'a [f64]>,
    ta: bool,
    tb: bool,
) -> matmul::Operands<'a> {
    matmul::Operands {
        a: view(a, na.rows, na.cols),
        ta,
        da: da.map(|d| view(d, na.rows, na.cols)),
        b: view(b, nb.rows, nb.cols),
        tb,
        db: db.map(|d| view(d, nb.rows, nb.cols)),
    }
}

/// Which adjoint arenas a reverse sweep fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sweep {
    /// Adjoints only (a gradient or VJP).
    Adjoint,
    /// Adjoints and adjoint tangents (gradient and Hessian-vector product together).
    Both,
    /// Adjoint tangents only, reusing the adjoints of an earlier sweep from the same output.
    TangentOnly,
}

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
        self.reverse(out, None, Sweep::Adjoint);
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
        self.reverse(out, Some(seed), Sweep::Adjoint);
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
        self.reverse(out, None, Sweep::Both);
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
            self.adjoints_of == Some(out.id),
            "backward_tangent_only: run backward from this output first"
        );
        self.reverse(out, None, Sweep::TangentOnly);
    }

    /// The adjoint `∂out/∂v` after a reverse sweep.
    #[track_caller]
    pub fn adjoint(&self, v: Var) -> MatRef<'_, f64> {
        let n = *self.node(v);
        assert!(self.adjoints_of.is_some(), "adjoint: run backward first");
        assert!(
            n.grad,
            "adjoint: the variable does not depend on any input (its adjoint is not tracked)"
        );
        view(&self.adj[n.off..n.off + n.len()], n.rows, n.cols)
    }

    /// The adjoint tangent (the Hessian-vector product for an input) after
    /// [`Tape::backward_with_tangent`] or [`Tape::backward_tangent_only`].
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
        view(&self.adjt[n.off..n.off + n.len()], n.rows, n.cols)
    }

    fn reverse(&mut self, out: Var, seed: Option<MatRef<'_, f64>>, sweep: Sweep) {
        let len = self.vals.len();
        let with_adj = sweep != Sweep::TangentOnly;
        let with_tan = sweep != Sweep::Adjoint;
        let max_rows = self.nodes.iter().map(|n| n.rows).max().unwrap_or(0);
        self.ensure_scratch(2 * max_rows);
        if with_adj {
            grow(&mut self.adj, len, &mut self.growths);
            self.adj[..len].fill(0.0);
        }
        if with_tan {
            grow(&mut self.adjt, len, &mut self.growths);
            self.adjt[..len].fill(0.0);
        }
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
        if with_adj && with_tan {
            let need = self.nodes[..=out.id as usize]
                .iter()
                .filter(|n| n.grad && matches!(n.op, Op::MatMul { .. }))
                .map(|n| {
                    let nb = &self.nodes[n.b as usize];
                    2 * n.cols * (n.rows + nb.len() / n.cols)
                })
                .max()
                .unwrap_or(0);
            grow(&mut self.pair, need, &mut self.growths);
        }
        self.adjoints_of = Some(out.id);
        let Tape {
            nodes,
            vals,
            tans,
            adj,
            adjt,
            aux,
            shared,
            scratch,
            labels,
            par,
            pair,
            ..
        } = self;
        let par = *par;
        for i in (0..=out.id as usize).rev() {
            let n = nodes[i];
            if !n.grad || n.is_leaf() {
                continue;
            }
            let (na, nb) = (nodes[n.a as usize], nodes[n.b as usize]);
            let a = value(nodes, vals, shared, n.a);
            let b = value(nodes, vals, shared, n.b);
            let y = &vals[n.off..n.off + n.len()];
            let (da, db, dy) = if with_tan {
                (
                    na.grad.then(|| &tans[na.off..na.off + na.len()]),
                    nb.grad.then(|| &tans[nb.off..nb.off + nb.len()]),
                    &tans[n.off..n.off + n.len()],
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
            let aux = &aux[n.aux..];
            if with_adj && with_tan && matches!(n.op, Op::MatMul { .. }) && !na.grad && nb.grad {
                let Op::MatMul { ta, tb } = n.op else {
                    unreachable!()
                };
                let (bbar, dbbar) = (
                    view_mut(&mut apre[nb.off..nb.off + nb.len()], nb.rows, nb.cols),
                    view_mut(&mut tpre[nb.off..nb.off + nb.len()], nb.rows, nb.cols),
                );
                matmul::vjp_paired_b(
                    view(a, na.rows, na.cols),
                    ta,
                    ybar,
                    dybar,
                    tb,
                    bbar,
                    dbbar,
                    pair,
                    par,
                );
                continue;
            }
            let rules = Rules {
                n,
                na,
                nb,
                a,
                b,
                y,
                da,
                db,
                dy,
                ybar,
                dybar,
                aux,
                labels,
                par,
            };
            if with_adj {
                if na.grad {
                    rules.vjp(Side::A, &mut apre[na.off..na.off + na.len()], scratch);
                }
                if nb.grad && has_second_input(n.op) {
                    rules.vjp(Side::B, &mut apre[nb.off..nb.off + nb.len()], scratch);
                }
            }
            if with_tan {
                if na.grad {
                    rules.vjp_tangent(Side::A, &mut tpre[na.off..na.off + na.len()], scratch);
                }
                if nb.grad && has_second_input(n.op) {
                    rules.vjp_tangent(Side::B, &mut tpre[nb.off..nb.off + nb.len()], scratch);
                }
            }
        }
    }
}

fn has_second_input(op: Op) -> bool {
    matches!(
        op,
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    A,
    B,
}

/// Everything one node's reverse rules read.
struct Rules<'a> {
    n: Node,
    na: Node,
    nb: Node,
    a: &'a [f64],
    b: &'a [f64],
    y: &'a [f64],
    da: Option<&'a [f64]>,
    db: Option<&'a [f64]>,
    dy: &'a [f64],
    ybar: &'a [f64],
    dybar: &'a [f64],
    aux: &'a [f64],
    labels: &'a [u32],
    par: Par,
}

impl Rules<'_> {
    /// The adjoint of a linear operation: map `src` (an output adjoint or adjoint tangent)
    /// into the adjoint of input `side`.
    fn linear(&self, side: Side, src: &[f64], dst: &mut [f64]) {
        let (n, na, nb) = (&self.n, &self.na, &self.nb);
        match n.op {
            Op::Add | Op::Shift(_) | Op::Reshape => arith::axpy(dst, 1.0, src),
            Op::Sub => arith::axpy(dst, if side == Side::A { 1.0 } else { -1.0 }, src),
            Op::Neg => arith::axpy(dst, -1.0, src),
            Op::Scale(c) => arith::axpy(dst, c, src),
            Op::Sum => dst.iter_mut().for_each(|x| *x += src[0]),
            Op::SumRows => reduce::sum_rows_adjoint(src, na.rows, dst),
            Op::SumCols => reduce::sum_cols_adjoint(src, na.rows, dst),
            Op::AddRow => match side {
                Side::A => arith::axpy(dst, 1.0, src),
                Side::B => {
                    for (d, c) in dst.iter_mut().zip(src.chunks_exact(n.rows)) {
                        *d += reduce::sum(c);
                    }
                }
            },
            Op::Slice { r0, c0 } => shape::slice_adjoint(src, na.rows, r0, c0, n.rows, dst),
            Op::ConcatRows => {
                shape::concat_rows_adjoint(src, na.rows, nb.rows, side == Side::A, dst)
            }
            Op::GatherRows { rows: lo } => {
                shape::gather_rows_adjoint(src, na.rows, &self.labels[lo..lo + n.rows], dst)
            }
            _ => unreachable!("not a linear operation: {:?}", n.op),
        }
    }

    fn is_linear(op: Op) -> bool {
        matches!(
            op,
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

    /// `x̄ += Jᵀ ȳ` for input `side`.
    fn vjp(&self, side: Side, xbar: &mut [f64], scratch: &mut [f64]) {
        let (n, na, nb) = (&self.n, &self.na, &self.nb);
        let (a, b, ybar) = (self.a, self.b, self.ybar);
        if Self::is_linear(n.op) {
            return self.linear(side, ybar, xbar);
        }
        match n.op {
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
                let o = operands(na, nb, a, b, None, None, ta, tb);
                let yb = view(ybar, n.rows, n.cols);
                match side {
                    Side::A => matmul::vjp_a(o, yb, view_mut(xbar, na.rows, na.cols), self.par),
                    Side::B => matmul::vjp_b(o, yb, view_mut(xbar, nb.rows, nb.cols), self.par),
                }
            }
            Op::Dot => arith::axpy(xbar, ybar[0], if side == Side::A { b } else { a }),
            Op::SumSq => arith::axpy(xbar, 2.0 * ybar[0], a),
            Op::Unary(u) => elementwise::vjp(Fun::U(u), a, self.y, ybar, xbar),
            Op::Powi(k) => elementwise::vjp(Fun::Powi(k), a, self.y, ybar, xbar),
            Op::LogSumExpRows => softmax::lse_vjp(&self.aux[..na.len()], ybar, None, n.rows, xbar),
            Op::XentRows { labels } => {
                let l = &self.labels[labels..labels + n.rows];
                softmax::lse_vjp(&self.aux[..na.len()], ybar, Some(l), n.rows, xbar)
            }
            Op::SoftmaxRows => {
                softmax::softmax_vjp(self.y, ybar, n.rows, xbar, &mut scratch[..n.rows])
            }
            _ => unreachable!("no VJP rule for {:?}", n.op),
        }
    }

    /// `x̄̇ += Jᵀ ȳ̇ + J̇ᵀ ȳ` for input `side`.
    fn vjp_tangent(&self, side: Side, dxbar: &mut [f64], scratch: &mut [f64]) {
        let (n, na, nb) = (&self.n, &self.na, &self.nb);
        let (a, b, ybar, dybar, da, db) = (self.a, self.b, self.ybar, self.dybar, self.da, self.db);
        if Self::is_linear(n.op) {
            return self.linear(side, dybar, dxbar);
        }
        match n.op {
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
                let o = operands(na, nb, a, b, da, db, ta, tb);
                let yb = view(ybar, n.rows, n.cols);
                let dyb = view(dybar, n.rows, n.cols);
                match side {
                    Side::A => matmul::vjp_tangent_a(
                        o,
                        yb,
                        dyb,
                        view_mut(dxbar, na.rows, na.cols),
                        self.par,
                    ),
                    Side::B => matmul::vjp_tangent_b(
                        o,
                        yb,
                        dyb,
                        view_mut(dxbar, nb.rows, nb.cols),
                        self.par,
                    ),
                }
            }
            Op::Dot => {
                let (other, dother) = if side == Side::A { (b, db) } else { (a, da) };
                arith::axpy(dxbar, dybar[0], other);
                if let Some(d) = dother {
                    arith::axpy(dxbar, ybar[0], d);
                }
            }
            Op::SumSq => {
                arith::axpy(dxbar, 2.0 * dybar[0], a);
                arith::axpy(
                    dxbar,
                    2.0 * ybar[0],
                    da.expect("input of a tracked node has a tangent"),
                );
            }
            Op::Unary(u) => {
                elementwise::vjp_tangent(Fun::U(u), a, self.y, da.unwrap(), ybar, dybar, dxbar)
            }
            Op::Powi(k) => {
                elementwise::vjp_tangent(Fun::Powi(k), a, self.y, da.unwrap(), ybar, dybar, dxbar)
            }
            Op::LogSumExpRows => softmax::lse_vjp_tangent(
                &self.aux[..na.len()],
                da.unwrap(),
                ybar,
                dybar,
                None,
                n.rows,
                dxbar,
                &mut scratch[..n.rows],
            ),
            Op::XentRows { labels } => softmax::lse_vjp_tangent(
                &self.aux[..na.len()],
                da.unwrap(),
                ybar,
                dybar,
                Some(&self.labels[labels..labels + n.rows]),
                n.rows,
                dxbar,
                &mut scratch[..n.rows],
            ),
            Op::SoftmaxRows => {
                let (s1, s2) = scratch.split_at_mut(n.rows);
                softmax::softmax_vjp_tangent(
                    self.y,
                    self.dy,
                    ybar,
                    dybar,
                    n.rows,
                    dxbar,
                    s1,
                    &mut s2[..n.rows],
                )
            }
            _ => unreachable!("no VJP tangent rule for {:?}", n.op),
        }
    }
}

//! Streamed evaluation of data-sum losses: one pass over the data per oracle.
//!
//! A loss like `g(x, W) = (1/n) Σᵢ σ(xᵢ) CE(aᵢW, bᵢ) + λ‖W‖²` is a sum over the rows of its data
//! matrix. Evaluated tensor by tensor, its gradient reads the data twice (`A·W`, then `Aᵀ·Ḡ`) and
//! keeps `n × k` intermediates; streamed, each block of rows runs its forward values and
//! tangents, then its adjoints and adjoint tangents, while the block is in cache, and only
//! parameter-sized results survive the block.
//!
//! **Plan.** Every node of a deferred recording gets a class:
//!
//! - `Data`: a large shared matrix used as the left operand of a product whose rows are its
//!   samples: `matmul_t(x, true, w, false)` for a feature-major `x` (`d × n`, a column per
//!   sample) or `matmul(a, w)` for a sample-major `a` (`n × d`);
//! - `Row`: indexed by the `n` samples, computed block by block and never stored whole: the
//!   products of `Data` with parameters, and every row-local operation of a `Row` node
//!   (elementwise operations, softmax family, bias rows, products with parameters);
//! - `Reduce`: a sum over the rows of `Row` nodes (`dot`, `sum`, `sum_sq`, `sum_cols`), kept as
//!   a partial sum per block;
//! - `Pre`: parameter-sized nodes computed before the stream (inputs, reshapes of parameters,
//!   `σ(x)`, the ridge term); those with `n` rows that a row-local operation reads (the sample
//!   weights) are read block by block (*sliced*);
//! - `Post`: computed after the stream from reductions (the final sum and scaling).
//!
//! A recording that fits none of this (a row-mixing operation on a `Row` node, a data matrix
//! used otherwise) is evaluated over whole tensors instead.
//!
//! **Schedule.** The rows are cut into blocks of a fixed size (from the data width), and the
//! blocks into at most [`MAX_CHUNKS`] chunks of consecutive blocks, each with its own partial
//! sums; partial sums are added in chunk order at the end. One worker per thread of the current
//! rayon pool (at most one per chunk) takes the next chunk nobody has taken and runs its blocks
//! in the worker's block buffers, so block buffers exist once per thread, partial sums once per
//! chunk. Blocks, chunks and every summation order depend on the shapes alone, not on which
//! worker runs a chunk, so results are bit for bit the same at any thread count.
//!
//! When the nodes after the reductions are linear (sums and scalings: the usual mean of
//! per-sample losses plus a penalty), the adjoints of the reductions are known before any value
//! and each block runs its reverse rules right after its forward ones: **one pass**. Otherwise a
//! first pass computes the reductions, and a second recomputes each block's forward values
//! before its reverse rules.

use super::{Node, Sweep, Tape, Target, UNSET, Var, grow, grow_vec, value_of};
use crate::ops::{Dims, Op, RowRule, RuleArgs, Side, ValueArgs, view, view_mut};
use bilevel_linalg::{
    Accum, AlignedVec, LANES, Mat, MatRef, Par, SparseBlock, SparseScratch, joint_product_pays,
    matmul_ahead, sparse_mul, sparse_t_mul_add,
};
use rayon::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// A shared matrix of at least this many entries (512 KiB) is streamed when it is the data of a
/// sum over its samples.
pub const STREAM_MIN_ENTRIES: usize = 1 << 16;

/// The data rows of one block take about this many bytes (they stay in the second-level cache
/// between the forward and the reverse rules).
const BLOCK_BYTES: usize = 1 << 19;

/// Rows of more than this many entries take blocks of [`WIDE_BLOCK_BYTES`]: a wide row is read
/// with few result columns (the synthetic `½‖Hy − x‖²` has one or two), so its forward and
/// reverse products are bound by the block's reads, and a block the size of a 512 KiB
/// second-level cache is partly gone before its reverse product reads it again (measured on the
/// 2000 × 2000 `H`, 2 threads, AMD EPYC, medians of two interleaved runs: gradient 3.41 → 2.43
/// and 3.35 → 3.03 ms, HVP pass 3.83 → 2.91 and 4.03 → 3.47 ms with half-size blocks; a quarter
/// size was no better; MNIST-width rows, 784 entries, measured the same with either size).
const WIDE_ROW: usize = 1024;

/// Bytes of a block of rows wider than [`WIDE_ROW`].
const WIDE_BLOCK_BYTES: usize = 1 << 18;

/// A paired reverse product `X·[Z̄ Ż̄]` goes through a buffer of `d·2k` entries, added into the
/// two partial sums; beyond this many entries the two products run separately.
const PAIR_GRAD_MAX: usize = 1 << 17;

/// Most chunks a stream is cut into: the most threads it can use.
pub const MAX_CHUNKS: usize = 8;

/// The class of a node in a streamed evaluation (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Pre,
    Data,
    Row,
    Reduce,
    Post,
}

/// Where a rule reads an input from, block by block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Src {
    /// The block buffer (a `Row` node, or the block's rows of a sliced `Pre` node).
    Block,
    /// The whole tensor in the arena (a parameter); its adjoint goes to the chunk's partial.
    Full,
    /// The data matrix.
    Data,
}

/// The plan of one streamed evaluation (buffers reused across evaluations).
#[derive(Debug, Default)]
struct Plan {
    /// Samples.
    n: usize,
    /// Rows per block.
    block: usize,
    /// Chunk boundaries in rows: chunk `c` covers `bounds[c] .. bounds[c + 1]`.
    bounds: Vec<usize>,
    class: Vec<Class>,
    /// `Pre` nodes with `n` rows read by blocks.
    sliced: Vec<bool>,
    /// Where each `Row`/`Reduce` node reads its inputs.
    src: Vec<[Src; 2]>,
    /// Block-buffer offsets (`Row` and sliced nodes), sized for `block` rows.
    boff: Vec<usize>,
    block_len: usize,
    /// Block auxiliary offsets (`Row` nodes).
    baux: Vec<usize>,
    block_aux_len: usize,
    /// Offsets of parameter adjoints in a chunk's partial sums (`Full` inputs of block rules).
    poff: Vec<usize>,
    param_len: usize,
    /// Offsets of reduction values in a chunk's partial sums.
    roff: Vec<usize>,
    red_len: usize,
    /// Offsets of sliced nodes' adjoints within a chunk's slice buffer (per chunk row).
    soff: Vec<usize>,
    /// Entries of a sliced adjoint buffer per row of a chunk (sum of the sliced widths).
    slice_width: usize,
    /// Nodes in recording order that run block by block (`Row`, `Reduce`, and sliced copies).
    order: Vec<u32>,
    one_pass: bool,
    max_rows: usize,
    /// Offset of `[W Ẇ]` in the streamer's pair buffer for a data product whose value and
    /// tangent run as one product (`UNSET` otherwise); the widest `2k` and the largest `d·2k`.
    pair_off: Vec<usize>,
    pair_cols: usize,
    pair_grad: usize,
    /// Data products whose data runs through its sparse form: the offset of the row-major
    /// right operand (`[op(W)]`, or `[op(W) op(Ẇ)]` with a tangent) in the streamer's buffer
    /// (`UNSET` for the dense ones), its row stride, and the offset of the chunk's row-major
    /// gradient accumulator (`d` rows: adjoint, then adjoint tangent, `k₄` columns each, the
    /// columns rounded up to four; rows [`acc_stride`] apart).
    srow_off: Vec<usize>,
    srow_ld: Vec<usize>,
    sacc_off: Vec<usize>,
    sacc_len: usize,
    /// Sparse data products whose right operand no other block rule reads: their accumulators
    /// are the operand's partial sums (it has no place in `padj`), combined from the
    /// row-major layout.
    sacc_sole: Vec<bool>,
    /// The widest block buffer a sparse product goes through (columns).
    sparse_cols: usize,
}

/// A worker's block buffers, reused by every chunk the worker runs: nothing in them outlives
/// a block.
#[derive(Debug, Default)]
struct Work {
    bval: AlignedVec,
    btan: AlignedVec,
    badj: AlignedVec,
    badjt: AlignedVec,
    baux: AlignedVec,
    scratch: Vec<f64>,
    tmp: Vec<f64>,
    /// A block's paired products `[Z Ż]` (block rows × 2k), and a paired weight gradient
    /// `X·[Z̄ Ż̄]` (d × 2k).
    ptmp: AlignedVec,
    pgrad: AlignedVec,
    /// The feature-major copy of a block for the sparse weight gradients.
    sparse: SparseScratch,
    growths: u64,
}

/// A chunk's partial sums, kept until the chunks are added in order.
#[derive(Debug, Default)]
struct Partial {
    /// Partial sums of parameter adjoints and adjoint tangents.
    padj: AlignedVec,
    padjt: AlignedVec,
    /// Partial sums of reduction values and tangents.
    rval: Vec<f64>,
    rtan: Vec<f64>,
    /// The chunk's rows of sliced nodes' adjoints and adjoint tangents.
    sadj: Vec<f64>,
    sadjt: Vec<f64>,
    /// Row-major weight-gradient accumulators of the sparse data products (see
    /// `Plan::sacc_off`): added into `padj` and `padjt` at the end of the chunk, or, for a
    /// weight that only its sparse product reads (`Plan::sacc_sole`), the weight's partial sum
    /// itself.
    sacc: AlignedVec,
    growths: u64,
}

impl Partial {
    fn capacity(&self) -> usize {
        self.padj.capacity()
            + self.padjt.capacity()
            + self.rval.capacity()
            + self.rtan.capacity()
            + self.sadj.capacity()
            + self.sadjt.capacity()
            + self.sacc.capacity()
    }
}

/// The partial sums of a chunk that no worker is running (see [`Tape::run_chunks`]).
fn unlocked(m: &mut Mutex<Partial>) -> &mut Partial {
    m.get_mut().unwrap_or_else(PoisonError::into_inner)
}

/// A chunk's partial sums, taken by the worker that runs the chunk (or read for statistics).
fn locked(m: &Mutex<Partial>) -> MutexGuard<'_, Partial> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Plans and chunk buffers of streamed evaluations.
#[derive(Debug, Default)]
pub(super) struct Streamer {
    plan: Plan,
    /// One set of block buffers per worker (the first `workers`).
    work: Vec<Work>,
    workers: usize,
    /// One set of partial sums per chunk, each taken by the worker that runs the chunk.
    parts: Vec<Mutex<Partial>>,
    /// `[W Ẇ]` side by side for each paired data product (offsets in `Plan::pair_off`).
    wpair: AlignedVec,
    /// The row-major right operands of the sparse data products (offsets in
    /// `Plan::srow_off`).
    wrow: AlignedVec,
    growths: u64,
}

impl Streamer {
    /// Data products of the last plan that read their data through its sparse form.
    pub fn sparse_products(&self) -> usize {
        self.plan.srow_off.iter().filter(|&&o| o != UNSET).count()
    }

    /// Reallocations of the chunk buffers.
    pub fn growths(&self) -> u64 {
        let parts = self.parts.iter().map(|m| locked(m).growths);
        self.growths + self.work.iter().map(|w| w.growths).sum::<u64>() + parts.sum::<u64>()
    }

    /// Bytes reserved by the chunk buffers.
    pub fn capacity_bytes(&self) -> usize {
        self.work
            .iter()
            .map(|w| {
                8 * (w.bval.capacity()
                    + w.btan.capacity()
                    + w.badj.capacity()
                    + w.badjt.capacity()
                    + w.baux.capacity()
                    + w.scratch.capacity()
                    + w.tmp.capacity()
                    + w.ptmp.capacity()
                    + w.pgrad.capacity())
                    + w.sparse.bytes()
            })
            .sum::<usize>()
            + self
                .parts
                .iter()
                .map(|m| 8 * locked(m).capacity())
                .sum::<usize>()
            + 8 * (self.wpair.capacity() + self.wrow.capacity())
    }
}

/// Rows per block for data rows of `width` entries: about [`BLOCK_BYTES`] of data
/// ([`WIDE_BLOCK_BYTES`] beyond [`WIDE_ROW`] entries), a multiple of
/// the vector width, between 8 and 512. Fixed by the width alone: the blocks set the summation
/// order of a data sum, so nothing else (no setting, no thread count) may change them.
fn block_rows(width: usize) -> usize {
    let bytes = if width > WIDE_ROW {
        WIDE_BLOCK_BYTES
    } else {
        BLOCK_BYTES
    };
    let r = bytes / (8 * width.max(1));
    (r / LANES * LANES).clamp(LANES, 512)
}

impl Plan {
    /// Classify nodes `0..=out`; `false` when the recording is not a streamable data sum.
    fn build(
        &mut self,
        nodes: &[Node],
        shared_dims: impl Fn(u32) -> (usize, usize),
        out: usize,
    ) -> bool {
        let len = out + 1;
        self.class.clear();
        self.class.resize(len, Class::Pre);
        self.sliced.clear();
        self.sliced.resize(len, false);
        self.src.clear();
        self.src.resize(len, [Src::Full; 2]);
        let mut n_samples: Option<usize> = None;
        let mut width = 0usize;
        let mut any_row = false;
        // Candidate data: large shared matrices.
        let big = |k: u32| {
            let (r, c) = shared_dims(k);
            r * c >= STREAM_MIN_ENTRIES
        };
        for i in 0..len {
            let n = nodes[i];
            match n.op {
                Op::Input | Op::Const => continue,
                Op::Shared(k) => {
                    if big(k) {
                        self.class[i] = Class::Data;
                    }
                    continue;
                }
                _ => {}
            }
            let (a, b) = (n.a as usize, n.b as usize);
            let binary = n.op.is_binary();
            let ca = self.class[a];
            let cb = if binary { self.class[b] } else { Class::Pre };
            // A product whose left operand is the data: its rows are the samples.
            if ca == Class::Data {
                let Op::MatMul { ta, .. } = n.op else {
                    return false;
                };
                if cb != Class::Pre {
                    return false;
                }
                let (dr, dc) = (nodes[a].rows, nodes[a].cols);
                let (samples, w) = if ta { (dc, dr) } else { (dr, dc) };
                match n_samples {
                    None => n_samples = Some(samples),
                    Some(s) if s == samples => {}
                    Some(_) => return false,
                }
                width = width.max(w);
                self.class[i] = Class::Row;
                self.src[i] = [Src::Data, Src::Full];
                any_row = true;
                continue;
            }
            if cb == Class::Data {
                return false;
            }
            let post = matches!(ca, Class::Reduce | Class::Post)
                || matches!(cb, Class::Reduce | Class::Post);
            let rows_in = ca == Class::Row || cb == Class::Row;
            if post {
                if rows_in {
                    return false;
                }
                self.class[i] = Class::Post;
                continue;
            }
            if !rows_in {
                continue; // Pre
            }
            let ns = n_samples.expect("a row node follows its data");
            let d = Dims {
                rows: n.rows,
                cols: n.cols,
                a: (nodes[a].rows, nodes[a].cols),
                b: (nodes[b].rows, nodes[b].cols),
            };
            // A `Pre` operand of `n` rows in an elementwise operation or a dot product is read
            // block by block.
            let elementwise = matches!(n.op, Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Dot);
            let side_src = |c: Class, rows: usize| match c {
                Class::Row => Some(Src::Block),
                Class::Pre if elementwise && rows == ns => Some(Src::Block),
                Class::Pre if !elementwise => Some(Src::Full),
                _ => None,
            };
            let Some(sa) = side_src(ca, d.a.0) else {
                return false;
            };
            let sb = if binary {
                match side_src(cb, d.b.0) {
                    Some(s) => s,
                    None => return false,
                }
            } else {
                Src::Full
            };
            let rule =
                n.op.row_rule(d, sa == Src::Block, binary && sb == Src::Block);
            match rule {
                RowRule::Local if n.rows == ns => self.class[i] = Class::Row,
                RowRule::Reduce => self.class[i] = Class::Reduce,
                _ => return false,
            }
            self.src[i] = [sa, sb];
            for (j, s, c) in [(a, sa, ca), (b, sb, cb)] {
                if s == Src::Block && c == Class::Pre && (j == a || binary) {
                    self.sliced[j] = true;
                }
            }
        }
        if !any_row || matches!(self.class[out], Class::Row | Class::Data) {
            return false;
        }
        let n = n_samples.expect("any_row implies data");
        self.n = n;
        self.block = block_rows(width);
        if n < 2 * self.block {
            return false;
        }
        let blocks = n.div_ceil(self.block);
        let chunks = blocks.min(MAX_CHUNKS);
        self.bounds.clear();
        for c in 0..=chunks {
            self.bounds.push((c * blocks / chunks * self.block).min(n));
        }
        // One pass when every node after the reductions is linear.
        self.one_pass = (0..len)
            .filter(|&i| self.class[i] == Class::Post)
            .all(|i| nodes[i].op.is_linear());
        self.lay_out(nodes, len);
        true
    }

    /// Offsets of block buffers, partial sums and slice buffers.
    fn lay_out(&mut self, nodes: &[Node], len: usize) {
        let r = self.block;
        self.boff.clear();
        self.boff.resize(len, UNSET);
        self.baux.clear();
        self.baux.resize(len, UNSET);
        self.poff.clear();
        self.poff.resize(len, UNSET);
        self.roff.clear();
        self.roff.resize(len, UNSET);
        self.soff.clear();
        self.soff.resize(len, UNSET);
        self.order.clear();
        let (mut blen, mut alen, mut plen, mut rlen, mut swidth) =
            (0usize, 0usize, 0usize, 0usize, 0usize);
        let mut max_rows = r;
        for i in 0..len {
            let n = nodes[i];
            let c = self.class[i];
            if c == Class::Row || self.sliced[i] {
                self.boff[i] = blen.next_multiple_of(LANES);
                blen = self.boff[i] + r * n.cols;
                self.order.push(i as u32);
            }
            if self.sliced[i] {
                self.soff[i] = swidth;
                swidth += n.cols;
            }
            if c == Class::Row {
                let aux_len = n.op.aux_len(Dims {
                    rows: r,
                    cols: n.cols,
                    a: (r, nodes[n.a as usize].cols),
                    b: (r, nodes[n.b as usize].cols),
                });
                self.baux[i] = alen.next_multiple_of(LANES);
                alen = self.baux[i] + aux_len;
            }
            if c == Class::Reduce {
                self.roff[i] = rlen;
                rlen += n.len();
                self.order.push(i as u32);
                max_rows = max_rows.max(n.rows);
            }
            if matches!(c, Class::Row | Class::Reduce) {
                let sides: &[(u32, Src)] = if n.op.is_binary() {
                    &[(n.a, self.src[i][0]), (n.b, self.src[i][1])]
                } else {
                    &[(n.a, self.src[i][0])]
                };
                for &(j, s) in sides {
                    let j = j as usize;
                    if s == Src::Full && nodes[j].grad && self.poff[j] == UNSET {
                        self.poff[j] = plen.next_multiple_of(LANES);
                        plen = self.poff[j] + nodes[j].len();
                    }
                }
            }
        }
        self.block_len = blen;
        self.block_aux_len = alen;
        self.param_len = plen;
        self.red_len = rlen;
        self.slice_width = swidth;
        self.max_rows = max_rows;
    }

    fn chunks(&self) -> usize {
        self.bounds.len() - 1
    }

    /// Mark the sparse data products whose right operand no other block rule reads
    /// ([`Plan::sacc_sole`]), take those operands out of the chunks' partial sums, and lay the
    /// remaining partial sums out again.
    fn find_sole_operands(&mut self, nodes: &[Node], out: usize) {
        let mut dropped = false;
        for i in 0..=out {
            if self.sacc_off[i] == UNSET {
                continue;
            }
            let b = nodes[i].b as usize;
            if self.poff[b] == UNSET {
                continue; // no gradient, or already taken by another product
            }
            let readers = (0..=out)
                .filter(|&j| matches!(self.class[j], Class::Row | Class::Reduce))
                .map(|j| {
                    let n = &nodes[j];
                    let a = (n.a as usize == b && self.src[j][0] == Src::Full) as usize;
                    let bb = n.op.is_binary() && n.b as usize == b && self.src[j][1] == Src::Full;
                    a + bb as usize
                })
                .sum::<usize>();
            if readers == 1 {
                self.sacc_sole[i] = true;
                self.poff[b] = UNSET;
                dropped = true;
            }
        }
        if dropped {
            let mut plen = 0usize;
            for (j, po) in self.poff.iter_mut().enumerate() {
                if *po != UNSET {
                    *po = plen.next_multiple_of(LANES);
                    plen = *po + nodes[j].len();
                }
            }
            self.param_len = plen;
        }
    }
}

/// What the blocks of a chunk read (all immutable during the stream).
struct Ctx<'a> {
    nodes: &'a [Node],
    plan: &'a Plan,
    wpair: &'a [f64],
    wrow: &'a [f64],
    vals: &'a [f64],
    tans: &'a [f64],
    adj: &'a [f64],
    adjt: &'a [f64],
    ints: &'a [u32],
    shared: &'a super::shared::SharedStore,
    need_adj: &'a [bool],
    need_tan: &'a [bool],
    /// Values some rule reads (a data product's may be skipped otherwise).
    need_val: &'a [bool],
    tangents: bool,
}

impl Tape {
    /// Stream the recording up to `out` if it is a data sum over a large shared matrix (see the
    /// module documentation); `false` leaves the tape untouched for a whole-tensor evaluation.
    pub(super) fn try_stream(
        &mut self,
        out: Var,
        sweep: Sweep,
        targets: &[Target],
        value: bool,
    ) -> bool {
        if sweep == Sweep::TangentOnly {
            return false;
        }
        let o = out.id as usize;
        let shared = &self.shared;
        let dims = |k: u32| {
            let m: &Mat<f64> = shared.mat(k);
            (m.nrows(), m.ncols())
        };
        if !self.stream.plan.build(&self.nodes, dims, o) {
            return false;
        }
        let with_adj = matches!(sweep, Sweep::Adjoint | Sweep::Both);
        let with_tan = sweep == Sweep::Both;
        self.need.compute(&self.nodes, o, Some(targets), with_tan);
        let tangents = self.eager_tangents;
        self.need
            .values(&self.nodes, o, value, tangents, with_adj, with_tan);
        // Parameter-sized nodes live in the arena; row nodes only in block buffers.
        let in_arena = |t: &Tape, i: usize| {
            let c = t.stream.plan.class[i];
            t.nodes[i].off == UNSET && matches!(c, Class::Pre | Class::Reduce | Class::Post)
        };
        self.reserve_lay_out(o + 1, in_arena);
        for i in 0..=o {
            if in_arena(self, i) {
                self.lay_out(i);
            }
        }
        if self.eager_tangents {
            let len = self.vals.len();
            grow(&mut self.tans, len, &mut self.growths);
        }
        for i in 0..=o {
            if self.stream.plan.class[i] == Class::Pre && !self.nodes[i].is_leaf() {
                self.compute_node(i);
            }
        }
        self.plan_sparse(o);
        self.pack_pairs(o);
        self.prepare_work();
        self.zero_adjoints(with_adj, with_tan);
        if with_adj {
            let off = self.nodes[o].off;
            self.adj[off] = 1.0;
        }
        self.adjoints_of = Some(out.id);
        let one_pass = self.stream.plan.one_pass;
        let reverse = with_adj;
        if reverse && one_pass {
            // Linear nodes after the reductions: their reverse rules read no value.
            self.reverse_class(o, Class::Post, with_adj, with_tan);
        }
        self.run_chunks(true, reverse && one_pass, with_adj, with_tan);
        self.combine_reductions();
        for i in 0..=o {
            if self.stream.plan.class[i] == Class::Post {
                self.compute_node(i);
            }
        }
        if reverse && !one_pass {
            self.reverse_class(o, Class::Post, with_adj, with_tan);
            self.run_chunks(false, true, with_adj, with_tan);
        }
        if reverse {
            self.combine_adjoints(with_adj, with_tan);
            self.reverse_class(o, Class::Pre, with_adj, with_tan);
        }
        self.computed = self.nodes.len();
        self.streamed = true;
        self.values_partial = !value;
        true
    }

    /// Reverse rules over whole tensors for the nodes of class `class`, in reverse order.
    fn reverse_class(&mut self, out: usize, class: Class, with_adj: bool, with_tan: bool) {
        for i in (0..=out).rev() {
            if self.stream.plan.class[i] == class {
                self.reverse_node(i, with_adj, with_tan);
            }
        }
    }

    /// Data products whose right operand carries a tangent compute value and tangent as one
    /// product `op(X)·[W Ẇ]` (one pass over each block of the data, one packing for faer's
    /// products); put each `[W Ẇ]` side by side once per evaluation.
    fn pack_pairs(&mut self, out: usize) {
        let st = &mut self.stream;
        let p = &mut st.plan;
        p.pair_off.clear();
        p.pair_off.resize(out + 1, UNSET);
        p.pair_cols = 0;
        p.pair_grad = 0;
        if !self.eager_tangents {
            return;
        }
        let mut len = 0usize;
        for i in 0..=out {
            let n = self.nodes[i];
            let nb = self.nodes[n.b as usize];
            // Where pairing saves no pass over a block, the copies only cost (measured:
            // workload A's HVP 2 % slower paired, C2000's 21 % faster, B50's 3 %).
            if p.src[i][0] == Src::Data
                && p.srow_off[i] == UNSET
                && n.live
                && nb.live
                && joint_product_pays(n.cols)
                && matches!(n.op, Op::MatMul { tb: false, .. })
            {
                p.pair_off[i] = len.next_multiple_of(LANES);
                len = p.pair_off[i] + 2 * nb.len();
                p.pair_cols = p.pair_cols.max(2 * n.cols);
                p.pair_grad = p.pair_grad.max(2 * nb.len());
            }
        }
        grow(&mut st.wpair, len, &mut st.growths);
        for i in 0..=out {
            let o = p.pair_off[i];
            if o == UNSET {
                continue;
            }
            let nb = self.nodes[self.nodes[i].b as usize];
            let l = nb.len();
            st.wpair[o..o + l].copy_from_slice(&self.vals[nb.off..nb.off + l]);
            st.wpair[o + l..o + 2 * l].copy_from_slice(&self.tans[nb.off..nb.off + l]);
        }
    }

    /// Data products over a data matrix with few nonzero entries run through its sparse form
    /// ([`SparseRows`](bilevel_linalg::SparseRows)): put their right operands row-major, once
    /// per evaluation (`[op(W) op(Ẇ)]` side by side when the product carries a tangent), and lay
    /// out the chunks' row-major gradient accumulators (for the adjoints and adjoint tangents
    /// the request reads).
    fn plan_sparse(&mut self, out: usize) {
        let Tape {
            nodes,
            vals,
            tans,
            shared,
            stream,
            eager_tangents,
            sparse_data,
            ..
        } = self;
        let p = &mut stream.plan;
        for v in [&mut p.srow_off, &mut p.sacc_off] {
            v.clear();
            v.resize(out + 1, UNSET);
        }
        p.sacc_sole.clear();
        p.sacc_sole.resize(out + 1, false);
        p.srow_ld.clear();
        p.srow_ld.resize(out + 1, 0);
        p.sacc_len = 0;
        p.sparse_cols = 0;
        let mut len = 0usize;
        for i in 0..=out {
            if p.src[i][0] != Src::Data {
                continue;
            }
            let n = nodes[i];
            let (Op::Shared(k), Op::MatMul { ta, .. }) = (nodes[n.a as usize].op, n.op) else {
                continue;
            };
            if !(*sparse_data && shared.make_sparse(k, ta)) {
                continue;
            }
            let d = shared.sparse(k).map_or(0, |s| s.width());
            let live = *eager_tangents && n.live;
            let k4 = n.cols.next_multiple_of(4);
            let ld = row_stride(if live { 2 * n.cols } else { n.cols });
            p.srow_off[i] = len.next_multiple_of(LANES);
            p.srow_ld[i] = ld;
            len = p.srow_off[i] + d * ld;
            p.sacc_off[i] = p.sacc_len;
            p.sacc_len += d * acc_stride(k4);
            p.sparse_cols = p.sparse_cols.max(2 * k4);
        }
        p.find_sole_operands(nodes, out);
        grow(&mut stream.wrow, len, &mut stream.growths);
        for i in 0..=out {
            let o = p.srow_off[i];
            if o == UNSET {
                continue;
            }
            let n = nodes[i];
            let nb = nodes[n.b as usize];
            let (ld, kc) = (p.srow_ld[i], n.cols);
            let (d, op_b) = rhs_layout(&n, &nb);
            let at = |j: usize, c: usize| nb.off + op_b(j, c);
            let live = *eager_tangents && n.live;
            let wrow = &mut stream.wrow[o..o + d * ld];
            wrow.fill(0.0);
            for j in 0..d {
                let row = &mut wrow[j * ld..(j + 1) * ld];
                for c in 0..kc {
                    row[c] = vals[at(j, c)];
                    if live {
                        row[kc + c] = tans[at(j, c)];
                    }
                }
            }
        }
    }

    /// Size the chunk buffers for the plan.
    /// Size the workers' block buffers and the chunks' partial sums for the plan: one worker
    /// per thread of the current rayon pool, at most one per chunk.
    fn prepare_work(&mut self) {
        let st = &mut self.stream;
        let p = &st.plan;
        let chunks = p.chunks();
        st.workers = if self.par == Par::Seq {
            1
        } else {
            rayon::current_num_threads().clamp(1, chunks)
        };
        if st.work.len() < st.workers {
            st.work.resize_with(st.workers, Work::default);
        }
        if st.parts.len() < chunks {
            st.parts.resize_with(chunks, Mutex::default);
        }
        for w in &mut st.work[..st.workers] {
            let g = &mut w.growths;
            for b in [&mut w.bval, &mut w.btan, &mut w.badj, &mut w.badjt] {
                grow(b, p.block_len, g);
            }
            grow(&mut w.baux, p.block_aux_len, g);
            grow_vec(&mut w.scratch, 2 * p.max_rows.max(p.block), g);
            grow_vec(&mut w.tmp, p.red_len.max(1), g);
            grow(&mut w.ptmp, p.block * p.pair_cols.max(p.sparse_cols), g);
            if p.pair_grad <= PAIR_GRAD_MAX {
                grow(&mut w.pgrad, p.pair_grad, g);
            }
        }
        let max_chunk_rows = p.bounds.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
        for m in &mut st.parts[..chunks] {
            let w = unlocked(m);
            let g = &mut w.growths;
            grow(&mut w.padj, p.param_len, g);
            grow(&mut w.padjt, p.param_len, g);
            grow_vec(&mut w.rval, p.red_len, g);
            grow_vec(&mut w.rtan, p.red_len, g);
            grow_vec(&mut w.sadj, p.slice_width * max_chunk_rows, g);
            grow_vec(&mut w.sadjt, p.slice_width * max_chunk_rows, g);
            grow(&mut w.sacc, p.sacc_len, g);
        }
    }

    /// Run every chunk: the forward rules of each block (`forward`: accumulating the
    /// reductions), then its reverse rules (`reverse`).
    fn run_chunks(&mut self, forward: bool, reverse: bool, with_adj: bool, with_tan: bool) {
        let Tape {
            nodes,
            vals,
            tans,
            adj,
            adjt,
            ints,
            shared,
            need,
            stream,
            par,
            eager_tangents,
            ..
        } = self;
        let ctx = Ctx {
            nodes,
            plan: &stream.plan,
            wpair: &stream.wpair,
            wrow: &stream.wrow,
            vals,
            tans,
            adj,
            adjt,
            ints,
            shared,
            need_adj: &need.adj,
            need_tan: &need.tan,
            need_val: &need.val,
            tangents: *eager_tangents,
        };
        // Each worker takes the next chunk nobody has taken, so a worker slowed down (by other
        // work on its core) runs fewer chunks; what a chunk computes does not depend on the
        // worker that runs it.
        let chunks = ctx.plan.chunks();
        let parts = &stream.parts[..chunks];
        let next = AtomicUsize::new(0);
        let job = |w: &mut Work| {
            loop {
                let c = next.fetch_add(1, Ordering::Relaxed);
                if c >= chunks {
                    break;
                }
                let mut part = locked(&parts[c]);
                run_chunk(&ctx, c, w, &mut part, forward, reverse, with_adj, with_tan);
            }
        };
        let work = &mut stream.work[..stream.workers];
        if *par == Par::Seq {
            work.iter_mut().for_each(job);
        } else {
            work.par_iter_mut().for_each(job);
        }
    }

    /// Reduction values and tangents: the chunks' partial sums, added in chunk order.
    fn combine_reductions(&mut self) {
        let Tape {
            nodes,
            vals,
            tans,
            stream,
            eager_tangents,
            ..
        } = self;
        let p = &stream.plan;
        let parts = &mut stream.parts[..p.chunks()];
        for (i, &ro) in p.roff.iter().enumerate() {
            if ro == UNSET {
                continue;
            }
            let n = nodes[i];
            let live = *eager_tangents && n.live;
            let (v, t) = (&mut vals[n.off..n.off + n.len()], &mut tans[..]);
            v.fill(0.0);
            if live {
                t[n.off..n.off + n.len()].fill(0.0);
            }
            for m in parts.iter_mut() {
                let w = unlocked(m);
                for (d, s) in v.iter_mut().zip(&w.rval[ro..ro + n.len()]) {
                    *d += s;
                }
                if live {
                    let t = &mut t[n.off..n.off + n.len()];
                    for (d, s) in t.iter_mut().zip(&w.rtan[ro..ro + n.len()]) {
                        *d += s;
                    }
                }
            }
        }
    }

    /// Parameter adjoints and the sliced nodes' adjoints from the chunks, in chunk order.
    fn combine_adjoints(&mut self, with_adj: bool, with_tan: bool) {
        let Tape {
            nodes,
            adj,
            adjt,
            need,
            stream,
            ..
        } = self;
        let p = &stream.plan;
        let parts = &mut stream.parts[..p.chunks()];
        for (i, &po) in p.poff.iter().enumerate() {
            if po == UNSET {
                continue;
            }
            let n = nodes[i];
            let off = n.off;
            for (use_it, dst, part) in [
                (with_adj && need.adj[i], &mut *adj, 0),
                (with_tan && need.tan[i], &mut *adjt, 1),
            ] {
                if !use_it {
                    continue;
                }
                for m in parts.iter_mut() {
                    let w = unlocked(m);
                    let src = if part == 0 { &w.padj } else { &w.padjt };
                    for (d, s) in dst[off..off + n.len()]
                        .iter_mut()
                        .zip(&src[po..po + n.len()])
                    {
                        *d += s;
                    }
                }
            }
        }
        // The operands whose partial sums are their sparse products' row-major accumulators.
        for (i, &so) in p.sacc_off.iter().enumerate() {
            if !p.sacc_sole[i] {
                continue;
            }
            let n = &nodes[i];
            let b = n.b as usize;
            let nb = &nodes[b];
            for (use_it, dst, tangent) in [
                (with_adj && need.adj[b], &mut *adj, false),
                (with_tan && need.tan[b], &mut *adjt, true),
            ] {
                if !use_it {
                    continue;
                }
                for m in parts.iter_mut() {
                    let acc = &unlocked(m).sacc[so..];
                    add_accumulator(n, nb, acc, tangent, &mut dst[nb.off..]);
                }
            }
        }
        for (i, &so) in p.soff.iter().enumerate() {
            if so == UNSET {
                continue;
            }
            let n = nodes[i];
            for (c, m) in parts.iter_mut().enumerate() {
                let w = unlocked(m);
                let (r0, r1) = (p.bounds[c], p.bounds[c + 1]);
                let rows = r1 - r0;
                for (use_it, dst, src) in [
                    (with_adj && need.adj[i], &mut *adj, &w.sadj),
                    (with_tan && need.tan[i], &mut *adjt, &w.sadjt),
                ] {
                    if !use_it {
                        continue;
                    }
                    for j in 0..n.cols {
                        let s = &src[(so + j) * rows..(so + j + 1) * rows];
                        let d = &mut dst[n.off + j * n.rows + r0..n.off + j * n.rows + r1];
                        for (d, s) in d.iter_mut().zip(s) {
                            *d += s;
                        }
                    }
                }
            }
        }
    }
}

/// The blocks of chunk `c`, in order.
#[allow(clippy::too_many_arguments)]
fn run_chunk(
    ctx: &Ctx<'_>,
    c: usize,
    w: &mut Work,
    part: &mut Partial,
    forward: bool,
    reverse: bool,
    with_adj: bool,
    with_tan: bool,
) {
    let p = ctx.plan;
    let (c0, c1) = (p.bounds[c], p.bounds[c + 1]);
    if forward {
        part.rval[..p.red_len].fill(0.0);
        part.rtan[..p.red_len].fill(0.0);
    }
    if reverse {
        part.padj[..p.param_len].fill(0.0);
        part.padjt[..p.param_len].fill(0.0);
        let s = p.slice_width * (c1 - c0);
        part.sadj[..s].fill(0.0);
        part.sadjt[..s].fill(0.0);
        part.sacc[..p.sacc_len].fill(0.0);
    }
    let mut r0 = c0;
    while r0 < c1 {
        let r = p.block.min(c1 - r0);
        // The chunk's next block, brought into cache while this one computes: by its reverse
        // rules when they run (they read this block from cache and are compute-bound), else by
        // its forward rules.
        let next = (r0 + r < c1).then(|| (r0 + r, p.block.min(c1 - r0 - r)));
        let ahead = if reverse { None } else { next };
        block_forward(ctx, w, part, r0, r, forward, ahead);
        if reverse {
            block_reverse(ctx, w, part, c0, c1, r0, r, with_adj, with_tan, next);
        }
        r0 += r;
    }
    if reverse {
        flush_sparse(ctx, part, with_adj, with_tan);
    }
}

/// Add the chunk's row-major gradient accumulators of the sparse data products into its
/// partial sums, in the right operands' layouts (except those that are the partial sums,
/// [`Plan::sacc_sole`]).
fn flush_sparse(ctx: &Ctx<'_>, part: &mut Partial, with_adj: bool, with_tan: bool) {
    let p = ctx.plan;
    for (i, &so) in p.sacc_off.iter().enumerate() {
        if so == UNSET || p.sacc_sole[i] {
            continue;
        }
        let n = &ctx.nodes[i];
        let b = n.b as usize;
        let nb = &ctx.nodes[b];
        let po = p.poff[b];
        for (want, dst, tangent) in [
            (
                with_adj && nb.grad && ctx.need_adj[b],
                &mut part.padj,
                false,
            ),
            (
                with_tan && nb.grad && ctx.need_tan[b],
                &mut part.padjt,
                true,
            ),
        ] {
            if want {
                add_accumulator(n, nb, &part.sacc[so..], tangent, &mut dst[po..]);
            }
        }
    }
}

/// Add a sparse data product's row-major gradient accumulator (`acc`, from its start), its
/// adjoint half or (`tangent`) its adjoint-tangent half, into `dst` in the layout of the right
/// operand `nb`.
fn add_accumulator(n: &Node, nb: &Node, acc: &[f64], tangent: bool, dst: &mut [f64]) {
    let (kc, k4) = (n.cols, n.cols.next_multiple_of(4));
    let (d, op_b) = rhs_layout(n, nb);
    let c0 = if tangent { k4 } else { 0 };
    for j in 0..d {
        let row = &acc[j * acc_stride(k4) + c0..][..kc];
        for (c, &v) in row.iter().enumerate() {
            dst[op_b(j, c)] += v;
        }
    }
}

/// The memory of the data rows `rows` of the data product `n`, for prefetching (`None` for
/// sample-major data, whose row blocks are not contiguous).
fn data_ahead<'a>(
    ctx: &Ctx<'a>,
    n: &Node,
    rows: Option<(usize, usize)>,
) -> Option<MatRef<'a, f64>> {
    let (r0, r) = rows?;
    let Op::Shared(k) = ctx.nodes[n.a as usize].op else {
        return None;
    };
    match n.op {
        Op::MatMul { ta: true, .. } => Some(ctx.shared.mat(k).as_ref().subcols(r0, r)),
        _ => None,
    }
}

/// The right operand `B` of the data product `n` (node `nb`) as the products read it, `op(B)`
/// (`Bᵀ` when the product transposes it): its rows `d`, and where its entry `(j, c)` lies in
/// `B`'s column-major storage.
fn rhs_layout(n: &Node, nb: &Node) -> (usize, impl Fn(usize, usize) -> usize + use<>) {
    let Op::MatMul { tb, .. } = n.op else {
        unreachable!("a data node is read by a product")
    };
    let rows = nb.rows;
    let d = if tb { nb.cols } else { rows };
    (
        d,
        move |j: usize, c: usize| {
            if tb { c + j * rows } else { j + c * rows }
        },
    )
}

/// The row stride of a row-major operand of the sparse products with `cols` columns: rounded up
/// to the kernels' four-column tiles, and a cache line more when that is a multiple of eight
/// cache lines, so that the rows a tile reads (one per nonzero feature) do not all fall in the
/// same few cache sets (a stride of 4 KiB, 256 columns and their tangents, left the weights'
/// rows fighting over 32 sets of the second-level cache).
fn row_stride(cols: usize) -> usize {
    let ld = cols.next_multiple_of(4);
    if ld.is_multiple_of(64) { ld + 8 } else { ld }
}

/// The row stride of a sparse product's gradient accumulator: an adjoint half and an adjoint
/// tangent half of `k4` columns each (see [`row_stride`]).
fn acc_stride(k4: usize) -> usize {
    row_stride(2 * k4)
}

/// The samples `r0 .. r0 + r` of a data product's data, in its sparse form.
fn sparse_block<'a>(ctx: &Ctx<'a>, n: &Node, r0: usize, r: usize) -> SparseBlock<'a> {
    let Op::Shared(k) = ctx.nodes[n.a as usize].op else {
        unreachable!("a data product reads a shared matrix")
    };
    ctx.shared
        .sparse(k)
        .expect("a sparse data product's data has its sparse form")
        .block(r0, r)
}

/// The rows `r0 .. r0 + r` of a data matrix as the left operand of its product, and the
/// product's transposition of the right operand.
fn data_block<'a>(ctx: &Ctx<'a>, n: &Node, r0: usize, r: usize) -> MatRef<'a, f64> {
    let Op::Shared(k) = ctx.nodes[n.a as usize].op else {
        unreachable!("a data product reads a shared matrix")
    };
    let Op::MatMul { ta, .. } = n.op else {
        unreachable!("a data node is read by a product")
    };
    let m = ctx.shared.mat(k).as_ref();
    if ta {
        m.subcols(r0, r).transpose()
    } else {
        m.subrows(r0, r)
    }
}

/// The right operand of a data product, as a view.
fn rhs<'a>(ctx: &Ctx<'a>, n: &Node, s: &'a [f64]) -> MatRef<'a, f64> {
    let nb = &ctx.nodes[n.b as usize];
    let Op::MatMul { tb, .. } = n.op else {
        unreachable!()
    };
    let v = view(s, nb.rows, nb.cols);
    if tb { v.transpose() } else { v }
}

/// Dimensions of node `n` for a block of `r` rows.
fn block_dims(ctx: &Ctx<'_>, i: usize, r: usize) -> Dims {
    let n = &ctx.nodes[i];
    let p = ctx.plan;
    let shape = |j: u32, s: Src| {
        let m = &ctx.nodes[j as usize];
        match s {
            Src::Block => (r, m.cols),
            _ => (m.rows, m.cols),
        }
    };
    let rows = if p.class[i] == Class::Row { r } else { n.rows };
    Dims {
        rows,
        cols: n.cols,
        a: shape(n.a, p.src[i][0]),
        b: shape(n.b, p.src[i][1]),
    }
}

/// An input's value for a block rule: its block rows from `block`, or the whole tensor.
#[inline]
fn input<'b>(ctx: &Ctx<'b>, block: &'b [f64], j: u32, s: Src, len: usize) -> &'b [f64] {
    match s {
        Src::Block => {
            let o = ctx.plan.boff[j as usize];
            &block[o..o + len]
        }
        _ => value_of(ctx.nodes, ctx.vals, ctx.shared, j),
    }
}

/// An input's tangent for a block rule (`None`: no input tangent reaches it).
#[inline]
fn input_tangent<'b>(
    ctx: &Ctx<'b>,
    block: &'b [f64],
    j: u32,
    s: Src,
    len: usize,
) -> Option<&'b [f64]> {
    let m = &ctx.nodes[j as usize];
    if !(ctx.tangents && m.live) {
        return None;
    }
    Some(match s {
        Src::Block => {
            let o = ctx.plan.boff[j as usize];
            &block[o..o + len]
        }
        _ => &ctx.tans[m.off..m.off + m.len()],
    })
}

/// The forward rules of the block rows `r0 .. r0 + r`: copy the sliced rows in, compute the
/// row nodes' values and tangents, and (with `accumulate`) add the reductions' partial sums.
fn block_forward(
    ctx: &Ctx<'_>,
    w: &mut Work,
    part: &mut Partial,
    r0: usize,
    r: usize,
    accumulate: bool,
    next: Option<(usize, usize)>,
) {
    let p = ctx.plan;
    for &i in &p.order {
        let i = i as usize;
        let n = ctx.nodes[i];
        let bo = p.boff[i];
        let live = ctx.tangents && n.live;
        if p.sliced[i] {
            // The block's rows of a parameter-sized node with one row per sample.
            for j in 0..n.cols {
                let at = n.off + j * n.rows + r0;
                w.bval[bo + j * r..bo + (j + 1) * r].copy_from_slice(&ctx.vals[at..at + r]);
                if live {
                    w.btan[bo + j * r..bo + (j + 1) * r].copy_from_slice(&ctx.tans[at..at + r]);
                }
            }
            continue;
        }
        let d = block_dims(ctx, i, r);
        let [sa, sb] = p.src[i];
        let len = d.rows * d.cols;
        if sa == Src::Data && p.srow_off[i] != UNSET {
            // Through the sparse form: `op(X)·[W Ẇ]` from the row-major pack.
            let x = sparse_block(ctx, &n, r0, r);
            let (o, ld) = (p.srow_off[i], p.srow_ld[i]);
            let b = &ctx.wrow[o..o + x.width() * ld];
            if live {
                sparse_mul(&mut w.ptmp[..2 * len], r, x, b, ld, 2 * n.cols);
                w.bval[bo..bo + len].copy_from_slice(&w.ptmp[..len]);
                w.btan[bo..bo + len].copy_from_slice(&w.ptmp[len..2 * len]);
            } else {
                sparse_mul(&mut w.bval[bo..bo + len], r, x, b, ld, n.cols);
            }
            continue;
        }
        if sa == Src::Data {
            let x = data_block(ctx, &n, r0, r);
            let nb = ctx.nodes[n.b as usize];
            let ahead = data_ahead(ctx, &n, next);
            if live && !ctx.need_val[i] {
                // No rule reads the value: the tangent product alone (the value block zeroed,
                // so that what is computed from it, and read by nothing, stays finite).
                w.bval[bo..bo + len].fill(0.0);
                let wt = rhs(ctx, &n, &ctx.tans[nb.off..nb.off + nb.len()]);
                let out = view_mut(&mut w.btan[bo..bo + len], r, n.cols);
                matmul_ahead(out, Accum::Replace, x, wt, ahead);
                continue;
            }
            let wv = rhs(ctx, &n, &ctx.vals[nb.off..nb.off + nb.len()]);
            let po = p.pair_off[i];
            if live && po != UNSET {
                // Value and tangent as one product with `[W Ẇ]`.
                let k2 = 2 * n.cols;
                let wp = view(&ctx.wpair[po..po + 2 * nb.len()], nb.rows, 2 * nb.cols);
                let out = view_mut(&mut w.ptmp[..r * k2], r, k2);
                matmul_ahead(out, Accum::Replace, x, wp, ahead);
                w.bval[bo..bo + len].copy_from_slice(&w.ptmp[..len]);
                w.btan[bo..bo + len].copy_from_slice(&w.ptmp[len..2 * len]);
                continue;
            }
            let out = view_mut(&mut w.bval[bo..bo + len], r, n.cols);
            // With a tangent, the tangent product (reading the block from cache) prefetches.
            matmul_ahead(out, Accum::Replace, x, wv, if live { None } else { ahead });
            if live {
                let wt = rhs(ctx, &n, &ctx.tans[nb.off..nb.off + nb.len()]);
                let out = view_mut(&mut w.btan[bo..bo + len], r, n.cols);
                matmul_ahead(out, Accum::Replace, x, wt, ahead);
            }
            continue;
        }
        let (la, lb) = (d.a.0 * d.a.1, d.b.0 * d.b.1);
        let ints = n.op.ints(ctx.ints, r0, d.rows);
        let aux_len = n.op.aux_len(d);
        let binary = n.op.is_binary();
        if p.class[i] == Class::Row {
            // A row node's inputs lie before it in the block buffers.
            let (vpre, vpost) = w.bval.split_at_mut(bo);
            let (vpre, out) = (&*vpre, &mut vpost[..len]);
            let aux = &mut w.baux[p.baux[i]..p.baux[i] + aux_len];
            n.op.value(ValueArgs {
                dims: d,
                a: input(ctx, vpre, n.a, sa, la),
                b: if binary {
                    input(ctx, vpre, n.b, sb, lb)
                } else {
                    &[]
                },
                out,
                aux,
                ints,
                scratch: &mut w.scratch,
                par: Par::Seq,
            });
            if live {
                let (tpre, tpost) = w.btan.split_at_mut(bo);
                let tpre = &*tpre;
                let args = RuleArgs {
                    dims: d,
                    a: input(ctx, vpre, n.a, sa, la),
                    b: if binary {
                        input(ctx, vpre, n.b, sb, lb)
                    } else {
                        &[]
                    },
                    y: &vpost[..len],
                    da: input_tangent(ctx, tpre, n.a, sa, la),
                    db: binary
                        .then(|| input_tangent(ctx, tpre, n.b, sb, lb))
                        .flatten(),
                    dy: &[],
                    ybar: &[],
                    dybar: &[],
                    aux: &w.baux[p.baux[i]..p.baux[i] + aux_len],
                    ints,
                    par: Par::Seq,
                };
                n.op.tangent(&args, &mut tpost[..len], &mut w.scratch);
            }
        } else {
            // A reduction: this block's partial sum, added to the chunk's.
            let (bval, btan) = (&w.bval[..], &w.btan[..]);
            let a = input(ctx, bval, n.a, sa, la);
            let b = if binary {
                input(ctx, bval, n.b, sb, lb)
            } else {
                &[]
            };
            n.op.value(ValueArgs {
                dims: d,
                a,
                b,
                out: &mut w.tmp[..len],
                aux: &mut [],
                ints,
                scratch: &mut w.scratch,
                par: Par::Seq,
            });
            let ro = p.roff[i];
            if accumulate {
                for (acc, v) in part.rval[ro..ro + len].iter_mut().zip(&w.tmp[..len]) {
                    *acc += v;
                }
            }
            if live {
                let args = RuleArgs {
                    dims: d,
                    a,
                    b,
                    y: &[],
                    da: input_tangent(ctx, btan, n.a, sa, la),
                    db: binary
                        .then(|| input_tangent(ctx, btan, n.b, sb, lb))
                        .flatten(),
                    dy: &[],
                    ybar: &[],
                    dybar: &[],
                    aux: &[],
                    ints,
                    par: Par::Seq,
                };
                n.op.tangent(&args, &mut w.tmp[..len], &mut w.scratch);
                if accumulate {
                    for (acc, v) in part.rtan[ro..ro + len].iter_mut().zip(&w.tmp[..len]) {
                        *acc += v;
                    }
                }
            }
        }
    }
}

/// The reverse rules of the block rows `r0 .. r0 + r` (of chunk `c0 .. c1`), after its forward
/// rules: adjoints flow from the reductions (whose adjoints are known) through the row nodes into
/// the chunk's partial sums of parameter adjoints and its rows of the sliced nodes' adjoints.
#[allow(clippy::too_many_arguments)]
fn block_reverse(
    ctx: &Ctx<'_>,
    w: &mut Work,
    part: &mut Partial,
    c0: usize,
    c1: usize,
    r0: usize,
    r: usize,
    with_adj: bool,
    with_tan: bool,
    next: Option<(usize, usize)>,
) {
    let p = ctx.plan;
    // Zero the block adjoints that rules will accumulate into.
    for &i in &p.order {
        let i = i as usize;
        let (bo, len) = (p.boff[i], r * ctx.nodes[i].cols);
        if bo == UNSET {
            continue; // a reduction: its adjoint is in the arena
        }
        if with_adj && ctx.need_adj[i] {
            w.badj[bo..bo + len].fill(0.0);
        }
        if with_tan && ctx.need_tan[i] {
            w.badjt[bo..bo + len].fill(0.0);
        }
    }
    for &i in p.order.iter().rev() {
        let i = i as usize;
        if p.sliced[i] {
            continue;
        }
        let n = ctx.nodes[i];
        if !(ctx.need_adj[i] || ctx.need_tan[i]) {
            continue;
        }
        let d = block_dims(ctx, i, r);
        let [sa, sb] = p.src[i];
        let binary = n.op.is_binary();
        let wants = |j: u32, s: Src| {
            let j = j as usize;
            let g = ctx.nodes[j].grad && s != Src::Data;
            (
                with_adj && g && ctx.need_adj[j],
                with_tan && g && ctx.need_tan[j],
            )
        };
        let (adj_a, tan_a) = wants(n.a, sa);
        let (adj_b, tan_b) = if binary {
            wants(n.b, sb)
        } else {
            (false, false)
        };
        if !(adj_a || adj_b || tan_a || tan_b) {
            continue;
        }
        let len = d.rows * d.cols;
        let is_row = p.class[i] == Class::Row;
        let bo = p.boff[i];
        // The node's own adjoint and adjoint tangent: a row node's in the block buffers (after
        // its inputs'), a reduction's in the arena.
        let (apre, ybar): (&mut [f64], &[f64]) = if is_row {
            let (a, b) = w.badj.split_at_mut(bo);
            (a, &b[..len])
        } else {
            (&mut w.badj[..], &ctx.adj[n.off..n.off + len])
        };
        let (tpre, dybar): (&mut [f64], &[f64]) = if !with_tan {
            (&mut [][..], &[][..])
        } else if is_row {
            let (a, b) = w.badjt.split_at_mut(bo);
            (a, &b[..len])
        } else {
            (&mut w.badjt[..], &ctx.adjt[n.off..n.off + len])
        };
        if sa == Src::Data && p.srow_off[i] != UNSET {
            // Through the sparse form, into the chunk's row-major accumulator (`d × 2k₄`:
            // adjoint, then adjoint tangent), added into the partial sums at the chunk's end.
            let x = sparse_block(ctx, &n, r0, r);
            let k4 = n.cols.next_multiple_of(4);
            let (so, lda) = (p.sacc_off[i], acc_stride(k4));
            let acc = &mut part.sacc[so..so + x.width() * lda];
            if adj_b && tan_b {
                // `[Ȳ 0 Ȳ̇ 0]`, the halves `k₄` columns apart, as one product.
                let l = r * k4;
                w.ptmp[..2 * l].fill(0.0);
                w.ptmp[..len].copy_from_slice(ybar);
                w.ptmp[l..l + len].copy_from_slice(dybar);
                sparse_t_mul_add(acc, lda, x, &w.ptmp[..2 * l], r, 2 * k4, &mut w.sparse);
            } else if adj_b {
                sparse_t_mul_add(acc, lda, x, ybar, r, n.cols, &mut w.sparse);
            } else if tan_b {
                sparse_t_mul_add(&mut acc[k4..], lda, x, dybar, r, n.cols, &mut w.sparse);
            }
            continue;
        }
        if sa == Src::Data {
            // The data product: its right operand's adjoints, in the chunk's partial sums.
            let x = data_block(ctx, &n, r0, r);
            let nb = ctx.nodes[n.b as usize];
            let Op::MatMul { tb, .. } = n.op else {
                unreachable!()
            };
            let po = p.poff[n.b as usize];
            let mut ahead = data_ahead(ctx, &n, next);
            if adj_b && tan_b && !tb && p.pair_off[i] != UNSET && 2 * nb.len() <= PAIR_GRAD_MAX {
                // Both as one product `op(X)ᵀ·[Ȳ Ȳ̇]`, then into the two partial sums.
                let (l, k2) = (r * n.cols, 2 * n.cols);
                w.ptmp[..l].copy_from_slice(ybar);
                w.ptmp[l..2 * l].copy_from_slice(dybar);
                let y2 = view(&w.ptmp[..2 * l], r, k2);
                let g = view_mut(&mut w.pgrad[..2 * nb.len()], nb.rows, 2 * nb.cols);
                matmul_ahead(g, Accum::Replace, x.transpose(), y2, ahead);
                let m = nb.len();
                for (d, s) in part.padj[po..po + m].iter_mut().zip(&w.pgrad[..m]) {
                    *d += s;
                }
                for (d, s) in part.padjt[po..po + m].iter_mut().zip(&w.pgrad[m..2 * m]) {
                    *d += s;
                }
                continue;
            }
            // `B̄ += op(X)ᵀ·Ȳ` (through `B`'s transposition), the first product prefetching
            // the next block.
            for (want, src, dst) in [
                (adj_b, ybar, &mut part.padj),
                (tan_b, dybar, &mut part.padjt),
            ] {
                if !want {
                    continue;
                }
                let d = view_mut(&mut dst[po..po + nb.len()], nb.rows, nb.cols);
                let d = if tb { d.transpose_mut() } else { d };
                let y = view(src, r, n.cols);
                matmul_ahead(d, Accum::Add, x.transpose(), y, ahead.take());
            }
            continue;
        }
        let (la, lb) = (d.a.0 * d.a.1, d.b.0 * d.b.1);
        let aux_len = n.op.aux_len(d);
        let bval = &w.bval[..];
        let btan = &w.btan[..];
        let args = RuleArgs {
            dims: d,
            a: input(ctx, bval, n.a, sa, la),
            b: if binary {
                input(ctx, bval, n.b, sb, lb)
            } else {
                &[]
            },
            y: if is_row { &bval[bo..bo + len] } else { &[] },
            da: if with_tan {
                input_tangent(ctx, btan, n.a, sa, la)
            } else {
                None
            },
            db: if with_tan && binary {
                input_tangent(ctx, btan, n.b, sb, lb)
            } else {
                None
            },
            dy: if with_tan && is_row && ctx.tangents && n.live {
                &btan[bo..bo + len]
            } else {
                &[]
            },
            ybar,
            dybar,
            aux: if is_row {
                &w.baux[p.baux[i]..p.baux[i] + aux_len]
            } else {
                &[]
            },
            ints: n.op.ints(ctx.ints, r0, d.rows),
            par: Par::Seq,
        };
        // Where an input's adjoint goes: its block rows, or the chunk's parameter partial.
        let sides = [
            (Side::A, n.a, sa, adj_a, tan_a),
            (Side::B, n.b, sb, adj_b, tan_b),
        ];
        for (side, j, s, adj, tan) in sides {
            let (jl, jo) = match s {
                Src::Block => (if side == Side::A { la } else { lb }, p.boff[j as usize]),
                _ => (ctx.nodes[j as usize].len(), p.poff[j as usize]),
            };
            if adj {
                let dst = match s {
                    Src::Block => &mut apre[jo..jo + jl],
                    _ => &mut part.padj[jo..jo + jl],
                };
                n.op.vjp(side, &args, dst, &mut w.scratch);
            }
            if tan {
                let dst = match s {
                    Src::Block => &mut tpre[jo..jo + jl],
                    _ => &mut part.padjt[jo..jo + jl],
                };
                n.op.vjp_tangent(side, &args, dst, &mut w.scratch);
            }
        }
    }
    // The block's rows of the sliced nodes' adjoints, into the chunk's rows.
    let rows = c1 - c0;
    for &i in &p.order {
        let i = i as usize;
        if !p.sliced[i] {
            continue;
        }
        let n = ctx.nodes[i];
        let (bo, so) = (p.boff[i], p.soff[i]);
        for j in 0..n.cols {
            let at = (so + j) * rows + (r0 - c0);
            if with_adj && ctx.need_adj[i] {
                let src = &w.badj[bo + j * r..bo + (j + 1) * r];
                for (d, s) in part.sadj[at..at + r].iter_mut().zip(src) {
                    *d += s;
                }
            }
            if with_tan && ctx.need_tan[i] {
                let src = &w.badjt[bo + j * r..bo + (j + 1) * r];
                for (d, s) in part.sadjt[at..at + r].iter_mut().zip(src) {
                    *d += s;
                }
            }
        }
    }
}

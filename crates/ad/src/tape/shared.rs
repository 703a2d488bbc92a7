//! Data matrices recorded by reference ([`Tape::shared`](super::Tape::shared)).
//!
//! A shared constant's value is the caller's matrix itself, read in place, or, when faer has
//! padded its columns (a row count that is not a multiple of the SIMD width), a contiguous copy
//! made once: the store keeps the copies of the last [`PACKED_KEEP`] such matrices across
//! [`SharedStore::clear`], keyed by the `Arc`, so re-recording a function copies nothing. The
//! streamed evaluation reads the matrix itself through its strides and never needs the copy.
//!
//! A streamed data matrix with few nonzero entries (at most [`SPARSE_MAX_DENSITY`] of them, as
//! image data has) is also kept by its samples' nonzero entries ([`SparseRows`]), built once per
//! `Arc` and orientation and kept like the copies (a matrix found too dense is remembered too, so
//! it is scanned once).

use bilevel_linalg::{Mat, SparseRows, as_contiguous_slice};
use std::sync::Arc;

/// Most padded matrices whose contiguous copies a tape keeps (and most data matrices whose sparse
/// forms it keeps).
const PACKED_KEEP: usize = 8;

/// A data matrix with at most this fraction of nonzero entries is streamed through its sparse
/// form. Per nonzero entry the sparse kernels do one multiply-add per result column with a row
/// of the weights read from cache, where the dense ones stream every entry; measured at
/// 2 threads (BENCHMARKS.md): on MNIST's 19 % nonzero pixels the sparse form takes a third to
/// two thirds of the dense time, on Fashion-MNIST's 49 % it takes 1.5 times it (softmax
/// regression gradient 2.5 against 4.2 ms dense, MLP-50 HVP pass 23 against 37 ms), so the
/// threshold sits between.
pub const SPARSE_MAX_DENSITY: f64 = 0.35;

/// A padded matrix and its contiguous copy.
type Kept = (Arc<Mat<f64>>, Arc<[f64]>);

/// A data matrix, whether its samples are its columns, and its sparse form (`None`: too dense).
type KeptSparse = (Arc<Mat<f64>>, bool, Option<Arc<SparseRows>>);

/// One shared constant of the current recording.
#[derive(Clone, Debug)]
pub(super) struct Entry {
    /// The caller's matrix.
    pub mat: Arc<Mat<f64>>,
    /// Its contiguous copy, for a padded matrix whose column-major slice is read (whole-tensor
    /// evaluation); made on first use.
    packed: Option<Arc<[f64]>>,
    /// Its sparse form by samples (`true`: one per column), when streamed and sparse enough.
    sparse: Option<(bool, Arc<SparseRows>)>,
}

/// The shared constants of a recording and the contiguous copies kept across recordings.
#[derive(Debug, Default)]
pub(super) struct SharedStore {
    entries: Vec<Entry>,
    /// Padded matrices and their contiguous copies, oldest first.
    kept: Vec<Kept>,
    /// Data matrices and their sparse forms, oldest first.
    kept_sparse: Vec<KeptSparse>,
    copies: u64,
    growths: u64,
}

impl SharedStore {
    /// Forget the recording's constants, keeping the copies.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// How many contiguous copies have been made.
    pub fn copies(&self) -> u64 {
        self.copies
    }

    /// Reallocations of the entry list.
    pub fn growths(&self) -> u64 {
        self.growths
    }

    /// Register `m`; returns its index.
    pub fn push(&mut self, m: &Arc<Mat<f64>>) -> u32 {
        if self.entries.len() == self.entries.capacity() {
            self.growths += 1;
        }
        let k = u32::try_from(self.entries.len()).expect("too many shared constants");
        self.entries.push(Entry {
            mat: Arc::clone(m),
            packed: None,
            sparse: None,
        });
        k
    }

    /// The matrix of constant `k`.
    pub fn mat(&self, k: u32) -> &Mat<f64> {
        &self.entries[k as usize].mat
    }

    /// Make constant `k` readable as one contiguous column-major slice (a copy for a padded
    /// matrix, made once per `Arc` and kept).
    pub fn make_contiguous(&mut self, k: u32) {
        let e = &self.entries[k as usize];
        if e.packed.is_some() || as_contiguous_slice(Mat::as_ref(&e.mat)).is_some() {
            return;
        }
        // The store holds a clone of the `Arc`, so the matrix cannot change while its copy is
        // kept, and its address cannot be reused by another matrix.
        let found = self.kept.iter().find(|(a, _)| Arc::ptr_eq(a, &e.mat));
        let p = match found {
            Some((_, p)) => Arc::clone(p),
            None => {
                let m = &e.mat;
                let mut v = Vec::with_capacity(m.nrows() * m.ncols());
                for j in 0..m.ncols() {
                    v.extend_from_slice(m.col_as_slice(j));
                }
                let p: Arc<[f64]> = v.into();
                if self.kept.len() == PACKED_KEEP {
                    self.kept.remove(0);
                }
                self.kept.push((Arc::clone(m), Arc::clone(&p)));
                self.copies += 1;
                p
            }
        };
        self.entries[k as usize].packed = Some(p);
    }

    /// Give constant `k` its sparse form by samples (one per column when `by_cols`) if at most
    /// [`SPARSE_MAX_DENSITY`] of its entries are nonzero; whether it has one.
    pub fn make_sparse(&mut self, k: u32, by_cols: bool) -> bool {
        let e = &self.entries[k as usize];
        if let Some((c, _)) = &e.sparse {
            return *c == by_cols;
        }
        let found = self
            .kept_sparse
            .iter()
            .find(|(a, c, _)| *c == by_cols && Arc::ptr_eq(a, &e.mat));
        let s = match found {
            Some((_, _, s)) => s.clone(),
            None => {
                let m = Mat::as_ref(&e.mat);
                let s = (SparseRows::density(m) <= SPARSE_MAX_DENSITY)
                    .then(|| {
                        if by_cols {
                            SparseRows::from_sample_cols(m)
                        } else {
                            SparseRows::from_sample_rows(m)
                        }
                    })
                    .flatten()
                    .map(Arc::new);
                if self.kept_sparse.len() == PACKED_KEEP {
                    self.kept_sparse.remove(0);
                }
                self.kept_sparse
                    .push((Arc::clone(&e.mat), by_cols, s.clone()));
                s
            }
        };
        let has = s.is_some();
        self.entries[k as usize].sparse = s.map(|s| (by_cols, s));
        has
    }

    /// The sparse form of constant `k` (see [`SharedStore::make_sparse`]).
    pub fn sparse(&self, k: u32) -> Option<&SparseRows> {
        self.entries[k as usize].sparse.as_ref().map(|(_, s)| &**s)
    }

    /// Constant `k` as one contiguous column-major slice.
    ///
    /// # Panics
    /// If the matrix is padded and [`SharedStore::make_contiguous`] was not called for it.
    pub fn contiguous(&self, k: u32) -> &[f64] {
        let e = &self.entries[k as usize];
        match &e.packed {
            Some(p) => p,
            None => as_contiguous_slice(Mat::as_ref(&e.mat))
                .expect("a padded shared matrix is made contiguous before it is read"),
        }
    }
}

//! Data matrices recorded by reference ([`Tape::shared`](super::Tape::shared)).
//!
//! A shared constant's value is the caller's matrix itself, read in place, or, when faer has
//! padded its columns (a row count that is not a multiple of the SIMD width), a contiguous copy
//! made once: the store keeps the copies of the last [`PACKED_KEEP`] such matrices across
//! [`SharedStore::clear`], keyed by the `Arc`, so re-recording a function copies nothing. The
//! streamed evaluation reads the matrix itself through its strides and never needs the copy.

use bilevel_linalg::{Mat, as_contiguous_slice};
use std::sync::Arc;

/// Most padded matrices whose contiguous copies a tape keeps.
const PACKED_KEEP: usize = 8;

/// A padded matrix and its contiguous copy.
type Kept = (Arc<Mat<f64>>, Arc<[f64]>);

/// One shared constant of the current recording.
#[derive(Clone, Debug)]
pub(super) struct Entry {
    /// The caller's matrix.
    pub mat: Arc<Mat<f64>>,
    /// Its contiguous copy, for a padded matrix whose column-major slice is read (whole-tensor
    /// evaluation); made on first use.
    packed: Option<Arc<[f64]>>,
}

/// The shared constants of a recording and the contiguous copies kept across recordings.
#[derive(Debug, Default)]
pub(super) struct SharedStore {
    entries: Vec<Entry>,
    /// Padded matrices and their contiguous copies, oldest first.
    kept: Vec<Kept>,
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

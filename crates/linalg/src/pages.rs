//! Large data matrices on huge pages.
//!
//! A streamed oracle reads its data matrix once per call, at the memory's bandwidth. On 4 KiB
//! pages the hardware prefetchers stop at every page boundary and each page costs a TLB entry;
//! on 2 MiB transparent huge pages a matrix of tens of megabytes streams without either (numpy
//! asks the same of Linux for its large arrays). Most Linux systems enable transparent huge
//! pages only for memory that asks (`/sys/kernel/mm/transparent_hugepage/enabled` reads
//! `madvise`), so [`advise_huge_pages`] asks, and collapses the pages already in place.

use crate::MatRef;

/// Matrices of fewer bytes than this are left alone (less than two huge pages).
const MIN_BYTES: usize = 4 << 20;

/// Ask the kernel to back the storage of `m` with transparent huge pages, and to collapse the
/// pages it already has into them now (`MADV_HUGEPAGE`, then `MADV_COLLAPSE` on Linux 6.1 and
/// later: about 3 ms per MiB the first time, nearly free when already done).
///
/// A hint only: the contents and every result computed from them stay the same, and where the
/// system declines (another operating system, an older kernel, huge pages turned off, a matrix
/// under 4 MiB or not contiguous) nothing happens. Returns whether the kernel accepted both
/// requests. Call it once, where a problem builds its data, not per oracle.
///
/// # Example
/// ```
/// use bilevel_linalg::{Mat, advise_huge_pages};
/// let data = Mat::<f64>::from_fn(1000, 1000, |i, j| (i + j) as f64);
/// let _accepted = advise_huge_pages(data.as_ref()); // 8 MB: asked on Linux
/// assert_eq!(data[(3, 4)], 7.0); // the contents are unchanged
/// ```
pub fn advise_huge_pages(m: MatRef<'_, f64>) -> bool {
    let (r, c) = (m.nrows(), m.ncols());
    let bytes = 8 * r * c;
    let contiguous = m.row_stride() == 1 && (c <= 1 || m.col_stride() == r as isize);
    if bytes < MIN_BYTES || !contiguous {
        return false;
    }
    advise(m.as_ptr() as usize, bytes)
}

#[cfg(target_os = "linux")]
fn advise(start: usize, bytes: usize) -> bool {
    /// `MADV_COLLAPSE` (Linux 6.1), not in every libc release.
    const MADV_COLLAPSE: libc::c_int = 25;
    const HUGE: usize = 2 << 20;
    // The whole huge pages inside the matrix's memory.
    let first = start.next_multiple_of(HUGE);
    let end = (start + bytes) / HUGE * HUGE;
    if end <= first {
        return false;
    }
    let (ptr, len) = (first as *mut libc::c_void, end - first);
    // SAFETY: the range lies inside memory the matrix owns and is page-aligned; these advice
    // values change how it is backed, never its contents.
    unsafe {
        libc::madvise(ptr, len, libc::MADV_HUGEPAGE) == 0
            && libc::madvise(ptr, len, MADV_COLLAPSE) == 0
    }
}

#[cfg(not(target_os = "linux"))]
fn advise(_start: usize, _bytes: usize) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Mat;

    #[test]
    fn small_or_strided_matrices_are_left_alone_and_contents_never_change() {
        let small = Mat::<f64>::from_fn(100, 100, |i, j| (i * 3 + j) as f64);
        assert!(!advise_huge_pages(small.as_ref()));
        let big = Mat::<f64>::from_fn(1200, 1000, |i, j| (i * 7 + j) as f64 - 0.5);
        let copy = big.clone();
        assert!(
            !advise_huge_pages(big.as_ref().transpose()),
            "not contiguous by columns"
        );
        assert!(
            !advise_huge_pages(big.as_ref().subrows(0, 600)),
            "a strided view"
        );
        let accepted = advise_huge_pages(big.as_ref());
        if cfg!(target_os = "linux") && !accepted {
            println!("the kernel declined huge pages here (older than 6.1, or turned off)");
        }
        assert_eq!(big, copy);
    }
}

//! What the AVX2 and AVX-512 kernels share: the prefetch schedule and the lane reduction.

use std::arch::x86_64::*;

/// Lines of memory to bring into the second-level cache while a kernel computes: the next
/// block of a streamed data matrix, spread over the kernel's inner steps so that the
/// requests overlap the arithmetic instead of stalling on the line-fill buffers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Prefetch {
    pub(crate) next: *const u8,
    pub(crate) end: *const u8,
    /// Lines per inner step.
    pub(crate) per_step: usize,
}

impl Prefetch {
    pub(crate) const NONE: Prefetch = Prefetch {
        next: std::ptr::null(),
        end: std::ptr::null(),
        per_step: 0,
    };

    /// Issue this step's prefetches.
    #[inline(always)]
    pub(crate) fn step(&mut self) {
        for _ in 0..self.per_step {
            if self.next >= self.end {
                return;
            }
            // SAFETY: `next` lies in the range the caller vouched for; a prefetch never
            // faults in any case.
            unsafe { _mm_prefetch::<_MM_HINT_T2>(self.next as *const i8) };
            self.next = self.next.wrapping_add(64);
        }
    }
}

/// The sum of eight lane sums held as two halves (lanes 0–3 in `lo`, 4–7 in `hi`), in one fixed
/// tree: `(lᵢ + hᵢ)` pairwise, then the two halves of that, then the last two. It is the order of
/// `_mm512_reduce_add_pd`, written out so that the AVX-512 and AVX2 kernels give the same bits.
#[inline]
#[target_feature(enable = "avx")]
pub(super) fn reduce_lanes(lo: __m256d, hi: __m256d) -> f64 {
    let s4 = _mm256_add_pd(lo, hi);
    let s2 = _mm_add_pd(_mm256_castpd256_pd128(s4), _mm256_extractf128_pd::<1>(s4));
    _mm_cvtsd_f64(_mm_add_sd(s2, _mm_unpackhi_pd(s2, s2)))
}

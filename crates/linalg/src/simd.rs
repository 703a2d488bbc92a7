//! Vectorized elementary functions for the elementwise work of data-sum losses.
//!
//! A softmax over a block of logits takes one `exp` per entry; the C maths library's scalar
//! `exp` costs about 5 ns, which on the softmax-regression workload (50,000 logits per oracle)
//! is a fifth of a whole forward pass. [`exp_diff_into`] evaluates eight at a time on AVX-512
//! (detected at run time) and falls back to the scalar `f64::exp` elsewhere.
//!
//! The vector `exp` reduces `x = k·ln 2 + r` with `|r| ≤ ln 2 / 2` (a two-part `ln 2`, so the
//! reduction is exact to about 2⁻¹⁰⁰), evaluates the degree-13 Taylor polynomial of `eʳ`
//! (truncation below 5·10⁻¹⁸, relative) by Horner's rule with fused multiply-adds, and scales by
//! `2ᵏ` through the exponent bits: within about one unit in the last place of the exact value
//! (tested against `f64::exp` to 2 ulp over the whole range). Lanes whose result would be
//! subnormal, overflow, or that are not finite take the scalar `f64::exp`.

/// `out[i] = exp(a[i] − b[i])`.
///
/// # Panics
/// If the three slices differ in length.
///
/// # Example
/// ```
/// let a = [0.0, 1.0, -2.0];
/// let mut out = [0.0; 3];
/// bilevel_linalg::exp_diff_into(&mut out, &a, &[0.0; 3]);
/// assert!((out[1] - std::f64::consts::E).abs() < 1e-15);
/// ```
pub fn exp_diff_into(out: &mut [f64], a: &[f64], b: &[f64]) {
    assert!(
        out.len() == a.len() && a.len() == b.len(),
        "exp_diff_into: lengths {}, {}, {} differ",
        out.len(),
        a.len(),
        b.len()
    );
    #[cfg(target_arch = "x86_64")]
    if crate::gemm::have_avx512() {
        // SAFETY: AVX-512F/VL/DQ were detected; the kernel reads and writes `len` entries of
        // slices that hold that many.
        unsafe { x86::exp_diff(out.as_mut_ptr(), a.as_ptr(), b.as_ptr(), out.len()) };
        return;
    }
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = (x - y).exp();
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// `1/j!` for `j = 13, 12, …, 0`, the Horner order.
    const TAYLOR: [f64; 14] = [
        1.0 / 6_227_020_800.0,
        1.0 / 479_001_600.0,
        1.0 / 39_916_800.0,
        1.0 / 3_628_800.0,
        1.0 / 362_880.0,
        1.0 / 40_320.0,
        1.0 / 5_040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ];
    const LOG2E: f64 = std::f64::consts::LOG2_E;
    /// `ln 2` split so that `k·LN2_HI` is exact for `|k| < 2¹¹`.
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
    /// The vector path covers `[LO, HI]`: results are normal numbers there.
    const LO: f64 = -708.0;
    const HI: f64 = 709.0;

    /// # Safety
    /// AVX-512F/VL/DQ must be available; `out`, `a`, `b` must be valid for `n` entries.
    #[target_feature(enable = "avx512f,avx512vl,avx512dq")]
    pub(super) unsafe fn exp_diff(out: *mut f64, a: *const f64, b: *const f64, n: usize) {
        let mut i = 0;
        // SAFETY: every access is at an index below `n`; the tail uses masked loads and stores.
        unsafe {
            while i < n {
                let m: __mmask8 = if n - i >= 8 {
                    0xff
                } else {
                    (1u8 << (n - i)) - 1
                };
                let x = _mm512_sub_pd(
                    _mm512_maskz_loadu_pd(m, a.add(i)),
                    _mm512_maskz_loadu_pd(m, b.add(i)),
                );
                let y = exp8(x);
                // Lanes outside the vector range (or NaN) take the scalar function.
                let inside = _mm512_cmp_pd_mask::<_CMP_GE_OQ>(x, _mm512_set1_pd(LO))
                    & _mm512_cmp_pd_mask::<_CMP_LE_OQ>(x, _mm512_set1_pd(HI));
                _mm512_mask_storeu_pd(out.add(i), m & inside, y);
                let rest = m & !inside;
                if rest != 0 {
                    for l in 0..8 {
                        if rest & (1 << l) != 0 {
                            *out.add(i + l) = (*a.add(i + l) - *b.add(i + l)).exp();
                        }
                    }
                }
                i += 8;
            }
        }
    }

    /// `eˣ` lane by lane for `x ∈ [LO, HI]` (other lanes are garbage).
    #[inline]
    #[target_feature(enable = "avx512f,avx512vl,avx512dq")]
    fn exp8(x: __m512d) -> __m512d {
        let k = _mm512_roundscale_pd::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm512_mul_pd(x, _mm512_set1_pd(LOG2E)),
        );
        let r = _mm512_fnmadd_pd(k, _mm512_set1_pd(LN2_HI), x);
        let r = _mm512_fnmadd_pd(k, _mm512_set1_pd(LN2_LO), r);
        let mut p = _mm512_set1_pd(TAYLOR[0]);
        for &c in &TAYLOR[1..] {
            p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(c));
        }
        // 2ᵏ from the exponent bits (k + 1023 is in 315..=1732 on the vector range).
        let e = _mm512_slli_epi64::<52>(_mm512_add_epi64(
            _mm512_cvtpd_epi64(k),
            _mm512_set1_epi64(1023),
        ));
        _mm512_mul_pd(p, _mm512_castsi512_pd(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f64, b: f64) -> u64 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs()
    }

    /// Within 2 ulp of `f64::exp` over the normal range, exact at the special values, and the
    /// scalar path beyond it.
    #[test]
    fn exp_matches_the_maths_library() {
        let mut xs: Vec<f64> = (0..200_001)
            .map(|i| -745.0 + 1455.0 * i as f64 / 200_000.0)
            .collect();
        xs.extend([
            0.0, -0.0, 1e-300, -1e-300, 0.5, -0.5, 700.0, -700.0, 709.7, -708.3,
        ]);
        xs.extend([
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            710.0,
            -746.0,
            -1e308,
        ]);
        let zeros = vec![0.0; xs.len()];
        let mut out = vec![0.0; xs.len()];
        exp_diff_into(&mut out, &xs, &zeros);
        for (&x, &y) in xs.iter().zip(&out) {
            let want = x.exp();
            if want.is_nan() {
                assert!(y.is_nan(), "exp({x}) = {y}");
            } else {
                assert!(ulps(y, want) <= 2, "exp({x}) = {y:e}, libm {want:e}");
            }
        }
        // Differences are taken before the exponential.
        let mut o = [0.0; 3];
        exp_diff_into(&mut o, &[1.0, 2.0, 3.0], &[1.0, 1.0, 1.0]);
        assert_eq!(o[0], 1.0);
        assert!(ulps(o[2], 2f64.exp()) <= 2);
    }
}

//! Vectorized elementary functions for the elementwise work of data-sum losses.
//!
//! A softmax over a block of logits takes one `exp` per entry; the C maths library's scalar
//! `exp` costs about 5 ns, which on the softmax-regression workload (50,000 logits per oracle)
//! is a fifth of a whole forward pass. [`exp_diff_into`] evaluates eight at a time on AVX-512,
//! four at a time on AVX2 with FMA (the same operations in the same order, so the same bits),
//! and falls back to the scalar `f64::exp` elsewhere.
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
    match crate::Simd::detect() {
        // SAFETY: the level's features were detected; the kernels read and write `len` entries
        // of slices that hold that many.
        crate::Simd::Avx512 => {
            unsafe { x86::exp_diff(out.as_mut_ptr(), a.as_ptr(), b.as_ptr(), out.len()) };
            return;
        }
        crate::Simd::Avx2 => {
            unsafe { x86::exp_diff4(out.as_mut_ptr(), a.as_ptr(), b.as_ptr(), out.len()) };
            return;
        }
        crate::Simd::None => {}
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

    /// [`exp_diff`] four lanes at a time, for AVX2 with FMA: the same operations lane by lane.
    ///
    /// # Safety
    /// AVX2 and FMA must be available; `out`, `a`, `b` must be valid for `n` entries.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn exp_diff4(out: *mut f64, a: *const f64, b: *const f64, n: usize) {
        let mut i = 0;
        // SAFETY: every access is at an index below `n`; the tail uses masked loads and stores.
        unsafe {
            while i < n {
                let left = n - i;
                let on = |l: usize| if l < left { -1i64 } else { 0 };
                let m = _mm256_setr_epi64x(on(0), on(1), on(2), on(3));
                let x = _mm256_sub_pd(
                    _mm256_maskload_pd(a.add(i), m),
                    _mm256_maskload_pd(b.add(i), m),
                );
                let y = exp4(x);
                let inside = _mm256_and_pd(
                    _mm256_cmp_pd::<_CMP_GE_OQ>(x, _mm256_set1_pd(LO)),
                    _mm256_cmp_pd::<_CMP_LE_OQ>(x, _mm256_set1_pd(HI)),
                );
                let store = _mm256_and_si256(m, _mm256_castpd_si256(inside));
                _mm256_maskstore_pd(out.add(i), store, y);
                let inside = _mm256_movemask_pd(inside) as u32;
                for l in 0..left.min(4) {
                    if inside & (1 << l) == 0 {
                        *out.add(i + l) = (*a.add(i + l) - *b.add(i + l)).exp();
                    }
                }
                i += 4;
            }
        }
    }

    /// [`exp8`] on four lanes. `2ᵏ` is built without a 64-bit conversion (AVX2 has none): `k` is
    /// an integer in `−1021..=1023` on the vector range, so `k + 1023 + 2⁵²` holds `k + 1023`
    /// in its low mantissa bits, which the shift moves into the exponent field.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn exp4(x: __m256d) -> __m256d {
        let k = _mm256_round_pd::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm256_mul_pd(x, _mm256_set1_pd(LOG2E)),
        );
        let r = _mm256_fnmadd_pd(k, _mm256_set1_pd(LN2_HI), x);
        let r = _mm256_fnmadd_pd(k, _mm256_set1_pd(LN2_LO), r);
        let mut p = _mm256_set1_pd(TAYLOR[0]);
        for &c in &TAYLOR[1..] {
            p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(c));
        }
        let biased = _mm256_add_pd(k, _mm256_set1_pd(1023.0 + 4_503_599_627_370_496.0));
        let e = _mm256_slli_epi64::<52>(_mm256_castpd_si256(biased));
        _mm256_mul_pd(p, _mm256_castsi256_pd(e))
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
    }

    /// The vector `exp` in its specified operations, one lane in scalar code (fused
    /// multiply-adds through `mul_add`).
    fn exp_in_specified_order(x: f64) -> f64 {
        let k = (x * std::f64::consts::LOG2_E).round_ties_even();
        let r = (-k).mul_add(f64::from_bits(0x3fe6_2e42_fee0_0000), x);
        let r = (-k).mul_add(f64::from_bits(0x3dea_39ef_3579_3c76), r);
        let mut fact = 1.0;
        let coef: Vec<f64> = (0..14)
            .map(|j| {
                if j > 0 {
                    fact *= j as f64;
                }
                1.0 / fact
            })
            .collect();
        let mut p = coef[13];
        for &c in coef[..13].iter().rev() {
            p = p.mul_add(r, c);
        }
        p * f64::from_bits(((k as i64 + 1023) as u64) << 52)
    }

    /// Every vector level gives the bits of the specified operations on the vector range (so
    /// the same bits on AVX2 as on AVX-512), and `f64::exp` outside it.
    #[test]
    fn the_vector_exp_gives_the_bits_of_its_specified_operations() {
        if crate::Simd::detect() == crate::Simd::None {
            return;
        }
        let xs: Vec<f64> = (0..100_003)
            .map(|i| -746.0 + 1457.0 * i as f64 / 100_002.0)
            .chain([0.0, -0.0, 1e-300, -708.0, 709.0, 709.5, -708.5, f64::NAN])
            .collect();
        let zeros = vec![0.0; xs.len()];
        let mut out = vec![0.0; xs.len()];
        exp_diff_into(&mut out, &xs, &zeros);
        for (&x, &y) in xs.iter().zip(&out) {
            let want = if (-708.0..=709.0).contains(&x) {
                exp_in_specified_order(x)
            } else {
                x.exp()
            };
            assert!(
                y.to_bits() == want.to_bits() || (y.is_nan() && want.is_nan()),
                "exp({x}) = {y:e}, specified {want:e}"
            );
        }
        // Every tail length.
        for n in 0..12 {
            let mut o = vec![0.0; n];
            exp_diff_into(&mut o, &xs[..n], &zeros[..n]);
            assert_eq!(o, out[..n]);
        }
    }

    #[test]
    fn differences_are_taken_first() {
        // Differences are taken before the exponential.
        let mut o = [0.0; 3];
        exp_diff_into(&mut o, &[1.0, 2.0, 3.0], &[1.0, 1.0, 1.0]);
        assert_eq!(o[0], 1.0);
        assert!(ulps(o[2], 2f64.exp()) <= 2);
    }
}

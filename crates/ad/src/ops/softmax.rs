//! Row-wise log-sum-exp, softmax, and softmax cross-entropy with integer labels.
//!
//! All three work on a column-major `n × k` tensor of logits `a`, one sample per row, and keep
//! the row probabilities `p = softmax(a)` (in the node's auxiliary storage, or as the output for
//! softmax). Every exponential is taken after subtracting the row maximum, so logits of size
//! 1e3 stay finite. With `s = ⟨p, ȧ⟩` per row:
//!
//! - log-sum-exp `yᵢ = log Σⱼ exp aᵢⱼ`: `ẏᵢ = sᵢ`, `āᵢⱼ += ȳᵢ pᵢⱼ`,
//!   `ā̇ᵢⱼ += ȳ̇ᵢ pᵢⱼ + ȳᵢ pᵢⱼ (ȧᵢⱼ − sᵢ)`
//! - cross-entropy `lᵢ = log Σⱼ exp aᵢⱼ − aᵢ,ᵧᵢ`: `l̇ᵢ = sᵢ − ȧᵢ,ᵧᵢ`,
//!   `āᵢⱼ += l̄ᵢ (pᵢⱼ − δⱼᵧᵢ)`, `ā̇ᵢⱼ += l̄̇ᵢ (pᵢⱼ − δⱼᵧᵢ) + l̄ᵢ pᵢⱼ (ȧᵢⱼ − sᵢ)`
//! - softmax `p`: `ṗ = p ⊙ (ȧ − s)`, `ā += p ⊙ (ȳ − ⟨ȳ, p⟩)`,
//!   `ā̇ += ṗ ⊙ (ȳ − ⟨ȳ, p⟩) + p ⊙ (ȳ̇ − ⟨ȳ̇, p⟩ − ⟨ȳ, ṗ⟩)`

/// Per-row dot products of two column-major `n`-row tensors: `out[i] = Σⱼ x[i, j] y[i, j]`.
fn row_dots(x: &[f64], y: &[f64], n: usize, out: &mut [f64]) {
    out.fill(0.0);
    for (xc, yc) in x.chunks_exact(n).zip(y.chunks_exact(n)) {
        for ((o, &u), &v) in out.iter_mut().zip(xc).zip(yc) {
            *o += u * v;
        }
    }
}

/// Fills `p` with the row softmax of `a` and `lse` with the row log-sum-exp.
/// `scratch` holds `n` entries.
pub(crate) fn softmax_lse(
    a: &[f64],
    n: usize,
    p: &mut [f64],
    lse: &mut [f64],
    scratch: &mut [f64],
) {
    let m = lse;
    m.fill(f64::NEG_INFINITY);
    for c in a.chunks_exact(n) {
        for (mi, &x) in m.iter_mut().zip(c) {
            *mi = mi.max(x);
        }
    }
    let s = scratch;
    s.fill(0.0);
    for (pc, ac) in p.chunks_exact_mut(n).zip(a.chunks_exact(n)) {
        bilevel_linalg::exp_diff_into(pc, ac, m);
        for (si, &e) in s.iter_mut().zip(pc.iter()) {
            *si += e;
        }
    }
    for pc in p.chunks_exact_mut(n) {
        for i in 0..n {
            pc[i] /= s[i];
        }
    }
    for i in 0..n {
        m[i] += s[i].ln();
    }
}

/// Value of the cross-entropy: `out[i] = lse[i] − a[i, labels[i]]`, with `p` filled as for
/// [`softmax_lse`].
pub(crate) fn xent_forward(
    a: &[f64],
    labels: &[u32],
    n: usize,
    p: &mut [f64],
    out: &mut [f64],
    scratch: &mut [f64],
) {
    softmax_lse(a, n, p, out, scratch);
    for (i, (o, &l)) in out.iter_mut().zip(labels).enumerate() {
        *o -= a[l as usize * n + i];
    }
}

/// JVP of log-sum-exp (`labels = None`) or cross-entropy (`Some`).
pub(crate) fn lse_tangent(p: &[f64], da: &[f64], labels: Option<&[u32]>, n: usize, dy: &mut [f64]) {
    row_dots(p, da, n, dy);
    if let Some(labels) = labels {
        for (i, (d, &l)) in dy.iter_mut().zip(labels).enumerate() {
            *d -= da[l as usize * n + i];
        }
    }
}

/// VJP of log-sum-exp or cross-entropy.
pub(crate) fn lse_vjp(p: &[f64], ybar: &[f64], labels: Option<&[u32]>, n: usize, abar: &mut [f64]) {
    for (ac, pc) in abar.chunks_exact_mut(n).zip(p.chunks_exact(n)) {
        for i in 0..n {
            ac[i] += ybar[i] * pc[i];
        }
    }
    if let Some(labels) = labels {
        for (i, (&y, &l)) in ybar.iter().zip(labels).enumerate() {
            abar[l as usize * n + i] -= y;
        }
    }
}

/// VJP tangent of log-sum-exp or cross-entropy (a missing `ȧ` is zero). `scratch` holds `n`
/// entries.
#[allow(clippy::too_many_arguments)]
pub(crate) fn lse_vjp_tangent(
    p: &[f64],
    da: Option<&[f64]>,
    ybar: &[f64],
    dybar: &[f64],
    labels: Option<&[u32]>,
    n: usize,
    dabar: &mut [f64],
    scratch: &mut [f64],
) {
    match da {
        Some(da) => {
            let s = scratch;
            row_dots(p, da, n, s);
            for ((dc, pc), ac) in dabar
                .chunks_exact_mut(n)
                .zip(p.chunks_exact(n))
                .zip(da.chunks_exact(n))
            {
                for i in 0..n {
                    dc[i] += dybar[i] * pc[i] + ybar[i] * pc[i] * (ac[i] - s[i]);
                }
            }
        }
        None => {
            for (dc, pc) in dabar.chunks_exact_mut(n).zip(p.chunks_exact(n)) {
                for i in 0..n {
                    dc[i] += dybar[i] * pc[i];
                }
            }
        }
    }
    if let Some(labels) = labels {
        for (i, (&y, &l)) in dybar.iter().zip(labels).enumerate() {
            dabar[l as usize * n + i] -= y;
        }
    }
}

/// JVP of softmax: `ṗ = p ⊙ (ȧ − ⟨p, ȧ⟩)`.
pub(crate) fn softmax_tangent(
    p: &[f64],
    da: &[f64],
    n: usize,
    dp: &mut [f64],
    scratch: &mut [f64],
) {
    let s = scratch;
    row_dots(p, da, n, s);
    for ((dc, pc), ac) in dp
        .chunks_exact_mut(n)
        .zip(p.chunks_exact(n))
        .zip(da.chunks_exact(n))
    {
        for i in 0..n {
            dc[i] = pc[i] * (ac[i] - s[i]);
        }
    }
}

/// VJP of softmax: `ā += p ⊙ (ȳ − ⟨ȳ, p⟩)`.
pub(crate) fn softmax_vjp(
    p: &[f64],
    ybar: &[f64],
    n: usize,
    abar: &mut [f64],
    scratch: &mut [f64],
) {
    let s = scratch;
    row_dots(p, ybar, n, s);
    for ((ac, pc), yc) in abar
        .chunks_exact_mut(n)
        .zip(p.chunks_exact(n))
        .zip(ybar.chunks_exact(n))
    {
        for i in 0..n {
            ac[i] += pc[i] * (yc[i] - s[i]);
        }
    }
}

/// VJP tangent of softmax: `ā̇ += ṗ ⊙ (ȳ − ⟨ȳ, p⟩) + p ⊙ (ȳ̇ − ⟨ȳ̇, p⟩ − ⟨ȳ, ṗ⟩)` (a missing
/// `ṗ` is zero: the input has no tangent). `s1` and `s2` hold `n` entries each.
#[allow(clippy::too_many_arguments)]
pub(crate) fn softmax_vjp_tangent(
    p: &[f64],
    dp: Option<&[f64]>,
    ybar: &[f64],
    dybar: &[f64],
    n: usize,
    dabar: &mut [f64],
    s1: &mut [f64],
    s2: &mut [f64],
) {
    row_dots(p, ybar, n, s1);
    row_dots(p, dybar, n, s2);
    let Some(dp) = dp else {
        for ((oc, pc), dyc) in dabar
            .chunks_exact_mut(n)
            .zip(p.chunks_exact(n))
            .zip(dybar.chunks_exact(n))
        {
            for i in 0..n {
                oc[i] += pc[i] * (dyc[i] - s2[i]);
            }
        }
        return;
    };
    // s2 += ⟨ȳ, ṗ⟩
    for (yc, dc) in ybar.chunks_exact(n).zip(dp.chunks_exact(n)) {
        for i in 0..n {
            s2[i] += yc[i] * dc[i];
        }
    }
    for k in 0..dabar.len() / n {
        let r = k * n..(k + 1) * n;
        let (oc, pc, dpc, yc, dyc) = (
            &mut dabar[r.clone()],
            &p[r.clone()],
            &dp[r.clone()],
            &ybar[r.clone()],
            &dybar[r],
        );
        for i in 0..n {
            oc[i] += dpc[i] * (yc[i] - s1[i]) + pc[i] * (dyc[i] - s2[i]);
        }
    }
}

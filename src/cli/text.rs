//! How the program writes numbers and constants in its tables and listings.

use crate::solvers::Smoothness;

/// A number in 4 significant digits (integers as they are).
pub fn fmt(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 || (v.fract() == 0.0 && a < 1e9) {
        format!("{v:.0}")
    } else if (1e-3..1e5).contains(&a) {
        let decimals = (3 - a.log10().floor() as i32).max(0) as usize;
        format!("{v:.decimals$}")
    } else {
        format!("{v:.3e}")
    }
}

/// A constant in four significant digits, without trailing zeros.
fn short(v: f64) -> String {
    let t = fmt(v);
    if t.contains('.') && !t.contains('e') {
        t.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        t
    }
}

/// The constants as one line, e.g. `L_g = 100, μ_g = 1, L_f = 49.2`.
pub fn constants_text(c: &Smoothness) -> String {
    let mut parts = vec![format!("L_g = {}", short(c.l_g))];
    for (name, v) in [
        ("μ_g", c.mu_g),
        ("L_g,xy", c.l_g_xy),
        ("L_f", c.l_f),
        ("L_h", c.l_h),
        ("L_Φ", c.l_phi),
    ] {
        if let Some(v) = v {
            parts.push(format!("{name} = {}", short(v)));
        }
    }
    parts.join(", ")
}

//! Problem-aware defaults: step sizes that `bilevel run` derives from the smoothness constants a
//! problem states ([`Smoothness`]), for the parameters the papers tie to those constants.
//!
//! The solvers' own defaults ([`registry::solver_defaults`](super::registry::solver_defaults))
//! are fixed numbers that do not know the problem; on sc-sincos, whose lower level has
//! `L_g = 100`, several of them diverge within ten iterations. A rule here replaces a default
//! only when the problem states the constants it needs and the user did not `--set` the key
//! (or, for a pair chosen together, its partner); every replacement is recorded as a
//! [`Derived`] in the run's `run.json` and `summary.md`.

use super::CliError;
use crate::solvers::Smoothness;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A solver parameter whose default came from the problem's constants.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Derived {
    /// The `--set` key.
    pub key: String,
    /// The value used.
    pub value: f64,
    /// The rule and where it comes from.
    pub rule: String,
}

/// What a rule sees: the constants, the iteration budget and the parameters so far.
#[derive(Clone, Copy, Debug)]
pub struct Ctx<'a> {
    /// The problem's constants (the worst case over the run's seeds).
    pub c: &'a Smoothness,
    /// `K`, the run's iteration cap as given by `--iters`; `None` when only a time budget stops
    /// the run (the rules that need `K` then do not apply).
    pub iters: Option<u64>,
    /// The solver's parameters with the earlier rules applied.
    pub params: &'a Value,
}

/// One rule: a key, its formula and source, and how to compute it.
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    /// The `--set` key it sets.
    pub key: &'static str,
    /// The formula and its source, as shown by `bilevel list` and recorded in `run.json`.
    pub text: &'static str,
    /// The rule does not apply when one of these keys was set (parameters the theorem chooses
    /// together with this one).
    pub unless_set: &'static [&'static str],
    /// The value, or `None` when the problem lacks a constant it needs.
    pub value: fn(&Ctx<'_>) -> Option<f64>,
}

fn inv_l_g(c: &Ctx<'_>) -> Option<f64> {
    (c.c.l_g > 0.0).then(|| 1.0 / c.c.l_g)
}

fn inv_l_g_sq(c: &Ctx<'_>) -> Option<f64> {
    inv_l_g(c).map(|v| v * v)
}

fn half_inv_l_phi(c: &Ctx<'_>) -> Option<f64> {
    c.c.l_phi.filter(|l| *l > 0.0).map(|l| 0.5 / l)
}

/// PGD-QP's `ρ = ‖∇h‖√h₀` choice selects Corollary 4.6 over Theorem 4.2.
fn pgdqp_cor46(c: &Ctx<'_>) -> bool {
    c.params.get("rho").and_then(Value::as_str) == Some("GradNormSqrtH0")
}

fn pgdqp_alpha(c: &Ctx<'_>) -> Option<f64> {
    let k = c.iters?.max(1) as f64;
    if pgdqp_cor46(c) {
        c.c.l_f.map(|_| k.powf(-1.0 / 6.0))
    } else {
        c.c.l_f.zip(c.c.l_h).map(|_| k.powf(-1.0 / 3.0))
    }
}

fn pgdqp_gamma(c: &Ctx<'_>) -> Option<f64> {
    let l_f = c.c.l_f?;
    if pgdqp_cor46(c) {
        let k = c.iters?.max(1) as f64;
        Some(k.powf(-2.0 / 3.0).min(1.0 / l_f))
    } else {
        let a = c.params.get("alpha")?.as_f64()?;
        Some(a.min(1.0 / (l_f + a * c.c.l_h?)))
    }
}

const INNER: &str = "1/L_g: gradient descent on the L_g-smooth g(x, ·)";
const OUTER: &str = "1/(2 L_Φ): a gradient step on the L_Φ-smooth Φ (our choice, not a theorem's)";

const AID: &[Rule] = &[
    Rule {
        key: "alpha",
        text: "1/L_g (single-loop AID/ITD paper, Theorem 1: α = 1/L)",
        unless_set: &[],
        value: inv_l_g,
    },
    Rule {
        key: "eta",
        text: "1/L_g (same paper, Theorem 1: η = 1/L)",
        unless_set: &[],
        value: inv_l_g,
    },
    Rule {
        key: "beta",
        text: "1/(2 L_Φ): a gradient step on the L_Φ-smooth Φ (our choice: Theorem 1's β, from \
               Lemma 4, is of order κ⁻⁵ and needs the Hessian-Lipschitz constant ρ)",
        unless_set: &[],
        value: half_inv_l_phi,
    },
];

const ITD: &[Rule] = &[
    Rule {
        key: "alpha",
        text: "1/L_g (single-loop AID/ITD paper, Theorem 3: α = 1/L)",
        unless_set: &[],
        value: inv_l_g,
    },
    Rule {
        key: "beta",
        text: "1/(2 L_Φ): a gradient step on the L_Φ-smooth Φ (our choice: Theorem 3 asks \
               β ≤ μ³/(2L(2L² + ρM)), which needs ρ and M)",
        unless_set: &[],
        value: half_inv_l_phi,
    },
];

const PGDQP: &[Rule] = &[
    Rule {
        key: "alpha",
        text: "K^(-1/3) for K = --iters (PGD-QP paper, Theorem 4.2; K^(-1/6) by Corollary 4.6 \
               when rho = GradNormSqrtH0); not applied under a time budget without --iters",
        unless_set: &["gamma"],
        value: pgdqp_alpha,
    },
    Rule {
        key: "gamma",
        text: "min{α, 1/(L_f + α L_h)} (PGD-QP paper, Theorem 4.2; min{K^(-2/3), 1/L_f} by \
               Corollary 4.6 when rho = GradNormSqrtH0)",
        unless_set: &[],
        value: pgdqp_gamma,
    },
    Rule {
        key: "warm_start_step",
        text: INNER,
        unless_set: &[],
        value: inv_l_g,
    },
];

const GALET: &[Rule] = &[
    Rule {
        key: "alpha",
        text: OUTER,
        unless_set: &[],
        value: half_inv_l_phi,
    },
    Rule {
        key: "beta",
        text: "1/L_g (GALET paper, Lemma 4: β ≤ 1/ℓ_g,1)",
        unless_set: &[],
        value: inv_l_g,
    },
    Rule {
        key: "rho",
        text: "1/L_g² (GALET paper, Lemma 5: ρ ≤ 1/ℓ_g,1²)",
        unless_set: &[],
        value: inv_l_g_sq,
    },
];

const HYPERGRADIENT: &[Rule] = &[
    Rule {
        key: "alpha",
        text: INNER,
        unless_set: &[],
        value: inv_l_g,
    },
    Rule {
        key: "beta",
        text: OUTER,
        unless_set: &[],
        value: half_inv_l_phi,
    },
];

const VALUE_FUNCTION: &[Rule] = &[Rule {
    key: "inner_step",
    text: INNER,
    unless_set: &[],
    value: inv_l_g,
}];

/// V-PBGD's step on `f + γ(g − g*)`: with `L` a bound on the whole Hessian of `g`,
/// `‖∇²g*‖ ≤ L + L²/μ_g` (the implicit function theorem), so that sum is
/// `L_f + γ(2L + L²/μ_g)`-smooth. Problems that do not bound the whole Hessian get no rule.
fn vpbgd_alpha(c: &Ctx<'_>) -> Option<f64> {
    let gamma = c.params.get("gamma")?.as_f64()?;
    let (l, mu, l_f) = (c.c.l_g_xy?, c.c.mu_g?, c.c.l_f?);
    (mu > 0.0).then(|| 1.0 / (l_f + gamma * (2.0 * l + l * l / mu)))
}

const VPBGD: &[Rule] = &[
    Rule {
        key: "inner_step",
        text: INNER,
        unless_set: &[],
        value: inv_l_g,
    },
    Rule {
        key: "alpha",
        text: "1/(L_f + γ(2L + L²/μ_g)), L bounding the whole Hessian of g: a gradient step on \
               f + γ(g − g*), whose smoothness this bounds (our bound; V-PBGD's paper leaves the \
               constant implicit)",
        unless_set: &[],
        value: vpbgd_alpha,
    },
];

/// F²SA's and F³SA's initial `y` step: their defaults (`α₀ = 0.01`, `γ₀ = 1`) are for
/// `l_{g,1} = 1` and are divided by `L_g` otherwise.
fn f2sa_alpha0(c: &Ctx<'_>) -> Option<f64> {
    inv_l_g(c).map(|v| 0.01 * v)
}

const F2SA: &[Rule] = &[
    Rule {
        key: "gamma0",
        text: "1/L_g: gradient steps on the L_g-smooth g(x, ·) for z (F²SA slides: γ_k bounded by \
               the problem constants, constant for exact gradients)",
        unless_set: &[],
        value: inv_l_g,
    },
    Rule {
        key: "alpha0",
        text: "0.01/L_g: the default α₀ = 0.01 for L_g = 1, scaled (α_kλ_k ≲ 1/L_g)",
        unless_set: &[],
        value: f2sa_alpha0,
    },
];

/// The rules of `solver`, in the order they apply (empty for solvers without any).
pub fn rules(solver: &str) -> &'static [Rule] {
    match solver {
        "aid-single-loop" => AID,
        "itd-single-loop" => ITD,
        "pgd-qp" => PGDQP,
        "galet" => GALET,
        "aidbio" | "rhg" => HYPERGRADIENT,
        "bome" => VALUE_FUNCTION,
        "f2sa" | "f3sa" => F2SA,
        "v-pbgd" => VPBGD,
        _ => &[],
    }
}

/// Apply the rules of `solver` to `params` for the keys not in `explicit`.
///
/// # Errors
/// A derived value that is not finite (a constant of zero where a rule divides by it).
pub fn derive(
    solver: &str,
    params: &mut Value,
    explicit: &[String],
    c: &Smoothness,
    iters: Option<u64>,
) -> Result<Vec<Derived>, CliError> {
    let mut out = Vec::new();
    for r in rules(solver) {
        let set = |k: &str| explicit.iter().any(|e| e == k);
        if set(r.key) || r.unless_set.iter().any(|k| set(k)) {
            continue;
        }
        let ctx = Ctx {
            c,
            iters,
            params: &*params,
        };
        let Some(v) = (r.value)(&ctx) else { continue };
        let num = serde_json::Number::from_f64(v).ok_or_else(|| {
            CliError::new(format!(
                "solver {solver}: the default of `{}` from the problem's constants is not finite; \
                 --set it",
                r.key
            ))
        })?;
        if let Some(slot) = params.get_mut(r.key) {
            *slot = Value::Number(num);
            out.push(Derived {
                key: r.key.to_string(),
                value: v,
                rule: r.text.to_string(),
            });
        }
    }
    Ok(out)
}

/// A constant in four significant digits, without trailing zeros.
fn short(v: f64) -> String {
    let t = super::run::fmt(v);
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

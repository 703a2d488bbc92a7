//! Step sizes from smoothness: each algorithm's parameter struct states, next to the algorithm,
//! which of its parameters the theory ties to the problem's constants ([`Smoothness`]) and how
//! ([`StepRules`]); this module holds what those rules share.
//!
//! # Example: the rules of single-loop AID on sc-sincos
//! ```
//! use bilevel_solvers::algorithms::SingleLoopAidParams;
//! use bilevel_solvers::problems::ScSinCos;
//! use bilevel_solvers::{Problem, StepRules};
//!
//! let c = ScSinCos::default().smoothness().unwrap(); // L_g = 100
//! let (params, derived) = SingleLoopAidParams::from_smoothness(&c, None);
//! assert_eq!((params.alpha, params.eta), (0.01, 0.01)); // 1/L_g, Theorem 1
//! assert_eq!(derived.len(), 3);
//! assert!(derived[0].rule.contains("Theorem 1"));
//! ```

use crate::problem::Smoothness;
use serde::{Deserialize, Serialize};

/// A parameter whose value a rule derived from the problem's constants.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Derived {
    /// The parameter (its `--set` key).
    pub key: String,
    /// The value used.
    pub value: f64,
    /// The rule and where it comes from.
    pub rule: String,
}

/// What a rule sees: the constants, the run's horizon and the parameters so far.
#[derive(Clone, Copy, Debug)]
pub struct Ctx<'a, P> {
    /// The problem's constants (for several instances, such as seeds, the worst case:
    /// [`Smoothness::worst`]).
    pub c: &'a Smoothness,
    /// `K`, the number of iterations the run is planned for; `None` when nothing caps it (a run
    /// stopped by a time budget alone), and the rules that need `K` then do not apply.
    pub horizon: Option<u64>,
    /// The parameters with the earlier rules applied.
    pub params: &'a P,
}

/// One rule: the parameter it sets, its formula and source, and how to compute and set it.
#[derive(Debug)]
pub struct Rule<P: 'static> {
    /// The parameter's key.
    pub key: &'static str,
    /// The formula and its source, as `bilevel list` shows it and runs record it.
    pub text: &'static str,
    /// The rule does not apply when one of these keys was fixed by the user (parameters the
    /// theorem chooses together with this one).
    pub unless_set: &'static [&'static str],
    /// The value, or `None` when the problem lacks a constant it needs.
    pub value: fn(&Ctx<'_, P>) -> Option<f64>,
    /// Store a value into the parameters.
    pub set: fn(&mut P, f64),
}

/// A parameter struct whose theory-backed step sizes follow from a problem's smoothness
/// constants. The solvers' `Default`s are fixed numbers that do not know the problem (on
/// sc-sincos, with `L_g = 100`, several diverge within ten iterations); these rules replace
/// them by what the papers (or, where they say so, our own bounds) prescribe.
pub trait StepRules: Sized + 'static {
    /// The rules, in the order they apply (a later rule sees the values of the earlier ones).
    fn rules() -> &'static [Rule<Self>] {
        &[]
    }

    /// Apply the rules to `self` for the parameters not in `fixed` (those a user chose), for a
    /// run of `horizon` iterations; the parameters set, with their rules. A rule applies when
    /// the problem states the constants it needs and it gives a finite, positive value.
    fn derive(&mut self, c: &Smoothness, horizon: Option<u64>, fixed: &[&str]) -> Vec<Derived> {
        let mut out = Vec::new();
        for r in Self::rules() {
            if fixed.contains(&r.key) || r.unless_set.iter().any(|k| fixed.contains(k)) {
                continue;
            }
            let ctx = Ctx {
                c,
                horizon,
                params: &*self,
            };
            let Some(v) = (r.value)(&ctx).filter(|v| v.is_finite() && *v > 0.0) else {
                continue;
            };
            (r.set)(self, v);
            out.push(Derived {
                key: r.key.to_string(),
                value: v,
                rule: r.text.to_string(),
            });
        }
        out
    }

    /// The default parameters with every rule applied, and what the rules set.
    fn from_smoothness(c: &Smoothness, horizon: Option<u64>) -> (Self, Vec<Derived>)
    where
        Self: Default,
    {
        let mut p = Self::default();
        let d = p.derive(c, horizon, &[]);
        (p, d)
    }
}

/// `1/L_g`: gradient descent on the `L_g`-smooth `g(x, ·)`.
pub(crate) fn inv_l_g<P>(c: &Ctx<'_, P>) -> Option<f64> {
    (c.c.l_g > 0.0).then(|| 1.0 / c.c.l_g)
}

/// `1/(2L_Φ)`: a gradient step on the `L_Φ`-smooth `Φ`.
pub(crate) fn half_inv_l_phi<P>(c: &Ctx<'_, P>) -> Option<f64> {
    c.c.l_phi.filter(|l| *l > 0.0).map(|l| 0.5 / l)
}

/// The text of [`inv_l_g`] for an inner (lower-level) step.
pub(crate) const INNER: &str = "1/L_g: gradient descent on the L_g-smooth g(x, ·)";
/// The text of [`half_inv_l_phi`] for an outer step.
pub(crate) const OUTER: &str =
    "1/(2 L_Φ): a gradient step on the L_Φ-smooth Φ (our choice, not a theorem's)";

/// The text of [`inv_l_g`] for the step `η` of a Neumann series of `[∇²ᵧᵧg]⁻¹`.
pub(crate) const NEUMANN: &str = "1/L_g: 0 ⪯ I − η∇²ᵧᵧg ≺ I for the L_g-smooth, strongly convex g(x, ·), so the Neumann series converges";
/// The text of [`inv_l_g`] for the step of SGD on the linear system `∇²ᵧᵧg·v = ∇ᵧf`.
pub(crate) const LINEAR: &str =
    "1/L_g: gradient descent on ½vᵀ∇²ᵧᵧg v − ∇ᵧfᵀv, whose Hessian ∇²ᵧᵧg ⪯ L_g I";

/// The step `1/L_g` for the parameter `key`, with the rule's text.
macro_rules! l_g_rule {
    ($p:ty, $key:ident, $text:expr) => {
        $crate::rules::Rule::<$p> {
            key: stringify!($key),
            text: $text,
            unless_set: &[],
            value: $crate::rules::inv_l_g,
            set: |p, v| p.$key = v,
        }
    };
}
pub(crate) use l_g_rule;

/// An inner step `1/L_g` for the parameter `key`.
macro_rules! inner_rule {
    ($p:ty, $key:ident) => {
        $crate::rules::l_g_rule!($p, $key, $crate::rules::INNER)
    };
}
pub(crate) use inner_rule;

/// An outer step `1/(2L_Φ)` for the parameter `key`.
macro_rules! outer_rule {
    ($p:ty, $key:ident) => {
        $crate::rules::Rule::<$p> {
            key: stringify!($key),
            text: $crate::rules::OUTER,
            unless_set: &[],
            value: $crate::rules::half_inv_l_phi,
            set: |p, v| p.$key = v,
        }
    };
}
pub(crate) use outer_rule;

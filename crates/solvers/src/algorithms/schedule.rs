//! The schedules the F²SA family shares: an offset `k₀ ≥ 1` and polynomial decays in
//! `r_k = (k + k₀)/k₀` ([`Decay`]), and the step and penalty schedule of F²SA and F³SA
//! ([`PenaltySchedule`]), with its validation and step-size rules written once; and the steps
//! `c/(k + 1)^a` of SOBA, BSA and TTSA (`decayed`).

use crate::error::{Error, check, check_pos};
use serde::{Deserialize, Serialize};

/// The offset polynomial decay `r_k = (k + k₀)/k₀` of the F²SA family's schedules: a quantity
/// with initial value `v₀` and exponent `p` is `v₀ r_k^{−p}` at iteration `k`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Decay {
    k0: f64,
}

impl Decay {
    /// The decay with offset `k0` (validated by [`check_offset`]).
    pub(crate) fn new(k0: f64) -> Self {
        Decay { k0 }
    }

    /// `r_k = (k + k₀)/k₀`.
    pub(crate) fn r(self, k: u64) -> f64 {
        (k as f64 + self.k0) / self.k0
    }

    /// `1/r_k = k₀/(k + k₀)`, computed as written (the two-loop method's form).
    pub(crate) fn inv_r(self, k: u64) -> f64 {
        self.k0 / (k as f64 + self.k0)
    }
}

/// The step `c/(k + 1)^a` at iteration `k` (from 0) of a schedule with initial step `c` and
/// decay exponent `a` (SOBA's, and the benchmark's `update_lr`): constant for `a = 0`.
pub(crate) fn decayed(c: f64, a: f64, k: u64) -> f64 {
    c / ((k + 1) as f64).powf(a)
}

/// A decay exponent must lie in `[0, 1]`.
pub(crate) fn check_decay(solver: &'static str, name: &'static str, a: f64) -> Result<(), Error> {
    check(solver, name, a, (0.0..=1.0).contains(&a), "in [0, 1]")
}

/// The schedule offset must be finite and at least 1.
pub(crate) fn check_offset(solver: &'static str, k0: f64) -> Result<(), Error> {
    check(solver, "k0", k0, k0.is_finite() && k0 >= 1.0, ">= 1")
}

/// The step and penalty schedules of F²SA (Kwon, Kwon, Wright and Nowak, "A Fully First-Order
/// Method for Stochastic Bilevel Optimization", as presented in the "Fully First-Order Methods
/// for Bilevel Optimization" slides), shared by F³SA: `α_k = α₀ r_k^{−a}`, `γ_k = γ₀ r_k^{−c}`,
/// `λ_k = λ₀ r_k^{a−c}` with `r_k = (k + k₀)/k₀`; the `x` step is `ξα_k`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PenaltySchedule {
    /// `α₀`: initial step of `y` (and, times `ξ`, of `x`). Needs `α_kλ_k ≲ 1/L_g`.
    pub alpha0: f64,
    /// `γ₀`: initial step of `z`. Needs `γ_k ≤ 1/L_g`.
    pub gamma0: f64,
    /// `ξ`: ratio of the `x` step to the `y` step (the slides take `ξ = 1`).
    pub xi: f64,
    /// `λ₀`: initial penalty multiplier.
    pub lambda0: f64,
    /// `k₀ ≥ 1`: schedule offset.
    pub k0: f64,
    /// `a ∈ [0, 1]`: decay exponent of `α_k`. Exact gradients: `a = 1/3`.
    pub a: f64,
    /// `c ∈ [0, a]`: decay exponent of `γ_k` (and growth `a − c` of `λ_k`). Exact gradients:
    /// `c = 0`.
    pub c: f64,
}

impl Default for PenaltySchedule {
    /// The exact-gradient schedule `a = 1/3`, `c = 0`, `ξ = 1`, with `α₀ = 0.01`, `γ₀ = 1`,
    /// `λ₀ = 10`, `k₀ = 1`: steps for a lower level with `l_{g,1} = 1` (divide `α₀` and `γ₀` by
    /// `l_{g,1}` otherwise; the step-size rules do).
    ///
    /// The slides' theorem bounds `γ_k` by problem constants and keeps it constant for exact
    /// gradients (`c = 0`); for gradient steps on the `l_{g,1}`-smooth `g(x, ·)` that constant is
    /// `γ = 1/l_{g,1}`. A smaller `γ` can cycle: near a point where `∇²ᵧᵧg = 0`, as at `x = 0` of
    /// the nasty-constrained example, `x = 0` is stable only when `z` moves faster than `y`,
    /// `γ > 2α_kλ_k` (0.2 here, `α_kλ_k = α₀λ₀` for `c = 0`), and `γ₀ = 0.1` cycled there.
    fn default() -> Self {
        PenaltySchedule {
            alpha0: 0.01,
            gamma0: 1.0,
            xi: 1.0,
            lambda0: 10.0,
            k0: 1.0,
            a: 1.0 / 3.0,
            c: 0.0,
        }
    }
}

impl PenaltySchedule {
    /// Reject out-of-range values, naming `solver`.
    pub fn validate(&self, solver: &'static str) -> Result<(), Error> {
        check_pos(solver, "alpha0", self.alpha0)?;
        check_pos(solver, "gamma0", self.gamma0)?;
        check_pos(solver, "xi", self.xi)?;
        check_pos(solver, "lambda0", self.lambda0)?;
        check_offset(solver, self.k0)?;
        check(solver, "a", self.a, (0.0..=1.0).contains(&self.a), "[0, 1]")?;
        check(
            solver,
            "c",
            self.c,
            self.c >= 0.0 && self.c <= self.a,
            "[0, a]",
        )
    }

    /// `(α_k, γ_k, λ_k)` and `r_k` at iteration `k`.
    pub fn at(&self, k: u64) -> ((f64, f64, f64), f64) {
        let r = Decay::new(self.k0).r(k);
        (
            (
                self.alpha0 * r.powf(-self.a),
                self.gamma0 * r.powf(-self.c),
                self.lambda0 * r.powf(self.a - self.c),
            ),
            r,
        )
    }
}

/// The step-size rules of a parameter struct holding a [`PenaltySchedule`] in its field
/// `schedule`: `γ₀ = 1/L_g` and `α₀ = 0.01/L_g`.
macro_rules! penalty_rules {
    ($p:ty) => {
        impl $crate::rules::StepRules for $p {
            fn rules() -> &'static [$crate::rules::Rule<Self>] {
                &[
                    $crate::rules::Rule {
                        key: "gamma0",
                        text: "1/L_g: gradient steps on the L_g-smooth g(x, ·) for z (F²SA \
                               slides: γ_k bounded by the problem constants, constant for exact \
                               gradients)",
                        unless_set: &[],
                        value: $crate::rules::inv_l_g,
                        set: |p, v| p.schedule.gamma0 = v,
                    },
                    $crate::rules::Rule {
                        key: "alpha0",
                        text: "0.01/L_g: the default α₀ = 0.01 for L_g = 1, scaled \
                               (α_kλ_k ≲ 1/L_g)",
                        unless_set: &[],
                        value: |c| $crate::rules::inv_l_g(c).map(|v| 0.01 * v),
                        set: |p, v| p.schedule.alpha0 = v,
                    },
                ]
            }
        }
    };
}
pub(crate) use penalty_rules;

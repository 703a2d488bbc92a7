use crate::error::{Error, check, check_count, check_pos};
use crate::oracle::Oracle;
use crate::problem::{Grad, HGrad};
use crate::rules::{Rule, StepRules, inner_rule};
use crate::solver::{Iterate, Scalars, Solver, state_io};
use crate::vecops::{axpy, dot, norm_sq};
use serde::{Deserialize, Serialize};

/// The choice of `ρ(x, y)` in the QP constraint (eq. (7)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rho {
    /// `ρ = ‖∇h‖²` (Theorem 4.2; needs a regularity condition, Corollary 4.3).
    GradNormSq,
    /// `ρ = ‖∇h‖·√h(x₀, y₀)` (Theorem 4.5; needs the warm start `h(x₀, y₀) ≤ α²C₀`).
    GradNormSqrtH0,
}

/// Parameters of [`PgdQp`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PgdQpParams {
    /// `γ`: step size. Theorem 4.2: `γ ≤ min{α, 1/(L_f + αL_h)}`; Theorem 4.5:
    /// `γ = min{K^{−2/3}, 1/L_f}`.
    pub gamma: f64,
    /// `α`: the feasibility-decrease weight in the QP constraint (and the warm-start tolerance).
    pub alpha: f64,
    /// `C₀`: warm-start constant; initialization requires `‖∇ᵧg(x₀, y₀)‖² ≤ α²C₀`.
    pub c0: f64,
    /// Which `ρ`.
    pub rho: Rho,
    /// Step of the gradient descent on `g(x₀, ·)` that establishes the warm start.
    pub warm_start_step: f64,
    /// Iteration cap of that gradient descent.
    pub warm_start_max_iter: usize,
}

impl PgdQpParams {
    /// Theorem 4.2's setting: `ρ = ‖∇h‖²`, step `gamma`, weight `alpha`, `C₀ = 1`.
    pub fn theorem_4_2(gamma: f64, alpha: f64) -> Self {
        PgdQpParams {
            gamma,
            alpha,
            c0: 1.0,
            rho: Rho::GradNormSq,
            warm_start_step: 0.01,
            warm_start_max_iter: 10_000,
        }
    }

    /// Theorem 4.2's setting with the largest step it allows, `γ = min{α, 1/(L_f + αL_h)}`,
    /// for smoothness constants `l_f` of `f` and `l_h` of `h = ‖∇ᵧg‖²` (for `g` with `∇ᵧg`
    /// affine in `(x, y)`, `∇ᵧg = A(x, y) + b`, `L_h = 2‖A‖²`).
    pub fn theorem_4_2_max_step(alpha: f64, l_f: f64, l_h: f64) -> Self {
        Self::theorem_4_2(theorem_4_2_gamma(alpha, l_f, l_h), alpha)
    }

    /// Theorem 4.2's setting for a horizon of `k` iterations: `α = K^{−1/3}` and the largest
    /// step it allows ([`PgdQpParams::theorem_4_2_max_step`]).
    pub fn theorem_4_2_horizon(k: u64, l_f: f64, l_h: f64) -> Self {
        Self::theorem_4_2_max_step(theorem_4_2_alpha(k), l_f, l_h)
    }

    /// Corollary 4.6's setting for a horizon of `k` iterations: `ρ = ‖∇h‖√h₀`,
    /// `α = K^{−1/6}`, `γ = min{K^{−2/3}, 1/L_f}`, `C₀ = 1`.
    pub fn corollary_4_6(k: u64, l_f: f64) -> Self {
        let (alpha, gamma) = corollary_4_6_steps(k, l_f);
        PgdQpParams {
            gamma,
            alpha,
            rho: Rho::GradNormSqrtH0,
            ..Self::theorem_4_2(0.0, 0.0)
        }
    }

    /// Reject out-of-range values.
    pub fn validate(&self) -> Result<(), Error> {
        check_pos(NAME, "gamma", self.gamma)?;
        check_pos(NAME, "alpha", self.alpha)?;
        check_pos(NAME, "c0", self.c0)?;
        check_pos(NAME, "warm_start_step", self.warm_start_step)?;
        check(
            NAME,
            "gamma",
            self.gamma,
            self.rho != Rho::GradNormSq || self.gamma <= self.alpha,
            "gamma <= alpha (Theorem 4.2)",
        )?;
        check_count(
            NAME,
            "warm_start_max_iter",
            self.warm_start_max_iter,
            0,
            ">= 0",
        )
    }
}

impl Default for PgdQpParams {
    /// Theorem 4.2 with `γ = 0.01`, `α = 1`. Theorem 4.2 also needs `γ ≤ 1/(L_f + αL_h)`, which
    /// this `γ` breaks when `L_h = 2‖[∇²ᵧᵧg, ∇²ᵧₓg]‖²` exceeds about 100 (sc-sincos: `L_h ≈ 2e4`);
    /// use [`PgdQpParams::theorem_4_2_max_step`] there.
    fn default() -> Self {
        Self::theorem_4_2(0.01, 1.0)
    }
}

/// Theorem 4.2's largest step for weight `alpha`: `γ = min{α, 1/(L_f + αL_h)}`.
fn theorem_4_2_gamma(alpha: f64, l_f: f64, l_h: f64) -> f64 {
    alpha.min(1.0 / (l_f + alpha * l_h))
}

/// Theorem 4.2's weight for a horizon of `k` iterations: `α = K^{−1/3}`.
fn theorem_4_2_alpha(k: u64) -> f64 {
    (k.max(1) as f64).powf(-1.0 / 3.0)
}

/// Corollary 4.6's `(α, γ) = (K^{−1/6}, min{K^{−2/3}, 1/L_f})` for a horizon of `k` iterations.
fn corollary_4_6_steps(k: u64, l_f: f64) -> (f64, f64) {
    let k = k.max(1) as f64;
    (k.powf(-1.0 / 6.0), k.powf(-2.0 / 3.0).min(1.0 / l_f))
}

impl StepRules for PgdQpParams {
    /// `α` and `γ` by Theorem 4.2 (`ρ = ‖∇h‖²`) or Corollary 4.6 (`ρ = ‖∇h‖√h₀`) for the run's
    /// horizon, and the warm start's step `1/L_g`.
    fn rules() -> &'static [Rule<Self>] {
        &[
            Rule {
                key: "alpha",
                text: "K^(-1/3) for K = --iters (PGD-QP paper, Theorem 4.2; K^(-1/6) by \
                       Corollary 4.6 when rho = GradNormSqrtH0); not applied under a time budget \
                       without --iters",
                unless_set: &["gamma"],
                value: |c| {
                    let k = c.horizon?;
                    match c.params.rho {
                        Rho::GradNormSq => c.c.l_f.zip(c.c.l_h).map(|_| theorem_4_2_alpha(k)),
                        Rho::GradNormSqrtH0 => c.c.l_f.map(|l_f| corollary_4_6_steps(k, l_f).0),
                    }
                },
                set: |p, v| p.alpha = v,
            },
            Rule {
                key: "gamma",
                text: "min{α, 1/(L_f + α L_h)} (PGD-QP paper, Theorem 4.2; min{K^(-2/3), 1/L_f} \
                       by Corollary 4.6 when rho = GradNormSqrtH0)",
                unless_set: &[],
                value: |c| {
                    let l_f = c.c.l_f?;
                    match c.params.rho {
                        Rho::GradNormSq => Some(theorem_4_2_gamma(c.params.alpha, l_f, c.c.l_h?)),
                        Rho::GradNormSqrtH0 => Some(corollary_4_6_steps(c.horizon?, l_f).1),
                    }
                },
                set: |p, v| p.gamma = v,
            },
            inner_rule!(PgdQpParams, warm_start_step),
        ]
    }
}

pub(crate) const NAME: &str = "pgd-qp";

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct State {
    h0: f64,
}

/// PGD-QP's multiplier rule, eq. (8b) of the PGD-QP paper, at any point: what the step uses
/// and what the ε-KKT metric ([`Metrics::kkt`](crate::Metrics::kkt)) needs to take `λ` at the
/// point it evaluates rather than at the iterate before.
///
/// **The KKT multiplier.** The paper's Corollaries 4.3 and 4.6 print `ν_k = λ_k∇ᵧg(x_k, y_k)`,
/// but its Remark 3.1 gives `∇h = 2[∇²ᵧₓg ∇²ᵧᵧg]ᵀ∇ᵧg`, and the proof of Corollary 4.3 (its
/// Appendix A) equates `‖Δ_t‖² = ‖∇f(x_t, y_t) + [∇²ᵧₓg ∇²ᵧᵧg]ᵀν_t‖²` with `Δ_t = −∇f − λ_t∇h`
/// of eq. (8a), which holds for `ν_t = 2λ_t∇ᵧg(x_t, y_t)`: the factor 2 from Remark 3.1, and
/// `λ_t` of eq. (8b) at the same index `t` as the point (all of eq. (8b)'s terms are taken at
/// `(x_t, y_t)`). With this `ν` the x- and y-parts of the residual are exactly `‖Δˣ‖²` and
/// `‖Δʸ‖²` at the point.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct KktMultiplier {
    /// `α`, the feasibility-decrease weight.
    pub alpha: f64,
    /// Which `ρ`.
    pub rho: Rho,
    /// `h(x₀, y₀)` after the warm start (used by [`Rho::GradNormSqrtH0`]).
    pub h0: f64,
}

impl KktMultiplier {
    /// `λ = [−⟨∇h, ∇f⟩ + αρ]₊ / ‖∇h‖²` (eq. (8b)) from `∇f` and `∇h` at one point; `0` where
    /// `∇h = 0`.
    pub fn lambda(&self, gf: &Grad, gh: &HGrad) -> f64 {
        let nh2 = norm_sq(&gh.x) + norm_sq(&gh.y);
        let rho = match self.rho {
            Rho::GradNormSq => nh2,
            Rho::GradNormSqrtH0 => nh2.sqrt() * self.h0.sqrt(),
        };
        if nh2 > 0.0 {
            (-(dot(&gh.x, &gf.x) + dot(&gh.y, &gf.y)) + self.alpha * rho).max(0.0) / nh2
        } else {
            0.0
        }
    }
}

/// Perturbed gradient descent via a convex QP: Algorithm 1 of "Perturbed Gradient Descent via
/// Convex Quadratic Approximation for Nonconvex Bilevel Optimization".
///
/// For `h = ‖∇ᵧg‖²`, each step solves the QP (7) in closed form (8a)/(8b):
/// `λ = [−⟨∇h, ∇f⟩ + αρ]₊ / ‖∇h‖²`, `Δ = −∇f − λ∇h`, `(x, y) ← (x, y) + γΔ`, with `ρ` from
/// [`Rho`]. `init` runs gradient descent on `g(x₀, ·)` until `h(x₀, y₀) ≤ α²C₀` (line 2; the
/// warm start of Theorem 4.5). Cost: 2 Gc and 1 MV per step. The multiplier estimate
/// `ν = 2λ∇ᵧg`, with `λ` of eq. (8b) at the point evaluated, feeds the ε-KKT metric of
/// Definition 2.4 (see [`KktMultiplier`] for why the factor 2 and the index, which the printed
/// `ν_k = λ_k∇ᵧg` of Corollary 4.3 leaves out).
///
/// **Floor with a constant step.** Theorem 4.2 bounds the average `‖Δ‖²` by a term that falls as
/// `1/(γK)` plus `2α²L_hC_f²`, which does not. What the iterates do: near the feasible set
/// `λ = α − ⟨∇h, ∇f⟩/‖∇h‖²` grows like `1/‖∇h‖`, and `γλ∇h` is a gradient step on `h` with step
/// `γλ`. `λ` grows until `γλ·λ_max(∇²h) = 2`, the edge of stability of that step, and the iterates
/// settle on a period-2 orbit across the stiffest direction of `h`, at a distance from
/// `y = y*(x)` proportional to `γ`: `‖∇Φ‖ ∝ γ`, `h ∝ γ²`. On sc-sincos (`λ_max(∇²h) = 20200`)
/// `γ = 4e-4` stops at `‖∇Φ‖ ≈ 2.7` and `γ = 1e-4` at `0.75`; with Theorem 4.2's largest step
/// `γ = 1/(L_f + αL_h)`, a smaller `α` allows a larger `γ` and so stops higher. The tests
/// `pgd_qp_on_quadratic_kappa` and `pgd_qp_on_sc_sincos_locks_at_the_edge_of_stability` pin this.
#[derive(Clone, Debug)]
pub struct PgdQp {
    params: PgdQpParams,
    state: State,
}

impl PgdQp {
    /// A solver with validated parameters.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first bad parameter.
    pub fn new(params: PgdQpParams) -> Result<Self, Error> {
        params.validate()?;
        Ok(PgdQp {
            params,
            state: State::default(),
        })
    }

    /// The multiplier rule of eq. (8b) with this solver's `α`, `ρ` and warm-start `h₀`.
    fn multiplier(&self) -> KktMultiplier {
        KktMultiplier {
            alpha: self.params.alpha,
            rho: self.params.rho,
            h0: self.state.h0,
        }
    }
}

impl Solver for PgdQp {
    fn name(&self) -> &'static str {
        NAME
    }
    fn init(&mut self, o: &mut Oracle<'_>, it: &mut Iterate) -> Result<(), Error> {
        let p = self.params;
        let target = p.alpha * p.alpha * p.c0;
        let mut h = f64::INFINITY;
        for i in 0..=p.warm_start_max_iter {
            let gy = o.grad_g(&it.x, &it.y).y;
            h = norm_sq(&gy);
            if h <= target || i == p.warm_start_max_iter {
                break;
            }
            axpy(&mut it.y, -p.warm_start_step, &gy);
        }
        self.state.h0 = h;
        Ok(())
    }
    fn step(&mut self, o: &mut Oracle<'_>, it: &mut Iterate, _k: u64) -> Scalars {
        let p = self.params;
        let gf = o.grad_f(&it.x, &it.y);
        let gh = o.grad_h(&it.x, &it.y);
        let lambda = self.multiplier().lambda(&gf, &gh);
        // Δ = −∇f − λ∇h; (x, y) += γΔ.
        axpy(&mut it.x, -p.gamma, &gf.x);
        axpy(&mut it.x, -p.gamma * lambda, &gh.x);
        axpy(&mut it.y, -p.gamma, &gf.y);
        axpy(&mut it.y, -p.gamma * lambda, &gh.y);
        let dx2 = norm_sq(&crate::vecops::lincomb(1.0, &gf.x, lambda, &gh.x));
        let dy2 = norm_sq(&crate::vecops::lincomb(1.0, &gf.y, lambda, &gh.y));
        vec![
            ("lambda", lambda),
            ("delta_norm", (dx2 + dy2).sqrt()),
            ("h", gh.h),
        ]
    }
    fn kkt_multiplier(&self) -> Option<KktMultiplier> {
        Some(self.multiplier())
    }
    state_io!();
}

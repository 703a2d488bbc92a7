//! MEHA: the single-loop, Hessian-free method on the Moreau-envelope reformulation of Liu, Liu,
//! Yao, Zeng and Zhang.

use crate::error::{Error, check, check_pos};
use crate::oracle::Oracle;
use crate::rules::{Ctx, Rule, StepRules};
use crate::solver::{Iterate, Scalars, Solver, col, state_io};
use crate::vecops::{axpy, lincomb, norm_sq, zeros};
use bilevel_linalg::Mat;
use serde::{Deserialize, Serialize};

/// Parameters of [`Meha`] (Risheng Liu, Zhu Liu, Wei Yao, Shangzhi Zeng and Jin Zhang, "Moreau
/// Envelope for Nonconvex Bi-Level Optimization: A Single-loop and Hessian-free Solution
/// Strategy", ICML 2024).
///
/// The method replaces the lower-level optimality `y ∈ argmin g(x, ·)` by
/// `g(x, y) − v_γ(x, y) ≤ 0`, with `v_γ(x, y) = min_θ g(x, θ) + ‖θ − y‖²/(2γ)` the Moreau
/// envelope of `g(x, ·)` (for `g(x, ·)` `ρ`-weakly convex and `γ < 1/(2ρ)` this is lower-level
/// stationarity; for a convex lower level, optimality), and descends on the penalized
/// `f/c_k + g − v_γ` with `c_k = c̲(k + 1)^p` growing. Its gradient needs the proximal point
/// `θ*(x, y)` of the envelope, `∇v_γ = (∇ₓg(x, θ*), (y − θ*)/γ)`, which one gradient step per
/// iteration tracks. Per iteration `k` (Algorithm 1 as restated below, smooth lower level):
/// 1. `θ ← P_Y(θ − η(∇ᵧg(x, θ) + (θ − y)/γ))`;
/// 2. `x ← P_X(x − α d_x)`, `d_x = ∇ₓf(x, y)/c_k + ∇ₓg(x, y) − ∇ₓg(x, θ)` at the new `θ`;
/// 3. `y ← P_Y(y − β d_y)`, `d_y = ∇ᵧf(x, y)/c_k + ∇ᵧg(x, y) − (y − θ)/γ` at the new `x`
///    and `θ` and the old `y`.
///
/// The paper's lower level may carry a nonsmooth convex term in `y`, which its steps 1 and 3
/// handle by proximal maps in place of `P_Y`; our problems have none, so the prox is the
/// projection onto `Y` (the identity without bounds).
///
/// Sources. We could read the paper's abstract, a review of it (which gives Table 5's
/// "original" setting `p = 0.49`), and two public restatements of Algorithm 1: BOAT's `MESO`
/// (`boat_torch/fo_ol/meso.py`) and the updates (11)-(13) of a later multi-objective extension
/// by other authors ("Moreau Envelope based Hessian-free Methods for Multi-Objective Bilevel
/// Optimization with Nonconvex Lower Level"), which states that it recovers MEHA for one
/// objective. The extension gives the order above (`θ`, then `x` at the old `y`, then `y` at the
/// new `x`) and the weight `1/c_k` on the upper-level gradients, writing the penalty problem
/// as `f + c_k(g − v_γ)` scaled by `1/c_k`. The two sources disagree on three points, and we
/// follow the extension, taking its form for the paper's:
/// - the penalty: BOAT takes `c_k = c₀(k + 1)^0.25` for `k ≥ 1` but `c_k = 0.2` at `k = 0`,
///   whatever `c₀`; we take `c_k = c̲(k + 1)^p` from `k = 0` on, `p` a parameter (default
///   0.49, Table 5);
/// - the order: BOAT steps `y` (on `f/c_k + g − ‖y − θ‖²/(2γ)`) before `x`, and takes `x`'s
///   direction at the new `y`; we step `x` first;
/// - BOAT's `θ` and `y` steps run through momentum SGD (`momentum = 0.9` on `θ`, the user's
///   optimizer on `y`); ours are plain gradient steps, as in the extension's restatement.
///
/// The project's earlier notes also cite the authors' scripts as weighting the upper level by
/// `c₀(k + 1)^0.49` (a growing weight on `f`, where Algorithm 1 shrinks it as `1/c_k`); we could
/// not read those scripts and do not follow them.
///
/// Defaults. The paper's step sizes and `γ` are per experiment and were not at hand; the
/// numbers below are ours, for a lower level of smoothness about 1. What the secondary sources
/// report of the theory: `γ ∈ (0, 1/(2ρ))` for the reformulation (the extension, citing the
/// paper's Theorem A.2), `p ∈ (0, 1/2)` with the stationarity rate `O(K^{-(1-2p)/2})` and, for
/// `p = 0`, `O(K^{-1/2})` (the review, on Theorem 1 and its remark), `α` and `β` small enough
/// and `η` bounded (the extension's own theorem: `η < 2γ/(γ(L_g − ρ) + 2)`). The rules
/// ([`StepRules`]) set `η` and `β` from `L_g` (and `L_f`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MehaParams {
    /// `α`: step of `x`. Default 0.5 (ours).
    pub alpha: f64,
    /// `β`: step of `y`. Default 0.9 (ours, about `1/(L_g + 1/γ)` for `L_g = 1`; rule
    /// `1/(L_f/c̲ + L_g)`).
    pub beta: f64,
    /// `η`: step of the proximal variable `θ`. Default 0.9 (ours, about `1/(L_g + 1/γ)` for
    /// `L_g = 1`; rule `1/(L_g + 1/γ)`).
    pub eta: f64,
    /// `γ`: the Moreau envelope's proximal parameter. Default 10 (ours; the theory needs
    /// `γ < 1/(2ρ)` for a `ρ`-weakly convex lower level, any `γ > 0` for a convex one). A small
    /// `γ` slows `y`: near `y*` the penalty `g − v_γ` has curvature `γμ²/(1 + γμ)` along an
    /// eigenvalue `μ` of `∇²ᵧᵧg`, against `μ` for `γ → ∞`.
    pub gamma: f64,
    /// `c̲`: the penalty's base, `c_k = c̲(k + 1)^p`. Default 1 (ours).
    pub c0: f64,
    /// `p ∈ [0, 1/2)`: the penalty's growth exponent. Default 0.49, Table 5's original setting;
    /// 0 fixes the penalty at `c̲`.
    pub p: f64,
}

impl Default for MehaParams {
    /// `α = 0.5`, `β = η = 0.9`, `γ = 10`, `c̲ = 1`, `p = 0.49`.
    fn default() -> Self {
        MehaParams {
            alpha: 0.5,
            beta: 0.9,
            eta: 0.9,
            gamma: 10.0,
            c0: 1.0,
            p: 0.49,
        }
    }
}

impl MehaParams {
    /// Reject out-of-range values.
    pub fn validate(&self) -> Result<(), Error> {
        check_pos(NAME, "alpha", self.alpha)?;
        check_pos(NAME, "beta", self.beta)?;
        check_pos(NAME, "eta", self.eta)?;
        check_pos(NAME, "gamma", self.gamma)?;
        check_pos(NAME, "c0", self.c0)?;
        check(
            NAME,
            "p",
            self.p,
            (0.0..0.5).contains(&self.p),
            "0 <= p < 0.5",
        )
    }

    /// The penalty `c_k = c̲(k + 1)^p` of iteration `k` (from 0).
    pub fn penalty(&self, k: u64) -> f64 {
        self.c0 * ((k + 1) as f64).powf(self.p)
    }
}

impl StepRules for MehaParams {
    fn rules() -> &'static [Rule<Self>] {
        &[
            Rule {
                key: "eta",
                text: "1/(L_g + 1/γ): a gradient step on θ ↦ g(x, θ) + ‖θ − y‖²/(2γ), \
                       (L_g + 1/γ)-smooth; below the bound 2γ/(γ(L_g − ρ) + 2) the multi-objective \
                       extension's theorem puts on η",
                unless_set: &[],
                value: |c| Some(1.0 / (c.c.l_g + 1.0 / c.params.gamma)),
                set: |p, v| p.eta = v,
            },
            Rule {
                key: "beta",
                text: "1/(L_f/c̲ + L_g): a gradient step on y ↦ f/c_k + g − ‖y − θ‖²/(2γ), at \
                       most (L_f/c_k + L_g)-smooth for c_k ≥ c̲, its last term concave (our \
                       bound; the theorem's β is implicit)",
                unless_set: &[],
                value: beta_rule,
                set: |p, v| p.beta = v,
            },
        ]
    }
}

fn beta_rule(c: &Ctx<'_, MehaParams>) -> Option<f64> {
    let p = c.params;
    Some(1.0 / (c.c.l_f? / p.c0 + c.c.l_g))
}

pub(crate) const NAME: &str = "meha";

#[derive(Clone, Debug, Serialize, Deserialize)]
struct State {
    /// The proximal variable `θ`, tracking `θ*(x, y)`.
    #[serde(with = "col")]
    theta: Mat<f64>,
}

/// MEHA (Liu, Liu, Yao, Zeng and Zhang): single loop, first order (Hessian-free), on the
/// Moreau-envelope reformulation with an increasing penalty; see [`MehaParams`] for the
/// updates and their sources. `θ` starts at `y₀`. Six Gc per iteration. Scalars: `c` (the
/// penalty `c_k`) and `d_norm` (`‖(d_x, d_y)‖`).
#[derive(Clone, Debug)]
pub struct Meha {
    params: MehaParams,
    state: State,
}

impl Meha {
    /// A solver with validated parameters.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first bad parameter.
    pub fn new(params: MehaParams) -> Result<Self, Error> {
        params.validate()?;
        Ok(Meha {
            params,
            state: State { theta: zeros(0) },
        })
    }
}

impl Solver for Meha {
    fn name(&self) -> &'static str {
        NAME
    }
    fn init(&mut self, _o: &mut Oracle<'_>, it: &mut Iterate) -> Result<(), Error> {
        self.state.theta = it.y.clone();
        Ok(())
    }
    fn step(&mut self, o: &mut Oracle<'_>, it: &mut Iterate, k: u64) -> Scalars {
        let p = self.params;
        let (inv_c, inv_gamma) = (1.0 / p.penalty(k), 1.0 / p.gamma);
        let theta = &mut self.state.theta;
        // 1. θ: one gradient step on the envelope's strongly convex subproblem.
        let d_theta = lincomb(
            1.0,
            &o.grad_g(&it.x, theta).y,
            inv_gamma,
            &lincomb(1.0, theta, -1.0, &it.y),
        );
        axpy(theta, -p.eta, &d_theta);
        o.project_y(theta);
        // 2. x at (x, y), with ∇ₓv_γ ≈ ∇ₓg(x, θ) at the new θ.
        let gfx = o.grad_f(&it.x, &it.y).x;
        let ggx = o.grad_g(&it.x, &it.y).x;
        let ggx_theta = o.grad_g(&it.x, theta).x;
        let d_x = lincomb(inv_c, &gfx, 1.0, &lincomb(1.0, &ggx, -1.0, &ggx_theta));
        axpy(&mut it.x, -p.alpha, &d_x);
        o.project_x(&mut it.x);
        // 3. y at (x_new, y), with ∇ᵧv_γ ≈ (y − θ)/γ.
        let gfy = o.grad_f(&it.x, &it.y).y;
        let ggy = o.grad_g(&it.x, &it.y).y;
        let d_y = lincomb(
            inv_c,
            &gfy,
            1.0,
            &lincomb(1.0, &ggy, -inv_gamma, &lincomb(1.0, &it.y, -1.0, theta)),
        );
        axpy(&mut it.y, -p.beta, &d_y);
        o.project_y(&mut it.y);
        vec![
            ("c", p.penalty(k)),
            ("d_norm", (norm_sq(&d_x) + norm_sq(&d_y)).sqrt()),
        ]
    }
    fn aux(&self) -> Vec<(&'static str, &Mat<f64>)> {
        vec![("theta", &self.state.theta)]
    }
    state_io!();
}

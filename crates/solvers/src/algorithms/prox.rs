use super::schedule::{Decay, check_offset};
use crate::error::{Error, check, check_count, check_pos};
use crate::oracle::Oracle;
use crate::rules::StepRules;
use crate::solver::{Iterate, Scalars, Solver, col, state_io};
use crate::vecops::{axpy, lincomb, zeros};
use bilevel_linalg::Mat;
use serde::{Deserialize, Serialize};

/// Parameters of [`ProxF2saTwoLoop`] (deterministic gradients, batch size `M_k = 1`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProxF2saParams {
    /// `α`: `x` step (the slides take `α ~ ρ`).
    pub alpha: f64,
    /// `γ`: step of the inner projected-gradient steps on the prox subproblems.
    pub gamma: f64,
    /// `β ∈ (0, 1]`: proximal smoothing of `y, z` (the slides take `β ~ 1`).
    pub beta: f64,
    /// `ρ`: proximal parameter, `ρ ≪ 1/L_g`.
    pub rho: f64,
    /// `σ₀`: initial penalty weight on `f` (`σ = 1/λ`).
    pub sigma0: f64,
    /// `k₀ ≥ 1`: schedule offset; `σ_k = σ₀(k₀/(k + k₀))^{1/3}`.
    pub k0: f64,
    /// `T`: inner steps per outer iteration (exact gradients: constant, `c = 0`).
    pub inner_steps: usize,
    /// `r > 0`: the `z` subproblem's prox parameter and step relative to the `y` subproblem's,
    /// `ρ_z = rρ`, `γ_z = rγ`. The slides use one `ρ` and `γ` for both, `r = 1`; the default
    /// `r = 3` lets `z` track `y*(x)` faster than `y` tracks `y*_σ(x)`, without which the
    /// iteration can cycle once `σ_k` is small (see [`ProxF2saTwoLoop`]). The `z` subproblem
    /// contracts only when `rγ·L_g + γ/ρ < 2`, so a larger `r` needs a smaller `γ` on stiffer
    /// lower levels.
    pub z_ratio: f64,
}

impl Default for ProxF2saParams {
    /// `α = ρ = 0.1`, `γ = 0.05`, `β = 1`, `σ₀ = 1`, `k₀ = 1`, `T = 5`, `z_ratio = 3`.
    fn default() -> Self {
        ProxF2saParams {
            alpha: 0.1,
            gamma: 0.05,
            beta: 1.0,
            rho: 0.1,
            sigma0: 1.0,
            k0: 1.0,
            inner_steps: 5,
            z_ratio: 3.0,
        }
    }
}

impl ProxF2saParams {
    /// Reject out-of-range values.
    pub fn validate(&self) -> Result<(), Error> {
        check_pos(NAME, "alpha", self.alpha)?;
        check_pos(NAME, "gamma", self.gamma)?;
        check(
            NAME,
            "beta",
            self.beta,
            self.beta > 0.0 && self.beta <= 1.0,
            "(0, 1]",
        )?;
        check_pos(NAME, "rho", self.rho)?;
        check_pos(NAME, "sigma0", self.sigma0)?;
        check_offset(NAME, self.k0)?;
        check_count(NAME, "inner_steps", self.inner_steps, 1, ">= 1")?;
        check_pos(NAME, "z_ratio", self.z_ratio)
    }
}

/// No rule: the proximal methods' steps are tied to `ρ ≪ 1/L_g` by inequalities, not formulas.
impl StepRules for ProxF2saParams {}

pub(crate) const NAME: &str = "prox-f2sa-two-loop";

#[derive(Clone, Debug, Serialize, Deserialize)]
struct State {
    #[serde(with = "col")]
    z: Mat<f64>,
    #[serde(with = "col")]
    wy: Mat<f64>,
    #[serde(with = "col")]
    wz: Mat<f64>,
}

/// The proximal two-loop F²SA of Kwon, Kwon, Wright, Nowak and Lyu, "Fully First-Order Methods
/// for Bilevel Optimization" (part III, "Two-Loop Algorithm"), for lower levels that are not
/// strongly convex and may be constrained, with deterministic gradients.
///
/// With `h_σ = σf + g`, `ρ_z = rρ`, `γ_z = rγ` (`r` = [`ProxF2saParams::z_ratio`]), per
/// iteration `k` from `u = w_y`, `v = w_z`, `T` times:
/// `v ← P_Y(v − γ_z(∇ᵧg(x, v) + ρ_z⁻¹(v − z)))`, `u ← P_Y(u − γ(σ_k∇ᵧf(x, u) + ∇ᵧg(x, u) + ρ⁻¹(u − y)))`;
/// then `w_y = u`, `w_z = v`, `y ← (1 − β)y + βw_y`, `z ← (1 − β)z + βw_z`,
/// `x ← P_X(x − α(σ_k∇ₓf(x, y) + ∇ₓg(x, y) − ∇ₓg(x, z)))` at the new `y, z`, with
/// `σ_k ~ (k + k₀)^{−1/3}`. First order: `3T + 3` Gc.
///
/// # Deviation from the slides: `z_ratio`
///
/// The slides give both prox subproblems the same `ρ` and `γ` (`r = 1`). Then `z` tracks
/// `y*(x)` no faster than `y` tracks `y*_σ(x)`, and `x = 0` of the nasty-constrained example
/// (`f = x² + y²`, `g = xy`, `∇²ᵧᵧg = 0`) is a stable point only while `σ_k` is large. Near it,
/// with `β = 1` and the prox points `z' = z − ρ_z x`, `y' = (y − ρx)/(1 + 2ρσ)`, the
/// continuous-time limit is `ẋ = −α(2σx + y − z)`, `ẏ = −ρ(x + 2σy)`, `ż = −ρ_z x`, with
/// characteristic polynomial `s³ + 2σ(α + ρ)s² + α(4ρσ² + ρ_z − ρ)s + 2αρρ_zσ`. Routh–Hurwitz
/// requires `(α + ρ)(4ρσ² + ρ_z − ρ) > ρρ_z`. For `ρ_z = ρ` this is `σ² > ρ/(4(α + ρ))`
/// (`σ > 0.354` at `α = ρ = 0.1`), which `σ_k → σ_K = ε` crosses after about 22 iterations:
/// `x = 0` turns unstable and the box turns the divergence into a cycle (with the slides'
/// `α ~ ρ` no constant avoids this, and a floor on `σ_k` would keep the `O(σ)` penalty bias).
/// For `σ → 0` the condition is `ρ_z > ρ(1 + ρ/α)`, i.e. `r > 2` at `α = ρ` (about 1.97 with
/// the `T = 5` inexact prox steps): the analogue of F²SA's `γ > 2αλ`, `z` faster than `y`.
/// Scaling `γ` with `ρ` keeps the `z` subproblem solved as accurately as the `y` one. Fixed
/// points, and so the slides' stationarity conditions, do not depend on the prox parameter.
#[derive(Clone, Debug)]
pub struct ProxF2saTwoLoop {
    params: ProxF2saParams,
    state: State,
}

impl ProxF2saTwoLoop {
    /// A solver with validated parameters.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first bad parameter.
    pub fn new(params: ProxF2saParams) -> Result<Self, Error> {
        params.validate()?;
        Ok(ProxF2saTwoLoop {
            params,
            state: State {
                z: zeros(0),
                wy: zeros(0),
                wz: zeros(0),
            },
        })
    }
}

impl Solver for ProxF2saTwoLoop {
    fn name(&self) -> &'static str {
        NAME
    }
    fn init(&mut self, _o: &mut Oracle<'_>, it: &mut Iterate) -> Result<(), Error> {
        self.state.z = it.y.clone();
        self.state.wy = it.y.clone();
        self.state.wz = it.y.clone();
        Ok(())
    }
    fn step(&mut self, o: &mut Oracle<'_>, it: &mut Iterate, k: u64) -> Scalars {
        let p = self.params;
        let sigma = p.sigma0 * Decay::new(p.k0).inv_r(k).powf(1.0 / 3.0);
        let inv_rho = 1.0 / p.rho;
        let (gamma_z, inv_rho_z) = (p.z_ratio * p.gamma, 1.0 / (p.z_ratio * p.rho));
        let (mut u, mut v) = (self.state.wy.clone(), self.state.wz.clone());
        for _ in 0..p.inner_steps {
            let gv = o.grad_g(&it.x, &v).y;
            let dv = lincomb(1.0, &gv, inv_rho_z, &lincomb(1.0, &v, -1.0, &self.state.z));
            axpy(&mut v, -gamma_z, &dv);
            o.project_y(&mut v);
            let fu = o.grad_f(&it.x, &u).y;
            let gu = o.grad_g(&it.x, &u).y;
            let du = lincomb(sigma, &fu, 1.0, &gu);
            let du = lincomb(1.0, &du, inv_rho, &lincomb(1.0, &u, -1.0, &it.y));
            axpy(&mut u, -p.gamma, &du);
            o.project_y(&mut u);
        }
        it.y = lincomb(1.0 - p.beta, &it.y, p.beta, &u);
        self.state.z = lincomb(1.0 - p.beta, &self.state.z, p.beta, &v);
        self.state.wy = u;
        self.state.wz = v;
        let fx = o.grad_f(&it.x, &it.y).x;
        let gxy = o.grad_g(&it.x, &it.y).x;
        let gxz = o.grad_g(&it.x, &self.state.z).x;
        let d = lincomb(sigma, &fx, 1.0, &lincomb(1.0, &gxy, -1.0, &gxz));
        axpy(&mut it.x, -p.alpha, &d);
        o.project_x(&mut it.x);
        vec![("sigma", sigma)]
    }
    fn aux(&self) -> Vec<(&'static str, &Mat<f64>)> {
        vec![
            ("z", &self.state.z),
            ("w_y", &self.state.wy),
            ("w_z", &self.state.wz),
        ]
    }
    state_io!();
}

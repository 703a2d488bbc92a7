use super::f3sa::{Fun, Storm};
use super::schedule::{Decay, check_offset};
use crate::error::{Error, check, check_pos};
use crate::oracle::Oracle;
use crate::rules::StepRules;
use crate::sampling::{Minibatch, SampleStream, Source};
use crate::solver::{Iterate, Scalars, Solver, col, state_io};
use crate::vecops::{axpy, lincomb, zeros};
use bilevel_linalg::Mat;
use serde::{Deserialize, Serialize};

/// Parameters of [`ProxF2saMomentum`]: `α_k = α₀r^{−a}`, `β_k = min(1, β₀r^{−a})`,
/// `γ_k = γ₀r^{−a}`, `σ_k = σ₀r^{−s}`, `η_k = r^{−n}` with `r = (k + k₀)/k₀` (the slides'
/// `α_k ~ ρ(k + k₀)^{−a}`, `β_k, γ_k ~ (k + k₀)^{−a}`, `σ_k ~ (k + k₀)^{−s}`, `η_k ~ (k + k₀)^{−n}`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProxF2saMomentumParams {
    /// `α₀`: `x` step (the slides take `α ~ ρ`).
    pub alpha0: f64,
    /// `γ₀`: step on the prox subproblems of `w_y, w_z`.
    pub gamma0: f64,
    /// `β₀ ∈ (0, 1]`: proximal smoothing of `y, z`.
    pub beta0: f64,
    /// `ρ`: proximal parameter, `ρ ≪ 1/L_g`.
    pub rho: f64,
    /// `σ₀`: initial penalty weight on `f`.
    pub sigma0: f64,
    /// `k₀ ≥ 1`: schedule offset.
    pub k0: f64,
    /// `a ≥ 0`: decay of `α, β, γ`.
    pub a: f64,
    /// `s ≥ 0`: decay of `σ`.
    pub s: f64,
    /// `n ≥ 0`: decay of the momentum weight `η` (`n = 0`: `η = 1`, no momentum).
    pub n: f64,
    /// `r > 0`: the `w_z` update's prox parameter and step relative to `w_y`'s, `ρ_z = rρ`,
    /// `γ_{z,k} = rγ_k`. The slides use one `ρ` and `γ_k` for both, `r = 1`; the default `r = 3`
    /// lets `z` track `y*(x)` faster than `y` tracks `y*_σ(x)`, without which the iteration can
    /// cycle once `σ_k` is small (see [`ProxF2saMomentum`]). Keep `rγ_k`, `rρ ≪ 1/L_g`.
    pub z_ratio: f64,
    /// Minibatch oracles; `None`: exact gradients.
    pub batch: Option<Minibatch>,
}

impl Default for ProxF2saMomentumParams {
    /// The slides' exact-gradient exponents `a = 0`, `s = 1/3`, `n = 0` with the two-loop
    /// method's constants `α₀ = ρ = 0.1`, `γ₀ = 0.05`, `β₀ = 1`, `σ₀ = 1`, `k₀ = 1`,
    /// `z_ratio = 3`.
    fn default() -> Self {
        ProxF2saMomentumParams {
            alpha0: 0.1,
            gamma0: 0.05,
            beta0: 1.0,
            rho: 0.1,
            sigma0: 1.0,
            k0: 1.0,
            a: 0.0,
            s: 1.0 / 3.0,
            n: 0.0,
            z_ratio: 3.0,
            batch: None,
        }
    }
}

impl ProxF2saMomentumParams {
    /// The slides' exponents when the gradients of both `f` and `g` are noisy: `a = 2/5`,
    /// `s = 1/5`, `n = 4/5`, with minibatch oracles `batch`.
    pub fn stochastic(batch: Minibatch) -> Self {
        ProxF2saMomentumParams {
            a: 0.4,
            s: 0.2,
            n: 0.8,
            batch: Some(batch),
            ..Self::default()
        }
    }

    /// Reject out-of-range values.
    pub fn validate(&self) -> Result<(), Error> {
        check_pos(NAME, "alpha0", self.alpha0)?;
        check_pos(NAME, "gamma0", self.gamma0)?;
        check(
            NAME,
            "beta0",
            self.beta0,
            self.beta0 > 0.0 && self.beta0 <= 1.0,
            "(0, 1]",
        )?;
        check_pos(NAME, "rho", self.rho)?;
        check_pos(NAME, "sigma0", self.sigma0)?;
        check_offset(NAME, self.k0)?;
        for (name, v) in [("a", self.a), ("s", self.s), ("n", self.n)] {
            check(NAME, name, v, v.is_finite() && v >= 0.0, "finite and >= 0")?;
        }
        check_pos(NAME, "z_ratio", self.z_ratio)?;
        self.batch.map_or(Ok(()), |b| b.validate(NAME))
    }

    /// `(α_k, β_k, γ_k, σ_k, η_k)` at iteration `k`.
    pub fn schedule(&self, k: u64) -> (f64, f64, f64, f64, f64) {
        let r = Decay::new(self.k0).r(k);
        (
            self.alpha0 * r.powf(-self.a),
            (self.beta0 * r.powf(-self.a)).min(1.0),
            self.gamma0 * r.powf(-self.a),
            self.sigma0 * r.powf(-self.s),
            r.powf(-self.n),
        )
    }
}

/// No rule: the proximal methods' steps are tied to `ρ ≪ 1/L_g` by inequalities, not formulas.
impl StepRules for ProxF2saMomentumParams {}

pub(crate) const NAME: &str = "prox-f2sa-momentum";

#[derive(Clone, Debug, Serialize, Deserialize)]
struct State {
    #[serde(with = "col")]
    z: Mat<f64>,
    #[serde(with = "col")]
    wy: Mat<f64>,
    #[serde(with = "col")]
    wz: Mat<f64>,
    /// The previous iteration's `x`, `w_y`, `w_z`, `y`, `z` (the points of the corrections).
    #[serde(with = "col")]
    px: Mat<f64>,
    #[serde(with = "col")]
    pwy: Mat<f64>,
    #[serde(with = "col")]
    pwz: Mat<f64>,
    #[serde(with = "col")]
    py: Mat<f64>,
    #[serde(with = "col")]
    pz: Mat<f64>,
    /// `g̃_wz` (`∇ᵧg` at `(x, w_z)`), `f̃_wy`, `g̃_wy` (at `(x, w_y)`), `f̃_x`, `g̃_xy` (at
    /// `(x, y)`), `g̃_xz` (at `(x, z)`).
    gwz: Storm,
    fwy: Storm,
    gwy: Storm,
    fx: Storm,
    gxy: Storm,
    gxz: Storm,
    stream: SampleStream,
}

/// The proximal single-loop F²SA with momentum of Kwon, Kwon, Wright, Nowak and Lyu, "Fully
/// First-Order Methods for Bilevel Optimization" (part III, "Single-Loop Algorithm with
/// Momentum"), for lower levels that are not strongly convex and may be constrained.
///
/// Per iteration `k`, with STORM-type estimators (see [`F3sa`](super::F3sa)):
/// `w_z ← P_Y(w_z − γ_{z,k}(g̃_wz + ρ_z⁻¹(w_z − z)))` (`ρ_z = rρ`, `γ_{z,k} = rγ_k`, see below),
/// `w_y ← P_Y(w_y − γ_k(σ_k f̃_wy + g̃_wy + ρ⁻¹(w_y − y)))`,
/// `y ← (1 − β_k)y + β_k w_y`, `z ← (1 − β_k)z + β_k w_z`,
/// `x ← P_X(x − α_k(σ_k f̃_x + g̃_xy − g̃_xz))`, the `x` estimators taken at the new `y, z` as in
/// the two-loop method. Six estimators, each one (stochastic) Gc at the current point and, when
/// `η_k < 1`, one more at the previous point on the same samples: `6` Gc per iteration, `12` with
/// momentum. The slides' exact-gradient schedule (`n = 0`) has `η_k = 1`: no momentum. `init`
/// projects the start onto `X × Y` (the slides' `x₀ ∈ X`, `y₀, z₀ ∈ Y`).
///
/// # Deviation from the slides: `z_ratio`
///
/// The `w_z` update uses `ρ_z = rρ` and `γ_{z,k} = rγ_k` (`r` =
/// [`ProxF2saMomentumParams::z_ratio`]) where the slides use `ρ` and `γ_k` (`r = 1`), for the
/// reason derived for the two-loop method ([`ProxF2saTwoLoop`](super::ProxF2saTwoLoop)): with
/// `z` no faster than `y`, `x = 0` of the nasty-constrained example is stable only while `σ_k`
/// is large. With `β = 1` each step starts from `w_y = y`, `w_z = z`, so the prox terms vanish
/// and the steps are `y' = y − γ(2σy + x)`, `z' = z − rγx`, `x' = x − α(2σx + y' − z')`: the
/// two-loop system with `ρ` replaced by `γ`, stable for every `σ` only when `r > 1 + γ/α`
/// (1.5 at the defaults); with `r = 1` it needs `σ² > γ/(4(α + γ))`, `σ > 0.289`, which
/// `σ_k ~ (k + k₀)^{−1/3}` crosses after about 40 iterations.
#[derive(Clone, Debug)]
pub struct ProxF2saMomentum {
    params: ProxF2saMomentumParams,
    state: State,
}

impl ProxF2saMomentum {
    /// A solver with validated parameters.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first bad parameter.
    pub fn new(params: ProxF2saMomentumParams) -> Result<Self, Error> {
        params.validate()?;
        Ok(ProxF2saMomentum {
            params,
            state: State {
                z: zeros(0),
                wy: zeros(0),
                wz: zeros(0),
                px: zeros(0),
                pwy: zeros(0),
                pwz: zeros(0),
                py: zeros(0),
                pz: zeros(0),
                gwz: Storm::empty(),
                fwy: Storm::empty(),
                gwy: Storm::empty(),
                fx: Storm::empty(),
                gxy: Storm::empty(),
                gxz: Storm::empty(),
                stream: SampleStream::new(params.batch.map_or(0, |b| b.seed)),
            },
        })
    }
}

impl Solver for ProxF2saMomentum {
    fn name(&self) -> &'static str {
        NAME
    }
    fn init(&mut self, o: &mut Oracle<'_>, it: &mut Iterate) -> Result<(), Error> {
        if let Some(b) = &self.params.batch {
            b.check(NAME, o)?;
        }
        o.project_x(&mut it.x);
        o.project_y(&mut it.y);
        self.state.z = it.y.clone();
        self.state.wy = it.y.clone();
        self.state.wz = it.y.clone();
        Ok(())
    }
    fn step(&mut self, o: &mut Oracle<'_>, it: &mut Iterate, k: u64) -> Scalars {
        let p = self.params;
        let (alpha, beta, gamma, sigma, eta) = p.schedule(k);
        let inv_rho = 1.0 / p.rho;
        let (gamma_z, inv_rho_z) = (p.z_ratio * gamma, 1.0 / (p.z_ratio * p.rho));
        let src = p.batch.as_ref().map_or(Source::Full, Source::Batch);
        let st = &mut self.state;
        let first = k == 0 || st.px.nrows() == 0;
        // Lines 3–4: the prox subproblems of z and y, estimators at (x_k, w_z,k), (x_k, w_y,k).
        let (dz, df, dg) = (
            src.draw_g(o, &mut st.stream),
            src.draw_f(o, &mut st.stream),
            src.draw_g(o, &mut st.stream),
        );
        let prev_wz = (!first).then_some((&st.px, &st.pwz));
        st.gwz.update(o, Fun::G, (&it.x, &st.wz), prev_wz, eta, &dz);
        let prev_wy = (!first).then_some((&st.px, &st.pwy));
        st.fwy.update(o, Fun::F, (&it.x, &st.wy), prev_wy, eta, &df);
        st.gwy.update(o, Fun::G, (&it.x, &st.wy), prev_wy, eta, &dg);
        st.pwz = st.wz.clone();
        st.pwy = st.wy.clone();
        let dwz = lincomb(
            1.0,
            &st.gwz.y,
            inv_rho_z,
            &lincomb(1.0, &st.wz, -1.0, &st.z),
        );
        axpy(&mut st.wz, -gamma_z, &dwz);
        o.project_y(&mut st.wz);
        let dwy = lincomb(sigma, &st.fwy.y, 1.0, &st.gwy.y);
        let dwy = lincomb(1.0, &dwy, inv_rho, &lincomb(1.0, &st.wy, -1.0, &it.y));
        axpy(&mut st.wy, -gamma, &dwy);
        o.project_y(&mut st.wy);
        // Lines 5–6: proximal smoothing (convex combinations of feasible points stay feasible).
        it.y = lincomb(1.0 - beta, &it.y, beta, &st.wy);
        st.z = lincomb(1.0 - beta, &st.z, beta, &st.wz);
        // Line 7: projected gradient step on x at the new y, z.
        // g̃_xy and g̃_xz share their samples, so their difference is not swamped by noise.
        let (df, dgy) = (src.draw_f(o, &mut st.stream), src.draw_g(o, &mut st.stream));
        let dgz = dgy.clone();
        let prev_y = (!first).then_some((&st.px, &st.py));
        st.fx.update(o, Fun::F, (&it.x, &it.y), prev_y, eta, &df);
        st.gxy.update(o, Fun::G, (&it.x, &it.y), prev_y, eta, &dgy);
        let prev_z = (!first).then_some((&st.px, &st.pz));
        st.gxz.update(o, Fun::G, (&it.x, &st.z), prev_z, eta, &dgz);
        st.px = it.x.clone();
        st.py = it.y.clone();
        st.pz = st.z.clone();
        let d = lincomb(
            sigma,
            &st.fx.x,
            1.0,
            &lincomb(1.0, &st.gxy.x, -1.0, &st.gxz.x),
        );
        axpy(&mut it.x, -alpha, &d);
        o.project_x(&mut it.x);
        vec![("sigma", sigma), ("eta", eta), ("beta", beta)]
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

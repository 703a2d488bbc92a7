use crate::error::{Error, check_count, check_pos};
use crate::oracle::Oracle;
use crate::rules::{Rule, StepRules, inv_l_g, outer_rule};
use crate::solver::{Iterate, Scalars, Solver, col, state_io};
use crate::vecops::{axpy, lincomb, norm, zeros};
use bilevel_linalg::Mat;
use serde::{Deserialize, Serialize};

/// Parameters of [`Galet`], defaulting to the paper's synthetic-experiment choice (App. G):
/// `α = 0.3`, `β = 1`, `N = 1`, `ρ = 0.1` (the paper's `γ`), `T = 1`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GaletParams {
    /// `α`: upper-level step (eq. (13)).
    pub alpha: f64,
    /// `β`: lower-level gradient step (eq. (10)); Lemma 4 needs `β ≤ 1/ℓ_{g,1}`.
    pub beta: f64,
    /// `N`: lower-level steps per iteration.
    pub n_inner: usize,
    /// `ρ`: shadow-implicit-gradient step (eq. (12a)); Lemma 5 needs `ρ ≤ 1/ℓ²_{g,1}`.
    pub rho: f64,
    /// `T`: shadow-implicit-gradient steps per iteration.
    pub t_inner: usize,
    /// Start the `w`-steps from the previous `w` (`true`) or from `w = 0` (`false`, Algorithm 1
    /// as printed). The paper notes any fixed start is valid; its App. G finds the trajectory
    /// insensitive to `T ∈ {1, 5, 50}`, which only holds when `w` carries over, and with
    /// `T = 1` from `w = 0` the `x`-update cannot reach the optimal set of Example 1, so the
    /// default carries `w` over.
    pub warm_start_w: bool,
    /// The increment of the `w`-steps: eq. (12b) (the default, the algorithm the paper
    /// analyses) or eq. (15), the nonconvex-strongly-convex one its Figure 3 compares with.
    #[serde(default)]
    pub w_increment: WIncrement,
}

/// The increment `d` of GALET's `w`-steps `w ← w − ρd`, at `(x_k, y_{k+1})`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WIncrement {
    /// Eq. (12b): `d = ∇²ᵧᵧg(∇ᵧf + ∇²ᵧᵧg·w)`, the gradient of `½‖∇ᵧf + ∇²ᵧᵧg·w‖²`, which
    /// the paper shows is needed under the PL condition (two products per step).
    #[default]
    Pl,
    /// Eq. (15): `d = ∇ᵧf + ∇²ᵧᵧg·w`, the increment of the nonconvex-strongly-convex methods
    /// (one product per step); the paper's Figure 3 shows it missing Example 1's optimal set.
    StronglyConvex,
}

impl Default for GaletParams {
    fn default() -> Self {
        GaletParams {
            alpha: 0.3,
            beta: 1.0,
            n_inner: 1,
            rho: 0.1,
            t_inner: 1,
            warm_start_w: true,
            w_increment: WIncrement::Pl,
        }
    }
}

impl GaletParams {
    /// Reject out-of-range values.
    pub fn validate(&self) -> Result<(), Error> {
        check_pos(NAME, "alpha", self.alpha)?;
        check_pos(NAME, "beta", self.beta)?;
        check_pos(NAME, "rho", self.rho)?;
        check_count(NAME, "n_inner", self.n_inner, 1, ">= 1")?;
        check_count(NAME, "t_inner", self.t_inner, 1, ">= 1")
    }
}

impl StepRules for GaletParams {
    fn rules() -> &'static [Rule<Self>] {
        &[
            outer_rule!(GaletParams, alpha),
            Rule {
                key: "beta",
                text: "1/L_g (GALET paper, Lemma 4: β ≤ 1/ℓ_g,1)",
                unless_set: &[],
                value: inv_l_g,
                set: |p, v| p.beta = v,
            },
            Rule {
                key: "rho",
                text: "1/L_g² (GALET paper, Lemma 5: ρ ≤ 1/ℓ_g,1²)",
                unless_set: &[],
                value: |c| inv_l_g(c).map(|v| v * v),
                set: |p, v| p.rho = v,
            },
        ]
    }
}

pub(crate) const NAME: &str = "galet";

#[derive(Clone, Debug, Serialize, Deserialize)]
struct State {
    #[serde(with = "col")]
    w: Mat<f64>,
}

/// GALET: Algorithm 1 of Xiao, Lu and Chen, "A Generalized Alternating Method for Bilevel
/// Optimization under the Polyak-Łojasiewicz Condition".
///
/// Per iteration: `N` gradient steps on `g(x, ·)` (eq. (10)); from `w = 0` (or the previous `w`,
/// see [`GaletParams::warm_start_w`]), `T` steps
/// `w ← w − ρ∇²ᵧᵧg(∇ᵧf + ∇²ᵧᵧg·w)` (eq. (12a)/(12b)); then
/// `x ← x − α(∇ₓf + ∇²ₓᵧg·w)` (eq. (13)), all at `(x, y_{k+1})`. Cost: `N + 1` Gc and
/// `2T + 1` MV per iteration (`2T` from `w = 0`, whose first step skips `∇²ᵧᵧg·0`). With
/// [`WIncrement::StronglyConvex`] the `w`-steps take eq. (15)'s `d = ∇ᵧf + ∇²ᵧᵧg·w` instead,
/// `T + 1` MV (`T` from `w = 0`). Exposes `w` for the residuals `R_x, R_w, R_y` of eq. (8).
#[derive(Clone, Debug)]
pub struct Galet {
    params: GaletParams,
    state: State,
}

impl Galet {
    /// A solver with validated parameters.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first bad parameter.
    pub fn new(params: GaletParams) -> Result<Self, Error> {
        params.validate()?;
        Ok(Galet {
            params,
            state: State { w: zeros(0) },
        })
    }
}

impl Solver for Galet {
    fn name(&self) -> &'static str {
        NAME
    }
    fn init(&mut self, o: &mut Oracle<'_>, _it: &mut Iterate) -> Result<(), Error> {
        self.state.w = zeros(o.problem().dim_y());
        Ok(())
    }
    fn step(&mut self, o: &mut Oracle<'_>, it: &mut Iterate, _k: u64) -> Scalars {
        let p = self.params;
        for _ in 0..p.n_inner {
            let gy = o.grad_g(&it.x, &it.y).y;
            axpy(&mut it.y, -p.beta, &gy);
        }
        let gf = o.grad_f(&it.x, &it.y);
        let cold = !p.warm_start_w || self.state.w.nrows() != it.y.nrows();
        let mut w = if cold {
            zeros(it.y.nrows())
        } else {
            self.state.w.clone()
        };
        for t in 0..p.t_inner {
            let r = if t == 0 && cold {
                gf.y.clone()
            } else {
                let hw = o.hvp_yy_g(&it.x, &it.y, &w);
                lincomb(1.0, &gf.y, 1.0, &hw)
            };
            let d = match p.w_increment {
                WIncrement::Pl => o.hvp_yy_g(&it.x, &it.y, &r),
                WIncrement::StronglyConvex => r,
            };
            axpy(&mut w, -p.rho, &d);
        }
        let jw = o.jvp_xy_g(&it.x, &it.y, &w);
        let dx = lincomb(1.0, &gf.x, 1.0, &jw);
        axpy(&mut it.x, -p.alpha, &dx);
        self.state.w = w;
        vec![("dx_norm", norm(&dx))]
    }
    fn aux(&self) -> Vec<(&'static str, &Mat<f64>)> {
        vec![("w", &self.state.w)]
    }
    fn shadow(&self) -> Option<&Mat<f64>> {
        Some(&self.state.w)
    }
    state_io!();
}

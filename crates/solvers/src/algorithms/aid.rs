use crate::error::{Error, check_pos};
use crate::oracle::Oracle;
use crate::rules::{Rule, StepRules, half_inv_l_phi, inv_l_g};
use crate::solver::{Iterate, Scalars, Solver, col, state_io};
use crate::vecops::{axpy, lincomb, norm, zeros};
use bilevel_linalg::Mat;
use serde::{Deserialize, Serialize};

/// Parameters of [`SingleLoopAid`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SingleLoopAidParams {
    /// `α`: lower-level gradient step (line 4). Theorem 1 takes `α = 1/L`.
    pub alpha: f64,
    /// `η`: step of the one gradient step on the linear system `∇²ᵧᵧg·v = ∇ᵧf` (line 6).
    /// Theorem 1 takes `η = 1/L`.
    pub eta: f64,
    /// `β`: outer step (line 8). Theorem 1's value needs problem constants (Lemma 4).
    pub beta: f64,
}

impl SingleLoopAidParams {
    /// The paper's `α = η = 1/L` for a lower level whose gradient is `L`-Lipschitz, with outer
    /// step `beta`.
    pub fn for_lipschitz(l: f64, beta: f64) -> Self {
        SingleLoopAidParams {
            alpha: 1.0 / l,
            eta: 1.0 / l,
            beta,
        }
    }

    /// Reject non-positive or non-finite steps.
    pub fn validate(&self) -> Result<(), Error> {
        check_pos(NAME, "alpha", self.alpha)?;
        check_pos(NAME, "eta", self.eta)?;
        check_pos(NAME, "beta", self.beta)
    }
}

impl Default for SingleLoopAidParams {
    /// `L = 1` (`α = η = 1`) and `β = 0.01`.
    fn default() -> Self {
        Self::for_lipschitz(1.0, 0.01)
    }
}

impl StepRules for SingleLoopAidParams {
    fn rules() -> &'static [Rule<Self>] {
        &[
            Rule {
                key: "alpha",
                text: "1/L_g (single-loop AID/ITD paper, Theorem 1: α = 1/L)",
                unless_set: &[],
                value: inv_l_g,
                set: |p, v| p.alpha = v,
            },
            Rule {
                key: "eta",
                text: "1/L_g (same paper, Theorem 1: η = 1/L)",
                unless_set: &[],
                value: inv_l_g,
                set: |p, v| p.eta = v,
            },
            Rule {
                key: "beta",
                text: "1/(2 L_Φ): a gradient step on the L_Φ-smooth Φ (our choice: Theorem 1's β, \
                       from Lemma 4, is of order κ⁻⁵ and needs the Hessian-Lipschitz constant ρ)",
                unless_set: &[],
                value: half_inv_l_phi,
                set: |p, v| p.beta = v,
            },
        ]
    }
}

pub(crate) const NAME: &str = "aid-single-loop";

#[derive(Clone, Debug, Serialize, Deserialize)]
struct State {
    #[serde(with = "col")]
    v: Mat<f64>,
}

/// Single-loop AID: Algorithm 1 of "Sharper Analysis of Single-Loop Methods for Bilevel
/// Optimization".
///
/// Per iteration, with warm starts for `y` and `v`:
/// `ŷ = y − α∇ᵧg(x, y)`; `v̂ = (I − η∇²ᵧᵧg(x, ŷ))v + η∇ᵧf(x, ŷ)`;
/// `x ← x − β(∇ₓf(x, ŷ) − ∇²ₓᵧg(x, ŷ)v̂)`. Cost: 2 Gc and 2 MV per iteration.
/// Theorem 1: `(1/K)Σ‖∇Φ(x_k)‖² = O(κ⁵/K)`.
#[derive(Clone, Debug)]
pub struct SingleLoopAid {
    params: SingleLoopAidParams,
    state: State,
}

impl SingleLoopAid {
    /// A solver with validated parameters.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first bad parameter.
    pub fn new(params: SingleLoopAidParams) -> Result<Self, Error> {
        params.validate()?;
        Ok(SingleLoopAid {
            params,
            state: State { v: zeros(0) },
        })
    }
}

impl Solver for SingleLoopAid {
    fn name(&self) -> &'static str {
        NAME
    }
    fn init(&mut self, o: &mut Oracle<'_>, _it: &mut Iterate) -> Result<(), Error> {
        self.state.v = zeros(o.problem().dim_y());
        Ok(())
    }
    fn step(&mut self, o: &mut Oracle<'_>, it: &mut Iterate, _k: u64) -> Scalars {
        let p = self.params;
        let gy = o.grad_g(&it.x, &it.y).y;
        axpy(&mut it.y, -p.alpha, &gy);
        let gf = o.grad_f(&it.x, &it.y);
        let hv = o.hvp_yy_g(&it.x, &it.y, &self.state.v);
        let v = &mut self.state.v;
        axpy(v, -p.eta, &hv);
        axpy(v, p.eta, &gf.y);
        let jv = o.jvp_xy_g(&it.x, &it.y, v);
        let d = lincomb(1.0, &gf.x, -1.0, &jv);
        axpy(&mut it.x, -p.beta, &d);
        vec![("hypergrad_est_norm", norm(&d))]
    }
    fn aux(&self) -> Vec<(&'static str, &Mat<f64>)> {
        vec![("v", &self.state.v)]
    }
    state_io!();
}

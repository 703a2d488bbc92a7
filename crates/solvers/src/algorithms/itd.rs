use crate::error::{Error, check_pos};
use crate::oracle::Oracle;
use crate::rules::{Rule, StepRules, half_inv_l_phi, inv_l_g};
use crate::solver::{Iterate, Scalars, Solver, state_io};
use crate::vecops::{axpy, lincomb, norm};
use serde::{Deserialize, Serialize};

/// Parameters of [`SingleLoopItd`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SingleLoopItdParams {
    /// `α`: lower-level gradient step (line 4), also the step differentiated through.
    /// Theorem 3 takes `α = 1/L`.
    pub alpha: f64,
    /// `β`: outer step (line 6). Theorem 3: `β ≤ μ³/(2L(2L² + ρM))`.
    pub beta: f64,
}

impl SingleLoopItdParams {
    /// The paper's `α = 1/L`, with outer step `beta`.
    pub fn for_lipschitz(l: f64, beta: f64) -> Self {
        SingleLoopItdParams {
            alpha: 1.0 / l,
            beta,
        }
    }

    /// Reject non-positive or non-finite steps.
    pub fn validate(&self) -> Result<(), Error> {
        check_pos(NAME, "alpha", self.alpha)?;
        check_pos(NAME, "beta", self.beta)
    }
}

impl Default for SingleLoopItdParams {
    /// `L = 1` (`α = 1`) and `β = 0.01`.
    fn default() -> Self {
        Self::for_lipschitz(1.0, 0.01)
    }
}

impl StepRules for SingleLoopItdParams {
    fn rules() -> &'static [Rule<Self>] {
        &[
            Rule {
                key: "alpha",
                text: "1/L_g (single-loop AID/ITD paper, Theorem 3: α = 1/L)",
                unless_set: &[],
                value: inv_l_g,
                set: |p, v| p.alpha = v,
            },
            Rule {
                key: "beta",
                text: "1/(2 L_Φ): a gradient step on the L_Φ-smooth Φ (our choice: Theorem 3 asks \
                       β ≤ μ³/(2L(2L² + ρM)), which needs ρ and M)",
                unless_set: &[],
                value: half_inv_l_phi,
                set: |p, v| p.beta = v,
            },
        ]
    }
}

pub(crate) const NAME: &str = "itd-single-loop";

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct State {}

/// Single-loop ITD: Algorithm 2 of "Sharper Analysis of Single-Loop Methods for Bilevel
/// Optimization".
///
/// Per iteration, warm-starting `y⁰ = y`: `ŷ = y⁰ − α∇ᵧg(x, y⁰)` and the hypergradient obtained
/// by differentiating through that one step,
/// `∇̂Φ = ∇ₓf(x, ŷ) − α∇²ₓᵧg(x, y⁰)∇ᵧf(x, ŷ)`; `x ← x − β∇̂Φ`. Cost: 2 Gc and 1 MV.
/// Theorem 3: `(1/K)Σ‖∇Φ(x_k)‖² = O(κ³/K + κ²)`, and Theorem 4's lower bound `Θ(κ²)` shows the
/// error floor is real.
#[derive(Clone, Debug)]
pub struct SingleLoopItd {
    params: SingleLoopItdParams,
    state: State,
}

impl SingleLoopItd {
    /// A solver with validated parameters.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first bad parameter.
    pub fn new(params: SingleLoopItdParams) -> Result<Self, Error> {
        params.validate()?;
        Ok(SingleLoopItd {
            params,
            state: State {},
        })
    }
}

impl Solver for SingleLoopItd {
    fn name(&self) -> &'static str {
        NAME
    }
    fn step(&mut self, o: &mut Oracle<'_>, it: &mut Iterate, _k: u64) -> Scalars {
        let p = self.params;
        let y0 = it.y.clone();
        let gy = o.grad_g(&it.x, &y0).y;
        axpy(&mut it.y, -p.alpha, &gy);
        let gf = o.grad_f(&it.x, &it.y);
        let j = o.jvp_xy_g(&it.x, &y0, &gf.y);
        let d = lincomb(1.0, &gf.x, -p.alpha, &j);
        axpy(&mut it.x, -p.beta, &d);
        vec![("hypergrad_est_norm", norm(&d))]
    }
    state_io!();
}

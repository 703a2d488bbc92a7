//! F²BA and F²BSA: the fixed-penalty fully first-order method of Chen, Ma and Zhang, with exact
//! or minibatch oracles, on F²SA's penalty iteration (`f2sa::penalty_iteration`).

use super::f2sa::{PenaltySteps, State, penalty_iteration};
use super::soba::DEFAULT_BATCH;
use crate::error::{Error, check_count, check_pos};
use crate::oracle::Oracle;
use crate::rules::{INNER, OUTER, Rule, StepRules, half_inv_l_phi, inv_l_g};
use crate::sampling::{Minibatch, Source};
use crate::solver::{Iterate, Scalars, Solver, state_io};
use bilevel_linalg::Mat;
use serde::{Deserialize, Serialize};

/// Parameters of [`F2ba`] (Chen, Ma and Zhang, "Near-Optimal Nonconvex-Strongly-Convex Bilevel
/// Optimization with Fully First-Order Oracles").
///
/// Per outer iteration `t`, `K` times `z ← z − η_z∇ᵧg(x, z)` and
/// `y ← y − η_y(∇ᵧf(x, y) + λ∇ᵧg(x, y))`, then
/// `x ← x − η_x(∇ₓf(x, y) + λ(∇ₓg(x, y) − ∇ₓg(x, z)))`: gradient descent on the penalized
/// Lagrangian `L_λ(x, y) = f(x, y) + λ(g(x, y) − min_z g(x, z))` with both lower-level problems
/// solved inexactly by `K` gradient steps. The penalty `λ` and every step are constant.
///
/// Sources. The updates are the ones our F²SA with a fixed penalty
/// ([`F2saParams::fixed_lambda`](super::F2saParams::fixed_lambda)) runs, and F²BA with
/// `z_from_y = false` gives its bits (a test checks it, with steps for which F²SA's `ξα`
/// rounds back to `η_x`). The authors' code
/// (`TrueNobility303/F2BA`, `medium_sized/l2reg.py`, function `F2BA`, lines 224-256) differs
/// from that scheme in three ways, which we document rather than copy:
/// - it restarts `z` from `y` at every outer iteration (line 234, `xhat.data =
///   x.data.clone()`, with `x` their lower-level variable): our `z_from_y`, on by default;
/// - its `y` step takes `∇ᵧg` at `z`, not at `y` (line 238 `gx = g_x(xhat, w, trainset)`,
///   then line 241 `x.grad = fx / args.lmbd + gx`). Then `y − z` only accumulates
///   `−(η_z/λ)∑∇ᵧf`, and the `x` step's `λ(∇ₓg(x, y) − ∇ₓg(x, z))` stands for
///   `−K η_z ∇²ₓᵧg ∇ᵧf` instead of `−∇²ₓᵧg [∇²ᵧᵧg]⁻¹∇ᵧf`: a different hypergradient except where
///   `∇²ᵧᵧg = I/(Kη_z)`. We take `∇ᵧg` at `y`, the gradient of `L_λ` in `y`, as F²SA does;
///   the older `single_machine/data_cleaning.py` and `Hpo/l2reg.py` do the same as
///   `medium_sized/l2reg.py`;
/// - one learning rate for `y` and `z` on `∇ᵧf/λ + ∇ᵧg` and `∇ᵧg` (line 231, one SGD optimizer
///   over both, `lr=args.x_lr`): in our form `η_y = η_z/λ`, the default rule below. Its optional
///   (Nesterov) momentum on `y, z` and momentum on `x` (`--x_momentum`, `--w_momentum`, both 0
///   by default) are not implemented.
///
/// The paper's text was not at hand when this was written: the theorem's `λ` (growing as the
/// target accuracy shrinks), `η_x` (of order `κ⁻³/ℓ`) and `K` (of order `κ log(λκ)`) are cited
/// as orders only, and its choice between warm-starting `z` and restarting it is unchecked.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct F2baParams {
    /// `λ`: the fixed penalty. Default 10, the code's `--lmbd` (the theory takes `λ` large,
    /// growing as the target accuracy shrinks; the bias of `∇L*_λ` is `O(κ³/λ)`).
    pub lambda: f64,
    /// `η_y`: step of `y` on `∇ᵧf + λ∇ᵧg`. Default 0.1 (`η_z/λ`, the code's one learning rate
    /// for `y` and `z`; rule `1/(λL_g)`).
    pub eta_y: f64,
    /// `η_z`: step of `z` on `∇ᵧg`. Default 1 (`1/L_g` for `L_g = 1`; rule `1/L_g`).
    pub eta_z: f64,
    /// `η_x`: step of `x`. Default 0.01 (F²SA's fixed-penalty `x` step; the code's `--w_lr` is
    /// set per problem; rule `1/(2L_Φ)`, our choice).
    pub eta_x: f64,
    /// `K ≥ 1`: gradient steps on `y` and on `z` per outer iteration. Default 10, the code's
    /// `--iterations`.
    pub inner_steps: usize,
    /// Restart `z` from `y` at every outer iteration (the code, line 234) instead of
    /// warm-starting it from its own last value (F²SA). Default `true`.
    pub z_from_y: bool,
    /// Minibatch oracles (F²BSA): every gradient an average over freshly drawn samples, the
    /// two `∇ₓg` of the `x` step on one shared draw (the code's stochastic variant, its
    /// `F2SA` in `medium_sized/l2reg.py`, draws them independently, line 661). `None`: exact
    /// gradients (F²BA).
    pub batch: Option<Minibatch>,
}

impl Default for F2baParams {
    /// `λ = 10`, `η_y = 0.1`, `η_z = 1`, `η_x = 0.01`, `K = 10`, `z` from `y`, exact gradients.
    fn default() -> Self {
        F2baParams {
            lambda: 10.0,
            eta_y: 0.1,
            eta_z: 1.0,
            eta_x: 0.01,
            inner_steps: 10,
            z_from_y: true,
            batch: None,
        }
    }
}

impl F2baParams {
    /// Reject out-of-range values, naming `solver` (`f2ba` or `f2bsa`).
    pub fn validate_as(&self, solver: &'static str) -> Result<(), Error> {
        check_pos(solver, "lambda", self.lambda)?;
        check_pos(solver, "eta_y", self.eta_y)?;
        check_pos(solver, "eta_z", self.eta_z)?;
        check_pos(solver, "eta_x", self.eta_x)?;
        check_count(solver, "inner_steps", self.inner_steps, 1, ">= 1")?;
        self.batch.map_or(Ok(()), |b| b.validate(solver))
    }

    /// Reject out-of-range values.
    pub fn validate(&self) -> Result<(), Error> {
        self.validate_as(NAME)
    }
}

/// Parameters of F²BSA, the stochastic F²BA: [`F2baParams`] (the same keys) with minibatches
/// and smaller steps by default. The paper's minibatch sizes depend on the noise level and the
/// target accuracy; the default is the stochastic solvers' 64 and 64 (the code's stochastic
/// variant takes batches of 1000 samples, `medium_sized/l2reg.py` line 609). The steps are the
/// stochastic solvers' 0.1 for `η_z` and `η_z/λ = 0.01` for `η_y`: a minibatch of `B` of `N`
/// samples can weigh a sample's curvature by `N/B`, and F²BA's `η_z = 1` then diverged on
/// quadratic-κ with batches of 2 of 8 samples.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct F2bsaParams {
    /// The parameters, `batch` included.
    #[serde(flatten)]
    pub f2ba: F2baParams,
}

impl Default for F2bsaParams {
    /// [`F2baParams::default`] with `η_z = 0.1`, `η_y = 0.01` and batches of 64 and 64.
    fn default() -> Self {
        F2bsaParams {
            f2ba: F2baParams {
                eta_z: 0.1,
                eta_y: 0.01,
                batch: Some(DEFAULT_BATCH),
                ..F2baParams::default()
            },
        }
    }
}

impl F2bsaParams {
    /// Reject out-of-range values.
    pub fn validate(&self) -> Result<(), Error> {
        self.f2ba.validate_as(STOCHASTIC_NAME)
    }
}

/// The rules `η_z = 1/L_g`, then `η_y = η_z/λ`, then `η_x = 1/(2L_Φ)`, for a parameter struct
/// holding the [`F2baParams`] at `p` or at `p.$inner`.
macro_rules! f2ba_rules {
    ($p:ty $(, $inner:ident)?) => {
        impl StepRules for $p {
            fn rules() -> &'static [Rule<Self>] {
                &[
                    Rule {
                        key: "eta_z",
                        text: INNER,
                        unless_set: &[],
                        value: inv_l_g,
                        set: |p, v| p$(.$inner)?.eta_z = v,
                    },
                    Rule {
                        key: "eta_y",
                        text: "η_z/λ: the reference code's one learning rate for y on \
                               ∇ᵧf/λ + ∇ᵧg and for z on ∇ᵧg",
                        unless_set: &[],
                        value: |c| Some(c.params$(.$inner)?.eta_z / c.params$(.$inner)?.lambda),
                        set: |p, v| p$(.$inner)?.eta_y = v,
                    },
                    Rule {
                        key: "eta_x",
                        text: OUTER,
                        unless_set: &[],
                        value: half_inv_l_phi,
                        set: |p, v| p$(.$inner)?.eta_x = v,
                    },
                ]
            }
        }
    };
}

f2ba_rules!(F2baParams);
f2ba_rules!(F2bsaParams, f2ba);

pub(crate) const NAME: &str = "f2ba";
pub(crate) const STOCHASTIC_NAME: &str = "f2bsa";

/// F²BA (exact gradients) and F²BSA (minibatches): see [`F2baParams`] for the updates and
/// their sources. First order: `3K + 3` Gc per outer iteration.
#[derive(Clone, Debug)]
pub struct F2ba {
    name: &'static str,
    params: F2baParams,
    state: State,
}

impl F2ba {
    /// F²BA with validated parameters.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first bad parameter.
    pub fn new(params: F2baParams) -> Result<Self, Error> {
        params.validate()?;
        Ok(Self::named(NAME, params))
    }

    /// F²BSA with validated parameters (its name in runs and errors is `f2bsa`).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first bad parameter.
    pub fn stochastic(params: F2bsaParams) -> Result<Self, Error> {
        params.validate()?;
        Ok(Self::named(STOCHASTIC_NAME, params.f2ba))
    }

    fn named(name: &'static str, params: F2baParams) -> Self {
        F2ba {
            name,
            params,
            state: State::new(params.batch.as_ref()),
        }
    }
}

impl Solver for F2ba {
    fn name(&self) -> &'static str {
        self.name
    }
    fn init(&mut self, o: &mut Oracle<'_>, it: &mut Iterate) -> Result<(), Error> {
        if let Some(b) = &self.params.batch {
            b.check(self.name, o)?;
        }
        self.state.z = it.y.clone();
        Ok(())
    }
    fn step(&mut self, o: &mut Oracle<'_>, it: &mut Iterate, _k: u64) -> Scalars {
        let p = self.params;
        if p.z_from_y {
            self.state.z.clone_from(&it.y);
        }
        let steps = PenaltySteps {
            alpha: p.eta_y,
            gamma: p.eta_z,
            lambda: p.lambda,
            x_step: p.eta_x,
            inner_steps: p.inner_steps,
        };
        let src = p.batch.as_ref().map_or(Source::Full, Source::Batch);
        penalty_iteration(o, it, &mut self.state.z, &mut self.state.stream, src, steps);
        Vec::new()
    }
    fn aux(&self) -> Vec<(&'static str, &Mat<f64>)> {
        vec![("z", &self.state.z)]
    }
    state_io!();
}

//! BGS: warm-started inner steps on `y`, a few of them differentiated in reverse mode, and
//! AmIGO's warm-started linear system for the correction.

use super::soba::DEFAULT_BATCH;
use crate::error::{Error, check_count, check_pos};
use crate::implicit::{State, hypergradient, inner_sgd, sgd_linear};
use crate::oracle::Oracle;
use crate::rules::{LINEAR, Rule, StepRules, inner_rule, l_g_rule, outer_rule};
use crate::sampling::{Draw, Minibatch, Source, grad_f, grad_g, hvp_g};
use crate::solver::{Iterate, Scalars, Solver, state_io};
use crate::vecops::{axpy, norm};
use bilevel_linalg::Mat;
use serde::{Deserialize, Serialize};

/// Parameters of [`Bgs`]. The numbers of steps are those of the authors' configuration of
/// the method (`configs/selection/BGS.yaml` of their code: `warm_start_iter: 0`,
/// `unrolled_iter: 1`, one step of SGD on the linear system, warm-started). Their inner solver
/// there is Adam with its own step; ours is SGD, with AmIGO's steps (0.1, or the shared `1/L_g`
/// rules) and AmIGO's batches.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BgsParams {
    /// `α`: the step of SGD on `g(x, ·)`, in the warm-start and the unrolled steps alike.
    /// Default 0.1; the rule is the shared `1/L_g`.
    pub alpha: f64,
    /// `β`: the outer step. Default 0.1.
    pub beta: f64,
    /// `η`: the step of SGD on the linear system. Default 0.1; the rule is `1/L_g`.
    pub eta: f64,
    /// `T`: SGD steps on `g(x, ·)` per outer iteration that are not differentiated (the
    /// authors' `warm_start_iter`). Default 0.
    pub warm_start_steps: usize,
    /// `U`: the SGD steps after those, differentiated in reverse mode (the authors'
    /// `unrolled_iter`). Default 1. `T + U ≥ 1`; with `U = 0` the method is AmIGO.
    pub unrolled_steps: usize,
    /// `N`: SGD steps on the linear system per outer iteration, warm-started from the previous
    /// solution (the authors' `dual_var_warm_start`). Default 1.
    pub linear_steps: usize,
    /// Minibatch oracles: every inner gradient (the unrolled step's reverse product on the
    /// same draw as its forward step), every step on the linear system, the mixed product and
    /// the pair `∇ₓf, ∇ᵧf` each take a draw of their own. `None`: exact oracles.
    /// Default 64 and 64.
    pub batch: Option<Minibatch>,
}

impl Default for BgsParams {
    /// `α = β = η = 0.1`, `T = 0`, `U = 1`, `N = 1`, batches of 64.
    fn default() -> Self {
        BgsParams {
            alpha: 0.1,
            beta: 0.1,
            eta: 0.1,
            warm_start_steps: 0,
            unrolled_steps: 1,
            linear_steps: 1,
            batch: Some(DEFAULT_BATCH),
        }
    }
}

impl BgsParams {
    /// Reject out-of-range values.
    pub fn validate(&self) -> Result<(), Error> {
        check_pos(NAME, "alpha", self.alpha)?;
        check_pos(NAME, "beta", self.beta)?;
        check_pos(NAME, "eta", self.eta)?;
        let inner = self.warm_start_steps.saturating_add(self.unrolled_steps);
        check_count(
            NAME,
            "unrolled_steps",
            inner,
            1,
            "warm_start_steps + unrolled_steps >= 1",
        )?;
        check_count(NAME, "linear_steps", self.linear_steps, 1, ">= 1")?;
        self.batch.map_or(Ok(()), |b| b.validate(NAME))
    }
}

impl StepRules for BgsParams {
    fn rules() -> &'static [Rule<Self>] {
        &[
            inner_rule!(BgsParams, alpha),
            l_g_rule!(BgsParams, eta, LINEAR),
            outer_rule!(BgsParams, beta),
        ]
    }
}

pub(crate) const NAME: &str = "bgs";

/// BGS, Arbel and Mairal's method for bilevel games with selection ("Non-Convex Bilevel Games
/// with Critical Point Selection Maps"; the name is their code's, `configs/selection/BGS.yaml`),
/// as their code runs it (`core/selection.py`: `DiffOpt.run` and
/// `ArgMinOp.backward`): the follower's `y` is warm-started from the previous outer iteration;
/// the leader's gradient differentiates the last `U` inner steps in reverse mode (unrolled
/// optimization) and adds the correction from a linear system whose solution is warm-started
/// too, which removes the error of the truncated unrolling.
///
/// Per outer iteration, each quantity on its own draw of samples:
/// `T` steps `y ← y − α∇ᵧgᵢ(x, y)`; `U` more, `yⱼ₊₁ = yⱼ − α∇ᵧgᵢⱼ(x, yⱼ)`, recorded;
/// `(∇ₓfⱼ, ∇ᵧfⱼ)` at `y_U`; the reverse pass `a ← ∇ᵧfⱼ`, then for `j = U − 1, …, 0`:
/// `r ← r − α∇²ₓᵧgᵢⱼ(x, yⱼ)·a`, `a ← a − α∇²ᵧᵧgᵢⱼ(x, yⱼ)·a` (`a` is the adjoint at the first
/// unrolled iterate, `r` the unrolled part of the gradient);
/// `N` steps `v ← v − η(∇²ᵧᵧgₗ(x, y_U)·v − a)` from the previous `v` (`v₀ = 0`);
/// `x ← x − β(∇ₓfⱼ + r − ∇²ₓᵧgₘ(x, y_U)·v)`. Cost: `T + U + 1` Gc and `U + N + 1` MV.
///
/// At a critical point `y_U = yⱼ = y*` with the exact `v`, `r = −∇²ₓᵧg·αΣ_{j<U}(I − αH)ʲ∇ᵧf`
/// and `v = H⁻¹(I − αH)^U∇ᵧf` sum to `−∇²ₓᵧg·H⁻¹∇ᵧf`, `H = ∇²ᵧᵧg`: the step is along the exact
/// hypergradient whatever `U`. The authors' `z` (the solution of `Hz + a = 0`) is our `−v`.
#[derive(Clone, Debug)]
pub struct Bgs {
    params: BgsParams,
    state: State,
}

impl Bgs {
    /// A solver with validated parameters.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first bad parameter.
    pub fn new(params: BgsParams) -> Result<Self, Error> {
        params.validate()?;
        Ok(Bgs {
            params,
            state: State::new(params.batch.as_ref()),
        })
    }
}

impl Solver for Bgs {
    fn name(&self) -> &'static str {
        NAME
    }
    fn init(&mut self, o: &mut Oracle<'_>, _it: &mut Iterate) -> Result<(), Error> {
        self.state.init(NAME, self.params.batch.as_ref(), o)
    }
    fn step(&mut self, o: &mut Oracle<'_>, it: &mut Iterate, _k: u64) -> Scalars {
        let p = self.params;
        let src = p.batch.as_ref().map_or(Source::Full, Source::Batch);
        let (x, y, st) = (&mut it.x, &mut it.y, &mut self.state);
        inner_sgd(o, x, y, p.alpha, p.warm_start_steps, &src, &mut st.stream);
        // The unrolled steps, with their points and draws for the reverse pass.
        let mut tape: Vec<(Mat<f64>, Draw)> = Vec::with_capacity(p.unrolled_steps);
        for _ in 0..p.unrolled_steps {
            let d = src.draw_g(o, &mut st.stream);
            let gy = grad_g(o, x, y, &d).y;
            tape.push((y.clone(), d));
            axpy(y, -p.alpha, &gy);
        }
        let dj = src.draw_f(o, &mut st.stream);
        let gf = grad_f(o, x, y, &dj);
        let mut a = gf.y;
        let mut fx = gf.x;
        let unrolled_start = fx.clone();
        for (yj, d) in tape.iter().rev() {
            let c = hvp_g(o, x, yj, &a, d);
            axpy(&mut fx, -p.alpha, &c.xy);
            axpy(&mut a, -p.alpha, &c.yy);
        }
        let mut r = fx.clone();
        axpy(&mut r, -1.0, &unrolled_start);
        sgd_linear(
            o,
            x,
            y,
            &mut st.v,
            &a,
            p.eta,
            p.linear_steps,
            &src,
            &mut st.stream,
        );
        let d = hypergradient(o, x, y, &fx, &st.v, &src, &mut st.stream);
        axpy(x, -p.beta, &d);
        vec![
            ("hypergrad_est_norm", norm(&d)),
            ("unrolled_norm", norm(&r)),
            ("v_norm", norm(&st.v)),
        ]
    }
    fn aux(&self) -> Vec<(&'static str, &Mat<f64>)> {
        vec![("v", &self.state.v)]
    }
    state_io!();
}

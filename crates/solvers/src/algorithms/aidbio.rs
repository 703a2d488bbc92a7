use crate::error::{Error, check, check_count, check_pos};
use crate::implicit::{hypergradient, inner_sgd, neumann};
use crate::linear::cg;
use crate::oracle::Oracle;
use crate::rules::{Rule, StepRules, inner_rule, outer_rule};
use crate::sampling::{Minibatch, SampleStream, Source, grad_f, hvp_yy_g_into};
use crate::solver::{Iterate, Scalars, Solver, col, state_io};
use crate::vecops::{axpy, norm, zeros};
use bilevel_linalg::{CgStart, CgWorkspace, Mat, MatMut, MatRef};
use serde::{Deserialize, Serialize};

/// How [`AidBio`] solves `∇²ᵧᵧg·v = ∇ᵧf`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum LinearSolve {
    /// Conjugate gradient (`bilevel_linalg::conjugate_gradient`) warm-started from the previous
    /// `v`, at most `max_iter` products (the warm start's initial residual included), stopping at
    /// relative residual `tol`.
    Cg {
        /// Product cap.
        max_iter: usize,
        /// Relative residual tolerance.
        tol: f64,
    },
    /// The truncated Neumann series `v = η Σ_{q<Q} (I − η∇²ᵧᵧg)^q ∇ᵧf` (`Q − 1` products).
    Neumann {
        /// `Q`: number of terms.
        terms: usize,
        /// `η ≤ 1/L`.
        eta: f64,
    },
}

/// Parameters of [`AidBio`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AidBioParams {
    /// `α`: inner gradient step.
    pub alpha: f64,
    /// `β ≥ 0`: outer step. `β = 0` keeps `x` at its start and computes no hypergradient: the
    /// lower level alone, trained with the weights `x₀` give it (the "without bilevel
    /// optimization" baseline of the F²SA slides' hyper-cleaning experiment).
    pub beta: f64,
    /// `N`: inner gradient steps per outer iteration (warm-started).
    pub inner_steps: usize,
    /// The linear-system solver.
    pub solve: LinearSolve,
    /// Minibatch oracles, the stochastic AIDBiO of the same paper (stocBiO): every gradient,
    /// Hessian-vector and mixed product is an average over its own freshly drawn samples (see
    /// [`AidBio`]). `None` (the default, left out of the serialized form so that runs recorded
    /// before this option read back unchanged): exact oracles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<Minibatch>,
}

impl Default for AidBioParams {
    /// `α = 0.1`, `β = 0.01`, `N = 10`, CG with 20 products to `1e-10`.
    fn default() -> Self {
        AidBioParams {
            alpha: 0.1,
            beta: 0.01,
            inner_steps: 10,
            solve: LinearSolve::Cg {
                max_iter: 20,
                tol: 1e-10,
            },
            batch: None,
        }
    }
}

impl AidBioParams {
    /// Reject out-of-range values.
    pub fn validate(&self) -> Result<(), Error> {
        check_pos(NAME, "alpha", self.alpha)?;
        check(
            NAME,
            "beta",
            self.beta,
            self.beta >= 0.0 && self.beta.is_finite(),
            ">= 0, finite",
        )?;
        check_count(NAME, "inner_steps", self.inner_steps, 1, ">= 1")?;
        self.batch.map_or(Ok(()), |b| b.validate(NAME))?;
        match self.solve {
            LinearSolve::Cg { max_iter, tol } => {
                check_count(NAME, "solve.max_iter", max_iter, 1, ">= 1")?;
                check(NAME, "solve.tol", tol, tol >= 0.0, ">= 0")
            }
            LinearSolve::Neumann { terms, eta } => {
                check_count(NAME, "solve.terms", terms, 1, ">= 1")?;
                check_pos(NAME, "solve.eta", eta)
            }
        }
    }
}

impl StepRules for AidBioParams {
    fn rules() -> &'static [Rule<Self>] {
        &[
            inner_rule!(AidBioParams, alpha),
            outer_rule!(AidBioParams, beta),
        ]
    }
}

pub(crate) const NAME: &str = "aidbio";

#[derive(Clone, Debug, Serialize, Deserialize)]
struct State {
    #[serde(with = "col")]
    v: Mat<f64>,
    /// The minibatch index stream (unused with exact oracles; absent from the checkpoints of
    /// runs made before the option).
    #[serde(default = "unseeded")]
    stream: SampleStream,
}

/// The stream of a checkpoint that has none (an exact-oracle run).
fn unseeded() -> SampleStream {
    SampleStream::new(0)
}

/// AIDBiO (Ji, Yang and Liang, "Bilevel Optimization: Convergence Analysis and Enhanced
/// Design"), the double-loop baseline of the PGD-QP paper (§5).
///
/// Per iteration: `N` gradient steps on `g(x, ·)`; solve `∇²ᵧᵧg·v = ∇ᵧf` by CG (warm-started)
/// or a Neumann series; `x ← x − β(∇ₓf − ∇²ₓᵧg·v)`. Cost: `N + 1` Gc, and the solver's
/// products plus one MV.
/// The CG solve is `bilevel_linalg::conjugate_gradient` warm-started in place in `v`, with
/// its vectors in a workspace kept across iterations.
///
/// With [`AidBioParams::batch`] it is their stochastic variant (stocBiO): each inner step is a
/// minibatch gradient step on `g`, `∇f` is one minibatch gradient (both blocks on the same
/// samples), and the mixed product takes a draw of its own. The Neumann series takes a fresh
/// draw for every Hessian-vector product, so that its `q`-th term is the product of `q`
/// independent estimates of `I − η∇²ᵧᵧg`, an unbiased estimate of `(I − η∇²ᵧᵧg)^q` (stocBiO's
/// estimator); CG needs one operator for the whole solve, so it solves with the Hessian of one
/// draw. The counts are those of the exact method, each stochastic oracle one Gc or one MV.
/// [`Stocbio`](super::Stocbio) is this method with the series and the stochastic method's
/// defaults (minibatches of 64), under its own name.
#[derive(Clone, Debug)]
pub struct AidBio {
    params: AidBioParams,
    state: State,
    /// CG vectors, reused across outer iterations.
    ws: CgWorkspace,
}

impl AidBio {
    /// A solver with validated parameters.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first bad parameter.
    pub fn new(params: AidBioParams) -> Result<Self, Error> {
        params.validate()?;
        Ok(AidBio {
            params,
            state: State {
                v: zeros(0),
                stream: SampleStream::new(params.batch.map_or(0, |b| b.seed)),
            },
            ws: CgWorkspace::new(0),
        })
    }
}

impl Solver for AidBio {
    fn name(&self) -> &'static str {
        NAME
    }
    fn init(&mut self, o: &mut Oracle<'_>, _it: &mut Iterate) -> Result<(), Error> {
        if let Some(b) = &self.params.batch {
            b.check(NAME, o)?;
        }
        let m = o.problem().dim_y();
        self.state.v = zeros(m);
        self.ws = CgWorkspace::new(m);
        Ok(())
    }
    fn step(&mut self, o: &mut Oracle<'_>, it: &mut Iterate, _k: u64) -> Scalars {
        let p = self.params;
        let src = p.batch.as_ref().map_or(Source::Full, Source::Batch);
        let stream = &mut self.state.stream;
        inner_sgd(o, &it.x, &mut it.y, p.alpha, p.inner_steps, &src, stream);
        if p.beta == 0.0 {
            // x stays where it is: nothing below would change it.
            return vec![
                ("hypergrad_est_norm", 0.0),
                ("cg_iters", 0.0),
                ("cg_residual", 0.0),
                ("cg_failed", 0.0),
            ];
        }
        let d = src.draw_f(o, stream);
        let gf = grad_f(o, &it.x, &it.y, &d);
        let (x, y) = (&it.x, &it.y);
        let mut solve_info = (0.0, 0.0, 0.0);
        match p.solve {
            LinearSolve::Cg { max_iter, tol } => {
                // One draw for the whole solve: CG needs a fixed operator.
                let d = src.draw_g(o, stream);
                let mut op = |u: MatRef<'_, f64>, out: MatMut<'_, f64>| {
                    hvp_yy_g_into(o, x, y, u, out, &d);
                };
                // Warm start from the previous solution, kept in place in `state.v`.
                match cg(
                    &mut op,
                    gf.y.as_ref(),
                    self.state.v.as_mut(),
                    CgStart::Warm,
                    max_iter,
                    tol,
                    &mut self.ws,
                ) {
                    Ok(s) => solve_info = (s.products as f64, s.rel_residual, 0.0),
                    // Non-positive curvature or a non-finite product: `v` keeps CG's last
                    // iterate (a NaN in it ends the run as diverged); the step goes on with it.
                    Err(_) => solve_info.2 = 1.0,
                }
            }
            LinearSolve::Neumann { terms, eta } => {
                // A fresh draw per product: independent factors (I − ηH_j).
                self.state.v = neumann(o, x, y, &gf.y, eta, terms - 1, &src, stream);
            }
        }
        let d = hypergradient(o, x, y, &gf.x, &self.state.v, &src, stream);
        axpy(&mut it.x, -p.beta, &d);
        vec![
            ("hypergrad_est_norm", norm(&d)),
            ("cg_iters", solve_info.0),
            ("cg_residual", solve_info.1),
            ("cg_failed", solve_info.2),
        ]
    }
    fn aux(&self) -> Vec<(&'static str, &Mat<f64>)> {
        vec![("v", &self.state.v)]
    }
    state_io!();
}

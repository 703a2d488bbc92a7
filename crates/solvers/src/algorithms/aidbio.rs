use crate::error::{Error, check, check_count, check_pos};
use crate::linear::cg;
use crate::oracle::Oracle;
use crate::rules::{Rule, StepRules, inner_rule, outer_rule};
use crate::solver::{Iterate, Scalars, Solver, col, state_io};
use crate::vecops::{axpy, lincomb, norm, zeros};
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
    /// `β`: outer step.
    pub beta: f64,
    /// `N`: inner gradient steps per outer iteration (warm-started).
    pub inner_steps: usize,
    /// The linear-system solver.
    pub solve: LinearSolve,
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
        }
    }
}

impl AidBioParams {
    /// Reject out-of-range values.
    pub fn validate(&self) -> Result<(), Error> {
        check_pos(NAME, "alpha", self.alpha)?;
        check_pos(NAME, "beta", self.beta)?;
        check_count(NAME, "inner_steps", self.inner_steps, 1, ">= 1")?;
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
}

/// AIDBiO (Ji, Yang and Liang, "Bilevel Optimization: Convergence Analysis and Enhanced
/// Design"), the double-loop baseline of the PGD-QP paper (§5).
///
/// Per iteration: `N` gradient steps on `g(x, ·)`; solve `∇²ᵧᵧg·v = ∇ᵧf` by CG (warm-started)
/// or a Neumann series; `x ← x − β(∇ₓf − ∇²ₓᵧg·v)`. Cost: `N + 1` Gc, and the solver's
/// products plus one MV.
/// The CG solve is `bilevel_linalg::conjugate_gradient` warm-started in place in `v`, with
/// its vectors in a workspace kept across iterations.
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
            state: State { v: zeros(0) },
            ws: CgWorkspace::new(0),
        })
    }
}

impl Solver for AidBio {
    fn name(&self) -> &'static str {
        NAME
    }
    fn init(&mut self, o: &mut Oracle<'_>, _it: &mut Iterate) -> Result<(), Error> {
        let m = o.problem().dim_y();
        self.state.v = zeros(m);
        self.ws = CgWorkspace::new(m);
        Ok(())
    }
    fn step(&mut self, o: &mut Oracle<'_>, it: &mut Iterate, _k: u64) -> Scalars {
        let p = self.params;
        for _ in 0..p.inner_steps {
            let gy = o.grad_g(&it.x, &it.y).y;
            axpy(&mut it.y, -p.alpha, &gy);
        }
        let gf = o.grad_f(&it.x, &it.y);
        let (x, y) = (&it.x, &it.y);
        let mut solve_info = (0.0, 0.0, 0.0);
        match p.solve {
            LinearSolve::Cg { max_iter, tol } => {
                let mut op = |u: MatRef<'_, f64>, out: MatMut<'_, f64>| {
                    o.hvp_g_yy_into(x, y, u, out);
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
                let mut term = gf.y.clone();
                let mut v = gf.y.clone();
                for _ in 1..terms {
                    let hp = o.hvp_yy_g(x, y, &term);
                    axpy(&mut term, -eta, &hp);
                    axpy(&mut v, 1.0, &term);
                }
                crate::vecops::scale(&mut v, eta);
                self.state.v = v;
            }
        }
        let v = &self.state.v;
        let jv = o.jvp_xy_g(x, y, v);
        let d = lincomb(1.0, &gf.x, -1.0, &jv);
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

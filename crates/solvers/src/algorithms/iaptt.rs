use super::rhg::reverse_through;
use crate::error::{Error, check_count, check_pos};
use crate::oracle::Oracle;
use crate::rules::{Rule, StepRules, inner_rule, outer_rule};
use crate::solver::{Iterate, Scalars, Solver, state_io};
use crate::vecops::{axpy, from_slice, norm};
use serde::{Deserialize, Serialize};

/// Parameters of [`IapttGm`], defaulting to the public reference code's data hyper-cleaning
/// settings (100 inner steps of 0.03, steps of 0.01 on `x` and on the initialization; that code
/// steps `x` with Adam, ours with plain gradient steps).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct IapttGmParams {
    /// `s`: inner gradient step on `g(x, ·)` (the step differentiated through).
    pub alpha: f64,
    /// Outer step on `x`.
    pub beta: f64,
    /// Outer step on the initialization auxiliary `z`, the start of every inner run.
    pub beta_z: f64,
    /// `K`: inner steps per outer iteration, among which the truncation point is chosen.
    pub inner_steps: usize,
}

impl Default for IapttGmParams {
    fn default() -> Self {
        IapttGmParams {
            alpha: 0.03,
            beta: 0.01,
            beta_z: 0.01,
            inner_steps: 100,
        }
    }
}

impl IapttGmParams {
    /// Reject out-of-range values.
    pub fn validate(&self) -> Result<(), Error> {
        check_pos(NAME, "alpha", self.alpha)?;
        check_pos(NAME, "beta", self.beta)?;
        check_pos(NAME, "beta_z", self.beta_z)?;
        check_count(NAME, "inner_steps", self.inner_steps, 1, ">= 1")
    }
}

impl StepRules for IapttGmParams {
    fn rules() -> &'static [Rule<Self>] {
        &[
            inner_rule!(IapttGmParams, alpha),
            outer_rule!(IapttGmParams, beta),
        ]
    }
}

pub(crate) const NAME: &str = "iaptt-gm";

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct State {
    /// The initialization auxiliary `z`: the iterate's `y` at the first step, then moved by
    /// its own hypergradient (empty until the first step).
    #[serde(default)]
    z: Vec<f64>,
}

/// IAPTT-GM: the initialization-auxiliary, pessimistic-trajectory-truncation gradient method of
/// Risheng Liu, Yaohua Liu, Shangzhi Zeng and Jin Zhang, "Towards Gradient-based Bilevel
/// Optimization with Non-convex Followers and Beyond" (NeurIPS 2021), a baseline of the GALET
/// paper's Tables 2 and 3.
///
/// Per iteration, from the auxiliary `z`: `K` gradient steps `y_{k+1} = y_k − s∇ᵧg(x, y_k)`,
/// `y_0 = z`; the *pessimistic* truncation point `k̃ = argmax_{1 ≤ k ≤ K} f(x, y_k)` (the first
/// on ties); then reverse-mode differentiation of `f(x, y_k̃)` through the `k̃` steps, to `x`
/// (`d`) and to the start `z` (`v`), as RHG's reverse pass does. Then `x ← x − βd` and
/// `z ← z − β_z v`. The reported `y` is `y_K`. Cost: `K + 1` Gc, `K` value calls of `f` and
/// `k̃` MV per iteration. Traces `truncation` (`k̃`) and the norm of `d`.
#[derive(Clone, Debug)]
pub struct IapttGm {
    params: IapttGmParams,
    state: State,
}

impl IapttGm {
    /// A solver with validated parameters.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first bad parameter.
    pub fn new(params: IapttGmParams) -> Result<Self, Error> {
        params.validate()?;
        Ok(IapttGm {
            params,
            state: State::default(),
        })
    }
}

impl Solver for IapttGm {
    fn name(&self) -> &'static str {
        NAME
    }
    fn step(&mut self, o: &mut Oracle<'_>, it: &mut Iterate, _k: u64) -> Scalars {
        let p = self.params;
        if self.state.z.is_empty() {
            self.state.z = it.y.col_as_slice(0).to_vec();
        }
        let mut traj = Vec::with_capacity(p.inner_steps + 1);
        traj.push(from_slice(&self.state.z));
        // The pessimistic truncation point: the largest upper-level value along the run.
        let (mut k_max, mut f_max) = (1, f64::NEG_INFINITY);
        for k in 0..p.inner_steps {
            let gy = o.grad_g(&it.x, &traj[k]).y;
            let mut next = traj[k].clone();
            axpy(&mut next, -p.alpha, &gy);
            let fk = o.f(&it.x, &next);
            // A NaN value is the largest: the run then differentiates where it broke down, and
            // the divergence checks name it.
            if fk > f_max || (fk.is_nan() && !f_max.is_nan()) {
                (k_max, f_max) = (k + 1, fk);
            }
            traj.push(next);
        }
        let (d, v) = reverse_through(o, &it.x, &traj[..=k_max], p.alpha);
        axpy(&mut it.x, -p.beta, &d);
        o.project_x(&mut it.x);
        for (z, dz) in self.state.z.iter_mut().zip(v.col_as_slice(0)) {
            *z -= p.beta_z * dz;
        }
        it.y = traj.pop().expect("K >= 1");
        vec![
            ("truncation", k_max as f64),
            ("hypergrad_est_norm", norm(&d)),
        ]
    }
    state_io!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problems::QuadraticKappa;
    use crate::vecops::from_slice;

    /// The truncation point is where `f` peaks along the run, the gradient is that of
    /// `f(x, y_k̃)` through `k̃` steps (against central differences of the unrolled map, to
    /// `x` and to `z`), and the reported `y` is `y_K`.
    #[test]
    fn differentiates_the_pessimistic_point_to_x_and_to_the_start() {
        let p = QuadraticKappa::new(4.0, 2);
        let params = IapttGmParams {
            alpha: 0.2,
            beta: 1.0,
            beta_z: 1.0,
            inner_steps: 6,
        };
        let (x0, z0) = ([0.7, -1.3], [2.0, 0.5]);
        // F(x, z) = f(x, y_k̃(x, z)) for the k̃ the step picks, by plain unrolling.
        let unrolled = |o: &mut Oracle<'_>, x: &[f64], z: &[f64], stop: Option<usize>| {
            let x = from_slice(x);
            let mut y = from_slice(z);
            let (mut best, mut k_best, mut y_best) = (f64::NEG_INFINITY, 0, y.clone());
            for k in 1..=params.inner_steps {
                let g = o.grad_g(&x, &y).y;
                axpy(&mut y, -params.alpha, &g);
                let f = o.f(&x, &y);
                if f > best {
                    (best, k_best, y_best) = (f, k, y.clone());
                }
                if stop == Some(k) {
                    return (f, k, y.clone());
                }
            }
            (best, k_best, y_best)
        };
        let mut o = Oracle::new(&p);
        let (_, k_star, _) = unrolled(&mut o, &x0, &z0, None);
        let mut s = IapttGm::new(params).unwrap();
        s.load_state(serde_json::json!({ "z": z0 })).unwrap();
        let mut it = Iterate {
            x: from_slice(&x0),
            y: from_slice(&z0),
        };
        let sc = s.step(&mut o, &mut it, 0);
        assert_eq!(sc[0], ("truncation", k_star as f64));
        // The step moved x and z by −(their gradients) (β = β_z = 1).
        let gx: Vec<f64> = (0..2).map(|i| x0[i] - it.x[(i, 0)]).collect();
        let z1: Vec<f64> = serde_json::from_value(s.save_state()["z"].clone()).unwrap();
        let gz: Vec<f64> = (0..2).map(|i| z0[i] - z1[i]).collect();
        let h = 1e-6;
        for i in 0..2 {
            let mut fd = |dx: [f64; 2], dz: [f64; 2]| {
                let xp: Vec<f64> = (0..2).map(|j| x0[j] + dx[j]).collect();
                let zp: Vec<f64> = (0..2).map(|j| z0[j] + dz[j]).collect();
                unrolled(&mut o, &xp, &zp, Some(k_star)).0
            };
            let mut e = [0.0; 2];
            e[i] = h;
            let ne = [-e[0], -e[1]];
            let dfx = (fd(e, [0.0; 2]) - fd(ne, [0.0; 2])) / (2.0 * h);
            let dfz = (fd([0.0; 2], e) - fd([0.0; 2], ne)) / (2.0 * h);
            assert!((gx[i] - dfx).abs() < 1e-6, "x {i}: {} vs {dfx}", gx[i]);
            assert!((gz[i] - dfz).abs() < 1e-6, "z {i}: {} vs {dfz}", gz[i]);
        }
        // The reported y is y_K from the old z at the old x.
        let mut y = from_slice(&z0);
        for _ in 0..params.inner_steps {
            let g = o.grad_g(&from_slice(&x0), &y).y;
            axpy(&mut y, -params.alpha, &g);
        }
        assert_eq!(it.y, y);
    }
}

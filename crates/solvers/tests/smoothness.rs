//! The smoothness constants problems state (`Problem::smoothness`) against the oracles: each
//! Lipschitz bound must hold between random pairs of points, each Hessian bound for random
//! directions, and the strong-convexity modulus from below.

use bilevel_ad::Evaluator;
use bilevel_linalg::Mat;
use bilevel_solvers::problems::{Coreset, LowerBound, QuadraticKappa, ScSinCos};
use bilevel_solvers::vecops::{dot, lincomb, norm};
use bilevel_solvers::{Problem, Smoothness};

/// A deterministic stream of numbers in [−scale, scale].
struct Stream(u64);

impl Stream {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }
    fn column(&mut self, n: usize, scale: f64) -> Mat<f64> {
        Mat::from_fn(n, 1, |_, _| scale * self.next())
    }
}

fn stack(x: &Mat<f64>, y: &Mat<f64>) -> Mat<f64> {
    let n = x.nrows();
    Mat::from_fn(n + y.nrows(), 1, |i, _| {
        if i < n { x[(i, 0)] } else { y[(i - n, 0)] }
    })
}

/// `‖a − b‖ ≤ l‖da‖` up to rounding.
fn lipschitz(what: &str, name: &str, a: &Mat<f64>, b: &Mat<f64>, step: f64, l: f64) {
    let diff = norm(&lincomb(1.0, a, -1.0, b));
    assert!(
        diff <= l * step * (1.0 + 1e-9) + 1e-12,
        "{name}: {what}: ‖Δ‖ = {diff:e} > {l} × {step:e}"
    );
}

fn check(p: &dyn Problem, c: Smoothness, seed: u64, scale: f64) {
    let name = p.name();
    let mut ev = Evaluator::new();
    let mut r = Stream(seed);
    let (n, m) = (p.dim_x(), p.dim_y());
    for _ in 0..20 {
        let (x1, y1) = (r.column(n, scale), r.column(m, scale));
        let (x2, y2) = (r.column(n, scale), r.column(m, scale));
        let dz = norm(&lincomb(1.0, &stack(&x1, &y1), -1.0, &stack(&x2, &y2)));
        // ∇ᵧg in y, and ∇²ᵧᵧg along a direction: ‖·‖ ≤ L_g, ⟨v, ·⟩ ≥ μ_g.
        let g1 = p.grad_g(&mut ev, x1.as_ref(), y1.as_ref()).y;
        let g2 = p.grad_g(&mut ev, x1.as_ref(), y2.as_ref()).y;
        let dy = norm(&lincomb(1.0, &y1, -1.0, &y2));
        lipschitz("∇ᵧg in y", &name, &g1, &g2, dy, c.l_g);
        let v = r.column(m, 1.0);
        let hv = p.hvp_g(&mut ev, x1.as_ref(), y1.as_ref(), v.as_ref()).yy;
        assert!(
            norm(&hv) <= c.l_g * norm(&v) * (1.0 + 1e-9),
            "{name}: ‖∇²ᵧᵧg v‖"
        );
        if let Some(mu) = c.mu_g {
            assert!(
                dot(&v, &hv) >= mu * dot(&v, &v) * (1.0 - 1e-9),
                "{name}: μ_g"
            );
        }
        if let Some(l) = c.l_g_xy {
            let a = p.grad_g(&mut ev, x1.as_ref(), y1.as_ref());
            let b = p.grad_g(&mut ev, x2.as_ref(), y2.as_ref());
            lipschitz(
                "∇g in (x, y)",
                &name,
                &stack(&a.x, &a.y),
                &stack(&b.x, &b.y),
                dz,
                l,
            );
        }
        if let Some(l) = c.l_f {
            let f1 = p.grad_f(&mut ev, x1.as_ref(), y1.as_ref());
            let f2 = p.grad_f(&mut ev, x2.as_ref(), y2.as_ref());
            lipschitz(
                "∇f",
                &name,
                &stack(&f1.x, &f1.y),
                &stack(&f2.x, &f2.y),
                dz,
                l,
            );
        }
        if let Some(l) = c.l_h {
            let h1 = p.grad_h(&mut ev, x1.as_ref(), y1.as_ref());
            let h2 = p.grad_h(&mut ev, x2.as_ref(), y2.as_ref());
            lipschitz(
                "∇h",
                &name,
                &stack(&h1.x, &h1.y),
                &stack(&h2.x, &h2.y),
                dz,
                l,
            );
        }
        if let Some(l) = c.l_phi {
            let (a, b) = (
                p.grad_phi(x1.as_ref()).unwrap(),
                p.grad_phi(x2.as_ref()).unwrap(),
            );
            let dx = norm(&lincomb(1.0, &x1, -1.0, &x2));
            lipschitz("∇Φ", &name, &a, &b, dx, l);
        }
    }
}

#[test]
fn stated_constants_bound_the_oracles() {
    for (kappa, dim) in [(10.0, 2), (50.0, 5)] {
        let p = QuadraticKappa::new(kappa, dim);
        check(&p, p.smoothness().unwrap(), 1, 3.0);
    }
    for seed in 0..3 {
        let p = ScSinCos::new(20, seed);
        let c = p.smoothness().unwrap();
        // Close pairs probe the local curvature, far ones the global bound.
        check(&p, c, seed, 0.05);
        check(&p, c, seed + 10, 2.0);
        let p = Coreset::new(seed);
        check(&p, p.smoothness().unwrap(), seed, 2.0);
    }
    let p = LowerBound::new(3);
    check(&p, p.smoothness().unwrap(), 4, 3.0);
}

#[test]
fn sc_sincos_constants_are_those_of_its_h() {
    // cond(H) ≤ 10 with singular values 1 and 10 always drawn: L_g = 100, μ_g = 1 and
    // L_h = 2(10² + 10⁴), whatever the seed; L_f and L_Φ depend on c and d.
    for seed in 0..3 {
        let c = ScSinCos::new(20, seed).smoothness().unwrap();
        assert_eq!((c.l_g, c.mu_g, c.l_h), (100.0, Some(1.0), Some(20_200.0)));
        let (l_f, l_phi) = (c.l_f.unwrap(), c.l_phi.unwrap());
        assert!((20.0..100.0).contains(&l_f), "{l_f}");
        assert!((8.0..l_f * 2.0).contains(&l_phi), "{l_phi}");
    }
    let a = ScSinCos::new(20, 0).smoothness().unwrap();
    let b = ScSinCos::new(20, 1).smoothness().unwrap();
    let w = a.worst(b);
    assert_eq!(w.l_f, Some(a.l_f.unwrap().max(b.l_f.unwrap())));
    assert_eq!(w.mu_g, Some(1.0));
}

//! The single-loop AID/ITD paper's bounds as numbers: Theorems 1 and 3 (upper), Theorem 4
//! (lower) and the bounds of Ji, Liu, Liang and Ying, "Will Bilevel Optimizers Benefit from
//! Loops" (NeurIPS 2022) that the paper's Theorem 2 and Table 1 quote, each written once.
//!
//! Every formula is the paper's as printed in its theorem or at the end of its proof, with the
//! steps its theorems fix, `α = η = 1/L`. Where the paper prints no constant, the function says
//! how it was derived:
//!
//! - `L_Φ`: the theorems' statement, `L + (2L² + ρM²)/μ² + (2ρLM + L³)/μ² + ρL²M/μ³`
//!   (the proofs of Theorems 1 and 3 print `(2L² + ρM²)/μ` for the second term and Lemma 8 a
//!   third form; the statement's is the largest).
//! - Theorem 1's `β`: the printed `min{C₁μα/(4C₂C₃), ημ/(2LC₂)}` makes the proof's bracket
//!   `A = ½ − βL_Φ − (½ + βL_Φ)·12β²C₂²L⁴/μ²` equal to `−1 − 4βL_Φ < 0` (its second member
//!   gives `12β²C₂²L⁴/μ² = 3`), so the bound would be void; [`Consts::beta_thm1`] also takes the
//!   proof's `β ≤ 1/(8L_Φ)` and `β ≤ μ/(4√6·C₂L²)` (so that `12β²C₂²L⁴/μ² ≤ 1/8`), the same order
//!   `κ⁻⁵`, which makes `A > 0`.
//! - Ji et al.'s bounds (Theorem 2: `O(κ⁶/K)` for AID; Table 1: `O(κ³/K + κ³)` for ITD) have no
//!   printed constants here; we take Theorem 1's expression times `κ` for AID (the ratio of the
//!   two orders, Remark 4) and Theorem 3's with its non-vanishing term times `1/(αμ) = κ` for ITD
//!   (the "gap of `αμ`" between Ji et al.'s upper and lower bounds, §1 and Remark 6).
//! - Theorem 4 prints only `Θ(κ²)`; [`Consts::thm4_lower`] is the square of the non-vanishing
//!   part of the ITD hypergradient error that Lemma 9 and Lemma 6 isolate,
//!   `M(1 − αμ)·L/μ` (the first term of `C₅`): the error of the one-step Jacobian,
//!   `(1 − αμ)‖∇ₓy*‖ ≤ (1 − αμ)L/μ`, times `‖∇ᵧf‖ ≤ M`.

/// The constants of Assumptions 1–4: `L` (gradients of `f` and `g` Lipschitz), `μ` (strong
/// convexity of `g(x, ·)`), `M` (`f` Lipschitz) and `ρ` (second derivatives of `g` Lipschitz).
/// The steps are the theorems' `α = η = 1/L`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Consts {
    pub l: f64,
    pub mu: f64,
    pub m: f64,
    pub rho: f64,
}

impl Consts {
    /// `κ = L/μ`.
    pub fn kappa(&self) -> f64 {
        self.l / self.mu
    }

    /// `α = η = 1/L` (Theorems 1 and 3).
    pub fn alpha(&self) -> f64 {
        1.0 / self.l
    }

    /// `L_Φ` as printed in the statements of Theorems 1, 3 and 4.
    pub fn l_phi(&self) -> f64 {
        let Consts { l, mu, m, rho } = *self;
        l + (2.0 * l * l + rho * m * m) / (mu * mu)
            + (2.0 * rho * l * m + l * l * l) / (mu * mu)
            + rho * l * l * m / (mu * mu * mu)
    }

    /// Lemma 2: `C₀ = ρM/μ² + L/μ`.
    pub fn c0(&self) -> f64 {
        self.rho * self.m / (self.mu * self.mu) + self.l / self.mu
    }

    /// Lemma 4: `C₁ = 4C₀L/μ`.
    pub fn c1(&self) -> f64 {
        4.0 * self.c0() * self.l / self.mu
    }

    /// Lemma 4: `C₂ = αL²C₀/μ + ρM/μ² + L/μ + LC₁/μ`.
    pub fn c2(&self) -> f64 {
        let Consts { l, mu, m, rho } = *self;
        self.alpha() * l * l * self.c0() / mu + rho * m / (mu * mu) + l / mu + l * self.c1() / mu
    }

    /// Lemma 4: `C₃ = L + ρM/μ + C₀L`.
    pub fn c3(&self) -> f64 {
        self.l + self.rho * self.m / self.mu + self.c0() * self.l
    }

    /// Theorem 1's outer step as printed: `min{C₁μα/(4C₂C₃), ημ/(2LC₂)}`.
    pub fn beta_thm1_printed(&self) -> f64 {
        let (a, mu) = (self.alpha(), self.mu);
        (self.c1() * mu * a / (4.0 * self.c2() * self.c3()))
            .min(a * mu / (2.0 * self.l * self.c2()))
    }

    /// The outer step we run Theorem 1 with (derived, see the module documentation): the
    /// printed step, `1/(8L_Φ)` and `μ/(4√6·C₂L²)`, whichever is smallest.
    pub fn beta_thm1(&self) -> f64 {
        let c2l2 = self.c2() * self.l * self.l;
        self.beta_thm1_printed()
            .min(1.0 / (8.0 * self.l_phi()))
            .min(self.mu / (4.0 * 6f64.sqrt() * c2l2))
    }

    /// The bracket of the proof of Theorem 1 (App. A.5):
    /// `A = ½ − βL_Φ − (½ + βL_Φ)·12β²C₂²L⁴/μ²`.
    pub fn a_thm1(&self, beta: f64) -> f64 {
        let lp = self.l_phi();
        let c2 = self.c2();
        let l4 = self.l.powi(4);
        0.5 - beta * lp
            - (0.5 + beta * lp) * 12.0 * beta * beta * c2 * c2 * l4 / (self.mu * self.mu)
    }

    /// Theorem 1's bound on `(1/K)Σ_{k<K}‖∇Φ(x_k)‖²` as the end of its proof prints it:
    /// `(Φ(x₀) − Φ*)/(βAK) + 4L³(1 + 2βL_Φ)/(2μAK)·e₀²` with `A` of [`Consts::a_thm1`] and
    /// `e₀ = ‖v̂₀ − ṽ₀*‖ + C₁‖ŷ₀ − y₀*‖`. Infinite when `A ≤ 0` (the bound says nothing).
    pub fn thm1_upper(&self, beta: f64, phi_gap: f64, e0: f64, k: f64) -> f64 {
        let a = self.a_thm1(beta);
        if a <= 0.0 {
            return f64::INFINITY;
        }
        let l3 = self.l.powi(3);
        phi_gap / (beta * a * k)
            + 4.0 * l3 * (1.0 + 2.0 * beta * self.l_phi()) / (2.0 * self.mu * a * k) * e0 * e0
    }

    /// Ji et al.'s single-loop AID bound, `O(κ⁶/K)` (the paper's Theorem 2), derived as
    /// `κ ·` [`Consts::thm1_upper`].
    pub fn ji_aid_upper(&self, beta: f64, phi_gap: f64, e0: f64, k: f64) -> f64 {
        self.kappa() * self.thm1_upper(beta, phi_gap, e0, k)
    }

    /// Lemma 5: `C₄ = L + αL² + αρM`.
    pub fn c4(&self) -> f64 {
        let a = self.alpha();
        self.l + a * self.l * self.l + a * self.rho * self.m
    }

    /// Lemma 5: `C₅ = M(1 − αμ)L/μ + α²ρM²`.
    pub fn c5(&self) -> f64 {
        let a = self.alpha();
        self.m * (1.0 - a * self.mu) * self.l / self.mu + a * a * self.rho * self.m * self.m
    }

    /// Theorem 3's outer step, its bound taken with equality: `μ³/(2L(2L² + ρM))`.
    pub fn beta_thm3(&self) -> f64 {
        self.mu.powi(3) / (2.0 * self.l * (2.0 * self.l * self.l + self.rho * self.m))
    }

    /// The proof of Theorem 3 (App. B.5):
    /// `A = (β/2 − β²L_Φ) − (β/2 + β²L_Φ)·48L²β²C₄²/μ²`.
    pub fn a_thm3(&self, beta: f64) -> f64 {
        let lp = self.l_phi();
        let c4 = self.c4();
        (beta / 2.0 - beta * beta * lp)
            - (beta / 2.0 + beta * beta * lp) * 48.0 * self.l * self.l * beta * beta * c4 * c4
                / (self.mu * self.mu)
    }

    /// The two parts of Theorem 3's bound on `(1/K)Σ_{k<K}‖∇Φ(x_k)‖²` as the end of its proof
    /// prints it: the transient `(Φ(x₀) − Φ*)/(AK) + (B₁ + B₂)/(AK)`, with
    /// `B₁ = (β/2 + β²L_Φ)C₄²·8L/μ·‖ŷ₀ − y₀*‖²` and `B₂ = (β/2 + β²L_Φ)·48L²β²C₄²C₅²/μ²`, and the
    /// non-vanishing term `(β/2 + β²L_Φ)·2C₅²/A`. Infinite when `A ≤ 0`.
    pub fn thm3_parts(&self, beta: f64, phi_gap: f64, y_err0: f64, k: f64) -> (f64, f64) {
        let a = self.a_thm3(beta);
        if a <= 0.0 {
            return (f64::INFINITY, f64::INFINITY);
        }
        let w = beta / 2.0 + beta * beta * self.l_phi();
        let (c4, c5, mu, l) = (self.c4(), self.c5(), self.mu, self.l);
        let b1 = w * c4 * c4 * 8.0 * l / mu * y_err0 * y_err0;
        let b2 = w * 48.0 * l * l * beta * beta * c4 * c4 * c5 * c5 / (mu * mu);
        ((phi_gap + b1 + b2) / (a * k), w * 2.0 * c5 * c5 / a)
    }

    /// Theorem 3's bound: the sum of [`Consts::thm3_parts`].
    pub fn thm3_upper(&self, beta: f64, phi_gap: f64, y_err0: f64, k: f64) -> f64 {
        let (t, e) = self.thm3_parts(beta, phi_gap, y_err0, k);
        t + e
    }

    /// Ji et al.'s single-loop ITD bound, `O(κ³/K + κ³)` (the paper's Table 1), derived as
    /// Theorem 3's transient plus its non-vanishing term over `αμ`.
    pub fn ji_itd_upper(&self, beta: f64, phi_gap: f64, y_err0: f64, k: f64) -> f64 {
        let (t, e) = self.thm3_parts(beta, phi_gap, y_err0, k);
        t + e / (self.alpha() * self.mu)
    }

    /// Theorem 4's lower bound `Θ(κ²)` on `‖∇Φ(x_K)‖²`, derived as `(M(1 − αμ)L/μ)²`.
    pub fn thm4_lower(&self) -> f64 {
        (self.m * (1.0 - self.alpha() * self.mu) * self.l / self.mu).powi(2)
    }
}

/// What the bounds need of a quadratic-κ run (`f = ½xᵀZx + (1/10)1ᵀy`,
/// `g = ½yᵀZy − Lxᵀy + 1ᵀy`, `Z = diag(L, μ)`) from `x₀ = 1`, `y₀ = 0`, `v₀ = 0` with
/// `α = η = 1/L`, in closed form:
///
/// - `Φ(x₀) − Φ* = ½(x₀ − x*)ᵀZ(x₀ − x*)` (`Φ` is quadratic with Hessian `Z`), with
///   `x* = −(L/10)Z⁻²1`;
/// - `‖ŷ₀ − y*(x₀)‖`, the first inner step `ŷ₀ = y₀ − α(Zy₀ − Lx₀ + 1) = (1 − 1/L)1` against
///   `y*(x₀) = Z⁻¹(L − 1)1`;
/// - `‖v̂₀ − ṽ₀*‖`, AID's first linear-system step `v̂₀ = η∇ᵧf = (1/(10L))1` against
///   `ṽ₀* = Z⁻¹∇ᵧf = (1/10)Z⁻¹1`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Start {
    pub phi_gap: f64,
    pub y_err: f64,
    pub v_err: f64,
}

impl Start {
    /// The start of quadratic-κ with `Z = diag(L, μ)`.
    pub fn quadratic(l: f64, mu: f64) -> Start {
        let z = [l, mu];
        let mut s = Start {
            phi_gap: 0.0,
            y_err: 0.0,
            v_err: 0.0,
        };
        for zi in z {
            let x_star = -0.1 * l / (zi * zi);
            s.phi_gap += 0.5 * zi * (1.0 - x_star).powi(2);
            s.y_err += ((1.0 - 1.0 / l) - (l - 1.0) / zi).powi(2);
            s.v_err += (0.1 / l - 0.1 / zi).powi(2);
        }
        s.y_err = s.y_err.sqrt();
        s.v_err = s.v_err.sqrt();
        s
    }

    /// Lemma 4's `e₀ = ‖v̂₀ − ṽ₀*‖ + C₁‖ŷ₀ − y₀*‖`.
    pub fn e0(&self, c: &Consts) -> f64 {
        self.v_err + c.c1() * self.y_err
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The §5 constants at κ = 2: `μ = M = ρ = 0.1`, `L = 0.2`, so `α = 5`.
    const K2: Consts = Consts {
        l: 0.2,
        mu: 0.1,
        m: 0.1,
        rho: 0.1,
    };

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{a} against {b}");
    }

    #[test]
    fn the_constants_match_hand_values_at_kappa_2() {
        // C₀ = 0.01/0.01 + 2 = 3; C₁ = 4·3·0.2/0.1 = 24;
        // C₂ = 5·0.04·3/0.1 + 1 + 2 + 0.2·24/0.1 = 6 + 1 + 2 + 48 = 57; C₃ = 0.2 + 0.1 + 0.6.
        close(K2.c0(), 3.0);
        close(K2.c1(), 24.0);
        close(K2.c2(), 57.0);
        close(K2.c3(), 0.9);
        // L_Φ = 0.2 + 0.081/0.01 + 0.012/0.01 + 0.0004/0.001 = 0.2 + 8.1 + 1.2 + 0.4.
        close(K2.l_phi(), 9.9);
        // min{24·0.1·5/(4·57·0.9), 5·0.1/(2·0.2·57)} = min{0.0585, 5/228}.
        close(K2.beta_thm1_printed(), 5.0 / 228.0);
        // The printed step voids the bound: A = −1 − 4βL_Φ.
        close(K2.a_thm1(5.0 / 228.0), -1.0 - 4.0 * 9.9 * 5.0 / 228.0);
        // μ/(4√6·57·0.04) is below 1/(8·9.9) and the printed step.
        close(K2.beta_thm1(), 0.1 / (4.0 * 6f64.sqrt() * 57.0 * 0.04));
        // C₄ = 0.2 + 5·0.04 + 5·0.01 = 0.45; C₅ = 0.1·0.5·2 + 25·0.1·0.01 = 0.125.
        close(K2.c4(), 0.45);
        close(K2.c5(), 0.125);
        // μ³/(2L(2L² + ρM)) = 0.001/(0.4·0.09) = 1/36.
        close(K2.beta_thm3(), 1.0 / 36.0);
        // (0.1·0.5·2)² = 0.01.
        close(K2.thm4_lower(), 0.01);
    }

    #[test]
    fn theorem_1_matches_a_hand_value() {
        // β = 0.004: βL_Φ = 0.0396, 12β²C₂²L⁴/μ² = 12·1.6e-5·3249·0.0016/0.01 = 0.09980928,
        // A = 0.5 − 0.0396 − 0.5396·0.09980928 = 0.406542912512.
        close(K2.a_thm1(0.004), 0.406542912512);
        // Φ gap 1, e₀ = 2, K = 100: 1/(0.004·A·100) + 4·0.008·1.0792/(0.2·A·100)·4
        // = 6.149317... + 0.016984... = 6.166401633987...
        let a = 0.406542912512;
        let want = 1.0 / (0.4 * a) + 0.032 * 1.0792 / (20.0 * a) * 4.0;
        close(K2.thm1_upper(0.004, 1.0, 2.0, 100.0), want);
        assert!((want - 6.166401633987).abs() < 1e-11);
        close(K2.ji_aid_upper(0.004, 1.0, 2.0, 100.0), 2.0 * want);
        // A void bound says nothing.
        assert_eq!(
            K2.thm1_upper(K2.beta_thm1_printed(), 1.0, 2.0, 100.0),
            f64::INFINITY
        );
    }

    #[test]
    fn theorem_3_matches_a_hand_value() {
        // β = 1/36: β/2 − β²L_Φ = 0.00625, w = β/2 + β²L_Φ = 0.0215277…,
        // 48L²β²C₄²/μ² = 48·0.04·0.2025/(0.01·1296) = 0.03, A = 0.00625 − 0.03w = 0.0056041666….
        let b = 1.0 / 36.0;
        let w = b / 2.0 + b * b * 9.9;
        let a = 0.00625 - 0.03 * w;
        close(K2.a_thm3(b), a);
        // Φ gap 1, ‖ŷ₀ − y₀*‖ = 1, K = 100: B₁ = w·0.2025·16, B₂ = w·0.03·0.015625,
        // non-vanishing 2·0.015625·w/A = 0.12004337….
        let (t, e) = K2.thm3_parts(b, 1.0, 1.0, 100.0);
        close(
            t,
            (1.0 + w * 0.2025 * 16.0 + w * 0.03 * 0.015625) / (100.0 * a),
        );
        close(e, 2.0 * 0.015625 * w / a);
        assert!((e - 0.1200433705).abs() < 1e-9);
        close(K2.thm3_upper(b, 1.0, 1.0, 100.0), t + e);
        assert!((t + e - 2.028908960657).abs() < 1e-11);
        // Ji et al.: the non-vanishing term over αμ = 1/2.
        close(K2.ji_itd_upper(b, 1.0, 1.0, 100.0), t + 2.0 * e);
    }

    #[test]
    fn the_start_matches_hand_values_and_the_problem() {
        // κ = 2: x* = (−0.5, −2), Φ(x₀) − Φ* = ½(0.2·1.5² + 0.1·3²) = 0.675;
        // ŷ₀ = (−4, −4), y*(x₀) = (−4, −8): 4; v̂₀ = (0.5, 0.5), ṽ₀* = (0.5, 1): 0.5.
        let s = Start::quadratic(0.2, 0.1);
        close(s.phi_gap, 0.675);
        close(s.y_err, 4.0);
        close(s.v_err, 0.5);
        close(s.e0(&K2), 0.5 + 24.0 * 4.0);
        // The same x* and y*(x₀) as the problem the runs use.
        use crate::solvers::Problem;
        use crate::solvers::problems::QuadraticKappa;
        for kappa in [2.0, 7.0, 40.0] {
            let p = QuadraticKappa::new(kappa, 2);
            let (l, mu) = (p.l(), p.mu());
            let xs = p.x_star();
            let ys = p.y_star(p.x0().as_ref()).unwrap();
            let z = [l, mu];
            let gap: f64 = (0..2)
                .map(|i| 0.5 * z[i] * (1.0 - xs[(i, 0)]).powi(2))
                .sum();
            let y_err = (0..2)
                .map(|i| ((1.0 - 1.0 / l) - ys[(i, 0)]).powi(2))
                .sum::<f64>()
                .sqrt();
            let s = Start::quadratic(l, mu);
            close(s.phi_gap, gap);
            close(s.y_err, y_err);
        }
    }
}

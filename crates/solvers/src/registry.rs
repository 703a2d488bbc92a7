//! Every solver by name: one table ([`SOLVERS`]) of name, summary, default parameters, builder
//! and step-size rules, and the parameters of a solver taken from text (`key=value` with dotted
//! keys for nested fields) into its typed parameter struct once.
//!
//! # Example
//! ```
//! use bilevel_solvers::problems::QuadraticKappa;
//! use bilevel_solvers::{Problem, RunConfig, Runner, registry};
//!
//! let problem = QuadraticKappa::new(10.0, 2);
//! let mut params = registry::solver("aid-single-loop").unwrap().defaults();
//! params.set("beta", "0.2").unwrap();
//! // α and η from the problem's constants (Theorem 1), β as set.
//! let derived = params.derive(&problem.smoothness().unwrap(), Some(500), &["beta".into()]);
//! assert_eq!(derived.iter().map(|d| d.key.as_str()).collect::<Vec<_>>(), ["alpha", "eta"]);
//! let mut solver = params.build().unwrap();
//! assert_eq!(solver.name(), "aid-single-loop");
//! let r = Runner::new(RunConfig::iters(500)).unwrap().run(&problem, &mut *solver).unwrap();
//! assert!(r.last_metrics().unwrap().grad_phi_norm.unwrap() < 1e-3);
//! ```

use crate::algorithms::*;
use crate::error::Error;
use crate::problem::Smoothness;
use crate::rules::{Derived, StepRules};
use crate::sampling::Minibatch;
use crate::solver::Solver;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::fmt;

/// A parameter struct the registry can build its solver from.
pub trait SolverParams:
    Serialize + DeserializeOwned + Default + Clone + fmt::Debug + Send + Sync + StepRules
{
    /// The solver's registry name ([`Solver::name`]).
    const NAME: &'static str;
    /// The solver, after validating the parameters.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first bad parameter.
    fn build(&self) -> Result<Box<dyn Solver>, Error>;
    /// The optional minibatch of a stochastic method.
    fn minibatch(&mut self) -> Option<&mut Option<Minibatch>> {
        None
    }
    /// The parameters as JSON with a `batch` slot (`null` for exact oracles) whenever the
    /// method takes a minibatch, also when its serialized form leaves an empty batch out (as
    /// AIDBiO's does, so that runs recorded before its stochastic option read back unchanged):
    /// the form [`Params::keys`] and [`Params::set`] work on.
    fn json_with_batch(&self) -> Value {
        let mut v = serde_json::to_value(self).expect("parameters serialize");
        if self.clone().minibatch().is_some()
            && let Value::Object(m) = &mut v
        {
            m.entry("batch").or_insert(Value::Null);
        }
        v
    }
}

macro_rules! solver_params {
    ($($p:ty => $s:ident in $m:ident $(, batch $b:ident)?;)*) => {$(
        impl SolverParams for $p {
            const NAME: &'static str = crate::algorithms::$m::NAME;
            fn build(&self) -> Result<Box<dyn Solver>, Error> {
                Ok(Box::new($s::new(self.clone())?))
            }
            $(fn minibatch(&mut self) -> Option<&mut Option<Minibatch>> {
                Some(&mut self.$b)
            })?
        }
    )*};
}

solver_params! {
    SingleLoopAidParams => SingleLoopAid in aid;
    SingleLoopItdParams => SingleLoopItd in itd;
    PgdQpParams => PgdQp in pgdqp;
    GaletParams => Galet in galet;
    RhgParams => Rhg in rhg;
    IapttGmParams => IapttGm in iaptt;
    AidBioParams => AidBio in aidbio, batch batch;
    BomeParams => Bome in bome;
    VPbgdParams => VPbgd in vpbgd;
    MehaParams => Meha in meha;
    F2saParams => F2sa in f2sa, batch batch;
    F2baParams => F2ba in f2ba, batch batch;
    ProxF2saParams => ProxF2saTwoLoop in prox;
    F3saParams => F3sa in f3sa, batch batch;
    ProxF2saMomentumParams => ProxF2saMomentum in prox_momentum, batch batch;
    SobaParams => Soba in soba, batch batch;
    SabaParams => Saba in saba, batch batch;
    StocbioParams => Stocbio in stocbio, batch batch;
    AmigoParams => Amigo in amigo, batch batch;
    BgsParams => Bgs in bgs, batch batch;
    BsaParams => Bsa in bsa, batch batch;
    TtsaParams => Ttsa in ttsa, batch batch;
    FslaParams => Fsla in fsla, batch batch;
    MrboParams => Mrbo in mrbo, batch batch;
    VrboParams => Vrbo in vrbo, batch batch;
    SustainParams => Sustain in sustain, batch batch;
    SrbaParams => Srba in srba, batch batch;
    MaSobaParams => MaSoba in ma_soba, batch batch;
    SpabaParams => Spaba in spaba, batch batch;
    MgbioParams => Mgbio in mgbio;
    HjfbioParams => Hjfbio in hjfbio;
}

impl SolverParams for F2bsaParams {
    const NAME: &'static str = crate::algorithms::f2ba::STOCHASTIC_NAME;
    fn build(&self) -> Result<Box<dyn Solver>, Error> {
        Ok(Box::new(F2ba::stochastic(*self)?))
    }
    fn minibatch(&mut self) -> Option<&mut Option<Minibatch>> {
        Some(&mut self.f2ba.batch)
    }
}

/// One solver's parameters, whatever their type: set from text, derived from a problem's
/// constants, seeded for a run seed and built.
pub trait Params: fmt::Debug + Send + Sync {
    /// The solver's registry name.
    fn solver(&self) -> &'static str;
    /// The parameters as JSON (the form runs record).
    fn to_json(&self) -> Value;
    /// Every key [`Params::set`] takes: the leaves of [`Params::to_json`], dotted for nested
    /// fields, and the minibatch keys of a stochastic method whose batch is `none`.
    fn keys(&self) -> Vec<String>;
    /// Set the dotted `key` from `text`, parsed like its current value. The optional minibatch
    /// of the stochastic methods takes `batch=B` (both sizes `B`) or `batch=none`, and a dotted
    /// `batch.…` key on a `none` batch first makes one with sizes 0 (which validation refuses
    /// until both are set) and seed 0. The parent of dotted keys takes its whole value as JSON
    /// (`solve={"Neumann":{"terms":5,"eta":0.5}}`: how an enum field changes variant).
    ///
    /// # Errors
    /// [`Error::UnknownKey`] or [`Error::BadValue`], naming the key.
    fn set(&mut self, key: &str, text: &str) -> Result<(), Error>;
    /// Apply the solver's step-size rules ([`StepRules::derive`]) for the keys not in `fixed`.
    fn derive(&mut self, c: &Smoothness, horizon: Option<u64>, fixed: &[String]) -> Vec<Derived>;
    /// The rules as `(key, formula and source)`, in the order they apply.
    fn rules(&self) -> Vec<(&'static str, &'static str)>;
    /// The parameters for run seed `seed`: the minibatch stream of a stochastic method seeded by
    /// `batch.seed + seed`, so the seeds of a run draw different samples.
    fn for_seed(&self, seed: u64) -> Box<dyn Params>;
    /// The solver.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first bad parameter.
    fn build(&self) -> Result<Box<dyn Solver>, Error>;
    /// A copy.
    fn clone_box(&self) -> Box<dyn Params>;
}

impl Clone for Box<dyn Params> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

impl<P: SolverParams> Params for P {
    fn solver(&self) -> &'static str {
        P::NAME
    }
    fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("parameters serialize")
    }
    fn keys(&self) -> Vec<String> {
        let v = self.json_with_batch();
        let mut keys: Vec<String> = flatten(&v).into_iter().map(|(k, _)| k).collect();
        if v.get("batch").is_some_and(Value::is_null) {
            keys.extend(BATCH_KEYS[1..].iter().map(|(k, _)| k.to_string()));
        }
        keys
    }
    fn set(&mut self, key: &str, text: &str) -> Result<(), Error> {
        let mut v = self.json_with_batch();
        set_json(P::NAME, &self.keys(), &mut v, key, text)?;
        *self = serde_json::from_value(v).map_err(|e| Error::BadValue {
            solver: P::NAME,
            key: key.to_string(),
            text: text.to_string(),
            expected: e.to_string(),
        })?;
        Ok(())
    }
    fn derive(&mut self, c: &Smoothness, horizon: Option<u64>, fixed: &[String]) -> Vec<Derived> {
        let fixed: Vec<&str> = fixed.iter().map(String::as_str).collect();
        StepRules::derive(self, c, horizon, &fixed)
    }
    fn rules(&self) -> Vec<(&'static str, &'static str)> {
        P::rules().iter().map(|r| (r.key, r.text)).collect()
    }
    fn for_seed(&self, seed: u64) -> Box<dyn Params> {
        let mut p = self.clone();
        if let Some(Some(b)) = p.minibatch() {
            b.seed = b.seed.wrapping_add(seed);
        }
        Box::new(p)
    }
    fn build(&self) -> Result<Box<dyn Solver>, Error> {
        SolverParams::build(self)
    }
    fn clone_box(&self) -> Box<dyn Params> {
        Box::new(self.clone())
    }
}

/// A solver the registry knows.
#[derive(Clone, Copy)]
pub struct SolverEntry {
    /// Its name ([`Solver::name`]).
    pub name: &'static str,
    /// One line, citing its paper.
    pub summary: &'static str,
    defaults: fn() -> Box<dyn Params>,
}

impl fmt::Debug for SolverEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SolverEntry")
            .field("name", &self.name)
            .finish()
    }
}

impl SolverEntry {
    /// The solver's default parameters (problem-agnostic fixed numbers; see
    /// [`Params::derive`] for the problem-aware ones).
    pub fn defaults(&self) -> Box<dyn Params> {
        (self.defaults)()
    }
}

fn defaults<P: SolverParams + 'static>() -> Box<dyn Params> {
    Box::new(P::default())
}

const fn entry<P: SolverParams + 'static>(summary: &'static str) -> SolverEntry {
    SolverEntry {
        name: P::NAME,
        summary,
        defaults: defaults::<P>,
    }
}

/// Every solver.
pub const SOLVERS: &[SolverEntry] = &[
    entry::<SingleLoopAidParams>("single-loop AID (single-loop AID/ITD paper, Alg. 1)"),
    entry::<SingleLoopItdParams>("single-loop ITD (same paper, Alg. 2)"),
    entry::<PgdQpParams>("perturbed gradient descent via a convex QP (PGD-QP paper, Alg. 1)"),
    entry::<GaletParams>("generalized alternating method (GALET, Alg. 1)"),
    entry::<RhgParams>(
        "reverse-mode ITD through T unrolled steps (Franceschi et al., \"Forward and Reverse \
         Gradient-Based Hyperparameter Optimization\")",
    ),
    entry::<IapttGmParams>(
        "IAPTT-GM: learned start, pessimistic trajectory truncation (Liu, Liu, Zeng and Zhang, \
         \"Towards Gradient-based Bilevel Optimization with Non-convex Followers and Beyond\")",
    ),
    entry::<AidBioParams>(
        "double-loop AID with CG or Neumann (Ji, Yang and Liang, \"Bilevel Optimization: \
         Convergence Analysis and Enhanced Design\")",
    ),
    entry::<BomeParams>(
        "BOME, first order, value-function based (Liu et al., \"BOME! Bilevel Optimization Made \
         Easy\")",
    ),
    entry::<VPbgdParams>(
        "V-PBGD, first-order penalty (Shen and Chen, \"On Penalty-based Bilevel Gradient Descent \
         Method\")",
    ),
    entry::<MehaParams>(
        "MEHA, single loop, Hessian-free, on the Moreau envelope of the lower level with an \
         increasing penalty (Liu, Liu, Yao, Zeng and Zhang, \"Moreau Envelope for Nonconvex \
         Bi-Level Optimization: A Single-loop and Hessian-free Solution Strategy\", Alg. 1 as a \
         later paper restates it: see the docs)",
    ),
    entry::<F2saParams>("F²SA, fully first-order (increasing or fixed λ)"),
    entry::<F2baParams>(
        "F²BA, F²SA's fixed-penalty iteration with z restarted from y (Chen, Ma and Zhang, \
         \"Near-Optimal Nonconvex-Strongly-Convex Bilevel Optimization with Fully First-Order \
         Oracles\")",
    ),
    entry::<F2bsaParams>("F²BSA, F²BA with minibatch oracles (same paper)"),
    entry::<ProxF2saParams>("proximal two-loop F²SA with projections"),
    entry::<F3saParams>("F³SA, F²SA with momentum-assisted (STORM-type) estimators"),
    entry::<ProxF2saMomentumParams>("proximal single-loop F²SA with momentum and projections"),
    entry::<SobaParams>(
        "SOBA, stochastic joint steps on y, v and x (Dagréou, Ablin, Vaiter and Moreau, \"A \
         framework for bilevel optimization that enables stochastic and global variance \
         reduction algorithms\", Alg. 1)",
    ),
    entry::<SabaParams>(
        "SABA, SOBA's directions with SAGA variance reduction (same paper, Alg. 2)",
    ),
    entry::<StocbioParams>(
        "StocBiO, inner SGD and a sampled Neumann series (Ji, Yang and Liang, \"Bilevel \
         Optimization: Convergence Analysis and Enhanced Design\", Alg. 2)",
    ),
    entry::<AmigoParams>(
        "AmIGO, warm-started SGD on y and on the linear system (Arbel and Mairal, \"Amortized \
         implicit differentiation for stochastic bilevel optimization\", Alg. 1)",
    ),
    entry::<BgsParams>(
        "BGS, AmIGO's warm starts with the last inner steps unrolled and the linear system as \
         their correction (Arbel and Mairal, \"Non-Convex Bilevel Games with Critical Point \
         Selection Maps\")",
    ),
    entry::<BsaParams>(
        "BSA, inner SGD and a randomly truncated Neumann series (Ghadimi and Wang, \
         \"Approximation Methods for Bilevel Programming\", Alg. 2)",
    ),
    entry::<TtsaParams>(
        "TTSA, one inner step per outer step on two time scales (Hong, Wai, Wang and Yang, \"A \
         Two-Timescale Stochastic Algorithm Framework for Bilevel Optimization\", Alg. 1)",
    ),
    entry::<FslaParams>(
        "FSLA, one step each on y, v and x, x along a STORM-type recursive hypergradient (Li, Gu \
         and Huang, \"A Fully Single Loop Algorithm for Bilevel Optimization without Hessian \
         Inverse\")",
    ),
    entry::<MrboParams>(
        "MRBO, STORM-type recursive estimators of the inner gradient and of the Neumann \
         hypergradient (Yang, Ji and Liang, \"Provably Faster Algorithms for Bilevel \
         Optimization\", Alg. 1)",
    ),
    entry::<VrboParams>(
        "VRBO, SARAH/SPIDER-type recursive estimators restarted from full sums, inner steps on \
         y (same paper, Alg. 2)",
    ),
    entry::<SustainParams>(
        "SUSTAIN, double momentum with a randomly truncated Neumann series (Khanduri, Zeng, \
         Hong, Wai, Wang and Yang, \"A Near-Optimal Algorithm for Stochastic Bilevel \
         Optimization via Double-Momentum\", Alg. 1)",
    ),
    entry::<SrbaParams>(
        "SRBA, SOBA's directions with SARAH variance reduction and periodic restarts (Dagréou, \
         Moreau, Vaiter and Ablin, \"A lower bound and a near-optimal algorithm for bilevel \
         empirical risk minimization\")",
    ),
    entry::<MaSobaParams>(
        "MA-SOBA, SOBA with a moving average of the x direction (Chen, Xiao and \
         Balasubramanian, \"Optimal algorithms for stochastic bilevel optimization under \
         relaxed smoothness conditions\")",
    ),
    entry::<SpabaParams>(
        "SPABA, SOBA's directions with PAGE variance reduction and random restarts (Chu, Xu, \
         Yao and Zhang, \"SPABA: A single-loop and probabilistic stochastic bilevel algorithm \
         achieving optimal sample complexity\")",
    ),
    entry::<MgbioParams>(
        "MGBiO, momentum on x and the lower-level Hessian projected onto {H ⪰ μI} and inverted, \
         for PL lower levels (Huang, \"On Momentum-Based Gradient Methods for Bilevel \
         Optimization with Nonconvex Lower-Level\", the deterministic method; its update \
         reconstructed from the paper's summary, the algorithm box unread: see the docs)",
    ),
    entry::<HjfbioParams>(
        "HJFBiO, single-loop steps on y, v and x with the Hessian and Jacobian products by \
         finite differences of ∇g, for PL lower levels (Huang, \"Optimal Hessian/Jacobian-Free \
         Nonconvex-PL Bilevel Optimization\"; its update reconstructed from the paper's \
         summary, the algorithm box unread: see the docs)",
    ),
];

/// The solver named `name`.
///
/// # Errors
/// [`Error::UnknownName`] listing the known names.
pub fn solver(name: &str) -> Result<&'static SolverEntry, Error> {
    SOLVERS
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| Error::UnknownName {
            what: "solver",
            name: name.to_string(),
            known: SOLVERS.iter().map(|s| s.name.to_string()).collect(),
        })
}

/// The leaves of a JSON object as `(dotted.key, value)` pairs, in order.
pub fn flatten(v: &Value) -> Vec<(String, Value)> {
    fn go(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    go(&key, v, out);
                }
            }
            _ => out.push((prefix.to_string(), v.clone())),
        }
    }
    let mut out = Vec::new();
    go("", v, &mut out);
    out
}

/// The minibatch keys of the stochastic solvers (whose `batch` is `none` by default: exact
/// gradients), with their meaning.
pub const BATCH_KEYS: [(&str, &str); 4] = [
    (
        "batch",
        "`none` (exact gradients) or B: minibatches of B samples of f and of g",
    ),
    ("batch.batch_f", "samples of f per stochastic gradient"),
    ("batch.batch_g", "samples of g per stochastic gradient"),
    (
        "batch.seed",
        "index stream seed (run seed s draws from batch.seed + s); default 0",
    ),
];

/// Set the dotted `key` of the JSON parameters `params` of `solver` to `text`, typed like the
/// current value (see [`Params::set`]).
fn set_json(
    solver: &'static str,
    keys: &[String],
    params: &mut Value,
    key: &str,
    text: &str,
) -> Result<(), Error> {
    let bad = |expected: &str| Error::BadValue {
        solver,
        key: key.to_string(),
        text: text.to_string(),
        expected: expected.to_string(),
    };
    let has_batch = params
        .get("batch")
        .is_some_and(|b| b.is_null() || b.is_object());
    if has_batch && (key == "batch" || key.starts_with("batch.")) {
        let batch = &mut params["batch"];
        if key == "batch" {
            if text == "none" {
                *batch = Value::Null;
                return Ok(());
            }
            let b: u64 = text
                .parse()
                .ok()
                .filter(|b| *b >= 1)
                .ok_or_else(|| bad("`none` or an integer >= 1"))?;
            if batch.is_null() {
                *batch = serde_json::json!({ "batch_f": b, "batch_g": b, "seed": 0 });
            } else {
                batch["batch_f"] = Value::from(b);
                batch["batch_g"] = Value::from(b);
            }
            return Ok(());
        }
        if batch.is_null() {
            *batch = serde_json::json!({ "batch_f": 0, "batch_g": 0, "seed": 0 });
        }
    }
    let mut slot = &mut *params;
    for part in key.split('.') {
        slot = slot.get_mut(part).ok_or_else(|| Error::UnknownKey {
            solver,
            key: key.to_string(),
            known: keys.to_vec(),
        })?;
    }
    *slot = match slot {
        Value::Bool(_) => Value::Bool(text.parse().map_err(|_| bad("true or false"))?),
        // An optional number back to `none` (the typed parameters refuse it elsewhere).
        Value::Number(_) if text == "none" => Value::Null,
        // serde_json writes every f64 as a float (`1.0`), so a JSON integer is an integer field.
        Value::Number(n) if n.is_u64() => {
            Value::from(text.parse::<u64>().map_err(|_| bad("an integer >= 0"))?)
        }
        Value::Number(_) => {
            let v: f64 = text.parse().map_err(|_| bad("a number"))?;
            serde_json::Number::from_f64(v)
                .map(Value::Number)
                .ok_or_else(|| bad("a finite number"))?
        }
        Value::String(_) => Value::String(text.to_string()),
        // An optional value now `none`: an integer stays one (an optional count), any other
        // number is a float (an optional probability or radius); the typed parameters then
        // check it.
        Value::Null => match (text, text.parse::<u64>()) {
            ("none", _) => Value::Null,
            (_, Ok(n)) => Value::from(n),
            (_, Err(_)) => text
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| bad("a number or `none`"))?,
        },
        // A whole nested value as JSON: how an enum field changes variant
        // (`solve={"Neumann":{"terms":5,"eta":0.5}}`); the typed parameters then check it.
        Value::Object(_) | Value::Array(_) => match serde_json::from_str::<Value>(text) {
            Ok(v @ (Value::Object(_) | Value::Array(_))) => v,
            _ => {
                return Err(bad(
                    "a nested key, e.g. one of the listed dotted keys, or the whole value as JSON",
                ));
            }
        },
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_solver_is_named_as_in_the_registry_and_builds_from_its_defaults() {
        for e in SOLVERS {
            let s = e.defaults().build().unwrap();
            assert_eq!(s.name(), e.name);
            assert_eq!(e.defaults().solver(), e.name);
            assert!(solver(e.name).is_ok());
        }
        assert!(matches!(
            solver("pgdqp"),
            Err(Error::UnknownName { what: "solver", .. })
        ));
    }

    #[test]
    fn keys_are_flat_and_values_are_typed_once() {
        let mut p = solver("f2sa").unwrap().defaults();
        let keys = p.keys();
        for k in ["alpha0", "k0", "inner_steps", "batch", "batch.seed"] {
            assert!(keys.iter().any(|x| x == k), "{k} in {keys:?}");
        }
        let e = p.set("inner_steps", "1.5").unwrap_err();
        assert!(
            matches!(&e, Error::BadValue { key, .. } if key == "inner_steps"),
            "{e}"
        );
        assert!(e.to_string().contains("an integer >= 0"), "{e}");
        assert!(matches!(p.set("alpha", "1"), Err(Error::UnknownKey { .. })));
        p.set("alpha0", "0.5").unwrap();
        p.set("batch", "8").unwrap();
        p.set("batch.seed", "3").unwrap();
        assert_eq!(p.to_json()["alpha0"], 0.5);
        // Run seed 2 draws from the stream 3 + 2.
        assert_eq!(p.for_seed(2).to_json()["batch"]["seed"], 5);
        // An enum field changes variant through its whole value as JSON.
        let mut a = solver("aidbio").unwrap().defaults();
        a.set("solve", r#"{"Neumann":{"terms":5,"eta":0.5}}"#)
            .unwrap();
        assert_eq!(a.to_json()["solve"]["Neumann"]["terms"], 5);
        a.set("solve.Neumann.eta", "0.25").unwrap();
        assert_eq!(a.to_json()["solve"]["Neumann"]["eta"], 0.25);
        let e = a.set("solve", "Neumann").unwrap_err();
        assert!(e.to_string().contains("as JSON"), "{e}");
        let e = a.set("solve", r#"{"Newton":{}}"#).unwrap_err();
        assert!(
            matches!(&e, Error::BadValue { key, .. } if key == "solve"),
            "{e}"
        );
        // AIDBiO takes the minibatch keys, and leaves an empty batch out of its serialized form.
        assert!(a.keys().iter().any(|k| k == "batch.batch_g"));
        assert!(a.to_json().get("batch").is_none());
        a.set("batch", "50").unwrap();
        assert_eq!(a.to_json()["batch"]["batch_f"], 50);
        assert_eq!(a.for_seed(2).to_json()["batch"]["seed"], 2);
        a.set("batch", "none").unwrap();
        assert!(a.to_json().get("batch").is_none());
        // The stochastic implicit methods (and the recursive ones): their keys, and the rules
        // that replace their steps.
        let quad = crate::problems::QuadraticKappa::new(20.0, 2);
        let c = crate::problem::Problem::smoothness(&quad).unwrap(); // L_g = L_Φ = 2
        for (name, extra, derived) in [
            (
                "stocbio",
                &["inner_steps", "neumann_steps"][..],
                &["alpha", "eta", "beta"][..],
            ),
            (
                "amigo",
                &["inner_steps", "linear_steps"],
                &["alpha", "eta", "beta"],
            ),
            (
                "bgs",
                &["unrolled_steps", "warm_start_steps", "linear_steps"],
                &["alpha", "eta", "beta"],
            ),
            (
                "bsa",
                &["inner_steps", "neumann_terms", "alpha_decay", "beta_decay"],
                &["alpha", "eta", "beta"],
            ),
            (
                "ttsa",
                &["neumann_terms", "alpha_decay", "beta_decay"],
                &["alpha", "eta", "beta"],
            ),
            ("fsla", &["rho", "decay"], &["alpha", "eta", "beta"]),
            (
                "mrbo",
                &[
                    "neumann_steps",
                    "rho",
                    "rho_decay",
                    "alpha_decay",
                    "beta_decay",
                ],
                &["alpha", "eta", "beta"],
            ),
            (
                "vrbo",
                &["inner_steps", "neumann_steps", "period"],
                &["alpha", "eta", "beta"],
            ),
            (
                "sustain",
                &[
                    "neumann_terms",
                    "rho",
                    "rho_decay",
                    "alpha_decay",
                    "beta_decay",
                ],
                &["alpha", "eta", "beta"],
            ),
        ] {
            let mut p = solver(name).unwrap().defaults();
            let keys = p.keys();
            for k in ["alpha", "beta", "eta", "batch.batch_f", "batch.seed"]
                .iter()
                .chain(extra)
            {
                assert!(keys.iter().any(|x| x == k), "{name}: {k} in {keys:?}");
            }
            assert_eq!(p.to_json()["batch"]["batch_g"], 64, "{name}");
            let d = p.derive(&c, Some(100), &[]);
            let got: Vec<(&str, f64)> = d.iter().map(|d| (d.key.as_str(), d.value)).collect();
            let want: Vec<(&str, f64)> = derived
                .iter()
                .map(|&k| (k, if k == "beta" { 0.25 } else { 0.5 }))
                .collect();
            assert_eq!(got, want, "{name}");
            p.set("batch", "none").unwrap();
            p.set(extra[0], "3").unwrap();
            assert!(p.to_json()["batch"].is_null(), "{name}");
            let e = p
                .set("eta", "-1")
                .and_then(|_| p.build().map(|_| ()))
                .unwrap_err();
            assert!(
                matches!(e, Error::InvalidParameter { name: "eta", .. }),
                "{name}: {e}"
            );
        }
        let mut q = solver("pgd-qp").unwrap().defaults();
        let e = q.set("rho", "Sqrt").unwrap_err();
        assert!(e.to_string().contains("`rho`"), "{e}");
    }
}

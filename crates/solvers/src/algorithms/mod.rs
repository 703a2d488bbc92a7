//! The algorithms, each from its paper, each with a parameter struct holding the paper's
//! defaults (or a documented choice where the paper's depend on problem constants).
//!
//! | solver | order | loop | source |
//! |---|---|---|---|
//! | [`SingleLoopAid`] | 2nd | single | single-loop AID, Algorithm 1 |
//! | [`SingleLoopItd`] | 2nd | single | single-loop ITD, Algorithm 2 |
//! | [`PgdQp`] | 2nd | single | perturbed gradient descent via a convex QP, Algorithm 1 |
//! | [`Galet`] | 2nd | N + T inner | GALET, Algorithm 1 |
//! | [`Rhg`] | 2nd | T unrolled | reverse-mode ITD through T steps (optionally truncated) |
//! | [`IapttGm`] | 2nd | K unrolled | IAPTT-GM: learned start, pessimistic truncation |
//! | [`AidBio`] | 2nd | double | AID with CG or Neumann |
//! | [`Bome`] | 1st | T inner | BOME |
//! | [`VPbgd`] | 1st | T inner | V-PBGD |
//! | [`Meha`] | 1st | single | MEHA: Moreau envelope of the lower level, increasing penalty (Liu, Liu, Yao, Zeng and Zhang, Alg. 1) |
//! | [`F2sa`] | 1st | T inner | F²SA (increasing or fixed λ) |
//! | [`F2ba`] | 1st | K inner | F²BA: F²SA's fixed-penalty iteration, `z` restarted from `y` (Chen, Ma and Zhang); F²BSA with minibatches |
//! | [`F3sa`] | 1st | single | F³SA: F²SA with momentum-assisted (STORM-type) estimators |
//! | [`ProxF2saTwoLoop`] | 1st | T inner | proximal two-loop F²SA with projections |
//! | [`ProxF2saMomentum`] | 1st | single | proximal single-loop F²SA with momentum, projections |
//! | [`Soba`] | 2nd | single | SOBA: stochastic joint steps on `(y, v, x)` (Dagréou et al., Alg. 1) |
//! | [`Saba`] | 2nd | single | SABA: SOBA's directions with SAGA variance reduction (same paper, Alg. 2) |
//! | [`Stocbio`] | 2nd | D inner | StocBiO: inner SGD, sampled Neumann series (Ji, Yang and Liang, Alg. 2) |
//! | [`Amigo`] | 2nd | T + N inner | AmIGO: warm-started SGD on `y` and on the linear system (Arbel and Mairal, Alg. 1) |
//! | [`Bgs`] | 2nd | T + U + N inner | BGS: AmIGO's warm starts, the last `U` inner steps unrolled, the linear system as the correction (Arbel and Mairal, the authors' code) |
//! | [`Bsa`] | 2nd | t inner | BSA: inner SGD, randomly truncated Neumann series (Ghadimi and Wang, Alg. 2) |
//! | [`Srba`] | 2nd | single | SRBA: SOBA's directions with SARAH variance reduction, periodic restarts (Dagréou, Moreau, Vaiter and Ablin) |
//! | [`MaSoba`] | 2nd | single | MA-SOBA: SOBA with a moving average of the `x` direction (Chen, Xiao and Balasubramanian) |
//! | [`Spaba`] | 2nd | single | SPABA: SOBA's directions with PAGE variance reduction, random restarts (Chu, Xu, Yao and Zhang) |
//! | [`Ttsa`] | 2nd | single | TTSA: one inner step on a faster time scale, BSA's hypergradient (Hong, Wai, Wang and Yang, Alg. 1) |
//! | [`Fsla`] | 2nd | single | FSLA: one step each on `y`, `v` and `x`, `x` along a STORM-type hypergradient (Li, Gu and Huang) |
//! | [`Mrbo`] | 2nd | single | MRBO: STORM-type estimators of `∇ᵧg` and of the Neumann hypergradient (Yang, Ji and Liang, Alg. 1) |
//! | [`Vrbo`] | 2nd | m inner | VRBO: SARAH/SPIDER-type estimators restarted from full sums every `q` iterations (same paper, Alg. 2) |
//! | [`Sustain`] | 2nd | single | SUSTAIN: MRBO's double momentum with BSA's randomly truncated series (Khanduri, Zeng, Hong, Wai, Wang and Yang, Alg. 1) |
//! | [`Mgbio`] | 2nd | single | MGBiO: momentum on `x`, the Hessian projected onto `{H ⪰ μI}` and inverted (Huang, deterministic method) |
//! | [`Hjfbio`] | 1st | single | HJFBiO: steps on `y`, `v` and `x`, products by finite differences of `∇g` (Huang, Alg. 1) |
//!
//! Not implemented: IGFM (Chen, Xu and Zhang, "On Finding Small Hyper-Gradients in Bilevel
//! Optimization: Hardness Results and Improved Analysis"): its algorithm boxes were not at hand, only the
//! abstract and reviews, which describe a zeroth-order method on the hyper-objective `Φ` (its
//! values estimated by the switching gradient method on the lower level, for a Goldstein
//! stationary point), not a penalty method; the parameters `K₀`, `K` and `θ` the reviews name
//! are undefined without them. [`Meha`] documents how its penalty `c_k` was settled between the
//! sources that disagree on it.

pub(crate) mod aid;
pub(crate) mod aidbio;
pub(crate) mod amigo;
pub(crate) mod bgs;
pub(crate) mod bome;
pub(crate) mod bsa;
pub(crate) mod f2ba;
pub(crate) mod f2sa;
pub(crate) mod f3sa;
pub(crate) mod fsla;
pub(crate) mod galet;
pub(crate) mod hjfbio;
pub(crate) mod iaptt;
pub(crate) mod itd;
pub(crate) mod ma_soba;
pub(crate) mod meha;
pub(crate) mod mgbio;
pub(crate) mod mrbo;
pub(crate) mod pgdqp;
pub(crate) mod prox;
pub(crate) mod prox_momentum;
mod recursive_soba;
pub(crate) mod rhg;
pub(crate) mod saba;
mod schedule;
pub(crate) mod soba;
pub(crate) mod spaba;
pub(crate) mod srba;
pub(crate) mod stocbio;
pub(crate) mod sustain;
pub(crate) mod ttsa;
pub(crate) mod vpbgd;
pub(crate) mod vrbo;

pub use aid::{SingleLoopAid, SingleLoopAidParams};
pub use aidbio::{AidBio, AidBioParams, LinearSolve};
pub use amigo::{Amigo, AmigoParams};
pub use bgs::{Bgs, BgsParams};
pub use bome::{Bome, BomeParams};
pub use bsa::{Bsa, BsaParams};
pub use f2ba::{F2ba, F2baParams, F2bsaParams};
pub use f2sa::{F2sa, F2saParams};
pub use f3sa::{F3sa, F3saParams};
pub use fsla::{Fsla, FslaParams};
pub use galet::{Galet, GaletParams, WIncrement};
pub use hjfbio::{Hjfbio, HjfbioParams};
pub use iaptt::{IapttGm, IapttGmParams};
pub use itd::{SingleLoopItd, SingleLoopItdParams};
pub use ma_soba::{MaSoba, MaSobaParams};
pub use meha::{Meha, MehaParams};
pub use mgbio::{Mgbio, MgbioParams};
pub use mrbo::{Mrbo, MrboParams};
pub use pgdqp::{KktMultiplier, PgdQp, PgdQpParams, Rho};
pub use prox::{ProxF2saParams, ProxF2saTwoLoop};
pub use prox_momentum::{ProxF2saMomentum, ProxF2saMomentumParams};
pub use rhg::{Rhg, RhgParams};
pub use saba::{MemoryInit, Saba, SabaParams};
pub use schedule::PenaltySchedule;
pub use soba::{Soba, SobaParams};
pub use spaba::{Spaba, SpabaParams};
pub use srba::{Srba, SrbaParams};
pub use stocbio::{Stocbio, StocbioParams};
pub use sustain::{Sustain, SustainParams};
pub use ttsa::{Ttsa, TtsaParams};
pub use vpbgd::{VPbgd, VPbgdParams};
pub use vrbo::{Vrbo, VrboParams};

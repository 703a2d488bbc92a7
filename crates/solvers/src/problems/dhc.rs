//! Data hyper-cleaning (DHC): learn one weight per training sample so that a classifier trained
//! on the weighted, partly mislabeled training set does well on clean validation data.
//!
//! The formulation is §5 of "Perturbed Gradient Descent via Convex Quadratic Approximation for
//! Nonconvex Bilevel Optimization" (with `λ = 0.001`), also used in Appendix G of "A Generalized
//! Alternating Method for Bilevel Optimization under the Polyak-Łojasiewicz Condition" (whose
//! MLP has no regularizer, `λ = 0`) and Appendix D of "Sharper Analysis of Single-Loop Methods
//! for Bilevel Optimization":
//!
//! `min_x f(y*(x)) = (1/N_val) Σ_val CE(h_y(aᵢ), bᵢ)` subject to
//! `y*(x) = argmin_y (1/N_tr) Σ_tr σ(xᵢ) CE(h_y(aᵢ), bᵢ) + λ‖y‖²`,
//!
//! where `σ` is the sigmoid, `CE` the softmax cross-entropy and `h_y` either a linear classifier
//! (softmax regression, `y` the `d × k` weights in column-major order; a bias is a feature equal
//! to one) or an MLP `d-h-k` with biases. The data come in as matrices and labels, so this crate
//! stays independent of any dataset reader.
//!
//! Features are stored **feature-major**, one column per sample (`d × N`), and the logits are
//! recorded as `Xᵀ W`: a sample's features are then contiguous, which is the layout the tape's
//! streamed evaluation reads fastest (one pass over the data per oracle, see
//! [`Evaluator`]). [`DhcData::from_samples`] takes the usual sample-major
//! matrices and stores them so.
//!
//! Both objectives are averages over rows, so [`Dhc`] is a [`DataSum`]: a minibatch of training
//! (or validation) rows gives an exact, unbiased stochastic `g` (or `f`), recorded on those rows
//! only.

use crate::error::Error;
use crate::metrics::InnerSolve;
use crate::problem::{DataSum, Problem};
use bilevel_ad::{Evaluator, Tape, Var};
use bilevel_linalg::{Mat, MatRef, advise_huge_pages};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;

/// The hidden-layer nonlinearity of [`DhcModel::Mlp`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `max(0, z)`.
    Relu,
    /// `tanh z`.
    Tanh,
    /// `1 / (1 + e^{−z})`.
    Sigmoid,
}

impl Activation {
    /// The short name (`relu`, `tanh`, `sigmoid`).
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
        }
    }

    /// Parse [`Activation::name`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "relu" => Some(Activation::Relu),
            "tanh" => Some(Activation::Tanh),
            "sigmoid" => Some(Activation::Sigmoid),
            _ => None,
        }
    }
}

/// The lower-level classifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DhcModel {
    /// Softmax regression: `y` is the `d × k` weight matrix.
    Linear,
    /// One hidden layer of width `hidden` with biases: `y = (W₁, b₁, W₂, b₂)` packed in order.
    Mlp {
        /// Hidden width (50 in the GALET paper, 256 in the single-loop paper).
        hidden: usize,
        /// Hidden nonlinearity.
        activation: Activation,
    },
}

/// Features and labels of the three sets. Features are feature-major, `d × samples` (column `i`
/// is sample `i`); labels are in `0..classes`.
#[derive(Clone, Debug)]
pub struct DhcData {
    /// Training features, `d × N_train` (the samples the upper variable weights).
    pub train: Arc<Mat<f64>>,
    /// Training labels (partly corrupted).
    pub train_labels: Vec<u32>,
    /// Validation features, `d × N_val`.
    pub val: Arc<Mat<f64>>,
    /// Validation labels (clean).
    pub val_labels: Vec<u32>,
    /// Test features, `d × N_test` (metrics only).
    pub test: Arc<Mat<f64>>,
    /// Test labels.
    pub test_labels: Vec<u32>,
    /// Number of classes `k`.
    pub classes: usize,
}

impl DhcData {
    /// The three sets from sample-major feature matrices (`samples × d`, one row per sample, as
    /// dataset loaders usually build them), stored feature-major.
    #[allow(clippy::too_many_arguments)]
    pub fn from_samples(
        train: MatRef<'_, f64>,
        train_labels: Vec<u32>,
        val: MatRef<'_, f64>,
        val_labels: Vec<u32>,
        test: MatRef<'_, f64>,
        test_labels: Vec<u32>,
        classes: usize,
    ) -> Self {
        let fm = |m: MatRef<'_, f64>| Arc::new(m.transpose().to_owned());
        DhcData {
            train: fm(train),
            train_labels,
            val: fm(val),
            val_labels,
            test: fm(test),
            test_labels,
            classes,
        }
    }
}

/// Precision, recall and F1 of flagging `σ(xᵢ) < 0.5` as corrupted, against the true mask.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Cleaning {
    /// Flagged samples that are truly corrupted, over all flagged (1 when nothing is flagged).
    pub precision: f64,
    /// Corrupted samples that are flagged, over all corrupted (1 when nothing is corrupted).
    pub recall: f64,
    /// Harmonic mean of precision and recall (0 when both are 0).
    pub f1: f64,
    /// Number of flagged samples.
    pub flagged: usize,
}

/// The data hyper-cleaning bilevel problem (see the module documentation).
#[derive(Clone, Debug)]
pub struct Dhc {
    data: Arc<DhcData>,
    model: DhcModel,
    lambda: f64,
    tag: String,
    init_seed: u64,
    /// Which training labels are corrupted, when known (for the cleaning scores).
    corrupted: Option<Vec<bool>>,
    /// Whether the metrics include the test loss ([`Dhc::with_test_loss`]).
    test_loss: bool,
    /// Whether the metrics include GALET's stationarity measure ([`Dhc::with_stationarity`]).
    stationarity: bool,
    /// Whether the metrics include the validation and training accuracies
    /// ([`Dhc::with_accuracies`]).
    accuracies: bool,
    /// Every entry of `x₀` ([`Dhc::with_x0`]).
    x0: f64,
}

/// The gradient tolerance of the lower-level solve behind GALET's `R_y` on [`Dhc`]
/// ([`Dhc::with_stationarity`]): with `μ = 2λ = 0.002` it bounds the error of `g*` by
/// `10⁻¹⁸ / 0.004 = 2.5·10⁻¹⁶`, rounding level for a loss of order one.
pub const DHC_STATIONARITY_GRAD_TOL: f64 = 1e-9;

/// `1 / (1 + e^{−z})`.
pub fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

impl Dhc {
    /// The problem on `data` with classifier `model` and ridge weight `lambda ≥ 0`; `tag` names the
    /// variant (e.g. `linear`, `pca`, `mlp50`) in [`Problem::name`]. MLP weights start from a
    /// uniform `±√(2/fan_in)` draw seeded by `init_seed`; the linear weights and `x` start at 0.
    ///
    /// # Panics
    /// If the sets disagree in feature count, labels and samples differ in number, a label is
    /// not below `classes`, `lambda` is negative or an MLP has zero width.
    pub fn new(
        data: Arc<DhcData>,
        model: DhcModel,
        lambda: f64,
        tag: impl Into<String>,
        init_seed: u64,
    ) -> Self {
        let d = data.train.nrows();
        for (name, a, l) in [
            ("train", &data.train, &data.train_labels),
            ("val", &data.val, &data.val_labels),
            ("test", &data.test, &data.test_labels),
        ] {
            assert!(
                a.nrows() == d,
                "Dhc: {name} has {} features, train has {d}",
                a.nrows()
            );
            assert!(
                a.ncols() == l.len(),
                "Dhc: {name} has {} samples but {} labels",
                a.ncols(),
                l.len()
            );
            assert!(
                l.iter().all(|&c| (c as usize) < data.classes),
                "Dhc: a {name} label is not below {}",
                data.classes
            );
        }
        assert!(lambda >= 0.0, "Dhc: lambda must be >= 0");
        if let DhcModel::Mlp { hidden, .. } = model {
            assert!(hidden > 0, "Dhc: the hidden width must be > 0");
        }
        // The oracles stream the training and validation features once per call.
        advise_huge_pages(Mat::as_ref(&data.train));
        advise_huge_pages(Mat::as_ref(&data.val));
        Dhc {
            data,
            model,
            lambda,
            tag: tag.into(),
            init_seed,
            corrupted: None,
            test_loss: false,
            stationarity: false,
            accuracies: false,
            x0: 0.0,
        }
    }

    /// The problem whose metrics also report `test_loss`, the mean cross-entropy of the
    /// classifier on the test split (the left panel of GALET's Figure 5). Opt-in so that the
    /// traces of every other run keep their columns.
    pub fn with_test_loss(mut self) -> Self {
        self.test_loss = true;
        self
    }

    /// The problem whose metrics also report `val_acc` and `train_acc`, the accuracies on the
    /// validation set and on the (corrupted) training labels: benchopt's `benchmark_bilevel`
    /// reports both (as errors). Opt-in so that the traces of every other run keep their columns.
    pub fn with_accuracies(mut self) -> Self {
        self.accuracies = true;
        self
    }

    /// The problem starting from `x₀ = x0·1` instead of 0 (benchopt's `benchmark_bilevel` starts
    /// its sample weights at `−2`, `σ(−2) ≈ 0.12`).
    ///
    /// # Panics
    /// If `x0` is not finite.
    pub fn with_x0(mut self, x0: f64) -> Self {
        assert!(x0.is_finite(), "Dhc: x0 must be finite");
        self.x0 = x0;
        self
    }

    /// The problem whose metrics include GALET's stationarity measure `R_x + R_w + R_y`
    /// (Definition 3 of "A Generalized Alternating Method for Bilevel Optimization under the
    /// Polyak-Łojasiewicz Condition"): with a linear classifier and `λ > 0`, `g(x, ·)` is a
    /// weighted softmax cross-entropy plus `λ‖y‖²`, convex plus `2λ`-strongly convex, so
    /// [`Problem::stationarity`] states `μ = 2λ` and the metrics compute `g*(x)` by Newton–CG to
    /// `‖∇ᵧg‖ ≤` [`DHC_STATIONARITY_GRAD_TOL`] (and `w` by CG for solvers without a shadow; see
    /// [`InnerSolve`]). Costly: hundreds of Hessian-vector products per evaluation.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming `stationarity` when the model is an MLP (its lower level is
    /// not strongly convex) or `λ = 0`.
    pub fn with_stationarity(mut self) -> Result<Self, Error> {
        if self.model != DhcModel::Linear || self.lambda <= 0.0 {
            return Err(Error::InvalidConfig {
                name: "stationarity",
                value: format!("true (model {:?}, lambda {})", self.model, self.lambda),
                allowed: "only a linear classifier with lambda > 0 (a strongly convex lower level)",
            });
        }
        self.stationarity = true;
        Ok(self)
    }

    /// The problem knowing which training labels are corrupted, so that its metrics include the
    /// cleaning scores ([`Dhc::cleaning`]).
    ///
    /// # Panics
    /// If the mask's length is not the number of training samples.
    pub fn with_corruption(mut self, corrupted: Vec<bool>) -> Self {
        assert_eq!(
            corrupted.len(),
            self.dim_x(),
            "Dhc: the corruption mask must have one entry per training sample"
        );
        self.corrupted = Some(corrupted);
        self
    }

    /// The corruption mask, when known.
    pub fn corruption(&self) -> Option<&[bool]> {
        self.corrupted.as_deref()
    }

    /// The data.
    pub fn data(&self) -> &DhcData {
        &self.data
    }

    /// The ridge weight `λ`.
    pub fn lambda(&self) -> f64 {
        self.lambda
    }

    fn dk(&self) -> (usize, usize) {
        (self.data.train.nrows(), self.data.classes)
    }

    /// The logits `h_y(X)` (`samples × k`) recorded on the tape for feature-major features `x`
    /// (`d × samples`).
    fn logits(&self, t: &mut Tape, y: Var, x: Var) -> Var {
        let (d, k) = self.dk();
        match self.model {
            DhcModel::Linear => {
                let w = t.reshape(y, d, k);
                t.matmul_t(x, true, w, false)
            }
            DhcModel::Mlp {
                hidden: h,
                activation,
            } => {
                let w1 = t.slice(y, 0, 0, d * h, 1);
                let w1 = t.reshape(w1, d, h);
                let b1 = t.slice(y, d * h, 0, h, 1);
                let b1 = t.reshape(b1, 1, h);
                let w2 = t.slice(y, d * h + h, 0, h * k, 1);
                let w2 = t.reshape(w2, h, k);
                let b2 = t.slice(y, d * h + h + h * k, 0, k, 1);
                let b2 = t.reshape(b2, 1, k);
                let z = t.matmul_t(x, true, w1, false);
                let z = t.add_row(z, b1);
                let z = match activation {
                    Activation::Relu => t.relu(z),
                    Activation::Tanh => t.tanh(z),
                    Activation::Sigmoid => t.sigmoid(z),
                };
                let z = t.matmul(z, w2);
                t.add_row(z, b2)
            }
        }
    }

    /// Mean cross-entropy and accuracy of the classifier `y` on the features `a` with `labels`,
    /// from one forward pass of the tape: the logits are recorded by the same
    /// [`Dhc::logits`] the objectives use.
    fn loss_and_accuracy(
        &self,
        ev: &mut Evaluator,
        a: &Arc<Mat<f64>>,
        labels: &[u32],
        y: MatRef<'_, f64>,
    ) -> (f64, f64) {
        if labels.is_empty() {
            return (0.0, 0.0);
        }
        let t = ev.tape();
        t.clear();
        let yv = t.input(y);
        let data = t.shared(a);
        let z = self.logits(t, yv, data);
        let loss = t.cross_entropy(z, labels, None);
        let loss = t.scalar(loss);
        let z = t.value(z);
        assert_eq!(z.nrows(), labels.len(), "Dhc: one row of logits per sample");
        let correct =
            labels
                .iter()
                .enumerate()
                .filter(|&(i, &label)| {
                    let row = (0..z.ncols()).map(|j| z[(i, j)]);
                    // The first largest logit, as an argmax over the row.
                    let best = row.enumerate().fold((0, f64::NEG_INFINITY), |b, (j, v)| {
                        if v > b.1 { (j, v) } else { b }
                    });
                    best.0 == label as usize
                })
                .count();
        (loss, correct as f64 / labels.len() as f64)
    }

    /// The names of [`Problem::metrics`] for this problem, in order: validation loss, test
    /// accuracy, the test loss when asked for ([`Dhc::with_test_loss`]) and, when the corruption
    /// mask is known, the cleaning scores.
    pub fn metric_names(&self) -> Vec<&'static str> {
        let mut names = vec!["val_loss", "test_acc"];
        if self.test_loss {
            names.push("test_loss");
        }
        if self.accuracies {
            names.extend(["val_acc", "train_acc"]);
        }
        if self.corrupted.is_some() {
            names.extend(["precision", "recall", "f1"]);
        }
        names
    }

    /// Cleaning quality of the sample weights `x` against the true corruption mask.
    ///
    /// # Panics
    /// If `corrupted` and `x` differ in length.
    pub fn cleaning(x: MatRef<'_, f64>, corrupted: &[bool]) -> Cleaning {
        assert_eq!(x.nrows(), corrupted.len(), "cleaning: mask length");
        let (mut tp, mut flagged) = (0usize, 0usize);
        for (i, &c) in corrupted.iter().enumerate() {
            let flag = sigmoid(x[(i, 0)]) < 0.5;
            flagged += usize::from(flag);
            tp += usize::from(flag && c);
        }
        let positives = corrupted.iter().filter(|&&c| c).count();
        let precision = if flagged == 0 {
            1.0
        } else {
            tp as f64 / flagged as f64
        };
        let recall = if positives == 0 {
            1.0
        } else {
            tp as f64 / positives as f64
        };
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        Cleaning {
            precision,
            recall,
            f1,
            flagged,
        }
    }
}

impl Problem for Dhc {
    fn name(&self) -> String {
        format!(
            "dhc-{}-n{}-d{}",
            self.tag,
            self.data.train.ncols(),
            self.data.train.nrows()
        )
    }

    fn dim_x(&self) -> usize {
        self.data.train.ncols()
    }

    fn dim_y(&self) -> usize {
        let (d, k) = self.dk();
        match self.model {
            DhcModel::Linear => d * k,
            DhcModel::Mlp { hidden: h, .. } => d * h + h + h * k + k,
        }
    }

    fn x0(&self) -> Mat<f64> {
        Mat::from_fn(self.dim_x(), 1, |_, _| self.x0)
    }

    fn y0(&self) -> Mat<f64> {
        let (d, k) = self.dk();
        match self.model {
            DhcModel::Linear => Mat::zeros(d * k, 1),
            DhcModel::Mlp { hidden: h, .. } => {
                let mut rng = StdRng::seed_from_u64(self.init_seed);
                let (s1, s2) = ((2.0 / d as f64).sqrt(), (2.0 / h as f64).sqrt());
                let mut v = vec![0.0; self.dim_y()];
                for vi in &mut v[..d * h] {
                    *vi = s1 * rng.random_range(-1.0..1.0);
                }
                let o = d * h + h;
                for vi in &mut v[o..o + h * k] {
                    *vi = s2 * rng.random_range(-1.0..1.0);
                }
                Mat::from_fn(v.len(), 1, |i, _| v[i])
            }
        }
    }

    fn f(&self, t: &mut Tape, _x: Var, y: Var) -> Var {
        self.upper(t, y, None)
    }

    fn g(&self, t: &mut Tape, x: Var, y: Var) -> Var {
        self.lower(t, x, y, None)
    }

    fn data_sum(&self) -> Option<&dyn DataSum> {
        Some(self)
    }

    /// With [`Dhc::with_stationarity`]: `μ = 2λ` (the ridge term's modulus; the weighted
    /// cross-entropy of a linear classifier is convex) and the tolerance
    /// [`DHC_STATIONARITY_GRAD_TOL`].
    fn stationarity(&self) -> Option<InnerSolve> {
        self.stationarity.then_some(InnerSolve {
            mu: 2.0 * self.lambda,
            grad_tol: DHC_STATIONARITY_GRAD_TOL,
        })
    }

    /// `val_loss` (the mean validation cross-entropy, which is `f`), `test_acc` (the share of
    /// test samples whose largest logit is their label), `test_loss` (the mean test
    /// cross-entropy) when asked for ([`Dhc::with_test_loss`]), `val_acc` and `train_acc` when
    /// asked for ([`Dhc::with_accuracies`]) and, with a corruption mask
    /// ([`Dhc::with_corruption`]), the cleaning `precision`, `recall` and `f1`.
    fn metrics(
        &self,
        ev: &mut Evaluator,
        x: MatRef<'_, f64>,
        y: MatRef<'_, f64>,
    ) -> Vec<(&'static str, f64)> {
        let d = &*self.data;
        let (val_loss, val_acc) = self.loss_and_accuracy(ev, &d.val, &d.val_labels, y);
        let (test_loss, test_acc) = self.loss_and_accuracy(ev, &d.test, &d.test_labels, y);
        let mut m = vec![("val_loss", val_loss), ("test_acc", test_acc)];
        if self.test_loss {
            m.push(("test_loss", test_loss));
        }
        if self.accuracies {
            let (_, train_acc) = self.loss_and_accuracy(ev, &d.train, &d.train_labels, y);
            m.extend([("val_acc", val_acc), ("train_acc", train_acc)]);
        }
        if let Some(mask) = &self.corrupted {
            let c = Dhc::cleaning(x, mask);
            m.extend([
                ("precision", c.precision),
                ("recall", c.recall),
                ("f1", c.f1),
            ]);
        }
        m
    }
}

/// Whether `idx` is `0..n` in order: a batch that is the whole set.
fn is_everything(idx: &[usize], n: usize) -> bool {
    idx.len() == n && idx.iter().enumerate().all(|(i, &j)| i == j)
}

impl Dhc {
    /// The mean validation cross-entropy over the rows `idx` (every row for `None`).
    fn upper(&self, t: &mut Tape, y: Var, idx: Option<&[usize]>) -> Var {
        match idx {
            None => {
                let a = t.shared(&self.data.val);
                let z = self.logits(t, y, a);
                t.cross_entropy(z, &self.data.val_labels, None)
            }
            Some(idx) => {
                let a = t.shared_cols(&self.data.val, idx);
                let z = self.logits(t, y, a);
                let labels: Vec<u32> = idx.iter().map(|&i| self.data.val_labels[i]).collect();
                t.cross_entropy(z, &labels, None)
            }
        }
    }

    /// The mean `σ(xⱼ)`-weighted training cross-entropy over the rows `idx` (every row for
    /// `None`), plus the whole ridge term `λ‖y‖²`.
    fn lower(&self, t: &mut Tape, x: Var, y: Var, idx: Option<&[usize]>) -> Var {
        let l = match idx {
            None => {
                let a = t.shared(&self.data.train);
                let z = self.logits(t, y, a);
                let s = t.sigmoid(x);
                t.cross_entropy(z, &self.data.train_labels, Some(s))
            }
            Some(idx) => {
                let a = t.shared_cols(&self.data.train, idx);
                let z = self.logits(t, y, a);
                let xb = t.gather_rows(x, idx);
                let s = t.sigmoid(xb);
                let labels: Vec<u32> = idx.iter().map(|&i| self.data.train_labels[i]).collect();
                t.cross_entropy(z, &labels, Some(s))
            }
        };
        if self.lambda == 0.0 {
            return l;
        }
        let r = t.sum_sq(y);
        let r = t.scale(r, self.lambda);
        t.add(l, r)
    }
}

/// DHC as a data sum: sample `i` of `f` is validation row `i`, `fᵢ = CE(h_y(aᵢ), bᵢ)`, and
/// sample `j` of `g` is training row `j`, `gⱼ = σ(xⱼ) CE(h_y(aⱼ), bⱼ) + λ‖y‖²`, so that
/// `f = (1/N_val) Σᵢ fᵢ` and `g = (1/N_tr) Σⱼ gⱼ` are exactly [`Problem::f`] and [`Problem::g`].
/// The ridge term is in every sample, hence whole (unscaled) in every batch.
///
/// A batch `B` is recorded on its samples only: [`Tape::shared_cols`] copies the `|B|` selected
/// feature columns into the tape's arena (never the whole data matrix) and [`Tape::gather_rows`]
/// picks `x_B` out of `x`,
/// so the batch objective `(1/|B|) Σ_{j∈B} σ(xⱼ) CEⱼ + λ‖y‖²` and all its derivatives are exact,
/// and a stochastic gradient costs `|B|/N` of the data pass of a full one. `∇ₓ` of a `g` batch is
/// zero off `B`. The estimate is unbiased: for `B` uniform among the sets of `b` distinct
/// indices (what [`SampleStream::draw`](crate::sampling::SampleStream::draw) gives), each row
/// is in `B` with probability `b/N`, so `E[(1/b) Σ_{j∈B} gⱼ] = (1/N) Σⱼ gⱼ`; likewise the mean of
/// the batch objectives over a partition into batches of equal size is the full objective. A
/// batch holding every index in order is the full recording itself.
impl DataSum for Dhc {
    fn samples_f(&self) -> usize {
        self.data.val.ncols()
    }
    fn samples_g(&self) -> usize {
        self.data.train.ncols()
    }
    fn f_batch(&self, t: &mut Tape, _x: Var, y: Var, idx: &[usize]) -> Var {
        let full = is_everything(idx, self.samples_f());
        self.upper(t, y, (!full).then_some(idx))
    }
    fn g_batch(&self, t: &mut Tape, x: Var, y: Var, idx: &[usize]) -> Var {
        let full = is_everything(idx, self.samples_g());
        self.lower(t, x, y, (!full).then_some(idx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bilevel_ad::Evaluator;

    fn tiny(model: DhcModel, lambda: f64) -> Dhc {
        let mut rng = StdRng::seed_from_u64(3);
        let mut m =
            |r: usize, c: usize| Arc::new(Mat::from_fn(c, r, |_, _| rng.random_range(-1.0..1.0)));
        let (tr, va, te) = (m(6, 3), m(4, 3), m(4, 3));
        let data = DhcData {
            train: tr,
            train_labels: vec![0, 1, 2, 0, 1, 2],
            val: va,
            val_labels: vec![2, 1, 0, 1],
            test: te,
            test_labels: vec![0, 0, 1, 2],
            classes: 3,
        };
        Dhc::new(Arc::new(data), model, lambda, "tiny", 1)
    }

    fn check_grad_g(p: &Dhc) {
        let mut ev = Evaluator::new();
        let x = Mat::from_fn(p.dim_x(), 1, |i, _| 0.3 * i as f64 - 0.7);
        let y0 = p.y0();
        let y = Mat::from_fn(p.dim_y(), 1, |i, _| {
            y0[(i, 0)] + 0.05 * ((i * 7 % 5) as f64 - 2.0)
        });
        let gr = p.grad_g(&mut ev, x.as_ref(), y.as_ref());
        let h = 1e-6;
        for (block, n) in [(0, p.dim_x()), (1, p.dim_y())] {
            for i in 0..n {
                let (mut xp, mut xm, mut yp, mut ym) = (x.clone(), x.clone(), y.clone(), y.clone());
                if block == 0 {
                    xp[(i, 0)] += h;
                    xm[(i, 0)] -= h;
                } else {
                    yp[(i, 0)] += h;
                    ym[(i, 0)] -= h;
                }
                let fd = (p.value_g(&mut ev, xp.as_ref(), yp.as_ref())
                    - p.value_g(&mut ev, xm.as_ref(), ym.as_ref()))
                    / (2.0 * h);
                let ad = if block == 0 {
                    gr.x[(i, 0)]
                } else {
                    gr.y[(i, 0)]
                };
                assert!(
                    (fd - ad).abs() < 1e-7,
                    "block {block} coord {i}: fd {fd} ad {ad}"
                );
            }
        }
    }

    #[test]
    fn grad_g_matches_finite_differences() {
        check_grad_g(&tiny(DhcModel::Linear, 0.01));
        for activation in [Activation::Tanh, Activation::Sigmoid] {
            check_grad_g(&tiny(
                DhcModel::Mlp {
                    hidden: 2,
                    activation,
                },
                0.0,
            ));
        }
    }

    /// The problem's metric named `name` at `(x, y)`.
    fn metric(p: &Dhc, x: &Mat<f64>, y: &Mat<f64>, name: &str) -> f64 {
        let m = p.metrics(&mut Evaluator::new(), x.as_ref(), y.as_ref());
        let names: Vec<&str> = m.iter().map(|(k, _)| *k).collect();
        assert_eq!(names, p.metric_names());
        m.iter().find(|(k, _)| *k == name).unwrap().1
    }

    #[test]
    fn the_validation_loss_metric_is_f() {
        for model in [
            DhcModel::Linear,
            DhcModel::Mlp {
                hidden: 3,
                activation: Activation::Relu,
            },
        ] {
            let p = tiny(model, 0.001);
            let mut ev = Evaluator::new();
            let y = Mat::from_fn(p.dim_y(), 1, |i, _| 0.1 * ((i * 3 % 7) as f64 - 3.0));
            let f = p.value_f(&mut ev, p.x0().as_ref(), y.as_ref());
            assert_eq!(metric(&p, &p.x0(), &y, "val_loss"), f);
        }
    }

    #[test]
    fn accuracy_on_a_hand_made_classifier() {
        // Two features, two classes; the classifier picks the larger feature.
        let a = Arc::new(Mat::from_fn(
            2,
            4,
            |j, i| if (i % 2) == j { 1.0 } else { 0.0 },
        ));
        let data = DhcData {
            train: Arc::clone(&a),
            train_labels: vec![0, 1, 0, 1],
            val: Arc::clone(&a),
            val_labels: vec![0, 1, 0, 1],
            test: a,
            test_labels: vec![0, 1, 1, 1],
            classes: 2,
        };
        let p = Dhc::new(Arc::new(data), DhcModel::Linear, 0.0, "hand", 0)
            .with_corruption(vec![true, false, false, false]);
        // W = identity, column-major (w00, w10, w01, w11).
        let y = Mat::from_fn(4, 1, |i, _| if i == 0 || i == 3 { 1.0 } else { 0.0 });
        let x = Mat::from_fn(4, 1, |i, _| if i == 0 { -1.0 } else { 1.0 });
        assert_eq!(metric(&p, &x, &y, "test_acc"), 0.75);
        let expected = (1.0 + (-1.0f64).exp()).ln();
        assert!((metric(&p, &x, &y, "val_loss") - expected).abs() < 1e-12);
        // Sample 0 is flagged (σ(−1) < 1/2) and is the corrupted one.
        assert_eq!(metric(&p, &x, &y, "f1"), 1.0);
        let blind = Mat::zeros(4, 1);
        assert_eq!(metric(&p, &blind, &y, "recall"), 0.0);
        // With the accuracies (benchopt's metrics): the validation labels are the classifier's
        // picks, the training labels too, and the start moves to x0.
        let p = p.with_accuracies().with_x0(-2.0);
        assert_eq!(metric(&p, &x, &y, "val_acc"), 1.0);
        assert_eq!(metric(&p, &x, &y, "train_acc"), 1.0);
        assert_eq!(metric(&p, &x, &y, "test_acc"), 0.75);
        assert!(p.x0().col(0).iter().all(|&v| v == -2.0));
        assert_eq!(p.metric_names()[2..4], ["val_acc", "train_acc"]);
    }

    #[test]
    fn cleaning_scores_on_hand_made_masks() {
        // Flag samples 0, 1 (negative x); samples 1, 2 are corrupted.
        let x = Mat::from_fn(4, 1, |i, _| [-1.0, -2.0, 3.0, 0.5][i]);
        let c = Dhc::cleaning(x.as_ref(), &[false, true, true, false]);
        assert_eq!(c.flagged, 2);
        assert_eq!((c.precision, c.recall, c.f1), (0.5, 0.5, 0.5));
        let none = Dhc::cleaning(Mat::zeros(3, 1).as_ref(), &[true, false, false]);
        assert_eq!((none.precision, none.recall, none.f1), (1.0, 0.0, 0.0));
        let perfect = Dhc::cleaning(x.as_ref(), &[true, true, false, false]);
        assert_eq!(perfect.f1, 1.0);
    }
}

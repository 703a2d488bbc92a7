//! The problems the program knows by name, their parameters and defaults, and the names it
//! suggests for a misspelt one. (The solvers' table is the library's `solvers::registry`.)

use super::CliError;
use crate::datasets::hyperclean::{HypercleanConfig, Preset, SplitSpec};
use crate::datasets::mnist::{self, Dataset, DatasetKind, LoadOptions, Split};
use crate::solvers::Problem;
use crate::solvers::problems::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One parameter of a problem: its key, default (as text) and meaning.
#[derive(Clone, Copy, Debug)]
pub struct ParamSpec {
    /// The `--set` key.
    pub key: &'static str,
    /// The default, as accepted by `--set`.
    pub default: &'static str,
    /// What it means and its allowed range.
    pub help: &'static str,
}

const fn p(key: &'static str, default: &'static str, help: &'static str) -> ParamSpec {
    ParamSpec { key, default, help }
}

/// A problem the program can build.
#[derive(Clone, Copy, Debug)]
pub struct ProblemSpec {
    /// The name given to `--problem`.
    pub name: &'static str,
    /// One line.
    pub about: &'static str,
    /// Its parameters.
    pub params: &'static [ParamSpec],
}

const DHC_COMMON: [ParamSpec; 10] = [
    p(
        "preset",
        "pgdqp",
        "split and corruption preset: pgdqp, pgdqp-pca, galet, single-loop-itd, benchopt",
    ),
    p("n", "preset", "training samples (integer in 1..=70000)"),
    p("val", "preset", "validation samples (integer in 1..=70000)"),
    p("test", "preset", "test samples (integer in 1..=70000)"),
    p("p", "preset", "corruption rate, in [0, 1]"),
    p("lambda", "0.001", "ridge weight on the lower level, >= 0"),
    p("bias", "false", "append a bias column of ones (true/false)"),
    p(
        "dataset",
        "mnist",
        "mnist or fashion-mnist: MNIST from --data-dir, else BILEVEL_DATA_DIR, else the shipped \
         test split; Fashion-MNIST from --data-dir, else BILEVEL_FASHION_MNIST_DIR, else \
         /usr/share/datasets/fashion-mnist",
    ),
    p(
        "test_loss",
        "false",
        "also report the mean test cross-entropy as metric test_loss (true/false)",
    ),
    p(
        "stationarity",
        "false",
        "also compute GALET's stationarity measure R_x + R_w + R_y (true/false; costly: \
         Newton-CG for g*(x), CG for w; only dhc-linear with lambda > 0)",
    ),
];

/// `dhc-linear`'s parameters: the common ones and benchopt's `benchmark_bilevel` setting.
const DHC_LINEAR: [ParamSpec; 13] = [
    DHC_COMMON[0],
    DHC_COMMON[1],
    DHC_COMMON[2],
    DHC_COMMON[3],
    DHC_COMMON[4],
    DHC_COMMON[5],
    DHC_COMMON[6],
    DHC_COMMON[7],
    DHC_COMMON[8],
    DHC_COMMON[9],
    p(
        "standardize",
        "false",
        "scale every pixel to zero mean and unit variance over the training set, as \
         scikit-learn's StandardScaler (benchmark_bilevel's MNIST) (true/false)",
    ),
    p(
        "x0",
        "0",
        "every sample weight's start x0 (finite; benchmark_bilevel starts at -2)",
    ),
    p(
        "accuracies",
        "false",
        "also report the validation and training accuracies as metrics val_acc and train_acc \
         (true/false)",
    ),
];

/// Every problem.
pub const PROBLEMS: &[ProblemSpec] = &[
    ProblemSpec {
        name: "quadratic",
        about: "quadratic with condition number kappa (single-loop AID/ITD paper, §5)",
        params: &[
            p("kappa", "10", "condition number, >= 1"),
            p("dim", "2", "dimension of x and y (integer in 1..=10000000)"),
        ],
    },
    ProblemSpec {
        name: "benchopt-quadratic",
        about: "benchopt's benchmark_bilevel simulated quadratic: averages of random quadratics at both levels",
        params: &[
            p(
                "n_inner",
                "32768",
                "inner samples N_g (integer in 1..=1000000)",
            ),
            p(
                "n_outer",
                "1024",
                "outer samples N_f (integer in 1..=1000000)",
            ),
            p("dim_inner", "100", "dimension of y (integer in 1..=1000)"),
            p("dim_outer", "10", "dimension of x (integer in 2..=1000)"),
            p("mu", "0.1", "smallest eigenvalue of the mean Hessians, > 0"),
            p(
                "l_cross",
                "0.1",
                "largest singular value of the mean cross matrices, > 0",
            ),
            p(
                "data_seed",
                "2442",
                "seed of the draw (the benchmark's random_state); the run seed only drives the \
                 solvers' sampling (integer)",
            ),
        ],
    },
    ProblemSpec {
        name: "sc-sincos",
        about: "sin/cos upper level over a strongly convex quadratic lower level (PGD-QP App. C.1.1)",
        params: &[p("n", "20", "dimension (integer in 1..=4096; H is n × n)")],
    },
    ProblemSpec {
        name: "nc-cos",
        about: "same upper level over a nonconvex cos lower level (PGD-QP App. C.1.3)",
        params: &[p("n", "20", "dimension (integer in 1..=4096; H is n × n)")],
    },
    ProblemSpec {
        name: "coreset",
        about: "coreset selection with a softmax (PGD-QP App. C.1.2)",
        params: &[],
    },
    ProblemSpec {
        name: "galet-example1",
        about: "GALET Example 1: a PL lower level with a continuum of solutions",
        params: &[
            p("x0", "2", "starting x"),
            p("y1", "2", "starting y1"),
            p("y2", "2", "starting y2"),
        ],
    },
    ProblemSpec {
        name: "nasty-constrained",
        about: "box-constrained example with a discontinuous hyper-objective (F²SA slides)",
        params: &[],
    },
    ProblemSpec {
        name: "lower-bound",
        about: "f = y over g = ½(y − F(x))² with a nonconvex F (F²SA slides)",
        params: &[p("n", "2", "dimension of x (integer in 1..=10000000)")],
    },
    ProblemSpec {
        name: "dhc-linear",
        about: "data hyper-cleaning on MNIST or Fashion-MNIST, softmax regression lower level",
        params: &DHC_LINEAR,
    },
    ProblemSpec {
        name: "dhc-pca",
        about: "data hyper-cleaning on PCA features of MNIST or Fashion-MNIST (PGD-QP §5: 82 components)",
        params: &[
            DHC_COMMON[0],
            DHC_COMMON[1],
            DHC_COMMON[2],
            DHC_COMMON[3],
            DHC_COMMON[4],
            DHC_COMMON[5],
            DHC_COMMON[6],
            DHC_COMMON[7],
            p("components", "82", "PCA components (integer in 1..=784)"),
        ],
    },
    ProblemSpec {
        name: "dhc-mlp",
        about: "data hyper-cleaning on MNIST or Fashion-MNIST, one-hidden-layer MLP lower level",
        params: &[
            DHC_COMMON[0],
            DHC_COMMON[1],
            DHC_COMMON[2],
            DHC_COMMON[3],
            DHC_COMMON[4],
            p("lambda", "0", "ridge weight on the lower level, >= 0"),
            DHC_COMMON[6],
            DHC_COMMON[7],
            p(
                "hidden",
                "50",
                "hidden width (integer in 1..=4096; the papers use 50 and 256)",
            ),
            p("activation", "relu", "relu, tanh or sigmoid"),
        ],
    },
];

/// The problem spec named `name`.
pub fn problem_spec(name: &str) -> Result<&'static ProblemSpec, CliError> {
    PROBLEMS
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| unknown("problem", name, PROBLEMS.iter().map(|s| s.name)))
}

/// The largest dimension of a problem made of vectors (80 MB per vector).
const MAX_VECTOR: usize = 10_000_000;
/// The largest dimension of a problem holding dense `n × n` matrices (128 MB per matrix).
const MAX_SQUARE: usize = 4096;
/// The most samples of a hyper-cleaning split (MNIST holds 70,000 images).
const MAX_SAMPLES: usize = 70_000;
/// The widest hidden layer of the hyper-cleaning network (3.2 million weights on MNIST).
const MAX_HIDDEN: usize = 4096;

/// Problem parameters after defaults: key → text.
pub type ProblemParams = BTreeMap<String, String>;

/// The full parameter map of `spec` with `sets` applied.
pub fn problem_params(
    spec: &ProblemSpec,
    sets: &BTreeMap<String, String>,
) -> Result<ProblemParams, CliError> {
    let mut m: ProblemParams = spec
        .params
        .iter()
        .map(|p| (p.key.to_string(), p.default.to_string()))
        .collect();
    for (k, v) in sets {
        if !m.contains_key(k) {
            return Err(unknown(
                &format!("parameter of problem {}", spec.name),
                k,
                spec.params.iter().map(|p| p.key),
            ));
        }
        m.insert(k.clone(), v.clone());
    }
    Ok(m)
}

fn get<T: std::str::FromStr>(
    spec: &ProblemSpec,
    m: &ProblemParams,
    key: &str,
    ok: impl Fn(&T) -> bool,
) -> Result<T, CliError> {
    let text = &m[key];
    let help = spec
        .params
        .iter()
        .find(|p| p.key == key)
        .map_or("", |p| p.help);
    text.parse::<T>().ok().filter(|v| ok(v)).ok_or_else(|| {
        CliError::new(format!(
            "--set {key}={text}: `{key}` of problem {} must be {help}",
            spec.name
        ))
    })
}

/// The datasets the data hyper-cleaning problems read, by their `dataset=` names.
pub const DATASETS: [(&str, DatasetKind); 2] = [
    ("mnist", DatasetKind::Mnist),
    ("fashion-mnist", DatasetKind::FashionMnist),
];

/// The dataset named `name` (`--set dataset=NAME`).
///
/// # Errors
/// An unknown name, with the known ones.
pub fn dataset_kind(name: &str) -> Result<DatasetKind, CliError> {
    DATASETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, k)| *k)
        .ok_or_else(|| {
            unknown(
                "dataset (--set dataset=…)",
                name,
                DATASETS.iter().map(|(n, _)| *n),
            )
        })
}

/// The `dataset=` name of `kind`.
pub fn dataset_name(kind: DatasetKind) -> &'static str {
    DATASETS
        .iter()
        .find(|(_, k)| *k == kind)
        .map_or("mnist", |(n, _)| *n)
}

/// The files every folder of either dataset holds.
const DATA_FILES: &str = "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, \
t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz";

/// How to name a data folder for `kind`, for the errors about one.
fn data_hint(kind: DatasetKind) -> String {
    match kind {
        DatasetKind::Mnist => format!(
            "hint: pass --data-dir DIR or set {} to a folder with the MNIST files ({DATA_FILES}), \
             or set neither to use the test split shipped with the repository",
            mnist::DATA_DIR_ENV
        ),
        DatasetKind::FashionMnist => format!(
            "hint: with --set dataset=fashion-mnist, pass --data-dir DIR or set {} to a folder \
             with the Fashion-MNIST files ({DATA_FILES}), or install Debian's \
             dataset-fashion-mnist (apt-get install dataset-fashion-mnist: {}); {} names MNIST's \
             folder only",
            mnist::FASHION_DIR_ENV,
            mnist::DEBIAN_FASHION_MNIST_DIR,
            mnist::DATA_DIR_ENV
        ),
    }
}

/// The splits of MNIST and Fashion-MNIST, each loaded once and shared by every seed.
#[derive(Debug, Default)]
pub struct DataCache {
    explicit: Option<PathBuf>,
    loaded: Vec<(DatasetKind, Split, Dataset)>,
}

impl DataCache {
    /// A cache searching `explicit` for whichever dataset a problem reads, else the dataset's own
    /// places: for MNIST `BILEVEL_DATA_DIR`, else the shipped test split; for Fashion-MNIST
    /// `BILEVEL_FASHION_MNIST_DIR`, else Debian's folder. A folder named either way must exist and
    /// hold the split asked for: loading fails rather than fall back to the shipped files.
    pub fn new(explicit: Option<&Path>) -> Self {
        DataCache {
            explicit: explicit.map(Path::to_path_buf),
            loaded: Vec::new(),
        }
    }

    /// The folder a person named for `kind` (`--data-dir`, else the dataset's environment
    /// variable) with the name of where it came from, or `None` when they named none.
    fn named(&self, kind: DatasetKind) -> Option<(PathBuf, String)> {
        let (var, env) = match kind {
            DatasetKind::Mnist => (mnist::DATA_DIR_ENV, mnist::env_data_dir()),
            DatasetKind::FashionMnist => (mnist::FASHION_DIR_ENV, mnist::env_fashion_dir()),
        };
        match &self.explicit {
            Some(d) => Some((d.clone(), format!("--data-dir {}", d.display()))),
            None => env.map(|d| {
                let shown = format!("{var}={}", d.display());
                (d, shown)
            }),
        }
    }

    /// Split `s` of `kind`, if loaded.
    fn get(&self, kind: DatasetKind, s: Split) -> Option<&Dataset> {
        self.loaded
            .iter()
            .find(|(k, sp, _)| *k == kind && *sp == s)
            .map(|(_, _, d)| d)
    }

    fn ensure(&mut self, kind: DatasetKind, s: Split) -> Result<(), CliError> {
        if self.get(kind, s).is_some() {
            return Ok(());
        }
        let hint = data_hint(kind);
        // A folder a person named must be used: falling back to the shipped test split would
        // run on other data than they asked for, without a word.
        if let Some((d, shown)) = self.named(kind) {
            if !d.is_dir() {
                return Err(CliError::new(format!(
                    "{shown}: no such folder (looking for {kind})\n{hint}"
                )));
            }
            if mnist::find_split_files(&d, s).is_none() {
                return Err(CliError::new(format!(
                    "{shown}: the folder has no {kind} {s} files ({} and {}, raw or \
                     gzipped)\n{hint}",
                    s.image_file_names()[0],
                    s.label_file_names()[0]
                )));
            }
        }
        let dir = mnist::find_dir(kind, self.explicit.as_deref(), s)
            .map_err(|e| CliError::new(format!("{e}\n{hint}")))?;
        let opts = LoadOptions::new().with_kind(kind);
        let d = mnist::load_split(&dir, s, &opts)
            .map_err(|e| CliError::new(format!("loading {kind} from {}: {e}", dir.display())))?;
        self.loaded.push((kind, s, d));
        Ok(())
    }
}

/// `params` of a run of problem `name` recorded before some of the problem's parameters
/// existed, with those parameters at their defaults: a parameter is added with the default that
/// does what the program did before it (so a `run.json` written earlier still describes its run,
/// and `--resume` and `--redraw` still take it).
pub fn with_new_defaults(name: &str, mut params: ProblemParams) -> ProblemParams {
    if let Ok(spec) = problem_spec(name) {
        for q in spec.params {
            params
                .entry(q.key.to_string())
                .or_insert_with(|| q.default.to_string());
        }
    }
    params
}

/// The benchopt quadratic of `config` drawn from `data_seed`, drawn once per process: every
/// seed and every method of a reproduction shares the one draw (as the benchmark's dataset is
/// one draw, `random_state`, for all its solvers and their seeds).
fn benchopt_quadratic(config: BenchoptQuadraticConfig, data_seed: u64) -> Arc<dyn Problem> {
    type Drawn = Option<(BenchoptQuadraticConfig, u64, Arc<BenchoptQuadratic>)>;
    static LAST: std::sync::Mutex<Drawn> = std::sync::Mutex::new(None);
    let mut last = LAST
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((c, s, p)) = last.as_ref()
        && *c == config
        && *s == data_seed
    {
        return p.clone();
    }
    let p = Arc::new(BenchoptQuadratic::new(config, data_seed));
    *last = Some((config, data_seed, p.clone()));
    p
}

/// Build problem `name` for `seed`.
pub fn build_problem(
    name: &str,
    m: &ProblemParams,
    seed: u64,
    data: &mut DataCache,
) -> Result<Arc<dyn Problem>, CliError> {
    let spec = problem_spec(name)?;
    let plain = |p: Arc<dyn Problem>| p;
    // Every size is bounded before anything is allocated from it.
    let size = |max: usize| move |v: &usize| (1..=max).contains(v);
    Ok(match name {
        "quadratic" => plain(Arc::new(QuadraticKappa::new(
            get(spec, m, "kappa", |k: &f64| *k >= 1.0 && k.is_finite())?,
            get(spec, m, "dim", size(MAX_VECTOR))?,
        ))),
        "benchopt-quadratic" => {
            let n = |k| get(spec, m, k, size(1_000_000));
            let d = |k| get(spec, m, k, size(1000));
            let pos = |k| get(spec, m, k, |v: &f64| *v > 0.0 && v.is_finite());
            let l_cross = pos("l_cross")?;
            let config = BenchoptQuadraticConfig {
                n_inner: n("n_inner")?,
                n_outer: n("n_outer")?,
                dim_inner: d("dim_inner")?,
                dim_outer: get(spec, m, "dim_outer", |v: &usize| (2..=1000).contains(v))?,
                mu: pos("mu")?,
                l_cross: [l_cross, l_cross],
                ..BenchoptQuadraticConfig::default()
            };
            benchopt_quadratic(config, get(spec, m, "data_seed", |_: &u64| true)?)
        }
        "sc-sincos" => plain(Arc::new(ScSinCos::new(
            get(spec, m, "n", size(MAX_SQUARE))?,
            seed,
        ))),
        "nc-cos" => plain(Arc::new(NcCos::new(
            get(spec, m, "n", size(MAX_SQUARE))?,
            seed,
        ))),
        "coreset" => plain(Arc::new(Coreset::new(seed))),
        "galet-example1" => {
            let f = |k| get(spec, m, k, |v: &f64| v.is_finite());
            plain(Arc::new(GaletExample1::with_start(
                f("x0")?,
                [f("y1")?, f("y2")?],
            )))
        }
        "nasty-constrained" => plain(Arc::new(NastyConstrained)),
        "lower-bound" => plain(Arc::new(LowerBound::new(get(
            spec,
            m,
            "n",
            size(MAX_VECTOR),
        )?))),
        "dhc-linear" | "dhc-pca" | "dhc-mlp" => build_dhc(spec, m, seed, data)?,
        _ => unreachable!("problem_spec accepted {name}"),
    })
}

/// The smoothness constants problem `name` states, the worst case over `seeds` (one parameter
/// choice serves every seed); `None` when it states none. The data hyper-cleaning problems
/// (`dhc-*`) state none and are not built, so this never loads data.
pub fn problem_smoothness(
    name: &str,
    m: &ProblemParams,
    seeds: &[u64],
) -> Result<Option<crate::solvers::Smoothness>, CliError> {
    if name.starts_with("dhc") {
        return Ok(None);
    }
    let mut data = DataCache::new(None);
    let mut worst: Option<crate::solvers::Smoothness> = None;
    for &seed in seeds {
        let Some(c) = build_problem(name, m, seed, &mut data)?.smoothness() else {
            return Ok(None);
        };
        worst = Some(worst.map_or(c, |w| w.worst(c)));
    }
    Ok(worst)
}

/// Scale every column (feature) of `train` to zero mean and unit variance, and the same affine
/// map on `others`: scikit-learn's `StandardScaler` fitted on the training set (population
/// variance; a constant column keeps scale 1, as there).
fn standardize(train: &mut crate::linalg::Mat<f64>, others: &mut [&mut crate::linalg::Mat<f64>]) {
    let n = train.nrows() as f64;
    for j in 0..train.ncols() {
        let mean = (0..train.nrows()).map(|i| train[(i, j)]).sum::<f64>() / n;
        let var = (0..train.nrows())
            .map(|i| (train[(i, j)] - mean).powi(2))
            .sum::<f64>()
            / n;
        let scale = if var > 0.0 { var.sqrt() } else { 1.0 };
        for m in std::iter::once(&mut *train).chain(others.iter_mut().map(|m| &mut **m)) {
            for i in 0..m.nrows() {
                m[(i, j)] = (m[(i, j)] - mean) / scale;
            }
        }
    }
}

fn build_dhc(
    spec: &ProblemSpec,
    m: &ProblemParams,
    seed: u64,
    data: &mut DataCache,
) -> Result<Arc<dyn Problem>, CliError> {
    let preset: Preset = m["preset"]
        .parse()
        .map_err(|e| CliError::new(format!("--set preset={}: {e}", m["preset"])))?;
    let kind = dataset_kind(&m["dataset"])?;
    let mut cfg = HypercleanConfig::preset(preset)
        .with_seed(seed)
        .with_bias(get(spec, m, "bias", |_: &bool| true)?);
    for key in ["n", "val", "test"] {
        if m[key] != "preset" {
            let len = get(spec, m, key, |v: &usize| (1..=MAX_SAMPLES).contains(v))?;
            let slot = match key {
                "n" => &mut cfg.train,
                "val" => &mut cfg.val,
                _ => &mut cfg.test,
            };
            *slot = SplitSpec::new(slot.source, len);
        }
    }
    if m["p"] != "preset" {
        cfg.corruption_rate = get(spec, m, "p", |v: &f64| (0.0..=1.0).contains(v))?;
    }
    let lambda = get(spec, m, "lambda", |v: &f64| *v >= 0.0 && v.is_finite())?;
    let (model, tag) = match spec.name {
        "dhc-linear" => (DhcModel::Linear, "linear".to_string()),
        "dhc-pca" => {
            cfg = cfg.with_pca(Some(get(spec, m, "components", |v: &usize| {
                (1..=784).contains(v)
            })?));
            (DhcModel::Linear, "pca".to_string())
        }
        _ => {
            let hidden = get(spec, m, "hidden", |v: &usize| (1..=MAX_HIDDEN).contains(v))?;
            let act = Activation::parse(&m["activation"]).ok_or_else(|| {
                CliError::new(format!(
                    "--set activation={}: `activation` of problem dhc-mlp must be relu, tanh or sigmoid",
                    m["activation"]
                ))
            })?;
            (
                DhcModel::Mlp {
                    hidden,
                    activation: act,
                },
                format!("mlp{hidden}"),
            )
        }
    };
    for s in cfg.sources() {
        data.ensure(kind, s)?;
    }
    let mut task = cfg
        .build(data.get(kind, Split::Train), data.get(kind, Split::Test))
        .map_err(|e| CliError::new(format!("building the hyper-cleaning task: {e}")))?;
    let flag = |key: &str| -> Result<bool, CliError> {
        if m.contains_key(key) {
            get(spec, m, key, |_: &bool| true)
        } else {
            Ok(false)
        }
    };
    if flag("standardize")? {
        standardize(&mut task.train.x, &mut [&mut task.val.x, &mut task.test.x]);
    }
    let d = DhcData::from_samples(
        task.train.x.as_ref(),
        task.train.labels,
        task.val.x.as_ref(),
        task.val.labels,
        task.test.x.as_ref(),
        task.test.labels,
        task.num_classes,
    );
    // The problem's name (in the traces) says which data it ran on when it is not MNIST.
    let tag = match kind {
        DatasetKind::Mnist => tag,
        other => format!("{tag}-{}", dataset_name(other)),
    };
    let mut p = Dhc::new(Arc::new(d), model, lambda, tag, seed).with_corruption(task.corrupted);
    if flag("test_loss")? {
        p = p.with_test_loss();
    }
    if flag("accuracies")? {
        p = p.with_accuracies();
    }
    if m.contains_key("x0") {
        p = p.with_x0(get(spec, m, "x0", |v: &f64| v.is_finite())?);
    }
    if flag("stationarity")? {
        p = p
            .with_stationarity()
            .map_err(|e| CliError::new(format!("--set stationarity=true: {e}")))?;
    }
    Ok(Arc::new(p))
}

/// Levenshtein distance.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The known names closest to `name` (all within the smallest distance found, at most 3).
pub fn closest<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut scored: Vec<(usize, &str)> = known
        .map(|k| {
            let d = edit_distance(name, k);
            // A prefix or substring match counts as close.
            let d = if k.contains(name) || name.contains(k) {
                d.min(1)
            } else {
                d
            };
            (d, k)
        })
        .collect();
    scored.sort();
    let best = scored.first().map_or(0, |s| s.0);
    scored
        .into_iter()
        .take_while(|(d, _)| *d == best)
        .take(3)
        .map(|(_, k)| k)
        .collect()
}

/// The error "unknown WHAT `NAME`; did you mean `A`? known: …".
pub fn unknown<'a>(what: &str, name: &str, known: impl Iterator<Item = &'a str>) -> CliError {
    unknown_in(what, name, "", known)
}

/// A library error as the program reports it: an unknown name or key with the closest known
/// ones, a bad value naming its key (as `--set key=value`), anything else as it says.
pub fn explain(e: crate::solvers::Error) -> CliError {
    use crate::solvers::Error as E;
    match e {
        E::UnknownName { what, name, known } => {
            unknown(what, &name, known.iter().map(String::as_str))
        }
        E::UnknownKey { solver, key, known } => unknown_in(
            "--set key",
            &key,
            &format!(" of solver {solver}"),
            known.iter().map(String::as_str),
        ),
        E::BadValue {
            ref key, ref text, ..
        } => CliError::new(format!("--set {key}={text}: {e}")),
        other => CliError::new(other.to_string()),
    }
}

/// The error "unknown WHAT `NAME` CONTEXT; did you mean `A`? known: …".
pub fn unknown_in<'a>(
    what: &str,
    name: &str,
    context: &str,
    known: impl Iterator<Item = &'a str>,
) -> CliError {
    let known: Vec<&str> = known.collect();
    let near = closest(name, known.iter().copied());
    let near = near
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(" or ");
    CliError::new(format!(
        "unknown {what} `{name}`{context}; did you mean {near}?\nknown: {}",
        known.join(", ")
    ))
}

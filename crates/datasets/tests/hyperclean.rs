//! Data hyper-cleaning tasks: preset sizes and sources, corruption rates and modes, determinism,
//! PCA, and the full-MNIST presets when `BILEVEL_DATA_DIR` is set.

mod common;

use std::collections::HashSet;

use bilevel_datasets::hyperclean::{
    Corruption, HypercleanConfig, HypercleanTask, Preset, SplitSpec,
};
use bilevel_datasets::mnist::{LoadOptions, Split, load_files, load_mnist};
use bilevel_datasets::{Dataset, DatasetError};
use common::{tempdir, tiny_split, write};

fn shipped_test() -> Dataset {
    load_mnist(None, Split::Test).unwrap()
}

/// A synthetic "training split" of `n` tiny images.
fn synthetic(n: usize) -> Dataset {
    let dir = tempdir();
    let (images, labels) = tiny_split(n, 2, 2, 10);
    let ip = write(dir.path(), "i.idx", &images);
    let lp = write(dir.path(), "l.idx", &labels);
    // The maps stay valid after the folder is removed (the files are unlinked, not truncated).
    load_files(&ip, &lp, &LoadOptions::new()).unwrap()
}

/// Checks sizes, disjointness, label consistency and the corruption statistics of a task.
fn check_task(task: &HypercleanTask, train: &Dataset, test: &Dataset) {
    let c = &task.config;
    let src = |s: Split| if s == Split::Train { train } else { test };
    for (set, spec) in [
        (&task.train, c.train),
        (&task.val, c.val),
        (&task.test, c.test),
    ] {
        assert_eq!(set.len(), spec.len);
        assert_eq!(set.x.nrows(), spec.len);
        assert_eq!(set.source, spec.source);
        assert_eq!(set.indices.len(), spec.len);
        assert_eq!(set.x.ncols(), task.num_features());
    }
    // Disjoint within each source split.
    for s in Split::ALL {
        let mut seen = HashSet::new();
        for set in [&task.train, &task.val, &task.test] {
            if set.source == s {
                for &i in &set.indices {
                    assert!(seen.insert(i), "index {i} of the {s} split used twice");
                }
            }
        }
    }
    // Validation and test labels are the true labels; training labels differ exactly where the
    // mask says so.
    for set in [&task.val, &task.test] {
        for (k, &i) in set.indices.iter().enumerate() {
            assert_eq!(set.labels[k], u32::from(src(set.source).label(i)));
        }
    }
    let d = src(c.train.source);
    for (k, &i) in task.train.indices.iter().enumerate() {
        let truth = u32::from(d.label(i));
        assert_eq!(task.true_train_labels[k], truth);
        assert_eq!(task.corrupted[k], task.train.labels[k] != truth);
        assert!(task.resampled[k] || !task.corrupted[k]);
        assert!(task.train.labels[k] < task.num_classes as u32);
        if c.corruption == Corruption::WrongClass && task.resampled[k] {
            assert_ne!(
                task.train.labels[k], truth,
                "wrong-class mode kept the true label"
            );
        }
    }
    // Empirical rates within 4.5 standard deviations.
    let n = c.train.len as f64;
    let p = c.corruption_rate;
    let resampled = task.resampled.iter().filter(|&&r| r).count() as f64 / n;
    let tol = 4.5 * (p * (1.0 - p) / n).sqrt() + 1e-12;
    assert!(
        (resampled - p).abs() <= tol,
        "resampled {resampled} vs p {p}"
    );
    let q = match c.corruption {
        Corruption::RandomClass => p * 0.9,
        Corruption::WrongClass => p,
    };
    let wrong = task.corrupted_fraction();
    let tol = 4.5 * (q * (1.0 - q) / n).sqrt() + 1e-12;
    assert!(
        (wrong - q).abs() <= tol,
        "corrupted {wrong} vs expected {q}"
    );
}

#[test]
fn pgdqp_preset_runs_on_the_shipped_test_split() {
    let test = shipped_test();
    let cfg = HypercleanConfig::preset(Preset::PgdQp);
    assert_eq!(cfg.sources(), vec![Split::Test]);
    assert_eq!(
        (cfg.train.len, cfg.val.len, cfg.test.len),
        (5000, 2500, 2500)
    );
    assert_eq!(cfg.corruption_rate, 0.25);
    let task = cfg.with_seed(3).build(None, Some(&test)).unwrap();
    check_task(&task, &test, &test);
    assert_eq!(task.num_features(), 784);
    assert!(task.pca.is_none());
    // Features are pixel / 255.
    let i = task.test.indices[0];
    assert_eq!(task.test.x[(0, 300)], f64::from(test.image(i)[300]) / 255.0);
    // The same task through `load` (which finds the shipped folder by itself).
    let loaded = HypercleanConfig::preset(Preset::PgdQp)
        .with_seed(3)
        .load(None, &LoadOptions::new())
        .unwrap();
    assert_eq!(loaded.train.labels, task.train.labels);
    assert_eq!(loaded.test.x, task.test.x);
}

#[test]
fn same_seed_same_task_different_seed_different_task() {
    let test = shipped_test();
    let cfg = HypercleanConfig::preset(Preset::PgdQp).with_bias(true);
    let a = cfg.clone().with_seed(11).build(None, Some(&test)).unwrap();
    let b = cfg.clone().with_seed(11).build(None, Some(&test)).unwrap();
    let c = cfg.with_seed(12).build(None, Some(&test)).unwrap();
    assert_eq!(a.train.indices, b.train.indices);
    assert_eq!(a.train.labels, b.train.labels);
    assert_eq!(a.corrupted, b.corrupted);
    assert_eq!(a.train.x, b.train.x);
    assert_eq!(a.val.x, b.val.x);
    assert_eq!(a.test.labels, b.test.labels);
    assert_ne!(a.train.indices, c.train.indices);
    assert_ne!(a.corrupted, c.corrupted);
    assert_eq!(a.num_features(), 785);
    assert!((0..a.train.len()).all(|i| a.train.x[(i, 784)] == 1.0));
}

#[test]
fn wrong_class_mode_never_keeps_the_true_label() {
    let train = synthetic(6000);
    let cfg = HypercleanConfig::new(
        SplitSpec::new(Split::Train, 4000),
        SplitSpec::new(Split::Train, 1000),
        SplitSpec::new(Split::Train, 1000),
        0.7,
        Corruption::WrongClass,
    );
    for seed in 0..3 {
        let task = cfg
            .clone()
            .with_seed(seed)
            .build(Some(&train), None)
            .unwrap();
        check_task(&task, &train, &train);
        assert_eq!(task.resampled, task.corrupted);
        // Every other class is reached.
        let mut seen = [[false; 10]; 10];
        for k in 0..task.train.len() {
            if task.corrupted[k] {
                seen[task.true_train_labels[k] as usize][task.train.labels[k] as usize] = true;
            }
        }
        for (t, row) in seen.iter().enumerate() {
            for (l, &s) in row.iter().enumerate() {
                assert_eq!(s, t != l, "true {t} -> {l}");
            }
        }
    }
}

#[test]
fn rate_extremes_and_bad_configurations() {
    let train = synthetic(300);
    let base = |p, mode| {
        HypercleanConfig::new(
            SplitSpec::new(Split::Train, 200),
            SplitSpec::new(Split::Train, 50),
            SplitSpec::new(Split::Train, 50),
            p,
            mode,
        )
    };
    let t = base(0.0, Corruption::RandomClass)
        .build(Some(&train), None)
        .unwrap();
    assert_eq!(t.num_corrupted(), 0);
    assert_eq!(t.train.labels, t.true_train_labels);
    let t = base(1.0, Corruption::WrongClass)
        .build(Some(&train), None)
        .unwrap();
    assert_eq!(t.num_corrupted(), 200);

    for p in [-0.1, 1.5, f64::NAN] {
        let err = base(p, Corruption::RandomClass)
            .build(Some(&train), None)
            .unwrap_err();
        assert!(matches!(err, DatasetError::InvalidConfig(_)), "{err:?}");
    }
    let err = base(0.1, Corruption::RandomClass)
        .build(None, Some(&train))
        .unwrap_err();
    assert!(matches!(err, DatasetError::InvalidConfig(_)), "{err:?}");
    let mut big = base(0.1, Corruption::RandomClass);
    big.val.len = 51;
    let err = big.build(Some(&train), None).unwrap_err();
    assert!(
        matches!(
            err,
            DatasetError::NotEnoughSamples {
                requested: 301,
                available: 300,
                ..
            }
        ),
        "{err:?}"
    );
    // One-hot labels.
    let t = base(0.0, Corruption::RandomClass)
        .build(Some(&train), None)
        .unwrap();
    let y = t.val.one_hot(10);
    assert_eq!((y.nrows(), y.ncols()), (50, 10));
    assert_eq!(y[(0, t.val.labels[0] as usize)], 1.0);
}

#[test]
fn presets_have_the_published_sizes() {
    let expect = [
        (
            Preset::PgdQp,
            (Split::Test, 5000),
            (Split::Test, 2500),
            (Split::Test, 2500),
            0.25,
            Corruption::RandomClass,
        ),
        (
            Preset::Galet,
            (Split::Train, 5000),
            (Split::Train, 5000),
            (Split::Test, 10_000),
            0.5,
            Corruption::RandomClass,
        ),
        (
            Preset::SingleLoopItd,
            (Split::Train, 2000),
            (Split::Train, 500),
            (Split::Test, 10_000),
            0.2,
            Corruption::WrongClass,
        ),
        (
            Preset::Benchopt,
            (Split::Train, 20_000),
            (Split::Train, 5000),
            (Split::Test, 10_000),
            0.5,
            Corruption::RandomClass,
        ),
    ];
    for (preset, tr, va, te, p, mode) in expect {
        let c = preset.config();
        assert_eq!((c.train.source, c.train.len), tr, "{preset}");
        assert_eq!((c.val.source, c.val.len), va, "{preset}");
        assert_eq!((c.test.source, c.test.len), te, "{preset}");
        assert_eq!(c.corruption_rate, p);
        assert_eq!(c.corruption, mode);
        assert_eq!(c.pca_components, None);
        assert_eq!(preset.name().parse::<Preset>().unwrap(), preset);
    }
    assert_eq!(Preset::PgdQpPca.config().pca_components, Some(82));
    assert_eq!("PGDQP_PCA".parse::<Preset>().unwrap(), Preset::PgdQpPca);
    assert!("nope".parse::<Preset>().is_err());
}

#[test]
fn training_split_presets_on_a_synthetic_training_split() {
    // The full-MNIST presets, with a synthetic 60,000-sample training split standing in for the
    // real one, so their sampling and corruption are tested without the data.
    let train = synthetic(60_000);
    let test = synthetic(10_000);
    let err = Preset::Galet
        .config()
        .build(Some(&train), Some(&shipped_test()))
        .unwrap_err();
    assert!(matches!(err, DatasetError::InvalidConfig(_)), "{err:?}");
    for preset in [Preset::Galet, Preset::SingleLoopItd, Preset::Benchopt] {
        let cfg = preset.config().with_seed(5);
        assert_eq!(cfg.sources(), vec![Split::Train, Split::Test]);
        // Small features keep this fast; check the statistics only.
        let task = cfg.build(Some(&train), Some(&test)).unwrap();
        check_task(&task, &train, &test);
        assert_eq!(task.train.x.ncols(), 4);
    }
}

#[test]
fn pca_preset_fits_on_training_rows() {
    let test = shipped_test();
    let task = Preset::PgdQpPca
        .config()
        .with_seed(2)
        .with_bias(true)
        .build(None, Some(&test))
        .unwrap();
    check_task(&task, &test, &test);
    assert_eq!(task.num_features(), 83);
    let pca = task.pca.as_ref().unwrap();
    assert_eq!(pca.n_components(), 82);
    // Training scores are centred (the PCA was fitted on them), validation scores are not exactly.
    let col_mean = |x: &bilevel_datasets::hyperclean::LabeledSet, j: usize| {
        (0..x.len()).map(|i| x.x[(i, j)]).sum::<f64>() / x.len() as f64
    };
    for j in 0..82 {
        assert!(col_mean(&task.train, j).abs() < 1e-9);
    }
    assert!((0..82).any(|j| col_mean(&task.val, j).abs() > 1e-6));
    assert!((0..task.test.len()).all(|i| task.test.x[(i, 82)] == 1.0));
    // Leading components carry the most variance.
    let ev = pca.explained_variance();
    assert!(ev.windows(2).all(|w| w[0] >= w[1]));
}

#[test]
fn full_mnist_presets_when_available() {
    let Some(dir) = common::full_mnist_dir("full_mnist_presets_when_available") else {
        return;
    };
    let train = load_mnist(Some(&dir), Split::Train).unwrap();
    let test = load_mnist(Some(&dir), Split::Test).unwrap();
    for preset in [Preset::Galet, Preset::SingleLoopItd, Preset::Benchopt] {
        let task = preset
            .config()
            .with_seed(1)
            .build(Some(&train), Some(&test))
            .unwrap();
        check_task(&task, &train, &test);
        assert_eq!(task.num_features(), 784);
    }
    let task = Preset::Galet
        .config()
        .load(Some(&dir), &LoadOptions::new())
        .unwrap();
    assert_eq!(task.train.len(), 5000);
}

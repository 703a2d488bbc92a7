//! MNIST loading: file names in both spellings, raw and gzipped, the shipped test split, SHA-256
//! checks, folder resolution, and the consistency checks between images and labels.

mod common;

use std::path::Path;

use bilevel_datasets::DatasetError;
use bilevel_datasets::cache::CachePolicy;
use bilevel_datasets::idx::encode_idx;
use bilevel_datasets::mnist::{
    self, DatasetKind, LoadOptions, Split, Verify, find_dir, find_split_files, load_files,
    load_split, shipped_mnist_dir,
};
use common::{gzip, tempdir, tiny_split, write};

fn opts_in(dir: &Path) -> LoadOptions {
    LoadOptions::new().with_cache(CachePolicy::in_dir(dir.join("cache")))
}

#[test]
fn both_spellings_raw_and_gz_load_identically() {
    // Standard names: the images must be 28 × 28.
    let (images, labels) = tiny_split(12, 28, 28, 10);
    let mut loaded = Vec::new();
    for (spelling, gz) in [
        ("-idx", false),
        ("-idx", true),
        (".idx", false),
        (".idx", true),
    ] {
        let dir = tempdir();
        for split in Split::ALL {
            let prefix = if split == Split::Train {
                "train"
            } else {
                "t10k"
            };
            let ext = if gz { ".gz" } else { "" };
            let enc = |b: &[u8]| if gz { gzip(b) } else { b.to_vec() };
            write(
                dir.path(),
                &format!("{prefix}-images{spelling}3-ubyte{ext}"),
                &enc(&images),
            );
            write(
                dir.path(),
                &format!("{prefix}-labels{spelling}1-ubyte{ext}"),
                &enc(&labels),
            );
        }
        for split in Split::ALL {
            let files = find_split_files(dir.path(), split).expect("files found");
            assert_eq!(files.images.extension().is_some_and(|e| e == "gz"), gz);
            let d = load_split(dir.path(), split, &opts_in(dir.path())).unwrap();
            assert_eq!((d.len(), d.rows(), d.cols(), d.pixels()), (12, 28, 28, 784));
            assert_eq!(d.labels()[..4], [0, 1, 2, 3]);
            let x = d.all_features(false);
            loaded.push((x, d.labels().to_vec(), d.pixel_bytes().to_vec()));
        }
    }
    for other in &loaded[1..] {
        assert_eq!(other.0, loaded[0].0);
        assert_eq!(other.1, loaded[0].1);
        assert_eq!(other.2, loaded[0].2);
    }
}

#[test]
fn features_scale_pixels_and_append_bias() {
    let (images, labels) = tiny_split(70, 2, 3, 10);
    let dir = tempdir();
    let ip = write(dir.path(), "i.idx", &images);
    let lp = write(dir.path(), "l.idx", &labels);
    let d = load_files(&ip, &lp, &LoadOptions::new()).unwrap();
    // More than one 64-row block, in a scrambled order.
    let idx: Vec<usize> = (0..70).map(|i| (i * 17) % 70).collect();
    let x = d.features(&idx, true);
    assert_eq!((x.nrows(), x.ncols()), (70, 7));
    for (r, &i) in idx.iter().enumerate() {
        for j in 0..6 {
            assert_eq!(x[(r, j)], f64::from(d.image(i)[j]) / 255.0);
            assert!((0.0..=1.0).contains(&x[(r, j)]));
        }
        assert_eq!(x[(r, 6)], 1.0);
    }
    let empty = d.features(&[], false);
    assert_eq!((empty.nrows(), empty.ncols()), (0, 6));
    // The feature-major layout holds the same values, one sample per column.
    let xc = d.feature_columns(&idx, true);
    assert_eq!((xc.nrows(), xc.ncols()), (7, 70));
    for r in 0..70 {
        for j in 0..7 {
            assert_eq!(xc[(j, r)], x[(r, j)]);
        }
    }
}

#[test]
fn shipped_test_split_loads_and_verifies() {
    let dir = shipped_mnist_dir();
    let opts = LoadOptions::new().with_checksums(Some(dir.join("SHA256SUMS")));
    let d = load_split(&dir, Split::Test, &opts).unwrap();
    assert_eq!(d.len(), Split::Test.standard_len());
    assert_eq!((d.rows(), d.cols(), d.num_classes()), (28, 28, 10));
    assert_eq!(&d.labels()[..10], &[7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
    let mut counts = [0usize; 10];
    for &l in d.labels() {
        counts[l as usize] += 1;
    }
    assert_eq!(
        counts,
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
    let x = d.features(&[0], false);
    let mean = (0..784).map(|j| x[(0, j)]).sum::<f64>() / 784.0;
    assert!(mean > 0.05 && mean < 0.3, "mean pixel {mean}");
}

#[test]
fn tampered_copy_fails_the_checksum_with_a_typed_error() {
    let shipped = shipped_mnist_dir();
    let dir = tempdir();
    let sums = dir.path().join("SHA256SUMS");
    std::fs::copy(shipped.join("SHA256SUMS"), &sums).unwrap();
    let images = std::fs::read(shipped.join("t10k-images-idx3-ubyte.gz")).unwrap();
    let labels = std::fs::read(shipped.join("t10k-labels-idx1-ubyte.gz")).unwrap();
    write(dir.path(), "t10k-images-idx3-ubyte.gz", &images);
    // Tamper with one label (still valid IDX, still in range), in the dot spelling, raw.
    let mut raw = bilevel_datasets::IdxFile::open(shipped.join("t10k-labels-idx1-ubyte.gz"))
        .unwrap()
        .as_bytes()
        .to_vec();
    raw[8 + 100] = (raw[8 + 100] + 1) % 10;
    write(dir.path(), "t10k-labels.idx1-ubyte", &raw);
    let opts = opts_in(dir.path()).with_checksums(Some(sums.clone()));
    let err = load_split(dir.path(), Split::Test, &opts).unwrap_err();
    match &err {
        DatasetError::ChecksumMismatch {
            path,
            expected,
            actual,
        } => {
            assert!(path.ends_with("t10k-labels.idx1-ubyte"));
            assert_eq!(
                expected,
                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"
            );
            assert_ne!(expected, actual);
        }
        other => panic!("unexpected {other:?}"),
    }
    // The untampered copy passes, in the other spelling.
    std::fs::remove_file(dir.path().join("t10k-labels.idx1-ubyte")).unwrap();
    write(dir.path(), "t10k-labels.idx1-ubyte.gz", &labels);
    let d = load_split(dir.path(), Split::Test, &opts).unwrap();
    assert_eq!(d.len(), 10_000);

    // A file not listed in the sums file.
    std::fs::write(&sums, "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2  t10k-labels-idx1-ubyte\n").unwrap();
    let err = load_split(dir.path(), Split::Test, &opts).unwrap_err();
    assert!(
        matches!(err, DatasetError::ChecksumMissing { .. }),
        "{err:?}"
    );

    // A malformed sums file.
    std::fs::write(&sums, "# comment\n\nnot-a-digest  t10k-labels-idx1-ubyte\n").unwrap();
    let err = load_split(dir.path(), Split::Test, &opts).unwrap_err();
    assert!(
        matches!(err, DatasetError::BadChecksumFile { line: 3, .. }),
        "{err:?}"
    );
}

#[test]
fn sums_listing_the_gz_name_checks_the_compressed_bytes() {
    let shipped = shipped_mnist_dir();
    let dir = tempdir();
    let gz = std::fs::read(shipped.join("t10k-labels-idx1-ubyte.gz")).unwrap();
    let images = std::fs::read(shipped.join("t10k-images-idx3-ubyte.gz")).unwrap();
    write(dir.path(), "t10k-labels-idx1-ubyte.gz", &gz);
    write(dir.path(), "t10k-images-idx3-ubyte.gz", &images);
    let sums = format!(
        "{}  t10k-labels-idx1-ubyte.gz\n{} *t10k-images-idx3-ubyte.gz\n",
        bilevel_datasets::checksum::sha256_hex(&gz),
        bilevel_datasets::checksum::sha256_hex(&images)
    );
    let sums_path = write(dir.path(), "sums.txt", sums.as_bytes());
    let opts = opts_in(dir.path()).with_checksums(Some(sums_path));
    load_split(dir.path(), Split::Test, &opts).unwrap();
}

#[test]
fn inconsistent_files_give_typed_errors() {
    let dir = tempdir();
    let (images, labels) = tiny_split(5, 2, 2, 10);
    let ip = write(dir.path(), "i.idx", &images);
    let opts = LoadOptions::new();

    let lp = write(
        dir.path(),
        "l4.idx",
        &encode_idx(&[4], &[0u8, 1, 2, 3]).unwrap(),
    );
    let err = load_files(&ip, &lp, &opts).unwrap_err();
    assert!(
        matches!(
            err,
            DatasetError::CountMismatch {
                images: 5,
                labels: 4,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("l4.idx") && err.to_string().contains("i.idx"));

    let lp = write(
        dir.path(),
        "l10.idx",
        &encode_idx(&[5], &[0u8, 1, 10, 3, 4]).unwrap(),
    );
    let err = load_files(&ip, &lp, &opts).unwrap_err();
    assert!(
        matches!(
            err,
            DatasetError::LabelOutOfRange {
                index: 2,
                label: 10,
                classes: 10,
                ..
            }
        ),
        "{err:?}"
    );

    let lp = write(dir.path(), "l.idx", &labels);
    let err = load_files(&lp, &lp, &opts).unwrap_err();
    assert!(
        matches!(err, DatasetError::UnexpectedShape { .. }),
        "{err:?}"
    );
    let err = load_files(&ip, &ip, &opts).unwrap_err();
    assert!(
        matches!(err, DatasetError::UnexpectedShape { .. }),
        "{err:?}"
    );

    let fp = write(
        dir.path(),
        "f.idx",
        &encode_idx(&[5, 2, 2], &[0f32; 20]).unwrap(),
    );
    let err = load_files(&fp, &lp, &opts).unwrap_err();
    assert!(matches!(err, DatasetError::TypeMismatch { .. }), "{err:?}");

    load_files(&ip, &lp, &opts).unwrap();
}

#[test]
fn degenerate_shapes_are_refused_before_anything_is_sized_from_them() {
    let dir = tempdir();
    let opts = opts_in(dir.path());
    let header = |dims: [u32; 3]| {
        let mut h = vec![0, 0, 0x08, 3];
        for d in dims {
            h.extend_from_slice(&d.to_be_bytes());
        }
        h
    };
    let shape_err = |images: &Path, labels: &Path| {
        let start = std::time::Instant::now();
        let err = load_files(images, labels, &opts).unwrap_err();
        // The 9-second spin in the feature matrix's allocation once came after a load like this.
        assert!(start.elapsed().as_secs() < 5);
        assert!(
            matches!(err, DatasetError::UnexpectedShape { .. }),
            "{err:?}"
        );
        err
    };
    // No image, 2³²−1 × 2³²−1 pixels: a 16-byte file and an empty label file.
    let empty_labels = write(dir.path(), "l0.idx", &encode_idx(&[0], &[0u8; 0]).unwrap());
    for dims in [[0, u32::MAX, u32::MAX], [0, 65_536, 65_536]] {
        let ip = write(dir.path(), "huge.idx", &header(dims));
        let err = shape_err(&ip, &empty_labels);
        assert!(err.to_string().contains("huge.idx"), "{err}");
    }
    // Images of no pixel.
    let labels = write(
        dir.path(),
        "t10k-labels-idx1-ubyte",
        &encode_idx(&[10_000], &vec![1u8; 10_000]).unwrap(),
    );
    let ip = write(dir.path(), "zero.idx", &header([10_000, 0, 0]));
    shape_err(&ip, &labels);
    // One pixel: fine under another name, not under a standard MNIST name (which means 28 × 28).
    let one = encode_idx(&[10_000, 1, 1], &vec![7u8; 10_000]).unwrap();
    let ip = write(dir.path(), "one-pixel.idx", &one);
    assert_eq!(load_files(&ip, &labels, &opts).unwrap().pixels(), 1);
    let ip = write(dir.path(), "t10k-images-idx3-ubyte", &one);
    let err = shape_err(&ip, &labels);
    assert!(err.to_string().contains("28 × 28"), "{err}");
    let ip = write(dir.path(), "t10k-images.idx3-ubyte.gz", &gzip(&one));
    shape_err(&ip, &labels);
    // The CLI's way in: a folder of standard names.
    let err = load_split(dir.path(), Split::Test, &opts).unwrap_err();
    assert!(
        matches!(err, DatasetError::UnexpectedShape { .. }),
        "{err:?}"
    );
}

#[test]
fn a_sums_file_beside_the_data_is_checked_by_default() {
    let shipped = shipped_mnist_dir();
    let dir = tempdir();
    for f in ["t10k-images-idx3-ubyte.gz", "SHA256SUMS"] {
        std::fs::copy(shipped.join(f), dir.path().join(f)).unwrap();
    }
    // All labels 0 (valid IDX, in range) under the standard name.
    let zeros = encode_idx(&[10_000], &vec![0u8; 10_000]).unwrap();
    write(dir.path(), "t10k-labels-idx1-ubyte.gz", &gzip(&zeros));
    let err = load_split(dir.path(), Split::Test, &opts_in(dir.path())).unwrap_err();
    assert!(
        matches!(&err, DatasetError::ChecksumMismatch { path, .. } if path.ends_with("t10k-labels-idx1-ubyte.gz")),
        "{err:?}"
    );
    // Without a sums file the built-in digests of the published files catch it too.
    std::fs::remove_file(dir.path().join("SHA256SUMS")).unwrap();
    load_split(dir.path(), Split::Test, &opts_in(dir.path())).unwrap();
    let published = opts_in(dir.path()).with_verify(Verify::Published);
    let err = load_split(dir.path(), Split::Test, &published).unwrap_err();
    assert!(
        matches!(err, DatasetError::ChecksumMismatch { .. }),
        "{err:?}"
    );
    std::fs::copy(
        shipped.join("t10k-labels-idx1-ubyte.gz"),
        dir.path().join("t10k-labels-idx1-ubyte.gz"),
    )
    .unwrap();
    load_split(dir.path(), Split::Test, &published).unwrap();
    // Fashion-MNIST's digests are not MNIST's.
    let err = load_split(
        dir.path(),
        Split::Test,
        &published.with_kind(DatasetKind::FashionMnist),
    )
    .unwrap_err();
    assert!(
        matches!(err, DatasetError::ChecksumMismatch { .. }),
        "{err:?}"
    );
}

#[test]
fn missing_training_files_say_where_we_looked_and_what_to_do() {
    let dir = tempdir();
    let err = find_dir(DatasetKind::Mnist, Some(dir.path()), Split::Train).unwrap_err();
    let msg = err.to_string();
    println!("{msg}");
    match &err {
        DatasetError::NotFound {
            kind: DatasetKind::Mnist,
            split: Split::Train,
            searched,
        } => {
            assert_eq!(searched[0], dir.path());
            assert_eq!(searched.last().unwrap(), &shipped_mnist_dir());
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
    assert!(msg.contains("BILEVEL_DATA_DIR"), "{msg}");
    assert!(msg.contains("train-images-idx3-ubyte.gz"), "{msg}");

    // Fashion-MNIST never falls back to the shipped MNIST files.
    let err = find_dir(DatasetKind::FashionMnist, Some(dir.path()), Split::Test).unwrap_err();
    assert!(matches!(&err, DatasetError::NotFound { searched, .. } if searched.len() == 1));

    // The test split falls back to the shipped folder.
    let found = find_dir(DatasetKind::Mnist, Some(dir.path()), Split::Test).unwrap();
    assert_eq!(found, shipped_mnist_dir());

    let err = load_split(dir.path(), Split::Test, &LoadOptions::new()).unwrap_err();
    assert!(matches!(err, DatasetError::NotFound { .. }));
}

#[test]
fn full_mnist_when_available() {
    let Some(dir) = common::full_mnist_dir("full_mnist_when_available") else {
        return;
    };
    let sums = dir.join("SHA256SUMS");
    let opts = LoadOptions::new().with_checksums(sums.exists().then_some(sums));
    let train = load_split(&dir, Split::Train, &opts).unwrap();
    assert_eq!(train.len(), 60_000);
    assert_eq!(&train.labels()[..5], &[5, 0, 4, 1, 9]);
    let test = mnist::load_mnist(Some(&dir), Split::Test).unwrap();
    assert_eq!(test.len(), 10_000);
    assert_eq!(
        find_dir(DatasetKind::Mnist, None, Split::Train).unwrap(),
        dir
    );
}

#[test]
fn fashion_mnist_when_available() {
    let dirs: Vec<_> = [
        mnist::env_fashion_dir(),
        Some(std::path::PathBuf::from(mnist::DEBIAN_FASHION_MNIST_DIR)),
    ]
    .into_iter()
    .flatten()
    .filter(|d| find_split_files(d, Split::Train).is_some())
    .collect();
    if dirs.is_empty() {
        println!(
            "fashion_mnist_when_available: skipped: Fashion-MNIST not found, set {} or apt-get install dataset-fashion-mnist",
            mnist::FASHION_DIR_ENV
        );
        return;
    }
    let cache = tempdir();
    let fashion = LoadOptions::new()
        .with_kind(DatasetKind::FashionMnist)
        .with_cache(CachePolicy::in_dir(cache.path()));
    let mut first_labels = Vec::new();
    for dir in &dirs {
        println!("Fashion-MNIST from {}", dir.display());
        let before = std::fs::read_dir(dir).unwrap().count();
        // Found by the standard names, checked against the published digests (and against
        // SHA256SUMS where the folder has one).
        let found = find_dir(DatasetKind::FashionMnist, Some(dir), Split::Train).unwrap();
        assert_eq!(&found, dir);
        for verify in [Verify::IfListed, Verify::Published] {
            let opts = fashion.clone().with_verify(verify);
            let train = load_split(dir, Split::Train, &opts).unwrap();
            let test = load_split(dir, Split::Test, &opts).unwrap();
            assert_eq!((train.len(), test.len()), (60_000, 10_000));
            assert_eq!((train.rows(), train.cols()), (28, 28));
            assert_eq!(&train.labels()[..5], &[9, 0, 0, 3, 0]);
            first_labels.push(test.labels()[..100].to_vec());
        }
        // MNIST's digests reject it.
        let as_mnist = fashion
            .clone()
            .with_kind(DatasetKind::Mnist)
            .with_verify(Verify::Published);
        assert!(matches!(
            load_split(dir, Split::Test, &as_mnist),
            Err(DatasetError::ChecksumMismatch { .. })
        ));
        // Nothing was written into the data folder.
        assert_eq!(std::fs::read_dir(dir).unwrap().count(), before);
    }
    assert!(first_labels.windows(2).all(|w| w[0] == w[1]));
    // With no folder named, the variable (else Debian's folder) is where it is found.
    let default = find_dir(DatasetKind::FashionMnist, None, Split::Test).unwrap();
    assert_eq!(default, dirs[0]);
}

//! One input through every reader and accessor of the crate, checking what a success promises.
//! Shared by the `fuzz_idx` driver and the property tests (`tests/fuzz.rs`), so both try the
//! same things.

use std::hint::black_box;
use std::path::Path;

use bilevel_datasets::idx::{IdxFile, IdxHeader, encode_idx};
use bilevel_datasets::{Dataset, DatasetError, DatasetKind};

/// How far an input got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reached {
    /// A valid IDX file, but neither valid images nor valid labels.
    Idx,
    /// Loaded as images or as labels, and every accessor tried.
    Dataset,
}

/// Runs `bytes` through `IdxHeader::parse`, `IdxFile::from_bytes`, `data::<T>()` for all six
/// element types, `to_f64_vec`, `Dataset::from_idx` as images and as labels, and every feature
/// and label accessor of a dataset that loads. `variant` picks the dataset kind and whether the
/// files carry standard MNIST names (bit 0 and bit 1). An input the IDX checks reject is
/// returned as that fault, and `refused` sees each fault of `Dataset::from_idx`; a broken
/// promise (a success that does not describe the bytes) panics.
pub fn exercise(
    bytes: &[u8],
    variant: u64,
    refused: &mut dyn FnMut(&DatasetError),
) -> Result<Reached, DatasetError> {
    let path = Path::new("fuzz.idx");
    let parsed = IdxHeader::parse(bytes, path);
    // The header alone may be fine where the length is what fails; never the reverse.
    let file = IdxFile::from_bytes(bytes.to_vec(), path)?;
    let h = file.header().clone();
    assert_eq!(
        parsed.as_ref().ok(),
        Some(&h),
        "parse and from_bytes disagree"
    );
    assert_eq!(h.file_len(), bytes.len() as u64);
    let n = h.len();
    let typed = [
        file.data::<u8>().map(|d| d.len()),
        file.data::<i8>().map(|d| d.len()),
        file.data::<i16>().map(|d| d.len()),
        file.data::<i32>().map(|d| d.len()),
        file.data::<f32>().map(|d| d.len()),
        file.data::<f64>().map(|d| d.len()),
    ];
    assert_eq!(typed.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(typed.iter().flatten().all(|&len| len == n));
    let values = file.to_f64_vec();
    assert_eq!(values.len(), n);
    black_box(values);
    drop(file);

    let kind = if variant & 1 == 0 {
        DatasetKind::Mnist
    } else {
        DatasetKind::FashionMnist
    };
    let (images_name, labels_name) = if variant & 2 == 0 {
        ("fuzz-images.idx", "fuzz-labels.idx")
    } else {
        ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte")
    };
    let (images_name, labels_name) = (Path::new(images_name), Path::new(labels_name));
    // A count that a companion file can be built for: at most one byte per input byte.
    let count = h
        .dims()
        .first()
        .copied()
        .filter(|&c| c <= bytes.len())
        .unwrap_or(1);
    let mut reached = Reached::Idx;

    // As images, with `count` labels.
    let labels: Vec<u8> = (0..count).map(|i| (i % 10) as u8).collect();
    let labels = IdxFile::from_bytes(encode_idx(&[count as u32], &labels)?, labels_name)?;
    let images = IdxFile::from_bytes(bytes.to_vec(), images_name)?;
    match Dataset::from_idx(kind, images, labels, images_name, labels_name) {
        Ok(d) => {
            touch(&d);
            reached = Reached::Dataset;
        }
        Err(e) => refused(&e),
    }
    // As labels, with `count` one-pixel images.
    let images = IdxFile::from_bytes(
        encode_idx(&[count as u32, 1, 1], &vec![255u8; count])?,
        "companion-images.idx",
    )?;
    let labels = IdxFile::from_bytes(bytes.to_vec(), labels_name)?;
    let companion = Path::new("companion-images.idx");
    match Dataset::from_idx(kind, images, labels, companion, labels_name) {
        Ok(d) => {
            touch(&d);
            reached = Reached::Dataset;
        }
        Err(e) => refused(&e),
    }
    Ok(reached)
}

/// Every accessor of a loaded dataset, checking shapes and ranges.
fn touch(d: &Dataset) {
    let (n, p) = (d.len(), d.pixels());
    assert!(n > 0 && p > 0 && d.rows() * d.cols() == p);
    assert_eq!(d.labels().len(), n);
    assert!(d.labels().iter().all(|&l| usize::from(l) < d.num_classes()));
    assert_eq!(d.pixel_bytes().len(), n * p);
    assert_eq!(d.image(n - 1).len(), p);
    black_box(d.label(n - 1));
    // One matrix alive at a time, so that the driver's memory bound speaks of the largest.
    let some = [0, n / 2, n - 1];
    let x = d.features(&some, true);
    assert_eq!((x.nrows(), x.ncols()), (3, p + 1));
    drop(x);
    let xc = d.feature_columns(&some, false);
    assert_eq!((xc.nrows(), xc.ncols()), (p, 3));
    drop(xc);
    let all = d.all_features(true);
    assert_eq!((all.nrows(), all.ncols()), (n, p + 1));
    for j in 0..p {
        assert!((0.0..=1.0).contains(&all[(n - 1, j)]));
    }
    assert_eq!(all[(0, p)], 1.0);
}

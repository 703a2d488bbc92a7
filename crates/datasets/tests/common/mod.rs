//! Helpers shared by the integration tests: temporary folders and small generated IDX files.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

use bilevel_datasets::idx::encode_idx;
use flate2::Compression;
use flate2::write::GzEncoder;

/// A fresh temporary folder, removed when dropped.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("bilevel-datasets-test-")
        .tempdir()
        .expect("create temp dir")
}

/// Gzips `bytes`.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// Writes `bytes` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// A small MNIST-like split: `n` images of `rows × cols` pixels and labels `i % classes`.
pub fn tiny_split(n: usize, rows: usize, cols: usize, classes: u8) -> (Vec<u8>, Vec<u8>) {
    let pixels: Vec<u8> = (0..n * rows * cols).map(|i| (i * 37 % 256) as u8).collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % classes as usize) as u8).collect();
    let images = encode_idx(&[n as u32, rows as u32, cols as u32], &pixels).unwrap();
    let labels = encode_idx(&[n as u32], &labels).unwrap();
    (images, labels)
}

/// The full-MNIST folder from `BILEVEL_DATA_DIR`, or `None` after printing the skip line.
pub fn full_mnist_dir(test: &str) -> Option<PathBuf> {
    let dir = bilevel_datasets::mnist::env_data_dir();
    match dir {
        Some(d)
            if bilevel_datasets::mnist::find_split_files(&d, bilevel_datasets::Split::Train)
                .is_some() =>
        {
            Some(d)
        }
        _ => {
            println!("{test}: skipped: full MNIST not found, set BILEVEL_DATA_DIR");
            None
        }
    }
}

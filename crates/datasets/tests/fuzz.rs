//! Property tests: no byte string, random or mutated from a valid file, makes the readers panic
//! or allocate from an unchecked header; every failure is a typed error. For runs of millions of
//! inputs, with counted panics and a memory bound, see the `fuzz_idx` example. Inputs that once
//! crashed are kept under `tests/regressions/` and replayed by `regression_inputs_are_rejected_cleanly`.

mod common;
#[path = "../examples/fuzz_idx/exercise.rs"]
mod fuzz_idx;

use std::path::Path;

use bilevel_datasets::DatasetError;
use bilevel_datasets::cache::CachePolicy;
use bilevel_datasets::idx::{ElementType, IdxFile, encode_idx};
use bilevel_datasets::mnist::{LoadOptions, load_files};
use proptest::prelude::*;

/// A valid small IDX file of the given type, shape and seed.
fn valid_idx(t: ElementType, dims: &[u32], seed: u8) -> Vec<u8> {
    let n: usize = dims.iter().map(|&d| d as usize).product();
    let b = |i: usize| (i as u8).wrapping_mul(seed | 1);
    match t {
        ElementType::U8 => encode_idx(dims, &(0..n).map(b).collect::<Vec<u8>>()),
        ElementType::I8 => encode_idx(dims, &(0..n).map(|i| b(i) as i8).collect::<Vec<_>>()),
        ElementType::I16 => {
            encode_idx(dims, &(0..n).map(|i| b(i) as i16 * 300).collect::<Vec<_>>())
        }
        ElementType::I32 => encode_idx(
            dims,
            &(0..n).map(|i| b(i) as i32 * 70_001).collect::<Vec<_>>(),
        ),
        ElementType::F32 => {
            encode_idx(dims, &(0..n).map(|i| b(i) as f32 / 7.0).collect::<Vec<_>>())
        }
        ElementType::F64 => {
            encode_idx(dims, &(0..n).map(|i| b(i) as f64 / 3.0).collect::<Vec<_>>())
        }
    }
    .unwrap()
}

/// Reads `bytes` through every reader and accessor (the fuzz driver's own `exercise`, with each
/// of its four variants: both dataset kinds, plain and standard names); only typed errors
/// allowed.
fn exercise(bytes: &[u8]) -> Result<(), DatasetError> {
    for variant in 0..4 {
        fuzz_idx::exercise(bytes, variant, &mut |_| {})?;
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, mask: u8 },
    Set { at: usize, value: u8 },
    Truncate { len: usize },
    Extend { bytes: Vec<u8> },
    HeaderByte { at: usize, value: u8 },
    Dim { which: usize, value: u32 },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, value)| Mutation::Set { at, value }),
        any::<usize>().prop_map(|len| Mutation::Truncate { len }),
        proptest::collection::vec(any::<u8>(), 1..9).prop_map(|bytes| Mutation::Extend { bytes }),
        (0usize..4, any::<u8>()).prop_map(|(at, value)| Mutation::HeaderByte { at, value }),
        (
            any::<usize>(),
            prop_oneof![any::<u32>(), 0u32..8, Just(u32::MAX), Just(1 << 31)]
        )
            .prop_map(|(which, value)| Mutation::Dim { which, value }),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let n = bytes.len();
    match *m {
        Mutation::Flip { at, mask } if n > 0 => bytes[at % n] ^= mask,
        Mutation::Set { at, value } if n > 0 => bytes[at % n] = value,
        Mutation::Truncate { len } => bytes.truncate(len % (n + 1)),
        Mutation::Extend { bytes: ref extra } => bytes.extend_from_slice(extra),
        Mutation::HeaderByte { at, value } if at < n => bytes[at] = value,
        Mutation::Dim { which, value } if n >= 4 => {
            let rank = usize::from(bytes[3]).max(1);
            let at = 4 + 4 * (which % rank);
            if at + 4 <= n {
                bytes[at..at + 4].copy_from_slice(&value.to_be_bytes());
            }
        }
        _ => {}
    }
}

fn element_type() -> impl Strategy<Value = ElementType> {
    prop::sample::select(ElementType::ALL.to_vec())
}

fn dims() -> impl Strategy<Value = Vec<u32>> {
    proptest::collection::vec(0u32..5, 0..4)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = exercise(&bytes);
    }

    #[test]
    fn random_headers_never_panic(
        code in prop_oneof![Just(0x08u8), Just(0x09), Just(0x0B), Just(0x0C), Just(0x0D), Just(0x0E), any::<u8>()],
        rank in 0u8..6,
        dims in proptest::collection::vec(prop_oneof![0u32..6, any::<u32>()], 0..6),
        tail in proptest::collection::vec(any::<u8>(), 0..48),
    ) {
        let mut bytes = vec![0, 0, code, rank];
        for d in dims {
            bytes.extend_from_slice(&d.to_be_bytes());
        }
        bytes.extend_from_slice(&tail);
        let _ = exercise(&bytes);
    }

    #[test]
    fn mutated_valid_files_never_panic(
        t in element_type(),
        dims in dims(),
        seed in any::<u8>(),
        muts in proptest::collection::vec(mutation(), 1..4),
    ) {
        let mut bytes = valid_idx(t, &dims, seed);
        prop_assert!(exercise(&bytes).is_ok());
        for m in &muts {
            apply(&mut bytes, m);
        }
        let _ = exercise(&bytes);
    }
}

proptest! {
    // Through the file system and the gzip cache: fewer cases, each touches the disk.
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn mutated_files_and_gzip_streams_never_panic(
        t in element_type(),
        dims in dims(),
        muts in proptest::collection::vec(mutation(), 0..3),
        gz_muts in proptest::collection::vec(mutation(), 0..3),
    ) {
        let dir = common::tempdir();
        let mut bytes = valid_idx(t, &dims, 7);
        for m in &muts {
            apply(&mut bytes, m);
        }
        let raw = common::write(dir.path(), "m.idx", &bytes);
        let from_file = IdxFile::open(&raw).map(|f| f.as_bytes().to_vec());
        let from_mem = IdxFile::from_bytes(bytes.clone(), &raw).map(|f| f.as_bytes().to_vec());
        prop_assert_eq!(from_file.as_ref().ok(), from_mem.as_ref().ok());
        if let (Err(a), Err(b)) = (&from_file, &from_mem) {
            prop_assert_eq!(a.to_string(), b.to_string());
        }

        let mut gz = common::gzip(&bytes);
        for m in &gz_muts {
            apply(&mut gz, m);
        }
        let gz_path = common::write(dir.path(), "m.idx.gz", &gz);
        let policy = CachePolicy::in_dir(dir.path().join("cache"));
        match IdxFile::open_with(&gz_path, &policy) {
            Ok(f) => prop_assert_eq!(f.header().file_len(), f.as_bytes().len() as u64),
            Err(e) => {
                prop_assert!(e.to_string().contains("m.idx.gz"), "{}", e);
                // No cache entry that looks complete is left behind.
                prop_assert!(!policy.dir_entry(&gz_path).unwrap().exists());
            }
        }
        // Label/image pairs through the MNIST loader.
        let _ = load_files(&raw, &raw, &LoadOptions::new().with_cache(policy.clone()));
        let _ = load_files(&gz_path, &raw, &LoadOptions::new().with_cache(policy));
    }
}

#[test]
fn regression_inputs_are_rejected_cleanly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "bin") {
            let bytes = std::fs::read(&path).unwrap();
            let _ = exercise(&bytes);
            count += 1;
        }
    }
    assert!(count > 0, "no regression inputs in {}", dir.display());
}

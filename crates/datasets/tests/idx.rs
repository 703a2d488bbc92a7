//! IDX reading: every element type and rank, raw and gzipped, the decompression cache, and the
//! typed errors for malformed files.

mod common;

use std::borrow::Cow;
use std::path::Path;

use bilevel_datasets::DatasetError;
use bilevel_datasets::cache::{CachePolicy, decompress_cached};
use bilevel_datasets::idx::{ElementType, IdxElement, IdxFile, IdxHeader, encode_idx};
use common::{gzip, tempdir, write};

fn values<T: IdxElement>(n: usize, f: impl Fn(usize) -> T) -> Vec<T> {
    (0..n).map(f).collect()
}

/// Writes `data` with `dims` raw and gzipped, opens both, and checks header and values.
fn round_trip<T: IdxElement + PartialEq + std::fmt::Debug>(dims: &[u32], data: Vec<T>) {
    let dir = tempdir();
    let bytes = encode_idx(dims, &data).unwrap();
    let raw = write(dir.path(), "x.idx", &bytes);
    let gz = write(dir.path(), "y.idx.gz", &gzip(&bytes));
    let policy = CachePolicy::in_dir(dir.path().join("cache"));
    for path in [&raw, &gz] {
        let f = IdxFile::open_with(path, &policy).unwrap();
        assert!(f.is_mapped());
        let h = f.header();
        assert_eq!(h.element_type(), T::TYPE);
        assert_eq!(h.rank(), dims.len());
        let udims: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
        assert_eq!(h.dims(), &udims[..]);
        assert_eq!(h.len(), data.len());
        assert_eq!(h.file_len(), bytes.len() as u64);
        let got = f.data::<T>().unwrap();
        assert_eq!(&got[..], &data[..]);
        if std::mem::size_of::<T>() == 1 {
            assert!(
                matches!(got, Cow::Borrowed(_)),
                "byte types are viewed in place"
            );
        }
        let as_f64: Vec<f64> = data.iter().map(|&x| x.to_f64()).collect();
        let conv = f.to_f64_vec();
        assert_eq!(conv.len(), as_f64.len());
        for (a, b) in conv.iter().zip(&as_f64) {
            assert!(a == b || (a.is_nan() && b.is_nan()));
        }
        assert_eq!(f.as_bytes(), &bytes[..]);
    }
    // The owned-bytes constructor agrees.
    let f = IdxFile::from_bytes(bytes, "mem").unwrap();
    assert!(!f.is_mapped());
    assert_eq!(&f.data::<T>().unwrap()[..], &data[..]);
}

#[test]
fn every_element_type_and_rank() {
    let shapes: [&[u32]; 5] = [&[], &[7], &[3, 4], &[2, 3, 5], &[2, 1, 3, 2]];
    for dims in shapes {
        let n: usize = dims.iter().map(|&d| d as usize).product();
        round_trip(dims, values(n, |i| (i * 31) as u8));
        round_trip(dims, values(n, |i| (i as i8).wrapping_mul(-13)));
        round_trip(dims, values(n, |i| (i as i16 - 5) * 1021));
        round_trip(dims, values(n, |i| (i as i32 - 3) * 1_000_003));
        round_trip(dims, values(n, |i| i as f32 * -0.375 + 1e-3));
        round_trip(
            dims,
            values(n, |i| (i as f64).sqrt() - 1e300 * (i % 2) as f64),
        );
    }
    // Zero-size dimension and special floats.
    round_trip(&[0, 5], Vec::<f64>::new());
    round_trip(
        &[4],
        vec![f32::INFINITY, f32::NEG_INFINITY, -0.0, f32::MIN_POSITIVE],
    );
    round_trip(&[3], vec![i32::MIN, i32::MAX, 0]);
}

#[test]
fn header_codes_and_sizes() {
    for t in ElementType::ALL {
        assert_eq!(ElementType::from_code(t.code()), Some(t));
    }
    assert_eq!(ElementType::from_code(0x0A), None);
    let h = IdxHeader::parse(&[0, 0, 0x0E, 2, 0, 0, 0, 3, 0, 0, 1, 0], Path::new("h")).unwrap();
    assert_eq!(h.element_type(), ElementType::F64);
    assert_eq!(h.dims(), &[3, 256]);
    assert_eq!(h.header_len(), 12);
    assert_eq!(h.data_len(), 3 * 256 * 8);
    assert_eq!(h.to_bytes(), vec![0, 0, 0x0E, 2, 0, 0, 0, 3, 0, 0, 1, 0]);
}

#[test]
fn wrong_type_requested() {
    let f = IdxFile::from_bytes(encode_idx(&[2], &[1u8, 2]).unwrap(), "t.idx").unwrap();
    let err = f.data::<f32>().unwrap_err();
    assert!(matches!(
        err,
        DatasetError::TypeMismatch {
            expected: ElementType::F32,
            found: ElementType::U8,
            ..
        }
    ));
}

#[test]
fn malformed_files_give_typed_errors_naming_the_file() {
    let dir = tempdir();
    let good = encode_idx(&[2, 3], &[1i16, 2, 3, 4, 5, 6]).unwrap();
    let check = |name: &str, bytes: &[u8], pred: fn(&DatasetError) -> bool| {
        let p = write(dir.path(), name, bytes);
        let err = IdxFile::open(&p).unwrap_err();
        assert!(pred(&err), "{name}: unexpected error {err:?}");
        assert!(
            err.to_string().contains(name),
            "{name}: message {err} lacks the path"
        );
        let err2 = IdxFile::from_bytes(bytes.to_vec(), &p).unwrap_err();
        assert_eq!(err.to_string(), err2.to_string());
    };
    check("empty.idx", &[], |e| {
        matches!(
            e,
            DatasetError::TruncatedHeader {
                expected: 4,
                actual: 0,
                ..
            }
        )
    });
    let mut m = good.clone();
    m[0] = 1;
    check("magic.idx", &m, |e| {
        matches!(e, DatasetError::BadMagic { found: [1, 0], .. })
    });
    let mut m = good.clone();
    m[2] = 0x0A;
    check("type.idx", &m, |e| {
        matches!(e, DatasetError::UnknownElementType { code: 0x0A, .. })
    });
    check("header.idx", &good[..9], |e| {
        matches!(
            e,
            DatasetError::TruncatedHeader {
                expected: 12,
                actual: 9,
                ..
            }
        )
    });
    check("data.idx", &good[..good.len() - 1], |e| {
        matches!(
            e,
            DatasetError::Truncated {
                expected: 24,
                actual: 23,
                ..
            }
        )
    });
    let mut m = good.clone();
    m.push(0);
    check("trailing.idx", &m, |e| {
        matches!(e, DatasetError::TrailingBytes { extra: 1, .. })
    });
    // Dimensions whose product exceeds the file: no allocation is attempted.
    let huge = [
        0, 0, 0x08, 3, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0xFF, 0xFF, 0, 0, 0, 2,
    ];
    check("huge.idx", &huge, |e| {
        matches!(e, DatasetError::Truncated { .. })
    });
    // Dimensions whose product overflows 64 bits.
    let over = [
        0, 0, 0x0E, 3, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    ];
    check("overflow.idx", &over, |e| {
        matches!(e, DatasetError::SizeOverflow { .. })
    });
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let dir = tempdir();
    for name in ["nope.idx", "nope.idx.gz"] {
        let err = IdxFile::open(dir.path().join(name)).unwrap_err();
        assert!(matches!(err, DatasetError::Io { .. }), "{err:?}");
        assert!(err.to_string().contains(name));
    }
}

#[test]
fn bad_gzip_gives_typed_errors_naming_the_gz_file() {
    let dir = tempdir();
    let policy = CachePolicy::in_dir(dir.path().join("cache"));
    let good = encode_idx(&[4, 4], &[7u8; 16]).unwrap();
    let gz = gzip(&good);

    let p = write(dir.path(), "notgz.idx.gz", &good);
    let err = IdxFile::open_with(&p, &policy).unwrap_err();
    assert!(matches!(err, DatasetError::Gzip { .. }), "{err:?}");
    assert!(err.to_string().contains("notgz.idx.gz"));

    let p = write(dir.path(), "cut.idx.gz", &gz[..gz.len() - 12]);
    let err = IdxFile::open_with(&p, &policy).unwrap_err();
    assert!(matches!(err, DatasetError::Gzip { .. }), "{err:?}");

    let mut bad_crc = gz.clone();
    let n = bad_crc.len();
    bad_crc[n - 8] ^= 0xFF;
    let p = write(dir.path(), "crc.idx.gz", &bad_crc);
    let err = IdxFile::open_with(&p, &policy).unwrap_err();
    assert!(matches!(err, DatasetError::Gzip { .. }), "{err:?}");

    // Valid gzip of a truncated IDX file: the IDX fault names the .gz file.
    let p = write(dir.path(), "short.idx.gz", &gzip(&good[..good.len() - 3]));
    let err = IdxFile::open_with(&p, &policy).unwrap_err();
    assert!(matches!(err, DatasetError::Truncated { .. }), "{err:?}");
    assert!(err.to_string().contains("short.idx.gz"));

    let mut long = good.clone();
    long.extend_from_slice(&[1, 2, 3]);
    let p = write(dir.path(), "long.idx.gz", &gzip(&long));
    let err = IdxFile::open_with(&p, &policy).unwrap_err();
    assert!(
        matches!(err, DatasetError::TrailingBytes { extra: 3, .. }),
        "{err:?}"
    );

    // No failed decompression leaves anything that looks like a cache entry.
    let leftovers: Vec<_> = walk(&dir.path().join("cache"));
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn cache_beside_source_is_reused_and_never_replaced() {
    let dir = tempdir();
    let bytes = encode_idx(&[10, 3], &values(30, |i| i as f32)).unwrap();
    let gz = write(dir.path(), "v-idx2-float.gz", &gzip(&bytes));
    let elsewhere = dir.path().join("elsewhere");
    let policy = CachePolicy::in_dir(&elsewhere).with_beside_source(true);

    let cache = decompress_cached(&gz, &policy).unwrap();
    assert_eq!(cache, dir.path().join("v-idx2-float"));
    assert_eq!(std::fs::read(&cache).unwrap(), bytes);
    let mtime = std::fs::metadata(&cache).unwrap().modified().unwrap();

    // Second open: same file, not rewritten.
    assert_eq!(decompress_cached(&gz, &policy).unwrap(), cache);
    assert_eq!(
        std::fs::metadata(&cache).unwrap().modified().unwrap(),
        mtime
    );
    assert!(!elsewhere.exists());

    // A file beside the source that is not a valid copy may be someone else's: it is left as it
    // is and the copy goes to the cache folder, where it is rebuilt when it goes bad.
    let half = bytes[..bytes.len() / 2].to_vec();
    std::fs::write(&cache, &half).unwrap();
    let f = IdxFile::open_with(&gz, &policy).unwrap();
    assert_eq!(&f.data::<f32>().unwrap()[..], &values(30, |i| i as f32)[..]);
    assert_eq!(std::fs::read(&cache).unwrap(), half);
    let in_dir = policy.dir_entry(&gz);
    assert!(in_dir.starts_with(&elsewhere), "{}", in_dir.display());
    assert_eq!(f.path(), in_dir);
    assert_eq!(std::fs::read(&in_dir).unwrap(), bytes);

    // Garbage of the right length beside: left too; a bad cache-folder entry is rebuilt.
    std::fs::write(&cache, vec![0xAB; bytes.len()]).unwrap();
    std::fs::write(&in_dir, vec![0xAB; bytes.len()]).unwrap();
    IdxFile::open_with(&gz, &policy).unwrap();
    assert_eq!(std::fs::read(&cache).unwrap(), vec![0xAB; bytes.len()]);
    assert_eq!(std::fs::read(&in_dir).unwrap(), bytes);

    // A valid copy older than the source (the source was replaced): not trusted, not replaced.
    std::fs::write(&cache, &bytes).unwrap();
    let newer = encode_idx(&[10, 3], &values(30, |i| -(i as f32))).unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for stale in [&cache, &in_dir] {
        std::fs::File::options()
            .write(true)
            .open(stale)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    std::fs::write(&gz, gzip(&newer)).unwrap();
    let f = IdxFile::open_with(&gz, &policy).unwrap();
    assert_eq!(f.data::<f32>().unwrap()[1], -1.0);
    assert_eq!(std::fs::read(&cache).unwrap(), bytes);
    // No partial files left beside.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains("partial")), "{names:?}");
}

#[cfg(unix)]
#[test]
fn cache_goes_to_the_cache_dir_when_the_folder_is_read_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir();
    let src = dir.path().join("ro");
    std::fs::create_dir(&src).unwrap();
    let bytes = encode_idx(&[5], &[1u8, 2, 3, 4, 5]).unwrap();
    let gz = write(&src, "lab-idx1-ubyte.gz", &gzip(&bytes));
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o555)).unwrap();
    let policy = CachePolicy::in_dir(dir.path().join("cache")).with_beside_source(true);
    let cache = decompress_cached(&gz, &policy);
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cache = cache.unwrap();
    assert!(
        cache.starts_with(dir.path().join("cache")),
        "{}",
        cache.display()
    );
    assert_eq!(cache.file_name().unwrap(), "lab-idx1-ubyte");
    assert_eq!(std::fs::read(&cache).unwrap(), bytes);
    assert!(!src.join("lab-idx1-ubyte").exists());

    // Two sources with the same name in different folders get different cache entries.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let gz2 = write(
        &other,
        "lab-idx1-ubyte.gz",
        &gzip(&encode_idx(&[1], &[9u8]).unwrap()),
    );
    let cache2 = decompress_cached(&gz2, &policy.clone().with_beside_source(false)).unwrap();
    assert_ne!(cache, cache2);
    assert_eq!(
        IdxFile::open_raw(&cache2).unwrap().data::<u8>().unwrap()[0],
        9
    );
}

#[test]
fn cache_policy_from_env_defaults_beside() {
    let p = CachePolicy::from_env();
    assert!(p.beside_source());
    assert!(!p.dir().as_os_str().is_empty());
    let p = CachePolicy::in_dir("/x");
    assert!(!p.beside_source());
}

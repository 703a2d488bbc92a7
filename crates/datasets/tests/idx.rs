//! IDX reading: every element type and rank, raw and gzipped, the decompression cache, and the
//! typed errors for malformed files.

mod common;

use std::borrow::Cow;
use std::path::{Path, PathBuf};

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
        matches!(err, DatasetError::TrailingBytes { extra: 1, .. }),
        "{err:?}"
    );

    // Decompression stops at the first byte past the declared length (above: `extra: 1`), and no
    // failed decompression leaves anything that looks like a cache entry.
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

/// The cache entry and its record for `gz` under `policy`.
fn entry_of(policy: &CachePolicy, gz: &Path) -> (PathBuf, PathBuf) {
    let entry = policy.dir_entry(gz).unwrap();
    let mut record = entry.clone().into_os_string();
    record.push(".source");
    (entry, record.into())
}

/// Names of the files in `dir` (not recursive).
fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn nothing_is_written_beside_the_source() {
    let dir = tempdir();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let bytes = encode_idx(&[10, 3], &values(30, |i| i as f32)).unwrap();
    let gz = write(&data, "v-idx2-float.gz", &gzip(&bytes));
    let policy = CachePolicy::in_dir(dir.path().join("cache"));
    let cache = decompress_cached(&gz, &policy).unwrap();
    assert!(
        cache.starts_with(dir.path().join("cache")),
        "{}",
        cache.display()
    );
    assert_eq!(std::fs::read(&cache).unwrap(), bytes);
    assert_eq!(names_in(&data), ["v-idx2-float.gz"]);
    // Reused, not rewritten.
    let mtime = std::fs::metadata(&cache).unwrap().modified().unwrap();
    assert_eq!(decompress_cached(&gz, &policy).unwrap(), cache);
    assert_eq!(
        std::fs::metadata(&cache).unwrap().modified().unwrap(),
        mtime
    );
    // The entry and its record, nothing else (no partial file).
    assert_eq!(
        names_in(cache.parent().unwrap()),
        ["v-idx2-float", "v-idx2-float.source"]
    );

    // A raw file of the same name beside the source is neither used nor touched.
    let beside = data.join("v-idx2-float");
    std::fs::write(&beside, vec![0xAB; bytes.len()]).unwrap();
    let f = IdxFile::open_with(&gz, &policy).unwrap();
    assert_eq!(f.path(), cache);
    assert_eq!(&f.data::<f32>().unwrap()[..], &values(30, |i| i as f32)[..]);
    assert_eq!(std::fs::read(&beside).unwrap(), vec![0xAB; bytes.len()]);

    // Two sources with the same name in different folders get different entries.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let gz2 = write(
        &other,
        "v-idx2-float.gz",
        &gzip(&encode_idx(&[1, 1], &[9f32]).unwrap()),
    );
    let cache2 = decompress_cached(&gz2, &policy).unwrap();
    assert_ne!(cache, cache2);
    assert_eq!(
        IdxFile::open_with(&gz2, &policy)
            .unwrap()
            .data::<f32>()
            .unwrap()[0],
        9.0
    );
}

#[cfg(unix)]
#[test]
fn a_read_only_data_folder_works_and_stays_untouched() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir();
    let src = dir.path().join("ro");
    std::fs::create_dir(&src).unwrap();
    let bytes = encode_idx(&[5], &[1u8, 2, 3, 4, 5]).unwrap();
    let gz = write(&src, "lab-idx1-ubyte.gz", &gzip(&bytes));
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o555)).unwrap();
    let policy = CachePolicy::in_dir(dir.path().join("cache"));
    let cache = decompress_cached(&gz, &policy);
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cache = cache.unwrap();
    assert_eq!(cache.file_name().unwrap(), "lab-idx1-ubyte");
    assert_eq!(std::fs::read(&cache).unwrap(), bytes);
    assert_eq!(names_in(&src), ["lab-idx1-ubyte.gz"]);
}

#[test]
fn altered_or_planted_entries_are_rebuilt_from_the_source() {
    let dir = tempdir();
    let labels: Vec<u8> = (0..1000).map(|i| (i % 10) as u8).collect();
    let bytes = encode_idx(&[1000], &labels).unwrap();
    let gz = write(dir.path(), "t10k-labels-idx1-ubyte.gz", &gzip(&bytes));
    let policy = CachePolicy::in_dir(dir.path().join("cache"));
    let (entry, record) = entry_of(&policy, &gz);

    // A planted entry (all labels 0, valid IDX of the right length) and no record: not used.
    std::fs::create_dir_all(entry.parent().unwrap()).unwrap();
    let planted = encode_idx(&[1000], &[0u8; 1000]).unwrap();
    std::fs::write(&entry, &planted).unwrap();
    let f = IdxFile::open_with(&gz, &policy).unwrap();
    assert_eq!(f.data::<u8>().unwrap()[1], 1);
    assert_eq!(std::fs::read(&entry).unwrap(), bytes);

    // The entry altered after its record was written (same length, valid IDX, a modification
    // time newer than the source's): the record names the source, and the content digest
    // catches the swap.
    let rec = std::fs::read_to_string(&record).unwrap();
    assert!(
        rec.contains("source_sha256 ") && rec.contains("content_sha256 "),
        "{rec}"
    );
    std::fs::write(&entry, &planted).unwrap();
    let f = IdxFile::open_with(&gz, &policy).unwrap();
    assert_eq!(f.data::<u8>().unwrap()[1], 1);
    // Truncated, or a garbage record: rebuilt too.
    std::fs::write(&entry, &bytes[..500]).unwrap();
    assert_eq!(
        IdxFile::open_with(&gz, &policy)
            .unwrap()
            .data::<u8>()
            .unwrap()[999],
        9
    );
    std::fs::write(&record, "garbage").unwrap();
    assert_eq!(
        IdxFile::open_with(&gz, &policy)
            .unwrap()
            .data::<u8>()
            .unwrap()[999],
        9
    );
    assert_eq!(std::fs::read_to_string(&record).unwrap(), rec);
}

#[test]
fn a_replaced_source_is_noticed_whatever_its_modification_time() {
    let dir = tempdir();
    let old = encode_idx(&[10, 3], &values(30, |i| i as f32)).unwrap();
    let new = encode_idx(&[10, 3], &values(30, |i| -(i as f32))).unwrap();
    let gz = write(dir.path(), "v-idx2-float.gz", &gzip(&old));
    let policy = CachePolicy::in_dir(dir.path().join("cache"));
    let (entry, _) = entry_of(&policy, &gz);
    assert_eq!(
        IdxFile::open_with(&gz, &policy)
            .unwrap()
            .data::<f32>()
            .unwrap()[1],
        1.0
    );
    // As `cp -p` or `tar` leave it: new content, a modification time older than the entry's.
    std::fs::write(&gz, gzip(&new)).unwrap();
    let past = std::time::SystemTime::now() - std::time::Duration::from_secs(86_400);
    std::fs::File::options()
        .write(true)
        .open(&gz)
        .unwrap()
        .set_modified(past)
        .unwrap();
    assert!(
        std::fs::metadata(&gz).unwrap().modified().unwrap()
            < std::fs::metadata(&entry).unwrap().modified().unwrap()
    );
    let f = IdxFile::open_with(&gz, &policy).unwrap();
    assert_eq!(f.data::<f32>().unwrap()[1], -1.0);
    assert_eq!(std::fs::read(&entry).unwrap(), new);
}

#[test]
fn stale_partial_files_are_removed_on_the_next_open() {
    let dir = tempdir();
    let bytes = encode_idx(&[4], &[1u8, 2, 3, 4]).unwrap();
    let gz = write(dir.path(), "l-idx1-ubyte.gz", &gzip(&bytes));
    let policy = CachePolicy::in_dir(dir.path().join("cache"));
    let (entry, _) = entry_of(&policy, &gz);
    let folder = entry.parent().unwrap().to_path_buf();
    decompress_cached(&gz, &policy).unwrap();

    // The id of a process that has ended.
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .arg("--list")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let me = std::process::id();
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let partial = |pid: u32, tag: &str, old: bool| {
        let p = folder.join(format!(".l-idx1-ubyte.partial-{pid}-{tag}"));
        std::fs::write(&p, vec![0u8; 4096]).unwrap();
        if old {
            std::fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(hour_ago)
                .unwrap();
        }
        p
    };
    let killed = partial(dead, "killed", true);
    let fresh = partial(dead, "fresh", false); // maybe still being written by a slow host
    let running = partial(me, "running", true);
    let other_file = folder.join(".notes");
    std::fs::write(&other_file, b"kept").unwrap();

    let f = IdxFile::open_with(&gz, &policy).unwrap();
    assert_eq!(f.data::<u8>().unwrap()[..], [1, 2, 3, 4]);
    assert!(!killed.exists(), "the dead process's partial file is left");
    assert!(fresh.exists() && running.exists() && other_file.exists());
}

#[test]
fn a_header_that_declares_more_than_the_stream_holds_writes_nothing() {
    let dir = tempdir();
    let policy = CachePolicy::in_dir(dir.path().join("cache"));
    // 2³²−1 × 2³²−1 × 1 bytes declared, 1 MiB of zeros given (a gzip of about 1 KiB).
    let mut lie = vec![
        0, 0, 0x08, 3, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 1,
    ];
    lie.resize(lie.len() + (1 << 20), 0);
    let gz = write(dir.path(), "bomb-idx3-ubyte.gz", &gzip(&lie));
    let err = IdxFile::open_with(&gz, &policy).unwrap_err();
    assert!(
        matches!(err, DatasetError::ImplausibleSize { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("bomb-idx3-ubyte.gz"), "{err}");
    assert!(walk(&dir.path().join("cache")).is_empty());

    // Within what deflate can expand to, but not what the stream holds: incompressible data,
    // the header declares twice as much. The gzip trailer disagrees, so the stream is counted
    // before anything is written.
    let noise: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut short = encode_idx(&[40_000], &vec![0u8; 40_000]).unwrap();
    short.truncate(8);
    short.extend_from_slice(&noise);
    let gz = write(dir.path(), "short-idx1-ubyte.gz", &gzip(&short));
    let err = IdxFile::open_with(&gz, &policy).unwrap_err();
    assert!(
        matches!(
            err,
            DatasetError::Truncated {
                expected: 40_008,
                actual: 20_008,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(walk(&dir.path().join("cache")).is_empty());

    // Several gzip members (the trailer then gives the last member's size only) still load.
    let bytes = encode_idx(&[6], &[1u8, 2, 3, 4, 5, 6]).unwrap();
    let mut two = gzip(&bytes[..7]);
    two.extend_from_slice(&gzip(&bytes[7..]));
    let gz = write(dir.path(), "two-idx1-ubyte.gz", &two);
    assert_eq!(
        IdxFile::open_with(&gz, &policy)
            .unwrap()
            .data::<u8>()
            .unwrap()[..],
        [1, 2, 3, 4, 5, 6]
    );
}

#[cfg(unix)]
#[test]
fn a_cache_folder_others_can_write_is_refused_naming_the_variable() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir();
    let bytes = encode_idx(&[2], &[1u8, 2]).unwrap();
    let gz = write(dir.path(), "l-idx1-ubyte.gz", &gzip(&bytes));

    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = IdxFile::open_with(&gz, &CachePolicy::in_dir(&shared)).unwrap_err();
    assert!(matches!(err, DatasetError::CacheFolder { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("writable by other users") && msg.contains("BILEVEL_CACHE_DIR"),
        "{msg}"
    );
    assert!(walk(&shared).is_empty());

    // A folder this user cannot create: the message names the variable too.
    let blocked = dir.path().join("file-not-folder");
    std::fs::write(&blocked, b"x").unwrap();
    let err = IdxFile::open_with(&gz, &CachePolicy::in_dir(blocked.join("cache"))).unwrap_err();
    assert!(err.to_string().contains("BILEVEL_CACHE_DIR"), "{err}");

    // A folder created here is private.
    let fresh = dir.path().join("fresh").join("cache");
    IdxFile::open_with(&gz, &CachePolicy::in_dir(&fresh)).unwrap();
    let mode = std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}

#[cfg(unix)]
#[test]
fn a_cache_folder_another_user_owns_is_refused() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempdir();
    let gz = write(
        dir.path(),
        "l-idx1-ubyte.gz",
        &gzip(&encode_idx(&[1], &[3u8]).unwrap()),
    );
    let theirs = dir.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    // Only a superuser can give a folder away; elsewhere, say so.
    if std::os::unix::fs::chown(&theirs, Some(4_000_123), None).is_err() {
        println!("a_cache_folder_another_user_owns_is_refused: skipped: cannot chown (not root)");
        return;
    }
    assert_eq!(std::fs::metadata(&theirs).unwrap().uid(), 4_000_123);
    let err = IdxFile::open_with(&gz, &CachePolicy::in_dir(&theirs)).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DatasetError::CacheFolder { .. }), "{err:?}");
    assert!(
        msg.contains("owned by user id 4000123") && msg.contains("BILEVEL_CACHE_DIR"),
        "{msg}"
    );
    assert!(walk(&theirs).is_empty());
}

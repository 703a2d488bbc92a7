//! Fuzz driver for the IDX reader and the MNIST loader: mutated inputs, counted panics, bounded
//! memory.
//!
//! ```text
//! cargo run --release -p bilevel-datasets --example fuzz_idx -- --inputs 10000000 --seed 1
//! ```
//!
//! Each input is a seed file with one to four mutations (bit flips, byte writes, truncations,
//! extensions, splices, extreme header fields, dimensions rewritten with the data resized to
//! match). Seeds are the shipped MNIST files' headers and their first images and labels, and
//! valid files of every element type and rank 0–4. Every input goes through
//! `IdxHeader::parse`, `IdxFile::from_bytes`, `data::<T>()` for the six element types,
//! `to_f64_vec`, `Dataset::from_idx` as images and as labels, and the feature and label
//! accessors (`exercise.rs`). A panic is caught and counted, and its input printed in hex; the
//! peak of live heap memory while an input is processed must stay under
//! `ALLOC_FACTOR × input length + ALLOC_SLACK`, and an input still running after `HANG_SECS`
//! stops the run. The run prints inputs per second, what the inputs reached, and the error
//! kinds; it exits with status 1 if anything panicked, went over the bound or hung. The same
//! seed gives the same inputs on every machine.

mod exercise;

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::io::Read;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

use bilevel_datasets::ElementType;
use bilevel_datasets::idx::encode_idx;
use exercise::{Reached, exercise};

/// Peak heap memory per input may be at most this many times the input's length... The largest
/// structure is a feature matrix, 8 bytes per pixel and sample; faer pads a column of one to
/// seven rows to eight, so a dataset of one image of `p` pixels (an input of `p + 16` bytes)
/// makes a `1 × (p + 1)` matrix of `64 (p + 1)` bytes, beside its own copy of the input.
const ALLOC_FACTOR: usize = 72;
/// ...plus this much.
const ALLOC_SLACK: usize = 1 << 20;
/// Inputs never grow past this length (extensions stop there).
const MAX_LEN: usize = 1 << 20;
/// An input still running after this long is a hang: the run stops, naming it.
const HANG_SECS: u64 = 10;

/// The system allocator, counting live bytes and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Relaxed) + by;
    PEAK.fetch_max(now, Relaxed);
}

// SAFETY: every call is forwarded to `System` unchanged; only counters are updated.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's pointer, layout and size.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// SplitMix64: small, fast, and the same sequence everywhere for a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

struct Args {
    inputs: u64,
    seed: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        inputs: 1_000_000,
        seed: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .ok_or_else(|| format!("{name} needs a value"))?
                .parse::<u64>()
                .map_err(|e| format!("{name}: {e}"))
        };
        match a.as_str() {
            "--inputs" => args.inputs = value("--inputs")?,
            "--seed" => args.seed = value("--seed")?,
            "-h" | "--help" => {
                return Err(
                    "usage: fuzz_idx [--inputs N (default 1000000)] [--seed S (default 1)]"
                        .to_owned(),
                );
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(args)
}

/// A valid IDX file of type `t` and dimensions `dims` with varied element values.
fn valid(t: ElementType, dims: &[u32], salt: u8) -> Vec<u8> {
    let n: usize = dims.iter().map(|&d| d as usize).product();
    let b = |i: usize| (i as u8).wrapping_mul(salt | 1).wrapping_add(salt);
    match t {
        ElementType::U8 => encode_idx(dims, &(0..n).map(b).collect::<Vec<u8>>()),
        ElementType::I8 => encode_idx(dims, &(0..n).map(|i| b(i) as i8).collect::<Vec<_>>()),
        ElementType::I16 => encode_idx(
            dims,
            &(0..n).map(|i| i16::from(b(i)) * 257).collect::<Vec<_>>(),
        ),
        ElementType::I32 => encode_idx(
            dims,
            &(0..n)
                .map(|i| i32::from(b(i)) * 16_777_259)
                .collect::<Vec<_>>(),
        ),
        ElementType::F32 => {
            let special = [f32::NAN, f32::INFINITY, -0.0, f32::MIN_POSITIVE, 1e38];
            encode_idx(
                dims,
                &(0..n)
                    .map(|i| special.get(i).copied().unwrap_or(f32::from(b(i)) / 7.0))
                    .collect::<Vec<_>>(),
            )
        }
        ElementType::F64 => {
            let special = [f64::NAN, f64::NEG_INFINITY, -0.0, 5e-324, 1e308];
            encode_idx(
                dims,
                &(0..n)
                    .map(|i| special.get(i).copied().unwrap_or(f64::from(b(i)) / 3.0))
                    .collect::<Vec<_>>(),
            )
        }
    }
    .expect("valid dimensions")
}

/// The first `len` decompressed bytes of a shipped file, if the repository's data is there.
fn shipped_prefix(name: &str, len: usize) -> Option<Vec<u8>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/mnist")
        .join(name);
    let file = std::fs::File::open(path).ok()?;
    let mut out = Vec::with_capacity(len);
    flate2::read::GzDecoder::new(file)
        .take(len as u64)
        .read_to_end(&mut out)
        .ok()?;
    Some(out)
}

/// The seed corpus.
fn corpus() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    // Valid files of every type and rank 0–4, with empty, unit and larger dimensions.
    for (k, t) in ElementType::ALL.into_iter().enumerate() {
        for rank in 0..=4usize {
            for shape in 0..3usize {
                let dims: Vec<u32> = (0..rank)
                    .map(|d| ((d + shape + k) % 4) as u32 + u32::from(shape == 2))
                    .collect();
                seeds.push(valid(t, &dims, (k * 31 + rank * 7 + shape) as u8));
            }
        }
    }
    // The shipped files' headers, alone and with their first images / labels.
    let set_count = |mut b: Vec<u8>, n: u32| {
        if b.len() >= 8 {
            b[4..8].copy_from_slice(&n.to_be_bytes());
        }
        b
    };
    let images = shipped_prefix("t10k-images-idx3-ubyte.gz", 16 + 3 * 784)
        .unwrap_or_else(|| valid(ElementType::U8, &[3, 28, 28], 5));
    let labels = shipped_prefix("t10k-labels-idx1-ubyte.gz", 8 + 3)
        .unwrap_or_else(|| valid(ElementType::U8, &[3], 5));
    seeds.push(images[..16].to_vec()); // [10000, 28, 28], no data
    seeds.push(labels[..8].to_vec()); // [10000], no data
    seeds.push(set_count(images.clone(), 3));
    seeds.push(set_count(labels.clone(), 3));
    seeds.push(set_count(images[..16 + 784].to_vec(), 1));
    // Weigh the dataset-shaped seeds up: four copies of each.
    let shaped = seeds.len() - 5..seeds.len();
    for _ in 0..3 {
        seeds.extend_from_within(shaped.clone());
    }
    seeds
}

/// Extreme values for a dimension field.
const EXTREME_DIMS: [u32; 13] = [
    0,
    1,
    2,
    3,
    28,
    255,
    256,
    65_535,
    65_536,
    (1 << 31) - 1,
    1 << 31,
    u32::MAX - 1,
    u32::MAX,
];

/// Applies one random mutation to `b`.
fn mutate(b: &mut Vec<u8>, rng: &mut Rng, corpus: &[Vec<u8>]) {
    let n = b.len();
    match rng.below(10) {
        0 if n > 0 => {
            let at = rng.below(n);
            b[at] ^= 1 << rng.below(8);
        }
        1 if n > 0 => {
            let at = rng.below(n);
            b[at] = [0, 0xFF, 0x7F, 0x80, rng.byte()][rng.below(5)];
        }
        2 => b.truncate(rng.below(n + 1)),
        3 => {
            let extra = 1 + rng.below(16);
            for _ in 0..extra {
                if b.len() < MAX_LEN {
                    b.push(rng.byte());
                }
            }
        }
        4 if n > 0 => {
            // One of the four leading bytes: magic, type code, rank.
            let at = rng.below(4.min(n));
            b[at] = match rng.below(3) {
                0 => rng.byte(),
                1 => [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E][rng.below(6)],
                _ => b[at].wrapping_add(if rng.below(2) == 0 { 1 } else { 255 }),
            };
        }
        5 | 6 if n >= 8 => {
            // A dimension field set to an extreme or random value.
            let rank = usize::from(b[3]).max(1);
            let at = 4 + 4 * rng.below(rank.min((n - 4) / 4).max(1));
            if at + 4 <= n {
                let v = if rng.below(4) == 0 {
                    rng.next() as u32
                } else {
                    EXTREME_DIMS[rng.below(EXTREME_DIMS.len())]
                };
                b[at..at + 4].copy_from_slice(&v.to_be_bytes());
            }
        }
        7 if n >= 4 => {
            // Resize the data to what the header declares (when it fits), so that a changed
            // header still gives a valid file.
            let h = bilevel_datasets::idx::IdxHeader::parse(b, Path::new("m"));
            if let Ok(h) = h
                && let Ok(len) = usize::try_from(h.file_len())
                && len <= MAX_LEN
            {
                let fill = rng.byte();
                b.resize(len, fill);
            }
        }
        8 if n > 0 => {
            // Splice in a piece of another seed.
            let other = &corpus[rng.below(corpus.len())];
            if !other.is_empty() {
                let from = rng.below(other.len());
                let len = 1 + rng.below((other.len() - from).min(64));
                let at = rng.below(n);
                let end = (at + len).min(n);
                b[at..end].copy_from_slice(&other[from..from + (end - at)]);
            }
        }
        9 if n > 0 => {
            // Delete or duplicate a run of bytes.
            let at = rng.below(n);
            let len = 1 + rng.below((n - at).min(32));
            if rng.below(2) == 0 {
                b.drain(at..at + len);
            } else if n + len <= MAX_LEN {
                let run = b[at..at + len].to_vec();
                b.splice(at..at, run);
            }
        }
        _ => {}
    }
}

/// The variant name of an error (`TruncatedHeader`, ...).
fn kind_of(e: &bilevel_datasets::DatasetError) -> String {
    let d = format!("{e:?}");
    d.split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("?")
        .to_owned()
}

fn hex(b: &[u8]) -> String {
    let shown: String = b.iter().take(96).map(|x| format!("{x:02x}")).collect();
    if b.len() > 96 {
        format!("{shown}… ({} bytes)", b.len())
    } else {
        shown
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    let corpus = corpus();
    let mut rng = Rng(args.seed);

    static LAST_PANIC: Mutex<String> = Mutex::new(String::new());
    panic::set_hook(Box::new(|info| {
        if let Ok(mut m) = LAST_PANIC.lock() {
            *m = info.to_string();
        }
    }));

    // The watchdog: the input running (index + 1, 0 between inputs) and since when.
    static RUNNING: AtomicU64 = AtomicU64::new(0);
    static SINCE_MS: AtomicU64 = AtomicU64::new(0);
    let clock = Instant::now();
    let seed = args.seed;
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(std::time::Duration::from_millis(200));
            let i = RUNNING.load(Relaxed);
            let since = SINCE_MS.load(Relaxed);
            let now = clock.elapsed().as_millis() as u64;
            if i > 0 && now.saturating_sub(since) > HANG_SECS * 1000 && RUNNING.load(Relaxed) == i {
                eprintln!(
                    "HANG: input {} of seed {seed} has run for more than {HANG_SECS} s \
                     (rerun with --inputs {i} to reach it)",
                    i - 1
                );
                std::process::exit(1);
            }
        }
    });

    let mut reached: BTreeMap<&str, u64> = BTreeMap::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut as_dataset: BTreeMap<String, u64> = BTreeMap::new();
    let (mut panics, mut over_bound) = (0u64, 0u64);
    let (mut peak_worst, mut peak_worst_len, mut ratio_worst) = (0usize, 0usize, 0.0f64);
    let mut input = Vec::new();
    let start = Instant::now();
    for i in 0..args.inputs {
        input.clear();
        input.extend_from_slice(&corpus[rng.below(corpus.len())]);
        let muts = if rng.below(16) == 0 {
            0
        } else {
            1 + rng.below(4)
        };
        for _ in 0..muts {
            mutate(&mut input, &mut rng, &corpus);
        }
        let variant = rng.next();

        let base = LIVE.load(Relaxed);
        PEAK.store(base, Relaxed);
        let mut refused = |e: &bilevel_datasets::DatasetError| {
            *as_dataset.entry(kind_of(e)).or_default() += 1;
        };
        SINCE_MS.store(clock.elapsed().as_millis() as u64, Relaxed);
        RUNNING.store(i + 1, Relaxed);
        let result =
            panic::catch_unwind(AssertUnwindSafe(|| exercise(&input, variant, &mut refused)));
        RUNNING.store(0, Relaxed);
        let peak = PEAK.load(Relaxed).saturating_sub(base);
        match result {
            Ok(Ok(r)) => {
                *reached
                    .entry(match r {
                        Reached::Idx => "valid IDX, no dataset",
                        Reached::Dataset => "loaded as a dataset",
                    })
                    .or_default() += 1;
            }
            Ok(Err(e)) => {
                *reached.entry("rejected").or_default() += 1;
                *errors.entry(kind_of(&e)).or_default() += 1;
            }
            Err(_) => {
                panics += 1;
                if panics <= 5 {
                    let msg = LAST_PANIC.lock().map(|m| m.clone()).unwrap_or_default();
                    eprintln!(
                        "PANIC on input {i} (variant {variant}): {msg}\n  {}",
                        hex(&input)
                    );
                }
            }
        }
        if peak > ALLOC_FACTOR * input.len() + ALLOC_SLACK {
            over_bound += 1;
            if over_bound <= 5 {
                eprintln!(
                    "OVER BOUND on input {i}: {peak} bytes for {} input bytes\n  {}",
                    input.len(),
                    hex(&input)
                );
            }
        }
        if peak > peak_worst {
            (peak_worst, peak_worst_len) = (peak, input.len());
        }
        if input.len() >= 1024 {
            ratio_worst = ratio_worst.max(peak as f64 / input.len() as f64);
        }
        if (i + 1) % 1_000_000 == 0 {
            eprintln!(
                "{} inputs, {:.0} /s, {panics} panics",
                i + 1,
                (i + 1) as f64 / start.elapsed().as_secs_f64()
            );
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let total = args.inputs.max(1) as f64;
    println!(
        "fuzz_idx: {} inputs from seed {} in {secs:.1} s ({:.0} inputs/s), {} seed files",
        args.inputs,
        args.seed,
        args.inputs as f64 / secs,
        corpus.len()
    );
    for (what, n) in &reached {
        println!("  {what}: {n} ({:.1} %)", 100.0 * *n as f64 / total);
    }
    let shares = |m: &BTreeMap<String, u64>| {
        let mut by_count: Vec<_> = m.iter().collect();
        by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let list: Vec<String> = by_count
            .iter()
            .map(|(k, n)| format!("{k} {:.2} %", 100.0 * **n as f64 / total))
            .collect();
        list.join(", ")
    };
    println!("  typed errors of the IDX checks: {}", shares(&errors));
    println!(
        "  typed errors of Dataset::from_idx (as images, as labels): {}",
        shares(&as_dataset)
    );
    println!("  panics: {panics}");
    println!(
        "  heap peak per input: largest {peak_worst} bytes (for a {peak_worst_len}-byte input); \
         at most {ratio_worst:.1} x the input for inputs of 1 KiB or more; bound \
         {ALLOC_FACTOR} x input + {ALLOC_SLACK} bytes, exceeded {over_bound} times"
    );
    println!("  hangs (an input running over {HANG_SECS} s): 0");
    if panics > 0 || over_bound > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

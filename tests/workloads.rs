//! The benchmark workloads (`benches/workloads`): numpy's random streams reproduced, and the
//! workloads built with the harness's shapes on the library's problems.

#[path = "../benches/workloads/mod.rs"]
mod workloads;

use workloads::npy::{Normal, Pcg64};

/// Values printed by numpy 2.4: `np.random.PCG64(2).random_raw(3)` and
/// `np.random.default_rng(s).standard_normal(3)` for `s = 2, 1`. The raw draws are numpy's bit
/// for bit; the normals to 1e-14 (the ziggurat tables are computed here, see `npy`).
#[test]
fn draws_match_numpy() {
    let mut g = Pcg64::new(2);
    assert_eq!(
        [g.next_u64(), g.next_u64(), g.next_u64()],
        [
            4_825_892_087_074_085_057,
            5_506_189_730_829_267_300,
            15_019_813_854_969_311_518
        ]
    );
    for (seed, want) in [
        (
            2,
            [
                0.189_053_381_793_533_07,
                -0.522_748_441_480_747_4,
                -0.413_063_543_391_893_44,
            ],
        ),
        (
            1,
            [
                0.345_584_192_064_786,
                0.821_618_143_501_158_4,
                0.330_437_076_183_387_14,
            ],
        ),
    ] {
        let mut n = Normal::new(seed);
        for w in want {
            let got = n.next();
            assert!(
                (got - w).abs() <= 1e-14 * w.abs(),
                "seed {seed}: {got} vs {w}"
            );
        }
    }
    // Far into the stream (numpy: default_rng(2).standard_normal(400_000)[-1]).
    let mut n = Normal::new(2);
    let last = n.take(400_000)[399_999];
    assert!((last - LAST_OF_400K).abs() <= 1e-14, "{last}");
}

const LAST_OF_400K: f64 = -1.450_670_861_190_972_7;

/// Every workload has the harness's dimensions, and its oracles and steps run.
#[test]
fn workloads_have_the_harness_shapes_and_run() {
    let (ws, _) = workloads::build(&["A", "B50", "C20"], None);
    let dims: Vec<(String, usize, usize)> = ws
        .iter()
        .map(|w| (w.name.clone(), w.problem.dim_x(), w.problem.dim_y()))
        .collect();
    assert_eq!(
        dims,
        vec![
            ("A".into(), 5000, 7840),
            ("B50".into(), 5000, 784 * 50 + 50 + 500 + 10),
            ("C20".into(), 20, 20),
        ]
    );
    for w in &ws {
        assert_eq!(
            (w.x.nrows(), w.y.nrows(), w.v.nrows()),
            (w.problem.dim_x(), w.problem.dim_y(), w.problem.dim_y())
        );
        let mut b = workloads::Bench::new(w, bilevel::linalg::Par::Seq);
        for op in workloads::OPS {
            if b.has(op) {
                b.call(op);
            }
        }
    }
}

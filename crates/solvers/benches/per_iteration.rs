//! Per-iteration cost of every solver on sc-sincos (`n = m = 20` and `2000`), in time and in
//! gradient-equivalents: the time of one `step` divided by the time of one `grad_g` (one
//! reverse pass of `g`) on the same problem. Solvers start at `(x₀, y*(x₀))` with the
//! parameters of the snapshot tests (`bilevel_solvers::testing::solvers`, `L = 100`); metrics
//! are not part of a step.
//!
//! Run with `cargo bench -p bilevel-solvers --bench per_iteration`; the table below is
//! regenerated from criterion's estimates (`target/criterion/*/*/new/estimates.json`).
//!
//! Measured on a 2-core Intel Xeon with AVX-512, one thread (every oracle runs on its
//! sequential evaluator; the machine was shared with other jobs), medians of 10 samples.
//! `aidbio-cg`'s cost varies with the number of CG products its warm start needs (at most 20);
//! `f2sa`'s ratio is below its 6 Gc at n = 2000 because a gradient of `f` costs far less than
//! one of `g` (no product with `H`).
//!
//! | solver | n = 20: time | n = 20: grad-eq. | n = 2000: time | n = 2000: grad-eq. |
//! |---|---:|---:|---:|---:|
//! | one `grad_g` | 685 ns | 1 | 2.37 ms | 1 |
//! | `aid-single-loop` | 3.57 µs | 5.2 | 11.39 ms | 4.8 |
//! | `itd-single-loop` | 2.52 µs | 3.7 | 6.85 ms | 2.9 |
//! | `pgd-qp-rho-grad-sq` | 2.58 µs | 3.8 | 7.00 ms | 3.0 |
//! | `pgd-qp-rho-sqrt-h0` | 2.52 µs | 3.7 | 6.77 ms | 2.9 |
//! | `galet` | 4.91 µs | 7.2 | 15.64 ms | 6.6 |
//! | `rhg` | 19.37 µs | 28.3 | 68.98 ms | 29.1 |
//! | `rhg-truncated` | 11.14 µs | 16.3 | 37.39 ms | 15.8 |
//! | `aidbio-cg` | 15.68 µs | 22.9 | 114.67 ms | 48.4 |
//! | `aidbio-neumann` | 18.31 µs | 26.7 | 68.35 ms | 28.8 |
//! | `bome` | 8.48 µs | 12.4 | 28.16 ms | 11.9 |
//! | `v-pbgd` | 8.56 µs | 12.5 | 26.92 ms | 11.4 |
//! | `f2sa` | 3.89 µs | 5.7 | 9.00 ms | 3.8 |
//! | `f2sa-fixed-lambda` | 11.35 µs | 16.6 | 26.96 ms | 11.4 |
//! | `prox-f2sa-two-loop` | 13.29 µs | 19.4 | 27.15 ms | 11.5 |
//! | `f3sa` | 10.69 µs | 15.6 | 20.73 ms | 8.7 |
//! | `prox-f2sa-momentum` | 11.87 µs | 17.3 | 18.00 ms | 7.6 |

use std::hint::black_box;
use std::time::Duration;

use bilevel_solvers::problems::ScSinCos;
use bilevel_solvers::testing;
use bilevel_solvers::vecops::norm;
use bilevel_solvers::{Iterate, Oracle, Problem};
use criterion::{Criterion, criterion_group, criterion_main};

fn per_iteration(c: &mut Criterion) {
    for n in [20, 2000] {
        let p = ScSinCos::new(n, 0);
        let start = Iterate {
            x: p.x0(),
            y: p.y_star(p.x0().as_ref()).unwrap(),
        };
        let mut group = c.benchmark_group(format!("sc-sincos-n{n}"));
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(1));
        let mut o = Oracle::new(&p);
        group.bench_function("grad_g", |b| {
            b.iter(|| black_box(o.grad_g(&start.x, &start.y)))
        });
        for (name, mut s) in testing::solvers(100.0) {
            let mut o = Oracle::new(&p);
            let mut it = start.clone();
            s.init(&mut o, &mut it).unwrap();
            let (state0, it0) = (s.save_state(), it.clone());
            let mut k = 0;
            group.bench_function(name, |b| {
                b.iter(|| {
                    let sc = s.step(&mut o, &mut it, k);
                    k += 1;
                    // Keep the iterate in range over many steps: restart from the initial
                    // state if it leaves (never within the first 20 steps on this problem).
                    let r = norm(&it.x) + norm(&it.y);
                    if !r.is_finite() || r >= 1e6 {
                        it = it0.clone();
                        s.load_state(state0.clone()).unwrap();
                        k = 0;
                    }
                    black_box(sc)
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, per_iteration);
criterion_main!(benches);

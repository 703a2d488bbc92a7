//! `bilevel oracles`: the time of each oracle of a problem and its ratio to one gradient of `g`.

use super::CliError;
use super::registry::{DataCache, build_problem, problem_params, problem_spec};
use crate::ad::Evaluator;
use crate::solvers::sampling::SampleStream;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

/// A table of median oracle times over `reps` calls at the problem's starting point; with
/// `batch`, also the minibatch gradients of a data-sum problem on `batch` samples (the first
/// draw of the stream of seed 0).
///
/// # Errors
/// Unknown problem or parameters, missing data, a batch on a problem that is not a data sum.
pub fn oracle_table(
    problem: &str,
    sets: &BTreeMap<String, String>,
    data_dir: Option<&Path>,
    reps: usize,
    batch: Option<usize>,
) -> Result<String, CliError> {
    if !(1..=1_000_000).contains(&reps) {
        return Err(CliError::new(format!(
            "--reps {reps}: expected an integer in 1..=1000000"
        )));
    }
    let spec = problem_spec(problem)?;
    let params = problem_params(spec, sets)?;
    let built = build_problem(problem, &params, 0, &mut DataCache::new(data_dir))?;
    let p = &*built;
    let (x, y) = (p.x0(), p.y0());
    let v = crate::linalg::Mat::from_fn(p.dim_y(), 1, |i, _| ((i % 7) as f64 - 3.0) * 0.1);
    let u = crate::linalg::Mat::from_fn(p.dim_x(), 1, |i, _| ((i % 5) as f64 - 2.0) * 0.1);
    let mut ev = Evaluator::new();
    let mut time = |f: &mut dyn FnMut(&mut Evaluator)| {
        f(&mut ev); // warm-up
        let mut t: Vec<f64> = (0..reps.max(1))
            .map(|_| {
                let t0 = Instant::now();
                f(&mut ev);
                t0.elapsed().as_secs_f64()
            })
            .collect();
        t.sort_by(f64::total_cmp);
        t[t.len() / 2]
    };
    let (xr, yr) = (x.as_ref(), y.as_ref());
    let mut rows: Vec<(String, f64)> = vec![
        (
            "value g".into(),
            time(&mut |ev| {
                std::hint::black_box(p.value_g(ev, xr, yr));
            }),
        ),
        (
            "grad g (Gc)".into(),
            time(&mut |ev| {
                std::hint::black_box(p.grad_g(ev, xr, yr));
            }),
        ),
        (
            "grad f (Gc)".into(),
            time(&mut |ev| {
                std::hint::black_box(p.grad_f(ev, xr, yr));
            }),
        ),
        (
            "hvp g (MV: Hyy v, Jxy v)".into(),
            time(&mut |ev| {
                std::hint::black_box(p.hvp_g(ev, xr, yr, v.as_ref()));
            }),
        ),
        (
            "hvp g alone (MV: Hyy v)".into(),
            time(&mut |ev| {
                std::hint::black_box(p.hvp_yy_g(ev, xr, yr, v.as_ref()));
            }),
        ),
        (
            "mixed alone (MV: Jxy v)".into(),
            time(&mut |ev| {
                std::hint::black_box(p.jvp_xy_g(ev, xr, yr, v.as_ref()));
            }),
        ),
        (
            "grad g + hvp g, one pass".into(),
            time(&mut |ev| {
                std::hint::black_box(p.grad_hvp_g(ev, xr, yr, v.as_ref()));
            }),
        ),
        (
            "jvp_yx g (MV: Jyx u)".into(),
            time(&mut |ev| {
                std::hint::black_box(p.jvp_yx_g(ev, xr, yr, u.as_ref()));
            }),
        ),
        (
            "grad h (Gc + MV)".into(),
            time(&mut |ev| {
                std::hint::black_box(p.grad_h(ev, xr, yr));
            }),
        ),
    ];
    if let Some(b) = batch {
        let d = p.data_sum().ok_or_else(|| {
            CliError::new(format!(
                "--batch: problem {problem} is not a data sum, it has no minibatch oracles"
            ))
        })?;
        if b == 0 {
            return Err(CliError::new("--batch must be >= 1"));
        }
        let mut s = SampleStream::new(0);
        let (idx_g, idx_f) = (s.draw(d.samples_g(), b), s.draw(d.samples_f(), b));
        let tg = time(&mut |ev| {
            std::hint::black_box(ev.value_and_grad2(|t, x, y| d.g_batch(t, x, y, &idx_g), xr, yr));
        });
        let tf = time(&mut |ev| {
            std::hint::black_box(ev.value_and_grad2(|t, x, y| d.f_batch(t, x, y, &idx_f), xr, yr));
        });
        rows.push((format!("grad g, batch {} (Gc)", idx_g.len()), tg));
        rows.push((format!("grad f, batch {} (Gc)", idx_f.len()), tf));
    }
    let base = rows[1].1;
    let mut s = format!(
        "{} (dim_x {}, dim_y {}), median of {reps} calls\n{:<26} {:>12} {:>10}\n",
        p.name(),
        p.dim_x(),
        p.dim_y(),
        "oracle",
        "time",
        "/ grad g"
    );
    for (name, t) in rows {
        s += &format!("{name:<26} {:>10.3} ms {:>10.2}\n", t * 1e3, t / base);
    }
    Ok(s)
}

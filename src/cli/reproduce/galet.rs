//! GALET's Example 1: the run from two starts and the parameter-sensitivity grid of its
//! Figure 4, whose paths come from an observer of each run's iterates.

use super::plan::*;
use super::{GALET_PAPER, ReproduceArgs};
use crate::cli::CliError;
use crate::cli::folder::Folder;
use crate::cli::plot::{LegendAt, Series, Table, draw, draw_at};
use crate::cli::run::ObserverFactory;
use crate::cli::summary::trace_table;
use crate::cli::text::fmt;
use crate::solvers::observe::Observe;
use crate::solvers::{Iterate, Record, Status};
use std::path::Path;
use std::sync::{Arc, Mutex};

pub(super) fn galet_example1(
    args: &ReproduceArgs,
    out: &Folder,
) -> Result<(String, bool), CliError> {
    let iters = if args.smoke { 10 } else { 30 };
    let starts: [(&str, [&str; 3]); 2] = [
        ("start (2, 2, 2)", ["x0=2", "y1=2", "y2=2"]),
        ("start (-1, 1, -1)", ["x0=-1", "y1=1", "y2=-1"]),
    ];
    let mut dirs = Vec::new();
    let mut rows = String::from(
        "| start | optimality gap at k = 0 | optimality gap | R_x + R_w + R_y | value-function KKT score | Gc | MV |\n|---|---|---|---|---|---|---|\n",
    );
    for (i, (label, sets)) in starts.iter().enumerate() {
        let dir = out.dir().join(format!("start{i}"));
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        if !one(
            args,
            "galet-example1",
            "galet",
            &sets,
            Plan {
                seeds: "0",
                iters,
                metrics_every: Some(1),
                time_budget: None,
            },
            &dir,
        )? {
            return Ok((String::new(), true));
        }
        let t = trace_table(&dir, 0)?;
        let res = ["galet_rx", "galet_rw", "galet_ry"]
            .iter()
            .map(|c| t.last(c).unwrap_or(f64::NAN))
            .sum::<f64>();
        rows += &format!(
            "| {label} | {} | {} | {} | {} | {} | {} |\n",
            fmt(t.pairs("iter", "opt_gap").first().map_or(f64::NAN, |p| p.1)),
            fmt(t.last("opt_gap").unwrap_or(f64::NAN)),
            fmt(res),
            fmt(t.last("vf_kkt").unwrap_or(f64::NAN)),
            fmt(t.last("gc").unwrap_or(f64::NAN)),
            fmt(t.last("mv").unwrap_or(f64::NAN))
        );
        dirs.push((label.to_string(), dir));
    }
    for (col, title) in [
        ("opt_gap", "optimality gap (46)"),
        ("vf_kkt", "value-function KKT score (47)"),
        ("galet_rx", "R_x"),
    ] {
        let s = curves(&dirs, col)?;
        draw(
            &out.file(&format!("{col}.svg"))?,
            &format!("GALET on Example 1: {title}"),
            "iteration",
            title,
            &s,
            true,
        )?;
    }
    let text = format!(
        "# reproduce galet-example1\n\n\
         Example 1 and Appendix G of {GALET_PAPER}: α = 0.3, K = {iters}, β = 1, N = 1, w-step 0.1, \
         T = 1 (the crate's GALET defaults). The paper does not state its two starts; ours are \
         listed below. Final values, with the oracle counts of the whole run (Gc: gradient \
         calls, MV: Hessian- or Jacobian-vector products):\n\n{rows}\n\
         Published: GALET reaches the optimal set from both starts; the value-function KKT score \
         does not go to 0 while the GALET residual does.\n\n\
         Plots: opt_gap.svg, vf_kkt.svg, galet_rx.svg in {}\n",
        out.dir().display()
    );
    Ok((text, false))
}

/// The starts of `galet-fig3`: the two of `galet-example1` and the one from which eq. (15)
/// diverges with `T = 50` (found by a search over five starts and three settings).
const FIG3_STARTS: [(&str, [&str; 3]); 3] = [
    ("(2, 2, 2)", ["x0=2", "y1=2", "y2=2"]),
    ("(-1, 1, -1)", ["x0=-1", "y1=1", "y2=-1"]),
    ("(-1, -2, 0.5)", ["x0=-1", "y1=-2", "y2=0.5"]),
];

/// The settings of `galet-fig3`: label, folder, `--set` pairs.
const FIG3_SETTINGS: [(&str, &str, &[&str]); 3] = [
    ("T = 1, w carried over (default)", "T1", &[]),
    ("T = 50, w carried over", "T50", &["t_inner=50"]),
    (
        "T = 50, w from 0 (Algorithm 1)",
        "T50-w0",
        &["t_inner=50", "warm_start_w=false"],
    ),
];

/// GALET's Figure 3: the `w`-increment of eq. (12b) against eq. (15) on Example 1, from the same
/// starts and settings, measured by the distance (46) to the optimal set.
pub(super) fn galet_fig3(args: &ReproduceArgs, out: &Folder) -> Result<(String, bool), CliError> {
    let iters = if args.smoke { 10 } else { 500 };
    let mut rows = String::from(
        "| start | setting | w-increment | status | gap, final | first k with gap ≤ 1e-6 (k a multiple of 5) | Gc | MV |\n|---|---|---|---|---|---|---|---|\n",
    );
    let mut default_curves = Vec::new();
    for (si, (start, start_sets)) in FIG3_STARTS.iter().enumerate() {
        for (label, tag, extra) in FIG3_SETTINGS {
            for (inc, inc_tag, inc_set) in [
                ("(12b)", "12b", None),
                ("(15)", "15", Some("w_increment=strongly-convex")),
            ] {
                let dir = out.dir().join(format!("start{si}")).join(tag).join(inc_tag);
                let mut sets: Vec<String> = start_sets.iter().map(|s| s.to_string()).collect();
                sets.extend(extra.iter().map(|s| s.to_string()));
                sets.extend(inc_set.map(String::from));
                let plan = Plan {
                    seeds: "0",
                    iters,
                    metrics_every: Some(5),
                    time_budget: None,
                };
                if !one(args, "galet-example1", "galet", &sets, plan, &dir)? {
                    return Ok((String::new(), true));
                }
                let status = crate::cli::summary::seed_status(&dir, 0).unwrap_or(Status::MaxIter);
                let t = trace_table(&dir, 0)?;
                let g = t.pairs("iter", "opt_gap");
                let reached = g
                    .iter()
                    .find(|q| q.1 <= 1e-6)
                    .map_or("–".to_string(), |q| format!("{}", q.0));
                let final_gap = match status {
                    Status::Diverged { .. } => "–".to_string(),
                    _ => fmt(g.last().map_or(f64::NAN, |q| q.1)),
                };
                rows += &format!(
                    "| {start} | {label} | {inc} | {} | {final_gap} | {reached} | {} | {} |\n",
                    status_text(&status),
                    t.last("gc").unwrap_or(f64::NAN),
                    t.last("mv").unwrap_or(f64::NAN),
                );
                if tag == "T1" || (si == 2 && tag == "T50") {
                    default_curves.push((format!("{start}, {label}, {inc}"), dir));
                }
            }
        }
    }
    let series = curves(&default_curves, "opt_gap")?;
    draw(
        &out.file("opt_gap.svg")?,
        "GALET on Example 1: w-increment (12b) against (15)",
        "iteration",
        "optimality gap (46)",
        &series,
        true,
    )?;
    let text = format!(
        "# reproduce galet-fig3\n\n\
         Figure 3 of {GALET_PAPER}: GALET on Example 1 with the w-increment of eq. (12b), \
         d = ∇²ᵧᵧg(∇ᵧf + ∇²ᵧᵧg·w), against eq. (15), d = ∇ᵧf + ∇²ᵧᵧg·w, from the same starts \
         (x, y₁, y₂) and settings (α = 0.3, β = 1, N = 1, ρ = 0.1, K = {iters}; the paper \
         states no settings for this figure). Gap: the distance (46) to the optimal set. \
         Status \"diverged\" names the quantity that left the finite range.\n\n{rows}\n\
         Published: eq. (15) \"fails to find the global optimizer\" of Example 1.\n\n\
         Plot: opt_gap.svg in {} (every start with T = 1, and the third start with T = 50).\n",
        out.dir().display()
    );
    Ok((text, false))
}

/// The panels of GALET's Figure 4 (App. G): each varies one level's parameters from the
/// defaults α = 0.3, β = 1, N = 1, γ = 0.1 (our `rho`), T = 1. The last panel repeats the
/// shadow-implicit-gradient grid with `w` restarted from 0 every iteration (Algorithm 1 as
/// printed; the crate's default carries `w` over): folder name and title.
const GALET_PANELS: [(&str, &str); 4] = [
    ("ul", "upper level, α"),
    ("lm", "shadow implicit gradient, T and γ"),
    ("ll", "lower level, N and β"),
    ("lm-w0", "T and γ, w restarted from 0"),
];

/// One setting of GALET's parameter grid.
struct GridPoint {
    /// Index into [`GALET_PANELS`].
    panel: usize,
    /// E.g. `T = 5, γ = 0.1`.
    label: String,
    /// Folder name, e.g. `T5-gamma0.1`.
    tag: String,
    /// Solver `--set` pairs.
    sets: Vec<String>,
    /// The paper's default setting.
    default: bool,
}

/// The grid of GALET App. G: α ∈ {0.1, 0.3, 0.5, 0.7, 0.9}; T ∈ {1, 5, 50} × γ ∈ {0.1, 0.5};
/// N ∈ {1, 5} × β ∈ {0.1, 0.5, 1, 3}; and the T × γ grid again with `w` from 0.
fn galet_grid() -> Vec<GridPoint> {
    let mut g = Vec::new();
    for a in [0.1, 0.3, 0.5, 0.7, 0.9] {
        g.push(GridPoint {
            panel: 0,
            label: format!("α = {a}"),
            tag: format!("alpha{a}"),
            sets: vec![format!("alpha={a}")],
            default: a == 0.3,
        });
    }
    for (panel, w0) in [(1, false), (2, false), (3, true)] {
        if panel == 2 {
            for n in [1, 5] {
                for b in [0.1, 0.5, 1.0, 3.0] {
                    g.push(GridPoint {
                        panel,
                        label: format!("N = {n}, β = {b}"),
                        tag: format!("N{n}-beta{b}"),
                        sets: vec![format!("n_inner={n}"), format!("beta={b}")],
                        default: n == 1 && b == 1.0,
                    });
                }
            }
            continue;
        }
        for t in [1, 5, 50] {
            for gm in [0.1, 0.5] {
                let mut sets = vec![format!("t_inner={t}"), format!("rho={gm}")];
                if w0 {
                    sets.push("warm_start_w=false".into());
                }
                g.push(GridPoint {
                    panel,
                    label: format!("T = {t}, γ = {gm}"),
                    tag: format!("T{t}-gamma{gm}"),
                    sets,
                    default: !w0 && t == 1 && gm == 0.1,
                });
            }
        }
    }
    g
}

/// The path of a run on GALET's Example 1: `(k, x, y₁, y₂, optimality gap)` at every
/// iteration, written as `trajectory.csv` beside the run's traces.
#[derive(Clone, Debug, Default)]
struct Trajectory(Arc<Mutex<Vec<[f64; 5]>>>);

impl Observe for Trajectory {
    fn on_record(&mut self, rec: &Record, it: &Iterate) -> std::io::Result<()> {
        let gap = rec.metrics.as_ref().and_then(|m| m.opt_gap);
        let (x, y) = (it.x.col_as_slice(0), it.y.col_as_slice(0));
        self.0.lock().expect("trajectory").push([
            rec.iter as f64,
            x[0],
            y[0],
            y[1],
            gap.unwrap_or(f64::NAN),
        ]);
        Ok(())
    }
}

impl Trajectory {
    const FILE: &'static str = "trajectory.csv";

    /// Whether the path does not start at iteration 0 (the run was resumed).
    fn starts_late(&self) -> bool {
        self.0
            .lock()
            .expect("trajectory")
            .first()
            .is_none_or(|r| r[0] != 0.0)
    }

    /// Write the path as `name` in the experiment's folder `out`.
    fn write(&self, out: &Folder, name: &str) -> Result<(), CliError> {
        let mut csv = String::from("iter,x,y1,y2,opt_gap\n");
        for [k, x, y1, y2, gap] in self.0.lock().expect("trajectory").iter() {
            csv += &format!("{k},{x:e},{y1:e},{y2:e},{gap:e}\n");
        }
        out.write(name, &csv)
    }

    /// The rows of a `trajectory.csv` written before.
    fn read(dir: &Path) -> Result<Vec<[f64; 5]>, CliError> {
        let t = Table::read(&dir.join(Self::FILE))?;
        Ok(t.rows
            .iter()
            .map(|r| {
                let c = |i: usize| r.get(i).copied().flatten().unwrap_or(f64::NAN);
                [c(0), c(1), c(2), c(3), c(4)]
            })
            .collect())
    }
}

/// A run's status in words ("ran K iterations" for the iteration cap).
fn status_text(s: &Status) -> String {
    match s {
        Status::MaxIter => "ran K iterations".into(),
        other => other.describe(),
    }
}

pub(super) fn galet_sensitivity(
    args: &ReproduceArgs,
    out: &Folder,
) -> Result<(String, bool), CliError> {
    let iters: u64 = if args.smoke || args.quick { 10 } else { 30 };
    let start = [("x0", "2"), ("y1", "2"), ("y2", "2")];
    let mut rows = String::from(
        "| panel | setting | status | gap, final | gap, min (k) | first k with gap ≤ 0.1 | first k with gap ≤ 0.01 | x_K | y₁_K | Gc | MV |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let n_panels = GALET_PANELS.len();
    let mut traj: Vec<Vec<Series>> = vec![Vec::new(); n_panels];
    let mut gaps: Vec<Vec<Series>> = vec![Vec::new(); n_panels];
    for p in galet_grid() {
        let (panel, panel_title) = GALET_PANELS[p.panel];
        let dir = out.dir().join(panel).join(&p.tag);
        let mut sets: Vec<String> = start.iter().map(|(k, v)| format!("{k}={v}")).collect();
        sets.extend(p.sets.iter().cloned());
        let plan = Plan {
            seeds: "0",
            iters,
            metrics_every: Some(1),
            time_budget: None,
        };
        // The path comes from the run itself (an observer of its iterates); a finished run
        // reused by --redraw left it beside its traces.
        let path = Trajectory::default();
        let mut child = args.clone();
        child.redraw &= dir.join(Trajectory::FILE).is_file();
        let follow = path.clone();
        let observer: ObserverFactory = Arc::new(move |_| Box::new(follow.clone()));
        let mut ran = one_observed(
            &child,
            "galet-example1",
            "galet",
            &sets,
            plan,
            &dir,
            Some(observer.clone()),
        )?;
        if ran == Ran::Fresh && path.starts_late() {
            // A resumed run showed only its end: run the whole path again.
            *path.0.lock().expect("trajectory") = Vec::new();
            child.redraw = false;
            ran = one_observed(
                &child,
                "galet-example1",
                "galet",
                &sets,
                plan,
                &dir,
                Some(observer),
            )?;
        }
        match ran {
            Ran::Stopped => return Ok((String::new(), true)),
            Ran::Fresh => path.write(out, &format!("{panel}/{}/{}", p.tag, Trajectory::FILE))?,
            Ran::Reused => {}
        }
        let its: Vec<(Vec<f64>, Vec<f64>)> = Trajectory::read(&dir)?
            .iter()
            .map(|[_, x, y1, y2, _]| (vec![*x], vec![*y1, *y2]))
            .collect();
        let status = crate::cli::summary::seed_status(&dir, 0).unwrap_or(Status::MaxIter);
        let t = trace_table(&dir, 0)?;
        let g = t.pairs("iter", "opt_gap");
        let first = |thr: f64| {
            g.iter()
                .find(|q| q.1 <= thr)
                .map_or("–".to_string(), |q| format!("{}", q.0))
        };
        let (kmin, gmin) =
            g.iter().copied().fold(
                (f64::NAN, f64::INFINITY),
                |a, q| if q.1 < a.1 { q } else { a },
            );
        let (xk, yk) = its
            .last()
            .ok_or_else(|| CliError::new(format!("{}: no iterates", dir.display())))?;
        let label = if p.default {
            format!("{} (default)", p.label)
        } else {
            p.label.clone()
        };
        rows += &format!(
            "| {panel_title} | {label} | {} | {} | {} ({kmin}) | {} | {} | {} | {} | {} | {} |\n",
            status_text(&status),
            fmt(g.last().map_or(f64::NAN, |q| q.1)),
            fmt(gmin),
            first(0.1),
            first(0.01),
            fmt(xk[0]),
            fmt(yk[0]),
            t.last("gc").unwrap_or(f64::NAN),
            t.last("mv").unwrap_or(f64::NAN),
        );
        // Plots: the path in the (x, y₁) plane, as in Figure 4, and the gap against k; a
        // diverging path is cut where it leaves the frame.
        let path = Series {
            name: label.clone(),
            x: its.iter().map(|(x, _)| x[0]).collect(),
            y: its.iter().map(|(_, y)| y[0]).collect(),
            ..Series::default()
        };
        let (mut path, left) = cut(path, |x, y| {
            (-3.0..=5.0).contains(&x) && (-3.0..=5.0).contains(&y)
        });
        if left {
            path.name += " (leaves the frame)";
        }
        traj[p.panel].push(path);
        let gs = Series {
            name: label,
            x: g.iter().map(|q| q.0).collect(),
            y: g.iter().map(|q| q.1).collect(),
            ..Series::default()
        };
        let (mut gs, cutoff) = cut(gs, |_, v| v <= 1e3);
        if cutoff {
            gs.name += " (gap > 1000 after this)";
        }
        gaps[p.panel].push(gs);
    }
    let mut plots = Vec::new();
    for (i, (panel, title)) in GALET_PANELS.iter().enumerate() {
        let mut s = traj[i].clone();
        s.push(Series {
            name: "optimal set: x = 0.5".into(),
            x: vec![0.5, 0.5],
            y: vec![-1.5, 0.5],
            ..Series::default()
        });
        let p = out.file(&format!("path_{panel}.svg"))?;
        draw_at(
            &p,
            &format!("GALET on Example 1 from (2, 2, 2), {title}: path"),
            "x",
            "y₁",
            &s,
            false,
            LegendAt::UpperLeft,
        )?;
        plots.push(p);
        let p = out.file(&format!("gap_{panel}.svg"))?;
        draw_at(
            &p,
            &format!("GALET on Example 1, {title}: optimality gap (46)"),
            "iteration",
            "optimality gap",
            &gaps[i],
            true,
            LegendAt::LowerLeft,
        )?;
        plots.push(p);
    }
    let text = format!(
        "# reproduce galet-sensitivity: GALET's parameter sensitivity on Example 1\n\n\
         Appendix G and Figure 4 of {GALET_PAPER}: one level's parameters varied at a time from \
         the defaults α = 0.3, β = 1, N = 1, γ = 0.1, T = 1; K = {iters} iterations from \
         (x, y₁, y₂) = (2, 2, 2) (the paper does not state its start). γ is the \
         shadow-implicit-gradient step (`rho` here); `w` is carried over between iterations \
         except in the last panel, which restarts it from 0 as Algorithm 1 is printed. The gap \
         is eq. (46), ‖x − 0.5‖² + ‖0.5 + y₁ − sin y₂‖²; `trajectory.csv` in each folder holds \
         the iterates.\n\n{rows}\n\
         Published (App. G, Figure 4, figures only): all combinations of T and γ give almost the \
         same trajectory; N and β matter little unless β is too large (β = 3 diverges) or too \
         small (β = 0.1 converges slowly); α matters most: α = 0.1, 0.3 and 0.5 converge, and \
         α = 0.5 moves x first.\n\nPlots: {}\n",
        list_paths(&plots)
    );
    Ok((text, false))
}

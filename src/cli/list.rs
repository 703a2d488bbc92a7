//! `bilevel list`: every problem with its parameters and constants, every solver with its
//! parameters, defaults and step-size rules, and every reproduction.

use super::{registry, reproduce, solvers, text};
use std::collections::BTreeMap;

/// The text of `bilevel list`.
pub fn list_text() -> String {
    let mut s = String::from(
        "PROBLEMS (--problem NAME, --set KEY=VALUE; `constants` are the smoothness bounds a \
         problem states)\n",
    );
    for p in registry::PROBLEMS {
        s += &format!("  {:<18} {}\n", p.name, p.about);
        for q in p.params {
            s += &format!("      {:<12} = {:<8} {}\n", q.key, q.default, q.help);
        }
        let c = registry::problem_params(p, &BTreeMap::new())
            .and_then(|m| registry::problem_smoothness(p.name, &m, &[0]));
        if let Ok(Some(c)) = c {
            s += &format!("      constants (seed 0): {}\n", text::constants_text(&c));
        }
    }
    s += "\nSOLVERS (--solver NAME, --set KEY=VALUE; dotted keys reach nested fields)\n\
          A key marked `from the problem` takes the value of its rule instead of the number \
          shown when the problem states the constants the rule needs and the key is not set; \
          --library-defaults keeps the numbers shown.\n";
    for sv in solvers::registry::SOLVERS {
        s += &format!("  {:<18} {}\n", sv.name, sv.summary);
        let d = sv.defaults();
        let rules = d.rules();
        for (k, v) in solvers::registry::flatten(&d.to_json()) {
            if k == "batch" && v.is_null() {
                for (bk, help) in solvers::registry::BATCH_KEYS {
                    let def = if bk == "batch" { "none" } else { "" };
                    s += &format!("      {bk:<22} = {def:<6} {help}\n");
                }
                continue;
            }
            s += &format!("      {k:<22} = {v}\n");
            if let Some((_, text)) = rules.iter().find(|(key, _)| *key == k) {
                s += &format!("          from the problem: {text}\n");
            }
        }
    }
    s += "\nREPRODUCTIONS (bilevel reproduce ID; `quick` is the short check)\n";
    for e in reproduce::EXPERIMENTS {
        s += &format!("  {:<22} {}\n", e.id, e.summary);
    }
    s
}

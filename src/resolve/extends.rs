//! `extends`: each job is its parents deep-merged in order (each parent fully resolved
//! first), then its own keys on top. Lists are replaced, mappings merged.

use std::collections::HashMap;

use crate::load::key_error::KeyError;
use crate::load::merge::deep_merge;
use crate::load::yaml::{self, Mapping, Value};

/// GitLab's limit on extends inheritance depth.
pub const MAX_DEPTH: usize = 11;

/// Resolve `extends` for every job (hidden ones too) whose value is a mapping;
/// `is_job_key` says which top-level keys are jobs.
pub fn resolve(config: &mut Mapping, is_job_key: impl Fn(&str) -> bool) -> Result<(), KeyError> {
    let original = config.clone();
    let mut done: HashMap<String, (Mapping, usize)> = HashMap::new();
    for (k, v) in config.iter_mut() {
        let Some(name) = k.as_str() else { continue };
        if !is_job_key(name) {
            continue;
        }
        if let Value::Mapping(m) = v {
            if m.contains_key("extends") {
                let mut chain = Vec::new();
                *m = resolve_one(name, &original, &mut done, &mut chain)?.0;
            }
        }
    }
    Ok(())
}

fn resolve_one(
    name: &str,
    config: &Mapping,
    done: &mut HashMap<String, (Mapping, usize)>,
    chain: &mut Vec<String>,
) -> Result<(Mapping, usize), KeyError> {
    if let Some(m) = done.get(name) {
        return Ok(m.clone());
    }
    let top = chain.first().cloned().unwrap_or_else(|| name.to_owned());
    if chain.iter().any(|c| c == name) {
        let mut shown = chain.clone();
        shown.push(name.to_owned());
        return Err(KeyError::new(
            &top,
            format!("job \"{top}\": extends cycle {}", shown.join(" -> ")),
        ));
    }
    if chain.len() > MAX_DEPTH {
        return Err(KeyError::new(
            &top,
            format!("job \"{top}\": extends nesting is deeper than the {MAX_DEPTH} levels GitLab allows"),
        ));
    }
    let job = match config.get(name) {
        Some(Value::Mapping(m)) => m,
        Some(other) => {
            return Err(KeyError::new(
                &top,
                format!(
                    "job \"{top}\": extends \"{name}\", which is {} instead of a mapping",
                    yaml::type_name(other)
                ),
            ))
        }
        None => {
            let via = if chain.len() > 1 {
                format!(" (via {})", chain.join(" -> "))
            } else {
                String::new()
            };
            let from = chain.last().cloned().unwrap_or_default();
            return Err(KeyError::new(
                &top,
                format!("job \"{from}\": extends unknown job \"{name}\"{via}"),
            ));
        }
    };
    let parents: Vec<String> = match job.get("extends") {
        None | Some(Value::Null) => vec![],
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Sequence(s)) => s
            .iter()
            .map(|p| {
                p.as_str().map(str::to_owned).ok_or_else(|| {
                    KeyError::new(
                        &top,
                        format!("job \"{name}\": extends must be a string or a list of strings"),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(KeyError::new(
                &top,
                format!("job \"{name}\": extends must be a string or a list of strings"),
            ))
        }
    };
    chain.push(name.to_owned());
    let mut acc = Mapping::new();
    // height: how many extends levels sit below this job (memoised parents keep theirs)
    let mut height = 0;
    for parent in &parents {
        let (resolved, h) = resolve_one(parent, config, done, chain)?;
        height = height.max(h + 1);
        deep_merge(&mut acc, resolved);
    }
    chain.pop();
    if height > MAX_DEPTH {
        return Err(KeyError::new(
            &top,
            format!("job \"{top}\": extends nesting is deeper than the {MAX_DEPTH} levels GitLab allows"),
        ));
    }
    let mut own = job.clone();
    own.shift_remove("extends");
    deep_merge(&mut acc, own);
    done.insert(name.to_owned(), (acc.clone(), height));
    Ok((acc, height))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> Result<Mapping, KeyError> {
        let mut m: Mapping = serde_yaml::from_str(text).unwrap();
        resolve(&mut m, |k| k != "variables")?;
        Ok(m)
    }

    #[test]
    fn multi_level_list_deep_merge_arrays_replaced() {
        let m = run(
            ".base: {image: a, variables: {A: 1, B: 1}, script: [base], tags: [x, y]}\n\
             .mid: {extends: .base, variables: {B: 2}, tags: [z]}\n\
             .other: {script: [other], before_script: [b]}\n\
             job: {extends: [.mid, .other], variables: {C: 3}}\n",
        )
        .unwrap();
        let want: Mapping = serde_yaml::from_str(
            "{image: a, variables: {A: 1, B: 2, C: 3}, script: [other], tags: [z], before_script: [b]}",
        )
        .unwrap();
        assert_eq!(m["job"], Value::Mapping(want));
        assert!(m["job"].get("extends").is_none());
    }

    #[test]
    fn cycle_and_missing_parent() {
        let e = run("a: {extends: b, script: x}\nb: {extends: a}\n").unwrap_err();
        assert_eq!(e.message, "job \"a\": extends cycle a -> b -> a");
        let e = run("a: {extends: [.x], script: x}\n").unwrap_err();
        assert_eq!(e.message, "job \"a\": extends unknown job \".x\"");
        let e = run("a: {extends: b}\nb: {extends: .gone}\n").unwrap_err();
        assert_eq!(e.key, "a");
        assert!(
            e.message.contains("\".gone\" (via a -> b)"),
            "{}",
            e.message
        );
    }

    #[test]
    fn depth_limit() {
        let chain = |n: usize| {
            let mut text = String::from(".j0: {script: x}\n");
            for i in 1..=n {
                text.push_str(&format!(".j{i}: {{extends: .j{}}}\n", i - 1));
            }
            format!("{text}job: {{extends: .j{n}}}\n")
        };
        // job -> .j10 -> ... -> .j0 is 11 levels: allowed
        assert!(run(&chain(10)).is_ok());
        let e = run(&chain(11)).unwrap_err();
        assert!(e.message.contains("deeper than"), "{}", e.message);
    }
}

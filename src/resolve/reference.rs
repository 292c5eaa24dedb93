//! `!reference [key, sub, ...]` resolution over the merged configuration.
//!
//! Runs twice: a lenient pass before `extends` (targets not found yet, or in a job that
//! still has `extends`, are left tagged, so
//! a referenced mapping can still be deep-merged by `extends`, as gitlab-ci-local's
//! `reference` cases expect) and a strict pass after it (targets produced by `extends`). Nested arrays produced by a reference are left nested here; the
//! keywords that accept them (`script`, `rules`...) flatten them when the job is built.

use crate::load::key_error::KeyError;
use crate::load::yaml::{self, Mapping, Value};

/// GitLab allows up to 10 levels of nested `!reference`.
pub const MAX_DEPTH: usize = 10;
/// Bound the total work so pathological fan-out cannot hang the loader.
const MAX_STEPS: usize = 2_000_000;

/// Resolve every `!reference` in the configuration; other custom tags are dropped
/// (their value kept), as they have no meaning to GitLab.
pub fn resolve_all(config: &Mapping) -> Result<Mapping, KeyError> {
    resolve_with(config, false)
}

/// Like `resolve_all`, but references whose target does not exist (yet) are kept as-is.
pub fn resolve_found(config: &Mapping) -> Result<Mapping, KeyError> {
    resolve_with(config, true)
}

fn resolve_with(config: &Mapping, lenient: bool) -> Result<Mapping, KeyError> {
    let mut out = Mapping::new();
    let mut steps = 0;
    for (k, v) in config {
        let key = yaml::scalar_string(k).unwrap_or_default();
        let mut r = Resolver {
            root: config,
            stack: Vec::new(),
            steps: &mut steps,
            lenient,
        };
        let value = r
            .resolve(v, 0)
            .map_err(|message| KeyError::new(key.clone(), message))?;
        out.insert(k.clone(), value);
    }
    Ok(out)
}

struct Resolver<'a> {
    root: &'a Mapping,
    stack: Vec<String>,
    steps: &'a mut usize,
    lenient: bool,
}

impl Resolver<'_> {
    fn resolve(&mut self, value: &Value, depth: usize) -> Result<Value, String> {
        *self.steps += 1;
        if *self.steps > MAX_STEPS {
            return Err("!reference expansion is too large".into());
        }
        if let Some(path) = yaml::as_reference(value) {
            return match self.follow(path, depth)? {
                Some(v) => Ok(v),
                None => Ok(value.clone()),
            };
        }
        Ok(match value {
            Value::Sequence(seq) => Value::Sequence(
                seq.iter()
                    .map(|v| self.resolve(v, depth))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Mapping(map) => {
                let mut out = Mapping::new();
                for (k, v) in map {
                    out.insert(k.clone(), self.resolve(v, depth)?);
                }
                Value::Mapping(out)
            }
            Value::Tagged(t) => self.resolve(&t.value, depth)?,
            other => other.clone(),
        })
    }

    /// `Ok(None)`: not found in lenient mode.
    fn follow(&mut self, path: &Value, depth: usize) -> Result<Option<Value>, String> {
        let keys: Vec<String> = match path {
            Value::Sequence(s) if !s.is_empty() => s
                .iter()
                .map(|k| match k {
                    Value::String(_) | Value::Number(_) => {
                        Ok(yaml::scalar_string(k).unwrap_or_default())
                    }
                    _ => Err("!reference must be a list of keys".to_string()),
                })
                .collect::<Result<_, _>>()?,
            _ => return Err("!reference must be a non-empty list of keys".into()),
        };
        let shown = format!("[{}]", keys.join(","));
        if self.stack.contains(&shown) {
            return Err(format!("!reference circular chain detected {shown}"));
        }
        if depth >= MAX_DEPTH {
            return Err(format!(
                "!reference {shown}: references are nested more than {MAX_DEPTH} levels deep"
            ));
        }
        let mut node: Option<&Value> = self.root.get(keys[0].as_str());
        // a target that still has `extends` will change: resolve it after `extends`
        if self.lenient && node.is_some_and(|n| n.get("extends").is_some()) {
            return Ok(None);
        }
        for key in &keys[1..] {
            node = match node {
                Some(Value::Mapping(m)) => m.get(key.as_str()),
                Some(Value::Sequence(s)) => key.parse::<usize>().ok().and_then(|i| s.get(i)),
                _ => None,
            };
        }
        let Some(node) = node else {
            if self.lenient {
                return Ok(None);
            }
            return Err(format!("!reference {shown} could not be found"));
        };
        self.stack.push(shown);
        let out = self.resolve(node, depth + 1);
        self.stack.pop();
        out.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> Result<Mapping, KeyError> {
        let doc = yaml::parse_ci(text, std::path::Path::new("t.yml")).unwrap();
        resolve_all(doc.config.as_mapping().unwrap())
    }

    #[test]
    fn resolves_nested_and_indexed_references() {
        let out = run(
            ".a: {script: [one, two], img: {name: x}}\n\
             .b: {script: [!reference [.a, script], three]}\n\
             job:\n  script: [!reference [.b, script], four]\n  image: !reference [.a, img, name]\n  first: !reference [.a, script, 0]\n",
        )
        .unwrap();
        let job = &out["job"];
        let want: Value = serde_yaml::from_str("[[[one, two], three], four]").unwrap();
        assert_eq!(job["script"], want);
        assert_eq!(job["image"], Value::from("x"));
        assert_eq!(job["first"], Value::from("one"));
    }

    #[test]
    fn lenient_pass_keeps_unknown_targets() {
        let out = resolve_found(
            &serde_yaml::from_str(
                ".a: {v: {A: 1}}\nj: {v: !reference [.a, v], w: !reference [.b, w]}",
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(out["j"]["v"]["A"], Value::from(1));
        assert!(yaml::as_reference(&out["j"]["w"]).is_some());
        let out = resolve_found(
            &serde_yaml::from_str(
                ".p: {v: {A: 1}}\n.c: {extends: .p, v: {B: 2}}\nj: {v: !reference [.c, v]}",
            )
            .unwrap(),
        )
        .unwrap();
        assert!(
            yaml::as_reference(&out["j"]["v"]).is_some(),
            "deferred until after extends"
        );
    }

    #[test]
    fn circular_chain_is_an_error() {
        let e = run("test-job:\n  script: [!reference [test-job, script]]\n").unwrap_err();
        assert_eq!(e.key, "test-job");
        assert_eq!(
            e.message,
            "!reference circular chain detected [test-job,script]"
        );
        let e = run(".a: {x: !reference [.b, x]}\n.b: {x: !reference [.a, x]}\n").unwrap_err();
        assert!(e.message.contains("circular chain"), "{}", e.message);
    }

    #[test]
    fn missing_target_and_depth_limit() {
        let e = run("job: {script: !reference [.nope, script]}\n").unwrap_err();
        assert_eq!(e.message, "!reference [.nope,script] could not be found");
        let chain = |n: usize| {
            let mut text = String::from(".l0: {s: end}\n");
            for i in 1..=n {
                text.push_str(&format!(".l{i}: {{s: !reference [.l{}, s]}}\n", i - 1));
            }
            format!("{text}job: {{s: !reference [.l{n}, s]}}\n")
        };
        // job -> .l9 -> ... -> .l0: 10 references
        assert_eq!(run(&chain(9)).unwrap()["job"]["s"], Value::from("end"));
        let e = run(&chain(10)).unwrap_err();
        assert!(e.message.contains("nested more than 10"), "{}", e.message);
    }
}

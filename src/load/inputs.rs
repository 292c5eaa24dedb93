//! `spec: inputs` headers: input validation (type, options, regex) and `$[[ inputs.NAME ]]`
//! interpolation, with GitLab's wording for errors. Interpolation functions
//! (`| expand_vars`, `| truncate`) are not supported and say so.

use crate::load::yaml::{self, Mapping, Value};

/// Apply the header's input defaults and the include's `inputs` to `config`.
#[cfg(test)]
fn interpolate(header: &Value, given: Option<&Mapping>, config: Value) -> Result<Value, String> {
    interpolate_with(header, given, config, &Mapping::new())
}

/// Apply the header's input defaults and the include's `inputs` to `config`, with extra
/// interpolation contexts besides `inputs` (e.g. `component` for `$[[ component.name ]]`),
/// given as `context name -> mapping`.
pub fn interpolate_with(
    header: &Value,
    given: Option<&Mapping>,
    config: Value,
    contexts: &Mapping,
) -> Result<Value, String> {
    let declared = match header.get("spec").and_then(|s| s.get("inputs")) {
        Some(Value::Mapping(m)) => m.clone(),
        None | Some(Value::Null) => Mapping::new(),
        Some(_) => return Err("header:spec:inputs config must be a hash".into()),
    };
    if let Some(given) = given {
        for name in given.keys() {
            if !declared.contains_key(name) {
                return Err(format!(
                    "unknown input name provided: `{}`",
                    yaml::scalar_string(name).unwrap_or_default()
                ));
            }
        }
    }
    let mut values = Mapping::new();
    for (name, spec) in &declared {
        let label = yaml::scalar_string(name).unwrap_or_default();
        let value = given
            .and_then(|g| g.get(name))
            .or_else(|| spec.get("default"))
            .cloned();
        let Some(value) = value else {
            return Err(format!(
                "`{label}` input: required value has not been provided"
            ));
        };
        validate(&label, spec, &value)?;
        values.insert(name.clone(), value);
    }
    let mut ctx = contexts.clone();
    ctx.insert(Value::from("inputs"), Value::Mapping(values));
    walk(config, &ctx, 0)
}

/// Check one input against its spec (`type`, `options`, `regex`).
fn validate(name: &str, spec: &Value, value: &Value) -> Result<(), String> {
    let ty = match spec.get("type") {
        None | Some(Value::Null) => "string".to_owned(),
        Some(t) => yaml::scalar_string(t).unwrap_or_default(),
    };
    let ok = match ty.as_str() {
        "string" => matches!(value, Value::String(_)),
        "number" => matches!(value, Value::Number(_)),
        "boolean" => matches!(value, Value::Bool(_)),
        "array" => matches!(value, Value::Sequence(_)),
        other => {
            return Err(format!(
                "header:spec:inputs:{name} input type unknown value: {other}"
            ))
        }
    };
    if !ok {
        return Err(format!("`{name}` input: provided value is not a {ty}"));
    }
    if let Some(Value::Sequence(options)) = spec.get("options") {
        let items: Vec<&Value> = match value {
            Value::Sequence(s) => s.iter().collect(),
            other => vec![other],
        };
        for item in items {
            if !options.contains(item) {
                return Err(format!(
                    "`{name}` input: `{}` cannot be used because it is not in the list of allowed options",
                    show(item)
                ));
            }
        }
    }
    if let Some(re) = spec.get("regex").and_then(yaml::scalar_string) {
        // GitLab accepts `/re/` as well as a bare pattern.
        let pattern = re
            .strip_prefix('/')
            .and_then(|r| r.strip_suffix('/'))
            .unwrap_or(&re);
        let compiled = regex::Regex::new(pattern)
            .map_err(|_| format!("regex `{re}` is not a valid regular expression"))?;
        if let Value::String(s) = value {
            if !compiled.is_match(s) {
                return Err(format!(
                    "`{name}` input: `{s}` does not match required regex: {re}"
                ));
            }
        }
    }
    Ok(())
}

fn show(value: &Value) -> String {
    yaml::scalar_string(value).unwrap_or_else(|| serde_json::to_string(value).unwrap_or_default())
}

fn walk(value: Value, inputs: &Mapping, depth: usize) -> Result<Value, String> {
    if depth > 256 {
        return Err("configuration nesting is too deep".into());
    }
    Ok(match value {
        Value::String(s) if s.contains("$[[") => replace(&s, inputs)?,
        Value::Sequence(seq) => Value::Sequence(
            seq.into_iter()
                .map(|v| walk(v, inputs, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Value::Mapping(map) => {
            let mut out = Mapping::new();
            for (k, v) in map {
                let k = walk(k, inputs, depth + 1)?;
                out.insert(k, walk(v, inputs, depth + 1)?);
            }
            Value::Mapping(out)
        }
        Value::Tagged(mut t) => {
            t.value = walk(t.value, inputs, depth + 1)?;
            Value::Tagged(t)
        }
        other => other,
    })
}

/// A string that is exactly one interpolation keeps the input's type (arrays, numbers);
/// otherwise inputs are spliced in as text.
fn replace(s: &str, inputs: &Mapping) -> Result<Value, String> {
    let mut out = String::new();
    let mut rest = s;
    let mut whole: Option<Value> = None;
    while let Some(start) = rest.find("$[[") {
        let end = rest[start..]
            .find("]]")
            .ok_or_else(|| format!("unterminated interpolation block in `{s}`"))?
            + start;
        let inner = rest[start + 3..end].trim();
        let mut parts = inner.split('|').map(str::trim);
        let key = parts.next().unwrap_or_default();
        let functions: Vec<&str> = parts.collect();
        // GitLab allows at most 3 functions per block.
        if functions.len() > 3 {
            return Err("too many functions in interpolation block".into());
        }
        let value = lookup(inputs, key).ok_or_else(|| {
            format!(
                "unknown interpolation key: `{}`",
                key.trim_start_matches("inputs.")
            )
        })?;
        let value = &apply_functions(value.clone(), &functions)?;
        if start == 0 && end + 2 == rest.len() && out.is_empty() {
            whole = Some(value.clone());
        }
        out.push_str(&rest[..start]);
        out.push_str(
            &yaml::scalar_string(value)
                .unwrap_or_else(|| serde_json::to_string(value).unwrap_or_default()),
        );
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    Ok(whole.unwrap_or(Value::String(out)))
}

/// `inputs.name` / `component.version`: a context, then a key inside it.
fn lookup<'a>(contexts: &'a Mapping, key: &str) -> Option<&'a Value> {
    let (context, name) = key.split_once('.')?;
    contexts.get(context)?.get(name.trim())
}

/// The functions GitLab offers that need nothing from the pipeline: `truncate(offset,len)`
/// and `posix_escape`. `expand_vars` needs CI variables, which do not exist while loading.
fn apply_functions(mut value: Value, functions: &[&str]) -> Result<Value, String> {
    for f in functions {
        let text = show(&value);
        value = if let Some(args) = f
            .strip_prefix("truncate(")
            .and_then(|a| a.strip_suffix(')'))
        {
            let nums: Vec<usize> = args
                .split(',')
                .map(|n| n.trim().parse::<usize>())
                .collect::<Result<_, _>>()
                .map_err(|_| format!("invalid arguments for function `{f}`"))?;
            let [offset, len] = nums[..] else {
                return Err(format!("invalid arguments for function `{f}`"));
            };
            Value::String(text.chars().skip(offset).take(len).collect())
        } else if *f == "posix_escape" {
            let mut out = String::new();
            for c in text.chars() {
                if !(c.is_ascii_alphanumeric() || "_-./,:@%+=".contains(c)) {
                    out.push('\\');
                }
                out.push(c);
            }
            Value::String(out)
        } else {
            return Err(format!(
                "interpolation function `{f}` is not supported by cijob"
            ));
        };
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_overrides_and_types() {
        let header: Value = serde_yaml::from_str(
            "spec: {inputs: {a: {default: x}, n: {type: number, default: 1}, l: {type: array, default: [p, q]}}}",
        )
        .unwrap();
        let given: Mapping = serde_yaml::from_str("a: given").unwrap();
        let config: Value = serde_yaml::from_str(
            "j: {script: ['echo $[[ inputs.a ]]-$[[inputs.n]]', '$[[ inputs.l ]]']}",
        )
        .unwrap();
        let out = interpolate(&header, Some(&given), config).unwrap();
        assert_eq!(out["j"]["script"][0], Value::from("echo given-1"));
        assert_eq!(out["j"]["script"][1][1], Value::from("q"));
        let missing: Value = serde_yaml::from_str("spec: {inputs: {req: {}}}").unwrap();
        assert!(interpolate(&missing, None, Value::Null).is_err());
    }
}

#[cfg(test)]
mod validation_tests {
    use super::*;

    fn run(spec: &str, given: &str) -> Result<Value, String> {
        let header: Value = serde_yaml::from_str(&format!("spec: {{inputs: {spec}}}")).unwrap();
        let given: Mapping = serde_yaml::from_str(given).unwrap();
        let config: Value = serde_yaml::from_str("j: {script: '$[[ inputs.x ]]'}").unwrap();
        interpolate(&header, Some(&given), config).map(|v| v["j"]["script"].clone())
    }

    #[test]
    fn gitlab_messages_for_bad_inputs() {
        assert_eq!(
            run("{x: {}}", "{}").unwrap_err(),
            "`x` input: required value has not been provided"
        );
        assert_eq!(
            run("{x: {}}", "{x: 1}").unwrap_err(),
            "`x` input: provided value is not a string"
        );
        assert_eq!(
            run("{x: {type: boolean}}", "{x: 'true'}").unwrap_err(),
            "`x` input: provided value is not a boolean"
        );
        assert_eq!(
            run("{x: {type: foo}}", "{x: 1}").unwrap_err(),
            "header:spec:inputs:x input type unknown value: foo"
        );
        assert_eq!(
            run("{x: {options: [a, b]}}", "{x: fizz}").unwrap_err(),
            "`x` input: `fizz` cannot be used because it is not in the list of allowed options"
        );
        assert_eq!(
            run("{x: {type: array, options: [a, b]}}", "{x: [a, fizz]}").unwrap_err(),
            "`x` input: `fizz` cannot be used because it is not in the list of allowed options"
        );
        assert_eq!(
            run("{x: {regex: '^v\\d+$'}}", "{x: nope}").unwrap_err(),
            "`x` input: `nope` does not match required regex: ^v\\d+$"
        );
        assert_eq!(
            run("{x: {regex: '^[unclosed'}}", "{x: a}").unwrap_err(),
            "regex `^[unclosed` is not a valid regular expression"
        );
        assert_eq!(
            run("{x: {}}", "{y: 1}").unwrap_err(),
            "unknown input name provided: `y`"
        );
        assert_eq!(
            run("{x: {regex: '^v\\d+$'}}", "{x: v1}").unwrap(),
            Value::from("v1")
        );
        assert_eq!(
            run("{x: {type: number, default: 3}}", "{}").unwrap(),
            Value::from(3)
        );
    }

    #[test]
    fn contexts_and_functions() {
        let header: Value = serde_yaml::from_str("spec: {inputs: {x: {default: abcdef}}}").unwrap();
        let config: Value = serde_yaml::from_str(
            "j: {script: ['$[[ inputs.x | truncate(1,3) ]]', '$[[ component.name ]]@$[[ component.version ]]']}",
        )
        .unwrap();
        let ctx: Mapping = serde_yaml::from_str("component: {name: c, version: 1.0}").unwrap();
        let out = interpolate_with(&header, None, config, &ctx).unwrap();
        assert_eq!(out["j"]["script"][0], Value::from("bcd"));
        assert_eq!(out["j"]["script"][1], Value::from("c@1.0"));
        let config: Value = serde_yaml::from_str("j: '$[[ inputs.x | a | b | c | d ]]'").unwrap();
        assert_eq!(
            interpolate(&header, None, config).unwrap_err(),
            "too many functions in interpolation block"
        );
    }
}

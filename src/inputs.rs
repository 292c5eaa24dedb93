//! `spec: inputs` headers: defaults and `$[[ inputs.NAME ]]` interpolation (the common
//! subset: no interpolation functions, no type/options/regex validation).

use crate::yaml::{self, Mapping, Value};

/// Apply the header's input defaults and the include's `inputs` to `config`.
pub fn interpolate(
    header: &Value,
    given: Option<&Mapping>,
    config: Value,
) -> Result<Value, String> {
    let declared = match header.get("spec").and_then(|s| s.get("inputs")) {
        Some(Value::Mapping(m)) => m.clone(),
        _ => Mapping::new(),
    };
    let mut values = Mapping::new();
    for (name, spec) in &declared {
        let value = given
            .and_then(|g| g.get(name))
            .or_else(|| spec.get("default"))
            .cloned();
        match value {
            Some(v) => {
                values.insert(name.clone(), v);
            }
            None => {
                return Err(format!(
                    "`{}` input: required value has not been provided",
                    yaml::scalar_string(name).unwrap_or_default()
                ))
            }
        }
    }
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
    walk(config, &values, 0)
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
        let name = inner
            .strip_prefix("inputs.")
            .ok_or_else(|| format!("unknown interpolation key: `{inner}`"))?
            .trim();
        if name.contains('|') {
            return Err(format!(
                "interpolation functions are not supported: `{inner}`"
            ));
        }
        let value = inputs
            .get(name)
            .ok_or_else(|| format!("unknown interpolation key: `{name}`"))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_overrides_and_types() {
        let header: Value = serde_yaml::from_str(
            "spec: {inputs: {a: {default: x}, n: {default: 1}, l: {default: [p, q]}}}",
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

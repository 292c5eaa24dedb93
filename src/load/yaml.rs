//! All YAML handling lives here so that swapping the YAML crate stays local.

pub use serde_yaml::{Mapping, Value};

use crate::error::ConfigError;
use serde::Deserialize;
use std::path::Path;

/// A CI file split into its optional `spec:` header and the configuration document.
#[derive(Debug, Clone, PartialEq)]
pub struct CiDocument {
    /// The `spec:` header document, when the file has one.
    pub header: Option<Value>,
    /// The configuration (null for an empty file).
    pub config: Value,
}

/// Parse a CI file: every document, with `<<` merges applied (nested merges and lists of
/// merges too). A file whose first document holds `spec:` and which has a second document
/// is a header + config pair (GitLab's `spec: inputs` form); otherwise the first document
/// is the config, as GitLab ignores a stray trailing `---`.
pub fn parse_ci(text: &str, file: &Path) -> Result<CiDocument, ConfigError> {
    check_flow_depth(text, file)?;
    let mut docs = Vec::new();
    for de in serde_yaml::Deserializer::from_str(text) {
        let value = Raw::deserialize(de).map_err(|e| located(&e, file, text))?;
        docs.push(merge_keys(value, 0).map_err(|m| ConfigError::new(m).in_file(file))?);
        if docs.len() > 2 {
            break;
        }
    }
    let mut docs = docs.into_iter();
    let first = docs.next().unwrap_or(Value::Null);
    let is_header = matches!(&first, Value::Mapping(m) if m.contains_key("spec"));
    match (is_header, docs.next()) {
        (true, Some(second)) => Ok(CiDocument {
            header: Some(first),
            config: second,
        }),
        _ => Ok(CiDocument {
            header: None,
            config: first,
        }),
    }
}

/// A parsed node that still holds duplicate keys and unexpanded `<<` entries, so that
/// duplicates and merges can follow Ruby's Psych (what GitLab uses): entries apply in
/// document order and later ones win (a `<<` overrides keys set before it).
enum Raw {
    Scalar(Value),
    Seq(Vec<Raw>),
    Map(Vec<(Raw, Raw)>),
    Tagged(String, Box<Raw>),
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> serde::de::Visitor<'de> for RawVisitor {
    type Value = Raw;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Raw, E> {
        Ok(Raw::Scalar(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Raw, E> {
        Ok(Raw::Scalar(Value::from(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Raw, E> {
        Ok(Raw::Scalar(Value::from(v)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Raw, E> {
        Ok(Raw::Scalar(Value::from(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw::Scalar(Value::String(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Raw, E> {
        Ok(Raw::Scalar(Value::String(v)))
    }
    fn visit_unit<E>(self) -> Result<Raw, E> {
        Ok(Raw::Scalar(Value::Null))
    }
    fn visit_none<E>(self) -> Result<Raw, E> {
        Ok(Raw::Scalar(Value::Null))
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        Raw::deserialize(d)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Raw::Seq(out))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut out = Vec::new();
        while let Some((k, v)) = map.next_entry()? {
            out.push((k, v));
        }
        Ok(Raw::Map(out))
    }
    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<Raw, A::Error> {
        use serde::de::VariantAccess;
        let (tag, contents): (String, _) = data.variant()?;
        let value: Raw = contents.newtype_variant()?;
        Ok(Raw::Tagged(tag, Box::new(value)))
    }
}

/// Build the final tree: duplicate keys keep the last value, `<<` merges apply in place.
fn merge_keys(raw: Raw, depth: usize) -> Result<Value, String> {
    if depth > 256 {
        return Err("YAML nesting is too deep".into());
    }
    match raw {
        Raw::Scalar(v) => Ok(v),
        Raw::Seq(items) => Ok(Value::Sequence(
            items
                .into_iter()
                .map(|v| merge_keys(v, depth + 1))
                .collect::<Result<_, _>>()?,
        )),
        Raw::Tagged(tag, inner) => {
            let value = merge_keys(*inner, depth + 1)?;
            let tag = if tag.is_empty() { "!".to_owned() } else { tag };
            Ok(Value::Tagged(Box::new(serde_yaml::value::TaggedValue {
                tag: serde_yaml::value::Tag::new(tag),
                value,
            })))
        }
        Raw::Map(entries) => {
            let mut out = Mapping::new();
            for (k, v) in entries {
                let k = merge_keys(k, depth + 1)?;
                let v = merge_keys(v, depth + 1)?;
                if !is_merge_key(&k) {
                    out.insert(k, v);
                    continue;
                }
                let source = match v {
                    Value::Mapping(m) => m,
                    // earlier sources in a list win over later ones (Psych reverse merge)
                    Value::Sequence(seq) => {
                        let mut acc = Mapping::new();
                        for item in seq.into_iter().rev() {
                            match item {
                                Value::Mapping(m) => acc.extend(m),
                                Value::Null => {}
                                _ => return Err("merge key `<<` must refer to mappings".into()),
                            }
                        }
                        acc
                    }
                    Value::Null => Mapping::new(),
                    _ => return Err("merge key `<<` must refer to a mapping".into()),
                };
                out.extend(source);
            }
            Ok(Value::Mapping(out))
        }
    }
}

fn is_merge_key(k: &Value) -> bool {
    k.as_str() == Some("<<")
}

/// Render a value as YAML text.
pub fn to_string(value: &Value) -> String {
    serde_yaml::to_string(value).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
}

/// The `!reference [a, b]` path when `value` is such a tag.
pub fn as_reference(value: &Value) -> Option<&Value> {
    match value {
        Value::Tagged(t) if t.tag == "reference" => Some(&t.value),
        _ => None,
    }
}

/// A scalar as GitLab stringifies it (numbers and booleans become their text, null is "").
pub fn scalar_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

/// A short name for a value's type, for error messages.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// 1-based line of a top-level `key:` in the file's text (cheap scan, no YAML position
/// tracking). Handles plain, single- and double-quoted keys.
pub fn top_level_key_line(text: &str, key: &str) -> Option<usize> {
    let candidates = [
        format!("{key}:"),
        format!("\"{key}\":"),
        format!("'{key}':"),
        format!("? {key}"),
    ];
    text.lines()
        .position(|line| {
            candidates.iter().any(|c| {
                line.strip_prefix(c.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '#']))
            })
        })
        .map(|i| i + 1)
}

/// Every top-level key of a file with its 1-based line (the first definition wins), for
/// locating jobs in messages. Same recognition rules as `top_level_key_line`.
pub fn top_level_key_lines(text: &str) -> std::collections::HashMap<String, usize> {
    let mut out = std::collections::HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let Some(first) = line.chars().next() else {
            continue;
        };
        if first.is_whitespace() || matches!(first, '#' | '-') {
            continue;
        }
        let key = if let Some(rest) = line.strip_prefix("? ") {
            Some(rest.trim_end().to_string())
        } else if let Some(quote @ ('"' | '\'')) = line.chars().next() {
            line[1..]
                .find(quote)
                .map(|end| (&line[1..1 + end], &line[end + 2..]))
                .filter(|(_, rest)| rest.starts_with(':'))
                .filter(|(_, rest)| rest[1..].is_empty() || rest[1..].starts_with([' ', '\t', '#']))
                .map(|(k, _)| k.to_string())
        } else {
            // Keys may contain ':' (`test:unit`): the separator is a ':' followed by a blank.
            let bytes = line.as_bytes();
            (0..bytes.len())
                .find(|&j| {
                    bytes[j] == b':'
                        && (j + 1 == bytes.len() || matches!(bytes[j + 1], b' ' | b'\t' | b'#'))
                })
                .map(|j| line[..j].to_string())
        };
        if let Some(k) = key {
            out.entry(k).or_insert(i + 1);
        }
    }
    out
}

/// How deep `[`/`{` may nest before the parser is not even asked. The YAML scanner's cost
/// grows with the square of the flow nesting depth (100,000 nested `[` take minutes), while
/// the parser rejects anything deeper than 128 levels anyway, so this only bounds the time
/// spent before that error.
const MAX_FLOW_DEPTH: usize = 1000;

/// Refuse text whose brackets nest more than [`MAX_FLOW_DEPTH`] deep. Deliberately rough (it
/// ignores quoting): the count restarts at each line that starts in column 0 (a new
/// top-level entry ends any flow collection), so only a single top-level entry with more
/// than 1000 unclosed brackets, real or inside strings, is refused.
fn check_flow_depth(text: &str, file: &Path) -> Result<(), ConfigError> {
    let mut depth: usize = 0;
    for (index, line) in text.lines().enumerate() {
        if line.starts_with(|c: char| !c.is_whitespace() && !"[{]}".contains(c)) {
            depth = 0;
        }
        for c in line.chars() {
            match c {
                '[' | '{' => depth += 1,
                ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            }
            if depth > MAX_FLOW_DEPTH {
                return Err(ConfigError::new(format!(
                    "brackets are nested more than {MAX_FLOW_DEPTH} levels deep"
                ))
                .in_file(file)
                .at(index + 1, None));
            }
        }
    }
    Ok(())
}

fn located(e: &serde_yaml::Error, file: &Path, text: &str) -> ConfigError {
    // serde_yaml's wording for an alias bomb (anchors expanding to too many nodes).
    let message = match e.to_string() {
        m if m.starts_with("repetition limit exceeded") => {
            format!("{m} (aliases expand to too many nodes)")
        }
        m => m,
    };
    let mut err = ConfigError::new(message).in_file(file);
    if let Some(loc) = e.location() {
        err = err.at(loc.line(), Some(loc.column())).with_source(text);
    }
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Value {
        parse_ci(text, Path::new("t.yml")).expect("parses").config
    }

    #[test]
    fn flow_depth_is_bounded_per_top_level_entry() {
        let f = Path::new("x.yml");
        let deep = format!("a: {}{}\n", "[".repeat(1001), "]".repeat(1001));
        let e = check_flow_depth(&deep, f).unwrap_err();
        assert!(e.message.contains("nested more than 1000"), "{e}");
        // Unbalanced brackets in many top-level entries do not add up.
        let many: String = (0..2000).map(|i| format!("j{i}: \"[[\"\n")).collect();
        check_flow_depth(&many, f).unwrap();
    }

    #[test]
    fn merge_keys_explicit_wins_and_lists_merge_in_order() {
        let v = p("a: &a {x: 1, y: 1}\nb: &b {y: 2, z: 2}\nc:\n  <<: [*a, *b]\n  x: 9\n");
        assert_eq!(v["c"]["x"], Value::from(9));
        assert_eq!(v["c"]["y"], Value::from(1));
        assert_eq!(v["c"]["z"], Value::from(2));
    }

    #[test]
    fn duplicates_later_wins_like_psych() {
        // duplicate keys: the last one wins; a second `<<` merges too
        let v = p("a: &a {x: 1}\nb: &b {y: 2}\nv: {K: 1}\nv: {K: 2}\nc:\n  <<: *a\n  <<: *b\n");
        assert_eq!(v["v"]["K"], Value::from(2));
        assert_eq!(v["c"]["x"], Value::from(1));
        assert_eq!(v["c"]["y"], Value::from(2));
    }

    #[test]
    fn reference_tag_is_kept() {
        let v = p("j: {script: !reference [.a, script]}\n");
        let path = as_reference(&v["j"]["script"]).expect("tagged");
        assert_eq!(path[0], Value::from(".a"));
    }

    #[test]
    fn nested_merge_inside_anchor_is_expanded() {
        let v = p("a: &a {x: 1}\nb: &b\n  <<: *a\n  y: 2\nc:\n  <<: *b\n");
        assert_eq!(v["c"]["x"], Value::from(1));
        assert_eq!(v["c"]["y"], Value::from(2));
        assert!(v["c"].get("<<").is_none());
    }

    #[test]
    fn spec_header_selects_second_document() {
        let d = parse_ci(
            "spec:\n  inputs: {}\n---\njob: {script: x}\n",
            Path::new("t"),
        )
        .unwrap();
        assert!(d.header.is_some());
        assert!(d.config.get("job").is_some());
        let d = parse_ci("job: {script: x}\n---\n", Path::new("t")).unwrap();
        assert!(d.header.is_none());
    }

    #[test]
    fn syntax_error_is_located() {
        let e = parse_ci("a: 1\nb: [\n", Path::new("f.yml")).unwrap_err();
        assert_eq!(e.file.as_deref(), Some(Path::new("f.yml")));
        assert!(e.line.is_some());
    }

    #[test]
    fn alias_bomb_is_refused_not_expanded() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        assert!(parse_ci(&text, Path::new("bomb.yml")).is_err());
    }

    #[test]
    fn key_line_scan() {
        let text = "variables:\n  a: 1\n\"quoted job\":\n  script: x\ntest: # c\n";
        assert_eq!(top_level_key_line(text, "quoted job"), Some(3));
        assert_eq!(top_level_key_line(text, "test"), Some(5));
        assert_eq!(top_level_key_line(text, "a"), None);
        let all = top_level_key_lines(text);
        assert_eq!(all.get("quoted job"), Some(&3));
        assert_eq!(all.get("test"), Some(&5));
        assert_eq!(all.get("a"), None);
    }
}

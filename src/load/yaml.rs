//! All YAML handling lives here so that swapping the YAML crate stays local.

pub use serde_yaml::{Mapping, Value};

use crate::error::ConfigError;
use serde::de::DeserializeSeed;
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
        let seed = RawSeed { text, key: false };
        let value = seed.deserialize(de).map_err(|e| located(&e, file, text))?;
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

/// Reads one node of `text` as a `Raw`. It knows the text so that it can tell a plain scalar
/// from a quoted one: GitLab's parser (Psych, YAML 1.1) reads plain `yes`/`no`/`on`/`off` as
/// booleans, where YAML 1.2 (serde_yaml) keeps strings.
#[derive(Clone, Copy)]
struct RawSeed<'t> {
    text: &'t str,
    /// Mapping keys stay as written (`on:` remains a name).
    key: bool,
}

impl RawSeed<'_> {
    fn scalar(self, v: &str) -> Raw {
        match (self.key, psych_bool(self.text, v)) {
            (false, Some(b)) => Raw::Scalar(Value::Bool(b)),
            _ => Raw::Scalar(Value::String(v.to_owned())),
        }
    }
    fn value(self) -> Self {
        Self { key: false, ..self }
    }
}

/// What Psych makes of the plain scalar `v` (a slice of `text`) when it is a boolean in any
/// case (`yes`, `No`, `ON`, `tRue`...). `None` for anything else, and for a scalar that is
/// quoted (the quote precedes it), tagged (`!!str no`) or not a slice of `text` at all.
fn psych_bool(text: &str, v: &str) -> Option<bool> {
    let value = match v.to_ascii_lowercase().as_str() {
        "yes" | "on" | "true" => true,
        "no" | "off" | "false" => false,
        _ => return None,
    };
    let start = (v.as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
    if start + v.len() > text.len() || !text.is_char_boundary(start) {
        return None;
    }
    let before = &text[..start];
    if before.ends_with(['"', '\'']) {
        return None;
    }
    let token = before
        .trim_end()
        .rsplit(|c: char| c.is_whitespace() || matches!(c, '[' | '{' | ','))
        .next()
        .unwrap_or("");
    (!token.starts_with('!')).then_some(value)
}

impl<'de> DeserializeSeed<'de> for RawSeed<'_> {
    type Value = Raw;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for RawSeed<'_> {
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
    // serde_yaml hands out slices of the text (borrowed) for plain and quoted scalars alike;
    // only those can be told apart, and only those are looked at.
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Raw, E> {
        Ok(self.scalar(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw::Scalar(Value::String(v.to_owned())))
    }
    fn visit_unit<E>(self) -> Result<Raw, E> {
        Ok(Raw::Scalar(Value::Null))
    }
    fn visit_none<E>(self) -> Result<Raw, E> {
        Ok(Raw::Scalar(Value::Null))
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        self.deserialize(d)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(self.value())? {
            out.push(v);
        }
        Ok(Raw::Seq(out))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut out = Vec::new();
        let key = Self { key: true, ..self };
        while let Some((k, v)) = map.next_entry_seed(key, self.value())? {
            out.push((k, v));
        }
        Ok(Raw::Map(out))
    }
    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<Raw, A::Error> {
        use serde::de::VariantAccess;
        let (tag, contents): (String, _) = data.variant()?;
        let value: Raw = contents.newtype_variant_seed(self.value())?;
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

/// Render a value as YAML text that means to GitLab what the value means: strings its
/// YAML 1.1 parser would read as booleans (`no`, `On`...) are quoted, which YAML 1.2 alone
/// does not require.
pub fn to_string(value: &Value) -> String {
    let render =
        |v: &Value| serde_yaml::to_string(v).unwrap_or_else(|e| format!("# cannot render: {e}\n"));
    let text = render(value);
    if !has_psych_boolean_string(value) {
        return text;
    }
    // Render with placeholders in their place, then put the quoted strings there.
    let prefix = (0..)
        .map(|n| format!("cijob-quote{n}-"))
        .find(|p| !text.contains(p.as_str()))
        .expect("some prefix is free");
    let mut strings = Vec::new();
    let marked = with_placeholders(value, &prefix, &mut strings);
    let mut out = render(&marked);
    for (i, s) in strings.iter().enumerate().rev() {
        out = out.replace(&format!("{prefix}{i}"), &format!("'{s}'"));
    }
    out
}

fn is_psych_boolean_word(s: &str) -> bool {
    matches!(
        s.to_ascii_lowercase().as_str(),
        "yes" | "no" | "on" | "off" | "true" | "false"
    )
}

fn has_psych_boolean_string(value: &Value) -> bool {
    match value {
        Value::String(s) => is_psych_boolean_word(s),
        Value::Sequence(items) => items.iter().any(has_psych_boolean_string),
        Value::Mapping(m) => m
            .iter()
            .any(|(k, v)| has_psych_boolean_string(k) || has_psych_boolean_string(v)),
        Value::Tagged(t) => has_psych_boolean_string(&t.value),
        _ => false,
    }
}

/// `value` with each string `is_psych_boolean_word` accepts replaced by `prefix` and its index
/// in `strings` (indexes are replaced from the highest down, so `x1` never eats `x10`).
fn with_placeholders(value: &Value, prefix: &str, strings: &mut Vec<String>) -> Value {
    match value {
        Value::String(s) if is_psych_boolean_word(s) => {
            strings.push(s.clone());
            Value::String(format!("{prefix}{}", strings.len() - 1))
        }
        Value::Sequence(items) => Value::Sequence(
            items
                .iter()
                .map(|v| with_placeholders(v, prefix, strings))
                .collect(),
        ),
        Value::Mapping(m) => Value::Mapping(
            m.iter()
                .map(|(k, v)| {
                    (
                        with_placeholders(k, prefix, strings),
                        with_placeholders(v, prefix, strings),
                    )
                })
                .collect(),
        ),
        Value::Tagged(t) => Value::Tagged(Box::new(serde_yaml::value::TaggedValue {
            tag: t.tag.clone(),
            value: with_placeholders(&t.value, prefix, strings),
        })),
        other => other.clone(),
    }
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
    fn plain_yaml_1_1_booleans_are_booleans_as_psych_reads_them() {
        let v = p(
            "a: yes\nb: No\nc: ON\nd: off\ne: tRue\nf: [yes, 'no', \"on\"]\ng: {x: off}\n\
             h: !!str yes\ni: [!!str no]\nj: &j no\nk: *j\nl: y\nm: yess\nn: |\n  yes\n\
             o:\n  - \"no\"\n  - 'off'\n  - no\n",
        );
        let b = |x: bool| Value::Bool(x);
        let s = |x: &str| Value::from(x);
        assert_eq!(
            [&v["a"], &v["b"], &v["c"], &v["d"], &v["e"]],
            [&b(true), &b(false), &b(true), &b(false), &b(true)]
        );
        assert_eq!(v["f"], Value::Sequence(vec![b(true), s("no"), s("on")]));
        assert_eq!(v["g"]["x"], b(false));
        // Tagged strings stay strings; anchors and aliases are read like the node they name.
        assert_eq!(v["h"], s("yes"));
        assert_eq!(v["i"][0], s("no"));
        assert_eq!((&v["j"], &v["k"]), (&b(false), &b(false)));
        // Only the six words (any case): `y` and block scalars are strings for Psych too.
        assert_eq!(
            (&v["l"], &v["m"], &v["n"]),
            (&s("y"), &s("yess"), &s("yes\n"))
        );
        assert_eq!(v["o"], Value::Sequence(vec![s("no"), s("off"), b(false)]));
    }

    #[test]
    fn rendering_quotes_what_psych_would_read_as_booleans() {
        let v = p("a: 'no'\nb: [\"On\", x, 'tRue', yes]\n'off': {k: \"YES\"}\nc: noon\n");
        let text = to_string(&v);
        assert_eq!(
            text,
            "a: 'no'\nb:\n- 'On'\n- x\n- 'tRue'\n- true\n'off':\n  k: 'YES'\nc: noon\n"
        );
        // Read back as GitLab would, it is the same value.
        assert_eq!(p(&text), v);
    }

    #[test]
    fn keys_stay_as_written() {
        let v = p("on: {yes: no}\n");
        assert_eq!(v["on"]["yes"], Value::Bool(false));
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

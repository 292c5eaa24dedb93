//! `include: rules:` — whether an include is taken, evaluated while loading.
//!
//! Supported: `if:` expressions (`$VAR`, `==`, `!=`, `=~`, `!~`, `null`, `&&`, `||`,
//! parentheses), `exists:` (files in the project), `when: never`/`always`. `changes:` cannot
//! be known offline and counts as matching. Unknown variables are unset, as in GitLab.

use std::path::Path;

use crate::load::glob;
use crate::load::yaml::{self, Value};

/// Whether the include is taken. `vars` looks a variable up; `root` is the project for `exists`.
pub fn evaluate(
    rules: &Value,
    vars: &dyn Fn(&str) -> Option<String>,
    root: Option<&Path>,
) -> Result<bool, String> {
    let list = match rules {
        Value::Sequence(s) => s,
        Value::Null => return Ok(true),
        _ => return Err("include rules must be a list".into()),
    };
    for rule in list {
        let Value::Mapping(rule) = rule else {
            return Err("each include rule must be a mapping".into());
        };
        if let Some(expr) = rule.get("if") {
            let expr = yaml::scalar_string(expr).ok_or("rules:if must be a string")?;
            if !eval_if(&expr, vars)? {
                continue;
            }
        }
        if let Some(exists) = rule.get("exists") {
            if !exists_matches(exists, root)? {
                continue;
            }
        }
        let when = rule
            .get("when")
            .and_then(yaml::scalar_string)
            .unwrap_or_else(|| "always".into());
        return match when.as_str() {
            "never" => Ok(false),
            "always" => Ok(true),
            other => Err(format!(
                "include rules: when must be `never` or `always`, not `{other}`"
            )),
        };
    }
    Ok(false)
}

fn exists_matches(exists: &Value, root: Option<&Path>) -> Result<bool, String> {
    let patterns: Vec<String> = match exists {
        Value::Sequence(s) => s.iter().filter_map(yaml::scalar_string).collect(),
        Value::Mapping(m) => match m.get("paths") {
            Some(Value::Sequence(s)) => s.iter().filter_map(yaml::scalar_string).collect(),
            _ => return Err("rules:exists:paths must be a list".into()),
        },
        other => yaml::scalar_string(other).into_iter().collect(),
    };
    // Without a local project (a remote file), nothing exists.
    let Some(root) = root else { return Ok(false) };
    Ok(patterns.iter().any(|p| {
        let rel = p.trim_start_matches('/');
        if glob::is_glob(rel) {
            !glob::find(root, rel).is_empty()
        } else {
            root.join(rel).exists()
        }
    }))
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Var(String),
    Str(String),
    Regex(String),
    Null,
    Op(&'static str),
    Open,
    Close,
}

fn tokenize(expr: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let bad = || format!("cannot parse rules:if expression `{expr}`");
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' => i += 1,
            '(' => {
                out.push(Tok::Open);
                i += 1
            }
            ')' => {
                out.push(Tok::Close);
                i += 1
            }
            '$' => {
                let start = i + 1;
                let braced = chars.get(start) == Some(&'{');
                let mut j = if braced { start + 1 } else { start };
                while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                let name: String = chars[if braced { start + 1 } else { start }..j]
                    .iter()
                    .collect();
                if braced {
                    if chars.get(j) != Some(&'}') {
                        return Err(bad());
                    }
                    j += 1;
                }
                out.push(Tok::Var(name));
                i = j;
            }
            '"' | '\'' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&d| d == c)
                    .ok_or_else(bad)?
                    + i
                    + 1;
                out.push(Tok::Str(chars[i + 1..end].iter().collect()));
                i = end + 1;
            }
            '/' => {
                let mut j = i + 1;
                while j < chars.len() && chars[j] != '/' {
                    if chars[j] == '\\' {
                        j += 1;
                    }
                    j += 1;
                }
                if j >= chars.len() {
                    return Err(bad());
                }
                let mut pattern: String = chars[i + 1..j].iter().collect();
                j += 1;
                // Flags after the closing slash (`/i`, `/m`...).
                while j < chars.len() && chars[j].is_ascii_alphabetic() {
                    if chars[j] == 'i' {
                        pattern = format!("(?i){pattern}");
                    }
                    j += 1;
                }
                out.push(Tok::Regex(pattern));
                i = j;
            }
            _ => {
                let rest: String = chars[i..].iter().collect();
                let op = ["==", "!=", "=~", "!~", "&&", "||"]
                    .into_iter()
                    .find(|o| rest.starts_with(o));
                if let Some(op) = op {
                    out.push(Tok::Op(op));
                    i += 2;
                } else if rest.starts_with("null") {
                    out.push(Tok::Null);
                    i += 4;
                } else {
                    return Err(bad());
                }
            }
        }
    }
    Ok(out)
}

/// Evaluate a `rules:if` expression.
pub fn eval_if(expr: &str, vars: &dyn Fn(&str) -> Option<String>) -> Result<bool, String> {
    let toks = tokenize(expr)?;
    let mut p = Parser {
        toks: &toks,
        pos: 0,
        vars,
        expr,
    };
    let v = p.or()?;
    if p.pos != toks.len() {
        return Err(p.bad());
    }
    Ok(v)
}

struct Parser<'a> {
    toks: &'a [Tok],
    pos: usize,
    vars: &'a dyn Fn(&str) -> Option<String>,
    expr: &'a str,
}

/// An operand's value: unset variables and `null` are `None`.
type Operand = Option<String>;

impl Parser<'_> {
    fn bad(&self) -> String {
        format!("cannot parse rules:if expression `{}`", self.expr)
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn or(&mut self) -> Result<bool, String> {
        let mut v = self.and()?;
        while self.peek() == Some(&Tok::Op("||")) {
            self.pos += 1;
            let r = self.and()?;
            v = v || r;
        }
        Ok(v)
    }

    fn and(&mut self) -> Result<bool, String> {
        let mut v = self.atom()?;
        while self.peek() == Some(&Tok::Op("&&")) {
            self.pos += 1;
            let r = self.atom()?;
            v = v && r;
        }
        Ok(v)
    }

    fn atom(&mut self) -> Result<bool, String> {
        if self.peek() == Some(&Tok::Open) {
            self.pos += 1;
            let v = self.or()?;
            if self.peek() != Some(&Tok::Close) {
                return Err(self.bad());
            }
            self.pos += 1;
            return Ok(v);
        }
        let left = self.operand()?;
        let op = match self.peek() {
            Some(Tok::Op(op)) if matches!(*op, "==" | "!=" | "=~" | "!~") => *op,
            // A lone variable is true when set and non-empty.
            _ => return Ok(left.is_some_and(|v| !v.is_empty())),
        };
        self.pos += 1;
        if matches!(op, "=~" | "!~") {
            let pattern = match self.toks.get(self.pos) {
                Some(Tok::Regex(p)) => p.clone(),
                // GitLab also accepts a variable holding `/pattern/`.
                Some(Tok::Var(name)) => {
                    let v = (self.vars)(name).unwrap_or_default();
                    v.trim_start_matches('/').trim_end_matches('/').to_string()
                }
                _ => return Err(self.bad()),
            };
            self.pos += 1;
            let re = regex::Regex::new(&pattern)
                .map_err(|_| format!("invalid regular expression /{pattern}/ in rules:if"))?;
            let m = re.is_match(left.as_deref().unwrap_or(""));
            return Ok(if op == "=~" { m } else { !m });
        }
        let right = self.operand()?;
        let eq = left == right;
        Ok(if op == "==" { eq } else { !eq })
    }

    fn operand(&mut self) -> Result<Operand, String> {
        let tok = self.toks.get(self.pos).cloned().ok_or_else(|| self.bad())?;
        self.pos += 1;
        match tok {
            Tok::Var(name) => Ok((self.vars)(&name)),
            Tok::Str(s) => Ok(Some(s)),
            Tok::Null => Ok(None),
            _ => Err(self.bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(k: &str) -> Option<String> {
        match k {
            "A" => Some("x".into()),
            "EMPTY" => Some(String::new()),
            "TAG" => Some("v1.2".into()),
            _ => None,
        }
    }

    #[test]
    fn if_expressions() {
        let t = |e: &str| eval_if(e, &vars).unwrap();
        assert!(t("$A"));
        assert!(!t("$EMPTY"));
        assert!(!t("$MISSING"));
        assert!(t("$A == \"x\""));
        assert!(t("$A != 'y'"));
        assert!(t("$MISSING == null"));
        assert!(t("$TAG =~ /^v\\d/"));
        assert!(t("$TAG !~ /^x/"));
        assert!(t("$MISSING || ($A == \"x\" && $TAG)"));
        assert!(!t("$A == \"x\" && $MISSING"));
        assert!(eval_if("$A ==", &vars).is_err());
    }

    #[test]
    fn rules_lists() {
        let r = |y: &str| {
            let v: Value = serde_yaml::from_str(y).unwrap();
            evaluate(&v, &vars, None).unwrap()
        };
        assert!(r("[{if: $A}]"));
        assert!(!r("[{if: $MISSING}]"));
        assert!(!r("[{if: $A, when: never}]"));
        assert!(r("[{if: $MISSING}, {when: always}]"));
        assert!(!r("[{exists: [nothing.txt]}]"));
    }
}

//! GitLab's CI/CD variable expressions (`rules:if`, `only:variables`), as GitLab's
//! expression lexer, parser and evaluator read them.
//!
//! Lexemes: `$NAME` (only `\w` names: `${NAME}` is a syntax error, as on GitLab), `"..."` and
//! `'...'` (no escapes), `/pattern/flags` (flags `i`, `s`, `m`, `U`; at least two characters
//! inside, as GitLab's lexer requires), `null`, `==`, `!=`, `=~`, `!~`, `&&`, `||` and
//! parentheses. `&&` binds tighter than `||`.
//!
//! Evaluation follows Ruby's semantics, which GitLab inherits: an undefined variable is `nil`,
//! an empty one is `""` (so `$EMPTY == null` is false); `&&`/`||` return one of their operands
//! (only `nil` and `false` are false there), and the whole statement is true when its value is
//! "present" (not nil, false, nor a blank string). `=~` against a variable uses it as a regular
//! expression only when its value looks like `/.../`; otherwise the variable's value is searched
//! for the left-hand text. A regular expression that fails at run time makes the statement false.

use regex::Regex;

/// A parsed expression; [`parse`] checks the syntax once, [`Expr::truthful`] evaluates.
#[derive(Debug, Clone)]
pub enum Expr {
    Var(String),
    Str(String),
    /// Compiled when parsed: evaluated once per job.
    Pattern(Regex),
    Null,
    Compare(Box<Expr>, Op, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Match,
    NoMatch,
}

/// A value during evaluation, as Ruby sees it.
#[derive(Debug, Clone)]
enum Val<'e> {
    Nil,
    Bool(bool),
    Str(String),
    Re(&'e Regex),
}

impl Val<'_> {
    /// Ruby truthiness (`&&`, `||`): only nil and false are false.
    fn truthy(&self) -> bool {
        !matches!(self, Val::Nil | Val::Bool(false))
    }

    /// ActiveSupport's `present?`: a blank string is not present.
    fn present(&self) -> bool {
        match self {
            Val::Nil | Val::Bool(false) => false,
            Val::Str(s) => !s.trim().is_empty(),
            _ => true,
        }
    }

    fn text(&self) -> String {
        match self {
            Val::Nil => String::new(),
            Val::Bool(b) => b.to_string(),
            Val::Str(s) => s.clone(),
            Val::Re(r) => r.as_str().to_string(),
        }
    }

    fn equals(&self, other: &Val) -> bool {
        match (self, other) {
            (Val::Nil, Val::Nil) => true,
            (Val::Bool(a), Val::Bool(b)) => a == b,
            (Val::Str(a), Val::Str(b)) => a == b,
            (Val::Re(a), Val::Re(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

#[derive(Debug, Clone)]
enum Tok {
    Var(String),
    Str(String),
    Pattern(Regex),
    Null,
    Op(&'static str),
    Open,
    Close,
}

/// The syntax error GitLab reports for a `rules:if` it cannot parse.
pub const SYNTAX_ERROR: &str = "invalid expression syntax";

/// Parse an expression; the error is GitLab's wording plus the reason.
pub fn parse(text: &str) -> Result<Expr, String> {
    let toks = tokenize(text)?;
    if toks.is_empty() {
        return Err(SYNTAX_ERROR.to_string());
    }
    let mut p = Parser {
        toks: &toks,
        pos: 0,
    };
    let e = p.or()?;
    if p.pos != toks.len() {
        return Err(SYNTAX_ERROR.to_string());
    }
    Ok(e)
}

/// Parse and evaluate in one go (syntax errors are errors, run-time errors are false).
#[cfg(test)]
pub fn evaluate(text: &str, vars: &dyn Fn(&str) -> Option<String>) -> Result<bool, String> {
    Ok(parse(text)?.truthful(vars))
}

/// A string that GitLab reads as a regular expression (`/.../flags`), as a Rust regex.
/// `None` when it does not look like one, or when RE2 would refuse it.
pub fn pattern_of(text: &str) -> Option<Regex> {
    let (body, rest) = split_pattern(text, 1)?;
    if !rest.is_empty() {
        return None;
    }
    compile(&body).ok()
}

/// `/body/flags` at the start of `text`: (the regex source with flags as a prefix, the rest).
fn split_pattern(text: &str, min_len: usize) -> Option<(String, &str)> {
    let inner = text.strip_prefix('/')?;
    let bytes = inner.as_bytes();
    let mut i = 0;
    let mut end = None;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'/' => {
                end = Some(i);
                break;
            }
            _ => i += 1,
        }
    }
    let end = end?;
    if inner[..end].chars().count() < min_len {
        return None;
    }
    let body = inner[..end].replace("\\/", "/");
    let after = &inner[end + 1..];
    let flags_len = after
        .find(|c: char| !matches!(c, 'i' | 's' | 'm' | 'U'))
        .unwrap_or(after.len());
    let mut prefix = String::new();
    for f in after[..flags_len].chars() {
        // Ruby's `m` is "dot matches newline", RE2's `s`.
        let f = if f == 'm' { 's' } else { f };
        if !prefix.contains(f) {
            prefix.push(f);
        }
    }
    let source = if prefix.is_empty() {
        body
    } else {
        format!("(?{prefix}){body}")
    };
    Some((source, &after[flags_len..]))
}

fn compile(source: &str) -> Result<Regex, String> {
    Regex::new(source).map_err(|_| format!("invalid regular expression /{source}/"))
}

fn tokenize(expr: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut rest = expr;
    loop {
        rest = rest.trim_start();
        let Some(c) = rest.chars().next() else {
            return Ok(out);
        };
        let (tok, len) = match c {
            '(' => (Tok::Open, 1),
            ')' => (Tok::Close, 1),
            '$' => {
                let name: String = rest[1..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if name.is_empty() {
                    return Err(format!("{SYNTAX_ERROR}: `$` must be followed by a name (GitLab does not accept `${{NAME}}` here)"));
                }
                let len = 1 + name.len();
                (Tok::Var(name), len)
            }
            '"' | '\'' => {
                let end = rest[1..]
                    .find(c)
                    .ok_or_else(|| format!("{SYNTAX_ERROR}: unterminated string"))?;
                (Tok::Str(rest[1..1 + end].to_string()), end + 2)
            }
            '/' => {
                // GitLab's lexer wants two characters or more between the slashes.
                let (source, after) = split_pattern(rest, 2)
                    .ok_or_else(|| format!("{SYNTAX_ERROR}: cannot read the regular expression"))?;
                (Tok::Pattern(compile(&source)?), rest.len() - after.len())
            }
            _ => {
                let op = ["==", "!=", "=~", "!~", "&&", "||"]
                    .into_iter()
                    .find(|o| rest.starts_with(o));
                match op {
                    Some(op) => (Tok::Op(op), 2),
                    None if rest.starts_with("null")
                        && !rest[4..].starts_with(|c: char| c.is_alphanumeric() || c == '_') =>
                    {
                        (Tok::Null, 4)
                    }
                    None => {
                        return Err(format!(
                            "{SYNTAX_ERROR}: unexpected `{}`",
                            rest.chars().take(10).collect::<String>()
                        ))
                    }
                }
            }
        };
        out.push(tok);
        rest = &rest[len..];
    }
}

struct Parser<'a> {
    toks: &'a [Tok],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut e = self.and()?;
        while matches!(self.peek(), Some(Tok::Op("||"))) {
            self.pos += 1;
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut e = self.comparison()?;
        while matches!(self.peek(), Some(Tok::Op("&&"))) {
            self.pos += 1;
            e = Expr::And(Box::new(e), Box::new(self.comparison()?));
        }
        Ok(e)
    }

    fn comparison(&mut self) -> Result<Expr, String> {
        let left = self.primary()?;
        let op = match self.peek() {
            Some(Tok::Op("==")) => Op::Eq,
            Some(Tok::Op("!=")) => Op::Ne,
            Some(Tok::Op("=~")) => Op::Match,
            Some(Tok::Op("!~")) => Op::NoMatch,
            _ => return Ok(left),
        };
        self.pos += 1;
        let right = self.primary()?;
        Ok(Expr::Compare(Box::new(left), op, Box::new(right)))
    }

    fn primary(&mut self) -> Result<Expr, String> {
        let tok = self
            .peek()
            .cloned()
            .ok_or_else(|| format!("{SYNTAX_ERROR}: the expression ends too early"))?;
        self.pos += 1;
        Ok(match tok {
            Tok::Var(n) => Expr::Var(n),
            Tok::Str(s) => Expr::Str(s),
            Tok::Pattern(p) => Expr::Pattern(p),
            Tok::Null => Expr::Null,
            Tok::Open => {
                let e = self.or()?;
                if !matches!(self.peek(), Some(Tok::Close)) {
                    return Err(format!("{SYNTAX_ERROR}: unbalanced parentheses"));
                }
                self.pos += 1;
                e
            }
            Tok::Close | Tok::Op(_) => return Err(SYNTAX_ERROR.to_string()),
        })
    }
}

impl Expr {
    /// Whether the statement holds for these variables (`None`: undefined).
    pub fn truthful(&self, vars: &dyn Fn(&str) -> Option<String>) -> bool {
        self.eval(vars).is_some_and(|v| v.present())
    }

    /// `None`: a run-time error (an invalid regular expression in a variable).
    fn eval(&self, vars: &dyn Fn(&str) -> Option<String>) -> Option<Val<'_>> {
        Some(match self {
            Expr::Var(n) => vars(n).map_or(Val::Nil, Val::Str),
            Expr::Str(s) => Val::Str(s.clone()),
            Expr::Pattern(re) => Val::Re(re),
            Expr::Null => Val::Nil,
            Expr::And(l, r) => {
                let l = l.eval(vars)?;
                if l.truthy() {
                    r.eval(vars)?
                } else {
                    l
                }
            }
            Expr::Or(l, r) => {
                let l = l.eval(vars)?;
                if l.truthy() {
                    l
                } else {
                    r.eval(vars)?
                }
            }
            Expr::Compare(l, op, r) => {
                let (l, r) = (l.eval(vars)?, r.eval(vars)?);
                Val::Bool(match op {
                    Op::Eq => l.equals(&r),
                    Op::Ne => !l.equals(&r),
                    Op::Match => matches(&l, &r)?.unwrap_or(false),
                    Op::NoMatch => matches(&l, &r)?.is_none_or(|m| !m),
                })
            }
        })
    }
}

/// `text =~ right`: `None` (outer) on a run-time error, `Some(None)` when the right side is
/// nil or false (`=~` is then false and `!~` true).
fn matches(text: &Val, right: &Val) -> Option<Option<bool>> {
    let text = text.text();
    Some(Some(match right {
        Val::Nil | Val::Bool(false) => return Some(None),
        Val::Re(re) => re.is_match(&text),
        // A variable's value: a regex when it reads as one, else Ruby's `String#scan`.
        Val::Str(s) => match split_pattern(s, 1) {
            Some((source, "")) => compile(&source).ok()?.is_match(&text),
            _ => s.contains(&text),
        },
        Val::Bool(true) => "true".contains(&text),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(k: &str) -> Option<String> {
        let v = match k {
            "CI_COMMIT_BRANCH" => "main",
            "CI_DEFAULT_BRANCH" => "main",
            "CI_PIPELINE_SOURCE" => "push",
            "CI_COMMIT_TAG" => return None,
            "CI_COMMIT_MESSAGE" => "Fix: crash\n[skip tests]",
            "EMPTY" => "",
            "BLANK" => "  ",
            "A" => "x",
            "B" => "x",
            "TAG" => "v1.2",
            "RE" => "/^feat/i",
            "PLAIN" => "release-main-2",
            "BAD_RE" => "/(/",
            "ONE_CHAR_RE" => "/a/",
            _ => return None,
        };
        Some(v.to_string())
    }

    /// Expressions from GitLab's documentation ("CI/CD variable expressions", `rules:if`
    /// examples) and its expression specs, with the result GitLab gives.
    #[test]
    fn gitlab_table() {
        let table: &[(&str, bool)] = &[
            // presence
            ("$CI_COMMIT_BRANCH", true),
            ("$CI_COMMIT_TAG", false),
            ("$EMPTY", false),
            ("$BLANK", false),
            // equality with strings, either quote, either side
            ("$CI_COMMIT_BRANCH == \"main\"", true),
            ("$CI_COMMIT_BRANCH == 'main'", true),
            ("\"main\" == $CI_COMMIT_BRANCH", true),
            ("$CI_COMMIT_BRANCH != \"main\"", false),
            ("$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH", true),
            ("$A == $B", true),
            ("$CI_PIPELINE_SOURCE == \"merge_request_event\"", false),
            // null and undefined vs empty
            ("$CI_COMMIT_TAG == null", true),
            ("$CI_COMMIT_TAG != null", false),
            ("$EMPTY == null", false),
            ("$EMPTY == \"\"", true),
            ("$CI_COMMIT_TAG == \"\"", false),
            ("$UNDEFINED == $CI_COMMIT_TAG", true),
            ("null == $CI_COMMIT_TAG", true),
            // regular expressions, flags
            ("$CI_COMMIT_BRANCH =~ /^ma/", true),
            ("$CI_COMMIT_BRANCH =~ /^MA/", false),
            ("$CI_COMMIT_BRANCH =~ /^MA/i", true),
            ("$CI_COMMIT_BRANCH !~ /^feature/", true),
            ("$TAG =~ /^v\\d+\\.\\d+$/", true),
            ("$CI_COMMIT_MESSAGE =~ /\\[skip tests\\]/", true),
            ("$CI_COMMIT_MESSAGE =~ /crash.\\[skip/", false),
            ("$CI_COMMIT_MESSAGE =~ /crash.\\[skip/m", true),
            ("$CI_COMMIT_TAG =~ /^$/", true),
            ("$UNDEFINED =~ /.+/", false),
            ("$UNDEFINED !~ /.+/", true),
            ("\"a\" =~ $ONE_CHAR_RE", true),
            // a variable on the right is a regex only when it looks like /.../
            ("\"feature-x\" =~ $RE", true),
            ("\"FEATURE-x\" =~ $RE", true),
            ("\"fix-x\" =~ $RE", false),
            ("\"main\" =~ $PLAIN", true),
            ("\"dev\" =~ $PLAIN", false),
            ("\"dev\" !~ $PLAIN", true),
            ("$A =~ $UNDEFINED", false),
            ("$A !~ $UNDEFINED", true),
            ("$A =~ $BAD_RE", false),
            // logic, precedence of && over ||, parentheses
            ("$CI_COMMIT_BRANCH == \"main\" && $CI_PIPELINE_SOURCE == \"push\"", true),
            ("$CI_COMMIT_TAG || $CI_COMMIT_BRANCH", true),
            ("$CI_COMMIT_TAG && $CI_COMMIT_BRANCH", false),
            ("$A == \"x\" || $A == \"y\" && $UNDEFINED", true),
            ("($A == \"x\" || $A == \"y\") && $UNDEFINED", false),
            ("$UNDEFINED && $A || $B", true),
            ("($CI_PIPELINE_SOURCE == \"push\" || $CI_PIPELINE_SOURCE == \"web\") && $CI_COMMIT_BRANCH =~ /^ma/", true),
            // Ruby's && and || return an operand: "" is true for them, not for the statement
            ("$EMPTY && $A", true),
            ("$A && $EMPTY", false),
            ("$EMPTY || $A", false),
            ("$UNDEFINED || $A", true),
            // string literals alone
            ("\"text\"", true),
            ("''", false),
        ];
        for (expr, want) in table {
            assert_eq!(evaluate(expr, &vars), Ok(*want), "{expr}");
        }
    }

    #[test]
    fn syntax_errors() {
        for bad in [
            "",
            "$A ==",
            "== \"x\"",
            "$A \"x\"",
            "${A} == \"x\"",
            "($A == \"x\"",
            "$A == \"x\")",
            "$A =~ /a/",
            "$A =~ /(/",
            "$A === \"x\"",
            "$A = \"x\"",
            "nullx",
        ] {
            let e = parse(bad).expect_err(bad);
            assert!(
                e.starts_with(SYNTAX_ERROR) || e.contains("regular expression"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn patterns_in_values() {
        assert!(pattern_of("/^v\\d/").unwrap().is_match("v1"));
        assert!(pattern_of("/^A/i").unwrap().is_match("a"));
        assert!(pattern_of("/a\\/b/").unwrap().is_match("a/b"));
        assert!(pattern_of("main").is_none());
        assert!(pattern_of("/x/ trailing").is_none());
    }
}

//! Variable expansion with the runner's semantics (Go `os.Expand`).

use crate::model::Variable;

/// Shell special parameters Go's `os.Expand` recognises as one-character names.
fn is_shell_special(c: u8) -> bool {
    matches!(
        c,
        b'*' | b'#' | b'$' | b'@' | b'!' | b'?' | b'-' | b'0'..=b'9'
    )
}

fn is_name_char(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphanumeric()
}

/// Go's `getShellName`: the name after a `$` and how many bytes it spans.
/// An empty name with a non-zero width means "bad syntax, eat those bytes".
fn shell_name(s: &[u8]) -> (&[u8], usize) {
    if s[0] == b'{' {
        if s.len() > 2 && is_shell_special(s[1]) && s[2] == b'}' {
            return (&s[1..2], 3);
        }
        for i in 1..s.len() {
            if s[i] == b'}' {
                if i == 1 {
                    return (&[], 2); // "${}"
                }
                return (&s[1..i], i + 1);
            }
        }
        return (&[], 1); // unterminated "${": eat the brace
    }
    if is_shell_special(s[0]) {
        return (&s[0..1], 1);
    }
    let n = s.iter().take_while(|&&c| is_name_char(c)).count();
    (&s[..n], n)
}

/// The runner's `Variables.Get` for the names `os.Expand` hands it: `$` stays a dollar,
/// positional/special parameters are empty, everything else is looked up.
fn resolve(name: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    match name {
        "$" => "$".to_string(),
        "*" | "#" | "@" | "!" | "?" | "0" | "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9" => {
            String::new()
        }
        _ => lookup(name).unwrap_or_default(),
    }
}

/// `$VAR`/`${VAR}` replaced by `lookup`; `$$` → `$`; unknown → empty.
pub fn expand(value: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let s = value.as_bytes();
    if !s.contains(&b'$') {
        return value.to_string();
    }
    // Work on bytes: every split point is next to an ASCII byte, so UTF-8 stays intact.
    let mut out: Vec<u8> = Vec::with_capacity(s.len());
    let mut i = 0; // start of the not-yet-copied literal text
    let mut j = 0;
    while j < s.len() {
        if s[j] == b'$' && j + 1 < s.len() {
            out.extend_from_slice(&s[i..j]);
            let (name, w) = shell_name(&s[j + 1..]);
            if name.is_empty() && w > 0 {
                // bad syntax: the bytes are dropped, as Go does
            } else if name.is_empty() {
                out.push(b'$'); // `$` not followed by a name is kept
            } else {
                let name = std::str::from_utf8(name).unwrap_or_default();
                out.extend_from_slice(resolve(name, lookup).as_bytes());
            }
            j += w;
            i = j + 1;
        }
        j += 1;
    }
    if i < s.len() {
        out.extend_from_slice(&s[i..]);
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Expand every variable's value once against the raw list (later definitions win),
/// skipping `expand: false` ones, as the runner's `GetAllVariables` does.
pub fn expand_all(vars: &[Variable]) -> Vec<Variable> {
    let get = |k: &str| lookup(vars, k).map(str::to_string);
    vars.iter()
        .map(|v| {
            let mut v = v.clone();
            if v.expand {
                v.value = expand(&v.value, &get);
            }
            v
        })
        .collect()
}

/// Look a key up in a variable list: the last definition wins.
pub fn lookup<'a>(vars: &'a [Variable], key: &str) -> Option<&'a str> {
    vars.iter()
        .rev()
        .find(|v| v.key == key)
        .map(|v| v.value.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(s: &str) -> String {
        expand(s, &|k| match k {
            "A" => Some("alpha".into()),
            "B_2" => Some("beta".into()),
            "-" => Some("dash".into()),
            "a:-x" => Some("weird".into()),
            _ => None,
        })
    }

    #[test]
    fn basic_forms() {
        assert_eq!(ex("x $A y"), "x alpha y");
        assert_eq!(ex("${A}bc"), "alphabc");
        assert_eq!(ex("$Abc"), "");
        assert_eq!(ex("$B_2/$A"), "beta/alpha");
        assert_eq!(ex("$UNKNOWN."), ".");
        assert_eq!(ex("no dollars"), "no dollars");
        assert_eq!(ex("ünï $A ü"), "ünï alpha ü");
    }

    #[test]
    fn dollars_and_specials() {
        assert_eq!(ex("$$"), "$");
        assert_eq!(ex("$$A"), "$A");
        assert_eq!(ex("${$}"), "$");
        assert_eq!(ex("a$"), "a$");
        assert_eq!(ex("$"), "$");
        for s in [
            "$1", "$9", "$0", "$*", "$#", "$@", "$!", "$?", "${1}", "${@}",
        ] {
            assert_eq!(ex(s), "", "{s}");
        }
        // `-` is special for the parser but the runner looks it up like any name.
        assert_eq!(ex("$-"), "dash");
        assert_eq!(ex("$12"), "2");
    }

    #[test]
    fn non_name_after_dollar_is_kept() {
        assert_eq!(ex("$.x"), "$.x");
        assert_eq!(ex("$ x"), "$ x");
        assert_eq!(ex("$/"), "$/");
        assert_eq!(ex("a$é"), "a$é");
    }

    #[test]
    fn braces() {
        assert_eq!(ex("${A:-x}"), "");
        assert_eq!(ex("${a:-x}"), "weird");
        assert_eq!(ex("x${}y"), "xy");
        assert_eq!(ex("x${Ay"), "xAy");
        assert_eq!(ex("${"), "");
    }

    #[test]
    fn expand_all_one_level_last_wins_raw_skipped() {
        let mut raw = Variable::new("RAW", "$A");
        raw.expand = false;
        let vars = vec![
            Variable::new("A", "first"),
            Variable::new("B", "$A-$C"),
            Variable::new("C", "$A"),
            Variable::new("A", "second"),
            raw,
            Variable::new("D", "$$A"),
        ];
        let out = expand_all(&vars);
        assert_eq!(out[1].value, "second-$A"); // one level: C's raw value
        assert_eq!(out[2].value, "second");
        assert_eq!(out[4].value, "$A");
        assert_eq!(out[5].value, "$A");
        assert_eq!(out.len(), vars.len());
        assert_eq!(lookup(&out, "A"), Some("second"));
    }
}

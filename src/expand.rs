//! Variable expansion, in the two steps a job's variables go through: GitLab expands
//! variables that use other variables (fully, in dependency order) before it hands the job
//! to the runner, then the runner expands every value once more (Go `os.Expand`) and uses the
//! result for the job's environment and for image and service names.

use std::collections::HashMap;
use std::ops::Range;

use crate::error::Error;
use crate::model::{Job, Variable};

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

/// A job's variables as its build container gets them: GitLab's expansion, then the
/// runner's. `vars` is in precedence order (later wins). A cycle, which GitLab refuses,
/// is an error located at the job.
pub fn job_variables(vars: &[Variable], job: &Job) -> Result<Vec<Variable>, Error> {
    let expanded = gitlab_expand(vars).map_err(|e| job.error(&e.to_string()))?;
    Ok(expand_all(&expanded))
}

/// Why GitLab's expansion refused a variable list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpandError {
    /// Variables that refer to each other in a loop, each loop in GitLab's order; GitLab
    /// does not create the pipeline.
    Circular(Vec<Vec<String>>),
    /// A value grew past `MAX_EXPANDED` through references to references (a few lines of
    /// YAML can double a value at each step).
    TooLarge(String),
}

impl std::fmt::Display for ExpandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // GitLab's words, with each loop as Ruby prints an array of names.
            Self::Circular(loops) => {
                let loops: Vec<String> = loops
                    .iter()
                    .map(|keys| {
                        let quoted: Vec<String> = keys.iter().map(|k| format!("{k:?}")).collect();
                        format!("[{}]", quoted.join(", "))
                    })
                    .collect();
                write!(
                    f,
                    "circular variable reference detected: {} (GitLab does not create a pipeline with a loop of variables)",
                    loops.join(", ")
                )
            }
            Self::TooLarge(key) => write!(
                f,
                "variable {key} expands to more than {} MiB: its references to other variables repeat too often",
                MAX_EXPANDED >> 20
            ),
        }
    }
}

/// Bound on the bytes GitLab's expansion may produce for one variable list: far beyond
/// what an environment can hold, and small enough that a hostile file cannot exhaust memory.
pub const MAX_EXPANDED: usize = 64 << 20;

/// GitLab's expansion of variables that use other variables (`sort_and_expand_all` as the
/// runner's job payload is built): variables are ordered so that each comes after the ones
/// it refers to, then each value is expanded against those already expanded. `$NAME`,
/// `${NAME}` and `%NAME%` are references; `$$` and `%%` stay as written (the runner turns
/// `$$` into `$`); a reference to an undefined variable stays as written (the runner may
/// know it); a reference to an `expand: false` variable stays too (the runner gives it the
/// raw value) and that variable itself is never expanded. A variable that refers to its own
/// name sees the other definitions of that name (the one it overrides, say), else keeps the
/// reference. The list keeps its order.
pub fn gitlab_expand(vars: &[Variable]) -> Result<Vec<Variable>, ExpandError> {
    let refs: Vec<Option<Vec<Match>>> = vars
        .iter()
        .map(|v| (v.expand && v.value.contains(['$', '%'])).then(|| gitlab_refs(&v.value)))
        .collect();
    let mut by_key: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, v) in vars.iter().enumerate() {
        by_key.entry(v.key.as_str()).or_default().push(i);
    }
    // Every definition of every name a value refers to, as GitLab's sort follows them.
    let children: Vec<Vec<usize>> = refs
        .iter()
        .map(|r| {
            r.iter()
                .flatten()
                .filter_map(|(_, name)| name.and_then(|n| by_key.get(n)))
                .flatten()
                .copied()
                .collect()
        })
        .collect();
    let components = strongly_connected(&children);
    let loops: Vec<Vec<String>> = components
        .iter()
        .filter(|c| c.len() > 1)
        .map(|c| c.iter().map(|&i| vars[i].key.clone()).collect())
        .collect();
    if !loops.is_empty() {
        return Err(ExpandError::Circular(loops));
    }

    let mut values: Vec<String> = vars.iter().map(|v| v.value.clone()).collect();
    // The definition of each name expanded so far that a reference sees: the latest one.
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut produced = 0usize;
    for component in &components {
        let i = component[0];
        if let Some(refs) = &refs[i] {
            let value = &vars[i].value;
            let mut out = String::with_capacity(value.len());
            let mut at = 0;
            for (span, name) in refs {
                out.push_str(&value[at..span.start]);
                let target = name.and_then(|n| seen.get(n)).copied();
                match target {
                    Some(t) if vars[t].expand => out.push_str(&values[t]),
                    _ => out.push_str(&value[span.clone()]),
                }
                at = span.end;
                if out.len() > MAX_EXPANDED {
                    return Err(ExpandError::TooLarge(vars[i].key.clone()));
                }
            }
            out.push_str(&value[at..]);
            produced += out.len();
            if produced > MAX_EXPANDED {
                return Err(ExpandError::TooLarge(vars[i].key.clone()));
            }
            values[i] = out;
        }
        seen.insert(vars[i].key.as_str(), i);
    }
    Ok(vars
        .iter()
        .zip(values)
        .map(|(v, value)| Variable { value, ..v.clone() })
        .collect())
}

/// Where GitLab's variable pattern matched, and the name referred to (`None` for the escapes
/// `$$` and `%%`, and for `${}`).
type Match<'a> = (Range<usize>, Option<&'a str>);

/// The matches of GitLab's variable pattern in `value`, left to right.
fn gitlab_refs(value: &str) -> Vec<Match<'_>> {
    let s = value.as_bytes();
    let name_len = |from: usize| {
        if from < s.len() && (s[from] == b'_' || s[from].is_ascii_alphabetic()) {
            1 + s[from + 1..]
                .iter()
                .take_while(|&&c| is_name_char(c))
                .count()
        } else {
            0
        }
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let next = s.get(i + 1).copied();
        let found = match (s[i], next) {
            (b'$', Some(b'$')) | (b'%', Some(b'%')) => Some((i + 2, None)),
            (b'$', Some(b'{')) => {
                let n = name_len(i + 2);
                (s.get(i + 2 + n) == Some(&b'}'))
                    .then(|| (i + 3 + n, (n > 0).then(|| &value[i + 2..i + 2 + n])))
            }
            (b'$', _) => {
                let n = name_len(i + 1);
                (n > 0).then(|| (i + 1 + n, Some(&value[i + 1..i + 1 + n])))
            }
            (b'%', _) => {
                let n = name_len(i + 1);
                (n > 0 && s.get(i + 1 + n) == Some(&b'%'))
                    .then(|| (i + 2 + n, Some(&value[i + 1..i + 1 + n])))
            }
            _ => None,
        };
        match found {
            Some((end, name)) => {
                out.push((i..end, name));
                i = end;
            }
            None => i += 1,
        }
    }
    out
}

/// Tarjan's strongly connected components as Ruby's `TSort` finds them (GitLab sorts
/// variables with it): roots in list order, children in the order given, each component
/// emitted after the ones it depends on, its members in the order they were reached.
/// Iterative, so a long chain of variables cannot overflow the stack.
fn strongly_connected(children: &[Vec<usize>]) -> Vec<Vec<usize>> {
    #[derive(Clone, Copy)]
    enum Mark {
        New,
        Open(usize),
        Done,
    }
    struct Frame {
        node: usize,
        next_child: usize,
        id: usize,
        low: usize,
        stack_len: usize,
    }
    fn enter(
        node: usize,
        marks: &mut [Mark],
        next_id: &mut usize,
        stack: &mut Vec<usize>,
        frames: &mut Vec<Frame>,
    ) {
        marks[node] = Mark::Open(*next_id);
        frames.push(Frame {
            node,
            next_child: 0,
            id: *next_id,
            low: *next_id,
            stack_len: stack.len(),
        });
        stack.push(node);
        *next_id += 1;
    }
    let mut marks = vec![Mark::New; children.len()];
    let mut next_id = 0;
    let mut stack: Vec<usize> = Vec::new();
    let mut frames: Vec<Frame> = Vec::new();
    let mut out = Vec::new();
    for root in 0..children.len() {
        if !matches!(marks[root], Mark::New) {
            continue;
        }
        enter(root, &mut marks, &mut next_id, &mut stack, &mut frames);
        while let Some(top) = frames.last_mut() {
            if let Some(&child) = children[top.node].get(top.next_child) {
                top.next_child += 1;
                match marks[child] {
                    Mark::Open(id) => top.low = top.low.min(id),
                    Mark::Done => {}
                    Mark::New => enter(child, &mut marks, &mut next_id, &mut stack, &mut frames),
                }
                continue;
            }
            let done = frames.pop().expect("a frame is on top");
            if done.id == done.low {
                let component = stack.split_off(done.stack_len);
                for &n in &component {
                    marks[n] = Mark::Done;
                }
                out.push(component);
            }
            if let Some(parent) = frames.last_mut() {
                parent.low = parent.low.min(done.low);
            }
        }
    }
    out
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

    fn vars(pairs: &[(&str, &str)]) -> Vec<Variable> {
        pairs.iter().map(|(k, v)| Variable::new(*k, *v)).collect()
    }

    fn raw(key: &str, value: &str) -> Variable {
        Variable {
            expand: false,
            ..Variable::new(key, value)
        }
    }

    /// `KEY=value` of every variable, in list order.
    fn shown(vars: &[Variable]) -> Vec<String> {
        vars.iter()
            .map(|v| format!("{}={}", v.key, v.value))
            .collect()
    }

    fn gitlab(list: &[Variable]) -> Vec<String> {
        shown(&gitlab_expand(list).expect("no cycle"))
    }

    #[test]
    fn gitlab_pattern_references_and_escapes() {
        let found = |s: &'static str| -> Vec<(&'static str, Option<&'static str>)> {
            gitlab_refs(s)
                .into_iter()
                .map(|(span, name)| (&s[span], name))
                .collect()
        };
        assert_eq!(
            found("a$B ${C_1}d %E% $$F %%G%% ${} $9 ${H %I"),
            [
                ("$B", Some("B")),
                ("${C_1}", Some("C_1")),
                ("%E%", Some("E")),
                ("$$", None),
                ("%%", None),
                ("%%", None),
                ("${}", None),
            ]
        );
        assert_eq!(found("50% of $"), []);
        assert_eq!(found("é$Aé"), [("$A", Some("A"))]);
    }

    #[test]
    fn issue_example_expands_through_every_level() {
        let list = vars(&[
            ("CI_PROJECT_PATH", "group/project"),
            ("A", "$CI_PROJECT_PATH"),
            ("B", "reg/$A/img"),
            ("C", "x-$B-y"),
        ]);
        let out = job_variables(&list, &Job::default()).unwrap();
        assert_eq!(lookup(&out, "B"), Some("reg/group/project/img"));
        assert_eq!(lookup(&out, "C"), Some("x-reg/group/project/img-y"));
    }

    #[test]
    fn gitlab_documentation_examples() {
        // "Use CI/CD variables in other variables" and "Use the $ character in CI/CD variables".
        assert_eq!(
            gitlab(&vars(&[
                ("FLAGS", "-al"),
                ("LS_CMD", "ls \"$FLAGS\" $$TMP_DIR")
            ])),
            ["FLAGS=-al", "LS_CMD=ls \"-al\" $$TMP_DIR"]
        );
        let runner = job_variables(
            &vars(&[("FLAGS", "-al"), ("LS_CMD", "ls \"$FLAGS\" $$TMP_DIR")]),
            &Job::default(),
        )
        .unwrap();
        assert_eq!(lookup(&runner, "LS_CMD"), Some("ls \"-al\" $TMP_DIR"));
        // `expand: false`.
        let list = vec![
            Variable::new("VAR1", "value1"),
            Variable::new("VAR2", "value2 $VAR1"),
            raw("VAR3", "value3 $VAR1"),
        ];
        assert_eq!(
            shown(&job_variables(&list, &Job::default()).unwrap()),
            ["VAR1=value1", "VAR2=value2 value1", "VAR3=value3 $VAR1"]
        );
    }

    #[test]
    fn order_of_definition_does_not_matter() {
        assert_eq!(
            gitlab(&vars(&[
                ("V3", "key$V2$V1"),
                ("V1", "value"),
                ("V2", "result"),
                ("V4", "key${V1}${V5}${V3}"),
            ])),
            [
                "V3=keyresultvalue",
                "V1=value",
                "V2=result",
                // Undefined references are the runner's business: kept as written.
                "V4=keyvalue${V5}keyresultvalue",
            ]
        );
    }

    #[test]
    fn a_reference_sees_the_definition_that_wins() {
        // Global, job, then --var: every reference sees the last definition.
        let list = vars(&[("A", "global"), ("B", "b-$A"), ("A", "job"), ("A", "cli")]);
        assert_eq!(gitlab(&list)[1], "B=b-cli");
        // GitLab's own case: overridden variables keep their relative order.
        let list = vars(&[
            ("PROJECT_VAR", "$SUBGROUP_VAR"),
            ("SUBGROUP_VAR", "$TOP_LEVEL_GROUP_NAME"),
            ("SUBGROUP_VAR", "$SUB_GROUP_NAME"),
            ("TOP_LEVEL_GROUP_NAME", "top-level-group"),
            ("SUB_GROUP_NAME", "vars-in-vars-subgroup"),
        ]);
        let out = gitlab_expand(&list).unwrap();
        assert_eq!(lookup(&out, "PROJECT_VAR"), Some("vars-in-vars-subgroup"));
        assert_eq!(out[1].value, "top-level-group");
    }

    #[test]
    fn a_variable_using_its_own_name() {
        // The job's definition extends the global one it overrides.
        assert_eq!(
            gitlab(&vars(&[("OPTS", "-v"), ("OPTS", "$OPTS -x")]))[1],
            "OPTS=-v -x"
        );
        // Alone, it stays as written (the runner expands it once, as it always did).
        let alone = vars(&[("PATH", "$PATH:/opt/bin")]);
        assert_eq!(gitlab(&alone), ["PATH=$PATH:/opt/bin"]);
        assert_eq!(
            shown(&job_variables(&alone, &Job::default()).unwrap()),
            ["PATH=$PATH:/opt/bin:/opt/bin"]
        );
    }

    #[test]
    fn raw_variables_are_left_to_the_runner() {
        let list = vec![
            Variable::new("A", "normal"),
            raw("B", "raw-$A"),
            Variable::new("C", "$B and $A"),
        ];
        // GitLab keeps the reference so that the runner gives it the raw value.
        assert_eq!(gitlab(&list)[2], "C=$B and normal");
        let out = job_variables(&list, &Job::default()).unwrap();
        assert_eq!(lookup(&out, "C"), Some("raw-$A and normal"));
        assert_eq!(lookup(&out, "B"), Some("raw-$A"));
        // A raw variable cannot be part of a loop: its references are not followed.
        let list = vec![
            Variable::new("X", "$Y"),
            Variable::new("Y", "$Z"),
            raw("Z", "key$X$Y"),
        ];
        assert_eq!(gitlab(&list), ["X=$Z", "Y=$Z", "Z=key$X$Y"]);
    }

    #[test]
    fn escapes_are_kept_for_the_runner() {
        let list = vars(&[
            ("VAR", "$PASSWORD"),
            ("PASSWORD", "my_password$$_%%_$A"),
            ("A", "value"),
            ("W", "%A%-${A}-$${A}"),
            ("E", "$$VAR"),
            ("VAR2", "$E"),
        ]);
        assert_eq!(
            gitlab(&list),
            [
                "VAR=my_password$$_%%_value",
                "PASSWORD=my_password$$_%%_value",
                "A=value",
                "W=value-value-$${A}",
                "E=$$VAR",
                "VAR2=$$VAR",
            ]
        );
        let out = job_variables(&list, &Job::default()).unwrap();
        assert_eq!(lookup(&out, "VAR"), Some("my_password$_%%_value"));
        assert_eq!(lookup(&out, "VAR2"), Some("$VAR"));
    }

    #[test]
    fn loops_are_refused_as_gitlab_refuses_them() {
        let list = vars(&[
            ("V1", "$V2"),
            ("V2", "$V3"),
            ("V3", "key$V1$V2"),
            ("V4", "$V1"),
        ]);
        assert_eq!(
            gitlab_expand(&list).unwrap_err(),
            ExpandError::Circular(vec![vec!["V1".into(), "V2".into(), "V3".into()]])
        );
        let two = vars(&[("A", "$B"), ("B", "$A"), ("C", "${D}"), ("D", "%C%")]);
        let e = gitlab_expand(&two).unwrap_err();
        assert_eq!(
            e.to_string(),
            "circular variable reference detected: [\"A\", \"B\"], [\"C\", \"D\"] (GitLab does not create a pipeline with a loop of variables)"
        );
        // An escaped reference is no reference.
        assert!(gitlab_expand(&vars(&[("A", "$$B"), ("B", "$A")])).is_ok());
    }

    #[test]
    fn a_loop_is_a_configuration_error_at_the_job() {
        let job = Job {
            name: "test".into(),
            location: Some(crate::model::Location {
                file: ".gitlab-ci.yml".into(),
                line: 7,
            }),
            ..Job::default()
        };
        let e = job_variables(&vars(&[("A", "x$A$B"), ("B", "$A")]), &job).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::exit::USAGE);
        assert!(
            e.to_string().starts_with(
                ".gitlab-ci.yml:7: job \"test\": circular variable reference detected: [\"A\", \"B\"]"
            ),
            "{e}"
        );
    }

    #[test]
    fn doubling_values_stop_at_the_bound() {
        let mut list = vec![Variable::new("V0", "0123456789abcdef")];
        for i in 1..64 {
            list.push(Variable::new(format!("V{i}"), format!("$V{0}$V{0}", i - 1)));
        }
        let start = std::time::Instant::now();
        let e = gitlab_expand(&list).unwrap_err();
        assert!(
            matches!(&e, ExpandError::TooLarge(k) if k == "V22"),
            "{e:?}"
        );
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn a_long_chain_needs_no_deep_stack() {
        let n = 20_000;
        let mut list = vec![Variable::new("V0", "end")];
        for i in 1..n {
            list.push(Variable::new(format!("V{i}"), format!("$V{}", i - 1)));
        }
        list.reverse();
        let out = gitlab_expand(&list).unwrap();
        assert!(out.iter().all(|v| v.value == "end"));
        assert_eq!(out[0].key, format!("V{}", n - 1));
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

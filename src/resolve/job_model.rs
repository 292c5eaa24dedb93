//! Turning one resolved job mapping into typed `model::Job`s (one per parallel instance).
//! Errors are plain messages naming the job and key; the loader adds the location.

use crate::load::yaml::{self, Mapping, Value};
use crate::model::{
    AllowFailure, DockerOptions, Image, Job, Location, PullPolicy, Service, Variable, When,
};
use crate::resolve::duration;
use crate::resolve::parallel;

/// GitLab accepts script arrays nested up to 10 levels (the script list itself is level 1).
pub const MAX_SCRIPT_NESTING: usize = 10;

/// Build the runnable instances of job `name`. `job` already has defaults applied;
/// `globals` are the inherited global variables.
pub fn build(
    name: &str,
    mut job: Mapping,
    globals: &[Variable],
    location: Option<Location>,
) -> Result<Vec<Job>, String> {
    let err = |key: &str, what: &str| format!("job \"{name}\": {key} {what}");
    for key in ["before_script", "script", "after_script"] {
        if let Some(v) = job.get(key) {
            let lines = script_lines(v).map_err(|m| err(key, &m))?;
            job.insert(
                Value::from(key),
                Value::Sequence(lines.into_iter().map(Value::String).collect()),
            );
        }
    }
    match job.get("script") {
        None => return Err(format!("job \"{name}\": script is required")),
        Some(Value::Sequence(s)) if s.is_empty() => {
            return Err(format!("job \"{name}\": script can't be blank"))
        }
        _ => {}
    }
    // `rules: [!reference [...]]` yields a nested list; GitLab flattens rules one level.
    if let Some(Value::Sequence(rules)) = job.get("rules") {
        if rules.is_empty() {
            return Err(err("rules", "can't be blank"));
        }
        let flat = flatten_once(rules);
        job.insert(Value::from("rules"), Value::Sequence(flat));
    }
    if let Some(Value::Sequence(services)) = job.get("services") {
        let flat = flatten_once(services);
        job.insert(Value::from("services"), Value::Sequence(flat));
    }

    let stage = match job.get("stage") {
        None | Some(Value::Null) => "test".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(err("stage", "must be a string")),
    };
    let image = job
        .get("image")
        .map(|v| image(v).map_err(|m| err("image", &m)))
        .transpose()?
        .flatten();
    let services = match job.get("services") {
        None | Some(Value::Null) => vec![],
        Some(Value::Sequence(s)) => s
            .iter()
            .map(service)
            .filter_map(|r| r.transpose())
            .collect::<Result<_, _>>()
            .map_err(|m| err("services", &m))?,
        Some(_) => return Err(err("services", "must be a list")),
    };
    let own_vars = match job.get("variables") {
        None => vec![],
        Some(v) => variables(v).map_err(|m| err("variables", &m))?,
    };
    let when = match job.get("when") {
        None | Some(Value::Null) => When::OnSuccess,
        Some(Value::String(s)) => When::parse(s).ok_or_else(|| {
            err(
                "when",
                "must be one of on_success, on_failure, always, manual, delayed, never",
            )
        })?,
        Some(_) => return Err(err("when", "must be a string")),
    };
    let allow_failure = match job.get("allow_failure") {
        None | Some(Value::Null) => {
            // GitLab: a job-level `when: manual` is allowed to fail by default, rules or not
            // (a rule's own `when: manual` is not; see `resolve::rules::settings`).
            if when == When::Manual {
                AllowFailure::Yes
            } else {
                AllowFailure::No
            }
        }
        Some(v) => allow_failure(v).map_err(|m| err("allow_failure", &m))?,
    };
    let timeout = match job.get("timeout") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let text = yaml::scalar_string(v).ok_or_else(|| err("timeout", "must be a string"))?;
            Some(duration::parse(&text).ok_or_else(|| {
                err(
                    "timeout",
                    &format!("\"{text}\" is not a duration GitLab understands (e.g. `1h 30m`)"),
                )
            })?)
        }
    };
    let instances =
        parallel::expand(name, job.get("parallel")).map_err(|m| format!("job \"{name}\": {m}"))?;

    let base = Job {
        name: name.to_owned(),
        base_name: name.to_owned(),
        location,
        stage,
        image,
        services,
        before_script: lines_of(&job, "before_script"),
        script: lines_of(&job, "script"),
        after_script: lines_of(&job, "after_script"),
        variables: globals.iter().cloned().chain(own_vars).collect(),
        when,
        allow_failure,
        timeout,
        node_index: None,
        node_total: 1,
        excluded: None,
        matched_rule: None,
        interruptible: job.get("interruptible").and_then(Value::as_bool),
        rules: job.get("rules").cloned(),
        needs: job.get("needs").cloned(),
        artifacts: job.get("artifacts").cloned(),
        cache: job.get("cache").cloned(),
        resolved: Value::Mapping(job.clone()),
    };
    let Some(instances) = instances else {
        return Ok(vec![base]);
    };
    Ok(instances
        .into_iter()
        .map(|inst| {
            let mut j = base.clone();
            j.name = inst.name;
            j.node_index = Some(inst.index);
            j.node_total = inst.total;
            let mut resolved = job.clone();
            let mut vars = match resolved.shift_remove("variables") {
                Some(Value::Mapping(m)) => m,
                _ => Mapping::new(),
            };
            for (k, v) in &inst.variables {
                vars.shift_remove(k.as_str());
                vars.insert(Value::from(k.as_str()), Value::from(v.as_str()));
                j.variables.push(Variable::new(k, v));
            }
            resolved.insert(Value::from("variables"), Value::Mapping(vars));
            j.resolved = Value::Mapping(resolved);
            j
        })
        .collect())
}

fn lines_of(job: &Mapping, key: &str) -> Vec<String> {
    match job.get(key) {
        Some(Value::Sequence(s)) => s.iter().filter_map(yaml::scalar_string).collect(),
        _ => vec![],
    }
}

fn flatten_once(items: &[Value]) -> Vec<Value> {
    items
        .iter()
        .flat_map(|v| match v {
            Value::Sequence(inner) => inner.clone(),
            other => vec![other.clone()],
        })
        .collect()
}

/// A script keyword as lines: a string, or a list nested up to 10 levels, flattened.
pub fn script_lines(value: &Value) -> Result<Vec<String>, String> {
    const WHAT: &str =
        "must be a string or a list of strings (nested lists up to 10 levels deep are allowed)";
    fn walk(v: &Value, level: usize, out: &mut Vec<String>) -> Result<(), String> {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Number(_) | Value::Bool(_) => {
                out.push(yaml::scalar_string(v).unwrap_or_default())
            }
            Value::Sequence(items) if level < MAX_SCRIPT_NESTING => {
                for item in items {
                    walk(item, level + 1, out)?;
                }
            }
            Value::Sequence(_) => {
                return Err(format!(
                    "is nested more than {MAX_SCRIPT_NESTING} levels deep; it {WHAT}"
                ))
            }
            _ => return Err(WHAT.to_owned()),
        }
        Ok(())
    }
    let mut out = Vec::new();
    match value {
        Value::Null => {}
        Value::Sequence(items) => {
            for item in items {
                walk(item, 1, &mut out)?;
            }
        }
        other => walk(other, 0, &mut out)?,
    }
    Ok(out)
}

/// `variables:` in plain or `{value, description, expand, options}` form, in order.
/// Null becomes an empty string (as gitlab-ci-local's `variables-null` case expects).
pub fn variables(value: &Value) -> Result<Vec<Variable>, String> {
    let map = match value {
        Value::Null => return Ok(vec![]),
        Value::Mapping(m) => m,
        other => {
            return Err(format!(
                "must be a mapping of names to values, not {}",
                yaml::type_name(other)
            ))
        }
    };
    let mut out: Vec<Variable> = Vec::new();
    for (k, v) in map {
        let key = yaml::scalar_string(k).ok_or("names must be strings")?;
        let var = match v {
            Value::Mapping(m) => {
                let value = match m.get("value") {
                    None => String::new(),
                    Some(x) => yaml::scalar_string(x)
                        .ok_or_else(|| format!("{key}: value must be a string"))?,
                };
                let mut var = Variable::new(&key, value);
                match m.get("expand") {
                    None | Some(Value::Null) => {}
                    Some(v) => {
                        // Plain `no`/`off` are booleans already (see `yaml::parse_ci`); a
                        // quoted "false" is a string, which GitLab refuses here.
                        var.expand = v
                            .as_bool()
                            .ok_or_else(|| format!("{key}: expand must be true or false"))?
                    }
                }
                var
            }
            other => Variable::new(
                &key,
                yaml::scalar_string(other)
                    .ok_or_else(|| format!("{key} must be a string, number, boolean or mapping"))?,
            ),
        };
        out.retain(|x| x.key != key);
        out.push(var);
    }
    Ok(out)
}

fn string_list(value: &Value, what: &str) -> Result<Vec<String>, String> {
    match value {
        Value::Sequence(s) => s
            .iter()
            .map(|x| {
                yaml::scalar_string(x).ok_or_else(|| format!("{what} must be a list of strings"))
            })
            .collect(),
        Value::String(s) => Ok(vec![s.clone()]),
        _ => Err(format!("{what} must be a string or a list of strings")),
    }
}

fn pull_policy(value: &Value) -> Result<Vec<PullPolicy>, String> {
    string_list(value, "pull_policy")?
        .iter()
        .map(|p| {
            PullPolicy::parse(p).ok_or_else(|| {
                format!("pull_policy \"{p}\" is not one of always, if-not-present, never")
            })
        })
        .collect()
}

fn docker(value: Option<&Value>) -> Result<DockerOptions, String> {
    let Some(value) = value else {
        return Ok(DockerOptions::default());
    };
    let m = value.as_mapping().ok_or("docker must be a mapping")?;
    let field = |k: &str| {
        m.get(k)
            .and_then(yaml::scalar_string)
            .filter(|s| !s.is_empty())
    };
    Ok(DockerOptions {
        user: field("user"),
        platform: field("platform"),
    })
}

/// `key` of an image or service mapping as a list of strings, if present.
fn list_at(m: &yaml::Mapping, key: &str) -> Result<Option<Vec<String>>, String> {
    m.get(key).map(|v| string_list(v, key)).transpose()
}

/// The `name` of an image or service mapping; `None` when empty (no image, no service).
fn name_of(m: &yaml::Mapping, missing: &str) -> Result<Option<String>, String> {
    let v = m.get("name").ok_or(missing)?;
    let name = yaml::scalar_string(v).ok_or("name must be a string")?;
    Ok(Some(name).filter(|n| !n.is_empty()))
}

/// `image:` as a string or `{name, entrypoint, pull_policy, docker}`; an empty name means
/// no image.
pub fn image(value: &Value) -> Result<Option<Image>, String> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Ok(Some(Image {
            name: s.clone(),
            ..Image::default()
        })),
        Value::Mapping(m) => {
            let Some(name) = name_of(m, "must have a `name`")? else {
                return Ok(None);
            };
            Ok(Some(Image {
                name,
                entrypoint: list_at(m, "entrypoint")?,
                pull_policy: m
                    .get("pull_policy")
                    .map(pull_policy)
                    .transpose()?
                    .unwrap_or_default(),
                docker: docker(m.get("docker"))?,
            }))
        }
        _ => Err("must be a string or a mapping with `name`".into()),
    }
}

/// One `services:` entry; an entry with an empty name is dropped (GitLab ignores it).
pub fn service(value: &Value) -> Result<Option<Service>, String> {
    match value {
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Ok(Some(Service {
            name: s.clone(),
            ..Service::default()
        })),
        Value::Mapping(m) => {
            let Some(name) = name_of(m, "each service mapping must have a `name`")? else {
                return Ok(None);
            };
            Ok(Some(Service {
                name,
                alias: m.get("alias").and_then(yaml::scalar_string),
                entrypoint: list_at(m, "entrypoint")?,
                command: list_at(m, "command")?,
                variables: m
                    .get("variables")
                    .map(variables)
                    .transpose()?
                    .unwrap_or_default(),
                pull_policy: m
                    .get("pull_policy")
                    .map(pull_policy)
                    .transpose()?
                    .unwrap_or_default(),
                docker: docker(m.get("docker"))?,
            }))
        }
        _ => Err("entries must be strings or mappings with `name`".into()),
    }
}

pub(crate) fn allow_failure(value: &Value) -> Result<AllowFailure, String> {
    let int = |v: &Value| v.as_i64().ok_or("exit_codes must be integers");
    match value {
        Value::Bool(true) => Ok(AllowFailure::Yes),
        Value::Bool(false) => Ok(AllowFailure::No),
        Value::Mapping(m) => match m.get("exit_codes") {
            Some(Value::Sequence(s)) => Ok(AllowFailure::ExitCodes(
                s.iter().map(int).collect::<Result<_, _>>()?,
            )),
            Some(v) => Ok(AllowFailure::ExitCodes(vec![int(v)?])),
            None => Err("must be true, false or {exit_codes: ...}".into()),
        },
        _ => Err("must be true, false or {exit_codes: ...}".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The job mapping `text` read as the loader reads files (YAML 1.1 booleans included).
    fn job(text: &str) -> Result<Vec<Job>, String> {
        let doc = yaml::parse_ci(text, std::path::Path::new("t.yml")).unwrap();
        let m = doc.config.as_mapping().cloned().unwrap();
        build("j", m, &[Variable::new("G", "g")], None)
    }

    #[test]
    fn yaml_1_1_booleans_as_gitlab_reads_them() {
        let j = &job(
            "script: [x]\nallow_failure: yes\nvariables:\n  AWS_S3_USE_SSL: no\n  QUOTED: 'no'\n  \
             ON_OFF: {value: On}\n  RAW: {value: $X, expand: No}\n",
        )
        .unwrap()[0];
        assert_eq!(j.allow_failure, AllowFailure::Yes);
        let vars: Vec<_> = j
            .variables
            .iter()
            .map(|v| (v.key.as_str(), v.value.as_str(), v.expand))
            .collect();
        assert_eq!(
            vars,
            [
                ("G", "g", true),
                ("AWS_S3_USE_SSL", "false", true),
                ("QUOTED", "no", true),
                ("ON_OFF", "true", true),
                ("RAW", "$X", false),
            ]
        );
        // `cijob show` prints what the job means.
        assert_eq!(j.resolved["allow_failure"], Value::Bool(true));
        // A quoted boolean is a string, which GitLab refuses for these keywords.
        assert!(job("script: [x]\nallow_failure: 'yes'\n")
            .unwrap_err()
            .contains("allow_failure must be true, false"));
        assert!(
            job("script: [x]\nvariables: {A: {value: a, expand: 'false'}}\n")
                .unwrap_err()
                .contains("expand must be true or false")
        );
    }

    #[test]
    fn typed_fields() {
        let j = &job(
            "image: {name: ruby, entrypoint: [''], pull_policy: [always, if-not-present], docker: {user: nobody, platform: linux/amd64}}\n\
             services: [redis, {name: pg, alias: db, command: [run], variables: {A: 1}, pull_policy: never}, '']\n\
             script: echo hi\nbefore_script: [a, [b, c]]\nvariables: {N: 1, B: true, E: null, R: {value: $X, expand: false}}\n\
             when: manual\nallow_failure: {exit_codes: 3}\ntimeout: 1h 30m\nstage: build\n",
        )
        .unwrap()[0];
        let img = j.image.as_ref().unwrap();
        assert_eq!(img.name, "ruby");
        assert_eq!(img.entrypoint, Some(vec![String::new()]));
        assert_eq!(
            img.pull_policy,
            vec![PullPolicy::Always, PullPolicy::IfNotPresent]
        );
        assert_eq!(img.docker.user.as_deref(), Some("nobody"));
        assert_eq!(j.services.len(), 2);
        assert_eq!(j.services[1].alias.as_deref(), Some("db"));
        assert_eq!(j.services[1].variables, vec![Variable::new("A", "1")]);
        assert_eq!(j.services[1].pull_policy, vec![PullPolicy::Never]);
        assert_eq!(j.script, vec!["echo hi"]);
        assert_eq!(j.before_script, vec!["a", "b", "c"]);
        let vars: Vec<_> = j
            .variables
            .iter()
            .map(|v| (v.key.as_str(), v.value.as_str()))
            .collect();
        assert_eq!(
            vars,
            [
                ("G", "g"),
                ("N", "1"),
                ("B", "true"),
                ("E", ""),
                ("R", "$X")
            ]
        );
        assert!(!j.variables[4].expand);
        assert_eq!(j.when, When::Manual);
        assert_eq!(
            job("script: [x]\nallow_failure: yes\n").unwrap()[0].allow_failure,
            AllowFailure::Yes
        );
        assert_eq!(j.allow_failure, AllowFailure::ExitCodes(vec![3]));
        assert_eq!(j.timeout, Some(std::time::Duration::from_secs(5400)));
        assert_eq!(j.stage, "build");
    }

    #[test]
    fn defaults_and_errors() {
        let j = &job("script: [x]\n").unwrap()[0];
        assert_eq!(j.stage, "test");
        assert_eq!(j.allow_failure, AllowFailure::No);
        assert_eq!(j.node_total, 1);
        assert_eq!(
            job("stage: test\n").unwrap_err(),
            "job \"j\": script is required"
        );
        assert!(job("script: []\n").unwrap_err().contains("can't be blank"));
        assert_eq!(
            job("script: {a: b}\n").unwrap_err(),
            "job \"j\": script must be a string or a list of strings (nested lists up to 10 levels deep are allowed)"
        );
        assert!(job("script: [x]\nwhen: sometimes\n")
            .unwrap_err()
            .contains("when must be one of"));
        assert!(job("script: [x]\ntimeout: soon\n")
            .unwrap_err()
            .contains("timeout"));
        assert!(job("script: [x]\nimage: [a]\n")
            .unwrap_err()
            .contains("job \"j\": image"));
        assert_eq!(
            job("script: [x]\nwhen: manual\n").unwrap()[0].allow_failure,
            AllowFailure::Yes
        );
    }

    #[test]
    fn script_nesting_limit() {
        let mut ten = String::from("x");
        for _ in 0..10 {
            ten = format!("[{ten}]");
        }
        let v: Value = serde_yaml::from_str(&ten).unwrap();
        assert_eq!(script_lines(&v).unwrap(), vec!["x"]);
        let eleven: Value = serde_yaml::from_str(&format!("[{ten}]")).unwrap();
        assert!(script_lines(&eleven)
            .unwrap_err()
            .contains("more than 10 levels"));
    }

    #[test]
    fn matrix_instances_get_own_variables() {
        let jobs =
            job("script: [x]\nvariables: {A: job}\nparallel: {matrix: [{A: [m1, m2], B: b}]}\n")
                .unwrap();
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[0].name, "j: [m1, b]");
        assert_eq!(jobs[1].node_index, Some(2));
        assert_eq!(jobs[1].node_total, 2);
        let last: Vec<_> = jobs[1]
            .variables
            .iter()
            .map(|v| (v.key.as_str(), v.value.as_str()))
            .collect();
        assert_eq!(last, [("G", "g"), ("A", "job"), ("A", "m2"), ("B", "b")]);
        assert_eq!(jobs[1].resolved["variables"]["A"], Value::from("m2"));
        assert_eq!(jobs[1].base_name, "j");
    }
}

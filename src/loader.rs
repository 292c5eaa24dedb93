//! Resolving a `.gitlab-ci.yml` into runnable jobs the way GitLab does before a job reaches a runner.
//!
//! Order: includes merged -> `!reference` (targets that exist) -> `extends` -> `!reference`
//! (the rest, see reference.rs) -> `default:`/globals with
//! `inherit` -> per-job typing and `parallel` expansion -> pipeline order (stage, definition).
//! Trigger jobs (`trigger:`) are not runnable and are left out of `Pipeline::jobs`.

use crate::discover::ConfigLocation;
use crate::error::ConfigError;
use crate::extends;
use crate::include::{self, Merged};
use crate::job_model;
use crate::model::{Location, Pipeline, Variable};
use crate::reference;
use crate::yaml::{self, Mapping, Value};

/// Top-level keys that are not jobs. `pages` is deliberately absent: it is a job.
/// `timeout` is accepted as a global too (cijob extension, applied like `default:timeout`).
pub const RESERVED_KEYS: &[&str] = &[
    "default",
    "include",
    "stages",
    "variables",
    "workflow",
    "image",
    "services",
    "cache",
    "before_script",
    "after_script",
    "types",
    "spec",
    "timeout",
];

/// Keywords a job inherits from `default:` (and the deprecated top-level globals).
pub const DEFAULT_KEYS: &[&str] = &[
    "after_script",
    "artifacts",
    "before_script",
    "cache",
    "hooks",
    "id_tokens",
    "image",
    "interruptible",
    "retry",
    "services",
    "tags",
    "timeout",
];

/// Top-level keys that are deprecated aliases for `default:` keys.
const GLOBAL_DEFAULT_KEYS: &[&str] = &[
    "image",
    "services",
    "cache",
    "before_script",
    "after_script",
    "timeout",
];

pub const DEFAULT_STAGES: &[&str] = &[".pre", "build", "test", "deploy", ".post"];

/// Whether a top-level key names a job (hidden jobs included).
pub fn is_job_key(key: &str) -> bool {
    !RESERVED_KEYS.contains(&key)
}

/// Load and fully resolve the pipeline (include, default, extends, !reference, parallel).
pub fn load(location: &ConfigLocation) -> Result<Pipeline, ConfigError> {
    let merged = include::load(&location.project_root, &location.file)?;
    resolve(&location.file, merged)
}

/// Resolve an already include-merged configuration.
pub fn resolve(file: &std::path::Path, merged: Merged) -> Result<Pipeline, ConfigError> {
    let at = |e: crate::key_error::KeyError| merged.error_at(&e.key, e.message);
    for key in merged.config.keys() {
        if !matches!(key, Value::String(_)) {
            return Err(merged.error_at(
                "",
                format!(
                    "top-level key {} must be a string",
                    yaml::to_string(key).trim()
                ),
            ));
        }
    }
    let mut config = reference::resolve_found(&merged.config).map_err(at)?;
    extends::resolve(&mut config, is_job_key).map_err(at)?;
    let config = reference::resolve_all(&config).map_err(at)?;

    let stages = stages(&config).map_err(|m| merged.error_at("stages", m))?;
    let defaults = defaults(&config).map_err(|m| merged.error_at("default", m))?;
    let globals = match config.get("variables") {
        Some(v) => job_model::variables(v)
            .map_err(|m| merged.error_at("variables", format!("variables: {m}")))?,
        None => vec![],
    };

    let mut jobs = Vec::new();
    for (k, v) in &config {
        let Some(name) = k.as_str() else { continue };
        if !is_job_key(name) || name.starts_with('.') {
            continue;
        }
        let job = match v {
            Value::Mapping(m) => m,
            other => {
                return Err(merged.error_at(
                    name,
                    format!(
                        "job \"{name}\": config must be a mapping, not {} (unknown top-level keys are jobs)",
                        yaml::type_name(other)
                    ),
                ))
            }
        };
        if job.contains_key("trigger") {
            continue;
        }
        let job_err = |m: String| merged.error_at(name, m);
        let inherit = Inherit::parse(job.get("inherit"))
            .map_err(|m| job_err(format!("job \"{name}\": {m}")))?;
        let mut job = job.clone();
        for (key, value) in &defaults {
            let key_str = key.as_str().unwrap_or_default();
            if !job.contains_key(key) && inherit.default.allows(key_str) {
                job.insert(key.clone(), value.clone());
            }
        }
        let inherited: Vec<Variable> = globals
            .iter()
            .filter(|v| inherit.variables.allows(&v.key))
            .cloned()
            .collect();
        if job.get("when").and_then(Value::as_str) == Some("never") {
            return Err(job_err(format!(
                "job \"{name}\": when:never can only be used in a rules section or workflow:rules"
            )));
        }
        let location = merged
            .key_location(name)
            .and_then(|(file, line)| line.map(|line| Location { file, line }));
        let built = job_model::build(name, job, &inherited, location).map_err(&job_err)?;
        if let Some(j) = built.first() {
            if !stages.contains(&j.stage) {
                return Err(job_err(format!(
                    "job \"{name}\": chosen stage \"{}\" does not exist; available stages are {}",
                    j.stage,
                    stages.join(", ")
                )));
            }
        }
        jobs.extend(built);
    }
    // stable: definition order within a stage
    jobs.sort_by_key(|j| {
        stages
            .iter()
            .position(|s| *s == j.stage)
            .unwrap_or(usize::MAX)
    });
    Ok(Pipeline {
        file: file.to_path_buf(),
        stages,
        jobs,
    })
}

/// Declared stages framed by `.pre`/`.post`, or GitLab's default list.
fn stages(config: &Mapping) -> Result<Vec<String>, String> {
    let declared = match config.get("stages").or_else(|| config.get("types")) {
        None | Some(Value::Null) => {
            return Ok(DEFAULT_STAGES.iter().map(|s| s.to_string()).collect())
        }
        Some(Value::Sequence(s)) => s,
        Some(_) => return Err("stages: must be a list of strings".into()),
    };
    let mut names = Vec::new();
    // nested lists (from anchors) are flattened, as GitLab does
    for item in declared {
        let items = match item {
            Value::Sequence(inner) => inner.iter().collect::<Vec<_>>(),
            other => vec![other],
        };
        for s in items {
            let s = s
                .as_str()
                .ok_or("stages: must be a list of strings")?
                .to_owned();
            if s != ".pre" && s != ".post" && !names.contains(&s) {
                names.push(s);
            }
        }
    }
    let mut out = vec![".pre".to_owned()];
    out.extend(names);
    out.push(".post".to_owned());
    Ok(out)
}

/// `default:` keys, with the deprecated top-level globals filling gaps.
fn defaults(config: &Mapping) -> Result<Mapping, String> {
    let mut out = match config.get("default") {
        None | Some(Value::Null) => Mapping::new(),
        Some(Value::Mapping(m)) => m
            .iter()
            .filter(|(k, _)| k.as_str().is_some_and(|k| DEFAULT_KEYS.contains(&k)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        Some(_) => return Err("default: must be a mapping".into()),
    };
    for key in GLOBAL_DEFAULT_KEYS {
        if let Some(v) = config.get(*key) {
            if !out.contains_key(*key) {
                out.insert(Value::from(*key), v.clone());
            }
        }
    }
    Ok(out)
}

/// One `inherit:` setting: everything, nothing, or the listed names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Allow {
    All,
    None,
    Only(Vec<String>),
}

impl Allow {
    fn parse(value: Option<&Value>, what: &str) -> Result<Self, String> {
        match value {
            None | Some(Value::Null) | Some(Value::Bool(true)) => Ok(Self::All),
            Some(Value::Bool(false)) => Ok(Self::None),
            Some(Value::Sequence(s)) => s
                .iter()
                .map(|x| {
                    x.as_str().map(str::to_owned).ok_or_else(|| {
                        format!("inherit:{what} must be true, false or a list of names")
                    })
                })
                .collect::<Result<_, _>>()
                .map(Self::Only),
            Some(_) => Err(format!(
                "inherit:{what} must be true, false or a list of names"
            )),
        }
    }
    fn allows(&self, name: &str) -> bool {
        match self {
            Self::All => true,
            Self::None => false,
            Self::Only(names) => names.iter().any(|n| n == name),
        }
    }
}

struct Inherit {
    default: Allow,
    variables: Allow,
}

impl Inherit {
    fn parse(value: Option<&Value>) -> Result<Self, String> {
        match value {
            None | Some(Value::Null) => Ok(Self {
                default: Allow::All,
                variables: Allow::All,
            }),
            Some(Value::Mapping(m)) => Ok(Self {
                default: Allow::parse(m.get("default"), "default")?,
                variables: Allow::parse(m.get("variables"), "variables")?,
            }),
            Some(_) => Err("inherit must be a mapping with `default` and/or `variables`".into()),
        }
    }
}

//! Resolving a `.gitlab-ci.yml` into runnable jobs the way GitLab does before a job reaches a runner.
//!
//! Order: includes merged -> `!reference` (targets that exist) -> `extends` -> `!reference`
//! (the rest, see reference.rs) -> `default:`/globals with
//! `inherit` -> per-job typing and `parallel` expansion -> pipeline order (stage, definition).
//! Trigger jobs (`trigger:`) are not runnable and are left out of `Pipeline::jobs`.

use crate::error::ConfigError;
pub use crate::load::include::LoadOptions;
use crate::load::include::{self, Merged};
use crate::load::rules::Project;
use crate::load::yaml::{self, Mapping, Value};
use crate::model::{AllowFailure, Job, Location, Pipeline, Variable, When};
use crate::project::discover::ConfigLocation;
use crate::resolve::extends;
use crate::resolve::job_model;
use crate::resolve::only_except;
use crate::resolve::reference;
use crate::resolve::rules::{self, Decision};
use crate::resolve::validate;
use crate::resolve::workflow;

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

/// A loaded pipeline and what the user should be told about it.
#[derive(Debug)]
pub struct Loaded {
    pub pipeline: Pipeline,
    /// Cache fallbacks, skipped includes, dropped jobs (no `warning:` prefix).
    pub warnings: Vec<String>,
}

/// Load with explicit include options (server, token, cache, offline behaviour).
pub fn load_with(location: &ConfigLocation, options: &LoadOptions) -> Result<Loaded, ConfigError> {
    let options = &*options.with_project(&location.project_root);
    let mut merged = include::load_with(&location.project_root, &location.file, options)?;
    let mut warnings = std::mem::take(&mut merged.warnings);
    if !merged.missing.is_empty() {
        for (what, target) in prune_dangling(&mut merged.config) {
            warnings.push(format!(
                "{what} is left out: it uses \"{target}\", which is not defined \
                 (it probably comes from a skipped include)"
            ));
        }
    }
    let lenient = !merged.missing.is_empty();
    let project: &dyn Project = match &options.project {
        Some(p) => p.as_ref(),
        None => &crate::load::rules::Nowhere,
    };
    let context = RulesContext {
        predefined: pipeline_variables(options),
        overrides: &options.overrides,
        project,
        last: Default::default(),
    };
    let pipeline = resolve(
        &location.file,
        merged,
        lenient.then_some(&mut warnings),
        &context,
    )?;
    Ok(Loaded { pipeline, warnings })
}

/// What rules are evaluated with besides the YAML.
struct RulesContext<'a> {
    /// Predefined variables (lowest precedence).
    predefined: Vec<Variable>,
    /// `--var` (highest).
    overrides: &'a [(String, String)],
    project: &'a dyn Project,
    /// The last YAML list expanded and the result: most jobs share their variables, and
    /// expanding ~100 predefined variables for each of 10,000 jobs is slow.
    last: std::cell::RefCell<Option<Expanded>>,
}

/// A YAML variable list and the whole list rules see for it, expanded.
type Expanded = (Vec<Variable>, std::rc::Rc<Vec<Variable>>);

/// The predefined variables rules see. Without any (a pipeline loaded with no project
/// context), a push pipeline on `main`, so that rules and `only` have a branch to look at.
fn pipeline_variables(options: &LoadOptions) -> Vec<Variable> {
    let mut vars: Vec<Variable> = options
        .variables
        .iter()
        .map(|(k, v)| Variable::new(k, v))
        .collect();
    let has = |k: &str| options.variables.iter().any(|(key, _)| key == k);
    if !has("CI_COMMIT_REF_NAME") {
        for (k, v) in [
            ("CI_PIPELINE_SOURCE", "push"),
            ("CI_COMMIT_BRANCH", "main"),
            ("CI_COMMIT_REF_NAME", "main"),
            ("CI_DEFAULT_BRANCH", "main"),
        ] {
            if !has(k) {
                vars.insert(0, Variable::new(k, v));
            }
        }
    }
    vars
}

impl RulesContext<'_> {
    /// Predefined, then `yaml` (precedence order), then `--var`, expanded as GitLab expands
    /// variables in other variables (a cycle leaves the values as written).
    fn variables(&self, yaml: &[Variable]) -> std::rc::Rc<Vec<Variable>> {
        if let Some((key, value)) = self.last.borrow().as_ref() {
            if key == yaml {
                return value.clone();
            }
        }
        let mut all = self.predefined.clone();
        all.extend(yaml.iter().cloned());
        all.extend(self.overrides.iter().map(|(k, v)| Variable::new(k, v)));
        let value = std::rc::Rc::new(crate::expand::gitlab_expand(&all).unwrap_or(all));
        *self.last.borrow_mut() = Some((yaml.to_vec(), value.clone()));
        value
    }
}

fn lookup_in(vars: &[Variable]) -> impl Fn(&str) -> Option<String> + '_ {
    |k: &str| crate::expand::lookup(vars, k).map(str::to_owned)
}

/// Apply the job's `rules` (or `only`/`except`) to one job instance: exclusion reason, or the
/// matching rule's when, allow_failure, variables, needs and interruptible.
fn apply_rules(job: &mut Job, context: &RulesContext<'_>) -> Result<(), String> {
    let vars = context.variables(&job.variables);
    let (name, stage) = (job.name.clone(), job.stage.clone());
    let lookup = |k: &str| match k {
        "CI_JOB_NAME" => Some(name.clone()),
        "CI_JOB_STAGE" => Some(stage.clone()),
        _ => crate::expand::lookup(&vars, k).map(str::to_owned),
    };
    let Some(rules_value) = job.rules.clone() else {
        let only = job.resolved.get("only").cloned();
        let except = job.resolved.get("except").cloned();
        job.excluded =
            only_except::decide(only.as_ref(), except.as_ref(), &lookup, context.project)?;
        return Ok(());
    };
    let matched = match rules::decide(&rules_value, &lookup, context.project)? {
        Decision::Excluded(reason) => {
            job.excluded = Some(reason);
            return Ok(());
        }
        Decision::Included(m) => m,
    };
    let job_when = job
        .resolved
        .get("when")
        .and_then(Value::as_str)
        .and_then(When::parse);
    let job_allow_failure = job
        .resolved
        .get("allow_failure")
        .filter(|v| !v.is_null())
        .map(job_model::allow_failure)
        .transpose()?;
    let (when, allow_failure) = rules::settle(
        job_when,
        job_allow_failure.as_ref(),
        matched.when,
        matched.allow_failure.as_ref(),
    );
    job.when = when;
    job.allow_failure = allow_failure;
    job.matched_rule = Some(matched.index);
    if matched.interruptible.is_some() {
        job.interruptible = matched.interruptible;
    }
    if matched.needs.is_some() {
        job.needs = matched.needs.clone();
    }
    // Rule variables win over the job's.
    job.variables.extend(matched.variables.iter().cloned());
    show_as_received(job, &matched.variables);
    Ok(())
}

/// `cijob show`'s mapping as the runner receives the job: the rule applied, `rules` gone.
fn show_as_received(job: &mut Job, rule_variables: &[Variable]) {
    let Value::Mapping(m) = &mut job.resolved else {
        return;
    };
    m.shift_remove("rules");
    m.insert(Value::from("when"), Value::from(job.when.as_str()));
    let allow_failure = match &job.allow_failure {
        AllowFailure::No => Value::Bool(false),
        AllowFailure::Yes => Value::Bool(true),
        AllowFailure::ExitCodes(codes) => {
            let mut e = Mapping::new();
            e.insert(
                Value::from("exit_codes"),
                Value::Sequence(codes.iter().map(|c| Value::from(*c)).collect()),
            );
            Value::Mapping(e)
        }
    };
    m.insert(Value::from("allow_failure"), allow_failure);
    if let Some(needs) = &job.needs {
        m.insert(Value::from("needs"), needs.clone());
    }
    if let Some(i) = job.interruptible {
        m.insert(Value::from("interruptible"), Value::Bool(i));
    }
    if !rule_variables.is_empty() {
        let mut vars = match m.shift_remove("variables") {
            Some(Value::Mapping(v)) => v,
            _ => Mapping::new(),
        };
        for v in rule_variables {
            vars.shift_remove(v.key.as_str());
            vars.insert(Value::from(v.key.as_str()), Value::from(v.value.as_str()));
        }
        m.insert(Value::from("variables"), Value::Mapping(vars));
    }
}

/// Remove jobs (hidden ones too) that `extends` or `!reference` something that does not
/// exist, repeatedly, since removing one can strand another; and drop entries of `default:`,
/// `workflow:`... that reference something missing. Returns (what, missing target).
fn prune_dangling(config: &mut Mapping) -> Vec<(String, String)> {
    let mut removed = Vec::new();
    loop {
        let found = config.iter().find_map(|(k, v)| {
            let name = k.as_str()?;
            if is_job_key(name) {
                return dangling_target(config, v).map(|t| (name.to_owned(), None, t));
            }
            // A reserved key: find the one entry inside it to drop.
            v.as_mapping()?.iter().find_map(|(ck, cv)| {
                let child = ck.as_str()?;
                dangling_reference(config, cv, 0)
                    .map(|t| (name.to_owned(), Some(child.to_owned()), t))
            })
        });
        match found {
            Some((name, None, target)) => {
                config.shift_remove(name.as_str());
                removed.push((format!("job \"{name}\""), target));
            }
            Some((name, Some(child), target)) => {
                if let Some(Value::Mapping(m)) = config.get_mut(name.as_str()) {
                    m.shift_remove(child.as_str());
                }
                removed.push((format!("`{name}:{child}`"), target));
            }
            None => return removed,
        }
    }
}

/// The first `extends` or `!reference` target of `job` that `config` lacks.
fn dangling_target(config: &Mapping, job: &Value) -> Option<String> {
    if let Some(ext) = job.get("extends") {
        let names: Vec<String> = match ext {
            Value::Sequence(s) => s.iter().filter_map(yaml::scalar_string).collect(),
            other => yaml::scalar_string(other).into_iter().collect(),
        };
        if let Some(missing) = names.into_iter().find(|n| !config.contains_key(n.as_str())) {
            return Some(missing);
        }
    }
    dangling_reference(config, job, 0)
}

/// The first `!reference` inside `value` whose path cannot be followed in `config`.
fn dangling_reference(config: &Mapping, value: &Value, depth: usize) -> Option<String> {
    if depth > 64 {
        return None;
    }
    if let Some(Value::Sequence(path)) = yaml::as_reference(value) {
        let path: Vec<String> = path.iter().filter_map(yaml::scalar_string).collect();
        return (!reference_may_exist(config, &path)).then(|| path.join(", "));
    }
    match value {
        Value::Sequence(s) => s
            .iter()
            .find_map(|x| dangling_reference(config, x, depth + 1)),
        Value::Mapping(m) => m
            .values()
            .find_map(|x| dangling_reference(config, x, depth + 1)),
        _ => None,
    }
}

/// Whether a `!reference` path can resolve. A step through something that `extends` or is
/// itself a reference cannot be judged before resolution, so it counts as resolvable.
fn reference_may_exist(config: &Mapping, path: &[String]) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return true;
    };
    let Some(mut cur) = config.get(first.as_str()) else {
        return false;
    };
    for step in rest {
        if yaml::as_reference(cur).is_some() || cur.get("extends").is_some() {
            return true;
        }
        match cur.get(step.as_str()) {
            Some(next) => cur = next,
            None => return false,
        }
    }
    true
}

/// The include-merged configuration into the pipeline. With `lenient` (includes were
/// skipped), a job that does not validate is left out with a warning instead of failing the
/// whole pipeline.
fn resolve(
    file: &std::path::Path,
    merged: Merged,
    mut lenient: Option<&mut Vec<String>>,
    context: &RulesContext<'_>,
) -> Result<Pipeline, ConfigError> {
    let at = |e: crate::load::key_error::KeyError| merged.error_at(&e.key, e.message);
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
    let mut globals = match config.get("variables") {
        Some(v) => job_model::variables(v)
            .map_err(|m| merged.error_at("variables", format!("variables: {m}")))?,
        None => vec![],
    };
    // workflow:rules see the predefined and top-level variables; their variables then sit
    // between the top-level ones and the job's.
    let flow = {
        let vars = context.variables(&globals);
        let lookup = lookup_in(&vars);
        workflow::evaluate(config.get("workflow"), &lookup, context.project)
            .map_err(|m| merged.error_at("workflow", m))?
    };
    globals.extend(flow.variables.iter().cloned());
    let pipeline_name = flow.name.as_deref().map(|raw| {
        let vars = context.variables(&globals);
        let lookup = lookup_in(&vars);
        workflow::name(raw, &lookup)
    });

    let mut jobs = Vec::new();
    let mut triggers: Vec<(String, String)> = Vec::new();
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
            // Not runnable, but other jobs may need it.
            let stage = job.get("stage").and_then(Value::as_str).unwrap_or("test");
            triggers.push((name.to_owned(), stage.to_owned()));
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
            // A key made by interpolation (`$[[ inputs.name ]]:`) is not in the text as is.
            .map(|(file, line)| Location {
                file,
                line: line.unwrap_or(1),
            });
        // A typo is an error whatever the includes: GitLab refuses the pipeline.
        let unknown = validate::unknown_keys(&job);
        if let Some(first) = unknown.first() {
            let message = validate::unknown_keys_message(name, &unknown);
            return Err(error_at_child(&merged, name, first, message));
        }
        if let Some(conflict) = validate::rules_conflicts(name, &job) {
            return Err(job_err(conflict));
        }
        let built = job_model::build(name, job, &inherited, location)
            .map_err(&job_err)
            .and_then(|built| match built.first() {
                // GitLab's words.
                Some(j) if !stages.contains(&j.stage) => Err(job_err(format!(
                    "{name} job: chosen stage {} does not exist; available stages are {}",
                    j.stage,
                    stages.join(", ")
                ))),
                _ => Ok(built),
            });
        let built = match (built, lenient.as_deref_mut()) {
            (Ok(b), _) => b,
            (Err(e), Some(warnings)) => {
                warnings.push(format!(
                    "{}; the job is left out (it may need something from a skipped include)",
                    e.message
                ));
                continue;
            }
            (Err(e), None) => return Err(e),
        };
        jobs.extend(built);
    }
    // stable: definition order within a stage
    jobs.sort_by_key(|j| {
        stages
            .iter()
            .position(|s| *s == j.stage)
            .unwrap_or(usize::MAX)
    });
    // GitLab's configuration checks see the jobs as written (their own needs and their
    // rules'), before rules replace anything; the pipeline check sees what rules decided.
    let checked = validate::references(&jobs, &stages, &triggers);
    let mut applied = Vec::with_capacity(jobs.len());
    for mut j in jobs {
        match &flow.not_created {
            Some(why) => j.excluded = Some(format!("workflow: pipeline not created ({why})")),
            None => {
                if let Err(m) = apply_rules(&mut j, context) {
                    let e = merged.error_at(&j.base_name, format!("jobs:{}:{m}", j.base_name));
                    match lenient.as_deref_mut() {
                        Some(warnings) => {
                            warnings.push(format!(
                                "{}; the job is left out (it may need something from a skipped include)",
                                e.message
                            ));
                            continue;
                        }
                        None => return Err(e),
                    }
                }
            }
        }
        applied.push(j);
    }
    let jobs = applied;
    let checks = checked.and_then(|()| validate::needs_in_pipeline(&jobs, &triggers));
    if let Err((job, message)) = checks {
        let base = jobs
            .iter()
            .find(|j| j.name == job)
            .map_or(job.clone(), |j| j.base_name.clone());
        match lenient {
            // A skipped include may define what is needed.
            Some(warnings) => warnings.push(message),
            None => return Err(merged.error_at(&base, message)),
        }
    }
    Ok(Pipeline {
        file: file.to_path_buf(),
        stages,
        jobs,
        name: pipeline_name,
    })
}

/// An error at `key:` inside the job `job` when the job's own text has that key (a key from
/// `extends` or `default:` is elsewhere), else at the job.
fn error_at_child(merged: &Merged, job: &str, key: &str, message: String) -> ConfigError {
    let err = merged.error_at(job, message);
    let (Some(&index), Some(start)) = (merged.origins.get(job), err.line) else {
        return err;
    };
    let text = &merged.files[index].text;
    let blank = |l: &str| l.trim().is_empty() || l.trim_start().starts_with('#');
    // The job's body: the indented lines after its key, at the first one's indentation.
    let mut indent = None;
    let found = text
        .lines()
        .enumerate()
        .skip(start)
        .take_while(|(_, l)| blank(l) || l.starts_with([' ', '\t']))
        .filter(|(_, l)| !blank(l))
        .filter(|(_, l)| {
            let own = l.len() - l.trim_start().len();
            *indent.get_or_insert(own) == own
        })
        .find(|(_, l)| {
            let t = l.trim_start();
            let t = t.strip_prefix(['"', '\'']).unwrap_or(t);
            t.strip_prefix(key).is_some_and(|rest| {
                rest.trim_start_matches(['"', '\''])
                    .trim_start()
                    .starts_with(':')
            })
        });
    match found {
        Some((i, _)) => err.at(i + 1, None).with_source(text),
        None => err,
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Job, When};
    use std::path::{Path, PathBuf};

    /// The whole pipeline at `location`, with default options.
    fn load(location: &ConfigLocation) -> Result<Pipeline, ConfigError> {
        load_with(location, &LoadOptions::default()).map(|l| l.pipeline)
    }

    /// Write `files` into a fresh project and load `.gitlab-ci.yml`.
    fn load_files(files: &[(&str, &str)]) -> Result<Pipeline, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        load(&ConfigLocation {
            file: dir.path().join(".gitlab-ci.yml"),
            project_root: dir.path().to_path_buf(),
        })
    }

    fn load_text(text: &str) -> Result<Pipeline, ConfigError> {
        load_files(&[(".gitlab-ci.yml", text)])
    }

    fn names(p: &Pipeline) -> Vec<&str> {
        p.jobs.iter().map(|j| j.name.as_str()).collect()
    }

    fn var<'a>(job: &'a Job, key: &str) -> Option<&'a str> {
        job.variables
            .iter()
            .rev()
            .find(|v| v.key == key)
            .map(|v| v.value.as_str())
    }

    #[test]
    fn default_stages_and_pipeline_order() {
        let p = load_text(
            "deploy-job: {stage: deploy, script: x}\ntest-a: {script: x}\n.hidden: {script: x}\n\
             build-job: {stage: build, script: x}\npre: {stage: .pre, script: x}\ntest-b: {script: x}\n\
             pages: {script: x}\n",
        )
        .unwrap();
        assert_eq!(p.stages, [".pre", "build", "test", "deploy", ".post"]);
        assert_eq!(
            names(&p),
            [
                "pre",
                "build-job",
                "test-a",
                "test-b",
                "pages",
                "deploy-job"
            ]
        );
    }

    #[test]
    fn declared_stages_are_framed_and_checked() {
        let p = load_text("stages: [lint, [unit, e2e]]\nj: {stage: e2e, script: x}\n").unwrap();
        assert_eq!(p.stages, [".pre", "lint", "unit", "e2e", ".post"]);
        let e = load_text("stages: [build]\nj: {script: x}\n").unwrap_err();
        assert_eq!(
            e.message,
            "j job: chosen stage test does not exist; available stages are .pre, build, .post"
        );
        assert_eq!(e.line, Some(2));
        let e = load_text("stages: build\nj: {script: x}\n").unwrap_err();
        assert!(e.message.contains("stages: must be a list"), "{e}");
    }

    #[test]
    fn errors_carry_file_and_line() {
        let e = load_text("variables: {A: 1}\n\n# comment\ntest:\n  script: {a: b}\n").unwrap_err();
        let shown = e.to_string();
        assert!(
            shown.starts_with(
                ".gitlab-ci.yml:4: job \"test\": script must be a string or a list of strings"
            ),
            "{shown}"
        );
        assert!(shown.contains(" 4 | test:"), "{shown}");
        let e = load_text("j:\n  stage: test\n").unwrap_err();
        assert_eq!(
            e.to_string().lines().next(),
            Some(".gitlab-ci.yml:1: job \"j\": script is required")
        );
        let e = load_text("j: just a string\n").unwrap_err();
        assert!(e.message.contains("config must be a mapping"), "{e}");
        let e = load_files(&[
            (".gitlab-ci.yml", "include: ci/jobs.yml\n"),
            (
                "ci/jobs.yml",
                "a: {script: x}\n\nb:\n  script: x\n  timeout: whenever\n",
            ),
        ])
        .unwrap_err();
        assert_eq!(e.file.as_deref(), Some(Path::new("ci/jobs.yml")));
        assert_eq!(e.line, Some(3));
    }

    /// Precedence (later wins): top-level, workflow rule, job, matching rule; rules see the
    /// job's variables, not the rule's.
    #[test]
    fn rules_and_workflow_variables_in_precedence_order() {
        let p = load_text(
            "variables: {A: global, B: global, C: global, D: global}\n\
             workflow:\n  rules:\n    - if: $A == 'global'\n      variables: {B: workflow, C: workflow, D: workflow}\n\
             j:\n  script: [x]\n  variables: {C: job, D: job}\n  rules:\n    - if: $D == 'rule'\n      when: never\n    \
             - if: $C == 'job' && $B == 'workflow'\n      variables: {D: rule}\n      when: manual\n",
        )
        .unwrap();
        let j = &p.jobs[0];
        assert_eq!(j.excluded, None);
        assert_eq!(j.matched_rule, Some(2));
        assert_eq!(j.when, When::Manual);
        let got: Vec<_> = ["A", "B", "C", "D"]
            .iter()
            .map(|k| var(j, k).unwrap())
            .collect();
        assert_eq!(got, ["global", "workflow", "job", "rule"]);
        assert_eq!(j.resolved["variables"]["D"], Value::from("rule"));
        assert!(j.resolved.get("rules").is_none());
    }

    #[test]
    fn unknown_keys_point_at_the_key_when_the_job_has_it() {
        let e = load_text(
            "test:\n  variables:\n    scirpt: 1\n  # scirpt: no\n\n  script: [x]\n  scirpt: [y]\n",
        )
        .unwrap_err();
        assert_eq!(e.message, "jobs:test config contains unknown keys: scirpt");
        assert_eq!(e.line, Some(7));
        // From extends: at the job; in flow style: at the job.
        let e = load_text(".base: {artefacts: {}}\n\ntest:\n  extends: .base\n  script: [x]\n")
            .unwrap_err();
        assert_eq!(
            e.message,
            "jobs:test config contains unknown keys: artefacts"
        );
        assert_eq!(e.line, Some(3));
        let e = load_text("a: {script: [x]}\ntest: {script: [x], scirpt: [y]}\n").unwrap_err();
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn job_locations_point_at_defining_file() {
        let p = load_files(&[
            (
                ".gitlab-ci.yml",
                "include: ci/jobs.yml\n\nmain-job:\n  script: x\n",
            ),
            ("ci/jobs.yml", "# jobs\nincluded-job:\n  script: x\n"),
        ])
        .unwrap();
        let loc = |n: &str| p.job(n).unwrap().location.clone().unwrap();
        assert_eq!(loc("main-job").file, PathBuf::from(".gitlab-ci.yml"));
        assert_eq!(loc("main-job").line, 3);
        assert_eq!(loc("included-job").file, PathBuf::from("ci/jobs.yml"));
        assert_eq!(loc("included-job").line, 2);
    }

    #[test]
    fn default_globals_and_inherit() {
        let p = load_text(
            "image: global-image\nbefore_script: [global-before]\n\
             default:\n  image: default-image\n  after_script: [default-after]\n  timeout: 10m\n\
             variables: {G1: one, G2: two}\n\
             all: {script: x}\n\
             own: {script: x, image: own-image, before_script: []}\n\
             none: {script: x, inherit: {default: false, variables: false}}\n\
             some: {script: x, inherit: {default: [before_script], variables: [G2]}}\n",
        )
        .unwrap();
        let all = p.job("all").unwrap();
        assert_eq!(all.image.as_ref().unwrap().name, "default-image");
        assert_eq!(all.before_script, ["global-before"]);
        assert_eq!(all.after_script, ["default-after"]);
        assert_eq!(all.timeout, Some(std::time::Duration::from_secs(600)));
        assert_eq!((var(all, "G1"), var(all, "G2")), (Some("one"), Some("two")));
        assert_eq!(all.resolved["image"], Value::from("default-image"));
        let own = p.job("own").unwrap();
        assert_eq!(own.image.as_ref().unwrap().name, "own-image");
        assert!(own.before_script.is_empty());
        let none = p.job("none").unwrap();
        assert!(none.image.is_none() && none.before_script.is_empty() && none.variables.is_empty());
        let some = p.job("some").unwrap();
        assert!(some.image.is_none());
        assert_eq!(some.before_script, ["global-before"]);
        assert_eq!((var(some, "G1"), var(some, "G2")), (None, Some("two")));
    }

    #[test]
    fn variables_precedence_and_forms() {
        let p = load_text(
            "variables:\n  A: global\n  B: global\n  N: 1\n  D: {value: described, description: d}\n  E: null\n\
             j:\n  script: x\n  variables: {B: job, F: false, R: {value: $A, expand: false}}\n",
        )
        .unwrap();
        let j = p.job("j").unwrap();
        assert_eq!(var(j, "A"), Some("global"));
        assert_eq!(var(j, "B"), Some("job"));
        assert_eq!(var(j, "N"), Some("1"));
        assert_eq!(var(j, "D"), Some("described"));
        assert_eq!(var(j, "E"), Some(""));
        assert_eq!(var(j, "F"), Some("false"));
        let r = j.variables.iter().find(|v| v.key == "R").unwrap();
        assert!(!r.expand);
        // globals come first, job variables later (later wins)
        let keys: Vec<&str> = j.variables.iter().map(|v| v.key.as_str()).collect();
        assert_eq!(keys, ["A", "B", "N", "D", "E", "B", "F", "R"]);
    }

    #[test]
    fn extends_reference_and_default_together() {
        let p = load_text(
            "default: {before_script: [setup]}\n\
             .base: {image: alpine, variables: {A: base}, script: [base]}\n\
             .steps: {script: [one, two]}\n\
             job:\n  extends: .base\n  variables: {B: job}\n  script:\n    - !reference [.steps, script]\n    - three\n",
        )
        .unwrap();
        let j = p.job("job").unwrap();
        assert_eq!(j.script, ["one", "two", "three"]);
        assert_eq!(j.before_script, ["setup"]);
        assert_eq!(j.image.as_ref().unwrap().name, "alpine");
        assert_eq!((var(j, "A"), var(j, "B")), (Some("base"), Some("job")));
        assert!(j.resolved.get("extends").is_none());
        assert_eq!(p.jobs.len(), 1, "hidden jobs are not runnable");
        // a reference to a job that extends sees the extended value
        let p = load_text(
            ".p: {variables: {A: 1}}\n.c: {extends: .p, variables: {B: 2}}\n\
             j: {script: x, variables: !reference [.c, variables]}\n",
        )
        .unwrap();
        let j = p.job("j").unwrap();
        assert_eq!((var(j, "A"), var(j, "B")), (Some("1"), Some("2")));
        let e = load_text("a: {extends: b, script: x}\nb: {extends: a, script: y}\n").unwrap_err();
        assert_eq!(e.message, "job \"a\": extends cycle a -> b -> a");
        assert_eq!(e.line, Some(1));
    }

    #[test]
    fn parallel_and_matrix_through_loader() {
        let p = load_text(
            "variables: {G: g}\nbuild: {stage: build, script: x, parallel: 2}\n\
             test: {script: x, variables: {RUBY: job}, parallel: {matrix: [{RUBY: ['2.2', '3.0']}]}}\n",
        )
        .unwrap();
        assert_eq!(
            names(&p),
            ["build 1/2", "build 2/2", "test: [2.2]", "test: [3.0]"]
        );
        let t = p.job("test: [3.0]").unwrap();
        assert_eq!(t.base_name, "test");
        assert_eq!((t.node_index, t.node_total), (Some(2), 2));
        assert_eq!(var(t, "RUBY"), Some("3.0"));
        assert_eq!(var(t, "G"), Some("g"));
        assert_eq!(t.resolved["variables"]["RUBY"], Value::from("3.0"));
    }

    #[test]
    fn trigger_jobs_are_left_out_and_when_never_rejected() {
        let p = load_text("child: {trigger: {include: child.yml}}\nj: {script: x, when: manual}\n")
            .unwrap();
        assert_eq!(names(&p), ["j"]);
        assert_eq!(p.jobs[0].when, When::Manual);
        let e = load_text("j: {script: x, when: never}\n").unwrap_err();
        assert!(e.message.contains("when:never"), "{e}");
    }

    #[test]
    fn glob_includes() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/config/include-glob");
        let p = load(&ConfigLocation {
            file: root.join(".gitlab-ci.yml"),
            project_root: root.clone(),
        })
        .unwrap();
        // `/ci/*.yml`: ci/ itself only (not ci/sub/other.yml); `ci/**/*.gitlab-ci.yml`: subfolders only
        assert_eq!(
            names(&p),
            ["top-a", "top-b", "root-level", "deep-job", "sub-job"]
        );
    }

    #[test]
    fn unreachable_include_is_one_clear_error_or_skipped_with_its_jobs() {
        struct Down;
        impl crate::load::include::fetch::Fetcher for Down {
            fn get(
                &self,
                _: &str,
                _: &[(&str, &str)],
            ) -> Result<
                crate::load::include::fetch::Response,
                crate::load::include::fetch::FetchError,
            > {
                Err(crate::load::include::fetch::FetchError::Unreachable(
                    "connection refused".into(),
                ))
            }
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(".gitlab-ci.yml"),
            "include:\n  - project: group/proj\n    file: /ci.yml\n\
             a: {extends: .from-include}\nb: {extends: a}\nc: {script: x}\n\
             d: {script: [!reference [.from-include, script]]}\n",
        )
        .unwrap();
        let location = ConfigLocation {
            file: dir.path().join(".gitlab-ci.yml"),
            project_root: dir.path().to_path_buf(),
        };
        let mut options = LoadOptions {
            gitlab_url: Some("http://127.0.0.1:9".into()),
            cache_dir: Some(dir.path().join("cache")),
            fetcher: Some(std::sync::Arc::new(Down)),
            ..LoadOptions::default()
        };
        let e = load_with(&location, &options).unwrap_err();
        assert!(
            e.message.starts_with(
                "project include \"group/proj\" file \"ci.yml\" (ref HEAD) cannot be fetched: connection refused"
            ),
            "{e}"
        );
        assert_eq!(e.line, Some(2));
        options.allow_missing = true;
        let loaded = load_with(&location, &options).unwrap();
        assert_eq!(names(&loaded.pipeline), ["c"]);
        let w = loaded.warnings.join("\n");
        assert!(
            w.contains("skipping include of project \"group/proj\""),
            "{w}"
        );
        assert!(
            w.contains("job \"a\" is left out: it uses \".from-include\""),
            "{w}"
        );
        assert!(w.contains("job \"b\" is left out: it uses \"a\""), "{w}");
        assert!(w.contains("job \"d\" is left out"), "{w}");
    }

    #[test]
    fn hostile_inputs_do_not_panic() {
        for text in [
            "",
            "---\n",
            "[1, 2]",
            "? [a]\n: b\n",
            "a: &a [*a]\n",
            "j: {script: !reference [j]}\n",
            "j: {script: x, parallel: -1}\n",
            "j: {script: x, inherit: 3}\n",
            "j: {script: x, services: [{alias: a}]}\n",
            "include: {}\n",
            "default: [a]\n",
            "j: {script: !custom x}\n",
        ] {
            let _ = load_text(text);
        }
    }
}

//! The typed job model: what the loader produces and everything downstream consumes.
//! Pure data; no YAML parsing and no Docker here.

use std::time::Duration;

use crate::load::yaml::Value;

/// A whole resolved pipeline: stages in order and every runnable (non-hidden) job, after
/// include, default, extends, !reference and parallel/matrix expansion.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    /// The configuration file that was loaded.
    pub file: std::path::PathBuf,
    /// Stage names in pipeline order, always framed by `.pre` and `.post`.
    pub stages: Vec<String>,
    /// Every job, in pipeline order (by stage, then by definition order), those that rules,
    /// `only`/`except` or `workflow` leave out of the pipeline included (see `Job::excluded`).
    pub jobs: Vec<Job>,
    /// `workflow:name`, expanded.
    pub name: Option<String>,
}

impl Pipeline {
    pub fn job(&self, name: &str) -> Option<&Job> {
        self.jobs.iter().find(|j| j.name == name)
    }

    /// The jobs of the pipeline GitLab would create here.
    pub fn included(&self) -> impl Iterator<Item = &Job> {
        self.jobs.iter().filter(|j| j.excluded.is_none())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The name as GitLab shows it (`test: [2.2]`, `build 1/3`).
    pub name: String,
    /// The key in the YAML before parallel expansion (`test`).
    pub base_name: String,
    /// 1-based line of the job's key in the file that defined it, for error messages.
    pub location: Option<Location>,
    pub stage: String,
    pub image: Option<Image>,
    pub services: Vec<Service>,
    pub before_script: Vec<String>,
    pub script: Vec<String>,
    pub after_script: Vec<String>,
    /// Global then job variables in precedence order (later wins), matrix variables last.
    pub variables: Vec<Variable>,
    pub when: When,
    pub allow_failure: AllowFailure,
    pub timeout: Option<Duration>,
    /// `CI_NODE_INDEX` (1-based) when the job comes from `parallel`.
    pub node_index: Option<u32>,
    /// `CI_NODE_TOTAL` (1 when not parallel).
    pub node_total: u32,
    /// Why GitLab would leave the job out of the pipeline here (`rules: no rule matched`,
    /// `rule 2: when: never`, `workflow: pipeline not created`, `only: ...`).
    pub excluded: Option<String>,
    /// The 1-based index of the `rules:` entry that matched.
    pub matched_rule: Option<usize>,
    /// `interruptible`, the matching rule's when it sets one.
    pub interruptible: Option<bool>,
    /// Keywords kept as YAML because cijob does not interpret them yet
    /// (rules, needs, artifacts, cache, unknown keys...). `needs` is the matching rule's
    /// when it has one.
    pub rules: Option<Value>,
    pub needs: Option<Value>,
    pub artifacts: Option<Value>,
    pub cache: Option<Value>,
    /// The fully resolved job mapping, exactly what `cijob show` prints.
    pub resolved: Value,
}

impl Job {
    /// Whether `needs:`/`dependencies:` naming `name` mean this job: its name, or a parallel
    /// job's base name for each of its instances.
    pub fn answers_to(&self, name: &str) -> bool {
        self.name == name || (self.node_index.is_some() && self.base_name == name)
    }

    /// An error in this job's definition: `job "NAME": message`, at the job's key.
    pub fn error(&self, message: &str) -> crate::error::Error {
        let message = format!("job \"{}\": {message}", self.name);
        crate::error::Error::Config(match &self.location {
            Some(l) => crate::error::ConfigError::new(message)
                .in_file(&l.file)
                .at(l.line, None),
            None => crate::error::ConfigError::new(message),
        })
    }
}

impl Default for Job {
    /// A job as GitLab reads an empty one: stage `test`, not parallel, nothing set.
    fn default() -> Self {
        Self {
            name: String::new(),
            base_name: String::new(),
            location: None,
            stage: "test".to_string(),
            image: None,
            services: Vec::new(),
            before_script: Vec::new(),
            script: Vec::new(),
            after_script: Vec::new(),
            variables: Vec::new(),
            when: When::default(),
            allow_failure: AllowFailure::default(),
            timeout: None,
            node_index: None,
            node_total: 1,
            excluded: None,
            matched_rule: None,
            interruptible: None,
            rules: None,
            needs: None,
            artifacts: None,
            cache: None,
            resolved: Value::Null,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: std::path::PathBuf,
    pub line: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Image {
    pub name: String,
    /// `None`: keep the image's ENTRYPOINT. `Some(vec![""])` resets it.
    pub entrypoint: Option<Vec<String>>,
    /// Empty: use the default / CLI policy.
    pub pull_policy: Vec<PullPolicy>,
    pub docker: DockerOptions,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DockerOptions {
    pub user: Option<String>,
    pub platform: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Service {
    pub name: String,
    /// Raw `alias` value; may hold several aliases separated by commas and/or whitespace.
    pub alias: Option<String>,
    pub entrypoint: Option<Vec<String>>,
    pub command: Option<Vec<String>>,
    pub variables: Vec<Variable>,
    pub pull_policy: Vec<PullPolicy>,
    pub docker: DockerOptions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

impl PullPolicy {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "always" => Some(Self::Always),
            "if-not-present" => Some(Self::IfNotPresent),
            "never" => Some(Self::Never),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "always",
            Self::IfNotPresent => "if-not-present",
            Self::Never => "never",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    pub key: String,
    pub value: String,
    /// `expand: false` in YAML (GitLab's `raw`): `$` references are left alone.
    pub expand: bool,
    /// Shown as `[MASKED]` in all output (set by `--var`/`--var-file` conventions, never by YAML).
    pub masked: bool,
    /// Passed to services (GitLab's `public`). YAML and predefined variables are public.
    pub public: bool,
}

impl Variable {
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
            expand: true,
            masked: false,
            public: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum When {
    #[default]
    OnSuccess,
    OnFailure,
    Always,
    Manual,
    Delayed,
    Never,
}

impl When {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "on_success" => Self::OnSuccess,
            "on_failure" => Self::OnFailure,
            "always" => Self::Always,
            "manual" => Self::Manual,
            "delayed" => Self::Delayed,
            "never" => Self::Never,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OnSuccess => "on_success",
            Self::OnFailure => "on_failure",
            Self::Always => "always",
            Self::Manual => "manual",
            Self::Delayed => "delayed",
            Self::Never => "never",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AllowFailure {
    #[default]
    No,
    Yes,
    ExitCodes(Vec<i64>),
}

impl AllowFailure {
    /// Whether a job that exited with `code` counts as an allowed failure.
    pub fn allows(&self, code: i64) -> bool {
        match self {
            Self::No => false,
            Self::Yes => true,
            Self::ExitCodes(codes) => codes.contains(&code),
        }
    }
}

/// `[runners.docker]` settings that land in every container's HostConfig.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostOptions {
    pub extra_hosts: Vec<String>,
    pub dns: Vec<String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub security_opt: Vec<String>,
    pub shm_size: Option<i64>,
    /// Used when the run has no per-build network.
    pub network_mode: Option<String>,
}

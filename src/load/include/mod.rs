//! `include:` resolution: local files, and remote, template, project and component includes
//! fetched from a GitLab instance (with an on-disk cache for working offline). Files are
//! merged the way GitLab does: included files deep-merged first, in order; the including
//! file's own keys on top.
//!
//! Include `rules:` are evaluated (see include_rules.rs) with the variables known while
//! loading: `LoadOptions::variables`, the root file's top-level `variables:`, the
//! `CI_SERVER_*` variables of the configured instance, and `GITLAB_CI=true`.

pub(crate) mod cache;
pub mod fetch;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use self::cache::Cache;
use self::fetch::{FetchError, Fetcher, HttpFetcher};
use crate::error::ConfigError;
use crate::load::glob;
use crate::load::inputs;
use crate::load::merge::deep_merge;
use crate::load::rules;
use crate::load::yaml::{self, Mapping, Value};
use crate::project::git::GitInfo;

/// GitLab's default limit on the number of includes in one pipeline.
pub const MAX_INCLUDES: usize = 150;
/// GitLab's limit on include nesting.
pub const MAX_DEPTH: usize = 100;
/// Refuse absurdly large files instead of exhausting memory.
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;
/// The instance used when none is configured.
pub const DEFAULT_GITLAB_URL: &str = "https://gitlab.com";
/// Where GitLab's bundled templates live, relative to the instance (as gitlab-ci-local does).
pub const TEMPLATES_PATH: &str = "gitlab-org/gitlab/-/raw/master/lib/gitlab/ci/templates";

/// A token for the GitLab API. Its value is never printed (`Debug` hides it).
#[derive(Clone, PartialEq)]
pub enum Token {
    /// A personal/project access token, sent as `PRIVATE-TOKEN`.
    Private(String),
    /// A CI job token, sent as `JOB-TOKEN`.
    Job(String),
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Token::Private(_) => f.write_str("Token::Private(<hidden>)"),
            Token::Job(_) => f.write_str("Token::Job(<hidden>)"),
        }
    }
}

impl Token {
    /// `CIJOB_GITLAB_TOKEN`, else `GITLAB_TOKEN` (both `PRIVATE-TOKEN`), else `CI_JOB_TOKEN`.
    pub fn from_env() -> Option<Token> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        env("CIJOB_GITLAB_TOKEN")
            .or_else(|| env("GITLAB_TOKEN"))
            .map(Token::Private)
            .or_else(|| env("CI_JOB_TOKEN").map(Token::Job))
    }

    fn header(&self) -> (&'static str, &str) {
        match self {
            Token::Private(t) => ("PRIVATE-TOKEN", t.trim()),
            Token::Job(t) => ("JOB-TOKEN", t.trim()),
        }
    }
}

/// How non-local includes are fetched.
#[derive(Clone, Default)]
pub struct LoadOptions {
    /// The GitLab instance (`https://gitlab.example.com`). `None`: `https://gitlab.com`, and a
    /// component's own host for components.
    pub gitlab_url: Option<String>,
    pub token: Option<Token>,
    /// Always fetch; never fall back to the cache.
    pub refresh: bool,
    /// Use a cached copy when there is one, fetching only what is missing (shell
    /// completion: a key press must not wait on the network).
    pub prefer_cache: bool,
    /// Skip includes that can be neither fetched nor found in the cache (with a warning).
    pub allow_missing: bool,
    /// `None`: [`cache::default_dir`].
    pub cache_dir: Option<PathBuf>,
    /// `None`: the real HTTP client.
    pub fetcher: Option<Arc<dyn Fetcher>>,
    /// Variables for include `rules:if` and variables in include paths.
    pub variables: Vec<(String, String)>,
}

impl std::fmt::Debug for LoadOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadOptions")
            .field("gitlab_url", &self.gitlab_url)
            .field("token", &self.token)
            .field("refresh", &self.refresh)
            .field("prefer_cache", &self.prefer_cache)
            .field("allow_missing", &self.allow_missing)
            .field("cache_dir", &self.cache_dir)
            .field("variables", &self.variables)
            .finish_non_exhaustive()
    }
}

impl LoadOptions {
    /// Defaults plus the environment: `CIJOB_GITLAB_URL` and the token variables.
    pub fn from_env() -> Self {
        LoadOptions {
            gitlab_url: std::env::var("CIJOB_GITLAB_URL")
                .ok()
                .filter(|v| !v.trim().is_empty()),
            token: Token::from_env(),
            ..LoadOptions::default()
        }
    }

    /// Settings for a project's pipeline: the token and `CIJOB_GITLAB_URL` from the
    /// environment; `gitlab_url` (else the git remote's host when it is not gitlab.com) as the
    /// instance; and the variables include rules and paths commonly test (`$CI_PROJECT_PATH`,
    /// `$CI_COMMIT_*`) from git.
    pub fn for_project(gitlab_url: Option<String>, git: &GitInfo) -> Self {
        let mut options = Self::from_env();
        if let Some(url) = gitlab_url.filter(|u| !u.trim().is_empty()) {
            options.gitlab_url = Some(url);
        }
        if options.gitlab_url.is_none() {
            let host = crate::project::predefined::server_host(git);
            if host != "gitlab.com" {
                options.gitlab_url = Some(format!("https://{host}"));
            }
        }
        let path = if git.namespace.is_empty() {
            git.project.clone()
        } else {
            format!("{}/{}", git.namespace, git.project)
        };
        let mut vars = vec![
            ("CI_PROJECT_PATH", path),
            ("CI_PROJECT_NAME", git.project.clone()),
            ("CI_PROJECT_NAMESPACE", git.namespace.clone()),
            ("CI_COMMIT_SHA", git.sha.clone()),
            ("CI_COMMIT_REF_NAME", git.ref_name.clone()),
            ("CI_DEFAULT_BRANCH", git.default_branch.clone()),
        ];
        vars.extend(git.branch.clone().map(|b| ("CI_COMMIT_BRANCH", b)));
        vars.extend(git.tag.clone().map(|t| ("CI_COMMIT_TAG", t)));
        options.variables = vars.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        options
    }

    fn server(&self) -> String {
        self.gitlab_url
            .as_deref()
            .unwrap_or(DEFAULT_GITLAB_URL)
            .trim_end_matches('/')
            .to_owned()
    }
}

/// `https://host:port/path` -> `host:port`.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

/// One file that took part in the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceFile {
    /// Path as shown to the user: relative to the project root when inside it; for fetched
    /// files, what was included (`template:NAME`, a URL, `project:P/FILE@REF`...).
    pub display: PathBuf,
    pub text: String,
    /// Line of each top-level key, indexed on first use (one scan per file, not per job).
    pub key_lines: std::sync::OnceLock<HashMap<String, usize>>,
}

impl SourceFile {
    pub fn key_line(&self, key: &str) -> Option<usize> {
        self.key_lines
            .get_or_init(|| yaml::top_level_key_lines(&self.text))
            .get(key)
            .copied()
    }
}

/// The configuration after every include has been merged.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    pub config: Mapping,
    pub files: Vec<SourceFile>,
    /// Top-level key -> index in `files` of the last file that defined it.
    pub origins: HashMap<String, usize>,
    /// Lines to show the user (cache used, include skipped...), without the `warning:` prefix.
    pub warnings: Vec<String>,
    /// Includes skipped because they were unavailable (with `allow_missing`).
    pub missing: Vec<String>,
}

impl Merged {
    /// File and 1-based line of a top-level key, found by scanning the defining file.
    pub fn key_location(&self, key: &str) -> Option<(PathBuf, Option<usize>)> {
        let file = self.files.get(*self.origins.get(key)?)?;
        Some((file.display.clone(), file.key_line(key)))
    }

    /// A `ConfigError` located at a top-level key (falls back to the root file).
    pub fn error_at(&self, key: &str, message: impl Into<String>) -> ConfigError {
        let err = ConfigError::new(message);
        match self.key_location(key) {
            Some((file, Some(line))) => {
                let text = self.files[self.origins[key]].text.as_str();
                err.in_file(file).at(line, None).with_source(text)
            }
            Some((file, None)) => err.in_file(file),
            None => match self.files.first() {
                Some(f) => err.in_file(f.display.clone()),
                None => err,
            },
        }
    }
}

/// Load `file` and everything it includes, relative to `root`.
pub fn load_with(root: &Path, file: &Path, options: &LoadOptions) -> Result<Merged, ConfigError> {
    let server = options.server();
    let host = host_of(&server).to_owned();
    let mut vars: HashMap<String, String> = HashMap::new();
    for (k, v) in [
        ("GITLAB_CI", "true".to_owned()),
        ("CI_SERVER_URL", server.clone()),
        ("CI_SERVER_FQDN", host.clone()),
        (
            "CI_SERVER_HOST",
            host.split(':').next().unwrap_or(&host).to_owned(),
        ),
        (
            "CI_SERVER_PROTOCOL",
            server.split("://").next().unwrap_or("https").to_owned(),
        ),
    ] {
        vars.insert(k.to_owned(), v);
    }
    let mut ctx = Ctx {
        root,
        options,
        fetcher: options
            .fetcher
            .clone()
            .unwrap_or_else(|| Arc::new(HttpFetcher::default())),
        cache: options
            .cache_dir
            .clone()
            .or_else(cache::default_dir)
            .map(Cache::new),
        vars,
        files: Vec::new(),
        origins: HashMap::new(),
        stack: Vec::new(),
        count: 0,
        warnings: Vec::new(),
        missing: Vec::new(),
    };
    let display = ctx.display(file);
    let text = read_local(file, &display)?;
    let source = Source {
        key: file.display().to_string(),
        display,
        text,
        origin: Origin::Local,
    };
    let config = ctx.load_source(source, None, &Mapping::new(), 0)?;
    Ok(Merged {
        config,
        files: ctx.files,
        origins: ctx.origins,
        warnings: ctx.warnings,
        missing: ctx.missing,
    })
}

fn read_local(path: &Path, display: &Path) -> Result<String, ConfigError> {
    let size = std::fs::metadata(path)
        .map_err(|e| ConfigError::new(format!("cannot read: {e}")).in_file(display))?
        .len();
    if size > MAX_FILE_BYTES {
        return Err(ConfigError::new(format!(
            "file is too large ({size} bytes; the limit is {MAX_FILE_BYTES})"
        ))
        .in_file(display));
    }
    std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(format!("cannot read: {e}")).in_file(display))
}

/// Where a file came from: decides what a nested `local:` include means.
#[derive(Debug, Clone, PartialEq)]
enum Origin {
    /// The project on disk.
    Local,
    /// A file of another project at a ref (project and component includes).
    Project { project: String, reference: String },
    /// A remote URL or a template: local includes are not allowed inside.
    Remote,
}

/// A file ready to be parsed.
struct Source {
    /// Identity for cycle detection (path or URL).
    key: String,
    display: PathBuf,
    text: String,
    origin: Origin,
}

struct Ctx<'a> {
    root: &'a Path,
    options: &'a LoadOptions,
    fetcher: Arc<dyn Fetcher>,
    cache: Option<Cache>,
    vars: HashMap<String, String>,
    files: Vec<SourceFile>,
    origins: HashMap<String, usize>,
    stack: Vec<(String, PathBuf)>,
    count: usize,
    warnings: Vec<String>,
    missing: Vec<String>,
}

/// What one `include:` entry asks for.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Local(String),
    Remote(String),
    Template(String),
    Project {
        project: String,
        files: Vec<String>,
        reference: Option<String>,
    },
    Component(String),
    Artifact(String),
}

#[derive(Debug, Clone, PartialEq)]
struct Entry {
    kind: Kind,
    inputs: Option<Mapping>,
    rules: Option<Value>,
}

impl Kind {
    /// How the entry is named in messages: `remote "URL"`.
    fn describe(&self) -> String {
        match self {
            Kind::Local(p) => format!("local \"{p}\""),
            Kind::Remote(u) => format!("remote \"{u}\""),
            Kind::Template(t) => format!("template \"{t}\""),
            Kind::Project {
                project,
                files,
                reference,
            } => format!(
                "project \"{project}\" file \"{}\"{}",
                files.join(", "),
                reference
                    .as_ref()
                    .map(|r| format!(" ref \"{r}\""))
                    .unwrap_or_default()
            ),
            Kind::Component(c) => format!("component \"{c}\""),
            Kind::Artifact(a) => format!("artifact \"{a}\""),
        }
    }

    /// Text to look for in the including file to point at the entry's line.
    fn needle(&self) -> &str {
        match self {
            Kind::Local(s) | Kind::Remote(s) | Kind::Template(s) | Kind::Component(s) => s,
            Kind::Artifact(s) => s,
            Kind::Project { project, .. } => project,
        }
    }
}

/// Why an include could not be resolved.
enum Failure {
    /// The configuration is wrong: always an error.
    Invalid(String),
    /// The file could not be obtained: an error, or a warning with `allow_missing`.
    Unavailable(String),
}

impl From<String> for Failure {
    fn from(m: String) -> Self {
        Failure::Invalid(m)
    }
}

/// A fetched body, or the HTTP status that refused it.
enum Got {
    Body(String),
    Status(u16),
}

impl Ctx<'_> {
    fn display(&self, path: &Path) -> PathBuf {
        path.strip_prefix(self.root)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| path.to_path_buf())
    }

    fn load_source(
        &mut self,
        source: Source,
        inputs: Option<&Mapping>,
        contexts: &Mapping,
        depth: usize,
    ) -> Result<Mapping, ConfigError> {
        let Source {
            key,
            display,
            text,
            origin,
        } = source;
        let doc = yaml::parse_ci(&text, &display)?;
        let config = match &doc.header {
            Some(header) => inputs::interpolate_with(header, inputs, doc.config, contexts)
                .map_err(|m| ConfigError::new(m).in_file(&display))?,
            None if inputs.is_some_and(|i| !i.is_empty()) => {
                return Err(ConfigError::new(
                    "include passes `inputs` but the file has no `spec: inputs` header",
                )
                .in_file(&display))
            }
            None => doc.config,
        };
        let mut own = match config {
            Value::Mapping(m) => m,
            Value::Null => Mapping::new(),
            other => {
                return Err(ConfigError::new(format!(
                    "the configuration must be a mapping, not {}",
                    yaml::type_name(&other)
                ))
                .in_file(&display))
            }
        };
        let index = self.files.len();
        self.files.push(SourceFile {
            display: display.clone(),
            text,
            key_lines: Default::default(),
        });
        self.stack.push((key, display));
        if depth == 0 {
            // The root file's variables are visible to include rules, as in GitLab.
            if let Some(Value::Mapping(vars)) = own.get("variables") {
                for (k, v) in vars {
                    let value = match v {
                        Value::Mapping(m) => m.get("value").and_then(yaml::scalar_string),
                        other => yaml::scalar_string(other),
                    };
                    if let (Some(k), Some(v)) = (k.as_str(), value) {
                        self.vars.insert(k.to_owned(), v);
                    }
                }
            }
            for (k, v) in &self.options.variables {
                self.vars.insert(k.clone(), v.clone());
            }
        }

        let mut acc = Mapping::new();
        if let Some(includes) = own.shift_remove("include") {
            let entries =
                parse_entries(&includes).map_err(|m| self.located(index, "include", m))?;
            for entry in entries {
                let at = |ctx: &Self, m: String| ctx.entry_error(index, entry.kind.needle(), m);
                if let Some(rules) = &entry.rules {
                    let root = (origin == Origin::Local).then_some(self.root);
                    let vars = &self.vars;
                    let lookup = |k: &str| vars.get(k).cloned();
                    let taken = rules::evaluate(rules, &lookup, root)
                        .map_err(|m| at(self, format!("include rules: {m}")))?;
                    if !taken {
                        continue;
                    }
                }
                let targets = match self.resolve(&entry.kind, &origin) {
                    Ok(t) => t,
                    Err(Failure::Invalid(m)) => return Err(at(self, m)),
                    Err(Failure::Unavailable(m)) if self.options.allow_missing => {
                        let here = self.files[index].display.display().to_string();
                        let line = find_line(&self.files[index].text, entry.kind.needle());
                        let loc = line.map(|l| format!("{here}:{l}")).unwrap_or(here);
                        self.warnings.push(format!(
                            "{loc}: skipping include of {}: {m}",
                            entry.kind.describe()
                        ));
                        self.missing.push(entry.kind.describe());
                        continue;
                    }
                    Err(Failure::Unavailable(m)) => return Err(at(self, m)),
                };
                for (target, ctx_extra) in targets {
                    self.count += 1;
                    if self.count > MAX_INCLUDES {
                        return Err(self.located(
                            index,
                            "include",
                            format!("too many includes: at most {MAX_INCLUDES} are allowed"),
                        ));
                    }
                    if let Some(pos) = self.stack.iter().position(|(k, _)| *k == target.key) {
                        let chain: Vec<String> = self.stack[pos..]
                            .iter()
                            .map(|(_, d)| d.display().to_string())
                            .chain(std::iter::once(target.display.display().to_string()))
                            .collect();
                        return Err(self.located(
                            index,
                            "include",
                            format!("include cycle: {}", chain.join(" -> ")),
                        ));
                    }
                    if depth + 1 > MAX_DEPTH {
                        return Err(self.located(
                            index,
                            "include",
                            format!("includes are nested too deeply (limit {MAX_DEPTH})"),
                        ));
                    }
                    let included =
                        self.load_source(target, entry.inputs.as_ref(), &ctx_extra, depth + 1)?;
                    deep_merge(&mut acc, included);
                }
            }
        }
        for (k, v) in own {
            if let Some(key) = k.as_str() {
                self.origins.insert(key.to_owned(), index);
            }
            let mut single = Mapping::new();
            single.insert(k, v);
            deep_merge(&mut acc, single);
        }
        self.stack.pop();
        Ok(acc)
    }

    fn located(&self, index: usize, key: &str, message: String) -> ConfigError {
        let file = &self.files[index];
        let err = ConfigError::new(message).in_file(&file.display);
        match file.key_line(key) {
            Some(line) => err.at(line, None).with_source(&file.text),
            None => err,
        }
    }

    /// An error at the line of the include entry (the first line after `include:` naming
    /// it), else at `include:` itself.
    fn entry_error(&self, index: usize, needle: &str, message: String) -> ConfigError {
        let file = &self.files[index];
        match find_line(&file.text, needle) {
            Some(line) => ConfigError::new(message)
                .in_file(&file.display)
                .at(line, None)
                .with_source(&file.text),
            None => self.located(index, "include", message),
        }
    }

    /// `$VAR` / `${VAR}` from the loading variables; unknown ones are left as written.
    fn expand(&self, s: &str) -> String {
        crate::expand::expand(s, &|k| {
            Some(
                self.vars
                    .get(k)
                    .cloned()
                    .unwrap_or_else(|| format!("${{{k}}}")),
            )
        })
    }

    /// The files one entry stands for, each with its interpolation contexts.
    fn resolve(&mut self, kind: &Kind, origin: &Origin) -> Result<Vec<(Source, Mapping)>, Failure> {
        let none = Mapping::new;
        match kind {
            Kind::Local(raw) => {
                let path = self.expand(raw);
                match origin {
                    Origin::Local => {
                        let mut out = Vec::new();
                        for target in self.resolve_local(raw, &path)? {
                            let display = self.display(&target);
                            let text = read_local(&target, &display)
                                .map_err(|e| Failure::Invalid(e.to_string()))?;
                            out.push((
                                Source {
                                    key: target.display().to_string(),
                                    display,
                                    text,
                                    origin: Origin::Local,
                                },
                                none(),
                            ));
                        }
                        Ok(out)
                    }
                    Origin::Project { project, reference } => {
                        let (project, reference) = (project.clone(), reference.clone());
                        if glob::is_glob(&path) {
                            return Err(Failure::Invalid(format!(
                                "local include \"{raw}\" in a file of project {project}: \
                                 wildcards are not supported in fetched projects"
                            )));
                        }
                        let src = self.project_file(&project, &path, &reference)?;
                        Ok(vec![(src, none())])
                    }
                    Origin::Remote => Err(Failure::Invalid(format!(
                        "local include \"{raw}\" is not allowed in a remote or template file: \
                         it has no project to be local to"
                    ))),
                }
            }
            Kind::Remote(raw) => {
                let url = self.expand(raw);
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(Failure::Invalid(format!(
                        "remote include \"{raw}\" must be an http(s) URL"
                    )));
                }
                let what = format!("remote include \"{url}\"");
                let text = self.fetch_ok(&url, false, &what)?;
                Ok(vec![(
                    Source {
                        key: url.clone(),
                        display: PathBuf::from(&url),
                        text,
                        origin: Origin::Remote,
                    },
                    none(),
                )])
            }
            Kind::Template(name) => {
                let name = self.expand(name);
                if name.contains("..") {
                    return Err(Failure::Invalid(format!(
                        "template \"{name}\" is invalid: `..` is not allowed"
                    )));
                }
                let url = format!(
                    "{}/{TEMPLATES_PATH}/{}",
                    self.options.server(),
                    name.trim_start_matches('/')
                );
                let what = format!("template \"{name}\" ({url})");
                let text = self.fetch_ok(&url, false, &what)?;
                Ok(vec![(
                    Source {
                        key: url,
                        display: PathBuf::from(format!("template:{name}")),
                        text,
                        origin: Origin::Remote,
                    },
                    none(),
                )])
            }
            Kind::Project {
                project,
                files,
                reference,
            } => {
                let project = self.expand(project).trim_matches('/').to_owned();
                let reference = reference
                    .as_deref()
                    .map(|r| self.expand(r))
                    .unwrap_or_else(|| "HEAD".to_owned());
                for s in [&project, &reference] {
                    if s.contains('$') {
                        return Err(Failure::Invalid(format!(
                            "project include: \"{s}\" uses a variable that is not known while loading"
                        )));
                    }
                }
                let mut out = Vec::new();
                for file in files {
                    let file = self.expand(file);
                    match self.project_file(&project, &file, &reference) {
                        Ok(src) => out.push((src, none())),
                        // One unavailable file of a list must not hide the others.
                        Err(Failure::Unavailable(m))
                            if self.options.allow_missing && files.len() > 1 =>
                        {
                            self.warnings
                                .push(format!("skipping one file of an include: {m}"));
                            self.missing
                                .push(format!("project \"{project}\" file \"{file}\""));
                        }
                        Err(e) => return Err(e),
                    }
                }
                Ok(out)
            }
            Kind::Component(raw) => self.component(raw),
            Kind::Artifact(a) => Err(Failure::Invalid(format!(
                "include of artifact \"{a}\" is only possible in trigger:include (child pipelines)"
            ))),
        }
    }

    /// One file of a project at a ref, through the repository files API.
    fn project_file(
        &mut self,
        project: &str,
        file: &str,
        reference: &str,
    ) -> Result<Source, Failure> {
        let file = file.trim_start_matches('/');
        let url = self.api_file_url(&self.options.server(), project, file, reference);
        let what = format!("project include \"{project}\" file \"{file}\" (ref {reference})");
        let text = self.fetch_ok(&url, true, &what)?;
        Ok(Source {
            key: url,
            display: PathBuf::from(format!("project:{project}/{file}@{reference}")),
            text,
            origin: Origin::Project {
                project: project.to_owned(),
                reference: reference.to_owned(),
            },
        })
    }

    fn api_file_url(&self, server: &str, project: &str, file: &str, reference: &str) -> String {
        format!(
            "{server}/api/v4/projects/{}/repository/files/{}/raw?ref={}",
            fetch::encode(project),
            fetch::encode(file),
            fetch::encode(reference)
        )
    }

    /// `HOST/PATH/NAME@VERSION`: `templates/NAME.yml` or `templates/NAME/template.yml` of
    /// project PATH at VERSION (`~latest` and partial versions through the releases API).
    fn component(&mut self, raw: &str) -> Result<Vec<(Source, Mapping)>, Failure> {
        let spec = self.expand(raw);
        let (address, version) = spec.rsplit_once('@').ok_or_else(|| {
            Failure::Invalid(format!("component \"{spec}\" must have a version (`@1.0`)"))
        })?;
        let (host, path) = address.split_once('/').ok_or_else(|| {
            Failure::Invalid(format!(
                "component \"{spec}\" must be HOST/PROJECT/NAME@VERSION"
            ))
        })?;
        let (project, name) = path.rsplit_once('/').ok_or_else(|| {
            Failure::Invalid(format!(
                "component \"{spec}\" must be HOST/PROJECT/NAME@VERSION"
            ))
        })?;
        if spec.contains('$') || version.is_empty() || name.is_empty() {
            return Err(Failure::Invalid(format!(
                "component \"{spec}\" is invalid (unknown variable or empty name/version)"
            )));
        }
        // The project's own component at the checked-out commit is the working tree's copy.
        let own = |k: &str| self.vars.get(k).map(String::as_str);
        if own("CI_PROJECT_PATH") == Some(project) && own("CI_COMMIT_SHA") == Some(version) {
            for file in [
                format!("templates/{name}.yml"),
                format!("templates/{name}/template.yml"),
            ] {
                let path = self.root.join(&file);
                if path.is_file() {
                    let display = self.display(&path);
                    let text =
                        read_local(&path, &display).map_err(|e| Failure::Invalid(e.to_string()))?;
                    let mut component = Mapping::new();
                    for (k, v) in [
                        ("name", name),
                        ("version", version),
                        ("reference", version),
                        ("sha", version),
                    ] {
                        component.insert(k.into(), v.into());
                    }
                    let mut contexts = Mapping::new();
                    contexts.insert("component".into(), Value::Mapping(component));
                    return Ok(vec![(
                        Source {
                            key: path.display().to_string(),
                            display,
                            text,
                            origin: Origin::Local,
                        },
                        contexts,
                    )]);
                }
            }
        }
        // Without a configured instance, the component's own host is the instance.
        let server = match &self.options.gitlab_url {
            Some(_) => self.options.server(),
            None => format!("https://{host}"),
        };
        let reference = self.component_version(&server, project, version, &spec)?;
        let candidates = [
            format!("templates/{name}.yml"),
            format!("templates/{name}/template.yml"),
        ];
        for file in &candidates {
            let url = self.api_file_url(&server, project, file, &reference);
            let what = format!("component \"{spec}\" ({file})");
            match self.fetch(&url, true, &what)? {
                Got::Status(404) => continue,
                Got::Status(s) => return Err(status_failure(&what, &url, s, self.options)),
                Got::Body(text) => {
                    let sha = if text.contains("component.sha") {
                        self.commit_sha(&server, project, &reference, &spec)?
                    } else {
                        reference.clone()
                    };
                    let mut component = Mapping::new();
                    component.insert("name".into(), name.into());
                    component.insert("version".into(), reference.clone().into());
                    component.insert("reference".into(), version.into());
                    component.insert("sha".into(), sha.into());
                    let mut contexts = Mapping::new();
                    contexts.insert("component".into(), Value::Mapping(component));
                    return Ok(vec![(
                        Source {
                            key: url,
                            display: PathBuf::from(format!("component:{address}@{reference}")),
                            text,
                            origin: Origin::Project {
                                project: project.to_owned(),
                                reference: reference.clone(),
                            },
                        },
                        contexts,
                    )]);
                }
            }
        }
        Err(Failure::Unavailable(format!(
            "component: `{spec}`. One of the files [{}] must exist in `{host}/{project}`",
            candidates.join(",")
        )))
    }

    /// The ref a component version names: `~latest` and partial semver (`1`, `1.2`) are the
    /// highest matching release; anything else (full version, branch, sha) is used as is.
    fn component_version(
        &mut self,
        server: &str,
        project: &str,
        version: &str,
        spec: &str,
    ) -> Result<String, Failure> {
        let partial = version
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            && version.split('.').count() < 3;
        if version != "~latest" && !partial {
            return Ok(version.to_owned());
        }
        let url = format!(
            "{server}/api/v4/projects/{}/releases?per_page=100",
            fetch::encode(project)
        );
        let what = format!("component \"{spec}\" (releases of {project})");
        let releases: Vec<serde_json::Value> = match self.fetch(&url, true, &what)? {
            Got::Body(body) => serde_json::from_str(&body).map_err(|_| {
                Failure::Unavailable(format!(
                    "{what}: the releases API did not answer a JSON list"
                ))
            })?,
            // No releases to choose from: the version may still be a tag (`@1`).
            Got::Status(_) => vec![],
        };
        let prefix: Vec<u64> = if partial {
            version.split('.').filter_map(|p| p.parse().ok()).collect()
        } else {
            vec![]
        };
        releases
            .iter()
            .filter_map(|r| r.get("tag_name")?.as_str())
            .filter_map(|tag| Some((semver(tag)?, tag)))
            .filter(|(v, _)| v.starts_with(&prefix))
            .max()
            .map(|(_, tag)| tag.to_owned())
            // A tag named like a partial version (`1`) is a ref of its own, as GitLab allows.
            .or_else(|| partial.then(|| version.to_owned()))
            .ok_or_else(|| {
                Failure::Unavailable(format!("{what}: no release matches version `{version}`"))
            })
    }

    fn commit_sha(
        &mut self,
        server: &str,
        project: &str,
        reference: &str,
        spec: &str,
    ) -> Result<String, Failure> {
        let url = format!(
            "{server}/api/v4/projects/{}/repository/commits/{}",
            fetch::encode(project),
            fetch::encode(reference)
        );
        let what = format!("component \"{spec}\" (commit of {reference})");
        let body = self.fetch_ok(&url, true, &what)?;
        serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("id")?.as_str().map(str::to_owned))
            .ok_or_else(|| Failure::Unavailable(format!("{what}: unexpected answer from the API")))
    }

    /// Fetch and insist on a 200 answer.
    fn fetch_ok(&mut self, url: &str, auth: bool, what: &str) -> Result<String, Failure> {
        match self.fetch(url, auth, what)? {
            Got::Body(b) => Ok(b),
            Got::Status(s) => Err(status_failure(what, url, s, self.options)),
        }
    }

    /// GET `url` (with the token when `auth`: only API calls to the configured instance
    /// carry it); on a network failure, fall back to the cached copy unless refreshing.
    fn fetch(&mut self, url: &str, auth: bool, what: &str) -> Result<Got, Failure> {
        let mut headers: Vec<(&str, &str)> = Vec::new();
        let token = self.options.token.clone();
        // The token belongs to the configured instance: never send it anywhere else (a
        // component on another host, when no instance is configured).
        let own_server = url.starts_with(&format!("{}/", self.options.server()));
        if auth && own_server {
            if let Some(t) = &token {
                headers.push(t.header());
            }
        }
        let cached = |ctx: &Self| ctx.cache.as_ref().and_then(|c| c.get(url));
        if self.options.prefer_cache && !self.options.refresh {
            if let Some(body) = cached(self) {
                return Ok(Got::Body(body));
            }
        }
        match self.fetcher.get(url, &headers) {
            Ok(resp) if resp.status == 200 => {
                let json = url.contains("/releases?") || url.contains("/repository/commits/");
                if !json {
                    check_yaml_like(&resp)
                        .map_err(|m| Failure::Unavailable(format!("{what}: {m}")))?;
                }
                if let Some(cache) = &self.cache {
                    if let Err(e) = cache.put(url, &resp.body) {
                        self.warnings.push(format!(
                            "cannot store {what} in the cache {}: {e}",
                            cache.dir().display()
                        ));
                    }
                }
                Ok(Got::Body(resp.body))
            }
            // A server error is an outage: the cached copy is still the best answer.
            Ok(resp) if resp.status >= 500 && !self.options.refresh && cached(self).is_some() => {
                self.warnings.push(format!(
                    "{what}: the server answered {}; using the cached copy",
                    resp.status
                ));
                Ok(Got::Body(cached(self).unwrap_or_default()))
            }
            Ok(resp) => Ok(Got::Status(resp.status)),
            Err(FetchError::Bad(m)) => Err(Failure::Unavailable(format!("{what}: {m} ({url})"))),
            Err(FetchError::Unreachable(m)) => {
                if !self.options.refresh {
                    if let Some(body) = cached(self) {
                        self.warnings.push(format!(
                            "{what}: cannot reach the server ({m}); using the cached copy"
                        ));
                        return Ok(Got::Body(body));
                    }
                }
                let why = if self.options.refresh {
                    "--refresh-includes: the cache is not used".to_owned()
                } else {
                    match &self.cache {
                        Some(c) => format!("and no cached copy in {}", c.dir().display()),
                        None => "and there is no cache directory".to_owned(),
                    }
                };
                Err(Failure::Unavailable(format!(
                    "{what} cannot be fetched: {m} ({why})"
                )))
            }
        }
    }

    /// Files a `local:` include names (several for a glob), relative to the project root.
    /// `raw` is as written, `expanded` after variable expansion.
    fn resolve_local(&self, raw: &str, expanded: &str) -> Result<Vec<PathBuf>, String> {
        if expanded.contains('$') {
            return Err(format!(
                "include of local-with-variable \"{raw}\": the variable is not known while \
                 loading (known: top-level variables, CI_SERVER_*, and --gitlab-url's)"
            ));
        }
        if expanded.starts_with("./") {
            return Err(format!(
                "`{raw}` for include:local is invalid: paths are relative to the project \
                 root and cannot start with `./`"
            ));
        }
        let rel = expanded.trim_start_matches('/');
        if Path::new(rel)
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(format!(
                "`{raw}` for include:local is invalid: directory traversal (`..`) is not allowed"
            ));
        }
        if rel.is_empty() {
            return Err("include:local path is empty".into());
        }
        if glob::is_glob(rel) {
            // A glob matching nothing includes nothing (as GitLab does for wildcards).
            return Ok(glob::find(self.root, rel));
        }
        let path = self.root.join(rel);
        if !path.is_file() {
            return Err(format!(
                "local include file \"{raw}\" cannot be found (looked for {})",
                path.display()
            ));
        }
        Ok(vec![path])
    }
}

/// `1.2.3` / `v1.2.3` -> [1, 2, 3]; pre-releases (`1.2.3-rc1`) and other tags -> None.
fn semver(tag: &str) -> Option<Vec<u64>> {
    let parts: Vec<u64> = tag
        .trim_start_matches('v')
        .split('.')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    (parts.len() == 3).then_some(parts)
}

fn status_failure(what: &str, url: &str, status: u16, options: &LoadOptions) -> Failure {
    let hint = match status {
        401 | 403 | 404 if options.token.is_none() => {
            " (if the project is private, set CIJOB_GITLAB_TOKEN or GITLAB_TOKEN)"
        }
        401 | 403 => " (the token was refused or lacks read_api/read_repository access)",
        404 => " (not found: check the name, the ref and the token's access)",
        _ => "",
    };
    Failure::Unavailable(format!(
        "{what}: the server answered HTTP {status} for {url}{hint}"
    ))
}

/// Refuse answers that are clearly not a CI file (a login page, an error page...).
fn check_yaml_like(resp: &fetch::Response) -> Result<(), String> {
    let html_type = resp
        .content_type
        .as_deref()
        .is_some_and(|t| t.to_ascii_lowercase().contains("text/html"));
    let start = resp.body.trim_start();
    let html_body = start.starts_with('<');
    if html_type || html_body {
        return Err(
            "the server answered an HTML page instead of YAML (a login page or a wrong URL?)"
                .into(),
        );
    }
    if resp.body.contains('\0') {
        return Err("the server answered binary data instead of YAML".into());
    }
    Ok(())
}

/// 1-based line of the first line containing `needle` after the `include:` key.
fn find_line(text: &str, needle: &str) -> Option<usize> {
    let start = yaml::top_level_key_line(text, "include").unwrap_or(1);
    text.lines()
        .enumerate()
        .skip(start - 1)
        .find(|(_, l)| !needle.is_empty() && l.contains(needle))
        .map(|(i, _)| i + 1)
}

fn parse_entries(value: &Value) -> Result<Vec<Entry>, String> {
    match value {
        Value::Sequence(items) => items.iter().map(parse_entry).collect(),
        Value::Null => Ok(vec![]),
        other => Ok(vec![parse_entry(other)?]),
    }
}

fn parse_entry(value: &Value) -> Result<Entry, String> {
    let plain = |kind| Entry {
        kind,
        inputs: None,
        rules: None,
    };
    match value {
        Value::String(s) if s.starts_with("https://") || s.starts_with("http://") => {
            Ok(plain(Kind::Remote(s.clone())))
        }
        Value::String(s) => Ok(plain(Kind::Local(s.clone()))),
        Value::Mapping(m) => {
            // `with` is the early name of `inputs` for components.
            let inputs = match m.get("inputs").or_else(|| m.get("with")) {
                Some(Value::Mapping(i)) => Some(i.clone()),
                None | Some(Value::Null) => None,
                Some(_) => return Err("include `inputs` must be a mapping".into()),
            };
            let rules = m.get("rules").cloned();
            let text = |key: &str| m.get(key).and_then(yaml::scalar_string);
            let kind = if let Some(path) = text("local") {
                Kind::Local(path)
            } else if let Some(url) = text("remote") {
                Kind::Remote(url)
            } else if let Some(name) = text("template") {
                Kind::Template(name)
            } else if let Some(c) = text("component") {
                Kind::Component(c)
            } else if let Some(a) = text("artifact") {
                Kind::Artifact(a)
            } else if let Some(project) = text("project") {
                let files = match m.get("file") {
                    Some(Value::Sequence(s)) => s.iter().filter_map(yaml::scalar_string).collect(),
                    Some(v) => yaml::scalar_string(v).into_iter().collect(),
                    None => vec![],
                };
                if files.is_empty() {
                    return Err(format!("include of project \"{project}\" needs `file:`"));
                }
                Kind::Project {
                    project,
                    files,
                    reference: text("ref"),
                }
            } else {
                return Err(format!(
                    "unknown include entry (expected local, remote, template, project or component): {}",
                    yaml::to_string(value).trim()
                ));
            };
            Ok(Entry {
                kind,
                inputs,
                rules,
            })
        }
        other => Err(format!(
            "include entries must be strings or mappings, not {}",
            yaml::type_name(other)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Load `file` and everything it includes, relative to `root`, with default options.
    fn load(root: &Path, file: &Path) -> Result<Merged, ConfigError> {
        load_with(root, file, &LoadOptions::default())
    }

    fn fixture(case: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/config")
            .join(case)
    }

    #[test]
    fn entry_kinds() {
        let v: Value = serde_yaml::from_str(
            "- a.yml\n- https://x/y.yml\n- {template: T.yml}\n- {project: g/p, file: [f.yml, g.yml], ref: v1}\n- {component: c@1, with: {a: 1}, rules: [{if: $X}]}\n",
        )
        .unwrap();
        let e = parse_entries(&v).unwrap();
        assert_eq!(e[0].kind, Kind::Local("a.yml".into()));
        assert_eq!(e[1].kind, Kind::Remote("https://x/y.yml".into()));
        assert_eq!(e[2].kind, Kind::Template("T.yml".into()));
        assert_eq!(
            e[3].kind,
            Kind::Project {
                project: "g/p".into(),
                files: vec!["f.yml".into(), "g.yml".into()],
                reference: Some("v1".into())
            }
        );
        assert_eq!(e[4].kind, Kind::Component("c@1".into()));
        assert!(e[4].inputs.is_some() && e[4].rules.is_some());
        assert!(parse_entries(&serde_yaml::from_str("{project: g/p}").unwrap()).is_err());
    }

    #[test]
    fn includes_merge_first_and_own_keys_override() {
        let root = fixture("include-order");
        let m = load(&root, &root.join(".gitlab-ci.yml")).unwrap();
        let job = &m.config["job"];
        // own file wins over included values, included-only keys survive (deep merge)
        assert_eq!(job["image"], Value::from("own"));
        assert_eq!(job["variables"]["A"], Value::from("from-b"));
        assert_eq!(job["variables"]["B"], Value::from("own"));
        assert_eq!(job["script"], Value::from("echo own"));
        // later include overrides earlier include
        assert_eq!(m.config["other"]["script"], Value::from("echo b"));
        // nested include reached
        assert!(m.config.contains_key("nested-job"));
        assert_eq!(
            m.key_location("nested-job").map(|l| l.0),
            Some(PathBuf::from("ci/nested.yml"))
        );
    }

    #[test]
    fn missing_file_cycle_and_offline_errors() {
        let root = fixture("include-errors");
        let e = load(&root, &root.join("missing.yml")).unwrap_err();
        assert!(e.message.contains("cannot be found"), "{e}");
        assert_eq!(e.line, Some(2), "the entry's line");
        let e = load(&root, &root.join("cycle-a.yml")).unwrap_err();
        assert!(
            e.message
                .contains("include cycle: cycle-a.yml -> cycle-b.yml -> cycle-a.yml"),
            "{e}"
        );
        let e = load(&root, &root.join("variable.yml")).unwrap_err();
        assert!(e.message.contains("local-with-variable"), "{e}");
        let e = load(&root, &root.join("traversal.yml")).unwrap_err();
        assert!(e.message.contains("directory traversal"), "{e}");
    }

    #[test]
    fn syntax_error_in_included_file_names_that_file() {
        let root = fixture("include-errors");
        let e = load(&root, &root.join("bad-include.yml")).unwrap_err();
        assert_eq!(e.file.as_deref(), Some(Path::new("broken.yml")));
        assert!(e.line.is_some_and(|l| l >= 3), "{e}");
        assert!(e.column.is_some());
    }

    /// Serves a fixed map of URL -> (status, body); anything else is "unreachable".
    #[derive(Default)]
    struct Fake {
        pages: HashMap<String, (u16, String)>,
        seen: std::sync::Mutex<Vec<(String, Vec<String>)>>,
    }

    impl Fetcher for Fake {
        fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<fetch::Response, FetchError> {
            self.seen.lock().unwrap().push((
                url.to_owned(),
                headers.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            ));
            match self.pages.get(url) {
                Some((status, body)) => Ok(fetch::Response {
                    status: *status,
                    content_type: None,
                    body: body.clone(),
                }),
                None => Err(FetchError::Unreachable("connection refused".into())),
            }
        }
    }

    const API: &str = "https://gl.test/api/v4/projects";

    fn setup(
        root_text: &str,
        pages: &[(&str, u16, &str)],
    ) -> (tempfile::TempDir, Arc<Fake>, LoadOptions) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".gitlab-ci.yml"), root_text).unwrap();
        let fake = Arc::new(Fake {
            pages: pages
                .iter()
                .map(|(u, s, b)| (u.to_string(), (*s, b.to_string())))
                .collect(),
            ..Fake::default()
        });
        let options = LoadOptions {
            gitlab_url: Some("https://gl.test/".into()),
            token: Some(Token::Private("secret".into())),
            cache_dir: Some(dir.path().join("cache")),
            fetcher: Some(fake.clone()),
            ..LoadOptions::default()
        };
        (dir, fake, options)
    }

    fn run(dir: &tempfile::TempDir, options: &LoadOptions) -> Result<Merged, ConfigError> {
        load_with(dir.path(), &dir.path().join(".gitlab-ci.yml"), options)
    }

    #[test]
    fn project_includes_nest_within_their_project_and_carry_the_token() {
        let (dir, fake, options) = setup(
            "include:\n  - project: g/p\n    ref: v1\n    file: [/a.yml]\n",
            &[
                (
                    &format!("{API}/g%2Fp/repository/files/a.yml/raw?ref=v1"),
                    200,
                    "include: [{local: ci/b.yml}]\na: {script: x}\n",
                ),
                (
                    &format!("{API}/g%2Fp/repository/files/ci%2Fb.yml/raw?ref=v1"),
                    200,
                    ".b: {image: alpine}\n",
                ),
            ],
        );
        let m = run(&dir, &options).unwrap();
        assert!(m.config.contains_key("a") && m.config.contains_key(".b"));
        assert_eq!(
            m.key_location(".b").unwrap().0,
            PathBuf::from("project:g/p/ci/b.yml@v1")
        );
        let seen = fake.seen.lock().unwrap();
        assert!(seen.iter().all(|(_, h)| h == &["PRIVATE-TOKEN=secret"]));
        // and the token never shows in debug output
        assert!(!format!("{options:?}").contains("secret"));
    }

    #[test]
    fn remote_files_cannot_include_local_files_and_get_no_token() {
        let (dir, fake, options) = setup(
            "include: https://r.test/x.yml\n",
            &[("https://r.test/x.yml", 200, "include: [{local: y.yml}]\n")],
        );
        let e = run(&dir, &options).unwrap_err();
        assert!(e.message.contains("not allowed in a remote"), "{e}");
        assert_eq!(e.file.as_deref(), Some(Path::new("https://r.test/x.yml")));
        assert!(fake.seen.lock().unwrap()[0].1.is_empty());
    }

    #[test]
    fn components_resolve_latest_and_apply_inputs() {
        let (dir, _, options) = setup(
            "include:\n  - component: gl.test/grp/comp/build@~latest\n    inputs: {stage: compile}\n",
            &[
                (
                    &format!("{API}/grp%2Fcomp/releases?per_page=100"),
                    200,
                    r#"[{"tag_name":"1.10.0"},{"tag_name":"2.0.0-rc1"},{"tag_name":"1.9.3"}]"#,
                ),
                (
                    &format!("{API}/grp%2Fcomp/repository/files/templates%2Fbuild.yml/raw?ref=1.10.0"),
                    404,
                    "",
                ),
                (
                    &format!("{API}/grp%2Fcomp/repository/files/templates%2Fbuild%2Ftemplate.yml/raw?ref=1.10.0"),
                    200,
                    "spec:\n  inputs:\n    stage: {default: build}\n---\nbuild-$[[ component.name ]]:\n  stage: $[[ inputs.stage ]]\n  script: echo $[[ component.version ]]\n",
                ),
            ],
        );
        let m = run(&dir, &options).unwrap();
        let job = &m.config["build-build"];
        assert_eq!(job["stage"], Value::from("compile"));
        assert_eq!(job["script"], Value::from("echo 1.10.0"));
    }

    #[test]
    fn missing_component_template_is_named_like_gitlab() {
        let (dir, _, options) = setup("include: [{component: gl.test/g/c/potato@1.0.0}]\n", &[]);
        let fake = Arc::new(Fake {
            pages: [
                format!("{API}/g%2Fc/repository/files/templates%2Fpotato.yml/raw?ref=1.0.0"),
                format!(
                    "{API}/g%2Fc/repository/files/templates%2Fpotato%2Ftemplate.yml/raw?ref=1.0.0"
                ),
            ]
            .into_iter()
            .map(|u| (u, (404, String::new())))
            .collect(),
            ..Fake::default()
        });
        let options = LoadOptions {
            fetcher: Some(fake),
            ..options
        };
        let e = run(&dir, &options).unwrap_err();
        assert!(
            e.message.contains("One of the files [templates/potato.yml,templates/potato/template.yml] must exist in `gl.test/g/c`"),
            "{e}"
        );
    }

    #[test]
    fn prefer_cache_asks_the_server_only_for_what_is_not_cached() {
        let url = "https://gl.test/gitlab-org/gitlab/-/raw/master/lib/gitlab/ci/templates/T.yml";
        let (dir, _, options) = setup(
            "include: [{template: T.yml}]\n",
            &[(url, 200, "t: {script: x}\n")],
        );
        run(&dir, &options).unwrap();
        let fake = Arc::new(Fake::default());
        let cached_first = LoadOptions {
            fetcher: Some(fake.clone()),
            prefer_cache: true,
            ..options.clone()
        };
        let m = run(&dir, &cached_first).unwrap();
        assert!(m.config.contains_key("t"));
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
        assert!(fake.seen.lock().unwrap().is_empty(), "the server was asked");
        // Nothing cached: it is fetched after all.
        let nothing_cached = LoadOptions {
            cache_dir: Some(dir.path().join("empty")),
            ..cached_first
        };
        assert!(run(&dir, &nothing_cached).is_err());
        assert_eq!(fake.seen.lock().unwrap().len(), 1);
    }

    #[test]
    fn cache_fallback_refresh_and_allow_missing() {
        let url = "https://gl.test/gitlab-org/gitlab/-/raw/master/lib/gitlab/ci/templates/T.yml";
        let (dir, _, options) = setup(
            "include: [{template: T.yml}]\n",
            &[(url, 200, "t: {script: x}\n")],
        );
        run(&dir, &options).unwrap();
        let offline = LoadOptions {
            fetcher: Some(Arc::new(Fake::default())),
            ..options.clone()
        };
        let m = run(&dir, &offline).unwrap();
        assert!(m.config.contains_key("t"));
        assert!(
            m.warnings[0].contains("using the cached copy"),
            "{:?}",
            m.warnings
        );
        assert!(m.warnings[0].contains("template \"T.yml\""));
        let refresh = LoadOptions {
            refresh: true,
            ..offline.clone()
        };
        let e = run(&dir, &refresh).unwrap_err();
        assert!(e.message.contains("--refresh-includes"), "{e}");
        assert_eq!(
            (e.line, e.file.as_deref()),
            (Some(1), Some(Path::new(".gitlab-ci.yml")))
        );
        let empty = LoadOptions {
            cache_dir: Some(dir.path().join("empty")),
            allow_missing: true,
            ..offline
        };
        let m = run(&dir, &empty).unwrap();
        assert!(m.config.is_empty());
        assert!(
            m.warnings[0].starts_with(".gitlab-ci.yml:1: skipping include of template"),
            "{:?}",
            m.warnings
        );
        assert_eq!(m.missing, ["template \"T.yml\""]);
    }

    #[test]
    fn html_answers_and_rules_are_handled() {
        let (dir, _, options) = setup(
            "variables: {WANT: 'yes'}\ninclude:\n  - remote: https://r.test/login\n    rules: [{if: $WANT == \"yes\"}]\n  - remote: https://r.test/skipped\n    rules: [{if: $WANT == \"no\"}]\n",
            &[("https://r.test/login", 200, "<!DOCTYPE html><html>login</html>")],
        );
        let e = run(&dir, &options).unwrap_err();
        assert!(e.message.contains("HTML page instead of YAML"), "{e}");
        assert!(e.message.contains("https://r.test/login"), "{e}");
        assert_eq!(e.line, Some(3));
    }
}

//! `include:` resolution: local files, and remote, template, project and component includes
//! fetched from a GitLab instance (with an on-disk cache for working offline). Files are
//! merged the way GitLab does: included files deep-merged first, in order; the including
//! file's own keys on top.
//!
//! This file is the recursion and its limits: parse a file's entries (`entry.rs`) → for
//! each, take its files from the project on disk (`local.rs`) or from GitLab (`gitlab.rs`)
//! → interpolate the entry's inputs → recurse. Include `rules:` are evaluated
//! (`load/rules.rs`) with the variables known while loading: `LoadOptions::variables`, the
//! root file's top-level `variables:`, the `CI_SERVER_*` variables of the configured
//! instance, and `GITLAB_CI=true`.

pub(crate) mod cache;
mod entry;
#[cfg(test)]
mod fake;
pub mod fetch;
mod gitlab;
mod local;
mod merged;
mod options;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use self::entry::{parse_entries, Component, Kind};
use self::gitlab::{Gitlab, Unavailable};
use crate::error::ConfigError;
use crate::load::glob;
use crate::load::inputs;
use crate::load::merge::deep_merge;
use crate::load::rules;
use crate::load::yaml::{self, Mapping, Value};

pub use self::merged::{Merged, SourceFile};
pub use self::options::{LoadOptions, Token};

/// GitLab's default limit on the number of includes in one pipeline.
pub const MAX_INCLUDES: usize = 150;
/// GitLab's limit on include nesting.
pub const MAX_DEPTH: usize = 100;
/// Refuse absurdly large files instead of exhausting memory.
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// Load `file` and everything it includes, relative to `root`.
pub fn load_with(root: &Path, file: &Path, options: &LoadOptions) -> Result<Merged, ConfigError> {
    let options = &*options.with_project(root);
    let vars = options
        .server_variables()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    let mut ctx = Ctx {
        root,
        options,
        gitlab: Gitlab::new(options),
        vars,
        files: Vec::new(),
        origins: HashMap::new(),
        stack: Vec::new(),
        count: 0,
        warnings: Vec::new(),
        missing: Vec::new(),
    };
    let source = ctx.local_source(file)?;
    let config = ctx.load_source(source, None, &Mapping::new(), 0)?;
    Ok(Merged {
        config,
        files: ctx.files,
        origins: ctx.origins,
        warnings: ctx.warnings,
        missing: ctx.missing,
    })
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

/// Why an include could not be resolved.
enum Failure {
    /// The configuration is wrong: always an error.
    Invalid(String),
    /// The file could not be obtained: an error, or a warning with `allow_missing`.
    Unavailable(Unavailable),
}

impl From<String> for Failure {
    fn from(m: String) -> Self {
        Failure::Invalid(m)
    }
}

impl From<Unavailable> for Failure {
    fn from(u: Unavailable) -> Self {
        Failure::Unavailable(u)
    }
}

struct Ctx<'a> {
    root: &'a Path,
    options: &'a LoadOptions,
    gitlab: Gitlab,
    vars: HashMap<String, String>,
    files: Vec<SourceFile>,
    origins: HashMap<String, usize>,
    stack: Vec<(String, PathBuf)>,
    count: usize,
    warnings: Vec<String>,
    missing: Vec<String>,
}

impl Ctx<'_> {
    fn display(&self, path: &Path) -> PathBuf {
        path.strip_prefix(self.root)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| path.to_path_buf())
    }

    /// A file of the project on disk.
    fn local_source(&self, path: &Path) -> Result<Source, ConfigError> {
        let display = self.display(path);
        let text = local::read(path, &display)?;
        Ok(Source {
            key: path.display().to_string(),
            display,
            text,
            origin: Origin::Local,
        })
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
                let at = |ctx: &Self, m: String| ctx.entry_error(index, &entry.kind, m);
                if let Some(rules) = &entry.rules {
                    let vars = &self.vars;
                    let lookup = |k: &str| vars.get(k).cloned();
                    // A remote file's `exists` cannot look at this project.
                    let project: &dyn rules::Project = match (&origin, &self.options.project) {
                        (Origin::Local, Some(p)) => p.as_ref(),
                        _ => &rules::Nowhere,
                    };
                    let taken = rules::evaluate(rules, &lookup, project)
                        .map_err(|m| at(self, format!("include rules: {m}")))?;
                    if !taken {
                        continue;
                    }
                }
                let targets = match self.resolve(&entry.kind, &origin) {
                    Ok(t) => t,
                    Err(Failure::Invalid(m)) => return Err(at(self, m)),
                    Err(Failure::Unavailable(m)) if self.options.allow_missing => {
                        let file = &self.files[index];
                        let here = file.display.display().to_string();
                        let loc = match entry.kind.line_in(&file.text) {
                            Some(line) => format!("{here}:{line}"),
                            None => here,
                        };
                        self.warnings.push(format!(
                            "{loc}: skipping include of {}: {m}",
                            entry.kind.describe()
                        ));
                        self.missing.push(entry.kind.describe());
                        continue;
                    }
                    Err(Failure::Unavailable(m)) => return Err(at(self, m.to_string())),
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

    /// An error at the line of the include entry, else at `include:` itself.
    fn entry_error(&self, index: usize, kind: &Kind, message: String) -> ConfigError {
        let file = &self.files[index];
        match kind.line_in(&file.text) {
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
                    Origin::Local => local::paths(self.root, raw, &path)?
                        .iter()
                        .map(|target| {
                            let source = self
                                .local_source(target)
                                .map_err(|e| Failure::Invalid(e.to_string()))?;
                            Ok((source, none()))
                        })
                        .collect(),
                    Origin::Project { project, reference } => {
                        if glob::is_glob(&path) {
                            return Err(Failure::Invalid(format!(
                                "local include \"{raw}\" in a file of project {project}: \
                                 wildcards are not supported in fetched projects"
                            )));
                        }
                        let src = self.project_file(project, &path, reference)?;
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
                let text = self.gitlab.remote(&url, &mut self.warnings)?;
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
                let fetched = self.gitlab.template(&name, &mut self.warnings)?;
                Ok(vec![(
                    Source {
                        key: fetched.url,
                        display: PathBuf::from(format!("template:{name}")),
                        text: fetched.text,
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

    /// One file of a project at a ref.
    fn project_file(
        &mut self,
        project: &str,
        file: &str,
        reference: &str,
    ) -> Result<Source, Failure> {
        let file = file.trim_start_matches('/');
        let fetched = self
            .gitlab
            .project_file(project, file, reference, &mut self.warnings)?;
        Ok(Source {
            key: fetched.url,
            display: PathBuf::from(format!("project:{project}/{file}@{reference}")),
            text: fetched.text,
            origin: Origin::Project {
                project: project.to_owned(),
                reference: reference.to_owned(),
            },
        })
    }

    /// `HOST/PROJECT/NAME@VERSION`, with the `component` interpolation context. The
    /// project's own component at the checked-out commit is the working tree's copy.
    fn component(&mut self, raw: &str) -> Result<Vec<(Source, Mapping)>, Failure> {
        let spec = self.expand(raw);
        let c = Component::parse(&spec)?;
        let own = |k: &str| self.vars.get(k).map(String::as_str);
        if own("CI_PROJECT_PATH") == Some(c.project) && own("CI_COMMIT_SHA") == Some(c.version) {
            for file in c.template_files() {
                let path = self.root.join(&file);
                if path.is_file() {
                    let source = self
                        .local_source(&path)
                        .map_err(|e| Failure::Invalid(e.to_string()))?;
                    let context = component_context(c.name, c.version, c.version, c.version);
                    return Ok(vec![(source, context)]);
                }
            }
        }
        let found = self.gitlab.component(&c, &mut self.warnings)?;
        let context = component_context(c.name, &found.reference, c.version, &found.sha);
        let source = Source {
            key: found.file.url,
            display: PathBuf::from(format!("component:{}@{}", c.address, found.reference)),
            text: found.file.text,
            origin: Origin::Project {
                project: c.project.to_owned(),
                reference: found.reference,
            },
        };
        Ok(vec![(source, context)])
    }
}

/// The `$[[ component.* ]]` context of a component's template: `version` is the ref the
/// version resolved to, `reference` the version as written.
fn component_context(name: &str, version: &str, reference: &str, sha: &str) -> Mapping {
    let mut component = Mapping::new();
    for (k, v) in [
        ("name", name),
        ("version", version),
        ("reference", reference),
        ("sha", sha),
    ] {
        component.insert(k.into(), v.into());
    }
    let mut contexts = Mapping::new();
    contexts.insert("component".into(), Value::Mapping(component));
    contexts
}

#[cfg(test)]
mod tests {
    use super::fake::Fake;
    use super::*;
    use std::sync::Arc;

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

    const API: &str = "https://gl.test/api/v4/projects";

    fn setup(
        root_text: &str,
        pages: &[(&str, u16, &str)],
    ) -> (tempfile::TempDir, Arc<Fake>, LoadOptions) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".gitlab-ci.yml"), root_text).unwrap();
        let fake = Arc::new(Fake::new(pages));
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
                    "spec:\n  inputs:\n    stage: {default: build}\n---\nbuild-$[[ component.name ]]:\n  stage: $[[ inputs.stage ]]\n  script: echo $[[ component.version ]] $[[ component.reference ]]\n",
                ),
            ],
        );
        let m = run(&dir, &options).unwrap();
        let job = &m.config["build-build"];
        assert_eq!(job["stage"], Value::from("compile"));
        assert_eq!(job["script"], Value::from("echo 1.10.0 ~latest"));
        assert_eq!(
            m.key_location("build-build").unwrap().0,
            PathBuf::from("component:gl.test/grp/comp/build@1.10.0")
        );
    }

    #[test]
    fn the_projects_own_component_at_its_commit_is_the_working_tree_copy() {
        let (dir, fake, mut options) =
            setup("include: [{component: gl.test/g/p/lint@abc123}]\n", &[]);
        std::fs::create_dir(dir.path().join("templates")).unwrap();
        std::fs::write(
            dir.path().join("templates/lint.yml"),
            "spec: {inputs: {}}\n---\nlint:\n  script: echo $[[ component.sha ]]\n",
        )
        .unwrap();
        options.variables = vec![
            ("CI_PROJECT_PATH".into(), "g/p".into()),
            ("CI_COMMIT_SHA".into(), "abc123".into()),
        ];
        let m = run(&dir, &options).unwrap();
        assert_eq!(m.config["lint"]["script"], Value::from("echo abc123"));
        assert_eq!(fake.requests(), 0, "nothing fetched");
    }

    #[test]
    fn unavailable_includes_are_errors_at_their_entry_or_skipped_when_allowed() {
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
    fn one_missing_file_of_a_project_include_does_not_hide_the_others() {
        let (dir, _, options) = setup(
            "include:\n  - project: g/p\n    file: [a.yml, gone.yml]\n",
            &[
                (
                    &format!("{API}/g%2Fp/repository/files/a.yml/raw?ref=HEAD"),
                    200,
                    "a: {script: x}\n",
                ),
                (
                    &format!("{API}/g%2Fp/repository/files/gone.yml/raw?ref=HEAD"),
                    404,
                    "",
                ),
            ],
        );
        let e = run(&dir, &options).unwrap_err();
        assert!(e.message.contains("HTTP 404"), "{e}");
        let allowed = LoadOptions {
            allow_missing: true,
            ..options
        };
        let m = run(&dir, &allowed).unwrap();
        assert!(m.config.contains_key("a"));
        assert_eq!(m.missing, ["project \"g/p\" file \"gone.yml\""]);
        assert!(m.warnings[0].starts_with("skipping one file of an include: "));
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

//! How includes are loaded: which GitLab instance and token, the cache and its policy
//! (`--refresh-includes`, cached first for completion), `--allow-missing-includes`, and the
//! variables known while loading.

use std::path::PathBuf;
use std::sync::Arc;

use super::fetch::Fetcher;
use crate::project::git::GitInfo;

/// The instance used when none is configured.
const DEFAULT_GITLAB_URL: &str = "https://gitlab.com";

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

    /// The HTTP header carrying the token.
    pub(super) fn header(&self) -> (&'static str, &str) {
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
    /// `None`: [`super::cache::default_dir`].
    pub cache_dir: Option<PathBuf>,
    /// `None`: the real HTTP client.
    pub fetcher: Option<Arc<dyn Fetcher>>,
    /// The pipeline's variables before YAML (predefined from git, then `--var`): include
    /// `rules:if` and paths, job and workflow `rules`.
    pub variables: Vec<(String, String)>,
    /// `--var` values (also at the end of `variables`): they win over YAML variables in rules.
    pub overrides: Vec<(String, String)>,
    /// The branch `rules:changes` compares with when a rule has no `compare_to`.
    pub default_branch: Option<String>,
    /// What `rules:changes`/`exists` look at. `None`: the worktree at the project root
    /// (`with_project`).
    pub project: Option<Arc<dyn crate::load::rules::Project + Send + Sync>>,
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
            .field("overrides", &self.overrides)
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
        options.variables = crate::project::predefined::pipeline_variables(git, &[]);
        options.default_branch = Some(git.default_branch.clone());
        options
    }

    /// These options with a `project` for the whole load: the worktree at `root` unless one
    /// is given. One, so that git is asked once (its answers are kept) for every include's
    /// and job's rules.
    pub fn with_project(&self, root: &std::path::Path) -> std::borrow::Cow<'_, Self> {
        if self.project.is_some() {
            return std::borrow::Cow::Borrowed(self);
        }
        let default_branch = self.default_branch.as_deref().unwrap_or("main");
        std::borrow::Cow::Owned(Self {
            project: Some(Arc::new(crate::project::worktree::Worktree::new(
                root,
                default_branch,
            ))),
            ..self.clone()
        })
    }

    /// `--var` values: predefined variables follow them (`CI_PIPELINE_SOURCE`), and they win
    /// over every other variable in rules and include paths.
    pub fn with_overrides(mut self, git: &GitInfo, overrides: Vec<(String, String)>) -> Self {
        self.variables = crate::project::predefined::pipeline_variables(git, &overrides);
        self.variables.extend(overrides.iter().cloned());
        self.overrides = overrides;
        self
    }

    /// The instance's URL without a trailing `/`.
    pub(super) fn server(&self) -> String {
        self.gitlab_url
            .as_deref()
            .unwrap_or(DEFAULT_GITLAB_URL)
            .trim_end_matches('/')
            .to_owned()
    }

    /// What GitLab predefines about the instance while loading: `GITLAB_CI` and
    /// `CI_SERVER_*`.
    pub(super) fn server_variables(&self) -> Vec<(&'static str, String)> {
        let server = self.server();
        let fqdn = host_of(&server).to_owned();
        vec![
            ("GITLAB_CI", "true".to_owned()),
            (
                "CI_SERVER_HOST",
                fqdn.split(':').next().unwrap_or(&fqdn).to_owned(),
            ),
            (
                "CI_SERVER_PROTOCOL",
                server.split("://").next().unwrap_or("https").to_owned(),
            ),
            ("CI_SERVER_FQDN", fqdn),
            ("CI_SERVER_URL", server),
        ]
    }
}

/// `https://host:port/path` -> `host:port`.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_variables_describe_the_configured_instance() {
        let options = LoadOptions {
            gitlab_url: Some("http://gl.test:8080/".into()),
            ..LoadOptions::default()
        };
        let vars = options.server_variables();
        let get = |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("CI_SERVER_URL"), Some("http://gl.test:8080"));
        assert_eq!(get("CI_SERVER_FQDN"), Some("gl.test:8080"));
        assert_eq!(get("CI_SERVER_HOST"), Some("gl.test"));
        assert_eq!(get("CI_SERVER_PROTOCOL"), Some("http"));
        assert_eq!(get("GITLAB_CI"), Some("true"));
        let default = LoadOptions::default().server_variables();
        assert!(default.contains(&("CI_SERVER_URL", DEFAULT_GITLAB_URL.to_owned())));
    }

    #[test]
    fn tokens_never_show_in_debug_output() {
        let options = LoadOptions {
            token: Some(Token::Job("secret".into())),
            ..LoadOptions::default()
        };
        assert!(!format!("{options:?}").contains("secret"));
        assert_eq!(
            Token::Private(" t \n".into()).header(),
            ("PRIVATE-TOKEN", "t")
        );
    }
}

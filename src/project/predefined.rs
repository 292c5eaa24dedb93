//! Predefined CI variables as a real job on GitLab with the docker executor sees them.
//!
//! Runner-side variables come first (feature flags, `CI_JOB_IMAGE`, runner and build
//! directories), then what GitLab sends in the job payload. Values GitLab would take from its
//! database use local stand-ins: ids are `1`, the server is the remote's host (`gitlab.com`
//! without a remote), visibility is `private`, the default branch counts as protected.
//! Secrets (`CI_JOB_TOKEN`, `CI_REGISTRY_PASSWORD`, `CI_REPOSITORY_URL` with its token, ...) are
//! left out.

use crate::model::{Job, Variable, When};
use crate::project::git::{iso8601_utc, remote_host_and_path, GitInfo};
use crate::project::name_rules::slugify;

/// The GitLab Runner release whose behaviour cijob reproduces.
pub const RUNNER_VERSION: &str = "19.3.0";
/// Stand-in for the runner's 8-character git revision.
pub const RUNNER_REVISION: &str = concat!("cijob-", env!("CARGO_PKG_VERSION"));
/// The GitLab version reported by `CI_SERVER_VERSION`.
pub const SERVER_VERSION: &str = "19.3.0";

/// Feature flags with their default values at the reproduced runner version.
pub const FEATURE_FLAGS: &[(&str, bool)] = &[
    ("FF_NETWORK_PER_BUILD", false),
    ("FF_USE_LEGACY_KUBERNETES_EXECUTION_STRATEGY", false),
    ("FF_USE_DIRECT_DOWNLOAD", true),
    ("FF_SKIP_NOOP_BUILD_STAGES", true),
    ("FF_USE_FASTZIP", false),
    ("FF_DISABLE_UMASK_FOR_DOCKER_EXECUTOR", false),
    ("FF_ENABLE_BASH_EXIT_CODE_CHECK", false),
    ("FF_USE_NEW_BASH_EVAL_STRATEGY", false),
    ("FF_USE_LEGACY_BASH_EVAL", false),
    ("FF_SCRIPT_SECTIONS", false),
    ("FF_ENABLE_JOB_CLEANUP", false),
    ("FF_POSIXLY_CORRECT_ESCAPES", false),
    ("FF_USE_INIT_WITH_DOCKER_EXECUTOR", false),
    ("FF_TIMESTAMPS", true),
];

/// Everything the runner and GitLab would define for this job before its YAML variables.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub job: &'a Job,
    pub git: &'a GitInfo,
    pub project_dir: &'a str,
    pub builds_dir: &'a str,
    pub image: Option<&'a str>,
    pub timeout_secs: u64,
    pub pipeline_source: &'a str,
    /// `CI_CONFIG_PATH`: the pipeline file relative to the project root.
    pub config_path: &'a str,
    pub concurrent_id: u32,
}

/// `GOARCH` naming of the machine cijob runs on, as `CI_RUNNER_EXECUTABLE_ARCH` uses.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

fn now_iso() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    iso8601_utc(secs)
}

/// The GitLab server host cijob pretends to be: the remote's host, else `gitlab.com`.
pub fn server_host(git: &GitInfo) -> String {
    git.remote_url
        .as_deref()
        .and_then(remote_host_and_path)
        .map(|(h, _)| h)
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "gitlab.com".to_string())
}

/// Split `Name <email>` into its parts.
fn split_author(author: &str) -> (String, String) {
    match author.rsplit_once(" <") {
        Some((n, e)) => (
            n.trim().to_string(),
            e.trim_end_matches('>').trim().to_string(),
        ),
        None => (author.trim().to_string(), String::new()),
    }
}

/// Predefined variables (public), in the runner's order, before YAML variables.
pub fn variables(ctx: &Context<'_>) -> Vec<Variable> {
    let mut v: Vec<Variable> = Vec::with_capacity(128);
    let mut put = |k: &str, val: String| v.push(Variable::new(k, val));
    let job = ctx.job;
    let git = ctx.git;

    // Runner side (common/build.go).
    for (flag, default) in FEATURE_FLAGS {
        put(flag, default.to_string());
    }
    if let Some(image) = ctx.image {
        put("CI_JOB_IMAGE", image.to_string());
    }
    put("CI_RUNNER_SHORT_TOKEN", "cijob000".into());
    put("CI_BUILDS_DIR", ctx.builds_dir.into());
    put("CI_PROJECT_DIR", ctx.project_dir.into());
    put("CI_CONCURRENT_ID", ctx.concurrent_id.to_string());
    put("CI_CONCURRENT_PROJECT_ID", ctx.concurrent_id.to_string());
    put("CI_SERVER", "yes".into());
    put("CI_JOB_STATUS", "running".into());
    put("CI_JOB_TIMEOUT", ctx.timeout_secs.to_string());
    put("CI_DISPOSABLE_ENVIRONMENT", "true".into());
    put("CI_RUNNER_VERSION", RUNNER_VERSION.into());
    put("CI_RUNNER_REVISION", RUNNER_REVISION.into());
    put("CI_RUNNER_EXECUTABLE_ARCH", format!("linux/{}", go_arch()));
    put(
        "RUNNER_TEMP_PROJECT_DIR",
        format!("{}.tmp", ctx.project_dir),
    );

    // GitLab side (job payload).
    let host = server_host(git);
    let server_url = format!("https://{host}");
    let project_path = format!("{}/{}", git.namespace, git.project);
    let project_url = format!("{server_url}/{project_path}");
    let now = now_iso();
    let (pipeline_id, job_id) = ("1", "1");

    put("CI_PIPELINE_ID", pipeline_id.into());
    put(
        "CI_PIPELINE_URL",
        format!("{project_url}/-/pipelines/{pipeline_id}"),
    );
    put("CI_JOB_ID", job_id.into());
    put("CI_JOB_URL", format!("{project_url}/-/jobs/{job_id}"));
    put("CI_JOB_STARTED_AT", now.clone());
    put("CI_REGISTRY_USER", "gitlab-ci-token".into());
    put("CI_DEPENDENCY_PROXY_USER", "gitlab-ci-token".into());
    put("CI_JOB_NAME", job.name.clone());
    put("CI_JOB_NAME_SLUG", slugify(&job.name));
    put("CI_JOB_GROUP_NAME", job.base_name.clone());
    put("CI_JOB_STAGE", job.stage.clone());
    if job.when == When::Manual {
        put("CI_JOB_MANUAL", "true".into());
    }
    if let Some(index) = job.node_index {
        put("CI_NODE_INDEX", index.to_string());
    }
    put("CI_NODE_TOTAL", job.node_total.max(1).to_string());
    put("CI", "true".into());
    put("GITLAB_CI", "true".into());
    put("CI_SERVER_FQDN", host.clone());
    put("CI_SERVER_URL", server_url.clone());
    put("CI_SERVER_HOST", host.clone());
    put("CI_SERVER_PORT", "443".into());
    put("CI_SERVER_PROTOCOL", "https".into());
    put("CI_SERVER_SHELL_SSH_HOST", host.clone());
    put("CI_SERVER_SHELL_SSH_PORT", "22".into());
    put("CI_SERVER_NAME", "GitLab".into());
    put("CI_SERVER_VERSION", SERVER_VERSION.into());
    let mut parts = SERVER_VERSION.split('.');
    for key in [
        "CI_SERVER_VERSION_MAJOR",
        "CI_SERVER_VERSION_MINOR",
        "CI_SERVER_VERSION_PATCH",
    ] {
        put(key, parts.next().unwrap_or("0").into());
    }
    put("CI_SERVER_REVISION", "".into());
    put("GITLAB_FEATURES", "".into());
    put("CI_PROJECT_ID", "1".into());
    put("CI_PROJECT_NAME", git.project.clone());
    put("CI_PROJECT_TITLE", git.project.clone());
    put("CI_PROJECT_DESCRIPTION", "".into());
    put("CI_PROJECT_PATH", project_path.clone());
    put("CI_PROJECT_PATH_SLUG", slugify(&project_path));
    put("CI_PROJECT_NAMESPACE", git.namespace.clone());
    put("CI_PROJECT_NAMESPACE_ID", "1".into());
    put(
        "CI_PROJECT_ROOT_NAMESPACE",
        git.namespace.split('/').next().unwrap_or_default().into(),
    );
    put("CI_PROJECT_URL", project_url.clone());
    put("CI_PROJECT_VISIBILITY", "private".into());
    put("CI_PROJECT_REPOSITORY_LANGUAGES", "".into());
    put("CI_PROJECT_CLASSIFICATION_LABEL", "".into());
    put("CI_DEFAULT_BRANCH", git.default_branch.clone());
    put("CI_CONFIG_PATH", ctx.config_path.into());
    let pages = if host == "gitlab.com" {
        "gitlab.io".to_string()
    } else {
        format!("pages.{host}")
    };
    put("CI_PAGES_DOMAIN", pages);
    put("CI_DEPENDENCY_PROXY_SERVER", format!("{host}:443"));
    let root_ns = git
        .namespace
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    put(
        "CI_DEPENDENCY_PROXY_GROUP_IMAGE_PREFIX",
        format!("{host}:443/{root_ns}/dependency_proxy/containers"),
    );
    put(
        "CI_DEPENDENCY_PROXY_DIRECT_GROUP_IMAGE_PREFIX",
        format!("{host}:443/{}/dependency_proxy/containers", git.namespace),
    );
    put("CI_API_V4_URL", format!("{server_url}/api/v4"));
    put("CI_API_GRAPHQL_URL", format!("{server_url}/api/graphql"));
    put("CI_TEMPLATE_REGISTRY_HOST", "registry.gitlab.com".into());
    let registry = format!("registry.{host}");
    put("CI_REGISTRY", registry.clone());
    put(
        "CI_REGISTRY_IMAGE",
        format!("{registry}/{}", project_path.to_lowercase()),
    );
    put("CI_RUNNER_ID", "1".into());
    put("CI_RUNNER_DESCRIPTION", "cijob".into());
    put("CI_RUNNER_TAGS", "[]".into());
    put("CI_PIPELINE_IID", "1".into());
    put("CI_PIPELINE_SOURCE", ctx.pipeline_source.into());
    put("CI_PIPELINE_CREATED_AT", now);
    put("CI_COMMIT_SHA", git.sha.clone());
    put("CI_COMMIT_SHORT_SHA", git.short_sha.clone());
    put("CI_COMMIT_BEFORE_SHA", git.before_sha.clone());
    put("CI_COMMIT_REF_NAME", git.ref_name.clone());
    put("CI_COMMIT_REF_SLUG", slugify(&git.ref_name));
    let merge_request = ctx.pipeline_source == MERGE_REQUEST_EVENT;
    // A merge request pipeline runs for the MR, not the branch: no CI_COMMIT_BRANCH.
    if let Some(b) = git.branch.as_ref().filter(|_| !merge_request) {
        put("CI_COMMIT_BRANCH", b.clone());
    }
    if let Some(t) = &git.tag {
        put("CI_COMMIT_TAG", t.clone());
    }
    put("CI_COMMIT_MESSAGE", git.message.clone());
    put("CI_COMMIT_MESSAGE_IS_TRUNCATED", "false".into());
    put("CI_COMMIT_TITLE", git.title.clone());
    put("CI_COMMIT_DESCRIPTION", git.description.clone());
    let protected = git.branch.as_deref() == Some(git.default_branch.as_str());
    put("CI_COMMIT_REF_PROTECTED", protected.to_string());
    put("CI_COMMIT_TIMESTAMP", git.timestamp.clone());
    put("CI_COMMIT_AUTHOR", git.author.clone());
    let (name, email) = split_author(&git.author);
    let name = if name.is_empty() {
        "cijob".to_string()
    } else {
        name
    };
    let email = if email.is_empty() {
        "cijob@localhost".to_string()
    } else {
        email
    };
    let login = email.split('@').next().unwrap_or_default().to_string();
    if merge_request {
        merge_request_variables(&mut put, git, &project_path, &project_url);
    }
    put("GITLAB_USER_ID", "1".into());
    put("GITLAB_USER_EMAIL", email);
    put("GITLAB_USER_LOGIN", login);
    put("GITLAB_USER_NAME", name);
    v
}

/// `CI_PIPELINE_SOURCE` of a merge request pipeline.
pub const MERGE_REQUEST_EVENT: &str = "merge_request_event";

/// What a merge request pipeline adds, derived from git: the MR is from the current branch
/// into the default branch, a detached pipeline, id and iid 1, titled by the commit.
fn merge_request_variables(
    put: &mut dyn FnMut(&str, String),
    git: &GitInfo,
    project_path: &str,
    project_url: &str,
) {
    let source = git.branch.clone().unwrap_or_else(|| git.ref_name.clone());
    put("CI_MERGE_REQUEST_ID", "1".into());
    put("CI_MERGE_REQUEST_IID", "1".into());
    put("CI_MERGE_REQUEST_EVENT_TYPE", "detached".into());
    put("CI_MERGE_REQUEST_PROJECT_ID", "1".into());
    put("CI_MERGE_REQUEST_PROJECT_PATH", project_path.into());
    put("CI_MERGE_REQUEST_PROJECT_URL", project_url.into());
    put(
        "CI_MERGE_REQUEST_REF_PATH",
        "refs/merge-requests/1/head".into(),
    );
    put("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", source);
    put("CI_MERGE_REQUEST_SOURCE_BRANCH_SHA", git.sha.clone());
    put("CI_MERGE_REQUEST_SOURCE_PROJECT_ID", "1".into());
    put("CI_MERGE_REQUEST_SOURCE_PROJECT_PATH", project_path.into());
    put("CI_MERGE_REQUEST_SOURCE_PROJECT_URL", project_url.into());
    put(
        "CI_MERGE_REQUEST_TARGET_BRANCH_NAME",
        git.default_branch.clone(),
    );
    put("CI_MERGE_REQUEST_TARGET_BRANCH_PROTECTED", "true".into());
    put("CI_MERGE_REQUEST_TITLE", git.title.clone());
    put("CI_MERGE_REQUEST_DESCRIPTION", git.description.clone());
    put("CI_MERGE_REQUEST_APPROVED", "false".into());
    put("CI_MERGE_REQUEST_DRAFT", "false".into());
}

/// The pipeline's predefined variables as rules see them, before any job: `CI_PIPELINE_SOURCE`
/// is `overrides`' (`--var`), else `push`.
pub fn pipeline_variables(git: &GitInfo, overrides: &[(String, String)]) -> Vec<(String, String)> {
    let source = overrides
        .iter()
        .rev()
        .find(|(k, _)| k == "CI_PIPELINE_SOURCE")
        .map_or("push", |(_, v)| v.as_str());
    let job = Job::default();
    let dir = project_dir(crate::plan::BUILDS_DIR, git);
    variables(&Context {
        job: &job,
        git,
        project_dir: &dir,
        builds_dir: crate::plan::BUILDS_DIR,
        image: None,
        timeout_secs: 3600,
        pipeline_source: source,
        config_path: ".gitlab-ci.yml",
        concurrent_id: 0,
    })
    .into_iter()
    .filter(|v| !v.key.starts_with("CI_JOB_") && !v.key.starts_with("CI_NODE_"))
    .map(|v| (v.key, v.value))
    .collect()
}

/// `CI_PROJECT_DIR` for a project: `/builds/<namespace>/<project>`.
pub fn project_dir(builds_dir: &str, git: &GitInfo) -> String {
    format!("{builds_dir}/{}/{}", git.namespace, git.project)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expand::lookup;

    fn job(name: &str, base: &str, node_index: Option<u32>, node_total: u32) -> Job {
        Job {
            name: name.into(),
            base_name: base.into(),
            node_index,
            node_total,
            ..Job::default()
        }
    }

    fn git() -> GitInfo {
        GitInfo {
            sha: "a".repeat(40),
            short_sha: "a".repeat(8),
            before_sha: "0".repeat(40),
            ref_name: "feature/Foo_bar".into(),
            branch: Some("feature/Foo_bar".into()),
            tag: None,
            message: "Title\n\nBody".into(),
            title: "Title".into(),
            description: "Body".into(),
            author: "Jane Doe <jane@example.com>".into(),
            timestamp: "2024-01-02T03:04:05Z".into(),
            remote_url: Some("git@gitlab.example.com:Group/Sub/My.Proj.git".into()),
            namespace: "Group/Sub".into(),
            project: "My.Proj".into(),
            default_branch: "main".into(),
        }
    }

    fn vars_for(j: &Job, g: &GitInfo, image: Option<&str>) -> Vec<Variable> {
        let dir = project_dir("/builds", g);
        variables(&Context {
            job: j,
            git: g,
            project_dir: &dir,
            builds_dir: "/builds",
            image,
            timeout_secs: 3600,
            pipeline_source: "push",
            config_path: ".gitlab-ci.yml",
            concurrent_id: 0,
        })
    }

    #[test]
    fn key_values() {
        let j = job("rspec 1/2", "rspec", Some(1), 2);
        let g = git();
        let v = vars_for(&j, &g, Some("ruby:3.3"));
        let get = |k: &str| lookup(&v, k).map(str::to_string);
        assert_eq!(v[0].key, "FF_NETWORK_PER_BUILD");
        assert_eq!(v[0].value, "false");
        assert_eq!(get("CI_PROJECT_DIR").unwrap(), "/builds/Group/Sub/My.Proj");
        assert_eq!(
            get("RUNNER_TEMP_PROJECT_DIR").unwrap(),
            "/builds/Group/Sub/My.Proj.tmp"
        );
        assert_eq!(get("CI_BUILDS_DIR").unwrap(), "/builds");
        assert_eq!(get("CI_JOB_IMAGE").unwrap(), "ruby:3.3");
        assert_eq!(get("CI_NODE_INDEX").unwrap(), "1");
        assert_eq!(get("CI_NODE_TOTAL").unwrap(), "2");
        assert_eq!(get("CI_JOB_NAME").unwrap(), "rspec 1/2");
        assert_eq!(get("CI_JOB_NAME_SLUG").unwrap(), "rspec-1-2");
        assert_eq!(get("CI_JOB_GROUP_NAME").unwrap(), "rspec");
        assert_eq!(get("CI_JOB_TIMEOUT").unwrap(), "3600");
        assert_eq!(get("CI_SERVER_HOST").unwrap(), "gitlab.example.com");
        assert_eq!(get("CI_PROJECT_PATH").unwrap(), "Group/Sub/My.Proj");
        assert_eq!(get("CI_PROJECT_PATH_SLUG").unwrap(), "group-sub-my-proj");
        assert_eq!(get("CI_PROJECT_ROOT_NAMESPACE").unwrap(), "Group");
        assert_eq!(
            get("CI_PROJECT_URL").unwrap(),
            "https://gitlab.example.com/Group/Sub/My.Proj"
        );
        assert_eq!(
            get("CI_REGISTRY_IMAGE").unwrap(),
            "registry.gitlab.example.com/group/sub/my.proj"
        );
        assert_eq!(get("CI_COMMIT_REF_SLUG").unwrap(), "feature-foo-bar");
        assert_eq!(get("CI_COMMIT_BRANCH").unwrap(), "feature/Foo_bar");
        assert_eq!(get("CI_COMMIT_TAG"), None);
        assert_eq!(get("CI_COMMIT_REF_PROTECTED").unwrap(), "false");
        assert_eq!(get("GITLAB_USER_EMAIL").unwrap(), "jane@example.com");
        assert_eq!(get("GITLAB_USER_NAME").unwrap(), "Jane Doe");
        assert_eq!(get("GITLAB_USER_LOGIN").unwrap(), "jane");
        assert_eq!(get("CI").unwrap(), "true");
        assert_eq!(get("CI_PIPELINE_SOURCE").unwrap(), "push");
        assert_eq!(get("CI_JOB_TOKEN"), None);
        assert_eq!(get("CI_REGISTRY_PASSWORD"), None);
        assert!(get("CI_JOB_STARTED_AT").unwrap().ends_with('Z'));
        // Runner vars precede GitLab's.
        let pos = |k: &str| v.iter().position(|x| x.key == k).unwrap();
        assert!(pos("CI_JOB_IMAGE") < pos("CI_BUILDS_DIR"));
        assert!(pos("CI_RUNNER_VERSION") < pos("CI_PIPELINE_ID"));
        assert!(v.iter().all(|x| x.public && x.expand && !x.masked));
    }

    #[test]
    fn merge_request_pipelines() {
        let g = git();
        let vars = pipeline_variables(
            &g,
            &[("CI_PIPELINE_SOURCE".into(), MERGE_REQUEST_EVENT.into())],
        );
        let get = |k: &str| {
            vars.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("CI_PIPELINE_SOURCE"), Some("merge_request_event"));
        assert_eq!(get("CI_COMMIT_BRANCH"), None);
        assert_eq!(get("CI_COMMIT_REF_NAME"), Some("feature/Foo_bar"));
        assert_eq!(
            get("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME"),
            Some("feature/Foo_bar")
        );
        assert_eq!(get("CI_MERGE_REQUEST_TARGET_BRANCH_NAME"), Some("main"));
        assert_eq!(get("CI_MERGE_REQUEST_IID"), Some("1"));
        assert_eq!(get("CI_JOB_NAME"), None);
        let push = pipeline_variables(&g, &[]);
        let get = |k: &str| {
            push.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("CI_PIPELINE_SOURCE"), Some("push"));
        assert_eq!(get("CI_COMMIT_BRANCH"), Some("feature/Foo_bar"));
        assert_eq!(get("CI_MERGE_REQUEST_IID"), None);
    }

    #[test]
    fn presence_rules() {
        let j = job("lint", "lint", None, 1);
        let mut g = git();
        g.branch = None;
        g.tag = Some("v1.2".into());
        g.ref_name = "v1.2".into();
        g.remote_url = None;
        let v = vars_for(&j, &g, None);
        let get = |k: &str| lookup(&v, k).map(str::to_string);
        assert_eq!(get("CI_NODE_INDEX"), None);
        assert_eq!(get("CI_NODE_TOTAL").unwrap(), "1");
        assert_eq!(get("CI_JOB_IMAGE"), None);
        assert_eq!(get("CI_COMMIT_BRANCH"), None);
        assert_eq!(get("CI_COMMIT_TAG").unwrap(), "v1.2");
        assert_eq!(get("CI_SERVER_HOST").unwrap(), "gitlab.com");
        assert_eq!(get("CI_JOB_GROUP_NAME").unwrap(), "lint");
        assert_eq!(get("CI_JOB_MANUAL"), None);
        let mut m = j.clone();
        m.when = When::Manual;
        m.node_total = 0;
        let v = vars_for(&m, &g, None);
        assert_eq!(lookup(&v, "CI_JOB_MANUAL"), Some("true"));
        assert_eq!(lookup(&v, "CI_NODE_TOTAL"), Some("1"));
    }
}

//! A small GitLab client for includes: the URLs and requests for remote files, templates,
//! project files, components (versions through releases, commit SHAs), and the cache policy
//! around every request: the network first, the cached copy when the server is unreachable
//! or answers 5xx, never the cache with `--refresh-includes`, the cache first for shell
//! completion. HTTP itself is in `fetch.rs`, the disk in `cache.rs`.

use std::sync::Arc;

use super::cache::{self, Cache};
use super::entry::Component;
use super::fetch::{self, FetchError, Fetcher, HttpFetcher, Response};
use super::options::{LoadOptions, Token};

/// Where GitLab's bundled templates live, relative to the instance (as gitlab-ci-local does).
pub const TEMPLATES_PATH: &str = "gitlab-org/gitlab/-/raw/master/lib/gitlab/ci/templates";

/// Why the client has no file to hand over. Never a mistake in the configuration: the
/// include is missing (an error, or skipped with `--allow-missing-includes`).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Unavailable {
    /// The server answered an error status, and no cached copy stands in for it.
    Status {
        what: String,
        url: String,
        status: u16,
        /// Whether a token was configured (the hint differs).
        token: bool,
    },
    /// The server could not be reached, and no cached copy stands in for it.
    Unreachable {
        what: String,
        reason: String,
        /// Why there is no cached copy (`--refresh-includes`, not cached, no cache directory).
        no_copy: String,
    },
    /// The server answered, but not with what was asked (HTML, binary, too large, not the
    /// JSON the API returns, no matching release).
    Unusable { what: String, problem: String },
    /// None of a component's template files exists in its project.
    NoComponent {
        spec: String,
        files: [String; 2],
        project: String,
    },
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unavailable::Status {
                what,
                url,
                status,
                token,
            } => {
                let hint = match status {
                    401 | 403 | 404 if !token => {
                        " (if the project is private, set CIJOB_GITLAB_TOKEN or GITLAB_TOKEN)"
                    }
                    401 | 403 => {
                        " (the token was refused or lacks read_api/read_repository access)"
                    }
                    404 => " (not found: check the name, the ref and the token's access)",
                    _ => "",
                };
                write!(
                    f,
                    "{what}: the server answered HTTP {status} for {url}{hint}"
                )
            }
            Unavailable::Unreachable {
                what,
                reason,
                no_copy,
            } => write!(f, "{what} cannot be fetched: {reason} ({no_copy})"),
            Unavailable::Unusable { what, problem } => write!(f, "{what}: {problem}"),
            Unavailable::NoComponent {
                spec,
                files,
                project,
            } => write!(
                f,
                "component: `{spec}`. One of the files [{}] must exist in `{project}`",
                files.join(",")
            ),
        }
    }
}

/// A fetched file and the URL it came from (its identity for cycle detection).
pub(super) struct Fetched {
    pub(super) url: String,
    pub(super) text: String,
}

/// A component's template, fetched.
pub(super) struct ComponentFile {
    pub(super) file: Fetched,
    /// The ref the version resolved to (`~latest` -> `1.10.0`).
    pub(super) reference: String,
    /// The commit of `reference` (fetched only when the template uses `component.sha`).
    pub(super) sha: String,
}

/// What a request is for: decides whether the token goes along and how the answer is checked.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Call {
    /// A file from any server (remote, template): no token; must look like YAML.
    File,
    /// A repository file through the API: the token; must look like YAML.
    ApiFile,
    /// An API answer in JSON (releases, commits): the token.
    ApiJson,
}

/// The client of one load. Every method may add lines to `warnings` (a cached copy stood
/// in, the cache could not be written): the caller's list, so that they keep their order
/// among the loader's own warnings.
pub(super) struct Gitlab {
    /// The configured instance (else gitlab.com), without a trailing `/`.
    server: String,
    /// Whether an instance was configured: if not, a component's own host serves it.
    configured: bool,
    token: Option<Token>,
    refresh: bool,
    prefer_cache: bool,
    fetcher: Arc<dyn Fetcher>,
    cache: Option<Cache>,
}

impl Gitlab {
    pub(super) fn new(options: &LoadOptions) -> Self {
        Gitlab {
            server: options.server(),
            configured: options.gitlab_url.is_some(),
            token: options.token.clone(),
            refresh: options.refresh,
            prefer_cache: options.prefer_cache,
            fetcher: options
                .fetcher
                .clone()
                .unwrap_or_else(|| Arc::new(HttpFetcher::default())),
            cache: options
                .cache_dir
                .clone()
                .or_else(cache::default_dir)
                .map(Cache::new),
        }
    }

    /// A `remote:` URL (never with the token).
    pub(super) fn remote(
        &self,
        url: &str,
        warnings: &mut Vec<String>,
    ) -> Result<String, Unavailable> {
        let what = format!("remote include \"{url}\"");
        self.get(url, Call::File, &what, warnings)
    }

    /// One of GitLab's bundled templates, from the instance.
    pub(super) fn template(
        &self,
        name: &str,
        warnings: &mut Vec<String>,
    ) -> Result<Fetched, Unavailable> {
        let url = format!(
            "{}/{TEMPLATES_PATH}/{}",
            self.server,
            name.trim_start_matches('/')
        );
        let what = format!("template \"{name}\" ({url})");
        let text = self.get(&url, Call::File, &what, warnings)?;
        Ok(Fetched { url, text })
    }

    /// One file of a project at a ref, through the repository files API.
    pub(super) fn project_file(
        &self,
        project: &str,
        file: &str,
        reference: &str,
        warnings: &mut Vec<String>,
    ) -> Result<Fetched, Unavailable> {
        let url = file_url(&self.server, project, file, reference);
        let what = format!("project include \"{project}\" file \"{file}\" (ref {reference})");
        let text = self.get(&url, Call::ApiFile, &what, warnings)?;
        Ok(Fetched { url, text })
    }

    /// A component's template: `templates/NAME.yml` or `templates/NAME/template.yml` of its
    /// project at the ref its version names.
    pub(super) fn component(
        &self,
        component: &Component,
        warnings: &mut Vec<String>,
    ) -> Result<ComponentFile, Unavailable> {
        let Component {
            spec,
            host,
            project,
            ..
        } = *component;
        // Without a configured instance, the component's own host is the instance.
        let server = if self.configured {
            self.server.clone()
        } else {
            format!("https://{host}")
        };
        let reference = self.component_version(&server, component, warnings)?;
        let files = component.template_files();
        for file in &files {
            let url = file_url(&server, project, file, &reference);
            let what = format!("component \"{spec}\" ({file})");
            match self.get(&url, Call::ApiFile, &what, warnings) {
                Err(Unavailable::Status { status: 404, .. }) => continue,
                Err(e) => return Err(e),
                Ok(text) => {
                    let sha = if text.contains("component.sha") {
                        self.commit_sha(&server, component, &reference, warnings)?
                    } else {
                        reference.clone()
                    };
                    return Ok(ComponentFile {
                        file: Fetched { url, text },
                        reference,
                        sha,
                    });
                }
            }
        }
        Err(Unavailable::NoComponent {
            spec: spec.to_owned(),
            files,
            project: format!("{host}/{project}"),
        })
    }

    /// The ref a component version names: `~latest` and partial semver (`1`, `1.2`) are the
    /// highest matching release; anything else (full version, branch, sha) is used as is.
    fn component_version(
        &self,
        server: &str,
        component: &Component,
        warnings: &mut Vec<String>,
    ) -> Result<String, Unavailable> {
        let Component {
            spec,
            project,
            version,
            ..
        } = *component;
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
        let unusable = |problem: String| Unavailable::Unusable {
            what: what.clone(),
            problem,
        };
        let releases: Vec<serde_json::Value> = match self.get(&url, Call::ApiJson, &what, warnings)
        {
            Ok(body) => serde_json::from_str(&body)
                .map_err(|_| unusable("the releases API did not answer a JSON list".into()))?,
            // No releases to choose from: the version may still be a tag (`@1`).
            Err(Unavailable::Status { .. }) => vec![],
            Err(e) => return Err(e),
        };
        let prefix: Vec<u64> = if partial {
            version.split('.').filter_map(|p| p.parse().ok()).collect()
        } else {
            vec![]
        };
        let tags = releases.iter().filter_map(|r| r.get("tag_name")?.as_str());
        highest_release(tags, &prefix)
            // A tag named like a partial version (`1`) is a ref of its own, as GitLab allows.
            .or_else(|| partial.then(|| version.to_owned()))
            .ok_or_else(|| unusable(format!("no release matches version `{version}`")))
    }

    fn commit_sha(
        &self,
        server: &str,
        component: &Component,
        reference: &str,
        warnings: &mut Vec<String>,
    ) -> Result<String, Unavailable> {
        let url = format!(
            "{server}/api/v4/projects/{}/repository/commits/{}",
            fetch::encode(component.project),
            fetch::encode(reference)
        );
        let what = format!("component \"{}\" (commit of {reference})", component.spec);
        let body = self.get(&url, Call::ApiJson, &what, warnings)?;
        serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("id")?.as_str().map(str::to_owned))
            .ok_or_else(|| Unavailable::Unusable {
                what,
                problem: "unexpected answer from the API".into(),
            })
    }

    /// GET `url` under the cache policy. The token goes only with API calls to the configured
    /// instance; `what` names the include in messages. A refusal is
    /// [`Unavailable::Status`], which some callers take as an answer (a component's first
    /// candidate file missing, a project without releases).
    fn get(
        &self,
        url: &str,
        call: Call,
        what: &str,
        warnings: &mut Vec<String>,
    ) -> Result<String, Unavailable> {
        let mut headers: Vec<(&str, &str)> = Vec::new();
        // The token belongs to the configured instance: never send it anywhere else (a
        // component on another host, when no instance is configured).
        let own_server = url.starts_with(&format!("{}/", self.server));
        if call != Call::File && own_server {
            if let Some(t) = &self.token {
                headers.push(t.header());
            }
        }
        let cached = || self.cache.as_ref().and_then(|c| c.get(url));
        if self.prefer_cache && !self.refresh {
            if let Some(body) = cached() {
                return Ok(body);
            }
        }
        match self.fetcher.get(url, &headers) {
            Ok(resp) if resp.status == 200 => {
                if call != Call::ApiJson {
                    check_yaml_like(&resp).map_err(|problem| Unavailable::Unusable {
                        what: what.to_owned(),
                        problem,
                    })?;
                }
                if let Some(cache) = &self.cache {
                    if let Err(e) = cache.put(url, &resp.body) {
                        warnings.push(format!(
                            "cannot store {what} in the cache {}: {e}",
                            cache.dir().display()
                        ));
                    }
                }
                Ok(resp.body)
            }
            Ok(resp) => {
                // A server error is an outage: the cached copy is still the best answer.
                if resp.status >= 500 && !self.refresh {
                    if let Some(body) = cached() {
                        warnings.push(format!(
                            "{what}: the server answered {}; using the cached copy",
                            resp.status
                        ));
                        return Ok(body);
                    }
                }
                Err(Unavailable::Status {
                    what: what.to_owned(),
                    url: url.to_owned(),
                    status: resp.status,
                    token: self.token.is_some(),
                })
            }
            Err(FetchError::Bad(m)) => Err(Unavailable::Unusable {
                what: what.to_owned(),
                problem: format!("{m} ({url})"),
            }),
            Err(FetchError::Unreachable(reason)) => {
                if !self.refresh {
                    if let Some(body) = cached() {
                        warnings.push(format!(
                            "{what}: cannot reach the server ({reason}); using the cached copy"
                        ));
                        return Ok(body);
                    }
                }
                let no_copy = if self.refresh {
                    "--refresh-includes: the cache is not used".to_owned()
                } else {
                    match &self.cache {
                        Some(c) => format!("and no cached copy in {}", c.dir().display()),
                        None => "and there is no cache directory".to_owned(),
                    }
                };
                Err(Unavailable::Unreachable {
                    what: what.to_owned(),
                    reason,
                    no_copy,
                })
            }
        }
    }
}

/// The raw-file URL of `file` in `project` at `reference`, through the repository files API.
fn file_url(server: &str, project: &str, file: &str, reference: &str) -> String {
    format!(
        "{server}/api/v4/projects/{}/repository/files/{}/raw?ref={}",
        fetch::encode(project),
        fetch::encode(file),
        fetch::encode(reference)
    )
}

/// The highest release tag (`1.2.3` or `v1.2.3`; pre-releases never) whose version starts
/// with `prefix` (empty: any).
fn highest_release<'a>(tags: impl Iterator<Item = &'a str>, prefix: &[u64]) -> Option<String> {
    tags.filter_map(|tag| Some((semver(tag)?, tag)))
        .filter(|(v, _)| v.starts_with(prefix))
        .max()
        .map(|(_, tag)| tag.to_owned())
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

/// Refuse answers that are clearly not a CI file (a login page, an error page...).
fn check_yaml_like(resp: &Response) -> Result<(), String> {
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

#[cfg(test)]
mod tests {
    use super::super::fake::Fake;
    use super::*;

    const TEMPLATE: &str =
        "https://gl.test/gitlab-org/gitlab/-/raw/master/lib/gitlab/ci/templates/T.yml";
    const API: &str = "https://gl.test/api/v4/projects";

    /// A client of `https://gl.test` with a token, caching in `cache`, over `fake`.
    fn client(cache: &std::path::Path, fake: &Arc<Fake>, tweak: fn(&mut LoadOptions)) -> Gitlab {
        let mut options = LoadOptions {
            gitlab_url: Some("https://gl.test/".into()),
            token: Some(Token::Private("secret".into())),
            cache_dir: Some(cache.to_path_buf()),
            fetcher: Some(fake.clone()),
            ..LoadOptions::default()
        };
        tweak(&mut options);
        Gitlab::new(&options)
    }

    /// Fetch the template once, so that the cache in `dir` holds it.
    fn cached_template(dir: &std::path::Path) {
        let online = Arc::new(Fake::new(&[(TEMPLATE, 200, "t: {script: x}\n")]));
        let mut warnings = vec![];
        let got = client(dir, &online, |_| {}).template("T.yml", &mut warnings);
        assert_eq!(got.unwrap().text, "t: {script: x}\n");
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn unreachable_falls_back_to_the_cache_unless_refreshing() {
        let dir = tempfile::tempdir().unwrap();
        cached_template(dir.path());
        let offline = Arc::new(Fake::default());
        let mut warnings = vec![];
        let got = client(dir.path(), &offline, |_| {}).template("T.yml", &mut warnings);
        assert_eq!(got.unwrap().text, "t: {script: x}\n");
        assert!(
            warnings[0].contains("using the cached copy"),
            "{warnings:?}"
        );
        assert!(warnings[0].contains("template \"T.yml\""), "{warnings:?}");

        let refresh = client(dir.path(), &offline, |o| o.refresh = true);
        let e = refresh.template("T.yml", &mut vec![]).err().unwrap();
        assert!(matches!(e, Unavailable::Unreachable { .. }), "{e:?}");
        assert!(e.to_string().contains("--refresh-includes"), "{e}");

        let empty = dir.path().join("empty");
        let e = client(&empty, &offline, |_| {})
            .template("T.yml", &mut vec![])
            .err()
            .unwrap();
        assert!(e.to_string().contains("and no cached copy in"), "{e}");
    }

    #[test]
    fn a_server_error_falls_back_to_the_cache_but_a_refusal_does_not() {
        let dir = tempfile::tempdir().unwrap();
        cached_template(dir.path());
        let down = Arc::new(Fake::new(&[(TEMPLATE, 503, "")]));
        let mut warnings = vec![];
        let got = client(dir.path(), &down, |_| {}).template("T.yml", &mut warnings);
        assert_eq!(got.unwrap().text, "t: {script: x}\n");
        assert!(
            warnings[0].contains("answered 503; using the cached copy"),
            "{warnings:?}"
        );

        let refused = Arc::new(Fake::new(&[(TEMPLATE, 404, "")]));
        let e = client(dir.path(), &refused, |o| o.token = None)
            .template("T.yml", &mut vec![])
            .err()
            .unwrap();
        assert!(
            matches!(e, Unavailable::Status { status: 404, .. }),
            "{e:?}"
        );
        assert!(e.to_string().contains("set CIJOB_GITLAB_TOKEN"), "{e}");
    }

    #[test]
    fn prefer_cache_asks_the_server_only_for_what_is_not_cached() {
        let dir = tempfile::tempdir().unwrap();
        cached_template(dir.path());
        let offline = Arc::new(Fake::default());
        let mut warnings = vec![];
        let cached_first = client(dir.path(), &offline, |o| o.prefer_cache = true);
        assert!(cached_first.template("T.yml", &mut warnings).is_ok());
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(offline.requests(), 0, "the server was asked");
        // Nothing cached: it is fetched after all.
        let empty = dir.path().join("empty");
        let nothing_cached = client(&empty, &offline, |o| o.prefer_cache = true);
        assert!(nothing_cached.template("T.yml", &mut warnings).is_err());
        assert_eq!(offline.requests(), 1);
    }

    #[test]
    fn the_token_goes_only_to_the_instances_api() {
        let dir = tempfile::tempdir().unwrap();
        let fake = Arc::new(Fake::new(&[
            ("https://r.test/x.yml", 200, "x: {}\n"),
            (
                &format!("{API}/g%2Fp/repository/files/a.yml/raw?ref=v1"),
                200,
                "a: {}\n",
            ),
        ]));
        let gl = client(dir.path(), &fake, |_| {});
        gl.remote("https://r.test/x.yml", &mut vec![]).unwrap();
        gl.project_file("g/p", "a.yml", "v1", &mut vec![]).unwrap();
        // A component on another host, with no instance configured.
        let elsewhere = client(dir.path(), &fake, |o| o.gitlab_url = None);
        let c = Component::parse("other.test/g/c/x@1.0.0").unwrap();
        assert!(elsewhere.component(&c, &mut vec![]).is_err());
        let seen = fake.seen.lock().unwrap();
        let headers: Vec<_> = seen.iter().map(|(_, h)| h.join(",")).collect();
        assert_eq!(headers[..2], ["", "PRIVATE-TOKEN=secret"]);
        assert!(
            seen[2].0.starts_with("https://other.test/api/v4/"),
            "{seen:?}"
        );
        assert!(headers[2..].iter().all(String::is_empty), "{headers:?}");
    }

    #[test]
    fn missing_component_template_is_named_like_gitlab() {
        let dir = tempfile::tempdir().unwrap();
        let fake = Arc::new(Fake::new(&[
            (
                &format!("{API}/g%2Fc/repository/files/templates%2Fpotato.yml/raw?ref=1.0.0"),
                404,
                "",
            ),
            (
                &format!(
                    "{API}/g%2Fc/repository/files/templates%2Fpotato%2Ftemplate.yml/raw?ref=1.0.0"
                ),
                404,
                "",
            ),
        ]));
        let c = Component::parse("gl.test/g/c/potato@1.0.0").unwrap();
        let e = client(dir.path(), &fake, |_| {})
            .component(&c, &mut vec![])
            .err()
            .unwrap();
        assert!(matches!(e, Unavailable::NoComponent { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "component: `gl.test/g/c/potato@1.0.0`. One of the files \
             [templates/potato.yml,templates/potato/template.yml] must exist in `gl.test/g/c`"
        );
    }

    #[test]
    fn component_versions_pick_the_highest_matching_release() {
        let tags = ["1.10.0", "v1.9.3", "2.0.0-rc1", "1.2.0", "main", "0.9.0"];
        assert_eq!(
            highest_release(tags.into_iter(), &[]).as_deref(),
            Some("1.10.0")
        );
        assert_eq!(
            highest_release(tags.into_iter(), &[1, 9]).as_deref(),
            Some("v1.9.3")
        );
        assert_eq!(
            highest_release(tags.into_iter(), &[0]).as_deref(),
            Some("0.9.0")
        );
        assert_eq!(highest_release(tags.into_iter(), &[2]), None);
    }

    #[test]
    fn html_and_binary_answers_are_refused() {
        let answer = |content_type: Option<&str>, body: &str| {
            check_yaml_like(&Response {
                status: 200,
                content_type: content_type.map(str::to_owned),
                body: body.into(),
            })
        };
        assert!(answer(None, "a: 1\n").is_ok());
        assert!(answer(Some("text/HTML; charset=utf-8"), "a: 1\n").is_err());
        assert!(answer(None, "  <html>").unwrap_err().contains("HTML page"));
        assert!(answer(None, "a\0b").unwrap_err().contains("binary data"));
    }
}

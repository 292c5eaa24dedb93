//! Registry credentials the way GitLab Runner finds them (`helpers/docker/auth`):
//! `DOCKER_AUTH_CONFIG` first, then the Docker client config file; inside one config
//! `auths`, overridden by `credsStore`, overridden by `credHelpers`; the image matched to a
//! key by the longest registry path walking the image path upwards.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::Deserialize;

use crate::error::{ConfigError, Error};

pub const SOURCE_ENV: &str = "$DOCKER_AUTH_CONFIG";

/// Why the credentials for an image could not be found. None of the messages quotes a
/// configuration: it holds secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// A Docker client configuration that does not parse: the user's to fix.
    #[error("{0}")]
    InvalidConfig(String),
    /// A helper name that is a path, refused as the runner refuses it.
    #[error("credential helper \"{0}\": path traversal is not allowed")]
    PathTraversal(String),
    /// A credential helper that could not run, failed, or answered something unreadable:
    /// a problem of this machine, not of the configuration.
    #[error("{0}")]
    Helper(String),
}

impl From<AuthError> for Error {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::InvalidConfig(_) | AuthError::PathTraversal(_) => {
                Error::Config(ConfigError::new(e.to_string()))
            }
            AuthError::Helper(_) => Error::Failed(e.to_string()),
        }
    }
}

/// Credentials for one registry, ready for the pull API.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Credentials {
    pub server: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub identity_token: Option<String>,
}

// Never print the secret parts, even in debug output.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("server", &self.server)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[MASKED]"))
            .field(
                "identity_token",
                &self.identity_token.as_ref().map(|_| "[MASKED]"),
            )
            .finish()
    }
}

/// Credentials found for an image, and where they came from (for the log line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub credentials: Credentials,
    pub source: String,
}

#[derive(Debug, Default, Deserialize)]
struct RawConfig {
    #[serde(default)]
    auths: BTreeMap<String, RawAuth>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct RawAuth {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// One Docker client configuration (`DOCKER_AUTH_CONFIG` or a `config.json`), parsed.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    /// The configuration's name in `Authenticating with credentials from ...`.
    pub source: String,
    auths: BTreeMap<String, Credentials>,
    creds_store: Option<String>,
    /// Registry path -> helper name.
    cred_helpers: BTreeMap<String, String>,
}

/// How the credentials of one registry path are obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Static(Credentials),
    /// `docker-credential-<helper> get`, with this server name on stdin.
    Helper {
        helper: String,
        server: String,
    },
}

impl AuthConfig {
    /// Parse a Docker client config. The error never quotes the text (it holds secrets).
    pub fn parse(json: &str, source: &str) -> Result<Self, AuthError> {
        let raw: RawConfig = serde_json::from_str(json).map_err(|e| {
            AuthError::InvalidConfig(format!(
                "{source} is not a valid Docker client configuration (JSON error at line {} column {})",
                e.line(),
                e.column()
            ))
        })?;
        let mut auths = BTreeMap::new();
        for (key, a) in raw.auths {
            let path = registry_path(&key);
            let mut c = Credentials {
                server: registry_host(&key),
                username: a.username.filter(|s| !s.is_empty()),
                password: a.password.filter(|s| !s.is_empty()),
                identity_token: a.identitytoken.filter(|s| !s.is_empty()),
            };
            if let Some(b64) = a.auth.filter(|s| !s.is_empty()) {
                let (user, pass) = decode_auth(&b64).ok_or_else(|| {
                    AuthError::InvalidConfig(format!(
                        "{source}: the \"auth\" of \"{key}\" is not base64 of user:password"
                    ))
                })?;
                c.username = Some(user);
                c.password = Some(pass);
            }
            auths.insert(path, c);
        }
        let cred_helpers = raw
            .cred_helpers
            .into_iter()
            .map(|(k, v)| (registry_path(&k), v))
            .collect();
        Ok(Self {
            source: source.to_string(),
            auths,
            creds_store: raw.creds_store.filter(|s| !s.is_empty()),
            cred_helpers,
        })
    }

    /// Registry paths this config knows, with how to get each one's credentials; later
    /// layers override earlier ones (auths < credsStore < credHelpers, like the runner).
    /// `store_servers` are the servers the credsStore lists (`docker-credential-X list`).
    pub fn entries(&self, store_servers: &[String]) -> BTreeMap<String, Lookup> {
        let mut out: BTreeMap<String, Lookup> = self
            .auths
            .iter()
            .map(|(k, c)| (k.clone(), Lookup::Static(c.clone())))
            .collect();
        if let Some(store) = &self.creds_store {
            for server in store_servers {
                out.insert(
                    registry_path(server),
                    Lookup::Helper {
                        helper: store.clone(),
                        server: server.clone(),
                    },
                );
            }
        }
        for (path, helper) in &self.cred_helpers {
            out.insert(
                path.clone(),
                Lookup::Helper {
                    helper: helper.clone(),
                    server: path.clone(),
                },
            );
        }
        out
    }

    pub fn creds_store(&self) -> Option<&str> {
        self.creds_store.as_deref()
    }

    /// Every secret this config holds inline, for masking.
    pub fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        for c in self.auths.values() {
            out.extend(c.password.iter().cloned());
            out.extend(c.identity_token.iter().cloned());
            if let (Some(u), Some(p)) = (&c.username, &c.password) {
                out.push(base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}")));
            }
        }
        out
    }
}

fn decode_auth(b64: &str) -> Option<(String, String)> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.trim_end_matches('\n').to_string()))
}

/// The secret-looking parts of a `DOCKER_AUTH_CONFIG` value, for masking; empty when it
/// does not parse (the whole value is masked anyway).
pub fn secrets_in(json: &str) -> Vec<String> {
    AuthConfig::parse(json, SOURCE_ENV)
        .map(|c| c.secrets())
        .unwrap_or_default()
}

/// Lower-case the host part (the first path component) and fold Docker Hub's index name.
fn normalize_host(path: &str) -> String {
    let (host, rest) = match path.split_once('/') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    let mut host = host.to_ascii_lowercase();
    if host == "index.docker.io" {
        host = "docker.io".to_string();
    }
    match rest {
        Some(r) => format!("{host}/{r}"),
        None => host,
    }
}

/// Drop a `:tag` in the last path element (never a host's `:port`) and an `@digest`.
fn strip_tag(path: &str) -> &str {
    let path = path.split('@').next().unwrap_or(path);
    match path.rfind('/') {
        Some(slash) => match path[slash..].rfind(':') {
            Some(colon) => &path[..slash + colon],
            None => path,
        },
        None => path,
    }
}

/// The registry path of an image: `nginx` -> `docker.io/nginx`,
/// `Registry.Example.com:5000/grp/img:1` -> `registry.example.com:5000/grp/img`.
pub fn normalize_image(image: &str) -> String {
    let mut name = image.split('@').next().unwrap_or(image).to_string();
    // A tag on a single-component name (`nginx:1`) is a tag too.
    if !name.contains('/') {
        if let Some(colon) = name.find(':') {
            name.truncate(colon);
        }
    } else {
        name = strip_tag(&name).to_string();
    }
    let first = name.split('/').next().unwrap_or("");
    let is_host =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    if !is_host {
        name = format!("docker.io/{name}");
    }
    normalize_host(&name)
}

/// A config key as a registry path (the runner's `convertToRegistryPath`):
/// `https://index.docker.io/v1/` -> `docker.io`, `Registry.Example.com:5000/` ->
/// `registry.example.com:5000`, `reg.example.com/grp/img:tag` -> `reg.example.com/grp/img`.
pub fn registry_path(key: &str) -> String {
    let key = key.trim();
    for scheme in ["https://", "http://"] {
        if let Some(rest) = key.strip_prefix(scheme) {
            let host = rest.split('/').next().unwrap_or(rest);
            return normalize_host(host);
        }
    }
    normalize_host(strip_tag(key.trim_end_matches('/')))
}

/// The host (with port) of a config key, sent as the pull's server address.
fn registry_host(key: &str) -> String {
    let p = registry_path(key);
    p.split('/').next().unwrap_or(&p).to_string()
}

/// The image's path and its parents, longest first:
/// `r:5000/grp/img` -> [`r:5000/grp/img`, `r:5000/grp`, `r:5000`].
pub fn candidate_paths(image: &str) -> Vec<String> {
    let full = normalize_image(image);
    let mut out = vec![full.clone()];
    let mut cur = full.as_str();
    while let Some(i) = cur.rfind('/') {
        cur = &cur[..i];
        out.push(cur.to_string());
    }
    out
}

/// For `image`, the matching key among `configs` (in priority order; the first config
/// that knows a path wins it), longest path first. Pure: returns how to get the
/// credentials, and the source's name.
pub fn select(
    image: &str,
    configs: &[(AuthConfig, Vec<String>)],
) -> Option<(Lookup, String, String)> {
    // First source wins for a given registry path.
    let mut merged: BTreeMap<String, (Lookup, String)> = BTreeMap::new();
    for (cfg, store_servers) in configs {
        for (path, lookup) in cfg.entries(store_servers) {
            merged
                .entry(path)
                .or_insert_with(|| (lookup, cfg.source.clone()));
        }
    }
    candidate_paths(image).into_iter().find_map(|p| {
        merged
            .get(&p)
            .map(|(l, s)| (l.clone(), s.clone(), p.clone()))
    })
}

/// Where credentials may come from for this run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sources {
    /// The value of `DOCKER_AUTH_CONFIG` (job, CLI, config.toml or process environment).
    pub docker_auth_config: Option<String>,
    /// The Docker client config file: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
    pub config_file: Option<PathBuf>,
}

impl Sources {
    /// The client config file the runner would read for this process.
    pub fn default_config_file() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
            return Some(PathBuf::from(dir).join("config.json"));
        }
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
    }

    /// Load the configurations (reading the file and listing credential stores). A
    /// missing file is no error; a broken one is.
    pub fn load(&self) -> Result<Vec<(AuthConfig, Vec<String>)>, AuthError> {
        let mut out = Vec::new();
        if let Some(json) = self
            .docker_auth_config
            .as_deref()
            .filter(|s| !s.trim().is_empty())
        {
            out.push(AuthConfig::parse(json, SOURCE_ENV)?);
        }
        if let Some(path) = &self.config_file {
            if let Ok(text) = std::fs::read_to_string(path) {
                out.push(AuthConfig::parse(&text, &path.display().to_string())?);
            }
        }
        out.into_iter()
            .map(|cfg| {
                let servers = match cfg.creds_store() {
                    Some(store) => helper_list(store)?,
                    None => Vec::new(),
                };
                Ok((cfg, servers))
            })
            .collect()
    }

    /// Credentials for `image`, or `None` (an anonymous pull): no key matches it, or the
    /// helper that holds its key has nothing for it.
    pub fn resolve(&self, image: &str) -> Result<Option<Found>, AuthError> {
        let configs = self.load()?;
        let Some((lookup, source, path)) = select(image, &configs) else {
            return Ok(None);
        };
        let credentials = match lookup {
            Lookup::Static(c) => c,
            Lookup::Helper { helper, server } => {
                let Some(mut c) = helper_get(&helper, &server)? else {
                    return Ok(None);
                };
                if c.server.is_empty() {
                    c.server = path.split('/').next().unwrap_or(&path).to_string();
                }
                c
            }
        };
        Ok(Some(Found {
            credentials,
            source,
        }))
    }
}

/// Helper names come from configuration; never let them name a file elsewhere.
fn helper_program(name: &str) -> Result<String, AuthError> {
    if name.contains('/') || name.contains('\\') || name.contains("..") {
        return Err(AuthError::PathTraversal(name.to_string()));
    }
    Ok(format!("docker-credential-{name}"))
}

/// What the helpers of docker-credential-helpers answer (exit 1) when they hold nothing for
/// a server; docker/cli takes it as "no credentials", not as a failure.
const NOT_FOUND: &str = "credentials not found in native keychain";

/// A helper's answer: its output, or that it holds no credentials for the server.
enum Answer {
    Output(String),
    NotFound,
}

fn run_helper(name: &str, action: &str, input: &str) -> Result<Answer, AuthError> {
    let program = helper_program(name)?;
    let failed = |why: String| AuthError::Helper(format!("credential helper {program}{why}"));
    let mut child = Command::new(&program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| AuthError::Helper(format!("cannot run credential helper {program}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| failed(format!(": {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() {
        return Ok(Answer::Output(stdout));
    }
    if stdout == NOT_FOUND {
        return Ok(Answer::NotFound);
    }
    // A helper's own message ("keychain locked"...) names no secret.
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    let why = [stdout, stderr]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(": ");
    Err(failed(format!(
        " {action} failed ({}){}",
        out.status,
        if why.is_empty() {
            String::new()
        } else {
            format!(": {why}")
        }
    )))
}

#[derive(Deserialize)]
struct HelperCreds {
    #[serde(rename = "ServerURL", default)]
    server_url: String,
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// `docker-credential-<name> get` with the server on stdin (the credential-helper protocol);
/// `None` when the helper has no credentials for it.
pub fn helper_get(name: &str, server: &str) -> Result<Option<Credentials>, AuthError> {
    match run_helper(name, "get", server)? {
        Answer::Output(out) => parse_helper_output(&out, name).map(Some),
        Answer::NotFound => Ok(None),
    }
}

/// The helper protocol's answer; `<token>` as user name means the secret is an identity token.
pub fn parse_helper_output(out: &str, name: &str) -> Result<Credentials, AuthError> {
    let h: HelperCreds = serde_json::from_str(out).map_err(|_| {
        AuthError::Helper(format!("credential helper docker-credential-{name} answered something that is not credentials JSON"))
    })?;
    let mut c = Credentials {
        server: registry_host(&h.server_url),
        ..Default::default()
    };
    if h.server_url.is_empty() {
        c.server.clear();
    }
    if h.username == "<token>" {
        c.identity_token = Some(h.secret);
    } else {
        c.username = Some(h.username);
        c.password = Some(h.secret);
    }
    Ok(c)
}

fn helper_list(name: &str) -> Result<Vec<String>, AuthError> {
    let Answer::Output(out) = run_helper(name, "list", "")? else {
        return Ok(Vec::new());
    };
    let map: BTreeMap<String, String> = serde_json::from_str(&out).map_err(|_| {
        AuthError::Helper(format!(
            "credential store docker-credential-{name} list answered something that is not JSON"
        ))
    })?;
    Ok(map.into_keys().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn images_normalise_like_the_runner() {
        assert_eq!(normalize_image("nginx"), "docker.io/nginx");
        assert_eq!(normalize_image("nginx:1.25"), "docker.io/nginx");
        assert_eq!(normalize_image("library/nginx"), "docker.io/library/nginx");
        assert_eq!(normalize_image("index.docker.io/a/b:1"), "docker.io/a/b");
        assert_eq!(normalize_image("docker.io/a/b"), "docker.io/a/b");
        assert_eq!(
            normalize_image("Registry.Example.com:5000/Grp/img:tag"),
            "registry.example.com:5000/Grp/img"
        );
        assert_eq!(normalize_image("localhost/img"), "localhost/img");
        assert_eq!(
            normalize_image("localhost:5000/p/img:1"),
            "localhost:5000/p/img"
        );
        assert_eq!(normalize_image("user/img"), "docker.io/user/img");
        assert_eq!(
            normalize_image("reg.example.com/img@sha256:abcd"),
            "reg.example.com/img"
        );
    }

    #[test]
    fn keys_become_registry_paths() {
        assert_eq!(registry_path("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(
            registry_path("http://Reg.Example.com:5000/v2/"),
            "reg.example.com:5000"
        );
        assert_eq!(
            registry_path("registry.example.com:5000"),
            "registry.example.com:5000"
        );
        assert_eq!(
            registry_path("Registry.Example.com:5000/"),
            "registry.example.com:5000"
        );
        assert_eq!(
            registry_path("reg.example.com/grp/img:tag"),
            "reg.example.com/grp/img"
        );
        assert_eq!(registry_path("index.docker.io"), "docker.io");
    }

    #[test]
    fn the_image_path_is_walked_upwards() {
        assert_eq!(
            candidate_paths("registry.example.com:5000/grp/img:1"),
            [
                "registry.example.com:5000/grp/img",
                "registry.example.com:5000/grp",
                "registry.example.com:5000"
            ]
        );
        assert_eq!(candidate_paths("nginx"), ["docker.io/nginx", "docker.io"]);
    }

    fn cfg(json: &str, source: &str) -> (AuthConfig, Vec<String>) {
        (AuthConfig::parse(json, source).unwrap(), Vec::new())
    }

    fn user_of(image: &str, configs: &[(AuthConfig, Vec<String>)]) -> Option<String> {
        match select(image, configs)?.0 {
            Lookup::Static(c) => c.username,
            Lookup::Helper { helper, .. } => Some(format!("helper:{helper}")),
        }
    }

    #[test]
    fn longest_matching_prefix_wins() {
        let json = format!(
            r#"{{"auths": {{
                "registry.example.com:5000": {{"auth": "{}"}},
                "registry.example.com:5000/grp": {{"username": "grp", "password": "p"}},
                "https://index.docker.io/v1/": {{"auth": "{}"}}
            }}}}"#,
            b64("host:pw"),
            b64("hub:pw")
        );
        let c = [cfg(&json, SOURCE_ENV)];
        assert_eq!(
            user_of("registry.example.com:5000/grp/img:1", &c).as_deref(),
            Some("grp")
        );
        assert_eq!(
            user_of("registry.example.com:5000/other/img", &c).as_deref(),
            Some("host")
        );
        assert_eq!(user_of("nginx", &c).as_deref(), Some("hub"));
        assert_eq!(
            user_of("docker.io/library/nginx:1", &c).as_deref(),
            Some("hub")
        );
        // The full host:port is needed, both ways.
        assert_eq!(user_of("registry.example.com/img", &c), None);
        assert_eq!(user_of("registry.example.com:5001/grp/img", &c), None);
        // A host that merely starts with the key's text does not match.
        assert_eq!(user_of("registry.example.com:50000/grp/img", &c), None);
    }

    #[test]
    fn host_only_key_does_not_match_a_port() {
        let c = [cfg(
            r#"{"auths": {"registry.example.com": {"username": "u", "password": "p"}}}"#,
            "x",
        )];
        assert_eq!(user_of("registry.example.com:5000/ns/image:tag", &c), None);
        assert_eq!(
            user_of("REGISTRY.example.com/ns/image:tag", &c).as_deref(),
            Some("u")
        );
    }

    #[test]
    fn first_source_wins_a_path_but_longer_paths_still_win() {
        let env = cfg(
            r#"{"auths": {"r.io": {"username": "env", "password": "p"}}}"#,
            SOURCE_ENV,
        );
        let file = cfg(
            r#"{"auths": {"r.io": {"username": "file", "password": "p"}, "r.io/team": {"username": "team", "password": "p"}}}"#,
            "config.json",
        );
        let c = [env, file];
        assert_eq!(user_of("r.io/img", &c).as_deref(), Some("env"));
        assert_eq!(user_of("r.io/team/img", &c).as_deref(), Some("team"));
        let (_, source, path) = select("r.io/img", &c).unwrap();
        assert_eq!((source.as_str(), path.as_str()), (SOURCE_ENV, "r.io"));
    }

    #[test]
    fn helpers_override_store_which_overrides_auths() {
        let json = r#"{"auths": {"a.io": {"username": "u", "password": "p"}, "b.io": {"username": "u", "password": "p"}},
                       "credsStore": "store", "credHelpers": {"https://a.io": "helper"}}"#;
        let c = [(
            AuthConfig::parse(json, "x").unwrap(),
            vec!["b.io".to_string(), "c.io".to_string()],
        )];
        assert_eq!(user_of("a.io/img", &c).as_deref(), Some("helper:helper"));
        assert_eq!(user_of("b.io/img", &c).as_deref(), Some("helper:store"));
        assert_eq!(user_of("c.io/img", &c).as_deref(), Some("helper:store"));
        assert_eq!(user_of("d.io/img", &c), None);
    }

    #[test]
    fn auth_field_is_base64_user_colon_password() {
        let json = format!(
            r#"{{"auths": {{"r.io": {{"auth": "{}"}}}}}}"#,
            b64("me:pa:ss")
        );
        let c = AuthConfig::parse(&json, "x").unwrap();
        match &c.entries(&[])["r.io"] {
            Lookup::Static(cr) => {
                assert_eq!(cr.username.as_deref(), Some("me"));
                assert_eq!(cr.password.as_deref(), Some("pa:ss"));
                assert_eq!(cr.server, "r.io");
            }
            other => panic!("{other:?}"),
        }
        assert!(c.secrets().contains(&"pa:ss".to_string()));
        assert!(c.secrets().contains(&b64("me:pa:ss")));
        let token =
            AuthConfig::parse(r#"{"auths": {"r.io": {"identitytoken": "tok"}}}"#, "x").unwrap();
        assert_eq!(token.secrets(), ["tok"]);
    }

    #[test]
    fn errors_never_quote_the_config() {
        let e = AuthConfig::parse(r#"{"auths": {"r.io": {"password": "hunter2""#, SOURCE_ENV)
            .unwrap_err()
            .to_string();
        assert!(e.contains("$DOCKER_AUTH_CONFIG is not a valid"), "{e}");
        assert!(!e.contains("hunter2"));
        let e = AuthConfig::parse(r#"{"auths": {"r.io": {"auth": "!!!hunter2"}}}"#, "x")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn helper_names_with_paths_are_refused() {
        for bad in ["../evil", "/bin/sh", "a/b", "a\\b"] {
            let e = helper_program(bad).unwrap_err();
            assert_eq!(e, AuthError::PathTraversal(bad.into()));
            assert!(
                e.to_string().contains("path traversal is not allowed"),
                "{e}"
            );
        }
        assert_eq!(
            helper_program("ecr-login").unwrap(),
            "docker-credential-ecr-login"
        );
        assert_eq!(
            helper_get("../x", "r.io").unwrap_err(),
            AuthError::PathTraversal("../x".into())
        );
    }

    #[test]
    fn helper_output_is_parsed() {
        let c = parse_helper_output(
            r#"{"ServerURL": "https://r.io", "Username": "u", "Secret": "s"}"#,
            "x",
        )
        .unwrap();
        assert_eq!(
            (
                c.server.as_str(),
                c.username.as_deref(),
                c.password.as_deref()
            ),
            ("r.io", Some("u"), Some("s"))
        );
        let t = parse_helper_output(
            r#"{"ServerURL": "r.io", "Username": "<token>", "Secret": "t"}"#,
            "x",
        )
        .unwrap();
        assert_eq!(t.identity_token.as_deref(), Some("t"));
        assert!(matches!(
            parse_helper_output("nope", "x"),
            Err(AuthError::Helper(_))
        ));
    }

    #[test]
    fn a_broken_configuration_is_a_config_error_and_a_broken_helper_is_not() {
        let code = |e: AuthError| Error::from(e).exit_code();
        assert_eq!(code(AuthConfig::parse("{", "x").unwrap_err()), 2);
        assert_eq!(code(helper_program("../x").unwrap_err()), 2);
        let missing = helper_get("cijob-no-such-helper", "r.io").unwrap_err();
        assert!(
            missing
                .to_string()
                .starts_with("cannot run credential helper docker-credential-cijob-no-such-helper"),
            "{missing}"
        );
        assert_eq!(code(missing), 1);
    }

    #[test]
    fn debug_output_hides_secrets() {
        let c = Credentials {
            server: "r.io".into(),
            username: Some("u".into()),
            password: Some("hunter2".into()),
            identity_token: Some("tok123".into()),
        };
        let s = format!("{c:?}");
        assert!(!s.contains("hunter2") && !s.contains("tok123"), "{s}");
    }
}

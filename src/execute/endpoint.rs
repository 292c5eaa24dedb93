//! Which Docker engine to talk to, decided as the docker CLI (28) decides it, and where that
//! decision came from (for errors and for `cijob plan`'s recipe). Pure apart from reading
//! the client config (`config.json`'s `currentContext`) and the context store.
//!
//! Order: `-H/--host` (with `--context` too it is an error), `--context`, `DOCKER_HOST`,
//! `DOCKER_CONTEXT`, `currentContext`, the platform's default socket. An explicit
//! `--context` beats `DOCKER_HOST` as in the docker CLI; `DOCKER_CONTEXT` and
//! `currentContext` do not. The context named `default` is `DOCKER_HOST`, else the default.

use std::path::{Path, PathBuf};

#[cfg(windows)]
pub const DEFAULT_HOST: &str = "npipe:////./pipe/docker_engine";
#[cfg(not(windows))]
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// Docker's default port for `tcp://` without one (TLS or not, as `docker -H` does).
const DEFAULT_TCP_PORT: u16 = 2375;

/// The global options `-H/--host` and `-c/--context`.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub host: Option<String>,
    pub context: Option<String>,
}

/// What the docker CLI reads from its environment (empty values count as unset, as there).
#[derive(Debug, Clone, Default)]
pub struct Environment {
    pub docker_host: Option<String>,
    pub docker_context: Option<String>,
    pub docker_config: Option<PathBuf>,
    pub home: Option<PathBuf>,
    pub tls_verify: bool,
    pub tls: bool,
    pub cert_path: Option<PathBuf>,
}

impl Environment {
    pub fn from_process() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Self {
            docker_host: var("DOCKER_HOST"),
            docker_context: var("DOCKER_CONTEXT"),
            docker_config: var("DOCKER_CONFIG").map(PathBuf::from),
            home: var("HOME").map(PathBuf::from),
            tls_verify: var("DOCKER_TLS_VERIFY").is_some(),
            tls: var("DOCKER_TLS").is_some(),
            cert_path: var("DOCKER_CERT_PATH").map(PathBuf::from),
        }
    }

    /// `$DOCKER_CONFIG`, else `~/.docker`.
    fn config_dir(&self) -> Option<PathBuf> {
        self.docker_config
            .clone()
            .or_else(|| self.home.as_ref().map(|h| h.join(".docker")))
    }

    /// `path` with the home directory written `~`, for messages.
    fn tilde(&self, path: &Path) -> String {
        match self.home.as_ref().and_then(|h| path.strip_prefix(h).ok()) {
            Some(rest) => format!("~/{}", rest.display()),
            None => path.display().to_string(),
        }
    }
}

/// How the engine is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Unix(PathBuf),
    Tcp {
        host: String,
        port: u16,
    },
    /// `docker system dial-stdio` on the far side of the system `ssh`.
    Ssh {
        user: Option<String>,
        host: String,
        port: Option<u16>,
    },
    Npipe(String),
}

/// TLS for a `tcp://` engine: from `DOCKER_TLS_VERIFY`/`DOCKER_TLS` + `DOCKER_CERT_PATH`, or a
/// context's TLS files and `SkipTLSVerify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub verify: bool,
    /// Where the files are (`DOCKER_CERT_PATH` for the recipe).
    pub dir: PathBuf,
}

/// Where the choice of engine came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    HostFlag,
    HostEnv,
    Context { name: String, from: ContextFrom },
    Default,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextFrom {
    Flag,
    Env,
    /// `currentContext` of this config file (as shown: `~/.docker/config.json`).
    ConfigFile(String),
}

/// The engine cijob talks to, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The host as the docker CLI writes it (`unix:///...`, `tcp://h:p`, `ssh://u@h`).
    pub url: String,
    pub host: Host,
    pub tls: Option<Tls>,
    pub source: Source,
    /// `DOCKER_CONFIG` when it was set (a context lives there; the recipe needs it).
    pub docker_config: Option<PathBuf>,
}

impl Endpoint {
    /// Where the engine came from and its address, for messages:
    /// `context "colima" (from ~/.docker/config.json): unix:///...`, `DOCKER_HOST=ssh://me@box`.
    pub fn describe(&self) -> String {
        match &self.source {
            Source::HostFlag => format!("--host {}", self.url),
            Source::HostEnv => format!("DOCKER_HOST={}", self.url),
            Source::Default => format!("{} (the default)", self.url),
            Source::Context { name, from } => {
                let from = match from {
                    ContextFrom::Flag => "--context".to_string(),
                    ContextFrom::Env => "DOCKER_CONTEXT".to_string(),
                    ContextFrom::ConfigFile(f) => f.clone(),
                };
                format!("context \"{name}\" (from {from}): {}", self.url)
            }
        }
    }

    /// Whether the engine runs on this machine (a socket, a pipe, or TCP to loopback):
    /// only then can its containers' addresses possibly be dialled from here.
    pub fn is_local(&self) -> bool {
        match &self.host {
            Host::Unix(_) | Host::Npipe(_) => true,
            Host::Tcp { host, .. } => {
                host == "localhost"
                    || host
                        .trim_matches(['[', ']'])
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            }
            Host::Ssh { .. } => false,
        }
    }

    /// Shell lines that make the docker CLI target this same engine (for `cijob plan`).
    pub fn shell_exports(&self) -> Vec<String> {
        let q = crate::plan::recipe::arg;
        let mut lines = Vec::new();
        if let Some(dir) = &self.docker_config {
            lines.push(format!(
                "export DOCKER_CONFIG={}",
                q(&dir.display().to_string())
            ));
        }
        match &self.source {
            Source::Context { name, .. } if name != "default" => {
                lines.push("unset DOCKER_HOST".to_string());
                lines.push(format!("export DOCKER_CONTEXT={}", q(name)));
            }
            _ => {
                lines.push("unset DOCKER_CONTEXT".to_string());
                lines.push(format!("export DOCKER_HOST={}", q(&self.url)));
                match &self.tls {
                    Some(tls) => {
                        let flag = if tls.verify {
                            "DOCKER_TLS_VERIFY=1"
                        } else {
                            "DOCKER_TLS=1"
                        };
                        lines.push(format!(
                            "export {flag} DOCKER_CERT_PATH={}",
                            q(&tls.dir.display().to_string())
                        ));
                        if !tls.verify {
                            lines.push("unset DOCKER_TLS_VERIFY".to_string());
                        }
                    }
                    None => lines.push("unset DOCKER_TLS_VERIFY DOCKER_TLS".to_string()),
                }
            }
        }
        lines
    }
}

/// Why no engine could be chosen (the caller decides the exit code: a usage error for
/// conflicting flags, a Docker error for the rest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectError {
    Conflict,
    Invalid(String),
}

impl std::fmt::Display for SelectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SelectError::Conflict => {
                f.write_str("conflicting options: give either --host or --context, not both")
            }
            SelectError::Invalid(m) => f.write_str(m),
        }
    }
}

/// Choose the engine as the docker CLI does.
pub fn select(flags: &Flags, env: &Environment) -> Result<Endpoint, SelectError> {
    if flags.host.is_some() && flags.context.is_some() {
        return Err(SelectError::Conflict);
    }
    if let Some(h) = &flags.host {
        return from_host(h, Source::HostFlag, env);
    }
    if let Some(name) = &flags.context {
        return context(name, ContextFrom::Flag, env);
    }
    if let Some(h) = &env.docker_host {
        return from_host(h, Source::HostEnv, env);
    }
    if let Some(name) = &env.docker_context {
        return context(name, ContextFrom::Env, env);
    }
    if let Some((name, file)) = current_context(env)? {
        return context(&name, ContextFrom::ConfigFile(file), env);
    }
    from_host(DEFAULT_HOST, Source::Default, env)
}

/// An address given directly (`-H`, `DOCKER_HOST`, the default), with TLS from the environment.
fn from_host(url: &str, source: Source, env: &Environment) -> Result<Endpoint, SelectError> {
    let host = parse_host(url)
        .map_err(|e| SelectError::Invalid(format!("{}: {e}", label(&source, url))))?;
    let tls = match &host {
        Host::Tcp { .. } if env.tls_verify || env.tls => {
            let dir = env
                .cert_path
                .clone()
                .or_else(|| env.config_dir())
                .unwrap_or_default();
            let ca = dir.join("ca.pem");
            // Like the docker CLI, TLS from the environment needs the CA file.
            if !ca.is_file() {
                return Err(SelectError::Invalid(format!(
                    "{}: DOCKER_TLS_VERIFY/DOCKER_TLS is set but {} does not exist (set DOCKER_CERT_PATH to the directory of ca.pem, cert.pem and key.pem)",
                    label(&source, url),
                    ca.display()
                )));
            }
            Some(tls_files(&dir, env.tls_verify))
        }
        _ => None,
    };
    Ok(Endpoint {
        url: normalize(&host),
        host,
        tls,
        source,
        docker_config: env.docker_config.clone(),
    })
}

fn label(source: &Source, url: &str) -> String {
    match source {
        Source::HostFlag => format!("--host {url}"),
        Source::HostEnv => format!("DOCKER_HOST={url}"),
        _ => url.to_string(),
    }
}

fn tls_files(dir: &Path, verify: bool) -> Tls {
    let file = |n: &str| Some(dir.join(n)).filter(|p| p.is_file());
    Tls {
        ca: file("ca.pem"),
        cert: file("cert.pem"),
        key: file("key.pem"),
        verify,
        dir: dir.to_path_buf(),
    }
}

/// `currentContext` from `config.json`, with the file as it is shown in messages.
fn current_context(env: &Environment) -> Result<Option<(String, String)>, SelectError> {
    let Some(file) = env.config_dir().map(|d| d.join("config.json")) else {
        return Ok(None);
    };
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(SelectError::Invalid(format!(
                "cannot read {}: {e}",
                file.display()
            )))
        }
    };
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| SelectError::Invalid(format!("{}: invalid JSON: {e}", file.display())))?;
    Ok(json
        .get("currentContext")
        .and_then(|c| c.as_str())
        .filter(|c| !c.is_empty())
        .map(|c| (c.to_string(), env.tilde(&file))))
}

/// A context from the store: `contexts/meta/<sha256 of the name>/meta.json` for the host and
/// `SkipTLSVerify`, `contexts/tls/<same>/docker/` for its TLS files.
fn context(name: &str, from: ContextFrom, env: &Environment) -> Result<Endpoint, SelectError> {
    let source = Source::Context {
        name: name.to_string(),
        from,
    };
    if name == "default" {
        let url = env.docker_host.as_deref().unwrap_or(DEFAULT_HOST);
        return from_host(url, source, env);
    }
    let here = |m: String| SelectError::Invalid(format!("context \"{name}\": {m}"));
    let dir = env
        .config_dir()
        .ok_or_else(|| here("no Docker config directory (set DOCKER_CONFIG or HOME)".into()))?;
    let id = context_id(name);
    let meta = dir.join("contexts/meta").join(&id).join("meta.json");
    let text = std::fs::read_to_string(&meta).map_err(|e| {
        here(if e.kind() == std::io::ErrorKind::NotFound {
            format!(
                "context not found: {} does not exist (`docker context ls` lists the contexts)",
                env.tilde(&meta)
            )
        } else {
            format!("cannot read {}: {e}", meta.display())
        })
    })?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| here(format!("{}: invalid JSON: {e}", env.tilde(&meta))))?;
    let docker = json
        .pointer("/Endpoints/docker")
        .ok_or_else(|| here(format!("{} has no docker endpoint", env.tilde(&meta))))?;
    let url = docker
        .get("Host")
        .and_then(|h| h.as_str())
        .filter(|h| !h.is_empty())
        .unwrap_or(DEFAULT_HOST);
    let skip_verify = docker
        .get("SkipTLSVerify")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    let host = parse_host(url).map_err(|e| here(format!("{url}: {e}")))?;
    let tls_dir = dir.join("contexts/tls").join(&id).join("docker");
    let files = tls_files(&tls_dir, !skip_verify);
    let has_files = files.ca.is_some() || files.cert.is_some() || files.key.is_some();
    let tls = (matches!(host, Host::Tcp { .. }) && (has_files || skip_verify)).then_some(files);
    Ok(Endpoint {
        url: normalize(&host),
        host,
        tls,
        source,
        docker_config: env.docker_config.clone(),
    })
}

/// The context store's directory name for a context: the hex SHA-256 of its name.
pub fn context_id(name: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, name.as_bytes());
    crate::hex::encode(digest.as_ref())
}

/// A Docker host address, as `docker -H` accepts it (`host:port` alone is TCP).
pub fn parse_host(url: &str) -> Result<Host, String> {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://").unwrap_or(("tcp", url));
    match scheme {
        "unix" => Ok(Host::Unix(PathBuf::from(if rest.is_empty() {
            "/var/run/docker.sock"
        } else {
            rest
        }))),
        "npipe" => Ok(Host::Npipe(if rest.is_empty() {
            "//./pipe/docker_engine".to_string()
        } else {
            rest.to_string()
        })),
        "tcp" => {
            let authority = rest.trim_end_matches('/');
            if authority.contains('/') {
                return Err("a tcp:// address takes no path".to_string());
            }
            let (host, port) = split_port(authority)?;
            Ok(Host::Tcp {
                host: if host.is_empty() {
                    "127.0.0.1".to_string()
                } else {
                    host
                },
                port: port.unwrap_or(DEFAULT_TCP_PORT),
            })
        }
        "ssh" => {
            let authority = rest.trim_end_matches('/');
            if authority.contains('/') {
                return Err("an ssh:// address takes no path".to_string());
            }
            let (user, hostport) = match authority.rsplit_once('@') {
                Some((u, h)) => (Some(u.to_string()), h),
                None => (None, authority),
            };
            let (host, port) = split_port(hostport)?;
            if host.is_empty() {
                return Err("an ssh:// address needs a host".to_string());
            }
            Ok(Host::Ssh { user, host, port })
        }
        other => Err(format!(
            "unsupported scheme {other}:// (expected unix://, tcp://, ssh:// or npipe://)"
        )),
    }
}

/// `host[:port]` and `[v6]:port`.
fn split_port(authority: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("bad address {authority}"))?;
        (format!("[{h}]"), after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    let port = match port {
        Some(p) => Some(p.parse::<u16>().map_err(|_| format!("bad port \"{p}\""))?),
        None => None,
    };
    Ok((host, port))
}

fn normalize(host: &Host) -> String {
    match host {
        Host::Unix(p) => format!("unix://{}", p.display()),
        Host::Npipe(p) => format!("npipe://{p}"),
        Host::Tcp { host, port } => format!("tcp://{host}:{port}"),
        Host::Ssh { user, host, port } => format!(
            "ssh://{}{host}{}",
            user.as_ref().map(|u| format!("{u}@")).unwrap_or_default(),
            port.map(|p| format!(":{p}")).unwrap_or_default()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_in(dir: &Path) -> Environment {
        Environment {
            home: Some(dir.to_path_buf()),
            ..Default::default()
        }
    }

    /// The error `select` gives with no flags, in an empty home changed by `set`.
    fn select_error(set: impl FnOnce(&mut Environment)) -> String {
        let d = tempfile::tempdir().unwrap();
        let mut env = env_in(d.path());
        set(&mut env);
        select(&Flags::default(), &env).unwrap_err().to_string()
    }

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// A context as `docker context create NAME --docker host=HOST` writes it.
    fn make_context(config: &Path, name: &str, host: &str, skip_verify: bool) -> PathBuf {
        let id = context_id(name);
        write(
            &config.join("contexts/meta").join(&id).join("meta.json"),
            &format!(
                r#"{{"Name":"{name}","Metadata":{{}},"Endpoints":{{"docker":{{"Host":"{host}","SkipTLSVerify":{skip_verify}}}}}}}"#
            ),
        );
        config.join("contexts/tls").join(id).join("docker")
    }

    #[test]
    fn context_ids_are_the_sha256_of_the_name_as_the_docker_cli_stores_them() {
        // `docker context create foo` writes contexts/meta/2c26b4.../meta.json.
        assert_eq!(
            context_id("foo"),
            "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
        );
    }

    #[test]
    fn nothing_set_is_the_platform_default() {
        let d = tempfile::tempdir().unwrap();
        let e = select(&Flags::default(), &env_in(d.path())).unwrap();
        assert_eq!(e.url, DEFAULT_HOST);
        assert_eq!(e.source, Source::Default);
        assert!(e.is_local());
    }

    #[test]
    fn the_docker_cli_order_host_flag_context_flag_env_host_env_context_current_context() {
        let d = tempfile::tempdir().unwrap();
        let config = d.path().join(".docker");
        make_context(&config, "cur", "unix:///cur.sock", false);
        make_context(&config, "envctx", "unix:///envctx.sock", false);
        make_context(&config, "flagctx", "unix:///flagctx.sock", false);
        write(&config.join("config.json"), r#"{"currentContext":"cur"}"#);
        let mut env = env_in(d.path());
        let pick = |flags: &Flags, env: &Environment| select(flags, env).unwrap().url;

        assert_eq!(pick(&Flags::default(), &env), "unix:///cur.sock");
        env.docker_context = Some("envctx".into());
        assert_eq!(pick(&Flags::default(), &env), "unix:///envctx.sock");
        env.docker_host = Some("unix:///envhost.sock".into());
        // DOCKER_HOST beats DOCKER_CONTEXT and currentContext...
        assert_eq!(pick(&Flags::default(), &env), "unix:///envhost.sock");
        // ...but an explicit --context beats DOCKER_HOST (docker CLI 28 does the same).
        let ctx = Flags {
            context: Some("flagctx".into()),
            host: None,
        };
        assert_eq!(pick(&ctx, &env), "unix:///flagctx.sock");
        let host = Flags {
            host: Some("unix:///flag.sock".into()),
            context: None,
        };
        assert_eq!(pick(&host, &env), "unix:///flag.sock");
        let both = Flags {
            host: host.host.clone(),
            context: ctx.context.clone(),
        };
        assert_eq!(select(&both, &env), Err(SelectError::Conflict));
    }

    #[test]
    fn where_the_choice_came_from_is_named() {
        let d = tempfile::tempdir().unwrap();
        let config = d.path().join(".docker");
        make_context(
            &config,
            "colima",
            "unix:///Users/me/.colima/default/docker.sock",
            false,
        );
        write(
            &config.join("config.json"),
            r#"{"currentContext":"colima"}"#,
        );
        let e = select(&Flags::default(), &env_in(d.path())).unwrap();
        assert_eq!(
            e.describe(),
            "context \"colima\" (from ~/.docker/config.json): unix:///Users/me/.colima/default/docker.sock"
        );
        let mut env = env_in(d.path());
        env.docker_host = Some("ssh://me@box".into());
        assert_eq!(
            select(&Flags::default(), &env).unwrap().describe(),
            "DOCKER_HOST=ssh://me@box"
        );
        env.docker_context = Some("colima".into());
        let flag = Flags {
            context: Some("colima".into()),
            host: None,
        };
        assert!(select(&flag, &env)
            .unwrap()
            .describe()
            .starts_with("context \"colima\" (from --context): unix:///Users/me"));
    }

    #[test]
    fn the_default_context_is_docker_host_or_the_default_socket() {
        let d = tempfile::tempdir().unwrap();
        let mut env = env_in(d.path());
        env.docker_context = Some("default".into());
        assert_eq!(select(&Flags::default(), &env).unwrap().url, DEFAULT_HOST);
        let flags = Flags {
            context: Some("default".into()),
            host: None,
        };
        env.docker_host = Some("tcp://10.0.0.5:2375".into());
        assert_eq!(select(&flags, &env).unwrap().url, "tcp://10.0.0.5:2375");
    }

    #[test]
    fn a_missing_context_names_it_and_where_it_was_looked_for() {
        let e = select_error(|env| env.docker_context = Some("nope".into()));
        assert!(
            e.starts_with("context \"nope\": context not found: ~/.docker/contexts/meta/"),
            "{e}"
        );
    }

    #[test]
    fn docker_config_moves_the_config_file_and_the_context_store() {
        let d = tempfile::tempdir().unwrap();
        let config = d.path().join("elsewhere");
        make_context(&config, "x", "tcp://build-box:2375", false);
        write(
            &config.join("config.json"),
            r#"{"currentContext":"x","auths":{}}"#,
        );
        let mut env = env_in(d.path());
        env.docker_config = Some(config.clone());
        let e = select(&Flags::default(), &env).unwrap();
        assert_eq!(e.url, "tcp://build-box:2375");
        assert!(!e.is_local());
        assert_eq!(
            e.shell_exports(),
            vec![
                format!("export DOCKER_CONFIG={}", config.display()),
                "unset DOCKER_HOST".to_string(),
                "export DOCKER_CONTEXT=x".to_string()
            ]
        );
    }

    #[test]
    fn tls_from_the_environment_needs_the_ca_and_takes_the_client_pair_when_present() {
        let d = tempfile::tempdir().unwrap();
        let certs = d.path().join("certs");
        let mut env = env_in(d.path());
        env.docker_host = Some("tcp://127.0.0.1:2376".into());
        env.tls_verify = true;
        env.cert_path = Some(certs.clone());
        let e = select(&Flags::default(), &env).unwrap_err().to_string();
        assert!(e.contains("ca.pem does not exist"), "{e}");
        write(&certs.join("ca.pem"), "x");
        write(&certs.join("cert.pem"), "x");
        write(&certs.join("key.pem"), "x");
        let e = select(&Flags::default(), &env).unwrap();
        let tls = e.tls.clone().unwrap();
        assert!(tls.verify && tls.ca.is_some() && tls.cert.is_some() && tls.key.is_some());
        assert!(e.is_local());
        assert_eq!(
            e.shell_exports(),
            vec![
                "unset DOCKER_CONTEXT".to_string(),
                "export DOCKER_HOST=tcp://127.0.0.1:2376".to_string(),
                format!(
                    "export DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH={}",
                    certs.display()
                ),
            ]
        );
        // Without the TLS variables the same address is plain HTTP.
        env.tls_verify = false;
        assert_eq!(select(&Flags::default(), &env).unwrap().tls, None);
    }

    #[test]
    fn a_contexts_tls_files_and_skip_verify() {
        let d = tempfile::tempdir().unwrap();
        let config = d.path().join(".docker");
        let tls_dir = make_context(&config, "secure", "tcp://box:2376", false);
        write(&tls_dir.join("ca.pem"), "x");
        let mut env = env_in(d.path());
        env.docker_context = Some("secure".into());
        let tls = select(&Flags::default(), &env).unwrap().tls.unwrap();
        assert!(tls.verify && tls.ca.is_some() && tls.cert.is_none());
        make_context(&config, "loose", "tcp://box:2376", true);
        env.docker_context = Some("loose".into());
        let tls = select(&Flags::default(), &env).unwrap().tls.unwrap();
        assert!(!tls.verify);
        make_context(&config, "plain", "tcp://box:2375", false);
        env.docker_context = Some("plain".into());
        assert_eq!(select(&Flags::default(), &env).unwrap().tls, None);
    }

    #[test]
    fn host_addresses_as_docker_dash_h_reads_them() {
        assert_eq!(
            parse_host("tcp://127.0.0.1").unwrap(),
            Host::Tcp {
                host: "127.0.0.1".into(),
                port: 2375
            }
        );
        assert_eq!(
            parse_host("box:2376").unwrap(),
            Host::Tcp {
                host: "box".into(),
                port: 2376
            }
        );
        assert_eq!(
            parse_host("ssh://me@box:2222").unwrap(),
            Host::Ssh {
                user: Some("me".into()),
                host: "box".into(),
                port: Some(2222)
            }
        );
        assert_eq!(
            parse_host("ssh://box").unwrap(),
            Host::Ssh {
                user: None,
                host: "box".into(),
                port: None
            }
        );
        assert_eq!(
            parse_host("unix:///run/podman/podman.sock").unwrap(),
            Host::Unix("/run/podman/podman.sock".into())
        );
        assert!(parse_host("http://box:2375")
            .unwrap_err()
            .contains("unsupported scheme http://"));
        assert!(parse_host("tcp://box:http")
            .unwrap_err()
            .contains("bad port"));
        let e = select_error(|env| env.docker_host = Some("fd://".into()));
        assert!(
            e.starts_with("DOCKER_HOST=fd://: unsupported scheme"),
            "{e}"
        );
    }

    #[test]
    fn only_sockets_pipes_and_loopback_tcp_are_local() {
        let local = |url: &str| {
            let d = tempfile::tempdir().unwrap();
            let mut env = env_in(d.path());
            env.docker_host = Some(url.to_string());
            select(&Flags::default(), &env).unwrap().is_local()
        };
        assert!(local("unix:///var/run/docker.sock"));
        assert!(local("tcp://localhost:2375"));
        assert!(local("tcp://127.0.0.1:2375"));
        assert!(local("tcp://[::1]:2375"));
        assert!(!local("tcp://192.168.1.20:2375"));
        assert!(!local("ssh://me@127.0.0.1"));
    }
}

//! A GitLab Runner `config.toml`, parsed and validated into the settings cijob applies.
//! Pure: no Docker, no environment. Keys cijob does not apply are collected so that one
//! warning can name them all.

use std::path::Path;

use toml::Value;

use crate::error::ConfigError;
use crate::model::{HostOptions, PullPolicy};
use crate::plan::limits::{self, Resources};

/// The settings of one `[[runners]]` entry that cijob applies.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunnerConfig {
    pub name: String,
    /// `environment = ["K=V", ...]`, in order.
    pub environment: Vec<(String, String)>,
    /// `[runners.docker] image`: the job's image when it names none.
    pub image: Option<String>,
    /// `[runners.docker] services`: started before the job's own.
    pub services: Vec<ConfigService>,
    pub privileged: bool,
    /// `None`: services follow `privileged`.
    pub services_privileged: Option<bool>,
    pub volumes: Vec<Volume>,
    /// Empty: not set.
    pub pull_policy: Vec<PullPolicy>,
    /// Empty: not set.
    pub allowed_pull_policies: Vec<PullPolicy>,
    pub wait_for_services_timeout: Option<i64>,
    /// `extra_hosts`, `dns`, `cap_add`, `cap_drop`, `security_opt`, `shm_size` (bytes),
    /// `network_mode`: applied to every container as they are.
    pub host: HostOptions,
    pub user: Option<String>,
    /// `memory`, `memory_swap`, `memory_reservation`, `cpus`, `oom_kill_disable`: the build
    /// container's limits.
    pub resources: Resources,
    /// `service_memory`, `service_memory_swap`, `service_memory_reservation`,
    /// `service_cpus`: every service's limits.
    pub service_resources: Resources,
    /// Dotted names of the settings present but not applied, in file order.
    pub not_applied: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigService {
    pub name: String,
    pub alias: Option<String>,
    pub entrypoint: Option<Vec<String>>,
    pub command: Option<Vec<String>>,
    pub environment: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Volume {
    /// `/cache`: a Docker volume that persists between runs of the project.
    Named { destination: String },
    /// `host:container[:mode]` (or `volume-name:container[:mode]`): passed to Docker as is.
    Bind(String),
}

impl RunnerConfig {
    /// The one warning naming every setting cijob leaves aside, if any.
    pub fn warning(&self) -> Option<String> {
        (!self.not_applied.is_empty()).then(|| {
            format!(
                "runner config: cijob does not apply these settings: {}",
                self.not_applied.join(", ")
            )
        })
    }
}

/// Keys that identify a runner to GitLab; they mean nothing for a local run.
const IDENTITY_KEYS: &[&str] = &[
    "name",
    "url",
    "id",
    "token",
    "token_obtained_at",
    "token_expires_at",
    "executor",
];

/// Global keys about the runner process itself (polling, concurrency), not about a job.
const PROCESS_KEYS: &[&str] = &["concurrent", "check_interval", "runners"];

/// Parse `text` (from `path`) and pick the runner named `pick`, else the first docker one.
pub fn parse(text: &str, path: &Path, pick: Option<&str>) -> Result<RunnerConfig, ConfigError> {
    let err = |msg: String| ConfigError::new(msg).in_file(path);
    let root: toml::Table = toml::from_str(text).map_err(|e| {
        let mut ce = err(format!("not a valid config.toml: {}", e.message()));
        if let Some(span) = e.span() {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            ce = ce.at(line, None).with_source(text);
        }
        ce
    })?;
    let runners: Vec<&toml::Table> = match root.get("runners") {
        None => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|r| {
                r.as_table()
                    .ok_or_else(|| err("[[runners]] entries must be tables".into()))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(err("`runners` must be a list of [[runners]] tables".into())),
    };
    let name_of = |r: &toml::Table| {
        r.get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let runner = match pick {
        Some(want) => runners.iter().find(|r| name_of(r) == want).ok_or_else(|| {
            let names: Vec<String> = runners
                .iter()
                .map(|r| format!("\"{}\"", name_of(r)))
                .collect();
            err(format!(
                "no [[runners]] entry named \"{want}\" (the runners are: {})",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ))
        })?,
        None => runners
            .iter()
            .find(|r| r.get("executor").and_then(Value::as_str) == Some("docker"))
            .ok_or_else(|| {
                err(
                    "no [[runners]] entry with executor = \"docker\" (name one with --runner)"
                        .into(),
                )
            })?,
    };
    let mut cfg = RunnerConfig {
        name: name_of(runner),
        ..Default::default()
    };
    for key in root.keys() {
        if !PROCESS_KEYS.contains(&key.as_str()) {
            cfg.not_applied.push(key.clone());
        }
    }
    let runner_name = cfg.name.clone();
    let where_ = |key: &str| format!("[[runners]] \"{runner_name}\": {key}");
    for (key, value) in runner.iter() {
        match key.as_str() {
            k if IDENTITY_KEYS.contains(&k) => {}
            "environment" => {
                cfg.environment = env_list(value, &where_("environment")).map_err(err)?
            }
            "docker" => {
                let docker = value
                    .as_table()
                    .ok_or_else(|| err(format!("{} must be a table", where_("docker"))))?;
                docker_section(docker, &mut cfg).map_err(err)?;
            }
            other => cfg.not_applied.push(format!("runners.{other}")),
        }
    }
    Ok(cfg)
}

fn docker_section(docker: &toml::Table, cfg: &mut RunnerConfig) -> Result<(), String> {
    let at = |k: &str| format!("[runners.docker] {k}");
    for (key, v) in docker {
        let k = key.as_str();
        match k {
            "image" => cfg.image = Some(string(v, &at(k))?).filter(|s| !s.is_empty()),
            "services" => cfg.services = services(v, &at(k))?,
            "privileged" => cfg.privileged = boolean(v, &at(k))?,
            "services_privileged" => cfg.services_privileged = Some(boolean(v, &at(k))?),
            "volumes" => {
                cfg.volumes = strings(v, &at(k))?
                    .iter()
                    .map(|s| volume(s).map_err(|e| format!("{}: {e}", at(k))))
                    .collect::<Result<_, _>>()?
            }
            "pull_policy" => cfg.pull_policy = policies(v, &at(k))?,
            "allowed_pull_policies" => cfg.allowed_pull_policies = policies(v, &at(k))?,
            "wait_for_services_timeout" => {
                cfg.wait_for_services_timeout = Some(
                    v.as_integer()
                        .ok_or_else(|| format!("{} must be a number of seconds", at(k)))?,
                )
            }
            "extra_hosts" => cfg.host.extra_hosts = strings(v, &at(k))?,
            "dns" => cfg.host.dns = strings(v, &at(k))?,
            "cap_add" => cfg.host.cap_add = strings(v, &at(k))?,
            "cap_drop" => cfg.host.cap_drop = strings(v, &at(k))?,
            "security_opt" => cfg.host.security_opt = strings(v, &at(k))?,
            "shm_size" => {
                cfg.host.shm_size = Some(
                    v.as_integer()
                        .filter(|n| *n >= 0)
                        .ok_or_else(|| format!("{} must be a number of bytes", at(k)))?,
                )
            }
            "user" => cfg.user = Some(string(v, &at(k))?).filter(|s| !s.is_empty()),
            "memory" => cfg.resources.memory = size(v, &at(k))?,
            "memory_swap" => cfg.resources.memory_swap = size(v, &at(k))?,
            "memory_reservation" => cfg.resources.memory_reservation = size(v, &at(k))?,
            "cpus" => cfg.resources.nano_cpus = cpus(v, &at(k))?,
            "oom_kill_disable" => cfg.resources.oom_kill_disable = boolean(v, &at(k))?,
            "service_memory" => cfg.service_resources.memory = size(v, &at(k))?,
            "service_memory_swap" => cfg.service_resources.memory_swap = size(v, &at(k))?,
            "service_memory_reservation" => {
                cfg.service_resources.memory_reservation = size(v, &at(k))?
            }
            "service_cpus" => cfg.service_resources.nano_cpus = cpus(v, &at(k))?,
            "network_mode" => {
                cfg.host.network_mode = Some(string(v, &at(k))?).filter(|s| !s.is_empty())
            }
            // Defaults that match what cijob does anyway: naming them would only be noise.
            "tls_verify" | "disable_cache" | "disable_entrypoint_overwrite"
                if v.as_bool() == Some(false) => {}
            other => cfg.not_applied.push(format!("runners.docker.{other}")),
        }
    }
    Ok(())
}

fn string(v: &Value, at: &str) -> Result<String, String> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{at} must be a string"))
}

fn boolean(v: &Value, at: &str) -> Result<bool, String> {
    v.as_bool()
        .ok_or_else(|| format!("{at} must be true or false"))
}

/// A memory size string like the runner's (`"512m"`); empty or zero: no limit.
fn size(v: &Value, at: &str) -> Result<Option<i64>, String> {
    limit_string(v, at, "\"512m\" or \"1g\"", limits::parse_size)
}

/// A number of CPUs as a string (`"1.5"`), like the runner; empty or zero: no limit.
fn cpus(v: &Value, at: &str) -> Result<Option<i64>, String> {
    limit_string(v, at, "\"1.5\"", limits::parse_cpus)
}

fn limit_string(
    v: &Value,
    at: &str,
    example: &str,
    parse: fn(&str) -> Result<i64, String>,
) -> Result<Option<i64>, String> {
    let text = v
        .as_str()
        .ok_or_else(|| format!("{at} must be a string like {example}"))?;
    if text.is_empty() {
        return Ok(None);
    }
    parse(text)
        .map(limits::limit)
        .map_err(|e| format!("{at}: {e}"))
}

fn strings(v: &Value, at: &str) -> Result<Vec<String>, String> {
    match v {
        Value::Array(a) => a.iter().map(|x| string(x, at)).collect(),
        _ => Err(format!("{at} must be a list of strings")),
    }
}

fn env_list(v: &Value, at: &str) -> Result<Vec<(String, String)>, String> {
    strings(v, at)?
        .into_iter()
        .map(|e| {
            let (k, val) = e
                .split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| {
                    // Only the key part may be shown: the value can be a secret.
                    let key = e.split('=').next().unwrap_or("");
                    format!("{at}: entry \"{key}...\" is not KEY=VALUE")
                })?;
            Ok((k.to_string(), val.to_string()))
        })
        .collect()
}

/// `pull_policy`: a string or a list of strings.
fn policies(v: &Value, at: &str) -> Result<Vec<PullPolicy>, String> {
    let list = match v {
        Value::String(s) => vec![s.clone()],
        _ => strings(v, at)?,
    };
    list.iter()
        .map(|s| {
            PullPolicy::parse(s).ok_or_else(|| {
                format!(
                    "{at}: unknown pull policy \"{s}\" (expected always, if-not-present or never)"
                )
            })
        })
        .collect()
}

fn services(v: &Value, at: &str) -> Result<Vec<ConfigService>, String> {
    let Value::Array(items) = v else {
        return Err(format!("{at} must be a list"));
    };
    items
        .iter()
        .map(|item| match item {
            Value::String(name) => Ok(ConfigService {
                name: name.clone(),
                ..Default::default()
            }),
            Value::Table(t) => {
                let mut s = ConfigService::default();
                for (k, val) in t {
                    let at = format!("{at}.{k}");
                    match k.as_str() {
                        "name" => s.name = string(val, &at)?,
                        "alias" => s.alias = Some(string(val, &at)?),
                        "entrypoint" => s.entrypoint = Some(strings(val, &at)?),
                        "command" => s.command = Some(strings(val, &at)?),
                        "environment" => s.environment = env_list(val, &at)?,
                        other => {
                            return Err(format!(
                                "{at}: unknown service setting \"{other}\" (known: name, alias, entrypoint, command, environment)"
                            ))
                        }
                    }
                }
                if s.name.is_empty() {
                    return Err(format!("{at}: a service needs a name"));
                }
                Ok(s)
            }
            _ => Err(format!("{at} entries must be image names or tables")),
        })
        .collect()
}

fn volume(spec: &str) -> Result<Volume, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    match parts.as_slice() {
        [dest] if dest.starts_with('/') => Ok(Volume::Named {
            destination: dest.trim_end_matches('/').to_string(),
        }),
        [_, dest] | [_, dest, _] if dest.starts_with('/') && !parts[0].is_empty() => {
            Ok(Volume::Bind(spec.to_string()))
        }
        _ => Err(format!(
            "volume \"{spec}\": expected /container/path or host:/container/path[:mode]"
        )),
    }
}

/// Pull policies after `allowed_pull_policies` (runner >= 18.0: the intersection, in the
/// requested order). `requested_from` names where the request came from, for the error.
pub fn effective_pull_policies(
    requested: &[PullPolicy],
    requested_from: &str,
    allowed: &[PullPolicy],
) -> Result<Vec<PullPolicy>, String> {
    if allowed.is_empty() {
        return Ok(requested.to_vec());
    }
    let effective: Vec<PullPolicy> = requested
        .iter()
        .copied()
        .filter(|p| allowed.contains(p))
        .collect();
    if effective.is_empty() {
        return Err(format!(
            "pull_policy ({}) defined in {requested_from} is not one of the allowed_pull_policies ({})",
            policy_list(requested),
            policy_list(allowed)
        ));
    }
    Ok(effective)
}

/// Go's `%v` of a slice: `[always if-not-present]`.
pub fn policy_list(p: &[PullPolicy]) -> String {
    let names: Vec<&str> = p.iter().map(|p| p.as_str()).collect();
    format!("[{}]", names.join(" "))
}

/// A short stable hash (FNV-1a) for volume names: the same destination always maps to
/// the same cache volume.
pub fn stable_hash(s: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str, pick: Option<&str>) -> RunnerConfig {
        parse(text, Path::new("config.toml"), pick).unwrap()
    }

    const FULL: &str = r#"
concurrent = 4
check_interval = 0
log_level = "debug"

[session_server]
  session_timeout = 1800

[[runners]]
  name = "shell-one"
  url = "https://gitlab.com/"
  token = "glrt-xxx"
  executor = "shell"

[[runners]]
  name = "docker-one"
  url = "https://gitlab.com/"
  token = "glrt-yyy"
  executor = "docker"
  environment = ["A=1", "DOCKER_AUTH_CONFIG={\"auths\":{}}"]
  [runners.cache]
    MaxUploadedArchiveSize = 0
  [runners.docker]
    tls_verify = false
    image = "alpine:3.19"
    privileged = true
    services_privileged = false
    disable_cache = false
    volumes = ["/cache", "/certs/client", "/srv/data:/data:ro"]
    pull_policy = ["always", "if-not-present"]
    allowed_pull_policies = ["if-not-present"]
    wait_for_services_timeout = 5
    extra_hosts = ["example.test:10.0.0.1"]
    dns = ["10.0.0.2"]
    cap_add = ["NET_ADMIN"]
    cap_drop = ["MKNOD"]
    shm_size = 67108864
    user = "1000"
    network_mode = "host"
    memory = "1g"
    memory_swap = "2g"
    memory_reservation = "512m"
    cpus = "1.5"
    oom_kill_disable = true
    service_memory = "256MB"
    service_memory_swap = ""
    service_memory_reservation = "128MiB"
    service_cpus = "0.5"
    devices = ["/dev/kvm"]
    [[runners.docker.services]]
      name = "postgres:16"
      alias = "db"
      environment = ["POSTGRES_PASSWORD=x"]
    [[runners.docker.services]]
      name = "redis"
      command = ["redis-server", "--port", "6380"]
      entrypoint = [""]

[[runners]]
  name = "docker-two"
  executor = "docker"
  [runners.docker]
    services = ["mysql:latest", "postgres:latest"]
"#;

    #[test]
    fn the_first_docker_runner_is_picked_and_applied() {
        let c = parse_ok(FULL, None);
        assert_eq!(c.name, "docker-one");
        assert_eq!(
            c.environment,
            [
                ("A".to_string(), "1".to_string()),
                (
                    "DOCKER_AUTH_CONFIG".to_string(),
                    "{\"auths\":{}}".to_string()
                )
            ]
        );
        assert_eq!(c.image.as_deref(), Some("alpine:3.19"));
        assert!(c.privileged);
        assert_eq!(c.services_privileged, Some(false));
        assert_eq!(
            c.volumes,
            [
                Volume::Named {
                    destination: "/cache".into()
                },
                Volume::Named {
                    destination: "/certs/client".into()
                },
                Volume::Bind("/srv/data:/data:ro".into())
            ]
        );
        assert_eq!(
            c.pull_policy,
            [PullPolicy::Always, PullPolicy::IfNotPresent]
        );
        assert_eq!(c.allowed_pull_policies, [PullPolicy::IfNotPresent]);
        assert_eq!(c.wait_for_services_timeout, Some(5));
        assert_eq!(c.host.extra_hosts, ["example.test:10.0.0.1"]);
        assert_eq!(c.host.dns, ["10.0.0.2"]);
        assert_eq!(c.host.cap_add, ["NET_ADMIN"]);
        assert_eq!(c.host.cap_drop, ["MKNOD"]);
        assert_eq!(c.host.shm_size, Some(67108864));
        assert_eq!(c.user.as_deref(), Some("1000"));
        assert_eq!(c.host.network_mode.as_deref(), Some("host"));
        const MIB: i64 = 1024 * 1024;
        assert_eq!(
            c.resources,
            Resources {
                memory: Some(1024 * MIB),
                memory_swap: Some(2048 * MIB),
                memory_reservation: Some(512 * MIB),
                nano_cpus: Some(1_500_000_000),
                oom_kill_disable: true,
            }
        );
        assert_eq!(
            c.service_resources,
            Resources {
                memory: Some(256 * MIB),
                memory_swap: None,
                memory_reservation: Some(128 * MIB),
                nano_cpus: Some(500_000_000),
                oom_kill_disable: false,
            }
        );
        assert_eq!(c.services.len(), 2);
        assert_eq!(c.services[0].alias.as_deref(), Some("db"));
        assert_eq!(
            c.services[0].environment,
            [("POSTGRES_PASSWORD".into(), "x".into())]
        );
        assert_eq!(c.services[1].entrypoint, Some(vec![String::new()]));
        assert_eq!(
            c.services[1].command,
            Some(vec!["redis-server".into(), "--port".into(), "6380".into()])
        );
    }

    #[test]
    fn settings_not_applied_are_named_in_one_warning() {
        let c = parse_ok(FULL, None);
        assert_eq!(
            c.not_applied,
            [
                "log_level",
                "session_server",
                "runners.cache",
                "runners.docker.devices"
            ]
        );
        let w = c.warning().unwrap();
        assert!(
            w.contains("runners.docker.devices") && w.contains("session_server"),
            "{w}"
        );
        assert_eq!(
            parse_ok("[[runners]]\nexecutor = \"docker\"\n", None).warning(),
            None
        );
    }

    #[test]
    fn runners_are_picked_by_name() {
        let c = parse_ok(FULL, Some("docker-two"));
        assert_eq!(c.services.len(), 2);
        assert_eq!(c.services[0].name, "mysql:latest");
        let e = parse(FULL, Path::new("config.toml"), Some("nope")).unwrap_err();
        assert!(
            e.to_string()
                .contains("no [[runners]] entry named \"nope\""),
            "{e}"
        );
        assert!(e.to_string().contains("\"docker-one\""), "{e}");
        let e = parse(
            "[[runners]]\nexecutor = \"shell\"\n",
            Path::new("c.toml"),
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("executor = \"docker\""), "{e}");
    }

    #[test]
    fn bad_values_are_clear_errors() {
        let bad = |body: &str| {
            parse(
                &format!("[[runners]]\nexecutor = \"docker\"\n[runners.docker]\n{body}\n"),
                Path::new("config.toml"),
                None,
            )
            .unwrap_err()
            .to_string()
        };
        assert!(bad("pull_policy = \"sometimes\"").contains("unknown pull policy \"sometimes\""));
        assert!(bad("privileged = \"yes\"").contains("privileged must be true or false"));
        assert!(bad("volumes = [\"relative\"]").contains("volume \"relative\""));
        let e = bad("memory = \"lots\"");
        assert!(
            e.contains("[runners.docker] memory: invalid size \"lots\"") && e.contains("512m"),
            "{e}"
        );
        assert!(bad("service_memory = 1024").contains("service_memory must be a string"));
        assert!(
            bad("cpus = \"two\"").contains("[runners.docker] cpus: invalid number of CPUs \"two\"")
        );
        assert!(bad("oom_kill_disable = 1").contains("oom_kill_disable must be true or false"));
        let e = parse(
            "[[runners]]\nexecutor = \"docker\"\nenvironment = [\"SECRETpart\"]\n",
            Path::new("c.toml"),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("is not KEY=VALUE"), "{e}");
        let e = parse("[[runners]\n", Path::new("c.toml"), None).unwrap_err();
        assert_eq!(e.line, Some(1));
    }

    #[test]
    fn pull_policy_is_a_string_or_a_list() {
        let c = parse_ok(
            "[[runners]]\nexecutor = \"docker\"\n[runners.docker]\npull_policy = \"never\"\n",
            None,
        );
        assert_eq!(c.pull_policy, [PullPolicy::Never]);
    }

    #[test]
    fn allowed_pull_policies_intersect() {
        use PullPolicy::*;
        assert_eq!(
            effective_pull_policies(&[Always, IfNotPresent], "x", &[IfNotPresent, Never]).unwrap(),
            [IfNotPresent]
        );
        assert_eq!(
            effective_pull_policies(&[Never], "x", &[]).unwrap(),
            [Never]
        );
        assert_eq!(
            effective_pull_policies(&[IfNotPresent], "GitLab pipeline config", &[Always])
                .unwrap_err(),
            "pull_policy ([if-not-present]) defined in GitLab pipeline config is not one of the allowed_pull_policies ([always])"
        );
    }

    #[test]
    fn volume_hash_is_stable() {
        assert_eq!(stable_hash("/cache"), stable_hash("/cache"));
        assert_ne!(stable_hash("/cache"), stable_hash("/certs/client"));
    }
}

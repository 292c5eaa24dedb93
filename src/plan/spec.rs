//! The concrete objects of a run, exactly as they are created: `execute` hands them to the
//! engine unchanged and `recipe` prints them as docker commands, one renderer per kind.
//! Whatever only the engine can know (a service's address, its exposed ports) is named here
//! by what to ask for, not decided elsewhere.

use crate::plan::limits::Resources;

pub type Labels = Vec<(String, String)>;

/// A volume to create. Per-run volumes are removed with the run; shared ones (config.toml
/// cache volumes) outlive it and are created only when missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeSpec {
    pub name: String,
    pub labels: Labels,
    pub shared: bool,
}

/// A user-defined bridge network (FF_NETWORK_PER_BUILD).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSpec {
    pub name: String,
    pub labels: Labels,
}

/// Which network a container joins.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Attach {
    /// Docker's default bridge.
    #[default]
    Bridge,
    /// config.toml `network_mode` (`host`, `none`, a named network...).
    Mode(String),
    /// The per-build network, answering to these aliases on it.
    Network { name: String, aliases: Vec<String> },
}

/// `/etc/hosts` entries pointing at another container of the run, whose address is known
/// only once it runs: on the default bridge the build container reaches services this way
/// (runner >= 18.7), by each alias and by the short container id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub container: String,
    pub aliases: Vec<String>,
}

/// config.toml `[runners.docker]` HostConfig settings that apply to every container.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostSettings {
    pub dns: Vec<String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub security_opt: Vec<String>,
    pub shm_size: Option<i64>,
}

/// One container, as created.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<(String, String)>,
    /// The run's labels plus `cijob.type`.
    pub labels: Labels,
    pub hostname: Option<String>,
    pub user: Option<String>,
    pub platform: Option<String>,
    pub privileged: bool,
    /// `volume:/path` and `host:container[:mode]`, `/builds` first.
    pub binds: Vec<String>,
    pub attach: Attach,
    /// Fixed `host:ip` entries (config.toml `extra_hosts`).
    pub extra_hosts: Vec<String>,
    pub links: Vec<Link>,
    pub host: HostSettings,
    /// Keep stdin open for a script (the build container), like the runner.
    pub stdin: bool,
    /// No daemon-side log copy: the output is streamed through the attach connection
    /// already, and the json-file copy would cost most of the throughput and the disk.
    pub no_log: bool,
    pub resources: Resources,
}

/// Which ports the health check dials, decided as the runner decides them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthPorts {
    /// `HEALTHCHECK_TCP_PORT` among the service's variables.
    Port(u16),
    /// `HEALTHCHECK_TCP_PORT` is set but is not a port: the runner's error.
    Invalid(String),
    /// The image's exposed TCP ports, sorted, at most 20 (read from the created container).
    Exposed,
}

impl HealthPorts {
    /// The runner looks the variable up case-insensitively; the last definition wins.
    pub fn from_variables<'a>(vars: impl DoubleEndedIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut vars = vars;
        match vars.rfind(|(k, _)| k.eq_ignore_ascii_case("HEALTHCHECK_TCP_PORT")) {
            Some((_, v)) => match v.trim().parse::<u16>() {
                Ok(p) => HealthPorts::Port(p),
                Err(_) => HealthPorts::Invalid(v.to_string()),
            },
            None => HealthPorts::Exposed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::HealthPorts;

    #[test]
    fn healthcheck_port_is_found_case_insensitively_last_wins() {
        let vars = [
            ("HEALTHCHECK_TCP_PORT", "1"),
            ("healthcheck_tcp_port", "5433"),
        ];
        assert_eq!(
            HealthPorts::from_variables(vars.into_iter()),
            HealthPorts::Port(5433)
        );
        assert_eq!(
            HealthPorts::from_variables([("HEALTHCHECK_TCP_PORT", "abc")].into_iter()),
            HealthPorts::Invalid("abc".into())
        );
        assert_eq!(
            HealthPorts::from_variables([("A", "1")].into_iter()),
            HealthPorts::Exposed
        );
    }
}

//! The service health check, with the runner's rules: `HEALTHCHECK_TCP_PORT` if set, else up
//! to 20 exposed TCP ports in order; the first port that accepts a connection wins.
//! cijob dials from the host to the container's address (the runner uses a helper
//! container); it polls every 50 ms so readiness is noticed quickly.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::execute::docker::Engine;
use crate::plan::spec::HealthPorts;

pub const MAX_PORTS: usize = 20;
pub const POLL: Duration = Duration::from_millis(50);
/// `ServiceLogOutputLimit` in the runner.
pub const LOG_LIMIT: usize = 64 * 1024;

/// Why a service did not pass its health check: the runner's warning, never an error of
/// the run (an engine that stops answering is an `Error` instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unhealthy {
    Timeout,
    InvalidPort(String),
    NoExposedPorts,
    Exited(Option<i64>),
    NoAddress,
}

impl Unhealthy {
    /// The runner's health-check error text for `container`.
    pub fn message(&self, container: &str) -> String {
        match self {
            Unhealthy::Timeout => format!("service \"{container}-wait-for-service\" timeout"),
            Unhealthy::InvalidPort(v) => format!("invalid health check tcp port: {v}"),
            Unhealthy::NoExposedPorts => format!("service \"{container}\" has no exposed ports"),
            Unhealthy::Exited(code) => format!(
                "service \"{container}\" exited with code {} before accepting connections",
                code.unwrap_or(-1)
            ),
            Unhealthy::NoAddress => {
                format!("service \"{container}\" has no IP address (is it running?)")
            }
        }
    }
}

/// Which ports to dial: the plan's decision, completed with the container's exposed ports.
pub fn ports_to_check(health: &HealthPorts, exposed: &[u16]) -> Result<Vec<u16>, Unhealthy> {
    match health {
        HealthPorts::Port(p) => Ok(vec![*p]),
        HealthPorts::Invalid(v) => Err(Unhealthy::InvalidPort(v.clone())),
        HealthPorts::Exposed => {
            let mut ports = exposed.to_vec();
            ports.sort_unstable();
            ports.truncate(MAX_PORTS);
            if ports.is_empty() {
                Err(Unhealthy::NoExposedPorts)
            } else {
                Ok(ports)
            }
        }
    }
}

/// Wait until one of the service's ports accepts a TCP connection.
pub async fn wait_for_service(
    engine: &Engine,
    id: &str,
    health: &HealthPorts,
    timeout: Duration,
) -> Result<Result<(), Unhealthy>, Error> {
    let deadline = Instant::now() + timeout;
    // Wait while the container is still being created, as the runner does.
    let state = loop {
        let state = engine.inspect(id).await?;
        if state.status != "created" {
            break state;
        }
        if Instant::now() >= deadline {
            return Ok(Err(Unhealthy::Timeout));
        }
        tokio::time::sleep(POLL).await;
    };
    let ports = match ports_to_check(health, &state.exposed_tcp_ports) {
        Ok(p) => p,
        Err(e) => return Ok(Err(e)),
    };
    // A service that already exited has no IP address any more: name the real cause
    // (its exit code) rather than the missing address.
    if !state.running {
        return Ok(Err(Unhealthy::Exited(state.exit_code)));
    }
    let Some(ip) = state.ip.as_deref().and_then(|ip| ip.parse::<IpAddr>().ok()) else {
        return Ok(Err(Unhealthy::NoAddress));
    };
    let mut last_check = Instant::now();
    loop {
        for port in &ports {
            let dial = tokio::time::timeout(
                Duration::from_millis(200),
                tokio::net::TcpStream::connect(SocketAddr::new(ip, *port)),
            );
            if let Ok(Ok(_)) = dial.await {
                return Ok(Ok(()));
            }
        }
        if Instant::now() >= deadline {
            return Ok(Err(Unhealthy::Timeout));
        }
        // A service that died will never open its port: say so now instead of waiting out
        // the timeout (the runner waits; the outcome, a warning, is the same).
        if last_check.elapsed() >= Duration::from_millis(250) {
            last_check = Instant::now();
            let s = engine.inspect(id).await?;
            if !s.running {
                return Ok(Err(Unhealthy::Exited(s.exit_code)));
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The runner's warning block for a service that did not start properly.
pub fn warning_block(
    yellow: &dyn Fn(&str) -> String,
    container: &str,
    error: &str,
    logs: &str,
) -> String {
    let mut out = String::new();
    out.push('\n');
    out.push_str(&format!(
        "{} Service {container} probably didn't start properly.\n\n",
        yellow("*** WARNING:")
    ));
    out.push_str(&format!("Health check error:\n{}\n\n", error.trim()));
    out.push_str(&format!("Service container logs:\n{}\n\n", logs.trim_end()));
    out.push_str(&format!("{}\n\n", yellow("*********")));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variables_port_wins_over_exposed_ports() {
        assert_eq!(
            ports_to_check(&HealthPorts::Port(5433), &[5432, 80]),
            Ok(vec![5433])
        );
    }

    #[test]
    fn invalid_healthcheck_port_is_the_runners_error() {
        let e = ports_to_check(&HealthPorts::Invalid("abc".into()), &[80]).unwrap_err();
        assert_eq!(e.message("c"), "invalid health check tcp port: abc");
    }

    #[test]
    fn exposed_ports_sorted_and_capped_at_20() {
        let ports: Vec<u16> = (1..=30).rev().collect();
        let got = ports_to_check(&HealthPorts::Exposed, &ports).unwrap();
        assert_eq!(got, (1..=20).collect::<Vec<u16>>());
    }

    #[test]
    fn runner_wording_of_each_failure() {
        let e = ports_to_check(&HealthPorts::Exposed, &[]).unwrap_err();
        assert_eq!(e.message("svc-0"), "service \"svc-0\" has no exposed ports");
        assert_eq!(
            Unhealthy::Timeout.message("svc-0"),
            "service \"svc-0-wait-for-service\" timeout"
        );
        assert_eq!(
            Unhealthy::Exited(Some(3)).message("svc-0"),
            "service \"svc-0\" exited with code 3 before accepting connections"
        );
    }

    #[test]
    fn warning_block_has_the_runners_shape() {
        let b = warning_block(&|s: &str| s.to_string(), "svc", "boom\n", "log line\n");
        assert_eq!(
            b,
            "\n*** WARNING: Service svc probably didn't start properly.\n\nHealth check error:\nboom\n\nService container logs:\nlog line\n\n*********\n\n"
        );
    }
}

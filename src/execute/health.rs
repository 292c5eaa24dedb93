//! The service health check, with the runner's rules: `HEALTHCHECK_TCP_PORT` if set, else up
//! to 20 exposed TCP ports in order; the first port that accepts a connection wins.
//! cijob dials from the host to the container's address (the runner uses a helper
//! container); it polls every 50 ms so readiness is noticed quickly.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::execute::docker::{ContainerState, Engine};

pub const MAX_PORTS: usize = 20;
pub const POLL: Duration = Duration::from_millis(50);
/// `ServiceLogOutputLimit` in the runner.
pub const LOG_LIMIT: usize = 64 * 1024;

/// Which ports to probe, or the runner's error text.
pub fn ports_to_check(container: &str, state: &ContainerState) -> Result<Vec<u16>, String> {
    let hc = state.env.iter().rev().find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        k.eq_ignore_ascii_case("HEALTHCHECK_TCP_PORT").then_some(v)
    });
    if let Some(v) = hc {
        return v
            .trim()
            .parse::<u16>()
            .map(|p| vec![p])
            .map_err(|_| format!("invalid health check tcp port: {v}"));
    }
    let mut ports = state.exposed_tcp_ports.clone();
    ports.sort_unstable();
    ports.truncate(MAX_PORTS);
    if ports.is_empty() {
        return Err(format!("service \"{container}\" has no exposed ports"));
    }
    Ok(ports)
}

/// Wait until one of the service's ports accepts a TCP connection.
pub async fn wait_for_service(
    engine: &Engine,
    id: &str,
    container: &str,
    timeout: Duration,
) -> Result<(), String> {
    let start = Instant::now();
    let deadline = start + timeout;
    let timeout_err = || format!("service \"{container}-wait-for-service\" timeout");
    // Wait while the container is still being created, as the runner does.
    let state = loop {
        let state = engine.inspect(id).await.map_err(|e| e.to_string())?;
        if state.status != "created" {
            break state;
        }
        if Instant::now() >= deadline {
            return Err(timeout_err());
        }
        tokio::time::sleep(POLL).await;
    };
    let ports = ports_to_check(container, &state)?;
    // A service that already exited has no IP address any more: name the real cause
    // (its exit code) rather than the missing address.
    let exited = |code: Option<i64>| {
        format!(
            "service \"{container}\" exited with code {} before accepting connections",
            code.unwrap_or(-1)
        )
    };
    if !state.running {
        return Err(exited(state.exit_code));
    }
    let ip: IpAddr = state
        .ip
        .as_deref()
        .and_then(|ip| ip.parse().ok())
        .ok_or_else(|| format!("service \"{container}\" has no IP address (is it running?)"))?;
    let mut last_check = Instant::now();
    loop {
        for port in &ports {
            let addr = SocketAddr::new(ip, *port);
            let dial = tokio::time::timeout(
                Duration::from_millis(200),
                tokio::net::TcpStream::connect(addr),
            );
            if let Ok(Ok(_)) = dial.await {
                return Ok(());
            }
        }
        if Instant::now() >= deadline {
            return Err(timeout_err());
        }
        // A service that died will never open its port: say so now instead of waiting out
        // the timeout (the runner waits; the outcome, a warning, is the same).
        if last_check.elapsed() >= Duration::from_millis(250) {
            last_check = Instant::now();
            if let Ok(s) = engine.inspect(id).await {
                if !s.running {
                    return Err(exited(s.exit_code));
                }
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

    fn state(env: &[&str], ports: &[u16]) -> ContainerState {
        ContainerState {
            env: env.iter().map(|s| s.to_string()).collect(),
            exposed_tcp_ports: ports.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn healthcheck_port_variable_wins_case_insensitively() {
        let s = state(&["A=1", "healthcheck_tcp_port=5433"], &[5432, 80]);
        assert_eq!(ports_to_check("c", &s), Ok(vec![5433]));
    }

    #[test]
    fn invalid_healthcheck_port_is_the_runners_error() {
        let s = state(&["HEALTHCHECK_TCP_PORT=abc"], &[80]);
        assert_eq!(
            ports_to_check("c", &s),
            Err("invalid health check tcp port: abc".to_string())
        );
    }

    #[test]
    fn exposed_ports_sorted_and_capped_at_20() {
        let ports: Vec<u16> = (1..=30).rev().collect();
        let got = ports_to_check("c", &state(&[], &ports)).unwrap();
        assert_eq!(got, (1..=20).collect::<Vec<u16>>());
    }

    #[test]
    fn no_ports_is_the_runners_error() {
        assert_eq!(
            ports_to_check("svc-0", &state(&[], &[])),
            Err("service \"svc-0\" has no exposed ports".to_string())
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

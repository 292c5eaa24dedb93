//! The service health check, with the runner's rules: `HEALTHCHECK_TCP_PORT` if set, else up
//! to 20 exposed TCP ports in order; the first port that accepts a connection wins.
//!
//! Two ways to look, every 50 ms so readiness is noticed within ~100 ms (the runner starts
//! a helper container from an image cijob does not have offline):
//! - from the host, dialling the container's address, where the host can (a local Linux
//!   engine: the network's gateway is one of this machine's own addresses);
//! - else from inside the job's network: `cat /proc/net/tcp /proc/net/tcp6` executed in the
//!   service container, a port counting as open when a socket listens on it on an address
//!   other containers can reach (not loopback). That works on Docker Desktop, colima,
//!   Podman machine and remote engines, and needs nothing but `cat` in the service's image.
//!
//! A host dial that neither connects nor is refused (no route, silence) switches that
//! service's check to the inside path, so a wrong guess costs one dial.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
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
    /// Neither path can look: the host cannot dial container addresses and the service's
    /// image cannot show its sockets (no `cat`).
    NoProbe(String),
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
            Unhealthy::NoProbe(why) => format!(
                "cannot check service \"{container}\": this Docker host cannot dial container addresses, so cijob looks from inside the job's network with `cat /proc/net/tcp` in the service container, and {why}"
            ),
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

/// Where the health check looks from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    Host,
    Inside,
}

/// The host can dial a container only when the engine runs here and the container's
/// network gateway is one of this machine's addresses (docker0, br-..., podman0). Docker
/// Desktop, colima, Podman machine and remote engines keep their bridges in a VM or on
/// another machine, where this never holds.
pub fn reach(engine_local: bool, gateway: Option<IpAddr>, local_addresses: &[IpAddr]) -> Reach {
    match gateway {
        Some(g) if engine_local && local_addresses.contains(&g) => Reach::Host,
        _ => Reach::Inside,
    }
}

/// The first of `ports` that a socket listens on (`/proc/net/tcp` and `tcp6` lines, state
/// `0A`), on an address other containers can reach: any address but loopback.
pub fn listening(table: &str, ports: &[u16]) -> Option<u16> {
    let open: Vec<u16> = table
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let _slot = fields.next()?;
            let (addr, port) = fields.next()?.split_once(':')?;
            let _remote = fields.next()?;
            let state = fields.next()?;
            let port = u16::from_str_radix(port, 16).ok()?;
            (state == "0A" && !kernel_address(addr)?.is_loopback()).then_some(port)
        })
        .collect();
    ports.iter().copied().find(|p| open.contains(p))
}

/// An address as the kernel prints it in `/proc/net/tcp*`: 32-bit words in hex, each in
/// the machine's byte order (little-endian on the platforms engines run on).
fn kernel_address(hex: &str) -> Option<IpAddr> {
    let word = |h: &str| u32::from_str_radix(h, 16).ok().map(u32::to_le_bytes);
    match hex.len() {
        8 => Some(IpAddr::V4(Ipv4Addr::from(word(hex)?))),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                chunk.copy_from_slice(&word(hex.get(i * 8..i * 8 + 8)?)?);
            }
            let v6 = Ipv6Addr::from(bytes);
            Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4))
        }
        _ => None,
    }
}

/// What one look at the service's ports found.
enum Look {
    Open,
    Closed,
    /// The host's dial neither connected nor was refused: it cannot reach the container.
    HostCannotReach,
    /// The inside look could not run; why, for the warning.
    NoProbe(String),
}

async fn look_from_host(ip: IpAddr, ports: &[u16]) -> Look {
    for port in ports {
        let dial = tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(SocketAddr::new(ip, *port)),
        );
        match dial.await {
            Ok(Ok(_)) => return Look::Open,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
            _ => return Look::HostCannotReach,
        }
    }
    Look::Closed
}

/// The command that shows the service's sockets, run in its container.
pub const PROBE_COMMAND: [&str; 3] = ["cat", "/proc/net/tcp", "/proc/net/tcp6"];

async fn look_inside(engine: &Engine, id: &str, ports: &[u16]) -> Result<Look, Error> {
    let cmd = PROBE_COMMAND.iter().map(|s| s.to_string()).collect();
    match engine.exec_output(id, cmd).await {
        // tcp6 is missing where IPv6 is off: cat then fails after printing tcp.
        Ok((_, out)) if out.contains("local_address") => Ok(match listening(&out, ports) {
            Some(_) => Look::Open,
            None => Look::Closed,
        }),
        Ok((code, _)) => Ok(Look::NoProbe(format!(
            "that command failed there (exit code {code}; does the image have `cat`?)"
        ))),
        Err(e @ Error::DaemonLost { .. }) => Err(e),
        // Most often the service stopped meanwhile; the caller's inspect tells.
        Err(e) => Ok(Look::NoProbe(format!("it could not run there: {e}"))),
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
    let gateway = state.gateway.as_deref().and_then(|g| g.parse().ok());
    let mut reach = reach(engine.is_local(), gateway, &local_addresses());
    let mut last_check = Instant::now();
    loop {
        let look = match reach {
            Reach::Host => look_from_host(ip, &ports).await,
            Reach::Inside => look_inside(engine, id, &ports).await?,
        };
        match look {
            Look::Open => return Ok(Ok(())),
            Look::Closed => {}
            Look::HostCannotReach => {
                reach = Reach::Inside;
                continue;
            }
            Look::NoProbe(why) => {
                let s = engine.inspect(id).await?;
                return Ok(Err(if s.running {
                    Unhealthy::NoProbe(why)
                } else {
                    Unhealthy::Exited(s.exit_code)
                }));
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

/// This machine's own addresses (of every interface that has one).
fn local_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list that stays valid until
    // freeifaddrs; every pointer is checked for null before it is read.
    unsafe {
        if libc::getifaddrs(&mut list) != 0 {
            return out;
        }
        let mut cur = list;
        while !cur.is_null() {
            let addr = (*cur).ifa_addr;
            if !addr.is_null() {
                match i32::from((*addr).sa_family) {
                    libc::AF_INET => {
                        let sin = &*(addr as *const libc::sockaddr_in);
                        out.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                            sin.sin_addr.s_addr,
                        ))));
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*(addr as *const libc::sockaddr_in6);
                        out.push(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)));
                    }
                    _ => {}
                }
            }
            cur = (*cur).ifa_next;
        }
        libc::freeifaddrs(list);
    }
    out
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
    fn the_host_dials_only_a_local_engine_whose_gateway_is_one_of_its_addresses() {
        let gw: IpAddr = "172.17.0.1".parse().unwrap();
        let here = [IpAddr::from([127, 0, 0, 1]), gw];
        assert_eq!(reach(true, Some(gw), &here), Reach::Host);
        // Docker Desktop, colima, a network namespace of its own: the bridge is elsewhere.
        assert_eq!(reach(true, Some(gw), &here[..1]), Reach::Inside);
        // A remote engine's 172.17.0.1 is not ours, even if we have one too.
        assert_eq!(reach(false, Some(gw), &here), Reach::Inside);
        assert_eq!(reach(true, None, &here), Reach::Inside);
    }

    /// Lines as the kernel prints them (trimmed after the state column).
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue
   0: 0100007F:1538 00000000:0000 0A 00000000:00000000
   1: 00000000:1F90 00000000:0000 0A 00000000:00000000
   2: 020011AC:0050 00000000:0000 0A 00000000:00000000
   3: 020011AC:1F91 030011AC:9C40 01 00000000:00000000
";
    const TCP6: &str =
        "  sl  local_address                         remote_address                        st
   0: 00000000000000000000000001000000:0BB8 00000000000000000000000000000000:0000 0A
   1: 00000000000000000000000000000000:0CEA 00000000000000000000000000000000:0000 0A
   2: 0000000000000000FFFF00000100007F:0CEB 00000000000000000000000000000000:0000 0A
";

    #[test]
    fn listening_sockets_count_unless_on_loopback_or_not_listening() {
        // 8080 on 0.0.0.0 and 80 on the container's 172.17.0.2 listen for everyone.
        assert_eq!(listening(TCP, &[8080]), Some(8080));
        assert_eq!(listening(TCP, &[80]), Some(80));
        // 5432 only on 127.0.0.1: other containers cannot connect (nor could the runner).
        assert_eq!(listening(TCP, &[5432]), None);
        // 8081 is an established connection, not a listener.
        assert_eq!(listening(TCP, &[8081]), None);
        // IPv6: :: counts, ::1 and ::ffff:127.0.0.1 do not.
        assert_eq!(listening(TCP6, &[3306]), Some(3306));
        assert_eq!(listening(TCP6, &[3000, 3307]), None);
        // The first port of the list that listens wins.
        assert_eq!(
            listening(&format!("{TCP}{TCP6}"), &[5432, 3306, 8080]),
            Some(3306)
        );
        assert_eq!(listening("cat: /proc/net/tcp6: No such file", &[80]), None);
    }

    #[test]
    fn this_machine_has_addresses() {
        let addrs = local_addresses();
        assert!(addrs.contains(&IpAddr::from([127, 0, 0, 1])), "{addrs:?}");
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

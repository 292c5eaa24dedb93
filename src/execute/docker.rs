//! The only module that talks to the Docker daemon (through bollard).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bollard::auth::DockerCredentials;
use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, HostConfigLogConfig, NetworkCreateRequest,
    NetworkingConfig, VolumeCreateRequest,
};
use bollard::query_parameters::{
    AttachContainerOptions, CreateContainerOptions, CreateImageOptions,
    DownloadFromContainerOptions, ListContainersOptions, ListNetworksOptions, ListVolumesOptions,
    LogsOptions, RemoveContainerOptions, RemoveVolumeOptions, StartContainerOptions,
    StopContainerOptions, UploadToContainerOptions, WaitContainerOptions,
};
use bollard::Docker;
use futures_util::{Stream, StreamExt};
use tokio::io::AsyncWrite;
use tokio::sync::RwLock;

use crate::error::Error;
use crate::execute::endpoint::{Endpoint, Host};
use crate::execute::{ssh, tls};
use crate::plan::spec::{Attach, ContainerSpec, NetworkSpec, VolumeSpec};

/// What a service container looks like once started.
#[derive(Debug, Clone, Default)]
pub struct ContainerState {
    pub running: bool,
    pub exit_code: Option<i64>,
    pub ip: Option<String>,
    /// The gateway of the network that address is on (the engine's side of the bridge).
    pub gateway: Option<String>,
    pub exposed_tcp_ports: Vec<u16>,
    pub env: Vec<String>,
    /// As created: the image's, or the job's override.
    pub entrypoint: Vec<String>,
    pub status: String,
    /// The kernel's OOM killer struck in the container's cgroup during its last run.
    pub oom_killed: bool,
}

/// The kinds of object a run creates, in the order they can be removed (a network or
/// volume cannot go while a container uses it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Container,
    Network,
    Volume,
}

impl Kind {
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Container => "container",
            Kind::Network => "network",
            Kind::Volume => "volume",
        }
    }
}

/// A summary of something cijob created, found by label.
#[derive(Debug, Clone)]
pub struct Managed {
    pub kind: Kind,
    pub id: String,
    pub name: String,
    pub labels: HashMap<String, String>,
    pub running: bool,
}

pub struct Attached {
    pub output: std::pin::Pin<Box<dyn Stream<Item = Result<LogOutput, BollardError>> + Send>>,
    pub input: std::pin::Pin<Box<dyn AsyncWrite + Send>>,
}

#[derive(Clone)]
pub struct Engine {
    docker: Docker,
    /// Held (shared) by every request that creates something, until the daemon answers.
    in_flight: Arc<RwLock<()>>,
    /// Where the engine is and where that came from (`DOCKER_HOST=...`), for errors.
    at: Arc<str>,
    local: bool,
}

/// Turn a bollard error into a user-facing message without Debug noise. Transport errors
/// say little at the top (`client error (Connect)`), so their causes follow.
pub fn message(e: &BollardError) -> String {
    match e {
        BollardError::DockerResponseServerError { message, .. } => message.clone(),
        BollardError::DockerStreamError { error } => error.clone(),
        other => {
            let mut text = other.to_string();
            let mut cause = std::error::Error::source(other);
            while let Some(c) = cause {
                let part = c.to_string();
                if !text.contains(&part) {
                    text = format!("{text}: {part}");
                }
                cause = c.source();
            }
            text
        }
    }
}

/// Whether the connection to the daemon failed (as opposed to the daemon answering with an
/// error): the socket is gone or the connection broke. The client's 120 s timeout is not
/// one: a pull from a stalled registry sends nothing back for that long, yet the daemon is fine.
fn is_transport(e: &BollardError) -> bool {
    matches!(
        e,
        BollardError::IOError { .. }
            | BollardError::HyperResponseError { .. }
            | BollardError::HyperLegacyError { .. }
            | BollardError::SocketNotFoundError(_)
    )
}

/// A Unix socket owned by a user other than root is a rootless engine's (rootless Docker or
/// Podman): its bridges live in the user's network namespace, and their addresses may even
/// coincide with a rootful engine's on the host (Podman's 10.88.0.0/16), so a dial from the
/// host could reach another engine's container.
fn rootless_socket(host: &Host) -> bool {
    use std::os::unix::fs::MetadataExt;
    match host {
        Host::Unix(path) => std::fs::metadata(path).is_ok_and(|m| m.uid() != 0),
        _ => false,
    }
}

/// How long a liveness check may take. A local daemon answers a ping in milliseconds, even
/// when busy; this only bounds the cases where no answer would ever come.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

pub fn is_not_found(e: &BollardError) -> bool {
    matches!(
        e,
        BollardError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

impl Engine {
    /// Connect to the chosen engine and check that it answers; when it does not, the error
    /// names where the engine came from and why (`DOCKER_HOST=ssh://me@box: ssh exited with
    /// 255: Permission denied (publickey)`), with a hint.
    pub async fn connect(endpoint: &Endpoint) -> Result<Self, Error> {
        let at = endpoint.describe();
        let unreachable = |cause: String| {
            Error::Docker(format!(
                "{at}: {cause}\nhint: is the engine running? Start it (`sudo systemctl start docker`, `dockerd &`, `colima start`, `podman system service`...), or choose another with --host, --context, DOCKER_HOST or DOCKER_CONTEXT."
            ))
        };
        // A missing socket says so plainly (bollard's error would not name the file).
        if let Host::Unix(path) = &endpoint.host {
            if !path.exists() {
                return Err(unreachable("no such file".to_string()));
            }
        }
        let (docker, ssh_failure) = client(endpoint).map_err(&unreachable)?;
        let answer = async {
            let docker = docker
                .with_timeout(Duration::from_secs(120))
                .negotiate_version()
                .await?;
            docker.ping().await.map(|_| docker)
        };
        let docker = match answer.await {
            Ok(d) => d,
            Err(e) => {
                // ssh's own words say more than the closed connection did; its process
                // may need a moment to report them.
                if let Some(failure) = ssh_failure {
                    for _ in 0..40 {
                        if let Some(f) = failure.lock().unwrap_or_else(|p| p.into_inner()).clone() {
                            return Err(unreachable(f));
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
                return Err(unreachable(message(&e)));
            }
        };
        Ok(Self {
            docker,
            in_flight: Arc::default(),
            at: at.into(),
            local: endpoint.is_local() && !rootless_socket(&endpoint.host),
        })
    }

    /// Whether the engine runs on this machine with its bridges in the host's network
    /// namespace (see `Endpoint::is_local`); a rootless engine's are in its own namespace.
    pub fn is_local(&self) -> bool {
        self.local
    }

    fn lost(&self, cause: String) -> Error {
        Error::DaemonLost {
            host: self.at.to_string(),
            cause,
        }
    }

    fn err(&self, what: &str, e: BollardError) -> Error {
        let cause = format!("{what}: {}", message(&e));
        if is_transport(&e) {
            self.lost(cause)
        } else {
            Error::Docker(cause)
        }
    }

    /// Local image id, or `None` when the image is not present.
    pub async fn image_id(&self, image: &str) -> Result<Option<String>, Error> {
        match self.docker.inspect_image(image).await {
            Ok(i) => Ok(i.id),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(self.err(&format!("inspecting image {image}"), e)),
        }
    }

    /// Pull `image`, reporting progress events as they come.
    pub fn pull(
        &self,
        image: &str,
        platform: Option<&str>,
        credentials: Option<&crate::execute::auth::Credentials>,
    ) -> impl Stream<Item = Result<PullEvent, Error>> + '_ {
        let credentials = credentials.map(|c| DockerCredentials {
            username: c.username.clone(),
            password: c.password.clone(),
            identitytoken: c.identity_token.clone(),
            serveraddress: Some(c.server.clone()),
            ..Default::default()
        });
        let (from, tag) = split_tag(image);
        let options = CreateImageOptions {
            from_image: Some(from),
            tag: (!tag.is_empty()).then_some(tag),
            platform: platform.unwrap_or_default().to_string(),
            ..Default::default()
        };
        let name = image.to_string();
        self.docker
            .create_image(Some(options), None, credentials)
            .map(move |item| match item {
                Ok(info) => Ok(PullEvent {
                    layer: info.id.unwrap_or_default(),
                    status: info.status.unwrap_or_default(),
                    current: info.progress_detail.as_ref().and_then(|p| p.current),
                    total: info.progress_detail.as_ref().and_then(|p| p.total),
                }),
                Err(e) => Err(self.err(&format!("failed to pull image \"{name}\""), e)),
            })
    }

    /// Run a request that creates something to its end, even if the caller is dropped (an
    /// interrupted run): the daemon carries on with a request whose client went away, so
    /// what it creates would appear after the cleanup had looked. `settle` waits for these.
    async fn creating<T: Send + 'static>(
        &self,
        request: impl Future<Output = Result<T, BollardError>> + Send + 'static,
    ) -> Result<T, BollardError> {
        let guard = self.in_flight.clone().try_read_owned().ok();
        let task = tokio::spawn(async move {
            let answer = request.await;
            drop(guard);
            answer
        });
        task.await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }

    /// Wait (at most `limit`) for the creation requests still on their way.
    pub async fn settle(&self, limit: Duration) {
        let _ = tokio::time::timeout(limit, self.in_flight.write()).await;
    }

    pub async fn create_volume(&self, v: &VolumeSpec) -> Result<(), Error> {
        let req = VolumeCreateRequest {
            name: Some(v.name.clone()),
            labels: Some(v.labels.iter().cloned().collect()),
            ..Default::default()
        };
        let docker = self.docker.clone();
        self.creating(async move { docker.create_volume(req).await })
            .await
            .map_err(|e| self.err(&format!("creating volume {}", v.name), e))?;
        Ok(())
    }

    pub async fn create_network(&self, n: &NetworkSpec) -> Result<(), Error> {
        let req = NetworkCreateRequest {
            name: n.name.clone(),
            driver: Some("bridge".to_string()),
            labels: Some(n.labels.iter().cloned().collect()),
            ..Default::default()
        };
        let docker = self.docker.clone();
        self.creating(async move { docker.create_network(req).await })
            .await
            .map_err(|e| self.err(&format!("creating network {}", n.name), e))?;
        Ok(())
    }

    /// Create the container as specified; `linked` are the spec's links resolved to
    /// `host:ip` entries (addresses only the engine knows).
    pub async fn create_container(
        &self,
        spec: &ContainerSpec,
        linked: &[String],
    ) -> Result<String, Error> {
        let h = &spec.host;
        let extra_hosts: Vec<String> = spec.extra_hosts.iter().chain(linked).cloned().collect();
        let (network_mode, networking_config) = match &spec.attach {
            Attach::Bridge => (None, None),
            Attach::Mode(mode) => (Some(mode.clone()), None),
            Attach::Network { name, aliases } => (
                Some(name.clone()),
                Some(NetworkingConfig {
                    endpoints_config: Some(HashMap::from([(
                        name.clone(),
                        EndpointSettings {
                            aliases: Some(aliases.clone()),
                            ..Default::default()
                        },
                    )])),
                }),
            ),
        };
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            entrypoint: spec.entrypoint.clone(),
            cmd: spec.cmd.clone(),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(spec.labels.iter().cloned().collect()),
            hostname: spec.hostname.clone(),
            user: spec.user.clone(),
            tty: Some(false),
            open_stdin: Some(spec.stdin),
            stdin_once: Some(spec.stdin),
            attach_stdin: Some(spec.stdin),
            attach_stdout: Some(spec.stdin),
            attach_stderr: Some(spec.stdin),
            host_config: Some(HostConfig {
                binds: Some(spec.binds.clone()),
                privileged: Some(spec.privileged),
                network_mode,
                extra_hosts: (!extra_hosts.is_empty()).then_some(extra_hosts),
                dns: (!h.dns.is_empty()).then(|| h.dns.clone()),
                cap_add: (!h.cap_add.is_empty()).then(|| h.cap_add.clone()),
                cap_drop: (!h.cap_drop.is_empty()).then(|| h.cap_drop.clone()),
                security_opt: (!h.security_opt.is_empty()).then(|| h.security_opt.clone()),
                shm_size: h.shm_size,
                log_config: spec.no_log.then(|| HostConfigLogConfig {
                    typ: Some("none".to_string()),
                    config: None,
                }),
                memory: spec.resources.memory,
                memory_swap: spec.resources.memory_swap,
                memory_reservation: spec.resources.memory_reservation,
                nano_cpus: spec.resources.nano_cpus,
                oom_kill_disable: spec.resources.oom_kill_disable.then_some(true),
                ..Default::default()
            }),
            networking_config,
            ..Default::default()
        };
        let options = CreateContainerOptions {
            name: Some(spec.name.clone()),
            platform: spec.platform.clone().unwrap_or_default(),
        };
        let docker = self.docker.clone();
        let created = self
            .creating(async move { docker.create_container(Some(options), body).await })
            .await
            .map_err(|e| self.err(&format!("creating container {}", spec.name), e))?;
        Ok(created.id)
    }

    pub async fn start(&self, id: &str) -> Result<(), Error> {
        self.docker
            .start_container(id, None::<StartContainerOptions>)
            .await
            .map_err(|e| {
                let msg = message(&e);
                // Seen when the daemon itself runs in a container or VM whose capability
                // bounding set is not complete: privileged mode asks for every capability.
                let hint = if msg.contains("unable to apply caps") {
                    "\nhint: this Docker host cannot grant every capability, which privileged mode (and cap_add ALL) needs; grant only the ones the job needs (config.toml cap_add/cap_drop)"
                } else {
                    ""
                };
                Error::Docker(format!("starting container: {msg}{hint}"))
            })
    }

    /// Stop with a grace period (SIGTERM, then SIGKILL).
    pub async fn stop(&self, id: &str, grace: Duration) -> Result<(), Error> {
        let options = StopContainerOptions {
            t: Some(grace.as_secs() as i32),
            ..Default::default()
        };
        match self.docker.stop_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(BollardError::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(self.err("stopping container", e)),
        }
    }

    /// Attach stdin/stdout/stderr (before start, as the runner does).
    pub async fn attach(&self, id: &str) -> Result<Attached, Error> {
        let options = AttachContainerOptions {
            stdin: true,
            stdout: true,
            stderr: true,
            stream: true,
            logs: false,
            ..Default::default()
        };
        let res = self
            .docker
            .attach_container(id, Some(options))
            .await
            .map_err(|e| self.err("attaching to container", e))?;
        Ok(Attached {
            output: res.output,
            input: res.input,
        })
    }

    /// Wait for the container to stop; returns its exit code.
    pub async fn wait(&self, id: &str) -> Result<i64, Error> {
        let options = WaitContainerOptions {
            condition: "not-running".to_string(),
        };
        let mut stream = self.docker.wait_container(id, Some(options));
        match stream.next().await {
            Some(Ok(r)) => Ok(r.status_code),
            Some(Err(BollardError::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(self.err("waiting for container", e)),
            // The daemon always ends a wait with a status: the connection closed under it.
            None => {
                Err(self.lost("waiting for container: the answer ended without a status".into()))
            }
        }
    }

    /// Check that the daemon still answers, within a few seconds: for the places where an
    /// answer may otherwise never come (a connection that went silent without closing).
    pub async fn probe(&self) -> Result<(), Error> {
        match tokio::time::timeout(PROBE_TIMEOUT, self.docker.ping()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(self.lost(format!("checking that it answers: {}", message(&e)))),
            Err(_) => Err(self.lost(format!(
                "it did not answer a ping within {} s",
                PROBE_TIMEOUT.as_secs()
            ))),
        }
    }

    pub async fn inspect(&self, id: &str) -> Result<ContainerState, Error> {
        let c = self
            .docker
            .inspect_container(id, None)
            .await
            .map_err(|e| self.err("inspecting container", e))?;
        let state = c.state.unwrap_or_default();
        let config = c.config.unwrap_or_default();
        // The first network with an address, and its gateway.
        let (ip, gateway) = c
            .network_settings
            .and_then(|n| n.networks)
            .and_then(|nets| {
                nets.into_values()
                    .find(|n| n.ip_address.as_deref().is_some_and(|ip| !ip.is_empty()))
                    .map(|n| (n.ip_address, n.gateway.filter(|g| !g.is_empty())))
            })
            .unwrap_or_default();
        let mut ports: Vec<u16> = config
            .exposed_ports
            .unwrap_or_default()
            .iter()
            .filter_map(|p| {
                let (port, proto) = p.split_once('/').unwrap_or((p.as_str(), "tcp"));
                (proto == "tcp").then(|| port.parse().ok()).flatten()
            })
            .collect();
        ports.sort_unstable();
        ports.dedup();
        Ok(ContainerState {
            running: state.running.unwrap_or(false),
            exit_code: state.exit_code,
            ip,
            gateway,
            exposed_tcp_ports: ports,
            env: config.env.unwrap_or_default(),
            entrypoint: config.entrypoint.unwrap_or_default(),
            status: state.status.map(|s| s.to_string()).unwrap_or_default(),
            oom_killed: state.oom_killed.unwrap_or(false),
        })
    }

    /// The container's logs (stdout and stderr), at most the last `limit` bytes.
    pub async fn logs_tail(&self, id: &str, limit: usize, timestamps: bool) -> String {
        let options = LogsOptions {
            stdout: true,
            stderr: true,
            timestamps,
            ..Default::default()
        };
        let mut stream = self.docker.logs(id, Some(options));
        let mut buf: Vec<u8> = Vec::new();
        while let Some(Ok(chunk)) = stream.next().await {
            buf.extend_from_slice(&chunk.into_bytes());
            if buf.len() > limit * 2 {
                buf.drain(..buf.len() - limit);
            }
        }
        if buf.len() > limit {
            buf.drain(..buf.len() - limit);
        }
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// Follow a container's logs from now on.
    pub fn follow_logs(
        &self,
        id: &str,
    ) -> impl Stream<Item = Result<LogOutput, BollardError>> + Send + 'static {
        let options = LogsOptions {
            stdout: true,
            stderr: true,
            follow: true,
            ..Default::default()
        };
        self.docker.logs(id, Some(options))
    }

    /// Upload a tar stream and unpack it at `path` in the container.
    pub async fn upload(
        &self,
        id: &str,
        path: &str,
        tar: impl Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static,
    ) -> Result<(), Error> {
        self.upload_as(id, path, tar, "copying the project into its volume")
            .await
    }

    /// `upload`, its error saying `what` was being copied.
    pub async fn upload_as(
        &self,
        id: &str,
        path: &str,
        tar: impl Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static,
        what: &str,
    ) -> Result<(), Error> {
        let options = UploadToContainerOptions {
            path: path.to_string(),
            ..Default::default()
        };
        self.docker
            .upload_to_container(id, Some(options), bollard::body_try_stream(tar))
            .await
            .map_err(|e| self.err(what, e))
    }

    /// The tar of `path` in a container (running or not) written to `out`, chunk by chunk:
    /// its entries are named from the path's last component. `false` when there is no
    /// such path.
    pub async fn download(
        &self,
        id: &str,
        path: &str,
        out: &mut (impl tokio::io::AsyncWrite + Unpin),
    ) -> Result<bool, Error> {
        use tokio::io::AsyncWriteExt;
        let options = DownloadFromContainerOptions {
            path: path.to_string(),
        };
        let mut stream = self.docker.download_from_container(id, Some(options));
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => out.write_all(&bytes).await.map_err(|e| {
                    Error::Failed(format!("writing {path} from the container: {e}"))
                })?,
                Err(e) if is_not_found(&e) => return Ok(false),
                Err(e) => return Err(self.err(&format!("copying {path} out of the container"), e)),
            }
        }
        Ok(true)
    }

    async fn remove_container(&self, id: &str) -> Result<(), Error> {
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            // 409: removal already in progress (a concurrent cleanup, the sources helper's
            // own removal): wait for it, so that nothing is left when cijob exits.
            Err(BollardError::DockerResponseServerError {
                status_code: 409, ..
            }) => {
                for _ in 0..200 {
                    match self.docker.inspect_container(id, None).await {
                        Err(e) if is_not_found(&e) => break,
                        _ => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
                Ok(())
            }
            Err(e) => Err(self.err(&format!("removing container {id}"), e)),
        }
    }

    async fn remove_network(&self, name: &str) -> Result<(), Error> {
        match self.docker.remove_network(name).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(self.err(&format!("removing network {name}"), e)),
        }
    }

    async fn remove_volume(&self, name: &str) -> Result<(), Error> {
        let options = RemoveVolumeOptions { force: true };
        match self.docker.remove_volume(name, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(self.err(&format!("removing volume {name}"), e)),
        }
    }

    /// Start `cmd` inside a running container with its stdin/stdout/stderr attached.
    /// `tty` gives it a pseudo-terminal (interactive shells).
    pub async fn exec(
        &self,
        id: &str,
        cmd: Vec<String>,
        tty: bool,
        working_dir: Option<&str>,
    ) -> Result<(String, Attached), Error> {
        let config = bollard::models::ExecConfig {
            cmd: Some(cmd),
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(tty),
            working_dir: working_dir.map(str::to_owned),
            ..Default::default()
        };
        let created = self
            .docker
            .create_exec(id, config)
            .await
            .map_err(|e| self.err("starting a process in the container", e))?;
        let options = bollard::exec::StartExecOptions {
            detach: false,
            tty,
            output_capacity: None,
        };
        match self
            .docker
            .start_exec(&created.id, Some(options))
            .await
            .map_err(|e| self.err("starting a process in the container", e))?
        {
            bollard::exec::StartExecResults::Attached { output, input } => {
                Ok((created.id, Attached { output, input }))
            }
            bollard::exec::StartExecResults::Detached => Err(Error::Docker(
                "the daemon detached from the process".to_string(),
            )),
        }
    }

    /// The exit code of a finished exec (None while it runs).
    pub async fn exec_exit_code(&self, exec_id: &str) -> Result<Option<i64>, Error> {
        let r = self
            .docker
            .inspect_exec(exec_id)
            .await
            .map_err(|e| self.err("inspecting a process in the container", e))?;
        Ok(if r.running == Some(true) {
            None
        } else {
            r.exit_code
        })
    }

    pub async fn resize_exec(&self, exec_id: &str, rows: u16, cols: u16) {
        let options = bollard::query_parameters::ResizeExecOptions {
            h: i32::from(rows),
            w: i32::from(cols),
        };
        let _ = self.docker.resize_exec(exec_id, options).await;
    }

    /// Run a command to completion and return its stdout (for small reads like state files).
    pub async fn exec_output(&self, id: &str, cmd: Vec<String>) -> Result<(i64, String), Error> {
        let (exec_id, attached) = self.exec(id, cmd, false, None).await?;
        drop(attached.input);
        let mut out = Vec::new();
        let mut stream = attached.output;
        while let Some(Ok(chunk)) = stream.next().await {
            if let LogOutput::StdOut { message } = chunk {
                out.extend_from_slice(&message);
            }
        }
        let code = self.exec_exit_code(&exec_id).await?.unwrap_or(-1);
        Ok((code, String::from_utf8_lossy(&out).into_owned()))
    }

    /// Containers carrying `label` (`key` or `key=value`), running or not.
    pub async fn containers_with(&self, label: &str) -> Result<Vec<Managed>, Error> {
        let list = self.list_containers(label_filter(label)).await?;
        Ok(list
            .into_iter()
            .map(|c| Managed {
                kind: Kind::Container,
                id: c.id.unwrap_or_default(),
                name: c
                    .names
                    .and_then(|n| n.into_iter().next())
                    .unwrap_or_default()
                    .trim_start_matches('/')
                    .to_string(),
                labels: c.labels.unwrap_or_default(),
                running: c.state.map(|s| s.to_string() == "running").unwrap_or(false),
            })
            .collect())
    }

    /// Whether any container, running or not, mounts the volume.
    pub async fn volume_in_use(&self, volume: &str) -> Result<bool, Error> {
        let filter = HashMap::from([("volume".to_string(), vec![volume.to_string()])]);
        Ok(!self.list_containers(filter).await?.is_empty())
    }

    /// All containers, running or not, that match the filters. Podman briefly reports a
    /// container that just exited as `stopped`, a state bollard cannot read: such a listing
    /// is asked again (for 2 s at most) until it settles.
    async fn list_containers(
        &self,
        filters: HashMap<String, Vec<String>>,
    ) -> Result<Vec<bollard::models::ContainerSummary>, Error> {
        let options = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        let mut retries = 20;
        loop {
            match self.docker.list_containers(Some(options.clone())).await {
                Err(BollardError::JsonDataError { .. } | BollardError::JsonSerdeError { .. })
                    if retries > 0 =>
                {
                    retries -= 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                listed => return listed.map_err(|e| self.err("listing containers", e)),
            }
        }
    }

    /// Containers, networks and volumes carrying `label`, in removal order.
    pub async fn objects_with(&self, label: &str) -> Result<Vec<Managed>, Error> {
        let (containers, networks, volumes) = futures_util::join!(
            self.containers_with(label),
            self.networks_with(label),
            self.volumes_with(label)
        );
        Ok([containers?, networks?, volumes?].concat())
    }

    /// Remove a container (with its anonymous volumes), network or volume; gone already is fine.
    pub async fn remove(&self, object: &Managed) -> Result<(), Error> {
        match object.kind {
            Kind::Container => self.remove_container(&object.id).await,
            Kind::Network => self.remove_network(&object.id).await,
            Kind::Volume => self.remove_volume(&object.id).await,
        }
    }

    async fn networks_with(&self, label: &str) -> Result<Vec<Managed>, Error> {
        let options = ListNetworksOptions {
            filters: Some(label_filter(label)),
        };
        let list = self
            .docker
            .list_networks(Some(options))
            .await
            .map_err(|e| self.err("listing networks", e))?;
        Ok(list
            .into_iter()
            .map(|n| Managed {
                kind: Kind::Network,
                id: n.id.unwrap_or_default(),
                name: n.name.unwrap_or_default(),
                labels: n.labels.unwrap_or_default(),
                running: false,
            })
            .collect())
    }

    async fn volumes_with(&self, label: &str) -> Result<Vec<Managed>, Error> {
        let options = ListVolumesOptions {
            filters: Some(label_filter(label)),
        };
        let list = self
            .docker
            .list_volumes(Some(options))
            .await
            .map_err(|e| self.err("listing volumes", e))?;
        Ok(list
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| Managed {
                kind: Kind::Volume,
                id: v.name.clone(),
                name: v.name,
                labels: v.labels,
                running: false,
            })
            .collect())
    }
}

fn label_filter(label: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), vec![label.to_string()])])
}

type SshFailure = Arc<std::sync::Mutex<Option<String>>>;

/// A bollard client for the endpoint (nothing is sent yet). TLS and ssh go through custom
/// transports: bollard's TLS needs all three files and always verifies, and its ssh starts
/// an OpenSSH master per connection that accepts unknown host keys.
fn client(endpoint: &Endpoint) -> Result<(Docker, Option<SshFailure>), String> {
    const TIMEOUT: u64 = 120;
    let version = bollard::API_DEFAULT_VERSION;
    match (&endpoint.host, &endpoint.tls) {
        (Host::Unix(path), _) => {
            Docker::connect_with_unix(&path.to_string_lossy(), TIMEOUT, version)
                .map(|d| (d, None))
                .map_err(|e| message(&e))
        }
        (Host::Tcp { host, port }, None) => {
            Docker::connect_with_http(&format!("tcp://{host}:{port}"), TIMEOUT, version)
                .map(|d| (d, None))
                .map_err(|e| message(&e))
        }
        (Host::Tcp { host, port }, Some(t)) => {
            let config = tls::client_config(t)?;
            let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
            http.enforce_http(false);
            let https = hyper_rustls::HttpsConnector::from((http, config));
            Docker::connect_with_custom_transport(
                hyper_transport(https),
                Some(format!("https://{host}:{port}")),
                TIMEOUT,
                version,
            )
            .map(|d| (d, None))
            .map_err(|e| message(&e))
        }
        (Host::Ssh { .. }, _) => {
            let connector = ssh::SshConnector::new(&endpoint.host);
            let failure = connector.failure.clone();
            // The address only names the HTTP requests; the connector ignores it.
            Docker::connect_with_custom_transport(
                hyper_transport(connector),
                Some("http://docker.ssh"),
                TIMEOUT,
                version,
            )
            .map(|d| (d, Some(failure)))
            .map_err(|e| message(&e))
        }
        #[cfg(windows)]
        (Host::Npipe(path), _) => Docker::connect_with_named_pipe(path, TIMEOUT, version)
            .map(|d| (d, None))
            .map_err(|e| message(&e)),
        #[cfg(not(windows))]
        (Host::Npipe(_), _) => Err("npipe:// exists only on Windows".to_string()),
    }
}

type Answer = std::pin::Pin<
    Box<dyn Future<Output = Result<hyper::Response<hyper::body::Incoming>, BollardError>> + Send>,
>;

/// A hyper client over `connector`, as a bollard transport (the body type is bollard's).
fn hyper_transport<C, B>(connector: C) -> impl Fn(hyper::Request<B>) -> Answer + Send + Sync
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
    B: hyper::body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new());
    builder.pool_idle_timeout(Duration::from_secs(30));
    let client = Arc::new(builder.build::<C, B>(connector));
    move |req| {
        let client = client.clone();
        Box::pin(async move { client.request(req).await.map_err(BollardError::from) })
    }
}

#[derive(Debug, Clone)]
pub struct PullEvent {
    pub layer: String,
    pub status: String,
    pub current: Option<i64>,
    pub total: Option<i64>,
}

/// Split `name[:tag]` / `name@digest` for the pull API (`:latest` when neither is given).
pub fn split_tag(image: &str) -> (String, String) {
    if image.contains('@') {
        return (image.to_string(), String::new());
    }
    let last_slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[last_slash..].rfind(':') {
        Some(i) => (
            image[..last_slash + i].to_string(),
            image[last_slash + i + 1..].to_string(),
        ),
        None => (image.to_string(), "latest".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::{rootless_socket, split_tag, Host};

    #[test]
    fn a_socket_owned_by_a_user_is_a_rootless_engine() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker.sock");
        std::fs::write(&path, "").unwrap();
        let uid = {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(&path).unwrap().uid()
        };
        let host = Host::Unix(path.clone());
        // Whoever runs the test owns the file: rootless unless that is root.
        assert_eq!(rootless_socket(&host), uid != 0);
        if uid == 0 {
            std::os::unix::fs::chown(&path, Some(1000), None).unwrap();
            assert!(rootless_socket(&host));
        }
        assert!(!rootless_socket(&Host::Unix(dir.path().join("missing"))));
    }

    #[test]
    fn tags_split_after_the_last_slash() {
        assert_eq!(split_tag("alpine"), ("alpine".into(), "latest".into()));
        assert_eq!(split_tag("alpine:3.19"), ("alpine".into(), "3.19".into()));
        assert_eq!(
            split_tag("reg.example.com:5000/ns/img"),
            ("reg.example.com:5000/ns/img".into(), "latest".into())
        );
        assert_eq!(
            split_tag("reg.example.com:5000/ns/img:1.0"),
            ("reg.example.com:5000/ns/img".into(), "1.0".into())
        );
        assert_eq!(
            split_tag("img@sha256:abc"),
            ("img@sha256:abc".into(), String::new())
        );
    }
}

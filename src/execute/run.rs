//! Executing a run plan on the daemon, in the runner's order: volume and network, services
//! and their health check, build container, sources, `step_script`, `after_script`, cleanup.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bollard::container::LogOutput;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::signal::unix::{signal, SignalKind};

use crate::cli::config::DebugMode;
use crate::error::{Error, Signal};
use crate::execute::archive;
use crate::execute::debug;
use crate::execute::docker::{ContainerSpec, Engine, Kind};
use crate::execute::health;
use crate::execute::pull::ensure_image;
use crate::plan::limits;
use crate::plan::script::{self, EchoSpotter};
use crate::plan::{RunPlan, ServicePlan, LABEL_RUN, LABEL_TYPE};
use crate::ui::masking::Masker;
use crate::ui::Ui;

/// Where the project's files come from.
pub struct ProjectSource {
    pub root: PathBuf,
    pub files: Vec<PathBuf>,
}

/// How the script stage ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StageEnd {
    Exited(i64),
    TimedOut,
    /// Debug mode: the user aborted; no after_script.
    Aborted(i64),
}

/// How a stage ended, and whether its shell reached the script's first command.
pub(crate) struct Stage {
    pub end: StageEnd,
    pub started: bool,
}

/// Run the plan and clean up after it (unless kept). The job's failure is an `Err` carrying
/// its exit code.
pub async fn execute(
    engine: &Engine,
    plan: &RunPlan,
    project: &ProjectSource,
    ui: &Ui,
) -> Result<(), Error> {
    let mut signals = Signals::new()?;
    let result = tokio::select! {
        r = job(engine, plan, project, ui) => r,
        sig = signals.next() => {
            ui.line("");
            ui.error(&format!("Job interrupted by {sig}: stopping it and cleaning up (again to stop at once)"));
            // Give the job's processes a moment to exit, like the runner's SIGTERM script: all
            // containers at once, and bounded, so that many services or a daemon that went
            // silent cannot hold the cleanup back.
            let grace = async {
                if let Ok(list) = engine.containers_with(&format!("{LABEL_RUN}={}", plan.run_id)).await {
                    let stops = list.iter().map(|c| engine.stop(&c.id, Duration::from_secs(3)));
                    futures_util::future::join_all(stops).await;
                }
            };
            // Meanwhile, what the daemon was still creating lands, so the cleanup sees it.
            let settle = engine.settle(Duration::from_secs(5));
            tokio::select! {
                _ = tokio::time::timeout(Duration::from_secs(5), futures_util::future::join(grace, settle)) => {},
                _ = signals.next() => {},
            }
            Err(Error::Interrupted(sig))
        }
    };
    let interrupted = matches!(result, Err(Error::Interrupted(_)));
    let lost = matches!(result, Err(Error::DaemonLost { .. }));
    if plan.keep && !interrupted && !lost {
        keep(engine, plan, ui).await;
    } else if let Err(e) = cleanup(engine, &plan.run_id).await {
        // A lost daemon's error already says what remains and how to remove it.
        if !lost {
            ui.warning(&format!("Could not remove the job's containers: {e}"));
        }
    }
    result
}

async fn job(
    engine: &Engine,
    plan: &RunPlan,
    project: &ProjectSource,
    ui: &Ui,
) -> Result<(), Error> {
    ui.line(&format!("Running with cijob {}", env!("CARGO_PKG_VERSION")));
    ui.section("Preparing the \"docker\" executor");
    ui.line(&format!(
        "Using Docker executor with image {} ...",
        plan.build.image
    ));
    for w in &plan.warnings {
        ui.warning(w);
    }
    engine.create_volume(&plan.volume, &plan.labels).await?;
    if let Some(net) = &plan.network {
        engine.create_network(net, &plan.labels).await?;
    }
    for (name, labels) in &plan.cache_volumes {
        engine.create_volume(name, labels).await?;
    }
    let mut binds = vec![format!("{}:/builds", plan.volume)];
    binds.extend(plan.binds.iter().cloned());

    // Services: pulled and started one after another, checked in parallel.
    let mut started: Vec<(&ServicePlan, String)> = Vec::new();
    for svc in &plan.services {
        ui.line(&format!("Starting service {}...", svc.display));
        ensure_image(
            engine,
            ui,
            &svc.image,
            &svc.pull,
            svc.platform.as_deref(),
            &plan.auth,
        )
        .await?;
        let spec = ContainerSpec {
            name: svc.container.clone(),
            image: svc.image.clone(),
            entrypoint: svc.entrypoint.clone(),
            cmd: svc.cmd.clone(),
            env: svc.env.clone(),
            labels: with_type(&plan.labels, "service"),
            user: svc.user.clone(),
            platform: svc.platform.clone(),
            privileged: svc.privileged,
            binds: binds.clone(),
            network: plan.network.clone().map(|n| (n, svc.aliases.clone())),
            host: plan.host.clone(),
            resources: svc.resources,
            ..Default::default()
        };
        let id = engine.create_container(&spec).await?;
        engine.start(&id).await?;
        started.push((svc, id));
    }
    if plan.debug_services {
        for (svc, id) in &started {
            stream_service_logs(engine, svc, id);
        }
    }
    if let (Some(timeout), false) = (plan.services_timeout, started.is_empty()) {
        ui.line(&format!(
            "Waiting for services to be up and running (timeout {} seconds)...",
            timeout.as_secs()
        ));
        let checks = started.iter().map(|(svc, id)| async move {
            let r = health::wait_for_service(engine, id, &svc.container, timeout).await;
            (svc, id, r)
        });
        for (svc, id, r) in futures_util::future::join_all(checks).await {
            if let Err(e) = r {
                let logs = engine.logs_tail(id, health::LOG_LIMIT, true).await;
                let yellow = |s: &str| ui.yellow(s);
                ui.raw(&health::warning_block(&yellow, &svc.container, &e, &logs));
            }
        }
    }

    // The build container reaches services through /etc/hosts entries on the default
    // bridge (runner >= 18.7), or through network aliases on a per-build network.
    let mut extra_hosts = Vec::new();
    if plan.network.is_none() {
        for (svc, id) in &started {
            let state = engine.inspect(id).await?;
            if let (true, Some(ip)) = (state.running, state.ip) {
                for alias in &svc.claimed {
                    extra_hosts.push(format!("{alias}:{ip}"));
                }
                extra_hosts.push(format!("{}:{ip}", &id[..12.min(id.len())]));
            }
        }
    }
    ensure_image(
        engine,
        ui,
        &plan.build.image,
        &plan.build.pull,
        plan.build.platform.as_deref(),
        &plan.auth,
    )
    .await?;
    let spec = ContainerSpec {
        name: plan.build.container.clone(),
        image: plan.build.image.clone(),
        entrypoint: plan.build.entrypoint.clone(),
        cmd: Some(plan.build.cmd.clone()),
        env: plan.build.env.clone(),
        labels: with_type(&plan.labels, "build"),
        hostname: Some(plan.build.hostname.clone()),
        user: plan.build.user.clone(),
        platform: plan.build.platform.clone(),
        privileged: plan.build.privileged,
        binds,
        network: plan
            .network
            .clone()
            .map(|n| (n, vec!["build".to_string(), plan.build.container.clone()])),
        extra_hosts,
        stdin: true,
        host: plan.host.clone(),
        no_log: true,
        resources: plan.build.resources,
    };
    let build = engine.create_container(&spec).await?;

    ui.section("Preparing environment");
    ui.line(&format!("Running on {}...", plan.build.hostname));
    ui.section("Getting source from the local working tree");
    upload_project(engine, &build, project, &plan.project_dir).await?;
    ui.line(&format!(
        "Copied {} files (uncommitted changes included) to {}",
        project.files.len(),
        plan.project_dir
    ));

    ui.section("Executing \"step_script\" stage of the job script");
    let Stage { end: step, started } = if plan.debug == DebugMode::Off {
        run_stage(
            engine,
            &build,
            plan.step_script(),
            &plan.secrets,
            plan.job_timeout,
            ui,
        )
        .await?
    } else {
        Stage {
            end: debug::step_stage(engine, plan, &build, ui).await?,
            started: true,
        }
    };
    let status = match step {
        StageEnd::Exited(0) => "success",
        StageEnd::Exited(_) | StageEnd::Aborted(_) => "failed",
        StageEnd::TimedOut => "timedout",
    };
    // Read now: Docker clears OOMKilled when after_script starts the container again.
    let step_killed = sigkill_note(engine, &build, plan, step).await;
    let never_ran = match step {
        StageEnd::Exited(code) if !started => Some(script::script_never_ran(
            code,
            plan.build.entrypoint.as_deref(),
        )),
        _ => None,
    };
    if let StageEnd::Aborted(code) = step {
        ui.error(&format!("Job aborted in debug mode (exit code {code})"));
        return Err(Error::JobFailed(if code == 0 { 1 } else { code }));
    }
    if !plan.after_commands.is_empty() {
        ui.section("Running after_script");
        let after = run_stage(
            engine,
            &build,
            plan.after_script(status),
            &plan.secrets,
            plan.after_script_timeout,
            ui,
        )
        .await?
        .end;
        match after {
            StageEnd::Exited(0) => {}
            StageEnd::Exited(code) => {
                ui.warning(&format!(
                    "after_script failed, but job will continue unaffected: exit code {code}"
                ));
                if let Some(why) = sigkill_note(engine, &build, plan, after).await {
                    ui.warning(&why);
                }
            }
            StageEnd::TimedOut => ui.warning(&format!(
                "after_script failed, but job will continue unaffected: execution took longer than {}",
                go_duration(plan.after_script_timeout)
            )),
            StageEnd::Aborted(_) => {}
        }
    }
    ui.section("Cleaning up project directory and file based variables");
    match step {
        StageEnd::Exited(0) => {
            if let Some(why) = &never_ran {
                ui.warning(why);
            }
            ui.info("Job succeeded");
            Ok(())
        }
        StageEnd::Exited(code) => {
            if let Some(why) = step_killed.as_ref().or(never_ran.as_ref()) {
                ui.error(why);
            }
            ui.error(&format!("Job failed: exit code {code}"));
            if plan.allow_failure.allows(code) {
                ui.warning(&format!(
                    "Job \"{}\" is allowed to fail (allow_failure): exiting with 0",
                    plan.job_name
                ));
                Ok(())
            } else {
                // Debug mode stops at a failing command: no use when none ran.
                if plan.debug == DebugMode::Off && started {
                    ui.line(&format!(
                        "hint: `cijob run {} --debug` stops at the failing command with a shell in its state",
                        script::shell_escape(&plan.job_name)
                    ));
                }
                Err(Error::JobFailed(code))
            }
        }
        StageEnd::TimedOut => {
            ui.error(&format!(
                "Job failed: execution took longer than {} seconds",
                go_duration(plan.job_timeout)
            ));
            Err(Error::Timeout)
        }
        StageEnd::Aborted(code) => Err(Error::JobFailed(code)),
    }
}

/// For a stage that ended with exit code 137: why its shell got SIGKILL, from the
/// container's OOMKilled flag (unknown counts as not OOM-killed).
async fn sigkill_note(engine: &Engine, id: &str, plan: &RunPlan, end: StageEnd) -> Option<String> {
    if end != StageEnd::Exited(limits::SIGKILL_EXIT_CODE) {
        return None;
    }
    let oom_killed = engine.inspect(id).await.is_ok_and(|s| s.oom_killed);
    Some(limits::sigkill_explanation(
        oom_killed,
        plan.build.memory_limit(),
    ))
}

/// Pack the project on a blocking thread while the daemon receives it, a few chunks at a time.
async fn upload_project(
    engine: &Engine,
    build: &str,
    project: &ProjectSource,
    dest: &str,
) -> Result<(), Error> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let (root, files, dest) = (
        project.root.clone(),
        project.files.clone(),
        dest.to_string(),
    );
    let packer = tokio::task::spawn_blocking(move || {
        let out = std::io::BufWriter::with_capacity(256 * 1024, archive::ChunkWriter(tx.clone()));
        let packed = archive::project_tar(&root, &files, &dest, out)
            .and_then(|w| w.into_inner().map_err(|e| e.into_error()));
        if let Err(e) = &packed {
            // Abort the upload rather than let the daemon unpack a truncated tar.
            let _ = tx.blocking_send(Err(std::io::Error::new(e.kind(), e.to_string())));
        }
        packed.map(drop)
    });
    let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    let uploaded = engine.upload(build, "/", chunks).await;
    let packed = packer
        .await
        .map_err(|e| Error::Failed(format!("packing the project: {e}")))?;
    match packed {
        // A broken pipe only means the upload stopped first: its error says why.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::Failed(format!("packing the project: {e}")))
        }
        _ => uploaded,
    }
}

/// How often to check that the daemon still answers while a container runs with its output
/// stream closed. Normally the stream closes as the container exits and the wait answers at
/// once; otherwise the script closed its stdout and stderr and runs on, or the connection
/// broke, and a broken connection may never deliver the wait's answer.
const PROBE_AFTER_OUTPUT_CLOSED: Duration = Duration::from_secs(2);

/// Attach, start, send the script on stdin and stream output until the container stops.
pub(crate) async fn run_stage(
    engine: &Engine,
    id: &str,
    script: String,
    secrets: &[String],
    timeout: Duration,
    ui: &Ui,
) -> Result<Stage, Error> {
    let attached = engine.attach(id).await?;
    engine.start(id).await?;
    let mut input = attached.input;
    let writer = tokio::spawn(async move {
        // A shell that exits early closes stdin; that is not an error of ours.
        let _ = input.write_all(script.as_bytes()).await;
        let _ = input.shutdown().await;
    });
    let mut pump = tokio::spawn(pump_output(attached.output, secrets.to_vec(), ui.clone()));
    let mut output_open = true;
    // Unknown (the stream never closed) counts as started: no false alarm.
    let mut started = true;
    let end: Result<StageEnd, Error> = async {
        let wait = engine.wait(id);
        tokio::pin!(wait);
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                code = &mut wait => return Ok(StageEnd::Exited(code?)),
                () = &mut deadline => {
                    engine.stop(id, Duration::from_secs(5)).await?;
                    return Ok(StageEnd::TimedOut);
                }
                echoed = &mut pump, if output_open => {
                    output_open = false;
                    started = echoed.unwrap_or(true);
                }
                () = tokio::time::sleep(PROBE_AFTER_OUTPUT_CLOSED), if !output_open => {
                    engine.probe().await?;
                }
            }
        }
    }
    .await;
    writer.abort();
    if output_open {
        // The attach stream may not close on some engines (bollard#251): bound the final
        // drain, and skip it when the daemon is gone.
        if end.is_ok() {
            if let Ok(Ok(echoed)) = tokio::time::timeout(Duration::from_secs(2), &mut pump).await {
                started = echoed;
            }
        }
        pump.abort();
    }
    Ok(Stage { end: end?, started })
}

/// Set once our stdout is a closed pipe (`cijob run job | head -1`): the job still runs to
/// its end (after_script, cleanup, its exit status), as the container of `docker run | head`
/// does, and its stdout is dropped from then on. Process-wide, as stdout is.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Copy the job's stdout and stderr to ours, apart, masking secrets. Returns whether the
/// shell echoed a command (it got as far as the script).
pub(crate) async fn pump_output<S>(mut output: S, secrets: Vec<String>, ui: Ui) -> bool
where
    S: futures_util::Stream<Item = Result<LogOutput, bollard::errors::Error>> + Unpin,
{
    let mut out_mask = Masker::new(secrets.clone());
    let mut err_mask = Masker::new(secrets);
    let mut echoes = EchoSpotter::default();
    while let Some(Ok(item)) = output.next().await {
        match item {
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                echoes.push(&message);
                write_stdout(&out_mask.push(&message), &ui);
            }
            LogOutput::StdErr { message } => {
                write_stderr(&err_mask.push(&message));
            }
            LogOutput::StdIn { .. } => {}
        }
    }
    write_stdout(&out_mask.finish(), &ui);
    write_stderr(&err_mask.finish());
    echoes.seen()
}

fn write_stdout(bytes: &[u8], ui: &Ui) {
    if bytes.is_empty() || STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe
            && !STDOUT_CLOSED.swap(true, Ordering::Relaxed)
        {
            ui.warning("cijob's standard output was closed: the job runs on to its end, and its standard output is discarded");
        }
    }
}

fn write_stderr(bytes: &[u8]) {
    if !bytes.is_empty() {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(bytes).and_then(|()| err.flush());
    }
}

/// `CI_DEBUG_SERVICES`: every service log line, prefixed like the runner does.
fn stream_service_logs(engine: &Engine, svc: &ServicePlan, id: &str) {
    let prefix = format!("[service:{}] ", svc.aliases.join("-"));
    let mut stream = Box::pin(engine.follow_logs(id));
    tokio::spawn(async move {
        let mut partial: Vec<u8> = Vec::new();
        while let Some(Ok(chunk)) = stream.next().await {
            partial.extend_from_slice(&chunk.into_bytes());
            while let Some(pos) = partial.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = partial.drain(..=pos).collect();
                let mut err = std::io::stderr().lock();
                let _ = err.write_all(b"\x1b[0;37m");
                let _ = err.write_all(prefix.as_bytes());
                let _ = err.write_all(&line);
            }
        }
    });
}

fn with_type(labels: &[(String, String)], kind: &str) -> Vec<(String, String)> {
    let mut l = labels.to_vec();
    l.push((LABEL_TYPE.to_string(), kind.to_string()));
    l
}

/// Remove everything labelled with this run: containers first, then network and volume.
/// Fails only when the daemon does not answer: every call would then wait for an answer
/// that never comes.
pub async fn cleanup(engine: &Engine, run_id: &str) -> Result<(), Error> {
    engine.probe().await?;
    let Ok(objects) = engine.objects_with(&format!("{LABEL_RUN}={run_id}")).await else {
        return Ok(());
    };
    // Containers together, then what they used.
    let (containers, rest): (Vec<_>, Vec<_>) =
        objects.iter().partition(|o| o.kind == Kind::Container);
    futures_util::future::join_all(containers.into_iter().map(|c| engine.remove(c))).await;
    for o in rest {
        let _ = engine.remove(o).await;
    }
    Ok(())
}

/// `--keep`: restart the build container idle (its shell waits on an open stdin, same
/// filesystem and environment) and print how to get inside each container.
async fn keep(engine: &Engine, plan: &RunPlan, ui: &Ui) {
    let build = &plan.build.container;
    if let Ok(state) = engine.inspect(build).await {
        if !state.running {
            let _ = engine.start(build).await;
        }
    }
    ui.section("Kept the job's containers (remove them with `cijob clean`)");
    ui.line(&format!(
        "  build: docker exec -it -w {} {build} sh -c 'command -v bash >/dev/null && exec bash || exec sh'",
        plan.project_dir
    ));
    for svc in &plan.services {
        ui.line(&format!(
            "  {}: docker exec -it {} sh",
            svc.aliases
                .first()
                .map_or(svc.display.as_str(), String::as_str),
            svc.container
        ));
    }
}

/// Go's `time.Duration` formatting (`1h0m0s`, `10s`), which the runner's messages use.
pub fn go_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

/// SIGINT, SIGTERM and SIGHUP as one stream of names.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Self, Error> {
        let mk = |k| signal(k).map_err(|e| Error::Failed(format!("signal handler: {e}")));
        Ok(Self {
            int: mk(SignalKind::interrupt())?,
            term: mk(SignalKind::terminate())?,
            hup: mk(SignalKind::hangup())?,
        })
    }

    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.int.recv() => Signal::Int,
            _ = self.term.recv() => Signal::Term,
            _ = self.hup.recv() => Signal::Hup,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::go_duration;
    use std::time::Duration;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(go_duration(Duration::from_secs(10)), "10s");
        assert_eq!(go_duration(Duration::from_secs(300)), "5m0s");
    }
}

//! Executing a run plan on the engine, in the runner's order, one function per phase:
//! volumes and network, services and their health check, the build container, the sources,
//! the cache and artifacts received, `step_script`, `after_script`, the cache and artifacts
//! saved, the verdict; then cleanup (or `--keep`).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::StreamExt;

use crate::cli::config::DebugMode;
use crate::error::Error;
use crate::execute::docker::{Attached, Engine, Kind};
use crate::execute::pull::ensure_image;
use crate::execute::signals::Signals;
use crate::execute::stage::{run_stage, run_started, Stage, StageEnd};
use crate::execute::verdict::{self, Level, Lines, Outcome, Rules};
use crate::execute::{artifacts, cache, debug, health, sources};
use crate::plan::labels::LABEL_RUN;
use crate::plan::spec::ContainerSpec;
use crate::plan::{RunPlan, ServicePlan};
use crate::ui::Ui;

/// Where the project's files come from.
pub struct ProjectSource {
    pub root: PathBuf,
    pub files: Vec<PathBuf>,
}

/// Above this many files, the project volume's listing takes long enough that a helper
/// container doing it while the services and the build container start is worth that
/// container's start (on a small project two containers starting at once cost more than the
/// update; on 100,000 files the second run took 3.4 s listed by the job's shell after its
/// start, 2.4 s listed by the helper meanwhile).
const OVERLAP_ABOVE_FILES: usize = 5_000;

/// A service container that was started.
struct Started<'a> {
    plan: &'a ServicePlan,
    id: String,
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
            tokio::select! {
                () = stop_everything(engine, &plan.run_id) => {},
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
    prepare(engine, plan, ui).await?;
    // A helper updates the project volume while the services start and are checked and the
    // build container is created and started (the runner does one after the other, but none
    // of them needs the others' result); else the build container's shell does it after.
    let overlap = plan.debug != DebugMode::Off || project.files.len() > OVERLAP_ABOVE_FILES;
    let (built, early) = futures_util::join!(
        async {
            let services = start_services(engine, plan, ui).await?;
            check_services(engine, plan, &services, ui).await?;
            let build = create_build(engine, plan, &services, ui).await?;
            let attached = if overlap && plan.debug == DebugMode::Off {
                Some(start_attached(engine, &build).await?)
            } else {
                None
            };
            Ok::<_, Error>((build, attached))
        },
        async {
            if overlap {
                Some(sources::update(engine, plan, project, ui).await)
            } else {
                None
            }
        }
    );
    let (build, attached) = built?;
    let (attached, sources) = match early {
        Some(lines) => (attached, lines?),
        None => {
            let (attached, lines) = sources_after_build(engine, plan, project, &build, ui).await?;
            (Some(attached), lines)
        }
    };
    get_sources(plan, &sources, ui);
    cache::restore(engine, plan, &build, ui).await?;
    artifacts::download(engine, plan, &build, ui).await?;

    ui.section("Executing \"step_script\" stage of the job script");
    let Stage { end: step, started } = if let Some(attached) = attached {
        run_started(
            engine,
            &build,
            attached,
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
    // Read now: Docker clears OOMKilled when after_script starts the container again.
    let outcome = Outcome {
        step,
        started,
        oom_killed: oom_killed(engine, &build, step).await,
        memory_limit: plan.build.memory_limit(),
        entrypoint: plan.build.container.entrypoint.as_deref(),
    };
    if !matches!(step, StageEnd::Aborted(_)) && !plan.after_commands.is_empty() {
        after_script(engine, plan, &build, step, ui).await?;
    }
    if !matches!(step, StageEnd::Aborted(_)) {
        let succeeded = step == StageEnd::Exited(0);
        cache::save(engine, plan, &build, &project.files, succeeded, ui).await?;
        artifacts::upload(engine, plan, &build, &project.files, succeeded, ui).await?;
    }
    let (lines, result) = verdict::decide(
        &outcome,
        &Rules {
            job_name: &plan.job_name,
            allow_failure: &plan.allow_failure,
            debug: plan.debug,
            job_timeout: plan.job_timeout,
        },
    );
    if !matches!(step, StageEnd::Aborted(_)) {
        ui.section("Cleaning up project directory and file based variables");
    }
    print(ui, &lines);
    result
}

/// The build container starts and its shell updates the project volume when it can, so that
/// no helper container starts; the helper does it otherwise, while the build container
/// starts.
async fn sources_after_build(
    engine: &Engine,
    plan: &RunPlan,
    project: &ProjectSource,
    build: &str,
    ui: &Ui,
) -> Result<(Attached, Vec<String>), Error> {
    let entrypoint = engine.inspect(build).await?.entrypoint;
    if !sources::in_build(plan, &entrypoint) {
        let (attached, lines) = futures_util::join!(
            start_attached(engine, build),
            sources::update(engine, plan, project, ui)
        );
        return Ok((attached?, lines?));
    }
    let mut attached = start_attached(engine, build).await?;
    let lines = match sources::update_in_build(engine, plan, project, build, &mut attached).await? {
        Ok(lines) => lines,
        Err(why) => {
            let mut lines = vec![format!(
                "The job's shell could not update the project volume ({why}): a helper container does it"
            )];
            lines.extend(sources::update(engine, plan, project, ui).await?);
            lines
        }
    };
    Ok((attached, lines))
}

/// The build container's shell started, waiting on stdin for the script.
async fn start_attached(engine: &Engine, build: &str) -> Result<Attached, Error> {
    let attached = engine.attach(build).await?;
    engine.start(build).await?;
    Ok(attached)
}

/// The runner's opening lines, the plan's warnings, then the volumes and network.
async fn prepare(engine: &Engine, plan: &RunPlan, ui: &Ui) -> Result<(), Error> {
    ui.line(&format!("Running with cijob {}", env!("CARGO_PKG_VERSION")));
    ui.section("Preparing the \"docker\" executor");
    ui.line(&format!(
        "Using Docker executor with image {} ...",
        plan.build.container.image
    ));
    for w in &plan.warnings {
        ui.warning(w);
    }
    for v in &plan.volumes {
        engine.create_volume(v).await?;
    }
    if let Some(net) = &plan.network {
        engine.create_network(net).await?;
    }
    Ok(())
}

/// Services are pulled and started one after another, like the runner.
async fn start_services<'a>(
    engine: &Engine,
    plan: &'a RunPlan,
    ui: &Ui,
) -> Result<Vec<Started<'a>>, Error> {
    let mut started = Vec::new();
    for svc in &plan.services {
        ui.line(&format!("Starting service {}...", svc.display));
        pull(engine, plan, &svc.container, &svc.pull, ui).await?;
        let id = engine.create_container(&svc.container, &[]).await?;
        engine.start(&id).await?;
        if plan.debug_services {
            stream_service_logs(engine, svc, &id);
        }
        started.push(Started { plan: svc, id });
    }
    Ok(started)
}

/// All services checked in parallel; one that fails gets the runner's warning block with
/// its logs, and the job goes on.
async fn check_services(
    engine: &Engine,
    plan: &RunPlan,
    services: &[Started<'_>],
    ui: &Ui,
) -> Result<(), Error> {
    let Some(timeout) = plan.services_timeout.filter(|_| !services.is_empty()) else {
        return Ok(());
    };
    ui.line(&format!(
        "Waiting for services to be up and running (timeout {} seconds)...",
        timeout.as_secs()
    ));
    let checks = services
        .iter()
        .map(|s| health::wait_for_service(engine, &s.id, &s.plan.health, timeout));
    for (s, checked) in services
        .iter()
        .zip(futures_util::future::join_all(checks).await)
    {
        if let Err(unhealthy) = checked? {
            let logs = engine.logs_tail(&s.id, health::LOG_LIMIT, true).await;
            let name = &s.plan.container.name;
            ui.raw(&health::warning_block(
                &|t: &str| ui.yellow(t),
                name,
                &unhealthy.message(name),
                &logs,
            ));
        }
    }
    Ok(())
}

/// The build container, its links to the services resolved to their addresses.
async fn create_build(
    engine: &Engine,
    plan: &RunPlan,
    services: &[Started<'_>],
    ui: &Ui,
) -> Result<String, Error> {
    let spec = &plan.build.container;
    let mut linked = Vec::new();
    for link in &spec.links {
        let Some(s) = services
            .iter()
            .find(|s| s.plan.container.name == link.container)
        else {
            continue;
        };
        let state = engine.inspect(&s.id).await?;
        if let (true, Some(ip)) = (state.running, state.ip) {
            linked.extend(link.aliases.iter().map(|a| format!("{a}:{ip}")));
            linked.push(format!("{}:{ip}", &s.id[..12.min(s.id.len())]));
        }
    }
    pull(engine, plan, spec, &plan.build.pull, ui).await?;
    engine.create_container(spec, &linked).await
}

async fn pull(
    engine: &Engine,
    plan: &RunPlan,
    spec: &ContainerSpec,
    policies: &[crate::model::PullPolicy],
    ui: &Ui,
) -> Result<(), Error> {
    ensure_image(
        engine,
        ui,
        &spec.image,
        policies,
        spec.platform.as_deref(),
        &plan.auth,
    )
    .await
    .map(drop)
}

/// The sources phase's log, where the runner prints it (the update itself ran earlier).
fn get_sources(plan: &RunPlan, lines: &[String], ui: &Ui) {
    ui.section("Preparing environment");
    ui.line(&format!(
        "Running on {}...",
        plan.build.container.hostname.as_deref().unwrap_or_default()
    ));
    ui.section("Getting source from the local working tree");
    for line in lines {
        ui.line(line);
    }
}

/// `after_script` in a fresh shell of the same container; its failure is only a warning.
async fn after_script(
    engine: &Engine,
    plan: &RunPlan,
    build: &str,
    step: StageEnd,
    ui: &Ui,
) -> Result<(), Error> {
    ui.section("Running after_script");
    let end = run_stage(
        engine,
        build,
        plan.after_script(verdict::job_status(step)),
        &plan.secrets,
        plan.after_script_timeout,
        ui,
    )
    .await?
    .end;
    let lines = verdict::after_script(
        end,
        plan.after_script_timeout,
        oom_killed(engine, build, end).await,
        plan.build.memory_limit(),
    );
    print(ui, &lines);
    Ok(())
}

/// For a stage that ended with exit code 137 (SIGKILL): the container's OOMKilled flag
/// (unknown counts as not OOM-killed).
async fn oom_killed(engine: &Engine, id: &str, end: StageEnd) -> bool {
    end == StageEnd::Exited(crate::plan::limits::SIGKILL_EXIT_CODE)
        && engine.inspect(id).await.is_ok_and(|s| s.oom_killed)
}

pub(crate) fn print(ui: &Ui, lines: &Lines) {
    for (level, text) in lines {
        match level {
            Level::Line => ui.line(text),
            Level::Info => ui.info(text),
            Level::Warning => ui.warning(text),
            Level::Error => ui.error(text),
        }
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

/// After an interrupt: give the job's processes a moment to exit, like the runner's SIGTERM
/// script, all containers at once and bounded, so that many services or a daemon that went
/// silent cannot hold the cleanup back. Meanwhile, what the daemon was still creating lands,
/// so the cleanup sees it.
async fn stop_everything(engine: &Engine, run_id: &str) {
    let grace = async {
        if let Ok(list) = engine
            .containers_with(&format!("{LABEL_RUN}={run_id}"))
            .await
        {
            let stops = list
                .iter()
                .map(|c| engine.stop(&c.id, Duration::from_secs(3)));
            futures_util::future::join_all(stops).await;
        }
    };
    let settle = engine.settle(Duration::from_secs(5));
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        futures_util::future::join(grace, settle),
    )
    .await;
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
    let build = &plan.build.container.name;
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
            svc.container.name
        ));
    }
}

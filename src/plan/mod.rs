//! Step 3: the run plan, every decision about one job run, computed without touching
//! Docker. It ends in the concrete objects to create (`spec`): `execute` carries them out,
//! `recipe` prints them as docker commands, so `cijob run` and `cijob plan` cannot drift
//! apart.

pub(crate) mod alias;
pub(crate) mod artifact_paths;
pub(crate) mod artifacts;
mod build;
pub(crate) mod cache;
pub(crate) mod dotenv;
pub(crate) mod labels;
pub(crate) mod limits;
pub(crate) mod names;
mod pull_policy;
pub(crate) mod recipe;
pub(crate) mod script;
mod services;
pub(crate) mod sources;
pub(crate) mod spec;
#[cfg(test)]
mod tests;
mod variables;
mod volumes;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::config::{DebugMode, RunConfig};
use crate::error::Error;
use crate::execute::auth;
use crate::expand::lookup;
use crate::model::{AllowFailure, Job, PullPolicy, Variable};
use crate::project::git::GitInfo;
use crate::project::name_rules::path_component;
use crate::project::predefined;
use artifacts::{ArtifactsPlan, Received};
use cache::CachePlan;
use spec::{Attach, ContainerSpec, HealthPorts, HostSettings, Labels, NetworkSpec, VolumeSpec};

pub const BUILDS_DIR: &str = "/builds";
pub const DEFAULT_JOB_TIMEOUT: Duration = Duration::from_secs(3600);
pub const AFTER_SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);
pub const DEFAULT_SERVICES_TIMEOUT: i64 = 30;
pub const AUTH_VARIABLE: &str = "DOCKER_AUTH_CONFIG";

#[derive(Debug, Clone, PartialEq)]
pub struct RunPlan {
    pub run_id: String,
    pub job_name: String,
    /// The project's `/builds` volume first, then config.toml's shared ones.
    pub volumes: Vec<VolumeSpec>,
    /// A per-run bridge network (FF_NETWORK_PER_BUILD); `None`: Docker's default bridge.
    pub network: Option<NetworkSpec>,
    pub project_dir: String,
    pub services: Vec<ServicePlan>,
    /// Runner warnings decided while planning (aliases skipped, config keys not applied...).
    pub warnings: Vec<String>,
    pub build: BuildPlan,
    /// How the project gets into its volume.
    pub sources: sources::SourcesPlan,
    /// All variables of the job, expanded, in precedence order.
    pub variables: Vec<Variable>,
    pub step_commands: Vec<String>,
    pub after_commands: Vec<String>,
    pub job_timeout: Duration,
    pub after_script_timeout: Duration,
    /// `None`: no health check (negative timeout).
    pub services_timeout: Option<Duration>,
    /// Values to print as `[MASKED]`.
    pub secrets: Vec<String>,
    pub allow_failure: AllowFailure,
    /// `CI_DEBUG_SERVICES=true`: stream service logs live.
    pub debug_services: bool,
    pub keep: bool,
    pub debug: DebugMode,
    /// Where registry credentials come from (resolved when an image is pulled).
    pub auth: auth::Sources,
    /// Restored before the script, saved after it.
    pub caches: Vec<CachePlan>,
    /// The jobs whose artifacts are extracted before the script, with what the store has.
    pub received: Vec<Received>,
    /// Collected after the script.
    pub artifacts: Option<ArtifactsPlan>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServicePlan {
    /// `Service:Version` as the runner prints it in `Starting service ...`.
    pub display: String,
    pub pull: Vec<PullPolicy>,
    /// Every alias (the container answers to all of them on a per-build network).
    pub aliases: Vec<String>,
    /// The aliases the build container resolves to this service.
    pub claimed: Vec<String>,
    pub health: HealthPorts,
    pub container: ContainerSpec,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BuildPlan {
    pub pull: Vec<PullPolicy>,
    /// Where `container.resources.memory` came from (set when it is), for the OOM message.
    pub memory_from: Option<&'static str>,
    pub container: ContainerSpec,
}

impl BuildPlan {
    /// The memory limit and its source, when there is one.
    pub fn memory_limit(&self) -> Option<(i64, &'static str)> {
        self.container.resources.memory.zip(self.memory_from)
    }
}

impl RunPlan {
    /// The `step_script` stage's script (before_script + script in one shell).
    pub fn step_script(&self) -> String {
        script::step_script(&self.variables, &self.project_dir, &self.step_commands)
    }

    /// The `after_script` stage's script, with `CI_JOB_STATUS` set to the job's outcome.
    pub fn after_script(&self, status: &str) -> String {
        let mut vars = self.variables.clone();
        vars.push(Variable::new("CI_JOB_STATUS", status));
        script::after_script(&vars, &self.project_dir, &self.after_commands)
    }

    /// Debug mode: the step script for `step_commands[start..end]`, saving the shell's
    /// state on exit and (with `resume`) restoring it first.
    pub fn debug_segment(&self, start: usize, end: usize, resume: bool) -> String {
        script::debug_segment(
            &self.variables,
            &self.project_dir,
            &self.step_commands,
            start,
            end,
            resume,
        )
    }
}

pub struct PlanInput<'a> {
    pub job: &'a Job,
    pub git: &'a GitInfo,
    pub config: &'a RunConfig,
    /// Random per-run id (hex); part of every name so concurrent runs never collide.
    pub run_id: &'a str,
    /// `CI_CONFIG_PATH`: the pipeline file relative to the project root.
    pub config_path: &'a str,
    pub pid: u32,
    pub handover: &'a Handover,
    /// The project root on this machine (its project volumes are named after it).
    pub project_root: &'a str,
    /// The concurrency slot this run holds (`CI_CONCURRENT_ID`).
    pub slot: u32,
}

/// What the job gets from earlier runs, read from cijob's store before planning.
#[derive(Debug, Clone, Default)]
pub struct Handover {
    /// The project's folder in the store (`artifacts/` and `cache/` beneath).
    pub store: PathBuf,
    /// Whose artifacts the job receives, in pipeline order.
    pub received: Vec<Received>,
    /// `cache:key:files`: the last commit that changed each file.
    pub key_commits: BTreeMap<String, String>,
}

impl Handover {
    /// Where a job's artifacts are kept.
    pub fn artifacts_dir(&self, job: &str) -> PathBuf {
        self.store.join("artifacts").join(path_component(job))
    }
}

/// What every container of the run shares.
struct Shared<'a> {
    config: &'a RunConfig,
    /// `cijob-<job>-<run id>`: the start of every name.
    prefix: String,
    labels: Labels,
    /// The per-build network's name.
    network: Option<String>,
    /// config.toml `network_mode`, used when there is no per-build network.
    network_mode: Option<String>,
    binds: Vec<String>,
    host: HostSettings,
    /// `--privileged` or config.toml `privileged`.
    privileged: bool,
}

impl Shared<'_> {
    fn default_attach(&self) -> Attach {
        self.network_mode
            .clone()
            .map_or(Attach::Bridge, Attach::Mode)
    }
}

pub fn plan(input: &PlanInput<'_>) -> Result<RunPlan, Error> {
    let job = input.job;
    let cfg = input.config;
    let runner = cfg.runner.clone().unwrap_or_default();
    let project_dir = predefined::project_dir(BUILDS_DIR, input.git);
    let job_timeout = cfg.timeout.or(job.timeout).unwrap_or(DEFAULT_JOB_TIMEOUT);

    let mut variables =
        variables::job_variables(input, &runner, &project_dir, job_timeout.as_secs())?;
    let image = variables::image_name(job, &runner, &variables)?;
    variables.insert(0, Variable::new("CI_JOB_IMAGE", image.clone()));
    let prefix = names::container_prefix(&job.name, input.run_id);
    let network =
        variables::is_true(&variables, "FF_NETWORK_PER_BUILD").then(|| format!("{prefix}-network"));
    if let Some(net) = &network {
        variables.push(Variable::new("CI_BUILD_NETWORK_NAME", net.clone()));
    }
    let (docker_auth_config, secrets) = variables::mask(&mut variables, cfg);

    let labels = labels::run_labels(input.run_id, &job.name, input.pid, cfg.keep);
    let project_slug = lookup(&variables, "CI_PROJECT_PATH_SLUG")
        .unwrap_or("project")
        .to_string();
    let volume_name = sources::volume_name(input.git, input.project_root, input.slot);
    let (volumes, binds) = volumes::plan_volumes(
        &runner,
        sources::volume(&volume_name, &project_slug),
        &project_slug,
    );
    let helper = sources::helper(
        &prefix,
        cfg.helper_image.as_deref().unwrap_or(sources::HELPER_IMAGE),
        &volume_name,
        &labels,
        &project_dir,
        &sources::marker(input.run_id),
    );
    let sources = sources::plan_sources(&variables, cfg.fresh, input.slot, &volume_name, helper)?;
    let h = &runner.host;
    let shared = Shared {
        config: cfg,
        prefix,
        network: network.clone(),
        network_mode: h.network_mode.clone(),
        binds,
        host: HostSettings {
            dns: h.dns.clone(),
            cap_add: h.cap_add.clone(),
            cap_drop: h.cap_drop.clone(),
            security_opt: h.security_opt.clone(),
            shm_size: h.shm_size,
        },
        privileged: cfg.privileged || runner.privileged,
        labels: labels.clone(),
    };
    let mut warnings = Vec::new();
    let services = services::plan_services(job, &runner, &variables, &shared, &mut warnings)?;
    let build = build::plan_build(job, &runner, image, &variables, &services, &shared)?;
    warnings.extend(runner.warning());

    let located = |e: String| job.error(&e);
    let handover = input.handover;
    let caches = cache::plan_caches(
        job,
        &variables,
        &handover.key_commits,
        handover.store.join("cache"),
    )
    .map_err(located)?;
    let artifacts = artifacts::plan_artifacts(job, &variables, handover.artifacts_dir(&job.name))
        .map_err(located)?;
    if let Ok(Some(needs)) = crate::resolve::needs::parse(job) {
        warnings.extend(needs.ignored);
    }

    let mut step_commands = job.before_script.clone();
    step_commands.extend(job.script.iter().cloned());
    Ok(RunPlan {
        run_id: input.run_id.to_string(),
        job_name: job.name.clone(),
        volumes,
        network: network.map(|name| NetworkSpec { name, labels }),
        project_dir,
        services,
        warnings,
        build,
        sources,
        debug_services: variables::is_true(&variables, "CI_DEBUG_SERVICES"),
        variables,
        step_commands,
        after_commands: job.after_script.clone(),
        job_timeout,
        after_script_timeout: AFTER_SCRIPT_TIMEOUT,
        services_timeout: services_timeout(cfg, runner.wait_for_services_timeout),
        secrets,
        allow_failure: job.allow_failure.clone(),
        keep: cfg.keep,
        debug: cfg.debug,
        auth: auth::Sources {
            docker_auth_config,
            config_file: cfg.docker_config_file.clone(),
        },
        caches,
        received: handover.received.clone(),
        artifacts,
    })
}

/// A problem with one of the job's keywords, located at the job.
/// `--wait-for-services-timeout`, else config.toml's, else 30 s; 0 means the default and a
/// negative value skips the check, as in the runner.
fn services_timeout(cfg: &RunConfig, runner: Option<i64>) -> Option<Duration> {
    match cfg
        .wait_for_services_timeout
        .or(runner)
        .unwrap_or(DEFAULT_SERVICES_TIMEOUT)
    {
        w if w < 0 => None,
        0 => Some(Duration::from_secs(DEFAULT_SERVICES_TIMEOUT as u64)),
        w => Some(Duration::from_secs(w as u64)),
    }
}

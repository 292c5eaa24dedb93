//! The run plan: every decision about one job run, computed without touching Docker.
//! `cijob run` executes it, `cijob plan` prints it, so the two cannot drift apart.

pub(crate) mod alias;
pub(crate) mod limits;
pub(crate) mod recipe;
pub(crate) mod script;

use std::time::Duration;

use crate::cli::config::{DebugMode, RunConfig};
use crate::cli::runner_config::{self, RunnerConfig, Volume};
use crate::error::{ConfigError, Error};
use crate::execute::auth;
use crate::expand::{self, expand, expand_all, lookup};
use crate::model::HostOptions;
use crate::model::{AllowFailure, Job, PullPolicy, Service, Variable};
use crate::project::git::GitInfo;
use crate::project::predefined;
use limits::Resources;

pub const BUILDS_DIR: &str = "/builds";
pub const DEFAULT_JOB_TIMEOUT: Duration = Duration::from_secs(3600);
pub const AFTER_SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);
pub const DEFAULT_SERVICES_TIMEOUT: i64 = 30;
pub const DEFAULT_PULL_POLICY: PullPolicy = PullPolicy::IfNotPresent;

/// Labels every object of a run carries; `cijob clean` finds leftovers by them.
pub const LABEL_MANAGED: &str = "cijob.managed";
pub const LABEL_RUN: &str = "cijob.run";
pub const LABEL_JOB: &str = "cijob.job";
pub const LABEL_TYPE: &str = "cijob.type";
pub const LABEL_PID: &str = "cijob.pid";
pub const LABEL_KEEP: &str = "cijob.keep";
/// On config.toml cache volumes (which outlive runs): the project and mount point.
pub const LABEL_PROJECT: &str = "cijob.project";
pub const LABEL_DESTINATION: &str = "cijob.destination";
pub const AUTH_VARIABLE: &str = "DOCKER_AUTH_CONFIG";

#[derive(Debug, Clone, PartialEq)]
pub struct RunPlan {
    pub run_id: String,
    pub job_name: String,
    pub labels: Vec<(String, String)>,
    /// A per-run bridge network (FF_NETWORK_PER_BUILD); `None` means Docker's default bridge.
    pub network: Option<String>,
    /// The `/builds` volume, private to this run.
    pub volume: String,
    pub project_dir: String,
    pub services: Vec<ServicePlan>,
    /// Runner warnings decided while planning (aliases skipped...).
    pub warnings: Vec<String>,
    pub build: BuildPlan,
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
    /// config.toml named volumes (`/cache`): created if missing, kept between runs.
    pub cache_volumes: Vec<(String, Vec<(String, String)>)>,
    /// Extra binds for every container (config.toml `volumes`), after `/builds`.
    pub binds: Vec<String>,
    /// config.toml HostConfig settings for every container.
    pub host: HostOptions,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServicePlan {
    pub index: usize,
    /// `Service:Version` as the runner prints it in `Starting service ...`.
    pub display: String,
    /// The image reference to pull / run.
    pub image: String,
    pub pull: Vec<PullPolicy>,
    pub container: String,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<(String, String)>,
    /// Every alias (the container answers to all of them on a per-build network).
    pub aliases: Vec<String>,
    /// The aliases the build container resolves to this service.
    pub claimed: Vec<String>,
    /// `HEALTHCHECK_TCP_PORT` from the job/service variables, if set.
    pub healthcheck_port: Option<String>,
    pub user: Option<String>,
    pub platform: Option<String>,
    pub privileged: bool,
    /// config.toml `service_memory*`, `service_cpus`.
    pub resources: Resources,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BuildPlan {
    pub container: String,
    pub image: String,
    pub pull: Vec<PullPolicy>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Vec<String>,
    pub env: Vec<(String, String)>,
    pub hostname: String,
    pub user: Option<String>,
    pub platform: Option<String>,
    pub privileged: bool,
    /// `--memory`/`--cpus`, else config.toml `memory*`, `cpus`, `oom_kill_disable`.
    pub resources: Resources,
    /// Where `resources.memory` came from (set when it is), for the OOM message.
    pub memory_from: Option<&'static str>,
}

impl BuildPlan {
    /// The memory limit and its source, when there is one.
    pub fn memory_limit(&self) -> Option<(i64, &'static str)> {
        self.resources.memory.zip(self.memory_from)
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
}

pub fn plan(input: &PlanInput<'_>) -> Result<RunPlan, Error> {
    let job = input.job;
    let cfg = input.config;
    let project_dir = predefined::project_dir(BUILDS_DIR, input.git);
    let job_timeout = cfg.timeout.or(job.timeout).unwrap_or(DEFAULT_JOB_TIMEOUT);
    let runner = cfg.runner.clone().unwrap_or_default();

    // Variables: predefined, then YAML (global, job, matrix), then the command line.
    // config.toml `image` is only a default for jobs that name none.
    let raw_image = job
        .image
        .as_ref()
        .map(|i| i.name.clone())
        .or_else(|| runner.image.clone());
    let mut raw: Vec<Variable> = Vec::new();
    let pre_ctx = predefined::Context {
        job,
        git: input.git,
        project_dir: &project_dir,
        builds_dir: BUILDS_DIR,
        image: None,
        timeout_secs: job_timeout.as_secs(),
        pipeline_source: "push",
        config_path: input.config_path,
        concurrent_id: 0,
    };
    raw.extend(predefined::variables(&pre_ctx));
    // Runner `environment` entries come before the job's variables, which override them.
    raw.extend(
        runner
            .environment
            .iter()
            .map(|(k, v)| Variable::new(k.clone(), v.clone())),
    );
    raw.extend(job.variables.iter().cloned());
    raw.extend(cfg.vars.iter().cloned());
    let mut variables = expand::job_variables(&raw, job)?;
    let get = |vars: &[Variable], k: &str| lookup(vars, k).map(str::to_owned);

    let image_name = raw_image
        .as_deref()
        .map(|n| expand(n, &|k| get(&variables, k)))
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            let at = job
                .location
                .as_ref()
                .map(|l| format!("{l}: "))
                .unwrap_or_default();
            Error::Config(ConfigError::new(format!(
                "{at}job \"{}\" has no image: set `image:` on the job, in `default:` or at the top level (or `image` in the runner config's [runners.docker])",
                job.name
            )))
        })?;
    // CI_JOB_IMAGE comes first among runner variables, expanded.
    variables.insert(0, Variable::new("CI_JOB_IMAGE", image_name.clone()));

    let per_build = matches!(
        lookup(&variables, "FF_NETWORK_PER_BUILD"),
        Some("true" | "1")
    );
    let debug_services = matches!(lookup(&variables, "CI_DEBUG_SERVICES"), Some("true" | "1"));
    let prefix = container_prefix(&job.name, input.run_id);
    let network = per_build.then(|| format!("{prefix}-network"));
    if let Some(net) = &network {
        variables.push(Variable::new("CI_BUILD_NETWORK_NAME", net.clone()));
    }

    // Services: expand names and aliases (not command/entrypoint), then assign aliases.
    let mut services_in = Vec::new();
    // config.toml services come first, like the runner adds them before the job's.
    let runner_services: Vec<Service> = runner.services.iter().map(config_service).collect();
    for s in runner_services.iter().chain(&job.services) {
        let mut s = s.clone();
        s.name = expand(&s.name, &|k| get(&variables, k));
        s.alias = s.alias.map(|a| expand(&a, &|k| get(&variables, k)));
        services_in.push(s);
    }
    // A service whose name expands to nothing is ignored, like the runner does.
    let services_in: Vec<_> = services_in
        .into_iter()
        .filter(|s| !s.name.is_empty())
        .collect();
    let assignments = alias::assign(&services_in)
        .map_err(|e| Error::Config(ConfigError::new(format!("job \"{}\": {e}", job.name))))?;

    let public: Vec<Variable> = variables.iter().filter(|v| v.public).cloned().collect();
    // `--privileged` is the config key `privileged`; `services_privileged` overrides it.
    let privileged = cfg.privileged || runner.privileged;
    let services_privileged = runner.services_privileged.unwrap_or(privileged);
    let (build_resources, memory_from) = build_resources(&runner, cfg)?;
    limits::check(
        &runner.service_resources,
        "service_",
        "config.toml [runners.docker] service_memory",
    )
    .map_err(|e| Error::Config(ConfigError::new(e)))?;
    let mut warnings = Vec::new();
    let mut services = Vec::new();
    for a in assignments {
        warnings.extend(a.warnings.iter().cloned());
        if !a.start {
            continue;
        }
        let def = &services_in[a.index];
        // Service variables are expanded against the job's variables plus their own.
        let mut svc_raw = public.clone();
        svc_raw.extend(def.variables.iter().cloned());
        let svc_vars = expand_all(&svc_raw);
        let healthcheck_port = svc_vars
            .iter()
            .rev()
            .find(|v| v.key.eq_ignore_ascii_case("HEALTHCHECK_TCP_PORT"))
            .map(|v| v.value.clone());
        let display = if a.name.version.starts_with('@') {
            format!("{}{}", a.name.service, a.name.version)
        } else {
            format!("{}:{}", a.name.service, a.name.version)
        };
        services.push(ServicePlan {
            index: a.index,
            display,
            image: a.name.image.clone(),
            pull: policies(&def.pull_policy, cfg)?,
            container: format!(
                "{prefix}-{}-{}",
                sanitize_name(&a.name.service.replace('/', "__")),
                a.index
            ),
            entrypoint: def.entrypoint.clone().filter(|e| !e.is_empty()),
            cmd: def.command.clone().filter(|c| !c.is_empty()),
            env: env_list(&svc_vars),
            aliases: a.aliases.clone(),
            claimed: a.claimed.clone(),
            healthcheck_port,
            user: def.docker.user.clone(),
            platform: def.docker.platform.clone(),
            privileged: services_privileged,
            resources: runner.service_resources,
        });
    }

    let image = job.image.clone().unwrap_or_default();
    let build = BuildPlan {
        container: format!("{prefix}-build"),
        image: image_name,
        pull: policies(&image.pull_policy, cfg)?,
        entrypoint: image.entrypoint.clone(),
        cmd: vec![
            "sh".to_string(),
            "-c".to_string(),
            script::DETECT_SHELL.to_string(),
        ],
        env: env_list(&variables),
        hostname: "runner-cijob-project-0-concurrent-0".to_string(),
        user: image.docker.user.clone().or_else(|| runner.user.clone()),
        platform: image.docker.platform.clone(),
        privileged,
        resources: build_resources,
        memory_from,
    };

    // Registry credentials: the variable wins over cijob's own environment. Its value is
    // masked wherever cijob prints it (log, plan, recipe).
    let docker_auth_config = lookup(&variables, AUTH_VARIABLE)
        .map(str::to_owned)
        .or_else(|| cfg.process_docker_auth_config.clone());
    // `--mask KEY` covers the variable wherever it is defined (YAML, config.toml, --var).
    for v in variables
        .iter_mut()
        .filter(|v| v.key == AUTH_VARIABLE || cfg.masks.contains(&v.key))
    {
        v.masked = true;
    }
    let mut secrets: Vec<String> = variables
        .iter()
        .filter(|v| v.masked && !v.value.is_empty())
        .map(|v| v.value.clone())
        .collect();
    if let Some(json) = &docker_auth_config {
        secrets.push(json.clone());
        secrets.extend(auth::secrets_in(json));
    }
    secrets.retain(|s| !s.is_empty());
    secrets.sort();
    secrets.dedup();

    let wait = cfg
        .wait_for_services_timeout
        .or(runner.wait_for_services_timeout)
        .unwrap_or(DEFAULT_SERVICES_TIMEOUT);
    let services_timeout = match wait {
        w if w < 0 => None,
        0 => Some(Duration::from_secs(DEFAULT_SERVICES_TIMEOUT as u64)),
        w => Some(Duration::from_secs(w as u64)),
    };

    let mut step_commands = job.before_script.clone();
    step_commands.extend(job.script.iter().cloned());

    let labels = vec![
        (LABEL_MANAGED.to_string(), "true".to_string()),
        (LABEL_RUN.to_string(), input.run_id.to_string()),
        (LABEL_JOB.to_string(), job.name.clone()),
        (LABEL_PID.to_string(), input.pid.to_string()),
        (LABEL_KEEP.to_string(), cfg.keep.to_string()),
    ];

    warnings.extend(runner.warning());
    let project_slug = lookup(&variables, "CI_PROJECT_PATH_SLUG")
        .unwrap_or("project")
        .to_string();
    let (cache_volumes, binds) = volumes(&runner, &project_slug);
    let host = runner.host.clone();

    Ok(RunPlan {
        auth: auth::Sources {
            docker_auth_config,
            config_file: cfg.docker_config_file.clone(),
        },
        cache_volumes,
        binds,
        host,
        run_id: input.run_id.to_string(),
        job_name: job.name.clone(),
        labels,
        network,
        volume: format!("{prefix}-builds"),
        project_dir,
        services,
        warnings,
        build,
        variables,
        step_commands,
        after_commands: job.after_script.clone(),
        job_timeout,
        after_script_timeout: AFTER_SCRIPT_TIMEOUT,
        services_timeout,
        secrets,
        allow_failure: job.allow_failure.clone(),
        debug_services,
        keep: cfg.keep,
        debug: cfg.debug,
    })
}

/// The pull policies to try, in order: `--pull` beats the job's, which beat config.toml's
/// `pull_policy`, which beats the default; then config.toml's `allowed_pull_policies`
/// (or, unset, its `pull_policy`) restricts them like runner 18.0+.
fn policies(job: &[PullPolicy], cfg: &RunConfig) -> Result<Vec<PullPolicy>, Error> {
    let runner = cfg.runner.as_ref();
    let runner_pull = runner.map(|r| r.pull_policy.clone()).unwrap_or_default();
    let (requested, from) = match (cfg.pull, job.is_empty(), runner_pull.is_empty()) {
        (Some(p), _, _) => (vec![p], "the command line (--pull)"),
        (None, false, _) => (job.to_vec(), "GitLab pipeline config"),
        (None, true, false) => (runner_pull.clone(), "Runner config"),
        (None, true, true) => return Ok(vec![DEFAULT_PULL_POLICY]),
    };
    let allowed = match runner {
        Some(r) if !r.allowed_pull_policies.is_empty() => r.allowed_pull_policies.clone(),
        _ => runner_pull,
    };
    runner_config::effective_pull_policies(&requested, from, &allowed)
        .map_err(|e| Error::Config(ConfigError::new(e)))
}

/// The build container's limits: `--memory` and `--cpus` override config.toml's `memory`
/// and `cpus` (0 lifts them); the other settings stay. Checked so that a combination Docker
/// would refuse is reported against the setting, before anything starts.
fn build_resources(
    runner: &RunnerConfig,
    cfg: &RunConfig,
) -> Result<(Resources, Option<&'static str>), Error> {
    let mut r = runner.resources;
    let mut from = limits::MEMORY_FROM_CONFIG;
    if let Some(m) = cfg.memory {
        r.memory = limits::limit(m);
        from = limits::MEMORY_FROM_FLAG;
    }
    if let Some(n) = cfg.nano_cpus {
        r.nano_cpus = limits::limit(n);
    }
    limits::check(&r, "", from).map_err(|e| Error::Config(ConfigError::new(e)))?;
    Ok((r, r.memory.map(|_| from)))
}

/// A config.toml service as a `.gitlab-ci.yml` one.
fn config_service(s: &runner_config::ConfigService) -> Service {
    Service {
        name: s.name.clone(),
        alias: s.alias.clone(),
        entrypoint: s.entrypoint.clone(),
        command: s.command.clone(),
        variables: s
            .environment
            .iter()
            .map(|(k, v)| Variable::new(k.clone(), v.clone()))
            .collect(),
        ..Default::default()
    }
}

/// config.toml `volumes`: named ones become per-project volumes that persist between runs
/// (labelled so `cijob clean` finds them), `host:container[:mode]` ones are binds.
#[allow(clippy::type_complexity)]
fn volumes(
    runner: &RunnerConfig,
    project_slug: &str,
) -> (Vec<(String, Vec<(String, String)>)>, Vec<String>) {
    let mut named = Vec::new();
    let mut binds = Vec::new();
    for v in &runner.volumes {
        match v {
            Volume::Named { destination } => {
                let name = format!(
                    "cijob-{}-cache-{}",
                    sanitize_name(project_slug),
                    runner_config::stable_hash(destination)
                );
                let labels = vec![
                    (LABEL_MANAGED.to_string(), "true".to_string()),
                    (LABEL_TYPE.to_string(), "cache".to_string()),
                    (LABEL_PROJECT.to_string(), project_slug.to_string()),
                    (LABEL_DESTINATION.to_string(), destination.clone()),
                ];
                binds.push(format!("{name}:{destination}"));
                named.push((name, labels));
            }
            Volume::Bind(spec) => binds.push(spec.clone()),
        }
    }
    (named, binds)
}

/// Last definition of each key wins; first-seen order kept so the list reads naturally.
fn env_list(vars: &[Variable]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for v in vars {
        if let Some(slot) = out.iter_mut().find(|(k, _)| *k == v.key) {
            slot.1 = v.value.clone();
        } else {
            out.push((v.key.clone(), v.value.clone()));
        }
    }
    out
}

/// `cijob-<job slug>-<run id>`: readable in `docker ps`, unique per run.
pub fn container_prefix(job_name: &str, run_id: &str) -> String {
    let mut slug = String::new();
    // Collapse the dashes slugify leaves for `: [` so names stay readable in `docker ps`.
    for c in sanitize_name(&predefined::slugify(job_name)).chars() {
        if !(c == '-' && slug.ends_with('-')) {
            slug.push(c);
        }
    }
    slug.truncate(30);
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        format!("cijob-{run_id}")
    } else {
        format!("cijob-{slug}-{run_id}")
    }
}

/// Docker names allow `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
fn sanitize_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// A fresh random run id.
pub fn new_run_id() -> String {
    format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}

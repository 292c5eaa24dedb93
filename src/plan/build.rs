//! The build container: the job's image with its ENTRYPOINT kept and the runner's
//! shell-detection command, every variable, stdin open for the script, and the way it
//! reaches services (aliases on the per-build network, else `/etc/hosts` links).

use crate::cli::config::RunConfig;
use crate::cli::runner_config::RunnerConfig;
use crate::error::{ConfigError, Error};
use crate::model::{Job, Variable};
use crate::plan::labels::{typed, TYPE_BUILD};
use crate::plan::limits::{self, Resources};
use crate::plan::script;
use crate::plan::spec::{Attach, ContainerSpec, Link};
use crate::plan::variables::env_list;
use crate::plan::{pull_policy, BuildPlan, ServicePlan, Shared};

/// The hostname the runner gives build containers (`runner-<token>-project-<id>-concurrent-<n>`).
pub const HOSTNAME: &str = "runner-cijob-project-0-concurrent-0";

pub fn plan_build(
    job: &Job,
    runner: &RunnerConfig,
    image: String,
    variables: &[Variable],
    services: &[ServicePlan],
    shared: &Shared,
) -> Result<BuildPlan, Error> {
    let (resources, memory_from) = resources(runner, shared.config)?;
    let def = job.image.clone().unwrap_or_default();
    let (attach, links) = match &shared.network {
        Some(net) => (
            Attach::Network {
                name: net.clone(),
                aliases: vec!["build".to_string(), format!("{}-build", shared.prefix)],
            },
            Vec::new(),
        ),
        None => (
            shared.default_attach(),
            services
                .iter()
                .map(|s| Link {
                    container: s.container.name.clone(),
                    aliases: s.claimed.clone(),
                })
                .collect(),
        ),
    };
    Ok(BuildPlan {
        pull: pull_policy::policies(&def.pull_policy, shared.config)?,
        memory_from,
        container: ContainerSpec {
            name: format!("{}-build", shared.prefix),
            image,
            entrypoint: def.entrypoint.clone(),
            cmd: Some(vec![
                "sh".to_string(),
                "-c".to_string(),
                script::DETECT_SHELL.to_string(),
            ]),
            env: env_list(variables),
            labels: typed(&shared.labels, TYPE_BUILD),
            hostname: Some(HOSTNAME.to_string()),
            user: def.docker.user.clone().or_else(|| runner.user.clone()),
            platform: def.docker.platform.clone(),
            privileged: shared.privileged,
            binds: shared.binds.clone(),
            attach,
            extra_hosts: runner.host.extra_hosts.clone(),
            links,
            host: shared.host.clone(),
            stdin: true,
            no_log: true,
            resources,
        },
    })
}

/// The build container's limits: `--memory` and `--cpus` override config.toml's `memory`
/// and `cpus` (0 lifts them); the other settings stay. Checked so that a combination Docker
/// would refuse is reported against the setting, before anything starts.
fn resources(
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

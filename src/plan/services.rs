//! The job's service containers: config.toml services first, then the job's, names and
//! aliases expanded and assigned as the runner assigns them.

use crate::cli::runner_config::{ConfigService, RunnerConfig};
use crate::error::{ConfigError, Error};
use crate::expand::expand_all;
use crate::model::{Job, Service, Variable};
use crate::plan::alias;
use crate::plan::labels::{typed, TYPE_SERVICE};
use crate::plan::limits;
use crate::plan::names::docker_name;
use crate::plan::spec::{Attach, ContainerSpec, HealthPorts};
use crate::plan::variables::{env_list, expand_name};
use crate::plan::{pull_policy, ServicePlan, Shared};

pub fn plan_services(
    job: &Job,
    runner: &RunnerConfig,
    variables: &[Variable],
    shared: &Shared,
    warnings: &mut Vec<String>,
) -> Result<Vec<ServicePlan>, Error> {
    // `$VAR` in names and aliases (not command/entrypoint); a name that expands to nothing
    // is ignored, like the runner does.
    let defined: Vec<Service> = runner
        .services
        .iter()
        .map(config_service)
        .chain(job.services.iter().cloned())
        .map(|mut s| {
            s.name = expand_name(&s.name, variables);
            s.alias = s.alias.map(|a| expand_name(&a, variables));
            s
        })
        .filter(|s| !s.name.is_empty())
        .collect();
    limits::check(
        &runner.service_resources,
        "service_",
        "config.toml [runners.docker] service_memory",
    )
    .map_err(|e| Error::Config(ConfigError::new(e)))?;
    let assignments = alias::assign(&defined)
        .map_err(|e| Error::Config(ConfigError::new(format!("job \"{}\": {e}", job.name))))?;
    let public: Vec<Variable> = variables.iter().filter(|v| v.public).cloned().collect();
    let privileged = runner.services_privileged.unwrap_or(shared.privileged);
    let mut services = Vec::new();
    for a in assignments {
        warnings.extend(a.warnings.iter().cloned());
        if !a.start {
            continue;
        }
        let def = &defined[a.index];
        // Service variables are expanded against the job's public variables plus their own.
        let mut raw = public.clone();
        raw.extend(def.variables.iter().cloned());
        let vars = expand_all(&raw);
        let display = if a.name.version.starts_with('@') {
            format!("{}{}", a.name.service, a.name.version)
        } else {
            format!("{}:{}", a.name.service, a.name.version)
        };
        let name = format!(
            "{}-{}-{}",
            shared.prefix,
            docker_name(&a.name.service.replace('/', "__")),
            a.index
        );
        let attach = match &shared.network {
            Some(net) => Attach::Network {
                name: net.clone(),
                aliases: a.aliases.clone(),
            },
            None => shared.default_attach(),
        };
        services.push(ServicePlan {
            display,
            pull: pull_policy::policies(&def.pull_policy, shared.config)?,
            aliases: a.aliases.clone(),
            claimed: a.claimed.clone(),
            health: HealthPorts::from_variables(
                vars.iter().map(|v| (v.key.as_str(), v.value.as_str())),
            ),
            container: ContainerSpec {
                name,
                image: a.name.image.clone(),
                entrypoint: def.entrypoint.clone().filter(|e| !e.is_empty()),
                cmd: def.command.clone().filter(|c| !c.is_empty()),
                env: env_list(&vars),
                labels: typed(&shared.labels, TYPE_SERVICE),
                user: def.docker.user.clone(),
                platform: def.docker.platform.clone(),
                privileged,
                binds: shared.binds.clone(),
                attach,
                extra_hosts: runner.host.extra_hosts.clone(),
                host: shared.host.clone(),
                resources: runner.service_resources,
                ..Default::default()
            },
        });
    }
    Ok(services)
}

/// A config.toml service as a `.gitlab-ci.yml` one.
fn config_service(s: &ConfigService) -> Service {
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

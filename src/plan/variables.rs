//! The job's variables as the build container gets them, the image they name, and the
//! values that must never be printed.

use crate::cli::config::RunConfig;
use crate::cli::runner_config::RunnerConfig;
use crate::error::{ConfigError, Error};
use crate::execute::auth;
use crate::expand::{self, expand, lookup};
use crate::model::{Job, Variable};
use crate::plan::{PlanInput, AUTH_VARIABLE, BUILDS_DIR};
use crate::project::predefined;

/// Every variable of the job, expanded, in precedence order (later wins): predefined, then
/// config.toml `environment`, the job's YAML variables (global, job, matrix), the command
/// line, with the dotenv variables of received artifacts before the command line. `CI_JOB_IMAGE` comes first, `CI_BUILD_NETWORK_NAME` last when there is one.
pub fn job_variables(
    input: &PlanInput<'_>,
    runner: &RunnerConfig,
    project_dir: &str,
    timeout_secs: u64,
) -> Result<Vec<Variable>, Error> {
    let job = input.job;
    // `--var CI_PIPELINE_SOURCE=merge_request_event` makes the predefined ones an MR pipeline's.
    let pipeline_source = lookup(&input.config.vars, "CI_PIPELINE_SOURCE").unwrap_or("push");
    let mut raw: Vec<Variable> = predefined::variables(&predefined::Context {
        job,
        git: input.git,
        project_dir,
        builds_dir: BUILDS_DIR,
        image: None,
        timeout_secs,
        pipeline_source,
        config_path: input.config_path,
        concurrent_id: input.slot,
    });
    // Runner `environment` entries come before the job's variables, which override them.
    raw.extend(
        runner
            .environment
            .iter()
            .map(|(k, v)| Variable::new(k.clone(), v.clone())),
    );
    raw.extend(job.variables.iter().cloned());
    // dotenv reports of the jobs it receives artifacts from come after the YAML's.
    raw.extend(crate::plan::artifacts::Received::variables(
        &input.handover.received,
    ));
    raw.extend(input.config.vars.iter().cloned());
    expand::job_variables(&raw, job)
}

/// `$VAR` in a name expanded against the job's variables (the runner does this for image
/// and service names and aliases, never for commands).
pub fn expand_name(name: &str, variables: &[Variable]) -> String {
    expand(name, &|k| lookup(variables, k).map(str::to_owned))
}

/// The build image: the job's, else config.toml's `image`, expanded; an error naming the
/// job when there is none.
pub fn image_name(
    job: &Job,
    runner: &RunnerConfig,
    variables: &[Variable],
) -> Result<String, Error> {
    job.image
        .as_ref()
        .map(|i| i.name.as_str())
        .or(runner.image.as_deref())
        .map(|n| expand_name(n, variables))
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
        })
}

/// Whether a feature-flag-like variable is on.
pub fn is_true(variables: &[Variable], key: &str) -> bool {
    matches!(lookup(variables, key), Some("true" | "1"))
}

/// Mark what must be masked (`--mask KEY` wherever the variable comes from, and
/// `DOCKER_AUTH_CONFIG`), and return the registry credentials' JSON (the variable wins over
/// cijob's own environment) with every value to print as `[MASKED]`.
pub fn mask(variables: &mut [Variable], cfg: &RunConfig) -> (Option<String>, Vec<String>) {
    let docker_auth_config = lookup(variables, AUTH_VARIABLE)
        .map(str::to_owned)
        .or_else(|| cfg.process_docker_auth_config.clone());
    for v in variables
        .iter_mut()
        .filter(|v| v.key == AUTH_VARIABLE || cfg.masks.contains(&v.key))
    {
        v.masked = true;
    }
    let mut secrets: Vec<String> = variables
        .iter()
        .filter(|v| v.masked)
        .map(|v| v.value.clone())
        .collect();
    if let Some(json) = &docker_auth_config {
        secrets.push(json.clone());
        secrets.extend(auth::secrets_in(json));
    }
    secrets.retain(|s| !s.is_empty());
    secrets.sort();
    secrets.dedup();
    (docker_auth_config, secrets)
}

/// Last definition of each key wins; first-seen order kept so the list reads naturally.
pub fn env_list(vars: &[Variable]) -> Vec<(String, String)> {
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

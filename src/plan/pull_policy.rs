//! Which pull policies an image is tried with.

use crate::cli::config::RunConfig;
use crate::cli::runner_config;
use crate::error::{ConfigError, Error};
use crate::model::PullPolicy;

/// cijob's default when nothing names a policy (the runner's is `always`; a laptop tool
/// must work offline with local images).
pub const DEFAULT_PULL_POLICY: PullPolicy = PullPolicy::IfNotPresent;

/// The pull policies to try, in order: `--pull` beats the job's, which beat config.toml's
/// `pull_policy`, which beats the default; then config.toml's `allowed_pull_policies`
/// (or, unset, its `pull_policy`) restricts them like runner 18.0+.
pub fn policies(job: &[PullPolicy], cfg: &RunConfig) -> Result<Vec<PullPolicy>, Error> {
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

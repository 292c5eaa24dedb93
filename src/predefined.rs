//! Predefined CI variables as a real job on GitLab with the docker executor sees them.

use crate::git::GitInfo;
use crate::model::{Job, Variable};

/// Everything the runner and GitLab would define for this job before its YAML variables.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub job: &'a Job,
    pub git: &'a GitInfo,
    pub project_dir: &'a str,
    pub builds_dir: &'a str,
    pub image: Option<&'a str>,
    pub timeout_secs: u64,
    pub pipeline_source: &'a str,
    pub concurrent_id: u32,
}

/// Predefined variables (public), in the runner's order, before YAML variables.
pub fn variables(ctx: &Context<'_>) -> Vec<Variable> {
    let _ = ctx;
    todo!("helper B")
}

/// `CI_PROJECT_DIR` for a project: `/builds/<namespace>/<project>`.
pub fn project_dir(builds_dir: &str, git: &GitInfo) -> String {
    format!("{builds_dir}/{}/{}", git.namespace, git.project)
}

/// `Gitlab::Utils.slugify`.
pub fn slugify(s: &str) -> String {
    let _ = s;
    todo!("helper B")
}

//! Step 2: the merged document into the pipeline's typed jobs (`model::Job`), as GitLab
//! resolves them before a job reaches a runner: `!reference`, `extends`, `default:` with
//! `inherit`, `parallel`/`matrix`, pipeline order. Entry point: `pipeline::load_with`.

pub(crate) mod duration;
pub(crate) mod extends;
pub mod job_model;
pub(crate) mod job_name;
pub(crate) mod needs;
pub(crate) mod only_except;
pub(crate) mod parallel;
pub mod pipeline;
pub(crate) mod reference;
pub(crate) mod rules;
pub(crate) mod validate;
pub(crate) mod workflow;

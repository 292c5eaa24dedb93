//! Step 1 of the pipeline: the YAML text of `.gitlab-ci.yml` and everything it includes,
//! merged into one document the way GitLab merges it (`include` with its `rules`, `spec:
//! inputs`). Nothing here knows what a job is.

pub(crate) mod expression;
pub(crate) mod glob;
pub mod include;
pub(crate) mod inputs;
pub(crate) mod key_error;
pub(crate) mod merge;
pub(crate) mod rules;
pub mod yaml;

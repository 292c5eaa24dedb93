//! Rendering for `cijob list` and `cijob show` (pure: pipeline in, text out).

use crate::model::{Job, Pipeline};

/// A table, one row per runnable job in pipeline order: stage, job, image, services, when.
pub fn table(pipeline: &Pipeline) -> String {
    let _ = pipeline;
    todo!("helper A")
}

/// The same rows as JSON, for scripts.
pub fn json(pipeline: &Pipeline) -> String {
    let _ = pipeline;
    todo!("helper A")
}

/// The fully resolved job as YAML.
pub fn show(job: &Job) -> String {
    let _ = job;
    todo!("helper A")
}

/// The closest job name to `name`, for "did you mean".
pub fn suggest<'a>(pipeline: &'a Pipeline, name: &str) -> Option<&'a str> {
    let _ = (pipeline, name);
    todo!("helper A")
}

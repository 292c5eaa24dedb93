//! Labels on everything a run creates: `cijob clean` and the dead-run warning find leftovers
//! by them, and tell a live run from a kept or dead one.

use crate::plan::spec::Labels;

pub const LABEL_MANAGED: &str = "cijob.managed";
pub const LABEL_RUN: &str = "cijob.run";
pub const LABEL_JOB: &str = "cijob.job";
pub const LABEL_TYPE: &str = "cijob.type";
pub const LABEL_PID: &str = "cijob.pid";
pub const LABEL_KEEP: &str = "cijob.keep";
/// On config.toml cache volumes (which outlive runs): the project and mount point.
pub const LABEL_PROJECT: &str = "cijob.project";
pub const LABEL_DESTINATION: &str = "cijob.destination";

/// What a container is for: `cijob shell` looks for the `build` one.
pub const TYPE_BUILD: &str = "build";
pub const TYPE_SERVICE: &str = "service";
pub const TYPE_CACHE: &str = "cache";
/// The project volume (one per project and concurrency slot, kept between runs).
pub const TYPE_PROJECT: &str = "project";

/// The labels of every object of one run.
pub fn run_labels(run_id: &str, job: &str, pid: u32, keep: bool) -> Labels {
    vec![
        (LABEL_MANAGED.to_string(), "true".to_string()),
        (LABEL_RUN.to_string(), run_id.to_string()),
        (LABEL_JOB.to_string(), job.to_string()),
        (LABEL_PID.to_string(), pid.to_string()),
        (LABEL_KEEP.to_string(), keep.to_string()),
    ]
}

/// The run's labels plus the object's type.
pub fn typed(labels: &Labels, kind: &str) -> Labels {
    let mut l = labels.clone();
    l.push((LABEL_TYPE.to_string(), kind.to_string()));
    l
}

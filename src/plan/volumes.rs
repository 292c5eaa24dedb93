//! The run's volumes and binds: `/builds` (the project volume, see `sources`), then
//! config.toml `volumes` (named ones persist between runs, per project;
//! `host:container[:mode]` ones are binds).

use crate::cli::runner_config::{self, RunnerConfig, Volume};
use crate::plan::labels::{
    LABEL_DESTINATION, LABEL_MANAGED, LABEL_PROJECT, LABEL_TYPE, TYPE_CACHE,
};
use crate::plan::spec::VolumeSpec;
use crate::plan::BUILDS_DIR;
use crate::project::name_rules::safe_name;

/// The volumes to create (`/builds` first) and the binds of every container.
pub fn plan_volumes(
    runner: &RunnerConfig,
    builds: VolumeSpec,
    project_slug: &str,
) -> (Vec<VolumeSpec>, Vec<String>) {
    let mut binds = vec![format!("{}:{BUILDS_DIR}", builds.name)];
    let mut volumes = vec![builds];
    for v in &runner.volumes {
        match v {
            Volume::Named { destination } => {
                let name = format!(
                    "cijob-{}-cache-{}",
                    safe_name(project_slug),
                    runner_config::stable_hash(destination)
                );
                binds.push(format!("{name}:{destination}"));
                volumes.push(VolumeSpec {
                    name,
                    labels: vec![
                        (LABEL_MANAGED.to_string(), "true".to_string()),
                        (LABEL_TYPE.to_string(), TYPE_CACHE.to_string()),
                        (LABEL_PROJECT.to_string(), project_slug.to_string()),
                        (LABEL_DESTINATION.to_string(), destination.clone()),
                    ],
                    shared: true,
                });
            }
            Volume::Bind(spec) => binds.push(spec.clone()),
        }
    }
    (volumes, binds)
}

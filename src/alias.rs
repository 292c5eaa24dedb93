//! Service names and network aliases, derived exactly as GitLab Runner does.

use crate::model::Service;

/// The runner's `SplitNameAndVersion`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceName {
    /// The image reference to pull (`:latest` appended when no tag/digest).
    pub image: String,
    /// Name without tag/digest and with the registry port dropped; empty if unparseable.
    pub service: String,
    /// Tag, `@sha256:...` digest, or `latest`.
    pub version: String,
    /// Default aliases: `/`→`__`, then `/`→`-` when different.
    pub aliases: Vec<String>,
}

pub fn split_name_and_version(name: &str) -> ServiceName {
    let _ = name;
    todo!("helper B")
}

/// The outcome of alias assignment for one service of the job (in definition order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasAssignment {
    /// Index in the combined service list.
    pub index: usize,
    pub name: ServiceName,
    /// Every alias of the service (default ones then custom ones); the container gets all of them.
    pub aliases: Vec<String>,
    /// The aliases this service newly claimed (the build container resolves these to it).
    pub claimed: Vec<String>,
    /// Runner warnings to print (alias already in use, ...).
    pub warnings: Vec<String>,
    /// False when all its aliases were taken: the runner does not start it.
    pub start: bool,
}

/// Assign aliases to services in order, skipping aliases already used, like the runner.
/// Errors are the runner's configuration errors (`invalid service image name: X`).
pub fn assign(services: &[Service]) -> Result<Vec<AliasAssignment>, String> {
    let _ = services;
    todo!("helper B")
}

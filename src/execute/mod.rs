//! Step 4: a `RunPlan` carried out on a Docker engine, in the runner's order. `docker` is
//! the only module that talks to the engine (through bollard); `run` sequences the phases.

pub(crate) mod archive;
pub(crate) mod artifacts;
pub(crate) mod auth;
pub(crate) mod cache;
pub(crate) mod collect;
pub(crate) mod debug;
pub(crate) mod docker;
pub(crate) mod endpoint;
pub(crate) mod health;
pub(crate) mod leftovers;
pub(crate) mod pull;
pub(crate) mod run;
pub(crate) mod signals;
pub(crate) mod sources;
pub(crate) mod ssh;
pub(crate) mod stage;
pub(crate) mod store;
pub(crate) mod terminal;
pub(crate) mod tls;
pub(crate) mod verdict;

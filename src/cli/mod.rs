//! Around the pipeline: the command line (clap types stay in `args`), its validation into a
//! `RunConfig` (with a runner `config.toml`), and each command's dispatch.

pub(crate) mod app;
pub(crate) mod args;
pub mod complete;
pub(crate) mod config;
pub(crate) mod listing;
pub(crate) mod runner_config;
pub(crate) mod shell_word;

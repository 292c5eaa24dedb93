//! cijob: run GitLab CI jobs locally, exactly as GitLab Runner's docker executor would.
//!
//! The folders follow what `cijob run` does, in order:
//! `project` (find the pipeline file, read git) → `load` (YAML and includes into one
//! document) → `resolve` (that document into typed jobs) → `plan` (every decision about one
//! run, without Docker) → `execute` (the plan on a Docker engine). Around them: `cli` (the
//! command line and the commands) and `ui` (cijob's own lines on the terminal).

pub(crate) mod cache_home;
pub mod cli;
pub mod error;
pub(crate) mod execute;
pub(crate) mod expand;
pub(crate) mod hex;
pub mod load;
pub mod model;
pub(crate) mod plan;
pub mod project;
pub mod resolve;
pub(crate) mod ui;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

pub fn main() -> ExitCode {
    // Completion callbacks carry partial command lines the real parse would reject.
    cli::complete::handle_env(cli::args::Cli::command);
    let cli = cli::args::Cli::parse();
    let ui = ui::Ui::new(cli.no_color);
    match cli::app::run(cli, &ui) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if !e.is_silent() {
                ui.error(&e.to_string());
            }
            ExitCode::from(e.exit_code())
        }
    }
}

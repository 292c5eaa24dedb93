//! cijob: run GitLab CI jobs locally, exactly as GitLab Runner's docker executor would.

pub mod alias;
pub mod app;
pub mod archive;
pub mod auth;
pub mod cli;
pub mod complete;
pub mod config;
pub mod debug;
pub mod discover;
pub mod docker;
pub mod error;
pub mod expand;
pub mod extends;
pub mod fetch;
pub mod git;
pub mod glob;
pub mod health;
pub mod include;
pub mod include_cache;
pub mod include_rules;
pub mod inputs;
pub mod job_model;
pub mod key_error;
pub mod leftovers;
pub mod limits;
pub mod listing;
pub mod loader;
pub mod masking;
pub mod merge;
pub mod model;
pub mod parallel;
pub mod plan;
pub mod predefined;
pub mod pull;
pub mod recipe;
pub mod reference;
pub mod run;
pub mod runner_config;
pub mod script;
pub mod terminal;
pub mod timeout;
pub mod ui;
pub mod yaml;

use std::process::ExitCode;

use clap::Parser;

pub fn main() -> ExitCode {
    // Completion callbacks carry partial command lines the real parse would reject.
    complete::handle_env();
    let cli = cli::Cli::parse();
    let ui = ui::Ui::new(cli.no_color);
    match app::run(cli, &ui) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if !e.is_silent() {
                ui.error(&e.to_string());
            }
            ExitCode::from(e.exit_code())
        }
    }
}

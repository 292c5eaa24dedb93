//! cijob: run GitLab CI jobs locally, exactly as GitLab Runner's docker executor would.

pub mod alias;
pub mod discover;
pub mod error;
pub mod expand;
pub mod extends;
pub mod git;
pub mod glob;
pub mod include;
pub mod inputs;
pub mod job_model;
pub mod key_error;
pub mod listing;
pub mod loader;
pub mod masking;
pub mod merge;
pub mod model;
pub mod parallel;
pub mod predefined;
pub mod reference;
pub mod script;
pub mod timeout;
pub mod yaml;

pub fn main() -> std::process::ExitCode {
    std::process::ExitCode::SUCCESS
}

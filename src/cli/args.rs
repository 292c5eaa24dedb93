//! Command-line arguments (clap types stay here; `config.rs` turns them into a validated config).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum, ValueHint};
use clap_complete::ArgValueCompleter;

use crate::cli::complete::{self, Shell};

const EXAMPLES: &str = "\
Examples:
  cijob list                      List the jobs of ./.gitlab-ci.yml
  cijob show test:2.2             Print the fully resolved job `test: [2.2]`
  cijob run test                  Run the job `test` on the local Docker daemon
  cijob run test --keep           ... and keep its containers to poke inside
  cijob run test --needs          Run the jobs test needs first, then test
  cijob -C ../other run lint      Use ../other/.gitlab-ci.yml
  cijob clean                     Remove containers left by kept or crashed runs";

#[derive(Debug, Parser)]
#[command(
    name = "cijob",
    version,
    about = "Run and debug GitLab CI jobs locally, exactly as GitLab Runner's docker executor would",
    after_help = EXAMPLES,
)]
pub struct Cli {
    /// Pipeline file to load (default: .gitlab-ci.yml here or in the nearest parent up to the git root)
    #[arg(
        short = 'f',
        long = "file",
        global = true,
        value_name = "FILE",
        value_hint = ValueHint::FilePath
    )]
    pub file: Option<PathBuf>,

    /// Run as if cijob was started in DIR
    #[arg(
        short = 'C',
        long = "directory",
        global = true,
        value_name = "DIR",
        value_hint = ValueHint::DirPath
    )]
    pub directory: Option<PathBuf>,

    /// Disable colours in cijob's own output (also: NO_COLOR=1). The job's output is never altered.
    #[arg(long, global = true)]
    pub no_color: bool,

    /// GitLab instance for project, component and template includes [default: the git
    /// remote's host, else https://gitlab.com]. Token: CIJOB_GITLAB_TOKEN, GITLAB_TOKEN or CI_JOB_TOKEN
    #[arg(long, global = true, env = "CIJOB_GITLAB_URL", value_name = "URL")]
    pub gitlab_url: Option<String>,

    /// Fetch every non-local include again; never use the cached copies
    #[arg(long, global = true)]
    pub refresh_includes: bool,

    /// Load even when non-local includes cannot be fetched nor found in the cache: skip them
    /// (with a warning) and leave out the jobs that depend on them
    #[arg(long, global = true)]
    pub allow_missing_includes: bool,

    /// Docker engine to connect to (unix://, tcp://, ssh://, npipe://), as `docker -H`;
    /// the default follows the docker CLI: --context, DOCKER_HOST, DOCKER_CONTEXT, then
    /// the current context of ~/.docker/config.json
    #[arg(short = 'H', long = "host", global = true, value_name = "HOST")]
    pub host: Option<String>,

    /// Docker context to use (`docker context ls`), as `docker --context`
    #[arg(short = 'c', long = "context", global = true, value_name = "NAME")]
    pub context: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the jobs of the pipeline GitLab would create here, in pipeline order
    #[command(
        after_help = "Examples:\n  cijob list\n  cijob list --all               # with the jobs rules leave out, and why\n  cijob list --var CI_PIPELINE_SOURCE=merge_request_event\n  cijob list --json | jq '.[].name'"
    )]
    List {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
        /// Also list the jobs that rules, only/except or workflow leave out, with the reason
        #[arg(long)]
        all: bool,
        /// Set a variable for rules (repeatable). KEY=VALUE
        #[arg(long = "var", value_name = "KEY=VALUE")]
        vars: Vec<String>,
    },
    /// Print a job as the runner would receive it (include, default, extends, !reference,
    /// matrix and its matching rule applied)
    #[command(
        after_help = "Examples:\n  cijob show build\n  cijob show deploy:aws,monitoring    # the instance `deploy: [aws, monitoring]`"
    )]
    Show {
        /// The job's name as GitLab shows it, or a parallel instance's short name (`test:2.2`)
        #[arg(add = ArgValueCompleter::new(complete::job_names))]
        job: String,
        /// Set a variable for rules (repeatable). KEY=VALUE
        #[arg(long = "var", value_name = "KEY=VALUE")]
        vars: Vec<String>,
    },
    /// Run one job on the local Docker daemon
    #[command(
        after_help = "Examples:\n  cijob run test\n  cijob run test --var DEBUG=1 --keep\n  cijob run test:2.2 --pull always\n  cijob run test --dry-run"
    )]
    Run(RunArgs),
    /// Print the plain docker commands equivalent to running the job
    #[command(after_help = "Examples:\n  cijob plan test > job.sh && sh job.sh")]
    Plan(RunArgs),
    /// Open a shell in the build container of a run kept with --keep (or paused in --debug)
    #[command(
        after_help = "Examples:\n  cijob run test --keep && cijob shell test\n  cijob shell          # the most recent kept run"
    )]
    Shell {
        /// The job whose kept run to enter (default: the most recent kept run)
        #[arg(add = ArgValueCompleter::new(complete::job_names))]
        job: Option<String>,
    },
    /// Remove containers, networks and volumes left by kept or crashed runs
    #[command(
        after_help = "Examples:\n  cijob clean\n  cijob clean test\n  cijob clean test:2.2\n  cijob clean --artifacts --cache    # this project's stored artifacts and caches\n  cijob clean --all                  # both"
    )]
    Clean {
        /// Only what runs of this job left
        #[arg(add = ArgValueCompleter::new(complete::job_names))]
        job: Option<String>,
        /// Remove this project's stored artifacts instead (see `cijob artifacts`)
        #[arg(long, conflicts_with = "job")]
        artifacts: bool,
        /// Remove this project's stored caches instead
        #[arg(long, conflicts_with = "job")]
        cache: bool,
        /// Everything cijob keeps: what plain `clean` removes, and this project's stored
        /// artifacts and caches
        #[arg(long, conflicts_with_all = ["job", "artifacts", "cache"])]
        all: bool,
    },
    /// List a job's stored artifacts (from its last local run), or copy them out with --out
    #[command(
        after_help = "Examples:\n  cijob artifacts build\n  cijob artifacts build:2 --out ./from-build"
    )]
    Artifacts {
        /// The job whose artifacts to show
        #[arg(add = ArgValueCompleter::new(complete::job_names))]
        job: String,
        /// Copy the files into DIR (created if missing) instead of listing them
        #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath)]
        out: Option<PathBuf>,
    },
    /// Print the shell completion script (job names complete from .gitlab-ci.yml)
    #[command(
        after_help = "Examples:\n  source <(cijob completions bash)     # in ~/.bashrc\n  source <(cijob completions zsh)      # in ~/.zshrc\n  cijob completions fish | source      # in ~/.config/fish/config.fish"
    )]
    Completions {
        /// The shell to print the script for
        #[arg(value_enum)]
        shell: Shell,
    },
}

#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// The job's name as GitLab shows it (`test`, `test: [2.2]`, `build 1/3`), or a parallel
    /// instance's short name (`test:2.2`, `deploy:aws,monitoring`, `build:1`)
    #[arg(add = ArgValueCompleter::new(complete::job_names))]
    pub job: Option<String>,

    /// Set a variable (repeatable); overrides .gitlab-ci.yml. KEY=VALUE
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,

    /// Read variables from a file of KEY=VALUE lines
    #[arg(long = "var-file", value_name = "FILE")]
    pub var_files: Vec<PathBuf>,

    /// Mask this variable's value in all output (repeatable)
    #[arg(long = "mask", value_name = "KEY")]
    pub masks: Vec<String>,

    /// Pull policy for every image, overriding the job's (default: if-not-present)
    #[arg(long, value_enum, value_name = "POLICY")]
    pub pull: Option<PullArg>,

    /// Keep the build container and the services running after the job
    #[arg(long)]
    pub keep: bool,

    /// Copy the whole project into its volume again instead of updating what changed
    #[arg(long)]
    pub fresh: bool,

    /// Stop the job after this long (90s, 10m, 1.5h, 1h 30m, 01:30:00...: what `timeout:`
    /// accepts); overrides `timeout:`
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,

    /// Seconds to wait for services to accept connections; negative skips the check
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub wait_for_services_timeout: Option<i64>,

    /// Run the build container and services privileged (for docker:dind)
    #[arg(long)]
    pub privileged: bool,

    /// Memory limit of the build container (512m, 1g...; 0: none), like a runner's `memory`
    /// setting, which it overrides. A job killed for exceeding it is reported as such
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,

    /// CPUs the build container may use (1, 1.5...; 0: no limit), overriding a runner's `cpus`
    #[arg(long, value_name = "N")]
    pub cpus: Option<String>,

    /// Apply a GitLab Runner config.toml (environment and [runners.docker] settings)
    #[arg(long, value_name = "PATH", env = "CIJOB_RUNNER_CONFIG")]
    pub runner_config: Option<PathBuf>,

    /// Which [[runners]] entry of --runner-config to use (default: the first docker one)
    #[arg(long = "runner", value_name = "NAME")]
    pub runner: Option<String>,

    /// First run the jobs this one receives artifacts from (its needs, dependencies or
    /// earlier stages, transitively), in pipeline order, stopping at the first that fails
    #[arg(long)]
    pub needs: bool,

    /// Print the plan (the equivalent docker commands) instead of running
    #[arg(long)]
    pub dry_run: bool,

    /// Stop at a failing command with the job's containers up: open a shell where it failed,
    /// retry it, continue, run after_script, or abort
    #[arg(long, conflicts_with = "step")]
    pub debug: bool,

    /// Ask before each command: run, skip, shell, continue or abort (implies --debug)
    #[arg(long)]
    pub step: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum PullArg {
    Always,
    IfNotPresent,
    Never,
}

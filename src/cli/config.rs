//! The validated configuration of one `run`/`plan` invocation (clap types end here).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::args::{PullArg, RunArgs};
use crate::cli::runner_config::{self, RunnerConfig};
use crate::error::{ConfigError, Error};
use crate::model::{PullPolicy, Variable};
use crate::plan::limits;
use crate::resolve::duration;

#[derive(Debug, Clone, Default)]
pub struct RunConfig {
    pub job: Option<String>,
    /// `--needs`: run the jobs it receives artifacts from first.
    pub needs: bool,
    /// CLI variables in order (later wins); masked ones flagged.
    pub vars: Vec<Variable>,
    /// Keys whose values must be masked in all output.
    pub masks: Vec<String>,
    pub pull: Option<PullPolicy>,
    pub keep: bool,
    /// `--fresh`: a full copy of the project into its volume.
    pub fresh: bool,
    /// The image of the container that updates the project volume (`CIJOB_HELPER_IMAGE`).
    pub helper_image: Option<String>,
    pub timeout: Option<Duration>,
    pub wait_for_services_timeout: Option<i64>,
    pub privileged: bool,
    /// `--memory` in bytes (0: no limit); overrides config.toml `memory`.
    pub memory: Option<i64>,
    /// `--cpus` in nanoCPUs (0: no limit); overrides config.toml `cpus`.
    pub nano_cpus: Option<i64>,
    /// `--runner-config`: the chosen `[[runners]]` entry.
    pub runner: Option<RunnerConfig>,
    /// `DOCKER_AUTH_CONFIG` from cijob's own environment (used when no variable sets it).
    pub process_docker_auth_config: Option<String>,
    /// The Docker client config file to read credentials from.
    pub docker_config_file: Option<PathBuf>,
    pub debug: DebugMode,
}

/// How the script runs: straight through like the runner, or paused for the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DebugMode {
    #[default]
    Off,
    /// Stop at a failing command.
    OnFailure,
    /// Ask before every command.
    Step,
}

impl RunConfig {
    pub fn from_args(args: &RunArgs, cwd: &Path) -> Result<Self, Error> {
        let mut vars = Vec::new();
        for file in &args.var_files {
            let path = cwd.join(file);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                Error::Usage(format!("cannot read --var-file {}: {e}", path.display()))
            })?;
            vars.extend(parse_var_file(&text, &path)?);
        }
        for kv in &args.vars {
            vars.push(
                parse_var(kv)
                    .ok_or_else(|| Error::Usage(format!("--var {kv:?}: expected KEY=VALUE")))?,
            );
        }
        for v in &mut vars {
            v.masked = args.masks.contains(&v.key);
        }
        let timeout = match &args.timeout {
            // The grammar of `timeout:`, so a value copied from the YAML works here too.
            Some(t) => Some(duration::parse(t).ok_or_else(|| {
                Error::Usage(format!(
                    "--timeout {t:?}: expected a duration like 90s, 10m, 1h30m, 1.5h, \"1 hour 30 minutes\" or 01:30:00"
                ))
            })?),
            None => None,
        };
        let flag = |name: &str, value: &Option<String>, parse: fn(&str) -> Result<i64, String>| {
            value
                .as_deref()
                .map(|v| parse(v).map_err(|e| Error::Usage(format!("--{name}: {e}"))))
                .transpose()
        };
        let memory = flag("memory", &args.memory, limits::parse_size)?;
        let nano_cpus = flag("cpus", &args.cpus, limits::parse_cpus)?;
        let runner = match &args.runner_config {
            Some(file) => {
                let path = cwd.join(file);
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    Error::Usage(format!(
                        "cannot read --runner-config {}: {e}",
                        path.display()
                    ))
                })?;
                Some(runner_config::parse(&text, &path, args.runner.as_deref())?)
            }
            None if args.runner.is_some() => {
                return Err(Error::Usage(
                    "--runner picks an entry of --runner-config; give --runner-config too".into(),
                ))
            }
            None => None,
        };
        Ok(Self {
            runner,
            process_docker_auth_config: std::env::var("DOCKER_AUTH_CONFIG")
                .ok()
                .filter(|s| !s.trim().is_empty()),
            docker_config_file: crate::execute::auth::Sources::default_config_file(),
            job: args.job.clone(),
            needs: args.needs,
            vars,
            masks: args.masks.clone(),
            pull: args.pull.map(|p| match p {
                PullArg::Always => PullPolicy::Always,
                PullArg::IfNotPresent => PullPolicy::IfNotPresent,
                PullArg::Never => PullPolicy::Never,
            }),
            keep: args.keep,
            fresh: args.fresh,
            helper_image: std::env::var("CIJOB_HELPER_IMAGE")
                .ok()
                .filter(|s| !s.trim().is_empty()),
            timeout,
            wait_for_services_timeout: args.wait_for_services_timeout,
            privileged: args.privileged,
            memory,
            nano_cpus,
            debug: if args.step {
                DebugMode::Step
            } else if args.debug {
                DebugMode::OnFailure
            } else {
                DebugMode::Off
            },
        })
    }
}

pub(crate) fn parse_var(kv: &str) -> Option<Variable> {
    let (k, v) = kv.split_once('=')?;
    let k = k.trim();
    let valid = !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then(|| {
        let mut var = Variable::new(k, v);
        // Variables from the command line stand for project/instance settings; like those,
        // they reach the build container but are public so services see them too
        // (the issue asks for CLI variables to reach services).
        var.public = true;
        var
    })
}

/// `KEY=VALUE` lines; blank lines and `#` comments skipped; optional `export ` prefix and
/// surrounding quotes accepted so that a shell-style env file works.
pub fn parse_var_file(text: &str, path: &Path) -> Result<Vec<Variable>, ConfigError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let body = trimmed.strip_prefix("export ").unwrap_or(trimmed);
        let mut var = parse_var(body).ok_or_else(|| {
            ConfigError::new("expected KEY=VALUE")
                .in_file(path)
                .at(i + 1, None)
                .with_source(text)
        })?;
        let v = var.value.trim();
        if v.len() >= 2
            && ((v.starts_with('"') && v.ends_with('"'))
                || (v.starts_with('\'') && v.ends_with('\'')))
        {
            var.value = v[1..v.len() - 1].to_string();
        }
        out.push(var);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::args::{Cli, Command};

    /// `cijob run job EXTRA...` through clap, as the binary parses it.
    fn run_args(extra: &[&str]) -> RunArgs {
        let argv = ["cijob", "run", "job"].iter().chain(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Run(args) => args,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn timeout_takes_the_grammar_of_timeout_in_the_yaml() {
        let timeout = |t: &str| {
            RunConfig::from_args(&run_args(&["--timeout", t]), Path::new("."))
                .map(|c| c.timeout.map(|d| d.as_secs()))
        };
        assert_eq!(timeout("1.5h").unwrap(), Some(5400));
        assert_eq!(timeout("1h 30m").unwrap(), Some(5400));
        assert_eq!(timeout("01:30:00").unwrap(), Some(5400));
        assert_eq!(timeout("90").unwrap(), Some(90));
        assert_eq!(timeout("3 mins 5 seconds").unwrap(), Some(185));
        let err = timeout("soon").unwrap_err();
        assert!(matches!(err, Error::Usage(_)), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("--timeout \"soon\": expected a duration like 90s, 10m, 1h30m"),
            "{err}"
        );
        let none = RunConfig::from_args(&run_args(&[]), Path::new(".")).unwrap();
        assert_eq!(none.timeout, None);
    }

    #[test]
    fn var_file_lines() {
        let text = "# comment\n\nA=1\nexport B=\"two words\"\nC='x=y'\n";
        let vars = parse_var_file(text, Path::new("v.env")).unwrap();
        let kv: Vec<_> = vars
            .iter()
            .map(|v| (v.key.as_str(), v.value.as_str()))
            .collect();
        assert_eq!(kv, [("A", "1"), ("B", "two words"), ("C", "x=y")]);
    }

    #[test]
    fn var_file_error_names_line() {
        let err = parse_var_file("A=1\nnot a var\n", Path::new("v.env")).unwrap_err();
        assert_eq!(err.line, Some(2));
        assert!(err.to_string().starts_with("v.env:2: expected KEY=VALUE"));
    }

    #[test]
    fn bad_var_key_rejected() {
        assert!(parse_var("=x").is_none());
        assert!(parse_var("A B=x").is_none());
        assert_eq!(parse_var("A=b=c").unwrap().value, "b=c");
    }
}

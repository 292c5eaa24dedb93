//! How a job ended, in the runner's words, and cijob's exit: pure, from what the run
//! observed (the step's end, whether its first command ran, the OOM flag) and what the job
//! allows.

use std::time::Duration;

use crate::cli::config::DebugMode;
use crate::error::Error;
use crate::execute::stage::StageEnd;
use crate::model::AllowFailure;
use crate::plan::{limits, script};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Line,
    Info,
    Warning,
    Error,
}

pub type Lines = Vec<(Level, String)>;

/// What the run observed of the `step_script` stage.
#[derive(Debug, Clone, Copy)]
pub struct Outcome<'a> {
    pub step: StageEnd,
    /// The shell echoed the script's first command.
    pub started: bool,
    /// Exit 137 only: whether Docker flagged the container OOMKilled.
    pub oom_killed: bool,
    pub memory_limit: Option<(i64, &'a str)>,
    pub entrypoint: Option<&'a [String]>,
}

/// What the job's configuration says about failing.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    pub job_name: &'a str,
    pub allow_failure: &'a AllowFailure,
    pub debug: DebugMode,
    pub job_timeout: Duration,
}

/// The closing lines of the job log and cijob's result.
pub fn decide(o: &Outcome<'_>, rules: &Rules<'_>) -> (Lines, Result<(), Error>) {
    let mut lines = Lines::new();
    let never_ran = match o.step {
        StageEnd::Exited(code) if !o.started => Some(script::script_never_ran(code, o.entrypoint)),
        _ => None,
    };
    let result = match o.step {
        StageEnd::Exited(0) => {
            lines.extend(never_ran.map(|why| (Level::Warning, why)));
            lines.push((Level::Info, "Job succeeded".to_string()));
            Ok(())
        }
        StageEnd::Exited(code) => {
            let killed = sigkill_note(code, o.oom_killed, o.memory_limit);
            lines.extend(killed.or(never_ran).map(|why| (Level::Error, why)));
            lines.push((Level::Error, format!("Job failed: exit code {code}")));
            if rules.allow_failure.allows(code) {
                lines.push((
                    Level::Warning,
                    format!(
                        "Job \"{}\" is allowed to fail (allow_failure): exiting with 0",
                        rules.job_name
                    ),
                ));
                Ok(())
            } else {
                // Debug mode stops at a failing command: no use when none ran.
                if rules.debug == DebugMode::Off && o.started {
                    lines.push((
                        Level::Line,
                        format!(
                            "hint: `cijob run {} --debug` stops at the failing command with a shell in its state",
                            script::shell_escape(rules.job_name)
                        ),
                    ));
                }
                Err(Error::JobFailed(code))
            }
        }
        StageEnd::TimedOut => {
            lines.push((
                Level::Error,
                format!(
                    "Job failed: execution took longer than {} seconds",
                    go_duration(rules.job_timeout)
                ),
            ));
            Err(Error::Timeout)
        }
        StageEnd::Aborted(code) => {
            lines.push((
                Level::Error,
                format!("Job aborted in debug mode (exit code {code})"),
            ));
            Err(Error::JobFailed(if code == 0 { 1 } else { code }))
        }
    };
    (lines, result)
}

/// `after_script` never changes the job's result: its failure is only a warning.
pub fn after_script(
    end: StageEnd,
    timeout: Duration,
    oom_killed: bool,
    memory_limit: Option<(i64, &str)>,
) -> Lines {
    match end {
        StageEnd::Exited(0) | StageEnd::Aborted(_) => Lines::new(),
        StageEnd::Exited(code) => {
            let mut lines = vec![(
                Level::Warning,
                format!("after_script failed, but job will continue unaffected: exit code {code}"),
            )];
            lines.extend(
                sigkill_note(code, oom_killed, memory_limit).map(|why| (Level::Warning, why)),
            );
            lines
        }
        StageEnd::TimedOut => vec![(
            Level::Warning,
            format!(
                "after_script failed, but job will continue unaffected: execution took longer than {}",
                go_duration(timeout)
            ),
        )],
    }
}

/// For exit code 137: why the shell got SIGKILL.
fn sigkill_note(code: i64, oom_killed: bool, memory_limit: Option<(i64, &str)>) -> Option<String> {
    (code == limits::SIGKILL_EXIT_CODE)
        .then(|| limits::sigkill_explanation(oom_killed, memory_limit))
}

/// `CI_JOB_STATUS` for `after_script`.
pub fn job_status(step: StageEnd) -> &'static str {
    match step {
        StageEnd::Exited(0) => "success",
        StageEnd::Exited(_) | StageEnd::Aborted(_) => "failed",
        StageEnd::TimedOut => "timedout",
    }
}

/// Go's `time.Duration` formatting (`1h0m0s`, `10s`), which the runner's messages use.
pub fn go_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &str = "test: [2.2]";

    fn outcome(step: StageEnd) -> Outcome<'static> {
        Outcome {
            step,
            started: true,
            oom_killed: false,
            memory_limit: None,
            entrypoint: None,
        }
    }

    fn rules(allow: &AllowFailure) -> Rules<'_> {
        Rules {
            job_name: NAME,
            allow_failure: allow,
            debug: DebugMode::Off,
            job_timeout: Duration::from_secs(3600),
        }
    }

    fn texts(lines: &Lines) -> Vec<(Level, &str)> {
        lines.iter().map(|(l, s)| (*l, s.as_str())).collect()
    }

    #[test]
    fn success() {
        let (lines, r) = decide(&outcome(StageEnd::Exited(0)), &rules(&AllowFailure::No));
        assert!(r.is_ok());
        assert_eq!(texts(&lines), [(Level::Info, "Job succeeded")]);
    }

    #[test]
    fn failure_passes_the_code_through_with_the_debug_hint() {
        let (lines, r) = decide(&outcome(StageEnd::Exited(3)), &rules(&AllowFailure::No));
        assert!(matches!(r, Err(Error::JobFailed(3))));
        assert_eq!(
            texts(&lines),
            [
                (Level::Error, "Job failed: exit code 3"),
                (
                    Level::Line,
                    "hint: `cijob run $'test: [2.2]' --debug` stops at the failing command with a shell in its state"
                ),
            ]
        );
        // No hint in debug mode, nor when no command ran.
        let mut r = rules(&AllowFailure::No);
        r.debug = DebugMode::OnFailure;
        assert_eq!(decide(&outcome(StageEnd::Exited(3)), &r).0.len(), 1);
    }

    #[test]
    fn allowed_failures_exit_zero_with_a_warning() {
        let allow = AllowFailure::ExitCodes(vec![3]);
        let (lines, r) = decide(&outcome(StageEnd::Exited(3)), &rules(&allow));
        assert!(r.is_ok());
        assert_eq!(
            lines.last().unwrap(),
            &(
                Level::Warning,
                "Job \"test: [2.2]\" is allowed to fail (allow_failure): exiting with 0"
                    .to_string()
            )
        );
        // Another code is not allowed.
        assert!(decide(&outcome(StageEnd::Exited(4)), &rules(&allow))
            .1
            .is_err());
        let (_, r) = decide(&outcome(StageEnd::Exited(4)), &rules(&AllowFailure::Yes));
        assert!(r.is_ok());
    }

    #[test]
    fn exit_137_is_explained_from_the_oom_flag() {
        let mut o = outcome(StageEnd::Exited(137));
        o.oom_killed = true;
        o.memory_limit = Some((64 << 20, limits::MEMORY_FROM_FLAG));
        let (lines, r) = decide(&o, &rules(&AllowFailure::No));
        assert!(matches!(r, Err(Error::JobFailed(137))));
        assert!(
            lines[0]
                .1
                .starts_with("The job was killed because it ran out of memory"),
            "{lines:?}"
        );
        o.oom_killed = false;
        let (lines, _) = decide(&o, &rules(&AllowFailure::No));
        assert!(lines[0].1.contains("SIGKILL"), "{lines:?}");
    }

    #[test]
    fn a_script_that_never_started_is_explained_without_the_hint() {
        let mut o = outcome(StageEnd::Exited(7));
        o.started = false;
        let (lines, r) = decide(&o, &rules(&AllowFailure::No));
        assert!(matches!(r, Err(Error::JobFailed(7))));
        assert!(lines[0].1.starts_with("The job's first command never ran"));
        assert!(lines.iter().all(|(_, l)| !l.contains("--debug")));
        // Exit 0 stays a success, with the explanation as a warning.
        o.step = StageEnd::Exited(0);
        let (lines, r) = decide(&o, &rules(&AllowFailure::No));
        assert!(r.is_ok());
        assert_eq!(lines[0].0, Level::Warning);
    }

    #[test]
    fn timeout_and_abort() {
        let (lines, r) = decide(&outcome(StageEnd::TimedOut), &rules(&AllowFailure::Yes));
        assert!(matches!(r, Err(Error::Timeout)));
        assert_eq!(
            lines[0].1,
            "Job failed: execution took longer than 1h0m0s seconds"
        );
        let (lines, r) = decide(&outcome(StageEnd::Aborted(0)), &rules(&AllowFailure::No));
        assert!(matches!(r, Err(Error::JobFailed(1))));
        assert_eq!(lines[0].1, "Job aborted in debug mode (exit code 0)");
    }

    #[test]
    fn after_script_failures_are_warnings() {
        let t = Duration::from_secs(300);
        assert!(after_script(StageEnd::Exited(0), t, false, None).is_empty());
        assert_eq!(
            after_script(StageEnd::Exited(2), t, false, None),
            [(
                Level::Warning,
                "after_script failed, but job will continue unaffected: exit code 2".to_string()
            )]
        );
        assert_eq!(
            after_script(StageEnd::TimedOut, t, false, None)[0].1,
            "after_script failed, but job will continue unaffected: execution took longer than 5m0s"
        );
        assert_eq!(after_script(StageEnd::Exited(137), t, true, None).len(), 2);
    }

    #[test]
    fn statuses_and_go_durations() {
        assert_eq!(job_status(StageEnd::Exited(0)), "success");
        assert_eq!(job_status(StageEnd::Exited(1)), "failed");
        assert_eq!(job_status(StageEnd::TimedOut), "timedout");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(go_duration(Duration::from_secs(10)), "10s");
        assert_eq!(go_duration(Duration::from_secs(300)), "5m0s");
    }
}

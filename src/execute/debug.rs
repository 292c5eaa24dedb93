//! Debug mode: the job pauses at a failing command (or before each one with `--step`) with
//! its containers up. The user can open a shell in the exact state where it stopped, retry,
//! continue, run `after_script`, or abort. State (exported variables, working directory)
//! is saved by the generated script itself, so every action resumes from the same point.

use console::{Key, Term};

use crate::cli::config::DebugMode;
use crate::error::Error;
use crate::execute::docker::Engine;
use crate::execute::stage::{pump_output, run_stage, send_script, StageEnd};
use crate::execute::terminal;
use crate::plan::script;
use crate::plan::RunPlan;
use crate::ui::Ui;

/// What the user chose at a pause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Choice {
    Shell,
    Retry,
    Continue,
    AfterScript,
    Abort,
    Run,
    Skip,
    RunAll,
}

/// Run the `step_script` stage under debug control.
pub(crate) async fn step_stage(
    engine: &Engine,
    plan: &RunPlan,
    build: &str,
    ui: &Ui,
) -> Result<StageEnd, Error> {
    let n = plan.step_commands.len();
    let mut stepping = plan.debug == DebugMode::Step;
    // The first segment goes through the runner's path (attach, start), so the image's
    // entrypoint wraps it exactly as in a normal run. In step mode it only sets the scene.
    let first_end = if stepping { 0 } else { n };
    let first = plan.debug_segment(0, first_end, false);
    if let StageEnd::TimedOut = run_stage(engine, build, first, &plan.secrets, plan.job_timeout, ui)
        .await?
        .end
    {
        return Ok(StageEnd::TimedOut);
    }
    // Bring the container back, idle, so that later segments and shells can exec into it.
    engine.start(build).await?;
    let mut skipped_failure: Option<i64> = None;
    loop {
        let (step, rc) = read_status(engine, build, plan).await?;
        if rc != 0 {
            let cmd = plan.step_commands.get(step).map_or("", String::as_str);
            ui.line("");
            ui.error(&format!(
                "Command {}/{n} failed with exit code {rc}: $ {}",
                step + 1,
                first_line(cmd)
            ));
            ui.line(&format!(
                "The job is paused; its containers are up. From another terminal: docker exec -it {} sh",
                plan.build.container.name
            ));
            let choice = ask(
                ui,
                "[s] shell here  [r] retry  [c] continue with the next command  [a] run after_script and finish  [q] abort",
                &[
                    ('s', Choice::Shell),
                    ('r', Choice::Retry),
                    ('c', Choice::Continue),
                    ('a', Choice::AfterScript),
                    ('q', Choice::Abort),
                ],
            )
            .await?;
            match choice {
                Choice::Shell => shell(engine, plan, build, ui).await?,
                Choice::Retry => {
                    let end = if stepping { step + 1 } else { n };
                    segment(engine, plan, build, step, end, ui).await?;
                }
                Choice::Continue => {
                    skipped_failure = Some(rc);
                    set_status(engine, build, plan, step + 1).await?;
                }
                Choice::AfterScript => return Ok(StageEnd::Exited(rc)),
                _ => return Ok(StageEnd::Aborted(rc)),
            }
            continue;
        }
        if step >= n {
            if let Some(code) = skipped_failure {
                ui.warning(&format!(
                    "a command failed (exit code {code}) and was skipped: on GitLab this job fails"
                ));
            }
            return Ok(StageEnd::Exited(skipped_failure.unwrap_or(0)));
        }
        if !stepping {
            // Resumed after a skipped failure: run the rest.
            segment(engine, plan, build, step, n, ui).await?;
            continue;
        }
        ui.line(&format!(
            "Next ({}/{n}): $ {}",
            step + 1,
            first_line(&plan.step_commands[step])
        ));
        let choice = ask(
            ui,
            "[Enter] run  [n] skip  [s] shell here  [c] run the rest without stopping  [q] abort",
            &[
                ('\n', Choice::Run),
                ('n', Choice::Skip),
                ('s', Choice::Shell),
                ('c', Choice::RunAll),
                ('q', Choice::Abort),
            ],
        )
        .await?;
        match choice {
            Choice::Run => segment(engine, plan, build, step, step + 1, ui).await?,
            Choice::Skip => set_status(engine, build, plan, step + 1).await?,
            Choice::Shell => shell(engine, plan, build, ui).await?,
            Choice::RunAll => {
                stepping = false;
                segment(engine, plan, build, step, n, ui).await?;
            }
            _ => return Ok(StageEnd::Aborted(skipped_failure.unwrap_or(1))),
        }
    }
}

fn first_line(cmd: &str) -> String {
    let cmd = cmd.trim();
    match cmd.split_once('\n') {
        Some((first, _)) => format!("{first} # collapsed multi-line command"),
        None => cmd.to_string(),
    }
}

/// Run `step_commands[start..end]` in the saved state, streaming output like a stage.
async fn segment(
    engine: &Engine,
    plan: &RunPlan,
    build: &str,
    start: usize,
    end: usize,
    ui: &Ui,
) -> Result<(), Error> {
    let script = plan.debug_segment(start, end, true);
    let cmd = vec![
        "sh".to_string(),
        "-c".to_string(),
        script::DETECT_SHELL.to_string(),
    ];
    let (_, attached) = engine.exec(build, cmd, false, None).await?;
    let writer = send_script(attached.input, script);
    pump_output(attached.output, plan.secrets.clone(), ui.clone()).await;
    writer.abort();
    Ok(())
}

/// The saved `(command index, exit status)` of the last segment.
async fn read_status(engine: &Engine, build: &str, plan: &RunPlan) -> Result<(usize, i64), Error> {
    let path = status_file(plan);
    let (_, out) = engine
        .exec_output(build, vec!["cat".to_string(), path])
        .await?;
    let mut parts = out.split_whitespace();
    let step = parts.next().and_then(|s| s.parse().ok());
    let rc = parts.next().and_then(|s| s.parse().ok());
    match (step, rc) {
        (Some(step), Some(rc)) => Ok((step, rc)),
        // No state: the shell died before the script's trap was set (e.g. no shell at all).
        _ => Err(Error::Failed(
            "the job stopped before cijob could save its state (does the image have a shell?)"
                .to_string(),
        )),
    }
}

fn status_file(plan: &RunPlan) -> String {
    format!("{}/status", script::debug_state_dir(&plan.project_dir))
}

/// Mark `step` as the next command to run (used by skip and continue).
async fn set_status(
    engine: &Engine,
    build: &str,
    plan: &RunPlan,
    step: usize,
) -> Result<(), Error> {
    let path = status_file(plan);
    engine
        .exec_output(
            build,
            vec![
                "sh".to_string(),
                "-c".to_string(),
                format!("echo '{step} 0' > \"$1\""),
                "sh".to_string(),
                path,
            ],
        )
        .await?;
    Ok(())
}

async fn shell(engine: &Engine, plan: &RunPlan, build: &str, ui: &Ui) -> Result<(), Error> {
    ui.line("Opening a shell where the job stopped (exit it to return here)...");
    let cmd = vec![
        "sh".to_string(),
        "-c".to_string(),
        script::resume_shell(&plan.project_dir),
    ];
    terminal::interactive(engine, build, cmd).await?;
    Ok(())
}

/// Show `prompt` and wait for one of `keys` (Enter is `'\n'`).
async fn ask(ui: &Ui, prompt: &str, keys: &[(char, Choice)]) -> Result<Choice, Error> {
    ui.line(prompt);
    let keys = keys.to_vec();
    tokio::task::spawn_blocking(move || {
        let term = Term::stderr();
        loop {
            let key = term
                .read_key()
                .map_err(|e| Error::Failed(format!("cannot read the terminal: {e}")))?;
            let c = match key {
                Key::Enter => '\n',
                Key::Char(c) => c.to_ascii_lowercase(),
                _ => continue,
            };
            if let Some((_, choice)) = keys.iter().find(|(k, _)| *k == c) {
                return Ok(*choice);
            }
        }
    })
    .await
    .map_err(|e| Error::Failed(format!("reading the terminal: {e}")))?
}

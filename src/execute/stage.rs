//! One stage of the job's script in the build container: its script written to the shell's
//! stdin, its output copied to ours (masked) until the container or process ends. Used by
//! the normal run and by debug mode's segments.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bollard::container::LogOutput;
use futures_util::StreamExt;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::task::JoinHandle;

use crate::error::Error;
use crate::execute::docker::Engine;
use crate::plan::script::EchoSpotter;
use crate::ui::masking::Masker;
use crate::ui::Ui;

/// How a stage ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageEnd {
    Exited(i64),
    TimedOut,
    /// Debug mode: the user aborted; no after_script.
    Aborted(i64),
}

/// How a stage ended, and whether its shell reached the script's first command.
pub struct Stage {
    pub end: StageEnd,
    pub started: bool,
}

/// How often to check that the daemon still answers while a container runs with its output
/// stream closed. Normally the stream closes as the container exits and the wait answers at
/// once; otherwise the script closed its stdout and stderr and runs on, or the connection
/// broke, and a broken connection may never deliver the wait's answer.
const PROBE_AFTER_OUTPUT_CLOSED: Duration = Duration::from_secs(2);

/// Attach, start, send the script on stdin and stream output until the container stops.
pub async fn run_stage(
    engine: &Engine,
    id: &str,
    script: String,
    secrets: &[String],
    timeout: Duration,
    ui: &Ui,
) -> Result<Stage, Error> {
    let attached = engine.attach(id).await?;
    engine.start(id).await?;
    run_started(engine, id, attached, script, secrets, timeout, ui).await
}

/// `run_stage` for a container attached and started earlier, its shell waiting for the
/// script on stdin.
pub async fn run_started(
    engine: &Engine,
    id: &str,
    attached: crate::execute::docker::Attached,
    script: String,
    secrets: &[String],
    timeout: Duration,
    ui: &Ui,
) -> Result<Stage, Error> {
    let writer = send_script(attached.input, script);
    let mut pump = tokio::spawn(pump_output(attached.output, secrets.to_vec(), ui.clone()));
    let mut output_open = true;
    // Unknown (the stream never closed) counts as started: no false alarm.
    let mut started = true;
    let end: Result<StageEnd, Error> = async {
        let wait = engine.wait(id);
        tokio::pin!(wait);
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                code = &mut wait => return Ok(StageEnd::Exited(code?)),
                () = &mut deadline => {
                    engine.stop(id, Duration::from_secs(5)).await?;
                    return Ok(StageEnd::TimedOut);
                }
                echoed = &mut pump, if output_open => {
                    output_open = false;
                    started = echoed.unwrap_or(true);
                }
                () = tokio::time::sleep(PROBE_AFTER_OUTPUT_CLOSED), if !output_open => {
                    engine.probe().await?;
                }
            }
        }
    }
    .await;
    writer.abort();
    if output_open {
        // The attach stream may not close on some engines (bollard#251): bound the final
        // drain, and skip it when the daemon is gone.
        if end.is_ok() {
            if let Ok(Ok(echoed)) = tokio::time::timeout(Duration::from_secs(2), &mut pump).await {
                started = echoed;
            }
        }
        pump.abort();
    }
    Ok(Stage { end: end?, started })
}

/// Write the script to the shell's stdin and close it. A shell that exits early closes
/// stdin; that is not an error of ours.
pub fn send_script(
    mut input: std::pin::Pin<Box<dyn AsyncWrite + Send>>,
    script: String,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let _ = input.write_all(script.as_bytes()).await;
        let _ = input.shutdown().await;
    })
}

/// Set once our stdout is a closed pipe (`cijob run job | head -1`): the job still runs to
/// its end (after_script, cleanup, its exit status), as the container of `docker run | head`
/// does, and its stdout is dropped from then on. Process-wide, as stdout is.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Copy the job's stdout and stderr to ours, apart, masking secrets. Returns whether the
/// shell echoed a command (it got as far as the script).
pub async fn pump_output<S>(mut output: S, secrets: Vec<String>, ui: Ui) -> bool
where
    S: futures_util::Stream<Item = Result<LogOutput, bollard::errors::Error>> + Unpin,
{
    let mut out_mask = Masker::new(secrets.clone());
    let mut err_mask = Masker::new(secrets);
    let mut echoes = EchoSpotter::default();
    while let Some(Ok(item)) = output.next().await {
        match item {
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                echoes.push(&message);
                write_stdout(&out_mask.push(&message), &ui);
            }
            LogOutput::StdErr { message } => {
                write_stderr(&err_mask.push(&message));
            }
            LogOutput::StdIn { .. } => {}
        }
    }
    write_stdout(&out_mask.finish(), &ui);
    write_stderr(&err_mask.finish());
    echoes.seen()
}

fn write_stdout(bytes: &[u8], ui: &Ui) {
    if bytes.is_empty() || STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe
            && !STDOUT_CLOSED.swap(true, Ordering::Relaxed)
        {
            ui.warning("cijob's standard output was closed: the job runs on to its end, and its standard output is discarded");
        }
    }
}

pub fn write_stderr(bytes: &[u8]) {
    if !bytes.is_empty() {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(bytes).and_then(|()| err.flush());
    }
}

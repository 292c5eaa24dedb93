//! An interactive process in a container on the user's terminal: raw mode, the window size
//! following the terminal, keystrokes in and output out until the process ends.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bollard::container::LogOutput;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::signal::unix::{signal, SignalKind};

use crate::error::Error;
use crate::execute::docker::Engine;

/// Restores the terminal even if we return early.
struct RawMode;

impl RawMode {
    fn enable() -> Result<Self, Error> {
        crossterm::terminal::enable_raw_mode()
            .map_err(|e| Error::Failed(format!("cannot put the terminal in raw mode: {e}")))?;
        Ok(RawMode)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

/// Run `cmd` in `container` with a TTY wired to ours; returns its exit code.
pub async fn interactive(engine: &Engine, container: &str, cmd: Vec<String>) -> Result<i64, Error> {
    let (exec_id, attached) = engine.exec(container, cmd, true, None).await?;
    let resize = |engine: Engine, exec_id: String| async move {
        if let Ok((cols, rows)) = crossterm::terminal::size() {
            engine.resize_exec(&exec_id, rows, cols).await;
        }
    };
    resize(engine.clone(), exec_id.clone()).await;
    let raw = RawMode::enable()?;

    // Stdin is read on a thread that polls, so it stops taking keystrokes the moment the
    // shell ends (a blocked read would eat the next key meant for cijob's menu).
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
    let reader = {
        let stop = stop.clone();
        std::thread::spawn(move || read_stdin(&stop, &tx))
    };
    let mut input = attached.input;
    let forward = tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if input.write_all(&bytes).await.is_err() {
                break;
            }
            let _ = input.flush().await;
        }
    });
    let winch = {
        let engine = engine.clone();
        let exec_id = exec_id.clone();
        tokio::spawn(async move {
            if let Ok(mut sig) = signal(SignalKind::window_change()) {
                while sig.recv().await.is_some() {
                    resize(engine.clone(), exec_id.clone()).await;
                }
            }
        })
    };
    let mut output = attached.output;
    while let Some(Ok(chunk)) = output.next().await {
        let bytes = match chunk {
            LogOutput::StdOut { message }
            | LogOutput::StdErr { message }
            | LogOutput::Console { message } => message,
            LogOutput::StdIn { .. } => continue,
        };
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(&bytes);
        let _ = out.flush();
    }
    stop.store(true, Ordering::SeqCst);
    let _ = reader.join();
    forward.abort();
    winch.abort();
    drop(raw);
    // The exec may need a moment to be reported as finished.
    for _ in 0..20 {
        if let Some(code) = engine.exec_exit_code(&exec_id).await? {
            return Ok(code);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(0)
}

fn read_stdin(stop: &AtomicBool, tx: &tokio::sync::mpsc::Sender<Vec<u8>>) {
    let mut buf = [0u8; 1024];
    while !stop.load(Ordering::SeqCst) {
        let mut fds = libc::pollfd {
            fd: 0,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for stdin, a bounded timeout.
        let ready = unsafe { libc::poll(&mut fds, 1, 100) };
        if ready <= 0 || fds.revents & libc::POLLIN == 0 {
            continue;
        }
        // SAFETY: reading into a buffer we own, at most its length.
        let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        if tx.blocking_send(buf[..n as usize].to_vec()).is_err() {
            break;
        }
    }
}

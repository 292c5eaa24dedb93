//! `ssh://` engines as the docker CLI reaches them: every connection is the system `ssh`
//! running `docker system dial-stdio` on the far side, its stdin and stdout the connection.
//! Your ssh configuration, agent and known hosts apply; nothing is written anywhere (bollard's
//! own `ssh` feature starts an OpenSSH master per connection and accepts unknown host keys).
//! When ssh fails, its exit status and last words are kept for the error message.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::process::{ChildStdin, ChildStdout, Command};

use crate::execute::endpoint::Host;

/// The ssh command line for `host` (`-l`, `-p` as given in `ssh://user@host:port`).
pub fn command_line(host: &Host) -> Vec<String> {
    let Host::Ssh { user, host, port } = host else {
        return Vec::new();
    };
    let mut args: Vec<String> = vec!["-o".into(), "ConnectTimeout=30".into(), "-T".into()];
    if let Some(u) = user {
        args.extend(["-l".into(), u.clone()]);
    }
    if let Some(p) = port {
        args.extend(["-p".into(), p.to_string()]);
    }
    args.extend(
        ["--", host, "docker", "system", "dial-stdio"]
            .iter()
            .map(|s| s.to_string()),
    );
    args
}

/// A hyper connector that opens each connection through a new `ssh` process.
#[derive(Clone)]
pub struct SshConnector {
    args: Arc<Vec<String>>,
    /// `ssh exited with 255: Permission denied (publickey).` of the last failed ssh.
    pub failure: Arc<Mutex<Option<String>>>,
}

impl SshConnector {
    pub fn new(host: &Host) -> Self {
        Self {
            args: Arc::new(command_line(host)),
            failure: Arc::default(),
        }
    }
}

pub struct SshStream {
    stdin: ChildStdin,
    stdout: ChildStdout,
}

impl tower_service::Service<hyper::Uri> for SshConnector {
    type Response = TokioIo<SshStream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: hyper::Uri) -> Self::Future {
        let args = self.args.clone();
        let failure = self.failure.clone();
        Box::pin(async move {
            let mut child = Command::new("ssh")
                .args(args.iter())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| io::Error::new(e.kind(), format!("cannot run ssh: {e}")))?;
            let (Some(stdin), Some(stdout), Some(mut stderr)) =
                (child.stdin.take(), child.stdout.take(), child.stderr.take())
            else {
                return Err(io::Error::other("ssh started without its pipes"));
            };
            // The process ends when the connection closes (dial-stdio sees EOF); its status
            // and stderr then say whether it had failed.
            tokio::spawn(async move {
                let mut err = Vec::new();
                let _ = stderr.read_to_end(&mut err).await;
                if let Ok(status) = child.wait().await {
                    if !status.success() {
                        let text = String::from_utf8_lossy(&err);
                        let last = text.lines().rev().find(|l| !l.trim().is_empty());
                        let code = status
                            .code()
                            .map_or_else(|| "a signal".to_string(), |c| c.to_string());
                        *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!(
                            "ssh exited with {code}{}",
                            last.map(|l| format!(": {}", l.trim())).unwrap_or_default()
                        ));
                    }
                }
            });
            Ok(TokioIo::new(SshStream { stdin, stdout }))
        })
    }
}

impl Connection for SshStream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl AsyncRead for SshStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stdout).poll_read(cx, buf)
    }
}

impl AsyncWrite for SshStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stdin).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stdin).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stdin).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_docker_clis_ssh_command() {
        let host = crate::execute::endpoint::parse_host("ssh://me@box:2222").unwrap();
        assert_eq!(
            command_line(&host).join(" "),
            "-o ConnectTimeout=30 -T -l me -p 2222 -- box docker system dial-stdio"
        );
        let host = crate::execute::endpoint::parse_host("ssh://box").unwrap();
        assert_eq!(
            command_line(&host).join(" "),
            "-o ConnectTimeout=30 -T -- box docker system dial-stdio"
        );
    }
}

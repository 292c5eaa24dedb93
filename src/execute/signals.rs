//! SIGINT, SIGTERM and SIGHUP during a run, as one stream.

use tokio::signal::unix::{signal, SignalKind};

use crate::error::{Error, Signal};

pub struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn new() -> Result<Self, Error> {
        let mk = |k| signal(k).map_err(|e| Error::Failed(format!("signal handler: {e}")));
        Ok(Self {
            int: mk(SignalKind::interrupt())?,
            term: mk(SignalKind::terminate())?,
            hup: mk(SignalKind::hangup())?,
        })
    }

    pub async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.int.recv() => Signal::Int,
            _ = self.term.recv() => Signal::Term,
            _ = self.hup.recv() => Signal::Hup,
        }
    }
}

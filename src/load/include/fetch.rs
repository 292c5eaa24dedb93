//! All HTTP lives here: one blocking GET with bounded time and size.
//!
//! The loader talks to a [`Fetcher`] so that its logic can be tested with a fake one.

use std::io::Read;
use std::time::Duration;

/// Connecting must succeed within this (an unreachable server fails fast).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A whole request, body included, must finish within this.
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(15);
/// CI files are small; anything bigger is a mistake or a hostile server.
pub const MAX_BODY_BYTES: u64 = 4 * 1024 * 1024;

/// An HTTP answer (any status).
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
}

/// Why no answer arrived.
#[derive(Debug, Clone, PartialEq)]
pub enum FetchError {
    /// The server could not be reached or did not answer in time: a cached copy may stand in.
    Unreachable(String),
    /// The server answered, but with something unusable (too large, not text...).
    Bad(String),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Unreachable(m) | FetchError::Bad(m) => f.write_str(m),
        }
    }
}

/// A GET with extra headers. Implementations must never log header values (tokens).
pub trait Fetcher: Send + Sync {
    fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<Response, FetchError>;
}

/// The real client: ureq with rustls, bounded timeouts and body size.
pub struct HttpFetcher {
    agent: ureq::Agent,
    /// For requests carrying a token: a redirect would forward the token header to
    /// wherever it points, so none is followed.
    no_redirects: ureq::Agent,
}

impl Default for HttpFetcher {
    fn default() -> Self {
        Self::new(CONNECT_TIMEOUT, TOTAL_TIMEOUT)
    }
}

impl HttpFetcher {
    pub fn new(connect: Duration, total: Duration) -> Self {
        let agent = |redirects: u32| {
            let config = ureq::Agent::config_builder()
                .timeout_connect(Some(connect))
                .timeout_global(Some(total))
                // statuses are reported to the caller, which words the error
                .http_status_as_error(false)
                .max_redirects(redirects)
                .user_agent(concat!("cijob/", env!("CARGO_PKG_VERSION")))
                .build();
            ureq::Agent::new_with_config(config)
        };
        HttpFetcher {
            agent: agent(5),
            no_redirects: agent(0),
        }
    }
}

impl Fetcher for HttpFetcher {
    fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<Response, FetchError> {
        let agent = if headers.is_empty() {
            &self.agent
        } else {
            &self.no_redirects
        };
        let mut req = agent.get(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut resp = req.call().map_err(|e| match e {
            ureq::Error::BodyExceedsLimit(_) => {
                FetchError::Bad(format!("the answer is larger than {MAX_BODY_BYTES} bytes"))
            }
            ureq::Error::BadUri(m) => FetchError::Bad(format!("invalid URL: {m}")),
            other => FetchError::Unreachable(other.to_string()),
        })?;
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // Read one byte past the limit to tell "exactly at the limit" from "too large".
        let mut bytes = Vec::new();
        resp.body_mut()
            .as_reader()
            .take(MAX_BODY_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| FetchError::Unreachable(format!("reading the answer: {e}")))?;
        if bytes.len() as u64 > MAX_BODY_BYTES {
            return Err(FetchError::Bad(format!(
                "the answer is larger than {MAX_BODY_BYTES} bytes"
            )));
        }
        let body = String::from_utf8(bytes)
            .map_err(|_| FetchError::Bad("the answer is not UTF-8 text".into()))?;
        Ok(Response {
            status,
            content_type,
            body,
        })
    }
}

/// Percent-encode one URL path segment or query value (GitLab's API wants `/` as `%2F`).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_paths_like_gitlab_expects() {
        assert_eq!(encode("group/sub proj"), "group%2Fsub%20proj");
        assert_eq!(encode("templates/a.yml"), "templates%2Fa.yml");
    }
}

//! A [`Fetcher`] for unit tests: a fixed map of URL -> (status, body); any other URL is
//! unreachable. It records every request with its headers.

use std::collections::HashMap;
use std::sync::Mutex;

use super::fetch::{FetchError, Fetcher, Response};

#[derive(Default)]
pub(super) struct Fake {
    pub(super) pages: HashMap<String, (u16, String)>,
    /// Each request: the URL and its headers as `NAME=value`.
    pub(super) seen: Mutex<Vec<(String, Vec<String>)>>,
}

impl Fake {
    pub(super) fn new(pages: &[(&str, u16, &str)]) -> Self {
        Fake {
            pages: pages
                .iter()
                .map(|(u, s, b)| (u.to_string(), (*s, b.to_string())))
                .collect(),
            ..Fake::default()
        }
    }

    pub(super) fn requests(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

impl Fetcher for Fake {
    fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<Response, FetchError> {
        self.seen.lock().unwrap().push((
            url.to_owned(),
            headers.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        ));
        match self.pages.get(url) {
            Some((status, body)) => Ok(Response {
                status: *status,
                content_type: None,
                body: body.clone(),
            }),
            None => Err(FetchError::Unreachable("connection refused".into())),
        }
    }
}

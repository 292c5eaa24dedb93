//! A tiny HTTP/1.1 server on loopback standing in for a GitLab instance (or a registry that
//! stalls): answers from a handler (a map of path -> reply, or anything else), records every
//! request, stops on drop.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Request {
    /// Path and query, as sent (`/api/v4/projects/g%2Fp/...?ref=v1`).
    pub target: String,
    /// Lower-cased header names.
    pub headers: HashMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub content_type: &'static str,
    /// Wait this long before answering (a slow server).
    pub delay: Duration,
    /// Announce a body of this many bytes and trickle it out without ever finishing.
    pub endless: Option<u64>,
}

impl Reply {
    pub fn ok(body: impl Into<String>) -> Self {
        Reply {
            status: 200,
            body: body.into(),
            content_type: "text/plain; charset=utf-8",
            delay: Duration::ZERO,
            endless: None,
        }
    }
    pub fn status(status: u16) -> Self {
        Reply {
            status,
            body: format!("{{\"message\":\"{status}\"}}"),
            content_type: "application/json",
            delay: Duration::ZERO,
            endless: None,
        }
    }
    pub fn html(body: &str) -> Self {
        Reply {
            content_type: "text/html; charset=utf-8",
            ..Reply::ok(body)
        }
    }
    pub fn slow(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
    /// A download that makes progress and never ends: `len` bytes announced, 512 sent every
    /// 100 ms.
    pub fn endless(len: u64) -> Self {
        Reply {
            endless: Some(len),
            content_type: "application/octet-stream",
            ..Reply::ok("")
        }
    }
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

pub struct FakeGitlab {
    pub port: u16,
    stop: Arc<AtomicBool>,
    requests: Arc<Mutex<Vec<Request>>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl FakeGitlab {
    /// Serve `routes` (path with query -> reply); anything else is a 404.
    pub fn with_routes(routes: Vec<(String, Reply)>) -> Self {
        let map: HashMap<String, Reply> = routes.into_iter().collect();
        Self::start(move |req| {
            map.get(&req.target)
                .cloned()
                .unwrap_or_else(|| Reply::status(404))
        })
    }

    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let (stop2, requests2) = (stop.clone(), requests.clone());
        let thread = thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (handler, requests) = (handler.clone(), requests2.clone());
                // one thread per connection, so a slow answer does not block the others
                thread::spawn(move || serve(stream, &*handler, &requests));
            }
        });
        FakeGitlab {
            port,
            stop,
            requests,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// Stop accepting; the port then refuses connections.
    pub fn stop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.stop.store(true, Ordering::SeqCst);
            // wake the accept loop up
            let _ = TcpStream::connect(("127.0.0.1", self.port));
            let _ = t.join();
        }
    }
}

impl Drop for FakeGitlab {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve(stream: TcpStream, handler: &Handler, requests: &Mutex<Vec<Request>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    // A TLS ClientHello (Docker tries HTTPS first, even on an insecure registry): hang up at
    // once so that the client falls back to plain HTTP without waiting for a timeout.
    let mut first = [0u8; 1];
    if stream.peek(&mut first).is_err() || first[0] == 0x16 {
        return;
    }
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let target = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let mut headers = HashMap::new();
    let mut content_length = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            let k = k.trim().to_ascii_lowercase();
            if k == "content-length" {
                content_length = v.trim().parse().unwrap_or(0);
            }
            headers.insert(k, v.trim().to_owned());
        }
    }
    let mut body = vec![0; content_length.min(1 << 20)];
    let _ = reader.read_exact(&mut body);
    let req = Request { target, headers };
    requests.lock().unwrap().push(req.clone());
    let reply = handler(&req);
    thread::sleep(reply.delay);
    let head = format!(
        "HTTP/1.1 {} X\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reply.status,
        reply.content_type,
        reply.endless.unwrap_or(reply.body.len() as u64)
    );
    let mut stream = stream;
    let _ = stream.write_all(head.as_bytes());
    if reply.endless.is_some() {
        // Until the client hangs up.
        while stream.write_all(&[0; 512]).is_ok() {
            thread::sleep(Duration::from_millis(100));
        }
        return;
    }
    let _ = stream.write_all(reply.body.as_bytes());
    let _ = stream.flush();
}

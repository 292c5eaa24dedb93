//! Faults during a run, against the real Docker daemon: an unreachable daemon, a daemon lost
//! mid-job, signals at awkward moments (pulls included), crashing services, an image without
//! a shell, floods of output, closed output streams and processes that outlive the script.
//! Every test checks that nothing of the job remains.

mod common;
#[path = "common/fake_gitlab.rs"]
mod fake_gitlab;
#[path = "common/tmux.rs"]
mod tmux;

use common::*;
use fake_gitlab::{FakeGitlab, Reply};
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tmux::Tmux;

fn one_job(name: &str, body: &str) -> String {
    format!("\"{name}\":\n{body}")
}

/// A running `cijob run JOB` whose stdout and stderr are collected into one buffer.
struct Live {
    child: Child,
    seen: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Live {
    fn start(p: &Project, job: &str) -> Self {
        Self::spawn(p.cijob(&["run", job]))
    }

    fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cijob");
        let seen = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        let streams: Vec<Box<dyn Read + Send>> = vec![
            Box::new(child.stdout.take().unwrap()),
            Box::new(child.stderr.take().unwrap()),
        ];
        for mut r in streams {
            let seen = seen.clone();
            readers.push(std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = r.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    seen.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }));
        }
        Self {
            child,
            seen,
            readers,
        }
    }

    fn text(&self) -> String {
        self.seen.lock().unwrap().clone()
    }

    /// Wait until the output contains `needle` (panics after 60 s).
    #[track_caller]
    fn wait_for(&self, needle: &str) {
        wait_until(
            || format!("{needle:?} in:\n{}", self.text()),
            || self.text().contains(needle),
        );
    }

    /// Wait for the process to exit within `limit`; returns its exit code and all output.
    #[track_caller]
    fn finish_within(mut self, limit: Duration) -> (Option<i32>, String) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                for r in self.readers.drain(..) {
                    r.join().unwrap();
                }
                return (status.code(), self.text());
            }
            if start.elapsed() > limit {
                self.child.kill().ok();
                self.child.wait().ok();
                panic!("cijob did not end within {limit:?}:\n{}", self.text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn unreachable_daemon_is_exit_125_naming_the_socket_with_a_hint() {
    let job = unique("nodaemon");
    let p = Project::new(&one_job(
        &job,
        "  image: cijob-test/busybox\n  script: [echo hi]\n",
    ));
    let r = Run::from(
        p.cijob(&["run", &job])
            .env("DOCKER_HOST", "unix:///nonexistent.sock")
            .output()
            .unwrap(),
    );
    r.assert_code(125)
        .assert_err("/nonexistent.sock")
        .assert_err("DOCKER_HOST")
        .assert_err("hint:");
}

/// Send `signal` once `marker` shows up; see `interrupt`.
fn interrupt_at(job: &str, yaml: &str, marker: &str, signal: i32, code: i32) {
    require_docker();
    let p = Project::new(yaml);
    let live = Live::start(&p, job);
    live.wait_for(marker);
    interrupt(live, job, signal, code);
}

/// Send `signal`: the run must end with `code` within 10 s, say it was interrupted, and
/// leave nothing behind.
fn interrupt(live: Live, job: &str, signal: i32, code: i32) {
    unsafe { libc::kill(live.child.id() as i32, signal) };
    let (got, out) = live.finish_within(Duration::from_secs(10));
    assert_eq!(got, Some(code), "{out}");
    assert!(out.contains("Job interrupted by"), "{out}");
    assert_no_leftovers_for_job(job);
}

/// Poll `done` until it holds (panics after 60 s, saying it never saw `what()`).
#[track_caller]
fn wait_until(what: impl Fn() -> String, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "never saw {}",
            what()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn slow_service_job(job: &str) -> String {
    one_job(
        job,
        "  image: cijob-test/busybox\n  services:\n    - name: cijob-test/svc-tcp\n      variables: {DELAY: \"60\"}\n  script: [echo never]\n",
    )
}

#[test]
fn sigint_during_the_health_check_cleans_up() {
    let job = unique("sig-health-int");
    let yaml = slow_service_job(&job);
    interrupt_at(&job, &yaml, "Waiting for services", libc::SIGINT, 130);
}

#[test]
fn sigterm_during_the_health_check_cleans_up() {
    let job = unique("sig-health-term");
    let yaml = slow_service_job(&job);
    interrupt_at(&job, &yaml, "Waiting for services", libc::SIGTERM, 143);
}

#[test]
fn sighup_during_service_start_cleans_up() {
    let job = unique("sig-start-hup");
    let yaml = slow_service_job(&job);
    interrupt_at(&job, &yaml, "Starting service", libc::SIGHUP, 129);
}

#[test]
fn sigterm_and_sighup_during_the_script_clean_up() {
    // SIGINT during the script is `tests/run.rs`'s `sigint_during_script_cleans_everything`.
    for (signal, code) in [(libc::SIGTERM, 143), (libc::SIGHUP, 129)] {
        let job = unique(&format!("sig-script-{signal}"));
        let yaml = one_job(
            &job,
            "  image: cijob-test/busybox\n  services: [cijob-test/svc-tcp]\n  script: [\"echo in-script\", \"sleep 120\"]\n",
        );
        interrupt_at(&job, &yaml, "in-script", signal, code);
    }
}

#[test]
fn sigint_with_services_that_ignore_sigterm_still_ends_within_ten_seconds() {
    // `sleep` as PID 1 ignores SIGTERM, so each stop takes its whole 3 s grace: one after
    // another, four of them (and the build container) would take 15 s.
    let job = unique("sig-stubborn");
    let svc = "    - name: cijob-test/busybox\n      entrypoint: [\"sleep\", \"300\"]\n";
    let yaml = one_job(
        &job,
        &format!(
            "  image: cijob-test/busybox\n  services:\n{}  script: [\"echo in-script\", \"sleep 120\"]\n",
            [svc; 4].iter().enumerate().map(|(i, s)| format!("{s}      alias: s{i}\n")).collect::<String>()
        ),
    );
    interrupt_at(&job, &yaml, "in-script", libc::SIGINT, 130);
}

#[test]
fn signals_during_after_script_clean_up() {
    for (signal, code) in [
        (libc::SIGINT, 130),
        (libc::SIGTERM, 143),
        (libc::SIGHUP, 129),
    ] {
        let job = unique(&format!("sig-after-{signal}"));
        let yaml = one_job(
            &job,
            "  image: cijob-test/busybox\n  script: [\"true\"]\n  after_script: [\"echo in-after\", \"sleep 120\"]\n",
        );
        interrupt_at(&job, &yaml, "in-after", signal, code);
    }
}

#[test]
fn service_crashing_at_start_is_a_warning_and_the_job_continues() {
    require_docker();
    let job = unique("svc-crash");
    let p = Project::new(&one_job(
        &job,
        "  image: cijob-test/busybox\n  services:\n    - name: cijob-test/svc-tcp\n      entrypoint: [\"/bin/sh\", \"-c\", \"exit 3\"]\n  script: [\"echo job-ran\"]\n",
    ));
    p.run(&["run", &job])
        .assert_code(0)
        .assert_err("exited with code 3")
        .assert_err("*** WARNING: Service")
        .assert_out("job-ran")
        .assert_err("Job succeeded");
    assert_no_leftovers_for_job(&job);
}

#[test]
fn image_without_a_shell_is_a_clear_error_and_cleaned_up() {
    require_docker();
    let job = unique("noshell");
    let tag = format!("cijob-test-reliability/{job}:latest");
    // An image holding one text file and nothing else: no shell to run the script with.
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("README"), "no shell here\n").unwrap();
    let st = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "tar -C '{}' -c README | docker import - '{tag}' >/dev/null",
            ctx.path().display()
        ))
        .status()
        .unwrap();
    assert!(st.success(), "docker import failed");
    let p = Project::new(&one_job(
        &job,
        &format!("  image: {tag}\n  script: [\"echo never-printed\"]\n"),
    ));
    let r = Run::from(p.cijob(&["run", &job, "--pull", "never"]).output().unwrap());
    docker(&["rmi", "-f", &tag]);
    assert_ne!(r.code, Some(0), "{}", r.all());
    assert!(r.code.is_some(), "killed by a signal: {}", r.all());
    r.assert_not("never-printed");
    assert!(r.stderr.contains("ERROR"), "no clear error:\n{}", r.stderr);
    assert_no_leftovers_for_job(&job);
}

/// Peak resident set (VmHWM, kB) of a live process.
fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// What a measured run gave: exit code, stdout byte count, stdout's last bytes.
struct Measured {
    code: Option<i32>,
    bytes: u64,
    tail: String,
}

/// Run `cijob run JOB`, counting its stdout without keeping it and sampling its peak RSS,
/// which must stay under 100 MB whatever the job moves.
fn run_measured(p: &Project, job: &str) -> Measured {
    let mut child = p
        .cijob(&["run", job])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut out = child.stdout.take().unwrap();
    let counter = std::thread::spawn(move || {
        let (mut total, mut tail) = (0u64, Vec::new());
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n as u64;
            tail.extend_from_slice(&buf[..n]);
            tail.drain(..tail.len().saturating_sub(4096));
        }
        (total, String::from_utf8_lossy(&tail).into_owned())
    });
    let mut peak_kb = 0;
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if let Some(kb) = vm_hwm_kb(pid) {
            peak_kb = peak_kb.max(kb);
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "{job} took too long"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let code = child.wait().unwrap().code();
    let (bytes, tail) = counter.join().unwrap();
    assert!(peak_kb > 0, "VmHWM was never read");
    assert!(peak_kb < 100 * 1024, "cijob's peak RSS was {peak_kb} kB");
    Measured { code, bytes, tail }
}

#[test]
fn a_gigabyte_of_output_keeps_cijobs_memory_flat() {
    require_docker();
    let job = unique("flood");
    let p = Project::new(&one_job(
        &job,
        // 500 MB as one line (no newline to flush on, the worst case for masking), then
        // 500 MB of short lines (the most frames; `yes` ends by SIGPIPE, 141 under pipefail).
        r#"  image: cijob-test/busybox
  script:
    - head -c 500000000 /dev/zero | tr "\0" y
    - yes 0123456789012345678901234567890123456789 | head -c 500000000 || [ $? -eq 141 ]
"#,
    ));
    let m = run_measured(&p, &job);
    assert_eq!(m.code, Some(0));
    assert!(m.bytes >= 1_000_000_000, "only {} bytes arrived", m.bytes);
    assert_no_leftovers_for_job(&job);
}

#[test]
fn a_300_megabyte_project_file_is_streamed_in_with_flat_memory() {
    require_docker();
    let job = unique("bigrepo");
    let p = Project::new(&one_job(
        &job,
        "  image: cijob-test/busybox\n  script: [\"md5sum big.bin\"]\n",
    ));
    // Untracked and not ignored, so it is copied; pseudo-random so nothing compresses it.
    let big = p.path().join("big.bin");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let data: Vec<u8> = (0..300_000_000 / 8)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()
        })
        .collect();
    std::fs::write(&big, &data).unwrap();
    drop(data);
    let host = std::process::Command::new("md5sum")
        .arg(&big)
        .output()
        .unwrap();
    let host_sum = String::from_utf8_lossy(&host.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let m = run_measured(&p, &job);
    assert_eq!(m.code, Some(0), "{}", m.tail);
    assert!(
        m.tail.contains(&format!("{host_sum}  big.bin")),
        "the job saw another file:\n{}",
        m.tail
    );
    assert_no_leftovers_for_job(&job);
}

#[test]
fn background_processes_do_not_keep_the_job_alive() {
    require_docker();
    let job = unique("bg");
    let p = Project::new(&one_job(
        &job,
        "  image: cijob-test/busybox\n  script: [\"sleep 300 &\", \"echo left-behind\"]\n",
    ));
    let live = Live::start(&p, &job);
    let (code, out) = live.finish_within(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("left-behind"), "{out}");
    assert_no_leftovers_for_job(&job);
}

/// How the daemon goes away for cijob (the real one, which other tests use, stays up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// Every connection closed and the socket removed, as when dockerd stops.
    Closed,
    /// The job's output stream closes, but nothing answers any more: the other connections
    /// stay open in silence and new ones are accepted and never served (a remote daemon
    /// whose network went dark).
    Silent,
}

/// A Unix socket forwarding each connection to the real daemon's until the test cuts it.
struct DaemonProxy {
    dir: tempfile::TempDir,
    cut: Arc<Mutex<Option<Cut>>>,
    conns: Arc<Mutex<Vec<Forwarded>>>,
    /// Container-create requests seen so far.
    creates: Arc<AtomicUsize>,
}

/// What the client-to-daemon side of a connection watches for.
struct Watch {
    /// Set when the connection carries an attach request.
    attach: Arc<AtomicBool>,
    creates: Arc<AtomicUsize>,
    /// How long a container-create request is held before the daemon gets it.
    create_delay: Duration,
}

struct Forwarded {
    client: UnixStream,
    daemon: UnixStream,
    /// The connection carries an attach stream (a job's output).
    attach: Arc<AtomicBool>,
}

impl DaemonProxy {
    fn start() -> Self {
        Self::delaying_creates(Duration::ZERO)
    }

    /// A proxy that holds each container-create request for `delay` (a daemon slow to create).
    fn delaying_creates(delay: Duration) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let creates = Arc::new(AtomicUsize::new(0));
        let creates2 = creates.clone();
        let listener = UnixListener::bind(dir.path().join("docker.sock")).unwrap();
        let cut: Arc<Mutex<Option<Cut>>> = Arc::new(Mutex::new(None));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (cut2, conns2) = (cut.clone(), conns.clone());
        std::thread::spawn(move || {
            let mut unanswered = Vec::new();
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                // Locked in the same order as `cut`, so no connection slips past a cut.
                let mut conns = conns2.lock().unwrap();
                match *cut2.lock().unwrap() {
                    Some(Cut::Closed) => break,
                    Some(Cut::Silent) => {
                        unanswered.push(client);
                        continue;
                    }
                    None => {}
                }
                let daemon = UnixStream::connect("/var/run/docker.sock").expect("docker.sock");
                let attach = Arc::new(AtomicBool::new(false));
                let clone = |s: &UnixStream| s.try_clone().unwrap();
                let watch = Watch {
                    attach: attach.clone(),
                    creates: creates2.clone(),
                    create_delay: delay,
                };
                relay(clone(&client), clone(&daemon), Some(watch), &cut2);
                relay(clone(&daemon), clone(&client), None, &cut2);
                conns.push(Forwarded {
                    client,
                    daemon,
                    attach,
                });
            }
        });
        Self {
            dir,
            cut,
            conns,
            creates,
        }
    }

    fn creates_seen(&self) -> usize {
        self.creates.load(Ordering::SeqCst)
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("docker.sock")
    }

    fn docker_host(&self) -> String {
        format!("unix://{}", self.path().display())
    }

    fn cut(&self, how: Cut) {
        let conns = self.conns.lock().unwrap();
        *self.cut.lock().unwrap() = Some(how);
        for c in conns.iter() {
            let _ = c.daemon.shutdown(std::net::Shutdown::Both);
            if how == Cut::Closed || c.attach.load(Ordering::SeqCst) {
                let _ = c.client.shutdown(std::net::Shutdown::Both);
            }
        }
        drop(conns);
        if how == Cut::Closed {
            // Wake the accept loop up: it sees the cut and closes the socket.
            let _ = UnixStream::connect(self.path());
            let _ = std::fs::remove_file(self.path());
        }
    }
}

impl Drop for DaemonProxy {
    fn drop(&mut self) {
        self.cut(Cut::Closed);
    }
}

/// Copy `from` to `to` on a thread, watching the requests (`watch`, client side only); the
/// end of `from` is passed on only while nothing is cut (after a cut, `DaemonProxy::cut`
/// decides what each side sees).
fn relay(
    mut from: UnixStream,
    mut to: UnixStream,
    watch: Option<Watch>,
    cut: &Arc<Mutex<Option<Cut>>>,
) {
    let cut = cut.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n @ 1..) = from.read(&mut buf) {
            if let Some(w) = &watch {
                let has = |needle: &[u8]| buf[..n].windows(needle.len()).any(|x| x == needle);
                if has(b"/attach?") {
                    w.attach.store(true, Ordering::SeqCst);
                }
                if has(b"/containers/create") {
                    w.creates.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(w.create_delay);
                }
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        if cut.lock().unwrap().is_none() {
            let _ = to.shutdown(std::net::Shutdown::Write);
        }
    });
}

/// The daemon goes away (`how`) while the script runs: cijob must end `within` with the
/// Docker exit status and say what happened (`cause`) and what to do; `cijob clean`, through
/// the real socket, then removes the job's objects.
fn daemon_lost_mid_job(how: Cut, within: Duration, cause: &str) {
    require_docker();
    let job = unique(&format!("lost-{how:?}").to_lowercase());
    let p = Project::new(&one_job(
        &job,
        "  image: cijob-test/busybox\n  script: [\"echo job-is-running\", \"sleep 300\"]\n",
    ));
    let proxy = DaemonProxy::start();
    let mut cmd = p.cijob(&["run", &job]);
    cmd.env("DOCKER_HOST", proxy.docker_host());
    let live = Live::spawn(cmd);
    live.wait_for("job-is-running");
    proxy.cut(how);
    let (code, out) = live.finish_within(within);
    assert_eq!(code, Some(125), "{out}");
    for needle in [
        "Lost the connection to the Docker daemon",
        &format!("DOCKER_HOST={}", proxy.docker_host()),
        cause,
        "cijob clean",
    ] {
        assert!(out.contains(needle), "no {needle:?} in:\n{out}");
    }
    // The daemon never heard of it: the job's container runs on.
    let left = leftovers(&format!("cijob.job={job}"));
    assert!(left.iter().any(|l| l.starts_with("container")), "{left:?}");
    p.run(&["clean", &job])
        .assert_code(0)
        .assert_err("removed container");
    assert_no_leftovers_for_job(&job);
}

#[test]
fn daemon_lost_mid_job_is_exit_125_with_a_hint_and_clean_removes_the_rest() {
    daemon_lost_mid_job(
        Cut::Closed,
        Duration::from_secs(10),
        "waiting for container",
    );
}

#[test]
fn an_interrupt_while_the_daemon_creates_a_container_leaves_nothing_behind() {
    require_docker();
    let job = unique("sig-creating");
    let p = Project::new(&one_job(
        &job,
        "  image: cijob-test/busybox\n  services: [cijob-test/svc-tcp]\n  script: [\"true\"]\n",
    ));
    // The daemon gets the service's create request 2 s late, as a busy one answers late.
    let proxy = DaemonProxy::delaying_creates(Duration::from_secs(2));
    let mut cmd = p.cijob(&["run", &job]);
    cmd.env("DOCKER_HOST", proxy.docker_host());
    let live = Live::spawn(cmd);
    wait_until(|| live.text(), || proxy.creates_seen() > 0);
    interrupt(live, &job, libc::SIGHUP, 129);
    // A container the daemon finished creating after cijob's cleanup would show up now.
    std::thread::sleep(Duration::from_secs(3));
    assert_no_leftovers_for_job(&job);
}

#[test]
fn daemon_gone_silent_mid_job_is_noticed_within_seconds() {
    // Not the client's 120 s timeout: a ping goes unanswered for 3 s.
    daemon_lost_mid_job(Cut::Silent, Duration::from_secs(20), "did not answer");
}

/// A registry on loopback that answers `/v2/` and then `reply` for everything else (the
/// daemon asks for the manifest first).
fn registry(reply: impl Fn(&str) -> Reply + Send + Sync + 'static) -> FakeGitlab {
    FakeGitlab::start(move |req| {
        if req.target == "/v2/" {
            Reply::ok("{}")
        } else {
            reply(&req.target)
        }
    })
}

fn stall() -> Reply {
    Reply::ok("").slow(Duration::from_secs(3600))
}

/// Wait until the daemon, pulling, has asked `registry` for a manifest.
#[track_caller]
fn wait_for_manifest_request(registry: &FakeGitlab) {
    let what = || "the daemon asking the registry for a manifest".to_string();
    wait_until(what, || {
        registry
            .requests()
            .iter()
            .any(|r| r.target.contains("/manifests/"))
    });
}

/// Send `signal` while the daemon pulls `IMAGE` (in `yaml`) from a registry that never
/// answers the manifest request, once the job's objects of `kinds` exist; see `interrupt`.
fn interrupt_pull(name: &str, yaml: &str, kinds: &[&str], signal: i32, code: i32) {
    require_docker();
    let registry = registry(|_| stall());
    let job = unique(name);
    let image = format!("127.0.0.1:{}/stall/{name}:1", registry.port);
    let p = Project::new(&one_job(&job, &yaml.replace("IMAGE", &image)));
    let live = Live::start(&p, &job);
    live.wait_for(&format!("Pulling docker image {image}"));
    wait_for_manifest_request(&registry);
    let left = leftovers(&format!("cijob.job={job}"));
    for kind in kinds {
        assert!(
            left.iter().any(|l| l.starts_with(kind)),
            "no {kind}: {left:?}"
        );
    }
    interrupt(live, &job, signal, code);
}

#[test]
fn sigint_during_a_pull_cleans_up() {
    let yaml = "  image: IMAGE\n  script: [echo never]\n";
    // Nothing of the job's own exists yet (the project volume is shared, the helper is gone).
    interrupt_pull("sig-pull-int", yaml, &[], libc::SIGINT, 130);
}

#[test]
fn sigterm_during_a_service_pull_cleans_up() {
    // One service already runs, on a network of the build's own.
    let yaml = concat!(
        "  image: cijob-test/busybox\n",
        "  variables: {FF_NETWORK_PER_BUILD: \"true\"}\n",
        "  services: [cijob-test/svc-tcp, \"IMAGE\"]\n",
        "  script: [echo never]\n",
    );
    let kinds = ["container", "network"];
    interrupt_pull("sig-pull-term", yaml, &kinds, libc::SIGTERM, 143);
}

#[test]
fn sigint_during_a_pull_on_a_terminal_erases_the_progress_bars() {
    require_docker();
    // A manifest whose layer downloads for minutes (its config never comes): the daemon
    // reports progress every 1% of the layer (10 kB, 2 s here), and cijob draws a bar.
    let digest = |c: char| format!("sha256:{}", c.to_string().repeat(64));
    let layer = digest('b');
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":1000,"digest":"{}"}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":1000000,"digest":"{layer}"}}]}}"#,
        digest('a')
    );
    let registry = registry(move |target| {
        if target.contains("/manifests/") {
            Reply {
                content_type: "application/vnd.docker.distribution.manifest.v2+json",
                ..Reply::ok(manifest.clone())
            }
        } else if target.ends_with(&layer) {
            Reply::endless(1_000_000)
        } else {
            stall()
        }
    });
    let job = unique("sig-pull-tty");
    let image = format!("127.0.0.1:{}/trickle/image:1", registry.port);
    let p = Project::new(&one_job(
        &job,
        &format!("  image: {image}\n  script: [echo never]\n"),
    ));
    let t = Tmux::start(p.path(), &format!("run '{job}'"));
    t.wait_for("Downloading");
    unsafe { libc::kill(t.command_pid(), libc::SIGINT) };
    assert_eq!(t.exit_code(), 130, "{}", t.screen());
    let screen = t.screen();
    assert!(screen.contains("Job interrupted by SIGINT"), "{screen}");
    assert!(!screen.contains("Downloading"), "a bar was left:\n{screen}");
    assert!(
        !screen.contains("bbbbbbbbbbbb"),
        "a bar was left:\n{screen}"
    );
    assert_no_leftovers_for_job(&job);
}

/// Run `script` (YAML list items) as a job; returns the result and checks that nothing of
/// the job remains.
fn run_script(script: &str) -> Run {
    require_docker();
    let job = unique("script");
    let p = Project::new(&one_job(
        &job,
        &format!(
            "  image: cijob-test/busybox\n  script:\n{script}  after_script: [\"echo after-script-ran >&2\"]\n"
        ),
    ));
    let r = p.run(&["run", &job]);
    assert_no_leftovers_for_job(&job);
    r
}

#[test]
fn a_job_closing_its_stdout_gets_its_own_exit_status() {
    let r = run_script(concat!(
        "    - echo before-close\n",
        "    - 'exec 1>&-; echo into-closed-\"\"stdout || echo stdout-write-failed-$? >&2; exit 3'\n",
    ));
    r.assert_code(3)
        .assert_out("before-close")
        .assert_err("stdout-write-failed-1")
        .assert_err("after-script-ran")
        .assert_err("Job failed: exit code 3")
        .assert_not("into-closed-stdout");
}

#[test]
fn a_job_sending_its_output_away_runs_to_its_end() {
    // Its stdout and stderr go elsewhere while it runs on: not a lost daemon.
    let r = run_script(concat!(
        "    - echo before-redirect\n",
        "    - 'exec >/dev/null 2>&1; echo hid\"\"den; sleep 6; exit 7'\n",
    ));
    r.assert_code(7)
        .assert_out("before-redirect")
        .assert_err("after-script-ran")
        .assert_err("Job failed: exit code 7")
        .assert_not("hidden")
        .assert_not("Lost the connection");
}

#[test]
fn closed_stdout_of_cijob_lets_the_job_finish_and_clean_up() {
    require_docker();
    let job = unique("epipe");
    let p = Project::new(&one_job(
        &job,
        concat!(
            "  image: cijob-test/busybox\n",
            "  script: [\"echo first-line\", \"sleep 2\", \"seq 1 1000\", \"echo still-running >&2\", \"exit 4\"]\n",
            "  after_script: [\"echo after-script-ran\", \"echo after-script-ran-too >&2\"]\n",
        ),
    ));
    // `cijob run job | head -n 1`: head is gone long before the job writes again.
    let o = Command::new("bash")
        .arg("-c")
        .arg(r#""$@" | head -n 1; echo "CIJOB_EXIT=${PIPESTATUS[0]}""#)
        .arg("bash")
        .arg(bin())
        .arg("-C")
        .arg(p.path())
        .args(["run", &job])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let r = Run::from(o);
    r.assert_out("CIJOB_EXIT=4")
        .assert_err("standard output was closed")
        .assert_err("still-running")
        .assert_err("after-script-ran-too")
        .assert_err("Job failed: exit code 4")
        .assert_not("panicked");
    assert_eq!(r.stdout.lines().count(), 2, "{}", r.stdout);
    assert_no_leftovers_for_job(&job);
}

#[test]
fn an_entrypoint_that_exits_at_once_is_explained() {
    require_docker();
    let job = unique("ep-exits");
    let quiet = format!("{job}-zero");
    let failing = format!("{job}-false");
    let p = Project::new(&format!(
        r#""{job}":
  image:
    name: cijob-test/busybox
    entrypoint: ["/bin/sh", "-c", "echo entrypoint-ran; exit 7"]
  script: ["echo never-printed"]
"{quiet}":
  image:
    name: cijob-test/busybox
    entrypoint: ["/bin/true"]
  script: ["echo never-printed"]
"{failing}":
  image: cijob-test/busybox
  script: ["false"]
"#
    ));
    let r = p.run(&["run", &job]);
    r.assert_code(7)
        .assert_out("entrypoint-ran")
        .assert_not("never-printed")
        .assert_err("The job's first command never ran: the build container exited with code 7")
        .assert_err("`image:entrypoint` (/bin/sh -c echo entrypoint-ran; exit 7)")
        .assert_err("Job failed: exit code 7")
        .assert_not("--debug` stops at the failing command");
    assert_no_leftovers_for_job(&job);

    // The runner counts this as a success; cijob agrees, and says why nothing ran.
    let r = p.run(&["run", &quiet]);
    r.assert_code(0)
        .assert_err("WARNING: The job's first command never ran")
        .assert_err("Job succeeded")
        .assert_not("never-printed");
    assert_no_leftovers_for_job(&quiet);

    // A command that fails is not mistaken for a script that never started.
    let r = p.run(&["run", &failing]);
    r.assert_code(1)
        .assert_not("first command never ran")
        .assert_err("--debug` stops at the failing command");
    assert_no_leftovers_for_job(&failing);
}

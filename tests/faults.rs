//! Faults during a run, against the real Docker daemon: an unreachable daemon, signals at
//! awkward moments, crashing services, an image without a shell, floods of output and
//! processes that outlive the script. Every test checks that nothing of the job remains.

mod common;

use common::*;
use std::io::Read;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
        let mut child = p
            .cijob(&["run", job])
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
        let start = Instant::now();
        while !self.text().contains(needle) {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "never saw {needle:?}:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
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

/// Send `signal` once `marker` shows up; the run must end with `code` within 10 s and
/// leave nothing behind.
fn interrupt_at(job: &str, yaml: &str, marker: &str, signal: i32, code: i32) {
    require_docker();
    let p = Project::new(yaml);
    let live = Live::start(&p, job);
    live.wait_for(marker);
    unsafe { libc::kill(live.child.id() as i32, signal) };
    let (got, out) = live.finish_within(Duration::from_secs(10));
    assert_eq!(got, Some(code), "{out}");
    assert!(out.contains("Job interrupted by"), "{out}");
    assert_no_leftovers_for_job(job);
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
        .assert_err("WARNING")
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

/// What a measured run gave: exit code, stdout byte count, stdout's last bytes, peak RSS (kB).
struct Measured {
    code: Option<i32>,
    bytes: u64,
    tail: String,
    peak_kb: u64,
}

/// Run `cijob run JOB`, counting its stdout without keeping it and sampling its peak RSS.
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
    Measured {
        code,
        bytes,
        tail,
        peak_kb,
    }
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
    assert!(
        m.peak_kb < 100 * 1024,
        "cijob's peak RSS was {} kB",
        m.peak_kb
    );
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
    assert!(
        m.peak_kb < 100 * 1024,
        "cijob's peak RSS was {} kB",
        m.peak_kb
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

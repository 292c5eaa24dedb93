//! Hostile configurations: each must end in a clear error (or load) within a time bound and
//! a memory bound, never hang or exhaust memory. The real binary runs under
//! `prlimit --as` (address-space limit) with a wall-clock deadline enforced here.

mod common;

use common::*;
use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// 1 GiB of address space: far more than any sane config needs.
const MEMORY_LIMIT: u64 = 1 << 30;

struct Outcome {
    run: Run,
    elapsed: Duration,
}

/// `cijob -C dir ARGS` under a 1 GiB address-space limit, killed if it exceeds `deadline`
/// (which fails the test).
#[track_caller]
fn bounded(dir: &std::path::Path, args: &[&str], deadline: Duration) -> Outcome {
    let mut c = Command::new("prlimit");
    c.arg(format!("--as={MEMORY_LIMIT}"))
        .arg("--")
        .arg(bin())
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = c.spawn().expect("spawn prlimit");
    // Drain both pipes while waiting, so a large output cannot block the child.
    let drain = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            r.read_to_end(&mut buf).ok();
            buf
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if start.elapsed() > deadline {
            child.kill().ok();
            child.wait().ok();
            let err = err.join().unwrap();
            panic!(
                "cijob {args:?} did not finish within {deadline:?}\n--- stderr\n{}",
                String::from_utf8_lossy(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = start.elapsed();
    let status = child.wait().unwrap();
    let run = Run::from(std::process::Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    });
    Outcome { run, elapsed }
}

fn dir_with(ci: &[u8]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join(".gitlab-ci.yml"), ci).unwrap();
    d
}

/// A clear configuration error: exit code 1 or 2, a message on stderr, and no sign of a
/// crash (panic, signal, allocation failure).
#[track_caller]
fn assert_clear_error(o: &Outcome, needle: &str) {
    let code = o.run.code;
    assert!(
        matches!(code, Some(1) | Some(2)),
        "expected a configuration error, got {code:?}\n{}",
        o.run.stderr
    );
    assert!(
        o.run.stderr.to_lowercase().contains(&needle.to_lowercase()),
        "stderr lacks {needle:?}:\n{}",
        o.run.stderr
    );
    for crash in ["panicked", "memory allocation", "stack overflow"] {
        assert!(!o.run.stderr.contains(crash), "crash: {}", o.run.stderr);
    }
}

#[test]
fn billion_laughs_alias_bomb_is_refused() {
    let mut y = String::from(
        "a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for i in 1..10 {
        let p = i - 1;
        writeln!(
            y,
            "a{i}: &a{i} [*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p}]"
        )
        .unwrap();
    }
    y.push_str("job:\n  script: [echo]\n  variables:\n    X: *a9\n");
    let d = dir_with(y.as_bytes());
    let o = bounded(d.path(), &["list"], Duration::from_secs(10));
    assert_clear_error(&o, "aliases expand to too many nodes");
}

#[test]
fn ten_thousand_jobs_load_quickly() {
    let mut y = String::from("stages: [build, test]\n");
    for i in 0..10_000 {
        writeln!(y, "job{i}:\n  stage: test\n  script: [\"echo {i}\"]").unwrap();
    }
    let d = dir_with(y.as_bytes());
    let o = bounded(d.path(), &["list", "--json"], Duration::from_secs(30));
    o.run.assert_code(0);
    assert!(
        o.run.stdout.contains("\"job9999\""),
        "{}",
        &o.run.stdout[..200]
    );
    let listed = o.run.stdout.matches("\"stage\"").count();
    assert_eq!(listed, 10_000, "every job is listed");
    assert!(o.elapsed < Duration::from_secs(10), "took {:?}", o.elapsed);
}

#[test]
fn extends_chain_of_a_thousand_is_a_clear_error() {
    let mut y = String::from(".j0:\n  script: [echo]\n");
    for i in 1..1000 {
        writeln!(y, ".j{i}:\n  extends: .j{}", i - 1).unwrap();
    }
    y.push_str("job:\n  extends: .j999\n");
    let d = dir_with(y.as_bytes());
    let o = bounded(d.path(), &["list"], Duration::from_secs(10));
    assert_clear_error(&o, "extends nesting is deeper");
}

#[test]
fn deep_reference_chain_is_a_clear_error() {
    let mut y = String::from(".r0:\n  script: [echo deep]\n");
    for i in 1..1000 {
        writeln!(y, ".r{i}:\n  script: [!reference [.r{}, script]]", i - 1).unwrap();
    }
    y.push_str("job:\n  script: [!reference [.r999, script]]\n");
    let d = dir_with(y.as_bytes());
    let o = bounded(d.path(), &["list"], Duration::from_secs(10));
    assert_clear_error(&o, "nested more than");
}

#[test]
fn deeply_nested_yaml_is_a_clear_error() {
    // 100k nested flow sequences: a recursive parser without a depth limit would overflow
    // its stack.
    let depth = 100_000;
    let y = format!(
        "job:\n  script: {}{}\n",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let d = dir_with(y.as_bytes());
    let o = bounded(d.path(), &["list"], Duration::from_secs(10));
    assert_clear_error(&o, "brackets are nested more than 1000 levels deep");
}

#[test]
fn include_glob_matching_three_thousand_files_is_bounded() {
    let d = dir_with(b"include: 'ci/*.yml'\njob:\n  script: [echo]\n");
    std::fs::create_dir(d.path().join("ci")).unwrap();
    for i in 0..3000 {
        std::fs::write(
            d.path().join(format!("ci/f{i:04}.yml")),
            format!(".hidden{i}:\n  script: [echo {i}]\n"),
        )
        .unwrap();
    }
    let o = bounded(d.path(), &["list"], Duration::from_secs(20));
    assert_clear_error(&o, "too many includes");
}

#[test]
fn binary_garbage_is_a_clear_error() {
    // Deterministic pseudo-random bytes (xorshift), with NULs and invalid UTF-8.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let bytes: Vec<u8> = (0..64 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let d = dir_with(&bytes);
    let o = bounded(d.path(), &["list"], Duration::from_secs(10));
    assert_clear_error(&o, ".gitlab-ci.yml");
}

#[test]
fn hundred_megabyte_file_is_refused_quickly() {
    let d = tempfile::tempdir().unwrap();
    let f = std::fs::File::create(d.path().join(".gitlab-ci.yml")).unwrap();
    // Sparse: 100 MB without writing 100 MB.
    f.set_len(100 * 1024 * 1024).unwrap();
    let o = bounded(d.path(), &["list"], Duration::from_secs(5));
    assert_clear_error(&o, "too large");
    assert!(o.elapsed < Duration::from_secs(2), "took {:?}", o.elapsed);
}

#[test]
fn endless_character_device_is_refused_without_reading_it() {
    // `-f /dev/zero`: not a regular file, so it is refused before any read (reading it
    // would never end).
    let d = tempfile::tempdir().unwrap();
    let o = bounded(
        d.path(),
        &["-f", "/dev/zero", "list"],
        Duration::from_secs(10),
    );
    assert_clear_error(&o, "/dev/zero is not a regular file");
}

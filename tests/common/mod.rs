//! Shared helpers for the end-to-end tests: a throw-away git project, the real binary, and
//! checks against the real Docker daemon (the docker CLI is used only to assert).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub struct Project {
    pub dir: tempfile::TempDir,
    /// cijob's store of artifacts and caches for this project's runs (`CIJOB_STORE_DIR`):
    /// never the user's, and apart from the working tree.
    pub store: tempfile::TempDir,
}

impl Project {
    /// A git repository with `.gitlab-ci.yml` committed.
    pub fn new(ci_yaml: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(".gitlab-ci.yml"), ci_yaml).unwrap();
        let p = Self {
            dir,
            store: tempfile::tempdir().expect("tempdir"),
        };
        p.git(&["init", "-q", "-b", "main"]);
        p.git(&["add", "-A"]);
        p.git(&["commit", "-q", "-m", "initial commit"]);
        p
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, content: &str) {
        let p = self.path().join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(p, content).unwrap();
    }

    pub fn git(&self, args: &[&str]) {
        let st = Command::new("git")
            .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
            .args(args)
            .current_dir(self.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .stdout(Stdio::null())
            .status()
            .expect("git");
        assert!(st.success(), "git {args:?} failed");
    }

    /// `cijob -C <project> ARGS`, colours off.
    pub fn cijob(&self, args: &[&str]) -> Command {
        let mut c = cijob();
        c.arg("-C")
            .arg(self.path())
            .args(args)
            .env("CIJOB_STORE_DIR", self.store.path());
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.cijob(args).output().expect("spawn cijob"))
    }

    /// A script (`cijob plan`'s) run with bash from the project root; it is kept beside the
    /// store, out of the working tree.
    pub fn bash(&self, script: &str) -> Run {
        let file = self.store.path().join("plan.sh");
        std::fs::write(&file, script).unwrap();
        Run::from(
            Command::new("bash")
                .arg(&file)
                .current_dir(self.path())
                .output()
                .expect("bash"),
        )
    }
}

/// The project volumes outlive runs by design; a test project's go with it.
impl Drop for Project {
    fn drop(&mut self) {
        for v in project_volumes_of(self) {
            let _ = Command::new("docker")
                .args(["volume", "rm", "-f", &v])
                .output();
        }
    }
}

/// The project volumes of `p` (they outlive runs by design).
pub fn project_volumes_of(p: &Project) -> Vec<String> {
    volumes_of(p, "project")
}

pub fn cijob() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cijob"));
    c.env("NO_COLOR", "1").stdin(Stdio::null());
    c
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cijob"))
}

pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Self {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "unexpected exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn assert_out(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn assert_err(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn assert_not(&self, needle: &str) -> &Self {
        assert!(
            !self.all().contains(needle),
            "output contains {needle:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Whether `docker ARGS` succeeds (an engine answers), its output discarded.
pub fn docker_succeeds(args: &[&str]) -> bool {
    Command::new("docker")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Docker must be there: these tests never skip (in CI or elsewhere).
pub fn require_docker() {
    assert!(
        docker_succeeds(&["info", "--format", "{{.ServerVersion}}"]),
        "this test needs a running Docker daemon and the fixture images: run scripts/setup-docker.sh"
    );
}

/// Names of containers, networks and volumes carrying `label`.
pub fn leftovers(label: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (kind, args) in [
        ("container", vec!["ps", "-a", "-q"]),
        ("network", vec!["network", "ls", "-q"]),
        ("volume", vec!["volume", "ls", "-q"]),
    ] {
        let o = Command::new("docker")
            .args(&args)
            .args(["--filter", &format!("label={label}")])
            .output()
            .expect("docker");
        for l in String::from_utf8_lossy(&o.stdout).lines() {
            out.push(format!("{kind} {l}"));
        }
    }
    out
}

/// Whatever a job with this name left behind.
#[track_caller]
pub fn assert_no_leftovers_for_job(job: &str) {
    let left = leftovers(&format!("cijob.job={job}"));
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// Write a runner `config.toml` into `dir`; returns its path for `--runner-config`.
pub fn write_config(dir: &Path, body: &str) -> String {
    let path = dir.join("config.toml");
    std::fs::write(&path, body).unwrap();
    path.display().to_string()
}

pub fn docker(args: &[&str]) -> Run {
    Run::from(Command::new("docker").args(args).output().expect("docker"))
}

/// A job name unique to this test process, so parallel tests never see each other's objects.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{:x}", std::process::id(), rand_u32())
}

fn rand_u32() -> u32 {
    use std::time::{SystemTime, UNIX_EPOCH};
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    n ^ (std::process::id().rotate_left(13))
}

/// The config.toml cache volumes of project `p` (they outlive runs by design).
pub fn cache_volumes_of(p: &Project) -> Vec<String> {
    volumes_of(p, "cache")
}

/// Volumes of `p` of a `cijob.type` (their names carry the project directory's name); none
/// when Docker does not answer.
fn volumes_of(p: &Project, kind: &str) -> Vec<String> {
    let Ok(o) = Command::new("docker")
        .args(["volume", "ls", "-q", "--filter"])
        .arg(format!("label=cijob.type={kind}"))
        .output()
    else {
        return Vec::new();
    };
    let dir = p
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .trim_start_matches('.')
        .to_ascii_lowercase();
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|v| v.contains(&dir))
        .map(str::to_string)
        .collect()
}

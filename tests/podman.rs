//! End-to-end against Podman's Docker-compatible API (`podman system service`, set up by
//! scripts/setup-podman.sh with the fixture images copied into its store), rootful on
//! /run/podman/podman.sock and rootless (user `cijob-rootless`) on
//! /run/cijob-rootless/podman.sock: services and aliases (default bridge and per-build
//! network), the health check on both paths, `--keep` and `clean`, `--debug` and `cijob
//! shell`, an interrupt, and a pull from the test registry. These tests fail, never skip, when
//! Podman is not there.

mod common;
#[path = "common/tmux.rs"]
mod tmux;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::*;
use tmux::Tmux;

const ROOTFUL: &str = "unix:///run/podman/podman.sock";
const ROOTLESS: &str = "unix:///run/cijob-rootless/podman.sock";

fn require_podman(podman: &str) {
    assert!(
        docker_succeeds(&["-H", podman, "version", "-f", "{{.Server.Version}}"]),
        "Podman's API does not answer on {podman}: run scripts/setup-podman.sh"
    );
}

/// `cijob ARGS` against Podman (through DOCKER_HOST, as a user would set it).
fn podman_run(podman: &str, p: &Project, args: &[&str]) -> Run {
    Run::from(
        p.cijob(args)
            .env("DOCKER_HOST", podman)
            .env_remove("DOCKER_CONTEXT")
            .output()
            .unwrap(),
    )
}

/// Podman's containers, networks and volumes of `job`.
fn podman_leftovers(podman: &str, job: &str) -> Vec<String> {
    let mut out = Vec::new();
    for args in [
        vec!["ps", "-a", "-q"],
        vec!["network", "ls", "-q"],
        vec!["volume", "ls", "-q"],
    ] {
        let o = Command::new("docker")
            .args(["-H", podman])
            .args(&args)
            .args(["--filter", &format!("label=cijob.job={job}")])
            .output()
            .unwrap();
        out.extend(
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_string),
        );
    }
    out
}

#[track_caller]
fn assert_nothing_left(podman: &str, job: &str) {
    let left = podman_leftovers(podman, job);
    assert!(left.is_empty(), "left behind on Podman: {left:?}");
}

fn service_job(job: &str, per_build_network: bool, delay: &str) -> String {
    format!(
        "variables: {{FF_NETWORK_PER_BUILD: \"{per_build_network}\"}}\n\"{job}\":\n  image: cijob-test/busybox\n  services:\n    - name: cijob-test/svc-tcp\n      alias: web db\n      variables: {{DELAY: \"{delay}\"}}\n  script: [wget -qO- http://web:8080/, wget -qO- http://db:8080/, wget -qO- http://cijob-test__svc-tcp:8080/]\n"
    )
}

fn podman_services_and_aliases_on_the_default_bridge_and_a_per_build_network(podman: &str) {
    require_podman(podman);
    for per_build in [false, true] {
        let job = unique("pm-svc");
        let p = Project::new(&service_job(&job, per_build, "1"));
        let r = podman_run(podman, &p, &["run", &job]);
        r.assert_code(0)
            .assert_not("probably didn't start properly");
        assert_eq!(r.stdout.matches("hello from").count(), 3, "{}", r.stdout);
        assert_nothing_left(podman, &job);
    }
}

fn podman_health_check_from_inside_the_network_and_its_warning(podman: &str) {
    require_podman(podman);
    // In a network namespace of its own cijob cannot dial Podman's bridge (as with Podman
    // machine on a Mac): the check runs inside.
    let job = unique("pm-inside");
    let p = Project::new(&service_job(&job, true, "2"));
    let t = Instant::now();
    let r = Run::from(
        Command::new("unshare")
            .arg("--net")
            .arg(bin())
            .args(["-H", podman, "-C"])
            .arg(p.path())
            .args(["run", &job])
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    );
    r.assert_code(0)
        .assert_not("probably didn't start properly");
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    assert_nothing_left(podman, &job);

    let job = unique("pm-never");
    let p = Project::new(&service_job(&job, false, "60"));
    let r = podman_run(
        podman,
        &p,
        &["run", &job, "--wait-for-services-timeout", "2"],
    );
    r.assert_code(1)
        .assert_err("probably didn't start properly")
        .assert_err("-wait-for-service\" timeout")
        .assert_err("svc-tcp: sleeping 60s before listening");
    assert_nothing_left(podman, &job);
}

fn podman_keep_then_clean(podman: &str) {
    require_podman(podman);
    let job = unique("pm-keep");
    let p = Project::new(&service_job(&job, true, "0"));
    podman_run(podman, &p, &["run", &job, "--keep"])
        .assert_code(0)
        .assert_err("Kept the job's containers");
    let kept = podman_leftovers(podman, &job);
    // The project volume is shared, not the job's.
    assert_eq!(kept.len(), 3, "2 containers, the network: {kept:?}");
    podman_run(podman, &p, &["clean", &job])
        .assert_code(0)
        .assert_err("removed 3 object(s)");
    assert_nothing_left(podman, &job);
}

fn podman_sigint_during_the_health_check_cleans_up(podman: &str) {
    require_podman(podman);
    let job = unique("pm-int");
    let p = Project::new(&service_job(&job, true, "60"));
    let mut child = p
        .cijob(&["-H", podman, "run", &job])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("Waiting for services") {
        use std::io::BufRead;
        assert!(err.read_line(&mut seen).unwrap() > 0, "{seen}");
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let t = Instant::now();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert_nothing_left(podman, &job);
}

fn podman_pulls_from_the_test_registry_with_credentials(podman: &str) {
    require_podman(podman);
    let job = unique("pm-pull");
    let auth = base64::engine::general_purpose::STANDARD.encode("cijob:cijob-registry-pw-5000");
    let p = Project::new(&format!(
        "\"{job}\":\n  image: localhost:5000/private/busybox:1\n  variables:\n    DOCKER_AUTH_CONFIG: '{{\"auths\":{{\"localhost:5000\":{{\"auth\":\"{auth}\"}}}}}}'\n  script: [echo pulled-and-ran]\n"
    ));
    let cfg = tempfile::tempdir().unwrap();
    let r = Run::from(
        p.cijob(&["-H", podman, "run", &job, "--pull", "always"])
            .env("DOCKER_CONFIG", cfg.path())
            .env_remove("DOCKER_AUTH_CONFIG")
            .output()
            .unwrap(),
    );
    r.assert_code(0)
        .assert_out("pulled-and-ran")
        .assert_err("Pulling docker image localhost:5000/private/busybox:1 ...")
        .assert_not("cijob-registry-pw-5000");
    assert_nothing_left(podman, &job);
}

fn podman_debug_retry_and_shell(podman: &str) {
    require_podman(podman);
    let job = unique("pm-debug");
    let p = Project::new(&format!(
        "\"{job}\":\n  image: cijob-test/busybox\n  script:\n    - export MADE_BY_SCRIPT=yes\n    - test -f fixed\n    - echo finished-with-$MADE_BY_SCRIPT\n"
    ));
    let t = Tmux::start(p.path(), &format!("-H {podman} run '{job}' --debug"));
    t.wait_for("[s] shell here");
    t.keys(&["s"]);
    t.wait_for("Opening a shell");
    std::thread::sleep(Duration::from_millis(500));
    t.type_text("echo \"state:$MADE_BY_SCRIPT\"; touch fixed; exit\n");
    t.wait_for("state:yes");
    t.wait_for_n("[s] shell here", 2);
    t.keys(&["r"]);
    assert_eq!(t.exit_code(), 0, "{}", t.screen());
    assert!(t.screen().contains("finished-with-yes"), "{}", t.screen());
    assert_nothing_left(podman, &job);

    // `cijob shell` in a kept run.
    let job = unique("pm-shell");
    let p = Project::new(&format!(
        "\"{job}\":\n  image: cijob-test/busybox\n  script: [echo done]\n"
    ));
    podman_run(podman, &p, &["run", &job, "--keep"]).assert_code(0);
    let t = Tmux::start(p.path(), &format!("-H {podman} shell '{job}'"));
    std::thread::sleep(Duration::from_millis(800));
    t.type_text("echo \"in:$CI_JOB_NAME:$(pwd)\"; exit\n");
    t.wait_for(&format!("in:{job}:/builds/"));
    assert_eq!(t.exit_code(), 0, "{}", t.screen());
    podman_run(podman, &p, &["clean", &job]).assert_code(0);
    assert_nothing_left(podman, &job);
}

fn podman_needs_artifacts_dotenv_and_cache_through_the_archive_endpoints(podman: &str) {
    require_podman(podman);
    let build = unique("build");
    let test = unique("test");
    let p = Project::new(&format!(
        "stages: [build, test]\n\"{build}\":\n  stage: build\n  image: cijob-test/busybox\n  script: [\"mkdir -p out && echo from-podman > out/app\", \"echo V=7 > b.env\"]\n  artifacts:\n    paths: [out/]\n    reports: {{dotenv: b.env}}\n\"{test}\":\n  stage: test\n  image: cijob-test/busybox\n  needs: [\"{build}\"]\n  cache: {{key: k, paths: [deps/]}}\n  script: [\"cat out/app\", \"echo v=$V\", \"cat deps/x || true\", \"mkdir -p deps && echo cached > deps/x\"]\n"
    ));
    podman_run(podman, &p, &["run", &test, "--needs"])
        .assert_code(0)
        .assert_out("from-podman")
        .assert_out("v=7")
        .assert_err("Created cache");
    podman_run(podman, &p, &["run", &test])
        .assert_code(0)
        .assert_err("Successfully extracted cache")
        .assert_out("cached");
    assert_nothing_left(podman, &build);
    assert_nothing_left(podman, &test);
}

/// Each scenario on rootful Podman and on rootless Podman (its bridge lives in the user's
/// network namespace, so the health check always runs from inside).
macro_rules! on_both {
    ($($scenario:ident),* $(,)?) => {
        mod rootful {
            $(#[test]
            fn $scenario() {
                super::$scenario(super::ROOTFUL);
            })*
        }
        mod rootless {
            $(#[test]
            fn $scenario() {
                super::$scenario(super::ROOTLESS);
            })*
        }
    };
}

on_both!(
    podman_services_and_aliases_on_the_default_bridge_and_a_per_build_network,
    podman_health_check_from_inside_the_network_and_its_warning,
    podman_keep_then_clean,
    podman_sigint_during_the_health_check_cleans_up,
    podman_pulls_from_the_test_registry_with_credentials,
    podman_debug_retry_and_shell,
    podman_needs_artifacts_dotenv_and_cache_through_the_archive_endpoints,
);

//! End-to-end: pulling from real private registries (fixtures/registry/start.sh runs them on
//! 127.0.0.1:5000 and :5001 with htpasswd auth) with credentials given every supported way.

mod common;

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use common::*;

const REG: &str = "localhost:5000";
const USER: &str = "cijob";
const PW: &str = "cijob-registry-pw-5000";
const USER2: &str = "cijob-other";
const PW2: &str = "cijob-registry-pw-5001";
const IMAGE: &str = "localhost:5000/private/busybox:1";

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn auth_json(entries: &[(&str, &str, &str)]) -> String {
    let auths: Vec<String> = entries
        .iter()
        .map(|(host, user, pw)| {
            format!(
                "\"{host}\":{{\"auth\":\"{}\"}}",
                b64(&format!("{user}:{pw}"))
            )
        })
        .collect();
    format!("{{\"auths\":{{{}}}}}", auths.join(","))
}

/// The registries must be up: these tests never skip.
fn require_registry() {
    require_docker();
    let ok = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "http://127.0.0.1:5000/v2/",
        ])
        .output()
        .is_ok_and(|o| o.stdout == b"401");
    assert!(ok, "the test registry on 127.0.0.1:5000 is not running: run scripts/setup-docker.sh (fixtures/registry/start.sh)");
}

/// `cijob run` with a clean credentials environment: no inherited DOCKER_AUTH_CONFIG, and a
/// Docker client config dir of the test's own.
fn run(p: &Project, args: &[&str], docker_config: &Path, env: &[(&str, &str)]) -> Run {
    let mut c = p.cijob(args);
    c.env_remove("DOCKER_AUTH_CONFIG")
        .env_remove("CIJOB_RUNNER_CONFIG")
        .env("DOCKER_CONFIG", docker_config);
    for (k, v) in env {
        c.env(k, v);
    }
    Run::from(c.output().expect("spawn cijob"))
}

fn job(name: &str, image: &str, extra: &str) -> String {
    format!("\"{name}\":\n  image: {image}\n{extra}  script:\n    - echo pulled-and-ran\n")
}

#[track_caller]
fn assert_pulled_privately(r: &Run, source: &str) {
    r.assert_code(0)
        .assert_out("pulled-and-ran")
        .assert_err(&format!("Authenticating with credentials from {source}"))
        .assert_err(&format!("Pulling docker image {IMAGE} ..."))
        .assert_not(PW)
        .assert_not(&b64(&format!("{USER}:{PW}")));
}

#[test]
fn job_variable_and_service_from_the_private_registry() {
    require_registry();
    let name = unique("reg-jobvar");
    let cfg = tempfile::tempdir().unwrap();
    let yaml = format!(
        "\"{name}\":\n  image: {IMAGE}\n  services:\n    - name: localhost:5000/private/svc-tcp:1\n      alias: svc\n  variables:\n    DOCKER_AUTH_CONFIG: '{}'\n  script:\n    - wget -qO- http://svc:8080/\n    - echo \"cfg=$DOCKER_AUTH_CONFIG\"\n    - echo pulled-and-ran\n",
        auth_json(&[(REG, USER, PW)])
    );
    let p = Project::new(&yaml);
    let r = run(&p, &["run", &name, "--pull", "always"], cfg.path(), &[]);
    assert_pulled_privately(&r, "$DOCKER_AUTH_CONFIG");
    r.assert_err("Pulling docker image localhost:5000/private/svc-tcp:1 ...")
        .assert_out("hello from")
        .assert_out("cfg=[MASKED]");
    assert_eq!(
        r.stderr
            .matches("Authenticating with credentials from $DOCKER_AUTH_CONFIG")
            .count(),
        2,
        "{}",
        r.stderr
    );
    assert_no_leftovers_for_job(&name);
}

#[test]
fn global_variable() {
    require_registry();
    let name = unique("reg-global");
    let cfg = tempfile::tempdir().unwrap();
    let yaml = format!(
        "variables:\n  DOCKER_AUTH_CONFIG: '{}'\n{}",
        auth_json(&[(REG, USER, PW)]),
        job(&name, IMAGE, "")
    );
    let p = Project::new(&yaml);
    assert_pulled_privately(
        &run(&p, &["run", &name, "--pull", "always"], cfg.path(), &[]),
        "$DOCKER_AUTH_CONFIG",
    );
}

#[test]
fn command_line_variable_and_var_file() {
    require_registry();
    let name = unique("reg-var");
    let cfg = tempfile::tempdir().unwrap();
    let p = Project::new(&job(&name, IMAGE, ""));
    let var = format!("DOCKER_AUTH_CONFIG={}", auth_json(&[(REG, USER, PW)]));
    assert_pulled_privately(
        &run(
            &p,
            &["run", &name, "--pull", "always", "--var", &var],
            cfg.path(),
            &[],
        ),
        "$DOCKER_AUTH_CONFIG",
    );
    let file = cfg.path().join("vars.env");
    std::fs::write(
        &file,
        format!("DOCKER_AUTH_CONFIG='{}'\n", auth_json(&[(REG, USER, PW)])),
    )
    .unwrap();
    let file = file.display().to_string();
    assert_pulled_privately(
        &run(
            &p,
            &["run", &name, "--pull", "always", "--var-file", &file],
            cfg.path(),
            &[],
        ),
        "$DOCKER_AUTH_CONFIG",
    );
}

#[test]
fn process_environment() {
    require_registry();
    let name = unique("reg-env");
    let cfg = tempfile::tempdir().unwrap();
    let p = Project::new(&job(&name, IMAGE, ""));
    let json = auth_json(&[(REG, USER, PW)]);
    let r = run(
        &p,
        &["run", &name, "--pull", "always"],
        cfg.path(),
        &[("DOCKER_AUTH_CONFIG", &json)],
    );
    assert_pulled_privately(&r, "$DOCKER_AUTH_CONFIG");
}

#[test]
fn runner_config_environment() {
    require_registry();
    let name = unique("reg-toml");
    let cfg = tempfile::tempdir().unwrap();
    let p = Project::new(&job(&name, IMAGE, ""));
    let json = auth_json(&[(REG, USER, PW)]).replace('"', "\\\"");
    let toml = format!(
        "[[runners]]\n  name = \"local\"\n  executor = \"docker\"\n  environment = [\"DOCKER_AUTH_CONFIG={json}\"]\n"
    );
    let file = cfg.path().join("config.toml");
    std::fs::write(&file, toml).unwrap();
    let r = run(
        &p,
        &["run", &name, "--pull", "always"],
        cfg.path(),
        &[("CIJOB_RUNNER_CONFIG", &file.display().to_string())],
    );
    assert_pulled_privately(&r, "$DOCKER_AUTH_CONFIG");
}

#[test]
fn docker_client_config_file() {
    require_registry();
    let name = unique("reg-file");
    let cfg = tempfile::tempdir().unwrap();
    std::fs::write(
        cfg.path().join("config.json"),
        auth_json(&[(REG, USER, PW)]),
    )
    .unwrap();
    let p = Project::new(&job(&name, IMAGE, ""));
    let r = run(&p, &["run", &name, "--pull", "always"], cfg.path(), &[]);
    let source = cfg.path().join("config.json").display().to_string();
    assert_pulled_privately(&r, &source);
}

#[test]
fn without_credentials_the_pull_fails_clearly() {
    require_registry();
    let name = unique("reg-nocreds");
    let cfg = tempfile::tempdir().unwrap();
    let p = Project::new(&job(&name, IMAGE, ""));
    let r = run(&p, &["run", &name, "--pull", "always"], cfg.path(), &[]);
    r.assert_code(125)
        .assert_err(&format!("failed to pull image \"{IMAGE}\""))
        .assert_err("no basic auth credentials")
        .assert_err("hint: no registry credentials matched localhost:5000")
        .assert_not("Authenticating with credentials");
    assert_no_leftovers_for_job(&name);
}

#[test]
fn wrong_password_is_a_clear_error_without_the_password() {
    require_registry();
    let name = unique("reg-badpw");
    let cfg = tempfile::tempdir().unwrap();
    let p = Project::new(&job(&name, IMAGE, ""));
    let bad = "wrong-pw-must-not-leak";
    let var = format!("DOCKER_AUTH_CONFIG={}", auth_json(&[(REG, USER, bad)]));
    let r = run(
        &p,
        &["run", &name, "--pull", "always", "--var", &var],
        cfg.path(),
        &[],
    );
    r.assert_code(125)
        .assert_err("Authenticating with credentials from $DOCKER_AUTH_CONFIG")
        .assert_err(&format!("failed to pull image \"{IMAGE}\""))
        .assert_err("refused the credentials of user \"cijob\" from $DOCKER_AUTH_CONFIG")
        .assert_not(bad)
        .assert_not(&b64(&format!("{USER}:{bad}")));
}

#[test]
fn host_and_port_must_both_match() {
    require_registry();
    let name = unique("reg-port");
    let cfg = tempfile::tempdir().unwrap();
    let image2 = "localhost:5001/private/busybox:1";
    let p = Project::new(&job(&name, image2, ""));
    // Credentials for :5000 only are not used for :5001.
    let only_5000 = format!("DOCKER_AUTH_CONFIG={}", auth_json(&[(REG, USER, PW)]));
    run(
        &p,
        &["run", &name, "--pull", "always", "--var", &only_5000],
        cfg.path(),
        &[],
    )
    .assert_code(125)
    .assert_err("hint: no registry credentials matched localhost:5001")
    .assert_not("Authenticating");
    // Host-only key matches no port.
    let host_only = format!(
        "DOCKER_AUTH_CONFIG={}",
        auth_json(&[("localhost", USER2, PW2)])
    );
    run(
        &p,
        &["run", &name, "--pull", "always", "--var", &host_only],
        cfg.path(),
        &[],
    )
    .assert_code(125)
    .assert_not("Authenticating");
    // Each registry gets its own credentials.
    let both = format!(
        "DOCKER_AUTH_CONFIG={}",
        auth_json(&[(REG, USER, PW), ("http://localhost:5001/v2/", USER2, PW2)])
    );
    run(
        &p,
        &["run", &name, "--pull", "always", "--var", &both],
        cfg.path(),
        &[],
    )
    .assert_code(0)
    .assert_out("pulled-and-ran")
    .assert_not(PW2);
}

fn write_helper(dir: &Path, log: &Path) {
    let script = format!(
        "#!/bin/sh\n# test credential helper: answers for localhost:5000 only\nread -r server\necho \"$1 $server\" >> '{}'\nif [ \"$1\" = get ] && [ \"$server\" = localhost:5000 ]; then\n  printf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PW}\"}}' \"$server\"\n  exit 0\nfi\necho 'credentials not found in native keychain'\nexit 1\n",
        log.display()
    );
    let path = dir.join("docker-credential-cijobtest");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The test helper `docker-credential-cijobtest` in a fresh directory: (the directory, the
/// log of its calls, a `PATH` that finds it).
fn helper_on_path() -> (tempfile::TempDir, std::path::PathBuf, String) {
    let bin = tempfile::tempdir().unwrap();
    let log = bin.path().join("calls.log");
    write_helper(bin.path(), &log);
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    (bin, log, path)
}

#[test]
fn credential_helper_from_cred_helpers() {
    require_registry();
    let name = unique("reg-helper");
    let cfg = tempfile::tempdir().unwrap();
    let (_bin, log, path) = helper_on_path();
    let p = Project::new(&job(&name, IMAGE, ""));
    let var = r#"DOCKER_AUTH_CONFIG={"credHelpers":{"localhost:5000":"cijobtest"}}"#;
    let r = run(
        &p,
        &["run", &name, "--pull", "always", "--var", var],
        cfg.path(),
        &[("PATH", &path)],
    );
    assert_pulled_privately(&r, "$DOCKER_AUTH_CONFIG");
    let calls = std::fs::read_to_string(&log).unwrap();
    assert_eq!(calls.trim(), "get localhost:5000");

    // A helper name that is a path is refused before anything runs.
    let evil = r#"DOCKER_AUTH_CONFIG={"credHelpers":{"localhost:5000":"../../tmp/x"}}"#;
    run(
        &p,
        &["run", &name, "--pull", "always", "--var", evil],
        cfg.path(),
        &[("PATH", &path)],
    )
    .assert_code(2)
    .assert_err("path traversal is not allowed")
    .assert_not("pulled-and-ran");
}

#[test]
fn a_helper_without_credentials_means_an_anonymous_pull_and_a_broken_one_is_an_error() {
    require_registry();
    let name = unique("reg-helper-none");
    let cfg = tempfile::tempdir().unwrap();
    let (_bin, log, path) = helper_on_path();
    let p = Project::new(&job(&name, "localhost:5001/private/busybox:1", ""));
    // The helper answers "credentials not found in native keychain" for :5001: no
    // credentials, as docker/cli takes it, so the pull goes anonymously and is refused.
    let none = r#"DOCKER_AUTH_CONFIG={"credHelpers":{"localhost:5001":"cijobtest"}}"#;
    run(
        &p,
        &["run", &name, "--pull", "always", "--var", none],
        cfg.path(),
        &[("PATH", &path)],
    )
    .assert_code(125)
    .assert_err("no basic auth credentials")
    .assert_not("Authenticating with credentials")
    .assert_not("credential helper");
    let calls = std::fs::read_to_string(&log).unwrap();
    assert_eq!(calls.trim(), "get localhost:5001");
    // A helper that cannot run is this machine's problem (exit 1), not a usage error.
    let missing = r#"DOCKER_AUTH_CONFIG={"credHelpers":{"localhost:5001":"cijob-absent"}}"#;
    run(
        &p,
        &["run", &name, "--pull", "always", "--var", missing],
        cfg.path(),
        &[("PATH", &path)],
    )
    .assert_code(1)
    .assert_err("cannot run credential helper docker-credential-cijob-absent")
    .assert_not("Pulling docker image");
    assert_no_leftovers_for_job(&name);
}

#[test]
fn plan_never_shows_the_auth_config() {
    let name = unique("reg-plan");
    let cfg = tempfile::tempdir().unwrap();
    let json = auth_json(&[(REG, USER, PW)]);
    let yaml = format!(
        "\"{name}\":\n  image: {IMAGE}\n  variables:\n    DOCKER_AUTH_CONFIG: '{json}'\n  script: [\"true\"]\n"
    );
    let p = Project::new(&yaml);
    let r = run(&p, &["plan", &name], cfg.path(), &[]);
    r.assert_code(0)
        .assert_not(PW)
        .assert_not(&b64(&format!("{USER}:{PW}")));
    assert!(r.stdout.contains("DOCKER_AUTH_CONFIG"), "{}", r.stdout);
}

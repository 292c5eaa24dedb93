//! End-to-end: memory and CPU limits (`--memory`, `--cpus`, config.toml `memory*`, `cpus`,
//! `service_*`, `oom_kill_disable`) reach the containers, and a job that dies of SIGKILL is
//! told apart from one killed for memory.

mod common;

use common::*;

/// The busybox shell doubles a string until the memory cgroup's OOM killer stops it.
const EAT_MEMORY: &str = "x=a; while :; do x=\"$x$x\"; done";

const OOM_WORDS: &str = "The job was killed because it ran out of memory";

fn job_yaml(name: &str, image: &str, script: &str) -> String {
    format!("\"{name}\":\n  image: {image}\n  script:\n    - '{script}'\n")
}

#[test]
fn a_job_over_its_memory_flag_is_reported_as_oom_killed() {
    require_docker();
    let name = unique("oom-flag");
    let p = Project::new(&job_yaml(&name, "cijob-test/busybox", EAT_MEMORY));
    p.run(&["run", &name, "--memory", "32m"])
        .assert_code(137)
        .assert_err(
            "ERROR: The job was killed because it ran out of memory (OOMKilled; limit 32 MiB from --memory)",
        )
        .assert_err("ERROR: Job failed: exit code 137");
    assert_no_leftovers_for_job(&name);
}

#[test]
fn a_job_over_its_config_toml_memory_is_reported_as_oom_killed() {
    require_docker();
    let name = unique("oom-toml");
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "[[runners]]\n  executor = \"docker\"\n  [runners.docker]\n    memory = \"32m\"\n    memory_swap = \"32m\"\n",
    );
    // The OOM killer takes `tail` (the biggest process) here, not the job's shell: the
    // shell then exits 137 with it, and Docker still flags the container OOMKilled.
    let p = Project::new(&job_yaml(
        &name,
        "cijob-test/debian",
        "head -c 200m /dev/zero | tail",
    ));
    p.run(&["run", &name, "--runner-config", &config])
        .assert_code(137)
        .assert_err(
            "The job was killed because it ran out of memory (OOMKilled; limit 32 MiB from config.toml [runners.docker] memory)",
        )
        .assert_err("ERROR: Job failed: exit code 137")
        .assert_not("cijob does not apply these settings");
    assert_no_leftovers_for_job(&name);
}

#[test]
fn sigkill_without_oom_is_not_called_out_of_memory() {
    require_docker();
    let name = unique("sigkill");
    // `kill -9 $$` in the job's own shell would do nothing: it is PID 1 of the container,
    // which the kernel shields from signals sent inside. A child shell is not.
    let p = Project::new(&format!(
        "\"{name}\":\n  image: cijob-test/busybox\n  script:\n    - sh -c 'kill -9 $$'\n  after_script:\n    - sh -c 'kill -9 $$'\n"
    ));
    let r = p.run(&["run", &name, "--memory", "64m"]);
    r.assert_code(137)
        .assert_err(
            "ERROR: exit code 137: the job's main process was killed by SIGKILL (kill -9, or the kernel's OOM killer outside the container's limit)",
        )
        .assert_err("ERROR: Job failed: exit code 137")
        .assert_err("WARNING: after_script failed, but job will continue unaffected: exit code 137")
        .assert_err("WARNING: exit code 137: the job's main process was killed by SIGKILL")
        .assert_not(OOM_WORDS);
    assert_no_leftovers_for_job(&name);
}

/// `docker inspect` of the kept container of `job` with this `cijob.type`.
fn inspect(job: &str, kind: &str, format: &str) -> String {
    let id = docker(&[
        "ps",
        "-a",
        "-q",
        "--filter",
        &format!("label=cijob.job={job}"),
        "--filter",
        &format!("label=cijob.type={kind}"),
    ]);
    let id = id.stdout.trim();
    assert!(!id.is_empty() && !id.contains('\n'), "{kind}: {id:?}");
    docker(&["inspect", "-f", format, id])
        .stdout
        .trim()
        .to_string()
}

#[test]
fn limits_reach_the_build_container_and_services() {
    require_docker();
    let name = unique("limits");
    let dir = tempfile::tempdir().unwrap();
    // --memory and --cpus override `memory` and `cpus`; the rest of the section applies.
    let config = write_config(
        dir.path(),
        r#"[[runners]]
  executor = "docker"
  [runners.docker]
    memory = "1g"
    memory_swap = "128MB"
    memory_reservation = "32m"
    cpus = "2"
    oom_kill_disable = true
    service_memory = "48m"
    service_memory_reservation = "24m"
    service_cpus = "0.25"
"#,
    );
    let p = Project::new(&format!(
        "\"{name}\":\n  image: cijob-test/busybox\n  services:\n    - name: cijob-test/svc-tcp\n      alias: web\n  script:\n    - echo \"limit=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)\"\n"
    ));
    let args = [
        "--runner-config",
        &config,
        "--memory",
        "64m",
        "--cpus",
        "0.5",
    ];
    let plan = p.run(&[&["plan", &name][..], &args].concat());
    plan.assert_code(0)
        .assert_out("--memory 64m")
        .assert_out("--memory-swap 128m")
        .assert_out("--memory-reservation 32m")
        .assert_out("--cpus 0.5")
        .assert_out("--oom-kill-disable")
        .assert_out("--memory 48m")
        .assert_out("--cpus 0.25");
    p.run(&[&["run", &name, "--keep"][..], &args].concat())
        .assert_code(0)
        .assert_out(&format!("limit={}", 64 << 20));
    let fields = "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.MemoryReservation}} {{.HostConfig.NanoCpus}} {{.HostConfig.OomKillDisable}}";
    let build = inspect(&name, "build", fields);
    let service = inspect(&name, "service", fields);
    // The kept build and service containers (the project volume is shared, not the job's).
    p.run(&["clean", &name])
        .assert_code(0)
        .assert_err("cijob clean: removed 2 object(s)");
    assert_eq!(
        build,
        format!("{} {} {} 500000000 true", 64 << 20, 128 << 20, 32 << 20)
    );
    // Services get the service_* settings only, and never oom_kill_disable (like the runner).
    // Docker makes an unset swap limit twice the memory limit.
    assert_eq!(
        service,
        format!("{} {} {} 250000000 false", 48 << 20, 96 << 20, 24 << 20)
    );
    assert_no_leftovers_for_job(&name);
}

#[test]
fn bad_limits_are_usage_errors_naming_the_flag_or_key() {
    let name = unique("bad-limits");
    let p = Project::new(&job_yaml(&name, "cijob-test/busybox", "true"));
    p.run(&["plan", &name, "--memory", "lots"])
        .assert_code(2)
        .assert_err("--memory: invalid size \"lots\": expected bytes with an optional unit, like 512m, 1g, 128MB or 1GiB");
    p.run(&["run", &name, "--cpus", "two"])
        .assert_code(2)
        .assert_err("--cpus: invalid number of CPUs \"two\"");
    p.run(&["plan", &name, "--memory", "1m"])
        .assert_code(2)
        .assert_err("the memory limit (from --memory) is 1 MiB, below Docker's minimum of 6 MiB");
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "[[runners]]\n  executor = \"docker\"\n  [runners.docker]\n    service_memory = \"12q\"\n",
    );
    p.run(&["plan", &name, "--runner-config", &config])
        .assert_code(2)
        .assert_err("config.toml:4: [runners.docker] service_memory: invalid size \"12q\"");
}

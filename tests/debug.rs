//! The debugger, driven through a real terminal (tmux) against the real daemon: the job
//! picker, pausing at a failing command, a shell in the saved state, retry, abort, --step,
//! and `cijob shell` on a kept run.

mod common;
#[path = "common/tmux.rs"]
mod tmux;

use std::time::Duration;

use common::*;
use tmux::Tmux;

fn failing_pipeline(job: &str) -> String {
    format!(
        r#""{job}":
  image: cijob-test/busybox
  services: [cijob-test/svc-tcp]
  script:
    - export MADE_BY_SCRIPT=yes
    - mkdir -p work && cd work
    - test -f fixed
    - echo "finished with $MADE_BY_SCRIPT in $(pwd)"
  after_script:
    - echo "after_script status=$CI_JOB_STATUS"
"#
    )
}

#[test]
fn picker_runs_the_chosen_job() {
    require_docker();
    let a = unique("pick-a");
    let b = unique("pick-b");
    let p = Project::new(&format!(
        "\"{a}\":\n  image: cijob-test/busybox\n  script: [\"echo ran-a\"]\n\"{b}\":\n  image: cijob-test/busybox\n  script: [\"echo ran-b\"]\n"
    ));
    let t = Tmux::start(p.path(), "run");
    t.wait_for("Job to run");
    t.type_text(&b);
    t.keys(&["Enter"]);
    assert_eq!(t.exit_code(), 0, "{}", t.screen());
    let s = t.screen();
    assert!(s.contains("ran-b") && !s.contains("ran-a"), "{s}");
}

#[test]
fn failure_pauses_shell_sees_state_fix_and_retry_succeeds() {
    require_docker();
    let job = unique("dbg-retry");
    let p = Project::new(&failing_pipeline(&job));
    let t = Tmux::start(p.path(), &format!("run '{job}' --debug"));
    t.wait_for("Command 3/4 failed with exit code 1: $ test -f fixed");
    t.wait_for("[s] shell here");
    t.keys(&["s"]);
    t.wait_for("Opening a shell");
    std::thread::sleep(Duration::from_millis(500));
    t.type_text("echo \"state:$MADE_BY_SCRIPT:$(basename $(pwd))\"; touch fixed; exit\n");
    t.wait_for("state:yes:work");
    // Back at the menu after the shell exits.
    t.wait_for_n("[s] shell here", 2);
    t.keys(&["r"]);
    assert_eq!(t.exit_code(), 0, "{}", t.screen());
    let s = t.screen();
    assert!(s.contains("finished with yes in /builds/"), "{s}");
    assert!(s.contains("after_script status=success"), "{s}");
    assert_no_leftovers_for_job(&job);
}

#[test]
fn abort_cleans_everything_up() {
    require_docker();
    let job = unique("dbg-abort");
    let p = Project::new(&failing_pipeline(&job));
    let t = Tmux::start(p.path(), &format!("run '{job}' --debug"));
    t.wait_for("[s] shell here");
    assert!(!leftovers(&format!("cijob.job={job}")).is_empty());
    t.keys(&["q"]);
    assert_eq!(t.exit_code(), 1, "{}", t.screen());
    assert!(!t.screen().contains("after_script status="));
    assert_no_leftovers_for_job(&job);
}

#[test]
fn after_script_choice_finishes_as_failed() {
    require_docker();
    let job = unique("dbg-after");
    let p = Project::new(&failing_pipeline(&job));
    let t = Tmux::start(p.path(), &format!("run '{job}' --debug"));
    t.wait_for("[s] shell here");
    t.keys(&["a"]);
    assert_eq!(t.exit_code(), 1, "{}", t.screen());
    assert!(t.screen().contains("after_script status=failed"));
    assert_no_leftovers_for_job(&job);
}

#[test]
fn step_mode_asks_before_each_command() {
    require_docker();
    let job = unique("dbg-step");
    let p = Project::new(&format!(
        "\"{job}\":\n  image: cijob-test/busybox\n  script:\n    - echo one\n    - echo two\n    - echo three\n"
    ));
    let t = Tmux::start(p.path(), &format!("run '{job}' --step"));
    t.wait_for("Next (1/3): $ echo one");
    t.keys(&["Enter"]);
    t.wait_for("Next (2/3): $ echo two");
    t.keys(&["n"]); // skip
    t.wait_for("Next (3/3): $ echo three");
    t.keys(&["Enter"]);
    assert_eq!(t.exit_code(), 0, "{}", t.screen());
    let s = t.screen();
    let out: Vec<&str> = s
        .lines()
        .filter(|l| *l == "one" || *l == "two" || *l == "three")
        .collect();
    assert_eq!(out, ["one", "three"], "{s}");
}

#[test]
fn cijob_shell_enters_a_kept_run() {
    require_docker();
    let job = unique("kept-shell");
    let p = Project::new(&format!(
        "\"{job}\":\n  image: cijob-test/busybox\n  variables: {{KEPT: from-yaml}}\n  script: [\"echo made > /tmp/made\"]\n"
    ));
    p.run(&["run", &job, "--keep"]).assert_code(0);
    let t = Tmux::start(p.path(), &format!("shell '{job}'"));
    std::thread::sleep(Duration::from_millis(800));
    t.type_text("echo \"in:$KEPT:$(cat /tmp/made):$(pwd)\"; exit\n");
    t.wait_for("in:from-yaml:made:/builds/");
    assert_eq!(t.exit_code(), 0, "{}", t.screen());
    // The kept build container (the project volume is shared, not the job's).
    p.run(&["clean", &job])
        .assert_code(0)
        .assert_err("removed container")
        .assert_err("cijob clean: removed 1 object(s)");
    assert_no_leftovers_for_job(&job);
}

#[test]
fn debug_without_a_terminal_is_a_clear_error() {
    let p = Project::new("j:\n  image: cijob-test/busybox\n  script: [\"true\"]\n");
    p.run(&["run", "j", "--debug"])
        .assert_code(2)
        .assert_err("need a terminal");
}

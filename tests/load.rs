//! Load against the real Docker daemon: concurrent runs of one job, and many services
//! whose health checks must run in parallel.

mod common;

use common::*;
use std::process::Stdio;
use std::time::{Duration, Instant};

#[test]
fn eight_simultaneous_runs_with_a_service_all_succeed_and_leave_nothing() {
    require_docker();
    let job = unique("load8");
    let p = Project::new(&format!(
        "\"{job}\":\n  image: cijob-test/busybox\n  services:\n    - name: cijob-test/svc-tcp\n      alias: web\n  script: [\"wget -qO- http://web:8080/\"]\n"
    ));
    let children: Vec<_> = (0..8)
        .map(|_| {
            p.cijob(&["run", &job])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let r = Run::from(c.wait_with_output().unwrap());
        r.assert_code(0).assert_out("hello from");
    }
    assert_no_leftovers_for_job(&job);
}

#[test]
fn ten_services_are_health_checked_in_parallel() {
    require_docker();
    let job = unique("svc10");
    let mut services = String::new();
    let mut script = String::new();
    for i in 0..10 {
        // Three slow ones: 3 s, 2 s, 2 s. Checked one after another, that alone is 7 s.
        let delay = match i {
            0 => "      variables: {DELAY: \"3\"}\n",
            1 | 2 => "      variables: {DELAY: \"2\"}\n",
            _ => "",
        };
        services.push_str(&format!(
            "    - name: cijob-test/svc-tcp\n      alias: s{i}\n{delay}"
        ));
        script.push_str(&format!("    - wget -qO- http://s{i}:8080/\n"));
    }
    let p = Project::new(&format!(
        "\"{job}\":\n  image: cijob-test/busybox\n  services:\n{services}  script:\n{script}"
    ));
    let start = Instant::now();
    let r = p.run(&["run", &job]);
    let took = start.elapsed();
    // (The default aliases of services 2-10 are skipped with warnings, as on GitLab.)
    r.assert_code(0)
        .assert_not("probably didn't start properly");
    assert_eq!(r.stdout.matches("hello from").count(), 10, "{}", r.stdout);
    // Every delayed service was really waited for (the job could not reach it otherwise).
    assert!(took >= Duration::from_secs(3), "took only {took:?}");
    assert!(
        took < Duration::from_secs(10),
        "took {took:?}: checks are not parallel"
    );
    assert_no_leftovers_for_job(&job);
}

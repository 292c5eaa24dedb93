//! End-to-end: `cache:` restored before the script and saved after it, from cijob's store
//! (`CIJOB_STORE_DIR`, per project, see `common::Project`), against the real Docker daemon.

mod common;

use common::*;

const PIPELINE: &str = r#"
variables:
  RUN: unset
deps:
  image: cijob-test/busybox
  cache:
    key: $CI_COMMIT_REF_SLUG
    paths: [deps/]
  script:
    - if [ -f deps/stamp ]; then echo "restored=$(cat deps/stamp)"; else echo restored=nothing; fi
    - mkdir -p deps && echo "$RUN" > deps/stamp
reader:
  image: cijob-test/busybox
  cache:
    key: $CI_COMMIT_REF_SLUG
    paths: [deps/]
    policy: pull
  script:
    - echo "reader=$(cat deps/stamp)"
    - echo "$RUN" > deps/stamp
feature:
  image: cijob-test/busybox
  cache:
    key: feature-$RUN
    fallback_keys: [$CI_COMMIT_REF_SLUG]
    paths: [deps/]
    policy: pull
  script:
    - echo "feature=$(cat deps/stamp)"
"#;

#[test]
fn the_second_run_restores_what_the_first_saved_and_pull_never_saves() {
    require_docker();
    // Its own job name: `clean JOB` and the leftovers check must not touch other tests' runs.
    let deps = unique("deps");
    let p = Project::new(&PIPELINE.replace("\ndeps:\n", &format!("\n{deps}:\n")));
    p.run(&["run", &deps, "--var", "RUN=one"])
        .assert_code(0)
        .assert_err("Restoring cache")
        .assert_err("Checking cache for main-protected...")
        .assert_err("WARNING: file does not exist")
        .assert_err("Saving cache for successful job")
        .assert_err("Creating cache main-protected...")
        .assert_err("deps/: found 2 matching artifact files and directories")
        .assert_err("Created cache")
        .assert_out("restored=nothing");
    p.run(&["run", &deps, "--var", "RUN=two"])
        .assert_code(0)
        .assert_err("Successfully extracted cache")
        .assert_out("restored=one");

    // policy: pull restores, and its own change is never saved.
    p.run(&["run", "reader", "--var", "RUN=three"])
        .assert_code(0)
        .assert_out("reader=two")
        .assert_err("Not uploading cache main-protected due to policy")
        .assert_not("Creating cache");
    p.run(&["run", &deps, "--var", "RUN=four"])
        .assert_code(0)
        .assert_out("restored=two");

    // A key with no archive yet falls back to the branch's.
    p.run(&["run", "feature", "--var", "RUN=x"])
        .assert_code(0)
        .assert_err("Checking cache for feature-x-protected...")
        .assert_err("Checking cache for main-protected...")
        .assert_out("feature=four");
    assert_no_leftovers_for_job(&deps);

    p.run(&["clean", "--cache"])
        .assert_code(0)
        .assert_err("removed the stored caches of this project");
    p.run(&["run", &deps, "--var", "RUN=five"])
        .assert_code(0)
        .assert_out("restored=nothing");
    // clean without --cache still removes containers only, and succeeds.
    p.run(&["clean", &deps]).assert_code(0);
    p.run(&["run", "reader", "--var", "RUN=six"])
        .assert_code(0)
        .assert_out("reader=five");
}

#[test]
fn cache_fallback_key_variable_and_when_on_failure() {
    require_docker();
    let p = Project::new(
        r#"
seed:
  image: cijob-test/busybox
  cache: {key: shared, unprotect: true, paths: [deps/]}
  script: ["mkdir -p deps && echo seeded > deps/stamp"]
user:
  image: cijob-test/busybox
  variables:
    CACHE_FALLBACK_KEY: shared
  cache: {key: mine, paths: [deps/], when: on_failure}
  script: ["cat deps/stamp", "exit 3"]
"#,
    );
    p.run(&["run", "seed"])
        .assert_code(0)
        .assert_err("Creating cache shared...");
    p.run(&["run", "user"])
        .assert_code(3)
        .assert_err("Checking cache for mine-protected...")
        .assert_err("Checking cache for shared...")
        .assert_out("seeded")
        .assert_err("Saving cache for failed job")
        .assert_err("Creating cache mine-protected...");
    p.run(&["run", "user"])
        .assert_code(3)
        .assert_err("Checking cache for mine-protected...\nSuccessfully extracted cache");
}

#[test]
fn a_cache_that_cannot_be_extracted_is_a_warning_and_the_job_goes_on() {
    require_docker();
    let p = Project::new(PIPELINE);
    p.run(&["run", "deps", "--var", "RUN=one"]).assert_code(0);
    let archives: Vec<_> = walk(p.store.path())
        .into_iter()
        .filter(|f| f.ends_with("cache.tar"))
        .collect();
    assert_eq!(archives.len(), 1, "{archives:?}");
    std::fs::write(&archives[0], vec![0x5a; 4096]).unwrap();
    p.run(&["run", "deps", "--var", "RUN=two"])
        .assert_code(0)
        .assert_err("WARNING: extracting cache main-protected: ")
        .assert_err("Failed to extract cache")
        .assert_out("restored=nothing");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn the_plan_saves_and_restores_the_cache_where_cijob_run_does() {
    require_docker();
    let deps = unique("deps");
    let p = Project::new(&PIPELINE.replace("\ndeps:\n", &format!("\n{deps}:\n")));
    let plan = p.run(&["plan", &deps, "--var", "RUN=by-hand"]);
    plan.assert_code(0)
        .assert_out("# Restoring cache main-protected")
        .assert_out("# Saving cache main-protected");
    let by_hand = p.bash(&plan.stdout);
    by_hand.assert_code(0).assert_out("restored=nothing");
    // What the script saved is what cijob restores, and the other way round.
    p.run(&["run", &deps, "--var", "RUN=cijob"])
        .assert_code(0)
        .assert_out("restored=by-hand");
    let again = p.bash(&plan.stdout);
    again.assert_code(0).assert_out("restored=cijob");
    assert_no_leftovers_for_job(&deps);
}

//! The project volume against the real daemon: whatever a job did to it, the next run sees
//! exactly the working tree (every file's checksum and mode, computed here on the host);
//! GIT_STRATEGY and GIT_CLEAN_FLAGS; concurrent runs; an interrupted update; `cijob clean`.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Prints `<mode> <sha256> <path>` for every file and `L <target> <path>` for every symlink
/// under the project dir, between markers.
const INVENTORY: &str = r#"echo '==inventory=='; find . ! -type d | sort | while read -r f; do if [ -L "$f" ]; then echo "L $(readlink "$f") ${f#./}"; else echo "$(stat -c %a "$f") $(sha256sum "$f" | cut -d' ' -f1) ${f#./}"; fi; done; echo '==end=='"#;

fn yaml(job: &str, script: &[&str], variables: &str) -> String {
    yaml_image(job, "cijob-test/busybox", script, variables)
}

/// `image` is the `image:` key's YAML (flow style for a mapping).
fn yaml_image(job: &str, image: &str, script: &[&str], variables: &str) -> String {
    let script: Vec<String> = script
        .iter()
        .map(|s| format!("    - {}\n", serde_json::to_string(s).unwrap()))
        .collect();
    format!(
        "\"{job}\":\n  image: {image}\n{variables}  script:\n{}",
        script.concat()
    )
}

/// A project with two jobs: `<name>-mess` does `mess` in the project dir, `<name>-check`
/// prints the inventory.
fn project(name: &str, mess: &[&str], variables: &str) -> Project {
    project_with(&format!(
        "{}{}",
        yaml(&format!("{name}-mess"), mess, variables),
        yaml(&format!("{name}-check"), &[INVENTORY], variables)
    ))
}

/// A project with these jobs and a tree with every kind of entry.
fn project_with(ci: &str) -> Project {
    let p = Project::new(ci);
    p.write("src/main.c", "int main() { return 0; }\n");
    p.write("src/lib/util.c", "/* util */\n");
    p.write("build.sh", "#!/bin/sh\necho build\n");
    chmod(&p.path().join("build.sh"), 0o755);
    p.write(".gitignore", "*.log\ntarget/\n");
    p.write("debug.log", "ignored\n");
    p.write("target/out.bin", "ignored too\n");
    std::os::unix::fs::symlink("src/main.c", p.path().join("main-link")).unwrap();
    p.git(&["add", "-A"]);
    p.git(&["commit", "-q", "-m", "tree"]);
    // Untracked but not ignored: part of the tree the job sees.
    p.write("notes.txt", "untracked\n");
    p
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// What the job must see, computed on the host: the files git lists (tracked and
/// untracked-not-ignored) and `.git`, files 0666 or 0777, symlinks with their target.
fn expected(p: &Project) -> BTreeMap<String, String> {
    let out = Command::new("git")
        .args(["ls-files", "-co", "--exclude-standard", "-z"])
        .current_dir(p.path())
        .output()
        .unwrap();
    let mut paths: Vec<String> = out
        .stdout
        .split(|&b| b == 0)
        .filter(|b| !b.is_empty())
        .map(|b| String::from_utf8(b.to_vec()).unwrap())
        .filter(|rel| p.path().join(rel).symlink_metadata().is_ok())
        .collect();
    for e in walkdir::WalkDir::new(p.path().join(".git")) {
        let e = e.unwrap();
        if !e.file_type().is_dir() {
            let rel = e.path().strip_prefix(p.path()).unwrap();
            paths.push(rel.display().to_string());
        }
    }
    paths
        .into_iter()
        .map(|rel| {
            let path = p.path().join(&rel);
            let meta = path.symlink_metadata().unwrap();
            let line = if meta.file_type().is_symlink() {
                format!("L {}", std::fs::read_link(&path).unwrap().display())
            } else {
                use std::os::unix::fs::PermissionsExt;
                let mode = if meta.permissions().mode() & 0o111 != 0 {
                    "777"
                } else {
                    "666"
                };
                let bytes = std::fs::read(&path).unwrap();
                let sum = ring::digest::digest(&ring::digest::SHA256, &bytes);
                let hex: String = sum.as_ref().iter().map(|b| format!("{b:02x}")).collect();
                format!("{mode} {hex}")
            };
            (rel, line)
        })
        .collect()
}

/// The inventory a `-check` job printed.
fn inventory(out: &str) -> BTreeMap<String, String> {
    let start = out.find("==inventory==\n").expect("inventory") + "==inventory==\n".len();
    let end = out[start..].find("==end==").expect("end") + start;
    out[start..end]
        .lines()
        .map(|l| {
            let mut parts = l.splitn(3, ' ');
            let (a, b, path) = (
                parts.next().unwrap(),
                parts.next().unwrap(),
                parts.next().unwrap(),
            );
            (path.to_string(), format!("{a} {b}"))
        })
        .collect()
}

#[track_caller]
fn assert_sees_the_tree(p: &Project, run: &Run) {
    run.assert_code(0);
    let got = inventory(&run.stdout);
    let want = expected(p);
    let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    let differ: Vec<_> = want
        .iter()
        .filter(|(k, v)| got.get(*k).is_some_and(|g| g != *v))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty() && differ.is_empty(),
        "missing {missing:?}\nextra {extra:?}\ndiffer {differ:?}\n{}",
        run.all()
    );
}

const MESS: &[&str] = &[
    "echo changed >> src/main.c",
    "rm src/lib/util.c",
    "mkdir -p out/deep && echo built > out/deep/x.o && echo new > src/new.c",
    "chmod 700 build.sh && chmod 600 notes.txt && chmod 700 src",
    "rm main-link && echo not-a-link > main-link",
    "echo leaked > debug.log",
    "rm -rf .git",
];

#[test]
fn whatever_the_job_did_the_next_run_sees_exactly_the_working_tree() {
    require_docker();
    let name = unique("tree");
    let p = project(&name, MESS, "");
    let check = format!("{name}-check");
    let first = p.run(&["run", &check]);
    assert_sees_the_tree(&p, &first);
    first.assert_err("Copying the whole project (no record of what the project volume holds)");

    p.run(&["run", &format!("{name}-mess")]).assert_code(0);
    // Between the runs: a file deleted, one changed, one created, one made executable, an
    // ignored one written.
    std::fs::remove_file(p.path().join("notes.txt")).unwrap();
    p.write("src/main.c", "int main() { return 1; }\n");
    p.write("docs/new.md", "# new\n");
    chmod(&p.path().join("src/lib/util.c"), 0o755);
    p.write("target/more.bin", "ignored\n");
    let second = p.run(&["run", &check]);
    assert_sees_the_tree(&p, &second);
    second.assert_not("Copying the whole project");
    assert!(!inventory(&second.stdout).contains_key("debug.log"));

    // Nothing changed since: nothing is sent or removed.
    let third = p.run(&["run", &check]);
    assert_sees_the_tree(&p, &third);
    let files = expected(&p).len();
    third.assert_err(&format!(
        "Updated 0 files, removed 0 ({files} unchanged) in /builds/"
    ));

    // A file only touched on the host (same content) is not sent again.
    let t = std::time::SystemTime::now() + Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(p.path().join("src/main.c"))
        .unwrap()
        .set_modified(t)
        .unwrap();
    p.run(&["run", &check])
        .assert_err(&format!("Updated 0 files, removed 0 ({files} unchanged)"));

    // --fresh copies everything.
    let fresh = p.run(&["run", &check, "--fresh"]);
    assert_sees_the_tree(&p, &fresh);
    fresh.assert_err("Copying the whole project (--fresh)");
    fresh.assert_err(&format!("Updated {files} files"));
    assert_no_leftovers_for_job(&check);
}

#[test]
fn the_update_counts_what_changed() {
    require_docker();
    let name = unique("counts");
    let p = project(&name, &["rm src/main.c", "echo out > out.txt"], "");
    p.run(&["run", &format!("{name}-mess")]).assert_code(0);
    p.run(&["run", &format!("{name}-mess")])
        .assert_code(0)
        .assert_err("Updated 1 files, removed 1 (");
    // A job that changes nothing after a run that changed two files on the host.
    p.write("src/main.c", "changed\n");
    p.write("notes.txt", "changed\n");
    let r = p.run(&["run", &format!("{name}-check")]);
    assert_sees_the_tree(&p, &r);
    r.assert_err("Updated 2 files, removed 1 (");
}

#[test]
fn git_clean_flags_none_keeps_earlier_outputs() {
    require_docker();
    let name = unique("cleannone");
    let p = project(
        &name,
        &["echo built > out.txt", "echo changed >> src/main.c"],
        "  variables:\n    GIT_CLEAN_FLAGS: none\n",
    );
    p.run(&["run", &format!("{name}-mess")]).assert_code(0);
    std::fs::remove_file(p.path().join("notes.txt")).unwrap();
    let r = p.run(&["run", &format!("{name}-check")]);
    r.assert_code(0);
    let got = inventory(&r.stdout);
    // The output stays; the sources are the working tree's; a file gone from it is gone.
    assert!(got.contains_key("out.txt"), "{}", r.all());
    assert!(!got.contains_key("notes.txt"), "{}", r.all());
    let want = expected(&p);
    assert_eq!(got.get("src/main.c"), want.get("src/main.c"));
}

#[test]
fn git_strategy_none_leaves_the_project_dir_and_clone_copies_everything() {
    require_docker();
    let name = unique("strategy");
    let ci = format!(
        "{}{}{}",
        yaml(&format!("{name}-mess"), &["echo built > out.txt"], ""),
        yaml(
            &format!("{name}-none"),
            &["cat out.txt", "cat src/main.c"],
            "  variables:\n    GIT_STRATEGY: none\n"
        ),
        yaml(
            &format!("{name}-clone"),
            &[INVENTORY],
            "  variables:\n    GIT_STRATEGY: clone\n"
        )
    );
    let p = Project::new(&ci);
    p.write("src/main.c", "v1\n");
    p.git(&["add", "-A"]);
    p.git(&["commit", "-q", "-m", "v1"]);
    p.run(&["run", &format!("{name}-mess")]).assert_code(0);
    p.write("src/main.c", "v2\n");
    // none: the volume as the last job left it (its output, the old source).
    p.run(&["run", &format!("{name}-none")])
        .assert_code(0)
        .assert_out("\nbuilt\n")
        .assert_out("\nv1\n")
        .assert_err("Skipping Git repository setup");
    let r = p.run(&["run", &format!("{name}-clone")]);
    assert_sees_the_tree(&p, &r);
    r.assert_err("Copying the whole project (GIT_STRATEGY: clone)");
    // none on a volume that never held anything: an empty project dir, and the job runs.
    let empty = Project::new(&yaml(
        &name,
        &["ls -A | wc -l", "pwd"],
        "  variables:\n    GIT_STRATEGY: none\n",
    ));
    empty
        .run(&["run", &name])
        .assert_code(0)
        .assert_out("\n0\n")
        .assert_out("\n/builds/");
}

#[test]
fn two_runs_at_once_never_share_a_volume() {
    require_docker();
    let name = unique("concurrent");
    let p = Project::new(&yaml(
        &name,
        &[
            "echo \"slot $CI_CONCURRENT_ID $CI_CONCURRENT_PROJECT_ID\"",
            "touch \"written-by-$WHO\"",
            "sleep 3",
            "ls written-by-*",
        ],
        "",
    ));
    let spawn = |who: &str| {
        p.cijob(&["run", &name, "--var", &format!("WHO={who}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let a = spawn("a");
    std::thread::sleep(Duration::from_millis(300));
    let b = spawn("b");
    let (a, b) = (
        Run::from(a.wait_with_output().unwrap()),
        Run::from(b.wait_with_output().unwrap()),
    );
    a.assert_code(0).assert_out("written-by-a\n");
    b.assert_code(0).assert_out("written-by-b\n");
    a.assert_not("written-by-b");
    b.assert_not("written-by-a");
    let slots: Vec<&str> = [&a, &b]
        .iter()
        .map(|r| {
            r.stdout
                .lines()
                .find(|l| l.starts_with("slot "))
                .unwrap_or_default()
        })
        .collect();
    assert!(
        (slots == ["slot 0 0", "slot 1 1"]) || (slots == ["slot 1 1", "slot 0 0"]),
        "{slots:?}"
    );
    assert_eq!(
        project_volumes_of(&p).len(),
        2,
        "{:?}",
        project_volumes_of(&p)
    );
    // Run alone again, it takes the first slot, and the other job's file is gone from it.
    let again = p.run(&["run", &name, "--var", "WHO=c"]);
    again
        .assert_code(0)
        .assert_out("slot 0 0\n")
        .assert_out("written-by-c\n");
    again.assert_not("written-by-a").assert_not("written-by-b");

    // `cijob clean` removes the project volumes.
    cijob()
        .args(["-C", &p.path().display().to_string(), "clean"])
        .output()
        .map(Run::from)
        .unwrap()
        .assert_code(0);
    assert!(
        project_volumes_of(&p).is_empty(),
        "{:?}",
        project_volumes_of(&p)
    );
}

#[test]
fn an_update_interrupted_by_ctrl_c_is_repaired_by_the_next_run() {
    require_docker();
    let name = unique("sigint");
    let p = project(&name, &["true"], "");
    let state = tempfile::tempdir().unwrap();
    let run_with_state = |job: &str| {
        let mut c = p.cijob(&["run", job]);
        c.env("CIJOB_STATE_DIR", state.path());
        c
    };
    // Enough data that the copy takes a while.
    let write_many = |tag: &str| {
        for d in 0..10 {
            let dir = p.path().join(format!("many/{d}"));
            std::fs::create_dir_all(&dir).unwrap();
            for f in 0..200 {
                let body = format!("{tag} {d}/{f}\n").repeat(1000);
                std::fs::write(dir.join(format!("{f}.txt")), body).unwrap();
            }
        }
    };
    write_many("v1");
    let check = format!("{name}-check");
    let first = Run::from(run_with_state(&check).output().unwrap());
    first.assert_code(0);
    let manifest = std::fs::read_dir(state.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "manifest"))
        .expect("a manifest after a complete update");

    // Every file changes; Ctrl-C as soon as the update starts changing the volume (its
    // record is removed first).
    write_many("v2");
    let mut child = run_with_state(&check)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while manifest.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the update never started"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(!manifest.exists(), "an interrupted update left a record");
    assert_no_leftovers_for_job(&check);

    let r = Run::from(run_with_state(&check).output().unwrap());
    assert_sees_the_tree(&p, &r);
    r.assert_err("Copying the whole project (no record of what the project volume holds)");
    assert!(manifest.exists());
}

#[test]
fn without_the_helper_image_the_build_image_does_its_work() {
    require_docker();
    let name = unique("nohelper");
    // An entrypoint stands between the shell and its stdin: the helper does the update.
    let image = r#"{name: cijob-test/busybox, entrypoint: ["/bin/sh", "-c", "exec \"$@\"", "sh"]}"#;
    let p = project_with(&format!(
        "{}{}",
        yaml_image(&format!("{name}-mess"), image, MESS, ""),
        yaml_image(&format!("{name}-check"), image, &[INVENTORY], "")
    ));
    let run = |job: &str| {
        Run::from(
            p.cijob(&["run", job])
                .env("CIJOB_HELPER_IMAGE", "cijob-test/no-such-helper:0")
                .output()
                .unwrap(),
        )
    };
    run(&format!("{name}-mess")).assert_code(0);
    let r = run(&format!("{name}-check"));
    assert_sees_the_tree(&p, &r);
    r.assert_err("Helper image cijob-test/no-such-helper:0 not found");
}

#[test]
fn the_jobs_shell_updates_the_volume_and_a_helper_takes_over_where_its_user_cannot() {
    require_docker();
    let name = unique("asuser");
    let user = r#"{name: cijob-test/busybox, docker: {user: "1000:1000"}}"#;
    let p = project_with(&format!(
        "{}{}{}{}",
        yaml(
            &format!("{name}-leave"),
            &["mkdir -p out/deep && echo built > out/deep/x.o"],
            ""
        ),
        yaml(&format!("{name}-hide"), &["chmod 700 src"], ""),
        yaml(&format!("{name}-check"), &[INVENTORY], ""),
        yaml_image(&format!("{name}-user"), user, &[INVENTORY], ""),
    ));
    let helper = "The job's shell could not update the project volume (";
    // As root, the job's own shell does it all: no helper.
    p.run(&["run", &format!("{name}-leave")]).assert_code(0);
    let r = p.run(&["run", &format!("{name}-check")]);
    assert_sees_the_tree(&p, &r);
    r.assert_not(helper);
    r.assert_err("Updated 0 files, removed 1 (");

    // Root's output, which user 1000 can list but not remove.
    p.run(&["run", &format!("{name}-leave")]).assert_code(0);
    let r = p.run(&["run", &format!("{name}-user")]);
    assert_sees_the_tree(&p, &r);
    r.assert_err(&format!(
        "{helper}removing what an earlier job left failed as the job's user): a helper container does it"
    ));
    // A directory user 1000 cannot even read.
    p.run(&["run", &format!("{name}-hide")]).assert_code(0);
    let r = p.run(&["run", &format!("{name}-user")]);
    assert_sees_the_tree(&p, &r);
    r.assert_err(&format!("{helper}listing it as the job's user failed)"));
    // Nothing left that user 1000 cannot handle: its own shell again.
    let r = p.run(&["run", &format!("{name}-user")]);
    assert_sees_the_tree(&p, &r);
    r.assert_not(helper);
    assert_no_leftovers_for_job(&format!("{name}-user"));
}

#[test]
fn clean_leaves_the_volume_of_a_live_run() {
    require_docker();
    let name = unique("liveclean");
    let p = Project::new(&yaml(
        &name,
        &["sleep 4", "cat .gitlab-ci.yml >/dev/null"],
        "",
    ));
    let child = p
        .cijob(&["run", &name])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let filter = format!("label=cijob.job={name}");
    while docker(&[
        "ps",
        "-q",
        "--filter",
        &filter,
        "--filter",
        "label=cijob.type=build",
    ])
    .stdout
    .trim()
    .is_empty()
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the job never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let volumes = project_volumes_of(&p);
    assert_eq!(volumes.len(), 1, "{volumes:?}");
    cijob()
        .args(["-C", &p.path().display().to_string(), "clean"])
        .output()
        .map(Run::from)
        .unwrap()
        .assert_code(0)
        .assert_not(&volumes[0]);
    assert_eq!(project_volumes_of(&p), volumes);
    Run::from(child.wait_with_output().unwrap()).assert_code(0);
}

#[test]
fn clean_removes_this_projects_volume_and_clean_all_every_projects_and_the_store() {
    require_docker();
    let name = unique("cleanall");
    let ci = format!(
        "\"{name}\":\n  image: cijob-test/busybox\n  script: [\"mkdir -p out && echo x > out/x\"]\n  artifacts:\n    paths: [out/]\n  cache:\n    key: k\n    paths: [out/]\n"
    );
    let (a, b) = (Project::new(&ci), Project::new(&ci));
    a.run(&["run", &name]).assert_code(0);
    b.run(&["run", &name]).assert_code(0);
    let (va, vb) = (project_volumes_of(&a), project_volumes_of(&b));
    assert_eq!((va.len(), vb.len()), (1, 1), "{va:?} {vb:?}");

    // Plain clean: this project's volume, counted as shared; the other's stays, the store too.
    a.run(&["clean"])
        .assert_code(0)
        .assert_err(&format!("removed volume {}", va[0]))
        .assert_err("of them shared volume(s) no run was using")
        .assert_not(&vb[0]);
    assert!(project_volumes_of(&a).is_empty());
    assert_eq!(project_volumes_of(&b), vb);
    a.run(&["artifacts", &name]).assert_code(0);

    // --all: every project's volume, and this project's stored artifacts and caches.
    a.run(&["clean", "--all"])
        .assert_code(0)
        .assert_err(&format!("removed volume {}", vb[0]))
        .assert_err("cijob clean: removed the stored artifacts of this project")
        .assert_err("cijob clean: removed the stored caches of this project");
    assert!(project_volumes_of(&b).is_empty());
    assert_ne!(a.run(&["artifacts", &name]).code, Some(0));
    b.run(&["artifacts", &name]).assert_code(0);
}

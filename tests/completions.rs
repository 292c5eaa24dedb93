//! Shell completions: the committed scripts are current, and the real binary answers each
//! shell's callback protocol (as clap_complete 4.6's scripts drive it) with the jobs of the
//! `.gitlab-ci.yml` the command line would load.

mod common;

use std::path::Path;
use std::process::Command;

use cijob::cli::complete::Shell;
use clap::ValueEnum;
use common::*;

const PIPELINE: &str = r#"
stages: [build, test, deploy]
.hidden:
  script: [x]
build:
  stage: build
  parallel: 3
  script: [make]
test:
  stage: test
  parallel:
    matrix:
      - RUBY: ["2.2", "3.0"]
  script: [rake]
lint:
  stage: test
  script: [lint]
deploy:
  stage: deploy
  parallel:
    matrix:
      - PROVIDER: aws
        STACK: [monitoring, app]
  script: [deploy]
"#;

/// The binary as a shell's completion script calls it: `CIJOB_COMPLETE=<shell> cijob -- WORDS`,
/// from `cwd`, Docker pointed nowhere (completion must not need it).
fn callback(shell: &str, cwd: &Path, words: &[&str], env: &[(&str, &str)]) -> Run {
    let mut c = Command::new(bin());
    c.env("CIJOB_COMPLETE", shell)
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .current_dir(cwd)
        .arg("--")
        .args(words);
    for (k, v) in env {
        c.env(k, v);
    }
    let r = Run::from(c.output().expect("spawn cijob"));
    assert_eq!(r.code, Some(0), "{shell} {words:?}: {}", r.stderr);
    assert_eq!(
        r.stderr, "",
        "{shell} {words:?}: completion must print no error"
    );
    r
}

/// fish: `-- (commandline -opc) (commandline -ct)`, so the last word is the current token as
/// typed; replies are `value<TAB>help` lines.
fn fish(cwd: &Path, words: &[&str]) -> Vec<(String, String)> {
    callback("fish", cwd, words, &[])
        .stdout
        .lines()
        .map(|l| {
            let (v, h) = l.split_once('\t').unwrap_or((l, ""));
            (v.to_string(), h.to_string())
        })
        .collect()
}

/// Only the job candidates (flags are offered too when the word is empty).
fn jobs(c: Vec<(String, String)>) -> Vec<(String, String)> {
    c.into_iter().filter(|(v, _)| !v.starts_with('-')).collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// zsh: `_CLAP_COMPLETE_INDEX=$((CURRENT-1))`, `_CLAP_IFS=\n`, all of `$words`; replies are
/// `value:help` with `:` and `\` in the value escaped for `_describe`.
fn zsh(cwd: &Path, words: &[&str]) -> Vec<String> {
    let index = (words.len() - 1).to_string();
    let r = callback(
        "zsh",
        cwd,
        words,
        &[("_CLAP_COMPLETE_INDEX", &index), ("_CLAP_IFS", "\n")],
    );
    r.stdout.lines().map(str::to_string).collect()
}

/// bash: `_CLAP_COMPLETE_INDEX=$COMP_CWORD`, `_CLAP_IFS=$'\v'`, all of `COMP_WORDS` with the
/// current one replaced by `$2` (readline's word, after any opened quote or last `:`), plus
/// cijob's `CIJOB_COMPLETE_RAW_WORD` (`COMP_WORDS[COMP_CWORD]`) and `CIJOB_COMPLETE_LINE`
/// (the line up to the cursor; here the words joined by spaces unless given).
fn bash(cwd: &Path, words: &[&str], typed: &str) -> Vec<String> {
    bash_line(cwd, words, typed, &words.join(" "))
}

fn bash_line(cwd: &Path, words: &[&str], typed: &str, line: &str) -> Vec<String> {
    let index = (words.len() - 1).to_string();
    let r = callback(
        "bash",
        cwd,
        words,
        &[
            ("_CLAP_COMPLETE_INDEX", &index),
            ("_CLAP_IFS", "\u{b}"),
            ("_CLAP_COMPLETE_COMP_TYPE", "9"),
            ("_CLAP_COMPLETE_SPACE", "false"),
            ("CIJOB_COMPLETE_RAW_WORD", typed),
            ("CIJOB_COMPLETE_LINE", line),
        ],
    );
    if r.stdout.is_empty() {
        return Vec::new();
    }
    r.stdout.split('\u{b}').map(str::to_string).collect()
}

#[test]
fn committed_scripts_are_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("completions");
    let update = std::env::var_os("CIJOB_UPDATE_COMPLETIONS").is_some_and(|v| v == "1");
    for shell in Shell::value_variants() {
        let file = shell.file_name();
        let name = shell.to_possible_value().unwrap().get_name().to_string();
        let r = Run::from(cijob().args(["completions", &name]).output().unwrap());
        r.assert_code(0);
        assert!(r.stdout.contains("CIJOB_COMPLETE"), "{name}: {}", r.stdout);
        let path = dir.join(file);
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &r.stdout).unwrap();
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == r.stdout,
            "completions/{file} is stale; regenerate with `CIJOB_UPDATE_COMPLETIONS=1 cargo test --test completions`"
        );
    }
}

/// `CIJOB_COMPLETE=<shell> cijob` (what clap_complete documents) prints the same script as
/// `cijob completions <shell>` when cijob is called by name, as the scripts themselves do.
#[test]
fn env_registration_matches_the_subcommand() {
    let path = format!(
        "{}:{}",
        bin().parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for shell in ["bash", "zsh", "fish", "/bin/bash"] {
        let out = Command::new("cijob")
            .env("PATH", &path)
            .env("CIJOB_COMPLETE", shell)
            .output()
            .unwrap();
        let name = shell.trim_start_matches("/bin/");
        let expected = cijob().args(["completions", name]).output().unwrap();
        assert!(out.status.success());
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&expected.stdout),
            "{shell}"
        );
    }
}

#[test]
fn fish_lists_every_job_with_its_stage() {
    let p = Project::new(PIPELINE);
    let all = jobs(fish(p.path(), &["cijob", "run", ""]));
    assert_eq!(
        all,
        pairs(&[
            ("build 1/3", "build"),
            ("build 2/3", "build"),
            ("build 3/3", "build"),
            ("test: [2.2]", "test"),
            ("test: [3.0]", "test"),
            ("lint", "test"),
            ("deploy: [aws, monitoring]", "deploy"),
            ("deploy: [aws, app]", "deploy"),
        ])
    );
    // The same completer serves every job argument.
    assert_eq!(jobs(fish(p.path(), &["cijob", "show", ""])), all);
    assert_eq!(jobs(fish(p.path(), &["cijob", "plan", ""])), all);
}

#[test]
fn fish_filters_by_prefix_including_escaped_tokens() {
    let p = Project::new(PIPELINE);
    assert_eq!(
        fish(p.path(), &["cijob", "run", "te"]),
        pairs(&[("test: [2.2]", "test"), ("test: [3.0]", "test")])
    );
    // `commandline -ct` is the raw token: fish escapes what it inserted.
    assert_eq!(
        fish(p.path(), &["cijob", "show", r"deploy:\ \[aws,\ m"]),
        pairs(&[("deploy: [aws, monitoring]", "deploy")])
    );
    assert_eq!(
        fish(p.path(), &["cijob", "plan", "'build 2"]),
        pairs(&[("build 2/3", "build")])
    );
    // Options before the job are skipped over.
    assert_eq!(
        fish(p.path(), &["cijob", "run", "--keep", "--var", "A=1", "l"]),
        pairs(&[("lint", "test")])
    );
    assert!(fish(p.path(), &["cijob", "run", "nope"]).is_empty());
}

#[test]
fn zsh_escapes_colons_and_shows_the_stage() {
    let p = Project::new(PIPELINE);
    let all: Vec<String> = zsh(p.path(), &["cijob", "run", ""])
        .into_iter()
        .filter(|l| !l.starts_with('-'))
        .collect();
    assert_eq!(
        all,
        [
            "build 1/3:build",
            "build 2/3:build",
            "build 3/3:build",
            r"test\: [2.2]:test",
            r"test\: [3.0]:test",
            "lint:test",
            r"deploy\: [aws, monitoring]:deploy",
            r"deploy\: [aws, app]:deploy",
        ]
    );
    // `$words` keeps the user's quoting.
    assert_eq!(
        zsh(p.path(), &["cijob", "run", r"test\:\ \[3"]),
        [r"test\: [3.0]:test"]
    );
    assert_eq!(
        zsh(p.path(), &["cijob", "show", "'build 3"]),
        ["build 3/3:build"]
    );
}

#[test]
fn bash_replies_are_shell_words_unless_a_quote_is_open() {
    let p = Project::new(PIPELINE);
    // readline inserts replies verbatim: they must be escaped words.
    assert_eq!(
        bash(p.path(), &["cijob", "run", "te"], "te"),
        [r"test\:\ \[2.2\]", r"test\:\ \[3.0\]"]
    );
    assert_eq!(
        bash(
            p.path(),
            &["cijob", "run", r"deploy\:\ \[aws,\ m"],
            r"deploy\:\ \[aws,\ m"
        ),
        [r"deploy\:\ \[aws,\ monitoring\]"]
    );
    assert_eq!(
        bash(p.path(), &["cijob", "plan", "bu"], "bu"),
        [r"build\ 1/3", r"build\ 2/3", r"build\ 3/3"]
    );
    // After an opened quote bash passes the text after it and closes the quote itself.
    assert_eq!(
        bash(p.path(), &["cijob", "run", "te"], "'te"),
        ["test: [2.2]", "test: [3.0]"]
    );
    assert_eq!(
        bash(
            p.path(),
            &["cijob", "show", "deploy: [aws, a"],
            "\"deploy: [aws, a"
        ),
        ["deploy: [aws, app]"]
    );
}

#[test]
fn bash_completes_after_a_typed_colon() {
    let p = Project::new(PIPELINE);
    // `cijob run test:<TAB>`: COMP_WORDS=(cijob run test :), COMP_CWORD=3, $2 is empty, and
    // readline keeps `test:`, so the replies are what follows it.
    assert_eq!(
        bash_line(
            p.path(),
            &["cijob", "run", "test", ""],
            ":",
            "cijob run test:"
        ),
        [r"\ \[2.2\]", r"\ \[3.0\]"]
    );
    // `cijob show deploy:\ \[aws,\ a<TAB>`: COMP_WORDS=(... deploy : '\ \[aws,\ a').
    assert_eq!(
        bash_line(
            p.path(),
            &["cijob", "-C", ".", "show", "deploy", ":", r"\ \[aws,\ a"],
            r"\ \[aws,\ a",
            r"cijob -C . show deploy:\ \[aws,\ a"
        ),
        [r"\ \[aws,\ app\]"]
    );
    assert!(bash_line(
        p.path(),
        &["cijob", "run", "lint", ""],
        ":",
        "cijob run lint:"
    )
    .is_empty());
}

#[test]
fn directory_and_file_options_choose_the_pipeline() {
    let p = Project::new(PIPELINE);
    let other = Project::new("other-job:\n  stage: build\n  script: [x]\n");
    p.write("ci/alt.yml", "alt job:\n  stage: test\n  script: [x]\n");
    let dir = p.path().to_str().unwrap();
    // Given before the subcommand (the usual place), from another project's directory.
    assert_eq!(
        fish(other.path(), &["cijob", "-C", dir, "run", "l"]),
        pairs(&[("lint", "test")])
    );
    assert_eq!(
        fish(other.path(), &["cijob", "--directory", dir, "show", "li"]),
        pairs(&[("lint", "test")])
    );
    // After the subcommand too (the options are global).
    assert_eq!(
        fish(other.path(), &["cijob", "plan", "-C", dir, "li"]),
        pairs(&[("lint", "test")])
    );
    // -f relative to -C, and -f alone.
    assert_eq!(
        jobs(fish(
            other.path(),
            &["cijob", "-C", dir, "-f", "ci/alt.yml", "run", ""]
        )),
        pairs(&[("alt job", "test")])
    );
    let alt = p.path().join("ci/alt.yml");
    assert_eq!(
        jobs(fish(
            other.path(),
            &["cijob", "--file", alt.to_str().unwrap(), "run", ""]
        )),
        pairs(&[("alt job", "test")])
    );
    assert_eq!(
        jobs(fish(other.path(), &["cijob", "run", ""])),
        pairs(&[("other-job", "build")])
    );
    // Typed with quoting: the shells pass the words as typed.
    let spaced = p.path().join("my dir");
    p.write("my dir/.gitlab-ci.yml", "spaced:\n  script: [x]\n");
    let escaped = spaced.to_str().unwrap().replace(' ', r"\ ");
    assert_eq!(
        bash(other.path(), &["cijob", "-C", &escaped, "run", "sp"], "sp"),
        ["spaced"]
    );
    assert_eq!(
        zsh(other.path(), &["cijob", "-C", &escaped, "run", "sp"]),
        ["spaced:test"]
    );
}

#[test]
fn broken_or_missing_pipeline_completes_nothing_silently() {
    let p = Project::new("test:\n  script: [x]\n  bad: [unclosed\n");
    // `callback` asserts exit 0 and empty stderr.
    assert!(jobs(fish(p.path(), &["cijob", "run", ""])).is_empty());
    assert!(bash(p.path(), &["cijob", "run", "te"], "te").is_empty());
    assert!(zsh(p.path(), &["cijob", "show", "te"]).is_empty());
    let empty = tempfile::tempdir().unwrap();
    assert!(fish(empty.path(), &["cijob", "run", "te"]).is_empty());
    assert!(fish(p.path(), &["cijob", "-C", "/nonexistent", "run", "te"]).is_empty());
    assert!(fish(p.path(), &["cijob", "-f", "missing.yml", "run", "te"]).is_empty());
}

/// The committed bash script, sourced in a real non-interactive bash, with `cijob` found on
/// `PATH` as it is for users: COMPREPLY holds words that bash parses back into the job names.
#[test]
fn bash_script_end_to_end() {
    let p = Project::new(PIPELINE);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("completions/cijob.bash");
    let bin_dir = bin().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // $1: COMP_WORDS as bash splits the line (eval'd, so single-quote words kept as typed),
    // $2: readline's current word (the function's $2), $3: the line, $4: the part of the
    // typed word that readline keeps (before a `:`).
    let driver = r#"
source "$SCRIPT" || exit 9
complete -p cijob >/dev/null || exit 8
eval "COMP_WORDS=($1)"
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_TYPE=9
COMP_LINE=$3
COMP_POINT=${#COMP_LINE}
_clap_complete_cijob cijob "$2" "${COMP_WORDS[COMP_CWORD-1]}"
for r in "${COMPREPLY[@]}"; do
    eval "parsed=( $4$r )"
    printf '%s => %s|%s\n' "$r" "${#parsed[@]}" "${parsed[0]}"
done
"#;
    let run_kept = |words: &str, cur: &str, line: &str, kept: &str| -> Vec<String> {
        let out = Command::new("bash")
            .args([
                "--norc",
                "--noprofile",
                "-c",
                driver,
                "driver",
                words,
                cur,
                line,
                kept,
            ])
            .env("SCRIPT", &script)
            .env("PATH", &path)
            .current_dir(p.path())
            .output()
            .expect("bash is needed for this test");
        assert!(
            out.status.success(),
            "{words}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stderr), "");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    };
    let run = |words: &str, cur: &str, line: &str| run_kept(words, cur, line, "");
    // Each reply is one word that evaluates to exactly the job's name.
    assert_eq!(
        run("cijob run te", "te", "cijob run te"),
        [
            r"test\:\ \[2.2\] => 1|test: [2.2]",
            r"test\:\ \[3.0\] => 1|test: [3.0]",
        ]
    );
    assert_eq!(
        run(
            r"cijob -C . show 'test\:\ \[2'",
            r"test\:\ \[2",
            r"cijob -C . show test\:\ \[2"
        ),
        [r"test\:\ \[2.2\] => 1|test: [2.2]"]
    );
    assert_eq!(
        run(
            r"cijob plan 'build\ 3'",
            r"build\ 3",
            r"cijob plan build\ 3"
        ),
        [r"build\ 3/3 => 1|build 3/3"]
    );
    // `cijob run 'te<TAB>`: COMP_WORDS has `'te`, $2 is `te`; bash adds the closing quote.
    let replies = run(r#"cijob run "'te""#, "te", "cijob run 'te");
    assert_eq!(replies.len(), 2, "{replies:?}");
    assert!(replies[0].starts_with("test: [2.2] => "), "{replies:?}");
    assert!(replies[1].starts_with("test: [3.0] => "), "{replies:?}");
    // `cijob run test:<TAB>`: bash split the word at `:` and keeps `test:`.
    assert_eq!(
        run_kept("cijob run test :", "", "cijob run test:", "test:"),
        [r"\ \[2.2\] => 1|test: [2.2]", r"\ \[3.0\] => 1|test: [3.0]",]
    );
}

//! The project volume, as the runner keeps `/builds`: one volume per project and concurrency
//! slot that outlives runs, updated from the working tree as `GIT_STRATEGY` and
//! `GIT_CLEAN_FLAGS` say, through a helper container that lists the volume and removes what
//! must go (the build image may have no tools at all).

use crate::error::Error;
use crate::expand::lookup;
use crate::model::Variable;
use crate::plan::labels::{typed, LABEL_MANAGED, LABEL_PROJECT, LABEL_TYPE, TYPE_PROJECT};
use crate::plan::spec::{Attach, ContainerSpec, Labels, VolumeSpec};
use crate::plan::{script, BUILDS_DIR};
use crate::project::git::GitInfo;
use crate::project::name_rules::{safe_name, slugify};

/// Built by `fixtures/images/build.sh` (busybox); `CIJOB_HELPER_IMAGE` names another one.
/// When it is missing the build image plays its part (it needs `sh`, `find`, `stat`, `xargs`).
pub const HELPER_IMAGE: &str = "cijob/helper:1";
pub const TYPE_SOURCES: &str = "sources";
/// The runner's default `GIT_CLEAN_FLAGS`.
pub const DEFAULT_CLEAN_FLAGS: &str = "-ffdx";
/// Concurrent runs of one project beyond this many wait for nothing: they fail clearly.
pub const MAX_SLOTS: u32 = 64;

/// `GIT_STRATEGY` as the runner reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// The default: the volume is brought up to date incrementally.
    Fetch,
    /// A fresh full copy each time.
    Clone,
    /// The project dir emptied, nothing copied.
    Empty,
    /// The project dir left as it is.
    None,
}

/// `GIT_CLEAN_FLAGS`: what happens to files that are not part of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clean {
    /// `none`: earlier outputs stay (only files cijob copied before and that left the tree go).
    Keep,
    /// Anything else (the flags as given): every file not in the tree goes, like `git clean -ffdx`.
    Remove(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct SourcesPlan {
    pub strategy: Strategy,
    pub clean: Clean,
    /// `--fresh`: a full copy even when the volume could be updated.
    pub fresh: bool,
    /// `CI_CONCURRENT_ID`: which of the project's volumes this run holds.
    pub slot: u32,
    pub volume: String,
    /// Lists the project dir, then removes the paths it reads on stdin.
    pub helper: ContainerSpec,
}

pub fn strategy(variables: &[Variable]) -> Result<Strategy, Error> {
    match lookup(variables, "GIT_STRATEGY").map(str::trim) {
        None | Some("" | "fetch") => Ok(Strategy::Fetch),
        Some("clone") => Ok(Strategy::Clone),
        Some("empty") => Ok(Strategy::Empty),
        Some("none") => Ok(Strategy::None),
        Some(other) => Err(Error::Usage(format!(
            "GIT_STRATEGY {other:?} is not a strategy: use fetch (the default), clone, empty or none"
        ))),
    }
}

pub fn clean(variables: &[Variable]) -> Clean {
    match lookup(variables, "GIT_CLEAN_FLAGS").map(str::trim) {
        Some("none") => Clean::Keep,
        None | Some("") => Clean::Remove(DEFAULT_CLEAN_FLAGS.to_string()),
        Some(flags) => Clean::Remove(flags.to_string()),
    }
}

/// `cijob-<project>-<hash of its path>-concurrent-<slot>`: two clones of one project never
/// share a volume, nor do two runs at once (each holds its own slot).
pub fn volume_name(git: &GitInfo, project_root: &str, slot: u32) -> String {
    format!("{}{slot}", volume_prefix(git, project_root))
}

/// What the names of one clone's project volumes start with.
pub fn volume_prefix(git: &GitInfo, project_root: &str) -> String {
    let slug = slugify(&format!("{}/{}", git.namespace, git.project));
    format!(
        "cijob-{}-{}-concurrent-",
        safe_name(&slug),
        &crate::cli::runner_config::stable_hash(project_root)[..8]
    )
}

/// Shared objects carry no run or pid: `cijob clean` removes them, the dead-run warning does
/// not count them.
pub fn volume(name: &str, project_slug: &str) -> VolumeSpec {
    VolumeSpec {
        name: name.to_string(),
        labels: vec![
            (LABEL_MANAGED.to_string(), "true".to_string()),
            (LABEL_TYPE.to_string(), TYPE_PROJECT.to_string()),
            (LABEL_PROJECT.to_string(), project_slug.to_string()),
        ],
        shared: true,
    }
}

/// The helper: the project volume only, no network, its output through the attach stream.
pub fn helper(
    prefix: &str,
    image: &str,
    volume: &str,
    run_labels: &Labels,
    project_dir: &str,
    marker: &str,
) -> ContainerSpec {
    ContainerSpec {
        name: format!("{prefix}-sources"),
        image: image.to_string(),
        entrypoint: Some(vec![]),
        cmd: Some(vec![
            "sh".to_string(),
            "-c".to_string(),
            helper_script(project_dir, marker),
        ]),
        labels: typed(run_labels, TYPE_SOURCES),
        binds: vec![format!("{volume}:{BUILDS_DIR}")],
        attach: Attach::Mode("none".to_string()),
        stdin: true,
        no_log: true,
        ..Default::default()
    }
}

/// One line per entry of the project dir: `<mode hex> <size> <mtime> ./<path>`.
const LIST: &str = "find . -exec stat -c '%f %s %Y %n' {} +";

/// The runner's temporary dir made anew, empty and world-writable (what an earlier job's
/// file variables left goes; the runner's helper makes it with `umask 0000`: a job's user
/// need not be root), and the project dir made if missing; both paths already quoted.
pub fn fresh_dirs(dir: &str, tmp: &str) -> String {
    format!("rm -rf {tmp} && mkdir -p {dir} {tmp} && chmod 0777 {tmp}")
}

/// `fresh_dirs` and a `cd` into the project dir.
fn enter_project(project_dir: &str) -> String {
    let dir = posix_quote(project_dir);
    let tmp = posix_quote(&script::temp_project_dir(project_dir));
    format!("{} && cd {dir}", fresh_dirs(&dir, &tmp))
}

/// `LIST`, the marker with find's status, then `rm -rf` of the NUL-separated paths cijob
/// writes on stdin (relative to the project dir), after their length in bytes on a line: the
/// end of stdin does not reach the helper through every engine connection (ssh), a length
/// does.
pub fn helper_script(project_dir: &str, marker: &str) -> String {
    format!(
        "{} || exit 1\n{LIST}\necho \"{marker} $?\"\nread -r n && head -c \"$n\" | xargs -0 rm -rf --\n",
        enter_project(project_dir)
    )
}

/// Single quotes, which every `sh` reads (the fallback helper may be dash).
fn posix_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The marker the helper and the build container's shell end their answers with, followed
/// by a status: the run's own, so that no file a job named can end a listing early.
pub fn marker(run_id: &str) -> String {
    format!("--cijob-listed-{run_id}--")
}

/// For the build container's shell, waiting for the script: the helper's listing, in a
/// subshell (the script's shell keeps its directory), errors dropped (the status says).
/// When the job's user cannot make the dirs anew (an earlier job's files in them), the
/// listing fails.
pub fn listing_command(project_dir: &str, marker: &str) -> String {
    format!(
        "({} && {LIST}) 2>/dev/null; echo \"{marker} $?\"\n",
        enter_project(project_dir)
    )
}

/// For the same shell: `rm -rf` of `paths` (relative to the project dir), as arguments (the
/// shell's stdin is the script's), in commands of bounded length.
pub fn removal_command(project_dir: &str, paths: &[String], marker: &str) -> String {
    const ARGS_LIMIT: usize = 64 * 1024;
    let mut rms: Vec<String> = Vec::new();
    for p in paths {
        let q = posix_quote(p);
        match rms.last_mut() {
            Some(rm) if rm.len() + q.len() < ARGS_LIMIT => {
                rm.push(' ');
                rm.push_str(&q);
            }
            _ => rms.push(format!("rm -rf -- {q}")),
        }
    }
    format!(
        "(cd {dir} && {rms}) 2>/dev/null; echo \"{marker} $?\"\n",
        dir = posix_quote(project_dir),
        rms = if rms.is_empty() {
            ":".to_string()
        } else {
            rms.join(" && ")
        }
    )
}

/// What the job's variables and the flags decide.
pub fn plan_sources(
    variables: &[Variable],
    fresh: bool,
    slot: u32,
    volume: &str,
    helper: ContainerSpec,
) -> Result<SourcesPlan, Error> {
    Ok(SourcesPlan {
        strategy: strategy(variables)?,
        clean: clean(variables),
        fresh,
        slot,
        volume: volume.to_string(),
        helper,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<Variable> {
        pairs.iter().map(|(k, v)| Variable::new(*k, *v)).collect()
    }

    #[test]
    fn strategy_as_the_runner_reads_it() {
        assert_eq!(strategy(&vars(&[])).unwrap(), Strategy::Fetch);
        assert_eq!(
            strategy(&vars(&[("GIT_STRATEGY", "clone")])).unwrap(),
            Strategy::Clone
        );
        assert_eq!(
            strategy(&vars(&[("GIT_STRATEGY", "none")])).unwrap(),
            Strategy::None
        );
        assert_eq!(
            strategy(&vars(&[("GIT_STRATEGY", "empty")])).unwrap(),
            Strategy::Empty
        );
        // The last definition wins, as everywhere.
        assert_eq!(
            strategy(&vars(&[("GIT_STRATEGY", "none"), ("GIT_STRATEGY", "")])).unwrap(),
            Strategy::Fetch
        );
        let err = strategy(&vars(&[("GIT_STRATEGY", "rsync")])).unwrap_err();
        assert!(err.to_string().contains("\"rsync\""), "{err}");
    }

    #[test]
    fn clean_flags() {
        assert_eq!(clean(&vars(&[])), Clean::Remove("-ffdx".into()));
        assert_eq!(clean(&vars(&[("GIT_CLEAN_FLAGS", "none")])), Clean::Keep);
        assert_eq!(
            clean(&vars(&[("GIT_CLEAN_FLAGS", "-ffd")])),
            Clean::Remove("-ffd".into())
        );
    }

    #[test]
    fn volume_per_project_path_and_slot() {
        let git = GitInfo {
            namespace: "Group".into(),
            project: "My.Proj".into(),
            ..GitInfo::default()
        };
        let a = volume_name(&git, "/home/me/proj", 0);
        assert!(a.starts_with("cijob-group-my-proj-"), "{a}");
        assert!(a.ends_with("-concurrent-0"), "{a}");
        assert_ne!(a, volume_name(&git, "/home/me/proj", 1));
        assert_ne!(a, volume_name(&git, "/home/me/other-clone", 0));
        let v = volume(&a, "group-my-proj");
        assert!(v.shared);
        assert!(v
            .labels
            .iter()
            .all(|(k, _)| k != "cijob.pid" && k != "cijob.run"));
    }

    #[test]
    fn helper_lists_then_removes_in_the_project_dir() {
        let h = helper("cijob-t-1", "img", "vol", &vec![], "/builds/g/it's", "M-1");
        assert_eq!(h.binds, vec!["vol:/builds".to_string()]);
        assert_eq!(h.attach, Attach::Mode("none".into()));
        let script = &h.cmd.as_ref().unwrap()[2];
        assert!(
            script.starts_with(
                "rm -rf '/builds/g/it'\\''s.tmp' && mkdir -p '/builds/g/it'\\''s' '/builds/g/it'\\''s.tmp' && chmod 0777 "
            ),
            "{script}"
        );
        assert!(
            script.contains("echo \"M-1 $?\"")
                && script.contains("head -c \"$n\" | xargs -0 rm -rf")
        );
    }

    fn sh(script: &str, dir: &std::path::Path) -> String {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(dir)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn the_build_shell_lists_and_removes_with_the_runs_marker() {
        let tmp = tempfile::tempdir().unwrap();
        let project = tmp.path().join("g/it's");
        let marker = marker("r1");
        // The project dir is made when missing, and listed.
        let out = sh(
            &listing_command(project.to_str().unwrap(), &marker),
            tmp.path(),
        );
        assert!(out.starts_with("41") && out.contains(" .\n"), "{out}");
        assert!(out.ends_with(&format!("{marker} 0\n")), "{out}");
        std::fs::write(project.join("a b"), "x").unwrap();
        std::fs::create_dir(project.join("d")).unwrap();
        std::fs::write(project.join("d/f"), "x").unwrap();
        std::fs::write(project.join("keep"), "x").unwrap();
        let out = sh(
            &listing_command(project.to_str().unwrap(), &marker),
            tmp.path(),
        );
        assert!(
            out.contains(" ./a b\n") && out.contains(" ./d/f\n"),
            "{out}"
        );
        let rm = removal_command(
            project.to_str().unwrap(),
            &["a b".into(), "d".into()],
            &marker,
        );
        assert_eq!(sh(&rm, tmp.path()), format!("{marker} 0\n"));
        let mut left: Vec<_> = std::fs::read_dir(&project)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, vec!["keep"]);
        // Nothing to remove is a command that succeeds.
        assert_eq!(
            sh(
                &removal_command(project.to_str().unwrap(), &[], &marker),
                tmp.path()
            ),
            format!("{marker} 0\n")
        );
        // A failure shows in the status.
        let out = sh(
            &listing_command("/proc/1/nonexistent/x", &marker),
            tmp.path(),
        );
        assert_ne!(out, format!("{marker} 0\n"));
    }

    #[test]
    fn long_removals_are_split_into_bounded_commands() {
        let paths: Vec<String> = (0..20_000).map(|i| format!("some/long/path/{i}")).collect();
        let rm = removal_command("/builds/p", &paths, "M");
        assert!(rm.matches("rm -rf -- ").count() > 1);
        assert!(rm.split(" && ").all(|c| c.len() < 70 * 1024));
        assert_eq!(rm.matches("'some/long/path/").count(), 20_000);
    }
}

//! The project volume, as the runner keeps `/builds`: one volume per project and concurrency
//! slot that outlives runs, updated from the working tree as `GIT_STRATEGY` and
//! `GIT_CLEAN_FLAGS` say, through a helper container that lists the volume and removes what
//! must go (the build image may have no tools at all).

use crate::error::Error;
use crate::expand::lookup;
use crate::model::Variable;
use crate::plan::labels::{typed, LABEL_MANAGED, LABEL_PROJECT, LABEL_TYPE, TYPE_PROJECT};
use crate::plan::spec::{Attach, ContainerSpec, Labels, VolumeSpec};
use crate::plan::BUILDS_DIR;
use crate::project::git::GitInfo;
use crate::project::name_rules::{safe_name, slugify};

/// Built by `fixtures/images/build.sh` (busybox); `CIJOB_HELPER_IMAGE` names another one.
/// When it is missing the build image plays its part (it needs `sh`, `find`, `stat`, `xargs`).
pub const HELPER_IMAGE: &str = "cijob/helper:1";
/// Ends the helper's listing, followed by `find`'s exit status.
pub const LISTED_MARKER: &str = "--cijob-listed--";
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
    let slug = slugify(&format!("{}/{}", git.namespace, git.project));
    format!(
        "cijob-{}-{}-concurrent-{slot}",
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
) -> ContainerSpec {
    ContainerSpec {
        name: format!("{prefix}-sources"),
        image: image.to_string(),
        entrypoint: Some(vec![]),
        cmd: Some(vec![
            "sh".to_string(),
            "-c".to_string(),
            helper_script(project_dir),
        ]),
        labels: typed(run_labels, TYPE_SOURCES),
        binds: vec![format!("{volume}:{BUILDS_DIR}")],
        attach: Attach::Mode("none".to_string()),
        stdin: true,
        no_log: true,
        ..Default::default()
    }
}

/// One line per entry (`<mode hex> <size> <mtime> ./<path>`), the marker with find's status,
/// then `rm -rf` of the NUL-separated paths cijob writes on stdin (relative to the project
/// dir), after their length in bytes on a line: the end of stdin does not reach the helper
/// through every engine connection (ssh), a length does.
pub fn helper_script(project_dir: &str) -> String {
    format!(
        "mkdir -p {dir} && cd {dir} || exit 1\nfind . -exec stat -c '%f %s %Y %n' {{}} +\necho \"{LISTED_MARKER} $?\"\nread -r n && head -c \"$n\" | xargs -0 rm -rf --\n",
        dir = posix_quote(project_dir)
    )
}

/// Single quotes, which every `sh` reads (the fallback helper may be dash).
fn posix_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
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
        let h = helper("cijob-t-1", "img", "vol", &vec![], "/builds/g/it's");
        assert_eq!(h.binds, vec!["vol:/builds".to_string()]);
        assert_eq!(h.attach, Attach::Mode("none".into()));
        let script = &h.cmd.as_ref().unwrap()[2];
        assert!(
            script.starts_with("mkdir -p '/builds/g/it'\\''s'"),
            "{script}"
        );
        assert!(
            script.contains(LISTED_MARKER) && script.contains("head -c \"$n\" | xargs -0 rm -rf")
        );
    }
}

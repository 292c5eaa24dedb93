//! What earlier runs left on the daemon, told apart by their labels: in use by a live run,
//! kept on purpose (`--keep`), shared between runs (config.toml cache volumes), or left by a
//! cijob process that died before it could clean up. Pure: whether a pid is alive is asked.

use std::collections::{BTreeSet, HashMap};

use crate::plan::labels::{LABEL_JOB, LABEL_KEEP, LABEL_MANAGED, LABEL_PID, LABEL_RUN};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// Not made by cijob (whatever else its labels say): never touched.
    Foreign,
    /// A cijob process that is still running uses it: never touched.
    Live,
    Kept,
    /// No owning process (config.toml cache volumes outlive runs by design).
    Shared,
    /// Its cijob process is gone without cleaning up (killed, or the machine went down).
    Dead,
}

pub fn owner(labels: &HashMap<String, String>, alive: impl Fn(i32) -> bool) -> Owner {
    if labels.get(LABEL_MANAGED).map(String::as_str) != Some("true") {
        return Owner::Foreign;
    }
    if labels.get(LABEL_KEEP).map(String::as_str) == Some("true") {
        return Owner::Kept;
    }
    match labels.get(LABEL_PID).map(|p| p.parse::<i32>()) {
        None => Owner::Shared,
        Some(Ok(pid)) if alive(pid) => Owner::Live,
        Some(_) => Owner::Dead,
    }
}

impl Owner {
    /// What `cijob clean` removes: what cijob made, but not what a live run uses.
    pub fn stale(self) -> bool {
        !matches!(self, Owner::Live | Owner::Foreign)
    }
}

/// The warning a new run gives when dead runs left objects behind, from each object's kind
/// (`container`, `network`, `volume`) and labels.
pub fn dead_runs_warning<'a>(
    found: impl IntoIterator<Item = (&'a str, &'a HashMap<String, String>)>,
    alive: impl Fn(i32) -> bool,
) -> Option<String> {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    let mut runs = BTreeSet::new();
    let mut jobs = BTreeSet::new();
    for (kind, labels) in found {
        if owner(labels, &alive) != Owner::Dead {
            continue;
        }
        match counts.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => counts.push((kind, 1)),
        }
        runs.extend(labels.get(LABEL_RUN));
        jobs.extend(labels.get(LABEL_JOB).map(|j| format!("\"{j}\"")));
    }
    if counts.is_empty() {
        return None;
    }
    let what: Vec<String> = counts
        .iter()
        .map(|(kind, n)| format!("{n} {kind}{}", if *n == 1 { "" } else { "s" }))
        .collect();
    let runs = runs.len().max(1);
    Some(format!(
        "{} left by {runs} earlier cijob run{} that ended without cleaning up (killed?), of job{} {}: `cijob clean` removes them",
        what.join(", "),
        if runs == 1 { "" } else { "s" },
        if jobs.len() == 1 { "" } else { "s" },
        jobs.into_iter().collect::<Vec<_>>().join(", ")
    ))
}

/// Whether a process exists (signal 0); our own pid counts as alive, and so does another
/// user's process (EPERM: it exists, we may not signal it).
pub fn process_alive(pid: i32) -> bool {
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Labels of an object cijob made, plus `pairs`.
    fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        std::iter::once(&(LABEL_MANAGED, "true"))
            .chain(pairs)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const LIVE_PID: i32 = 100;
    fn alive(pid: i32) -> bool {
        pid == LIVE_PID
    }

    #[test]
    fn owners_from_labels() {
        let dead = labels(&[(LABEL_PID, "7"), (LABEL_RUN, "r1")]);
        assert_eq!(owner(&dead, alive), Owner::Dead);
        assert_eq!(owner(&labels(&[(LABEL_PID, "100")]), alive), Owner::Live);
        let kept = labels(&[(LABEL_PID, "100"), (LABEL_KEEP, "true")]);
        assert_eq!(owner(&kept, alive), Owner::Kept);
        assert_eq!(owner(&labels(&[]), alive), Owner::Shared);
        assert_eq!(owner(&labels(&[(LABEL_PID, "x")]), alive), Owner::Dead);
        assert!(owner(&kept, alive).stale() && owner(&dead, alive).stale());
        assert!(!owner(&labels(&[(LABEL_PID, "100")]), alive).stale());
        // Looks like a dead run's, but cijob did not make it.
        let mut foreign = dead.clone();
        foreign.remove(LABEL_MANAGED);
        assert_eq!(owner(&foreign, alive), Owner::Foreign);
        assert!(!owner(&foreign, alive).stale());
        assert_eq!(dead_runs_warning([("container", &foreign)], alive), None);
    }

    #[test]
    fn warning_counts_only_dead_runs() {
        let c1 = labels(&[(LABEL_PID, "7"), (LABEL_RUN, "r1"), (LABEL_JOB, "test")]);
        let c2 = labels(&[(LABEL_PID, "7"), (LABEL_RUN, "r1"), (LABEL_JOB, "test")]);
        let v1 = labels(&[(LABEL_PID, "7"), (LABEL_RUN, "r1"), (LABEL_JOB, "test")]);
        let v2 = labels(&[(LABEL_PID, "8"), (LABEL_RUN, "r2"), (LABEL_JOB, "lint")]);
        let live = labels(&[(LABEL_PID, "100"), (LABEL_RUN, "r3"), (LABEL_JOB, "live")]);
        let kept = labels(&[(LABEL_KEEP, "true"), (LABEL_RUN, "r4"), (LABEL_JOB, "kept")]);
        let cache = labels(&[(LABEL_JOB, "cache")]);
        let found = [
            ("container", &c1),
            ("container", &c2),
            ("container", &live),
            ("container", &kept),
            ("volume", &v1),
            ("volume", &v2),
            ("volume", &cache),
        ];
        let w = dead_runs_warning(found, alive).unwrap();
        assert_eq!(
            w,
            "2 containers, 2 volumes left by 2 earlier cijob runs that ended without cleaning up (killed?), of jobs \"lint\", \"test\": `cijob clean` removes them"
        );
        let only_live = [
            ("container", &live),
            ("volume", &cache),
            ("container", &kept),
        ];
        assert_eq!(dead_runs_warning(only_live, alive), None);
    }
}

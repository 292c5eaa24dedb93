//! What cijob learns from the local git repository (read-only).
//!
//! Only read-only git commands are run (`rev-parse`, `symbolic-ref`, `log`, `tag --points-at`,
//! `ls-files`, `remote get-url`), with `GIT_OPTIONAL_LOCKS=0` so not even the index is
//! refreshed. Every field has a fallback so a directory that is not a repository, has no
//! commits or has no remote still yields usable values:
//! * `sha`/`before_sha`: 40 zeros (GitLab's "no commit" sha, as in `CI_COMMIT_BEFORE_SHA`);
//! * branch: the unborn/current branch, else `main`; detached HEAD: a tag pointing at HEAD
//!   (`tag`), else the ref name is the commit sha and `branch` is `None`;
//! * namespace `local`, project = root directory name (sanitized);
//! * default branch: `origin/HEAD`, else the current branch, else `main`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::project::name_rules;

pub const ZERO_SHA: &str = "0000000000000000000000000000000000000000";

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GitInfo {
    pub sha: String,
    pub short_sha: String,
    pub before_sha: String,
    pub ref_name: String,
    pub branch: Option<String>,
    pub tag: Option<String>,
    pub message: String,
    pub title: String,
    pub description: String,
    pub author: String,
    pub timestamp: String,
    pub remote_url: Option<String>,
    /// `group/sub` from the remote URL, or a local fallback.
    pub namespace: String,
    /// Project name from the remote URL, or the root directory's name.
    pub project: String,
    pub default_branch: String,
}

fn git_command(root: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("git");
    c.arg("-C")
        .arg(root)
        .args(args)
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    c
}

/// Trimmed-at-end stdout of a successful git command.
fn stdout_of(out: std::io::Result<std::process::Output>) -> Option<String> {
    let out = out.ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8_lossy(&out.stdout);
    Some(s.trim_end_matches(['\n', '\r']).to_string())
}

/// Run a read-only git command in `root`; trimmed-at-end stdout on success.
pub(crate) fn git(root: &Path, args: &[&str]) -> Option<String> {
    stdout_of(git_command(root, args).output())
}

/// The last commit that changed `path` (for `cache:key:files`); `None` outside git or for a
/// file no commit has.
pub fn last_commit(root: &Path, path: &str) -> Option<String> {
    non_empty(git(root, &["log", "-1", "--format=%H", "--", path]))
}

/// Several read-only git commands at once: each is a process start, and one after another
/// they were most of cijob's own start-up time.
fn git_all<const N: usize>(root: &Path, queries: [&[&str]; N]) -> [Option<String>; N] {
    let children = queries.map(|args| git_command(root, args).spawn());
    children.map(|child| stdout_of(child.and_then(|c| c.wait_with_output())))
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

/// One component of the project's path under `/builds`: a safe name, `project` if nothing
/// of it is left.
fn path_component(s: &str) -> String {
    let name = name_rules::safe_name(s);
    if name.is_empty() {
        "project".to_string()
    } else {
        name
    }
}

/// Host and path of a remote URL (`git@host:path`, `scheme://[user@]host[:port]/path`);
/// `None` for local paths and `file://` URLs.
pub fn remote_host_and_path(url: &str) -> Option<(String, String)> {
    let url = url.trim();
    if let Some((scheme, rest)) = url.split_once("://") {
        if scheme.eq_ignore_ascii_case("file") {
            return None;
        }
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = if host_port.starts_with('[') {
            host_port
                .split_once(']')
                .map_or(host_port, |(h, _)| h)
                .trim_start_matches('[')
        } else {
            host_port.split_once(':').map_or(host_port, |(h, _)| h)
        };
        if host.is_empty() {
            return None;
        }
        return Some((host.to_string(), path.to_string()));
    }
    // scp-like `[user@]host:path`: a colon before any slash (git's own rule).
    let colon = url.find(':')?;
    if url[..colon].contains('/') || colon == 0 {
        return None;
    }
    let host = url[..colon]
        .rsplit_once('@')
        .map_or(&url[..colon], |(_, h)| h);
    Some((host.to_string(), url[colon + 1..].to_string()))
}

/// Namespace and project from a remote URL. Local-path remotes give `local`/<last component>.
pub fn namespace_and_project(url: &str) -> Option<(String, String)> {
    let path = match remote_host_and_path(url) {
        Some((_, p)) => p,
        None => url.trim().trim_start_matches("file://").to_string(),
    };
    let path = path.trim_end_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    let mut parts: Vec<String> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != "." && *p != "..")
        .map(path_component)
        .collect();
    let project = parts.pop()?;
    let namespace = if remote_host_and_path(url).is_none() || parts.is_empty() {
        "local".to_string()
    } else {
        parts.join("/")
    };
    Some((namespace, project))
}

fn dir_name(root: &Path) -> String {
    let abs = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    abs.file_name()
        .map(|n| path_component(&n.to_string_lossy()))
        .unwrap_or_else(|| "project".to_string())
}

pub fn info(root: &Path) -> GitInfo {
    // All asked at once; outside a repository every answer is dropped.
    let [inside, sha, head_branch, tags, remote_url, origin_head, before_sha, log] = git_all(
        root,
        [
            &["rev-parse", "--is-inside-work-tree"],
            &["rev-parse", "--verify", "-q", "HEAD^{commit}"],
            &["symbolic-ref", "--short", "-q", "HEAD"],
            &["tag", "--points-at", "HEAD"],
            &["remote", "get-url", "origin"],
            &["symbolic-ref", "-q", "refs/remotes/origin/HEAD"],
            &["rev-parse", "--verify", "-q", "HEAD~1^{commit}"],
            // One `git log` for all commit fields; the message goes last since it may hold anything.
            &["log", "-1", "--format=%an <%ae>%x00%ct%x00%B", "HEAD"],
        ],
    );
    let in_repo = inside.as_deref() == Some("true");
    let answer = |a: Option<String>| non_empty(a.filter(|_| in_repo));
    let sha = answer(sha).filter(|s| s.len() >= 40);
    let head_branch = answer(head_branch);
    let tag = match (&sha, &head_branch) {
        (Some(_), None) => answer(tags).and_then(|t| t.lines().next().map(str::to_string)),
        _ => None,
    };
    let remote_url = answer(remote_url);
    let origin_head = answer(origin_head)
        .and_then(|r| r.strip_prefix("refs/remotes/origin/").map(str::to_string));

    let mut gi = GitInfo {
        sha: sha.clone().unwrap_or_else(|| ZERO_SHA.to_string()),
        before_sha: ZERO_SHA.to_string(),
        ..Default::default()
    };
    gi.short_sha = gi.sha[..8].to_string();
    if sha.is_some() {
        if let Some(b) = answer(before_sha) {
            gi.before_sha = b;
        }
        let log = answer(log).unwrap_or_default();
        let mut fields = log.splitn(3, '\0');
        gi.author = fields.next().unwrap_or_default().to_string();
        // GitLab shows commit times in UTC (`2022-01-31T16:47:55Z`).
        gi.timestamp = fields
            .next()
            .and_then(|t| t.trim().parse::<i64>().ok())
            .map(iso8601_utc)
            .unwrap_or_default();
        gi.message = fields.next().unwrap_or_default().trim_end().to_string();
        let (title, rest) = gi.message.split_once('\n').unwrap_or((&gi.message, ""));
        gi.title = title.to_string();
        gi.description = rest.trim_start_matches('\n').to_string();
    }
    gi.branch = match (&head_branch, &tag) {
        (Some(b), _) => Some(b.clone()),
        (None, Some(_)) => None,
        (None, None) if sha.is_some() => None,
        (None, None) => Some("main".to_string()),
    };
    gi.ref_name = gi
        .branch
        .clone()
        .or_else(|| tag.clone())
        .unwrap_or_else(|| gi.sha.clone());
    gi.tag = tag;
    gi.default_branch = origin_head
        .or(head_branch)
        .unwrap_or_else(|| "main".to_string());
    let (namespace, project) = remote_url
        .as_deref()
        .and_then(namespace_and_project)
        .unwrap_or_else(|| ("local".to_string(), dir_name(root)));
    gi.namespace = namespace;
    gi.project = project;
    gi.remote_url = remote_url;
    gi
}

/// `YYYY-MM-DDTHH:MM:SSZ` for Unix seconds (proleptic Gregorian, no external crate).
pub fn iso8601_utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil-from-days algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Add `path` (relative to `root`) if it exists on disk; directories (submodules) are walked.
fn push_existing(root: &Path, rel: PathBuf, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let full = root.join(&rel);
    match std::fs::symlink_metadata(&full) {
        Ok(m) if m.is_dir() => {
            out.extend(walk(&full)?.into_iter().map(|p| rel.join(p)));
            Ok(())
        }
        Ok(_) => {
            out.push(rel);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()), // deleted but tracked
        Err(e) => Err(e),
    }
}

/// Every file and symlink under `dir` (relative), skipping `.git`.
fn walk(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let it = walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || e.file_name() != ".git");
    for entry in it {
        let entry = entry.map_err(std::io::Error::other)?;
        if entry.file_type().is_dir() {
            continue;
        }
        if let Ok(rel) = entry.path().strip_prefix(dir) {
            out.push(rel.to_path_buf());
        }
    }
    Ok(out)
}

/// Files to copy into the job: tracked plus untracked-but-not-ignored (relative paths).
/// Outside git: every file under root. `.git` is added by the caller.
pub fn project_files(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let in_repo = git(root, &["rev-parse", "--is-inside-work-tree"]).as_deref() == Some("true");
    let listed = if in_repo {
        // Not trimmed: -z output must keep names verbatim.
        Command::new("git")
            .arg("-C")
            .arg(root)
            .args(["ls-files", "-co", "--exclude-standard", "-z"])
            .env("GIT_OPTIONAL_LOCKS", "0")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| o.stdout)
    } else {
        None
    };
    let mut files = Vec::new();
    match listed {
        Some(bytes) => {
            let mut seen = std::collections::HashSet::new();
            for raw in bytes.split(|&b| b == 0).filter(|r| !r.is_empty()) {
                let rel = bytes_to_path(raw);
                // Unmerged files are listed once per stage.
                if seen.insert(rel.clone()) {
                    push_existing(root, rel, &mut files)?;
                }
            }
        }
        None => files = walk(root)?,
    }
    files.sort();
    files.dedup();
    Ok(files)
}

#[cfg(unix)]
fn bytes_to_path(b: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(std::ffi::OsStr::from_bytes(b))
}

#[cfg(not(unix))]
fn bytes_to_path(b: &[u8]) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(b).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// Run git hermetically in a test repository.
    fn g(dir: &Path, args: &[&str]) {
        let st = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args([
                "-c",
                "user.name=Test User",
                "-c",
                "user.email=test@example.com",
                "-c",
                "init.defaultBranch=main",
                "-c",
                "commit.gpgsign=false",
                "-c",
                "tag.gpgsign=false",
            ])
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_DATE", "2024-01-02T03:04:05+00:00")
            .env("GIT_COMMITTER_DATE", "2024-01-02T03:04:05+00:00")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "git {args:?}");
    }

    fn repo() -> tempfile::TempDir {
        let d = tempfile::Builder::new()
            .prefix("my proj!")
            .tempdir()
            .unwrap();
        g(d.path(), &["init", "-q"]);
        d
    }

    #[test]
    fn remote_urls() {
        let np = |u: &str| namespace_and_project(u).unwrap();
        let s = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            np("git@gitlab.com:group/sub/proj.git"),
            s("group/sub", "proj")
        );
        assert_eq!(np("https://gitlab.com/group/proj.git"), s("group", "proj"));
        assert_eq!(
            np("https://user:pw@gitlab.com/group/proj/"),
            s("group", "proj")
        );
        assert_eq!(np("ssh://git@host:2222/g/p.git"), s("g", "p"));
        assert_eq!(np("/srv/repos/thing.git"), s("local", "thing"));
        assert_eq!(np("../sibling"), s("local", "sibling"));
        assert_eq!(np("file:///srv/x/y.git"), s("local", "y"));
        assert_eq!(np("https://host/solo.git"), s("local", "solo"));
        assert_eq!(
            remote_host_and_path("ssh://git@host:2222/g/p.git"),
            Some(("host".into(), "g/p.git".into()))
        );
        assert_eq!(
            remote_host_and_path("git@gitlab.example.org:a/b.git")
                .unwrap()
                .0,
            "gitlab.example.org"
        );
        assert_eq!(remote_host_and_path("./a:b"), None);
        assert_eq!(path_component("my proj!"), "my-proj");
        assert_eq!(path_component("!!"), "project");
        assert_eq!(iso8601_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601_utc(1_704_164_645), "2024-01-02T03:04:05Z");
        assert_eq!(iso8601_utc(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn not_a_repository() {
        let d = tempfile::Builder::new()
            .prefix("plain dir")
            .tempdir()
            .unwrap();
        fs::write(d.path().join("a.txt"), "a").unwrap();
        fs::create_dir_all(d.path().join("sub/.git")).unwrap();
        fs::write(d.path().join("sub/.git/x"), "x").unwrap();
        fs::write(d.path().join("sub/b.txt"), "b").unwrap();
        let i = info(d.path());
        assert_eq!(i.sha, ZERO_SHA);
        assert_eq!(i.short_sha, "00000000");
        assert_eq!(i.before_sha, ZERO_SHA);
        assert_eq!(i.namespace, "local");
        assert!(i.project.starts_with("plain-dir"), "{}", i.project);
        assert_eq!(i.branch.as_deref(), Some("main"));
        assert_eq!(i.ref_name, "main");
        assert_eq!(i.default_branch, "main");
        assert_eq!(
            project_files(d.path()).unwrap(),
            vec![PathBuf::from("a.txt"), PathBuf::from("sub/b.txt")]
        );
    }

    #[test]
    fn empty_repository() {
        let d = repo();
        let i = info(d.path());
        assert_eq!(i.sha, ZERO_SHA);
        assert_eq!(i.branch.as_deref(), Some("main"));
        assert!(i.project.starts_with("my-proj"), "{}", i.project);
        assert_eq!(i.message, "");
    }

    #[test]
    fn repository_with_commits_and_remote() {
        let d = repo();
        let p = d.path();
        fs::write(p.join(".gitignore"), "*.log\n").unwrap();
        fs::write(p.join("one.txt"), "1").unwrap();
        fs::write(p.join("gone.txt"), "g").unwrap();
        g(p, &["add", "-A"]);
        g(p, &["commit", "-q", "-m", "first"]);
        fs::write(p.join("two.txt"), "2").unwrap();
        g(p, &["add", "two.txt"]);
        g(
            p,
            &[
                "commit",
                "-q",
                "-m",
                "Second title\n\nBody line 1\nBody line 2",
            ],
        );
        g(
            p,
            &[
                "remote",
                "add",
                "origin",
                "git@gitlab.com:grp/sub/cool-proj.git",
            ],
        );
        fs::write(p.join("untracked.txt"), "u").unwrap();
        fs::write(p.join("debug.log"), "ignored").unwrap();
        fs::remove_file(p.join("gone.txt")).unwrap();

        let status_before = fs::read(p.join(".git/index")).unwrap();
        let i = info(p);
        assert_eq!(i.sha.len(), 40);
        assert_ne!(i.sha, ZERO_SHA);
        assert_eq!(i.short_sha, &i.sha[..8]);
        assert_eq!(i.before_sha.len(), 40);
        assert_ne!(i.before_sha, ZERO_SHA);
        assert_eq!(i.branch.as_deref(), Some("main"));
        assert_eq!(i.ref_name, "main");
        assert_eq!(i.tag, None);
        assert_eq!(i.title, "Second title");
        assert_eq!(i.description, "Body line 1\nBody line 2");
        assert_eq!(i.message, "Second title\n\nBody line 1\nBody line 2");
        assert_eq!(i.author, "Test User <test@example.com>");
        assert_eq!(i.timestamp, "2024-01-02T03:04:05Z");
        assert_eq!(i.namespace, "grp/sub");
        assert_eq!(i.project, "cool-proj");
        assert_eq!(
            i.remote_url.as_deref(),
            Some("git@gitlab.com:grp/sub/cool-proj.git")
        );
        assert_eq!(i.default_branch, "main");

        let files = project_files(p).unwrap();
        let names: Vec<_> = files.iter().map(|f| f.to_str().unwrap()).collect();
        assert_eq!(
            names,
            vec![".gitignore", "one.txt", "two.txt", "untracked.txt"]
        );
        // Read-only: the index is untouched.
        assert_eq!(fs::read(p.join(".git/index")).unwrap(), status_before);

        // Detached HEAD on a tag.
        g(p, &["tag", "v1.0"]);
        g(p, &["checkout", "-q", "--detach", "HEAD"]);
        let i = info(p);
        assert_eq!(i.tag.as_deref(), Some("v1.0"));
        assert_eq!(i.branch, None);
        assert_eq!(i.ref_name, "v1.0");
        // Detached without tag: the sha is the ref.
        g(p, &["checkout", "-q", "--detach", "HEAD~1"]);
        let i = info(p);
        assert_eq!(i.tag, None);
        assert_eq!(i.ref_name, i.sha);
        assert_eq!(i.before_sha, ZERO_SHA);
    }

    #[test]
    fn subdirectory_of_repository() {
        let d = repo();
        let p = d.path();
        fs::create_dir(p.join("sub")).unwrap();
        fs::write(p.join("sub/x.txt"), "x").unwrap();
        fs::write(p.join("top.txt"), "t").unwrap();
        assert_eq!(
            project_files(&p.join("sub")).unwrap(),
            vec![PathBuf::from("x.txt")]
        );
    }
}

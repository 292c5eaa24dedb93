//! The sources phase: the project volume brought to exactly the working tree, as the
//! runner's fetch + `git clean` + `git reset --hard` would. Something in the volume lists the
//! project dir (what a job did to it is seen there), `diff` decides, the same removes what
//! must go, and one tar brings what differs. That something is a helper container, started
//! while the services start; or, for a job without services, the build container's own
//! shell, already waiting for the script (no container to start).

pub(crate) mod diff;
pub(crate) mod listing;
pub(crate) mod manifest;
pub(crate) mod slot;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use bollard::container::LogOutput;
use futures_util::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;

use crate::error::Error;
use crate::execute::archive;
use crate::execute::docker::{Attached, Engine, Kind, Managed};
use crate::execute::run::ProjectSource;
use crate::plan::sources::{self as plan_sources, Strategy};
use crate::plan::RunPlan;
use crate::project::tree::{self, Entry, Want};
use crate::ui::Ui;
use manifest::{Manifest, Record};

/// Bring the volume up to date with a helper container; returns the lines to log (printed
/// in the runner's order, after the services' lines, by the caller).
pub async fn update(
    engine: &Engine,
    plan: &RunPlan,
    project: &ProjectSource,
    ui: &Ui,
) -> Result<Vec<String>, Error> {
    let sp = &plan.sources;
    let mut lines = Vec::new();
    let mut helper = sp.helper.clone();
    if engine.image_id(&helper.image).await?.is_none() {
        // No helper image here: the build image's own tools do the work.
        lines.push(format!(
            "Helper image {} not found: updating the project volume with the build image",
            helper.image
        ));
        helper.image.clone_from(&plan.build.container.image);
        crate::execute::pull::ensure_image(
            engine,
            ui,
            &helper.image,
            &plan.build.pull,
            plan.build.container.platform.as_deref(),
            &plan.auth,
        )
        .await?;
    }
    let id = engine.create_container(&helper, &[]).await?;
    let result = with_helper(engine, plan, project, &id, &mut lines).await;
    // Not waited for: the job need not wait, and the run's cleanup removes it anyway.
    let (engine, name) = (engine.clone(), helper.name.clone());
    tokio::spawn(async move {
        let helper = Managed {
            kind: Kind::Container,
            id,
            name,
            labels: HashMap::new(),
            running: false,
        };
        let _ = engine.remove(&helper).await;
    });
    result.map(|()| lines)
}

/// Whether the build container's shell can update the volume: a strategy that updates it,
/// and nothing between the shell and its stdin (an entrypoint could print, or never hand
/// stdin to the shell).
pub fn in_build(plan: &RunPlan, entrypoint: &[String]) -> bool {
    plan.sources.strategy != Strategy::None && entrypoint.iter().all(String::is_empty)
}

/// The update through the build container's shell (`in_build`), attached and waiting for
/// the script. `Ok(Err(why))` when the shell could not do it (its image lacks `find` or
/// `stat`, or its user cannot read or remove something an earlier job left): `update` then
/// does it, from whatever state this left.
pub async fn update_in_build(
    engine: &Engine,
    plan: &RunPlan,
    project: &ProjectSource,
    build: &str,
    attached: &mut Attached,
) -> Result<Result<Vec<String>, &'static str>, Error> {
    let manifest_path = manifest_path(plan);
    let host = scan_host(plan, project, manifest_path.clone());
    let marker = plan_sources::marker(&plan.run_id);
    let ask = plan_sources::listing_command(&plan.project_dir, &marker);
    let answer = ask_shell(attached, ask, &marker).await;
    let listing = match answer.parse() {
        Some(listing) => listing,
        None if answer.complete() => return Ok(Err("listing it as the job's user failed")),
        None => return Ok(Err("the shell ended")),
    };
    let d = decide(plan, project, Some(listing), host).await?;
    if !d.u.delete.is_empty() {
        let rm = plan_sources::removal_command(&plan.project_dir, &d.u.delete, &marker);
        let answer = ask_shell(attached, rm, &marker).await;
        if answer.parse().is_none() {
            return Ok(Err(if answer.complete() {
                "removing what an earlier job left failed as the job's user"
            } else {
                "the shell ended"
            }));
        }
    }
    let mut lines = Vec::new();
    finish(engine, build, plan, project, d, manifest_path, &mut lines).await?;
    Ok(Ok(lines))
}

/// A command to the build container's shell, and its answer. A shell that ends instead of
/// answering said why on its way out (`shell not found`): that is the job's output.
async fn ask_shell<'m>(
    attached: &mut Attached,
    command: String,
    marker: &'m str,
) -> listing::Output<'m> {
    let sent = attached.input.write_all(command.as_bytes()).await;
    let (answer, stderr) = read_answer(&mut attached.output, marker).await;
    if sent.is_err() || !answer.complete() {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(&answer.bytes).and_then(|()| out.flush());
        crate::execute::stage::write_stderr(&stderr);
    }
    answer
}

/// Where cijob records what the volume holds, if it has a place for state.
fn manifest_path(plan: &RunPlan) -> Option<PathBuf> {
    slot::state_dir().map(|d| manifest::path_in(&d, &plan.sources.volume))
}

type HostScan = tokio::task::JoinHandle<std::io::Result<(Vec<Entry>, Option<Manifest>)>>;

/// The tree the job must see and cijob's record of the volume, read on a blocking thread
/// while the volume is listed.
fn scan_host(plan: &RunPlan, project: &ProjectSource, manifest_path: Option<PathBuf>) -> HostScan {
    let (root, files, empty) = (
        project.root.clone(),
        project.files.clone(),
        plan.sources.strategy == Strategy::Empty,
    );
    tokio::task::spawn_blocking(move || {
        let host = if empty {
            Vec::new()
        } else {
            tree::scan(&root, &files)?
        };
        Ok((host, manifest_path.as_deref().and_then(manifest::load)))
    })
}

/// Stdout up to the marker's line (or the end of the stream), and stderr meanwhile.
async fn read_answer<'m, S>(output: &mut S, marker: &'m str) -> (listing::Output<'m>, Vec<u8>)
where
    S: Stream<Item = Result<LogOutput, bollard::errors::Error>> + Unpin,
{
    let mut listed = listing::Output::new(marker);
    let mut stderr = Vec::new();
    while !listed.complete() {
        match output.next().await {
            Some(Ok(LogOutput::StdOut { message })) => listed.push(&message),
            Some(Ok(LogOutput::StdErr { message })) => stderr.extend_from_slice(&message),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break,
        }
    }
    (listed, stderr)
}

/// What the volume must become.
struct Decided {
    host: Vec<Entry>,
    manifest: Option<Manifest>,
    u: diff::Update,
}

/// The listing (`None`: it cannot be trusted, so the whole project dir goes), the host and
/// cijob's record compared.
async fn decide(
    plan: &RunPlan,
    project: &ProjectSource,
    listing: Option<Vec<listing::Listed>>,
    host: HostScan,
) -> Result<Decided, Error> {
    let sp = &plan.sources;
    let (host, manifest) = host
        .await
        .map_err(|e| Error::Failed(format!("reading the project: {e}")))?
        .map_err(|e| {
            Error::Failed(format!(
                "reading the project in {}: {e}",
                project.root.display()
            ))
        })?;
    let full = if sp.fresh {
        Some("--fresh")
    } else {
        match sp.strategy {
            Strategy::Clone => Some("GIT_STRATEGY: clone"),
            Strategy::Empty => Some("GIT_STRATEGY: empty"),
            _ => None,
        }
    };
    let hashes = match (&manifest, full) {
        (Some(m), None) => hash_suspects(&project.root, &host, m).await?,
        _ => HashMap::new(),
    };
    let mut u = diff::update(
        &host,
        &hashes,
        manifest.as_ref(),
        listing.as_deref(),
        &sp.clean,
        full,
    );
    if listing.is_none() {
        // An absolute path: `rm -rf` takes the project dir itself, the tar brings it back.
        u.delete = vec![plan.project_dir.clone()];
    }
    Ok(Decided { host, manifest, u })
}

/// After the removals: the tar of what differs into `container` (which mounts the volume),
/// the new record, the log lines.
async fn finish(
    engine: &Engine,
    container: &str,
    plan: &RunPlan,
    project: &ProjectSource,
    d: Decided,
    manifest_path: Option<PathBuf>,
    lines: &mut Vec<String>,
) -> Result<(), Error> {
    let Decided { host, manifest, u } = d;
    let entries: Vec<Entry> = u.send.iter().map(|&i| host[i].clone()).collect();
    if let (true, Some(p)) = (u.uploads(), &manifest_path) {
        // A file cut short could look like the one recorded: the record goes before the
        // tar, so an update interrupted here is listed again and never trusted. (Removals
        // cannot fool it: the listing shows what is gone.)
        manifest::forget(p).map_err(|e| Error::Failed(format!("removing {}: {e}", p.display())))?;
    }
    let packed = if u.uploads() {
        upload(
            engine,
            container,
            project,
            entries.clone(),
            &plan.project_dir,
        )
        .await?
    } else {
        Vec::new()
    };
    if let Some(p) = manifest_path {
        let next = next_manifest(&host, &u, manifest.as_ref(), &entries, &packed);
        if u.changes() || manifest.as_ref() != Some(&next) {
            tokio::task::spawn_blocking(move || manifest::save(&p, &next))
                .await
                .map_err(|e| Error::Failed(format!("saving the project's manifest: {e}")))?
                .map_err(|e| Error::Failed(format!("saving the project's manifest: {e}")))?;
        }
    }
    if let Some(why) = &u.full {
        lines.push(format!("Copying the whole project ({why})"));
    }
    lines.push(format!(
        "Updated {} files, removed {} ({} unchanged) in {}",
        thousands(u.updated),
        thousands(u.removed),
        thousands(u.unchanged),
        plan.project_dir
    ));
    Ok(())
}

async fn with_helper(
    engine: &Engine,
    plan: &RunPlan,
    project: &ProjectSource,
    id: &str,
    lines: &mut Vec<String>,
) -> Result<(), Error> {
    if plan.sources.strategy == Strategy::None {
        // Only the project dir's existence: the job starts there.
        upload(engine, id, project, Vec::new(), &plan.project_dir).await?;
        lines.push("Skipping Git repository setup".to_string());
        return Ok(());
    }
    let manifest_path = manifest_path(plan);
    let host = scan_host(plan, project, manifest_path.clone());
    let attached = engine.attach(id).await?;
    engine.start(id).await?;
    let mut output = attached.output;
    let marker = plan_sources::marker(&plan.run_id);
    let (listed, mut stderr) = read_answer(&mut output, &marker).await;
    if !listed.complete() {
        return Err(Error::Failed(format!(
            "the helper container ({}) could not list the project volume: it needs sh, find, stat and xargs{}{}",
            plan.sources.helper.image,
            if stderr.is_empty() { "" } else { ": " },
            String::from_utf8_lossy(&stderr).trim()
        )));
    }
    let d = decide(plan, project, listed.parse(), host).await?;

    // The removals, on the helper's stdin; it exits when they are done.
    let mut input = attached.input;
    let mut paths = Vec::new();
    let length: usize = d.u.delete.iter().map(|p| p.len() + 1).sum();
    paths.extend_from_slice(format!("{length}\n").as_bytes());
    for p in &d.u.delete {
        paths.extend_from_slice(p.as_bytes());
        paths.push(0);
    }
    let sent = async {
        input.write_all(&paths).await?;
        input.shutdown().await
    }
    .await;
    while let Some(Ok(chunk)) = output.next().await {
        if let LogOutput::StdErr { message } = chunk {
            stderr.extend_from_slice(&message);
        }
    }
    let code = engine.wait(id).await?;
    if code != 0 || sent.is_err() {
        return Err(Error::Failed(format!(
            "the helper container ({}) could not update the project volume: exit code {code}{}{}",
            plan.sources.helper.image,
            if stderr.is_empty() { "" } else { ": " },
            String::from_utf8_lossy(&stderr).trim()
        )));
    }
    finish(engine, id, plan, project, d, manifest_path, lines).await
}

/// The hashes of files whose stat key moved since they were sent.
async fn hash_suspects(
    root: &Path,
    host: &[Entry],
    m: &Manifest,
) -> Result<HashMap<usize, manifest::Hash>, Error> {
    let todo: Vec<(usize, Entry)> = diff::suspects(host, m)
        .into_iter()
        .map(|i| (i, host[i].clone()))
        .collect();
    let root = root.to_path_buf();
    tokio::task::spawn_blocking(move || {
        todo.into_iter()
            .filter_map(|(i, e)| archive::hash_of(&root, &e).map(|h| (i, h)))
            .collect()
    })
    .await
    .map_err(|e| Error::Failed(format!("reading the project: {e}")))
}

/// What the volume holds after the update: sent files as packed, the others as before (with
/// the host's current stat key: their content was checked).
fn next_manifest(
    host: &[Entry],
    u: &diff::Update,
    old: Option<&Manifest>,
    sent: &[Entry],
    packed: &[Option<Record>],
) -> Manifest {
    let mut next = Manifest::new();
    for (e, p) in sent.iter().zip(packed) {
        if let Some(r) = p {
            next.insert(e.path.clone(), r.clone());
        }
    }
    if u.full.is_some() {
        return next;
    }
    let Some(old) = old else { return next };
    let mut was_sent = vec![false; host.len()];
    for &i in &u.send {
        was_sent[i] = true;
    }
    for (i, e) in host.iter().enumerate().filter(|(_, e)| e.want != Want::Dir) {
        if was_sent[i] || next.contains_key(&e.path) {
            continue;
        }
        if let Some(r) = old.get(&e.path) {
            next.insert(
                e.path.clone(),
                Record {
                    key: e.key,
                    ..r.clone()
                },
            );
        }
    }
    next
}

/// Pack `entries` on a blocking thread while the daemon receives them, a few chunks at a
/// time, so memory stays flat.
async fn upload(
    engine: &Engine,
    id: &str,
    project: &ProjectSource,
    entries: Vec<Entry>,
    dest: &str,
) -> Result<Vec<Option<Record>>, Error> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let (root, dest) = (project.root.clone(), dest.to_string());
    let packer = tokio::task::spawn_blocking(move || {
        let out = std::io::BufWriter::with_capacity(256 * 1024, archive::ChunkWriter(tx.clone()));
        let refs: Vec<&Entry> = entries.iter().collect();
        let packed = archive::pack(&root, &refs, &dest, out).and_then(|(w, p)| {
            w.into_inner().map_err(|e| e.into_error())?;
            Ok(p)
        });
        if let Err(e) = &packed {
            // Abort the upload rather than let the daemon unpack a truncated tar.
            let _ = tx.blocking_send(Err(std::io::Error::new(e.kind(), e.to_string())));
        }
        packed
    });
    let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    let uploaded = engine.upload(id, "/", chunks).await;
    let packed = packer
        .await
        .map_err(|e| Error::Failed(format!("packing the project: {e}")))?;
    match packed {
        // A broken pipe only means the upload stopped first: its error says why.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::Failed(format!("packing the project: {e}")))
        }
        Err(_) => uploaded.map(|()| Vec::new()),
        Ok(p) => uploaded.map(|()| p),
    }
}

/// `99,988`.
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::sources::Clean;
    use crate::project::tree::Key;

    #[test]
    fn counts_with_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(99_988), "99,988");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn next_manifest_keeps_unchanged_records_with_new_keys() {
        let e = |p: &str, ino| Entry {
            path: p.into(),
            rel: p.into(),
            want: Want::File,
            key: Key {
                ino,
                ..Key::default()
            },
        };
        let r = |n: u8| Record {
            want: Want::File,
            size: 1,
            mtime: 1,
            hash: [n; 32],
            key: Key::default(),
        };
        let host = vec![e("a", 5), e("b", 6), e("c", 7)];
        let old: Manifest = [
            ("a".into(), r(1)),
            ("b".into(), r(2)),
            ("gone".into(), r(3)),
        ]
        .into();
        let u = diff::Update {
            send: vec![1],
            ..Default::default()
        };
        let next = next_manifest(&host, &u, Some(&old), &[host[1].clone()], &[Some(r(9))]);
        assert_eq!(next.len(), 2);
        assert_eq!(next["a"].key.ino, 5);
        assert_eq!(next["a"].hash, [1; 32]);
        assert_eq!(next["b"].hash, [9; 32]);
        // A full copy records only what it sent.
        let full = diff::Update {
            full: Some("--fresh".into()),
            ..u
        };
        let next = next_manifest(&host, &full, Some(&old), &[host[1].clone()], &[Some(r(9))]);
        assert_eq!(next.keys().collect::<Vec<_>>(), vec!["b"]);
        let _ = Clean::Keep;
    }
}

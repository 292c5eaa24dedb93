//! The sources phase: the project volume brought to exactly the working tree, as the
//! runner's fetch + `git clean` + `git reset --hard` would. A helper container lists the
//! project dir (what a job did to it is seen there), `diff` decides, the helper removes what
//! must go, and one tar brings what differs. Runs while the services start.

pub(crate) mod diff;
pub(crate) mod listing;
pub(crate) mod manifest;
pub(crate) mod slot;

use std::collections::HashMap;

use bollard::container::LogOutput;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::error::Error;
use crate::execute::archive;
use crate::execute::docker::{Engine, Kind, Managed};
use crate::execute::run::ProjectSource;
use crate::plan::sources::Strategy;
use crate::plan::RunPlan;
use crate::project::tree::{self, Entry, Want};
use crate::ui::Ui;
use manifest::{Manifest, Record};

/// Bring the volume up to date; returns the lines to log (printed in the runner's order,
/// after the services' lines, by the caller).
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

async fn with_helper(
    engine: &Engine,
    plan: &RunPlan,
    project: &ProjectSource,
    id: &str,
    lines: &mut Vec<String>,
) -> Result<(), Error> {
    let sp = &plan.sources;
    if sp.strategy == Strategy::None {
        // Only the project dir's existence: the job starts there.
        upload(engine, id, project, Vec::new(), &plan.project_dir).await?;
        lines.push("Skipping Git repository setup".to_string());
        return Ok(());
    }
    let manifest_path = slot::state_dir().map(|d| manifest::path_in(&d, &sp.volume));
    let (root, files, empty) = (
        project.root.clone(),
        project.files.clone(),
        sp.strategy == Strategy::Empty,
    );
    let mp = manifest_path.clone();
    let host = tokio::task::spawn_blocking(move || {
        let host = if empty {
            Vec::new()
        } else {
            tree::scan(&root, &files)?
        };
        Ok::<_, std::io::Error>((host, mp.as_deref().and_then(manifest::load)))
    });
    let attached = engine.attach(id).await?;
    engine.start(id).await?;
    let mut output = attached.output;
    let mut listed_bytes = Vec::new();
    let mut stderr = Vec::new();
    while !listing::complete(&listed_bytes) {
        match output.next().await {
            Some(Ok(LogOutput::StdOut { message })) => listed_bytes.extend_from_slice(&message),
            Some(Ok(LogOutput::StdErr { message })) => stderr.extend_from_slice(&message),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break,
        }
    }
    if !listing::complete(&listed_bytes) {
        return Err(Error::Failed(format!(
            "the helper container ({}) could not list the project volume: it needs sh, find, stat and xargs{}{}",
            plan.sources.helper.image,
            if stderr.is_empty() { "" } else { ": " },
            String::from_utf8_lossy(&stderr).trim()
        )));
    }
    // `None`: the listing cannot be trusted, so the whole project dir goes.
    let listing = listing::parse(&listed_bytes);
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
    if u.changes() {
        if let Some(p) = &manifest_path {
            manifest::forget(p)
                .map_err(|e| Error::Failed(format!("removing {}: {e}", p.display())))?;
        }
    }

    // The removals, on the helper's stdin; it exits when they are done.
    let mut input = attached.input;
    let mut paths = Vec::new();
    let length: usize = u.delete.iter().map(|p| p.len() + 1).sum();
    paths.extend_from_slice(format!("{length}\n").as_bytes());
    for p in &u.delete {
        paths.extend_from_slice(p.as_bytes());
        paths.push(0);
    }
    let sent = async {
        input.write_all(&paths).await?;
        input.shutdown().await
    }
    .await;
    let drain = async {
        while let Some(Ok(chunk)) = output.next().await {
            if let LogOutput::StdErr { message } = chunk {
                stderr.extend_from_slice(&message);
            }
        }
    };
    drain.await;
    let code = engine.wait(id).await?;
    if code != 0 || sent.is_err() {
        return Err(Error::Failed(format!(
            "the helper container ({}) could not update the project volume: exit code {code}{}{}",
            plan.sources.helper.image,
            if stderr.is_empty() { "" } else { ": " },
            String::from_utf8_lossy(&stderr).trim()
        )));
    }
    let entries: Vec<Entry> = u.send.iter().map(|&i| host[i].clone()).collect();
    let packed = if u.uploads() {
        upload(engine, id, project, entries.clone(), &plan.project_dir).await?
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

/// The hashes of files whose stat key moved since they were sent.
async fn hash_suspects(
    root: &std::path::Path,
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
    for e in host.iter().filter(|e| e.want != Want::Dir) {
        if next.contains_key(&e.path) || sent.iter().any(|s| s.path == e.path) {
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

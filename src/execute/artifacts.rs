//! The runner's `download_artifacts` and `upload_artifacts_on_*` stages against cijob's
//! store: the received jobs' archives extracted into the project directory before the
//! script, the job's own `artifacts:` (and dotenv reports) collected after it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::execute::collect::{self, collect, extract};
use crate::execute::docker::Engine;
use crate::execute::run::print;
use crate::execute::store::{self, human_size, Meta};
use crate::plan::artifact_paths::Selector;
use crate::plan::artifacts::{self as planned, outcome_word};
use crate::plan::{dotenv, RunPlan};
use crate::ui::Ui;

/// Before the script: what the store has of each job this one receives artifacts from.
pub async fn download(engine: &Engine, plan: &RunPlan, build: &str, ui: &Ui) -> Result<(), Error> {
    if plan.received.is_empty() {
        return Ok(());
    }
    ui.section("Downloading artifacts");
    let mut missing = Vec::new();
    for received in &plan.received {
        let Some(stored) = &received.stored else {
            missing.push(received.job.as_str());
            continue;
        };
        ui.line(&format!(
            "Downloading artifacts for {} (local run {})...",
            received.job, stored.finished
        ));
        if let Some(archive) = &stored.archive {
            let what = format!("extracting the artifacts of {}", received.job);
            extract(engine, build, &plan.project_dir, archive, &what).await?;
        }
        let dotenv = if stored.dotenv.is_empty() {
            String::new()
        } else {
            format!(", {} dotenv variable(s)", stored.dotenv.len())
        };
        ui.line(&format!(
            "Extracted {} files ({}){dotenv}",
            stored.files,
            human_size(stored.size)
        ));
    }
    if !missing.is_empty() {
        ui.warning(&planned::missing_message(&plan.job_name, &missing));
    }
    Ok(())
}

/// After the script (and after_script): the job's artifacts into the store, when `when`
/// says so.
pub async fn upload(
    engine: &Engine,
    plan: &RunPlan,
    build: &str,
    tracked: &[PathBuf],
    succeeded: bool,
    ui: &Ui,
) -> Result<(), Error> {
    let Some(a) = plan
        .artifacts
        .as_ref()
        .filter(|a| a.when.applies(succeeded))
    else {
        return Ok(());
    };
    ui.section(&format!(
        "Uploading artifacts for {} job",
        outcome_word(succeeded)
    ));
    let project = project_store(&a.store);
    let staged = store::staging(&project, &plan.run_id, "artifacts")
        .map_err(|e| store_error(&project, &e))?;
    let result = upload_into(engine, plan, a, build, tracked, succeeded, &staged, ui).await;
    let _ = std::fs::remove_dir_all(&staged);
    result
}

#[allow(clippy::too_many_arguments)]
async fn upload_into(
    engine: &Engine,
    plan: &RunPlan,
    a: &planned::ArtifactsPlan,
    build: &str,
    tracked: &[PathBuf],
    succeeded: bool,
    staged: &Path,
    ui: &Ui,
) -> Result<(), Error> {
    let archive = staged.join(store::ARCHIVE);
    let files = async {
        if a.paths.is_empty() && !a.untracked {
            return Ok(None);
        }
        let tracked = a.untracked.then(|| tracked_set(tracked));
        let selector = Selector::new(&a.paths, &a.exclude, tracked);
        collect(engine, build, &plan.project_dir, selector, staged, &archive)
            .await
            .map(Some)
    };
    // The files and the dotenv reports are copied out together; the lines follow in order.
    let (files, reports) = tokio::join!(files, collect_reports(engine, plan, a, build, staged));
    let found = files?;
    if let Some(found) = &found {
        ui.line("Uploading artifacts...");
        print(
            ui,
            &collect::report(&a.paths, found, a.untracked, &plan.project_dir),
        );
        if found.files == 0 {
            ui.error("No files to upload");
            let _ = std::fs::remove_file(&archive);
        } else {
            ui.line(&format!(
                "Stored {} files ({}) as the artifacts of {}",
                found.files,
                human_size(found.size),
                plan.job_name
            ));
        }
    }
    let found = found.unwrap_or_default();
    let dotenv = match reports? {
        Some((tar, collected)) => {
            ui.line("Uploading artifacts...");
            print(
                ui,
                &collect::report(&a.dotenv, &collected, false, &plan.project_dir),
            );
            read_reports(&tar, ui)?
        }
        None => Vec::new(),
    };
    let meta = Meta {
        job: plan.job_name.clone(),
        finished_at: now(),
        status: if succeeded { "success" } else { "failed" }.to_string(),
        files: found.files,
        size: found.size,
        masked: planned::masked_keys(&dotenv, &plan.secrets),
        dotenv,
    };
    store::commit(staged, &a.store, &meta).map_err(|e| store_error(&a.store, &e))
}

/// `reports:dotenv` copied out of the container into a tar of their own.
async fn collect_reports(
    engine: &Engine,
    plan: &RunPlan,
    a: &planned::ArtifactsPlan,
    build: &str,
    staged: &Path,
) -> Result<Option<(PathBuf, collect::Collected)>, Error> {
    if a.dotenv.is_empty() {
        return Ok(None);
    }
    let tar = staged.join("dotenv.tar");
    let work = staged.join("dotenv");
    std::fs::create_dir_all(&work).map_err(|e| store_error(&work, &e))?;
    let selector = Selector::new(&a.dotenv, &[], None);
    let found = collect(engine, build, &plan.project_dir, selector, &work, &tar).await?;
    Ok(Some((tar, found)))
}

/// The dotenv reports read as GitLab reads them; a report GitLab would refuse gives a
/// warning and no variables, as there.
fn read_reports(tar: &Path, ui: &Ui) -> Result<Vec<(String, String)>, Error> {
    let mut vars: Vec<(String, String)> = Vec::new();
    let file = std::fs::File::open(tar).map_err(|e| store_error(tar, &e))?;
    let mut archive = tar::Archive::new(file);
    for entry in archive.entries().map_err(|e| store_error(tar, &e))? {
        let mut entry = entry.map_err(|e| store_error(tar, &e))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry
            .path()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut text).map_err(|e| store_error(tar, &e))?;
        match dotenv::parse(&text) {
            Ok(parsed) => {
                for (k, v) in parsed {
                    vars.retain(|(key, _)| *key != k);
                    vars.push((k, v));
                }
            }
            Err(e) => ui.warning(&format!("{name}: {e}; its variables are not passed on")),
        }
    }
    if let Err(e) = dotenv::check_count(&vars) {
        ui.warning(&format!("{e}; none are passed on"));
        vars.clear();
    }
    if !vars.is_empty() {
        ui.line(&format!(
            "Stored {} dotenv variable(s) for the jobs that receive these artifacts",
            vars.len()
        ));
    }
    Ok(vars)
}

/// The project's folder of the store, from a job's folder (`<project>/artifacts/<job>`).
fn project_store(job_dir: &Path) -> PathBuf {
    job_dir
        .parent()
        .and_then(Path::parent)
        .unwrap_or(job_dir)
        .to_path_buf()
}

/// The project's files as `/`-separated relative paths: what is not among them is untracked.
pub fn tracked_set(files: &[PathBuf]) -> HashSet<String> {
    files
        .iter()
        .map(|p| p.to_string_lossy().replace('\\', "/"))
        .collect()
}

pub fn store_error(path: &Path, e: &std::io::Error) -> Error {
    Error::Failed(format!("cijob's store at {}: {e}", path.display()))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

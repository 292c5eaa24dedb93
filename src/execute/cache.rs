//! The runner's `restore_cache` and `archive_cache` stages against cijob's store: one tar
//! per key, extracted into the project directory before the script (the key, then its
//! fallbacks), created after it unless the policy says `pull`.

use std::path::PathBuf;

use crate::error::Error;
use crate::execute::artifacts::{store_error, tracked_set};
use crate::execute::collect::{self, collect, extract};
use crate::execute::docker::Engine;
use crate::execute::run::print;
use crate::execute::store;
use crate::plan::artifact_paths::Selector;
use crate::plan::artifacts::outcome_word;
use crate::plan::RunPlan;
use crate::ui::Ui;

/// Before the script: each cache from the first key that has an archive.
pub async fn restore(engine: &Engine, plan: &RunPlan, build: &str, ui: &Ui) -> Result<(), Error> {
    if plan.caches.is_empty() {
        return Ok(());
    }
    ui.section("Restoring cache");
    for cache in &plan.caches {
        if !cache.pull {
            ui.line(&format!(
                "Not downloading cache {} due to policy",
                cache.key
            ));
            continue;
        }
        let mut restored = false;
        for key in cache.restore_order() {
            ui.line(&format!("Checking cache for {key}..."));
            let archive = cache.archive(key);
            if !archive.is_file() {
                ui.warning("file does not exist");
                continue;
            }
            let what = format!("extracting cache {key}");
            match extract(engine, build, &plan.project_dir, &archive, &what).await {
                Ok(()) => {
                    ui.line("Successfully extracted cache");
                    restored = true;
                    break;
                }
                // The runner goes on without a cache it cannot extract (the daemon refused
                // the archive, or the store could not read it); anything else ends the job.
                Err(Error::Docker(m) | Error::Failed(m)) => ui.warning(&m),
                Err(e) => return Err(e),
            }
        }
        if !restored {
            ui.line("Failed to extract cache");
        }
    }
    Ok(())
}

/// After the script: each cache whose `when` fits the outcome, unless its policy is `pull`.
pub async fn save(
    engine: &Engine,
    plan: &RunPlan,
    build: &str,
    tracked: &[PathBuf],
    succeeded: bool,
    ui: &Ui,
) -> Result<(), Error> {
    let caches: Vec<_> = plan
        .caches
        .iter()
        .filter(|c| c.when.applies(succeeded))
        .collect();
    let Some(first) = caches.first() else {
        return Ok(());
    };
    ui.section(&format!("Saving cache for {} job", outcome_word(succeeded)));
    let project = first.store.parent().unwrap_or(&first.store).to_path_buf();
    let staged =
        store::staging(&project, &plan.run_id, "cache").map_err(|e| store_error(&project, &e))?;
    let mut result = Ok(());
    for (i, cache) in caches.iter().enumerate() {
        if !cache.push {
            ui.line(&format!("Not uploading cache {} due to policy", cache.key));
            continue;
        }
        ui.line(&format!("Creating cache {}...", cache.key));
        let tar = staged.join(format!("cache-{i}.tar"));
        let selector = Selector::new(
            &cache.paths,
            &[],
            cache.untracked.then(|| tracked_set(tracked)),
        );
        let found = match collect(engine, build, &plan.project_dir, selector, &staged, &tar).await {
            Ok(found) => found,
            Err(e) => {
                result = Err(e);
                break;
            }
        };
        print(
            ui,
            &collect::report(&cache.paths, &found, cache.untracked, &plan.project_dir),
        );
        let archive = cache.archive(&cache.key);
        if let Err(e) = store::place(&tar, &archive) {
            result = Err(store_error(&archive, &e));
            break;
        }
        ui.line("Created cache");
    }
    let _ = std::fs::remove_dir_all(&staged);
    result
}

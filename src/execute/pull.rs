//! Getting an image onto the daemon under a list of pull policies, with live progress.

use std::collections::HashMap;

use futures_util::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressFinish, ProgressStyle};

use crate::error::Error;
use crate::execute::auth::{self, Found, Sources};
use crate::execute::docker::{split_tag, Engine};
use crate::model::PullPolicy;
use crate::ui::Ui;

/// Make `image` available, trying `policies` in order like the runner; returns the image id.
pub async fn ensure_image(
    engine: &Engine,
    ui: &Ui,
    image: &str,
    policies: &[PullPolicy],
    platform: Option<&str>,
    auth: &Sources,
) -> Result<String, Error> {
    let mut last_err = None;
    for (i, policy) in policies.iter().enumerate() {
        if i > 0 {
            ui.line(&format!(
                "Attempt #{}: Trying \"{}\" pull policy",
                i + 1,
                policy.as_str()
            ));
        }
        match attempt(engine, ui, image, *policy, platform, auth).await {
            Ok(id) => {
                ui.line(&format!("Using docker image {id} for {image} ..."));
                return Ok(id);
            }
            Err(e) => {
                if i + 1 < policies.len() {
                    ui.warning(&format!(
                        "Failed to pull image with policy \"{}\": {e}",
                        policy.as_str()
                    ));
                }
                last_err = Some(e);
            }
        }
    }
    Err(last_err.unwrap_or_else(|| Error::Docker(format!("no pull policy for image {image}"))))
}

async fn attempt(
    engine: &Engine,
    ui: &Ui,
    image: &str,
    policy: PullPolicy,
    platform: Option<&str>,
    auth: &Sources,
) -> Result<String, Error> {
    let local = engine.image_id(image).await?;
    match (policy, local) {
        (PullPolicy::Never, Some(id)) => Ok(id),
        (PullPolicy::Never, None) => Err(Error::Docker(format!(
            "image \"{image}\" is not present locally and the pull policy is \"never\""
        ))),
        (PullPolicy::IfNotPresent, Some(id)) => {
            ui.line("Using locally found image version due to \"if-not-present\" pull policy");
            Ok(id)
        }
        _ => {
            let found = auth.resolve(image)?;
            if let Some(f) = &found {
                ui.line(&format!(
                    "Authenticating with credentials from {}",
                    f.source
                ));
            }
            ui.line(&format!("Pulling docker image {image} ..."));
            pull_with_progress(engine, ui, image, platform, found.as_ref())
                .await
                .map_err(|e| with_auth_hint(e, image, found.as_ref()))?;
            engine
                .image_id(image)
                .await?
                .ok_or_else(|| Error::Docker(format!("image \"{image}\" missing after pull")))
        }
    }
}

async fn pull_with_progress(
    engine: &Engine,
    ui: &Ui,
    image: &str,
    platform: Option<&str>,
    found: Option<&Found>,
) -> Result<(), Error> {
    let interactive = console::Term::stderr().is_term();
    let multi = MultiProgress::with_draw_target(if interactive {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let style =
        ProgressStyle::with_template("{prefix:.dim} {msg:<12} [{bar:30}] {bytes}/{total_bytes}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
    let mut bars: HashMap<String, ProgressBar> = HashMap::new();
    let mut last_status: HashMap<String, String> = HashMap::new();
    // Whole-image lines carry the tag (or digest) where layer lines carry a layer id.
    let (_, tag) = split_tag(image);
    let reference = image
        .rsplit_once('@')
        .map_or(tag.as_str(), |(_, digest)| digest);
    let mut stream = Box::pin(engine.pull(image, platform, found.map(|f| &f.credentials)));
    while let Some(event) = stream.next().await {
        let event = event?;
        if event.layer.is_empty() || event.layer == reference {
            // Whole-image status lines ("Digest: ...", "Status: ...").
            if !event.status.is_empty() {
                multi.suspend(|| ui.line(&event.status));
            }
            continue;
        }
        if interactive {
            let bar = bars.entry(event.layer.clone()).or_insert_with(|| {
                // A bar dropped unfinished (a failed pull, or one an interrupt dropped) would
                // stay drawn above the lines that follow: it clears itself instead.
                let b = multi.add(ProgressBar::new(0).with_finish(ProgressFinish::AndClear));
                b.set_style(style.clone());
                b.set_prefix(event.layer.clone());
                b
            });
            if let Some(total) = event.total.filter(|t| *t > 0) {
                bar.set_length(total as u64);
            }
            if let Some(cur) = event.current {
                bar.set_position(cur as u64);
            }
            bar.set_message(event.status.clone());
            if event.status == "Pull complete" || event.status == "Already exists" {
                bar.finish();
            }
        } else if last_status.get(&event.layer) != Some(&event.status) {
            // Plain output: one line per layer state change, not per progress tick.
            last_status.insert(event.layer.clone(), event.status.clone());
            ui.line(&format!("{}: {}", event.layer, event.status));
        }
    }
    let _ = multi.clear();
    Ok(())
}

/// A pull failure is the registry's or the image's problem, not the daemon's; when the
/// registry refused, say which credentials were (or were not) used.
fn with_auth_hint(e: Error, image: &str, found: Option<&Found>) -> Error {
    let Error::Docker(msg) = e else { return e };
    let lower = msg.to_ascii_lowercase();
    let refused = [
        "unauthorized",
        "no basic auth credentials",
        "authentication required",
        "denied",
    ]
    .iter()
    .any(|w| lower.contains(w));
    if !refused {
        return Error::Pull(msg);
    }
    let registry = auth::candidate_paths(image).pop().unwrap_or_default();
    let hint = match found {
        Some(f) => format!(
            "hint: {registry} refused the credentials of user \"{}\" from {}",
            f.credentials.username.as_deref().unwrap_or("<token>"),
            f.source
        ),
        None => format!(
            "hint: no registry credentials matched {registry}; set DOCKER_AUTH_CONFIG (a CI/CD variable, --var, the environment or config.toml `environment`) or log in with `docker login {registry}`"
        ),
    };
    Error::Pull(format!("{msg}\n{hint}"))
}

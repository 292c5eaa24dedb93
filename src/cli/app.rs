//! Dispatching a parsed command line to the commands.

use std::path::{Path, PathBuf};

use crate::cli::args::{Cli, Command, RunArgs};
use crate::cli::config::{DebugMode, RunConfig};
use crate::cli::listing;
use crate::error::ConfigError;
use crate::error::Error;
use crate::execute::docker::{Engine, Kind};
use crate::execute::endpoint::{self, Endpoint};
use crate::execute::leftovers;
use crate::execute::run::{self, ProjectSource};
use crate::execute::sources::slot;
use crate::execute::store;
use crate::model::{Job, Pipeline, Variable};
use crate::plan::artifacts::Received;
use crate::plan::labels::{LABEL_JOB, LABEL_MANAGED, LABEL_TYPE, TYPE_BUILD, TYPE_PROJECT};
use crate::plan::{self, Handover, PlanInput, RunPlan};
use crate::project::discover::{self, ConfigLocation};
use crate::project::git;
use crate::project::git::GitInfo;
use crate::project::name_rules;
use crate::resolve::job_name::{self, Lookup};
use crate::resolve::needs;
use crate::resolve::pipeline as loader;
use crate::ui::Ui;

pub fn run(cli: Cli, ui: &Ui) -> Result<(), Error> {
    let cwd = std::env::current_dir()
        .map_err(|e| Error::Failed(format!("cannot read the current directory: {e}")))?;
    match &cli.command {
        Command::List { json, all, vars } => {
            let (_, pipeline, _) = load(&cli, &cwd, ui, &cli_vars(vars)?)?;
            if let Some(name) = &pipeline.name {
                ui.info(&format!("pipeline: {name}"));
            }
            if let Some(why) = pipeline
                .jobs
                .first()
                .and_then(|j| j.excluded.as_deref())
                .filter(|why| why.starts_with("workflow:"))
            {
                ui.info(&format!("{why}: `cijob list --all` lists the jobs anyway"));
            }
            let text = if *json {
                listing::json(&pipeline, *all)
            } else {
                listing::table(&pipeline, *all)
            };
            print(&text);
            Ok(())
        }
        Command::Show { job, vars } => {
            let (_, pipeline, _) = load(&cli, &cwd, ui, &cli_vars(vars)?)?;
            let job = find_job(&pipeline, job)?;
            warn_if_excluded(job, ui);
            print(&listing::show(job));
            Ok(())
        }
        Command::Run(args) => run_job(&cli, args, &cwd, ui, args.dry_run),
        Command::Plan(args) => run_job(&cli, args, &cwd, ui, true),
        Command::Shell { job } => {
            let job = label_name(&cli, &cwd, job.as_deref());
            let endpoint = endpoint(&cli)?;
            runtime()?.block_on(shell(&endpoint, job.as_deref()))
        }
        Command::Clean {
            artifacts, cache, ..
        } if *artifacts || *cache => clean_store(&cli, &cwd, ui, *artifacts, *cache),
        Command::Artifacts { job, out } => artifacts(&cli, &cwd, ui, job, out.as_deref()),
        Command::Clean { job, all, .. } => {
            let job = label_name(&cli, &cwd, job.as_deref());
            let endpoint = endpoint(&cli)?;
            let volumes = if *all {
                ProjectVolumes::All
            } else {
                project_volume_prefix(&cli, &cwd).map_or(ProjectVolumes::None, ProjectVolumes::Of)
            };
            runtime()?.block_on(clean(&endpoint, ui, job.as_deref(), &volumes))?;
            if *all {
                clean_store(&cli, &cwd, ui, true, true)?;
            }
            Ok(())
        }
        Command::Completions { shell } => {
            print(&crate::cli::complete::registration(*shell));
            Ok(())
        }
    }
}

/// The engine the command line and the environment choose, as the docker CLI would.
fn endpoint(cli: &Cli) -> Result<Endpoint, Error> {
    let flags = endpoint::Flags {
        host: cli.host.clone(),
        context: cli.context.clone(),
    };
    endpoint::select(&flags, &endpoint::Environment::from_process()).map_err(|e| match e {
        endpoint::SelectError::Conflict => Error::Usage(e.to_string()),
        endpoint::SelectError::Invalid(m) => Error::Docker(m),
    })
}

fn print(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    if !text.ends_with('\n') {
        let _ = out.write_all(b"\n");
    }
}

/// The pipeline, where it was found, and what git says of the project (read once: the
/// includes and the run both need it).
fn load(
    cli: &Cli,
    cwd: &Path,
    ui: &Ui,
    vars: &[Variable],
) -> Result<(ConfigLocation, Pipeline, GitInfo), Error> {
    let location = discover::discover(cwd, cli.file.as_deref(), cli.directory.as_deref())?;
    let git = git::info(&location.project_root);
    let overrides = vars
        .iter()
        .map(|v| (v.key.clone(), v.value.clone()))
        .collect();
    let options = include_options(cli, &git).with_overrides(&git, overrides);
    let loaded = loader::load_with(&location, &options)?;
    for w in &loaded.warnings {
        ui.warning(w);
    }
    Ok((location, loaded.pipeline, git))
}

/// `--var KEY=VALUE` of `list` and `show`.
fn cli_vars(vars: &[String]) -> Result<Vec<Variable>, Error> {
    vars.iter()
        .map(|kv| {
            crate::cli::config::parse_var(kv)
                .ok_or_else(|| Error::Usage(format!("--var {kv:?}: expected KEY=VALUE")))
        })
        .collect()
}

/// GitLab would not run this job here: say why, naming the rule (cijob runs it anyway).
fn warn_if_excluded(job: &Job, ui: &Ui) {
    if let Some(why) = &job.excluded {
        ui.warning(&format!(
            "job \"{}\" is not in the pipeline GitLab would create here ({why}); cijob goes on as asked",
            job.name
        ));
    }
}

/// Include settings from the flags, the environment and git.
fn include_options(cli: &Cli, git: &GitInfo) -> loader::LoadOptions {
    let mut options = loader::LoadOptions::for_project(cli.gitlab_url.clone(), git);
    options.refresh = cli.refresh_includes;
    options.allow_missing = cli.allow_missing_includes;
    options
}

/// The jobs a name stands for when it is not one job: a parallel job's base name (`test`
/// for `test: [2.2]`...), or a short name that fits several instances or none.
fn instances<'a>(pipeline: &'a Pipeline, name: &str) -> Vec<&'a Job> {
    match job_name::lookup(pipeline, name) {
        Lookup::Choose(jobs, _) => jobs,
        _ => Vec::new(),
    }
}

/// The job `name` stands for: GitLab's name or an instance's short name (`test:2.2`).
fn find_job<'a>(pipeline: &'a Pipeline, name: &str) -> Result<&'a Job, Error> {
    match job_name::lookup(pipeline, name) {
        Lookup::Job(job) => Ok(job),
        Lookup::Choose(jobs, why) => Err(Error::Usage(job_name::choose_message(name, &jobs, &why))),
        Lookup::Unknown => {
            let hint = match listing::suggest(pipeline, name) {
                Some(s) => format!("\nhint: did you mean \"{s}\"?"),
                None => "\nhint: `cijob list` shows the jobs".to_string(),
            };
            Err(Error::Usage(format!(
                "no job named \"{name}\" in {}{hint}",
                pipeline.file.display()
            )))
        }
    }
}

/// The `cijob.job` label of what `shell` and `clean` are given: GitLab's name of the job it
/// stands for (`test:2.2` → `test: [2.2]`). When there is no pipeline, it does not load, or
/// the name is not one of its jobs, the name as given (a kept run of a job renamed since
/// can still be reached).
fn label_name(cli: &Cli, cwd: &Path, name: Option<&str>) -> Option<String> {
    let name = name?;
    let full =
        crate::cli::complete::cached_pipeline(cwd, cli.file.as_deref(), cli.directory.as_deref())
            .and_then(|p| match job_name::lookup(&p, name) {
                Lookup::Job(job) => Some(job.name.clone()),
                _ => None,
            });
    Some(full.unwrap_or_else(|| name.to_string()))
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Failed(format!("cannot start the async runtime: {e}")))
}

fn run_job(cli: &Cli, args: &RunArgs, cwd: &Path, ui: &Ui, dry_run: bool) -> Result<(), Error> {
    // Relative paths on the command line (--var-file) are relative to -C like everything else.
    let base = cli
        .directory
        .as_ref()
        .map_or(cwd.to_path_buf(), |d| cwd.join(d));
    let config = RunConfig::from_args(args, &base)?;
    let (location, pipeline, git) = load(cli, cwd, ui, &config.vars)?;
    if config.debug != DebugMode::Off && !dry_run && !interactive() {
        return Err(Error::Usage(
            "--debug and --step need a terminal (stdin and stderr must be a TTY)".to_string(),
        ));
    }
    let job = match &config.job {
        Some(name) => {
            let several = instances(&pipeline, name);
            if !several.is_empty() && interactive() && !dry_run {
                // A base name on a terminal: let the user pick, starting from what they typed.
                pick(&several, name)?
            } else {
                find_job(&pipeline, name)?
            }
        }
        None if interactive() && !dry_run => {
            let all: Vec<&Job> = pipeline.included().collect();
            pick(&all, "")?
        }
        None => return Err(Error::Usage(no_job_message(&pipeline))),
    };
    warn_if_excluded(job, ui);
    let config_path = location
        .file
        .strip_prefix(&location.project_root)
        .unwrap_or(&location.file)
        .display()
        .to_string();
    // `--needs`: the jobs this one receives artifacts from first, in pipeline order.
    let mut jobs: Vec<&Job> = if config.needs {
        needs::chain(&pipeline, job).map_err(|e| Error::Config(ConfigError::new(e)))?
    } else {
        Vec::new()
    };
    jobs.push(job);
    let store = project_store(&location, &git)?;
    let endpoint = endpoint(cli)?;
    let root = location.project_root.display().to_string();
    let rt = runtime()?;
    // A run (the whole `--needs` chain) holds one of the project's volumes for its whole
    // life (the plan names it); `cijob plan` shows the first.
    let (engine, slot) = if dry_run {
        (None, None)
    } else {
        let (engine, slot) = rt.block_on(async {
            let engine = Engine::connect(&endpoint).await?;
            let dir = slot::state_dir().ok_or_else(|| {
                Error::Failed("no HOME or XDG_CACHE_HOME to keep project volume state in".into())
            })?;
            let slot = slot::acquire(&engine, &dir, |n| {
                crate::plan::sources::volume_name(&git, &root, n)
            })
            .await?;
            Ok::<_, Error>((engine, slot))
        })?;
        (Some(engine), Some(slot))
    };
    // Planned just before it runs: a job's plan holds what the store has of the jobs before it.
    let plan_job = |job: &Job| -> Result<RunPlan, Error> {
        let handover = handover(&pipeline, job, &location, &store)?;
        plan::plan(&PlanInput {
            job,
            git: &git,
            config: &config,
            run_id: &plan::names::new_run_id(),
            config_path: &config_path,
            pid: std::process::id(),
            handover: &handover,
            project_root: &root,
            slot: slot.as_ref().map_or(0, |s| s.id),
        })
    };
    let Some(engine) = engine else {
        let target = crate::plan::recipe::Target {
            describe: endpoint.describe(),
            exports: endpoint.shell_exports(),
        };
        let plans = jobs
            .iter()
            .map(|j| plan_job(j))
            .collect::<Result<Vec<_>, _>>()?;
        print(&match plans.as_slice() {
            [one] => crate::plan::recipe::render(one, &target),
            all => crate::plan::recipe::render_chain(all, &target),
        });
        return Ok(());
    };
    let files: Vec<PathBuf> = git::project_files(&location.project_root).map_err(|e| {
        Error::Failed(format!(
            "listing the project's files in {}: {e}",
            location.project_root.display()
        ))
    })?;
    let project = ProjectSource {
        root: location.project_root.clone(),
        files,
    };
    let result = rt.block_on(async {
        if let Some(w) = dead_runs_warning(&engine).await {
            ui.warning(&w);
        }
        for (i, job) in jobs.iter().enumerate() {
            if jobs.len() > 1 {
                ui.info(&format!(
                    "cijob --needs: job {} of {}: {}",
                    i + 1,
                    jobs.len(),
                    job.name
                ));
            }
            let plan = plan_job(job)?;
            let ui = ui.with_secrets(plan.secrets.clone());
            // A failure stops the chain; a job allowed to fail returns Ok and the chain goes on.
            run::execute(&engine, &plan, &project, &ui).await?;
        }
        Ok(())
    });
    drop(slot);
    result
}

/// The project's folder in cijob's store.
fn project_store(location: &ConfigLocation, git: &GitInfo) -> Result<PathBuf, Error> {
    let root = store::root().ok_or_else(|| {
        Error::Failed(
            "cannot find a folder for cijob's store of artifacts and caches: set CIJOB_STORE_DIR, XDG_CACHE_HOME or HOME".to_string(),
        )
    })?;
    let slug = name_rules::slugify(&format!("{}/{}", git.namespace, git.project));
    Ok(store::project_dir(&root, &location.project_root, &slug))
}

/// What the store has for `job`: the artifacts (and dotenv variables) of the jobs it
/// receives, and the commits its `cache:key:files` hash.
fn handover(
    pipeline: &Pipeline,
    job: &Job,
    location: &ConfigLocation,
    store: &Path,
) -> Result<Handover, Error> {
    let mut handover = Handover {
        store: store.to_path_buf(),
        ..Handover::default()
    };
    handover.received = needs::sources(pipeline, job)
        .map_err(|e| Error::Config(ConfigError::new(e)))?
        .into_iter()
        // Only a job that stores artifacts has anything to hand over.
        .filter(|s| {
            pipeline
                .job(&s.job)
                .is_some_and(crate::plan::artifacts::hands_over)
        })
        .map(|s| {
            let dir = handover.artifacts_dir(&s.job);
            Received {
                stored: store::stored(&dir),
                dir,
                job: s.job,
            }
        })
        .collect();
    handover.key_commits = crate::plan::cache::key_files(job)
        .into_iter()
        .filter_map(|f| Some((f.clone(), git::last_commit(&location.project_root, &f)?)))
        .collect();
    Ok(handover)
}

/// `cijob artifacts JOB [--out DIR]`.
fn artifacts(cli: &Cli, cwd: &Path, ui: &Ui, name: &str, out: Option<&Path>) -> Result<(), Error> {
    let (location, pipeline, git) = load(cli, cwd, ui, &[])?;
    let job = find_job(&pipeline, name)?;
    let store = project_store(&location, &git)?;
    let dir = Handover {
        store,
        ..Handover::default()
    }
    .artifacts_dir(&job.name);
    let Some((meta, archive)) = store::read(&dir) else {
        return Err(Error::Failed(format!(
            "no stored artifacts of job \"{}\": `cijob run {}` stores them (the job needs `artifacts:`)",
            job.name,
            crate::plan::script::shell_escape(name)
        )));
    };
    match out {
        Some(out) => {
            let count = match &archive {
                Some(archive) => store::unpack(archive, out).map_err(|e| {
                    Error::Failed(format!("copying the artifacts into {}: {e}", out.display()))
                })?,
                None => 0,
            };
            ui.info(&format!(
                "Copied {count} files of {} (local run {}) into {}",
                job.name,
                meta.finished(),
                out.display()
            ));
        }
        None => print(
            &store::listing(&meta, archive.as_deref())
                .map_err(|e| Error::Failed(format!("reading {}: {e}", dir.display())))?,
        ),
    }
    Ok(())
}

/// `cijob clean --artifacts / --cache`: the project's folders of the store.
fn clean_store(cli: &Cli, cwd: &Path, ui: &Ui, artifacts: bool, cache: bool) -> Result<(), Error> {
    let location = discover::discover(cwd, cli.file.as_deref(), cli.directory.as_deref())?;
    let git = git::info(&location.project_root);
    let store = project_store(&location, &git)?;
    for (wanted, what, noun) in [
        (artifacts, "artifacts", "artifacts"),
        (cache, "cache", "caches"),
    ] {
        if !wanted {
            continue;
        }
        let removed = store::remove(&store, what)
            .map_err(|e| Error::Failed(format!("removing {}: {e}", store.join(what).display())))?;
        ui.info(&if removed {
            format!("cijob clean: removed the stored {noun} of this project")
        } else {
            format!("cijob clean: no stored {noun} for this project")
        });
    }
    Ok(())
}

/// The fuzzy job picker: each job with its stage and image.
fn pick<'a>(jobs: &[&'a Job], initial: &str) -> Result<&'a Job, Error> {
    if jobs.is_empty() {
        return Err(Error::Usage(
            "the pipeline has no runnable jobs".to_string(),
        ));
    }
    let width = jobs
        .iter()
        .map(|j| j.name.chars().count())
        .max()
        .unwrap_or(0);
    let items: Vec<String> = jobs
        .iter()
        .map(|j| {
            let image = j.image.as_ref().map_or("-", |i| i.name.as_str());
            format!("{:width$}  {}  {}", j.name, j.stage, image)
        })
        .collect();
    let chosen = dialoguer::FuzzySelect::new()
        .with_prompt("Job to run (type to filter, Enter to run, Esc to cancel)")
        .items(&items)
        .with_initial_text(initial)
        .default(0)
        .interact_on_opt(&console::Term::stderr())
        .map_err(|e| Error::Failed(format!("job picker: {e}")))?;
    chosen
        .map(|i| jobs[i])
        .ok_or_else(|| Error::Failed("no job chosen".to_string()))
}

fn interactive() -> bool {
    console::Term::stderr().is_term() && console::user_attended()
}

fn no_job_message(pipeline: &Pipeline) -> String {
    let mut msg = String::from("name the job to run; the jobs are:\n");
    for job in pipeline.included() {
        msg.push_str(&format!("  {} ({})\n", job.name, job.stage));
    }
    msg.trim_end().to_string()
}

/// A shell in a kept build container, where the job left off.
async fn shell(endpoint: &Endpoint, job: Option<&str>) -> Result<(), Error> {
    if !interactive() {
        return Err(Error::Usage("cijob shell needs a terminal".to_string()));
    }
    let engine = Engine::connect(endpoint).await?;
    let build = engine
        .containers_with(&selector(job))
        .await?
        .into_iter()
        .find(|c| c.running && c.labels.get(LABEL_TYPE).map(String::as_str) == Some(TYPE_BUILD))
        .ok_or_else(|| {
            Error::Failed(match job {
                Some(job) => format!(
                    "no kept run of job \"{job}\" is running: start one with `cijob run '{job}' --keep`"
                ),
                None => "no kept run is running: start one with `cijob run JOB --keep`".to_string(),
            })
        })?;
    let state = engine.inspect(&build.id).await?;
    let project_dir = state
        .env
        .iter()
        .find_map(|kv| kv.strip_prefix("CI_PROJECT_DIR="))
        .unwrap_or("/")
        .to_string();
    let cmd = vec![
        "sh".to_string(),
        "-c".to_string(),
        crate::plan::script::resume_shell(&project_dir),
    ];
    crate::execute::terminal::interactive(&engine, &build.id, cmd).await?;
    Ok(())
}

/// Remove what kept or crashed runs left behind, never what a live run is using.
/// Which project volumes `clean` may remove (when no run uses them).
enum ProjectVolumes {
    /// Outside a project.
    None,
    /// This clone's: their names start with this.
    Of(String),
    /// `--all`: every project's.
    All,
}

/// The start of the names of this clone's project volumes, when cijob runs in a project.
fn project_volume_prefix(cli: &Cli, cwd: &Path) -> Option<String> {
    let location = discover::discover(cwd, cli.file.as_deref(), cli.directory.as_deref()).ok()?;
    let git = git::info(&location.project_root);
    let root = location.project_root.display().to_string();
    Some(crate::plan::sources::volume_prefix(&git, &root))
}

async fn clean(
    endpoint: &Endpoint,
    ui: &Ui,
    job: Option<&str>,
    volumes: &ProjectVolumes,
) -> Result<(), Error> {
    let engine = Engine::connect(endpoint).await?;
    let managed = selector(job);
    let (mut removed, mut shared) = (0, 0);
    let state = slot::state_dir();
    for o in engine.objects_with(&managed).await? {
        let owner = leftovers::owner(&o.labels, leftovers::process_alive);
        if !owner.stale() {
            continue;
        }
        let _held = if o.labels.get(LABEL_TYPE).map(String::as_str) == Some(TYPE_PROJECT) {
            match free_project_volume(&engine, &o.name, volumes, state.as_deref()).await? {
                Some(held) => Some(held),
                None => continue,
            }
        } else {
            None
        };
        if let Err(e) = engine.remove(&o).await {
            // Mounted by a container created meanwhile: it is in use, not a leftover.
            if o.kind == Kind::Volume && engine.volume_in_use(&o.name).await.unwrap_or(false) {
                continue;
            }
            return Err(e);
        }
        ui.line(&format!("removed {} {}", o.kind.noun(), o.name));
        removed += 1;
        if owner == leftovers::Owner::Shared {
            shared += 1;
        }
    }
    ui.info(&format!(
        "cijob clean: removed {removed} object(s){}",
        if shared > 0 {
            format!(", {shared} of them shared volume(s) no run was using (project volumes, config.toml cache volumes)")
        } else {
            String::new()
        }
    ));
    Ok(())
}

/// A project volume `clean` may remove, held (its slot locked) until it is gone: one of
/// the chosen projects', whose slot no run holds and which no container uses.
async fn free_project_volume(
    engine: &Engine,
    name: &str,
    volumes: &ProjectVolumes,
    state: Option<&Path>,
) -> Result<Option<std::fs::File>, Error> {
    let wanted = match volumes {
        ProjectVolumes::None => false,
        ProjectVolumes::Of(prefix) => name.starts_with(prefix.as_str()),
        ProjectVolumes::All => true,
    };
    let Some(state) = state.filter(|_| wanted) else {
        return Ok(None);
    };
    let held = slot::hold_if_free(state, name)?;
    if held.is_none() || engine.volume_in_use(name).await? {
        return Ok(None);
    }
    Ok(held)
}

/// The label filter for everything of `job`, or everything cijob made.
fn selector(job: Option<&str>) -> String {
    match job {
        Some(job) => format!("{LABEL_JOB}={job}"),
        None => format!("{LABEL_MANAGED}=true"),
    }
}

/// The warning about what dead runs left behind, if any (best effort: a listing that fails
/// only loses the warning).
async fn dead_runs_warning(engine: &Engine) -> Option<String> {
    let objects = engine
        .objects_with(&format!("{LABEL_MANAGED}=true"))
        .await
        .ok()?;
    leftovers::dead_runs_warning(
        objects.iter().map(|o| (o.kind.noun(), &o.labels)),
        leftovers::process_alive,
    )
}

//! Dispatching a parsed command line to the commands.

use std::path::{Path, PathBuf};

use crate::cli::args::{Cli, Command, RunArgs};
use crate::cli::config::{DebugMode, RunConfig};
use crate::cli::listing;
use crate::error::Error;
use crate::execute::docker::{Engine, Kind};
use crate::execute::endpoint::{self, Endpoint};
use crate::execute::leftovers;
use crate::execute::run::{self, ProjectSource};
use crate::execute::sources::slot;
use crate::model::{Job, Pipeline};
use crate::plan::labels::{LABEL_JOB, LABEL_MANAGED, LABEL_TYPE, TYPE_BUILD, TYPE_PROJECT};
use crate::plan::{self, PlanInput};
use crate::project::discover::{self, ConfigLocation};
use crate::project::git;
use crate::project::git::GitInfo;
use crate::resolve::job_name::{self, Lookup};
use crate::resolve::pipeline as loader;
use crate::ui::Ui;

pub fn run(cli: Cli, ui: &Ui) -> Result<(), Error> {
    let cwd = std::env::current_dir()
        .map_err(|e| Error::Failed(format!("cannot read the current directory: {e}")))?;
    match &cli.command {
        Command::List { json } => {
            let (_, pipeline, _) = load(&cli, &cwd, ui)?;
            let text = if *json {
                listing::json(&pipeline)
            } else {
                listing::table(&pipeline)
            };
            print(&text);
            Ok(())
        }
        Command::Show { job } => {
            let (_, pipeline, _) = load(&cli, &cwd, ui)?;
            print(&listing::show(find_job(&pipeline, job)?));
            Ok(())
        }
        Command::Run(args) => run_job(&cli, args, &cwd, ui, args.dry_run),
        Command::Plan(args) => run_job(&cli, args, &cwd, ui, true),
        Command::Shell { job } => {
            let job = label_name(&cli, &cwd, job.as_deref());
            let endpoint = endpoint(&cli)?;
            runtime()?.block_on(shell(&endpoint, job.as_deref()))
        }
        Command::Clean { job } => {
            let job = label_name(&cli, &cwd, job.as_deref());
            let endpoint = endpoint(&cli)?;
            runtime()?.block_on(clean(&endpoint, ui, job.as_deref()))
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
fn load(cli: &Cli, cwd: &Path, ui: &Ui) -> Result<(ConfigLocation, Pipeline, GitInfo), Error> {
    let location = discover::discover(cwd, cli.file.as_deref(), cli.directory.as_deref())?;
    let git = git::info(&location.project_root);
    let loaded = loader::load_with(&location, &include_options(cli, &git))?;
    for w in &loaded.warnings {
        ui.warning(w);
    }
    Ok((location, loaded.pipeline, git))
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
    let (location, pipeline, git) = load(cli, cwd, ui)?;
    // Relative paths on the command line (--var-file) are relative to -C like everything else.
    let base = cli
        .directory
        .as_ref()
        .map_or(cwd.to_path_buf(), |d| cwd.join(d));
    let config = RunConfig::from_args(args, &base)?;
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
            let all: Vec<&Job> = pipeline.jobs.iter().collect();
            pick(&all, "")?
        }
        None => return Err(Error::Usage(no_job_message(&pipeline))),
    };
    let config_path = location
        .file
        .strip_prefix(&location.project_root)
        .unwrap_or(&location.file)
        .display()
        .to_string();
    let run_id = plan::names::new_run_id();
    let endpoint = endpoint(cli)?;
    let root = location.project_root.display().to_string();
    let rt = runtime()?;
    // A run holds one of the project's volumes for its whole life (the plan names it);
    // `cijob plan` shows the first.
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
    let plan = plan::plan(&PlanInput {
        job,
        git: &git,
        config: &config,
        run_id: &run_id,
        config_path: &config_path,
        pid: std::process::id(),
        project_root: &root,
        slot: slot.as_ref().map_or(0, |s| s.id),
    })?;
    let ui = ui.with_secrets(plan.secrets.clone());
    let Some(engine) = engine else {
        let target = crate::plan::recipe::Target {
            describe: endpoint.describe(),
            exports: endpoint.shell_exports(),
        };
        print(&crate::plan::recipe::render(&plan, &target));
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
        run::execute(&engine, &plan, &project, &ui).await
    });
    drop(slot);
    result
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
    for job in &pipeline.jobs {
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
async fn clean(endpoint: &Endpoint, ui: &Ui, job: Option<&str>) -> Result<(), Error> {
    let engine = Engine::connect(endpoint).await?;
    let managed = selector(job);
    let mut removed = 0;
    for o in engine.objects_with(&managed).await? {
        if leftovers::stale(&o.labels, leftovers::process_alive) {
            // A project volume stays while a run holds its slot or a container uses it.
            let _held = if o.labels.get(LABEL_TYPE).map(String::as_str) == Some(TYPE_PROJECT) {
                let held = match slot::state_dir() {
                    Some(dir) => slot::hold_if_free(&dir, &o.name)?,
                    None => None,
                };
                if held.is_none() || engine.volume_in_use(&o.name).await? {
                    continue;
                }
                held
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
        }
    }
    ui.info(&format!("cijob clean: removed {removed} object(s)"));
    Ok(())
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

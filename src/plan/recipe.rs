//! `cijob plan` / `run --dry-run`: the run plan as a bash script of plain docker commands
//! (the "debug a job locally" recipe, generated). Every object is rendered from the same
//! spec `cijob run` hands to the engine, one function per kind of object. Masked values are
//! never printed: the script takes them from the caller's environment (`-e KEY`).

use crate::execute::health::PROBE_COMMAND;
use crate::model::Variable;
use crate::plan::artifacts::SaveWhen;
use crate::plan::limits::{self, Resources};
use crate::plan::script::{self, shell_escape};
use crate::plan::sources::{self, Clean, Strategy};
use crate::plan::spec::{Attach, ContainerSpec, HealthPorts, Labels, NetworkSpec, VolumeSpec};
use crate::plan::RunPlan;

/// The engine the script talks to: the one `cijob run` would use, pinned by environment
/// variables so that the script does not depend on the shell it runs in.
#[derive(Debug, Default)]
pub struct Target {
    pub describe: String,
    pub exports: Vec<String>,
}

pub fn render(plan: &RunPlan, target: &Target) -> String {
    let masked: Vec<&str> = plan
        .variables
        .iter()
        .filter(|v| v.masked)
        .map(|v| v.key.as_str())
        .collect();
    let mut s = String::new();
    s.push_str("#!/usr/bin/env bash\n");
    s.push_str(&format!(
        "# cijob plan for job {}: the docker commands `cijob run` performs.\n",
        shell_escape(&plan.job_name)
    ));
    s.push_str("# Run it from the project root: bash this-file\n");
    if !masked.is_empty() {
        s.push_str(&format!(
            "# Masked variables are read from your environment: export {} first.\n",
            masked.join(" ")
        ));
    }
    s.push_str("set -euo pipefail\n");
    s.push_str(&format!("# The engine: {}\n", target.describe));
    for line in &target.exports {
        s.push_str(line);
        s.push('\n');
    }
    s.push('\n');
    s.push_str(&cleanup(plan));
    if !plan.keep {
        s.push_str("trap cleanup EXIT\n");
    }
    s.push('\n');

    s.push_str("# The /builds volume (the project's, kept between runs), shared by the build\n# container and every service.\n");
    for (i, v) in plan.volumes.iter().enumerate() {
        if v.shared && i > 0 {
            s.push_str("# config.toml volume: kept between runs (created when missing).\n");
        }
        s.push_str(&volume(v));
    }
    if let Some(net) = &plan.network {
        s.push_str("# FF_NETWORK_PER_BUILD: a bridge network for this job only.\n");
        s.push_str(&network(net));
    }
    s.push('\n');

    for svc in &plan.services {
        s.push_str(&format!(
            "# Service {} (aliases: {}).\n",
            svc.display,
            svc.aliases.join(", ")
        ));
        s.push_str(&container("docker run -d", &svc.container, &masked));
        s.push('\n');
    }
    if let (Some(timeout), false) = (plan.services_timeout, plan.services.is_empty()) {
        s.push_str(&health_check(plan, timeout.as_secs()));
    }

    s.push_str("# The build container: the image's ENTRYPOINT is kept and receives the runner's\n# shell-detection command; the script arrives on stdin.\n");
    s.push_str(&container("docker create", &plan.build.container, &masked));
    s.push('\n');
    s.push_str(&sources(plan));
    s.push_str(&restore_cache(plan));
    s.push_str(&download_artifacts(plan));
    s.push_str(&stages(plan));
    s
}

/// `cijob plan JOB --needs`: each job's script in its own subshell, in the order `cijob run
/// JOB --needs` runs them; the first that fails stops the rest.
pub fn render_chain(plans: &[RunPlan], target: &Target) -> String {
    let names: Vec<String> = plans.iter().map(|p| shell_escape(&p.job_name)).collect();
    let mut s = format!(
        "#!/usr/bin/env bash\n# cijob plan --needs: {}, one after the other.\nset -euo pipefail\n",
        names.join(", then ")
    );
    for plan in plans {
        s.push_str(&format!("\n( # job {}\n", shell_escape(&plan.job_name)));
        s.push_str(&render(plan, target));
        s.push_str(")\n");
    }
    s
}

/// `restore_cache`: each cache from the first of its keys that the store has.
fn restore_cache(plan: &RunPlan) -> String {
    let mut s = String::new();
    for c in plan.caches.iter().filter(|c| c.pull) {
        let files: Vec<String> = c
            .restore_order()
            .iter()
            .map(|k| arg(&c.archive(k).display().to_string()))
            .collect();
        s.push_str(&format!(
            "# Restoring cache {}: the first of its keys cijob's store has (one tar per key).\nfor f in {}; do\n  if [ -f \"$f\" ]; then docker cp - {}:{} < \"$f\"; break; fi\ndone\n",
            c.key,
            files.join(" "),
            plan.build.container.name,
            arg(&plan.project_dir)
        ));
    }
    if !s.is_empty() {
        s.push('\n');
    }
    s
}

/// `download_artifacts`: the received jobs' archives from the store, when there (a chain
/// fills it as it goes). Their dotenv variables are in the build container's environment
/// when the store had them as the plan was made.
fn download_artifacts(plan: &RunPlan) -> String {
    let mut s = String::new();
    for r in &plan.received {
        let from = match &r.stored {
            Some(st) => format!("local run {}", st.finished),
            None => format!(
                "none stored yet: `cijob run {} --needs` runs it first",
                shell_escape(&plan.job_name)
            ),
        };
        s.push_str(&format!(
            "# Artifacts of {} ({from}).\nf={}\nif [ -f \"$f\" ]; then docker cp - {}:{} < \"$f\"; else echo {} >&2; fi\n",
            shell_escape(&r.job),
            arg(&r.dir.join(crate::execute::store::ARCHIVE).display().to_string()),
            plan.build.container.name,
            arg(&plan.project_dir),
            arg(&format!("WARNING: no stored artifacts of {}", r.job)),
        ));
    }
    if !s.is_empty() {
        s.push('\n');
    }
    s
}

/// `archive_cache` and `upload_artifacts`, by the job's status. GNU tar's wildcards stand in
/// for GitLab's globs; cijob itself also takes untracked files and reads dotenv reports.
fn save(plan: &RunPlan) -> String {
    let build = &plan.build.container.name;
    let mut s = String::new();
    let status_test = |when: SaveWhen| match when {
        SaveWhen::OnSuccess => "[ \"$status\" = success ]",
        SaveWhen::OnFailure => "[ \"$status\" != success ]",
        SaveWhen::Always => "true",
    };
    // docker cp names the members after the project directory's last component.
    let base = plan.project_dir.rsplit('/').next().unwrap_or_default();
    let member = |p: &str| {
        format!(
            "{base}/{}",
            p.trim_start_matches("./").trim_end_matches('/')
        )
    };
    let members = |paths: &[String], exclude: &[String]| {
        exclude
            .iter()
            .map(|e| arg(&format!("--exclude={}", member(e))))
            .chain(paths.iter().map(|p| arg(&member(p))))
            .collect::<Vec<_>>()
            .join(" ")
    };
    for c in plan.caches.iter().filter(|c| c.push) {
        s.push_str(&format!(
            "# Saving cache {} (one tar per key).\nif {}; then collect {} {build} {} {}; fi\n",
            c.key,
            status_test(c.when),
            arg(&c.archive(&c.key).display().to_string()),
            arg(&plan.project_dir),
            members(&c.paths, &[])
        ));
    }
    // The files only: dotenv reports are variables for the jobs after, not files (without
    // paths there is nothing to archive; a `collect` without members would take everything).
    if let Some(a) = plan.artifacts.as_ref().filter(|a| !a.paths.is_empty()) {
        s.push_str(&format!(
            "# Uploading artifacts into cijob's store.\nif {}; then collect {} {build} {} {}; fi\n",
            status_test(a.when),
            arg(&a
                .store
                .join(crate::execute::store::ARCHIVE)
                .display()
                .to_string()),
            arg(&plan.project_dir),
            members(&a.paths, &a.exclude)
        ));
    }
    if s.is_empty() {
        return s;
    }
    format!(
        "collect() {{ # OUT CONTAINER DIR MEMBER...: the files of DIR the members match, as a tar relative to DIR\n  local out=$1 c=$2 dir=$3 tmp; shift 3; tmp=$(mktemp -d)\n  docker cp \"$c:$dir\" - | tar -x -C \"$tmp\" --strip-components=1 --wildcards \"$@\" 2>/dev/null || true\n  mkdir -p \"$(dirname \"$out\")\" && tar -c -C \"$tmp\" -f \"$out\" . && rm -rf \"$tmp\"\n}}\n{s}\n"
    )
}

/// The per-run objects, removed on exit (shared volumes stay, as with `cijob run`).
fn cleanup(plan: &RunPlan) -> String {
    let mut containers: Vec<&str> = plan
        .services
        .iter()
        .map(|svc| svc.container.name.as_str())
        .collect();
    containers.push(&plan.build.container.name);
    containers.push(&plan.sources.helper.name);
    let mut s = String::from("cleanup() {\n");
    s.push_str(&format!(
        "  docker rm -f -v {} >/dev/null 2>&1 || true\n",
        containers.join(" ")
    ));
    if let Some(net) = &plan.network {
        s.push_str(&format!(
            "  docker network rm {} >/dev/null 2>&1 || true\n",
            net.name
        ));
    }
    for v in plan.volumes.iter().filter(|v| !v.shared) {
        s.push_str(&format!(
            "  docker volume rm {} >/dev/null 2>&1 || true\n",
            v.name
        ));
    }
    s.push_str("}\n");
    s
}

fn volume(v: &VolumeSpec) -> String {
    format!(
        "docker volume create {} {} >/dev/null\n",
        labels(&v.labels),
        v.name
    )
}

fn network(n: &NetworkSpec) -> String {
    format!(
        "docker network create {} {} >/dev/null\n",
        labels(&n.labels),
        n.name
    )
}

/// `docker run -d` / `docker create` with every setting of the spec.
fn container(verb: &str, c: &ContainerSpec, masked: &[&str]) -> String {
    let mut v = vec![
        if c.stdin {
            format!("{verb} -i")
        } else {
            verb.to_string()
        },
        format!("--name {}", c.name),
        labels(&c.labels),
    ];
    if let Some(h) = &c.hostname {
        v.push(format!("--hostname {}", arg(h)));
    }
    v.extend(c.binds.iter().map(|b| format!("-v {}", arg(b))));
    if c.no_log {
        v.push("--log-driver none".to_string());
    }
    match &c.attach {
        Attach::Bridge => {}
        Attach::Mode(mode) => v.push(format!("--network {}", arg(mode))),
        Attach::Network { name, aliases } => {
            v.push(format!("--network {name}"));
            v.extend(
                aliases
                    .iter()
                    .map(|a| format!("--network-alias {}", arg(a))),
            );
        }
    }
    v.extend(
        c.extra_hosts
            .iter()
            .map(|h| format!("--add-host {}", arg(h))),
    );
    for link in &c.links {
        let ip = format!(
            "\"$(docker inspect -f '{{{{.NetworkSettings.IPAddress}}}}' {})\"",
            link.container
        );
        for alias in &link.aliases {
            v.push(format!("--add-host {alias}:{ip}"));
        }
        v.push(format!(
            "--add-host \"$(docker inspect -f '{{{{printf \"%.12s\" .Id}}}}' {})\":{ip}",
            link.container
        ));
    }
    host_flags(&mut v, c);
    resource_flags(&mut v, &c.resources);
    for (k, val) in &c.env {
        if masked.contains(&k.as_str()) {
            v.push(format!("-e {k}"));
        } else {
            v.push(format!("-e {}", arg(&format!("{k}={val}"))));
        }
    }
    image_and_command(
        &mut v,
        &c.image,
        c.entrypoint.as_deref(),
        c.cmd.as_deref().unwrap_or_default(),
    );
    format!("{} >/dev/null\n", v.join(" \\\n  "))
}

fn host_flags(v: &mut Vec<String>, c: &ContainerSpec) {
    if let Some(u) = &c.user {
        v.push(format!("--user {}", arg(u)));
    }
    if let Some(p) = &c.platform {
        v.push(format!("--platform {}", arg(p)));
    }
    if c.privileged {
        v.push("--privileged".to_string());
    }
    let h = &c.host;
    for (flag, values) in [
        ("--dns", &h.dns),
        ("--cap-add", &h.cap_add),
        ("--cap-drop", &h.cap_drop),
        ("--security-opt", &h.security_opt),
    ] {
        v.extend(values.iter().map(|x| format!("{flag} {}", arg(x))));
    }
    if let Some(bytes) = h.shm_size {
        v.push(format!("--shm-size {bytes}"));
    }
}

fn resource_flags(v: &mut Vec<String>, resources: &Resources) {
    for (flag, bytes) in [
        ("--memory", resources.memory),
        ("--memory-swap", resources.memory_swap),
        ("--memory-reservation", resources.memory_reservation),
    ] {
        if let Some(b) = bytes {
            v.push(format!("{flag} {}", limits::docker_size(b)));
        }
    }
    if let Some(n) = resources.nano_cpus {
        v.push(format!("--cpus {}", limits::cpus_text(n)));
    }
    if resources.oom_kill_disable {
        v.push("--oom-kill-disable".to_string());
    }
}

/// `--entrypoint`, the image, then the command. `--entrypoint` takes one word, so the rest
/// of a multi-word entrypoint leads the command (Docker joins them back the same way).
fn image_and_command(
    v: &mut Vec<String>,
    image: &str,
    entrypoint: Option<&[String]>,
    cmd: &[String],
) {
    let (first, rest) = match entrypoint {
        Some([first, rest @ ..]) => (Some(first.as_str()), rest),
        Some([]) => (Some(""), &[][..]),
        None => (None, &[][..]),
    };
    if let Some(first) = first {
        v.push(format!("--entrypoint {}", arg(first)));
    }
    v.push(arg(image));
    v.extend(rest.iter().chain(cmd).map(|a| arg(a)));
}

/// The runner's rule (the ports of `HealthPorts`), each service's sockets read in its
/// container (`cijob run`'s inside path).
fn health_check(plan: &RunPlan, timeout_secs: u64) -> String {
    let mut s = format!(
        "# Health check: wait up to {timeout_secs}s for one exposed TCP port (or HEALTHCHECK_TCP_PORT) of each service.\n"
    );
    // Looked at from inside, as `cijob run` does where the host cannot dial containers: a
    // host dial to an unreachable address can hang for minutes (macOS), this cannot.
    s.push_str(&format!(
        "wait_for() {{ # container port...: a socket listening on the port, not on loopback, in {}\n  local c=$1 end=$((SECONDS + {timeout_secs})) table p; shift\n  while [ \"$SECONDS\" -lt \"$end\" ]; do\n    table=$(docker exec \"$c\" {} 2>/dev/null || true)\n    for p in \"$@\"; do\n      awk -v p=\"$(printf %04X \"$p\")\" '$4 == \"0A\" {{ split($2, a, \":\"); if (a[2] == p && a[1] !~ /7F$/ && a[1] != \"00000000000000000000000001000000\") f = 1 }} END {{ exit !f }}' <<<\"$table\" && return 0\n    done\n    sleep 0.05\n  done\n  echo \"*** WARNING: Service $c probably didn't start properly.\" >&2; docker logs \"$c\" >&2 || true\n}}\n",
        "/proc/net/tcp{,6}",
        PROBE_COMMAND.join(" ")
    ));
    for svc in &plan.services {
        let c = &svc.container.name;
        let ports = match &svc.health {
            HealthPorts::Port(p) => p.to_string(),
            // The runner's own error: nothing to dial, only the warning.
            HealthPorts::Invalid(v) => {
                s.push_str(&format!(
                    "echo {} >&2\n",
                    arg(&format!(
                        "*** WARNING: Service {c} probably didn't start properly: invalid health check tcp port: {v}"
                    ))
                ));
                continue;
            }
            HealthPorts::Exposed => format!(
                "$(docker inspect -f '{{{{range $p, $_ := .Config.ExposedPorts}}}}{{{{$p}}}} {{{{end}}}}' {c} | tr ' ' '\\n' | grep /tcp | cut -d/ -f1 | sort -n | head -20)"
            ),
        };
        s.push_str(&format!("wait_for {c} {ports}\n"));
    }
    s.push('\n');
    s
}

fn sources(plan: &RunPlan) -> String {
    let sp = &plan.sources;
    let dir = &plan.project_dir;
    let mut s = format!(
        "# The project volume {} (CI_CONCURRENT_ID={}) outlives the run: cijob lists it, removes\n# what must go and sends only what changed. The same result, copying everything:\n",
        sp.volume, sp.slot
    );
    let q = shell_escape(dir);
    let clear = format!(
        "{} && find {q} -mindepth 1 -maxdepth 1 -exec rm -rf {{}} +",
        sources::fresh_dirs(&q, &shell_escape(&script::temp_project_dir(dir)))
    );
    let (what, clear, copy) = match (sp.strategy, &sp.clean) {
        (Strategy::None, _) => (
            "GIT_STRATEGY: none: the project dir is left as it is",
            format!("mkdir -p {}", shell_escape(dir)),
            false,
        ),
        (Strategy::Empty, _) => (
            "GIT_STRATEGY: empty: the project dir is emptied",
            clear,
            false,
        ),
        (Strategy::Fetch, Clean::Keep) if !sp.fresh => (
            "GIT_CLEAN_FLAGS: none: what earlier jobs wrote stays",
            format!("mkdir -p {}", shell_escape(dir)),
            true,
        ),
        _ => (
            "tracked and untracked-but-not-ignored files, and .git; nothing else",
            clear,
            true,
        ),
    };
    s.push_str(&format!("# {what}.\n"));
    let mut helper = sp.helper.clone();
    helper.stdin = false;
    helper.cmd = Some(vec!["sh".to_string(), "-c".to_string(), clear]);
    s.push_str(&container("docker run --rm", &helper, &[]));
    if copy {
        let dest = dir.trim_start_matches('/');
        s.push_str(&format!(
            "{{ git ls-files -co --exclude-standard -z; find .git ! -type d -print0; }} \\\n  | tar --null -T - --ignore-failed-read -c --owner=0 --group=0 --mode=a+rw,u+X,g+X,o+X --transform {} -f - \\\n  | docker cp - {}:/\n",
            arg(&format!("s,^,{dest}/,")),
            plan.build.container.name
        ));
    }
    s.push('\n');
    s
}

/// `step_script`, then `after_script` with the status, then the runner's verdict.
fn stages(plan: &RunPlan) -> String {
    let build = &plan.build.container.name;
    let script_vars: Vec<Variable> = plan
        .variables
        .iter()
        .filter(|v| !v.masked)
        .cloned()
        .collect();
    let step = script::step_script(&script_vars, &plan.project_dir, &plan.step_commands);
    let mut s =
        String::from("# step_script: before_script + script in one shell.\nstatus=success\n");
    s.push_str(&format!(
        "docker start -ai {build} <<'CIJOB_STEP_SCRIPT' || {{ code=$?; status=failed; }}\n{}\nCIJOB_STEP_SCRIPT\n\n",
        step.trim_end()
    ));
    if !plan.after_commands.is_empty() {
        s.push_str("# after_script: a new shell in the same container, with CI_JOB_STATUS set.\n");
        for status in ["success", "failed"] {
            let mut vars = script_vars.clone();
            vars.push(Variable::new("CI_JOB_STATUS", status));
            let after = script::after_script(&vars, &plan.project_dir, &plan.after_commands);
            s.push_str(&format!(
                "if [ \"$status\" = {status} ]; then\n  docker start -ai {build} <<'CIJOB_AFTER_SCRIPT' || echo \"WARNING: after_script failed, but job will continue unaffected: exit code $?\" >&2\n{}\nCIJOB_AFTER_SCRIPT\nfi\n",
                after.trim_end()
            ));
        }
        s.push('\n');
    }
    s.push_str(&save(plan));
    s.push_str("if [ \"$status\" = success ]; then echo 'Job succeeded' >&2; else echo \"ERROR: Job failed: exit code $code\" >&2; exit \"$code\"; fi\n");
    s
}

fn labels(labels: &Labels) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("--label {}", arg(&format!("{k}={v}"))))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A word of a docker command: bare when it reads unambiguously to the shell (`:` and `=`
/// are common in options and harmless past the command's first word), else the runner's
/// escaping.
pub(crate) fn arg(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || ",./@_-:=+".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.to_string()
    } else {
        shell_escape(s)
    }
}

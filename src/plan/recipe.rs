//! `cijob plan` / `run --dry-run`: the run plan as a bash script of plain docker commands
//! (the "debug a job locally" recipe, generated). It is rendered from the same `RunPlan`
//! that `cijob run` executes. Masked values are never printed: the script takes them from
//! the caller's environment (`-e KEY`).

use crate::plan::limits::{self, Resources};
use crate::plan::script::shell_escape;
use crate::plan::{RunPlan, ServicePlan};

pub fn render(plan: &RunPlan) -> String {
    let mut s = String::new();
    let masked: Vec<&str> = plan
        .variables
        .iter()
        .filter(|v| v.masked)
        .map(|v| v.key.as_str())
        .collect();
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
    s.push_str("set -euo pipefail\n\n");

    let mut removals: Vec<String> = plan
        .services
        .iter()
        .map(|svc| svc.container.clone())
        .collect();
    removals.push(plan.build.container.clone());
    s.push_str("cleanup() {\n");
    s.push_str(&format!(
        "  docker rm -f -v {} >/dev/null 2>&1 || true\n",
        removals.join(" ")
    ));
    if let Some(net) = &plan.network {
        s.push_str(&format!(
            "  docker network rm {net} >/dev/null 2>&1 || true\n"
        ));
    }
    s.push_str(&format!(
        "  docker volume rm {} >/dev/null 2>&1 || true\n}}\n",
        plan.volume
    ));
    if !plan.keep {
        s.push_str("trap cleanup EXIT\n");
    }
    s.push('\n');

    let labels = labels(&plan.labels);
    s.push_str("# The /builds volume, shared by the build container and every service.\n");
    s.push_str(&format!(
        "docker volume create {labels} {} >/dev/null\n",
        plan.volume
    ));
    if let Some(net) = &plan.network {
        s.push_str("# FF_NETWORK_PER_BUILD: a bridge network for this job only.\n");
        s.push_str(&format!(
            "docker network create {labels} {net} >/dev/null\n"
        ));
    }
    s.push('\n');

    for svc in &plan.services {
        service(&mut s, plan, svc, &labels, &masked);
    }
    if let (Some(timeout), false) = (plan.services_timeout, plan.services.is_empty()) {
        s.push_str(&format!(
            "# Health check: wait up to {}s for one exposed TCP port (or HEALTHCHECK_TCP_PORT) of each service.\n",
            timeout.as_secs()
        ));
        s.push_str(&format!("wait_for() {{ # container port...\n  local c=$1 ip; shift\n  ip=$(docker inspect -f '{{{{range .NetworkSettings.Networks}}}}{{{{.IPAddress}}}}{{{{end}}}}' \"$c\")\n  for _ in $(seq {}); do\n    for p in \"$@\"; do (exec 3<>\"/dev/tcp/$ip/$p\") 2>/dev/null && return 0; done\n    sleep 0.05\n  done\n  echo \"*** WARNING: Service $c probably didn't start properly.\" >&2; docker logs \"$c\" >&2 || true\n}}\n", timeout.as_secs() * 20));
        for svc in &plan.services {
            s.push_str(&format!(
                "wait_for {} {}\n",
                svc.container,
                probe_ports(svc)
            ));
        }
        s.push('\n');
    }

    // Build container.
    s.push_str("# The build container: the image's ENTRYPOINT is kept and receives the runner's\n# shell-detection command; the script arrives on stdin.\n");
    let mut create = vec![
        "docker create -i".to_string(),
        format!("--name {}", plan.build.container),
        labels.clone(),
        "--label cijob.type=build".to_string(),
        format!("--hostname {}", plan.build.hostname),
        format!("-v {}:/builds", plan.volume),
        "--log-driver none".to_string(),
    ];
    match &plan.network {
        Some(net) => {
            create.push(format!("--network {net}"));
            create.push("--network-alias build".to_string());
            create.push(format!("--network-alias {}", plan.build.container));
        }
        None => {
            for svc in &plan.services {
                for alias in &svc.claimed {
                    create.push(format!(
                        "--add-host {alias}:\"$(docker inspect -f '{{{{.NetworkSettings.IPAddress}}}}' {})\"",
                        svc.container
                    ));
                }
            }
        }
    }
    options(
        &mut create,
        plan.build.user.as_deref(),
        plan.build.platform.as_deref(),
        plan.build.privileged,
        &plan.build.resources,
    );
    env_flags(&mut create, &plan.build.env, &masked);
    image_and_command(
        &mut create,
        &plan.build.image,
        plan.build.entrypoint.as_deref(),
        &plan.build.cmd,
    );
    s.push_str(&join_lines(&create));
    s.push_str(" >/dev/null\n\n");

    s.push_str(&format!(
        "# The project (tracked and untracked-but-not-ignored files, and .git) into {}.\n",
        plan.project_dir
    ));
    let dest = plan.project_dir.trim_start_matches('/');
    s.push_str(&format!(
        "{{ git ls-files -co --exclude-standard -z; find .git -type f -print0; }} \\\n  | tar --null -T - --ignore-failed-read -c --owner=0 --group=0 --transform {} -f - \\\n  | docker cp - {}:/\n\n",
        shell_escape(&format!("s,^,{dest}/,")),
        plan.build.container
    ));

    let script_vars: Vec<_> = plan
        .variables
        .iter()
        .filter(|v| !v.masked)
        .cloned()
        .collect();
    let step =
        crate::plan::script::step_script(&script_vars, &plan.project_dir, &plan.step_commands);
    s.push_str("# step_script: before_script + script in one shell.\nstatus=success\n");
    s.push_str(&format!(
        "docker start -ai {} <<'CIJOB_STEP_SCRIPT' || {{ code=$?; status=failed; }}\n{}\nCIJOB_STEP_SCRIPT\n\n",
        plan.build.container,
        step.trim_end()
    ));
    if !plan.after_commands.is_empty() {
        s.push_str("# after_script: a new shell in the same container, with CI_JOB_STATUS set.\n");
        for status in ["success", "failed"] {
            let mut vars = script_vars.clone();
            vars.push(crate::model::Variable::new("CI_JOB_STATUS", status));
            let after =
                crate::plan::script::after_script(&vars, &plan.project_dir, &plan.after_commands);
            s.push_str(&format!(
                "if [ \"$status\" = {status} ]; then\n  docker start -ai {} <<'CIJOB_AFTER_SCRIPT' || echo \"WARNING: after_script failed, but job will continue unaffected: exit code $?\" >&2\n{}\nCIJOB_AFTER_SCRIPT\nfi\n",
                plan.build.container,
                after.trim_end()
            ));
        }
        s.push('\n');
    }
    s.push_str("if [ \"$status\" = success ]; then echo 'Job succeeded' >&2; else echo \"ERROR: Job failed: exit code $code\" >&2; exit \"$code\"; fi\n");
    s
}

fn service(s: &mut String, plan: &RunPlan, svc: &ServicePlan, labels: &str, masked: &[&str]) {
    s.push_str(&format!(
        "# Service {} (aliases: {}).\n",
        svc.display,
        svc.aliases.join(", ")
    ));
    let mut run = vec![
        "docker run -d".to_string(),
        format!("--name {}", svc.container),
        labels.to_string(),
        "--label cijob.type=service".to_string(),
        format!("-v {}:/builds", plan.volume),
    ];
    if let Some(net) = &plan.network {
        run.push(format!("--network {net}"));
        for a in &svc.aliases {
            run.push(format!("--network-alias {}", shell_escape(a)));
        }
    }
    options(
        &mut run,
        svc.user.as_deref(),
        svc.platform.as_deref(),
        svc.privileged,
        &svc.resources,
    );
    env_flags(&mut run, &svc.env, masked);
    image_and_command(
        &mut run,
        &svc.image,
        svc.entrypoint.as_deref(),
        svc.cmd.as_deref().unwrap_or_default(),
    );
    s.push_str(&join_lines(&run));
    s.push_str(" >/dev/null\n\n");
}

fn probe_ports(svc: &ServicePlan) -> String {
    match &svc.healthcheck_port {
        Some(p) => shell_escape(p),
        None => {
            "$(docker inspect -f '{{range $p, $_ := .Config.ExposedPorts}}{{$p}} {{end}}' "
                .to_string()
                + &svc.container
                + " | tr ' ' '\\n' | grep /tcp | cut -d/ -f1 | sort -n | head -20)"
        }
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
        v.push(format!("--entrypoint {}", shell_escape(first)));
    }
    v.push(shell_escape(image));
    v.extend(rest.iter().chain(cmd).map(|a| shell_escape(a)));
}

fn options(
    v: &mut Vec<String>,
    user: Option<&str>,
    platform: Option<&str>,
    privileged: bool,
    resources: &Resources,
) {
    if let Some(u) = user {
        v.push(format!("--user {}", shell_escape(u)));
    }
    if let Some(p) = platform {
        v.push(format!("--platform {}", shell_escape(p)));
    }
    if privileged {
        v.push("--privileged".to_string());
    }
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

fn env_flags(v: &mut Vec<String>, env: &[(String, String)], masked: &[&str]) {
    for (k, val) in env {
        if masked.contains(&k.as_str()) {
            v.push(format!("-e {k}"));
        } else {
            v.push(format!("-e {}", shell_escape(&format!("{k}={val}"))));
        }
    }
}

fn labels(labels: &[(String, String)]) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("--label {}", shell_escape(&format!("{k}={v}"))))
        .collect::<Vec<_>>()
        .join(" ")
}

fn join_lines(parts: &[String]) -> String {
    parts.join(" \\\n  ")
}

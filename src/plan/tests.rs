//! How the plan applies the run's configuration: a runner config.toml, the flags.

use std::path::Path;

use crate::cli::config::RunConfig;
use crate::cli::runner_config::parse;
use crate::model::{Image, Job, PullPolicy, Service, Variable};
use crate::plan::spec::Attach;
use crate::plan::{plan, PlanInput, RunPlan};
use crate::project::git::GitInfo;

fn job(image: Option<&str>) -> Job {
    Job {
        name: "test".into(),
        base_name: "test".into(),
        image: image.map(|n| Image {
            name: n.into(),
            ..Default::default()
        }),
        services: vec![Service {
            name: "cijob-test/svc-tcp".into(),
            alias: Some("web".into()),
            ..Default::default()
        }],
        script: vec!["true".into()],
        variables: vec![Variable::new("A", "from-job")],
        ..Job::default()
    }
}

fn planned(job: &Job, toml: &str, cli: impl FnOnce(&mut RunConfig)) -> Result<RunPlan, String> {
    let mut cfg = RunConfig {
        runner: Some(parse(toml, Path::new("config.toml"), None).unwrap()),
        ..Default::default()
    };
    cli(&mut cfg);
    plan(&PlanInput {
        job,
        git: &GitInfo::default(),
        config: &cfg,
        run_id: "abc",
        config_path: ".gitlab-ci.yml",
        pid: 1,
        handover: &crate::plan::Handover::default(),
        project_root: "/src/proj",
        slot: 0,
    })
    .map_err(|e| e.to_string())
}

const TOML: &str = r#"
[[runners]]
  executor = "docker"
  environment = ["A=from-runner", "B=from-runner"]
  [runners.docker]
image = "cijob-test/debian"
privileged = true
services_privileged = false
volumes = ["/cache", "/tmp:/host-tmp:ro"]
dns = ["10.0.0.2"]
shm_size = 1024
user = "nobody"
wait_for_services_timeout = 7
memory = "1g"
service_cpus = "0.5"
devices = ["/dev/kvm"]
[[runners.docker.services]]
  name = "cijob-test/svc-noport"
  alias = "first"
  environment = ["S=1"]
"#;

#[test]
fn runner_settings_fill_the_plan() {
    let p = planned(&job(None), TOML, |_| {}).unwrap();
    assert_eq!(p.build.container.image, "cijob-test/debian");
    assert_eq!(p.build.container.user.as_deref(), Some("nobody"));
    assert!(p.build.container.privileged);
    assert!(p.services.iter().all(|s| !s.container.privileged));
    // config.toml services first, then the job's.
    let images: Vec<&str> = p
        .services
        .iter()
        .map(|s| s.container.image.as_str())
        .collect();
    assert_eq!(
        images,
        ["cijob-test/svc-noport:latest", "cijob-test/svc-tcp:latest"]
    );
    assert!(p.services[0]
        .container
        .env
        .contains(&("S".into(), "1".into())));
    // Job variables override runner environment; runner-only ones stay.
    let get = |k: &str| {
        p.build
            .container
            .env
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get("A").as_deref(), Some("from-job"));
    assert_eq!(get("B").as_deref(), Some("from-runner"));
    assert_eq!(p.services_timeout, Some(std::time::Duration::from_secs(7)));
    assert_eq!(p.build.container.host.dns, ["10.0.0.2"]);
    assert_eq!(p.build.container.host.shm_size, Some(1024));
    assert_eq!(p.volumes.len(), 2);
    // Both outlive the run: the project volume and the config.toml one.
    assert!(p.volumes[0].shared && p.volumes[1].shared);
    assert!(p.volumes[0]
        .labels
        .contains(&("cijob.type".into(), "project".into())));
    let name = &p.volumes[1].name;
    assert!(
        name.starts_with("cijob-") && name.contains("-cache-"),
        "{name}"
    );
    assert!(p.volumes[1]
        .labels
        .contains(&("cijob.destination".into(), "/cache".into())));
    // Every container gets /builds, then the config volumes, in order.
    let binds = [
        format!("{}:/builds", p.volumes[0].name),
        format!("{name}:/cache"),
        "/tmp:/host-tmp:ro".into(),
    ];
    assert_eq!(p.build.container.binds, binds);
    assert!(p.services.iter().all(|s| s.container.binds == binds));
    // Host settings reach the services too.
    assert!(p
        .services
        .iter()
        .all(|s| s.container.host == p.build.container.host));
    assert!(p
        .warnings
        .iter()
        .any(|w| w.contains("runners.docker.devices")));
    assert_eq!(p.build.container.resources.memory, Some(1 << 30));
    assert_eq!(
        p.build.memory_from,
        Some(crate::plan::limits::MEMORY_FROM_CONFIG)
    );
    assert!(p
        .services
        .iter()
        .all(|s| s.container.resources.nano_cpus == Some(500_000_000)
            && s.container.resources.memory.is_none()));
    // The same project always gets the same cache volume.
    assert_eq!(
        planned(&job(None), TOML, |_| {}).unwrap().volumes[1].name,
        *name
    );
}

#[test]
fn job_image_beats_the_runner_default_and_cli_privileged_reaches_services() {
    let toml = "[[runners]]\nexecutor = \"docker\"\n[runners.docker]\nimage = \"x\"\n";
    let p = planned(&job(Some("cijob-test/busybox")), toml, |c| {
        c.privileged = true
    })
    .unwrap();
    assert_eq!(p.build.container.image, "cijob-test/busybox");
    assert!(p.build.container.privileged && p.services[0].container.privileged);
}

#[test]
fn pull_policies_follow_allowed_pull_policies() {
    use PullPolicy::*;
    let with =
        |docker: &str| format!("[[runners]]\nexecutor = \"docker\"\n[runners.docker]\n{docker}\n");
    // Config pull_policy is used when the job names none.
    let p = planned(&job(Some("i")), &with("pull_policy = [\"never\"]"), |_| {}).unwrap();
    assert_eq!(p.build.pull, [Never]);
    // Unset allowed_pull_policies: the config pull_policy is the allowed list.
    let mut j = job(Some("i"));
    j.image.as_mut().unwrap().pull_policy = vec![IfNotPresent];
    let e = planned(&j, &with("pull_policy = \"always\""), |_| {}).unwrap_err();
    assert_eq!(
        e,
        "pull_policy ([if-not-present]) defined in GitLab pipeline config is not one of the allowed_pull_policies ([always])"
    );
    // Intersection, in the requested order.
    j.image.as_mut().unwrap().pull_policy = vec![Always, IfNotPresent];
    let p = planned(
        &j,
        &with("allowed_pull_policies = [\"if-not-present\", \"never\"]"),
        |_| {},
    )
    .unwrap();
    assert_eq!(p.build.pull, [IfNotPresent]);
    // --pull is checked too, and named as the source.
    let e = planned(&j, &with("allowed_pull_policies = [\"never\"]"), |c| {
        c.pull = Some(Always)
    })
    .unwrap_err();
    assert!(e.contains("defined in the command line (--pull)"), "{e}");
}

#[test]
fn flags_override_config_limits_and_the_recipe_shows_them() {
    use crate::plan::limits::{MEMORY_FROM_CONFIG, MEMORY_FROM_FLAG};
    const MIB: i64 = 1024 * 1024;
    let toml = "[[runners]]\nexecutor = \"docker\"\n[runners.docker]\nmemory = \"1g\"\nmemory_swap = \"2g\"\ncpus = \"2\"\noom_kill_disable = true\nservice_memory = \"256m\"\nservice_cpus = \"0.5\"\n";
    let p = planned(&job(Some("i")), toml, |_| {}).unwrap();
    assert_eq!(
        p.build.memory_limit(),
        Some((1024 * MIB, MEMORY_FROM_CONFIG))
    );
    let recipe = crate::plan::recipe::render(&p, &Default::default());
    for flag in [
        "--memory 1g",
        "--memory-swap 2g",
        "--cpus 2",
        "--oom-kill-disable",
        "--memory 256m",
        "--cpus 0.5",
    ] {
        assert!(recipe.contains(flag), "{flag}: {recipe}");
    }
    // --memory and --cpus replace the build container's, not the services'.
    let p = planned(&job(Some("i")), toml, |c| {
        c.memory = Some(1536 * MIB);
        c.nano_cpus = Some(1_500_000_000);
    })
    .unwrap();
    assert_eq!(p.build.memory_limit(), Some((1536 * MIB, MEMORY_FROM_FLAG)));
    assert_eq!(p.build.container.resources.memory_swap, Some(2048 * MIB));
    assert_eq!(p.build.container.resources.nano_cpus, Some(1_500_000_000));
    assert_eq!(p.services[0].container.resources.memory, Some(256 * MIB));
    assert!(!p.services[0].container.resources.oom_kill_disable);
    let recipe = crate::plan::recipe::render(&p, &Default::default());
    assert!(recipe.contains("--memory 1536m") && recipe.contains("--cpus 1.5"));
    // No limits: no flags.
    let p = planned(
        &job(Some("i")),
        "[[runners]]\nexecutor = \"docker\"\n",
        |_| {},
    )
    .unwrap();
    let recipe = crate::plan::recipe::render(&p, &Default::default());
    assert!(
        !recipe.contains("--memory") && !recipe.contains("--cpus"),
        "{recipe}"
    );
    assert_eq!(p.build.memory_limit(), None);
    // A combination Docker would refuse names the setting and where memory came from.
    let e = planned(&job(Some("i")), toml, |c| c.memory = Some(4096 * MIB)).unwrap_err();
    assert!(
        e.contains("memory_swap (2 GiB) is less than the memory limit (4 GiB from --memory)"),
        "{e}"
    );
    // --memory 0 lifts the limit (and then the swap limit has nothing to go with).
    let e = planned(&job(Some("i")), toml, |c| c.memory = Some(0)).unwrap_err();
    assert!(e.contains("there is no memory limit"), "{e}");
}

#[test]
fn docker_auth_config_is_masked_everywhere() {
    let toml = "[[runners]]\nexecutor = \"docker\"\nenvironment = [\"DOCKER_AUTH_CONFIG={\\\"auths\\\":{\\\"r.io\\\":{\\\"username\\\":\\\"u\\\",\\\"password\\\":\\\"pw-123\\\"}}}\"]\n";
    let p = planned(&job(Some("r.io/i")), toml, |_| {}).unwrap();
    assert!(p
        .variables
        .iter()
        .filter(|v| v.key == "DOCKER_AUTH_CONFIG")
        .all(|v| v.masked));
    assert!(p.secrets.contains(&"pw-123".to_string()));
    assert!(p
        .auth
        .docker_auth_config
        .as_deref()
        .unwrap()
        .contains("pw-123"));
    let recipe = crate::plan::recipe::render(&p, &Default::default());
    assert!(!recipe.contains("pw-123"), "{recipe}");
    // The process environment is the fallback.
    let p = planned(
        &job(Some("i")),
        "[[runners]]\nexecutor = \"docker\"\n",
        |c| c.process_docker_auth_config = Some("{}".into()),
    )
    .unwrap();
    assert_eq!(p.auth.docker_auth_config.as_deref(), Some("{}"));
}

#[test]
fn the_build_reaches_services_by_links_on_the_bridge_and_by_aliases_on_a_network() {
    // Default bridge: the build container links to each service by its claimed aliases.
    let p = planned(
        &job(Some("i")),
        "[[runners]]\nexecutor = \"docker\"\n",
        |_| {},
    )
    .unwrap();
    assert_eq!(p.build.container.attach, Attach::Bridge);
    let svc = &p.services[0].container;
    assert_eq!(svc.attach, Attach::Bridge);
    assert_eq!(p.build.container.links.len(), 1);
    assert_eq!(p.build.container.links[0].container, svc.name);
    assert!(p.build.container.links[0]
        .aliases
        .contains(&"web".to_string()));
    // config.toml network_mode applies to every container when there is no per-build network.
    let toml = "[[runners]]\nexecutor = \"docker\"\n[runners.docker]\nnetwork_mode = \"host\"\nextra_hosts = [\"db:10.0.0.9\"]\n";
    let p = planned(&job(Some("i")), toml, |_| {}).unwrap();
    assert_eq!(p.build.container.attach, Attach::Mode("host".into()));
    assert_eq!(p.services[0].container.attach, Attach::Mode("host".into()));
    assert_eq!(p.build.container.extra_hosts, ["db:10.0.0.9"]);
    // FF_NETWORK_PER_BUILD: one network, aliases instead of links, network_mode unused.
    let p = planned(&job(Some("i")), toml, |c| {
        c.vars.push(Variable::new("FF_NETWORK_PER_BUILD", "true"))
    })
    .unwrap();
    let net = p.network.as_ref().unwrap().name.clone();
    assert!(p.build.container.links.is_empty());
    assert_eq!(
        p.build.container.attach,
        Attach::Network {
            name: net.clone(),
            aliases: vec!["build".into(), "cijob-test-abc-build".into()]
        }
    );
    match &p.services[0].container.attach {
        Attach::Network { name, aliases } => {
            assert_eq!(name, &net);
            assert!(aliases.contains(&"web".to_string()));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_recipe_renders_every_setting_of_the_specs() {
    let toml = r#"
[[runners]]
  executor = "docker"
  [runners.docker]
    volumes = ["/cache", "/tmp:/host-tmp:ro"]
    dns = ["10.0.0.2"]
    cap_add = ["NET_ADMIN"]
    cap_drop = ["MKNOD"]
    security_opt = ["no-new-privileges"]
    shm_size = 1048576
    extra_hosts = ["db:10.0.0.9"]
"#;
    let p = planned(&job(Some("i")), toml, |_| {}).unwrap();
    let recipe = crate::plan::recipe::render(&p, &Default::default());
    let cache = &p.volumes[1].name;
    for want in [
        "docker volume create --label cijob.managed=true --label cijob.type=cache".to_string(),
        format!("-v {cache}:/cache"),
        "-v /tmp:/host-tmp:ro".to_string(),
        "--dns 10.0.0.2".to_string(),
        "--cap-add NET_ADMIN".to_string(),
        "--cap-drop MKNOD".to_string(),
        "--security-opt no-new-privileges".to_string(),
        "--shm-size 1048576".to_string(),
        "--add-host db:10.0.0.9".to_string(),
        "--add-host web:\"$(docker inspect".to_string(),
        "--log-driver none".to_string(),
    ] {
        assert!(recipe.contains(&want), "{want}:\n{recipe}");
    }
    // Both containers get the host settings; the shared volume survives the cleanup.
    assert_eq!(recipe.matches("--dns 10.0.0.2").count(), 2);
    let cleanup = &recipe[recipe.find("cleanup() {").unwrap()..recipe.find("}\n").unwrap()];
    assert!(!cleanup.contains(cache), "{cleanup}");
    assert!(!cleanup.contains(&p.volumes[0].name), "{cleanup}");
    assert!(cleanup.contains(&p.sources.helper.name), "{cleanup}");
}

const MINIMAL: &str = "[[runners]]\n  executor = \"docker\"\n";

#[test]
fn the_recipe_shows_the_project_volume_and_what_the_strategy_does() {
    let with = |vars: &[(&str, &str)]| {
        let mut j = job(Some("i"));
        j.variables
            .extend(vars.iter().map(|(k, v)| Variable::new(*k, *v)));
        let p = planned(&j, MINIMAL, |_| {}).unwrap();
        (crate::plan::recipe::render(&p, &Default::default()), p)
    };
    let (fetch, p) = with(&[]);
    assert!(p.volumes[0].name.ends_with("-concurrent-0"));
    assert!(fetch.contains(&format!("-v {}:/builds", p.volumes[0].name)));
    assert!(fetch.contains("-exec rm -rf {} +"), "{fetch}");
    assert!(
        fetch.contains("| docker cp - cijob-test-abc-build:/"),
        "{fetch}"
    );
    assert!(fetch.contains("--network none"), "{fetch}");
    let (none, _) = with(&[("GIT_STRATEGY", "none")]);
    assert!(none.contains("GIT_STRATEGY: none"), "{none}");
    assert!(
        !none.contains("docker cp") && !none.contains("rm -rf"),
        "{none}"
    );
    let (keep, _) = with(&[("GIT_CLEAN_FLAGS", "none")]);
    assert!(
        keep.contains("docker cp") && !keep.contains("rm -rf"),
        "{keep}"
    );
    let (empty, _) = with(&[("GIT_STRATEGY", "empty")]);
    assert!(
        empty.contains("rm -rf") && !empty.contains("docker cp"),
        "{empty}"
    );
    let err = planned(
        &{
            let mut j = job(Some("i"));
            j.variables.push(Variable::new("GIT_STRATEGY", "bogus"));
            j
        },
        MINIMAL,
        |_| {},
    )
    .unwrap_err();
    assert!(err.contains("GIT_STRATEGY \"bogus\""), "{err}");
}

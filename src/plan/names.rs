//! Names of the objects a run creates: readable in `docker ps`, unique per run.

/// `cijob-<job slug>-<run id>`, the prefix of every container, network and volume of a run.
pub fn container_prefix(job_name: &str, run_id: &str) -> String {
    let mut slug = String::new();
    // Collapse the dashes slugify leaves for `: [` so names stay readable in `docker ps`.
    for c in docker_name(&crate::project::predefined::slugify(job_name)).chars() {
        if !(c == '-' && slug.ends_with('-')) {
            slug.push(c);
        }
    }
    slug.truncate(30);
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        format!("cijob-{run_id}")
    } else {
        format!("cijob-{slug}-{run_id}")
    }
}

/// Docker names allow `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn docker_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// A fresh random run id.
pub fn new_run_id() -> String {
    format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}

//! The shell script the build container runs, generated like the runner's bash shell.

use crate::model::Variable;

/// The runner's shell-detection command (`sh -c <this>`), with `$@` replaced by nothing.
pub const DETECT_SHELL: &str = "";

/// `helpers.ShellEscape`: bare when only `[A-Za-z0-9,./@_-]`, else `$'...'`.
pub fn shell_escape(s: &str) -> String {
    let _ = s;
    todo!("helper B")
}

/// The `step_script` stage: exports, `cd`, each command echoed then run, wrapped as the runner does.
pub fn step_script(vars: &[Variable], project_dir: &str, commands: &[String]) -> String {
    let _ = (vars, project_dir, commands);
    todo!("helper B")
}

/// The `after_script` stage (same wrapper, "Running after script..." banner).
pub fn after_script(vars: &[Variable], project_dir: &str, commands: &[String]) -> String {
    let _ = (vars, project_dir, commands);
    todo!("helper B")
}

//! The shell script the build container runs, generated like the runner's bash shell.
//!
//! The script is written to the detected shell's stdin (bash, or `sh` such as dash/busybox
//! ash when the image has no bash), so everything here is POSIX `sh` plus `$'…'` quoting,
//! which bash, busybox ash and dash ≥ 0.5.12 all understand.

use crate::model::Variable;

/// The runner's shell-detection command (`sh -c <this>`), with `$@` replaced by nothing.
pub const DETECT_SHELL: &str = "if [ -x /usr/local/bin/bash ]; then
\texec /usr/local/bin/bash 
elif [ -x /usr/bin/bash ]; then
\texec /usr/bin/bash 
elif [ -x /bin/bash ]; then
\texec /bin/bash 
elif [ -x /usr/local/bin/sh ]; then
\texec /usr/local/bin/sh 
elif [ -x /usr/bin/sh ]; then
\texec /usr/bin/sh 
elif [ -x /bin/sh ]; then
\texec /bin/sh 
elif [ -x /busybox/sh ]; then
\texec /busybox/sh 
else
\techo shell not found
\texit 1
fi

";

const ANSI_BOLD_GREEN: &str = "\x1b[32;1m";
const ANSI_RESET: &str = "\x1b[0;m";

fn is_shell_safe(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b',' | b'.' | b'/' | b'@' | b'_' | b'-')
}

/// `helpers.ShellEscape`: bare when only `[A-Za-z0-9,./@_-]`, else `$'...'`.
///
/// The empty string becomes `''` (an empty argument rather than nothing). Bytes ≥ 0x80 are
/// kept verbatim so UTF-8 text survives; control bytes and DEL become `\xNN`.
pub fn shell_escape(s: &str) -> String {
    if s.is_empty() {
        return "''".to_string();
    }
    if s.bytes().all(is_shell_safe) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    out.push_str("$'");
    for ch in s.chars() {
        match ch {
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\x0b' => out.push_str("\\v"),
            '\x0c' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Go's `%q` for the plain paths the runner quotes that way.
fn double_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// What the shell prints before each command (`$ cmd` in bold green).
const COMMAND_ECHO: &[u8] = b"\x1b[32;1m$ ";

/// Watches a stage's stdout for the first command echo, across chunk boundaries: if none
/// ever comes, the shell never got as far as the script's first command.
#[derive(Debug, Default)]
pub struct EchoSpotter {
    tail: Vec<u8>,
    seen: bool,
}

impl EchoSpotter {
    pub fn push(&mut self, bytes: &[u8]) {
        if self.seen {
            return;
        }
        self.tail.extend_from_slice(bytes);
        self.seen = self
            .tail
            .windows(COMMAND_ECHO.len())
            .any(|w| w == COMMAND_ECHO);
        let keep = COMMAND_ECHO.len() - 1;
        self.tail.drain(..self.tail.len().saturating_sub(keep));
    }

    pub fn seen(&self) -> bool {
        self.seen
    }
}

/// Why a job whose first command never ran ended, given the build container's entrypoint
/// (`None`: the image's own). The runner passes its shell-detection script as the
/// container's command, so an entrypoint that does not run its arguments ends the job here.
pub fn script_never_ran(code: i64, entrypoint: Option<&[String]>) -> String {
    let whose = match entrypoint {
        Some(e) if e.iter().any(|a| !a.is_empty()) => {
            format!("the entrypoint set in `image:entrypoint` ({})", e.join(" "))
        }
        Some(_) => {
            return format!(
                "The job's first command never ran: the build container exited with code {code} before it (the entrypoint is reset, so the shell itself stopped: see its output above)"
            )
        }
        None => "the image's ENTRYPOINT".to_string(),
    };
    format!(
        "The job's first command never ran: the build container exited with code {code} before it. \
         Most likely {whose} does not run the command it is given (the runner passes a \
         shell-detection script as the container's command and the job script on stdin; an \
         entrypoint script should end with `exec \"$@\"`, or set `image: {{entrypoint: [\"\"]}}`); \
         otherwise the shell stopped before the first command (see its output above)"
    )
}

/// Accumulates body lines the way the runner's `BashWriter` does (one command per line).
struct Body(String);

impl Body {
    fn line(&mut self, l: &str) {
        self.0.push_str(l);
        self.0.push('\n');
    }
    fn notice(&mut self, text: &str) {
        self.line(&format!(
            "echo {}",
            shell_escape(&format!("{ANSI_BOLD_GREEN}{text}{ANSI_RESET}"))
        ));
    }
}

/// `RUNNER_TEMP_PROJECT_DIR`: where the runner keeps `gitlab_runner_env`.
pub fn temp_project_dir(project_dir: &str) -> String {
    format!("{project_dir}.tmp")
}

/// Exports, the `GITLAB_ENV` file and the `cd` into the project, common to every stage.
fn prologue(vars: &[Variable], project_dir: &str) -> Body {
    let mut b = Body(String::new());
    for v in vars {
        b.line(&format!(
            "export {}={}",
            shell_escape(&v.key),
            shell_escape(&v.value)
        ));
    }
    let tmp = temp_project_dir(project_dir);
    let env_file = format!("{tmp}/gitlab_runner_env");
    b.line(&format!("export GITLAB_ENV={}", shell_escape(&env_file)));
    b.line(&format!("mkdir -p {}", double_quote(&tmp)));
    b.line(&format!("touch {}", double_quote(&env_file)));
    b.line(&format!(
        "while read -r line; do export \"$line\"; done < {}",
        double_quote(&env_file)
    ));
    b.line(&format!("cd {}", shell_escape(project_dir)));
    b
}

/// `writeCommands`: each command trimmed, announced in bold green, then run.
fn commands_into(b: &mut Body, commands: &[String]) {
    for cmd in commands {
        let cmd = cmd.trim();
        if cmd.is_empty() {
            b.line("echo");
            continue;
        }
        match cmd.split_once('\n') {
            None => b.notice(&format!("$ {cmd}")),
            Some((first, _)) => b.notice(&format!("$ {first} # collapsed multi-line command")),
        }
        b.line(cmd);
    }
}

/// `CI_DEBUG_TRACE` as the runner reads it (Go `strconv.ParseBool`, last definition wins).
fn debug_trace(vars: &[Variable]) -> bool {
    matches!(
        crate::expand::lookup(vars, "CI_DEBUG_TRACE"),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True")
    )
}

/// The 19.1+ `BashWriter.Finish` wrapper around an escaped body.
fn wrap(body: &str, trace: bool) -> String {
    let mut s = String::new();
    s.push_str("#!/usr/bin/env bash\n\n");
    s.push_str("trap 'exit 1' TERM\n\n");
    if trace {
        s.push_str("set -o xtrace\n");
    }
    s.push_str("case \"$(set -o)\" in *\"pipefail\"*) set -o pipefail;; esac; set -o errexit\n");
    s.push_str("set +o noclobber\n");
    // The subshell reads from /dev/null so commands cannot swallow the rest of the script,
    // which the shell is still reading from its stdin.
    s.push_str(&format!(
        "( trap 'exit 1' TERM; eval {} ) < /dev/null\n",
        shell_escape(body)
    ));
    s.push_str("exit 0\n");
    s
}

/// The `step_script` stage: exports, `cd`, each command echoed then run, wrapped as the runner does.
pub fn step_script(vars: &[Variable], project_dir: &str, commands: &[String]) -> String {
    let mut b = prologue(vars, project_dir);
    commands_into(&mut b, commands);
    wrap(&b.0, debug_trace(vars))
}

/// The `after_script` stage (same wrapper, "Running after script..." banner).
pub fn after_script(vars: &[Variable], project_dir: &str, commands: &[String]) -> String {
    let mut b = prologue(vars, project_dir);
    b.notice("Running after script...");
    commands_into(&mut b, commands);
    wrap(&b.0, debug_trace(vars))
}

/// Where debug mode keeps the shell state of a paused job (inside the `/builds` volume).
pub fn debug_state_dir(project_dir: &str) -> String {
    format!("{}/cijob-debug", temp_project_dir(project_dir))
}

/// A segment of the `step_script` stage for debug mode: the runner's script for
/// `commands[start..end]`, plus a trap that saves the shell's state (exported variables,
/// working directory, the command it stopped at and its exit status) whenever the shell
/// exits, so that a later segment or an interactive shell can resume from exactly there.
/// With `resume`, the saved state is restored after the usual prologue.
pub fn debug_segment(
    vars: &[Variable],
    project_dir: &str,
    commands: &[String],
    start: usize,
    end: usize,
    resume: bool,
) -> String {
    let state = debug_state_dir(project_dir);
    let q = double_quote(&state);
    let mut b = prologue(vars, project_dir);
    if resume {
        b.line(&format!(". {q}/env 2>/dev/null || true"));
        b.line(&format!("cd \"$(cat {q}/cwd)\""));
    }
    // `export -p` output is re-readable by the same shell; the step index says where it stopped.
    b.line(&format!(
        "__cijob_save() {{ __cijob_rc=$?; mkdir -p {q}; export -p > {q}/env; pwd > {q}/cwd; echo \"$__cijob_step $__cijob_rc\" > {q}/status; }}"
    ));
    b.line("trap __cijob_save EXIT");
    let end = end.min(commands.len());
    for (i, cmd) in commands.iter().enumerate().take(end).skip(start) {
        b.line(&format!("__cijob_step={i}"));
        commands_into(&mut b, std::slice::from_ref(cmd));
    }
    b.line(&format!("__cijob_step={end}"));
    wrap(&b.0, debug_trace(vars))
}

/// A command that opens an interactive shell where a paused job stopped (or, without saved
/// state, in the project directory), preferring bash like the runner's shell detection.
pub fn resume_shell(project_dir: &str) -> String {
    let q = double_quote(&debug_state_dir(project_dir));
    format!(
        "if [ -f {q}/env ]; then . {q}/env 2>/dev/null; cd \"$(cat {q}/cwd)\"; else cd {}; fi; \
         for s in /usr/local/bin/bash /usr/bin/bash /bin/bash; do [ -x \"$s\" ] && exec \"$s\" -i; done; \
         for s in /usr/local/bin/sh /usr/bin/sh /bin/sh /busybox/sh; do [ -x \"$s\" ] && exec \"$s\" -i; done; \
         echo shell not found; exit 1",
        shell_escape(project_dir)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    #[test]
    fn spots_a_command_echo_split_across_chunks() {
        let mut s = EchoSpotter::default();
        s.push(b"entrypoint says hi\n\x1b[32");
        assert!(!s.seen());
        s.push(b";1m$ echo hi\x1b[0;m\n");
        assert!(s.seen());
    }

    #[test]
    fn plain_dollar_signs_are_not_command_echoes() {
        let mut s = EchoSpotter::default();
        for chunk in [&b"$ echo"[..], b"\x1b[32;1m", b"done $ \n"] {
            s.push(chunk);
        }
        assert!(!s.seen());
    }

    #[test]
    fn never_ran_names_the_entrypoint_to_blame() {
        let custom = [
            "/bin/sh".to_string(),
            "-c".to_string(),
            "exit 7".to_string(),
        ];
        let msg = script_never_ran(7, Some(&custom));
        assert!(msg.contains("exited with code 7"), "{msg}");
        assert!(
            msg.contains("`image:entrypoint` (/bin/sh -c exit 7)"),
            "{msg}"
        );
        assert!(msg.contains("exec \"$@\""), "{msg}");
        assert!(script_never_ran(1, None).contains("the image's ENTRYPOINT"));
        let reset = script_never_ran(1, Some(&[String::new()]));
        assert!(reset.contains("the shell itself stopped"), "{reset}");
        assert!(!reset.contains("ENTRYPOINT"), "{reset}");
    }

    #[test]
    fn detect_shell_shape() {
        assert!(DETECT_SHELL
            .starts_with("if [ -x /usr/local/bin/bash ]; then\n\texec /usr/local/bin/bash \n"));
        assert!(DETECT_SHELL.ends_with("\techo shell not found\n\texit 1\nfi\n\n"));
        assert_eq!(DETECT_SHELL.matches("\texec ").count(), 7);
        assert!(!DETECT_SHELL.contains("$@"));
        // It must be a valid script for sh.
        let out = Command::new("sh")
            .arg("-n")
            .arg("-c")
            .arg(DETECT_SHELL)
            .status()
            .unwrap();
        assert!(out.success());
    }

    #[test]
    fn escaping() {
        assert_eq!(shell_escape("abc-DEF_1,2./@x"), "abc-DEF_1,2./@x");
        assert_eq!(shell_escape(""), "''");
        assert_eq!(shell_escape("a b"), "$'a b'");
        assert_eq!(shell_escape("it's"), "$'it\\'s'");
        assert_eq!(shell_escape("a\\b"), "$'a\\\\b'");
        assert_eq!(
            shell_escape("\x07\x08\t\n\x0b\x0c\r"),
            "$'\\a\\b\\t\\n\\v\\f\\r'"
        );
        assert_eq!(shell_escape("\x1b[0m\x01\x7f"), "$'\\x1b[0m\\x01\\x7f'");
        assert_eq!(shell_escape("$HOME \"q\""), "$'$HOME \"q\"'");
        assert_eq!(shell_escape("héllo"), "$'héllo'");
        assert_eq!(shell_escape("a=b"), "$'a=b'");
    }

    #[test]
    fn exact_wrapper_and_body() {
        let vars = vec![Variable::new("CI", "true"), Variable::new("MSG", "a b")];
        let s = step_script(&vars, "/builds/g/p", &["echo hi".into(), "  ".into()]);
        let body = "export CI=true\nexport MSG=$'a b'\n\
            export GITLAB_ENV=/builds/g/p.tmp/gitlab_runner_env\n\
            mkdir -p \"/builds/g/p.tmp\"\ntouch \"/builds/g/p.tmp/gitlab_runner_env\"\n\
            while read -r line; do export \"$line\"; done < \"/builds/g/p.tmp/gitlab_runner_env\"\n\
            cd /builds/g/p\necho $'\\x1b[32;1m$ echo hi\\x1b[0;m'\necho hi\necho\n";
        let expected = format!(
            "#!/usr/bin/env bash\n\ntrap 'exit 1' TERM\n\n\
             case \"$(set -o)\" in *\"pipefail\"*) set -o pipefail;; esac; set -o errexit\n\
             set +o noclobber\n( trap 'exit 1' TERM; eval {} ) < /dev/null\nexit 0\n",
            shell_escape(body)
        );
        assert_eq!(s, expected);
        assert!(s.contains("eval $'export CI=true\\nexport MSG=$\\'a b\\'\\n"));
    }

    #[test]
    fn debug_trace_enables_xtrace() {
        let on = step_script(&[Variable::new("CI_DEBUG_TRACE", "true")], "/p", &[]);
        assert!(on.contains("trap 'exit 1' TERM\n\nset -o xtrace\ncase "));
        let off = step_script(
            &[
                Variable::new("CI_DEBUG_TRACE", "true"),
                Variable::new("CI_DEBUG_TRACE", "no"),
            ],
            "/p",
            &[],
        );
        assert!(!off.contains("xtrace"));
    }

    #[test]
    fn multiline_notice() {
        let s = after_script(&[], "/p", &["if true; then\n  echo x\nfi\n".into()]);
        assert!(s.contains("Running after script..."));
        assert!(s.contains(
            "echo $\\'\\\\x1b[32;1m$ if true; then # collapsed multi-line command\\\\x1b[0;m\\'\\nif true; then\\n  echo x\\nfi\\n"
        ));
    }

    /// Shells available on this machine to run generated scripts with.
    fn shells() -> Vec<Vec<&'static str>> {
        let mut v = Vec::new();
        for sh in [
            vec!["bash"],
            vec!["dash"],
            vec!["sh"],
            vec!["busybox", "sh"],
        ] {
            let ok = Command::new(sh[0])
                .args(&sh[1..])
                .args(["-c", "exit 0"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                v.push(sh);
            }
        }
        assert!(
            v.iter().any(|s| s[0] == "bash"),
            "bash is required for these tests"
        );
        v
    }

    /// Feed the script on stdin, as the runner does; returns (exit code, stdout, stderr).
    fn run(shell: &[&str], script: &str) -> (i32, String, String) {
        let mut child = Command::new(shell[0])
            .args(&shell[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn cmds(c: &[&str]) -> Vec<String> {
        c.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn runs_in_real_shells() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("proj dir");
        std::fs::create_dir(&project).unwrap();
        let project = project.to_str().unwrap().to_string();
        let tricky = "q'uo\"te $HOME `x` \\ \n new line\ttab ünïcødé ✓";
        let vars = vec![
            Variable::new("TRICKY", tricky),
            Variable::new("PLAIN", "value"),
            Variable::new("EMPTY", ""),
        ];
        let mut tested: Vec<String> = Vec::new();
        for sh in shells() {
            let name = sh.join(" ");
            // dash ≤ 0.5.12 has no `$'…'` quoting: the runner's script cannot work there
            // either (the real runner hits the same syntax error), so only check it fails.
            if run(&sh, "echo $'a\\nb'\n").1 != "a\nb\n" {
                let script = step_script(&vars, &project, &cmds(&["echo hi"]));
                let (code, out, _) = run(&sh, &script);
                assert_ne!(code, 0, "{name}");
                assert!(!out.contains("hi"), "{name}");
                continue;
            }
            tested.push(name.clone());
            // Success path: variables, cwd, multi-line commands, stdin not eaten.
            let script = step_script(
                &vars,
                &project,
                &cmds(&[
                    "printf '%s|' \"$TRICKY\" \"$PLAIN\" \"[$EMPTY]\"; echo",
                    "pwd",
                    "for i in 1 2; do\n  echo \"n$i\"\ndone",
                    "cat; echo after-cat",
                    "echo FOO=bar >> \"$GITLAB_ENV\"",
                ]),
            );
            let (code, out, err) = run(&sh, &script);
            assert_eq!(code, 0, "{name}: {err}");
            assert!(
                out.contains(&format!("{tricky}|value|[]|")),
                "{name}: {out}"
            );
            assert!(out.contains(&format!("\n{project}\n")), "{name}: {out}");
            assert!(out.contains("n1\nn2\n"), "{name}");
            assert!(out.contains("after-cat"), "{name}");
            assert!(out.contains("\x1b[32;1m$ pwd\x1b[0;m\n"), "{name}: {out}");
            assert!(
                out.contains("$ for i in 1 2; do # collapsed multi-line command"),
                "{name}"
            );
            // GITLAB_ENV written by one stage is loaded by the next.
            let after = after_script(&vars, &project, &cmds(&["echo \"got $FOO\""]));
            let (code, out, _) = run(&sh, &after);
            assert_eq!(code, 0, "{name}");
            assert!(out.contains("Running after script...\x1b[0;m\n"), "{name}");
            assert!(out.contains("got bar"), "{name}: {out}");
            std::fs::remove_file(format!("{project}.tmp/gitlab_runner_env")).unwrap();

            // A failing command stops the script with its status.
            let script = step_script(&vars, &project, &cmds(&["echo one", "false", "echo two"]));
            let (code, out, _) = run(&sh, &script);
            assert_eq!(code, 1, "{name}");
            assert!(
                out.contains("one") && !out.contains("two\n"),
                "{name}: {out}"
            );

            let script = step_script(&vars, &project, &cmds(&["exit 3", "echo no"]));
            let (code, out, _) = run(&sh, &script);
            assert_eq!(code, 3, "{name}");
            assert!(!out.contains("no\n"), "{name}");

            // pipefail where the shell has it (bash, busybox ash, dash ≥ 0.5.12).
            let has_pipefail = run(&sh, "set -o pipefail\n").0 == 0;
            let script = step_script(&vars, &project, &cmds(&["false | true", "echo reached"]));
            let (code, out, _) = run(&sh, &script);
            if has_pipefail {
                assert_eq!(code, 1, "{name}");
                assert!(!out.contains("reached\n"), "{name}");
            } else {
                assert_eq!(code, 0, "{name}");
                assert!(out.contains("reached\n"), "{name}");
            }
        }
        assert!(tested.contains(&"bash".to_string()), "{tested:?}");
        let have_busybox = shells().iter().any(|s| s[0] == "busybox");
        assert!(
            !have_busybox || tested.contains(&"busybox sh".to_string()),
            "{tested:?}"
        );
    }

    #[test]
    fn debug_segments_save_and_resume_state() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("proj");
        std::fs::create_dir_all(project.join("sub")).unwrap();
        let project = project.to_str().unwrap();
        let cmds: Vec<String> = [
            "export FOO=bar",
            "cd sub",
            "test -f fixed",
            "echo \"after $FOO in $(basename $(pwd))\"",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let vars = vec![Variable::new("A", "1")];
        let mut shells: Vec<Vec<&str>> = vec![vec!["bash"]];
        if Command::new("busybox")
            .arg("true")
            .status()
            .is_ok_and(|s| s.success())
        {
            shells.push(vec!["busybox", "sh"]);
        }
        for shell in shells {
            let _ = std::fs::remove_dir_all(debug_state_dir(project));
            let _ = std::fs::remove_file(format!("{project}/sub/fixed"));
            let (code, _, _) = run(&shell, &debug_segment(&vars, project, &cmds, 0, 4, false));
            assert_eq!(code, 1, "{shell:?}");
            let state = debug_state_dir(project);
            let status = std::fs::read_to_string(format!("{state}/status")).unwrap();
            assert_eq!(status.trim(), "2 1", "{shell:?}");
            assert!(std::fs::read_to_string(format!("{state}/cwd"))
                .unwrap()
                .trim()
                .ends_with("/proj/sub"));
            std::fs::write(format!("{project}/sub/fixed"), "").unwrap();
            // Retry from the failed command, in the saved state.
            let (code, out, _) = run(&shell, &debug_segment(&vars, project, &cmds, 2, 4, true));
            assert_eq!(code, 0, "{shell:?}: {out}");
            assert!(out.contains("after bar in sub"), "{shell:?}: {out}");
            let status = std::fs::read_to_string(format!("{state}/status")).unwrap();
            assert_eq!(status.trim(), "4 0", "{shell:?}");
        }
    }
}

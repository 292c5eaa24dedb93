//! Shell completions: the registration scripts (`cijob completions <shell>`) and the dynamic
//! job-name completer the scripts call back into (`CIJOB_COMPLETE=<shell> cijob -- ...`).
//!
//! Completion must stay quiet and cheap: it only reads local files, never talks to Docker,
//! and any error (bad YAML, missing directory...) yields no candidates rather than a message.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::sync::OnceLock;

use clap::ValueEnum;
use clap_complete::engine::CompletionCandidate;
use clap_complete::env::{Bash, Elvish, EnvCompleter, Fish, Powershell, Zsh};
use clap_complete::CompleteEnv;

use crate::cli::shell_word::{self, Quoting};

/// The environment variable the registration scripts set when they call back into cijob.
pub const VAR: &str = "CIJOB_COMPLETE";

/// The request being answered, for the completer (clap_complete gives it only the word).
static REQUEST: OnceLock<Request> = OnceLock::new();

struct Request {
    /// The shell asking (clap_complete removes `VAR` before our completer runs).
    shell: String,
    /// The words being completed (after `--`), as given or as re-split by `bash_colon_words`.
    words: Vec<OsString>,
    /// bash only: the text of the current word before its last `:`, which readline keeps (it
    /// replaces only what follows), so replies must leave it out. Dequoted.
    bash_cut: String,
    /// cijob's command line, to find `-f` and `-C` among the words.
    command: fn() -> clap::Command,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}

impl Shell {
    fn adapter(self) -> &'static dyn EnvCompleter {
        match self {
            Shell::Bash => &Bash,
            Shell::Zsh => &Zsh,
            Shell::Fish => &Fish,
            Shell::Elvish => &Elvish,
            Shell::Powershell => &Powershell,
        }
    }

    /// Where the generated script is committed (conventional names for each shell).
    pub fn file_name(self) -> &'static str {
        match self {
            Shell::Bash => "cijob.bash",
            Shell::Zsh => "_cijob",
            Shell::Fish => "cijob.fish",
            Shell::Elvish => "cijob.elv",
            Shell::Powershell => "_cijob.ps1",
        }
    }
}

/// The registration script for `shell`. It calls `cijob` through `PATH` (not this binary's
/// own path), so the output is the same on every machine and can be committed.
pub fn registration(shell: Shell) -> String {
    registration_calling(shell, "cijob")
}

/// Passed by the bash script: the current word as typed. bash hands the function (and so
/// cijob) only the text after an opened quote, and the reply must not be escaped then.
const RAW_WORD_VAR: &str = "CIJOB_COMPLETE_RAW_WORD";
/// Passed by the bash script: the command line up to the cursor, to undo bash's splitting of
/// words at `:` (COMP_WORDBREAKS), which turns `run test:` into the words `run test ""`.
const LINE_VAR: &str = "CIJOB_COMPLETE_LINE";
const BASH_ANCHOR: &str = "        _CLAP_COMPLETE_SPACE=\"$_CLAP_COMPLETE_SPACE\" \\\n";

fn registration_calling(shell: Shell, completer: &str) -> String {
    let mut buf = Vec::new();
    shell
        .adapter()
        .write_registration(VAR, "cijob", "cijob", completer, &mut buf)
        .expect("writing to a Vec cannot fail");
    let script = String::from_utf8(buf).expect("the scripts are UTF-8");
    if shell == Shell::Bash {
        // A clap_complete upgrade that moves the anchor is caught by the tests.
        script.replacen(
            BASH_ANCHOR,
            &format!(
                "{BASH_ANCHOR}        {RAW_WORD_VAR}=\"${{COMP_WORDS[COMP_CWORD]}}\" \\\n        \
                 {LINE_VAR}=\"${{COMP_LINE:0:COMP_POINT}}\" \\\n"
            ),
            1,
        )
    } else {
        script
    }
}

/// Answer a completion request if `CIJOB_COMPLETE` is set, then exit; otherwise return.
/// Must run before anything is printed and before the real parse (which would reject the
/// partial command line). `command` is cijob's command line (given, so that the argument
/// definitions can name this module's completer without a cycle).
pub fn handle_env(command: fn() -> clap::Command) {
    let Some(value) = std::env::var_os(VAR) else {
        return;
    };
    // `CIJOB_COMPLETE=$SHELL` is allowed, as in clap_complete: `/bin/bash` means bash.
    let path = std::path::Path::new(&value);
    let shell = path
        .file_stem()
        .unwrap_or(path.as_os_str())
        .to_string_lossy()
        .into_owned();
    let cwd = std::env::current_dir().ok();
    // `CIJOB_COMPLETE=bash cijob` (no `--`) asks for the script: print ours (bash is patched
    // above), calling this binary the way clap_complete would.
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_default();
    if !args.any(|a| a == "--") {
        if let Ok(shell) = Shell::from_str(&shell, true) {
            let mut completer = PathBuf::from(&argv0);
            if completer.components().count() > 1 {
                if let Some(cwd) = &cwd {
                    completer = cwd.join(completer);
                }
            }
            // Not print!: it panics when stdout is a closed pipe.
            let script = registration_calling(shell, &completer.to_string_lossy());
            let _ = std::io::Write::write_all(&mut std::io::stdout(), script.as_bytes());
            std::process::exit(0);
        }
    }
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let mut bash_cut = String::new();
    if shell == "bash" {
        if let Some((words, cut)) = bash_colon_words() {
            // clap_complete reads the index from the environment; we are still single-threaded.
            std::env::set_var("_CLAP_COMPLETE_INDEX", (words.len() - 1).to_string());
            args.truncate(1);
            args.push("--".into());
            args.extend(words.into_iter().map(OsString::from));
            bash_cut = cut;
        }
    }
    let words = args.iter().skip_while(|a| *a != "--").skip(1).cloned();
    let _ = REQUEST.set(Request {
        shell,
        words: words.collect(),
        bash_cut,
        command,
    });
    // Even a bug in the loader must not print into the user's command line.
    std::panic::set_hook(Box::new(|_| {}));
    match CompleteEnv::with_factory(command)
        .var(VAR)
        .try_complete(args, cwd.as_deref())
    {
        Ok(true) => std::process::exit(0),
        Ok(false) => {}
        // Never show an error in the middle of someone's command line.
        Err(_) => std::process::exit(0),
    }
}

/// Completer for a job-name argument (`run`, `show`, `plan`, ...): the jobs of the pipeline
/// the command line would load, with their stage as the description.
pub fn job_names(current: &OsStr) -> Vec<CompletionCandidate> {
    let Some(request) = REQUEST.get() else {
        return Vec::new();
    };
    let shell = request.shell.as_str();
    let raw = current.to_string_lossy();
    let prefix = if quoted_by_shell(shell) {
        shell_word::dequote(&raw)
    } else {
        raw.to_string()
    };
    let Some(jobs) = pipeline_jobs(request) else {
        return Vec::new();
    };
    // bash inserts candidates verbatim, so they must already be valid shell words, unless the
    // user opened a quote (readline then hands us only the text after it, and closes it).
    let escape = shell == "bash"
        && match std::env::var(RAW_WORD_VAR) {
            Ok(typed) => shell_word::lex(&typed).open_quote.is_none(),
            Err(_) => !after_an_open_quote(&raw),
        };
    let cut = request.bash_cut.as_str();
    jobs.into_iter()
        .filter(|(name, _)| name.starts_with(&prefix) && name.starts_with(cut))
        .map(|(name, stage)| {
            let rest = &name[cut.len()..];
            let value = if escape {
                bash_escape(rest)
            } else {
                rest.to_string()
            };
            CompletionCandidate::new(value).help(Some(stage.into()))
        })
        .collect()
}

/// `(name, stage)` of every runnable job, or `None` when the pipeline cannot be loaded.
fn pipeline_jobs(request: &Request) -> Option<Vec<(String, String)>> {
    let (file, directory) = file_and_directory(request);
    let cwd = std::env::current_dir().ok()?;
    let pipeline = cached_pipeline(&cwd, file.as_deref(), directory.as_deref())?;
    Some(
        pipeline
            .jobs
            .into_iter()
            .map(|j| (j.name, j.stage))
            .collect(),
    )
}

/// The pipeline `cijob -f FILE -C DIR` would load from `cwd`, quietly: as `cijob` would load
/// it, but from cached includes when it can, and without those it can get neither way (a key
/// press must not wait on the network or fail on one include). `None` when there is none or
/// it does not load.
pub fn cached_pipeline(
    cwd: &std::path::Path,
    file: Option<&std::path::Path>,
    directory: Option<&std::path::Path>,
) -> Option<crate::model::Pipeline> {
    let location = crate::project::discover::discover(cwd, file, directory).ok()?;
    let git = crate::project::git::info(&location.project_root);
    let mut options = crate::resolve::pipeline::LoadOptions::for_project(None, &git);
    options.prefer_cache = true;
    options.allow_missing = true;
    Some(
        crate::resolve::pipeline::load_with(&location, &options)
            .ok()?
            .pipeline,
    )
}

/// `-f` and `-C` from the command line being completed, wherever they appear.
fn file_and_directory(request: &Request) -> (Option<PathBuf>, Option<PathBuf>) {
    let args = request.words.iter().map(|a| {
        if quoted_by_shell(&request.shell) {
            OsString::from(shell_word::dequote(&a.to_string_lossy()))
        } else {
            a.clone()
        }
    });
    let Ok(matches) = (request.command)()
        .ignore_errors(true)
        .try_get_matches_from(args)
    else {
        return (None, None);
    };
    // Global args are propagated to the subcommand's matches; look at both levels.
    let get = |id: &str| {
        matches.get_one::<PathBuf>(id).cloned().or_else(|| {
            matches
                .subcommand()
                .and_then(|(_, sub)| sub.try_get_one::<PathBuf>(id).ok().flatten().cloned())
        })
    };
    (get("file"), get("directory"))
}

/// When the current word has an unquoted `:`, the words of the line up to the cursor, split
/// at blanks only (the current word last, raw), and the part of it readline keeps.
fn bash_colon_words() -> Option<(Vec<String>, String)> {
    let line = std::env::var(LINE_VAR).ok()?;
    let words = shell_word::words(&line);
    let cut = kept_before_colon(words.last()?)?;
    Some((words.into_iter().map(str::to_owned).collect(), cut))
}

/// What readline keeps of the typed word when it completes after a `:` (bash splits words
/// at an unquoted `:`): the word up to its last unquoted `:`, dequoted. `None` when the word
/// has no such `:`, or is an option (`--file=...`, left to clap_complete as bash splits it).
fn kept_before_colon(typed: &str) -> Option<String> {
    let word = shell_word::lex(typed);
    if typed.starts_with('-') || word.open_quote.is_some() {
        return None;
    }
    let colon = word
        .tokens
        .iter()
        .rposition(|t| t.c == ':' && t.quoting == Some(Quoting::Bare))?;
    Some(shell_word::dequoted(&word.tokens[..=colon]))
}

/// For a script that does not pass the raw word: readline hands over a word with a blank or
/// `:` that no backslash protects only when the user opened a quote before it.
fn after_an_open_quote(word: &str) -> bool {
    shell_word::lex(word).tokens.iter().any(|t| {
        t.quoting.is_some_and(|q| q != Quoting::Escaped) && matches!(t.c, ' ' | '\t' | ':')
    })
}

/// Shells whose callbacks pass words as typed, quotes and backslashes included.
fn quoted_by_shell(shell: &str) -> bool {
    matches!(shell, "bash" | "zsh" | "fish")
}

/// Backslash-escape everything bash would otherwise split on or expand (like `printf %q`),
/// so `test: [2.2]` is inserted as `test\:\ \[2.2\]`. `:` is escaped because it is in bash's
/// default COMP_WORDBREAKS.
pub fn bash_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for c in s.chars() {
        if !(c.is_alphanumeric() || matches!(c, '/' | '_' | '-' | '.' | ',' | '+' | '@' | '%')) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bash_escape_round_trips_through_dequote() {
        for name in [
            "test: [2.2]",
            "deploy: [aws, monitoring]",
            "build 1/3",
            "a'b\"c$d",
        ] {
            assert_eq!(shell_word::dequote(&bash_escape(name)), name);
        }
        assert_eq!(bash_escape("test: [2.2]"), r"test\:\ \[2.2\]");
    }

    #[test]
    fn readline_keeps_the_word_up_to_its_last_unquoted_colon() {
        assert_eq!(kept_before_colon("test:").as_deref(), Some("test:"));
        assert_eq!(
            kept_before_colon(r"deploy:\ \[aws,\ a").as_deref(),
            Some("deploy:")
        );
        assert_eq!(kept_before_colon(r"a\:b:c").as_deref(), Some("a:b:"));
        assert_eq!(kept_before_colon(r"a\:b"), None);
        assert_eq!(kept_before_colon("'a:b'c"), None);
        assert_eq!(kept_before_colon("'a:b"), None);
        assert_eq!(kept_before_colon("--file=a:b"), None);
        assert_eq!(kept_before_colon("lint"), None);
    }

    #[test]
    fn an_unprotected_blank_or_colon_means_a_quote_was_opened() {
        assert!(after_an_open_quote("test: [2"));
        assert!(after_an_open_quote("build 1"));
        assert!(!after_an_open_quote(r"test\:\ \[2"));
        assert!(!after_an_open_quote("te"));
    }

    #[test]
    fn bash_script_passes_the_raw_word() {
        let script = registration(Shell::Bash);
        assert!(
            script.contains(&format!("{RAW_WORD_VAR}=\"${{COMP_WORDS[COMP_CWORD]}}\"")),
            "{script}"
        );
    }

    #[test]
    fn registration_is_deterministic_and_calls_cijob_by_name() {
        for shell in Shell::value_variants() {
            let script = registration(*shell);
            assert!(script.contains(VAR), "{shell:?}: {script}");
            assert!(!script.contains(env!("CARGO_MANIFEST_DIR")), "{shell:?}");
        }
    }
}

//! `include:` resolution: reading local files, merging them the way GitLab does
//! (included files deep-merged first, in order; the including file's own keys on top).
//!
//! Include `rules:` are NOT evaluated: every local include is taken (always-include).
//! Rules usually test pipeline variables (`$CI_COMMIT_TAG`...) that do not exist offline,
//! and taking the include keeps every job visible to `cijob list`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::ConfigError;
use crate::glob;
use crate::inputs;
use crate::merge::deep_merge;
use crate::yaml::{self, Mapping, Value};

/// GitLab's default limit on the number of includes in one pipeline.
pub const MAX_INCLUDES: usize = 150;
/// GitLab's limit on include nesting.
pub const MAX_DEPTH: usize = 100;
/// Refuse absurdly large files instead of exhausting memory.
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// One file that took part in the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceFile {
    /// Path as shown to the user: relative to the project root when inside it.
    pub display: PathBuf,
    pub text: String,
    /// Line of each top-level key, indexed on first use (one scan per file, not per job).
    pub key_lines: std::sync::OnceLock<HashMap<String, usize>>,
}

impl SourceFile {
    pub fn key_line(&self, key: &str) -> Option<usize> {
        self.key_lines
            .get_or_init(|| yaml::top_level_key_lines(&self.text))
            .get(key)
            .copied()
    }
}

/// The configuration after every include has been merged.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    pub config: Mapping,
    pub files: Vec<SourceFile>,
    /// Top-level key -> index in `files` of the last file that defined it.
    pub origins: HashMap<String, usize>,
}

impl Merged {
    /// File and 1-based line of a top-level key, found by scanning the defining file.
    pub fn key_location(&self, key: &str) -> Option<(PathBuf, Option<usize>)> {
        let file = self.files.get(*self.origins.get(key)?)?;
        Some((file.display.clone(), file.key_line(key)))
    }

    /// A `ConfigError` located at a top-level key (falls back to the root file).
    pub fn error_at(&self, key: &str, message: impl Into<String>) -> ConfigError {
        let err = ConfigError::new(message);
        match self.key_location(key) {
            Some((file, Some(line))) => {
                let text = self.files[self.origins[key]].text.as_str();
                err.in_file(file).at(line, None).with_source(text)
            }
            Some((file, None)) => err.in_file(file),
            None => match self.files.first() {
                Some(f) => err.in_file(f.display.clone()),
                None => err,
            },
        }
    }
}

/// Load `file` and everything it includes, relative to `root`.
pub fn load(root: &Path, file: &Path) -> Result<Merged, ConfigError> {
    let mut ctx = Ctx {
        root,
        files: Vec::new(),
        origins: HashMap::new(),
        stack: Vec::new(),
        count: 0,
    };
    let config = ctx.load_file(file, None, 0)?;
    Ok(Merged {
        config,
        files: ctx.files,
        origins: ctx.origins,
    })
}

struct Ctx<'a> {
    root: &'a Path,
    files: Vec<SourceFile>,
    origins: HashMap<String, usize>,
    stack: Vec<PathBuf>,
    count: usize,
}

/// What one `include:` entry asks for.
#[derive(Debug, Clone, PartialEq)]
enum Entry {
    Local {
        path: String,
        inputs: Option<Mapping>,
    },
    Offline {
        kind: &'static str,
        what: String,
    },
}

impl Ctx<'_> {
    fn display(&self, path: &Path) -> PathBuf {
        path.strip_prefix(self.root)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| path.to_path_buf())
    }

    fn load_file(
        &mut self,
        path: &Path,
        inputs: Option<&Mapping>,
        depth: usize,
    ) -> Result<Mapping, ConfigError> {
        let display = self.display(path);
        let size = std::fs::metadata(path)
            .map_err(|e| ConfigError::new(format!("cannot read: {e}")).in_file(&display))?
            .len();
        if size > MAX_FILE_BYTES {
            return Err(ConfigError::new(format!(
                "file is too large ({size} bytes; the limit is {MAX_FILE_BYTES})"
            ))
            .in_file(&display));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(format!("cannot read: {e}")).in_file(&display))?;
        let doc = yaml::parse_ci(&text, &display)?;
        let config = match &doc.header {
            Some(header) => inputs::interpolate(header, inputs, doc.config)
                .map_err(|m| ConfigError::new(m).in_file(&display))?,
            None if inputs.is_some_and(|i| !i.is_empty()) => {
                return Err(ConfigError::new(
                    "include passes `inputs` but the file has no `spec: inputs` header",
                )
                .in_file(&display))
            }
            None => doc.config,
        };
        let mut own = match config {
            Value::Mapping(m) => m,
            Value::Null => Mapping::new(),
            other => {
                return Err(ConfigError::new(format!(
                    "the configuration must be a mapping, not {}",
                    yaml::type_name(&other)
                ))
                .in_file(&display))
            }
        };
        let index = self.files.len();
        self.files.push(SourceFile {
            display: display.clone(),
            text,
            key_lines: Default::default(),
        });
        self.stack.push(path.to_path_buf());

        let mut acc = Mapping::new();
        if let Some(includes) = own.shift_remove("include") {
            let at = |msg: String| self.located(index, "include", msg);
            let entries = parse_entries(&includes).map_err(at)?;
            for entry in entries {
                let (pattern, entry_inputs) = match entry {
                    Entry::Local { path, inputs } => (path, inputs),
                    Entry::Offline { kind, what } => {
                        return Err(self.located(
                            index,
                            "include",
                            format!(
                                "include of {kind} \"{what}\" cannot be resolved offline \
                                 ({kind} includes are not supported yet)"
                            ),
                        ))
                    }
                };
                let targets = self
                    .resolve_local(&pattern)
                    .map_err(|m| self.located(index, "include", m))?;
                for target in targets {
                    self.count += 1;
                    if self.count > MAX_INCLUDES {
                        return Err(self.located(
                            index,
                            "include",
                            format!("too many includes: at most {MAX_INCLUDES} are allowed"),
                        ));
                    }
                    if let Some(pos) = self.stack.iter().position(|p| *p == target) {
                        let chain: Vec<String> = self.stack[pos..]
                            .iter()
                            .chain(std::iter::once(&target))
                            .map(|p| self.display(p).display().to_string())
                            .collect();
                        return Err(self.located(
                            index,
                            "include",
                            format!("include cycle: {}", chain.join(" -> ")),
                        ));
                    }
                    if depth + 1 > MAX_DEPTH {
                        return Err(self.located(
                            index,
                            "include",
                            format!("includes are nested too deeply (limit {MAX_DEPTH})"),
                        ));
                    }
                    let included = self.load_file(&target, entry_inputs.as_ref(), depth + 1)?;
                    deep_merge(&mut acc, included);
                }
            }
        }
        for (k, v) in own {
            if let Some(key) = k.as_str() {
                self.origins.insert(key.to_owned(), index);
            }
            let mut single = Mapping::new();
            single.insert(k, v);
            deep_merge(&mut acc, single);
        }
        self.stack.pop();
        Ok(acc)
    }

    fn located(&self, index: usize, key: &str, message: String) -> ConfigError {
        let file = &self.files[index];
        let err = ConfigError::new(message).in_file(&file.display);
        match file.key_line(key) {
            Some(line) => err.at(line, None).with_source(&file.text),
            None => err,
        }
    }

    /// Files a `local:` include names (several for a glob), relative to the project root.
    fn resolve_local(&self, raw: &str) -> Result<Vec<PathBuf>, String> {
        if raw.contains('$') {
            return Err(format!(
                "include of local-with-variable \"{raw}\" cannot be resolved offline \
                 (local includes with variables are not supported yet)"
            ));
        }
        if raw.starts_with("./") {
            return Err(format!(
                "`{raw}` for include:local is invalid: paths are relative to the project \
                 root and cannot start with `./`"
            ));
        }
        let rel = raw.trim_start_matches('/');
        if Path::new(rel)
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(format!(
                "`{raw}` for include:local is invalid: directory traversal (`..`) is not allowed"
            ));
        }
        if rel.is_empty() {
            return Err("include:local path is empty".into());
        }
        if glob::is_glob(rel) {
            // A glob matching nothing includes nothing (as GitLab does for wildcards).
            return Ok(glob::find(self.root, rel));
        }
        let path = self.root.join(rel);
        if !path.is_file() {
            return Err(format!(
                "local include file \"{raw}\" cannot be found (looked for {})",
                path.display()
            ));
        }
        Ok(vec![path])
    }
}

fn parse_entries(value: &Value) -> Result<Vec<Entry>, String> {
    match value {
        Value::Sequence(items) => items.iter().map(parse_entry).collect(),
        Value::Null => Ok(vec![]),
        other => Ok(vec![parse_entry(other)?]),
    }
}

fn parse_entry(value: &Value) -> Result<Entry, String> {
    match value {
        Value::String(s) if s.starts_with("https://") || s.starts_with("http://") => {
            Ok(Entry::Offline {
                kind: "remote",
                what: s.clone(),
            })
        }
        Value::String(s) => Ok(Entry::Local {
            path: s.clone(),
            inputs: None,
        }),
        Value::Mapping(m) => {
            let inputs = match m.get("inputs") {
                Some(Value::Mapping(i)) => Some(i.clone()),
                None | Some(Value::Null) => None,
                Some(_) => return Err("include `inputs` must be a mapping".into()),
            };
            let text = |key: &str| m.get(key).and_then(yaml::scalar_string);
            if let Some(path) = text("local") {
                return Ok(Entry::Local { path, inputs });
            }
            for kind in ["remote", "template", "component", "artifact"] {
                if let Some(what) = text(kind) {
                    return Ok(Entry::Offline { kind, what });
                }
            }
            if let Some(project) = text("project") {
                let files = match m.get("file") {
                    Some(Value::Sequence(s)) => s
                        .iter()
                        .filter_map(yaml::scalar_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                    Some(v) => yaml::scalar_string(v).unwrap_or_default(),
                    None => String::new(),
                };
                return Ok(Entry::Offline {
                    kind: "project",
                    what: format!("{project}: {files}"),
                });
            }
            Err(format!(
                "unknown include entry (expected local, remote, template, project or component): {}",
                yaml::to_string(value).trim()
            ))
        }
        other => Err(format!(
            "include entries must be strings or mappings, not {}",
            yaml::type_name(other)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(case: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/config")
            .join(case)
    }

    #[test]
    fn entry_kinds() {
        let v: Value = serde_yaml::from_str(
            "- a.yml\n- https://x/y.yml\n- {template: T.yml}\n- {project: g/p, file: f.yml}\n- {component: c@1}\n",
        )
        .unwrap();
        let e = parse_entries(&v).unwrap();
        assert_eq!(
            e[0],
            Entry::Local {
                path: "a.yml".into(),
                inputs: None
            }
        );
        assert!(matches!(e[1], Entry::Offline { kind: "remote", .. }));
        assert!(matches!(
            e[2],
            Entry::Offline {
                kind: "template",
                ..
            }
        ));
        assert!(matches!(
            e[3],
            Entry::Offline {
                kind: "project",
                ..
            }
        ));
        assert!(matches!(
            e[4],
            Entry::Offline {
                kind: "component",
                ..
            }
        ));
    }

    #[test]
    fn includes_merge_first_and_own_keys_override() {
        let root = fixture("include-order");
        let m = load(&root, &root.join(".gitlab-ci.yml")).unwrap();
        let job = &m.config["job"];
        // own file wins over included values, included-only keys survive (deep merge)
        assert_eq!(job["image"], Value::from("own"));
        assert_eq!(job["variables"]["A"], Value::from("from-b"));
        assert_eq!(job["variables"]["B"], Value::from("own"));
        assert_eq!(job["script"], Value::from("echo own"));
        // later include overrides earlier include
        assert_eq!(m.config["other"]["script"], Value::from("echo b"));
        // nested include reached
        assert!(m.config.contains_key("nested-job"));
        assert_eq!(
            m.key_location("nested-job").map(|l| l.0),
            Some(PathBuf::from("ci/nested.yml"))
        );
    }

    #[test]
    fn missing_file_cycle_and_offline_errors() {
        let root = fixture("include-errors");
        let e = load(&root, &root.join("missing.yml")).unwrap_err();
        assert!(e.message.contains("cannot be found"), "{e}");
        assert_eq!(e.line, Some(1));
        let e = load(&root, &root.join("cycle-a.yml")).unwrap_err();
        assert!(
            e.message
                .contains("include cycle: cycle-a.yml -> cycle-b.yml -> cycle-a.yml"),
            "{e}"
        );
        let e = load(&root, &root.join("template.yml")).unwrap_err();
        assert_eq!(
            e.message,
            "include of template \"Auto-DevOps.gitlab-ci.yml\" cannot be resolved offline \
             (template includes are not supported yet)"
        );
        let e = load(&root, &root.join("variable.yml")).unwrap_err();
        assert!(e.message.contains("cannot be resolved offline"), "{e}");
        let e = load(&root, &root.join("traversal.yml")).unwrap_err();
        assert!(e.message.contains("directory traversal"), "{e}");
    }

    #[test]
    fn syntax_error_in_included_file_names_that_file() {
        let root = fixture("include-errors");
        let e = load(&root, &root.join("bad-include.yml")).unwrap_err();
        assert_eq!(e.file.as_deref(), Some(Path::new("broken.yml")));
        assert!(e.line.is_some_and(|l| l >= 3), "{e}");
        assert!(e.column.is_some());
    }
}

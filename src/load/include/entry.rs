//! What one `include:` entry asks for, parsed from the YAML and located in its file for
//! messages. Pure: nothing here reads a file or the network.

use crate::load::yaml::{self, Mapping, Value};

/// The kind of file an entry names, with its arguments as written (variables unexpanded).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Kind {
    Local(String),
    Remote(String),
    Template(String),
    Project {
        project: String,
        files: Vec<String>,
        reference: Option<String>,
    },
    Component(String),
    Artifact(String),
}

/// One entry of an `include:` list.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Entry {
    pub(super) kind: Kind,
    pub(super) inputs: Option<Mapping>,
    pub(super) rules: Option<Value>,
}

impl Kind {
    /// How the entry is named in messages: `remote "URL"`.
    pub(super) fn describe(&self) -> String {
        match self {
            Kind::Local(p) => format!("local \"{p}\""),
            Kind::Remote(u) => format!("remote \"{u}\""),
            Kind::Template(t) => format!("template \"{t}\""),
            Kind::Project {
                project,
                files,
                reference,
            } => format!(
                "project \"{project}\" file \"{}\"{}",
                files.join(", "),
                reference
                    .as_ref()
                    .map(|r| format!(" ref \"{r}\""))
                    .unwrap_or_default()
            ),
            Kind::Component(c) => format!("component \"{c}\""),
            Kind::Artifact(a) => format!("artifact \"{a}\""),
        }
    }

    /// 1-based line of the entry in `text`, the file holding it: the first line after the
    /// `include:` key that names it.
    pub(super) fn line_in(&self, text: &str) -> Option<usize> {
        let needle = match self {
            Kind::Local(s) | Kind::Remote(s) | Kind::Template(s) | Kind::Component(s) => s,
            Kind::Artifact(s) => s,
            Kind::Project { project, .. } => project,
        };
        let start = yaml::top_level_key_line(text, "include").unwrap_or(1);
        text.lines()
            .enumerate()
            .skip(start - 1)
            .find(|(_, l)| !needle.is_empty() && l.contains(needle.as_str()))
            .map(|(i, _)| i + 1)
    }
}

/// A component address, `HOST/PROJECT/NAME@VERSION` (after variable expansion).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Component<'a> {
    /// The whole address, as messages name it.
    pub(super) spec: &'a str,
    /// `HOST/PROJECT/NAME`.
    pub(super) address: &'a str,
    pub(super) host: &'a str,
    pub(super) project: &'a str,
    pub(super) name: &'a str,
    /// As written: a full version, a partial one (`1`, `1.2`), `~latest`, a branch or a sha.
    pub(super) version: &'a str,
}

impl<'a> Component<'a> {
    pub(super) fn parse(spec: &'a str) -> Result<Self, String> {
        let shape = || format!("component \"{spec}\" must be HOST/PROJECT/NAME@VERSION");
        let (address, version) = spec
            .rsplit_once('@')
            .ok_or_else(|| format!("component \"{spec}\" must have a version (`@1.0`)"))?;
        let (host, path) = address.split_once('/').ok_or_else(shape)?;
        let (project, name) = path.rsplit_once('/').ok_or_else(shape)?;
        if spec.contains('$') || version.is_empty() || name.is_empty() {
            return Err(format!(
                "component \"{spec}\" is invalid (unknown variable or empty name/version)"
            ));
        }
        Ok(Component {
            spec,
            address,
            host,
            project,
            name,
            version,
        })
    }

    /// The files that may hold the component in its project, in the order GitLab tries them.
    pub(super) fn template_files(&self) -> [String; 2] {
        [
            format!("templates/{}.yml", self.name),
            format!("templates/{}/template.yml", self.name),
        ]
    }
}

/// The entries of an `include:` value: one entry, a list of them, or nothing.
pub(super) fn parse_entries(value: &Value) -> Result<Vec<Entry>, String> {
    match value {
        Value::Sequence(items) => items.iter().map(parse_entry).collect(),
        Value::Null => Ok(vec![]),
        other => Ok(vec![parse_entry(other)?]),
    }
}

fn parse_entry(value: &Value) -> Result<Entry, String> {
    let plain = |kind| Entry {
        kind,
        inputs: None,
        rules: None,
    };
    match value {
        Value::String(s) if s.starts_with("https://") || s.starts_with("http://") => {
            Ok(plain(Kind::Remote(s.clone())))
        }
        Value::String(s) => Ok(plain(Kind::Local(s.clone()))),
        Value::Mapping(m) => {
            // `with` is the early name of `inputs` for components.
            let inputs = match m.get("inputs").or_else(|| m.get("with")) {
                Some(Value::Mapping(i)) => Some(i.clone()),
                None | Some(Value::Null) => None,
                Some(_) => return Err("include `inputs` must be a mapping".into()),
            };
            let rules = m.get("rules").cloned();
            let text = |key: &str| m.get(key).and_then(yaml::scalar_string);
            let kind = if let Some(path) = text("local") {
                Kind::Local(path)
            } else if let Some(url) = text("remote") {
                Kind::Remote(url)
            } else if let Some(name) = text("template") {
                Kind::Template(name)
            } else if let Some(c) = text("component") {
                Kind::Component(c)
            } else if let Some(a) = text("artifact") {
                Kind::Artifact(a)
            } else if let Some(project) = text("project") {
                let files = match m.get("file") {
                    Some(Value::Sequence(s)) => s.iter().filter_map(yaml::scalar_string).collect(),
                    Some(v) => yaml::scalar_string(v).into_iter().collect(),
                    None => vec![],
                };
                if files.is_empty() {
                    return Err(format!("include of project \"{project}\" needs `file:`"));
                }
                Kind::Project {
                    project,
                    files,
                    reference: text("ref"),
                }
            } else {
                return Err(format!(
                    "unknown include entry (expected local, remote, template, project or component): {}",
                    yaml::to_string(value).trim()
                ));
            };
            Ok(Entry {
                kind,
                inputs,
                rules,
            })
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

    #[test]
    fn entry_kinds() {
        let v: Value = serde_yaml::from_str(
            "- a.yml\n- https://x/y.yml\n- {template: T.yml}\n- {project: g/p, file: [f.yml, g.yml], ref: v1}\n- {component: c@1, with: {a: 1}, rules: [{if: $X}]}\n",
        )
        .unwrap();
        let e = parse_entries(&v).unwrap();
        assert_eq!(e[0].kind, Kind::Local("a.yml".into()));
        assert_eq!(e[1].kind, Kind::Remote("https://x/y.yml".into()));
        assert_eq!(e[2].kind, Kind::Template("T.yml".into()));
        assert_eq!(
            e[3].kind,
            Kind::Project {
                project: "g/p".into(),
                files: vec!["f.yml".into(), "g.yml".into()],
                reference: Some("v1".into())
            }
        );
        assert_eq!(e[4].kind, Kind::Component("c@1".into()));
        assert!(e[4].inputs.is_some() && e[4].rules.is_some());
        assert!(parse_entries(&serde_yaml::from_str("{project: g/p}").unwrap()).is_err());
    }

    #[test]
    fn an_entry_is_found_after_the_include_key() {
        let text = "job:\n  script: a.yml\ninclude:\n  - b.yml\n  - a.yml\n";
        assert_eq!(Kind::Local("a.yml".into()).line_in(text), Some(5));
        assert_eq!(Kind::Local("c.yml".into()).line_in(text), None);
        assert_eq!(Kind::Local(String::new()).line_in(text), None);
    }

    #[test]
    fn component_addresses() {
        let c = Component::parse("gl.test/grp/sub/comp/build@~latest").unwrap();
        assert_eq!(
            (c.host, c.project, c.name, c.version, c.address),
            (
                "gl.test",
                "grp/sub/comp",
                "build",
                "~latest",
                "gl.test/grp/sub/comp/build"
            )
        );
        assert_eq!(
            c.template_files(),
            ["templates/build.yml", "templates/build/template.yml"]
        );
        let err = |s| Component::parse(s).unwrap_err();
        assert!(err("gl.test/g/c").contains("must have a version"));
        assert!(err("gl.test@1").contains("HOST/PROJECT/NAME@VERSION"));
        assert!(err("gl.test/c@1").contains("HOST/PROJECT/NAME@VERSION"));
        assert!(err("gl.test/g/c@").contains("is invalid"));
        assert!(err("gl.test/g/$X@1").contains("is invalid"));
    }
}

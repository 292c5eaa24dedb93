//! Variable expansion with the runner's semantics (Go `os.Expand`).

use crate::model::Variable;

/// `$VAR`/`${VAR}` replaced by `lookup`; `$$` → `$`; unknown → empty.
pub fn expand(value: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let _ = (value, lookup);
    todo!("helper B")
}

/// Expand every variable's value once against the raw list (later definitions win),
/// skipping `expand: false` ones, as the runner's `GetAllVariables` does.
pub fn expand_all(vars: &[Variable]) -> Vec<Variable> {
    let _ = vars;
    todo!("helper B")
}

/// Look a key up in a variable list: the last definition wins.
pub fn lookup<'a>(vars: &'a [Variable], key: &str) -> Option<&'a str> {
    vars.iter()
        .rev()
        .find(|v| v.key == key)
        .map(|v| v.value.as_str())
}

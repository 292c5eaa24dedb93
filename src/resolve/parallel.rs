//! `parallel: N` and `parallel: matrix:` expansion into named instances, named as GitLab
//! names them: `build 1/3`, `test: [2.2]`, `deploy: [aws, monitoring]`.

use crate::load::yaml::{self, Value};

/// GitLab's limit on instances per job.
pub const MAX_INSTANCES: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub name: String,
    /// 1-based.
    pub index: u32,
    pub total: u32,
    /// Matrix variables in the order of the matrix entry's keys.
    pub variables: Vec<(String, String)>,
}

/// The instances for a job's `parallel` value; `None` when the job is not parallel.
pub fn expand(name: &str, parallel: Option<&Value>) -> Result<Option<Vec<Instance>>, String> {
    let Some(parallel) = parallel else {
        return Ok(None);
    };
    match parallel {
        Value::Null => Ok(None),
        Value::Number(n) => {
            let total = n
                .as_u64()
                .filter(|t| (1..=MAX_INSTANCES as u64).contains(t))
                .ok_or_else(|| format!("parallel must be a number between 1 and {MAX_INSTANCES}"))?
                as u32;
            Ok(Some(
                (1..=total)
                    .map(|i| Instance {
                        name: format!("{name} {i}/{total}"),
                        index: i,
                        total,
                        variables: vec![],
                    })
                    .collect(),
            ))
        }
        Value::Mapping(m) => match m.get("matrix") {
            Some(matrix) => matrix_instances(name, matrix).map(Some),
            None => Err("parallel must be a number or a mapping with `matrix`".into()),
        },
        _ => Err("parallel must be a number or a mapping with `matrix`".into()),
    }
}

fn matrix_instances(name: &str, matrix: &Value) -> Result<Vec<Instance>, String> {
    let entries = matrix
        .as_sequence()
        .ok_or("parallel:matrix must be a list of mappings")?;
    let mut combos: Vec<Vec<(String, String)>> = Vec::new();
    for entry in entries {
        let map = entry
            .as_mapping()
            .ok_or("parallel:matrix entries must be mappings of variable names to values")?;
        // cartesian product, first key varying slowest (GitLab's Array#product order)
        let mut partial: Vec<Vec<(String, String)>> = vec![vec![]];
        for (k, v) in map {
            let key =
                yaml::scalar_string(k).ok_or("parallel:matrix variable names must be strings")?;
            let values: Vec<String> = match v {
                Value::Sequence(s) => s
                    .iter()
                    .map(|x| yaml::scalar_string(x).ok_or(()))
                    .collect::<Result<_, _>>()
                    .map_err(|()| {
                        format!("parallel:matrix values of {key} must be strings or numbers")
                    })?,
                other => vec![yaml::scalar_string(other).ok_or_else(|| {
                    format!("parallel:matrix values of {key} must be strings or numbers")
                })?],
            };
            let mut next = Vec::with_capacity(partial.len() * values.len());
            for p in &partial {
                for val in &values {
                    let mut row = p.clone();
                    row.push((key.clone(), val.clone()));
                    next.push(row);
                }
            }
            if next.len() > MAX_INSTANCES {
                return Err(format!(
                    "parallel:matrix would create more than {MAX_INSTANCES} jobs"
                ));
            }
            partial = next;
        }
        combos.extend(partial.into_iter().filter(|r| !r.is_empty()));
        if combos.len() > MAX_INSTANCES {
            return Err(format!(
                "parallel:matrix would create more than {MAX_INSTANCES} jobs"
            ));
        }
    }
    if combos.is_empty() {
        return Err("parallel:matrix must not be empty".into());
    }
    let total = combos.len() as u32;
    Ok(combos
        .into_iter()
        .enumerate()
        .map(|(i, vars)| {
            let shown: Vec<&str> = vars.iter().map(|(_, v)| v.as_str()).collect();
            Instance {
                name: format!("{name}: [{}]", shown.join(", ")),
                index: i as u32 + 1,
                total,
                variables: vars,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Value {
        serde_yaml::from_str(s).unwrap()
    }

    #[test]
    fn parallel_number() {
        let i = expand("build", Some(&v("3"))).unwrap().unwrap();
        let names: Vec<_> = i.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(names, ["build 1/3", "build 2/3", "build 3/3"]);
        assert_eq!((i[1].index, i[1].total), (2, 3));
        assert!(expand("b", Some(&v("0"))).is_err());
        assert!(expand("b", Some(&v("201"))).is_err());
    }

    #[test]
    fn matrix_names_order_and_totals() {
        let m = v("matrix:\n  - PROVIDER: aws\n    STACK: [monitoring, app1]\n  - PROVIDER: [gcp, vultr]\n    STACK: data\n  - RUBY: 2.2\n");
        let i = expand("deploy", Some(&m)).unwrap().unwrap();
        let names: Vec<_> = i.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "deploy: [aws, monitoring]",
                "deploy: [aws, app1]",
                "deploy: [gcp, data]",
                "deploy: [vultr, data]",
                "deploy: [2.2]",
            ]
        );
        assert!(i.iter().all(|x| x.total == 5));
        assert_eq!(i[4].index, 5);
        assert_eq!(
            i[1].variables,
            vec![
                ("PROVIDER".to_string(), "aws".to_string()),
                ("STACK".to_string(), "app1".to_string())
            ]
        );
    }
}

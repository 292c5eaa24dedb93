//! `artifacts:reports:dotenv` files as GitLab reads them (`Ci::ParseDotenvArtifactService`):
//! `KEY=VALUE` lines, blank lines and `#` comments skipped, blanks around key and value
//! trimmed, one pair of matching quotes around the value dropped, keys of letters, digits and
//! `_`, at most 5 KiB per file and 20 variables in all (GitLab's default instance limits).

/// GitLab's default `dotenv_size` limit.
pub const MAX_SIZE: usize = 5 * 1024;
/// GitLab's default `dotenv_variables` limit.
pub const MAX_VARIABLES: usize = 20;

/// The variables of one report, in file order (a later line of the same key wins), or why
/// GitLab would refuse the whole report.
pub fn parse(text: &[u8]) -> Result<Vec<(String, String)>, String> {
    if text.len() > MAX_SIZE {
        return Err(format!(
            "dotenv report is {} bytes, over GitLab's limit of {MAX_SIZE}",
            text.len()
        ));
    }
    let text = std::str::from_utf8(text).map_err(|_| "dotenv report is not UTF-8".to_string())?;
    let mut out: Vec<(String, String)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let (key, value) = trimmed
            .split_once('=')
            .ok_or_else(|| format!("dotenv line {}: not KEY=VALUE", n + 1))?;
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "dotenv line {}: invalid key \"{key}\" (letters, digits and _ only)",
                n + 1
            ));
        }
        let value = unquote(value.trim());
        match out.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.to_string(),
            None => out.push((key.to_string(), value.to_string())),
        }
    }
    Ok(out)
}

/// Check the limit on the number of variables over every report of a job.
pub fn check_count(vars: &[(String, String)]) -> Result<(), String> {
    if vars.len() > MAX_VARIABLES {
        return Err(format!(
            "dotenv reports define {} variables, over GitLab's limit of {MAX_VARIABLES}",
            vars.len()
        ));
    }
    Ok(())
}

fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return &v[1..v.len() - 1];
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_comments_quotes_and_repeats() {
        let vars = parse(b"# built\nVERSION=1.2.3\n\n  URL = https://x/?a=b \nQ=\"quoted value\"\nS='single'\nVERSION=1.2.4\nEMPTY=\n").unwrap();
        assert_eq!(
            vars,
            [
                ("VERSION", "1.2.4"),
                ("URL", "https://x/?a=b"),
                ("Q", "quoted value"),
                ("S", "single"),
                ("EMPTY", "")
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
    }

    #[test]
    fn invalid_lines_keys_and_sizes_are_refused() {
        assert!(parse(b"JUST TEXT\n").unwrap_err().contains("line 1"));
        assert!(parse(b"A=1\nBAD-KEY=2\n").unwrap_err().contains("BAD-KEY"));
        let big = format!("A={}\n", "x".repeat(MAX_SIZE));
        assert!(parse(big.as_bytes()).unwrap_err().contains("limit"));
        let many: Vec<(String, String)> = (0..21).map(|i| (format!("K{i}"), "v".into())).collect();
        assert!(check_count(&many).is_err());
        assert!(check_count(&many[..20]).is_ok());
    }
}

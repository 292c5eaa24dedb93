//! `artifacts:reports:dotenv` files as GitLab reads them (`Ci::ParseDotenvArtifactService`):
//! every line `KEY=VALUE` (split at the first `=`, blanks around key and value trimmed,
//! quotes kept as they are), keys of ASCII letters, digits and `_`, a byte-order mark
//! dropped; a blank line or a comment is a format error, as there, and refuses the whole
//! report. Files must be under 5 KiB, and 20 variables in all (GitLab's default instance
//! limits; GitLab.com allows more variables).

/// GitLab's default `dotenv_size` limit (a report must be smaller).
pub const MAX_SIZE: usize = 5 * 1024;
/// GitLab's default `dotenv_variables` limit.
pub const MAX_VARIABLES: usize = 20;

/// The variables of one report, in file order (a later line of the same key wins), or why
/// GitLab would refuse the whole report.
pub fn parse(text: &[u8]) -> Result<Vec<(String, String)>, String> {
    if text.len() >= MAX_SIZE {
        return Err(format!(
            "dotenv report is {} bytes; GitLab takes reports under {MAX_SIZE}",
            text.len()
        ));
    }
    let text = String::from_utf8_lossy(text);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut out: Vec<(String, String)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| format!("dotenv line {}: invalid format (not KEY=VALUE)", n + 1))?;
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "dotenv line {}: invalid key \"{key}\" (ASCII letters, digits and _ only)",
                n + 1
            ));
        }
        let value = value.trim();
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
            "dotenv reports define {} variables, over GitLab's default limit of {MAX_VARIABLES}",
            vars.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_trimmed_quotes_kept_and_the_last_of_a_key_wins() {
        let vars = parse(b"\xef\xbb\xbfVERSION=1.2.3\n  URL = https://x/?a=b \nQ=\"quoted value\"\nVERSION=1.2.4\nEMPTY=\n").unwrap();
        assert_eq!(
            vars,
            [
                ("VERSION", "1.2.4"),
                ("URL", "https://x/?a=b"),
                ("Q", "\"quoted value\""),
                ("EMPTY", "")
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
    }

    #[test]
    fn blank_lines_comments_bad_keys_and_sizes_are_refused() {
        assert!(parse(b"A=1\n\nB=2\n")
            .unwrap_err()
            .contains("line 2: invalid format"));
        assert!(parse(b"# note\n").unwrap_err().contains("line 1"));
        assert!(parse(b"A=1\nBAD-KEY=2\n").unwrap_err().contains("BAD-KEY"));
        let big = format!("A={}", "x".repeat(MAX_SIZE - 2));
        assert!(parse(big.as_bytes()).unwrap_err().contains("under"));
        assert!(parse(&big.as_bytes()[..MAX_SIZE - 1]).is_ok());
        let many: Vec<(String, String)> = (0..21).map(|i| (format!("K{i}"), "v".into())).collect();
        assert!(check_count(&many).is_err());
        assert!(check_count(&many[..20]).is_ok());
    }
}

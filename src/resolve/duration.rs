//! GitLab durations, parsed like ChronicDuration's common forms: `1h 30m`, `2h30m`, `1.5h`,
//! `3 hours`, `90 minutes`, `1 hour and 30 minutes`, `30s`, `3600` (seconds), and
//! `HH:MM:SS` / `MM:SS`. The one grammar for `timeout:` and `--timeout`.

use std::time::Duration;

pub fn parse(text: &str) -> Option<Duration> {
    let s = text.trim().to_ascii_lowercase();
    if s.is_empty() {
        return None;
    }
    if s.contains(':') {
        return clock(&s);
    }
    let mut total = 0f64;
    let mut chars = s.chars().peekable();
    let mut any = false;
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut number = String::new();
        while let Some(c) = chars
            .peek()
            .copied()
            .filter(|c| c.is_ascii_digit() || *c == '.')
        {
            number.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut unit = String::new();
        while let Some(c) = chars.peek().copied().filter(|c| c.is_ascii_alphabetic()) {
            unit.push(c);
            chars.next();
        }
        if number.is_empty() {
            if unit == "and" {
                continue;
            }
            return None;
        }
        let n: f64 = number.parse().ok()?;
        let factor = match unit.as_str() {
            "" | "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
            "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3600.0,
            "d" | "day" | "days" => 86_400.0,
            "w" | "wk" | "wks" | "week" | "weeks" => 604_800.0,
            "mo" | "mos" | "month" | "months" => 2_592_000.0,
            _ => return None,
        };
        total += n * factor;
        any = true;
    }
    (any && total.is_finite() && total < 1e12).then(|| Duration::from_secs(total.round() as u64))
}

fn clock(s: &str) -> Option<Duration> {
    let parts: Vec<u64> = s
        .split(':')
        .map(|p| p.trim().parse().ok())
        .collect::<Option<_>>()?;
    let secs = match parts.as_slice() {
        [m, s] => m * 60 + s,
        [h, m, s] => h * 3600 + m * 60 + s,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> Option<u64> {
        parse(s).map(|d| d.as_secs())
    }

    #[test]
    fn gitlab_forms() {
        assert_eq!(secs("1h 30m"), Some(5400));
        assert_eq!(secs("2h30m"), Some(9000));
        assert_eq!(secs("3 hours"), Some(10800));
        assert_eq!(secs("90 minutes"), Some(5400));
        assert_eq!(secs("10m"), Some(600));
        assert_eq!(secs("30s"), Some(30));
        assert_eq!(secs("1 hour and 30 minutes"), Some(5400));
        assert_eq!(secs("1 day"), Some(86400));
        assert_eq!(secs("3600"), Some(3600));
        assert_eq!(secs("01:30:00"), Some(5400));
        assert_eq!(secs("1.5h"), Some(5400));
        assert_eq!(secs("3 mins 5 seconds"), Some(185));
        assert_eq!(secs("2 wks"), Some(1_209_600));
        assert_eq!(secs("1h, 30m"), Some(5400));
        assert_eq!(secs("soon"), None);
        assert_eq!(secs(""), None);
        assert_eq!(secs("5 parsecs"), None);
        assert_eq!(secs("1..5h"), None);
        assert_eq!(secs("h"), None);
        assert_eq!(secs("1:2:3:4"), None);
    }
}

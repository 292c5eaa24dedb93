//! Resource limits (memory, CPUs) spelled as the runner's config.toml spells them, and what
//! to say when a job dies of SIGKILL. Pure: parsing, checking, formatting, wording.

/// Memory and CPU limits of one container, as Docker's HostConfig takes them.
/// `None`: no limit (Docker's 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    /// Bytes.
    pub memory: Option<i64>,
    /// Bytes of memory plus swap.
    pub memory_swap: Option<i64>,
    /// Bytes: the soft limit.
    pub memory_reservation: Option<i64>,
    /// CPUs × 10⁹ (`cpus = "1.5"` is 1_500_000_000).
    pub nano_cpus: Option<i64>,
    /// Docker's OomKillDisable (build container only, like the runner).
    pub oom_kill_disable: bool,
}

/// Where the build container's memory limit came from, named in messages.
pub const MEMORY_FROM_FLAG: &str = "--memory";
pub const MEMORY_FROM_CONFIG: &str = "config.toml [runners.docker] memory";

/// A process killed by SIGKILL exits 128 + 9.
pub const SIGKILL_EXIT_CODE: i64 = 137;

/// Docker refuses memory limits and reservations below this (moby `linuxMinMemory`).
const DOCKER_MIN_MEMORY: i64 = 6 * 1024 * 1024;

const SIZE_HELP: &str = "expected bytes with an optional unit, like 512m, 1g, 128MB or 1GiB";

/// A memory size as go-units' `RAMInBytes` reads it (which the runner uses for `memory*`
/// settings and Docker's CLI for `--memory`): a decimal number, an optional space, then an
/// optional unit `k`, `m`, `g`, `t` or `p` with an optional `b` or `ib`, in any case.
/// Units are binary: `k` and `KB` alike are 1024.
pub fn parse_size(text: &str) -> Result<i64, String> {
    let s = text.trim();
    let invalid = || format!("invalid size \"{text}\": {SIZE_HELP}");
    let split = s
        .rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ')
        .ok_or_else(invalid)?;
    let (number, suffix) = (s[..split + 1].trim_end(), &s[split + 1..]);
    let value = decimal(number).ok_or_else(invalid)?;
    let suffix = suffix.to_ascii_lowercase();
    let shift = match suffix.as_bytes() {
        [] | [b'b'] => 0,
        [unit] | [unit, b'b'] | [unit, b'i', b'b'] => {
            match b"kmgtp".iter().position(|u| u == unit) {
                Some(i) => 10 * (i as i32 + 1),
                None => return Err(invalid()),
            }
        }
        _ => return Err(invalid()),
    };
    let bytes = value * 2f64.powi(shift);
    if bytes >= i64::MAX as f64 {
        return Err(format!("size \"{text}\" is too large"));
    }
    // go-units truncates fractions of a byte the same way.
    Ok(bytes as i64)
}

/// `1`, `1.5`, `.5`, `2.`: digits with at most one decimal point (no sign, no exponent).
fn decimal(s: &str) -> Option<f64> {
    let ok = s.chars().any(|c| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_digit() || c == '.')
        && s.matches('.').count() <= 1;
    ok.then(|| s.parse().ok()).flatten()
}

/// A number of CPUs (`2`, `1.5`, `0.25`) as nanoCPUs, exactly (no float rounding).
pub fn parse_cpus(text: &str) -> Result<i64, String> {
    let s = text.trim();
    let invalid = || format!("invalid number of CPUs \"{text}\": expected e.g. 1, 1.5 or 0.25");
    if decimal(s).is_none() {
        return Err(invalid());
    }
    let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
    // Beyond nanoCPU precision, digits are dropped (the runner truncates too).
    let fraction: String = format!("{fraction:0<9}").chars().take(9).collect();
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| invalid())?
    };
    whole
        .checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(fraction.parse::<i64>().ok()?))
        .ok_or_else(invalid)
}

/// Nonzero: a limit; zero means none, as in Docker and the runner.
pub fn limit(n: i64) -> Option<i64> {
    (n > 0).then_some(n)
}

/// Docker refuses these combinations when the container is created, with messages that
/// name no setting; checked while planning, the error names the setting and its source.
/// `prefix` is `service_` for services; `memory_from` says where `memory` came from.
pub fn check(r: &Resources, prefix: &str, memory_from: &str) -> Result<(), String> {
    let key = |k: &str| format!("config.toml [runners.docker] {prefix}{k}");
    for (value, name) in [
        (r.memory, format!("the memory limit (from {memory_from})")),
        (r.memory_reservation, key("memory_reservation")),
    ] {
        if let Some(v) = value.filter(|v| *v < DOCKER_MIN_MEMORY) {
            return Err(format!(
                "{name} is {}, below Docker's minimum of {}",
                human_size(v),
                human_size(DOCKER_MIN_MEMORY)
            ));
        }
    }
    let memory = |m: i64| format!("the memory limit ({} from {memory_from})", human_size(m));
    match (r.memory, r.memory_swap, r.memory_reservation) {
        (None, Some(_), _) => Err(format!(
            "{} is set but there is no memory limit: Docker limits swap only together with memory",
            key("memory_swap")
        )),
        (Some(m), Some(swap), _) if swap < m => Err(format!(
            "{} ({}) is less than {}: it counts memory plus swap, so it must be at least as large",
            key("memory_swap"),
            human_size(swap),
            memory(m)
        )),
        (Some(m), _, Some(res)) if res > m => Err(format!(
            "{} ({}) is more than {}",
            key("memory_reservation"),
            human_size(res),
            memory(m)
        )),
        _ => Ok(()),
    }
}

/// The largest binary unit that divides `bytes` exactly: (count, index into k, m, g).
fn in_units(bytes: i64) -> (i64, Option<usize>) {
    (0..3)
        .rev()
        .map(|i| (i, 1i64 << (10 * (i + 1))))
        .find(|(_, unit)| bytes != 0 && bytes % unit == 0)
        .map_or((bytes, None), |(i, unit)| (bytes / unit, Some(i)))
}

/// `64 MiB`, `1 GiB`, `1000 bytes`: for people.
pub fn human_size(bytes: i64) -> String {
    match in_units(bytes) {
        (n, Some(i)) => format!("{n} {}iB", ["K", "M", "G"][i]),
        (n, None) => format!("{n} bytes"),
    }
}

/// `64m`, `1g`, `1000`: for Docker's command line, which reads sizes like the runner.
pub fn docker_size(bytes: i64) -> String {
    match in_units(bytes) {
        (n, Some(i)) => format!("{n}{}", ["k", "m", "g"][i]),
        (n, None) => n.to_string(),
    }
}

/// nanoCPUs back to Docker's `--cpus` (`1.5`).
pub fn cpus_text(nano: i64) -> String {
    let (whole, fraction) = (nano / 1_000_000_000, nano % 1_000_000_000);
    if fraction == 0 {
        whole.to_string()
    } else {
        let digits = format!("{fraction:09}");
        format!("{whole}.{}", digits.trim_end_matches('0'))
    }
}

/// Said next to `Job failed: exit code 137`: why the job's shell got SIGKILL. Docker's
/// OOMKilled tells the container's memory cgroup killed it; otherwise someone sent it.
/// `limit`: the memory limit and where it came from, when one was set.
pub fn sigkill_explanation(oom_killed: bool, limit: Option<(i64, &str)>) -> String {
    match (oom_killed, limit) {
        (true, Some((bytes, from))) => format!(
            "The job was killed because it ran out of memory (OOMKilled; limit {} from {from})",
            human_size(bytes)
        ),
        (true, None) => "The job was killed because it ran out of memory (OOMKilled; no memory limit was set, so the host ran out)".to_string(),
        (false, _) => "exit code 137: the job's main process was killed by SIGKILL (kill -9, or the kernel's OOM killer outside the container's limit)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: i64 = 1024 * 1024;

    #[test]
    fn sizes_read_like_go_units_ram_in_bytes() {
        for (text, bytes) in [
            ("0", 0),
            ("1024", 1024),
            ("32", 32),
            ("10b", 10),
            ("512k", 512 * 1024),
            ("512m", 512 * MIB),
            ("512M", 512 * MIB),
            ("128MB", 128 * MIB),
            ("128mb", 128 * MIB),
            ("1GiB", 1024 * MIB),
            ("1g", 1024 * MIB),
            ("1 g", 1024 * MIB),
            ("1.5g", 1536 * MIB),
            ("2t", 2 << 40),
            ("1p", 1 << 50),
            (" 64m ", 64 * MIB),
        ] {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn bad_sizes_say_what_is_expected() {
        for text in [
            "", "m", "abc", "-1", "1x", "1mm", "1kib2", "1.2.3m", "1e3", "1 gb b",
        ] {
            let e = parse_size(text).unwrap_err();
            assert!(
                e.starts_with(&format!("invalid size \"{text}\"")) && e.contains("512m"),
                "{text}: {e}"
            );
        }
        assert!(parse_size("99999999p").unwrap_err().contains("too large"));
    }

    #[test]
    fn cpus_are_exact_nano_cpus() {
        assert_eq!(parse_cpus("1"), Ok(1_000_000_000));
        assert_eq!(parse_cpus("1.5"), Ok(1_500_000_000));
        assert_eq!(parse_cpus("0.25"), Ok(250_000_000));
        assert_eq!(parse_cpus(".1"), Ok(100_000_000));
        assert_eq!(parse_cpus("0.0000000019"), Ok(1));
        assert_eq!(parse_cpus("0"), Ok(0));
        for bad in ["", "-1", "one", "1/2", "1.5.1", "99999999999999"] {
            assert!(
                parse_cpus(bad).unwrap_err().contains(&format!("\"{bad}\"")),
                "{bad}"
            );
        }
        assert_eq!(cpus_text(1_500_000_000), "1.5");
        assert_eq!(cpus_text(2_000_000_000), "2");
        assert_eq!(cpus_text(250_000_000), "0.25");
    }

    #[test]
    fn sizes_print_in_the_largest_exact_unit() {
        assert_eq!(human_size(64 * MIB), "64 MiB");
        assert_eq!(human_size(1536 * MIB), "1536 MiB");
        assert_eq!(human_size(2048 * MIB), "2 GiB");
        assert_eq!(human_size(1000), "1000 bytes");
        assert_eq!(docker_size(32 * MIB), "32m");
        assert_eq!(docker_size(4096), "4k");
        assert_eq!(docker_size(1000), "1000");
        assert_eq!(limit(0), None);
        assert_eq!(limit(5), Some(5));
    }

    #[test]
    fn impossible_combinations_name_the_setting() {
        let r = |memory, memory_swap, memory_reservation| Resources {
            memory,
            memory_swap,
            memory_reservation,
            ..Default::default()
        };
        assert_eq!(
            check(&r(Some(64 * MIB), Some(64 * MIB), Some(32 * MIB)), "", "x"),
            Ok(())
        );
        assert_eq!(check(&Resources::default(), "", "x"), Ok(()));
        assert_eq!(
            check(&r(Some(32 * MIB), Some(16 * MIB), None), "", MEMORY_FROM_FLAG).unwrap_err(),
            "config.toml [runners.docker] memory_swap (16 MiB) is less than the memory limit (32 MiB from --memory): it counts memory plus swap, so it must be at least as large"
        );
        assert_eq!(
            check(&r(None, Some(MIB << 6), None), "service_", "x").unwrap_err(),
            "config.toml [runners.docker] service_memory_swap is set but there is no memory limit: Docker limits swap only together with memory"
        );
        assert_eq!(
            check(&r(Some(32 * MIB), None, Some(64 * MIB)), "", MEMORY_FROM_CONFIG).unwrap_err(),
            "config.toml [runners.docker] memory_reservation (64 MiB) is more than the memory limit (32 MiB from config.toml [runners.docker] memory)"
        );
        assert_eq!(
            check(&r(Some(MIB), None, None), "", MEMORY_FROM_FLAG).unwrap_err(),
            "the memory limit (from --memory) is 1 MiB, below Docker's minimum of 6 MiB"
        );
    }

    #[test]
    fn sigkill_is_explained_by_oom_killed() {
        assert_eq!(
            sigkill_explanation(true, Some((64 * MIB, MEMORY_FROM_FLAG))),
            "The job was killed because it ran out of memory (OOMKilled; limit 64 MiB from --memory)"
        );
        assert!(sigkill_explanation(true, None).contains("no memory limit was set"));
        let not_oom = sigkill_explanation(false, Some((64 * MIB, MEMORY_FROM_FLAG)));
        assert!(not_oom.contains("killed by SIGKILL"), "{not_oom}");
        assert!(!not_oom.contains("ran out of memory"), "{not_oom}");
    }
}

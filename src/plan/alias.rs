//! Service names and network aliases, derived exactly as GitLab Runner does.
//!
//! The image reference is validated with a small hand-written parser equivalent to
//! distribution/reference's `ReferenceRegexp` (no regex engine needed).

use std::collections::HashSet;

use crate::model::Service;

/// The runner's `SplitNameAndVersion`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceName {
    /// The image reference to pull (`:latest` appended when no tag/digest).
    pub image: String,
    /// Name without tag/digest and with the registry port dropped; empty if unparseable.
    pub service: String,
    /// Tag, `@sha256:...` digest, or `latest`.
    pub version: String,
    /// Default aliases: `/`→`__`, then `/`→`-` when different.
    pub aliases: Vec<String>,
}

/// `[A-Za-z0-9_]` (`\w` in Go's RE2).
fn is_word(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphanumeric()
}

/// `[\w][\w.-]{0,127}`
fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && is_word(b[0])
        && b[1..].iter().all(|&c| is_word(c) || c == b'.' || c == b'-')
}

/// `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][[:xdigit:]]{32,}`
fn valid_digest(d: &str) -> bool {
    let Some((alg, hex)) = d.split_once(':') else {
        return false;
    };
    let alg_ok = alg.split(['-', '_', '+', '.']).all(|part| {
        let b = part.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(u8::is_ascii_alphanumeric)
    });
    alg_ok && hex.len() >= 32 && hex.bytes().all(|c| c.is_ascii_hexdigit())
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn valid_path_component(p: &str) -> bool {
    let b = p.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &p[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])`
fn valid_domain_component(c: &str) -> bool {
    let b = c.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
}

/// Host (domain name or `[IPv6]`) with an optional `:port`.
fn valid_domain_and_port(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        let Some((ip, after)) = rest.split_once(']') else {
            return false;
        };
        if ip.is_empty() || !ip.bytes().all(|c| c.is_ascii_hexdigit() || c == b':') {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(p) => ("x", p),
                None => return false,
            },
        }
    } else {
        match d.split_once(':') {
            Some((h, p)) => (h, p),
            None => (d, "0"),
        }
    };
    !port.is_empty()
        && port.bytes().all(|c| c.is_ascii_digit())
        && host.split('.').all(valid_domain_component)
}

/// distribution/reference `NameRegexp`, anchored.
fn valid_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('/').collect();
    let rest_ok = parts[1..].iter().all(|p| valid_path_component(p));
    rest_ok
        && (valid_path_component(parts[0]) || (parts.len() > 1 && valid_domain_and_port(parts[0])))
}

/// `ReferenceRegexp`: (name, tag, digest), or None when it does not match.
fn parse_reference(s: &str) -> Option<(&str, Option<&str>, Option<&str>)> {
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) => {
            if !valid_digest(d) {
                return None;
            }
            (r, Some(d))
        }
        None => (s, None),
    };
    // A tag is a `:` after the last `/`; an earlier `:` can only be a registry port.
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => {
            let (n, t) = (&rest[..last_slash + i], &rest[last_slash + i + 1..]);
            if !valid_tag(t) {
                return None;
            }
            (n, Some(t))
        }
        None => (rest, None),
    };
    if name.is_empty() || !valid_name(name) {
        return None;
    }
    Some((name, tag, digest))
}

/// `^(.*?)(|:[0-9]+)(|/.*)$`: drop the registry port (the first `:digits` before a `/` or the end).
fn drop_port(name: &str) -> String {
    let b = name.as_bytes();
    for p in 0..=b.len() {
        let rest = &b[p..];
        if rest.is_empty() || rest[0] == b'/' {
            return name.to_string();
        }
        if rest[0] == b':' {
            let digits = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
            let after = &rest[1 + digits..];
            if digits > 0 && (after.is_empty() || after[0] == b'/') {
                return format!("{}{}", &name[..p], &name[p + 1 + digits..]);
            }
        }
    }
    name.to_string()
}

/// `@sha256:<64 chars>` at the end (`referenceRegexOnlyDigest`).
fn sha256_suffix(s: &str) -> Option<&str> {
    let at = s.rfind("@sha256:")?;
    let hex = &s[at + 8..];
    (hex.len() == 64 && hex.bytes().all(|c| c.is_ascii_alphanumeric())).then_some(&s[at..])
}

pub fn split_name_and_version(name: &str) -> ServiceName {
    let Some((base, tag, _digest)) = parse_reference(name) else {
        return ServiceName {
            image: name.to_string(),
            service: String::new(),
            version: "latest".to_string(),
            aliases: Vec::new(),
        };
    };
    let service = drop_port(base);
    let (image, version) = if let Some(tag) = tag {
        (name.to_string(), tag.to_string())
    } else if let Some(d) = sha256_suffix(name) {
        (name.to_string(), d.to_string())
    } else {
        (format!("{base}:latest"), "latest".to_string())
    };
    let a1 = service.replace('/', "__");
    let a2 = service.replace('/', "-");
    let mut aliases = vec![a1.clone()];
    if a2 != a1 {
        aliases.push(a2);
    }
    ServiceName {
        image,
        service,
        version,
        aliases,
    }
}

/// `Image.Aliases()`: the raw alias split on commas and/or whitespace.
pub fn custom_aliases(alias: Option<&str>) -> Vec<String> {
    alias
        .unwrap_or("")
        .replace(',', " ")
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// The outcome of alias assignment for one service of the job (in definition order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasAssignment {
    /// Index in the combined service list.
    pub index: usize,
    pub name: ServiceName,
    /// Every alias of the service (default ones then custom ones); the container gets all of them.
    pub aliases: Vec<String>,
    /// The aliases this service newly claimed (the build container resolves these to it).
    pub claimed: Vec<String>,
    /// Runner warnings to print (alias already in use, ...).
    pub warnings: Vec<String>,
    /// False when all its aliases were taken: the runner does not start it.
    pub start: bool,
}

/// Assign aliases to services in order, skipping aliases already used, like the runner.
/// Errors are the runner's configuration errors (`invalid service image name: X`).
pub fn assign(services: &[Service]) -> Result<Vec<AliasAssignment>, String> {
    let mut used: HashSet<String> = HashSet::new();
    let mut out = Vec::with_capacity(services.len());
    for (index, svc) in services.iter().enumerate() {
        let name = split_name_and_version(&svc.name);
        let custom = custom_aliases(svc.alias.as_deref());
        if name.service.is_empty() && !custom.is_empty() {
            return Err(format!("invalid service image name: {}", svc.name));
        }
        let mut aliases = name.aliases.clone();
        aliases.extend(custom);
        let mut claimed = Vec::new();
        let mut warnings = Vec::new();
        // Like the runner's linksMap: a repeated alias, even within the same service, is skipped.
        for a in &aliases {
            if used.contains(a) {
                warnings.push(format!(
                    "Skipping alias \"{a}\" for service \"{}\" (services[{index}]): alias is already in use by another service.",
                    svc.name
                ));
            } else {
                used.insert(a.clone());
                claimed.push(a.clone());
            }
        }
        out.push(AliasAssignment {
            index,
            name,
            start: !claimed.is_empty(),
            aliases,
            claimed,
            warnings,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "5ab4a8a7c6d3c9b9b1f4d0e4f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3";

    fn check(input: &str, image: &str, service: &str, version: &str, aliases: &[&str]) {
        let s = split_name_and_version(input);
        assert_eq!(s.image, image, "{input}");
        assert_eq!(s.service, service, "{input}");
        assert_eq!(s.version, version, "{input}");
        assert_eq!(s.aliases, aliases, "{input}");
    }

    #[test]
    fn runner_fixture_table() {
        check(
            "service",
            "service:latest",
            "service",
            "latest",
            &["service"],
        );
        check(
            "service:version",
            "service:version",
            "service",
            "version",
            &["service"],
        );
        check(
            "namespace/service",
            "namespace/service:latest",
            "namespace/service",
            "latest",
            &["namespace__service", "namespace-service"],
        );
        check(
            "domain.tld:8080/namespace/service:version",
            "domain.tld:8080/namespace/service:version",
            "domain.tld/namespace/service",
            "version",
            &[
                "domain.tld__namespace__service",
                "domain.tld-namespace-service",
            ],
        );
        check(
            "subdomain.domain.tld:8080/service",
            "subdomain.domain.tld:8080/service:latest",
            "subdomain.domain.tld/service",
            "latest",
            &[
                "subdomain.domain.tld__service",
                "subdomain.domain.tld-service",
            ],
        );
        let with_digest = format!("namespace/service@sha256:{HEX}");
        check(
            &with_digest,
            &with_digest,
            "namespace/service",
            &format!("@sha256:{HEX}"),
            &["namespace__service", "namespace-service"],
        );
    }

    #[test]
    fn common_images() {
        check(
            "tutum/wordpress",
            "tutum/wordpress:latest",
            "tutum/wordpress",
            "latest",
            &["tutum__wordpress", "tutum-wordpress"],
        );
        check(
            "postgres:15",
            "postgres:15",
            "postgres",
            "15",
            &["postgres"],
        );
        check(
            "docker:27-dind",
            "docker:27-dind",
            "docker",
            "27-dind",
            &["docker"],
        );
        check(
            "registry.example.com:5000/ns/svc:tag",
            "registry.example.com:5000/ns/svc:tag",
            "registry.example.com/ns/svc",
            "tag",
            &[
                "registry.example.com__ns__svc",
                "registry.example.com-ns-svc",
            ],
        );
        check(
            "localhost:5000",
            "localhost:5000",
            "localhost",
            "5000",
            &["localhost"],
        );
        check(
            "my_org/my-svc.v2:1.0",
            "my_org/my-svc.v2:1.0",
            "my_org/my-svc.v2",
            "1.0",
            &["my_org__my-svc.v2", "my_org-my-svc.v2"],
        );
    }

    #[test]
    fn tag_and_digest() {
        let s = format!("redis:7@sha256:{HEX}");
        check(&s, &s, "redis", "7", &["redis"]);
        // A non-sha256 digest has no tag and is not the `referenceRegexOnlyDigest` form.
        let other = format!("redis@sha512:{HEX}");
        check(&other, "redis:latest", "redis", "latest", &["redis"]);
    }

    #[test]
    fn unparseable_names() {
        for bad in [
            "Postgres",
            "ns/MyService:1",
            "a..b",
            "",
            "svc:",
            "svc:-x",
            "a//b",
            "a/",
        ] {
            let s = split_name_and_version(bad);
            assert_eq!(s.service, "", "{bad}");
            assert_eq!(s.image, bad);
            assert_eq!(s.version, "latest");
            assert!(s.aliases.is_empty());
        }
        // Upper case is fine in the registry host.
        check(
            "Registry.Example:443/ns/svc",
            "Registry.Example:443/ns/svc:latest",
            "Registry.Example/ns/svc",
            "latest",
            &["Registry.Example__ns__svc", "Registry.Example-ns-svc"],
        );
    }

    #[test]
    fn component_rules() {
        assert!(valid_path_component("a__b"));
        assert!(valid_path_component("a---b"));
        assert!(!valid_path_component("a___b"));
        assert!(!valid_path_component("a._b"));
        assert!(!valid_path_component("-a"));
        assert!(valid_domain_and_port("[::1]:5000"));
        assert!(!valid_domain_and_port("host:"));
    }

    fn svc(name: &str, alias: Option<&str>) -> Service {
        Service {
            name: name.into(),
            alias: alias.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn custom_alias_splitting() {
        assert_eq!(
            custom_aliases(Some("a, b,c  d\te")),
            vec!["a", "b", "c", "d", "e"]
        );
        assert!(custom_aliases(Some(" , ")).is_empty());
        assert!(custom_aliases(None).is_empty());
    }

    #[test]
    fn assign_duplicates_and_customs() {
        let r = assign(&[
            svc("postgres:15", None),
            svc("postgres:16", None),
            svc("postgres:15", Some("db2,other")),
            svc("mysql", Some("db2")),
        ])
        .unwrap();
        assert!(r[0].start);
        assert_eq!(r[0].claimed, vec!["postgres"]);
        assert!(!r[1].start);
        assert_eq!(
            r[1].warnings,
            vec!["Skipping alias \"postgres\" for service \"postgres:16\" (services[1]): alias is already in use by another service."]
        );
        assert!(r[2].start);
        assert_eq!(r[2].aliases, vec!["postgres", "db2", "other"]);
        assert_eq!(r[2].claimed, vec!["db2", "other"]);
        assert_eq!(r[2].warnings.len(), 1);
        assert!(r[3].start);
        assert_eq!(r[3].claimed, vec!["mysql"]);
        assert_eq!(r[3].index, 3);
    }

    #[test]
    fn same_image_different_custom_aliases_both_start() {
        let r = assign(&[svc("redis", Some("cache1")), svc("redis", Some("cache2"))]).unwrap();
        assert!(r[0].start && r[1].start);
        assert_eq!(r[1].claimed, vec!["cache2"]);
    }

    #[test]
    fn unparseable_service() {
        let r = assign(&[svc("MyImage", None)]).unwrap();
        assert!(!r[0].start);
        assert!(r[0].warnings.is_empty());
        assert_eq!(
            assign(&[svc("MyImage", Some("x"))]).unwrap_err(),
            "invalid service image name: MyImage"
        );
    }
}

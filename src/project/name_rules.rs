//! The rules for names cijob derives from the user's text, one function per rule: GitLab's
//! slugs, and names that Docker accepts in object names and GitLab in project paths.

/// `Gitlab::Utils.slugify`, for the `CI_*_SLUG` variables: lower case, `[a-z0-9-]` only, at
/// most 63 characters, no `-` at either end.
pub(crate) fn slugify(s: &str) -> String {
    // Ruby: downcase.gsub(/[^a-z0-9]/, '-')[0..62].gsub(/(\A-+|-+\z)/, '')
    let replaced: String = s
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    replaced.trim_matches('-').to_string()
}

/// `s` with every character outside `[A-Za-z0-9_.-]` turned into `-`, and no `-` or `.` at
/// either end: what Docker allows in container and volume names (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`,
/// the parts cijob puts after its own `cijob-` prefix), and one path component of a GitLab
/// project path (never `.` or `..`). May be empty.
pub(crate) fn safe_name(s: &str) -> String {
    let mapped: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    mapped.trim_matches(['-', '.']).to_string()
}

/// `s` as one folder name of cijob's store: anything but `[A-Za-z0-9_.-]` percent-encoded,
/// and a name of dots too, so that no job name or cache key reaches outside its folder.
pub(crate) fn path_component(s: &str) -> String {
    if s.is_empty() || s.chars().all(|c| c == '.') {
        return format!("%{}", s.replace('.', "%2E"));
    }
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugify_rules() {
        assert_eq!(slugify("feature/Foo_bar"), "feature-foo-bar");
        assert_eq!(slugify("--Hello World!--"), "hello-world");
        assert_eq!(slugify("test: [2.2, ruby]"), "test---2-2--ruby");
        assert_eq!(slugify("build 1/3"), "build-1-3");
        assert_eq!(slugify("Ünïcode"), "n-code");
        assert_eq!(slugify(""), "");
        let long = "a".repeat(62) + "-b";
        assert_eq!(slugify(&long), "a".repeat(62)); // cut to 63, then trailing '-' stripped
        assert_eq!(slugify(&"x".repeat(100)).len(), 63);
    }

    #[test]
    fn safe_names() {
        assert_eq!(safe_name("my proj!"), "my-proj");
        assert_eq!(safe_name("Keep_Case.v2-x"), "Keep_Case.v2-x");
        assert_eq!(
            safe_name("localhost:5000__grp__svc"),
            "localhost-5000__grp__svc"
        );
        assert_eq!(safe_name("..hidden."), "hidden");
        assert_eq!(safe_name("ü"), "");
        assert_eq!(safe_name(".."), "");
        assert_eq!(safe_name("!!"), "");
    }

    #[test]
    fn path_components_never_leave_their_folder() {
        assert_eq!(path_component("build: [a, b]"), "build%3A%20%5Ba%2C%20b%5D");
        assert_eq!(path_component("a/../b"), "a%2F..%2Fb");
        assert_eq!(path_component(".."), "%%2E%2E");
        assert_eq!(path_component(""), "%");
        assert_eq!(path_component("main-1.x"), "main-1.x");
    }
}

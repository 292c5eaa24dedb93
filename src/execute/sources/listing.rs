//! Reading the helper's listing of the project dir: one `<mode hex> <size> <mtime> ./<path>`
//! line per entry (`stat -c '%f %s %Y %n'`), then the marker with `find`'s exit status.
//! The build container's shell answers the same way, with its run's marker.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    /// A fifo, socket or device a job made: never part of the tree.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Relative to the project dir; `.` is the project dir itself.
    pub path: String,
    pub kind: Kind,
    /// Permission bits (`0o777` at most).
    pub perm: u32,
    pub size: u64,
    pub mtime: i64,
}

/// The helper's output as it arrives. The marker is looked for in what is new only: the
/// listing of a big project is megabytes, in chunks of a few kilobytes.
#[derive(Debug)]
pub struct Output<'m> {
    pub bytes: Vec<u8>,
    marker: &'m str,
    at: Option<usize>,
}

impl<'m> Output<'m> {
    pub fn new(marker: &'m str) -> Self {
        Output {
            bytes: Vec::new(),
            marker,
            at: None,
        }
    }

    pub fn push(&mut self, chunk: &[u8]) {
        let seen = self.bytes.len();
        self.bytes.extend_from_slice(chunk);
        if self.at.is_none() {
            // A marker straddling the chunks starts at most this far back, with its newline.
            let from = seen.saturating_sub(self.marker.len() + 1);
            self.at = marker_from(&self.bytes, self.marker, from);
        }
    }

    /// Whether it holds the whole listing.
    pub fn complete(&self) -> bool {
        self.at.is_some_and(|at| self.bytes[at..].contains(&b'\n'))
    }

    /// The entries, or `None` when there is no marker or the listing cannot be trusted.
    pub fn parse(&self) -> Option<Vec<Listed>> {
        parse_at(&self.bytes, self.marker, self.at?)
    }
}

/// Where the marker line starts, looking from `from` on.
fn marker_from(out: &[u8], marker: &str, from: usize) -> Option<usize> {
    let marker = format!("{marker} ");
    let m = marker.as_bytes();
    if from == 0 && out.starts_with(m) {
        return Some(0);
    }
    out[from..]
        .windows(m.len() + 1)
        .position(|w| w[0] == b'\n' && &w[1..] == m)
        .map(|p| from + p + 1)
}

/// The entries before the marker at `at`, or `None` when the listing cannot be trusted:
/// `find` failed, or a line does not read (a name with a newline in it, for one).
fn parse_at(out: &[u8], marker: &str, at: usize) -> Option<Vec<Listed>> {
    let status = std::str::from_utf8(&out[at + marker.len()..])
        .ok()?
        .lines()
        .next()?
        .trim();
    if status != "0" {
        return None;
    }
    let body = &out[..at];
    let mut entries = Vec::new();
    for line in body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        entries.push(parse_line(line)?);
    }
    Some(entries)
}

fn parse_line(line: &[u8]) -> Option<Listed> {
    let mut parts = line.splitn(4, |&b| b == b' ');
    let mode = u32::from_str_radix(std::str::from_utf8(parts.next()?).ok()?, 16).ok()?;
    let size = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
    let mtime = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
    let name = String::from_utf8_lossy(parts.next()?);
    let path = if name == "." {
        ".".to_string()
    } else {
        name.strip_prefix("./")?.to_string()
    };
    let kind = match mode & 0o170000 {
        0o100000 => Kind::File,
        0o040000 => Kind::Dir,
        0o120000 => Kind::Symlink,
        _ => Kind::Other,
    };
    Some(Listed {
        path,
        kind,
        perm: mode & 0o7777,
        size,
        mtime,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    const LISTED_MARKER: &str = "--cijob-listed-r1--";

    fn parse(out: &[u8]) -> Option<Vec<Listed>> {
        let mut o = Output::new(LISTED_MARKER);
        o.push(out);
        o.parse()
    }

    fn whole(out: &[u8]) -> bool {
        let mut o = Output::new(LISTED_MARKER);
        o.push(out);
        o.complete()
    }

    #[test]
    fn the_marker_is_found_across_chunks() {
        let out = format!("41ff 4096 100 .\n81b6 2 1 ./a\n{LISTED_MARKER} 0\n");
        for split in 0..out.len() {
            for second in split..out.len() {
                let mut o = Output::new(LISTED_MARKER);
                o.push(&out.as_bytes()[..split]);
                o.push(&out.as_bytes()[split..second]);
                assert!(!o.complete(), "{split} {second}");
                o.push(&out.as_bytes()[second..]);
                assert!(o.complete(), "{split} {second}");
            }
        }
        // A name that merely contains the marker is not the end.
        let mut o = Output::new(LISTED_MARKER);
        o.push(format!("81b6 2 1 ./x{LISTED_MARKER} 0\n").as_bytes());
        assert!(!o.complete());
    }

    #[test]
    fn reads_the_listing() {
        let out = format!(
            "41ff 4096 100 .\n81b6 2 1577836800 ./f\na1ff 1 1577836800 ./l\n41c0 4096 5 ./d\n81ff 3 7 ./d/with space\n11a4 0 7 ./fifo\n{LISTED_MARKER} 0\n"
        );
        assert!(whole(out.as_bytes()));
        let got = parse(out.as_bytes()).unwrap();
        assert_eq!(got.len(), 6);
        assert_eq!(
            got[1],
            Listed {
                path: "f".into(),
                kind: Kind::File,
                perm: 0o666,
                size: 2,
                mtime: 1_577_836_800
            }
        );
        assert_eq!((got[0].path.as_str(), got[0].kind), (".", Kind::Dir));
        assert_eq!(got[2].kind, Kind::Symlink);
        assert_eq!((got[3].kind, got[3].perm), (Kind::Dir, 0o700));
        assert_eq!(got[4].path, "d/with space");
        assert_eq!(got[5].kind, Kind::Other);
    }

    #[test]
    fn what_cannot_be_trusted() {
        // Not finished yet.
        assert!(!whole(b"41ff 4096 100 .\n"));
        assert_eq!(parse(b"41ff 4096 100 .\n"), None);
        // find failed (a directory it could not read).
        let failed = format!("41ff 4096 100 .\n{LISTED_MARKER} 1\n");
        assert_eq!(parse(failed.as_bytes()), None);
        // A name with a newline splits into a line that does not read.
        let newline = format!("41ff 4096 100 .\n81b6 2 1 ./a\nb\n{LISTED_MARKER} 0\n");
        assert_eq!(parse(newline.as_bytes()), None);
        // An empty project dir is fine.
        let empty = format!("{LISTED_MARKER} 0\n");
        assert_eq!(parse(empty.as_bytes()), Some(vec![]));
    }
}

//! Replacing secret values with `[MASKED]` in streamed output, across chunk boundaries.
//!
//! Any non-empty secret is masked (minimum length 1 byte; GitLab's own 8-character rule is a
//! server-side validation that does not apply to values given on the command line).
//! When several secrets could match at the same position the longest one wins, and the
//! streaming result is identical to masking the whole output at once.

const MASK: &[u8] = b"[MASKED]";

pub struct Masker {
    secrets: Vec<Vec<u8>>,
    carry: Vec<u8>,
}

impl Masker {
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<Vec<u8>> = secrets
            .into_iter()
            .filter(|s| !s.is_empty())
            .map(String::into_bytes)
            .collect();
        // Longest first so a secret that contains another one is masked whole.
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        Self {
            secrets,
            carry: Vec::new(),
        }
    }

    /// Feed a chunk; returns the bytes that are safe to print now.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        if self.secrets.is_empty() {
            return chunk.to_vec();
        }
        let mut buf = std::mem::take(&mut self.carry);
        buf.extend_from_slice(chunk);
        let (out, consumed) = self.scan(&buf, false);
        self.carry = buf[consumed..].to_vec();
        out
    }

    /// Flush what is held back at the end of the stream.
    pub fn finish(&mut self) -> Vec<u8> {
        let buf = std::mem::take(&mut self.carry);
        if self.secrets.is_empty() {
            return buf;
        }
        self.scan(&buf, true).0
    }

    /// Mask a whole string at once.
    pub fn mask_str(&self, s: &str) -> String {
        if self.secrets.is_empty() {
            return s.to_string();
        }
        let out = self.scan(s.as_bytes(), true).0;
        String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// Mask `buf`; returns the output and how many input bytes it covers. Unless `last`,
    /// stops at the first position where a secret might continue in the next chunk.
    fn scan(&self, buf: &[u8], last: bool) -> (Vec<u8>, usize) {
        let mut out = Vec::with_capacity(buf.len());
        let mut i = 0;
        'outer: while i < buf.len() {
            let rest = &buf[i..];
            if !last
                && self
                    .secrets
                    .iter()
                    .any(|s| s.len() > rest.len() && s.starts_with(rest))
            {
                // A (longer) secret may still complete here: hold back from i.
                break;
            }
            for s in &self.secrets {
                if rest.starts_with(s) {
                    out.extend_from_slice(MASK);
                    i += s.len();
                    continue 'outer;
                }
            }
            out.push(buf[i]);
            i += 1;
        }
        (out, i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(m: &mut Masker, chunks: &[&[u8]]) -> String {
        let mut out = Vec::new();
        for c in chunks {
            out.extend(m.push(c));
        }
        out.extend(m.finish());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn no_secrets_passes_through() {
        let mut m = Masker::new(Vec::<String>::new());
        assert!(m.secrets.is_empty());
        assert_eq!(m.push(b"abc"), b"abc");
        assert!(m.carry.is_empty());
        assert_eq!(m.finish(), b"");
        assert_eq!(m.mask_str("x"), "x");
        let m = Masker::new(vec![String::new()]);
        assert!(m.secrets.is_empty());
    }

    #[test]
    fn whole_string() {
        let m = Masker::new(vec!["s3cret".to_string()]);
        assert_eq!(m.mask_str("a s3cret b s3cret"), "a [MASKED] b [MASKED]");
    }

    #[test]
    fn split_across_three_chunks() {
        let mut m = Masker::new(vec!["password123".to_string()]);
        let s = stream(&mut m, &[b"start pass", b"word1", b"23 end"]);
        assert_eq!(s, "start [MASKED] end");
    }

    #[test]
    fn holds_back_at_most_max_len_minus_one() {
        let mut m = Masker::new(vec!["abcdef".to_string()]);
        let out = m.push(b"xxabcde");
        assert_eq!(out, b"xx");
        assert_eq!(m.carry, b"abcde");
        let out = m.push(b"X");
        assert_eq!(out, b"abcdeX");
        assert_eq!(m.finish(), b"");
    }

    #[test]
    fn byte_at_a_time() {
        let secrets = vec![
            "tok".to_string(),
            "token-long".to_string(),
            "é∑".to_string(),
        ];
        let input = "a token-long tok token-lon tok é∑ ttok";
        let whole = Masker::new(secrets.clone()).mask_str(input);
        assert_eq!(
            whole,
            "a [MASKED] [MASKED] [MASKED]en-lon [MASKED] [MASKED] t[MASKED]"
        );
        let mut m = Masker::new(secrets);
        let chunks: Vec<&[u8]> = input.as_bytes().chunks(1).collect();
        assert_eq!(stream(&mut m, &chunks), whole);
    }

    #[test]
    fn overlapping_and_prefix_secrets() {
        let m = Masker::new(vec!["ab".to_string(), "abc".to_string(), "bcd".to_string()]);
        assert_eq!(m.mask_str("abcd"), "[MASKED]d");
        assert_eq!(m.mask_str("xbcd ab"), "x[MASKED] [MASKED]");
        // A partial longer secret at the end of the stream falls back to the shorter one.
        let mut m = Masker::new(vec!["ab".to_string(), "abc".to_string()]);
        assert_eq!(stream(&mut m, &[b"x", b"a", b"b"]), "x[MASKED]");
    }

    #[test]
    fn unfinished_prefix_is_flushed_verbatim() {
        let mut m = Masker::new(vec!["secret".to_string()]);
        assert_eq!(stream(&mut m, &[b"sec", b"re"]), "secre");
    }
}

//! How a POSIX shell reads the quoting of typed text (`\x`, `'...'`, `"..."`), for the
//! completer: shells hand it words as typed, possibly in the middle of a quote. One lexer;
//! every question the completer asks of a word or a line is answered from its tokens.

/// How a character of the text is quoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Quoting {
    /// Not quoted: blanks end a word here (and `:` does for bash's readline).
    Bare,
    /// After a backslash.
    Escaped,
    /// Inside `'...'`.
    Single,
    /// Inside `"..."`.
    Double,
}

/// One character of the text as the shell reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token {
    /// Byte offset in the text.
    pub at: usize,
    pub c: char,
    /// `None` for quoting syntax (a quote mark, an escaping backslash): gone once dequoted.
    pub quoting: Option<Quoting>,
}

impl Token {
    fn is_bare_blank(&self) -> bool {
        self.quoting == Some(Quoting::Bare) && matches!(self.c, ' ' | '\t' | '\n')
    }
}

/// The tokens of a text, and the quote still open at its end (the user is typing inside it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lexed {
    pub tokens: Vec<Token>,
    pub open_quote: Option<char>,
}

/// The text with its quoting removed; an open quote runs to the end.
pub(crate) fn dequote(text: &str) -> String {
    dequoted(&lex(text).tokens)
}

/// The characters of `tokens` that are text, not quoting.
pub(crate) fn dequoted(tokens: &[Token]) -> String {
    tokens
        .iter()
        .filter(|t| t.quoting.is_some())
        .map(|t| t.c)
        .collect()
}

pub(crate) fn lex(text: &str) -> Lexed {
    let mut tokens = Vec::with_capacity(text.len());
    let mut open_quote = None;
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let quoting = match (open_quote, c) {
            (None, '\'' | '"') => {
                open_quote = Some(c);
                None
            }
            (Some(q), c) if c == q => {
                open_quote = None;
                None
            }
            // Inside double quotes a backslash escapes only what is special there.
            (None, '\\') | (Some('"'), '\\')
                if open_quote.is_none()
                    || chars
                        .peek()
                        .is_some_and(|(_, n)| matches!(n, '$' | '`' | '"' | '\\' | '\n')) =>
            {
                tokens.push(Token {
                    at,
                    c,
                    quoting: None,
                });
                if let Some((at, c)) = chars.next() {
                    tokens.push(Token {
                        at,
                        c,
                        quoting: Some(Quoting::Escaped),
                    });
                }
                continue;
            }
            (None, _) => Some(Quoting::Bare),
            (Some('\''), _) => Some(Quoting::Single),
            (Some(_), _) => Some(Quoting::Double),
        };
        tokens.push(Token { at, c, quoting });
    }
    Lexed { tokens, open_quote }
}

/// A command line split at its unquoted blanks, each word as typed (quoting kept); a
/// trailing blank starts an empty last word, the one being completed.
pub(crate) fn words(line: &str) -> Vec<&str> {
    let mut words = Vec::new();
    let mut start = None;
    for t in lex(line).tokens {
        match (t.is_bare_blank(), start) {
            (true, Some(s)) => {
                words.push(&line[s..t.at]);
                start = None;
            }
            (false, None) => start = Some(t.at),
            _ => {}
        }
    }
    words.push(start.map_or("", |s| &line[s..]));
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(s: &str) -> bool {
        lex(s).open_quote.is_some()
    }

    #[test]
    fn quoting_is_removed() {
        assert_eq!(dequote(r"test\:\ \[2"), "test: [2");
        assert_eq!(dequote("'test: [2"), "test: [2");
        assert_eq!(dequote(r#""build 1/3""#), "build 1/3");
        assert_eq!(dequote(r#"a"b\"c"d"#), "ab\"cd");
        assert_eq!(dequote(r#""a\b\\c""#), r"a\b\c");
        assert_eq!(dequote(r"'it\'s"), r"it\s");
        assert_eq!(dequote("plain"), "plain");
        assert_eq!(dequote("trailing\\"), "trailing");
    }

    #[test]
    fn each_character_knows_its_quoting() {
        let q: Vec<_> = lex(r#"a\b'c'"d""#)
            .tokens
            .iter()
            .map(|t| (t.c, t.quoting))
            .collect();
        assert_eq!(
            q,
            [
                ('a', Some(Quoting::Bare)),
                ('\\', None),
                ('b', Some(Quoting::Escaped)),
                ('\'', None),
                ('c', Some(Quoting::Single)),
                ('\'', None),
                ('"', None),
                ('d', Some(Quoting::Double)),
                ('"', None),
            ]
        );
    }

    #[test]
    fn open_quotes() {
        assert!(open("'te"));
        assert!(open("\"test: [2"));
        assert!(open("x'te"));
        assert!(!open("'test: [2.2]'"));
        assert!(!open(r"test\:\ \[2"));
        assert!(!open(r"it\'s"));
        assert!(open(r#""a\"b"#));
        assert_eq!(lex("'a\"b").open_quote, Some('\''));
    }

    #[test]
    fn lines_split_at_unquoted_blanks_keeping_the_quoting() {
        assert_eq!(words("cijob run test:"), ["cijob", "run", "test:"]);
        assert_eq!(words("cijob run "), ["cijob", "run", ""]);
        assert_eq!(words("cijob  run\tx"), ["cijob", "run", "x"]);
        assert_eq!(
            words(r"cijob -C 'a b' run x\ y:z"),
            ["cijob", "-C", "'a b'", "run", r"x\ y:z"]
        );
        assert_eq!(words("run \"open quo"), ["run", "\"open quo"]);
        assert_eq!(words(""), [""]);
    }
}

//! Static token file authenticator (`--token-auth-file`), as upstream's
//! `apiserver/pkg/authentication/token/tokenfile`: a CSV file of
//! `token,user,uid[,"group1,group2"]` records.

use std::{collections::HashMap, path::Path};

use super::{TokenAuthenticator, UserInfo};

/// Why a token file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("reading token file {path:?}")]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing token file {path:?}")]
    Parse {
        path: std::path::PathBuf,
        #[source]
        source: ParseError,
    },
}

/// A syntax error in token file text, at a 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl ParseError {
    fn new(line: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            line,
            message: message.into(),
        }
    }
}

/// One CSV record and the line it starts on.
type Record = (usize, Vec<String>);

/// Tokens from a static CSV file.
#[derive(Debug, Default)]
pub struct TokenFile {
    tokens: HashMap<String, UserInfo>,
}

impl TokenFile {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<TokenFile, TokenFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|source| TokenFileError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    /// Parses the CSV text. As upstream: fewer
    /// than 3 columns is an error, an empty token is skipped with a warning, a later
    /// duplicate token wins. Unlike Go's CSV reader we also skip `#` comment lines.
    pub fn parse(text: &str) -> Result<TokenFile, ParseError> {
        let mut tokens = HashMap::new();
        for (line, record) in csv_records(text)? {
            if record.len() < 3 {
                return Err(ParseError::new(
                    line,
                    format!(
                        "token file must have at least 3 columns (token, user name, user uid), found {}",
                        record.len()
                    ),
                ));
            }
            let mut fields = record.into_iter();
            let (Some(token), Some(name), Some(uid)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            if token.is_empty() {
                tracing::warn!(line, "empty token found in token file");
                continue;
            }
            let groups = match fields.next() {
                Some(g) => g.split(',').map(str::to_owned).collect(),
                None => Vec::new(),
            };
            if tokens
                .insert(token, UserInfo { name, uid, groups })
                .is_some()
            {
                tracing::warn!(line, "duplicate token found in token file");
            }
        }
        Ok(TokenFile { tokens })
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

impl TokenAuthenticator for TokenFile {
    fn name(&self) -> &'static str {
        "token-file"
    }

    fn authenticate_token(&self, token: &str) -> Option<UserInfo> {
        self.tokens.get(token).cloned()
    }
}

/// Splits RFC 4180 CSV (what Go's `encoding/csv` reads): quoted fields may hold commas,
/// newlines and `""` escapes; blank lines are skipped. Also skips lines starting with `#`.
fn csv_records(text: &str) -> Result<Vec<Record>, ParseError> {
    let mut records = Vec::new();
    let mut line = 1;
    let mut chars = text.chars().peekable();
    while chars.peek().is_some() {
        let start_line = line;
        // Blank lines and comments.
        match chars.peek() {
            Some('\n') => {
                chars.next();
                line += 1;
                continue;
            }
            Some('\r') => {
                chars.next();
                continue;
            }
            Some('#') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        line += 1;
                        break;
                    }
                }
                continue;
            }
            _ => {}
        }
        let mut record = Vec::new();
        let mut field = String::new();
        let mut at_field_start = true;
        let mut in_quotes = false;
        loop {
            let Some(c) = chars.next() else {
                if in_quotes {
                    return Err(ParseError::new(
                        start_line,
                        "extraneous or missing \" in quoted-field",
                    ));
                }
                record.push(std::mem::take(&mut field));
                break;
            };
            if in_quotes {
                match c {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    '"' => {
                        in_quotes = false;
                        if !matches!(chars.peek(), None | Some(',') | Some('\n') | Some('\r')) {
                            return Err(ParseError::new(
                                line,
                                "extraneous or missing \" in quoted-field",
                            ));
                        }
                    }
                    '\n' => {
                        line += 1;
                        field.push(c);
                    }
                    _ => field.push(c),
                }
                continue;
            }
            match c {
                '"' if at_field_start => {
                    in_quotes = true;
                    at_field_start = false;
                }
                '"' => return Err(ParseError::new(line, "bare \" in non-quoted-field")),
                ',' => {
                    record.push(std::mem::take(&mut field));
                    at_field_start = true;
                }
                '\r' if chars.peek() == Some(&'\n') => {}
                '\n' => {
                    line += 1;
                    record.push(std::mem::take(&mut field));
                    break;
                }
                _ => {
                    field.push(c);
                    at_field_start = false;
                }
            }
        }
        records.push((start_line, record));
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_upstream_format_with_quoted_groups() {
        let text = "# comment line\n\
                    abc123,alice,1001,\"system:masters,devs\"\n\
                    \n\
                    def456,bob,1002\r\n\
                    ghi789,carol,1003,ops\n\
                    \"q,t\",\"d\"\"q\",1004,";
        let file = TokenFile::parse(text).expect("parses");
        assert_eq!(file.len(), 4);
        let alice = file.authenticate_token("abc123").expect("alice");
        assert_eq!(
            alice,
            UserInfo {
                name: "alice".into(),
                uid: "1001".into(),
                groups: vec!["system:masters".into(), "devs".into()]
            }
        );
        let bob = file.authenticate_token("def456").expect("bob");
        assert_eq!((bob.name.as_str(), bob.uid.as_str()), ("bob", "1002"));
        assert!(bob.groups.is_empty());
        assert_eq!(
            file.authenticate_token("ghi789").map(|u| u.groups),
            Some(vec!["ops".to_string()])
        );
        let quoted = file.authenticate_token("q,t").expect("quoted token");
        assert_eq!(quoted.name, "d\"q");
        // An empty 4th column is a single empty group, as Go's strings.Split gives.
        assert_eq!(quoted.groups, vec![String::new()]);
        assert!(file.authenticate_token("nope").is_none());
        assert!(file.authenticate_token("abc").is_none());
    }

    #[test]
    fn rejects_short_records_and_bad_quotes() {
        let err = TokenFile::parse("good,u,1\nbad,onlytwo\n").expect_err("error");
        assert_eq!(err.line, 2);
        assert!(err.message.contains("at least 3 columns"), "{err}");
        assert!(TokenFile::parse("a,\"b,1\n").is_err());
        assert!(TokenFile::parse("a,b\"c,1\n").is_err());
    }

    #[test]
    fn empty_token_skipped_and_duplicates_last_wins() {
        let file = TokenFile::parse(",nobody,0\nt,first,1\nt,second,2\n").expect("parses");
        assert_eq!(file.len(), 1);
        assert_eq!(
            file.authenticate_token("t").map(|u| u.name),
            Some("second".to_string())
        );
        assert!(file.authenticate_token("").is_none());
    }
}

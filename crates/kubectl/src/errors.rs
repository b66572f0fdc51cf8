//! The errors of a kubectl run, printed as upstream prints them (`cmdutil.CheckErr`):
//! one line on stderr, exit code 1.

use std::fmt;

/// An API `Status` failure answered by the server.
#[derive(Debug, Clone)]
pub struct ServerError {
    pub code: u16,
    pub reason: String,
    pub message: String,
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // upstream `StandardErrorMessage`: the reason in parentheses when it has one.
        let message = if self.message.is_empty() {
            "an error on the server (\"unknown\") has prevented the request from succeeding"
                .to_string()
        } else {
            self.message.clone()
        };
        if self.reason == "Unauthorized" {
            write!(f, "error: You must be logged in to the server ({message})")
        } else if self.reason.is_empty() {
            write!(f, "Error from server: {message}")
        } else {
            write!(f, "Error from server ({}): {message}", self.reason)
        }
    }
}

/// A 422 `Invalid` answer, printed as upstream `cmdutil.CheckErr` prints it:
/// `The Kind "name" is invalid: ` then the causes (one on the same line, more
/// as `* field: message` lines; `MultilineError`).
#[derive(Debug, Clone)]
pub struct InvalidError {
    pub kind: String,
    pub name: String,
    /// `field: message` of each cause, duplicates removed.
    pub causes: Vec<String>,
    /// The server's message (used when the Status has no details).
    pub message: String,
}

impl fmt::Display for InvalidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let head = if self.kind.is_empty() && self.name.is_empty() {
            if self.causes.is_empty() && !self.message.is_empty() {
                return write!(f, "The request is invalid: {}", self.message);
            }
            "The request is invalid".to_string()
        } else {
            format!("The {} {:?} is invalid", self.kind, self.name)
        };
        match self.causes.as_slice() {
            [] => write!(f, "{head}"),
            [one] => write!(f, "{head}: {one}"),
            many => {
                write!(f, "{head}: ")?;
                for c in many {
                    write!(f, "\n* {c}")?;
                }
                Ok(())
            }
        }
    }
}

impl InvalidError {
    /// From a Status's `details` (kind, name, causes as `field: message`).
    pub fn new(
        kind: &str,
        name: &str,
        causes: impl IntoIterator<Item = String>,
        message: &str,
    ) -> Self {
        let mut unique: Vec<String> = Vec::new();
        for c in causes {
            if !unique.contains(&c) {
                unique.push(c);
            }
        }
        InvalidError {
            kind: kind.to_string(),
            name: name.to_string(),
            causes: unique,
            message: message.to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with a failure `Status`.
    #[error("{0}")]
    Server(ServerError),
    /// The server refused an object as invalid (422 with details).
    #[error("{0}")]
    Invalid(InvalidError),
    /// The server could not be reached.
    #[error(
        "The connection to the server {host} was refused - did you specify the right host or port?"
    )]
    ConnectionRefused { host: String },
    /// Any other transport failure.
    #[error("{0}")]
    Transport(String),
    /// A user or configuration mistake; printed as `error: <message>`.
    #[error("error: {0}")]
    Usage(String),
    /// A flag value upstream's flag parser (pflag) refuses: `Error: <message>`,
    /// then `See 'kubectl <command> --help' for usage.` when printed.
    #[error("Error: {0}")]
    Flag(String),
    /// Already printed (e.g. per-object failures of a multi-object command).
    #[error("")]
    Reported,
    #[error("error: {0}")]
    Io(#[from] std::io::Error),
    #[error("error: {0}")]
    Json(#[from] serde_json::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn usage(msg: impl Into<String>) -> Error {
        Error::Usage(msg.into())
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Server(s) if s.code == 404)
    }

    /// Prints the error as upstream does (nothing for [`Error::Reported`]).
    pub fn print(&self) {
        if !matches!(self, Error::Reported) {
            eprintln!("{self}");
        }
        if matches!(self, Error::Flag(_)) {
            let args: Vec<String> = std::env::args().collect();
            eprintln!(
                "See '{} --help' for usage.",
                crate::cli::command_path(&args)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_print_their_reason() {
        let e = Error::Server(ServerError {
            code: 404,
            reason: "NotFound".into(),
            message: "pods \"x\" not found".into(),
        });
        assert_eq!(
            e.to_string(),
            "Error from server (NotFound): pods \"x\" not found"
        );
        assert!(e.is_not_found());
        let e = Error::Server(ServerError {
            code: 500,
            reason: String::new(),
            message: "boom".into(),
        });
        assert_eq!(e.to_string(), "Error from server: boom");
    }

    #[test]
    fn invalid_errors_print_one_cause_inline_and_more_as_a_list() {
        let one = InvalidError::new(
            "Pod",
            "x",
            ["spec.containers[0].image: Required value".to_string()],
            "",
        );
        assert_eq!(
            one.to_string(),
            "The Pod \"x\" is invalid: spec.containers[0].image: Required value"
        );
        let many = InvalidError::new(
            "Pod",
            "m",
            ["a: x".to_string(), "b: y".to_string(), "a: x".to_string()],
            "",
        );
        assert_eq!(
            many.to_string(),
            "The Pod \"m\" is invalid: \n* a: x\n* b: y"
        );
        let bare = InvalidError::new("", "", Vec::new(), "boom");
        assert_eq!(bare.to_string(), "The request is invalid: boom");
    }
}

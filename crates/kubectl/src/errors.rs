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

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with a failure `Status`.
    #[error("{0}")]
    Server(ServerError),
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
}

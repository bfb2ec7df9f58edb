//! The CLI's error: an engine error, an I/O failure outside the engine, or a plain
//! message (bad input, a missing key). Every one prints as one line.

use std::fmt;
use std::io;

/// Everything a subcommand can fail with.
#[derive(Debug)]
pub enum CliError {
    /// The engine refused or failed.
    Db(capsuledb::Error),
    /// An I/O call the CLI made itself failed; `what` says which.
    Io { what: String, source: io::Error },
    /// Bad input or a result the user asked to be told about (a missing key).
    Msg(String),
}

/// Result alias for the CLI.
pub type CliResult<T> = Result<T, CliError>;

impl CliError {
    /// A plain message error.
    pub fn msg(text: impl Into<String>) -> CliError {
        CliError::Msg(text.into())
    }

    /// Wraps an I/O error with what was being done.
    pub fn io(what: impl Into<String>, source: io::Error) -> CliError {
        CliError::Io {
            what: what.into(),
            source,
        }
    }

    /// Whether this is a closed stdout (`capsuledb scan ... | head`), which is not a
    /// failure of the command.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, CliError::Io { source, .. } if source.kind() == io::ErrorKind::BrokenPipe)
    }
}

/// Names `out` in an I/O error of the engine met while writing it (`backup`, `salvage`):
/// the engine's own message says only "the database file", which reads as the input.
pub fn naming_output(out: &std::path::Path, e: CliError) -> CliError {
    match e {
        CliError::Db(capsuledb::Error::Io { op, source }) => CliError::Io {
            what: format!("{op} {} (the output)", out.display()),
            source,
        },
        other => other,
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Db(e) => write!(f, "{e}"),
            CliError::Io { what, source } => write!(f, "failed to {what}: {source}"),
            CliError::Msg(m) => write!(f, "{m}"),
        }
    }
}

impl From<capsuledb::Error> for CliError {
    fn from(e: capsuledb::Error) -> CliError {
        CliError::Db(e)
    }
}

/// Output errors: writing to stdout.
impl From<io::Error> for CliError {
    fn from(source: io::Error) -> CliError {
        CliError::io("write the output", source)
    }
}

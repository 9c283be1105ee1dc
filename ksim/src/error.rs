//! How a command fails, and the exit status each way of failing gets.
//!
//! A user can tell from the status alone what happened: 1 is ksim doing its job (a bug was
//! found), 2 is their input, 3 is the machine (a file that could not be written), 70 is ksim's
//! own bug. No status is chosen by reading a panic's text.

use std::io::Write as _;

/// Exit status: a campaign or merge found a violation, a zoo row is not as claimed, or a replay
/// did not reproduce exactly.
pub(crate) const EXIT_FOUND: u8 = 1;
/// Exit status: bad input (an argument, a name, a missing or corrupt input file, an `--out`
/// directory that cannot be made before the run starts).
pub(crate) const EXIT_USAGE: u8 = 2;
/// Exit status: the command failed while running (an output file or stdout could not be
/// written, a worker thread died).
pub(crate) const EXIT_FAILED: u8 = 3;
/// Exit status: ksim itself panicked (a ksim bug; BSD's EX_SOFTWARE).
pub(crate) const EXIT_INTERNAL: u8 = 70;
/// Exit status: Ctrl-C ended a clean campaign early (128 + SIGINT, as a shell reports it).
pub(crate) const EXIT_INTERRUPTED: u8 = 130;
/// Exit status: stdout's reader went away (128 + SIGPIPE, as a shell reports it).
pub(crate) const EXIT_BROKEN_PIPE: u8 = 141;

/// Why a command did not finish.
#[derive(Debug)]
pub(crate) enum CliError {
    /// The input is wrong; the line says how (exit 2).
    Usage(String),
    /// Something failed while running; the line says what (exit 3).
    Failed(String),
    /// Stdout was closed under us, as `ksim trace X | head` does (exit 141, nothing printed).
    BrokenPipe,
}

impl From<String> for CliError {
    /// The lower layers' error lines are about their input (a name, a file's contents) unless a
    /// caller says otherwise with [`CliError::Failed`].
    fn from(message: String) -> CliError {
        CliError::Usage(message)
    }
}

impl CliError {
    /// The exit status.
    pub(crate) fn status(&self) -> u8 {
        match self {
            CliError::Usage(_) => EXIT_USAGE,
            CliError::Failed(_) => EXIT_FAILED,
            CliError::BrokenPipe => EXIT_BROKEN_PIPE,
        }
    }

    /// The one line for stderr (None: say nothing).
    pub(crate) fn line(&self) -> Option<String> {
        match self {
            CliError::Usage(message) => Some(format!("ksim: {message}")),
            CliError::Failed(message) => Some(format!("ksim: failed: {message}")),
            CliError::BrokenPipe => None,
        }
    }
}

/// Writes `text` to stdout, telling a closed pipe (quiet, 141) from a failed write (exit 3), which
/// `print!` would turn into a panic.
pub(crate) fn print(text: &str) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()).map_err(stdout_error)
}

/// Classifies a failed write to stdout.
pub(crate) fn stdout_error(error: std::io::Error) -> CliError {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        CliError::BrokenPipe
    } else {
        CliError::Failed(format!("cannot write stdout: {error}"))
    }
}

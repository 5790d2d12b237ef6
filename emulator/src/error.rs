//! Why the emulator could not start.

/// A configuration the emulator cannot run with.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("invalid target URL {url:?}: {reason}")]
    BadTarget { url: String, reason: String },
    #[error("the bearer token cannot be sent as an HTTP header")]
    BadToken,
    #[error("invalid configuration: {0}")]
    BadConfig(String),
}

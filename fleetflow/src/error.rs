//! Why the fleetflow process could not start or keep running.

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("kafka: {0}")]
    Kafka(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("pipeline: {0}")]
    Pipeline(String),
    #[error("emulator: {0}")]
    Emulator(String),
    #[error("internal: {0}")]
    Internal(String),
}

impl AppError {
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> AppError {
        let context = context.into();
        move |source| AppError::Io { context, source }
    }
}

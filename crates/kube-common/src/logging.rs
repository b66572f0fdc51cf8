//! Logging flags as upstream's klog takes them, and the one tracing subscriber set-up.

use clap::Args;

/// `--v`, `--logtostderr` (accepted for compatibility; we always log to stderr).
#[derive(Debug, Clone, Args)]
pub struct LoggingArgs {
    /// Number for the log level verbosity (0 = info, 2+ = debug, 4+ = trace).
    #[arg(long = "v", short = 'v', default_value_t = 0)]
    pub verbosity: u8,
    /// Log to standard error instead of files (always true; kept for compatibility).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = crate::flags::parse_go_bool)]
    pub logtostderr: Option<bool>,
    /// Also log to standard error as well as files (compatibility; ignored).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = crate::flags::parse_go_bool)]
    pub alsologtostderr: Option<bool>,
}

impl LoggingArgs {
    /// Installs the global subscriber: `RUST_LOG` wins, else the level from `--v`.
    pub fn init(&self) {
        let level = match self.verbosity {
            0 | 1 => "info",
            2 | 3 => "debug",
            _ => "trace",
        };
        let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(format!("{level},h2=info,tower=info,hyper=info"))
        });
        use std::io::IsTerminal;
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .try_init();
    }
}

//! Structured logs: text for people, JSON for collectors (`LOG_FORMAT=json`), filtered by
//! `RUST_LOG`. Nothing secret is ever a field: tokens, seeds and passwords stay out.

use tracing_subscriber::{fmt, EnvFilter};

use crate::config::LogFormat;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,socketioxide=warn,engineioxide=warn"));
    let builder =
        fmt().with_env_filter(filter).with_target(true).with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).try_init(),
    };
    // A second init (tests spawning several apps) keeps the first subscriber.
    let _ = result;
}

//! Structured logs: text for people, JSON for collectors (`LOG_FORMAT=json`), filtered by
//! `RUST_LOG`. Every JSON line names its replica, so lines from many replicas can be merged, and
//! carries the fields of the spans it was emitted in (a request's `request_id`, `method`, `route`
//! and `user`), so the lines of one request can be found together.
//! Nothing secret is ever a field: tokens, seeds and passwords stay out.

use serde_json::{Map, Value};
use std::fmt;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{fmt as subscriber, EnvFilter};

use crate::config::LogFormat;

const DEFAULT_FILTER: &str = "info,sqlx=warn,socketioxide=warn,engineioxide=warn";

pub fn init(format: LogFormat, replica: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = subscriber().with_env_filter(filter);
    let result = match format {
        LogFormat::Text => {
            builder.with_target(true).with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout())).try_init()
        }
        // Span fields are kept as JSON objects, which `JsonLine` merges into each line.
        LogFormat::Json => {
            builder.fmt_fields(JsonFields::new()).event_format(JsonLine { replica: replica.to_string() }).try_init()
        }
    };
    // A second init (tests starting several apps in one process) keeps the first subscriber.
    let _ = result;
}

/// One JSON object per line: `timestamp`, `level`, `target`, `replica`, `message`, the fields of
/// the spans the event is in, and the event's own fields. A name used twice keeps the innermost
/// value (the event's own field wins over a span's); the first four are never displaced. A span
/// field not recorded yet (`user` of an anonymous request) is absent.
struct JsonLine {
    replica: String,
}

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        let mut line = Map::new();
        for span in ctx.event_scope().into_iter().flat_map(|scope| scope.from_root()) {
            let extensions = span.extensions();
            let Some(fields) = extensions.get::<FormattedFields<N>>() else { continue };
            if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(fields) {
                line.extend(fields);
            }
        }
        event.record(&mut Fields(&mut line));
        // Last, so no field can displace them.
        line.insert(
            "timestamp".into(),
            Value::String(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        );
        line.insert("level".into(), Value::String(meta.level().to_string()));
        line.insert("target".into(), Value::String(meta.target().to_string()));
        line.insert("replica".into(), Value::String(self.replica.clone()));
        writeln!(writer, "{}", Value::Object(line))
    }
}

struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), Value::String(value.into()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().into(), Value::String(format!("{value:?}")));
    }
}

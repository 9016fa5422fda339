//! Renders the harness's progress (its `tracing` events) as the CLI's indented lines on stdout.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// One event, one line: `  message`, or `  warning: message`.
struct Lines;

impl<S, N> FormatEvent<S, N> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        // The warm pool's keeper makes clusters in the background: its steps are not the command's.
        let in_keeper = ctx
            .event_scope()
            .is_some_and(|mut scope| scope.any(|span| span.name() == "keeper"));
        if in_keeper && *event.metadata().level() > Level::WARN {
            return Ok(());
        }
        write!(writer, "  ")?;
        if *event.metadata().level() <= Level::WARN {
            write!(writer, "warning: ")?;
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Shows the harness's events from `level` up. Writes to a closed stdout are dropped, never fatal.
pub fn show(level: Level) {
    tracing_subscriber::fmt()
        .with_max_level(level)
        .event_format(Lines)
        .with_writer(std::io::stdout)
        .init();
}

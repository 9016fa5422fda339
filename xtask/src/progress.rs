//! Renders the harness's progress (its `tracing` events) as the CLI's indented lines on stdout and, when stderr is
//! a terminal, its progress events ([`cluster_tests::progress`]) as a progress bar on stderr; elsewhere (CI,
//! pipes) the output is the lines alone.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// The CLI's rendering: lines from `level` up, and a bar for the task under way.
struct Cli {
    level: Level,
    /// Progress events are drawn only on a terminal.
    bars: bool,
    /// The task a bar is drawn for, and its bar.
    bar: Mutex<Option<(String, ProgressBar)>>,
}

/// An event's message, its other fields as ` key=value`, and the progress fields.
#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
    task: Option<String>,
    done: u64,
    total: u64,
}

impl Visit for Fields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "done" => self.done = value,
            "total" => self.total = value,
            _ => self.record_debug(field, &value),
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "task" => self.task = Some(value.to_owned()),
            _ => self.record_debug(field, &value),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            name => _ = write!(self.rest, " {name}={value:?}"),
        }
    }
}

impl Cli {
    fn draw(&self, fields: Fields) {
        let Some(task) = fields.task else { return };
        let mut bar = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        if bar.as_ref().is_none_or(|(t, b)| *t != task || b.is_finished()) {
            if let Some((_, old)) = bar.take() {
                old.finish_and_clear();
            }
            let new = if fields.total == 0 {
                let spinner = ProgressBar::new_spinner();
                spinner.enable_steady_tick(Duration::from_millis(120));
                spinner.set_style(ProgressStyle::with_template("  {spinner} {msg} {elapsed}").expect("a template"));
                spinner
            } else {
                let bar = ProgressBar::new(fields.total);
                let style = "  [{bar:30}] {pos}/{len} {msg} ({elapsed}, about {eta} left)";
                bar.set_style(
                    ProgressStyle::with_template(style)
                        .expect("a template")
                        .progress_chars("=> "),
                );
                bar
            };
            new.set_message(task.clone());
            *bar = Some((task, new));
        }
        let (_, current) = bar.as_ref().expect("just set");
        if fields.total > 0 {
            current.set_length(fields.total);
            current.set_position(fields.done);
            if fields.done >= fields.total {
                current.finish_and_clear();
            }
        } else if fields.done > 0 {
            current.finish_and_clear();
        }
    }

    fn print(&self, level: Level, fields: Fields) {
        let warning = if level <= Level::WARN { "warning: " } else { "" };
        let line = format!("  {warning}{}{}\n", fields.message, fields.rest);
        // Writes to a closed stdout are dropped, never fatal.
        let write = || _ = std::io::stdout().lock().write_all(line.as_bytes());
        match &*self.bar.lock().unwrap_or_else(|e| e.into_inner()) {
            Some((_, bar)) if !bar.is_finished() => bar.suspend(write),
            _ => write(),
        }
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Cli {
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _: Context<'_, S>) -> bool {
        if metadata.target() == cluster_tests::progress::TARGET {
            self.bars
        } else {
            *metadata.level() <= self.level
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        // The warm pool's keeper makes clusters in the background: its steps are not the command's.
        let in_keeper = ctx
            .event_scope(event)
            .is_some_and(|mut scope| scope.any(|span| span.name() == "keeper"));
        if in_keeper && *event.metadata().level() > Level::WARN {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        if event.metadata().target() == cluster_tests::progress::TARGET {
            self.draw(fields);
        } else {
            self.print(*event.metadata().level(), fields);
        }
    }
}

/// Shows the harness's events from `level` up, and progress bars where stderr is a terminal (and `level` is
/// INFO or more detailed: a quiet command draws none).
pub fn show(level: Level) {
    let bars = std::io::stderr().is_terminal() && level >= Level::INFO;
    let cli = Cli {
        level,
        bars,
        bar: Mutex::new(None),
    };
    tracing_subscriber::registry().with(cli).init();
}

//! How far long work has got, for a front end to draw (the CLI's progress bars): `tracing` events at TRACE level
//! with target [`TARGET`] and the fields `task` (what is counted, e.g. `slots moved`), `done` and `total` (`0`:
//! not known). The step-by-step lines at INFO level say the same in words; a front end that draws bars shows
//! both, one that prints lines can leave these out.

/// The `tracing` target of progress events.
pub const TARGET: &str = "cluster_tests::progress";

/// Reports `done` of `total` for `task` (a `&str`).
macro_rules! progress {
    ($task:expr, $done:expr, $total:expr) => {
        tracing::trace!(target: "cluster_tests::progress", task = $task, done = $done as u64, total = $total as u64)
    };
}
pub(crate) use progress;

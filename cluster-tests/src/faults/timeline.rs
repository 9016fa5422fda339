//! What happened when, over a check's run: writes answered per 100 ms by outcome, the latency of acknowledged
//! writes, and when the lost ones were acknowledged; the series `check --plot` draws beside the rounds' windows.

use std::time::Duration;

use serde::Serialize;

use crate::faults::checker::{Outcome, Write};

/// The width of a [`Bucket`].
pub const BUCKET: Duration = Duration::from_millis(100);

/// A check's run over time.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timeline {
    /// One per 100 ms from the start of the run: the writes whose answer came in it, by outcome.
    pub buckets: Vec<Bucket>,
    /// Each acknowledged write: (seconds from the start when its answer came, seconds it took). Not in JSON.
    #[serde(skip)]
    pub latencies: Vec<(f64, f64)>,
    /// When each lost write was acknowledged, in seconds from the start.
    pub lost: Vec<f64>,
}

/// Writes answered in one 100 ms stretch.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Bucket {
    /// Acknowledged.
    pub ok: usize,
    /// Refused with an error reply.
    pub fail: usize,
    /// Timed out, connection lost, or not confirmed.
    pub unknown: usize,
}

impl Timeline {
    /// The timeline of `writes` over `seconds`; `lost[i]` says whether `writes[i]` was acknowledged and lost.
    pub(crate) fn of(writes: &[Write], lost: &[bool], seconds: f64) -> Self {
        let width = BUCKET.as_secs_f64();
        let last = (seconds / width).ceil() as usize;
        let mut buckets = vec![Bucket::default(); last + 1];
        let mut timeline = Self::default();
        for (w, lost) in writes.iter().zip(lost) {
            let done = w.done.as_secs_f64();
            let bucket = &mut buckets[((done / width) as usize).min(last)];
            match w.outcome {
                Outcome::Acknowledged => {
                    bucket.ok += 1;
                    timeline
                        .latencies
                        .push((done, w.done.saturating_sub(w.sent).as_secs_f64()));
                }
                Outcome::Failed => bucket.fail += 1,
                Outcome::Unknown => bucket.unknown += 1,
            }
            if *lost {
                timeline.lost.push(done);
            }
        }
        timeline.latencies.sort_by(|a, b| a.0.total_cmp(&b.0));
        timeline.lost.sort_by(f64::total_cmp);
        timeline.buckets = buckets;
        timeline
    }
}

//! The one place that waits: poll a condition until it holds, it never will, or a deadline passes.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// The shortest pause between two checks.
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// Why a probe of [`until`] returned no value: not yet (keep waiting), or never (give up now).
#[derive(Debug)]
pub(crate) enum Unmet {
    /// The condition does not hold yet; this is what the probe saw (it goes into the timeout error).
    KeepWaiting(String),
    /// The condition never will (a server that exited, a removal Docker refuses): stop with this error.
    GiveUp(Error),
}

/// What a probe of [`until`] returns: the value once the condition holds, or why not.
pub(crate) type Probe<T> = std::result::Result<T, Unmet>;

/// An error on the way to the condition (a node not answering yet, a reply that does not show it) is what was seen:
/// keep waiting. A probe that must stop says so with [`Unmet::GiveUp`].
impl<E: Into<Error>> From<E> for Unmet {
    fn from(e: E) -> Self {
        Self::KeepWaiting(e.into().to_string())
    }
}

/// Returns `Err(Unmet::KeepWaiting(..))` from a probe of [`until`], made from a format string: what it saw.
macro_rules! not_yet {
    ($($arg:tt)*) => { return Err($crate::wait::Unmet::KeepWaiting(format!($($arg)*))) };
}
pub(crate) use not_yet;

/// Polls `probe` until it returns `Ok(value)` and returns that value, fails with the error of an
/// [`Unmet::GiveUp`], or fails with a timeout after `timeout`.
///
/// `probe` returns [`Unmet::KeepWaiting`] while the condition does not hold yet; the last status goes into the
/// timeout error, so it says what was awaited and what was seen. A probe that hangs is cut off at the deadline too.
///
/// Between checks it pauses at least as long as the last check took (and at least 25 ms), so the waiting never
/// takes more than half of the time: a check of a large cluster, which asks every node, cannot starve the servers
/// it waits on.
pub(crate) async fn until<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Probe<T>>,
{
    let start = Instant::now();
    let deadline = start + timeout;
    // What the check before the last saw, for a last check cut off at the deadline.
    let mut before: Option<String> = None;
    loop {
        let checked = Instant::now();
        let left = deadline.saturating_duration_since(checked);
        let last = match tokio::time::timeout(left, probe()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(Unmet::GiveUp(e))) => return Err(e),
            Ok(Err(Unmet::KeepWaiting(status))) => status,
            // A sleep woken late left no time for a last check: what the one before saw is the last seen.
            Err(_) if left < POLL_INTERVAL => before.clone().unwrap_or_else(|| "no check had time to run".to_owned()),
            Err(_) => match &before {
                Some(seen) => format!(
                    "the last check did not answer in time (it ran {:.1} s); the one before saw: {seen}",
                    checked.elapsed().as_secs_f64()
                ),
                None => "the last check did not answer in time".to_owned(),
            },
        };
        let pause = checked.elapsed().max(POLL_INTERVAL);
        if Instant::now() + pause >= deadline {
            return Err(Error::timeout(format!(
                "timed out after {:.1} s waiting for {what}; last seen: {last}",
                start.elapsed().as_secs_f64()
            )));
        }
        before = Some(last);
        tokio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn returns_once_the_condition_holds() {
        let calls = AtomicU32::new(0);
        let n = until("three calls", Duration::from_secs(5), || async {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            if n < 3 {
                not_yet!("{n} calls");
            }
            Ok(n)
        })
        .await
        .unwrap();
        assert_eq!(n, 3);
    }

    #[tokio::test]
    async fn timeout_names_what_was_awaited_and_the_last_status() {
        let err = until("the moon", Duration::from_millis(100), || async {
            Err::<(), _>(Error::refused("no moon").into())
        })
        .await
        .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Timeout);
        let err = err.to_string();
        assert!(err.contains("waiting for the moon"), "{err}");
        assert!(err.contains("last seen: no moon"), "{err}");
    }

    #[tokio::test]
    async fn giving_up_stops_at_once_with_that_error() {
        let start = Instant::now();
        let calls = AtomicU32::new(0);
        let err = until("a stopped server", Duration::from_secs(5), || async {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                not_yet!("starting");
            }
            Err::<(), _>(Unmet::GiveUp(Error::other("it exited")))
        })
        .await
        .unwrap_err();
        assert_eq!(
            (err.kind(), err.to_string().as_str()),
            (crate::ErrorKind::Other, "it exited")
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert!(start.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_last_check_cut_off_still_reports_what_the_one_before_saw() {
        let mut calls = 0;
        let err = until("the tide", Duration::from_millis(300), || {
            calls += 1;
            let first = calls == 1;
            async move {
                if first {
                    not_yet!("low tide");
                }
                std::future::pending::<Probe<()>>().await
            }
        })
        .await
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("did not answer in time") && err.contains("the one before saw: low tide"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_hanging_probe_is_cut_off_at_the_deadline() {
        let start = Instant::now();
        let err = until("a hang", Duration::from_millis(200), || {
            std::future::pending::<Probe<()>>()
        })
        .await;
        assert!(err.unwrap_err().to_string().contains("did not answer in time"));
        assert!(start.elapsed() < Duration::from_secs(2));
    }
}

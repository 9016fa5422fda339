//! The one place that waits: poll a condition until it holds or a deadline passes.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::{Error, ErrorKind, Result};

/// The shortest pause between two checks.
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// Polls `probe` until it returns `Ok(value)` and returns that value, or fails after `timeout`.
///
/// `probe` returns `Err(status)` while the condition does not hold yet; the last status goes into the timeout
/// error, so it says what was awaited and what was seen. A probe that hangs is cut off at the deadline too.
///
/// Between checks it pauses at least as long as the last check took (and at least 25 ms), so the waiting never
/// takes more than half of the time: a check of a large cluster, which asks every node, cannot starve the servers
/// it waits on.
pub async fn until<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
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
            Ok(Err(status)) => status,
            Err(_) => Error::timeout(match &before {
                Some(seen) => format!(
                    "the last check did not answer in time (it ran {:.1} s); the one before saw: {seen}",
                    checked.elapsed().as_secs_f64()
                ),
                None => "the last check did not answer in time".to_owned(),
            }),
        };
        before = Some(last.to_string());
        let pause = checked.elapsed().max(POLL_INTERVAL);
        if Instant::now() + pause >= deadline {
            return Err(Error::with_kind(
                ErrorKind::Timeout,
                format!(
                    "timed out after {:.1} s waiting for {what}; last seen: {last}",
                    start.elapsed().as_secs_f64()
                ),
            ));
        }
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
            if n >= 3 {
                Ok(n)
            } else {
                Err(Error::refused(format!("{n} calls")))
            }
        })
        .await
        .unwrap();
        assert_eq!(n, 3);
    }

    #[tokio::test]
    async fn timeout_names_what_was_awaited_and_the_last_status() {
        let err = until("the moon", Duration::from_millis(100), || async {
            Err::<(), _>(Error::refused("no moon"))
        })
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("waiting for the moon"), "{err}");
        assert!(err.contains("last seen: no moon"), "{err}");
    }

    #[tokio::test]
    async fn a_last_check_cut_off_still_reports_what_the_one_before_saw() {
        let mut calls = 0;
        let err = until("the tide", Duration::from_millis(300), || {
            calls += 1;
            let first = calls == 1;
            async move {
                if first {
                    Err::<(), _>(Error::refused("low tide"))
                } else {
                    std::future::pending().await
                }
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
            std::future::pending::<Result<()>>()
        })
        .await;
        assert!(err.unwrap_err().to_string().contains("did not answer in time"));
        assert!(start.elapsed() < Duration::from_secs(2));
    }
}

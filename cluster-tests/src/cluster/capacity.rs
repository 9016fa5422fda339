//! A machine-wide cap on how many test clusters exist at once, across processes: with
//! [`MAX_CLUSTERS_ENV`]` = N`, a test's cluster first takes one of N slots, and holds it for the life of its handle.
//!
//! nextest's test groups bound the clusters of one process; several test processes side by side (the versions of
//! the matrix runner's versions side by side, two developers' runs) need a bound the kernel keeps. A slot is an exclusive `flock` on a file
//! `slot-<i>` in [`slot_dir`] (for `i` below N): the kernel releases it when the handle is dropped or its process
//! dies, however it dies, so there is no count that can drift. Who holds which slot is read from `/proc/locks`
//! when a wait times out.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::wait::Unmet;
use crate::{Error, ErrorKind, Result, bail, wait};

/// At most this many test clusters exist at once on this machine (among processes that set it); unset or empty:
/// no cap beyond nextest's own.
pub const MAX_CLUSTERS_ENV: &str = "CLUSTER_TESTS_MAX_CLUSTERS";

/// How long a test waits for a slot. A slot is held for a test's life, which nextest ends after 3 minutes at most
/// (`.config/nextest.toml`), so a wait this long means the holders are not tests that end.
pub(crate) const CLAIM_TIMEOUT: Duration = Duration::from_secs(300);

/// One of the machine's cluster slots, held until dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    /// The locked file; closing it (after [`Drop`]) releases the lock.
    _file: File,
}

/// The cap [`MAX_CLUSTERS_ENV`] sets, if any.
pub(crate) fn max_clusters() -> Result<Option<usize>> {
    match std::env::var(MAX_CLUSTERS_ENV).as_deref().map(str::trim) {
        Err(_) | Ok("") => Ok(None),
        Ok(value) => match value.parse::<usize>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => bail!(
                Refused,
                "{MAX_CLUSTERS_ENV}={value} is not a number of clusters (1 or more); unset it for no cap"
            ),
        },
    }
}

/// Where the slot files are: one directory for the whole machine (`$TMPDIR/cluster-tests-clusters`), since the
/// containers all share one Docker engine.
pub(crate) fn slot_dir() -> PathBuf {
    std::env::temp_dir().join("cluster-tests-clusters")
}

/// Slots this process holds (nextest runs each test in a process of its own).
static HELD: AtomicUsize = AtomicUsize::new(0);

/// Takes a slot for a cluster about to be made, waiting for one to be released for at most [`CLAIM_TIMEOUT`];
/// `None` when [`MAX_CLUSTERS_ENV`] sets no cap. A process that already holds one (a test making a second
/// cluster) takes a free slot but never waits: tests that each held one and waited for another could wait on one
/// another for good, so such a cluster goes over the cap instead.
pub(crate) async fn claim() -> Result<Option<Slot>> {
    let Some(max) = max_clusters()? else {
        return Ok(None);
    };
    let dir = slot_dir();
    if HELD.load(Ordering::SeqCst) > 0 {
        let files = open_slots(&dir, max)?;
        return Ok(try_any(&files)?.map(|i| Slot::new(files, i)));
    }
    claim_in(&dir, max, CLAIM_TIMEOUT).await.map(Some)
}

async fn claim_in(dir: &Path, max: usize, timeout: Duration) -> Result<Slot> {
    let files = open_slots(dir, max)?;
    let mut said = false;
    let what = format!(
        "one of the {max} cluster slots in {} ({MAX_CLUSTERS_ENV}={max})",
        dir.display()
    );
    let index = wait::until(&what, timeout, || {
        let found = match try_any(&files) {
            Ok(Some(index)) => Ok(index),
            Ok(None) => Err(Unmet::KeepWaiting(format!("all held: {}", holders(&files)))),
            Err(e) => Err(Unmet::GiveUp(e)),
        };
        if found.is_err() && !said {
            tracing::info!("waiting for {what}: all are held by other test clusters");
            said = true;
        }
        async move { found }
    })
    .await
    .map_err(|e| match e.kind() {
        ErrorKind::Timeout => e.context(format!(
            "no test cluster could be made: more were asked for at once than {MAX_CLUSTERS_ENV}={max} allows, for \
             longer than a test lives; are the holders stuck?"
        )),
        _ => e,
    })?;
    Ok(Slot::new(files, index))
}

impl Slot {
    /// The slot of `files[index]`, which this process has just locked.
    fn new(files: Vec<File>, index: usize) -> Self {
        HELD.fetch_add(1, Ordering::SeqCst);
        let file = files.into_iter().nth(index).expect("the index is of one of the files");
        Self { _file: file }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        HELD.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The index of the first slot this call could lock, or `None` when all are held.
fn try_any(files: &[File]) -> Result<Option<usize>> {
    for (i, file) in files.iter().enumerate() {
        match file.try_lock() {
            Ok(()) => return Ok(Some(i)),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => bail!(Other, "locking cluster slot {i}: {e}"),
        }
    }
    Ok(None)
}

/// Opens `slot-0` .. `slot-<max - 1>` in `dir`, making what is missing. The directory is writable by every user
/// (sticky, like `/tmp`) and a file is opened read-only where it exists (a lock needs no write access), so slots
/// made by another user count too.
fn open_slots(dir: &Path, max: usize) -> Result<Vec<File>> {
    let failed = |what: &str, path: &Path, e: std::io::Error| {
        Error::other(format!("{what} {}: {e} (for {MAX_CLUSTERS_ENV})", path.display()))
    };
    if !dir.is_dir() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o1777)
            .create(dir)
            .map_err(|e| failed("making the cluster slot directory", dir, e))?;
        // The umask narrows the mode given above.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o1777)).ok();
    }
    (0..max)
        .map(|i| {
            let path = dir.join(format!("slot-{i}"));
            File::open(&path)
                .or_else(|_| {
                    OpenOptions::new()
                        .create(true)
                        .truncate(false)
                        .write(true)
                        .mode(0o644)
                        .open(&path)
                })
                .map_err(|e| failed("opening cluster slot", &path, e))
        })
        .collect()
}

/// Who holds each slot, as the kernel says in `/proc/locks`: `slot-0: pid 123 (cargo-nextest ...)`.
fn holders(files: &[File]) -> String {
    let locks = std::fs::read_to_string("/proc/locks").unwrap_or_default();
    files
        .iter()
        .enumerate()
        .map(|(i, file)| {
            let pid = file.metadata().ok().and_then(|m| lock_holder(&locks, m.dev(), m.ino()));
            match pid {
                Some(pid) => format!("slot-{i}: pid {pid} ({})", command_of(pid)),
                None => format!("slot-{i}: held"),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The pid holding a `flock` on the file of device `dev`, inode `ino`, from `/proc/locks` lines such as
/// `1: FLOCK  ADVISORY  WRITE 4242 00:2b:1234 0 EOF` (major and minor in hex; `1: -> FLOCK ...` lines are
/// processes waiting, not holding).
fn lock_holder(locks: &str, dev: u64, ino: u64) -> Option<u32> {
    // glibc's `major` and `minor` of a `st_dev`.
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    let file_id = format!("{major:02x}:{minor:02x}:{ino}");
    locks.lines().find_map(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.get(1) == Some(&"->") {
            return None;
        }
        let at = words.iter().position(|w| *w == "FLOCK")?;
        let (pid, file) = (words.get(at + 3)?, words.get(at + 4)?);
        (*file == file_id).then(|| pid.parse().ok()).flatten()
    })
}

/// A process's command line, shortened, for a message.
fn command_of(pid: u32) -> String {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let words: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    let line = words.join(" ");
    match line.char_indices().nth(80) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None if line.is_empty() => "gone".to_owned(),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cluster-tests-capacity-{name}-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        dir
    }

    #[tokio::test]
    async fn slots_are_exclusive_until_dropped_and_a_full_wait_says_who_holds_them() {
        let dir = fresh_dir("exclusive");
        let first = claim_in(&dir, 2, Duration::from_secs(1)).await.unwrap();
        let second = claim_in(&dir, 2, Duration::from_secs(1)).await.unwrap();
        let err = claim_in(&dir, 2, Duration::from_millis(200)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        let text = err.to_string();
        let me = format!("pid {}", std::process::id());
        assert!(
            text.contains("one of the 2 cluster slots") && text.contains(MAX_CLUSTERS_ENV),
            "{text}"
        );
        assert!(
            text.contains(&format!("slot-0: {me}")) && text.contains(&format!("slot-1: {me}")),
            "{text}"
        );
        drop(first);
        let again = claim_in(&dir, 2, Duration::from_secs(1)).await.unwrap();
        drop((second, again));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[tokio::test]
    async fn a_waiter_gets_the_slot_once_it_is_released() {
        let dir = fresh_dir("waiter");
        let held = claim_in(&dir, 1, Duration::from_secs(1)).await.unwrap();
        let release = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            drop(held);
        };
        let (claimed, ()) = tokio::join!(claim_in(&dir, 1, Duration::from_secs(5)), release);
        claimed.unwrap();
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn proc_locks_lines_name_the_holder() {
        let locks = "1: POSIX  ADVISORY  WRITE 11 00:20:99 0 EOF\n2: FLOCK  ADVISORY  WRITE 4242 00:2b:1234 0 EOF\n";
        let dev = 0x2b; // major 0, minor 0x2b
        assert_eq!(lock_holder(locks, dev, 1234), Some(4242));
        assert_eq!(lock_holder(locks, dev + 1, 1234), None, "another device");
        assert_eq!(lock_holder(locks, 0x20, 99), None, "POSIX locks are not ours");
        let waiter = "2: -> FLOCK  ADVISORY  WRITE 7 00:2b:1234 0 EOF";
        assert_eq!(lock_holder(waiter, dev, 1234), None, "a waiter");
        let big = "3: FLOCK  ADVISORY  WRITE 9 fe:00:77 0 EOF";
        assert_eq!(lock_holder(big, 0xfe00, 77), Some(9), "major 0xfe");
    }
}

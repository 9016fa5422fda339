//! Which process owns a test's cluster, and whether that process is gone (so its cluster is an orphan).
//!
//! The owner is written as `<boot id>/<pid namespace>/<pid>/<start time>`. The boot id and the namespace keep a run
//! from judging clusters of processes it cannot see (another machine sharing the Docker engine, where even the
//! host's pid namespace has the same number; another container on this one), and the start time keeps a reused pid
//! from passing for the process that made the cluster.

use std::fs;

/// The owner value of this process.
pub(crate) fn this_process() -> String {
    format!(
        "{}/{}/{}/{}",
        boot_id().unwrap_or_default(),
        pid_namespace().unwrap_or_default(),
        std::process::id(),
        start_time("self").unwrap_or_default()
    )
}

/// Whether `owner` (a value of [`this_process`]) names a process of this machine's boot and this pid namespace
/// that no longer runs. Owners this process cannot judge (another machine or namespace, a part it could not
/// read, a value it does not understand) are never gone.
pub(crate) fn is_gone(owner: &str) -> bool {
    let parts: Vec<&str> = owner.split('/').collect();
    let [boot, ns, pid, start] = parts[..] else {
        return false;
    };
    let ours = |part: &str, mine: Option<String>| !part.is_empty() && mine.as_deref() == Some(part);
    if !ours(boot, boot_id()) || !ours(ns, pid_namespace()) || start.is_empty() || pid.parse::<u32>().is_err() {
        return false;
    }
    start_time(pid).as_deref() != Some(start)
}

/// This boot of this machine: random per boot, so no two machines share it.
fn boot_id() -> Option<String> {
    Some(
        fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .ok()?
            .trim()
            .to_owned(),
    )
}

/// This process's pid namespace, e.g. `pid:[4026531836]`.
fn pid_namespace() -> Option<String> {
    Some(fs::read_link("/proc/self/ns/pid").ok()?.to_string_lossy().into_owned())
}

/// When process `pid` (or `self`) started, in clock ticks since boot (field 22 of `/proc/<pid>/stat`); `None` if
/// it is gone.
fn start_time(pid: &str) -> Option<String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&stat)
}

/// Field 22 of a `/proc/<pid>/stat` line; the command name (field 2) may hold spaces and parentheses.
fn parse_start_time(stat: &str) -> Option<String> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.split_whitespace().nth(19).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_field_22_even_with_odd_command_names() {
        let stat = "4242 (tricky ) name) S 1 4242 4242 0 -1 4194560 97 0 0 0 0 0 0 0 20 0 1 0 123456 8192000 200";
        assert_eq!(parse_start_time(stat).as_deref(), Some("123456"));
        assert_eq!(parse_start_time("garbage"), None);
    }

    #[test]
    fn this_process_is_alive_and_a_finished_one_is_gone() {
        assert!(!is_gone(&this_process()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let owner = format!(
            "{}/{}/{}/{}",
            boot_id().unwrap(),
            pid_namespace().unwrap(),
            child.id(),
            start_time(&child.id().to_string()).unwrap_or_else(|| "1".into())
        );
        child.wait().unwrap();
        assert!(is_gone(&owner), "{owner}");
    }

    #[test]
    fn a_reused_pid_another_machine_or_namespace_is_judged_right() {
        let (me, boot, ns) = (std::process::id(), boot_id().unwrap(), pid_namespace().unwrap());
        assert!(
            is_gone(&format!("{boot}/{ns}/{me}/1")),
            "same pid, other start time: a reused pid"
        );
        assert!(
            !is_gone(&format!("{boot}/pid:[1]/{me}/1")),
            "another namespace is not ours to judge"
        );
        assert!(
            !is_gone(&format!("other-boot/{ns}/{me}/1")),
            "another machine is not ours to judge"
        );
        assert!(
            !is_gone(&format!("{boot}/{ns}/{me}/")),
            "an unread start time judges nothing"
        );
        assert!(!is_gone("12345"), "a value from elsewhere is left alone");
    }
}

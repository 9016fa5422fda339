//! Scaling out and in: add a master (with replicas of its own) and move slots onto it, drain a master and take it
//! out with its replicas, even out slots across masters. Slots move with their keys through [`Cluster::reshard`];
//! a stop ends each operation's move in flight as [`Cluster::reshard_until_stopped`] does.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::cluster::guards;
use crate::cluster::handle::Cluster;
use crate::cluster::removal::remove_interrupted_node;
use crate::images::node_image::NodeImage;
use crate::reshape::migration::{Reshard, ReshardReport, Settled, Slots, ranges, until_stopped};
use crate::server::topology::{ClusterNodes, SlotRange};
use crate::wait::not_yet;
use crate::{Error, Remedy, Result, bail, wait};

/// Slots one master hands to another, as a plan decides them (the source's lowest slots first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotMove {
    /// Port of the master the slots leave.
    pub from: u16,
    /// Port of the master they go to.
    pub to: u16,
    /// The slots.
    pub slots: Vec<SlotRange>,
}

/// Moves carried out one after the other (a rebalance, or the drain of a master).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MovesReport {
    /// Each move as its reshard reported it.
    pub moves: Vec<ReshardReport>,
    /// Time from the first move until every node agreed on the last (a rebalance: until the cluster was ready).
    pub took: Duration,
    /// Set when a stop ended the moves early: how many planned slots stay with their source. The last move's
    /// [`ReshardReport::stopped`] says how its batch in flight ended, if it was cut short; moves not begun are not
    /// listed.
    pub stopped: Option<usize>,
}

impl MovesReport {
    /// Slots moved in all.
    pub fn slots(&self) -> usize {
        self.moves.iter().flat_map(|m| &m.slots).map(SlotRange::len).sum()
    }

    /// Keys moved in all.
    pub fn keys(&self) -> usize {
        self.moves.iter().map(|m| m.keys).sum()
    }
}

/// What [`Cluster::add_master`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddMasterReport {
    /// Port of the new master.
    pub port: u16,
    /// Its node id.
    pub id: String,
    /// Ports of its replicas (none if a stop came before they started).
    pub replicas: Vec<u16>,
    /// The slots moved onto it.
    pub rebalance: MovesReport,
    /// Time from starting its container until it, its replicas and the cluster were ready.
    pub took: Duration,
}

/// An add-master decided but not carried out yet: the ports of the new master and its replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddMasterPlan {
    /// Port of the new master.
    pub port: u16,
    /// Ports of its replicas.
    pub replicas: Vec<u16>,
    /// Image they run: the one the cluster already runs.
    image: NodeImage,
}

/// What undoing an interrupted add-master did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UndoneAdd {
    /// Slots left half-way that were rolled back to their source.
    pub rolled_back: usize,
    /// Ports of the planned nodes removed (containers gone, forgotten by the others).
    pub removed: Vec<u16>,
    /// The new master, kept because slots had already moved onto it.
    pub kept: Option<u16>,
}

/// What [`Cluster::remove_master`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoveMasterReport {
    /// Port of the master removed.
    pub port: u16,
    /// Ports of its replicas, removed with it.
    pub replicas: Vec<u16>,
    /// The slots moved off it. If [`MovesReport::stopped`] is set, the drain was stopped and the master and its
    /// replicas stay.
    pub drain: MovesReport,
    /// Time from the first move until the others had forgotten it and the cluster was ready.
    pub took: Duration,
}

/// Which slots each live master serves, by port (sorted by port).
type Holdings = [(u16, Vec<SlotRange>)];

fn count(slots: &[SlotRange]) -> usize {
    slots.iter().map(SlotRange::len).sum()
}

/// Moves that even out slots: the masters above the even share give their surplus to those below. The share is
/// total / masters; the remainder goes one slot each to the masters holding most (ties: lowest port), so the
/// fewest slots move.
fn rebalance_plan(holdings: &Holdings) -> Vec<SlotMove> {
    let counts: Vec<usize> = holdings.iter().map(|(_, s)| count(s)).collect();
    let (total, n) = (counts.iter().sum::<usize>(), holdings.len().max(1));
    let mut targets = vec![total / n; holdings.len()];
    let mut order: Vec<usize> = (0..holdings.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(counts[i]), holdings[i].0));
    for &i in order.iter().take(total % n) {
        targets[i] += 1;
    }
    match_moves(holdings, &targets)
}

/// Moves that empty the master on `leaving` onto the others, each slot going to the one holding fewest at that
/// point (ties: lowest port), so they end as even as draining alone can make them.
fn drain_plan(holdings: &Holdings, leaving: u16) -> Vec<SlotMove> {
    let mut targets: Vec<usize> = holdings.iter().map(|(_, s)| count(s)).collect();
    let Some(out) = holdings.iter().position(|(p, _)| *p == leaving) else {
        return Vec::new();
    };
    for _ in 0..std::mem::take(&mut targets[out]) {
        let fewest = (0..holdings.len())
            .filter(|&i| i != out)
            .min_by_key(|&i| (targets[i], holdings[i].0));
        match fewest {
            Some(i) => targets[i] += 1,
            None => return Vec::new(),
        }
    }
    match_moves(holdings, &targets)
}

/// Moves that bring each master to its target count: givers (in port order) hand their lowest surplus slots to
/// takers (in port order), filling one taker before the next.
fn match_moves(holdings: &Holdings, targets: &[usize]) -> Vec<SlotMove> {
    let mut takers: VecDeque<(u16, usize)> = holdings
        .iter()
        .zip(targets)
        .filter(|((_, s), t)| count(s) < **t)
        .map(|((p, s), t)| (*p, t - count(s)))
        .collect();
    let mut moves = Vec::new();
    for ((from, slots), target) in holdings.iter().zip(targets) {
        let mut own: Vec<u16> = slots.iter().flat_map(|r| r.start..=r.end).collect();
        own.sort_unstable();
        let mut give = &own[..own.len().saturating_sub(*target)];
        while let (false, Some((to, need))) = (give.is_empty(), takers.front_mut()) {
            let n = (*need).min(give.len());
            moves.push(SlotMove {
                from: *from,
                to: *to,
                slots: ranges(&give[..n]),
            });
            give = &give[n..];
            *need -= n;
            if *need == 0 {
                takers.pop_front();
            }
        }
    }
    moves
}

/// The live masters' slots, by port.
fn holdings(topology: &ClusterNodes) -> Vec<(u16, Vec<SlotRange>)> {
    topology
        .live_masters()
        .into_iter()
        .filter_map(|m| Some((m.port()?, m.slots.clone())))
        .collect()
}

/// The fewest masters a cluster keeps: as `create` makes them, so that a failover can still be elected.
const MIN_MASTERS: usize = 3;

/// Refuses to remove the master on `port`: unknown, a replica, failed, or one of the last three.
fn check_removal(topology: &ClusterNodes, port: u16) -> Result<()> {
    guards::live_master(topology, Some(port))?;
    let masters = topology.live_masters().len();
    if masters <= MIN_MASTERS {
        return Err(Error::refused(format!(
            "port {port} is one of the last {masters} masters: a cluster needs at least {MIN_MASTERS} to elect a \
             failover; add a master first (`Cluster::add_master`)"
        ))
        .with_remedy(Remedy::AddMaster));
    }
    Ok(())
}

impl Cluster {
    /// Evens out slots across the live masters, with their keys (like `redis-cli --cluster rebalance`): those
    /// above the even share give to those below, until each holds the share or one more. Refused while a slot is
    /// held or the cluster is not ready.
    pub async fn rebalance(&self) -> Result<MovesReport> {
        self.rebalance_until_stopped(std::future::pending()).await
    }

    /// [`Cluster::rebalance`] that, once `stop` completes (a signal, say), ends the move in flight as
    /// [`Cluster::reshard_until_stopped`] does and begins no other ([`MovesReport::stopped`]).
    pub async fn rebalance_until_stopped(&self, stop: impl Future<Output = ()>) -> Result<MovesReport> {
        let stopped = AtomicBool::new(false);
        until_stopped(stop, &stopped, self.rebalance_with(&stopped)).await
    }

    async fn rebalance_with(&self, stop: &AtomicBool) -> Result<MovesReport> {
        guards::no_slot_held(self, "rebalancing").await?;
        guards::healthy(self, "no slot is moved").await?;
        let moves = rebalance_plan(&holdings(&self.topology().await?));
        self.carry_out(&moves, Settled::Ready, stop).await
    }

    /// Adds an empty master on `port` (default: the lowest free published port), moves slots onto it until the
    /// masters are even ([`Cluster::rebalance`]), then gives it `replicas` replicas of its own on the lowest free
    /// ports; returns once all are synced and the cluster ready. Refused before anything starts: a slot held, a
    /// cluster not ready, fewer free published ports than new nodes (a pod cannot publish more once it runs).
    pub async fn add_master(&self, port: Option<u16>, replicas: usize) -> Result<AddMasterReport> {
        let plan = self.plan_add_master(port, replicas).await?;
        self.carry_out_add_master(&plan, std::future::pending()).await
    }

    /// Decides the ports and image of a new master and its replicas (see [`Cluster::add_master`]), refusing what
    /// cannot work; starts nothing.
    pub(crate) async fn plan_add_master(&self, port: Option<u16>, replicas: usize) -> Result<AddMasterPlan> {
        guards::no_slot_held(self, "adding a master").await?;
        if replicas > 10 {
            bail!(
                Refused,
                "{replicas} replicas for one master is more than the 10 a cluster is made with at most"
            );
        }
        let nodes = self.nodes().await?;
        let ports = self.new_ports(&nodes, port, 1 + replicas)?;
        let image = self.new_node_image(&nodes)?;
        guards::no_node_paused(self, "adding a master").await?;
        guards::healthy(self, "no master is added to it").await?;
        Ok(AddMasterPlan {
            port: ports[0],
            replicas: ports[1..].to_vec(),
            image,
        })
    }

    /// Carries out an add-master `plan`: the master, slots onto it, then its replicas. Once `stop` completes, a
    /// node being started is dropped (an error; `undo_add_master` removes what it left), a rebalance
    /// ends as [`Cluster::rebalance_until_stopped`] does and no replica starts (the report says what moved).
    pub(crate) async fn carry_out_add_master(
        &self,
        plan: &AddMasterPlan,
        stop: impl Future<Output = ()>,
    ) -> Result<AddMasterReport> {
        let (port, replica_ports, image) = (plan.port, &plan.replicas, &plan.image);
        let start = Instant::now();
        let mut stop = std::pin::pin!(stop);
        let stopped = AtomicBool::new(false);
        let dropped = |port| Error::other(format!("stopped while starting the node on {port}"));
        tracing::info!(
            "add-master: a master on {port}, then slots onto it, then {} replica(s)",
            replica_ports.len()
        );
        let id = tokio::select! {
            id = self.start_member(port, image, None) => id?,
            () = &mut stop => return Err(dropped(port)),
        };
        // Replicas come after the slots: a replica of a master without slots is listed nowhere clients look.
        let rebalance = until_stopped(stop.as_mut(), &stopped, self.rebalance_with(&stopped))
            .await
            .map_err(|e| {
                e.context(format!(
                    "master {port} was added but the slots did not all move onto it; `Cluster::rebalance` tries \
                     again, `Cluster::remove_master({port})` takes it out again"
                ))
                .with_remedy(Remedy::RebalanceOrRemove(port))
            })?;
        // `stop` has completed if this is set, and must not be polled again.
        let replicas = if stopped.load(Ordering::Relaxed) {
            Vec::new()
        } else {
            replica_ports.clone()
        };
        for &replica in &replicas {
            let started = tokio::select! {
                started = self.start_member(replica, image, Some((&id, port))) => started,
                () = &mut stop => return Err(dropped(replica)),
            };
            started.map_err(|e| {
                e.context(format!(
                    "master {port} was added with its slots, but a replica on {replica} was not; \
                     `Cluster::join(Some({port}), None)` adds one"
                ))
                .with_remedy(Remedy::JoinReplicaOf(port))
            })?;
        }
        Ok(AddMasterReport {
            port,
            id,
            replicas,
            rebalance,
            took: start.elapsed(),
        })
    }

    /// Undoes an add-master cut short (a signal): every slot marked half-way is rolled back, then each planned node
    /// that serves no slot goes (its container, also one still being created, and the others forget it). A new
    /// master that already serves slots stays, and the report says so (`remove_master` drains it).
    pub(crate) async fn undo_add_master(&self, plan: &AddMasterPlan) -> Result<UndoneAdd> {
        let rolled_back = self.abort_held().await.map(|held| held.len()).or_else(|e| {
            if e.remedy() == Some(Remedy::HoldSlot) {
                Ok(0)
            } else {
                Err(e)
            }
        })?;
        let views = self.views().await?;
        let entries = || views.iter().flat_map(|v| v.nodes.nodes.iter());
        let serving = |port: u16| entries().any(|n| n.port() == Some(port) && !n.slots.is_empty());
        let mut undone = UndoneAdd {
            rolled_back,
            ..UndoneAdd::default()
        };
        let mut ids = Vec::new();
        for port in std::iter::once(plan.port).chain(plan.replicas.iter().copied()) {
            if serving(port) {
                undone.kept = Some(port);
                continue;
            }
            // The ids it had: its own view's, and what the others recorded for its port.
            ids.extend(entries().filter(|n| n.port() == Some(port)).map(|n| n.id.clone()));
            remove_interrupted_node(self.docker(), self.name(), port).await?;
            if let Ok(addr) = self.addr(port).await {
                self.pool().forget(addr);
            }
            undone.removed.push(port);
        }
        ids.sort();
        ids.dedup();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        self.forget(&ids).await?;
        Ok(undone)
    }

    /// Drains the master on `port` (its slots and keys go evenly to the other masters), then removes it and its
    /// replicas: their containers go and every remaining node forgets them at once (a forgotten id is refused for
    /// 60 s, so gossip cannot bring it back). Returns once the cluster is ready without them. Refused before
    /// anything moves: an unknown port, a replica, one of the last three masters, a slot held, a cluster not ready.
    pub async fn remove_master(&self, port: u16) -> Result<RemoveMasterReport> {
        self.remove_master_until_stopped(port, std::future::pending()).await
    }

    /// [`Cluster::remove_master`] that, once `stop` completes during the drain, ends the move in flight as
    /// [`Cluster::reshard_until_stopped`] does, begins no other, and keeps the master and its replicas
    /// ([`MovesReport::stopped`] in the report's `drain`); a stop after the drain lets the removal finish.
    pub async fn remove_master_until_stopped(
        &self,
        port: u16,
        stop: impl Future<Output = ()>,
    ) -> Result<RemoveMasterReport> {
        let stopped = AtomicBool::new(false);
        until_stopped(stop, &stopped, self.remove_master_with(port, &stopped)).await
    }

    async fn remove_master_with(&self, port: u16, stop: &AtomicBool) -> Result<RemoveMasterReport> {
        guards::no_slot_held(self, "removing a master").await?;
        check_removal(&self.topology().await?, port)?;
        guards::no_node_paused(self, "removing a master").await?;
        guards::healthy(self, "no master is removed from it").await?;
        let topology = self.topology().await?;
        check_removal(&topology, port)?;
        let master = topology.by_port(port).expect("check_removal found it").clone();
        // Every replica it has, failed ones too: they all go.
        let replicas: Vec<(Option<u16>, String)> = topology
            .nodes
            .iter()
            .filter(|n| n.master_id.as_deref() == Some(master.id.as_str()))
            .map(|n| (n.port(), n.id.clone()))
            .collect();
        let start = Instant::now();
        let drain = self
            .carry_out(&drain_plan(&holdings(&topology), port), Settled::Drained, stop)
            .await
            .map_err(|e| {
                e.context(format!(
                "master {port} was not drained; `remove-master {port}` tries again, `rebalance` evens out what moved"
            ))
            })?;
        if drain.stopped.is_some() {
            return Ok(RemoveMasterReport {
                port,
                replicas: Vec::new(),
                drain,
                took: start.elapsed(),
            });
        }
        let leaving: Vec<(Option<u16>, String)> = std::iter::once((Some(port), master.id.clone()))
            .chain(replicas.iter().cloned())
            .collect();
        let containers = self.nodes().await?;
        // Every container goes, and every node forgets them, even if one removal fails; its error comes after.
        let mut failed = None;
        for node in containers
            .iter()
            .filter(|c| leaving.iter().any(|(p, _)| *p == Some(c.port)))
        {
            if let Err(e) = self.docker().remove_container(&node.id).await {
                failed = Some(e.context(format!(
                    "removing {}; `docker rm -f {}` removes it",
                    node.container, node.id
                )));
            }
            if let Some(addr) = node.addr {
                self.pool().forget(addr);
            }
        }
        let ids: Vec<&str> = leaving.iter().map(|(_, id)| id.as_str()).collect();
        self.forget(&ids).await?;
        if let Some(e) = failed {
            return Err(e);
        }
        tracing::info!(
            "remove-master: {port} and {} replica(s) removed and forgotten",
            replicas.len()
        );
        let timeout = self.identity().step_timeout(containers.len());
        let roster = self.roster();
        wait::until(
            &format!("every node to forget {port} and its replicas"),
            timeout,
            || async {
                for view in roster.views().await? {
                    if let Some(id) = ids.iter().find(|id| view.nodes.get(id).is_some()) {
                        not_yet!("{} still knows {id}", view.addr);
                    }
                }
                roster.confirm().await
            },
        )
        .await?;
        self.wait_ready(crate::Shape::Any, timeout).await?;
        Ok(RemoveMasterReport {
            port,
            replicas: replicas.iter().filter_map(|(p, _)| *p).collect(),
            drain,
            took: start.elapsed(),
        })
    }

    /// Carries out `moves` one after the other, each as a reshard of the source's lowest slots that returns once
    /// `settled`, until `stop` is set: the move in flight ends at its next step, and no other begins.
    async fn carry_out(&self, moves: &[SlotMove], settled: Settled, stop: &AtomicBool) -> Result<MovesReport> {
        let start = Instant::now();
        let mut done = Vec::new();
        for (i, m) in moves.iter().enumerate() {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let n = count(&m.slots);
            let report = self
                .reshard_with(&Reshard::new(m.from, m.to, Slots::Count(n)), settled, stop)
                .await
                .map_err(|e| {
                    e.context(format!(
                        "move {} of {}: {n} slots from {} to {}",
                        i + 1,
                        moves.len(),
                        m.from,
                        m.to
                    ))
                })?;
            let cut = report.stopped.is_some();
            if !cut && report.slots != m.slots {
                return Err(Error::other(format!(
                    "move {} of {}: the reshard moved other slots than planned",
                    i + 1,
                    moves.len()
                )));
            }
            done.push(report);
            if cut {
                break;
            }
        }
        let mut report = MovesReport {
            moves: done,
            took: start.elapsed(),
            stopped: None,
        };
        if report.moves.len() < moves.len() || report.moves.last().is_some_and(|m| m.stopped.is_some()) {
            let planned: usize = moves.iter().map(|m| count(&m.slots)).sum();
            report.stopped = Some(planned - report.slots());
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::topology::SLOTS;

    fn r(start: u16, end: u16) -> SlotRange {
        SlotRange { start, end }
    }

    /// Applies `moves` to `holdings` and returns each master's slot count, checking each move takes the source's
    /// lowest slots, as a reshard of `Slots::Count` does.
    fn after(holdings: &Holdings, moves: &[SlotMove]) -> Vec<(u16, usize)> {
        let mut owned: Vec<(u16, Vec<u16>)> = holdings
            .iter()
            .map(|(p, s)| (*p, s.iter().flat_map(|r| r.start..=r.end).collect()))
            .collect();
        for m in moves {
            let n = count(&m.slots);
            let from = owned.iter_mut().find(|(p, _)| *p == m.from).unwrap();
            from.1.sort_unstable();
            let taken: Vec<u16> = from.1.drain(..n).collect();
            assert_eq!(ranges(&taken), m.slots, "{m:?} takes the source's lowest slots");
            owned.iter_mut().find(|(p, _)| *p == m.to).unwrap().1.extend(taken);
        }
        owned.into_iter().map(|(p, s)| (p, s.len())).collect()
    }

    #[test]
    fn a_new_empty_master_gets_an_even_share_from_each_of_the_others() {
        let holdings = [
            (7001, vec![r(0, 5460)]),
            (7002, vec![r(5461, 10922)]),
            (7003, vec![r(10923, 16383)]),
            (7007, vec![]),
        ];
        let moves = rebalance_plan(&holdings);
        assert_eq!(
            moves,
            [
                SlotMove {
                    from: 7001,
                    to: 7007,
                    slots: vec![r(0, 1364)]
                },
                SlotMove {
                    from: 7002,
                    to: 7007,
                    slots: vec![r(5461, 6826)]
                },
                SlotMove {
                    from: 7003,
                    to: 7007,
                    slots: vec![r(10923, 12287)]
                },
            ]
        );
        assert_eq!(
            after(&holdings, &moves),
            [(7001, 4096), (7002, 4096), (7003, 4096), (7007, 4096)]
        );
    }

    #[test]
    fn an_uneven_cluster_ends_within_one_slot_of_the_share_and_an_even_one_moves_nothing() {
        let holdings = [
            (7001, vec![r(0, 999)]),
            (7002, vec![r(1000, 12000)]),
            (7003, vec![r(12001, 16383)]),
        ];
        let moves = rebalance_plan(&holdings);
        assert!(
            moves.iter().all(|m| m.from == 7002),
            "only the one above the share gives: {moves:?}"
        );
        let counts = after(&holdings, &moves);
        assert_eq!(counts.iter().map(|(_, n)| n).sum::<usize>(), usize::from(SLOTS));
        for (port, n) in &counts {
            assert!((5461..=5462).contains(n), "{port} holds {n}");
        }
        let even = [
            (7001, vec![r(0, 5460)]),
            (7002, vec![r(5461, 10922)]),
            (7003, vec![r(10923, 16383)]),
        ];
        assert!(rebalance_plan(&even).is_empty());
    }

    #[test]
    fn a_drained_master_gives_everything_evenly_and_the_others_give_nothing() {
        let holdings = [
            (7001, vec![r(0, 4095)]),
            (7002, vec![r(4096, 8191)]),
            (7003, vec![r(8192, 12287)]),
            (7007, vec![r(12288, 12300), r(12301, 16383)]),
        ];
        let moves = drain_plan(&holdings, 7007);
        assert!(moves.iter().all(|m| m.from == 7007), "{moves:?}");
        assert_eq!(moves.len(), 3);
        assert_eq!(
            after(&holdings, &moves),
            [(7001, 5462), (7002, 5461), (7003, 5461), (7007, 0)]
        );
        // A drain tops up the emptiest first.
        let holdings = [
            (7001, vec![r(0, 9999)]),
            (7002, vec![r(10000, 10999)]),
            (7003, vec![r(11000, 16383)]),
        ];
        let moves = drain_plan(&holdings, 7003);
        assert_eq!(after(&holdings, &moves), [(7001, 10000), (7002, 6384), (7003, 0)]);
        assert!(drain_plan(&[(7001, vec![r(0, 16383)])], 7001).is_empty());
    }

    #[test]
    fn removing_a_replica_an_unknown_port_or_one_of_the_last_three_masters_is_refused() {
        let nodes = ClusterNodes::parse(include_str!("../../fixtures/redis-7.0.cluster-nodes.txt")).unwrap();
        let err = check_removal(&nodes, 7004).unwrap_err().to_string();
        assert!(err.contains("port 7004 is a replica (of 7001)"), "{err}");
        let err = check_removal(&nodes, 7010).unwrap_err().to_string();
        assert!(err.contains("no node listens on port 7010"), "{err}");
        let err = check_removal(&nodes, 7002).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Refused);
        assert!(err.to_string().contains("one of the last 3 masters"), "{err}");
        let four = (1..=4)
            .map(|i| {
                let slots = format!("{}-{}", (i - 1) * 4096, i * 4096 - 1);
                format!("{i:040x} 127.0.0.1:700{i}@1700{i} master - 0 0 {i} connected {slots}\n")
            })
            .collect::<String>();
        check_removal(&ClusterNodes::parse(&four).unwrap(), 7002).unwrap();
    }
}

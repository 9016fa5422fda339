//! Moving slots with their keys from one master to another while clients use them: the server's own atomic
//! migration (`CLUSTER MIGRATESLOTS`, Valkey 9.0+) where it has one, else the classic `SETSLOT IMPORTING /
//! MIGRATING`, `MIGRATE`, `SETSLOT NODE` sequence; and one slot held half-way, for clients' `ASK` tests, finished
//! or rolled back later.
//!
//! Over 600 lines on purpose: the held slot is the classic sequence stopped between two of its steps, so the
//! plan, the classic steps and the finish/abort of a held slot read the same markers and must change together;
//! about 50 lines are its unit tests.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::{join_all, try_join_all};
use redis::aio::MultiplexedConnection;

use crate::cluster::guards;
use crate::cluster::handle::Cluster;
use crate::security::credentials::Access;
use crate::server::node::{NodeView, Pool};
use crate::server::ready::Shape;
use crate::server::topology::{ClusterNodes, Role, SlotMigration, SlotRange, format_ranges};
use crate::wait::{Unmet, not_yet};
use crate::{Error, Remedy, Result, bail, wait};

/// Keys moved by one `MIGRATE`.
const BATCH: usize = 100;
/// Slots the classic sequence opens, empties and hands over together (each step's commands for them go out at
/// once, so a move of thousands of slots takes a few dozen rounds rather than thousands). Clients meet `ASK` for
/// the moved keys of a whole batch until it is handed over, a fraction of a second.
const SLOT_BATCH: usize = 100;
/// Slots of a batch whose keys are moved at once (their `GETKEYSINSLOT` and `MIGRATE` pipelined on the source),
/// then handed to the target together.
const KEY_MOVES: usize = 8;
/// How long one `MIGRATE` may take, in milliseconds (the server's own timeout).
const MIGRATE_TIMEOUT_MS: &str = "5000";
/// How long a target that says the cluster is down may take to take keys again: the servers' longest rejoin
/// delay (`CLUSTER_MAX_REJOIN_DELAY`, 5 s), with the 20 s a loaded machine is allowed in every step.
const TARGET_DOWN_TIMEOUT: Duration = Duration::from_secs(25);

/// Which slots to move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slots {
    /// This many of the source's slots, lowest first.
    Count(usize),
    /// Exactly these, all of which the source must own.
    Range(SlotRange),
}

/// How slots are moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationMethod {
    /// `CLUSTER MIGRATESLOTS`: the server moves the slots and their keys itself and hands them over at once.
    Atomic,
    /// `SETSLOT IMPORTING / MIGRATING`, `MIGRATE` in batches, `SETSLOT NODE` on every master, a batch of slots at a
    /// time.
    Classic,
}

/// A move of slots from one master to another: `Reshard::new(7001, 7002, Slots::Count(100))`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reshard {
    /// Port of the master the slots leave.
    pub from: u16,
    /// Port of the master they go to.
    pub to: u16,
    /// Which slots.
    pub slots: Slots,
    /// Use the classic sequence even where the server has atomic migration.
    pub classic: bool,
    /// Stop half-way through the last slot (see [`HeldSlot`]); always the classic sequence.
    pub hold: bool,
}

impl Reshard {
    /// Moves `slots` from the master on `from` to the master on `to`, atomically where the server can.
    pub fn new(from: u16, to: u16, slots: Slots) -> Self {
        Self {
            from,
            to,
            slots,
            classic: false,
            hold: false,
        }
    }

    /// Forces the classic sequence.
    pub fn classic(mut self) -> Self {
        self.classic = true;
        self
    }

    /// Stops half-way through the last slot and leaves it so.
    pub fn hold(mut self) -> Self {
        self.hold = true;
        self
    }
}

/// What a reshard (or the finish of a held slot) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReshardReport {
    /// Port of the source.
    pub from: u16,
    /// Port of the target.
    pub to: u16,
    /// The slots handed over to the target (a held slot is not among them).
    pub slots: Vec<SlotRange>,
    /// Keys moved, those of the held slot's first half included.
    pub keys: usize,
    /// How they were moved.
    pub method: MigrationMethod,
    /// Time from the first command until every node agreed on the new map (or the slot was held).
    pub took: Duration,
    /// The slot left half-way, with `hold`.
    pub held: Option<HeldSlot>,
    /// How the batch in flight ended when the move was stopped early (see [`Cluster::reshard_until_stopped`]).
    pub stopped: Option<Stopped>,
}

/// A classic move stopped between two steps: each slot of the batch in flight was either finished or rolled back,
/// none is left marked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    /// Slots of the batch handed over to the target with all their keys (they are in [`ReshardReport::slots`]).
    pub finished: Vec<SlotRange>,
    /// Slots of the batch given back to the source, `SETSLOT STABLE` on both ends.
    pub rolled_back: Vec<SlotRange>,
    /// Keys those had on the target (written there after `ASK`), moved back to the source.
    pub keys_back: usize,
    /// Slots asked for that no batch reached, still the source's.
    pub untouched: usize,
}

/// A slot caught half-way through a classic migration: `MIGRATING` on the source, `IMPORTING` on the target,
/// some keys on each. The source answers `ASK <slot> <target>` for a key it no longer has; the target serves the
/// slot only after `ASKING` and answers `MOVED` to the source otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldSlot {
    /// The slot.
    pub slot: u16,
    /// Port of the source, which still owns it.
    pub from: u16,
    /// Port of the target.
    pub to: u16,
    /// Keys of the slot on the target.
    pub moved: usize,
    /// Keys of the slot still on the source.
    pub left: usize,
}

impl std::fmt::Display for HeldSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "slot {}: MIGRATING on {}, IMPORTING on {}; {} keys moved, {} left",
            self.slot, self.from, self.to, self.moved, self.left
        )
    }
}

/// How far a reshard waits once its slots are handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settled {
    /// Every node agrees on the new map and the cluster is ready.
    Ready,
    /// Every node but the source and its replicas agrees on the new map: a drain, whose caller removes those next
    /// and then waits until the cluster is ready (a source that gave its last slot turns into a replica of the
    /// target and syncs from it meanwhile, and may not answer for seconds).
    Drained,
}

/// A master taking part in a move.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Peer {
    id: String,
    addr: SocketAddr,
}

/// A move decided, not begun: who gives, who takes, which slots, and the other masters that must learn of it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plan {
    source: Peer,
    target: Peer,
    slots: Vec<u16>,
    others: Vec<SocketAddr>,
}

/// Decides a move on `topology`; refuses unknown ports, replicas, a node to itself, and slots the source does not
/// own.
fn plan(topology: &ClusterNodes, reshard: &Reshard) -> Result<Plan> {
    if reshard.from == reshard.to {
        bail!(Refused, "cannot move slots from {} to itself", reshard.from);
    }
    let peer = |port, role: &str| -> Result<Peer> {
        let node = guards::live_master(topology, Some(port)).map_err(|e| e.context(format!("the {role}")))?;
        Ok(Peer {
            id: node.id.clone(),
            addr: node.addr.expect("live masters have an address"),
        })
    };
    let (source, target) = (peer(reshard.from, "source")?, peer(reshard.to, "target")?);
    let owned: Vec<u16> = topology
        .get(&source.id)
        .map(|n| n.slots.iter().flat_map(|r| r.start..=r.end).collect())
        .unwrap_or_default();
    let slots = match reshard.slots {
        Slots::Count(0) => bail!(Refused, "moving 0 slots does nothing; ask for at least 1"),
        Slots::Count(n) if n > owned.len() => {
            bail!(
                Refused,
                "{} owns {} slots, fewer than the {n} asked for",
                reshard.from,
                owned.len()
            )
        }
        Slots::Count(n) => owned[..n].to_vec(),
        Slots::Range(range) => {
            if let Some(slot) = (range.start..=range.end).find(|s| !owned.contains(s)) {
                let owner = topology.owner_of(slot).and_then(|n| n.port());
                bail!(
                    Refused,
                    "slot {slot} is served by {}, not by {}; {} owns {}",
                    owner.map_or("no node".into(), |p| p.to_string()),
                    reshard.from,
                    reshard.from,
                    format_ranges(&topology.get(&source.id).map(|n| n.slots.clone()).unwrap_or_default())
                );
            }
            (range.start..=range.end).collect()
        }
    };
    let others = other_masters(topology, &source.id, &target.id);
    Ok(Plan {
        source,
        target,
        slots,
        others,
    })
}

/// Addresses of the live masters other than the two ids: they are told the new owner of each moved slot.
fn other_masters(topology: &ClusterNodes, source: &str, target: &str) -> Vec<SocketAddr> {
    topology
        .live_masters()
        .into_iter()
        .filter(|m| m.id != source && m.id != target)
        .filter_map(|m| m.addr)
        .collect()
}

/// Contiguous ranges of sorted slots.
pub(crate) fn ranges(slots: &[u16]) -> Vec<SlotRange> {
    let mut ranges: Vec<SlotRange> = Vec::new();
    for &slot in slots {
        match ranges.last_mut() {
            Some(last) if last.end + 1 == slot => last.end = slot,
            _ => ranges.push(SlotRange { start: slot, end: slot }),
        }
    }
    ranges
}

/// The slot held in migration, seen from the views of its source and target, if any: `(slot, source id, target
/// id)`. Either side's marker is enough (a move cut short may have set only one).
pub(crate) fn held_in(views: &[NodeView]) -> Option<(u16, String, String)> {
    marked_in(views).into_iter().next()
}

/// Every slot marked in migration in `views` (a move cut short can leave a whole batch so), by slot, each once:
/// `(slot, source id, target id)` from the source's `MIGRATING` or the target's `IMPORTING` marker. Valkey 8.0+
/// copies the markers to the replicas, which list them as their own: a replica's marker stands for its master's.
/// A replica may keep one its master never set (Valkey applies `SETSLOT` on a master only once its replicas have,
/// so a client killed meanwhile leaves it on the replicas alone); the master's `SETSLOT STABLE` or `NODE` clears it.
pub(crate) fn marked_in(views: &[NodeView]) -> Vec<(u16, String, String)> {
    let mut marked: Vec<(u16, String, String)> = views
        .iter()
        .filter_map(|v| v.nodes.myself())
        .filter_map(|me| match me.role {
            Role::Master => Some((me, &me.id)),
            Role::Replica => me.master_id.as_ref().map(|master| (me, master)),
            Role::Unknown => None,
        })
        .flat_map(|(me, id)| {
            let out = me.migrating.iter().map(|(s, to)| (*s, id.clone(), to.clone()));
            out.chain(me.importing.iter().map(|(s, from)| (*s, from.clone(), id.clone())))
        })
        .collect();
    marked.sort();
    marked.dedup_by_key(|(slot, ..)| *slot);
    marked
}

impl Cluster {
    /// Moves slots with their keys while clients keep using them, and returns once every node agrees on the new
    /// map and the cluster is ready (or, with [`Reshard::hold`], once the last slot is held half-way). Refuses bad
    /// input, a cluster with a slot already held, and one that is not ready.
    pub async fn reshard(&self, reshard: &Reshard) -> Result<ReshardReport> {
        self.reshard_with(reshard, Settled::Ready, &AtomicBool::new(false))
            .await
    }

    /// [`Cluster::reshard`] that, once `stop` completes (a signal, say), ends a classic move at its next step
    /// instead of dropping it between a command and its reply: the slots of the batch in flight whose keys are over
    /// are handed to the target, the others rolled back to the source, and [`ReshardReport::stopped`] says which.
    /// An atomic move does not watch `stop`: the server carries it through by itself.
    pub async fn reshard_until_stopped(
        &self,
        reshard: &Reshard,
        stop: impl Future<Output = ()>,
    ) -> Result<ReshardReport> {
        let stopped = AtomicBool::new(false);
        until_stopped(stop, &stopped, self.reshard_with(reshard, Settled::Ready, &stopped)).await
    }

    /// The move, returning once the map is agreed and, with [`Settled::Ready`], the cluster ready; stopped early
    /// once `stop` is set (see [`Cluster::reshard_until_stopped`]).
    pub(crate) async fn reshard_with(
        &self,
        reshard: &Reshard,
        settled: Settled,
        stop: &AtomicBool,
    ) -> Result<ReshardReport> {
        guards::no_slot_held(self, "resharding").await?;
        let topology = self.topology().await?;
        let plan = plan(&topology, reshard)?;
        // With a drain, the source and its replicas are about to go: what they say need not be waited for.
        let leaving: Vec<SocketAddr> = match settled {
            Settled::Ready => Vec::new(),
            Settled::Drained => std::iter::once(plan.source.addr)
                .chain(topology.replicas_of(&plan.source.id).iter().filter_map(|r| r.addr))
                .collect(),
        };
        // A cluster that is not ready (a master lost for good, its slots unserved) would never be again after the
        // move: refused before anything moves, as every other change is.
        guards::healthy(self, "no slot is moved").await?;
        let atomic = !reshard.classic && !reshard.hold && has_atomic_migration(self.access(), plan.source.addr).await?;
        let method = if atomic {
            MigrationMethod::Atomic
        } else {
            MigrationMethod::Classic
        };
        tracing::info!(
            "reshard: moving {} slots ({}) from {} to {} ({method:?})",
            plan.slots.len(),
            format_ranges(&ranges(&plan.slots)),
            reshard.from,
            reshard.to
        );
        let start = Instant::now();
        let (whole, held) = match (reshard.hold, plan.slots.split_last()) {
            (true, Some((last, rest))) => (rest.to_vec(), Some(*last)),
            _ => (plan.slots.clone(), None),
        };
        let (mut keys, moved, stopped) = if atomic {
            (self.migrate_atomically(&plan).await?, whole, None)
        } else {
            self.migrate_classic(&plan, &whole, stop).await?
        };
        let mut report = ReshardReport {
            from: reshard.from,
            to: reshard.to,
            slots: ranges(&moved),
            keys,
            method,
            took: Duration::ZERO,
            held: None,
            stopped,
        };
        if let Some(slot) = held.filter(|_| report.stopped.is_none()) {
            let total = keys_in(self, plan.source.addr, slot).await?;
            open_slots(&Links::open(self.access(), &plan, 1).await?, &plan, &[slot]).await?;
            let moved = move_keys(
                self.pool(),
                plan.source.addr,
                plan.target.addr,
                slot,
                Some(total.div_ceil(2)),
                false,
            )
            .await?;
            keys += moved;
            tracing::info!("hold: slot {slot} left half-way, {moved} of {total} keys moved");
            report.keys = keys;
            report.held = Some(HeldSlot {
                slot,
                from: reshard.from,
                to: reshard.to,
                moved,
                left: total - moved,
            });
        }
        self.wait_map_agreed(&plan.target.id, &moved, &leaving).await?;
        report.took = start.elapsed();
        Ok(report)
    }

    /// The slot held half-way through a migration, if any (see [`HeldSlot`]).
    pub async fn held_migration(&self) -> Result<Option<HeldSlot>> {
        let views = self.views().await?;
        let Some((slot, source, target)) = held_in(&views) else {
            return Ok(None);
        };
        let plan = self.held_plan(&views, slot, &source, &target)?;
        let count = |addr| keys_in(self, addr, slot);
        let (left, moved) = tokio::try_join!(count(plan.source.addr), count(plan.target.addr))?;
        Ok(Some(HeldSlot {
            slot,
            from: plan.source.addr.port(),
            to: plan.target.addr.port(),
            moved,
            left,
        }))
    }

    /// Completes the migration of every slot held or left marked half-way (an interrupted move can leave a
    /// whole batch): their other keys move, every master is told the target owns them. Reports the last slot's
    /// source, target and keys, all the slots, and the keys moved in all.
    pub async fn finish_held(&self) -> Result<ReshardReport> {
        let (views, marked) = self.marked_or_refuse("finish").await?;
        let start = Instant::now();
        let (mut keys, mut slots, mut last) = (0, Vec::new(), None);
        for (slot, source, target) in &marked {
            let plan = self.held_plan(&views, *slot, source, target)?;
            let links = Links::open(self.access(), &plan, 1).await?;
            keys += if self.target_owns(&plan, *slot).await? {
                // The target took it already (a hand-over cut short after its SETSLOT NODE): only the source's
                // last keys and the other masters are left to tell.
                let moved = move_keys(self.pool(), plan.source.addr, plan.target.addr, *slot, None, false).await?;
                settle_slots(&links, &plan, &[*slot]).await?;
                moved
            } else {
                self.move_batch(&links, &plan, &[*slot], &AtomicBool::new(false))
                    .await?
                    .keys
            };
            slots.push(*slot);
            last = Some(plan);
        }
        let plan = last.expect("marked_or_refuse found one");
        tracing::info!(
            "finish: {} slot(s) ({}) handed over with their last {keys} keys",
            slots.len(),
            format_ranges(&ranges(&slots))
        );
        for (slot, _, target) in &marked {
            self.wait_map_agreed(target, &[*slot], &[]).await?;
        }
        Ok(ReshardReport {
            from: plan.source.addr.port(),
            to: plan.target.addr.port(),
            slots: ranges(&slots),
            keys,
            method: MigrationMethod::Classic,
            took: start.elapsed(),
            held: None,
            stopped: None,
        })
    }

    /// Rolls back every slot held or left marked half-way: its keys return to the source, which keeps the slot
    /// (clients may miss the moved keys for the moment they travel back). A slot whose target already took it
    /// (a hand-over cut short after the target's `SETSLOT NODE`) cannot go back so and is finished instead.
    /// Returns each slot as it was marked.
    pub async fn abort_held(&self) -> Result<Vec<HeldSlot>> {
        let (views, marked) = self.marked_or_refuse("abort").await?;
        let mut cleared = Vec::new();
        for (slot, source, target) in &marked {
            let (slot, plan) = (*slot, self.held_plan(&views, *slot, source, target)?);
            let count = |addr| keys_in(self, addr, slot);
            let (left, moved) = tokio::try_join!(count(plan.source.addr), count(plan.target.addr))?;
            cleared.push(HeldSlot {
                slot,
                from: plan.source.addr.port(),
                to: plan.target.addr.port(),
                moved,
                left,
            });
            let links = Links::open(self.access(), &plan, 1).await?;
            if self.target_owns(&plan, slot).await? {
                move_keys(self.pool(), plan.source.addr, plan.target.addr, slot, None, false).await?;
                settle_slots(&links, &plan, &[slot]).await?;
                tracing::info!(
                    "abort: slot {slot} was {}'s already, so it is finished there",
                    plan.target.addr.port()
                );
                continue;
            }
            let back = roll_back(self.pool(), &links, &plan, &[slot]).await?;
            tracing::info!(
                "abort: slot {slot} stays on {}, {back} keys moved back",
                plan.source.addr.port()
            );
        }
        self.wait_ready(Shape::Any, self.step_timeout().await?).await?;
        Ok(cleared)
    }

    /// Whether the plan's target says it owns `slot` itself.
    async fn target_owns(&self, plan: &Plan, slot: u16) -> Result<bool> {
        let view = self.pool().view(plan.target.addr).await?;
        Ok(view
            .nodes
            .myself()
            .is_some_and(|me| me.slots.iter().any(|r| r.contains(slot))))
    }

    /// The views and every slot marked in migration, or a refusal of `what` saying nothing is held.
    async fn marked_or_refuse(&self, what: &str) -> Result<(Vec<NodeView>, Vec<(u16, String, String)>)> {
        let views = self.views().await?;
        let marked = marked_in(&views);
        if marked.is_empty() {
            return Err(Error::refused(format!(
                "no slot is held in migration, so there is nothing to {what}; `Reshard::hold` holds one"
            ))
            .with_remedy(Remedy::HoldSlot));
        }
        Ok((views, marked))
    }

    fn held_plan(&self, views: &[NodeView], slot: u16, source: &str, target: &str) -> Result<Plan> {
        let topology = &views[0].nodes;
        let peer = |id: &str| -> Result<Peer> {
            let addr = topology.get(id).and_then(|n| n.addr);
            let addr = addr.ok_or_else(|| Error::redis(format!("node {id}, holding slot {slot}, has no address")))?;
            Ok(Peer {
                id: id.to_owned(),
                addr,
            })
        };
        let (source, target) = (peer(source)?, peer(target)?);
        let others = other_masters(topology, &source.id, &target.id);
        Ok(Plan {
            source,
            target,
            slots: vec![slot],
            others,
        })
    }

    /// The classic sequence for `slots`, [`SLOT_BATCH`] at a time, until `stop` is set; returns the keys moved,
    /// the slots handed over and, if stopped before the last, how the batch in flight ended.
    async fn migrate_classic(
        &self,
        plan: &Plan,
        slots: &[u16],
        stop: &AtomicBool,
    ) -> Result<(usize, Vec<u16>, Option<Stopped>)> {
        let (mut keys, mut handed, mut last) = (0, Vec::new(), Batch::default());
        let nodes = 2 + plan.others.len();
        let links = Links::open(self.access(), plan, (MAX_LINKS / nodes).clamp(1, LANES)).await?;
        for batch in slots.chunks(SLOT_BATCH) {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            last = self.move_batch(&links, plan, batch, stop).await?;
            keys += last.keys;
            handed.extend(&last.finished);
            crate::progress::progress!("slots moved", handed.len(), slots.len());
            if !last.rolled_back.is_empty() {
                break;
            }
            if handed.len() % 1000 < batch.len() {
                tracing::info!("reshard: {} of {} slots moved ({keys} keys)", handed.len(), slots.len());
            }
        }
        if handed.len() == slots.len() {
            return Ok((keys, handed, None));
        }
        let how = Stopped {
            finished: ranges(&last.finished),
            rolled_back: ranges(&last.rolled_back),
            keys_back: last.keys_back,
            untouched: slots.len() - handed.len() - last.rolled_back.len(),
        };
        tracing::info!(
            "reshard: stopped; of the batch in flight, {} handed over, {} rolled back ({} keys back), {} slots not begun",
            format_ranges(&how.finished),
            format_ranges(&how.rolled_back),
            how.keys_back,
            how.untouched
        );
        Ok((keys, handed, Some(how)))
    }

    /// Opens `batch` and hands it over, moving the keys its slots hold once they are MIGRATING (new keys then go
    /// to the target, so a slot empty then stays so). Each step's `SETSLOT`s go out together: on Valkey 8.0+ each
    /// waits for the node's replicas, so rounds, not slots, set the time. The target takes each group of
    /// [`KEY_MOVES`] slots as soon as their keys are over, so a client meets `ASK` for a moved key only for a round
    /// (redis-rs sends `ASKING` as a request of its own, which a concurrent request on that connection can take, so
    /// an `ASK` may bounce until the client is out of retries); the source and the other masters learn the new
    /// owner of the slots handed over at the end. Once `stop` is set, no further group's keys move: the slots not
    /// handed over yet are rolled back (see [`roll_back`]).
    async fn move_batch(&self, links: &Links, plan: &Plan, batch: &[u16], stop: &AtomicBool) -> Result<Batch> {
        let (source, target) = (plan.source.addr, plan.target.addr);
        open_slots(links, plan, batch).await?;
        let counts = try_join_all(batch.iter().map(|s| keys_in(self, source, *s))).await?;
        let (loaded, empty): (Vec<(u16, usize)>, _) = batch.iter().copied().zip(counts).partition(|(_, n)| *n > 0);
        let slots = |pairs: Vec<(u16, usize)>| pairs.into_iter().map(|(s, _)| s).collect::<Vec<u16>>();
        let (loaded, empty) = (slots(loaded), slots(empty));
        let node = ["NODE", plan.target.id.as_str()];
        let mut done = Batch::default();
        for group in loaded.chunks(KEY_MOVES) {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let moves = group
                .iter()
                .map(|&slot| move_keys(self.pool(), source, target, slot, None, false));
            done.keys += try_join_all(moves).await?.into_iter().sum::<usize>();
            links.target.setslots(group, &node, never).await?;
            done.finished.extend(group);
        }
        if stop.load(Ordering::Relaxed) {
            done.rolled_back = batch.iter().copied().filter(|s| !done.finished.contains(s)).collect();
            done.keys_back = roll_back(self.pool(), links, plan, &done.rolled_back).await?;
        } else {
            links.target.setslots(&empty, &node, never).await?;
            done.finished.extend(empty);
        }
        done.finished.sort_unstable();
        settle_elsewhere(links, &done.finished, &node).await?;
        Ok(done)
    }

    /// `CLUSTER MIGRATESLOTS` of the plan's slots, followed on the source until it says the move succeeded;
    /// returns the keys the slots held when it began.
    async fn migrate_atomically(&self, plan: &Plan) -> Result<usize> {
        let source = plan.source.addr;
        let counts = plan.slots.iter().map(|s| keys_in(self, source, *s));
        let keys: usize = try_join_all(counts).await?.into_iter().sum();
        let before: Vec<String> = migrations(self, source).await?.into_iter().map(|m| m.name).collect();
        let mut cmd = redis::cmd("CLUSTER");
        // One SLOTSRANGE block holds every start-end pair (a second block would start another migration).
        cmd.arg("MIGRATESLOTS").arg("SLOTSRANGE");
        for range in ranges(&plan.slots) {
            cmd.arg(range.start).arg(range.end);
        }
        cmd.arg("NODE").arg(&plan.target.id);
        self.pool().query::<()>(source, &cmd).await?;
        let timeout = self.step_timeout().await? + Duration::from_millis(keys as u64 / 10);
        wait::until("the atomic migration to finish", timeout, || async {
            let ours: Vec<SlotMigration> = migrations(self, source)
                .await?
                .into_iter()
                .filter(|m| !before.contains(&m.name))
                .collect();
            if ours.is_empty() {
                not_yet!("{source} lists no new migration yet");
            }
            if let Some(running) = ours.iter().find(|m| !m.ended()) {
                not_yet!("migration {} is {}", running.name, running.state);
            }
            match ours.into_iter().find(|m| m.state != "success") {
                Some(m) => Err(Unmet::GiveUp(Error::redis(format!(
                    "the atomic migration {} ended {}: {}",
                    m.name, m.state, m.message
                )))),
                None => Ok(()),
            }
        })
        .await?;
        Ok(keys)
    }

    /// Waits until every live node says `target` owns `slots`, then until the cluster is ready; with nodes
    /// `leaving` (a drain), only until every other node says so.
    async fn wait_map_agreed(&self, target: &str, slots: &[u16], leaving: &[SocketAddr]) -> Result<()> {
        let timeout = self.step_timeout().await?;
        let roster = self.roster();
        wait::until("every node to agree on the new slot map", timeout, || async {
            let staying = roster.addrs().await?.into_iter().filter(|a| !leaving.contains(a));
            let views = join_all(staying.map(|addr| self.pool().view(addr))).await;
            for view in views.into_iter().collect::<Result<Vec<_>>>()? {
                let wrong = slots
                    .iter()
                    .find(|s| view.nodes.owner_of(**s).is_none_or(|n| n.id != target));
                if let Some(slot) = wrong {
                    not_yet!("{} does not yet say the target owns slot {slot}", view.addr);
                }
            }
            roster.confirm().await
        })
        .await?;
        if leaving.is_empty() {
            self.wait_ready(Shape::Any, timeout).await?;
        }
        Ok(())
    }

    /// How long one step may take on this cluster.
    async fn step_timeout(&self) -> Result<Duration> {
        Ok(self.identity().step_timeout(self.nodes().await?.len()))
    }
}

/// Runs `work`, which watches `stopped`; once `stop` completes, sets `stopped` and lets `work` end at its next step
/// instead of dropping it between a command and its reply.
pub(crate) async fn until_stopped<T>(
    stop: impl Future<Output = ()>,
    stopped: &AtomicBool,
    work: impl Future<Output = T>,
) -> T {
    tokio::pin!(work, stop);
    tokio::select! {
        done = &mut work => done,
        () = &mut stop => {
            stopped.store(true, Ordering::Relaxed);
            work.await
        }
    }
}

/// Whether the server has atomic slot migration (`CLUSTER MIGRATESLOTS` in its `CLUSTER HELP`).
pub async fn has_atomic_migration(access: &Access, addr: SocketAddr) -> Result<bool> {
    let help: Vec<String> = access.command(addr, &["CLUSTER", "HELP"]).await?;
    Ok(help.iter().any(|line| line.starts_with("MIGRATESLOTS ")))
}

async fn migrations(cluster: &Cluster, addr: SocketAddr) -> Result<Vec<SlotMigration>> {
    let reply: redis::Value = cluster
        .pool()
        .query(addr, redis::cmd("CLUSTER").arg("GETSLOTMIGRATIONS"))
        .await?;
    SlotMigration::list_from_value(&reply)
}

/// `CLUSTER COUNTKEYSINSLOT` on the node at `addr`.
async fn keys_in(cluster: &Cluster, addr: SocketAddr, slot: u16) -> Result<usize> {
    let mut cmd = redis::cmd("CLUSTER");
    cmd.arg("COUNTKEYSINSLOT").arg(slot);
    cluster.pool().query(addr, &cmd).await
}

/// Connections per node over which a step's `SETSLOT`s are spread. Since Valkey 8.0 a master runs `SETSLOT` on
/// its replicas first and answers only once they have, holding its connection meanwhile (`blockClientForReplicaAck`
/// in `clusterCommandSetSlot`): pipelined on one connection, the `SETSLOT`s of a batch would wait for one another
/// (6.5 ms each here under load, against 0.4 ms on Redis 7.0); those blocked on several connections in one event
/// loop wait for one replica round together. With a connection per slot of a batch, each step is one round.
const LANES: usize = SLOT_BATCH;
/// At most this many such connections for one move in all (a move touches every master).
const MAX_LINKS: usize = 400;
/// Tries at opening one of them.
const CONNECT_TRIES: usize = 3;

/// Connections to one node (see [`LANES`]).
struct Lanes {
    addr: SocketAddr,
    conns: Vec<MultiplexedConnection>,
}

impl Lanes {
    /// Opens `count` connections to `addr` at once; one that times out (hundreds open at once through the
    /// engine's port proxy on a loaded machine) is tried again, up to [`CONNECT_TRIES`] times.
    async fn open(access: &Access, addr: SocketAddr, count: usize) -> Result<Self> {
        let connect = || async {
            let mut tries = 1;
            loop {
                match access.connect(addr).await {
                    Err(e) if tries < CONNECT_TRIES && e.to_string().contains("timed out") => tries += 1,
                    other => return other,
                }
            }
        };
        let conns = try_join_all((0..count.max(1)).map(|_| connect())).await?;
        Ok(Self { addr, conns })
    }

    /// `CLUSTER SETSLOT <slot> <words>` for each of `slots`, all at once, spread over the connections; an error
    /// for which `done_if` holds counts as done.
    async fn setslots(&self, slots: &[u16], words: &[&str], done_if: fn(&redis::RedisError) -> bool) -> Result<()> {
        let sets = slots.iter().enumerate().map(|(i, &slot)| {
            let mut conn = self.conns[i % self.conns.len()].clone();
            let mut cmd = redis::cmd("CLUSTER");
            cmd.arg("SETSLOT").arg(slot).arg(words);
            async move {
                match cmd.query_async::<()>(&mut conn).await {
                    Err(e) if done_if(&e) => Ok(()),
                    other => other.map_err(|e| {
                        Error::from(e)
                            .context(self.addr)
                            .context(format!("CLUSTER SETSLOT {slot} {}", words.join(" ")))
                    }),
                }
            }
        });
        try_join_all(sets).await.map(drop)
    }
}

/// How one batch of the classic sequence ended.
#[derive(Debug, Default)]
struct Batch {
    /// Keys moved to the target.
    keys: usize,
    /// Slots handed over to the target.
    finished: Vec<u16>,
    /// Slots given back to the source, the move having been stopped.
    rolled_back: Vec<u16>,
    /// Keys moved back with them.
    keys_back: usize,
}

/// Connections to the masters a plan involves, for the classic sequence's `SETSLOT`s.
struct Links {
    source: Lanes,
    target: Lanes,
    others: Vec<Lanes>,
}

impl Links {
    /// Opens `lanes` connections to each of the plan's masters.
    async fn open(access: &Access, plan: &Plan, lanes: usize) -> Result<Self> {
        let (source, target, others) = tokio::try_join!(
            Lanes::open(access, plan.source.addr, lanes),
            Lanes::open(access, plan.target.addr, lanes),
            try_join_all(plan.others.iter().map(|a| Lanes::open(access, *a, lanes))),
        )?;
        Ok(Self { source, target, others })
    }
}

/// `IMPORTING` on the target, then `MIGRATING` on the source (the order `redis-cli` uses, so no key is ever
/// without a node to serve it), for each of `slots`.
async fn open_slots(links: &Links, plan: &Plan, slots: &[u16]) -> Result<()> {
    links
        .target
        .setslots(slots, &["IMPORTING", &plan.source.id], never)
        .await?;
    links
        .source
        .setslots(slots, &["MIGRATING", &plan.target.id], never)
        .await
}

/// `SETSLOT NODE` to the target on the source and the other masters, once the target has taken `slots` (its
/// `SETSLOT NODE` bumped its epoch). A source that gave its last slot may already have learnt so from the target and
/// turned into its replica (Redis 7.0+, Valkey): it then refuses `SETSLOT` (which `redis-cli` ignores too), or, on
/// Valkey, drops the `SETSLOT`s still waiting for its replicas as `UNBLOCKED` and closes their connections, failing
/// those pipelined behind them. The source's `SETSLOT NODE` only hastens what the target's higher epoch tells it
/// anyway, and the caller waits until every node agrees the target owns the slots, so these count as done.
async fn settle_elsewhere(links: &Links, slots: &[u16], node: &[&str]) -> Result<()> {
    let turned_replica = |e: &redis::RedisError| {
        let text = e.to_string();
        text.contains("SETSLOT only with masters")
            || text.contains("UNBLOCKED")
            || e.is_connection_dropped()
            || e.is_io_error()
    };
    let others = try_join_all(links.others.iter().map(|l| l.setslots(slots, node, never)));
    tokio::try_join!(links.source.setslots(slots, node, turned_replica), others).map(drop)
}

/// Hands `slots` to the target: `SETSLOT NODE` on the target (which bumps its epoch), then on the source and the
/// other masters together (see [`settle_elsewhere`]).
async fn settle_slots(links: &Links, plan: &Plan, slots: &[u16]) -> Result<()> {
    let node = ["NODE", plan.target.id.as_str()];
    links.target.setslots(slots, &node, never).await?;
    settle_elsewhere(links, slots, &node).await
}

/// No error counts as done.
fn never(_: &redis::RedisError) -> bool {
    false
}

/// Gives `slots`, opened but not handed over, back to the source: `SETSLOT STABLE` there (it must serve them plainly
/// to take keys back; while migrating it answers `ASK`), the keys on the target (moved, or written there after
/// `ASK`) moved back, then `STABLE` on the target. Until they are back a client may miss them. Returns the keys
/// moved back.
async fn roll_back(pool: &Pool, links: &Links, plan: &Plan, slots: &[u16]) -> Result<usize> {
    links.source.setslots(slots, &["STABLE"], never).await?;
    let (from, to) = (plan.target.addr, plan.source.addr);
    let back = try_join_all(slots.iter().map(|&slot| move_keys(pool, from, to, slot, None, true))).await?;
    links.target.setslots(slots, &["STABLE"], never).await?;
    Ok(back.into_iter().sum())
}

/// `MIGRATE`s the keys of `slot` from `from` to `to` in batches, at most `limit` of them (all by default);
/// `asking` sends `ASKING` first (for a target handing keys back: it serves an importing slot only so). Returns
/// the keys moved.
async fn move_keys(
    pool: &Pool,
    from: SocketAddr,
    to: SocketAddr,
    slot: u16,
    limit: Option<usize>,
    asking: bool,
) -> Result<usize> {
    let mut moved = 0;
    let limit = limit.unwrap_or(usize::MAX);
    while moved < limit {
        let batch = BATCH.min(limit - moved);
        let mut get = redis::cmd("CLUSTER");
        get.arg("GETKEYSINSLOT").arg(slot).arg(batch);
        let keys: Vec<Vec<u8>> = pool.query(from, &get).await?;
        if keys.is_empty() {
            break;
        }
        let mut migrate = redis::cmd("MIGRATE");
        migrate
            .arg(to.ip().to_string())
            .arg(to.port())
            .arg("")
            .arg(0)
            .arg(MIGRATE_TIMEOUT_MS)
            .arg("KEYS")
            .arg(&keys);
        let mut pipe = redis::pipe();
        if asking {
            pipe.cmd("ASKING");
        }
        pipe.add_command(migrate);
        // A target that lost sight of most masters for a moment (a loaded machine, a node timeout of a second)
        // answers `CLUSTERDOWN` until it sees them again and its rejoin delay is over; the keys stay on the source
        // meanwhile, so the same `MIGRATE` goes again.
        wait::until(
            &format!("{to} to take the keys of slot {slot}"),
            TARGET_DOWN_TIMEOUT,
            || async {
                match pool.query_pipe(from, &pipe).await {
                    Err(e) if e.to_string().contains("CLUSTERDOWN") => not_yet!("{e}"),
                    done => done.map_err(|e| Unmet::GiveUp(e.context(format!("moving keys of slot {slot} to {to}")))),
                }
            },
        )
        .await?;
        moved += keys.len();
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODES: &str = include_str!("../../fixtures/redis-7.0.cluster-nodes.txt");

    fn refused(reshard: Reshard) -> String {
        let err = plan(&ClusterNodes::parse(NODES).unwrap(), &reshard).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Refused);
        err.to_string()
    }

    #[test]
    fn the_lowest_slots_of_the_source_move_and_the_third_master_is_told() {
        let topology = ClusterNodes::parse(NODES).unwrap();
        let plan = plan(&topology, &Reshard::new(7002, 7001, Slots::Count(3))).unwrap();
        assert_eq!(plan.slots, [5461, 5462, 5463]);
        assert_eq!(plan.target.addr.port(), 7001);
        let others: Vec<u16> = plan.others.iter().map(SocketAddr::port).collect();
        assert_eq!(others, [7003], "replicas learn from their masters");
        let range = SlotRange { start: 100, end: 199 };
        assert_eq!(plan_of(Reshard::new(7001, 7003, Slots::Range(range))).slots.len(), 100);
    }

    fn plan_of(reshard: Reshard) -> Plan {
        plan(&ClusterNodes::parse(NODES).unwrap(), &reshard).unwrap()
    }

    #[test]
    fn bad_moves_are_refused_with_what_would_work() {
        let range = |start, end| Slots::Range(SlotRange { start, end });
        let err = refused(Reshard::new(7001, 7002, range(5000, 5500)));
        assert!(
            err.contains("slot 5461 is served by 7002, not by 7001; 7001 owns 0-5460"),
            "{err}"
        );
        let err = refused(Reshard::new(7001, 7004, Slots::Count(1)));
        assert!(err.contains("the target: port 7004 is a replica"), "{err}");
        let err = refused(Reshard::new(7004, 7001, Slots::Count(1)));
        assert!(err.contains("the source: port 7004 is a replica"), "{err}");
        assert!(refused(Reshard::new(7001, 7001, Slots::Count(1))).contains("to itself"));
        assert!(refused(Reshard::new(7001, 7002, Slots::Count(6000))).contains("owns 5461 slots"));
        assert!(refused(Reshard::new(7001, 7002, Slots::Count(0))).contains("at least 1"));
        assert!(refused(Reshard::new(7001, 7009, Slots::Count(1))).contains("no node listens on port 7009"));
    }

    #[test]
    fn slots_are_grouped_into_ranges() {
        let got = ranges(&[1, 2, 3, 7, 9, 10]);
        assert_eq!(format_ranges(&got), "1-3,7,9-10");
        assert!(ranges(&[]).is_empty());
    }
}

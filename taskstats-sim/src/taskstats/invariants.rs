//! Checker code, not kernel code: the invariants that hold between operations, in pieces, so
//! the whole check ([`Taskstats::check_invariants`], `ledger.rs`) and the incremental one
//! ([`Taskstats::check_invariants_touched`], after an operation, over what it touched) run the
//! same tests and find the same kind. Everything is read through the caller's observer context,
//! so neither the trace nor lockdep sees it. The driver's reads of one operation
//! ([`Taskstats::with_task_table`], [`Taskstats::port_state`], [`Taskstats::port_pick`]) are
//! here too: checker code that needs the tables' private fields.

use super::*;

impl Taskstats {
    /// CPU `cpu`'s listener list: its unlocked length agrees with it, pruning left no invalid
    /// entry, and (with the CVE-2011-2484 check) no port has two valid entries.
    /// Read through the observer's [`RwSem::observe_read`](sim_core::RwSem::observe_read):
    /// between operations of the op-level simulation no `down_read()` round trip; in a
    /// threaded case `down_read()`'s, a scheduling point as before.
    pub(super) fn check_listener_list(&self, cx: &Cx, cpu: usize) -> Result<(), Violation> {
        let listeners = &self.listener_array[cpu];
        listeners.sem.observe_read(cx, |list| {
            // The unlocked length, read while the list is held.
            self.check_listener_entries(listeners.len.load(Ordering::Relaxed), cpu, list)
        })
    }

    /// [`Self::check_listener_list`] over the list as one read section shows it, `len` the
    /// list's unlocked length read in that section.
    fn check_listener_entries(
        &self,
        len: usize,
        cpu: usize,
        list: &[crate::listener::Listener],
    ) -> Result<(), Violation> {
        assert_eq!(len, list.len(), "cpu {cpu}: the unlocked length disagrees with the list");
        if self.checks(crate::fixes::DUPLICATE_LISTENER_CHECK) {
            if let Some(pid) = first_repeated_port(list) {
                return Err(Violation::new(
                    ViolationKind::finding("duplicate-listener"),
                    format!(
                        "cpu {cpu} has more than one valid listener for port {pid}: {:?}",
                        list.iter().map(|s| s.pid).collect::<Vec<_>>()
                    ),
                ));
            }
        }
        if list.iter().any(|s| !s.valid.load(Ordering::Relaxed)) {
            return Err(Violation::new(
                ViolationKind::Invariant(None),
                format!("cpu {cpu}: an invalid listener survived pruning"),
            ));
        }
        Ok(())
    }

    /// Every live `listener` object is on a list: the lists' lengths (unlocked reads, which
    /// [`Self::check_listener_list`] ties to the lists) sum to the cache's live count.
    pub(super) fn check_listener_objects(&self) -> Result<(), Violation> {
        let listeners_total: usize = self.listener_array.iter().map(|l| l.len.load(Ordering::Relaxed)).sum();
        if self.listener_cache.live() != listeners_total as u64 {
            return Err(Violation::new(
                ViolationKind::Leak,
                format!("{} listener objects live, {} on lists", self.listener_cache.live(), listeners_total),
            ));
        }
        Ok(())
    }

    /// Every group among `leaders` (group leaders) the ledger has booked exits for still has
    /// its stats, and they hold exactly the delays of the threads that exited (fill_tgid_exit()
    /// once per thread, nothing lost), tested when `ledger` (the version's group fixes are
    /// checked); and `with_stats`, when given, called with the group of each leader whose
    /// `signal->stats` is set. One look under each leader's siglock serves both; a leader
    /// neither needs is not looked at (the lock steps threaded cases count stay as they were).
    /// Each look is the observer's [`SpinLock::observe`](sim_core::SpinLock::observe): no lock
    /// round trip between operations of the op-level simulation, `spin_lock()`'s in a threaded
    /// case (an observer's acquisition is a scheduling point either way; its irq state is
    /// seen by no one). With `with_stats`, every leader is walked (the caller's count stays whole) and the first
    /// broken group reported; without it the walk stops at the first broken group.
    pub(super) fn check_leaders<'a>(
        &self,
        cx: &Cx,
        leaders: impl Iterator<Item = &'a Task>,
        ledger: bool,
        mut with_stats: Option<&mut dyn FnMut(u32)>,
    ) -> Result<(), Violation> {
        let book = ledger.then(|| self.ledger());
        let mut found = Ok(());
        for task in leaders {
            let group = book.as_ref().and_then(|book| book.groups.get(&task.tgid));
            if group.is_none() && with_stats.is_none() {
                continue;
            }
            // Whether the group has stats, and the finding its ledger gives (None: it agrees).
            let (has_stats, broken) = task.signal.lock.observe(cx, |_| {
                task.signal.stats.with(|stats| {
                    let broken =
                        group.filter(|group| !stats.is_some_and(|stats| same_delays(&group.truth, stats)));
                    let broken = broken.map(|group| group_stats_violation(task.tgid, stats, &group.truth));
                    (stats.is_some(), broken)
                })
            });
            if let (Some(with_stats), true) = (with_stats.as_mut(), has_stats) {
                with_stats(task.tgid);
            }
            let Some(broken) = broken else { continue };
            if with_stats.is_none() {
                return Err(broken);
            }
            if found.is_ok() {
                found = Err(broken);
            }
        }
        found
    }

    /// [`Self::check_leaders`] over the leaders of touched groups (see [`Self::leaders_of`]),
    /// with the ledger tested when the version's group fixes are checked: the ledger's verdict
    /// for [`Self::check_invariants_touched`], and `with_stats` called with each group whose
    /// stats are set (how the checker keeps its copy of [`Self::groups_with_stats`]).
    pub(crate) fn check_touched_leaders(
        &self,
        cx: &Cx,
        leaders: &[Arc<Task>],
        mut with_stats: impl FnMut(u32),
    ) -> Result<(), Violation> {
        let leaders = leaders.iter().map(|task| &**task);
        self.check_leaders(cx, leaders, self.checks_group_stats(), Some(&mut with_stats))
    }

    /// The thread groups whose leader is in the task table with `signal->stats` set, ascending.
    /// Read through [`Self::with_task_table`] and each leader's siglock through
    /// [`SpinLock::observe`](sim_core::SpinLock::observe): no lock round trips between
    /// operations of the op-level simulation.
    pub(crate) fn groups_with_stats(&self, cx: &Cx) -> Vec<u32> {
        self.with_task_table(cx, |table| {
            let has_stats = |task: &Task| task.signal.lock.observe(cx, |_| task.signal.stats.is_some());
            table
                .tasks
                .values()
                .filter(|task| task.is_leader() && has_stats(task))
                .map(|task| task.tgid)
                .collect()
        })
    }

    /// The leaders of groups `tgids` that are in the task table, in one look at it: what
    /// [`Self::groups_with_stats`] and the ledger check read, for a checker of touched groups.
    /// `tgids` ascending, each once; the leaders are appended to `leaders` (the caller's buffer,
    /// reused from one check to the next), in the same order.
    /// Read through [`Self::with_task_table`], without a lock round trip between operations.
    pub(crate) fn leaders_of(&self, cx: &Cx, tgids: &[u32], leaders: &mut Vec<Arc<Task>>) {
        self.with_task_table(cx, |table| {
            leaders.extend(
                tgids.iter().filter_map(|tgid| table.tasks.get(tgid)).filter(|t| t.is_leader()).cloned(),
            );
        });
    }

    /// Every live `taskstats_cache` object is a group's stats: `groups` groups have them.
    pub(super) fn check_stats_objects(&self, groups: usize) -> Result<(), Violation> {
        if self.taskstats_cache.live() != groups as u64 {
            return Err(Violation::new(
                ViolationKind::Leak,
                format!(
                    "{} taskstats objects live, {} groups with stats",
                    self.taskstats_cache.live(),
                    groups
                ),
            ));
        }
        Ok(())
    }

    /// `f` over the task table as one read_lock(&tasklist_lock) section shows it: for a driver
    /// that reads several facts for one operation (which task an index picks, its CPU and group,
    /// a requester's credentials, a target's number) in one look instead of a lock round each.
    /// `cx` is the checker's observer: between operations of the op-level simulation the read
    /// takes no lock round trip ([`sim_core::rwlock::RwLock::observe_read`]); in a threaded case
    /// it is `read_lock()`'s, a scheduling point as before.
    pub(crate) fn with_task_table<R>(&self, cx: &Cx, f: impl FnOnce(&TaskTable) -> R) -> R {
        self.tasks.observe_read(cx, f)
    }

    /// Port `id`'s owning process, queue length and whether it is open (None: no such port).
    /// Through the observer: `nl_table_lock` with [`RwLock::observe_read`](sim_core::RwLock::observe_read),
    /// the socket's queue lock with [`SpinLock::observe`](sim_core::SpinLock::observe), as
    /// every port read here: no lock round trip between operations of the op-level simulation.
    pub(crate) fn port_state(&self, cx: &Cx, id: u32) -> Option<(u32, usize, bool)> {
        let socket = self.ports.observe_read(cx, |ports| ports.get(&id).cloned())?;
        Some(socket_state(cx, &socket))
    }

    /// The port `index` picks among the ports' ids, ascending, modulo their number (what
    /// indexing [`Self::port_ids`] picks), without copying the ids (None: no port). Its id
    /// alone: no hold of the socket, no look at its queue (the op-level close(2) and the
    /// preempted query's requester read nothing else).
    pub(crate) fn port_pick(&self, cx: &Cx, index: u8) -> Option<u32> {
        self.ports.observe_read(cx, |ports| pick_port(ports, index).map(|(&id, _)| id))
    }

    /// The invariants after an operation that touched only the lists of the CPUs in `cpus` (a
    /// bit per CPU) and some thread groups, in the whole check's order: those lists, the
    /// listener objects, those groups' ledgers (`ledger`: [`Self::check_touched_leaders`]'s
    /// verdict, Ok when no group was touched), and the stats objects against
    /// `groups_with_stats`, the checker's count of [`Self::groups_with_stats`] kept up to date
    /// over the groups each operation touched. It finds what [`Self::check_invariants`] finds as
    /// long as the operation changed nothing else (`tests/tests/taskstats/incremental.rs` checks
    /// both that and that every list and group an operation changes is among those read).
    /// `cx` is the checker's observer context, made only when something was touched. When
    /// nothing was (None), nothing is read: a `listener` object is made or freed only on a list
    /// (registration, deregistration, an exit's pruning: their CPUs are touched) and a
    /// `taskstats_cache` object only in a group (an exit, a thread fork or its failure, a
    /// release: their groups are touched), so neither count can have moved.
    pub(crate) fn check_invariants_touched(
        &self,
        cx: Option<&Cx>,
        cpus: u64,
        ledger: Result<(), Violation>,
        groups_with_stats: usize,
    ) -> Result<(), Violation> {
        let Some(cx) = cx else { return ledger };
        for cpu in (0..self.listener_array.len()).filter(|&cpu| cpu < 64 && cpus & (1 << cpu) != 0) {
            self.check_listener_list(cx, cpu)?;
        }
        self.check_listener_objects()?;
        ledger?;
        self.check_stats_objects(groups_with_stats)
    }
}

/// The `group-stats` finding: group `tgid`'s `signal->stats` (`have`) does not hold the delays
/// its exited threads sum to (`truth`).
fn group_stats_violation(tgid: u32, have: Option<&TaskstatsRecord>, truth: &TaskstatsRecord) -> Violation {
    let have = have.map_or("no stats (freed)".to_string(), |s| {
        format!("cpu_count {} cpu_delay_total {}", s.cpu_count, s.cpu_delay_total)
    });
    Violation::new(
        ViolationKind::finding("group-stats"),
        format!(
            "group {tgid}: signal->stats has {have}, but its exited threads sum to cpu_count {} \
             cpu_delay_total {}",
            truth.cpu_count, truth.cpu_delay_total
        ),
    )
}

/// The port `index` picks among the ports' ids, ascending, modulo their number: the one rule every
/// driver's port choice follows ([`Taskstats::port_pick`], [`Taskstats::port_pick_socket`]).
pub(super) fn pick_port<V>(ports: &std::collections::BTreeMap<u32, V>, index: u8) -> Option<(&u32, &V)> {
    ports.iter().nth(usize::from(index) % ports.len().max(1))
}

/// A socket's owning process, queue length and whether it is open, read by observer `cx`
/// ([`sim_core::SpinLock::observe`] of its queue lock).
fn socket_state(cx: &Cx, socket: &super::netlink::Socket) -> (u32, usize, bool) {
    (socket.port.owner_tgid, socket.rx.observe(cx, |rx| rx.queue.len()), socket.port.open)
}

/// Lists up to this long are checked for a repeated port pairwise, with no set built (a case's
/// lists hold a few entries); a longer one (a long case's, which opens ports for tens of
/// thousands of operations) by sorting, so its check is not quadratic in its length.
const PAIRWISE_MAX: usize = 32;

/// The port of the first valid entry of `list` (in list order) that an earlier valid entry
/// has too, if any: the CVE-2011-2484 check's finding.
fn first_repeated_port(list: &[crate::listener::Listener]) -> Option<u32> {
    let valid = |s: &&crate::listener::Listener| s.valid.load(Ordering::Relaxed);
    if list.len() <= PAIRWISE_MAX {
        // Each valid entry against the valid ones before it.
        return list
            .iter()
            .enumerate()
            .filter(|(_, s)| valid(s))
            .find(|(at, s)| list[..*at].iter().filter(valid).any(|t| t.pid == s.pid))
            .map(|(_, s)| s.pid);
    }
    // Each valid entry as its port and place, sorted: a port's entries then sit side by side in
    // list order, and the first repeat in list order is the earliest place that follows an
    // entry of its own port.
    let mut keyed: Vec<u64> = list
        .iter()
        .enumerate()
        .filter(|(_, s)| valid(s))
        .map(|(at, s)| u64::from(s.pid) << 32 | at as u64)
        .collect();
    keyed.sort_unstable();
    let repeat =
        keyed.windows(2).filter(|pair| pair[0] >> 32 == pair[1] >> 32).map(|pair| pair[1] as u32).min()?;
    Some(list[repeat as usize].pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The duplicate-listener check's two paths (pairwise up to [`PAIRWISE_MAX`] entries, sorted
    /// past it) name the same port as the plain definition, each valid entry against the valid
    /// ones before it, on lists of every length to 80 (ports from a small range or a wide one,
    /// some entries invalid), and both paths met lists with and without a repeat.
    #[test]
    fn the_repeated_port_check_agrees_with_the_pairwise_definition_on_short_and_long_lists() {
        let sim = Sim::new(sim_core::SimConfig::new(5));
        let cx = sim.cx("test", 0);
        let cache: KmemCache<()> = KmemCache::new("listener", 24);
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = |bound: u64| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % bound
        };
        let mut met = [[0u32; 2]; 2];
        for len in 0..=80usize {
            for trial in 0..20 {
                // Few ports (repeats likely) or about the square of the length (often none).
                let spread = if trial % 2 == 0 { 3 * len } else { len * len };
                let ports = 1 + next(spread as u64 + 1);
                let list: Vec<crate::listener::Listener> = (0..len)
                    .map(|_| crate::listener::Listener {
                        pid: next(ports) as u32,
                        valid: sim_core::sync::atomic::AtomicBool::new(next(8) != 0),
                        handle: cache.alloc(&cx, Gfp::GFP_KERNEL, ()).expect("no faults planned"),
                    })
                    .collect();
                let valid: Vec<&crate::listener::Listener> =
                    list.iter().filter(|s| s.valid.load(Ordering::Relaxed)).collect();
                let expected = (0..valid.len())
                    .find(|&at| valid[..at].iter().any(|t| t.pid == valid[at].pid))
                    .map(|at| valid[at].pid);
                assert_eq!(first_repeated_port(&list), expected, "a list of {len}: {:?}", valid);
                met[usize::from(len > PAIRWISE_MAX)][usize::from(expected.is_some())] += 1;
                for s in list {
                    cache.free(&cx, s.handle).expect("allocated here");
                }
            }
        }
        assert!(met.iter().flatten().all(|&n| n > 0), "each path with and without a repeat: {met:?}");
    }

    /// The incremental check reads the object counts only after an operation that touched a
    /// list or a group (with nothing touched no count can move; see
    /// [`Taskstats::check_invariants_touched`]), so the counts must still fail where they run:
    /// a `listener` object, then a `taskstats_cache` object, leaked behind the lists' and the
    /// groups' backs is a leak for the incremental check of an operation that touched a CPU or
    /// a group and for the whole check; the check of an operation that touched nothing reads
    /// nothing (the whole check every N operations and at the end of the case finds it then).
    #[test]
    fn an_object_leaked_behind_the_lists_and_groups_is_found_by_a_touched_check_and_the_whole_check() {
        let sim = Sim::new(sim_core::SimConfig::new(3).cpus(2));
        let model = Taskstats::new(&sim, Fixes::preset("linux-3.8").expect("preset"), Params::default());
        let observer = sim.observer_cx("test", 0);
        let touched = |model: &Taskstats| model.check_invariants_touched(Some(&observer), 0b01, Ok(()), 0);
        assert!(touched(&model).is_ok(), "the new model is whole: {:?}", touched(&model));
        assert!(model.check_invariants(&sim).is_ok());
        let leak = sim.cx("leak", 0);
        for cache in [&model.listener_cache, &model.taskstats_cache] {
            let handle = cache.alloc(&leak, Gfp::GFP_KERNEL, ()).expect("no faults planned");
            let found = touched(&model).expect_err("a touched check reads the counts");
            assert_eq!(found.kind, ViolationKind::Leak, "{found:?}");
            assert_eq!(model.check_invariants(&sim).expect_err("the whole check").kind, ViolationKind::Leak);
            assert!(
                model.check_invariants_touched(None, 0, Ok(()), 0).is_ok(),
                "nothing touched, nothing read"
            );
            cache.free(&leak, handle).expect("the leaked object");
        }
        assert!(touched(&model).is_ok() && model.check_invariants(&sim).is_ok(), "whole again once freed");
    }
}

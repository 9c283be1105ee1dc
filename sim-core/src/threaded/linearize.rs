//! Linearizability of a threaded case's history against the reference model: is there an order
//! of the operations, consistent with real time (an operation that returned before another was
//! invoked comes first), in which the reference model accepts every outcome?
//!
//! A depth-first search over such orders (Wing and Gong's algorithm with Lowe's memo of visited
//! states, as Porcupine does), split first into independent parts where the subsystem names a
//! key for every operation (per CPU list, per entry, per page), since operations on different keys
//! cannot constrain each other's order. The search is bounded: past [`NODES_MAX`] states one part
//! is given up as undecided (not a violation) and the bound hit is counted in the report.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Debug;

use crate::check::Reference;

/// States one part's search may visit before it is given up as undecided.
pub const NODES_MAX: usize = 50_000;

/// One completed operation: who ran it, what it returned, and when (ticks of the checker clock,
/// a std counter every invocation and response takes a distinct value from).
#[derive(Clone, Debug)]
pub struct Entry<Op, Outcome> {
    /// The thread (0-based).
    pub thread: usize,
    /// Its index in the thread's list.
    pub index: usize,
    /// The operation.
    pub op: Op,
    /// What it returned.
    pub outcome: Outcome,
    /// Tick at invocation.
    pub invoked: u64,
    /// Tick at response.
    pub returned: u64,
}

/// The search's verdict.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Some order fits.
    Linearizable,
    /// No order fits: the longest accepted prefix's failure, as text.
    Violation(String),
    /// The bound was hit in this many parts before an order was found.
    Undecided(usize),
}

/// Checks `history` from `reference` (the state after the set-up prefix). `key` splits it into
/// parts when every operation has one; `relaxed` operations are accepted whatever the reference
/// says of their outcome (a documented non-linearizable kernel behaviour), which still advances it.
pub fn check<R, Op, Outcome>(
    reference: &R,
    history: &[Entry<Op, Outcome>],
    key: impl Fn(&Op) -> Option<u64>,
    relaxed: impl Fn(&Op) -> bool,
) -> Verdict
where
    R: Reference<Op = Op, Outcome = Outcome> + Clone + Debug,
    Op: Debug,
    Outcome: Debug,
{
    let keys: Option<Vec<u64>> = history.iter().map(|e| key(&e.op)).collect();
    let parts: Vec<Vec<&Entry<Op, Outcome>>> = match keys {
        Some(keys) => {
            let mut parts: BTreeMap<u64, Vec<&Entry<Op, Outcome>>> = BTreeMap::new();
            for (entry, key) in history.iter().zip(keys) {
                parts.entry(key).or_default().push(entry);
            }
            parts.into_values().collect()
        }
        None => vec![history.iter().collect()],
    };
    let mut undecided = 0;
    for part in parts {
        let mut search =
            Search { entries: part, done: Vec::new(), seen: HashSet::new(), nodes: 0, deepest: None };
        search.done = vec![false; search.entries.len()];
        match search.run(reference.clone(), 0, &relaxed) {
            Found::Yes => {}
            Found::No => {
                let why = search.deepest.map(|(_, why)| why).unwrap_or_default();
                return Verdict::Violation(why);
            }
            Found::Bound => undecided += 1,
        }
    }
    if undecided > 0 {
        Verdict::Undecided(undecided)
    } else {
        Verdict::Linearizable
    }
}

enum Found {
    Yes,
    No,
    Bound,
}

struct Search<'a, Op, Outcome> {
    entries: Vec<&'a Entry<Op, Outcome>>,
    done: Vec<bool>,
    seen: HashSet<(Vec<bool>, String)>,
    nodes: usize,
    /// The deepest point the search reached and the reference's objection there, for the report.
    deepest: Option<(usize, String)>,
}

impl<Op: Debug, Outcome: Debug> Search<'_, Op, Outcome> {
    fn run<R>(&mut self, reference: R, depth: usize, relaxed: &impl Fn(&Op) -> bool) -> Found
    where
        R: Reference<Op = Op, Outcome = Outcome> + Clone + Debug,
    {
        if depth == self.entries.len() {
            // A complete order: the reference must owe nothing at the end (`Reference::finish`).
            let Err(why) = reference.finish() else { return Found::Yes };
            if self.deepest.as_ref().is_none_or(|(d, _)| depth >= *d) {
                self.deepest = Some((
                    depth,
                    format!("at the end of the case: {why} (after {depth} operations linearized)"),
                ));
            }
            return Found::No;
        }
        self.nodes += 1;
        if self.nodes > NODES_MAX {
            return Found::Bound;
        }
        if !self.seen.insert((self.done.clone(), format!("{reference:?}"))) {
            return Found::No;
        }
        // The earliest response among pending operations: only operations invoked before it
        // may come next.
        let horizon = (0..self.entries.len())
            .filter(|&i| !self.done[i])
            .map(|i| self.entries[i].returned)
            .min()
            .unwrap_or(u64::MAX);
        let mut bound = false;
        for i in 0..self.entries.len() {
            if self.done[i] || self.entries[i].invoked > horizon {
                continue;
            }
            let entry = self.entries[i];
            let mut next = reference.clone();
            if let Err(why) = next.check(&entry.op, &entry.outcome) {
                if !relaxed(&entry.op) {
                    if self.deepest.as_ref().is_none_or(|(d, _)| depth >= *d) {
                        let text = format!(
                            "thread {} op {} {:?} returned {:?}: {why} (after {depth} operations linearized)",
                            entry.thread, entry.index, entry.op, entry.outcome
                        );
                        self.deepest = Some((depth, text));
                    }
                    continue;
                }
            }
            self.done[i] = true;
            let found = self.run(next, depth + 1, relaxed);
            self.done[i] = false;
            match found {
                Found::Yes => return Found::Yes,
                Found::Bound => bound = true,
                Found::No => {}
            }
        }
        if bound {
            Found::Bound
        } else {
            Found::No
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A register: `Some(v)` writes, `None` reads and returns the value.
    #[derive(Clone, Debug, Default)]
    struct Register(u8);

    impl Reference for Register {
        type Config = ();
        type Op = Option<u8>;
        type Outcome = u8;
        fn new(_: &()) -> Register {
            Register(0)
        }
        fn check(&mut self, op: &Option<u8>, actual: &u8) -> Result<(), String> {
            match op {
                Some(v) => {
                    self.0 = *v;
                    Ok(())
                }
                None if *actual == self.0 => Ok(()),
                None => Err(format!("read {actual}, register holds {}", self.0)),
            }
        }
    }

    fn entry(
        thread: usize,
        op: Option<u8>,
        outcome: u8,
        invoked: u64,
        returned: u64,
    ) -> Entry<Option<u8>, u8> {
        Entry { thread, index: 0, op, outcome, invoked, returned }
    }

    #[test]
    fn overlapping_operations_may_take_either_order_but_real_time_order_binds() {
        let overlapping = [entry(0, Some(1), 0, 1, 4), entry(1, None, 1, 2, 3)];
        assert_eq!(check(&Register(0), &overlapping, |_| None, |_| false), Verdict::Linearizable);
        let ordered = [entry(1, None, 1, 1, 2), entry(0, Some(1), 0, 3, 4)];
        let verdict = check(&Register(0), &ordered, |_| None, |_| false);
        assert!(matches!(verdict, Verdict::Violation(ref why) if why.contains("read 1")), "{verdict:?}");
        assert_eq!(check(&Register(0), &ordered, |_| None, |op| op.is_none()), Verdict::Linearizable);
    }

    /// A ledger: `true` borrows one, `false` repays one (never more than is owed); every loan
    /// must be repaid by the end.
    #[derive(Clone, Debug, Default)]
    struct Ledger(u8);

    impl Reference for Ledger {
        type Config = ();
        type Op = bool;
        type Outcome = u8;
        fn new(_: &()) -> Ledger {
            Ledger(0)
        }
        fn check(&mut self, borrow: &bool, _: &u8) -> Result<(), String> {
            match (*borrow, self.0) {
                (true, owed) => self.0 = owed + 1,
                (false, 0) => return Err("repaid with nothing owed".to_string()),
                (false, owed) => self.0 = owed - 1,
            }
            Ok(())
        }
        fn finish(&self) -> Result<(), String> {
            match self.0 {
                0 => Ok(()),
                owed => Err(format!("{owed} owed")),
            }
        }
    }

    #[test]
    fn an_order_that_leaves_the_reference_owing_at_the_end_does_not_fit() {
        let ledger = |borrow, invoked, returned| Entry {
            thread: 0,
            index: 0,
            op: borrow,
            outcome: 0,
            invoked,
            returned,
        };
        let repaid = [ledger(true, 1, 4), ledger(false, 2, 3)];
        assert_eq!(check(&Ledger(0), &repaid, |_| None, |_| false), Verdict::Linearizable);
        let owing = [ledger(true, 1, 2), ledger(true, 3, 4), ledger(false, 5, 6)];
        let verdict = check(&Ledger(0), &owing, |_| None, |_| false);
        assert!(matches!(verdict, Verdict::Violation(ref why) if why.contains("1 owed")), "{verdict:?}");
    }
}

//! [`BySerial`]: the reference's entries by serial, a sorted `Vec` with the `BTreeMap` methods
//! the reference calls.

use std::fmt;
use std::ops::Index;

/// Values by serial, in serial order: a `Vec` of pairs sorted by serial, looked up by binary
/// search. The subject hands serials out in increasing order, so a new one goes at the end.
/// The reference walks all its entries for a chain's members, a block's entry or an insert's
/// EBUSY test: over a slice, where a `BTreeMap` walked its nodes; it iterates, indexes, prints
/// and panics as that `BTreeMap` did.
#[derive(Clone)]
pub(super) struct BySerial<V> {
    items: Vec<(u64, V)>,
}

impl<V> BySerial<V> {
    pub(super) fn new() -> Self {
        BySerial { items: Vec::new() }
    }

    fn at(&self, serial: u64) -> Result<usize, usize> {
        self.items.binary_search_by_key(&serial, |&(s, _)| s)
    }

    pub(super) fn get(&self, serial: &u64) -> Option<&V> {
        self.at(*serial).ok().map(|at| &self.items[at].1)
    }

    pub(super) fn get_mut(&mut self, serial: &u64) -> Option<&mut V> {
        self.at(*serial).ok().map(|at| &mut self.items[at].1)
    }

    pub(super) fn contains_key(&self, serial: &u64) -> bool {
        self.at(*serial).is_ok()
    }

    /// Adds or replaces the value of `serial`; the value it replaced.
    pub(super) fn insert(&mut self, serial: u64, value: V) -> Option<V> {
        if self.items.last().is_none_or(|&(last, _)| last < serial) {
            self.items.push((serial, value));
            return None;
        }
        match self.at(serial) {
            Ok(at) => Some(std::mem::replace(&mut self.items[at].1, value)),
            Err(at) => {
                self.items.insert(at, (serial, value));
                None
            }
        }
    }

    pub(super) fn remove(&mut self, serial: &u64) -> Option<V> {
        self.at(*serial).ok().map(|at| self.items.remove(at).1)
    }

    pub(super) fn retain(&mut self, mut keep: impl FnMut(&u64, &mut V) -> bool) {
        self.items.retain_mut(|(serial, value)| keep(serial, value));
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&u64, &V)> + '_ {
        self.items.iter().map(|(serial, value)| (serial, value))
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.items.iter().map(|(_, value)| value)
    }
}

impl<V> Index<&u64> for BySerial<V> {
    type Output = V;

    fn index(&self, serial: &u64) -> &V {
        self.get(serial).expect("no entry found for key")
    }
}

impl<V: fmt::Debug> fmt::Debug for BySerial<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Every method against a `BTreeMap` given the same calls, serials in and out of order.
    #[test]
    fn it_answers_as_a_btreemap_does() {
        let (mut ours, mut theirs) = (BySerial::new(), BTreeMap::new());
        for (serial, value) in [(5u64, 'a'), (7, 'b'), (6, 'c'), (9, 'd'), (7, 'e'), (1, 'f')] {
            assert_eq!(ours.insert(serial, value), theirs.insert(serial, value), "insert {serial}");
        }
        assert_eq!(ours.remove(&6), theirs.remove(&6));
        assert_eq!(ours.remove(&6), theirs.remove(&6), "a serial no longer there");
        ours.retain(|&serial, _| serial != 9);
        theirs.retain(|&serial, _| serial != 9);
        if let (Some(a), Some(b)) = (ours.get_mut(&5), theirs.get_mut(&5)) {
            (*a, *b) = ('g', 'g');
        }
        assert_eq!(ours.iter().collect::<Vec<_>>(), theirs.iter().collect::<Vec<_>>());
        assert_eq!(ours.values().collect::<Vec<_>>(), theirs.values().collect::<Vec<_>>());
        assert_eq!(format!("{ours:?}"), format!("{theirs:?}"));
        for serial in 0..10 {
            assert_eq!(ours.get(&serial), theirs.get(&serial), "get {serial}");
            assert_eq!(ours.contains_key(&serial), theirs.contains_key(&serial), "contains {serial}");
        }
        assert_eq!(ours[&7], theirs[&7]);
    }
}

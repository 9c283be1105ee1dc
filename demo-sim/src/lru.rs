//! The demo cache's LRU list: in a kernel cache, a `struct list_head` threaded through the
//! entries, oldest at the head, with `list_add_tail`, `list_move_tail` and `list_del`
//! (include/linux/list.h). It is guarded by `demo_lru_lock`, which [`crate::cache::DemoCache`]
//! holds it in.
//!
//! What a newcomer puts in a kernel module like this one: one kernel concept (a list, a hash
//! table, a wire format), named as the kernel names it, with each function's doc comment citing
//! the kernel function it mirrors. A module like this one, plain data under someone else's lock,
//! takes no `&Cx`: only code that locks, allocates, sleeps or can fail takes the caller's context.

/// The keys of the cache's entries, least recently used first.
#[derive(Debug, Default)]
pub(crate) struct Lru {
    keys: Vec<u8>,
}

impl Lru {
    /// `list_add_tail`: a new entry is the most recently used.
    pub(crate) fn add_tail(&mut self, key: u8) {
        self.keys.push(key);
    }

    /// `list_move_tail`: a used entry becomes the most recently used.
    pub(crate) fn move_tail(&mut self, key: u8) {
        self.keys.retain(|&k| k != key);
        self.keys.push(key);
    }

    /// How many entries the list holds.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// The key at `position` from the head (the shrinker's walk).
    pub(crate) fn at(&self, position: usize) -> u8 {
        self.keys[position]
    }

    /// `list_del` of the entry at `position` (the shrinker unlinks as it walks).
    pub(crate) fn remove_at(&mut self, position: usize) -> u8 {
        self.keys.remove(position)
    }

    /// The keys, least recently used first (for the invariant check).
    pub(crate) fn keys(&self) -> &[u8] {
        &self.keys
    }
}

#[cfg(test)]
mod tests {
    use super::Lru;

    #[test]
    fn a_used_entry_moves_to_the_tail_and_the_head_is_the_oldest() {
        let mut lru = Lru::default();
        for key in [1, 2, 3] {
            lru.add_tail(key);
        }
        lru.move_tail(1);
        assert_eq!(lru.keys(), [2, 3, 1]);
        assert_eq!(lru.remove_at(0), 2);
        assert_eq!((lru.len(), lru.at(0)), (2, 3));
    }
}

//! include/linux/list.h as fs/mbcache.c uses it: `list_add`, `list_add_tail`, `list_del` (which
//! poisons the removed entry's links), `list_del_init`, `list_move_tail`, `list_empty`, and the
//! walk along `next` links. Left out: the RCU and hlist variants.
//!
//! A `list_head` is a pair of links (`next`, `prev`), each naming the node it points to, so an
//! entry's place on a chain is a link exactly as in the kernel. Reading or writing a node goes
//! through [`Memory`], which finds the node in the entry or table it belongs to and reports a
//! use after free when that memory is gone; following a poisoned link is reported as the oops
//! the kernel would take, never skipped.

use sim_core::mm::ObjHandle;
use sim_core::Violation;

use crate::cache::MbCache;
use crate::entry::Entry;

/// `struct mb_cache *`.
pub(crate) type CacheHandle = ObjHandle<MbCache>;

/// `struct mb_cache_entry *`: the entry's cache and its slot in that cache's slab.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryRef {
    pub(crate) cache: CacheHandle,
    pub(crate) entry: ObjHandle<Entry>,
}

/// A list head that is not inside an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum HeadId {
    /// `mb_cache_lru_list`.
    Lru,
    /// `cache->c_block_hash[bucket]`.
    Block(CacheHandle, u32),
    /// `cache->c_indexes_hash[index][bucket]`.
    Index(CacheHandle, u32, u32),
    /// A `LIST_HEAD(free_list)` on some function's stack.
    Local(u64),
}

/// The address of one `struct list_head`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Node {
    /// A head outside entries.
    Head(HeadId),
    /// `&ce->e_lru_list`.
    Lru(EntryRef),
    /// `&ce->e_block_list`.
    Block(EntryRef),
    /// `&ce->e_indexes[n].o_list`.
    Index(EntryRef, u32),
}

/// The value of a `next` or `prev` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Link {
    /// A pointer to a list head.
    To(Node),
    /// `LIST_POISON1`, written into `next` by `list_del`.
    Poison1,
    /// `LIST_POISON2`, written into `prev` by `list_del`.
    Poison2,
    /// Memory nobody initialised (a fresh slab object before `INIT_LIST_HEAD`).
    Uninit,
}

/// `struct list_head`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ListHead {
    pub(crate) next: Link,
    pub(crate) prev: Link,
}

impl ListHead {
    /// `INIT_LIST_HEAD(node)`: both links point to the node itself.
    pub(crate) fn init(node: Node) -> ListHead {
        ListHead { next: Link::To(node), prev: Link::To(node) }
    }

    pub(crate) const UNINIT: ListHead = ListHead { next: Link::Uninit, prev: Link::Uninit };
}

/// An oops (or another memory-safety finding) that has already been reported to the `Sim`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Oops(pub Violation);

/// Where list heads live; implemented by the registry over entries, tables and its own heads.
pub(crate) trait Memory {
    /// Reads the head at `node`; freed memory is a reported use after free.
    fn read(&mut self, node: Node) -> Result<ListHead, Oops>;
    /// Writes the head at `node`.
    fn write(&mut self, node: Node, head: ListHead) -> Result<(), Oops>;
    /// Reports a dereference of a poisoned or uninitialised link `link` found at `at`.
    fn bad_link(&mut self, at: Node, link: Link, what: &str) -> Oops;
}

/// Dereferences `link`, found in the `next` or `prev` field of `at`.
pub(crate) fn follow(memory: &mut dyn Memory, at: Node, link: Link, what: &str) -> Result<Node, Oops> {
    match link {
        Link::To(node) => Ok(node),
        bad => Err(memory.bad_link(at, bad, what)),
    }
}

/// `list_empty(head)`.
pub(crate) fn list_empty(memory: &mut dyn Memory, head: Node) -> Result<bool, Oops> {
    Ok(memory.read(head)?.next == Link::To(head))
}

/// `head->next`, dereferenced.
pub(crate) fn next(memory: &mut dyn Memory, node: Node, what: &str) -> Result<Node, Oops> {
    let head = memory.read(node)?;
    follow(memory, node, head.next, what)
}

/// `head->prev`, dereferenced.
pub(crate) fn prev(memory: &mut dyn Memory, node: Node, what: &str) -> Result<Node, Oops> {
    let head = memory.read(node)?;
    follow(memory, node, head.prev, what)
}

/// `__list_add(new, prev, next)`.
fn link_between(memory: &mut dyn Memory, new: Node, before: Node, after: Node) -> Result<(), Oops> {
    let mut after_head = memory.read(after)?;
    after_head.prev = Link::To(new);
    memory.write(after, after_head)?;
    memory.write(new, ListHead { next: Link::To(after), prev: Link::To(before) })?;
    let mut before_head = memory.read(before)?;
    before_head.next = Link::To(new);
    memory.write(before, before_head)
}

/// `list_add(new, head)`: after `head`.
pub(crate) fn list_add(memory: &mut dyn Memory, new: Node, head: Node) -> Result<(), Oops> {
    let after = next(memory, head, "list_add")?;
    link_between(memory, new, head, after)
}

/// `list_add_tail(new, head)`: before `head`.
pub(crate) fn list_add_tail(memory: &mut dyn Memory, new: Node, head: Node) -> Result<(), Oops> {
    let before = prev(memory, head, "list_add_tail")?;
    link_between(memory, new, before, head)
}

/// `__list_del(entry->prev, entry->next)`.
fn unlink(memory: &mut dyn Memory, entry: Node, what: &str) -> Result<(), Oops> {
    let head = memory.read(entry)?;
    let after = follow(memory, entry, head.next, what)?;
    let before = follow(memory, entry, head.prev, what)?;
    let mut after_head = memory.read(after)?;
    after_head.prev = Link::To(before);
    memory.write(after, after_head)?;
    let mut before_head = memory.read(before)?;
    before_head.next = Link::To(after);
    memory.write(before, before_head)
}

/// `list_del(entry)`: unlinks and poisons the entry's links.
pub(crate) fn list_del(memory: &mut dyn Memory, entry: Node) -> Result<(), Oops> {
    unlink(memory, entry, "list_del")?;
    memory.write(entry, ListHead { next: Link::Poison1, prev: Link::Poison2 })
}

/// `list_del_init(entry)`: unlinks and leaves the entry an empty list.
pub(crate) fn list_del_init(memory: &mut dyn Memory, entry: Node) -> Result<(), Oops> {
    unlink(memory, entry, "list_del_init")?;
    memory.write(entry, ListHead::init(entry))
}

/// `list_move_tail(entry, head)`.
pub(crate) fn list_move_tail(memory: &mut dyn Memory, entry: Node, head: Node) -> Result<(), Oops> {
    unlink(memory, entry, "list_move_tail")?;
    list_add_tail(memory, entry, head)
}

/// The nodes of the list at `head`, in `next` order (`list_for_each`); at most `limit` of them,
/// a guard against a corrupted cycle.
pub(crate) fn walk(memory: &mut dyn Memory, head: Node, limit: usize) -> Result<Vec<Node>, Oops> {
    let mut nodes = Vec::new();
    let mut at = next(memory, head, "list_for_each")?;
    while at != head {
        if nodes.len() >= limit {
            break;
        }
        nodes.push(at);
        at = next(memory, at, "list_for_each")?;
    }
    Ok(nodes)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// Plain memory: every head in a map; a missing head is freed memory.
    struct Plain {
        heads: BTreeMap<u64, ListHead>,
        bad: Vec<String>,
    }

    fn node(id: u64) -> Node {
        Node::Head(HeadId::Local(id))
    }

    fn id(node: Node) -> u64 {
        match node {
            Node::Head(HeadId::Local(id)) => id,
            other => panic!("{other:?}"),
        }
    }

    impl Memory for Plain {
        fn read(&mut self, at: Node) -> Result<ListHead, Oops> {
            self.heads
                .get(&id(at))
                .copied()
                .ok_or_else(|| Oops(Violation::new("use-after-free", format!("{at:?}"))))
        }
        fn write(&mut self, at: Node, head: ListHead) -> Result<(), Oops> {
            self.heads.insert(id(at), head);
            Ok(())
        }
        fn bad_link(&mut self, at: Node, link: Link, what: &str) -> Oops {
            self.bad.push(format!("{what}: {link:?} in {at:?}"));
            Oops(Violation::new("list-poison", what))
        }
    }

    fn list_of(memory: &mut Plain, members: &[u64]) {
        memory.heads.insert(0, ListHead::init(node(0)));
        for member in members {
            list_add_tail(memory, node(*member), node(0)).expect("add");
        }
    }

    #[test]
    fn add_tail_keeps_order_and_add_puts_first() {
        let mut memory = Plain { heads: BTreeMap::new(), bad: Vec::new() };
        list_of(&mut memory, &[1, 2, 3]);
        list_add(&mut memory, node(4), node(0)).expect("add");
        let order: Vec<u64> = walk(&mut memory, node(0), 100).expect("walk").into_iter().map(id).collect();
        assert_eq!(order, [4, 1, 2, 3]);
    }

    #[test]
    fn list_del_poisons_and_following_the_poison_is_reported_not_skipped() {
        let mut memory = Plain { heads: BTreeMap::new(), bad: Vec::new() };
        list_of(&mut memory, &[1, 2, 3]);
        list_del(&mut memory, node(2)).expect("del");
        let order: Vec<u64> = walk(&mut memory, node(0), 100).expect("walk").into_iter().map(id).collect();
        assert_eq!(order, [1, 3]);
        assert_eq!(memory.heads[&2], ListHead { next: Link::Poison1, prev: Link::Poison2 });
        assert!(next(&mut memory, node(2), "find_next").is_err());
        assert_eq!(memory.bad, ["find_next: Poison1 in Head(Local(2))"]);
    }

    #[test]
    fn list_del_init_leaves_an_empty_list_and_move_tail_moves() {
        let mut memory = Plain { heads: BTreeMap::new(), bad: Vec::new() };
        list_of(&mut memory, &[1, 2]);
        memory.heads.insert(9, ListHead::init(node(9)));
        list_move_tail(&mut memory, node(1), node(9)).expect("move");
        list_del_init(&mut memory, node(2)).expect("del_init");
        assert!(list_empty(&mut memory, node(0)).expect("empty"));
        assert!(list_empty(&mut memory, node(2)).expect("empty"));
        let moved: Vec<u64> = walk(&mut memory, node(9), 100).expect("walk").into_iter().map(id).collect();
        assert_eq!(moved, [1]);
    }
}

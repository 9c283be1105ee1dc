//! include/linux/list.h: the intrusive doubly linked `list_head` with `list_add`,
//! `list_add_tail`, `list_del` (which writes `LIST_POISON1`/`LIST_POISON2` into the removed
//! entry), `list_del_init`, `list_move`, `list_move_tail`, `list_empty`, and the
//! `list_for_each_entry` / `list_for_each_entry_safe` walks as cursors. Left out: the RCU and
//! hlist variants, `list_splice`, and CONFIG_DEBUG_LIST's sanity checks on `__list_add` (a
//! corrupted neighbour is found when it is followed, as in a kernel without that option).
//!
//! A [`ListHead`] is a pair of [`Link`]s, each naming the node it points to, so a model keeps
//! an entry's place on a chain as a link exactly as C does, and can write what C can: a
//! `list_del` without re-initialisation followed by a reuse of the entry, or a plain cursor
//! whose body deletes the entry it stands on. Where heads live is the model's business: it
//! implements [`ListMemory`] over its own objects (mbcache's entries and hash tables, the page
//! allocator's `struct page`s), or uses [`ListArena`], a table of generation-checked nodes.
//! Following a poisoned link, or a link into freed memory, is a reported [`Violation`] (kinds
//! `list-poison` and `use-after-free`) returned as an [`Oops`]: never undefined behaviour and
//! never a Rust panic.

use std::fmt::Debug;

use crate::cx::Cx;
use crate::sim::Violation;

/// The value of a `next` or `prev` field, pointing at nodes addressed by `N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link<N> {
    /// A pointer to a list head.
    To(N),
    /// `LIST_POISON1` (0x00100100 + POISON_POINTER_DELTA), written into `next` by `list_del`.
    Poison1,
    /// `LIST_POISON2` (0x00200200 + POISON_POINTER_DELTA), written into `prev` by `list_del`.
    Poison2,
    /// Memory nobody initialised (a fresh slab object before `INIT_LIST_HEAD`).
    Uninit,
}

/// `struct list_head`: public fields, because C code writes them directly and a model must be
/// able to write the same mistakes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListHead<N> {
    /// `next`.
    pub next: Link<N>,
    /// `prev`.
    pub prev: Link<N>,
}

impl<N: Copy> ListHead<N> {
    /// `INIT_LIST_HEAD(node)` / `LIST_HEAD(name)`: both links point to the node itself.
    pub fn init(node: N) -> ListHead<N> {
        ListHead { next: Link::To(node), prev: Link::To(node) }
    }

    /// What `list_del` leaves behind.
    pub const POISONED: ListHead<N> = ListHead { next: Link::Poison1, prev: Link::Poison2 };

    /// A head in memory nobody initialised.
    pub const UNINIT: ListHead<N> = ListHead { next: Link::Uninit, prev: Link::Uninit };
}

/// An oops (or another memory-safety finding) that has already been reported to the `Sim`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Oops(pub Violation);

/// Where list heads live. A model implements it over its own objects, so a head sits in the
/// object it belongs to and freeing the object frees the head.
pub trait ListMemory {
    /// The address of one `struct list_head`.
    type Node: Copy + Eq + Debug;
    /// Reads the head at `node`; freed memory is a reported use after free.
    fn read(&mut self, node: Self::Node) -> Result<ListHead<Self::Node>, Oops>;
    /// Writes the head at `node`; freed memory is a reported use after free.
    fn write(&mut self, node: Self::Node, head: ListHead<Self::Node>) -> Result<(), Oops>;
    /// Reports a dereference of the poisoned or uninitialised `link` found at `at` by `what`.
    fn bad_link(&mut self, at: Self::Node, link: Link<Self::Node>, what: &str) -> Oops;
    /// Writes `link` into the `next` field of the head at `node` (the other field kept). The
    /// list steps write single fields through it and [`ListMemory::set_prev`]; a model whose
    /// heads sit in place overrides both to write the field with one look-up instead of a read
    /// and a write of the whole head.
    fn set_next(&mut self, node: Self::Node, link: Link<Self::Node>) -> Result<(), Oops> {
        let mut head = self.read(node)?;
        head.next = link;
        self.write(node, head)
    }
    /// Writes `link` into the `prev` field of the head at `node` (the other field kept).
    fn set_prev(&mut self, node: Self::Node, link: Link<Self::Node>) -> Result<(), Oops> {
        let mut head = self.read(node)?;
        head.prev = link;
        self.write(node, head)
    }
}

/// Dereferences `link`, found in the `next` or `prev` field of `at`. A bad link's report names
/// `what` and the model's source line that made the list call (every list function is
/// `#[track_caller]`). Inlined: a good link is one compare on every step of a walk (mbcache's
/// chain and LRU walks), and the report is a cold call of its own ([`report_bad_link`]).
#[track_caller]
#[inline]
pub fn follow<M: ListMemory + ?Sized>(
    memory: &mut M,
    at: M::Node,
    link: Link<M::Node>,
    what: &str,
) -> Result<M::Node, Oops> {
    match link {
        Link::To(node) => Ok(node),
        bad => Err(report_bad_link(memory, at, bad, what)),
    }
}

/// [`follow`]'s report of a bad link, naming the model's source line that made the list call
/// (`#[track_caller]` through `follow`).
#[track_caller]
#[cold]
#[inline(never)]
fn report_bad_link<M: ListMemory + ?Sized>(
    memory: &mut M,
    at: M::Node,
    bad: Link<M::Node>,
    what: &str,
) -> Oops {
    let site = std::panic::Location::caller();
    memory.bad_link(at, bad, &format!("{what} at {}:{}", site.file(), site.line()))
}

/// Mirrors list_empty(): `head->next == head`. A poisoned entry is not empty, which is why a
/// `list_del` without `INIT_LIST_HEAD` followed by a `list_empty` test goes wrong.
#[track_caller]
pub fn list_empty<M: ListMemory + ?Sized>(memory: &mut M, head: M::Node) -> Result<bool, Oops> {
    Ok(memory.read(head)?.next == Link::To(head))
}

/// `node->next`, dereferenced.
#[track_caller]
pub fn next<M: ListMemory + ?Sized>(memory: &mut M, node: M::Node, what: &str) -> Result<M::Node, Oops> {
    let head = memory.read(node)?;
    follow(memory, node, head.next, what)
}

/// `node->prev`, dereferenced.
#[track_caller]
pub fn prev<M: ListMemory + ?Sized>(memory: &mut M, node: M::Node, what: &str) -> Result<M::Node, Oops> {
    let head = memory.read(node)?;
    follow(memory, node, head.prev, what)
}

/// Mirrors __list_add(new, prev, next).
#[track_caller]
fn link_between<M: ListMemory + ?Sized>(
    memory: &mut M,
    new: M::Node,
    before: M::Node,
    after: M::Node,
) -> Result<(), Oops> {
    memory.set_prev(after, Link::To(new))?;
    memory.write(new, ListHead { next: Link::To(after), prev: Link::To(before) })?;
    memory.set_next(before, Link::To(new))
}

/// Mirrors list_add(new, head): `new` right after `head` (a stack).
#[track_caller]
pub fn list_add<M: ListMemory + ?Sized>(memory: &mut M, new: M::Node, head: M::Node) -> Result<(), Oops> {
    let after = next(memory, head, "list_add")?;
    link_between(memory, new, head, after)
}

/// Mirrors list_add_tail(new, head): `new` right before `head` (a queue).
#[track_caller]
pub fn list_add_tail<M: ListMemory + ?Sized>(
    memory: &mut M,
    new: M::Node,
    head: M::Node,
) -> Result<(), Oops> {
    let before = prev(memory, head, "list_add_tail")?;
    link_between(memory, new, before, head)
}

/// Mirrors __list_del_entry(): the neighbours point at each other; `entry` is left as it was.
#[track_caller]
fn unlink<M: ListMemory + ?Sized>(memory: &mut M, entry: M::Node, what: &str) -> Result<(), Oops> {
    let head = memory.read(entry)?;
    let after = follow(memory, entry, head.next, what)?;
    let before = follow(memory, entry, head.prev, what)?;
    memory.set_prev(after, Link::To(before))?;
    memory.set_next(before, Link::To(after))
}

/// Mirrors list_del(entry): unlinks and poisons the entry's links, so a later use of them is
/// an oops rather than a silent walk through stale memory.
#[track_caller]
pub fn list_del<M: ListMemory + ?Sized>(memory: &mut M, entry: M::Node) -> Result<(), Oops> {
    unlink(memory, entry, "list_del")?;
    memory.write(entry, ListHead::POISONED)
}

/// Mirrors list_del_init(entry): unlinks and leaves the entry an empty list.
#[track_caller]
pub fn list_del_init<M: ListMemory + ?Sized>(memory: &mut M, entry: M::Node) -> Result<(), Oops> {
    unlink(memory, entry, "list_del_init")?;
    memory.write(entry, ListHead::init(entry))
}

/// Mirrors list_move(entry, head): off its list, onto `head`'s front.
#[track_caller]
pub fn list_move<M: ListMemory + ?Sized>(memory: &mut M, entry: M::Node, head: M::Node) -> Result<(), Oops> {
    unlink(memory, entry, "list_move")?;
    list_add(memory, entry, head)
}

/// Mirrors list_move_tail(entry, head): off its list, onto `head`'s tail.
#[track_caller]
pub fn list_move_tail<M: ListMemory + ?Sized>(
    memory: &mut M,
    entry: M::Node,
    head: M::Node,
) -> Result<(), Oops> {
    unlink(memory, entry, "list_move_tail")?;
    list_add_tail(memory, entry, head)
}

/// The nodes of the list at `head`, in `next` order (`list_for_each`); at most `limit` of them,
/// a guard against a corrupted cycle.
#[track_caller]
pub fn walk<M: ListMemory + ?Sized>(
    memory: &mut M,
    head: M::Node,
    limit: usize,
) -> Result<Vec<M::Node>, Oops> {
    let mut nodes = Vec::new();
    walk_into(memory, head, limit, &mut nodes)?;
    Ok(nodes)
}

/// [`walk`] into `nodes` (emptied first, its allocation kept), for a checker that walks many
/// lists without allocating for each.
#[track_caller]
pub fn walk_into<M: ListMemory + ?Sized>(
    memory: &mut M,
    head: M::Node,
    limit: usize,
    nodes: &mut Vec<M::Node>,
) -> Result<(), Oops> {
    nodes.clear();
    let mut at = next(memory, head, "list_for_each")?;
    while at != head {
        if nodes.len() >= limit {
            break;
        }
        nodes.push(at);
        at = next(memory, at, "list_for_each")?;
    }
    Ok(())
}

/// `list_for_each_entry(pos, head, member)` as a cursor: each step reads `pos->next` *after*
/// the loop body ran, so a body that deletes `pos` makes the next step follow `LIST_POISON1`,
/// which is reported, as the kernel oopses there.
#[derive(Clone, Copy, Debug)]
pub struct Cursor<N> {
    head: N,
    pos: Option<N>,
}

impl<N: Copy + Eq + Debug> Cursor<N> {
    /// A walk of the list at `head`, not yet started.
    pub fn new(head: N) -> Cursor<N> {
        Cursor { head, pos: None }
    }

    /// The next node, or `None` back at the head.
    #[track_caller]
    pub fn next<M: ListMemory<Node = N> + ?Sized>(&mut self, memory: &mut M) -> Result<Option<N>, Oops> {
        let from = self.pos.unwrap_or(self.head);
        let at = next(memory, from, "list_for_each_entry")?;
        self.pos = Some(at);
        Ok((at != self.head).then_some(at))
    }
}

/// `list_for_each_entry_safe(pos, n, head, member)` as a cursor: `n = pos->next` is read
/// *before* the body runs, so the body may delete (or move) `pos`.
#[derive(Clone, Copy, Debug)]
pub struct SafeCursor<N> {
    head: N,
    upcoming: Option<N>,
}

impl<N: Copy + Eq + Debug> SafeCursor<N> {
    /// A walk of the list at `head`, not yet started.
    pub fn new(head: N) -> SafeCursor<N> {
        SafeCursor { head, upcoming: None }
    }

    /// The next node, or `None` back at the head.
    #[track_caller]
    pub fn next<M: ListMemory<Node = N> + ?Sized>(&mut self, memory: &mut M) -> Result<Option<N>, Oops> {
        let at = match self.upcoming {
            Some(at) => at,
            None => next(memory, self.head, "list_for_each_entry_safe")?,
        };
        if at == self.head {
            self.upcoming = Some(at);
            return Ok(None);
        }
        self.upcoming = Some(next(memory, at, "list_for_each_entry_safe")?);
        Ok(Some(at))
    }
}

// --- a ready-made home for heads ---------------------------------------------------------------

/// The address of a node in a [`ListArena`]: its slot and the generation it was allocated in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeRef {
    index: u32,
    generation: u32,
}

impl NodeRef {
    /// The slot index (reused after the node is freed).
    pub fn index(self) -> u32 {
        self.index
    }
}

#[derive(Clone, Debug)]
struct ArenaSlot {
    generation: u32,
    head: Option<ListHead<NodeRef>>,
}

/// A table of list heads with generation-checked addresses, for models whose entries have no
/// other home (and for tests): freeing a node bumps its slot's generation, so a link that still
/// names it is a use after free when followed, even after the slot is reused. Plain data: a
/// model keeps it under the lock the kernel's list is guarded by.
#[derive(Clone, Debug)]
pub struct ListArena {
    name: &'static str,
    slots: Vec<ArenaSlot>,
    free: Vec<u32>,
}

impl ListArena {
    /// An empty table; `name` names it in reports (`"b_dev_info->pages"`).
    pub fn new(name: &'static str) -> ListArena {
        ListArena { name, slots: Vec::new(), free: Vec::new() }
    }

    /// A new node holding `head` (use [`ListHead::UNINIT`] for `kmalloc`ed memory, or
    /// [`ListArena::alloc_head`] for an initialised head).
    pub fn alloc(&mut self, head: ListHead<NodeRef>) -> NodeRef {
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.slots.push(ArenaSlot { generation: 0, head: None });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.head = Some(head);
        NodeRef { index, generation: slot.generation }
    }

    /// `LIST_HEAD(name)`: a new node that is an empty list.
    pub fn alloc_head(&mut self) -> NodeRef {
        let node = self.alloc(ListHead::UNINIT);
        self.slots[node.index as usize].head = Some(ListHead::init(node));
        node
    }

    /// Frees `node` (the `kfree` of the object it sits in); `false` when it was not live.
    pub fn free(&mut self, node: NodeRef) -> bool {
        match self.slots.get_mut(node.index as usize) {
            Some(slot) if slot.generation == node.generation && slot.head.is_some() => {
                slot.head = None;
                slot.generation = slot.generation.wrapping_add(1);
                self.free.push(node.index);
                true
            }
            _ => false,
        }
    }

    /// Whether `node` is live.
    pub fn is_live(&self, node: NodeRef) -> bool {
        self.get(node).is_some()
    }

    fn get(&self, node: NodeRef) -> Option<ListHead<NodeRef>> {
        self.slots.get(node.index as usize).filter(|slot| slot.generation == node.generation)?.head
    }

    /// The table as list memory for `cx`, which findings are reported from.
    pub fn mem<'a>(&'a mut self, cx: &'a Cx) -> ArenaMem<'a> {
        ArenaMem { arena: self, cx }
    }
}

/// A [`ListArena`] seen by one context: the [`ListMemory`] the list functions work on.
#[derive(Debug)]
pub struct ArenaMem<'a> {
    arena: &'a mut ListArena,
    cx: &'a Cx,
}

impl ArenaMem<'_> {
    /// Runs `f` on the live head at `node` in place (one look-up for a whole head or a single
    /// field, where the trait's default field writes read and then write), or reports the use
    /// after free.
    fn edit(&mut self, node: NodeRef, f: impl FnOnce(&mut ListHead<NodeRef>)) -> Result<(), Oops> {
        match self.arena.slots.get_mut(node.index as usize) {
            Some(ArenaSlot { generation, head: Some(head) }) if *generation == node.generation => {
                f(head);
                Ok(())
            }
            _ => Err(self.freed(node)),
        }
    }

    fn freed(&mut self, node: NodeRef) -> Oops {
        let violation = Violation::new(
            "use-after-free",
            format!("list {}: node {node:?} was freed (its slot is now generation {})", self.arena.name, {
                self.arena.slots.get(node.index as usize).map_or(0, |slot| slot.generation)
            }),
        );
        self.cx.sim().report(Some(self.cx), violation.clone());
        Oops(violation)
    }
}

impl ListMemory for ArenaMem<'_> {
    type Node = NodeRef;

    fn read(&mut self, node: NodeRef) -> Result<ListHead<NodeRef>, Oops> {
        match self.arena.get(node) {
            Some(head) => Ok(head),
            None => Err(self.freed(node)),
        }
    }

    fn write(&mut self, node: NodeRef, head: ListHead<NodeRef>) -> Result<(), Oops> {
        self.edit(node, |kept| *kept = head)
    }

    fn set_next(&mut self, node: NodeRef, link: Link<NodeRef>) -> Result<(), Oops> {
        self.edit(node, |kept| kept.next = link)
    }

    fn set_prev(&mut self, node: NodeRef, link: Link<NodeRef>) -> Result<(), Oops> {
        self.edit(node, |kept| kept.prev = link)
    }

    fn bad_link(&mut self, at: NodeRef, link: Link<NodeRef>, what: &str) -> Oops {
        let violation = poisoned_link(self.arena.name, at, link, what);
        self.cx.sim().report(Some(self.cx), violation.clone());
        Oops(violation)
    }
}

/// The report for following a bad link, worded as the oops a kernel developer would see.
pub fn poisoned_link<N: Debug>(list: &str, at: N, link: Link<N>, what: &str) -> Violation {
    let address = match link {
        Link::Poison1 => "LIST_POISON1 (dead000000000100)",
        Link::Poison2 => "LIST_POISON2 (dead000000000200)",
        Link::Uninit => "an uninitialised pointer",
        Link::To(_) => "a valid pointer",
    };
    Violation::new(
        "list-poison",
        format!(
            "{what}: BUG: unable to handle kernel paging request: followed {address} found in {at:?} \
             on list {list}: the entry was list_del'ed (or never initialised) and then used as if \
             it were still linked"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lockdep::ReportMode;
    use crate::sim::{Sim, SimConfig};

    fn sim() -> Sim {
        Sim::new(SimConfig::new(1).lockdep(ReportMode::Collect))
    }

    /// A head and `count` entries added at its tail.
    fn list_of(arena: &mut ListArena, cx: &Cx, count: usize) -> (NodeRef, Vec<NodeRef>) {
        let head = arena.alloc_head();
        let nodes: Vec<NodeRef> = (0..count).map(|_| arena.alloc(ListHead::UNINIT)).collect();
        for node in &nodes {
            list_add_tail(&mut arena.mem(cx), *node, head).expect("add");
        }
        (head, nodes)
    }

    #[test]
    fn add_tail_keeps_order_and_add_puts_first() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let mut arena = ListArena::new("test");
        let (head, nodes) = list_of(&mut arena, &cx, 3);
        let first = arena.alloc(ListHead::UNINIT);
        list_add(&mut arena.mem(&cx), first, head).expect("add");
        let order = walk(&mut arena.mem(&cx), head, 100).expect("walk");
        assert_eq!(order, [first, nodes[0], nodes[1], nodes[2]]);
        assert!(sim.violations().is_empty());
    }

    #[test]
    fn list_del_poisons_and_following_the_poison_is_reported_not_skipped() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let mut arena = ListArena::new("test");
        let (head, nodes) = list_of(&mut arena, &cx, 3);
        list_del(&mut arena.mem(&cx), nodes[1]).expect("del");
        assert_eq!(walk(&mut arena.mem(&cx), head, 100).expect("walk"), [nodes[0], nodes[2]]);
        assert!(!list_empty(&mut arena.mem(&cx), nodes[1]).expect("read"), "a poisoned entry is not empty");
        let again = list_del(&mut arena.mem(&cx), nodes[1]);
        assert!(again.is_err(), "a second list_del follows LIST_POISON1");
        let violations = sim.violations();
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert_eq!(violations[0].kind, "list-poison");
        assert!(violations[0].message.contains("LIST_POISON1"), "{}", violations[0].message);
    }

    #[test]
    fn del_init_move_and_move_tail_keep_both_lists_well_formed() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let mut arena = ListArena::new("test");
        let (head, nodes) = list_of(&mut arena, &cx, 3);
        let other = arena.alloc_head();
        list_move_tail(&mut arena.mem(&cx), nodes[0], other).expect("move_tail");
        list_move(&mut arena.mem(&cx), nodes[2], other).expect("move");
        list_del_init(&mut arena.mem(&cx), nodes[1]).expect("del_init");
        assert!(list_empty(&mut arena.mem(&cx), head).expect("empty"));
        assert!(list_empty(&mut arena.mem(&cx), nodes[1]).expect("empty"));
        assert_eq!(walk(&mut arena.mem(&cx), other, 100).expect("walk"), [nodes[2], nodes[0]]);
        let backwards = prev(&mut arena.mem(&cx), other, "tail").expect("prev");
        assert_eq!(backwards, nodes[0]);
        list_del_init(&mut arena.mem(&cx), nodes[1]).expect("del_init of an empty entry is harmless");
        assert!(sim.violations().is_empty());
    }

    #[test]
    fn the_safe_cursor_survives_deleting_each_entry() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let mut arena = ListArena::new("test");
        let (head, nodes) = list_of(&mut arena, &cx, 3);
        let mut cursor = SafeCursor::new(head);
        let mut seen = Vec::new();
        while let Some(at) = cursor.next(&mut arena.mem(&cx)).expect("safe walk") {
            list_del(&mut arena.mem(&cx), at).expect("del");
            seen.push(at);
        }
        assert_eq!(seen, nodes);
        assert!(list_empty(&mut arena.mem(&cx), head).expect("empty"));
        assert!(sim.violations().is_empty());
    }

    #[test]
    fn the_plain_cursor_deleting_its_entry_follows_the_poison_and_is_reported() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let mut arena = ListArena::new("test");
        let (head, nodes) = list_of(&mut arena, &cx, 3);
        let mut cursor = Cursor::new(head);
        let first = cursor.next(&mut arena.mem(&cx)).expect("first").expect("an entry");
        assert_eq!(first, nodes[0]);
        list_del(&mut arena.mem(&cx), first).expect("del");
        assert!(cursor.next(&mut arena.mem(&cx)).is_err());
        assert_eq!(sim.violations()[0].kind, "list-poison");
    }

    #[test]
    fn following_a_link_into_a_freed_and_reused_node_is_a_use_after_free() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let mut arena = ListArena::new("test");
        let (head, nodes) = list_of(&mut arena, &cx, 2);
        // kfree without list_del: the head still links to the freed node.
        assert!(arena.free(nodes[0]));
        assert!(!arena.free(nodes[0]), "a second free finds nothing live");
        let reused = arena.alloc(ListHead::UNINIT);
        assert_eq!(reused.index(), nodes[0].index(), "the slot is reused");
        assert!(walk(&mut arena.mem(&cx), head, 100).is_err());
        let violations = sim.violations();
        assert_eq!(violations[0].kind, "use-after-free", "{violations:?}");
    }

    #[test]
    fn an_uninitialised_head_is_reported_when_followed() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let mut arena = ListArena::new("test");
        let never_initialised = arena.alloc(ListHead::UNINIT);
        assert!(walk(&mut arena.mem(&cx), never_initialised, 100).is_err());
        assert!(sim.violations()[0].message.contains("uninitialised"));
    }
}

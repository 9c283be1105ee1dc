//! include/linux/list.h's `list_add`, `list_add_tail`, `list_del`, `list_del_init` and
//! `list_move_tail` at mbcache's addresses, each writing only the `next` or `prev` field a step
//! of the C changes, through one look-up of the head that holds it ([`Mem::head_mut`]).
//!
//! sim-core's [`sim_core::list`] does the same steps as a read and a write of the whole head per
//! step (its [`ListMemory`] moves heads, not fields), which on mbcache's hot paths (an entry off
//! the LRU on every get, onto its tail on every release) is two generation-checked look-ups per
//! step instead of one. The steps, their order, and what a bad link reports are the same: a
//! poisoned or uninitialised link is followed through [`list::follow`] with the same words, a
//! freed entry's head is a use after free reported by the arena.

use sim_core::list::{self, Link, ListMemory, Oops};

use crate::registry::{HeadId, ListHead, Mem, Node};

impl Mem<'_> {
    /// The head at `node`, in place, for a write: one look-up (a freed entry or cache is a
    /// reported use after free), and the write logged as [`ListMemory::write`] logs it.
    #[inline]
    pub(crate) fn head_mut(&mut self, node: Node) -> Result<&mut ListHead, Oops> {
        Ok(match node {
            Node::Head(HeadId::Lru) => &mut self.global.lru,
            Node::Head(HeadId::Local(id)) => self.global.locals.entry(id).or_insert(ListHead::UNINIT),
            Node::Head(HeadId::Block(cache, bucket)) => {
                self.memory.touched.head(HeadId::Block(cache, bucket));
                &mut self.cache_mut(cache)?.block[bucket as usize]
            }
            Node::Head(HeadId::Index(cache, index, bucket)) => {
                self.memory.touched.head(HeadId::Index(cache, index, bucket));
                &mut self.cache_mut(cache)?.index[usize::from(index)][bucket as usize]
            }
            Node::Lru(entry) => &mut self.entry_mut(entry)?.lru,
            Node::Block(entry) => &mut self.entry_mut(entry)?.block_list,
            Node::Index(entry, index) => &mut self.entry_mut(entry)?.indexes[index as usize].list,
        })
    }
}

/// Mirrors `__list_add(new, prev, next)`: `next->prev`, then `new`, then `prev->next`.
#[track_caller]
fn link_between(mem: &mut Mem<'_>, new: Node, before: Node, after: Node) -> Result<(), Oops> {
    mem.head_mut(after)?.prev = Link::To(new);
    *mem.head_mut(new)? = ListHead { next: Link::To(after), prev: Link::To(before) };
    mem.head_mut(before)?.next = Link::To(new);
    Ok(())
}

/// Mirrors `list_add(new, head)`: `new` right after `head`.
#[track_caller]
pub(crate) fn list_add(mem: &mut Mem<'_>, new: Node, head: Node) -> Result<(), Oops> {
    let after = list::next(mem, head, "list_add")?;
    link_between(mem, new, head, after)
}

/// Mirrors `list_add_tail(new, head)`: `new` right before `head`.
#[track_caller]
pub(crate) fn list_add_tail(mem: &mut Mem<'_>, new: Node, head: Node) -> Result<(), Oops> {
    let before = list::prev(mem, head, "list_add_tail")?;
    link_between(mem, new, before, head)
}

/// Mirrors `__list_del_entry()`: `next->prev = prev`, then `prev->next = next`.
#[track_caller]
fn unlink(mem: &mut Mem<'_>, entry: Node, what: &str) -> Result<(), Oops> {
    let head = mem.read(entry)?;
    let after = list::follow(mem, entry, head.next, what)?;
    let before = list::follow(mem, entry, head.prev, what)?;
    mem.head_mut(after)?.prev = Link::To(before);
    mem.head_mut(before)?.next = Link::To(after);
    Ok(())
}

/// Mirrors `list_del(entry)`: unlinks and poisons the entry's links.
#[track_caller]
pub(crate) fn list_del(mem: &mut Mem<'_>, entry: Node) -> Result<(), Oops> {
    unlink(mem, entry, "list_del")?;
    *mem.head_mut(entry)? = ListHead::POISONED;
    Ok(())
}

/// Mirrors `list_del_init(entry)`: unlinks and leaves the entry an empty list.
#[track_caller]
pub(crate) fn list_del_init(mem: &mut Mem<'_>, entry: Node) -> Result<(), Oops> {
    unlink(mem, entry, "list_del_init")?;
    *mem.head_mut(entry)? = ListHead::init(entry);
    Ok(())
}

/// Mirrors `list_move_tail(entry, head)`: off its list, onto `head`'s tail.
#[track_caller]
pub(crate) fn list_move_tail(mem: &mut Mem<'_>, entry: Node, head: Node) -> Result<(), Oops> {
    unlink(mem, entry, "list_move_tail")?;
    list_add_tail(mem, entry, head)
}

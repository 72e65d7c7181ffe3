//! Doubly linked lists threaded through a side table by `u32` slot index — the lists zbud (unbuddied,
//! buddied, LRU) and zsmalloc (fullness groups) keep their pages on.
//!
//! A pool keeps one entry per page (or zspage) in a side table, a `Vec` indexed by slot. An entry carries
//! one [`Link`] per list it can be on; a [`List`] holds the head, the tail and the length. Links name
//! entries by slot, with [`NIL`] for "none", rather than by pointer or reference: the table is a `Vec`
//! that grows (and so moves), and the pages themselves are reachable only while mapped (`pagemem`), so
//! Linux's way of threading the lists through the pages would cost a mapping per step.
//!
//! How an entry's link is reached is the pool's business: a [`Chain`] names one link of an entry type, so
//! an entry with two links (zbud's class list and LRU) has two chains. The functions index the table
//! directly and panic on a slot outside it, like any slice index: callers pass only slots they own.
//!
//! ```text
//!   list: head 4, tail 1, len 3        table[4].link = (NIL, 7)  table[7].link = (4, 1)  table[1].link = (7, NIL)
//!   push_front(table, list, 2, c)      head 2: table[2].link = (NIL, 4), table[4].link.prev = 2; len 4
//!   unlink(table, list, 7, c)          table[4].link.next = 1, table[1].link.prev = 4, table[7].link = UNLINKED; len 3
//! ```

/// "No entry": the end of a list, in a [`Link`] or a [`List`].
pub const NIL: u32 = u32::MAX;

/// An entry's place on one list: the slots of its neighbours, [`NIL`] at either end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub prev: u32,
    pub next: u32,
}

/// The link of an entry on no list (and of a list's only entry).
pub const UNLINKED: Link = Link { prev: NIL, next: NIL };

/// A list's ends and length; [`push_front`] and [`unlink`] keep them in step with the links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct List {
    pub head: u32,
    pub tail: u32,
    pub len: u64,
}

/// The list with no entries.
pub const EMPTY: List = List { head: NIL, tail: NIL, len: 0 };

/// Which link of a `T` one list runs through.
pub trait Chain<T> {
    /// The entry's link on this list.
    fn link<'a>(&self, item: &'a T) -> &'a Link;
    /// The same, to change.
    fn link_mut<'a>(&self, item: &'a mut T) -> &'a mut Link;
}

/// Put entry `i`, which must be on no list of this chain, at the head of `list`.
pub fn push_front<T>(items: &mut [T], list: &mut List, i: u32, chain: impl Chain<T>) {
    let old = list.head;
    *chain.link_mut(&mut items[i as usize]) = Link { prev: NIL, next: old };
    if old == NIL {
        list.tail = i;
    } else {
        chain.link_mut(&mut items[old as usize]).prev = i;
    }
    list.head = i;
    list.len += 1;
}

/// Take entry `i`, which must be on `list`, off it; its link becomes [`UNLINKED`].
pub fn unlink<T>(items: &mut [T], list: &mut List, i: u32, chain: impl Chain<T>) {
    let Link { prev, next } = *chain.link(&items[i as usize]);
    if prev == NIL {
        list.head = next;
    } else {
        chain.link_mut(&mut items[prev as usize]).next = next;
    }
    if next == NIL {
        list.tail = prev;
    } else {
        chain.link_mut(&mut items[next as usize]).prev = prev;
    }
    *chain.link_mut(&mut items[i as usize]) = UNLINKED;
    list.len -= 1;
}

/// The entries of `list`, head first, with their slots. It follows the links as they are: it stops at
/// [`NIL`] or a slot outside `items`, and a corrupt list that runs in a circle never ends ([`check`] first).
pub fn iter<'a, T>(items: &'a [T], list: &List, chain: impl Chain<T> + 'a) -> impl Iterator<Item = (u32, &'a T)> {
    let mut i = list.head;
    core::iter::from_fn(move || {
        let item = items.get(i as usize)?;
        let here = i;
        i = chain.link(item).next;
        Some((here, item))
    })
}

/// Why [`check`] refused a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broken {
    /// The walk reached this slot and it is outside the table, not a member, or its `prev` does not name
    /// the entry before it — or the walk has gone past `items.len()` entries (a circle).
    At(u32),
    /// The links are sound but the list's `tail` or `len` does not match them.
    Ends,
}

/// Walk `list` from the head, checking every link against the one before and every entry with `member`;
/// the number of entries if all is well.
pub fn check<T>(items: &[T], list: &List, chain: impl Chain<T>, member: impl Fn(&T) -> bool) -> Result<u64, Broken> {
    let (mut n, mut prev, mut i) = (0u64, NIL, list.head);
    while i != NIL {
        let item = items.get(i as usize).ok_or(Broken::At(i))?;
        let link = chain.link(item);
        if link.prev != prev || !member(item) || n > items.len() as u64 {
            return Err(Broken::At(i));
        }
        (n, prev, i) = (n + 1, i, link.next);
    }
    if prev != list.tail || n != list.len {
        return Err(Broken::Ends);
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// An entry on two lists at once, like a zbud page: `links[0]` is chain `A`, `links[1]` chain `B`.
    #[derive(Debug, Clone, Copy)]
    struct Entry {
        links: [Link; 2],
    }

    #[derive(Debug, Clone, Copy)]
    struct Which(usize);

    const A: Which = Which(0);
    const B: Which = Which(1);

    impl Chain<Entry> for Which {
        fn link<'a>(&self, e: &'a Entry) -> &'a Link {
            &e.links[self.0]
        }
        fn link_mut<'a>(&self, e: &'a mut Entry) -> &'a mut Link {
            &mut e.links[self.0]
        }
    }

    fn table(n: usize) -> Vec<Entry> {
        alloc::vec![Entry { links: [UNLINKED; 2] }; n]
    }

    fn slots(items: &[Entry], list: &List, c: Which) -> Vec<u32> {
        assert_eq!(check(items, list, c, |_| true), Ok(list.len), "{list:?}");
        iter(items, list, c).map(|(i, _)| i).collect()
    }

    /// A list of `order` (head first) on chain A, built by pushing in reverse.
    fn built(items: &mut [Entry], order: &[u32]) -> List {
        let mut list = EMPTY;
        for &i in order.iter().rev() {
            push_front(items, &mut list, i, A);
        }
        list
    }

    #[test]
    fn empty_list() {
        let items = table(3);
        assert_eq!(EMPTY.len, 0);
        assert_eq!(slots(&items, &EMPTY, A), []);
        assert_eq!(check(&items, &List { len: 1, ..EMPTY }, A, |_| true), Err(Broken::Ends));
    }

    #[test]
    fn push_front_puts_new_entries_at_the_head() {
        let mut items = table(5);
        let mut list = EMPTY;
        push_front(&mut items, &mut list, 3, A);
        assert_eq!((list.head, list.tail, list.len), (3, 3, 1));
        assert_eq!(items[3].links[0], UNLINKED);
        push_front(&mut items, &mut list, 0, A);
        push_front(&mut items, &mut list, 4, A);
        assert_eq!(slots(&items, &list, A), [4, 0, 3]);
        assert_eq!((list.head, list.tail, list.len), (4, 3, 3));
        assert_eq!(items[0].links[0], Link { prev: 4, next: 3 });
        assert!(items.iter().all(|e| e.links[1] == UNLINKED), "chain B untouched");
    }

    #[test]
    fn unlink_at_head_middle_and_tail() {
        for (gone, left) in [(1, [2, 3]), (2, [1, 3]), (3, [1, 2])] {
            let mut items = table(4);
            let mut list = built(&mut items, &[1, 2, 3]);
            unlink(&mut items, &mut list, gone, A);
            assert_eq!(slots(&items, &list, A), left, "unlinking {gone}");
            assert_eq!((list.head, list.tail, list.len), (left[0], left[1], 2));
            assert_eq!(items[gone as usize].links[0], UNLINKED);
        }
    }

    #[test]
    fn unlink_the_only_entry_empties_the_list() {
        let mut items = table(2);
        let mut list = built(&mut items, &[1]);
        unlink(&mut items, &mut list, 1, A);
        assert_eq!(list, EMPTY);
        assert_eq!(items[1].links[0], UNLINKED);
    }

    #[test]
    fn one_entry_on_two_chains() {
        let mut items = table(3);
        let mut a = built(&mut items, &[0, 1, 2]);
        let mut b = EMPTY;
        for i in 0..3 {
            push_front(&mut items, &mut b, i, B);
        }
        unlink(&mut items, &mut a, 1, A);
        push_front(&mut items, &mut a, 1, A);
        assert_eq!(slots(&items, &a, A), [1, 0, 2]);
        assert_eq!(slots(&items, &b, B), [2, 1, 0]);
    }

    #[test]
    fn check_finds_broken_links() {
        let mut items = table(4);
        let list = built(&mut items, &[0, 1, 2]);
        assert_eq!(check(&items, &list, A, |_| true), Ok(3));
        assert_eq!(check(&items, &list, A, |e| e.links[0].next != 2), Err(Broken::At(1)), "not a member");
        assert_eq!(check(&items, &List { tail: 1, ..list }, A, |_| true), Err(Broken::Ends));
        assert_eq!(check(&items, &List { len: 2, ..list }, A, |_| true), Err(Broken::Ends));
        let mut bad = items.clone();
        bad[2].links[0].prev = 0;
        assert_eq!(check(&bad, &list, A, |_| true), Err(Broken::At(2)), "wrong prev");
        let mut bad = items.clone();
        bad[1].links[0].next = 9;
        assert_eq!(check(&bad, &list, A, |_| true), Err(Broken::At(9)), "outside the table");
        let mut circle = items;
        circle[2].links[0].next = 1;
        assert_eq!(check(&circle, &list, A, |_| true), Err(Broken::At(1)), "a circle");
    }
}

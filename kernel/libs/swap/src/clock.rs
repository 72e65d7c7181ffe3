//! Clock (second-chance) reclaim: which resident page to swap out next.
//!
//! The resident pages stand in a ring in the order they became resident; the clock hand is the front.
//! To pick a victim, look at the page under the hand: if the CPU set its accessed bit since the last
//! look, clear the bit and move the page to the back (a second chance); otherwise it is the victim.
//! After at most one full turn every bit is clear, so the search ends within two turns.
//!
//! Linux approximates LRU with two such lists (active and inactive) and `page_referenced`, which tests
//! and clears the same accessed bits through the reverse map; one ring is the textbook form.
//! The accessed bit lives in the page-table entry, so the kernel passes a closure that tests and clears
//! it (`paging::test_and_clear_accessed` there, a table in the tests).

use alloc::collections::VecDeque;

/// The resident pages of a region, by page number, in clock order.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    ring: VecDeque<u64>,
    /// Pages given a second chance (accessed bit found set and cleared).
    pub second_chances: u64,
    /// Victims chosen.
    pub victims: u64,
}

impl Clock {
    pub fn new() -> Self {
        Self::default()
    }

    /// Resident pages.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// A page became resident: it goes behind the hand (it will be looked at last).
    pub fn insert(&mut self, page: u64) {
        self.ring.push_back(page);
    }

    /// A page stopped being resident other than by [`Clock::victim`] (the region is torn down).
    /// Returns whether it was there. Linear: teardown is rare.
    pub fn remove(&mut self, page: u64) -> bool {
        match self.ring.iter().position(|&p| p == page) {
            Some(i) => {
                self.ring.remove(i);
                true
            }
            None => false,
        }
    }

    /// Choose and remove a victim. `test_and_clear_accessed(page)` returns the page's accessed bit and
    /// clears it. `None` only when no page is resident.
    pub fn victim(&mut self, mut test_and_clear_accessed: impl FnMut(u64) -> bool) -> Option<u64> {
        let turns = 2 * self.ring.len();
        for _ in 0..turns {
            let page = self.ring.pop_front()?;
            if test_and_clear_accessed(page) {
                self.second_chances += 1;
                self.ring.push_back(page);
            } else {
                self.victims += 1;
                return Some(page);
            }
        }
        // Only reachable if the closure keeps answering "accessed" for cleared bits; take the hand.
        self.victims += 1;
        self.ring.pop_front()
    }

    /// The resident pages in clock order (for the report and the tests).
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.ring.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn unaccessed_pages_go_in_fifo_order() {
        let mut c = Clock::new();
        for p in [3, 1, 2] {
            c.insert(p);
        }
        assert_eq!(c.victim(|_| false), Some(3));
        assert_eq!(c.victim(|_| false), Some(1));
        assert_eq!(c.victim(|_| false), Some(2));
        assert_eq!(c.victim(|_| false), None);
    }

    #[test]
    fn accessed_pages_get_a_second_chance() {
        let mut c = Clock::new();
        for p in 0..4 {
            c.insert(p);
        }
        let mut accessed: BTreeSet<u64> = [0, 1].into();
        let v = c.victim(|p| accessed.remove(&p));
        assert_eq!(v, Some(2));
        assert_eq!(c.second_chances, 2);
        assert_eq!(c.iter().collect::<Vec<_>>(), [3, 0, 1]);
        // Bits are now clear: the old pages go next, in their new order.
        assert_eq!(c.victim(|p| accessed.remove(&p)), Some(3));
        assert_eq!(c.victim(|p| accessed.remove(&p)), Some(0));
    }

    #[test]
    fn all_accessed_ends_after_one_turn() {
        let mut c = Clock::new();
        for p in 0..5 {
            c.insert(p);
        }
        let mut accessed: BTreeSet<u64> = (0..5).collect();
        assert_eq!(c.victim(|p| accessed.remove(&p)), Some(0));
        assert_eq!(c.second_chances, 5);
    }

    #[test]
    fn a_stuck_accessed_bit_cannot_hang_reclaim() {
        let mut c = Clock::new();
        c.insert(1);
        c.insert(2);
        assert_eq!(c.victim(|_| true), Some(1));
    }

    /// A stuck bit gives every page two full turns of second chances, then the hand's page goes.
    #[test]
    fn a_stuck_accessed_bit_costs_exactly_two_turns() {
        let mut c = Clock::new();
        for p in [1, 2, 3] {
            c.insert(p);
        }
        // Two turns of three pages: six second chances, and the ring is back where it began.
        assert_eq!(c.victim(|_| true), Some(1));
        assert_eq!(c.second_chances, 6);
        assert_eq!(c.iter().collect::<Vec<_>>(), [2, 3]);
    }

    /// `victims` counts every page chosen, by a clear bit or by the stuck-bit fallback.
    #[test]
    fn every_victim_is_counted() {
        let mut c = Clock::new();
        for p in 0..4 {
            c.insert(p);
        }
        assert_eq!(c.victim(|_| false), Some(0));
        assert_eq!(c.victim(|_| false), Some(1));
        assert_eq!(c.victims, 2);
        assert_eq!(c.victim(|_| true), Some(2));
        assert_eq!(c.victims, 3);
    }

    /// `is_empty` and `len` follow the pages going in and out.
    #[test]
    fn is_empty_follows_the_ring() {
        let mut c = Clock::new();
        assert!(c.is_empty());
        c.insert(9);
        assert!(!c.is_empty());
        assert_eq!(c.len(), 1);
        assert_eq!(c.victim(|_| false), Some(9));
        assert!(c.is_empty());
    }

    #[test]
    fn remove_takes_a_page_out_of_the_ring() {
        let mut c = Clock::new();
        for p in 0..3 {
            c.insert(p);
        }
        assert!(c.remove(1));
        assert!(!c.remove(1));
        assert_eq!(c.iter().collect::<Vec<_>>(), [0, 2]);
    }
}

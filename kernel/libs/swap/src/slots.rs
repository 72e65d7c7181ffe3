//! The swap-slot allocator of one swap device: one bit per 4 KiB slot, handed out next-fit.
//!
//! Linux keeps a byte per slot (`swap_map`, a use count: pages shared by several processes) and scans
//! from a per-device cursor (`scan_swap_map_slots`), so consecutive swap-outs land in consecutive slots
//! and the disk sees sequential writes. zkernel has one address space and no sharing, so one bit per
//! slot is enough; the next-fit cursor is the same idea. Slot 0 is a usable slot here (Linux reserves it
//! for the swap header; our disk has none).

use alloc::vec;
use alloc::vec::Vec;

/// Why a slot operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotError {
    /// Every slot is in use: the device is full (out of swap).
    Full { slots: u64 },
    /// The slot is not below the device's slot count.
    OutOfRange { offset: u64, slots: u64 },
    /// The slot was not in use (a double free, or a stale swap entry).
    NotAllocated(u64),
}

/// One device's slot bitmap.
#[derive(Debug, Clone)]
pub struct SwapMap {
    bits: Vec<u64>,
    slots: u64,
    used: u64,
    cursor: u64,
    /// Most slots ever in use at once.
    pub peak: u64,
}

impl SwapMap {
    /// A map of `slots` free slots.
    pub fn new(slots: u64) -> Self {
        Self { bits: vec![0; slots.div_ceil(64) as usize], slots, used: 0, cursor: 0, peak: 0 }
    }

    pub fn slots(&self) -> u64 {
        self.slots
    }

    pub fn used(&self) -> u64 {
        self.used
    }

    pub fn free_slots(&self) -> u64 {
        self.slots - self.used
    }

    pub fn is_used(&self, offset: u64) -> bool {
        offset < self.slots && self.bits[(offset / 64) as usize] & (1 << (offset % 64)) != 0
    }

    /// Take the first free slot at or after the cursor (wrapping).
    pub fn alloc(&mut self) -> Result<u64, SlotError> {
        if self.used == self.slots {
            return Err(SlotError::Full { slots: self.slots });
        }
        let words = self.bits.len() as u64;
        let start = self.cursor / 64;
        for i in 0..=words {
            let w = (start + i) % words;
            let mut free = !self.bits[w as usize];
            if i == 0 {
                // The first word only from the cursor on (the part before it is scanned last).
                free &= !0u64 << (self.cursor % 64);
            }
            if i == words {
                free = !self.bits[w as usize];
            }
            if free != 0 {
                let bit = u64::from(free.trailing_zeros());
                let offset = w * 64 + bit;
                if offset < self.slots {
                    self.bits[w as usize] |= 1 << bit;
                    self.used += 1;
                    self.peak = self.peak.max(self.used);
                    self.cursor = (offset + 1) % self.slots;
                    return Ok(offset);
                }
            }
        }
        // `used < slots` guarantees a free bit below `slots`.
        Err(SlotError::Full { slots: self.slots })
    }

    /// Give back a slot.
    pub fn free(&mut self, offset: u64) -> Result<(), SlotError> {
        if offset >= self.slots {
            return Err(SlotError::OutOfRange { offset, slots: self.slots });
        }
        let (w, bit) = ((offset / 64) as usize, offset % 64);
        if self.bits[w] & (1 << bit) == 0 {
            return Err(SlotError::NotAllocated(offset));
        }
        self.bits[w] &= !(1 << bit);
        self.used -= 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn next_fit_hands_out_consecutive_slots_and_wraps() {
        let mut m = SwapMap::new(130);
        for i in 0..130 {
            assert_eq!(m.alloc(), Ok(i));
        }
        assert_eq!(m.alloc(), Err(SlotError::Full { slots: 130 }));
        m.free(5).unwrap();
        m.free(100).unwrap();
        // The cursor wrapped to 0: the first free slot after it is 5, then 100.
        assert_eq!(m.alloc(), Ok(5));
        assert_eq!(m.alloc(), Ok(100));
        assert_eq!(m.used(), 130);
        assert_eq!(m.peak, 130);
    }

    /// Next-fit: a slot freed behind the cursor waits until the cursor wraps, even in the cursor's word.
    #[test]
    fn a_slot_freed_behind_the_cursor_waits_for_the_wrap() {
        let mut m = SwapMap::new(10);
        for i in 0..3 {
            assert_eq!(m.alloc(), Ok(i));
        }
        m.free(0).unwrap();
        m.free(2).unwrap();
        let order: Vec<u64> = (0..9).map(|_| m.alloc().unwrap()).collect();
        assert_eq!(order, [3, 4, 5, 6, 7, 8, 9, 0, 2]);
        assert_eq!(m.alloc(), Err(SlotError::Full { slots: 10 }));
    }

    /// `slots`, `used` and `free_slots` count exactly; a slot at or past the end is never in use.
    #[test]
    fn counts_are_exact_and_the_end_is_never_used() {
        for slots in [64, 130] {
            let mut m = SwapMap::new(slots);
            assert_eq!((m.slots(), m.used(), m.free_slots()), (slots, 0, slots));
            m.alloc().unwrap();
            m.alloc().unwrap();
            assert_eq!((m.slots(), m.used(), m.free_slots()), (slots, 2, slots - 2));
            assert!(m.is_used(1));
            assert!(!m.is_used(slots));
        }
    }

    #[test]
    fn bad_frees_are_refused_and_change_nothing() {
        let mut m = SwapMap::new(10);
        assert_eq!(m.free(3), Err(SlotError::NotAllocated(3)));
        assert_eq!(m.free(10), Err(SlotError::OutOfRange { offset: 10, slots: 10 }));
        let s = m.alloc().unwrap();
        m.free(s).unwrap();
        assert_eq!(m.free(s), Err(SlotError::NotAllocated(s)));
        assert_eq!(m.used(), 0);
    }

    #[test]
    fn an_empty_device_is_always_full() {
        let mut m = SwapMap::new(0);
        assert_eq!(m.alloc(), Err(SlotError::Full { slots: 0 }));
    }

    /// Random alloc/free against a set: every slot handed out is free and in range, counts agree.
    #[test]
    fn model_100k_operations() {
        for (seed, slots) in [(1u64, 1u64), (2, 63), (3, 64), (4, 65), (5, 1000)] {
            let mut m = SwapMap::new(slots);
            let mut model = BTreeSet::new();
            let mut rng = pagedata::Rng::new(seed);
            for _ in 0..20_000 {
                if rng.below(2) == 0 {
                    match m.alloc() {
                        Ok(s) => {
                            assert!(s < slots);
                            assert!(model.insert(s), "slot {s} handed out twice");
                        }
                        Err(e) => {
                            assert_eq!(e, SlotError::Full { slots });
                            assert_eq!(model.len() as u64, slots);
                        }
                    }
                } else {
                    let s = rng.below(slots as usize + 1) as u64;
                    let r = m.free(s);
                    if model.remove(&s) {
                        assert_eq!(r, Ok(()));
                    } else {
                        assert!(r.is_err());
                    }
                }
                assert_eq!(m.used(), model.len() as u64);
                for s in [0, slots / 2, slots.saturating_sub(1)] {
                    assert_eq!(m.is_used(s), model.contains(&s));
                }
            }
        }
    }
}

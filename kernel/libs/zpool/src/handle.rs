//! The one handle encoding every pool uses: how a (pool tag, generation, sub-slot, slot) tuple is packed
//! into the 64 bits of a [`Handle`], where pool tags come from, and how generations advance.
//!
//! # Why
//!
//! A handle must name an object without being a pointer, and must let its pool refuse a handle that was
//! freed, forged, or issued by another pool ([`PoolError::StaleHandle`](crate::PoolError::StaleHandle)).
//! Every pool does this the same way — a slot in a side table, a generation per slot, a tag per pool —
//! and only the field widths differ, so the packing lives here once and each pool names its widths in a
//! [`HandleLayout`] const.
//!
//! # Vocabulary
//!
//! | term | meaning |
//! |---|---|
//! | slot | the index of the pool's side-table entry the handle names (zbud: a page; zsmalloc: a handle-table slot) |
//! | sub-slot | which place inside the slot's entry (zbud: the buddy, 0 first, 1 last); 0 bits wide in a pool without one |
//! | generation | a per-slot (or per place) counter bumped when its object is released, 1..=`max_generation`, never 0 |
//! | pool tag | a number each pool draws from [`new_pool_tag`] when it is created, so pools refuse each other's handles |
//! | layout | the widths of slot, sub-slot and generation ([`HandleLayout`]); they fill bits `0..48` exactly |
//!
//! # Layout
//!
//! With `s` = `slot_bits`, `b` = `sub_bits`, `g` = `gen_bits` and `s + b + g = 48`:
//!
//! | bits | field |
//! |---|---|
//! | `0..s` | slot |
//! | `s..s+b` | sub-slot (absent when `b = 0`) |
//! | `s+b..48` | generation, 1..2^g (0 is never issued) |
//! | `48..64` | pool tag ([`TAG_SHIFT`], [`TAG_BITS`]) |
//!
//! | pool | `s` | `b` | `g` | so |
//! |---|---|---|---|---|
//! | zbud | 24 | 1 | 23 | 2^24 pages; a buddy reissues a handle after 2^23 − 1 releases |
//! | zsmalloc | 28 | 0 | 20 | 2^28 live objects; a slot reissues a handle after 2^20 − 1 frees |
//!
//! Every 64-bit value decodes to some fields ([`HandleLayout::decode`] is total); a pool then checks the
//! tag, that the slot exists and holds an object, and that the generations agree.
//!
//! # Worked example
//!
//! zbud's layout `HandleLayout::new(24, 1, 23)`, pool tag 3, slot 5, last buddy (sub-slot 1), generation 2:
//!
//! ```text
//!   tag 3 << 48 | generation 2 << 25 | sub 1 << 24 | slot 5
//!   = 0x0003_0000_0000_0000 | 0x0000_0000_0400_0000 | 0x0000_0000_0100_0000 | 0x5
//!   = 0x0003_0000_0500_0005
//!   decode(0x0003_0000_0500_0005) = HandleFields { tag: 3, generation: 2, sub: 1, slot: 5 }
//!   next_generation(2) = 3;  next_generation(2^23 - 1) = 1 (wraps past 0)
//! ```
//!
//! # Contracts
//!
//! - [`HandleLayout::new`] refuses widths that do not add up to 48 (or a slot field wider than 32 bits,
//!   a generation field narrower than 1 or wider than 32) by failing const evaluation: layouts are
//!   `const` items, so a bad one does not compile.
//! - [`HandleLayout::encode`] masks each field to its width; callers keep `slot < max_slots()`,
//!   `sub < 2^sub_bits` and `generation` in `1..=max_generation()` themselves, and then
//!   `decode(encode(f)) == f`.
//! - [`HandleLayout::next_generation`] never returns 0, and cycles through all of `1..=max_generation()`.
//! - [`new_pool_tag`] hands out 1, 2, 3, … (wrapping after 65,535 to 0 and on): two pools share a tag
//!   only after 65,536 pools were created.

use core::sync::atomic::{AtomicU16, Ordering};

use crate::Handle;

/// The first bit of the pool tag.
pub const TAG_SHIFT: u32 = 48;
/// Bits of the pool tag.
pub const TAG_BITS: u32 = 16;
/// The generation of a slot that has never been used: the first handle of a slot carries it.
pub const FIRST_GENERATION: u32 = 1;

/// Source of pool tags (see [`new_pool_tag`]).
static NEXT_TAG: AtomicU16 = AtomicU16::new(1);

/// A fresh pool tag, for a pool being created: 1, 2, 3, … across all pools of every kind.
pub fn new_pool_tag() -> u16 {
    NEXT_TAG.fetch_add(1, Ordering::Relaxed)
}

/// The fields a handle packs (see the module header's layout table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandleFields {
    /// The issuing pool's tag.
    pub tag: u16,
    /// The generation of the object the handle names.
    pub generation: u32,
    /// The place inside the slot (0 in a layout without a sub-slot).
    pub sub: u32,
    /// The side-table slot.
    pub slot: u32,
}

/// The widths of a pool's handle fields below the tag; they fill bits `0..48` exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandleLayout {
    /// Bits of the slot, from bit 0.
    pub slot_bits: u32,
    /// Bits of the sub-slot, right above the slot (0: none).
    pub sub_bits: u32,
    /// Bits of the generation, right above the sub-slot, up to bit 48.
    pub gen_bits: u32,
}

/// A mask of the low `bits` bits (`bits` ≤ 32).
const fn mask(bits: u32) -> u64 {
    (1u64 << bits) - 1
}

impl HandleLayout {
    /// A layout; widths that do not fill bits `0..48` (or a slot or generation field outside 1..=32 bits)
    /// fail const evaluation — use it in a `const` item.
    pub const fn new(slot_bits: u32, sub_bits: u32, gen_bits: u32) -> HandleLayout {
        assert!(slot_bits >= 1 && slot_bits <= 32, "HandleLayout: slot bits outside 1..=32");
        assert!(gen_bits >= 1 && gen_bits <= 32, "HandleLayout: generation bits outside 1..=32");
        assert!(sub_bits <= 32, "HandleLayout: sub-slot bits above 32");
        assert!(slot_bits + sub_bits + gen_bits == TAG_SHIFT, "HandleLayout: fields must fill bits 0..48");
        HandleLayout { slot_bits, sub_bits, gen_bits }
    }

    /// The first bit of the sub-slot.
    pub const fn sub_shift(&self) -> u32 {
        self.slot_bits
    }

    /// The first bit of the generation.
    pub const fn gen_shift(&self) -> u32 {
        self.slot_bits + self.sub_bits
    }

    /// How many slots the layout can name: `2^slot_bits`.
    pub const fn max_slots(&self) -> usize {
        1 << self.slot_bits
    }

    /// The largest generation: `2^gen_bits − 1`.
    pub const fn max_generation(&self) -> u32 {
        mask(self.gen_bits) as u32
    }

    /// Pack `f` into a handle; each field is masked to its width (module header, contracts).
    pub const fn encode(&self, f: HandleFields) -> Handle {
        Handle::from_raw(
            (f.tag as u64) << TAG_SHIFT
                | (f.generation as u64 & mask(self.gen_bits)) << self.gen_shift()
                | (f.sub as u64 & mask(self.sub_bits)) << self.sub_shift()
                | (f.slot as u64 & mask(self.slot_bits)),
        )
    }

    /// The fields of any raw handle; whether they name a live object is the pool's to check.
    pub const fn decode(&self, h: Handle) -> HandleFields {
        let raw = h.raw();
        HandleFields {
            tag: (raw >> TAG_SHIFT) as u16,
            generation: (raw >> self.gen_shift() & mask(self.gen_bits)) as u32,
            sub: (raw >> self.sub_shift() & mask(self.sub_bits)) as u32,
            slot: (raw & mask(self.slot_bits)) as u32,
        }
    }

    /// The generation after `g`: `g + 1`, wrapping from `max_generation()` to 1, never 0.
    pub const fn next_generation(&self, g: u32) -> u32 {
        let n = (g as u64).wrapping_add(1) & mask(self.gen_bits);
        if n == 0 { FIRST_GENERATION } else { n as u32 }
    }

    /// Whether `g` is a generation this layout can issue: 1..=`max_generation()`.
    pub const fn is_generation(&self, g: u32) -> bool {
        g != 0 && g <= self.max_generation()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZBUD: HandleLayout = HandleLayout::new(24, 1, 23);
    const ZSMALLOC: HandleLayout = HandleLayout::new(28, 0, 20);

    #[test]
    fn worked_example_from_the_header() {
        let f = HandleFields { tag: 3, generation: 2, sub: 1, slot: 5 };
        let h = ZBUD.encode(f);
        assert_eq!(h.raw(), 0x0003_0000_0500_0005);
        assert_eq!(ZBUD.decode(h), f);
        assert_eq!(ZBUD.next_generation(2), 3);
        assert_eq!(ZBUD.next_generation((1 << 23) - 1), 1);
    }

    #[test]
    fn shifts_and_limits() {
        assert_eq!((ZBUD.sub_shift(), ZBUD.gen_shift()), (24, 25));
        assert_eq!((ZBUD.max_slots(), ZBUD.max_generation()), (1 << 24, (1 << 23) - 1));
        assert_eq!((ZSMALLOC.sub_shift(), ZSMALLOC.gen_shift()), (28, 28));
        assert_eq!((ZSMALLOC.max_slots(), ZSMALLOC.max_generation()), (1 << 28, (1 << 20) - 1));
    }

    #[test]
    fn zsmalloc_layout_has_no_sub_slot() {
        let f = HandleFields { tag: 0xabcd, generation: 0xf_ffff, sub: 0, slot: 0x0fff_ffff };
        let h = ZSMALLOC.encode(f);
        assert_eq!(h.raw(), 0xabcd_ffff_ffff_ffff);
        assert_eq!(ZSMALLOC.decode(h), f);
        // A sub-slot is masked away: there are no bits for it.
        assert_eq!(ZSMALLOC.encode(HandleFields { sub: 1, ..f }), h);
    }

    #[test]
    fn decode_is_total_and_round_trips_every_bit() {
        for raw in [0, u64::MAX, 0x8000_0000_0000_0001, 0x0123_4567_89ab_cdef] {
            for l in [ZBUD, ZSMALLOC, HandleLayout::new(16, 12, 20), HandleLayout::new(32, 0, 16)] {
                let h = Handle::from_raw(raw);
                assert_eq!(l.encode(l.decode(h)), h, "{l:?} {raw:#x}");
            }
        }
    }

    #[test]
    fn encode_masks_each_field() {
        let f = HandleFields { tag: 1, generation: 1 << 23, sub: 2, slot: 1 << 24 };
        assert_eq!(ZBUD.encode(f).raw(), 1 << 48, "every field but the tag overflowed to 0");
    }

    #[test]
    fn generations_never_reach_zero() {
        let l = HandleLayout::new(32, 12, 4);
        let mut g = FIRST_GENERATION;
        let mut seen = [false; 16];
        for _ in 0..15 {
            assert!(l.is_generation(g));
            assert!(!seen[g as usize], "generation {g} came back early");
            seen[g as usize] = true;
            g = l.next_generation(g);
        }
        assert_eq!(g, FIRST_GENERATION, "a full cycle of 15 generations");
        assert!(!seen[0]);
        assert!(!l.is_generation(0) && !l.is_generation(16));
        let wide = HandleLayout::new(16, 0, 32);
        assert_eq!(wide.next_generation(u32::MAX), 1);
    }

    #[test]
    fn pool_tags_are_distinct() {
        let (a, b) = (new_pool_tag(), new_pool_tag());
        assert_ne!(a, b);
    }
}

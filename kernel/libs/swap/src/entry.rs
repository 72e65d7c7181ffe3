//! Swap entries: where a swapped-out page went, written into its non-present page-table entry.
//!
//! When reclaim takes a page away, its PTE loses the PRESENT bit, and the CPU ignores every other bit
//! of a non-present entry. The kernel stores the page's swap location there, as Linux does with
//! `swp_entry_t`, so the page fault that brings the page back finds it without any side table.
//!
//! ```text
//!  63          52 51                                   12 11 10 9      6 5         1 0
//! +--------------+---------------------------------------+--+--+--------+-----------+-+
//! |     zero     |          offset (40 bits)             |0 |S |  zero  | type (5)  |0|
//! +--------------+---------------------------------------+--+--+--------+-----------+-+
//!                                                             S = SWAP_MARK          P = 0
//! ```
//!
//! A PTE is one of four things: zero (never touched: the fault maps a zero-filled frame), present
//! (bit 0 set: a resident page), a swap entry (bit 0 clear, [`SWAP_MARK`] set), or the *lost* marker
//! [`LOST`] (bit 11 alone): the page's swapped copy could not be read back (a device error, a corrupt
//! compressed object), so every later access fails with "page lost" instead of reading garbage —
//! Linux's poisoned PTE marker (`PTE_MARKER_POISONED`), which turns such an access into SIGBUS. The mark keeps the
//! entry of type 0 offset 0 distinct from an empty PTE. Linux x86_64 packs the fields differently (type
//! in the high bits, offset inverted against L1TF); the idea is the same.

/// Set in every swap entry, never in an empty PTE.
pub const SWAP_MARK: u64 = 1 << 10;
/// The whole raw value of a lost page's PTE (bit 11, never set in a swap entry).
pub const LOST: u64 = 1 << 11;
/// The PTE's present bit.
pub const PRESENT: u64 = 1;
/// Most swap types (devices) an entry can name.
pub const MAX_SWAPFILES: u8 = 32;
/// Most slots one swap device can have.
pub const MAX_OFFSET: u64 = (1 << 40) - 1;

const TYPE_SHIFT: u32 = 1;
const OFFSET_SHIFT: u32 = 12;

/// A swap location: device `ty`, page slot `offset` on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SwapEntry {
    pub ty: u8,
    pub offset: u64,
}

/// What a raw PTE holds, as the fault handler sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pte {
    /// Zero: the page was never touched (or was discarded).
    None,
    /// Present: a resident page.
    Present,
    /// Not present, but a swap entry.
    Swap(SwapEntry),
    /// Not present: the page was lost (its copy could not be read back).
    Lost,
    /// Not present and not ours: a corrupted entry (the fault handler reports it).
    Bad(u64),
}

impl SwapEntry {
    /// `None` when `ty` or `offset` does not fit the format.
    pub fn new(ty: u8, offset: u64) -> Option<Self> {
        (ty < MAX_SWAPFILES && offset <= MAX_OFFSET).then_some(Self { ty, offset })
    }

    /// The non-present PTE value that carries this entry.
    pub fn to_pte(self) -> u64 {
        (self.offset << OFFSET_SHIFT) | SWAP_MARK | (u64::from(self.ty) << TYPE_SHIFT)
    }

    /// Decode a raw PTE.
    pub fn classify(raw: u64) -> Pte {
        if raw == 0 {
            return Pte::None;
        }
        if raw & PRESENT != 0 {
            return Pte::Present;
        }
        if raw == LOST {
            return Pte::Lost;
        }
        let ty = ((raw >> TYPE_SHIFT) & 0x1f) as u8;
        let offset = raw >> OFFSET_SHIFT;
        let e = Self { ty, offset };
        if raw & SWAP_MARK != 0 && offset <= MAX_OFFSET && e.to_pte() == raw { Pte::Swap(e) } else { Pte::Bad(raw) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_are_never_present_or_empty() {
        for ty in [0, 1, 7, MAX_SWAPFILES - 1] {
            for offset in [0, 1, 4095, 1 << 20, MAX_OFFSET] {
                let e = SwapEntry::new(ty, offset).unwrap();
                let raw = e.to_pte();
                assert_eq!(raw & PRESENT, 0);
                assert_ne!(raw, 0);
                assert_eq!(SwapEntry::classify(raw), Pte::Swap(e));
            }
        }
    }

    #[test]
    fn out_of_range_fields_are_refused() {
        assert_eq!(SwapEntry::new(MAX_SWAPFILES, 0), None);
        assert_eq!(SwapEntry::new(0, MAX_OFFSET + 1), None);
    }

    #[test]
    fn other_values_classify_as_they_are() {
        assert_eq!(SwapEntry::classify(0), Pte::None);
        assert_eq!(SwapEntry::classify(0x1234_5000 | 0x63), Pte::Present);
        // Not present, but without the mark, or with stray bits: not a swap entry.
        assert_eq!(SwapEntry::classify(0x5000), Pte::Bad(0x5000));
        let stray = SwapEntry::new(1, 9).unwrap().to_pte() | (1 << 63);
        assert_eq!(SwapEntry::classify(stray), Pte::Bad(stray));
        let stray = SwapEntry::new(1, 9).unwrap().to_pte() | (1 << 7);
        assert_eq!(SwapEntry::classify(stray), Pte::Bad(stray));
    }

    /// The offset field is 40 bits, bits 12 to 51: an offset of 2^40 is refused, and bit 52 makes a PTE bad.
    #[test]
    fn the_offset_field_ends_at_bit_51() {
        assert_eq!(MAX_OFFSET, 0xff_ffff_ffff);
        assert_eq!(SwapEntry::new(0, 1 << 40), None);
        assert_eq!(SwapEntry::new(0, MAX_OFFSET).unwrap().to_pte() >> 52, 0);
        let over = (1 << 52) | SWAP_MARK;
        assert_eq!(SwapEntry::classify(over), Pte::Bad(over));
    }

    #[test]
    fn the_lost_marker_is_neither_a_swap_entry_nor_empty() {
        assert_eq!(SwapEntry::classify(LOST), Pte::Lost);
        assert_eq!(LOST & PRESENT, 0);
        // No swap entry has bit 11, so none can be taken for the marker, nor the marker plus bits for it.
        for ty in [0, MAX_SWAPFILES - 1] {
            for offset in [0, 1, MAX_OFFSET] {
                assert_eq!(SwapEntry::new(ty, offset).unwrap().to_pte() & LOST, 0);
            }
        }
        assert_eq!(SwapEntry::classify(LOST | SWAP_MARK), Pte::Bad(LOST | SWAP_MARK));
    }
}

//! Handles: zsmalloc's widths for `zpool::handle`'s encoding ([`HANDLE_LAYOUT`]), the handle table's
//! entry ([`Slot`]), and the two ways between them — `encode` a slot into a handle, `lookup` a handle's
//! live slot or refuse it as stale. A handle names a slot, never a place, so compaction moves an object by
//! rewriting its slot (the module header's "Handles").

use pagemem::{FrameSource, PageMemory};
use zpool::handle::{HandleFields, HandleLayout};
use zpool::{Handle, PoolError};

use crate::Zsmalloc;

/// zsmalloc's handle fields (see "Handles" in the module header): slot 28 bits, no sub-slot, generation 20.
pub const HANDLE_LAYOUT: HandleLayout = HandleLayout::new(28, 0, 20);
pub(crate) const MAX_SLOTS: usize = HANDLE_LAYOUT.max_slots();

/// One handle-table entry, 12 bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot {
    /// Live: the object's zspage. Free: the next free slot, or [`NIL`](zpool::slotlist::NIL).
    pub(crate) zspage: u32,
    /// The generation of the object here now, or of the next one.
    pub(crate) generation: u32,
    /// The object's size as given to `malloc`; 0 while the slot is free.
    pub(crate) size: u16,
    /// The object's index in its zspage.
    pub(crate) obj: u8,
}

impl Slot {
    pub(crate) fn live(&self) -> bool {
        self.size != 0
    }
}

impl<M: PageMemory + FrameSource> Zsmalloc<M> {
    /// The handle slot of a live handle.
    pub(crate) fn lookup(&self, handle: Handle) -> Result<u32, PoolError> {
        let HandleFields { tag, generation, slot, .. } = HANDLE_LAYOUT.decode(handle);
        match self.handles.get(slot as usize) {
            Some(s) if tag == self.tag && s.live() && s.generation == generation => Ok(slot),
            _ => Err(PoolError::StaleHandle(handle)),
        }
    }

    /// The handle of the object in `slot` at `generation`, issued by this pool.
    pub(crate) fn encode(&self, slot: u32, generation: u32) -> Handle {
        HANDLE_LAYOUT.encode(HandleFields { tag: self.tag, generation, sub: 0, slot })
    }
}

//! Compaction, Linux's `zs_compact`: per class, while whole zspages' worth of places are free, move
//! objects from the sparsest zspage into the fullest, free emptied zspages, and rewrite each moved
//! object's handle slot — never its handle (the module header's "Compaction").

use pagemem::{FrameSource, MemError, PageMemory};
use zpool::slotlist::NIL;
use zpool::{Handle, PoolError};

use crate::span::{read_spot, spot, write_spot};
use crate::{FULLNESS_FULL, ZS_HANDLE_SIZE, Zsmalloc, bit, clear_bit, first_free, set_bit};

/// Which end of the fullness lists [`Zsmalloc::isolate`] takes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isolate {
    /// The fullest non-full zspage: where objects go.
    Dst,
    /// The sparsest non-empty zspage: where objects come from.
    Src,
}

impl<M: PageMemory + FrameSource> Zsmalloc<M> {
    /// Frames compaction could free in class `c` (Linux's `zs_can_compact`): whole zspages' worth of free
    /// object places.
    pub(crate) fn freeable(&self, c: usize) -> u64 {
        let k = &self.classes[c];
        let objs = k.info.objs_per_zspage as u64;
        (k.zspages * objs - k.obj_used) / objs * k.info.pages_per_zspage as u64
    }

    /// Take a zspage off its class's lists for compaction (Linux's `isolate_dst_zspage`/`isolate_src_zspage`).
    fn isolate(&mut self, c: usize, end: Isolate) -> Option<u32> {
        let z = (1..FULLNESS_FULL)
            .map(|i| if end == Isolate::Dst { FULLNESS_FULL - i } else { i })
            .map(|g| self.classes[c].lists[g].head)
            .find(|&z| z != NIL)?;
        self.delist(z);
        Some(z)
    }

    /// Linux's `__zs_compact` for class `c`.
    pub(crate) fn compact_class(&mut self, c: usize) -> Result<(), PoolError> {
        let info = self.classes[c].info;
        if info.huge {
            return Ok(());
        }
        let mut dst = None;
        let result = loop {
            if self.freeable(c) == 0 {
                break Ok(());
            }
            let d = match dst {
                Some(d) => d,
                None => match self.isolate(c, Isolate::Dst) {
                    Some(d) => d,
                    None => break Ok(()),
                },
            };
            dst = Some(d);
            let Some(s) = self.isolate(c, Isolate::Src) else { break Ok(()) };
            let moved = self.migrate(s, d);
            let src_empty = self.zspages[s as usize].inuse == 0;
            if src_empty {
                let (freed, err) = self.retire(s, 0);
                self.stats.pages_compacted += freed;
                if let Some(e) = err {
                    break Err(e.into());
                }
            } else {
                self.relist(s);
            }
            if let Err(e) = moved {
                break Err(e);
            }
            if usize::from(self.zspages[d as usize].inuse) == info.objs_per_zspage {
                self.relist(d);
                dst = None;
            } else if !src_empty {
                // Stopped at an object whose header names no handle of it: leave the class (verify reports it).
                break Ok(());
            }
        };
        if let Some(d) = dst {
            self.relist(d);
        }
        result
    }

    /// Move objects from `s` to `d` until `d` is full or `s` is empty (Linux's `migrate_zspage`).
    fn migrate(&mut self, s: u32, d: u32) -> Result<(), PoolError> {
        let mut buf = core::mem::take(&mut self.vm_buf);
        let r = self.migrate_with(s, d, &mut buf);
        self.vm_buf = buf;
        r
    }

    fn migrate_with(&mut self, s: u32, d: u32, buf: &mut [u8]) -> Result<(), PoolError> {
        let info = self.classes[self.zspages[s as usize].class as usize].info;
        let objs = info.objs_per_zspage;
        for obj in 0..objs {
            if !bit(&self.zspages[s as usize].used, obj) {
                continue;
            }
            let Some(to_obj) = first_free(&self.zspages[d as usize].used, objs) else { break };
            // Copy the object's whole place out (Linux's `zs_object_copy` copies `class->size` bytes) and
            // learn its handle from the header.
            let from = spot(&self.zspages[s as usize].frames, &info, obj, 0, info.size)?;
            let place = buf.get_mut(..info.size).ok_or(MemError::Foreign(from.a))?;
            read_spot(&mut self.mem, from, place)?;
            let mut raw = [0; ZS_HANDLE_SIZE];
            raw.copy_from_slice(&place[..ZS_HANDLE_SIZE]);
            let Ok(slot) = self.lookup(Handle::from_raw(u64::from_le_bytes(raw))) else { continue };
            let entry = self.handles[slot as usize];
            if entry.zspage != s || usize::from(entry.obj) != obj {
                continue;
            }
            let len = ZS_HANDLE_SIZE + usize::from(entry.size);
            let to = spot(&self.zspages[d as usize].frames, &info, to_obj, 0, len)?;
            write_spot(&mut self.mem, to, &place[..len])?;
            // The copy is complete: only now does the object move.
            let dz = &mut self.zspages[d as usize];
            set_bit(&mut dz.used, to_obj);
            dz.inuse += 1;
            let sz = &mut self.zspages[s as usize];
            clear_bit(&mut sz.used, obj);
            sz.inuse -= 1;
            let src_left = sz.inuse;
            let h = &mut self.handles[slot as usize];
            (h.zspage, h.obj) = (d, to_obj as u8);
            self.objects_migrated += 1;
            if usize::from(self.zspages[d as usize].inuse) == objs || src_left == 0 {
                break;
            }
        }
        Ok(())
    }
}

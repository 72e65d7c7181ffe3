//! Verification, the pool's self-check: [`Zsmalloc::verify`] walks the handle table, every zspage, the
//! fullness lists and the counters and checks each against the others — down to the in-object header of
//! every object in use — so a test (or a debug build) can prove the side table and the frames agree.

use alloc::vec::Vec;

use pagemem::{FrameSource, MemError, PageMemory};
use zpool::slotlist::{self, NIL};

use crate::handle::HANDLE_LAYOUT;
use crate::span::{spot, with_bytes};
use crate::{
    BITMAP_WORDS, FULLNESS_EMPTY, Fullness, MAX_OBJS_PER_ZSPAGE, UNLISTED, ZS_HANDLE_SIZE, Zsmalloc, Zspage, bit,
    fullness_group,
};

/// What [`Zsmalloc::verify`] found wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyError {
    /// A frame could not be mapped to read a header.
    Memory(MemError),
    /// An object's in-object header does not name its handle.
    Header { zspage: u32, obj: usize },
    /// A handle-table slot, or the free-slot list, is inconsistent.
    Handle { slot: u32 },
    /// A zspage's entry (frames, bitmap, count, group, back-reference), or the free-zspage list, is
    /// inconsistent.
    Zspage { zspage: u32 },
    /// A fullness list of class `class` (its position in [`Zsmalloc::classes`]) is inconsistent; `usize::MAX`
    /// when the lists together do not hold every zspage.
    Lists { class: usize },
    /// The counters do not match the tables.
    Counters,
}

impl<M: PageMemory + FrameSource> Zsmalloc<M> {
    /// Check the handle table, every zspage (frames, bitmap, count, group, back-reference, the header of
    /// every object in use), the fullness lists and the counters against each other.
    pub fn verify(&mut self) -> Result<(), VerifyError> {
        // The handle table and its free list.
        let mut free = alloc::vec![false; self.handles.len()];
        let mut slot = self.free_handle;
        while slot != NIL {
            match (free.get_mut(slot as usize), self.handles.get(slot as usize)) {
                (Some(f), Some(s)) if !*f && !s.live() => (*f, slot) = (true, s.zspage),
                _ => return Err(VerifyError::Handle { slot }),
            }
        }
        let (mut objects, mut bytes) = (0u64, 0u64);
        // (zspage, object, handle slot) of every object in use.
        let mut owners: Vec<(u32, u8, u32)> = Vec::new();
        for (slot, s) in self.handles.iter().enumerate() {
            let bad = Err(VerifyError::Handle { slot: slot as u32 });
            let good_gen = HANDLE_LAYOUT.is_generation(s.generation);
            if !s.live() {
                if !free[slot] || !good_gen {
                    return bad;
                }
                continue;
            }
            let Some(zp) = self.zspages.get(s.zspage as usize).filter(|z| !z.frames.is_empty()) else { return bad };
            let Some(k) = self.classes.get(zp.class as usize) else { return bad };
            let (obj, size) = (s.obj as usize, s.size as usize);
            let right_class = self.class_for(size).is_some_and(|c| c == k.info);
            if free[slot] || !good_gen || !right_class || obj >= k.info.objs_per_zspage || !bit(&zp.used, obj) {
                return bad;
            }
            objects += 1;
            bytes += size as u64;
            owners.push((s.zspage, s.obj, slot as u32));
        }
        owners.sort_unstable();
        if let Some(w) = owners.windows(2).find(|w| (w[0].0, w[0].1) == (w[1].0, w[1].1)) {
            return Err(VerifyError::Handle { slot: w[1].2 });
        }

        // The zspage table and its free list.
        let mut vacant = alloc::vec![false; self.zspages.len()];
        let (mut z, mut vacancies) = (self.free_zspage, 0u64);
        while z != NIL {
            match (vacant.get_mut(z as usize), self.zspages.get(z as usize)) {
                (Some(v), Some(zp)) if !*v && zp.frames.is_empty() => (*v, z) = (true, zp.link.next),
                _ => return Err(VerifyError::Zspage { zspage: z }),
            }
            vacancies += 1;
        }
        let mut per_class = alloc::vec![(0u64, 0u64); self.classes.len()];
        let (mut pages, mut live, mut cursor) = (0u64, 0u64, 0usize);
        for (z, zp) in self.zspages.iter().enumerate() {
            let bad = Err(VerifyError::Zspage { zspage: z as u32 });
            if zp.frames.is_empty() {
                let tidy = zp.used == [0; BITMAP_WORDS] && zp.inuse == 0 && zp.link.prev == NIL && zp.group == UNLISTED;
                if !tidy || !vacant[z] {
                    return bad;
                }
                continue;
            }
            let Some(k) = self.classes.get(zp.class as usize) else { return bad };
            let info = k.info;
            let ones: u32 = zp.used.iter().map(|w| w.count_ones()).sum();
            let beyond = (info.objs_per_zspage..MAX_OBJS_PER_ZSPAGE).any(|i| bit(&zp.used, i));
            let group = fullness_group(zp.inuse as usize, info.objs_per_zspage);
            if vacant[z]
                || zp.frames.len() != info.pages_per_zspage
                || ones != u32::from(zp.inuse)
                || zp.inuse == 0
                || beyond
                || usize::from(zp.group) != group
            {
                return bad;
            }
            let start = cursor;
            while cursor < owners.len() && owners[cursor].0 == z as u32 {
                cursor += 1;
            }
            let mine = &owners[start..cursor];
            if mine.len() != usize::from(zp.inuse) {
                return bad;
            }
            if info.huge {
                if zp.huge_handle != mine[0].2 {
                    return bad;
                }
            } else {
                for &(_, obj, slot) in mine {
                    let want = self.encode(slot, self.handles[slot as usize].generation).raw().to_le_bytes();
                    let h = spot(&zp.frames, &info, obj as usize, 0, ZS_HANDLE_SIZE).map_err(VerifyError::Memory)?;
                    let same = with_bytes(&mut self.mem, h.a, h.start..h.start + h.len, |p| *p == want)
                        .map_err(VerifyError::Memory)?;
                    if !same || h.b.is_some() {
                        return Err(VerifyError::Header { zspage: z as u32, obj: obj as usize });
                    }
                }
            }
            let pc = &mut per_class[zp.class as usize];
            pc.0 += 1;
            pc.1 += u64::from(zp.inuse);
            pages += zp.frames.len() as u64;
            live += 1;
        }

        // The fullness lists: every live zspage on the list of its class and group, exactly once.
        let mut listed = 0;
        for (c, k) in self.classes.iter().enumerate() {
            for (g, list) in k.lists.iter().enumerate() {
                let bad = Err(VerifyError::Lists { class: c });
                let member =
                    |zp: &Zspage| !zp.frames.is_empty() && usize::from(zp.class) == c && usize::from(zp.group) == g;
                let Ok(n) = slotlist::check(&self.zspages, list, Fullness, member) else { return bad };
                if g == FULLNESS_EMPTY && n != 0 {
                    return bad;
                }
                listed += n;
            }
            if per_class[c] != (k.zspages, k.obj_used) {
                return Err(VerifyError::Counters);
            }
        }
        if listed != live {
            return Err(VerifyError::Lists { class: usize::MAX });
        }

        // The counters.
        let s = &self.stats;
        let counters_ok = (s.pages, s.objects, s.object_bytes) == (pages, objects, bytes)
            && s.allocs - s.frees == s.objects
            && live + vacancies == self.zspages.len() as u64;
        if !counters_ok {
            return Err(VerifyError::Counters);
        }
        Ok(())
    }
}

//! Spanning and mapping: where an object's bytes are in its zspage's frames ([`Spot`]: one frame, or the
//! end of one and the start of the next), and how they are lent to a closure — a direct single-frame
//! mapping, both frames as one slice ([`SpanMap::Pair`]), or a copy through the pool's buffer
//! ([`SpanMap::Copy`]) — and copied in and out one frame at a time for compaction (the module header's
//! "Zspage layout" and "Mapping").

use core::ops::Range;

use frame::Pfn;
use pagemem::{FrameSource, MemError, PAGE, PageMemory};
use zpool::{MapMode, PoolError};

use crate::{SizeClass, Zsmalloc};

/// How [`ZPool::map`](zpool::ZPool::map) reaches an object whose bytes span two frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SpanMap {
    /// The page-table method: map both frames as one 8192-byte slice ([`PageMemory::with_pages2`]; in the
    /// kernel, two adjacent kmap slots). Linux's zsmalloc did this with `USE_PGTABLE_MAPPING`
    /// (`__zs_map_object` through `map_vm_area`) on ARM, where it was cheaper than a copy, until Linux
    /// 5.8 removed it.
    #[default]
    Pair,
    /// The copy method: copy the two parts into the pool's 4096-byte buffer, run the closure there, copy
    /// back; no copy-in for [`MapMode::WriteOnly`], no copy-back for [`MapMode::ReadOnly`]. This is what
    /// zsmalloc does on x86 (and everywhere since 5.8): its per-CPU `vm_buf`.
    Copy,
}

/// Bytes `start..start + len` of a zspage's frame `a`, continued from byte 0 of `b` if they go past its end.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spot {
    pub(crate) a: Pfn,
    pub(crate) b: Option<Pfn>,
    pub(crate) start: usize,
    pub(crate) len: usize,
}

impl Spot {
    /// Bytes in `a`.
    pub(crate) fn head(&self) -> usize {
        self.len.min(PAGE.saturating_sub(self.start))
    }
}

/// Bytes `skip..skip + len` of object `obj` of a zspage of `frames` in class `info`.
pub(crate) fn spot(frames: &[Pfn], info: &SizeClass, obj: usize, skip: usize, len: usize) -> Result<Spot, MemError> {
    let off = obj * info.size + skip;
    let (k, start) = (off / PAGE, off % PAGE);
    let missing = MemError::Foreign(frames.first().copied().unwrap_or(Pfn(u64::MAX)));
    let a = *frames.get(k).ok_or(missing)?;
    let b = if start + len > PAGE { Some(*frames.get(k + 1).ok_or(missing)?) } else { None };
    Ok(Spot { a, b, start, len })
}

/// Run `f` on bytes `r` of `pfn`; a page shorter than `r` is `Foreign(pfn)`.
pub(crate) fn with_bytes<M: PageMemory, R>(
    mem: &mut M,
    pfn: Pfn,
    r: Range<usize>,
    f: impl FnOnce(&mut [u8]) -> R,
) -> Result<R, MemError> {
    mem.with_page(pfn, |p| p.get_mut(r).map(f))?.ok_or(MemError::Foreign(pfn))
}

/// Copy the bytes at `s` into `buf` (`s.len` bytes), one frame at a time.
pub(crate) fn read_spot<M: PageMemory>(mem: &mut M, s: Spot, buf: &mut [u8]) -> Result<(), MemError> {
    let (head, tail) = buf.split_at_mut(s.head().min(buf.len()));
    with_bytes(mem, s.a, s.start..s.start + head.len(), |p| head.copy_from_slice(p))?;
    match s.b {
        Some(b) if !tail.is_empty() => with_bytes(mem, b, 0..tail.len(), |p| tail.copy_from_slice(p)),
        _ => Ok(()),
    }
}

/// Copy `buf` (`s.len` bytes) to the bytes at `s`, one frame at a time.
pub(crate) fn write_spot<M: PageMemory>(mem: &mut M, s: Spot, buf: &[u8]) -> Result<(), MemError> {
    let (head, tail) = buf.split_at(s.head().min(buf.len()));
    with_bytes(mem, s.a, s.start..s.start + head.len(), |p| p.copy_from_slice(head))?;
    match s.b {
        Some(b) if !tail.is_empty() => with_bytes(mem, b, 0..tail.len(), |p| p.copy_from_slice(tail)),
        _ => Ok(()),
    }
}

/// [`SpanMap::Copy`]: run `f` on a copy of the bytes at `s` in `buf`.
fn map_copy<M: PageMemory, R>(
    mem: &mut M,
    s: Spot,
    mode: MapMode,
    buf: &mut [u8],
    f: impl FnOnce(&mut [u8]) -> R,
) -> Result<R, MemError> {
    let buf = buf.get_mut(..s.len).ok_or(MemError::Foreign(s.a))?;
    if mode != MapMode::WriteOnly {
        read_spot(mem, s, buf)?;
    }
    let r = f(buf);
    if mode != MapMode::ReadOnly {
        write_spot(mem, s, buf)?;
    }
    Ok(r)
}

impl<M: PageMemory + FrameSource> Zsmalloc<M> {
    /// Run `f` on the data of the object in handle slot `slot` (live): directly when it lies in one frame,
    /// as [`Config::span`](crate::Config::span) says when it spans two.
    pub(crate) fn map_slot<R>(
        &mut self,
        slot: u32,
        mode: MapMode,
        f: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<R, PoolError> {
        let s = self.handles[slot as usize];
        let zp = &self.zspages[s.zspage as usize];
        let info = self.classes[zp.class as usize].info;
        let d = spot(&zp.frames, &info, s.obj as usize, info.header(), s.size as usize)?;
        let r = match (d.b, self.cfg.span) {
            (None, _) => with_bytes(&mut self.mem, d.a, d.start..d.start + d.len, f)?,
            (Some(b), SpanMap::Pair) => {
                let r = self.mem.with_pages2(d.a, b, |p| p.get_mut(d.start..d.start + d.len).map(f))?;
                let r = r.ok_or(MemError::Foreign(d.a))?;
                self.span_maps += 1;
                r
            }
            (Some(_), SpanMap::Copy) => {
                let mut buf = core::mem::take(&mut self.vm_buf);
                let r = map_copy(&mut self.mem, d, mode, &mut buf, f);
                self.vm_buf = buf;
                let r = r?;
                self.span_maps += 1;
                r
            }
        };
        Ok(r)
    }
}

//! The trace of one page: which page is followed, and the kmap slots a traced operation used.
//!
//! `trace=page:N` (a kernel option) or the serial shell's `trace on|off|page N` follow one page of the
//! swap workload's region (and the cleancache pages of one file, `trace=file:INODE`) through its whole
//! journey. The rooms that see a step print it (`swap` the fault and the clock victim, `zcache`
//! frontswap, tmem, compression, zsmalloc and cleancache); this module holds only what they share, so
//! that `mm` itself prints nothing:
//!
//! | state | what |
//! |---|---|
//! | [`page`] | the region page followed, or `None` (tracing off) |
//! | [`file`] | the inode whose cleancache pages are followed, or `None` |
//! | the recorder | while a traced operation runs on one CPU ([`record`] … [`take`]), every kmap slot that CPU maps is noted with its frame, so the trace can name the slots the copy really used |
//!
//! # Cost when off
//!
//! Every check is one relaxed atomic load ([`page`], [`file`], and in kmap's `push` the recorder's
//! owner); nothing else runs unless a traced page is in hand.
//!
//! # Contract
//!
//! One traced operation at a time: [`record`] returns `false` (and records nothing) while another CPU
//! is recording. At most [`EVENTS`] mappings are kept per operation; more are counted, not kept.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use frame::Pfn;

/// "Not traced" in the atomics below.
const NONE: u64 = u64::MAX;

static PAGE: AtomicU64 = AtomicU64::new(NONE);
static FILE: AtomicU64 = AtomicU64::new(NONE);

/// CPU id + 1 of the recording CPU; 0 when nobody records.
static RECORDER: AtomicUsize = AtomicUsize::new(0);
/// Mappings kept per traced operation.
pub const EVENTS: usize = 16;
static EVENT: [AtomicU64; EVENTS] = [const { AtomicU64::new(0) }; EVENTS];
static COUNT: AtomicUsize = AtomicUsize::new(0);

/// Follow region page `page` (`None`: stop).
pub fn set_page(page: Option<u64>) {
    PAGE.store(page.unwrap_or(NONE), Ordering::Relaxed);
    SLOT.store(NONE, Ordering::Relaxed);
}

/// Follow the cleancache pages of inode `inode` (`None`: stop).
pub fn set_file(inode: Option<u64>) {
    FILE.store(inode.unwrap_or(NONE), Ordering::Relaxed);
}

/// The region page followed, if any.
pub fn page() -> Option<u64> {
    Some(PAGE.load(Ordering::Relaxed)).filter(|&p| p != NONE)
}

/// The inode whose cleancache pages are followed, if any.
pub fn file() -> Option<u64> {
    Some(FILE.load(Ordering::Relaxed)).filter(|&p| p != NONE)
}

/// Whether region page `p` is the one followed (one atomic load).
#[inline]
pub fn is_page(p: u64) -> bool {
    PAGE.load(Ordering::Relaxed) == p
}

/// Whether inode `inode` is the file followed (one atomic load).
#[inline]
pub fn is_file(inode: u64) -> bool {
    FILE.load(Ordering::Relaxed) == inode
}

/// The swap slot that holds the followed page's copy, so that the copy's free can be traced.
static SLOT: AtomicU64 = AtomicU64::new(NONE);

/// The followed page's copy is at swap slot `slot` (`None`: it has none).
pub fn set_slot(slot: Option<u64>) {
    SLOT.store(slot.unwrap_or(NONE), Ordering::Relaxed);
}

/// Whether swap slot `slot` holds the followed page's copy (one atomic load).
#[inline]
pub fn is_slot(slot: u64) -> bool {
    SLOT.load(Ordering::Relaxed) == slot
}

/// Whether this CPU is inside a traced operation (between [`record`] and [`take`]).
#[inline]
pub fn recording() -> bool {
    let r = RECORDER.load(Ordering::Relaxed);
    r != 0 && r == super::kmap::cpu_id() + 1
}

/// One kmap mapping made during a traced operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotUse {
    /// The kmap slot (a page of the window: `KMAP_BASE + slot × 4096`).
    pub slot: usize,
    pub pfn: Pfn,
}

/// The frame of the page followed, in the operation being recorded (0: none), to name it in the trace.
static FRAME: AtomicU64 = AtomicU64::new(NONE);

/// Start noting this CPU's kmap mappings; `false` if another CPU is recording (then nothing is noted
/// for this operation and [`take`] gives nothing).
pub fn record() -> bool {
    record_frame(None)
}

/// [`record`], naming `frame` as the followed page's own frame ([`frame`]).
pub fn record_frame(frame: Option<Pfn>) -> bool {
    let me = super::kmap::cpu_id() + 1;
    if RECORDER.compare_exchange(0, me, Ordering::AcqRel, Ordering::Relaxed).is_err() {
        return false;
    }
    COUNT.store(0, Ordering::Relaxed);
    FRAME.store(frame.map_or(NONE, |p| p.0), Ordering::Relaxed);
    true
}

/// The followed page's own frame in the operation being recorded, if the caller named it.
pub fn frame() -> Option<Pfn> {
    Some(FRAME.load(Ordering::Relaxed)).filter(|&p| p != NONE).map(Pfn)
}

/// Stop noting and hand back the mappings noted since [`record`] (at most [`EVENTS`]), and how many
/// there were in all.
pub fn take() -> ([Option<SlotUse>; EVENTS], usize) {
    let mut out = [None; EVENTS];
    let me = super::kmap::cpu_id() + 1;
    if RECORDER.load(Ordering::Acquire) != me {
        return (out, 0);
    }
    let n = COUNT.load(Ordering::Relaxed);
    for (i, o) in out.iter_mut().enumerate().take(n.min(EVENTS)) {
        let e = EVENT[i].load(Ordering::Relaxed);
        *o = Some(SlotUse { slot: (e >> 48) as usize, pfn: Pfn(e & ((1 << 48) - 1)) });
    }
    RECORDER.store(0, Ordering::Release);
    (out, n)
}

/// kmap's hook: `slot` now maps `pfn` on this CPU. One atomic load when nobody records.
#[inline]
pub(super) fn kmapped(slot: usize, pfn: Pfn) {
    let r = RECORDER.load(Ordering::Relaxed);
    if r == 0 || r != super::kmap::cpu_id() + 1 {
        return;
    }
    let i = COUNT.fetch_add(1, Ordering::Relaxed);
    if i < EVENTS {
        EVENT[i].store(((slot as u64) << 48) | (pfn.0 & ((1 << 48) - 1)), Ordering::Relaxed);
    }
}

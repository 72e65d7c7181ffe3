//! The page-fault dispatcher: where a not-present #PF goes first; the arch layer tries a probe fix-up only
//! when no region resolved it.
//!
//! arch knows nothing of regions or swap: at boot, `init` hands it [`dispatch`] as its page-fault
//! handler. A subsystem that fills a range of addresses on demand registers a handler for that range
//! (through [`super::region::Region::claim`]); [`dispatch`] finds the one whose range holds the address
//! and calls it. A fault nobody claims is not resolved, and arch reports it as fatal.
//!
//! # The order of a #PF (the trail docs/swap.md follows)
//!
//! | step | where | outcome |
//! |---|---|---|
//! | 1 | `arch::interrupts::page_fault` | a protection fault (present page) is never a region's: on to step 3 |
//! | 2 | [`dispatch`] | the registered handler of the address's range resolves it (`true`: the access is retried) or not |
//! | 3 | `arch::probe::fixup` | an unresolved fault inside a probe or a region copy (`Region::read`, `write`, …) resumes at its fix-up: the copy reports the page lost |
//! | 4 | `harness::fatal` | anything else unresolved is reported with the decoded error code |
//!
//! # Contract
//!
//! * At most [`MAX_HANDLERS`] ranges at once; ranges never overlap.
//! * A handler runs in the faulting code's context with interrupts off, and must not fault on its own
//!   range (that would be a fault inside the fault path: the table's lock is not held while it runs,
//!   but its own state lock is, and it refuses to wait on it).

use core::ops::Range;

use crate::arch::lock::Lock;
use x86_64::instructions::interrupts::without_interrupts;

/// A range's fault handler: given the faulting address and whether the access was a write, resolve it
/// (`true`: the access is retried) or not (`false`: the fault is fatal).
pub type FaultHandler = fn(addr: u64, write: bool) -> bool;

/// Most ranges registered at once.
pub const MAX_HANDLERS: usize = 8;

/// Why a range could not be registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultError {
    /// The range overlaps one already registered.
    Overlap { start: u64, end: u64 },
    /// [`MAX_HANDLERS`] ranges are registered.
    Full,
    /// An empty range.
    Empty,
}

/// One registered range and its handler.
type Entry = Option<(Range<u64>, FaultHandler)>;

static HANDLERS: Lock<[Entry; MAX_HANDLERS]> = Lock::new("fault.handlers", 90, [const { None }; MAX_HANDLERS]);

/// The handler table's lock's counters.
pub fn lock_stats() -> crate::arch::lock::LockStats {
    HANDLERS.stats()
}

/// Send faults in `range` to `handler` (through [`super::region::Region::claim`] only: a region owns
/// its range, so nobody else may take its faults).
pub(super) fn register(range: Range<u64>, handler: FaultHandler) -> Result<(), FaultError> {
    if range.is_empty() {
        return Err(FaultError::Empty);
    }
    without_interrupts(|| {
        let mut t = HANDLERS.lock();
        if let Some((r, _)) = t.iter().flatten().find(|(r, _)| r.start < range.end && range.start < r.end) {
            return Err(FaultError::Overlap { start: r.start, end: r.end });
        }
        let free = t.iter_mut().find(|e| e.is_none()).ok_or(FaultError::Full)?;
        *free = Some((range, handler));
        Ok(())
    })
}

/// Stop sending faults at `start..` anywhere: the range that starts there is unregistered (when its
/// region is dropped).
pub(super) fn unregister(start: u64) {
    without_interrupts(|| {
        for e in HANDLERS.lock().iter_mut() {
            if e.as_ref().is_some_and(|(r, _)| r.start == start) {
                *e = None;
            }
        }
    })
}

/// The arch layer's page-fault handler for not-present faults: `true` when a registered range resolved
/// the fault at `addr`.
pub fn dispatch(addr: u64, write: bool) -> bool {
    // Copy the handler out, so the table is not locked while it runs.
    let handler = without_interrupts(|| {
        // Another CPU registering a range is waited for; a fault while this CPU edits the table is a
        // fault inside the fault path (unresolved, so fatal).
        let t = HANDLERS.lock_or_recursion().ok()?;
        t.iter().flatten().find(|(r, _)| r.contains(&addr)).map(|(_, h)| *h)
    });
    handler.is_some_and(|h| h(addr, write))
}

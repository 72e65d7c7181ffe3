//! The lines of the page trace that zcache prints (`trace=page:N`, `trace=file:INODE`, the shell's
//! `trace`): frontswap and cleancache calls, tmem's key, the compressed length, where the allocator put
//! the object, and the kmap slots and frames the copy used. `mm::trace` holds which page is followed
//! and records the kmap slots; the algorithm crates print nothing and only answer
//! [`tmem::Tmem::placement`].
//!
//! Every line starts with `trace: ` and names the function (Linux's name where there is one) and its
//! values. docs/swap.md, "The trace of one page", shows a whole journey.

use alloc::format;

use tmem::{Key, Placement, PoolKind};

use crate::mm::trace::{self, EVENTS, SlotUse};
use crate::println;

/// `tmem_put` / `tmem_get` and the allocator's facts for the page under `key`.
pub fn placement(verb: &str, key: Key, p: &Placement) {
    let kind = match p.kind {
        PoolKind::Persistent => "persistent",
        PoolKind::Ephemeral => "ephemeral",
    };
    println!(
        "trace: tmem_{verb}(pool {}, oid {}, index {}): {kind} pool over {}",
        key.pool.0,
        key.oid,
        key.index,
        p.backend.name()
    );
    if p.same_filled {
        println!("trace:   same-filled page: one word kept, no pool object");
        return;
    }
    match p.zsmalloc {
        Some(l) => {
            let spans = match l.next_pfn {
                Some(next) => format!("spans two frames: pfn {:#x} + pfn {:#x}", l.pfn.0, next.0),
                None => format!("in one frame: pfn {:#x}", l.pfn.0),
            };
            let call = if verb == "put" { "zs_malloc" } else { "zs_map_object" };
            println!(
                "trace:   {call}({} bytes): class size {}, zspage {} ({} frames), object index {}, offset {} in \
                 the zspage, {spans}",
                l.size, l.class_size, l.zspage, p.zspage_frames, l.obj, l.offset
            );
        }
        None => match p.zbud {
            Some(l) => println!(
                "trace:   zbud: {} bytes in the {:?} buddy of frame pfn {:#x}, offset {}, {} chunks",
                l.size, l.buddy, l.pfn.0, l.offset, l.chunks
            ),
            None => println!(
                "trace:   {} object of {} bytes, handle {:#x}",
                p.backend.name(),
                p.stored_len,
                p.handle.unwrap_or(0)
            ),
        },
    }
}

/// The kmap slots this CPU mapped since `mm::trace::record`, and which of them held the object.
pub fn slots(object: Option<&Placement>) {
    let page = trace::frame();
    let (uses, n) = trace::take();
    let in_object = |u: &SlotUse| {
        object.and_then(|p| p.zsmalloc).is_some_and(|l| l.pfn == u.pfn || l.next_pfn == Some(u.pfn))
            || object.and_then(|p| p.zbud).is_some_and(|l| l.pfn == u.pfn)
    };
    let in_zspage = |u: &SlotUse| object.is_some_and(|p| p.zspage_pfns.contains(&Some(u.pfn)));
    for u in uses.iter().flatten() {
        let what = if in_object(u) {
            "the object"
        } else if page == Some(u.pfn) {
            "the page's frame"
        } else if in_zspage(u) {
            "another frame of the zspage"
        } else {
            "another pool frame"
        };
        println!("trace:   kmap slot {} -> pfn {:#x} ({what})", u.slot, u.pfn.0);
    }
    if n > EVENTS {
        println!("trace:   ... and {} more kmap mappings", n - EVENTS);
    }
}

/// `zs_free` (or the allocator's free) for the object under `key`, just before it goes.
pub fn free(call: &str, key: Key, p: &Placement) {
    match p.zsmalloc {
        Some(l) => println!(
            "trace: {call}(pool {}, oid {}, index {}): zs_free: class size {}, zspage {}, object index {}",
            key.pool.0, key.oid, key.index, l.class_size, l.zspage, l.obj
        ),
        None => println!(
            "trace: {call}(pool {}, oid {}, index {}): {} free of {} bytes",
            key.pool.0,
            key.oid,
            key.index,
            p.backend.name(),
            p.stored_len
        ),
    }
}

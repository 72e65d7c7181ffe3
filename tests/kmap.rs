//! kmap: nested temporary mappings, two-frame mappings that read as one slice, faults after unmap,
//! slot exhaustion as an error, and interrupt-context mappings that leave the interrupted slots alone.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;

use frame::{Owner, Pfn};
use memmap::layout::KMAP_BASE;
use pagemem::PageMemory;
use zkernel::arch::interrupts::set_breakpoint_hook;
use zkernel::arch::probe::{Fault, read_u64};
use zkernel::harness::testing::Case;
use zkernel::mm::kmap::{self, Kmap, KmapError, KmapPair, TASK_SLOTS};
use zkernel::mm::{KernelMemory, frames};

zkernel::test_kernel!(
    "kmap",
    &[
        Case::returns("nested_guards_use_consecutive_slots", nested_guards_use_consecutive_slots),
        Case::returns("pair_reads_as_one_slice", pair_reads_as_one_slice),
        Case::returns("use_after_unmap_faults", use_after_unmap_faults),
        Case::returns("slot_exhaustion_is_an_error", slot_exhaustion_is_an_error),
        Case::returns("a_frame_is_mapped_once", a_frame_is_mapped_once),
        Case::returns("interrupt_context_has_its_own_slots", interrupt_context_has_its_own_slots),
        Case::returns("page_memory_on_kmap", page_memory_on_kmap),
    ]
);

fn frames(n: usize) -> Vec<Pfn> {
    (0..n).map(|_| frames::alloc_page(Owner::KMAP_TEST).unwrap()).collect()
}

// The wrappers below carry the one SAFETY argument of this file: the test maps only frames it allocated
// with `frames()` and still holds; nothing else in the kernel can reach them.

fn kmap_local(pfn: Pfn) -> Result<Kmap, KmapError> {
    // SAFETY: see above.
    unsafe { kmap::kmap_local(pfn) }
}

fn kmap_pair(a: Pfn, b: Pfn) -> Result<KmapPair, KmapError> {
    // SAFETY: see above.
    unsafe { kmap::kmap_pair(a, b) }
}

fn release(v: Vec<Pfn>) {
    for p in v {
        // SAFETY: no kmap of the frame is live when the test releases it.
        unsafe { frames::free_page(p) }.unwrap();
    }
}

fn nested_guards_use_consecutive_slots() {
    let f = frames(3);
    let s0 = kmap::stats();
    {
        let mut a = kmap_local(f[0]).unwrap();
        let mut b = kmap_local(f[1]).unwrap();
        let mut c = kmap_local(f[2]).unwrap();
        assert_eq!((b.addr() - a.addr(), c.addr() - b.addr()), (4096, 4096));
        assert_eq!(a.addr(), KMAP_BASE, "the first task slot of CPU 0");
        a.bytes().fill(1);
        b.bytes().fill(2);
        c.bytes().fill(3);
    }
    let s1 = kmap::stats();
    assert_eq!((s1.maps - s0.maps, s1.unmaps - s0.unmaps, s1.invlpg - s0.invlpg), (3, 3, 3));
    for (i, &p) in f.iter().enumerate() {
        assert!(kmap_local(p).unwrap().bytes().iter().all(|&x| x == i as u8 + 1));
    }
    release(f);
}

fn pair_reads_as_one_slice() {
    let f = frames(3);
    let (a, b) = (f[0], f[2]);
    assert!(a.0.abs_diff(b.0) > 1, "the two frames are not physically adjacent");
    {
        let mut pair = kmap_pair(a, b).unwrap();
        let bytes = pair.bytes();
        for (i, x) in bytes[4000..4200].iter_mut().enumerate() {
            *x = i as u8;
        }
    }
    let tail = kmap_local(a).unwrap().bytes()[4000..].to_vec();
    let head = kmap_local(b).unwrap().bytes()[..104].to_vec();
    assert_eq!(tail, (0..96u8).collect::<Vec<_>>());
    assert_eq!(head, (96..200u8).collect::<Vec<_>>());
    assert!(matches!(kmap_pair(a, a), Err(KmapError::SameFrame(p)) if p == a));
    release(f);
}

fn use_after_unmap_faults() {
    let f = frames(1);
    let m = kmap_local(f[0]).unwrap();
    let addr = m.addr();
    // SAFETY: `addr` maps our frame while `m` lives.
    assert!(unsafe { read_u64(addr) }.is_ok());
    drop(m);
    // SAFETY: the slot is unmapped now; the probe catches the fault.
    assert_eq!(unsafe { read_u64(addr) }, Err(Fault { vector: 14, error_code: 0, address: Some(addr) }));
    release(f);
}

fn slot_exhaustion_is_an_error() {
    let f = frames(TASK_SLOTS + 1);
    {
        let mut held = Vec::new();
        for (i, &p) in f[..TASK_SLOTS].iter().enumerate() {
            let mut m = kmap_local(p).unwrap();
            m.bytes()[0] = i as u8;
            held.push(m);
        }
        assert_eq!(kmap_local(f[TASK_SLOTS]).unwrap_err(), KmapError::NoFreeSlot);
        assert!(kmap_pair(f[TASK_SLOTS], f[0]).is_err());
        for (i, m) in held.iter_mut().enumerate() {
            assert_eq!(m.bytes()[0], i as u8, "the refused kmap disturbed no slot");
        }
        while let Some(m) = held.pop() {
            drop(m);
        }
    }
    assert!(kmap_local(f[TASK_SLOTS]).is_ok(), "slots are free again");
    release(f);
}

fn a_frame_is_mapped_once() {
    let f = frames(1);
    let _m = kmap_local(f[0]).unwrap();
    assert_eq!(kmap_local(f[0]).unwrap_err(), KmapError::AlreadyMapped(f[0]));
    drop(_m);
    release(f);
}

static IRQ_FRAME: spin::Mutex<Option<Pfn>> = spin::Mutex::new(None);
static IRQ_ADDR: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

fn in_handler() {
    let pfn = IRQ_FRAME.lock().expect("frame set by the test");
    let mut m = kmap_local(pfn).unwrap();
    m.bytes().fill(0xee);
    IRQ_ADDR.store(m.addr(), core::sync::atomic::Ordering::SeqCst);
}

fn interrupt_context_has_its_own_slots() {
    let f = frames(3);
    *IRQ_FRAME.lock() = Some(f[2]);
    let mut a = kmap_local(f[0]).unwrap();
    let mut b = kmap_local(f[1]).unwrap();
    a.bytes().fill(0xaa);
    b.bytes().fill(0xbb);
    set_breakpoint_hook(Some(in_handler));
    x86_64::instructions::interrupts::int3();
    set_breakpoint_hook(None);
    let irq_addr = IRQ_ADDR.load(core::sync::atomic::Ordering::SeqCst);
    assert_eq!(irq_addr, KMAP_BASE + TASK_SLOTS as u64 * 4096, "the handler used the first interrupt slot");
    assert!(a.bytes().iter().all(|&x| x == 0xaa) && b.bytes().iter().all(|&x| x == 0xbb), "task slots intact");
    let c = kmap_local(f[2]).unwrap();
    assert_eq!(c.addr(), b.addr() + 4096, "the task stack top did not move");
    assert!(kmap_local(f[2]).is_err());
    drop(c);
    drop(b);
    drop(a);
    assert!(kmap_local(f[2]).unwrap().bytes().iter().all(|&x| x == 0xee));
    release(f);
}

fn page_memory_on_kmap() {
    use pagemem::{FrameSource, MemError};
    let mut mem = KernelMemory::new(Owner::POOL);
    let f = [mem.alloc_frame(Owner::POOL).unwrap(), mem.alloc_frame(Owner::POOL).unwrap()];
    mem.with_pages2(f[0], f[1], |s| s[4090..4102].copy_from_slice(b"across pages")).unwrap();
    let mut got = [0u8; 12];
    mem.with_page(f[0], |p| got[..6].copy_from_slice(&p[4090..])).unwrap();
    mem.with_page(f[1], |p| got[6..].copy_from_slice(&p[..6])).unwrap();
    assert_eq!(&got, b"across pages");
    // A frame of another owner is refused, never mapped: a pool cannot reach the kernel's memory.
    let other = frames(1);
    assert_eq!(mem.with_page(other[0], |_| ()).unwrap_err(), MemError::Foreign(other[0]));
    assert_eq!(mem.with_pages2(f[0], other[0], |_| ()).unwrap_err(), MemError::Foreign(other[0]));
    assert!(mem.free_frame(other[0]).is_err(), "KernelMemory frees only its owner's frames");
    assert!(mem.alloc_frame(Owner::WORKLOAD).is_err(), "KernelMemory allocates only for its owner");
    release(other);
    for p in f {
        mem.free_frame(p).unwrap();
    }
}

//! zbud on the host arena: the header's example, every error, eviction, the shared model, and density.

use std::time::Instant;

use frame::{FrameError, Owner, Pfn};
use pagemem::{FrameSource, HostMemory, MemError, PAGE, PageMemory};
use zpool::slotlist::{NIL, unlink};
use zpool::testing::{self, Config, Rng};
use zpool::{Handle, MapMode, PoolError, PoolStats, ZPool};

use crate::{Buddy, CHUNK_SIZE, HEADER_MAGIC, Location, MAX_SIZE, NCHUNKS, VerifyError, Zbud, ZbudStats};

type Pool = Zbud<HostMemory>;

fn pool(frames: usize) -> Pool {
    Zbud::new(HostMemory::new(frames))
}

/// Allocate `size` bytes and fill them with `byte`.
fn put<M: PageMemory + FrameSource>(z: &mut Zbud<M>, size: usize, byte: u8) -> Handle {
    let h = z.malloc(size).unwrap();
    z.map(h, MapMode::WriteOnly, |s| s.fill(byte)).unwrap();
    h
}

fn get<M: PageMemory + FrameSource>(z: &mut Zbud<M>, h: Handle) -> Vec<u8> {
    z.map(h, MapMode::ReadOnly, |s| s.to_vec()).unwrap()
}

/// Everything observable about a pool short of its objects' bytes.
fn snapshot<M: PageMemory + FrameSource>(z: &Zbud<M>) -> (PoolStats, ZbudStats, Vec<Pfn>) {
    (z.stats(), z.zbud_stats(), z.lru())
}

/// The header bytes of `pfn`.
fn header_of(z: &mut Pool, pfn: Pfn) -> Vec<u8> {
    z.memory_mut().with_page(pfn, |p| p[..CHUNK_SIZE].to_vec()).unwrap()
}

fn expected_header(slot: u32, sizes: [u16; 2]) -> Vec<u8> {
    let mut h = vec![0; CHUNK_SIZE];
    h[..4].copy_from_slice(&HEADER_MAGIC);
    h[4..8].copy_from_slice(&slot.to_le_bytes());
    h[8..10].copy_from_slice(&sizes[0].to_le_bytes());
    h[10..12].copy_from_slice(&sizes[1].to_le_bytes());
    h[12] = sizes[0].div_ceil(64) as u8;
    h[13] = sizes[1].div_ceil(64) as u8;
    h
}

#[test]
fn side_table_entries_are_as_documented() {
    assert_eq!(core::mem::size_of::<crate::Page>(), 56, "the module header says 56 bytes a slot");
}

#[test]
fn worked_example_from_the_header() {
    let mut z = pool(16);
    let a = put(&mut z, 1000, 0xaa);
    let la = z.locate(a).unwrap();
    let p = la.pfn;
    assert_eq!(la, Location { pfn: p, slot: 0, buddy: Buddy::First, offset: 64, size: 1000, chunks: 16 });
    assert_eq!(z.zbud_stats(), ZbudStats { buddied_pages: 0, unbuddied_pages: 1, chunks_used: 16, objects_evicted: 0 });

    let b = put(&mut z, 2000, 0xbb);
    let lb = z.locate(b).unwrap();
    assert_eq!(lb, Location { pfn: p, slot: 0, buddy: Buddy::Last, offset: 2048, size: 2000, chunks: 32 });
    assert_eq!(z.total_pages(), 1, "1000 and 2000 bytes share one page");
    assert_eq!(header_of(&mut z, p), expected_header(0, [1000, 2000]));
    // The page's bytes: header, a's 1000 bytes, the 15-chunk gap, b, 48 bytes of slack.
    let page = z.memory_mut().with_page(p, |pg| pg.to_vec()).unwrap();
    assert!(page[64..1064].iter().all(|&x| x == 0xaa));
    assert!(page[2048..4048].iter().all(|&x| x == 0xbb));

    let c = put(&mut z, 500, 0xcc);
    let lc = z.locate(c).unwrap();
    let q = lc.pfn;
    assert_ne!(q, p, "a buddied page takes no third object, though 15 chunks are free");
    assert_eq!((lc.slot, lc.buddy, lc.offset, lc.chunks), (1, Buddy::First, 64, 8));
    assert_eq!(z.total_pages(), 2);
    assert_eq!(z.lru(), vec![q, p]);
    assert_eq!(z.zbud_stats(), ZbudStats { buddied_pages: 1, unbuddied_pages: 1, chunks_used: 56, objects_evicted: 0 });

    z.free(a).unwrap();
    assert_eq!(z.free(a), Err(PoolError::StaleHandle(a)));
    assert_eq!(header_of(&mut z, p), expected_header(0, [0, 2000]));
    assert_eq!(z.lru(), vec![q, p], "free leaves the LRU alone");
    assert_eq!(z.zbud_stats().unbuddied_pages, 2);

    let mut seen = Vec::new();
    let r = z.evict(&mut |h, bytes| {
        seen.push((h, bytes.to_vec()));
        true
    });
    assert_eq!(r, Ok(1));
    assert_eq!(seen, vec![(b, vec![0xbb; 2000])], "P was the LRU tail: b written back, exact bytes");
    assert_eq!(z.total_pages(), 1);
    assert_eq!(z.lru(), vec![q]);
    assert_eq!(z.size_of(b), Err(PoolError::StaleHandle(b)));
    assert_eq!(get(&mut z, c), vec![0xcc; 500]);
    let s = z.stats();
    assert_eq!((s.objects, s.object_bytes, s.pages_evicted, s.allocs, s.frees), (1, 500, 1, 3, 2));
    z.verify().unwrap();
    z.free(c).unwrap();
    assert_eq!(z.total_pages(), 0);
    assert_eq!(z.memory_mut().frames().stats().used, 0, "every frame went back to the arena");
}

#[test]
fn first_fit_takes_the_smallest_list_that_fits() {
    let mut z = pool(16);
    // Three unbuddied pages with 63-40 = 23, 63-35 = 28 and 63-33 = 30 free chunks (none fits beside another).
    let big = put(&mut z, 40 * 64, 1);
    let mid = put(&mut z, 35 * 64, 2);
    let small = put(&mut z, 33 * 64, 3);
    assert_eq!(z.total_pages(), 3);
    let pfn = |z: &Pool, h| z.locate(h).unwrap().pfn;
    // 25 chunks: lists 25.. hold the 28- and 30-chunk gaps; the 28 one is the smaller.
    let h = z.malloc(25 * 64).unwrap();
    assert_eq!(pfn(&z, h), pfn(&z, mid));
    assert_eq!(z.locate(h).unwrap().buddy, Buddy::Last);
    // 23 chunks exactly fill the gap of the 40-chunk page.
    let h = z.malloc(23 * 64).unwrap();
    assert_eq!(pfn(&z, h), pfn(&z, big));
    assert_eq!(z.locate(h).unwrap().offset, PAGE - 23 * 64);
    let h = z.malloc(1).unwrap();
    assert_eq!(pfn(&z, h), pfn(&z, small));
    assert_eq!(z.zbud_stats().buddied_pages, 3);
    z.verify().unwrap();
}

#[test]
fn a_page_with_a_max_size_object_takes_nothing_else() {
    let mut z = pool(16);
    let h = put(&mut z, MAX_SIZE, 7);
    assert_eq!(z.locate(h).unwrap().chunks, NCHUNKS);
    let tiny = z.malloc(1).unwrap();
    assert_ne!(z.locate(tiny).unwrap().pfn, z.locate(h).unwrap().pfn);
    assert_eq!(get(&mut z, h), vec![7; MAX_SIZE]);
    z.free(tiny).unwrap();
    // Free the first buddy of a page whose last buddy was never used: the page goes back.
    z.free(h).unwrap();
    assert_eq!(z.total_pages(), 0);
    z.verify().unwrap();
}

#[test]
fn zero_size_is_refused_and_changes_nothing() {
    let mut z = pool(4);
    let h = put(&mut z, 100, 1);
    let before = snapshot(&z);
    assert_eq!(z.malloc(0), Err(PoolError::ZeroSize));
    assert_eq!(snapshot(&z), before);
    assert_eq!(get(&mut z, h), vec![1; 100]);
}

#[test]
fn too_large_is_refused_and_changes_nothing() {
    let mut z = pool(4);
    let h = put(&mut z, 100, 1);
    let before = snapshot(&z);
    for size in [MAX_SIZE + 1, PAGE, usize::MAX] {
        assert_eq!(z.malloc(size), Err(PoolError::TooLarge { size, max: 4032 }));
    }
    assert_eq!(snapshot(&z), before);
    assert_eq!(z.max_size(), 4032);
    assert_eq!(z.name(), "zbud");
    assert_eq!(get(&mut z, h), vec![1; 100]);
}

#[test]
fn out_of_memory_counts_a_failure_and_changes_nothing_else() {
    let mut z = pool(2);
    let a = put(&mut z, 3000, 1);
    let b = put(&mut z, 3000, 2);
    let (stats, zs, lru) = snapshot(&z);
    assert_eq!(z.malloc(3000), Err(PoolError::OutOfMemory));
    assert_eq!(snapshot(&z), (PoolStats { failures: 1, ..stats }, zs, lru));
    // A small object still fits beside one of them: no frame needed.
    let c = put(&mut z, 1000, 3);
    assert_eq!(z.total_pages(), 2);
    assert_eq!((get(&mut z, a), get(&mut z, b), get(&mut z, c)), (vec![1; 3000], vec![2; 3000], vec![3; 1000]));
    z.verify().unwrap();
}

#[test]
fn stale_and_forged_handles_are_refused_and_change_nothing() {
    let mut z = pool(8);
    let keep = put(&mut z, 700, 9);
    let gone = put(&mut z, 700, 8);
    let gone_page = put(&mut z, 4000, 7);
    z.free(gone).unwrap();
    z.free(gone_page).unwrap();
    let live = keep.raw();
    let forged = [
        gone,
        gone_page,
        Handle::from_raw(0),
        Handle::from_raw(u64::MAX),
        Handle::from_raw(live ^ 1 << 5),    // another slot, never used
        Handle::from_raw(live ^ 1 << 24),   // the other buddy, free
        Handle::from_raw(live ^ 1 << 30),   // another generation
        Handle::from_raw(live ^ 1 << 50),   // another pool's tag
        Handle::from_raw(live | 0xff_ffff), // slot 2^24 - 1
    ];
    let before = snapshot(&z);
    for h in forged {
        assert_eq!(z.free(h), Err(PoolError::StaleHandle(h)), "{h:?}");
        for mode in [MapMode::ReadOnly, MapMode::WriteOnly, MapMode::ReadWrite] {
            assert_eq!(z.map(h, mode, |_| panic!("called")), Err(PoolError::StaleHandle(h)));
        }
        assert_eq!(z.size_of(h), Err(PoolError::StaleHandle(h)));
        assert_eq!(z.locate(h), Err(PoolError::StaleHandle(h)));
        assert_eq!(snapshot(&z), before);
    }
    assert_eq!(get(&mut z, keep), vec![9; 700]);
    z.verify().unwrap();
}

#[test]
fn a_reused_place_gets_a_new_generation() {
    let mut z = pool(8);
    let h1 = put(&mut z, 500, 1);
    let l1 = z.locate(h1).unwrap();
    z.free(h1).unwrap();
    let h2 = put(&mut z, 500, 2);
    let l2 = z.locate(h2).unwrap();
    assert_eq!((l2.slot, l2.buddy, l2.offset), (l1.slot, l1.buddy, l1.offset), "the same place again");
    assert_ne!(h2, h1);
    assert_eq!(z.map(h1, MapMode::ReadOnly, |s| s.to_vec()), Err(PoolError::StaleHandle(h1)));
    assert_eq!(get(&mut z, h2), vec![2; 500]);
}

#[test]
fn another_pools_handles_are_refused() {
    let (mut a, mut b) = (pool(4), pool(4));
    let ha = put(&mut a, 64, 1);
    let hb = put(&mut b, 64, 2);
    assert_eq!(a.locate(ha).unwrap().slot, b.locate(hb).unwrap().slot, "same place in each pool");
    assert_ne!(ha, hb);
    assert_eq!(a.free(hb), Err(PoolError::StaleHandle(hb)));
    assert_eq!(b.size_of(ha), Err(PoolError::StaleHandle(ha)));
}

#[test]
fn map_hands_out_exactly_the_object() {
    let mut z = pool(4);
    let first = z.malloc(100).unwrap();
    let last = z.malloc(130).unwrap();
    for (h, n) in [(first, 100), (last, 130)] {
        for mode in [MapMode::ReadOnly, MapMode::WriteOnly, MapMode::ReadWrite] {
            assert_eq!(z.map(h, mode, |s| s.len()), Ok(n));
        }
    }
    z.map(first, MapMode::WriteOnly, |s| s.fill(1)).unwrap();
    z.map(last, MapMode::WriteOnly, |s| s.fill(2)).unwrap();
    z.map(first, MapMode::ReadWrite, |s| s[..10].fill(3)).unwrap();
    let mut want = vec![1; 100];
    want[..10].fill(3);
    assert_eq!(get(&mut z, first), want);
    assert_eq!(get(&mut z, last), vec![2; 130]);
    // The last buddy starts on its first chunk: 130 bytes take 3 chunks, 4096 - 192.
    assert_eq!(z.locate(last).unwrap().offset, PAGE - 192);
    let pfn = z.locate(first).unwrap().pfn;
    assert_eq!(header_of(&mut z, pfn), expected_header(0, [100, 130]), "no object write reached the header");
}

#[test]
fn compact_frees_nothing() {
    let mut z = pool(8);
    let hs: Vec<Handle> = (0..4).map(|i| put(&mut z, 3000, i)).collect();
    for &h in &hs[1..3] {
        z.free(h).unwrap();
    }
    let before = snapshot(&z);
    assert_eq!(z.compact(), Ok(0));
    assert_eq!(snapshot(&z), before);
    assert_eq!(z.stats().pages_compacted, 0);
}

#[test]
fn eviction_follows_the_lru_and_writes_back_exact_bytes() {
    let mut z = pool(8);
    let a = put(&mut z, 2000, 0xa0);
    let b = put(&mut z, 3000, 0xb0);
    let c = put(&mut z, 3000, 0xc0);
    // 1500 bytes (24 chunks) fit only beside a (31 free chunks; b's and c's pages have 16), and moving
    // a's page to the front: LRU a, c, b.
    let a2 = put(&mut z, 1500, 0xa2);
    let page = |z: &Pool, h| z.locate(h).unwrap().pfn;
    assert_eq!(page(&z, a2), page(&z, a));
    assert_eq!(z.lru(), vec![page(&z, a), page(&z, c), page(&z, b)]);
    // Reading does not move a page.
    assert_eq!(get(&mut z, b), vec![0xb0; 3000]);

    let mut order = Vec::new();
    let mut wb = |h: Handle, bytes: &[u8]| {
        order.push((h, bytes.to_vec()));
        true
    };
    for _ in 0..3 {
        assert_eq!(z.evict(&mut wb), Ok(1));
    }
    assert_eq!(z.evict(&mut wb), Err(PoolError::Empty));
    let want = vec![(b, vec![0xb0; 3000]), (c, vec![0xc0; 3000]), (a, vec![0xa0; 2000]), (a2, vec![0xa2; 1500])];
    assert_eq!(order, want, "LRU tail first; within a page, first buddy then last");
    let s = z.stats();
    assert_eq!((s.objects, s.pages, s.pages_evicted, s.frees, z.zbud_stats().objects_evicted), (0, 0, 3, 4, 4));
    for h in [a, a2, b, c] {
        assert_eq!(z.size_of(h), Err(PoolError::StaleHandle(h)));
    }
    assert_eq!(z.memory_mut().frames().stats().used, 0);
    z.verify().unwrap();
}

#[test]
fn refused_writeback_changes_nothing() {
    let mut z = pool(8);
    let first = put(&mut z, 1500, 1);
    let last = put(&mut z, 2400, 2);
    let other = put(&mut z, 3000, 3);
    let before = snapshot(&z);
    for refuse in [0, 1] {
        let mut calls = Vec::new();
        let r = z.evict(&mut |h, _| {
            calls.push(h);
            calls.len() - 1 != refuse
        });
        assert_eq!(r, Err(PoolError::EvictRefused));
        assert_eq!(calls, [first, last][..=refuse], "stops at the first refusal");
        assert_eq!(snapshot(&z), before);
        assert_eq!((get(&mut z, first), get(&mut z, last)), (vec![1; 1500], vec![2; 2400]));
        z.verify().unwrap();
    }
    // Nothing moved: the same page is the next victim, and now it goes.
    assert_eq!(z.evict(&mut |_, _| true), Ok(1));
    assert_eq!(z.size_of(first), Err(PoolError::StaleHandle(first)));
    assert_eq!(get(&mut z, other), vec![3; 3000]);
}

#[test]
fn eviction_on_an_empty_pool_is_empty() {
    let mut z = pool(4);
    assert_eq!(z.evict(&mut |_, _| panic!("no objects")), Err(PoolError::Empty));
    let h = z.malloc(10).unwrap();
    z.free(h).unwrap();
    assert_eq!(z.evict(&mut |_, _| panic!("no objects")), Err(PoolError::Empty));
    assert_eq!(z.stats().pages_evicted, 0);
}

/// Host memory that fails on demand.
#[derive(Debug)]
struct Flaky {
    mem: HostMemory,
    fail_map: bool,
    fail_free: bool,
    /// Hand out only the first 100 bytes of each page.
    short: bool,
}

impl PageMemory for Flaky {
    fn with_page<R>(&mut self, pfn: Pfn, f: impl FnOnce(&mut [u8]) -> R) -> Result<R, MemError> {
        if self.fail_map {
            return Err(MemError::NoSlot);
        }
        let short = self.short;
        self.mem.with_page(pfn, |p| if short { f(&mut p[..100]) } else { f(p) })
    }

    fn with_pages2<R>(&mut self, a: Pfn, b: Pfn, f: impl FnOnce(&mut [u8]) -> R) -> Result<R, MemError> {
        self.mem.with_pages2(a, b, f)
    }
}

impl FrameSource for Flaky {
    fn alloc_frame(&mut self, owner: Owner) -> Result<Pfn, FrameError> {
        self.mem.alloc_frame(owner)
    }

    fn free_frame(&mut self, pfn: Pfn) -> Result<(), FrameError> {
        if self.fail_free { Err(FrameError::Foreign(pfn)) } else { self.mem.free_frame(pfn) }
    }
}

fn flaky() -> Zbud<Flaky> {
    Zbud::new(Flaky { mem: HostMemory::new(8), fail_map: false, fail_free: false, short: false })
}

#[test]
fn mapping_failures_are_reported_and_change_nothing() {
    let mut z = flaky();
    // 3000 bytes leave 16 free chunks, 3500 leave 8: the 500-byte object (8 chunks) joins the second page.
    let lonely = put(&mut z, 3000, 1);
    let pair = [put(&mut z, 3500, 2), put(&mut z, 500, 3)];
    assert_eq!(z.zbud_stats().buddied_pages, 1);
    let (stats, zs, lru) = snapshot(&z);
    z.memory_mut().fail_map = true;
    let err = Some(PoolError::Memory(MemError::NoSlot));
    // A new page: the frame goes back, and the failure is counted.
    assert_eq!(z.malloc(4000).err(), err);
    assert_eq!(z.memory_mut().mem.frames().stats().used, 2, "the new frame was given back");
    // Into the existing unbuddied page: its header cannot be written.
    assert_eq!(z.malloc(100).err(), err);
    assert_eq!(snapshot(&z), (PoolStats { failures: 2, ..stats }, zs, lru.clone()));
    // Free of an object whose page stays: its header cannot be written.
    assert_eq!(z.free(pair[0]).err(), err);
    assert_eq!(z.map(lonely, MapMode::ReadOnly, |_| ()).err(), err);
    assert_eq!(z.evict(&mut |_, _| panic!("nothing copied")).err(), err);
    assert_eq!(z.verify(), Err(VerifyError::Memory(MemError::NoSlot)));
    assert_eq!(snapshot(&z), (PoolStats { failures: 2, ..stats }, zs, lru));
    z.memory_mut().fail_map = false;
    assert_eq!(
        (get(&mut z, lonely), get(&mut z, pair[0]), get(&mut z, pair[1])),
        (vec![1; 3000], vec![2; 3500], vec![3; 500])
    );
    z.verify().unwrap();
}

#[test]
fn frame_failures_are_reported_and_change_nothing() {
    let mut z = flaky();
    // 3000 bytes leave 16 free chunks, 3500 leave 8: the 500-byte object (8 chunks) joins the second page.
    let lonely = put(&mut z, 3000, 1);
    let pair = [put(&mut z, 3500, 2), put(&mut z, 500, 3)];
    assert_eq!(z.zbud_stats().buddied_pages, 1);
    let before = snapshot(&z);
    z.memory_mut().fail_free = true;
    let pfn = z.locate(lonely).unwrap().pfn;
    // Freeing the only object of a page must give the frame back, which fails.
    assert_eq!(z.free(lonely), Err(PoolError::Frame(FrameError::Foreign(pfn))));
    assert_eq!(snapshot(&z), before);
    // Evicting writes back (the copies are redundant then) but cannot free the frame.
    let mut calls = 0;
    assert_eq!(
        z.evict(&mut |_, _| {
            calls += 1;
            true
        }),
        Err(PoolError::Frame(FrameError::Foreign(pfn)))
    );
    assert_eq!(calls, 1);
    assert_eq!(snapshot(&z), before);
    z.memory_mut().fail_free = false;
    assert_eq!(get(&mut z, lonely), vec![1; 3000]);
    z.free(lonely).unwrap();
    z.free(pair[1]).unwrap();
    z.free(pair[0]).unwrap();
    assert_eq!(z.total_pages(), 0);
    z.verify().unwrap();
}

#[test]
fn a_short_page_is_reported_not_indexed() {
    let mut z = flaky();
    let first = put(&mut z, 30, 1);
    let last = put(&mut z, 3000, 2);
    let pfn = z.locate(last).unwrap().pfn;
    z.memory_mut().short = true;
    let foreign = Some(PoolError::Memory(MemError::Foreign(pfn)));
    // The first buddy (bytes 64..94) is within the 100 bytes; the last is not.
    assert_eq!(z.map(first, MapMode::ReadOnly, |s| s.to_vec()), Ok(vec![1; 30]));
    assert_eq!(z.map(last, MapMode::ReadOnly, |_| ()).err(), foreign);
    let before = snapshot(&z);
    assert_eq!(z.evict(&mut |_, _| panic!("not copied")).err(), foreign);
    assert_eq!(snapshot(&z), before);
}

#[test]
fn verify_notices_a_scribbled_header() {
    let mut z = pool(4);
    let h = put(&mut z, 200, 1);
    z.verify().unwrap();
    let Location { pfn, slot, .. } = z.locate(h).unwrap();
    z.memory_mut().with_page(pfn, |p| p[9] ^= 1).unwrap();
    assert_eq!(z.verify(), Err(VerifyError::Header { slot, pfn }));
}

/// A pool with one vacant slot (0) and one live page (slot 1, one object), for the side-table checks.
fn vacant_and_live() -> (Pool, u32, Handle) {
    let mut z = pool(4);
    let gone = put(&mut z, 200, 1);
    let h = put(&mut z, 4000, 2);
    z.free(gone).unwrap();
    z.verify().unwrap();
    let slot = z.locate(h).unwrap().slot;
    (z, slot, h)
}

#[test]
fn verify_notices_a_vacant_slot_left_on_a_list() {
    for scribble in [
        |p: &mut crate::Page| p.lru.next = 1,
        |p: &mut crate::Page| p.list.prev = 1,
        |p: &mut crate::Page| p.buds[1].size = 1,
    ] {
        let (mut z, live, _) = vacant_and_live();
        assert_eq!((z.free_slots.as_slice(), live), (&[0][..], 1));
        scribble(&mut z.pages[0]);
        assert_eq!(z.verify(), Err(VerifyError::Lists { slot: 0 }));
    }
}

#[test]
fn verify_notices_an_object_larger_than_a_page_holds() {
    // Both buddies in use, so the class (buddied) still agrees; only the size is impossible.
    let mut z = pool(4);
    let a = put(&mut z, 100, 1);
    put(&mut z, 100, 2);
    let slot = z.locate(a).unwrap().slot;
    z.verify().unwrap();
    z.pages[slot as usize].buds[0].size = MAX_SIZE as u16 + 1;
    assert_eq!(z.verify(), Err(VerifyError::Lists { slot }));
}

#[test]
fn verify_notices_each_wrong_counter() {
    let scribbles: [fn(&mut Pool); 4] =
        [|z| z.stats.pages += 1, |z| z.stats.objects -= 1, |z| z.stats.object_bytes += 1, |z| z.chunks_used += 1];
    for scribble in scribbles {
        let (mut z, _, _) = vacant_and_live();
        scribble(&mut z);
        assert_eq!(z.verify(), Err(VerifyError::Counters));
    }
}

#[test]
fn verify_notices_broken_free_slots_and_lists() {
    type Scribble = fn(&mut Pool);
    let cases: [(Scribble, VerifyError); 5] = [
        (|z| z.free_slots.push(0), VerifyError::Lists { slot: 0 }),
        (|z| z.free_slots.push(1), VerifyError::Lists { slot: 1 }),
        (|z| z.free_slots.push(7), VerifyError::Lists { slot: 7 }),
        (|z| unlink(&mut z.pages, &mut z.lru, 1, crate::Chain::Lru), VerifyError::Lru),
        (
            |z| {
                let (pages, list) = z.class_list(z.pages[1].class);
                unlink(pages, list, 1, crate::Chain::Class);
            },
            VerifyError::Lists { slot: NIL },
        ),
    ];
    for (scribble, want) in cases {
        let (mut z, live, _) = vacant_and_live();
        assert_eq!(live, 1);
        scribble(&mut z);
        assert_eq!(z.verify(), Err(want));
    }
}

#[test]
fn metadata_growth_is_the_page_table_block_a_new_page_would_take() {
    let entry = size_of::<crate::Page>();
    let mut z = pool(16);
    assert_eq!(z.metadata_growth(), 4 * entry, "an empty table grows to 4 entries");
    let mut held: Vec<Handle> = (0..4).map(|k| put(&mut z, MAX_SIZE, k)).collect();
    assert_eq!((z.pages.len(), z.pages.capacity()), (4, 4));
    assert_eq!(z.metadata_growth(), 8 * entry, "a full table doubles");
    held.push(put(&mut z, MAX_SIZE, 4));
    assert_eq!((z.pages.len(), z.pages.capacity()), (5, 8));
    assert_eq!(z.metadata_growth(), 0, "room for three more pages");
    for k in 5..8 {
        held.push(put(&mut z, MAX_SIZE, k));
    }
    assert_eq!(z.metadata_growth(), 16 * entry);
    z.free(held[2]).unwrap();
    assert_eq!(z.metadata_growth(), 0, "a free slot is reused before the table grows");
}

#[test]
fn debug_names_the_pool_and_its_slots() {
    let mut z = pool(4);
    put(&mut z, 100, 1);
    let shown = format!("{z:?}");
    assert!(shown.starts_with("Zbud { tag: ") && shown.contains("slots: 1, stats: PoolStats {"), "{shown}");
}

/// One run of the shared model; prints the report and time.
fn model(seed: u64, ops: u64, frames: usize, evict: bool) -> testing::Report {
    model_with(Config { evict, check_every: 2048, ..Config::new(seed, ops) }, frames)
}

fn model_with(cfg: Config, frames: usize) -> testing::Report {
    let (seed, ops, evict) = (cfg.seed, cfg.ops, cfg.evict);
    let mut z = pool(frames);
    let t = Instant::now();
    let r = testing::run_with(&mut z, &cfg, |z| z.verify().unwrap());
    println!("zbud model seed {seed}, {ops} ops, {frames} frames, evict {evict}: {:?}\n{r:?}", t.elapsed());
    assert_eq!(r.final_pages, 0);
    assert_eq!(z.memory_mut().frames().stats().used, 0, "every frame went back");
    z.verify().unwrap();
    r
}

#[test]
fn model_with_eviction_seed_1() {
    let r = model(1, 100_000, 1024, true);
    assert!(r.evictions > 1000 && r.evict_refused > 100 && r.malloc_oom == 0);
}

#[test]
fn model_with_eviction_seed_2() {
    let r = model(2, 100_000, 1024, true);
    assert!(r.evictions > 1000 && r.malloc_oom == 0);
}

#[test]
fn model_without_eviction_seed_3() {
    let r = model(3, 100_000, 1024, false);
    assert_eq!((r.evictions, r.malloc_oom), (0, 0));
}

#[test]
fn model_under_memory_pressure_seed_4() {
    // 96 frames for up to 256 objects: mallocs run out of memory, and eviction makes room again.
    let r = model(4, 100_000, 96, true);
    assert!(r.malloc_oom > 100, "{}", r.malloc_oom);
}

#[test]
fn model_with_few_objects_seed_5() {
    // At most 8 objects: pages empty and slots are reused all the time, so generations carry the load.
    let r = model_with(Config { max_live: 8, evict: true, check_every: 512, ..Config::new(5, 100_000) }, 64);
    assert!(r.evictions > 1000 && r.stale_probes > 1000);
}

/// Pages per object for `sizes`, with the arena large enough for one page each.
fn pages_per_object(sizes: &[usize]) -> (f64, ZbudStats, PoolStats) {
    let mut z = pool(sizes.len());
    for &s in sizes {
        z.malloc(s).unwrap();
    }
    z.verify().unwrap();
    (z.total_pages() as f64 / sizes.len() as f64, z.zbud_stats(), z.stats())
}

#[test]
fn efficiency_figures() {
    let (ratio, zs, s) = pages_per_object(&[3072; 10_000]);
    println!("zbud, 10,000 objects of 3072 bytes: {} pages, {ratio:.3} pages/object, {zs:?}", s.pages);
    assert_eq!(s.pages, 10_000, "two 48-chunk objects never share a 63-chunk page");

    let mut rng = Rng::new(2024);
    let sizes: Vec<usize> = (0..10_000).map(|_| rng.between(32, MAX_SIZE)).collect();
    let (ratio, zs, s) = pages_per_object(&sizes);
    let fill = s.object_bytes as f64 / (s.pages as f64 * PAGE as f64);
    println!(
        "zbud, 10,000 objects uniform in 32..={MAX_SIZE}: {} pages, {ratio:.3} pages/object, \
         {:.1} % of page bytes hold data, {zs:?}",
        s.pages,
        fill * 100.0
    );
    assert!((0.5..1.0).contains(&ratio), "{ratio}");
}

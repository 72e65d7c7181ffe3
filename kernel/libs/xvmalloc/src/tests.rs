//! xvmalloc on the host arena: the list and bitmap math, the header's example, splitting, merging, every
//! error, density, and the shared model.

use std::time::Instant;

use frame::{FrameError, Owner, Pfn};
use pagemem::{FrameSource, HostMemory, MemError, PAGE, PageMemory};
use zpool::testing::{self, Config};
use zpool::{Handle, MapMode, PoolError, PoolStats, ZPool};

use crate::*;

type Pool = Xvmalloc<HostMemory>;

fn pool(frames: usize) -> Pool {
    Xvmalloc::new(HostMemory::new(frames))
}

/// Allocate `size` bytes and fill them with `byte`.
fn put<M: PageMemory + FrameSource>(z: &mut Xvmalloc<M>, size: usize, byte: u8) -> Handle {
    let h = z.malloc(size).unwrap();
    z.map(h, MapMode::WriteOnly, |s| s.fill(byte)).unwrap();
    h
}

fn get<M: PageMemory + FrameSource>(z: &mut Xvmalloc<M>, h: Handle) -> Vec<u8> {
    z.map(h, MapMode::ReadOnly, |s| s.to_vec()).unwrap()
}

/// Everything observable about a pool short of its pages' bytes.
fn snapshot<M: PageMemory + FrameSource>(z: &Xvmalloc<M>) -> (PoolStats, XvStats, u64, [u64; MAX_FLI], Vec<Pfn>) {
    let fl = z.free_lists();
    (z.stats(), z.xv_stats(), fl.flbitmap(), fl.slbitmap(), z.pages())
}

/// A used block at `offset` with requested `size`.
fn used(offset: usize, size: u16, prev: u16, prev_free: bool) -> Block {
    Block { offset, header: BlockHeader { size, prev, free: false, prev_free } }
}

/// A free block at `offset` with `size` body bytes (a free block never follows a free one).
fn free(offset: usize, size: u16, prev: u16) -> Block {
    Block { offset, header: BlockHeader { size, prev, free: true, prev_free: false } }
}

fn page_of(z: &Pool, h: Handle) -> Pfn {
    z.locate(h).unwrap().pfn
}

fn offset_of(z: &Pool, h: Handle) -> usize {
    z.locate(h).unwrap().offset
}

/// The pool's pages, each as bytes.
fn page_bytes(z: &mut Pool) -> Vec<Vec<u8>> {
    z.pages().into_iter().map(|p| z.memory_mut().with_page(p, |b| b.to_vec()).unwrap()).collect()
}

#[test]
fn constants_follow_linux() {
    assert_eq!((XV_ALIGN, HEADER_SIZE, XV_MIN_ALLOC_SIZE, XV_MAX_ALLOC_SIZE), (4, 4, 32, 4092));
    assert_eq!((FL_DELTA_SHIFT, FL_DELTA), (3, 8));
    assert_eq!(NUM_FREE_LISTS, 508, "(4092 - 32) / 8 + 1");
    assert_eq!(MAX_FLI, 8, "508 lists in 64-bit words");
    assert_eq!(MAX_SIZE, PAGE - 4, "a page minus one header");
    assert_eq!((BLOCK_FREE, PREV_FREE), (1, 2));
    assert_eq!(pool(1).max_size(), 4092);
    assert_eq!(pool(1).name(), "xvmalloc");
}

#[test]
fn side_tables_are_as_documented() {
    assert_eq!(core::mem::size_of::<crate::Slot>(), 16, "the module header says 16 bytes a handle slot");
    assert_eq!(core::mem::size_of::<crate::FreeNode>(), 24, "and 24 a free node");
    assert_eq!(core::mem::size_of::<FreeLists>(), 8280, "and 8,280 for the list heads, bitmaps and counters");
    let z = pool(1);
    let x = z.xv_stats();
    assert_eq!((x.side_table_bytes, x.header_bytes, x.metadata_bytes), (8280, 0, 8280));
}

#[test]
fn headers_encode_as_linux_lays_them_out() {
    let h = BlockHeader { size: 3884, prev: 104, free: true, prev_free: false };
    // size 3884 = 0x0f2c; prev 104 = 0x68, | BLOCK_FREE = 0x69.
    assert_eq!(h.encode(), [0x2c, 0x0f, 0x69, 0x00]);
    assert_eq!(BlockHeader::decode(h.encode()), h);
    let u = BlockHeader { size: 90, prev: 4092, free: false, prev_free: true };
    assert_eq!(u.encode(), [90, 0, 0xfe, 0x0f]);
    assert_eq!(BlockHeader::decode(u.encode()), u);
    assert_eq!((u.extent(), h.extent()), (92, 3884));
}

#[test]
fn list_index_math() {
    // (need, first list searched): raised to 32, rounded up to 8.
    for (need, list) in
        [(1, 0), (4, 0), (32, 0), (36, 1), (40, 1), (100, 9), (104, 9), (108, 10), (4084, 507), (4088, 507)]
    {
        assert_eq!(search_index(need), list, "search_index({need})");
    }
    // 4089..=4092 round up to 4096: list 508, which does not exist (module header, contracts).
    assert_eq!(search_index(4092), NUM_FREE_LISTS);
    // (free block size, its list): rounded down to 8, capped at 4092.
    for (size, list) in [(32, 0), (36, 0), (39, 0), (40, 1), (100, 8), (104, 9), (111, 9), (3884, 481), (3988, 494)] {
        assert_eq!(insert_index(size), Some(list), "insert_index({size})");
    }
    assert_eq!(
        (insert_index(4084), insert_index(4088), insert_index(4092), insert_index(9999)),
        (Some(506), Some(507), Some(507), Some(507))
    );
    for small in [0, 4, 28, 31] {
        assert_eq!(insert_index(small), None, "a {small}-byte free block is on no list");
    }
    // Every one of the 508 lists is some block size's list, and holds exactly sizes 32+8i ..= 32+8i+7.
    for i in 0..NUM_FREE_LISTS {
        let lo = XV_MIN_ALLOC_SIZE + FL_DELTA * i;
        assert_eq!(insert_index(lo), Some(i));
        assert_eq!(insert_index(lo + 7), Some(i.min(NUM_FREE_LISTS - 1)));
        assert_eq!(insert_index(lo - 1), i.checked_sub(1), "the size below list {i} is on the list before");
    }
    // The search starts at the first list all of whose blocks fit; the list below holds one that does not.
    for need in (4..=4088).step_by(XV_ALIGN) {
        let i = search_index(need);
        assert!(XV_MIN_ALLOC_SIZE + FL_DELTA * i >= need, "need {need}: list {i}'s smallest block is too small");
        if i > 0 {
            assert!(XV_MIN_ALLOC_SIZE + FL_DELTA * (i - 1) < need, "need {need}: list {} would do", i - 1);
        }
    }
}

#[test]
fn bitmap_search_finds_the_first_non_empty_list_at_or_above() {
    let mut fl = FreeLists::new();
    let mut page = vec![0u8; PAGE];
    let pfn = Pfn(7);
    assert_eq!(fl.find(1), None, "an empty pool");
    // One free block on each of lists 9, 63, 64, 200 and 507, at offsets 0, 64, 128, ...
    let lists = [9, 63, 64, 200, 507];
    for (k, &i) in lists.iter().enumerate() {
        fl.add(&mut page, pfn, 64 * k, XV_MIN_ALLOC_SIZE + FL_DELTA * i);
    }
    assert_eq!(fl.slbitmap(), [1 << 9 | 1 << 63, 1 << 0, 0, 1 << 8, 0, 0, 0, 1 << 59]);
    assert_eq!(fl.flbitmap(), 1 << 0 | 1 << 1 | 1 << 3 | 1 << 7);
    assert_eq!(fl.find(1), Some(9), "from list 0, within word 0");
    assert_eq!(fl.find(100), Some(9), "list 9 itself");
    assert_eq!(fl.find(108), Some(63), "from list 10: the rest of word 0");
    assert_eq!(fl.find(32 + 8 * 63), Some(63), "the last bit of word 0");
    assert_eq!(fl.find(32 + 8 * 64), Some(64), "list 64: word 1, bit 0");
    assert_eq!(fl.find(32 + 8 * 65), Some(200), "word 1 has nothing above bit 1: first level, word 3");
    assert_eq!(fl.find(32 + 8 * 201), Some(507), "past list 200: first level, word 7");
    assert_eq!(fl.find(4088), Some(507));
    assert_eq!(fl.find(4092), None, "no list holds 4092");
    // Empty list 64 and word 1 with it: the first-level bit goes too.
    let node = |fl: &FreeLists, page: &[u8], k: usize, i: usize| {
        fl.node_of(page, pfn, 64 * k, XV_MIN_ALLOC_SIZE + FL_DELTA * i).unwrap()
    };
    let n64 = node(&fl, &page, 2, 64);
    assert!(n64.is_some());
    fl.remove(XV_MIN_ALLOC_SIZE + FL_DELTA * 64, n64);
    assert_eq!((fl.slbitmap()[1], fl.flbitmap()), (0, 1 << 0 | 1 << 3 | 1 << 7));
    assert_eq!(fl.find(32 + 8 * 64), Some(200));
    let n507 = node(&fl, &page, 4, 507);
    fl.remove(XV_MIN_ALLOC_SIZE + FL_DELTA * 507, n507);
    assert_eq!(fl.find(32 + 8 * 201), None);
    assert_eq!(fl.flbitmap(), 1 << 0 | 1 << 3);
    // A second block on list 9 and one removed: the bit stays while the list is not empty.
    fl.add(&mut page, pfn, 1024, 104);
    assert_eq!(fl.list_len(9), 2);
    let n9 = node(&fl, &page, 0, 9);
    fl.remove(104, n9);
    assert_eq!((fl.list_len(9), fl.slbitmap()[0]), (1, 1 << 9 | 1 << 63));
    assert_eq!(
        fl.counts,
        crate::FreeCounts { blocks: 3, bytes: (104 + 536 + 1632) as u64, small_blocks: 0, small_bytes: 0 }
    );
    // A small block is counted but listed nowhere.
    fl.add(&mut page, pfn, 2048, 12);
    assert_eq!(fl.slbitmap()[0], 1 << 9 | 1 << 63);
    assert_eq!((fl.counts.small_blocks, fl.counts.small_bytes), (1, 12));
}

#[test]
fn worked_example_from_the_header() {
    let mut z = pool(4);
    let a = put(&mut z, 100, 0xaa);
    let p = page_of(&z, a);
    assert_eq!(z.blocks(p).unwrap(), [used(0, 100, 0, false), free(104, 3988, 0)]);
    assert_eq!((z.free_lists().slbitmap()[7], z.free_lists().flbitmap()), (1 << 46, 1 << 7), "list 494");

    let b = put(&mut z, 100, 0xbb);
    assert_eq!((page_of(&z, b), offset_of(&z, b)), (p, 104));
    assert_eq!(z.blocks(p).unwrap(), [used(0, 100, 0, false), used(104, 100, 0, false), free(208, 3884, 104)]);
    assert_eq!((z.free_lists().slbitmap()[7], z.free_lists().flbitmap()), (1 << 33, 1 << 7), "list 481");
    // The picture: the free block's node index right after its header.
    let bytes = z.memory_mut().with_page(p, |pg| pg[204..216].to_vec()).unwrap();
    assert_eq!(bytes[4..8], [0x2c, 0x0f, 0x69, 0x00], "3884, prev 104 | BLOCK_FREE");
    assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 0, "node 0");

    z.free(a).unwrap();
    assert_eq!(z.blocks(p).unwrap(), [free(0, 100, 0), used(104, 100, 0, true), free(208, 3884, 104)]);
    let fl = z.free_lists();
    assert_eq!((fl.slbitmap()[0], fl.slbitmap()[7], fl.flbitmap()), (1 << 8, 1 << 33, 1 << 0 | 1 << 7));

    let c = put(&mut z, 90, 0xcc);
    assert_eq!((page_of(&z, c), offset_of(&z, c)), (p, 0));
    assert_eq!(
        z.blocks(p).unwrap(),
        [used(0, 90, 0, false), free(96, 4, 0), used(104, 100, 96, true), free(208, 3884, 104)]
    );
    let fl = z.free_lists();
    assert_eq!((fl.slbitmap()[0], fl.flbitmap()), (0, 1 << 7), "word 0 empty again");
    let x = z.xv_stats();
    assert_eq!((x.free_blocks, x.free_bytes, x.small_free_blocks, x.small_free_bytes), (2, 3888, 1, 4));
    assert_eq!((x.slack_bytes, x.header_bytes), (2, 16), "90 rounds to 92; 4 headers");
    z.verify().unwrap();

    z.free(b).unwrap();
    assert_eq!(z.blocks(p).unwrap(), [used(0, 90, 0, false), free(96, 3996, 0)]);
    assert_eq!(z.free_lists().slbitmap()[7], 1 << 47, "list 495");
    assert_eq!((get(&mut z, c), z.total_pages()), (vec![0xcc; 90], 1));
    z.verify().unwrap();

    z.free(c).unwrap();
    assert_eq!(z.total_pages(), 0);
    assert_eq!((z.free_lists().flbitmap(), z.free_lists().slbitmap()), (0, [0; MAX_FLI]));
    assert_eq!(z.memory_mut().frames().stats().used, 0, "P went back to the arena");
    let s = z.stats();
    assert_eq!((s.objects, s.object_bytes, s.allocs, s.frees), (0, 0, 3, 3));
    assert_eq!(z.xv_stats().free_blocks, 0);
    z.verify().unwrap();
}

#[test]
fn split_leaves_a_listed_rest_a_small_rest_an_empty_rest_or_nothing() {
    let mut z = pool(4);
    let a = put(&mut z, 1000, 1);
    let b = put(&mut z, 1000, 2);
    let c = put(&mut z, 2000, 3);
    let p = page_of(&z, a);
    // Listed rest: 4096 - 4008 - 2004 - 4 = 80 bytes at 4012, on list 6.
    assert_eq!(z.blocks(p).unwrap()[3], free(4012, 80, 2008));
    assert_eq!(z.free_lists().list_len(6), 1);

    // Exact fit: free b (1000 bytes between two used blocks) and ask for 1000 again.
    z.free(b).unwrap();
    assert_eq!(z.blocks(p).unwrap()[1..3], [free(1004, 1000, 0), used(2008, 2000, 1004, true)]);
    let b2 = put(&mut z, 1000, 4);
    assert_eq!(offset_of(&z, b2), 1004);
    assert_eq!(
        z.blocks(p).unwrap()[1..3],
        [used(1004, 1000, 0, false), used(2008, 2000, 1004, false)],
        "c lost PREV_FREE"
    );
    assert_eq!(z.xv_stats().free_blocks, 1);

    // Small rest: 1000 - 980 - 4 = 16 bytes, on no list; c points back at it.
    z.free(b2).unwrap();
    let b3 = put(&mut z, 980, 5);
    assert_eq!(
        z.blocks(p).unwrap()[1..4],
        [used(1004, 980, 0, false), free(1988, 16, 1004), used(2008, 2000, 1988, true)]
    );
    let x = z.xv_stats();
    assert_eq!((x.free_blocks, x.small_free_blocks, x.small_free_bytes), (2, 1, 16));

    // Empty rest: 1000 - 996 - 4 = 0: a header with no body is still a block.
    z.free(b3).unwrap();
    let b4 = put(&mut z, 993, 6);
    assert_eq!(
        z.blocks(p).unwrap()[1..4],
        [used(1004, 993, 0, false), free(2004, 0, 1004), used(2008, 2000, 2004, true)]
    );
    assert_eq!(z.xv_stats().slack_bytes, 3, "993 rounds up to 996");
    z.verify().unwrap();
    assert_eq!((get(&mut z, a), get(&mut z, b4), get(&mut z, c)), (vec![1; 1000], vec![6; 993], vec![3; 2000]));
}

#[test]
fn free_merges_with_neither_prev_next_or_both() {
    let mut z = pool(4);
    let [a, b, c, d, e] = [1, 2, 3, 4, 5].map(|i| put(&mut z, 500, i));
    let f = put(&mut z, 1000, 6);
    let p = page_of(&z, a);
    // a@0 b@504 c@1008 d@1512 e@2016 f@2520, rest 568 bytes at 3524.
    let rest = free(3524, 568, 2520);
    let list_of = |z: &Pool, size| z.free_lists().list_len(insert_index(size).unwrap());

    z.free(b).unwrap(); // neither neighbour is free
    assert_eq!(z.blocks(p).unwrap()[1..3], [free(504, 500, 0), used(1008, 500, 504, true)]);
    assert_eq!(list_of(&z, 500), 1);

    z.free(c).unwrap(); // the previous block is free
    assert_eq!(z.blocks(p).unwrap()[1..3], [free(504, 1004, 0), used(1512, 500, 504, true)]);
    assert_eq!((list_of(&z, 500), list_of(&z, 1004)), (0, 1));

    z.free(a).unwrap(); // the next block is free
    assert_eq!(z.blocks(p).unwrap()[..2], [free(0, 1508, 0), used(1512, 500, 0, true)]);
    assert_eq!((list_of(&z, 1004), list_of(&z, 1508)), (0, 1));

    z.free(e).unwrap(); // neither again: d and f are used
    assert_eq!(
        z.blocks(p).unwrap(),
        [free(0, 1508, 0), used(1512, 500, 0, true), free(2016, 500, 1512), used(2520, 1000, 2016, true), rest]
    );
    let x = z.xv_stats();
    assert_eq!((x.free_blocks, x.free_bytes), (3, 1508 + 500 + 568));
    z.verify().unwrap();

    z.free(d).unwrap(); // both neighbours are free
    assert_eq!(z.blocks(p).unwrap(), [free(0, 2516, 0), used(2520, 1000, 0, true), rest]);
    assert_eq!((list_of(&z, 1508), list_of(&z, 500), list_of(&z, 2516)), (0, 0, 1));
    assert_eq!(get(&mut z, f), vec![6; 1000]);
    z.verify().unwrap();

    // Both again, and that is the whole page: it goes back.
    z.free(f).unwrap();
    assert_eq!((z.total_pages(), z.memory_mut().frames().stats().used), (0, 0));
    assert_eq!(
        z.xv_stats(),
        XvStats {
            side_table_bytes: z.xv_stats().side_table_bytes,
            metadata_bytes: z.xv_stats().side_table_bytes,
            ..XvStats::default()
        }
    );
    assert_eq!(z.free_lists().flbitmap(), 0);
    z.verify().unwrap();
}

#[test]
fn a_page_goes_back_when_its_last_object_goes() {
    let mut z = pool(8);
    let hs: Vec<Handle> = (0..6).map(|i| put(&mut z, 1300, i)).collect();
    // Three 1304-byte blocks fit a page (3 · 1304 = 3912, and a 180-byte rest): two pages.
    assert_eq!(z.total_pages(), 2);
    let (p, q) = (page_of(&z, hs[0]), page_of(&z, hs[3]));
    assert_ne!(p, q);
    for &h in &hs[..2] {
        z.free(h).unwrap();
        assert_eq!(z.total_pages(), 2, "P still holds an object");
    }
    z.free(hs[2]).unwrap();
    assert_eq!((z.total_pages(), z.pages()), (1, vec![q]));
    assert_eq!(z.stats().pages, 1);
    assert_eq!(z.memory_mut().frames().stats().used, 1);
    // P's free blocks left the lists with it.
    assert_eq!(z.xv_stats().free_blocks, 1, "only Q's rest");
    z.verify().unwrap();
}

#[test]
fn a_list_gives_out_its_most_recently_freed_block_first() {
    let mut z = pool(8);
    // Two pages, each with two 2004-byte blocks and an 84-byte rest.
    let hs: Vec<Handle> = (0..4).map(|i| put(&mut z, 2000, i)).collect();
    let (p, q) = (page_of(&z, hs[0]), page_of(&z, hs[2]));
    assert_ne!(p, q);
    z.free(hs[0]).unwrap();
    z.free(hs[2]).unwrap();
    // Both 2000-byte blocks are on list 246; Q's went in last, so it is the head.
    assert_eq!(z.free_lists().list_len(insert_index(2000).unwrap()), 2);
    let h = put(&mut z, 1990, 9);
    assert_eq!((page_of(&z, h), offset_of(&z, h)), (q, 0));
    let h = put(&mut z, 1990, 9);
    assert_eq!((page_of(&z, h), offset_of(&z, h)), (p, 0));
    z.verify().unwrap();
}

#[test]
fn the_largest_objects_take_a_page_alone() {
    let mut z = pool(8);
    let big = put(&mut z, MAX_SIZE, 7);
    let p = page_of(&z, big);
    assert_eq!(z.blocks(p).unwrap(), [used(0, 4092, 0, false)], "one block, no rest");
    let near = put(&mut z, 4085, 8);
    let q = page_of(&z, near);
    assert_eq!(z.blocks(q).unwrap(), [used(0, 4085, 0, false), free(4092, 0, 0)], "4088 bytes and an empty rest");
    // 4089..=4092 search list 508, which does not exist: straight to a new page (Linux failed them).
    let h = put(&mut z, 4089, 9);
    assert_eq!(z.total_pages(), 3);
    assert_eq!(get(&mut z, h), vec![9; 4089]);
    assert_eq!(get(&mut z, big), vec![7; MAX_SIZE]);
    let x = z.xv_stats();
    assert_eq!((x.header_bytes, x.free_bytes, x.slack_bytes), (16, 0, 3 + 3));
    z.verify().unwrap();
}

#[test]
fn zero_size_and_too_large_are_refused_and_change_nothing() {
    let mut z = pool(4);
    let h = put(&mut z, 100, 1);
    let before = snapshot(&z);
    assert_eq!(z.malloc(0), Err(PoolError::ZeroSize));
    for size in [MAX_SIZE + 1, PAGE, usize::MAX] {
        assert_eq!(z.malloc(size), Err(PoolError::TooLarge { size, max: 4092 }));
    }
    assert_eq!(snapshot(&z), before);
    assert_eq!(get(&mut z, h), vec![1; 100]);
}

#[test]
fn out_of_memory_counts_a_failure_and_changes_nothing_else() {
    let mut z = pool(2);
    let a = put(&mut z, 3000, 1);
    let b = put(&mut z, 3000, 2);
    let (stats, xs, fl, sl, pages) = snapshot(&z);
    let before = page_bytes(&mut z);
    assert_eq!(z.malloc(3000), Err(PoolError::OutOfMemory));
    assert_eq!(snapshot(&z), (PoolStats { failures: 1, ..stats }, xs, fl, sl, pages));
    assert_eq!(page_bytes(&mut z), before, "not a byte of the pages changed");
    // 1000 bytes fit in a page's rest (4096 - 3004 - 4 = 1088): no frame needed.
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
        Handle::from_raw(live ^ 1 << 1),     // slot 2: vacant
        Handle::from_raw(live ^ 1 << 20),    // a slot never used
        Handle::from_raw(live ^ 1 << 30),    // another generation
        Handle::from_raw(live ^ 1 << 50),    // another pool's tag
        Handle::from_raw(live | 0xfff_ffff), // slot 2^28 - 1
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
fn a_reused_slot_gets_a_new_generation() {
    let mut z = pool(8);
    let h1 = put(&mut z, 500, 1);
    let l1 = z.locate(h1).unwrap();
    z.free(h1).unwrap();
    let h2 = put(&mut z, 500, 2);
    let l2 = z.locate(h2).unwrap();
    assert_eq!((l2.slot, l2.offset), (l1.slot, l1.offset), "the same slot and place again");
    assert_ne!(h2, h1);
    assert_eq!(HANDLE_LAYOUT.decode(h2).generation, HANDLE_LAYOUT.decode(h1).generation + 1);
    assert_eq!(z.map(h1, MapMode::ReadOnly, |s| s.to_vec()), Err(PoolError::StaleHandle(h1)));
    assert_eq!(get(&mut z, h2), vec![2; 500]);
}

#[test]
fn another_pools_handles_are_refused() {
    let (mut a, mut b) = (pool(4), pool(4));
    let ha = put(&mut a, 64, 1);
    let hb = put(&mut b, 64, 2);
    assert_eq!(a.locate(ha).unwrap().slot, b.locate(hb).unwrap().slot, "same slot in each pool");
    assert_ne!(ha, hb);
    assert_eq!(a.free(hb), Err(PoolError::StaleHandle(hb)));
    assert_eq!(b.size_of(ha), Err(PoolError::StaleHandle(ha)));
}

#[test]
fn map_hands_out_exactly_the_object_and_never_a_header() {
    let mut z = pool(4);
    let a = z.malloc(101).unwrap();
    let b = z.malloc(130).unwrap();
    for (h, n) in [(a, 101), (b, 130)] {
        for mode in [MapMode::ReadOnly, MapMode::WriteOnly, MapMode::ReadWrite] {
            assert_eq!(z.map(h, mode, |s| s.len()), Ok(n));
        }
        z.map(h, MapMode::WriteOnly, |s| s.fill(0xff)).unwrap();
    }
    z.map(a, MapMode::ReadWrite, |s| s[..10].fill(3)).unwrap();
    let mut want = vec![0xff; 101];
    want[..10].fill(3);
    assert_eq!((get(&mut z, a), get(&mut z, b)), (want, vec![0xff; 130]));
    let p = page_of(&z, a);
    assert_eq!(offset_of(&z, b), 108, "101 rounds up to 104");
    assert_eq!(
        z.blocks(p).unwrap(),
        [used(0, 101, 0, false), used(108, 130, 0, false), free(244, 4096 - 248, 108)],
        "all-ones objects did not reach a header"
    );
    z.verify().unwrap();
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
fn evict_is_refused_without_writing_back() {
    let mut z = pool(8);
    let h = put(&mut z, 1000, 3);
    let before = snapshot(&z);
    assert_eq!(z.evict(&mut |_, _| panic!("xvmalloc writes nothing back")), Err(PoolError::EvictRefused));
    assert_eq!(snapshot(&z), before);
    assert_eq!(z.stats().pages_evicted, 0);
    assert_eq!(get(&mut z, h), vec![3; 1000]);
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

fn flaky() -> Xvmalloc<Flaky> {
    Xvmalloc::new(Flaky { mem: HostMemory::new(8), fail_map: false, fail_free: false, short: false })
}

#[test]
fn mapping_failures_are_reported_and_change_nothing() {
    let mut z = flaky();
    let a = put(&mut z, 3000, 1);
    let b = put(&mut z, 500, 2);
    let before = snapshot(&z);
    z.memory_mut().fail_map = true;
    let err = Some(PoolError::Memory(MemError::NoSlot));
    // A new page: the frame goes back, and the failure is counted.
    assert_eq!(z.malloc(4000).err(), err);
    assert_eq!(z.memory_mut().mem.frames().stats().used, 1, "the new frame was given back");
    // From a free list: the page cannot be mapped.
    assert_eq!(z.malloc(100).err(), err);
    assert_eq!(z.free(b).err(), err);
    assert_eq!(z.map(a, MapMode::ReadOnly, |_| ()).err(), err);
    assert_eq!(z.verify(), Err(VerifyError::Memory(MemError::NoSlot)));
    let (stats, xs, fl, sl, pages) = before;
    assert_eq!(snapshot(&z), (PoolStats { failures: 2, ..stats }, xs, fl, sl, pages));
    z.memory_mut().fail_map = false;
    assert_eq!((get(&mut z, a), get(&mut z, b)), (vec![1; 3000], vec![2; 500]));
    z.verify().unwrap();
}

#[test]
fn a_frame_that_cannot_go_back_changes_nothing() {
    let mut z = flaky();
    let a = put(&mut z, 1000, 1);
    let b = put(&mut z, 1000, 2);
    z.free(a).unwrap();
    let before = snapshot(&z);
    let pfn = page_of_flaky(&z, b);
    let bytes = z.memory_mut().with_page(pfn, |p| p.to_vec()).unwrap();
    z.memory_mut().fail_free = true;
    // b is the page's last object: freeing it must give the frame back, which fails.
    assert_eq!(z.free(b), Err(PoolError::Frame(FrameError::Foreign(pfn))));
    assert_eq!(snapshot(&z), before);
    assert_eq!(z.memory_mut().with_page(pfn, |p| p.to_vec()).unwrap(), bytes, "the page is untouched");
    z.memory_mut().fail_free = false;
    assert_eq!(get(&mut z, b), vec![2; 1000]);
    z.verify().unwrap();
    z.free(b).unwrap();
    assert_eq!(z.total_pages(), 0);
    z.verify().unwrap();
}

fn page_of_flaky(z: &Xvmalloc<Flaky>, h: Handle) -> Pfn {
    z.locate(h).unwrap().pfn
}

#[test]
fn a_short_page_is_reported_not_indexed() {
    let mut z = flaky();
    let first = put(&mut z, 30, 1);
    let second = put(&mut z, 3000, 2);
    let pfn = page_of_flaky(&z, second);
    z.memory_mut().short = true;
    let foreign = Some(PoolError::Memory(MemError::Foreign(pfn)));
    // The first object (bytes 4..34) is within the 100 bytes; the second is not.
    assert_eq!(z.map(first, MapMode::ReadOnly, |s| s.to_vec()), Ok(vec![1; 30]));
    assert_eq!(z.map(second, MapMode::ReadOnly, |_| ()).err(), foreign);
    let before = snapshot(&z);
    assert_eq!(z.free(first).err(), foreign, "a free checks the whole page");
    assert_eq!(z.malloc(40).err(), foreign, "so does a malloc");
    let (stats, xs, fl, sl, pages) = before;
    assert_eq!(snapshot(&z), (PoolStats { failures: 1, ..stats }, xs, fl, sl, pages));
    z.memory_mut().short = false;
    z.verify().unwrap();
}

#[test]
fn a_scribbled_page_is_reported_not_trusted() {
    let mut z = pool(4);
    let a = put(&mut z, 200, 1);
    let b = put(&mut z, 200, 2);
    z.free(a).unwrap();
    z.verify().unwrap();
    let p = page_of(&z, b);
    // b's header (at 204) claims another size.
    z.memory_mut().with_page(p, |pg| pg[204] ^= 1).unwrap();
    assert_eq!(z.verify(), Err(VerifyError::Page { pfn: p, offset: 204 }));
    let before = snapshot(&z);
    assert_eq!(z.free(b), Err(PoolError::Memory(MemError::Foreign(p))));
    assert_eq!(snapshot(&z), before);
    z.memory_mut().with_page(p, |pg| pg[204] ^= 1).unwrap();
    z.verify().unwrap();
    // The free block at 0 names node 0 in its body; make it name another node.
    let node = z.memory_mut().with_page(p, |pg| std::mem::replace(&mut pg[4], 9)).unwrap();
    assert_eq!(node, 1, "node 0 is the rest's");
    assert_eq!(z.verify(), Err(VerifyError::Page { pfn: p, offset: 0 }));
    assert_eq!(z.free(b), Err(PoolError::Memory(MemError::Foreign(p))), "b would merge with it");
    assert_eq!(z.malloc(150), Err(PoolError::Memory(MemError::Foreign(p))), "list 21's head is that block");
    z.memory_mut().with_page(p, |pg| pg[4] = node).unwrap();
    z.verify().unwrap();
    assert_eq!(get(&mut z, b), vec![2; 200]);
}

/// Pages for `n` objects of each size in `sizes`, allocated round-robin, on an arena of `frames`.
fn fill(sizes: &[usize], n: usize, frames: usize) -> Pool {
    let mut z = pool(frames);
    for _ in 0..n {
        for &s in sizes {
            z.malloc(s).unwrap();
        }
    }
    z
}

#[test]
fn density_three_quarter_pages_take_a_page_each() {
    // A 3072-byte object is a 3076-byte block; the 1020 bytes left (a 1016-byte free block after its
    // header) can never take another 3072: one page each, exactly.
    let mut z = fill(&[3072], 10_000, 10_000);
    let x = z.xv_stats();
    println!("xvmalloc, 10,000 objects of 3072 bytes: {} pages, {x:?}", z.total_pages());
    assert_eq!(z.total_pages(), 10_000);
    assert_eq!((x.free_blocks, x.free_bytes, x.small_free_blocks), (10_000, 10_000 * 1016, 0));
    assert_eq!(x.header_bytes, 20_000 * 4);
    assert_eq!(z.free_lists().list_len(insert_index(1016).unwrap()), 10_000, "all on list 123");
    // Exactly 1016 bytes fill every hole: no new page, no free byte left.
    for _ in 0..10_000 {
        z.malloc(1016).unwrap();
    }
    let x = z.xv_stats();
    assert_eq!(z.total_pages(), 10_000);
    assert_eq!((x.free_blocks, x.free_bytes, x.header_bytes), (0, 0, 20_000 * 4));
    assert_eq!(z.stats().object_bytes, 10_000 * (3072 + 1016));
    z.verify().unwrap();
}

#[test]
fn density_of_halves_and_small_objects() {
    // Two 2044-byte objects would tile a page exactly (4 + 2044 + 4 + 2044), but the rest after the first,
    // 2044 bytes, sits on list 251 (2040..=2047) and a 2044-byte request searches from list 252: good fit,
    // not best fit. One page each.
    let z = fill(&[2044], 1000, 1000);
    assert_eq!((z.total_pages(), z.xv_stats().free_blocks), (1000, 1000));
    assert_eq!((insert_index(2044), search_index(2044)), (Some(251), 252));
    // 2040 bytes: the rest is 2048, on list 252, and the search starts at 251. Two to a page, 4 bytes left.
    let z = fill(&[2040], 1000, 1000);
    let x = z.xv_stats();
    assert_eq!((z.total_pages(), x.free_blocks, x.small_free_bytes), (500, 500, 500 * 4));
    // One byte more and only one fits: the rest (2043 → 2048, 4096 - 2052 - 4 = 2040) is too small.
    let z = fill(&[2045], 1000, 1000);
    assert_eq!(z.total_pages(), 1000);
    // 100-byte objects: 104 bytes each, 39 to a page (39 · 104 = 4056; the 40th would need 4160).
    let mut z = fill(&[100], 3900, 100);
    assert_eq!(z.total_pages(), 100);
    assert_eq!(z.xv_stats().free_bytes, 100 * (4096 - 4056 - 4));
    z.verify().unwrap();
}

#[test]
fn stats_account_for_every_byte_of_every_page() {
    let mut z = pool(64);
    let mut rng = testing::Rng::new(9);
    let mut live = Vec::new();
    for i in 0..2000 {
        if (live.len() < 100 && rng.percent(60)) || live.is_empty() {
            live.push(z.malloc(rng.between(1, MAX_SIZE)).unwrap());
        } else {
            let h = live.swap_remove(rng.below(live.len() as u64) as usize);
            z.free(h).unwrap();
        }
        let (s, x) = (z.stats(), z.xv_stats());
        assert_eq!(
            s.pages * PAGE as u64,
            s.object_bytes + x.slack_bytes + x.header_bytes + x.free_bytes,
            "op {i}: pages = objects + slack + headers + free"
        );
        assert_eq!(x.metadata_bytes, x.header_bytes + x.side_table_bytes);
    }
    z.verify().unwrap();
}

/// One run of the shared model; prints the report and time.
fn model_with(cfg: Config, frames: usize) -> testing::Report {
    let (seed, ops) = (cfg.seed, cfg.ops);
    let mut z = pool(frames);
    let t = Instant::now();
    let r = testing::run_with(&mut z, &cfg, |z| z.verify().unwrap());
    println!("xvmalloc model seed {seed}, {ops} ops, {frames} frames: {:?}\n{r:?}\n{:?}", t.elapsed(), z.xv_stats());
    assert_eq!(r.final_pages, 0);
    assert_eq!(z.memory_mut().frames().stats().used, 0, "every frame went back");
    let x = z.xv_stats();
    assert_eq!((x.free_blocks, x.free_bytes, x.slack_bytes, x.header_bytes), (0, 0, 0, 0));
    z.verify().unwrap();
    r
}

fn model(seed: u64, ops: u64, frames: usize) -> testing::Report {
    model_with(Config { check_every: 2048, ..Config::new(seed, ops) }, frames)
}

#[test]
fn model_seed_1() {
    let r = model(1, 100_000, 1024);
    assert_eq!((r.ops, r.malloc_oom, r.evictions), (100_000, 0, 0));
    assert!(r.mallocs > 10_000 && r.frees > 10_000 && r.full_checks >= 48, "{r:?}");
}

#[test]
fn model_seed_2() {
    let r = model(2, 100_000, 1024);
    assert_eq!(r.malloc_oom, 0);
    assert!(r.reads > 10_000 && r.read_writes > 5_000 && r.stale_probes > 3_000, "{r:?}");
}

#[test]
fn model_under_memory_pressure_seed_3() {
    // 64 frames for up to 256 objects, about a third of them near 3/4 of a page: mallocs run out.
    let r = model(3, 100_000, 64);
    assert!(r.malloc_oom > 1000, "{}", r.malloc_oom);
}

#[test]
fn model_with_few_objects_seed_4() {
    // At most 8 objects: pages empty and slots are reused all the time, so generations carry the load.
    let r = model_with(Config { max_live: 8, check_every: 512, ..Config::new(4, 100_000) }, 64);
    assert!(r.stale_probes > 3000 && r.mallocs > 10_000, "{r:?}");
}

#[test]
fn model_with_many_objects_seed_5() {
    let r = model_with(Config { max_live: 2000, check_every: 8192, ..Config::new(5, 100_000) }, 4096);
    assert!(r.peak_live > 1000, "{r:?}");
}

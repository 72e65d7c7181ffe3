//! xcfmalloc on the host arena: the list math, the header's example, the block choice on constructed free
//! lists, the scatter-gather across pages, the reserve, compaction, every error, the shared model, density.

use std::num::NonZeroU32;
use std::time::Instant;

use frame::{FrameError, Owner, Pfn};
use pagemem::{FrameSource, HostMemory, Limited, MemError, PAGE, PageMemory};
use zpool::testing::{self, Config};
use zpool::{Handle, MapMode, PoolError, PoolStats, ZPool};

use crate::{
    Block, DEFAULT_RESERVE_PAGES, DESCRIPTOR_BYTES, Desc, HEADER_LEN, HEADER_SENTINEL, MAX_SIZE, NUM_FREELISTS,
    RESERVED_INDEX, VerifyError, XcfStats, Xcfmalloc, align_to_block, size_to_flindex,
};

type Pool = Xcfmalloc<HostMemory>;

fn pool(frames: usize) -> Pool {
    Xcfmalloc::new(HostMemory::new(frames))
}

/// A pool that keeps one reserve page, so that the free lists are exactly what a test builds.
fn lean(frames: usize) -> Pool {
    Xcfmalloc::with_reserve(HostMemory::new(frames), NonZeroU32::new(1).unwrap())
}

/// Allocate `size` bytes and fill them with `byte`.
fn put<M: PageMemory + FrameSource>(z: &mut Xcfmalloc<M>, size: usize, byte: u8) -> Handle {
    let h = z.malloc(size).unwrap();
    z.map(h, MapMode::WriteOnly, |s| s.fill(byte)).unwrap();
    h
}

fn get<M: PageMemory + FrameSource>(z: &mut Xcfmalloc<M>, h: Handle) -> Vec<u8> {
    z.map(h, MapMode::ReadOnly, |s| s.to_vec()).unwrap()
}

/// A block as `locate` reports it.
fn blk(pfn: Pfn, offset: usize, len: usize, data: usize) -> Block {
    Block { pfn, offset, len, data }
}

/// Everything observable about a pool short of its objects' bytes.
fn snapshot<M: PageMemory + FrameSource>(z: &Xcfmalloc<M>) -> (PoolStats, XcfStats, [u32; NUM_FREELISTS]) {
    (z.stats(), z.xcf_stats(), z.free_lists())
}

/// The 16 header bytes at `offset` of `pfn`.
fn header_at(z: &mut Pool, pfn: Pfn, offset: usize) -> Vec<u8> {
    z.memory_mut().with_page(pfn, |p| p[offset..offset + HEADER_LEN].to_vec()).unwrap()
}

fn header(desc: u32, prevoffset: u32) -> Vec<u8> {
    let mut h = HEADER_SENTINEL.to_vec();
    h.extend_from_slice(&desc.to_le_bytes());
    h.extend_from_slice(&prevoffset.to_le_bytes());
    h.extend_from_slice(&[0; 4]);
    h
}

/// Fill one fresh page of a [`lean`] pool with objects whose blocks are `lens` long (they must add up to
/// 4096, each shorter than the rest of the page), in page order; returns the handles and the page.
/// Each takes `len − 16` bytes, so it is one block of exactly `len`.
fn carve(z: &mut Pool, lens: &[usize]) -> (Vec<Handle>, Pfn) {
    assert_eq!(lens.iter().sum::<usize>(), PAGE);
    let mut hs = Vec::new();
    let mut page = None;
    let mut offset = 0;
    for (k, &len) in lens.iter().enumerate() {
        let h = put(z, len - HEADER_LEN, k as u8 + 1);
        let b = z.locate(h).unwrap();
        let pfn = *page.get_or_insert(b[0].pfn);
        assert_eq!(b, vec![blk(pfn, offset, len, len - HEADER_LEN)], "carving block {k}");
        offset += len;
        hs.push(h);
    }
    (hs, page.unwrap())
}

#[test]
fn descriptors_are_as_documented() {
    assert_eq!(core::mem::size_of::<Desc>(), DESCRIPTOR_BYTES, "the module header says 24 bytes a descriptor");
}

#[test]
fn block_size_and_list_math() {
    assert_eq!((NUM_FREELISTS, RESERVED_INDEX, MAX_SIZE), (64, 63, 4080));
    assert_eq!([1, 64, 65, 128, 3088, 4096].map(align_to_block), [64, 64, 128, 128, 3136, 4096]);
    // ⌈size / 64⌉ − 1: one list per block length.
    let cases =
        [(1, 0), (64, 0), (65, 1), (128, 1), (129, 2), (1024, 15), (3088, 48), (4032, 62), (4033, 63), (4096, 63)];
    for (size, list) in cases {
        assert_eq!(size_to_flindex(size), list, "size {size}");
    }
    // Every list holds exactly one block length.
    for list in 0..NUM_FREELISTS {
        let len = (list + 1) * 64;
        assert_eq!((size_to_flindex(len), size_to_flindex(len - 63)), (list, list));
    }
    // Outside 1..=4096 the index is clamped, never out of range.
    assert_eq!((size_to_flindex(0), size_to_flindex(5000), size_to_flindex(usize::MAX - 64)), (0, 63, 63));
}

#[test]
fn worked_example_from_the_header() {
    let mut z = pool(64);
    assert_eq!(z.total_pages(), 0, "a new pool holds no frame");
    let a = put(&mut z, 3000, 0xaa);
    let la = z.locate(a).unwrap();
    let p = la[0].pfn;
    assert_eq!(la, vec![blk(p, 0, 3072, 3000)]);
    assert_eq!(z.free_blocks(15), vec![blk(p, 3072, 1024, 0)]);
    assert_eq!((z.xcf_stats().reserve_pages, z.total_pages()), (31, 32));

    let b = put(&mut z, 2000, 0xbb);
    let lb = z.locate(b).unwrap();
    let q = lb[1].pfn;
    assert_ne!(q, p);
    assert_eq!(lb, vec![blk(p, 3072, 1024, 1008), blk(q, 0, 1024, 992)]);
    assert_eq!(z.free_lists()[15], 0, "the hole at the end of P was taken whole");
    assert_eq!(z.free_blocks(47), vec![blk(q, 1024, 3072, 0)]);
    assert_eq!((z.xcf_stats().reserve_pages, z.total_pages()), (31, 33));
    assert_eq!(z.size_of(b), Ok(2000));
    // The headers. The first refill made descriptors 0..=31, pushed in order, so P is 31 (list 63's head);
    // the split made 32 (P@3072); the second refill 33 (Q); the split of Q 34 (Q@1024).
    assert_eq!(header_at(&mut z, p, 0), header(31, 0));
    assert_eq!(header_at(&mut z, p, 3072), header(32, 0), "prevoffset: a starts at 0");
    assert_eq!(header_at(&mut z, q, 0), header(33, 0));
    assert_eq!(header_at(&mut z, q, 1024), header(34, 0));
    assert_eq!((a.raw() & 0xfff_ffff, b.raw() & 0xfff_ffff), (31, 32), "handles name the head descriptors");

    let maps = z.memory().maps;
    assert_eq!(get(&mut z, b), vec![0xbb; 2000]);
    assert_eq!(z.memory().maps, maps + 1, "both pages in one two-frame mapping");

    z.free(b).unwrap();
    assert_eq!(z.free(b), Err(PoolError::StaleHandle(b)));
    assert_eq!(z.free_blocks(15), vec![blk(p, 3072, 1024, 0)]);
    assert_eq!(z.free_lists()[47], 0, "Q's two blocks merged");
    assert_eq!((z.xcf_stats().reserve_pages, z.total_pages()), (32, 33));
    z.verify().unwrap();

    z.free(a).unwrap();
    assert_eq!((z.xcf_stats().reserve_pages, z.total_pages()), (32, 32), "one page above the reserve went back");
    assert_eq!(z.memory_mut().frames().stats().used, 32);
    z.verify().unwrap();
}

#[test]
fn headers_record_descriptor_and_previous_offset() {
    let mut z = lean(8);
    let (hs, p) = carve(&mut z, &[512, 64, 1024, 2496]);
    let offsets = [0u32, 512, 576, 1600];
    for (k, &off) in offsets.iter().enumerate() {
        let h = header_at(&mut z, p, off as usize);
        let prev = if k == 0 { 0 } else { offsets[k - 1] };
        assert_eq!((&h[..4], &h[8..]), (&HEADER_SENTINEL[..], &header(0, prev)[8..]), "block {k}");
    }
    // The block after a freed one still points at it; two merged blocks leave one header.
    z.free(hs[1]).unwrap();
    z.free(hs[2]).unwrap();
    assert_eq!(z.free_blocks(16), vec![blk(p, 512, 1088, 0)]);
    assert_eq!(header_at(&mut z, p, 576), vec![0; HEADER_LEN], "the merged block's header is wiped");
    assert_eq!(header_at(&mut z, p, 1600)[8..12], 512u32.to_le_bytes());
    z.verify().unwrap();
}

#[test]
fn best_fit_comes_first_then_the_largest_smaller_block() {
    let mut z = lean(8);
    // Holes of 512 (list 7), 1024 (list 15) and 2048 (list 31), kept apart by used 64-byte blocks.
    let (hs, p) = carve(&mut z, &[512, 64, 1024, 64, 2048, 384]);
    for k in [0, 2, 4] {
        z.free(hs[k]).unwrap();
    }
    let lists = z.free_lists();
    assert_eq!((lists[7], lists[15], lists[31], lists[RESERVED_INDEX]), (1, 1, 1, 1));
    assert_eq!(lists.iter().sum::<u32>(), 4);

    // 1008 bytes need 1024: list 15 holds exactly that block — best fit, no split.
    let h = put(&mut z, 1008, 1);
    assert_eq!(z.locate(h).unwrap(), vec![blk(p, 576, 1024, 1008)]);
    assert_eq!(z.free_lists()[15], 0);

    // 1500 bytes need 1516 (list 23), empty. The largest smaller block is the 512 one (list 7), though a
    // 2048 block would hold it all: 496 bytes go there. The last 1004 need 1020 (list 15): empty, so the
    // smallest larger, the 2048 block, split after 1024.
    let h = put(&mut z, 1500, 2);
    assert_eq!(z.locate(h).unwrap(), vec![blk(p, 0, 512, 496), blk(p, 1664, 1024, 1004)]);
    assert_eq!(z.free_blocks(15), vec![blk(p, 2688, 1024, 0)]);
    assert_eq!(z.free_lists()[RESERVED_INDEX], 1, "the reserve page was not touched");
    assert_eq!(get(&mut z, h), vec![2; 1500]);
    z.verify().unwrap();
}

#[test]
fn the_last_block_never_takes_a_smaller_one() {
    let mut z = lean(8);
    let (hs, p) = carve(&mut z, &[512, 64, 256, 64, 3200]);
    z.free(hs[0]).unwrap();
    z.free(hs[2]).unwrap();
    // 1000 bytes need 1016 (list 15). First block: the largest smaller, 512 (list 7), 496 bytes. The last
    // 504 need 520 (list 8): best fit empty; the 256 block (list 3) is smaller and is passed over; the
    // smallest larger is the reserve page on list 63, split after 576.
    let h = put(&mut z, 1000, 7);
    let b = z.locate(h).unwrap();
    assert_ne!(b[1].pfn, p);
    assert_eq!(b, vec![blk(p, 0, 512, 496), blk(b[1].pfn, 0, 576, 504)]);
    assert_eq!(z.free_blocks(3), vec![blk(p, 576, 256, 0)]);
    assert_eq!(z.free_blocks(54), vec![blk(b[1].pfn, 576, 3520, 0)]);
    assert_eq!(get(&mut z, h), vec![7; 1000]);
    z.verify().unwrap();
}

#[test]
fn a_64_byte_block_is_never_a_first_block() {
    let mut z = lean(8);
    let (hs, p) = carve(&mut z, &[64, 64, 3968]);
    z.free(hs[0]).unwrap();
    assert_eq!(z.free_blocks(0), vec![blk(p, 0, 64, 0)]);
    // 100 bytes need 116 (list 1): no best fit; "largest smaller" looks at lists 1..=1 only, not list 0,
    // so the smallest larger, the reserve page, is split.
    let h = z.malloc(100).unwrap();
    let b = z.locate(h).unwrap();
    assert_eq!((b.len(), b[0].offset, b[0].len), (1, 0, 128));
    assert_ne!(b[0].pfn, p);
    assert_eq!(z.free_lists()[0], 1);
    // 48 bytes need exactly 64: best fit takes it.
    let h = z.malloc(48).unwrap();
    assert_eq!(z.locate(h).unwrap(), vec![blk(p, 0, 64, 48)]);
    z.verify().unwrap();
}

#[test]
fn scatter_gather_across_two_pages() {
    let mut z = lean(8);
    // A 1024-byte hole at the end of page P; the rest of the object goes to a fresh page.
    let (hs, p) = carve(&mut z, &[3072, 1024]);
    z.free(hs[1]).unwrap();
    let h = z.malloc(2500).unwrap();
    let b = z.locate(h).unwrap();
    let q = b[1].pfn;
    assert_ne!(p, q);
    assert_eq!(b, vec![blk(p, 3072, 1024, 1008), blk(q, 0, 1536, 1492)]);
    let data: Vec<u8> = (0..2500).map(|i| (i * 7 % 251) as u8).collect();
    let maps = z.memory().maps;
    z.map(h, MapMode::WriteOnly, |s| {
        assert!(s.iter().all(|&x| x == 0), "a WriteOnly copy starts zeroed");
        s.copy_from_slice(&data);
    })
    .unwrap();
    assert_eq!(z.memory().maps, maps + 1, "WriteOnly: no gather, one two-frame scatter");
    // The bytes lie after each block's header, in order.
    let in_p = z.memory_mut().with_page(p, |pg| pg[3072 + 16..4096].to_vec()).unwrap();
    let in_q = z.memory_mut().with_page(q, |pg| pg[16..16 + 1492].to_vec()).unwrap();
    assert_eq!((in_p.as_slice(), in_q.as_slice()), (&data[..1008], &data[1008..]));
    // ReadOnly works on a copy: a write is lost.
    let maps = z.memory().maps;
    z.map(h, MapMode::ReadOnly, |s| s.fill(0)).unwrap();
    assert_eq!(z.memory().maps, maps + 1, "ReadOnly: one gather, no scatter");
    assert_eq!(get(&mut z, h), data);
    // ReadWrite gathers and scatters; the change lands in both pages.
    let maps = z.memory().maps;
    z.map(h, MapMode::ReadWrite, |s| s[1000..1016].fill(0xee)).unwrap();
    assert_eq!(z.memory().maps, maps + 2);
    let mut want = data.clone();
    want[1000..1016].fill(0xee);
    assert_eq!(get(&mut z, h), want);
    assert_eq!(z.memory_mut().with_page(q, |pg| pg[16..24].to_vec()).unwrap(), vec![0xee; 8]);
    // Freeing gives P's hole back and Q back to the reserve.
    z.free(h).unwrap();
    assert_eq!(z.free_blocks(15), vec![blk(p, 3072, 1024, 0)]);
    assert_eq!(get(&mut z, hs[0]), vec![1; 3056]);
    z.verify().unwrap();
}

#[test]
fn two_blocks_in_the_same_page_use_one_mapping() {
    let mut z = lean(8);
    let (hs, p) = carve(&mut z, &[512, 64, 768, 2752]);
    z.free(hs[0]).unwrap();
    z.free(hs[2]).unwrap();
    // 1200 bytes: list 19 empty; largest smaller: the 768 block (list 11), 752 bytes; the last 448 need 464
    // (list 7): best fit, the 512 block, no split.
    let h = z.malloc(1200).unwrap();
    assert_eq!(z.locate(h).unwrap(), vec![blk(p, 576, 768, 752), blk(p, 0, 512, 448)]);
    let maps = z.memory().maps;
    z.map(h, MapMode::WriteOnly, |s| s.fill(9)).unwrap();
    assert_eq!((get(&mut z, h), z.memory().maps), (vec![9; 1200], maps + 2));
    // Freed, the two blocks stay apart: the used 64-byte block lies between them.
    z.free(h).unwrap();
    assert_eq!((z.free_blocks(7), z.free_blocks(11)), (vec![blk(p, 0, 512, 0)], vec![blk(p, 576, 768, 0)]));
    z.free(hs[1]).unwrap();
    assert_eq!(z.free_blocks(20), vec![blk(p, 0, 1344, 0)], "512 + 64 + 768 merged");
    assert_eq!((z.free_lists()[7], z.free_lists()[11]), (0, 0));
    z.verify().unwrap();
}

#[test]
fn the_largest_object_takes_a_whole_page() {
    let mut z = lean(8);
    let h = put(&mut z, MAX_SIZE, 5);
    let b = z.locate(h).unwrap();
    assert_eq!((b.len(), b[0].offset, b[0].len, b[0].data), (1, 0, 4096, 4080));
    assert_eq!(get(&mut z, h), vec![5; MAX_SIZE]);
    z.verify().unwrap();
}

#[test]
fn too_large_and_zero_are_refused_and_change_nothing() {
    let mut z = pool(64);
    let h = put(&mut z, 100, 1);
    let before = snapshot(&z);
    assert_eq!(z.malloc(0), Err(PoolError::ZeroSize));
    for size in [MAX_SIZE + 1, PAGE, usize::MAX] {
        assert_eq!(z.malloc(size), Err(PoolError::TooLarge { size, max: 4080 }));
    }
    assert_eq!(snapshot(&z), before);
    assert_eq!((z.max_size(), z.name()), (4080, "xcfmalloc"));
    assert_eq!(get(&mut z, h), vec![1; 100]);
    z.verify().unwrap();
}

#[test]
fn stale_and_forged_handles_are_refused_and_change_nothing() {
    let mut z = pool(64);
    let keep = put(&mut z, 2000, 9);
    let two = put(&mut z, 3000, 8);
    assert_eq!(z.locate(two).unwrap().len(), 2);
    let gone = put(&mut z, 700, 7);
    z.free(gone).unwrap();
    let live = keep.raw();
    // keep: descriptor 31 (a refilled page), split off 32 (2048 bytes). two: its first block is 32 (the
    // largest smaller), its last the page refilled next, 33. 33 is live, with generation 1, but no head.
    assert_eq!((keep.raw() & 0xfff_ffff, two.raw() & 0xfff_ffff), (31, 32));
    let second_block = Handle::from_raw(two.raw() & !0xfff_ffff | 33);
    let forged = [
        gone,
        second_block,
        Handle::from_raw(0),
        Handle::from_raw(u64::MAX),
        Handle::from_raw(live ^ 1 << 20),    // another descriptor, never a head
        Handle::from_raw(live ^ 1 << 30),    // another generation
        Handle::from_raw(live ^ 1 << 50),    // another pool's tag
        Handle::from_raw(live | 0xfff_ffff), // descriptor 2^28 - 1
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
    assert_eq!((get(&mut z, keep), get(&mut z, two)), (vec![9; 2000], vec![8; 3000]));
    z.verify().unwrap();
}

#[test]
fn a_reused_descriptor_gets_a_new_generation() {
    let mut z = lean(8);
    let h1 = put(&mut z, 500, 1);
    let b1 = z.locate(h1).unwrap();
    z.free(h1).unwrap();
    let h2 = put(&mut z, 500, 2);
    assert_eq!(z.locate(h2).unwrap(), b1, "the same block again");
    assert_eq!(h2.raw() & ((1 << 28) - 1), h1.raw() & ((1 << 28) - 1), "the same descriptor");
    assert_ne!(h2, h1);
    assert_eq!(z.map(h1, MapMode::ReadOnly, |s| s.to_vec()), Err(PoolError::StaleHandle(h1)));
    assert_eq!(get(&mut z, h2), vec![2; 500]);
}

#[test]
fn another_pools_handles_are_refused() {
    let (mut a, mut b) = (lean(4), lean(4));
    let ha = put(&mut a, 64, 1);
    let hb = put(&mut b, 64, 2);
    assert_eq!(ha.raw() & ((1 << 48) - 1), hb.raw() & ((1 << 48) - 1), "same descriptor and generation");
    assert_ne!(ha, hb);
    assert_eq!(a.free(hb), Err(PoolError::StaleHandle(hb)));
    assert_eq!(b.size_of(ha), Err(PoolError::StaleHandle(ha)));
}

#[test]
fn the_reserve_is_filled_by_malloc_and_trimmed_by_free() {
    let mut z = pool(256);
    assert_eq!((z.total_pages(), z.reserve_target()), (0, DEFAULT_RESERVE_PAGES));
    // Every malloc first tops the reserve up to 32 empty pages; a 4080-byte object then takes one.
    let hs: Vec<Handle> = (0..40).map(|i| put(&mut z, MAX_SIZE, i)).collect();
    let s = z.xcf_stats();
    assert_eq!((z.total_pages(), s.pages_in_use, s.reserve_pages), (71, 40, 31));
    // A small object fits in the reserve page it takes; the next malloc refills.
    let small = put(&mut z, 100, 0xff);
    assert_eq!((z.total_pages(), z.xcf_stats().reserve_pages), (72, 31));
    let small2 = put(&mut z, 100, 0xfe);
    assert_eq!((z.total_pages(), z.xcf_stats().reserve_pages), (73, 32), "refilled, then fits beside the first");
    // Emptied pages join the reserve; only the surplus above 32 goes back.
    for &h in &hs[..20] {
        z.free(h).unwrap();
    }
    let s = z.xcf_stats();
    assert_eq!((z.total_pages(), s.pages_in_use, s.reserve_pages), (53, 21, 32));
    assert_eq!(z.memory_mut().frames().stats().used, 53);
    assert_eq!((get(&mut z, small), get(&mut z, small2)), (vec![0xff; 100], vec![0xfe; 100]));
    for h in hs[20..].iter().copied().chain([small, small2]) {
        z.free(h).unwrap();
    }
    assert_eq!((z.total_pages(), z.xcf_stats().reserve_pages, z.stats().objects), (32, 32, 0));
    z.verify().unwrap();
    // The reserve goes back only on request; the next malloc refills it.
    assert_eq!(z.release_reserve(), Ok(32));
    assert_eq!((z.total_pages(), z.memory_mut().frames().stats().used), (0, 0));
    let h = put(&mut z, 10, 1);
    assert_eq!((z.total_pages(), z.xcf_stats().reserve_pages), (32, 31));
    z.free(h).unwrap();
    z.verify().unwrap();
}

#[test]
fn a_smaller_reserve_is_kept_as_asked() {
    let mut z = Xcfmalloc::with_reserve(HostMemory::new(64), NonZeroU32::new(3).unwrap());
    // 3000-byte objects go 4 to 3 pages: the 1st of each four takes a fresh page (3072 + 1024 left), the 2nd
    // that 1024 and a fresh page (2048 left), the 3rd that 2048 and a fresh page (3072 left), the 4th that.
    let hs: Vec<Handle> = (0..10).map(|i| put(&mut z, 3000, i)).collect();
    let s = z.xcf_stats();
    assert_eq!((s.pages_in_use, s.reserve_pages, s.two_block_objects), (8, 2, 5));
    for h in hs {
        z.free(h).unwrap();
    }
    assert_eq!((z.total_pages(), z.xcf_stats().reserve_pages), (3, 3));
    z.verify().unwrap();
}

#[test]
fn exhaustion_counts_a_failure_and_changes_nothing_else() {
    // 4 frames: the first malloc's refill takes all of them and the reserve stays short. 4000 bytes need
    // 4016: 63 blocks (list 62), so each object takes a page and leaves a 64-byte block (list 0).
    let mut z = Xcfmalloc::new(Limited::new(HostMemory::new(16), 4));
    let hs: Vec<Handle> = (0..4).map(|i| put(&mut z, 4000, i)).collect();
    assert_eq!((z.total_pages(), z.xcf_stats().reserve_pages, z.free_lists()[0]), (4, 0, 4));
    let before = snapshot(&z);
    assert_eq!(z.malloc(4000), Err(PoolError::OutOfMemory));
    // 100 bytes need 116 (list 1): a 64-byte block is never a first block, and nothing is larger.
    assert_eq!(z.malloc(100), Err(PoolError::OutOfMemory));
    let (stats, xs, lists) = before;
    assert_eq!(snapshot(&z), (PoolStats { failures: 2, ..stats }, xs, lists));
    // 48 bytes fit a 64-byte block exactly: best fit.
    let h = put(&mut z, 48, 0x90);
    let b = z.locate(h).unwrap();
    assert_eq!((b.len(), b[0].offset, b[0].len), (1, 4032, 64));
    assert_eq!(z.total_pages(), 4);
    for (i, &h) in hs.iter().enumerate() {
        assert_eq!(get(&mut z, h), vec![i as u8; 4000]);
    }
    assert_eq!(get(&mut z, h), vec![0x90; 48]);
    z.verify().unwrap();
}

#[test]
fn a_malloc_that_fails_gives_back_the_pages_its_refill_took() {
    let mut z = flaky();
    let a = put(&mut z, 4000, 1);
    assert_eq!((z.total_pages(), z.xcf_stats().reserve_pages), (1, 0));
    let before = snapshot(&z);
    let frames = z.memory_mut().mem.frames().stats().used;
    // One mapping left: the refill gets a frame and writes its header; the split of that page then cannot
    // map it. The malloc fails, and the refilled page goes back.
    z.memory_mut().maps_left = Some(1);
    assert_eq!(z.malloc(100), Err(PoolError::Memory(MemError::NoSlot)));
    assert_eq!(z.memory_mut().maps_left, Some(0), "the refill did map its page");
    let (stats, xs, lists) = before;
    assert_eq!(snapshot(&z), (PoolStats { failures: 1, ..stats }, xs, lists));
    assert_eq!(z.memory_mut().mem.frames().stats().used, frames);
    z.memory_mut().maps_left = None;
    assert_eq!(get(&mut z, a), vec![1; 4000]);
    z.verify().unwrap();
}

/// Host memory that fails on demand.
#[derive(Debug)]
struct Flaky {
    mem: HostMemory,
    fail_map: bool,
    fail_free: bool,
    /// Mappings still allowed (`None`: no limit).
    maps_left: Option<u32>,
}

impl Flaky {
    fn map_refused(&mut self) -> bool {
        match &mut self.maps_left {
            _ if self.fail_map => true,
            Some(0) => true,
            Some(n) => {
                *n -= 1;
                false
            }
            None => false,
        }
    }
}

impl PageMemory for Flaky {
    fn with_page<R>(&mut self, pfn: Pfn, f: impl FnOnce(&mut [u8]) -> R) -> Result<R, MemError> {
        if self.map_refused() { Err(MemError::NoSlot) } else { self.mem.with_page(pfn, f) }
    }

    fn with_pages2<R>(&mut self, a: Pfn, b: Pfn, f: impl FnOnce(&mut [u8]) -> R) -> Result<R, MemError> {
        if self.map_refused() { Err(MemError::NoSlot) } else { self.mem.with_pages2(a, b, f) }
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

fn flaky() -> Xcfmalloc<Flaky> {
    let mem = Flaky { mem: HostMemory::new(16), fail_map: false, fail_free: false, maps_left: None };
    Xcfmalloc::with_reserve(mem, NonZeroU32::new(1).unwrap())
}

#[test]
fn mapping_failures_are_reported_and_change_nothing() {
    let mut z = flaky();
    let a = put(&mut z, 3000, 1);
    let b = put(&mut z, 2000, 2);
    assert_eq!(z.locate(b).unwrap().len(), 2);
    let before = snapshot(&z);
    z.memory_mut().fail_map = true;
    let err = Some(PoolError::Memory(MemError::NoSlot));
    // The refill cannot write its page's header (the frame goes back); the split needs the page too:
    // refused, the blocks go back, the failure is counted.
    assert_eq!(z.malloc(100).err(), err);
    assert_eq!(z.free(b).err(), err);
    assert_eq!(z.map(a, MapMode::ReadOnly, |_| panic!("not gathered")).err(), err);
    assert_eq!(z.memory_mut().mem.frames().stats().used, 2, "the refill's frame went back");
    assert_eq!(z.verify(), Err(VerifyError::Memory(MemError::NoSlot)));
    let (stats, xs, lists) = before;
    assert_eq!(snapshot(&z), (PoolStats { failures: 1, ..stats }, xs, lists));
    z.memory_mut().fail_map = false;
    assert_eq!((get(&mut z, a), get(&mut z, b)), (vec![1; 3000], vec![2; 2000]));
    z.verify().unwrap();
}

#[test]
fn a_frame_the_source_will_not_take_stays_in_the_reserve() {
    let mut z = flaky();
    let hs: Vec<Handle> = (0..3).map(|i| put(&mut z, 4000, i)).collect();
    assert_eq!((z.total_pages(), z.xcf_stats().reserve_pages), (3, 0));
    z.free(hs[0]).unwrap();
    assert_eq!((z.total_pages(), z.xcf_stats().reserve_pages), (3, 1), "within the reserve of 1");
    z.memory_mut().fail_free = true;
    z.free(hs[1]).unwrap();
    assert_eq!((z.total_pages(), z.xcf_stats().reserve_pages), (3, 2), "the surplus page could not go back");
    assert!(matches!(z.release_reserve(), Err(PoolError::Frame(FrameError::Foreign(_)))));
    assert_eq!(z.total_pages(), 3);
    z.memory_mut().fail_free = false;
    z.free(hs[2]).unwrap();
    assert_eq!((z.total_pages(), z.xcf_stats().reserve_pages), (1, 1), "the next free tried again");
    z.verify().unwrap();
}

#[test]
fn a_scribbled_header_is_found_and_free_refuses() {
    let mut z = lean(8);
    let (hs, p) = carve(&mut z, &[1024, 3072]);
    z.verify().unwrap();
    z.memory_mut().with_page(p, |pg| pg[1024 + 5] ^= 1).unwrap();
    assert_eq!(z.verify(), Err(VerifyError::Header { pfn: p, offset: 1024 }));
    let before = snapshot(&z);
    assert_eq!(z.free(hs[1]), Err(PoolError::Memory(MemError::Foreign(p))));
    assert_eq!(snapshot(&z), before);
    z.memory_mut().with_page(p, |pg| pg[1024 + 5] ^= 1).unwrap();
    z.free(hs[1]).unwrap();
    z.verify().unwrap();
}

#[test]
fn metadata_is_headers_of_used_blocks_and_every_descriptor() {
    let mut z = pool(64);
    assert_eq!(z.metadata_bytes(), 0);
    let a = put(&mut z, 3000, 1);
    let b = put(&mut z, 2000, 2);
    // The worked example's state: 3 used blocks; free blocks: Q's tail and 31 reserve pages.
    let s = z.xcf_stats();
    assert_eq!((s.used_blocks, s.free_blocks, s.two_block_objects), (3, 32, 1));
    assert_eq!((s.header_bytes, s.descriptor_bytes), (3 * 16, 35 * 24));
    assert_eq!(z.metadata_bytes(), 48 + 840);
    assert_eq!(s.used_block_bytes, 3072 + 1024 + 1024);
    z.free(a).unwrap();
    z.free(b).unwrap();
    assert_eq!(z.metadata_bytes(), 32 * 24, "the reserve pages' descriptors");
}

#[test]
fn moved_blocks_keep_their_handles_and_bytes() {
    let mut z = lean(16);
    // Page P: a (1024) | b (1024) | c (2048). Page Q: d (3072) | e (1024).
    let (p_objs, p) = carve(&mut z, &[1024, 1024, 2048]);
    let (q_objs, q) = carve(&mut z, &[3072, 1024]);
    // Leave P with a and Q with d: P is sparser (1024 used) and its block fits into Q's 1024 hole.
    z.free(p_objs[1]).unwrap();
    z.free(p_objs[2]).unwrap();
    z.free(q_objs[1]).unwrap();
    let a = p_objs[0];
    z.map(a, MapMode::WriteOnly, |s| s.iter_mut().enumerate().for_each(|(i, x)| *x = i as u8)).unwrap();
    let want = get(&mut z, a);
    let pages = z.total_pages();
    assert_eq!(z.xcf_stats().reserve_pages, 1);
    let freed = z.compact().unwrap();
    assert_eq!(z.locate(a).unwrap(), vec![blk(q, 3072, 1024, 1008)], "a moved into Q's hole");
    assert_eq!(get(&mut z, a), want);
    assert_eq!(get(&mut z, q_objs[0]), vec![1; 3056]);
    // P is empty now: a second reserve page, one above the target of 1, so it went back.
    assert_eq!((freed, z.total_pages(), z.stats().pages_compacted), (1, pages - 1, 1));
    assert_eq!(z.free_blocks(RESERVED_INDEX).len(), 1);
    assert_ne!(z.free_blocks(RESERVED_INDEX)[0].pfn, p, "P went back");
    z.verify().unwrap();
    z.free(a).unwrap();
    z.verify().unwrap();
}

#[test]
fn a_two_block_object_can_move_and_stays_whole() {
    let mut z = lean(16);
    // b is split between P's tail and the head of Q; Q then gets a neighbour that is freed again.
    let (hs, p) = carve(&mut z, &[3072, 1024]);
    z.free(hs[1]).unwrap();
    let b = put(&mut z, 2000, 0xbb);
    let q = z.locate(b).unwrap()[1].pfn;
    assert_eq!(z.locate(b).unwrap(), vec![blk(p, 3072, 1024, 1008), blk(q, 0, 1024, 992)]);
    let data: Vec<u8> = (0..2000).map(|i| (i % 241) as u8).collect();
    z.map(b, MapMode::WriteOnly, |s| s.copy_from_slice(&data)).unwrap();
    // Q (b's tail, 1024 of 4096 bytes used) is the sparsest page, but P, the only other one, is full:
    // there is nowhere to move the tail, and compaction frees nothing.
    assert_eq!(z.compact(), Ok(0));
    assert_eq!(z.locate(b).unwrap()[1].pfn, q);
    // Free P's first object and put a 2032-byte one there: P keeps a 1024-byte hole (2048..3072), b's
    // tail moves into it, and Q empties.
    z.free(hs[0]).unwrap();
    let h = put(&mut z, 2032, 1);
    assert_eq!(z.locate(h).unwrap(), vec![blk(p, 0, 2048, 2032)]);
    let pages = z.total_pages();
    let freed = z.compact().unwrap();
    let after = z.locate(b).unwrap();
    assert_eq!(after[0], blk(p, 3072, 1024, 1008));
    assert_eq!(after[1], blk(p, 2048, 1024, 992), "the tail moved into P's hole");
    assert_eq!(z.map(b, MapMode::ReadOnly, |s| s == data.as_slice()), Ok(true));
    assert_eq!((freed, z.total_pages()), (1, pages - 1));
    z.verify().unwrap();
}

#[test]
fn compaction_after_freeing_two_thirds_returns_pages() {
    let mut z = pool(1024);
    // 1008-byte objects are single 1024-byte blocks: four per page, in allocation order (each takes the
    // previous one's split remainder), so 3000 objects fill 750 pages exactly.
    let hs: Vec<Handle> = (0..3000).map(|i| put(&mut z, 1008, i as u8)).collect();
    assert_eq!((z.xcf_stats().pages_in_use, z.xcf_stats().reserve_pages), (750, 32));
    // Keep every third: page k holds objects 4k..4k+3, and of every four consecutive numbers one or two are
    // multiples of 3, so no page empties: 250 pages keep two objects, 500 keep one.
    for (i, &h) in hs.iter().enumerate() {
        if i % 3 != 0 {
            z.free(h).unwrap();
        }
    }
    assert_eq!((z.xcf_stats().pages_in_use, z.total_pages()), (750, 782));
    let freed = z.compact().unwrap();
    // 1000 blocks of 1024 bytes fit 4 to a page: 250 pages. Each one-object page moved its block into a
    // two-object page (the fullest with a hole first), so 500 pages emptied; the reserve was full, so all
    // 500 went back.
    assert_eq!(freed, 500);
    assert_eq!((z.xcf_stats().pages_in_use, z.xcf_stats().reserve_pages, z.total_pages()), (250, 32, 282));
    assert_eq!(z.stats().pages_compacted, 500);
    for (i, &h) in hs.iter().enumerate().filter(|(i, _)| i % 3 == 0) {
        assert_eq!(get(&mut z, h), vec![i as u8; 1008], "object {i}");
    }
    z.verify().unwrap();
    assert_eq!(z.compact(), Ok(0), "nothing more to gain");
    for (_, &h) in hs.iter().enumerate().filter(|(i, _)| i % 3 == 0) {
        z.free(h).unwrap();
    }
    assert_eq!(z.total_pages(), 32);
    z.verify().unwrap();
}

/// One run of the shared model; prints the report and time; every reserve page goes back at the end.
fn model_with<M: PageMemory + FrameSource>(z: &mut Xcfmalloc<M>, cfg: Config) -> testing::Report {
    let t = Instant::now();
    let r = testing::run_with(z, &cfg, |z| z.verify().unwrap());
    println!("xcfmalloc model seed {}, {} ops: {:?}\n{r:?}", cfg.seed, cfg.ops, t.elapsed());
    // All objects freed: what is left is the reserve, at most its target.
    assert_eq!(r.final_pages, z.xcf_stats().reserve_pages);
    assert!(r.final_pages <= u64::from(z.reserve_target()));
    assert_eq!(z.release_reserve(), Ok(r.final_pages));
    assert_eq!(z.total_pages(), 0);
    z.verify().unwrap();
    r
}

#[test]
fn model_seed_1() {
    let mut z = pool(2048);
    let r = model_with(&mut z, Config { check_every: 2048, ..Config::new(1, 100_000) });
    assert_eq!(r.final_pages, 32);
    assert_eq!(z.memory_mut().frames().stats().used, 0, "every frame went back");
    assert!(r.compacts > 500 && r.malloc_oom == 0 && r.stale_probes > 1000, "{r:?}");
}

#[test]
fn model_seed_2_with_many_objects() {
    let mut z = pool(4096);
    let r = model_with(&mut z, Config { max_live: 1000, check_every: 8192, ..Config::new(2, 100_000) });
    assert!(r.peak_live > 500 && r.pages_compacted > 0, "{r:?}");
}

#[test]
fn model_under_memory_pressure_seed_3() {
    // 96 frames for up to 256 objects of ~1.7 KiB on average (the harness's mix), reserve included: mallocs
    // run out of memory, must change nothing but `failures`, and succeed again after frees.
    let mut z = Xcfmalloc::new(Limited::new(HostMemory::new(256), 96));
    let r = model_with(&mut z, Config { check_every: 1024, ..Config::new(3, 100_000) });
    assert!(r.malloc_oom > 100, "{r:?}");
}

#[test]
fn model_with_few_objects_and_a_small_reserve_seed_4() {
    let mut z = Xcfmalloc::with_reserve(HostMemory::new(256), NonZeroU32::new(1).unwrap());
    let r = model_with(&mut z, Config { max_live: 8, check_every: 512, ..Config::new(4, 100_000) });
    assert!(r.stale_probes > 1000 && r.compacts > 500, "{r:?}");
}

#[test]
fn density_of_objects_at_75_percent() {
    let mut z = pool(10_100);
    let hs: Vec<Handle> = (0..10_000).map(|_| z.malloc(3072).unwrap()).collect();
    let s = z.xcf_stats();
    // Each object takes 49 blocks of 64 bytes whichever way it lies: in one block, 3072 + 16 = 3088 bytes
    // round up to 3136 = 49 × 64; in two, the first block (a whole hole) is filled exactly and the last
    // holds the rest + its own 16-byte header, rounded up, so 3072 + 32 = 3104 round up to 49 × 64 too.
    // Holes are always reused before a fresh page (largest smaller first block), so every page but the
    // last is tiled with no free block: ⌈10,000 × 49 / 64⌉ = ⌈7656.25⌉ = 7657 pages in use, 0.7657 pages
    // per stored page (the patch measured ~0.77), the last page keeping 48 free blocks (3072 bytes).
    assert_eq!((s.pages_in_use, s.used_block_bytes), (7657, 10_000 * 49 * 64));
    assert_eq!(z.free_blocks(47).len(), 1, "the last page's tail, 48 blocks");
    // Plus the reserve: refilled to 32 before the last malloc, which took a page from it.
    assert_eq!((s.reserve_pages, z.total_pages()), (31, 7688));
    // Three objects of four are split (the pattern repeats every 4 objects / 3 pages + 4 blocks).
    assert_eq!((s.two_block_objects, s.used_blocks), (7500, 17_500));
    assert_eq!(z.metadata_bytes(), 17_500 * 16 + (17_500 + 32) * 24);
    println!(
        "xcfmalloc, 10,000 objects of 3072 bytes: {} pages in use ({:.4} per object) + {} reserve; \
         metadata {} bytes ({:.1} per object)",
        s.pages_in_use,
        s.pages_in_use as f64 / 10_000.0,
        s.reserve_pages,
        z.metadata_bytes(),
        z.metadata_bytes() as f64 / 10_000.0
    );
    z.verify().unwrap();
    for h in hs {
        z.free(h).unwrap();
    }
    assert_eq!(z.total_pages(), 32);
}

//! Unit tests: every error variant, splitting and merging, odd regions, owners, watermarks, per-CPU lists.

use super::*;

fn table(frames: usize) -> Vec<FrameInfo> {
    vec![FrameInfo::reserved(); frames]
}

/// The allocator's whole observable state, to prove a refused operation changed nothing.
fn snapshot(a: &FrameAllocator<'_>) -> String {
    format!("{:?}|{:?}|{:?}", a.table, a.heads, a.stats)
}

/// The free blocks as (pfn, order), sorted by pfn, read off the lists.
fn free_blocks(a: &FrameAllocator<'_>) -> Vec<(u64, u8)> {
    let mut blocks = Vec::new();
    for order in 0..=MAX_ORDER {
        let mut i = a.heads[usize::from(order)];
        while i != NIL {
            blocks.push((a.base.0 + u64::from(i), order));
            i = a.table[i as usize].next;
        }
    }
    blocks.sort_unstable();
    blocks
}

fn check_invariants(a: &FrameAllocator<'_>) {
    let s = a.stats();
    assert_eq!(s.managed, s.free + s.used + s.per_cpu, "{s:?}");
    let listed: u64 = s.free_per_order.iter().enumerate().map(|(o, &n)| n << o).sum();
    assert_eq!(s.free, listed, "{s:?}");
}

/// Run `op`, which must be refused with `want`, and check that it changed nothing.
fn refused<'t, T: fmt::Debug>(
    a: &mut FrameAllocator<'t>,
    want: FrameError,
    op: impl FnOnce(&mut FrameAllocator<'t>) -> Result<T, FrameError>,
) {
    let before = snapshot(a);
    let got = op(a);
    assert_eq!(got.unwrap_err(), want);
    assert_eq!(snapshot(a), before, "a refused {want:?} changed the allocator");
}

fn orders(a: &FrameAllocator<'_>) -> [u64; 11] {
    a.stats().free_per_order
}

/// A tiny deterministic shuffle for the order-independence tests.
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        items.swap(i, (seed % (i as u64 + 1)) as usize);
    }
}

#[test]
fn frame_info_fits_in_24_bytes() {
    assert!(size_of::<FrameInfo>() <= 24, "{}", size_of::<FrameInfo>());
}

#[test]
fn pfn_and_addresses() {
    assert_eq!(Pfn(3).addr(), 0x3000);
    assert_eq!(Pfn::from_addr(0x3fff), Pfn(3));
    assert_eq!(Pfn::from_addr(0x4000), Pfn(4));
    assert_eq!(Pfn(u64::MAX).addr(), u64::MAX.wrapping_mul(PAGE_SIZE), "no overflow panic");
}

#[test]
fn owner_names() {
    let named = [
        (Owner::NONE, "none"),
        (Owner::KERNEL, "kernel"),
        (Owner::PAGE_TABLE, "page table"),
        (Owner::FRAME_TABLE, "frame table"),
        (Owner::HEAP, "heap"),
        (Owner::STACK, "stack"),
        (Owner::KMAP_TEST, "kmap test"),
        (Owner::POOL, "pool"),
        (Owner::WORKLOAD, "workload"),
        (Owner::PAGE_CACHE, "page cache"),
        (Owner::ZSMALLOC, "zsmalloc"),
        (Owner::ZBUD, "zbud"),
        (Owner::XVMALLOC, "xvmalloc"),
        (Owner::XCFMALLOC, "xcfmalloc"),
        (Owner::DMA, "dma"),
    ];
    for (k, (owner, name)) in named.into_iter().enumerate() {
        assert_eq!(owner, Owner(k as u16), "the owners are numbered in this order");
        assert_eq!(owner.name(), name);
    }
    assert_eq!(Owner(15).name(), "other");
    assert_eq!(Owner(999).name(), "other");
}

#[test]
fn pool_owners_are_pools_and_nothing_else_is() {
    let pools = [Owner::POOL, Owner::ZSMALLOC, Owner::ZBUD, Owner::XVMALLOC, Owner::XCFMALLOC];
    assert!(pools.iter().all(|o| o.is_pool()));
    let others = (0..=20).map(Owner).filter(|o| !pools.contains(o));
    assert_eq!(others.filter(|o| o.is_pool()).count(), 0);
}

#[test]
fn table_len_and_span() {
    assert_eq!(FrameAllocator::table_len(Pfn(3), Pfn(1000)), 997);
    assert_eq!(FrameAllocator::table_len(Pfn(5), Pfn(2)), 0);
    let mut t = table(FrameAllocator::table_len(Pfn(3), Pfn(1000)));
    let a = FrameAllocator::new(&mut t, Pfn(3));
    assert_eq!(a.span(), (Pfn(3), Pfn(1000)));
    assert_eq!(a.stats(), FrameStats::default());
    assert_eq!(a.info(Pfn(2)).map(|f| f.state()), None);
    assert_eq!(a.info(Pfn(3)).map(|f| f.state()), Some(FrameState::Reserved));
    assert_eq!(a.info(Pfn(1000)).map(|f| f.state()), None);
}

#[test]
fn new_resets_the_table() {
    let mut t = table(64);
    {
        let mut a = FrameAllocator::new(&mut t, Pfn(0));
        a.add_free_range(Pfn(0), Pfn(64)).unwrap();
        a.alloc(3, Owner::HEAP).unwrap();
    }
    let a = FrameAllocator::new(&mut t, Pfn(0));
    assert!(a.table.iter().all(|f| f.state() == FrameState::Reserved && f.owner() == Owner::NONE));
    assert_eq!(a.stats(), FrameStats::default());
}

#[test]
fn span_at_the_top_of_the_pfn_space_is_clipped() {
    let mut t = table(8);
    let mut a = FrameAllocator::new(&mut t, Pfn(u64::MAX - 4));
    assert_eq!(a.span(), (Pfn(u64::MAX - 4), Pfn(u64::MAX)));
    a.add_free_range(Pfn(u64::MAX - 4), Pfn(u64::MAX)).unwrap();
    let p = a.alloc(0, Owner::KERNEL).unwrap();
    a.free(p, 0).unwrap();
    assert_eq!(a.stats().free, 4);
    check_invariants(&a);
}

// ---- every error variant -------------------------------------------------------------------------

#[test]
fn double_free_is_refused() {
    let mut t = table(64);
    let mut a = FrameAllocator::new(&mut t, Pfn(0));
    a.add_free_range(Pfn(0), Pfn(64)).unwrap();
    let p = a.alloc(1, Owner::HEAP).unwrap();
    a.free(p, 1).unwrap();
    refused(&mut a, FrameError::DoubleFree(p), |a| a.free(p, 1));
    refused(&mut a, FrameError::DoubleFree(p), |a| a.free(p, 0));
}

#[test]
fn freeing_a_never_allocated_frame_is_not_allocated() {
    let mut t = table(64);
    let mut a = FrameAllocator::new(&mut t, Pfn(0));
    a.add_free_range(Pfn(0), Pfn(64)).unwrap();
    // The head of the one free block, as its own order, and a frame inside it.
    refused(&mut a, FrameError::NotAllocated(Pfn(0)), |a| a.free(Pfn(0), 6));
    refused(&mut a, FrameError::NotAllocated(Pfn(17)), |a| a.free(Pfn(17), 0));
}

#[test]
fn alloc_free_free_again_is_a_double_free_but_its_never_allocated_neighbours_are_not() {
    let mut t = table(64);
    let mut a = FrameAllocator::new(&mut t, Pfn(0));
    a.add_free_range(Pfn(0), Pfn(64)).unwrap();
    let p = a.alloc(2, Owner::STACK).unwrap();
    assert_eq!(p, Pfn(0));
    a.free(p, 2).unwrap();
    // The block merged back into the order-6 block; its own frames remember being allocated…
    assert_eq!(free_blocks(&a), vec![(0, 6)]);
    refused(&mut a, FrameError::DoubleFree(p), |a| a.free(p, 2));
    refused(&mut a, FrameError::DoubleFree(Pfn(2)), |a| a.free(Pfn(2), 1));
    refused(&mut a, FrameError::DoubleFree(Pfn(3)), |a| a.free(Pfn(3), 0));
    // …the rest of the merged block was never allocated.
    refused(&mut a, FrameError::NotAllocated(Pfn(4)), |a| a.free(Pfn(4), 2));
    refused(&mut a, FrameError::NotAllocated(Pfn(63)), |a| a.free(Pfn(63), 0));
    // Allocated again and freed again, by whoever: still a double free after that.
    let q = a.alloc(0, Owner::HEAP).unwrap();
    assert_eq!(q, p);
    a.free(q, 0).unwrap();
    refused(&mut a, FrameError::DoubleFree(q), |a| a.free(q, 0));
}

#[test]
fn a_block_allocated_for_nobody_reads_as_not_allocated_when_freed_twice() {
    // The documented caveat of allocating with Owner::NONE: the free records nobody as the last owner.
    let mut t = table(16);
    let mut a = FrameAllocator::new(&mut t, Pfn(0));
    a.add_free_range(Pfn(0), Pfn(16)).unwrap();
    let p = a.alloc(1, Owner::HEAP).unwrap();
    a.free(p, 1).unwrap();
    refused(&mut a, FrameError::DoubleFree(p), |a| a.free(p, 1));
    let q = a.alloc(1, Owner::NONE).unwrap();
    assert_eq!(q, p);
    a.free(q, 1).unwrap();
    assert_eq!(a.info(q).unwrap().last_owner(), Owner::NONE);
    refused(&mut a, FrameError::NotAllocated(q), |a| a.free(q, 1));
}

#[test]
fn freeing_a_tail_frame_is_refused() {
    let mut t = table(64);
    let mut a = FrameAllocator::new(&mut t, Pfn(0));
    a.add_free_range(Pfn(0), Pfn(64)).unwrap();
    let p = a.alloc(2, Owner::HEAP).unwrap();
    assert_eq!(p, Pfn(0));
    refused(&mut a, FrameError::NotAllocated(Pfn(1)), |a| a.free(Pfn(1), 0));
    refused(&mut a, FrameError::NotAllocated(Pfn(2)), |a| a.free(Pfn(2), 1));
    refused(&mut a, FrameError::NotAllocated(Pfn(3)), |a| a.free(Pfn(3), 0));
    a.free(p, 2).unwrap();
    assert_eq!(orders(&a)[6], 1);
}

#[test]
fn wrong_order_is_refused() {
    let mut t = table(64);
    let mut a = FrameAllocator::new(&mut t, Pfn(0));
    a.add_free_range(Pfn(0), Pfn(64)).unwrap();
    let p = a.alloc(2, Owner::HEAP).unwrap();
    refused(&mut a, FrameError::WrongOrder { pfn: p, allocated: 2, freed: 1 }, |a| a.free(p, 1));
    refused(&mut a, FrameError::WrongOrder { pfn: p, allocated: 2, freed: 0 }, |a| a.free(p, 0));
    refused(&mut a, FrameError::WrongOrder { pfn: p, allocated: 2, freed: 3 }, |a| a.free(p, 3));
}

#[test]
fn misaligned_free_is_refused() {
    let mut t = table(64);
    let mut a = FrameAllocator::new(&mut t, Pfn(0));
    a.add_free_range(Pfn(0), Pfn(64)).unwrap();
    let p = a.alloc(2, Owner::HEAP).unwrap();
    let q = a.alloc(2, Owner::HEAP).unwrap();
    assert_eq!((p, q), (Pfn(0), Pfn(4)));
    refused(&mut a, FrameError::Misaligned { pfn: Pfn(2), order: 2 }, |a| a.free(Pfn(2), 2));
    refused(&mut a, FrameError::Misaligned { pfn: Pfn(4), order: 3 }, |a| a.free(Pfn(4), 3));
}

#[test]
fn foreign_pfns_outside_the_span_are_refused() {
    let mut t = table(64);
    let mut a = FrameAllocator::new(&mut t, Pfn(64));
    a.add_free_range(Pfn(64), Pfn(128)).unwrap();
    refused(&mut a, FrameError::Foreign(Pfn(63)), |a| a.free(Pfn(63), 0));
    refused(&mut a, FrameError::Foreign(Pfn(128)), |a| a.free(Pfn(128), 0));
    refused(&mut a, FrameError::Foreign(Pfn(0)), |a| a.free(Pfn(0), 6));
    refused(&mut a, FrameError::Foreign(Pfn(u64::MAX)), |a| a.free(Pfn(u64::MAX), 0));
    refused(&mut a, FrameError::Foreign(Pfn(200)), |a| a.set_link(Pfn(200), 1));
    refused(&mut a, FrameError::Foreign(Pfn(60)), |a| a.add_free_range(Pfn(60), Pfn(70)));
    refused(&mut a, FrameError::Foreign(Pfn(128)), |a| a.add_free_range(Pfn(120), Pfn(130)));
    refused(&mut a, FrameError::Foreign(Pfn(140)), |a| a.add_free_range(Pfn(140), Pfn(150)));
}

#[test]
fn reserved_frames_are_foreign() {
    let mut t = table(64);
    let mut a = FrameAllocator::new(&mut t, Pfn(0));
    a.add_free_range(Pfn(0), Pfn(16)).unwrap();
    a.add_free_range(Pfn(32), Pfn(64)).unwrap();
    refused(&mut a, FrameError::Foreign(Pfn(16)), |a| a.free(Pfn(16), 0));
    refused(&mut a, FrameError::Foreign(Pfn(16)), |a| a.free(Pfn(16), 4));
    refused(&mut a, FrameError::Foreign(Pfn(20)), |a| a.set_link(Pfn(20), 7));
    // The hole is never handed out and blocks merging across it.
    assert_eq!(free_blocks(&a), vec![(0, 4), (32, 5)]);
}

#[test]
fn invalid_order_is_refused() {
    let mut t = table(64);
    let mut a = FrameAllocator::new(&mut t, Pfn(0));
    a.add_free_range(Pfn(0), Pfn(64)).unwrap();
    refused(&mut a, FrameError::InvalidOrder(11), |a| a.alloc(11, Owner::HEAP));
    refused(&mut a, FrameError::InvalidOrder(255), |a| a.alloc(255, Owner::HEAP));
    let p = a.alloc(0, Owner::HEAP).unwrap();
    refused(&mut a, FrameError::InvalidOrder(11), |a| a.free(p, 11));
    assert_eq!(a.stats().alloc_failures, 0, "an invalid order is not an allocation failure");
}

#[test]
fn out_of_memory_is_refused_and_counted() {
    let mut t = table(8);
    let mut a = FrameAllocator::new(&mut t, Pfn(0));
    a.add_free_range(Pfn(0), Pfn(8)).unwrap();
    let before_table = format!("{:?}|{:?}", a.table, a.heads);
    let before = a.stats();
    assert_eq!(a.alloc(4, Owner::HEAP), Err(FrameError::OutOfMemory { order: 4 }));
    assert_eq!(a.stats(), FrameStats { alloc_failures: 1, ..before });
    assert_eq!(format!("{:?}|{:?}", a.table, a.heads), before_table);

    a.alloc(3, Owner::HEAP).unwrap();
    let before = a.stats();
    assert_eq!(a.alloc(0, Owner::HEAP), Err(FrameError::OutOfMemory { order: 0 }));
    assert_eq!(a.stats(), FrameStats { alloc_failures: 2, ..before });
    check_invariants(&a);
}

#[test]
fn adding_managed_frames_again_is_refused() {
    let mut t = table(64);
    let mut a = FrameAllocator::new(&mut t, Pfn(0));
    a.add_free_range(Pfn(10), Pfn(20)).unwrap();
    refused(&mut a, FrameError::DoubleFree(Pfn(15)), |a| a.add_free_range(Pfn(15), Pfn(30)));
    refused(&mut a, FrameError::DoubleFree(Pfn(10)), |a| a.add_free_range(Pfn(0), Pfn(64)));
    assert_eq!(a.info(Pfn(25)).unwrap().state(), FrameState::Reserved);
    // Empty and inverted ranges are no-ops.
    let before = snapshot(&a);
    a.add_free_range(Pfn(40), Pfn(40)).unwrap();
    a.add_free_range(Pfn(50), Pfn(40)).unwrap();
    assert_eq!(snapshot(&a), before);
}

#[test]
fn set_link_only_touches_allocated_frames_and_alloc_resets_it() {
    let mut t = table(16);
    let mut a = FrameAllocator::new(&mut t, Pfn(0));
    a.add_free_range(Pfn(0), Pfn(16)).unwrap();
    let p = a.alloc(1, Owner::POOL).unwrap();
    a.set_link(p, 0xdead).unwrap();
    a.set_link(Pfn(p.0 + 1), 0xbeef).unwrap();
    assert_eq!(a.info(p).unwrap().link, 0xdead);
    refused(&mut a, FrameError::NotAllocated(Pfn(8)), |a| a.set_link(Pfn(8), 1));
    a.free(p, 1).unwrap();
    refused(&mut a, FrameError::NotAllocated(p), |a| a.set_link(p, 1));
    let q = a.alloc(1, Owner::POOL).unwrap();
    assert_eq!(q, p);
    assert_eq!((a.info(q).unwrap().link, a.info(Pfn(q.0 + 1)).unwrap().link), (0, 0));
}

// ---- splitting, merging, carving -------------------------------------------------------------------

#[test]
fn one_max_block_splits_into_one_block_per_order_and_merges_back() {
    let mut t = table(1024);
    let mut a = FrameAllocator::new(&mut t, Pfn(4096));
    a.add_free_range(Pfn(4096), Pfn(5120)).unwrap();
    assert_eq!(orders(&a), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);

    let p = a.alloc(0, Owner::KERNEL).unwrap();
    assert_eq!(p, Pfn(4096));
    assert_eq!(orders(&a), [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0]);
    let blocks: Vec<(u64, u8)> = (0..10).map(|o| (4096 + (1 << o), o)).collect();
    assert_eq!(free_blocks(&a), blocks, "each split-off upper half heads its own list");
    check_invariants(&a);

    a.free(p, 0).unwrap();
    assert_eq!(orders(&a), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(free_blocks(&a), vec![(4096, 10)]);
    assert_eq!(a.stats().free, 1024);
    assert!(a.table.iter().skip(1).all(|f| f.state() == FrameState::Free && !f.is_head()));
}

#[test]
fn worked_example_from_the_header() {
    // The header's example uses order 4 as the top; here the 16 frames sit in a 16-frame hole so their
    // order-4 block cannot merge further.
    let mut t = table(16);
    let mut a = FrameAllocator::new(&mut t, Pfn(0));
    a.add_free_range(Pfn(0), Pfn(16)).unwrap();
    assert_eq!(free_blocks(&a), vec![(0, 4)]);
    assert_eq!(a.alloc(0, Owner::KERNEL), Ok(Pfn(0)));
    assert_eq!(free_blocks(&a), vec![(1, 0), (2, 1), (4, 2), (8, 3)]);
    a.free(Pfn(0), 0).unwrap();
    assert_eq!(free_blocks(&a), vec![(0, 4)]);
}

#[test]
fn alloc_takes_the_smallest_fitting_block() {
    let mut t = table(64);
    let mut a = FrameAllocator::new(&mut t, Pfn(0));
    a.add_free_range(Pfn(3), Pfn(20)).unwrap(); // 3 o0, 4 o2, 8 o3, 16 o2
    // Lists are LIFO: the order-2 block added last (16) is split, not the order-3 one.
    assert_eq!(a.alloc(1, Owner::HEAP), Ok(Pfn(16)));
    assert_eq!(free_blocks(&a), vec![(3, 0), (4, 2), (8, 3), (18, 1)]);
    assert_eq!(a.alloc(0, Owner::HEAP), Ok(Pfn(3)), "an exact fit beats splitting");
    assert_eq!(a.alloc(3, Owner::HEAP), Ok(Pfn(8)));
    assert_eq!(a.alloc(3, Owner::HEAP), Err(FrameError::OutOfMemory { order: 3 }));
    assert_eq!(free_blocks(&a), vec![(4, 2), (18, 1)]);
    check_invariants(&a);
}

#[test]
fn odd_region_is_carved_into_aligned_blocks() {
    let mut t = table(1000);
    let mut a = FrameAllocator::new(&mut t, Pfn(0));
    a.add_free_range(Pfn(3), Pfn(1000)).unwrap();
    let want = vec![
        (3, 0),
        (4, 2),
        (8, 3),
        (16, 4),
        (32, 5),
        (64, 6),
        (128, 7),
        (256, 8),
        (512, 8),
        (768, 7),
        (896, 6),
        (960, 5),
        (992, 3),
    ];
    assert_eq!(free_blocks(&a), want);
    assert_eq!(a.stats().free, 997);
    assert_eq!(a.stats().managed, 997);
    assert_eq!(orders(&a), [1, 0, 1, 2, 1, 2, 2, 2, 2, 0, 0]);
    for &(pfn, order) in &want {
        let f = a.info(Pfn(pfn)).unwrap();
        assert!(f.is_head() && f.order() == order && f.state() == FrameState::Free);
    }
    check_invariants(&a);
}

#[test]
fn header_carving_example() {
    let mut t = table(32);
    let mut a = FrameAllocator::new(&mut t, Pfn(0));
    a.add_free_range(Pfn(3), Pfn(20)).unwrap();
    assert_eq!(free_blocks(&a), vec![(3, 0), (4, 2), (8, 3), (16, 2)]);
}

#[test]
fn adding_ranges_in_any_order_gives_the_same_blocks() {
    let cuts = [3u64, 4, 17, 100, 513, 1024, 1025, 1030, 2047, 2048, 2500, 3001, 4096, 4103];
    let pieces: Vec<(u64, u64)> = cuts.windows(2).map(|w| (w[0], w[1])).collect();

    let mut t = table(4200);
    let mut whole = FrameAllocator::new(&mut t, Pfn(0));
    whole.add_free_range(Pfn(3), Pfn(4103)).unwrap();
    let want = (orders(&whole), free_blocks(&whole));
    assert_eq!(want.1.first(), Some(&(3, 0)));
    assert!(want.1.contains(&(1024, 10)) && want.1.contains(&(2048, 10)) && want.1.contains(&(3072, 10)));

    let mut sequences = vec![pieces.clone(), pieces.iter().rev().copied().collect()];
    for seed in 1..=6u64 {
        let mut p = pieces.clone();
        shuffle(&mut p, seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        sequences.push(p);
    }
    for seq in sequences {
        let mut t = table(4200);
        let mut a = FrameAllocator::new(&mut t, Pfn(0));
        for &(s, e) in &seq {
            a.add_free_range(Pfn(s), Pfn(e)).unwrap();
            check_invariants(&a);
        }
        assert_eq!((orders(&a), free_blocks(&a)), want, "order {seq:?}");
    }
}

#[test]
fn base_need_not_be_aligned() {
    // Alignment is by absolute pfn: with base 1000, pfn 1024 still heads an order-10 block.
    let mut t = table(FrameAllocator::table_len(Pfn(1000), Pfn(2100)));
    let mut a = FrameAllocator::new(&mut t, Pfn(1000));
    a.add_free_range(Pfn(1000), Pfn(2100)).unwrap();
    assert!(free_blocks(&a).contains(&(1024, 10)));
    assert_eq!(a.alloc(10, Owner::WORKLOAD), Ok(Pfn(1024)));
    check_invariants(&a);
}

// ---- owners, stats, watermarks ---------------------------------------------------------------------

#[test]
fn owners_move_to_last_owner_on_free() {
    let mut t = table(16);
    let mut a = FrameAllocator::new(&mut t, Pfn(0));
    a.add_free_range(Pfn(0), Pfn(16)).unwrap();
    let p = a.alloc(1, Owner::HEAP).unwrap();
    for pfn in [p, Pfn(p.0 + 1)] {
        let f = a.info(pfn).unwrap();
        assert_eq!((f.state(), f.owner(), f.last_owner()), (FrameState::Allocated, Owner::HEAP, Owner::NONE));
    }
    assert!(a.info(p).unwrap().is_head() && !a.info(Pfn(p.0 + 1)).unwrap().is_head());
    assert_eq!((a.info(p).unwrap().order(), a.info(Pfn(p.0 + 1)).unwrap().order()), (1, 0));
    a.free(p, 1).unwrap();
    for pfn in [p, Pfn(p.0 + 1)] {
        let f = a.info(pfn).unwrap();
        assert_eq!((f.state(), f.owner(), f.last_owner()), (FrameState::Free, Owner::NONE, Owner::HEAP));
    }
    let q = a.alloc(0, Owner::STACK).unwrap();
    assert_eq!(q, p);
    let f = a.info(q).unwrap();
    assert_eq!((f.owner(), f.last_owner()), (Owner::STACK, Owner::HEAP), "last_owner says: scrub first");
}

#[test]
fn stats_count_operations() {
    let mut t = table(64);
    let mut a = FrameAllocator::new(&mut t, Pfn(0));
    a.add_free_range(Pfn(0), Pfn(64)).unwrap();
    let p = a.alloc(2, Owner::HEAP).unwrap();
    let q = a.alloc(0, Owner::HEAP).unwrap();
    let _ = a.alloc(7, Owner::HEAP);
    a.free(p, 2).unwrap();
    let s = a.stats();
    assert_eq!((s.managed, s.used, s.free, s.per_cpu), (64, 1, 63, 0));
    assert_eq!((s.allocs, s.frees, s.alloc_failures), (2, 1, 1));
    a.free(q, 0).unwrap();
    assert_eq!(a.stats().free_per_order, [0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
}

#[test]
fn watermarks_follow_managed_memory() {
    assert_eq!(Watermarks::for_managed(0), Watermarks { min: 16, low: 20, high: 24 });
    assert_eq!(Watermarks::for_managed(25_600), Watermarks { min: 100, low: 125, high: 150 });
    // 256 MiB of RAM: 65,536 frames.
    assert_eq!(Watermarks::for_managed(65_536), Watermarks { min: 256, low: 320, high: 384 });

    let mut t = table(64);
    let mut a = FrameAllocator::new(&mut t, Pfn(0));
    assert!(a.below_low(), "nothing managed yet");
    a.add_free_range(Pfn(0), Pfn(64)).unwrap();
    assert_eq!(a.watermarks(), Watermarks { min: 16, low: 20, high: 24 });
    assert!(!a.below_low());
    let big = a.alloc(5, Owner::WORKLOAD).unwrap(); // 32 left
    let p = a.alloc(3, Owner::WORKLOAD).unwrap(); // 24 left
    let q = a.alloc(2, Owner::WORKLOAD).unwrap(); // 20 left: not below
    assert!(!a.below_low());
    let r = a.alloc(0, Owner::WORKLOAD).unwrap(); // 19 left
    assert!(a.below_low());
    for (pfn, order) in [(big, 5), (p, 3), (q, 2), (r, 0)] {
        a.free(pfn, order).unwrap();
    }
    assert!(!a.below_low());
}

// ---- per-CPU lists -----------------------------------------------------------------------------------

#[test]
fn pcp_refills_a_batch_in_ascending_order() {
    let mut t = table(1024);
    let mut a = FrameAllocator::new(&mut t, Pfn(0));
    a.add_free_range(Pfn(0), Pfn(1024)).unwrap();
    let mut pcp = PcpList::new();
    assert!(pcp.is_empty());
    assert_eq!(pcp.alloc(&mut a, Owner::HEAP), Ok(Pfn(0)));
    assert_eq!(pcp.len(), PCP_BATCH - 1);
    assert!(!pcp.is_empty());
    let s = a.stats();
    assert_eq!((s.used, s.per_cpu, s.free, s.allocs), (1, PCP_BATCH as u64 - 1, 1024 - PCP_BATCH as u64, 1));
    assert_eq!(a.info(Pfn(1)).unwrap().state(), FrameState::PerCpu);
    assert_eq!(a.info(Pfn(0)).unwrap().owner(), Owner::HEAP);
    for want in 1..PCP_BATCH as u64 {
        assert_eq!(pcp.alloc(&mut a, Owner::HEAP), Ok(Pfn(want)), "no further buddy traffic until empty");
        assert_eq!(a.stats().free, 1024 - PCP_BATCH as u64);
    }
    assert!(pcp.is_empty());
    assert_eq!(pcp.alloc(&mut a, Owner::HEAP), Ok(Pfn(PCP_BATCH as u64)), "second refill");
    assert_eq!(pcp.len(), PCP_BATCH - 1);
    check_invariants(&a);
}

#[test]
fn pcp_refill_takes_what_is_left_and_then_fails() {
    let mut t = table(8);
    let mut a = FrameAllocator::new(&mut t, Pfn(0));
    a.add_free_range(Pfn(3), Pfn(8)).unwrap();
    let mut pcp = PcpList::new();
    let p = pcp.alloc(&mut a, Owner::HEAP).unwrap();
    assert_eq!(pcp.len(), 4, "only 5 frames were free");
    for _ in 0..4 {
        pcp.alloc(&mut a, Owner::HEAP).unwrap();
    }
    let before = snapshot(&a);
    assert_eq!(pcp.alloc(&mut a, Owner::HEAP), Err(FrameError::OutOfMemory { order: 0 }));
    assert_eq!(a.stats().alloc_failures, 1);
    assert_eq!(pcp.len(), 0);
    let mut after = a.stats();
    after.alloc_failures = 0;
    assert_eq!(format!("{:?}|{:?}|{:?}", a.table, a.heads, after), before);
    a.free(p, 0).unwrap();
    check_invariants(&a);
}

#[test]
fn pcp_spills_a_batch_above_high() {
    let mut t = table(1024);
    let mut a = FrameAllocator::new(&mut t, Pfn(0));
    a.add_free_range(Pfn(0), Pfn(1024)).unwrap();
    let frames: Vec<Pfn> = (0..=PCP_HIGH).map(|_| a.alloc(0, Owner::WORKLOAD).unwrap()).collect();
    let mut pcp = PcpList::new();
    for &p in &frames[..PCP_HIGH] {
        pcp.free(&mut a, p).unwrap();
    }
    assert_eq!(pcp.len(), PCP_HIGH);
    assert_eq!(a.stats().per_cpu, PCP_HIGH as u64);
    assert_eq!(a.info(frames[0]).unwrap().last_owner(), Owner::WORKLOAD);
    let free_before = a.stats().free;

    pcp.free(&mut a, frames[PCP_HIGH]).unwrap();
    assert_eq!(pcp.len(), PCP_HIGH - PCP_BATCH + 1);
    let s = a.stats();
    assert_eq!((s.per_cpu, s.free, s.used), ((PCP_HIGH - PCP_BATCH + 1) as u64, free_before + PCP_BATCH as u64, 0));
    for (k, &p) in frames.iter().enumerate() {
        let want = if k < PCP_BATCH { FrameState::Free } else { FrameState::PerCpu };
        assert_eq!(a.info(p).unwrap().state(), want, "the oldest {PCP_BATCH} go back, frame {k}");
    }
    // Newest first out of the list.
    assert_eq!(pcp.alloc(&mut a, Owner::HEAP), Ok(frames[PCP_HIGH]));
    check_invariants(&a);
}

#[test]
fn pcp_drain_returns_everything_and_blocks_merge_again() {
    let mut t = table(2048);
    let mut a = FrameAllocator::new(&mut t, Pfn(0));
    a.add_free_range(Pfn(5), Pfn(2000)).unwrap();
    let initial = (orders(&a), free_blocks(&a));
    let mut cpus = [PcpList::new(), PcpList::new()];
    let mut held = Vec::new();
    for k in 0..300 {
        let cpu = &mut cpus[k % 2];
        held.push(cpu.alloc(&mut a, Owner::HEAP).unwrap());
    }
    for (k, &p) in held.iter().enumerate() {
        cpus[(k / 7) % 2].free(&mut a, p).unwrap();
    }
    assert!(a.stats().per_cpu > 0);
    assert_ne!((orders(&a), free_blocks(&a)), initial, "parked frames cannot merge");
    for cpu in &mut cpus {
        cpu.drain(&mut a);
        assert!(cpu.is_empty());
    }
    assert_eq!(a.stats().per_cpu, 0);
    assert_eq!((orders(&a), free_blocks(&a)), initial);
    check_invariants(&a);
}

#[test]
fn pcp_free_checks_like_buddy_free() {
    let mut t = table(64);
    let mut a = FrameAllocator::new(&mut t, Pfn(0));
    a.add_free_range(Pfn(0), Pfn(48)).unwrap();
    let mut pcp = PcpList::new();
    let p = a.alloc(0, Owner::HEAP).unwrap();
    pcp.free(&mut a, p).unwrap();

    let mut check = |a: &mut FrameAllocator<'_>, pfn: Pfn, want: FrameError| {
        let before = snapshot(a);
        let len = pcp.len();
        assert_eq!(pcp.free(a, pfn), Err(want));
        assert_eq!((snapshot(a), pcp.len()), (before, len));
    };
    check(&mut a, p, FrameError::DoubleFree(p));
    let big = a.alloc(1, Owner::HEAP).unwrap();
    check(&mut a, big, FrameError::WrongOrder { pfn: big, allocated: 1, freed: 0 });
    check(&mut a, Pfn(big.0 + 1), FrameError::NotAllocated(Pfn(big.0 + 1)));
    check(&mut a, Pfn(40), FrameError::NotAllocated(Pfn(40)));
    let q = a.alloc(0, Owner::HEAP).unwrap();
    a.free(q, 0).unwrap();
    check(&mut a, q, FrameError::DoubleFree(q));
    check(&mut a, Pfn(50), FrameError::Foreign(Pfn(50)));
    check(&mut a, Pfn(64), FrameError::Foreign(Pfn(64)));
    // And the buddy side sees a parked frame as already freed.
    refused(&mut a, FrameError::DoubleFree(p), |a| a.free(p, 0));
    refused(&mut a, FrameError::NotAllocated(p), |a| a.set_link(p, 1));
}

#[test]
fn parked_frames_are_double_frees_even_if_never_handed_out() {
    let mut t = table(64);
    let mut a = FrameAllocator::new(&mut t, Pfn(0));
    a.add_free_range(Pfn(0), Pfn(64)).unwrap();
    let mut pcp = PcpList::new();
    let p = pcp.alloc(&mut a, Owner::HEAP).unwrap();
    let never = pcp.frames[0];
    assert_ne!(never, p);
    assert_eq!(a.info(never).unwrap().last_owner(), Owner::NONE);
    // Parked by a refill, never handed out: still DoubleFree, from either side.
    refused(&mut a, FrameError::DoubleFree(never), |a| a.free(never, 0));
    let before = snapshot(&a);
    assert_eq!(pcp.free(&mut a, never), Err(FrameError::DoubleFree(never)));
    assert_eq!(snapshot(&a), before);
    // Parked after a real allocation: DoubleFree.
    pcp.free(&mut a, p).unwrap();
    refused(&mut a, FrameError::DoubleFree(p), |a| a.free(p, 0));
    // Drained back to the buddy lists, each frame reports what it really went through.
    pcp.drain(&mut a);
    refused(&mut a, FrameError::NotAllocated(never), |a| a.free(never, 0));
    refused(&mut a, FrameError::DoubleFree(p), |a| a.free(p, 0));
    let before = snapshot(&a);
    assert_eq!(pcp.free(&mut a, never), Err(FrameError::NotAllocated(never)));
    assert_eq!(pcp.free(&mut a, p), Err(FrameError::DoubleFree(p)));
    assert_eq!(snapshot(&a), before);
    assert!(pcp.is_empty());
}

#[test]
fn pcp_used_with_another_allocator_refuses_instead_of_corrupting() {
    let (mut t1, mut t2) = (table(64), table(64));
    let mut a = FrameAllocator::new(&mut t1, Pfn(0));
    let mut b = FrameAllocator::new(&mut t2, Pfn(0));
    a.add_free_range(Pfn(0), Pfn(64)).unwrap();
    b.add_free_range(Pfn(0), Pfn(64)).unwrap();
    let mut pcp = PcpList::new();
    pcp.alloc(&mut a, Owner::HEAP).unwrap();
    let top = pcp.frames[pcp.len() - 1];
    let before = snapshot(&b);
    assert_eq!(pcp.alloc(&mut b, Owner::HEAP), Err(FrameError::Foreign(top)));
    pcp.drain(&mut b);
    assert_eq!(snapshot(&b), before);
    assert_eq!(pcp.len(), PCP_BATCH - 1, "frames b does not know stay put");
    pcp.drain(&mut a);
    assert!(pcp.is_empty());
    assert_eq!(a.stats().per_cpu, 0);
}

#[test]
fn display_and_debug_are_informative() {
    let e = FrameError::WrongOrder { pfn: Pfn(0x10), allocated: 2, freed: 1 };
    assert_eq!(e.to_string(), "frame 0x10 heads an order-2 block, freed as order 1");
    assert_eq!(FrameError::DoubleFree(Pfn(0x20)).to_string(), "frame 0x20 is already free");
    assert_eq!(FrameError::NotAllocated(Pfn(0x30)).to_string(), "frame 0x30 does not head an allocated block");
    let mut t = table(4);
    let a = FrameAllocator::new(&mut t, Pfn(8));
    assert!(format!("{a:?}").starts_with("FrameAllocator { start: Pfn(8), end: Pfn(12)"));
    assert_eq!(format!("{:?}", PcpList::new()), "PcpList { count: 0, frames: [] }");
}

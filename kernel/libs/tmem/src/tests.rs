//! Host tests of tmem's rules, one test per rule of the module header; the randomised run against a
//! model is `tests/model.rs`.

use super::*;

use pagedata::{THREE_QUARTERS_FRESH, random_page, ratio_page};
use pagemem::HostMemory;

type T = Tmem<HostMemory>;

fn lz4() -> Compressor {
    Compressor::new(compress::Algorithm::Lz4).unwrap()
}

/// A page that compresses to about 75 %: one per zbud frame.
fn big(seed: u64) -> Box<Page> {
    let mut p = Box::new([0; PAGE_SIZE]);
    ratio_page(seed, THREE_QUARTERS_FRESH, &mut p);
    p
}

/// A page that compresses to about a quarter.
fn small(seed: u64) -> Box<Page> {
    let mut p = Box::new([0; PAGE_SIZE]);
    ratio_page(seed, 20, &mut p);
    p
}

fn noise(seed: u64) -> Box<Page> {
    let mut p = Box::new([0; PAGE_SIZE]);
    random_page(seed, &mut p);
    p
}

fn tmem(limit: u64, accept: u8) -> T {
    // zcache's persistent-page rules have their own tests (`zv_*`); here they would refuse big pages.
    Tmem::new(Config { accept_percent: accept, ..Config::new(limit) }.without_zv_rules())
}

fn pool(t: &mut T, kind: PoolKind, backend: Backend) -> PoolId {
    t.new_pool(kind, Some(backend), HostMemory::new(256)).unwrap()
}

fn k(pool: PoolId, oid: u64, index: u32) -> Key {
    Key::new(pool, oid, index)
}

fn get(t: &mut T, c: &mut Compressor, key: Key) -> Result<Box<Page>, TmemError> {
    let mut out = Box::new([0xa5; PAGE_SIZE]);
    t.get(c, key, &mut out).map(|()| out)
}

/// The stats agree with the pools.
fn consistent(t: &T) {
    let s = t.stats();
    assert_eq!(s.stored_pages, s.persistent_pages + s.ephemeral_pages);
    assert_eq!(s.stored_pages, t.stored_pages());
    assert_eq!(s.pool_pages, t.total_pages());
    let mut pages = 0;
    for id in t.pool_ids() {
        let ps = t.pool_stats(id).unwrap();
        assert_eq!(ps.stored_pages, ps.store.stored_pages, "{id:?}");
        assert_eq!(ps.stored_pages, t.pool_pages(id));
        pages += ps.pool_pages;
    }
    assert_eq!(pages, s.pool_pages);
    let lru: usize = t.lru.iter().map(|l| l.len()).sum();
    assert_eq!(lru as u64, s.stored_pages, "every page is in its kind's LRU");
    for p in t.pools.values() {
        // The back-references name exactly the pool's pages that hold a pool object.
        let mut want = BTreeMap::new();
        if p.tracks() {
            for (&oid, object) in &p.objects {
                for (&index, slot) in object {
                    if let Some(h) = slot.entry.handle() {
                        want.insert(h.raw(), (oid, index));
                    }
                }
            }
        }
        assert_eq!(p.by_handle, want);
    }
}

#[test]
fn persistent_gets_are_non_exclusive_and_exact_on_both_backends() {
    let mut c = lz4();
    let mut t = tmem(1000, 90);
    for backend in [Backend::Zsmalloc, Backend::Zbud] {
        let p = pool(&mut t, PoolKind::Persistent, backend);
        for i in 0..20 {
            t.put(&mut c, k(p, i % 3, i as u32), &big(i)).unwrap();
        }
        for _ in 0..2 {
            for i in 0..20 {
                assert!(*get(&mut t, &mut c, k(p, i % 3, i as u32)).unwrap() == *big(i));
            }
        }
        assert_eq!(t.pool_pages(p), 20, "gets left every page in place");
        assert_eq!(get(&mut t, &mut c, k(p, 7, 0)), Err(TmemError::NotFound));
    }
    let s = t.stats();
    assert_eq!((s.gets, s.get_hits, s.get_misses, s.stored_pages), (82, 80, 2, 40));
    consistent(&t);
}

#[test]
fn ephemeral_gets_are_exclusive() {
    let mut c = lz4();
    let mut t = tmem(1000, 90);
    for backend in [Backend::Zsmalloc, Backend::Zbud] {
        let p = pool(&mut t, PoolKind::Ephemeral, backend);
        t.put(&mut c, k(p, 1, 2), &small(9)).unwrap();
        assert!(t.contains(k(p, 1, 2)));
        assert!(*get(&mut t, &mut c, k(p, 1, 2)).unwrap() == *small(9));
        assert!(!t.contains(k(p, 1, 2)), "the get took the page");
        assert_eq!(get(&mut t, &mut c, k(p, 1, 2)), Err(TmemError::NotFound));
        assert_eq!((t.pool_pages(p), t.pool_stats(p).unwrap().pool_pages), (0, 0), "its frame went back");
    }
    assert_eq!(t.stats().ephemeral_drops, 0, "an exclusive get is not a drop");
    consistent(&t);
}

#[test]
fn the_default_backends_are_zcaches() {
    let mut t = tmem(10, 90);
    let p = t.new_pool(PoolKind::Persistent, None, HostMemory::new(4)).unwrap();
    let e = t.new_pool(PoolKind::Ephemeral, None, HostMemory::new(4)).unwrap();
    assert_eq!(t.pool_stats(p).unwrap().backend, Backend::Zsmalloc);
    assert_eq!(t.pool_stats(e).unwrap().backend, Backend::Zbud);
    assert_eq!((t.pool_kind(p), t.pool_kind(e)), (Some(PoolKind::Persistent), Some(PoolKind::Ephemeral)));
}

#[test]
fn a_put_replaces_and_a_failed_replacement_leaves_the_key_absent() {
    let mut c = lz4();
    let mut t = tmem(1000, 90);
    let p = pool(&mut t, PoolKind::Persistent, Backend::Zsmalloc);
    let key = k(p, 4, 4);
    t.put(&mut c, key, &big(1)).unwrap();
    t.put(&mut c, key, &small(2)).unwrap();
    assert!(*get(&mut t, &mut c, key).unwrap() == *small(2));
    assert_eq!(t.pool_pages(p), 1);
    assert_eq!(t.stats().puts_replaced, 1);

    // A page that does not compress: refused, and the old copy is gone, not left stale.
    assert_eq!(t.put(&mut c, key, &noise(3)), Err(TmemError::Incompressible { size: 4119 }));
    assert!(!t.contains(key));
    assert_eq!(get(&mut t, &mut c, key), Err(TmemError::NotFound));
    let s = t.stats();
    assert_eq!((s.puts, s.puts_replaced, s.put_failures, s.reject_compress_poor), (3, 2, 1, 1));
    assert_eq!((s.stored_pages, s.pool_pages, s.compr_data_size), (0, 0, 0), "nothing left behind");
    consistent(&t);
}

#[test]
fn same_filled_pages_take_no_pool_frame() {
    let mut c = lz4();
    let mut t = tmem(0, 90);
    let p = pool(&mut t, PoolKind::Persistent, Backend::Zsmalloc);
    // A limit of 0 refuses everything, even pages that would cost nothing (zswap checks the limit first).
    assert_eq!(t.put(&mut c, k(p, 0, 0), &[0; PAGE_SIZE]), Err(TmemError::Full));
    t.set_limit(1, 100); // accept below 1 frame: now
    t.put(&mut c, k(p, 0, 0), &[0; PAGE_SIZE]).unwrap();
    t.put(&mut c, k(p, 0, 1), &[7; PAGE_SIZE]).unwrap();
    let s = t.stats();
    assert_eq!((s.stored_pages, s.same_pages, s.pool_pages), (2, 2, 0));
    assert!(*get(&mut t, &mut c, k(p, 0, 1)).unwrap() == [7; PAGE_SIZE]);
}

#[test]
fn a_destroyed_pool_is_refused_and_ids_are_never_reused() {
    let mut c = lz4();
    let mut t = tmem(1000, 90);
    let a = pool(&mut t, PoolKind::Persistent, Backend::Zsmalloc);
    let b = pool(&mut t, PoolKind::Ephemeral, Backend::Zbud);
    for i in 0..5 {
        t.put(&mut c, k(a, i, 0), &big(i)).unwrap();
        t.put(&mut c, k(b, i, 0), &big(i)).unwrap();
    }
    assert_eq!(t.destroy_pool(a), Ok(5));
    let before = t.stats();
    let mut out = Box::new([0; PAGE_SIZE]);
    assert_eq!(t.put(&mut c, k(a, 0, 0), &big(0)), Err(TmemError::NoSuchPool(a)));
    assert_eq!(t.get(&mut c, k(a, 0, 0), &mut out), Err(TmemError::NoSuchPool(a)));
    assert_eq!(t.flush_page(k(a, 0, 0)), Err(TmemError::NoSuchPool(a)));
    assert_eq!(t.flush_object(a, 0), Err(TmemError::NoSuchPool(a)));
    assert_eq!(t.destroy_pool(a), Err(TmemError::NoSuchPool(a)));
    assert_eq!(t.writeback_oldest(&mut c, a, &mut |_, _| true), Err(TmemError::NoSuchPool(a)));
    assert_eq!(t.pool_stats(a), Err(TmemError::NoSuchPool(a)));
    assert!(!t.contains(k(a, 0, 0)));
    let after = t.stats();
    assert_eq!(after, TmemStats { no_such_pool: before.no_such_pool + 6, ..before }, "only no_such_pool moved");

    let c2 = pool(&mut t, PoolKind::Persistent, Backend::Zsmalloc);
    assert_eq!((a, b, c2), (PoolId(0), PoolId(1), PoolId(2)), "a new pool gets a fresh id");
    let s = t.stats();
    assert_eq!((s.created_pools, s.destroyed_pools, s.destroyed_pages, s.pools), (3, 1, 5, 2));
    assert_eq!((s.stored_pages, s.leaked_pages), (5, 0));
    consistent(&t);
}

#[test]
fn flush_page_and_flush_object_say_what_they_removed() {
    let mut c = lz4();
    let mut t = tmem(1000, 90);
    let p = pool(&mut t, PoolKind::Ephemeral, Backend::Zsmalloc);
    for oid in 0..3 {
        for index in 0..4 {
            t.put(&mut c, k(p, oid, index), &small(oid * 10 + index as u64)).unwrap();
        }
    }
    assert_eq!(t.flush_page(k(p, 0, 0)), Ok(true));
    assert_eq!(t.flush_page(k(p, 0, 0)), Ok(false));
    assert_eq!(t.flush_object(p, 0), Ok(3));
    assert_eq!(t.flush_object(p, 0), Ok(0));
    assert_eq!(t.flush_object(p, 9), Ok(0));
    assert_eq!(t.flush_object(p, 2), Ok(4));
    assert!(*get(&mut t, &mut c, k(p, 1, 3)).unwrap() == *small(13));
    let s = t.stats();
    assert_eq!((s.flush_pages, s.flush_objects, s.flush_object_pages, s.stored_pages), (1, 2, 7, 3));
    assert_eq!(t.pool_stats(p).unwrap().objects, 1);
    consistent(&t);
}

#[test]
fn hysteresis_full_at_the_limit_refuses_until_below_the_accept_threshold() {
    let mut c = lz4();
    let mut t = tmem(10, 80); // accept below 8 frames
    let p = pool(&mut t, PoolKind::Persistent, Backend::Zbud);
    for i in 0..10 {
        assert!(!t.is_full());
        t.put(&mut c, k(p, 0, i), &big(i.into())).unwrap();
        assert_eq!(t.total_pages(), u64::from(i) + 1, "one zbud frame per page");
    }
    assert_eq!(t.put(&mut c, k(p, 1, 0), &big(100)), Err(TmemError::Full));
    assert!(t.is_full() && !t.contains(k(p, 1, 0)));
    assert_eq!(t.stats().pool_limit_hit, 1);

    t.flush_page(k(p, 0, 0)).unwrap(); // 9 frames
    assert_eq!(t.put(&mut c, k(p, 1, 0), &big(100)), Err(TmemError::Full));
    t.flush_page(k(p, 0, 1)).unwrap(); // 8 frames: not below 8 yet
    assert_eq!(t.put(&mut c, k(p, 1, 0), &big(100)), Err(TmemError::Full));
    assert_eq!(t.put(&mut c, k(p, 1, 1), &[0; PAGE_SIZE]), Err(TmemError::Full), "even a free page");
    t.flush_page(k(p, 0, 2)).unwrap(); // 7 frames
    t.put(&mut c, k(p, 1, 0), &big(100)).unwrap();
    assert!(!t.is_full());
    // Not full: puts go ahead up to the limit again.
    t.put(&mut c, k(p, 1, 1), &big(101)).unwrap();
    t.put(&mut c, k(p, 1, 2), &big(102)).unwrap();
    assert_eq!(t.total_pages(), 10);
    assert_eq!(t.put(&mut c, k(p, 1, 3), &big(103)), Err(TmemError::Full));
    let s = t.stats();
    assert_eq!((s.refused_full, s.pool_limit_hit, s.put_failures, s.ephemeral_drops), (5, 2, 0, 0));
    assert_eq!((s.limit_pages, s.accept_pages, s.full), (10, 8, true));
    consistent(&t);
}

#[test]
fn ephemeral_pages_are_dropped_oldest_first_before_a_persistent_put_is_refused() {
    let mut c = lz4();
    let mut t = tmem(10, 90); // accept below 9 frames
    let e = pool(&mut t, PoolKind::Ephemeral, Backend::Zbud);
    let p = pool(&mut t, PoolKind::Persistent, Backend::Zbud);
    for i in 0..4 {
        t.put(&mut c, k(e, 0, i), &big(50 + u64::from(i))).unwrap();
    }
    for i in 0..6 {
        t.put(&mut c, k(p, 0, i), &big(i.into())).unwrap();
    }
    assert_eq!(t.total_pages(), 10);
    assert_eq!(t.oldest_of_kind(PoolKind::Ephemeral), Some(k(e, 0, 0)));

    t.put(&mut c, k(p, 0, 6), &big(6)).unwrap();
    assert_eq!((t.contains(k(e, 0, 0)), t.contains(k(e, 0, 1))), (false, false), "the two oldest dropped");
    assert_eq!((t.contains(k(e, 0, 2)), t.contains(k(e, 0, 3))), (true, true));
    assert_eq!((t.stats().ephemeral_drops, t.total_pages(), t.is_full()), (2, 9, false));

    t.put(&mut c, k(p, 0, 7), &big(7)).unwrap(); // 10 frames
    t.put(&mut c, k(p, 0, 8), &big(8)).unwrap(); // full: drops e2 and e3, 8 < 9, stored
    assert_eq!(t.stats().ephemeral_drops, 4);
    assert_eq!(t.pool_pages(e), 0);
    t.put(&mut c, k(p, 0, 9), &big(9)).unwrap(); // 10 frames, all persistent
    assert_eq!(t.put(&mut c, k(p, 0, 10), &big(10)), Err(TmemError::Full), "no ephemeral page left to drop");
    for i in 0..10 {
        assert!(*get(&mut t, &mut c, k(p, 0, i)).unwrap() == *big(i.into()), "persistent pages never dropped");
    }
    let s = t.stats();
    assert_eq!((s.refused_full, s.ephemeral_drops, s.persistent_pages, s.ephemeral_pages), (1, 4, 10, 0));
    consistent(&t);
}

#[test]
fn an_ephemeral_put_may_drop_older_ephemeral_pages() {
    let mut c = lz4();
    let mut t = tmem(4, 75); // accept below 3
    let e = pool(&mut t, PoolKind::Ephemeral, Backend::Zbud);
    let f = pool(&mut t, PoolKind::Ephemeral, Backend::Zbud);
    t.put(&mut c, k(e, 0, 0), &big(0)).unwrap();
    t.put(&mut c, k(f, 0, 0), &big(1)).unwrap();
    t.put(&mut c, k(e, 0, 1), &big(2)).unwrap();
    t.put(&mut c, k(f, 0, 1), &big(3)).unwrap();
    t.put(&mut c, k(e, 0, 2), &big(4)).unwrap(); // full: drops e/0/0 (3 frames), then f/0/0 (2), stored
    assert_eq!(t.stats().ephemeral_drops, 2);
    assert!(!t.contains(k(e, 0, 0)) && !t.contains(k(f, 0, 0)), "oldest first across both pools");
    assert!(t.contains(k(e, 0, 1)) && t.contains(k(f, 0, 1)) && t.contains(k(e, 0, 2)));
    consistent(&t);
}

#[test]
fn writeback_hands_out_the_oldest_page_first_with_its_bytes() {
    let mut c = lz4();
    let mut t = tmem(1000, 90);
    let p = pool(&mut t, PoolKind::Persistent, Backend::Zsmalloc);
    let e = pool(&mut t, PoolKind::Ephemeral, Backend::Zbud);
    let order = [(3, 1), (0, 0), (9, 5), (3, 0)];
    for (n, &(oid, index)) in order.iter().enumerate() {
        t.put(&mut c, k(p, oid, index), &small(n as u64)).unwrap();
    }
    t.put(&mut c, k(p, 0, 0), &small(10)).unwrap(); // replaced: now the newest
    assert_eq!(t.oldest(p), Some(k(p, 3, 1)));

    // A sink that refuses leaves everything in place.
    assert_eq!(t.writeback_oldest(&mut c, p, &mut |_, _| false), Ok(None));
    assert_eq!(t.pool_pages(p), 4);

    let expect = [(k(p, 3, 1), small(0)), (k(p, 9, 5), small(2)), (k(p, 3, 0), small(3)), (k(p, 0, 0), small(10))];
    for (key, page) in expect {
        let mut seen = None;
        let r = t.writeback_oldest(&mut c, p, &mut |k, bytes| {
            seen = Some((k, *bytes == *page));
            true
        });
        assert_eq!(r, Ok(Some(key)));
        assert_eq!(seen, Some((key, true)), "the sink got the stored page");
        assert!(!t.contains(key));
    }
    assert_eq!(t.writeback_oldest(&mut c, p, &mut |_, _| true), Ok(None), "empty");
    assert_eq!(t.writeback_oldest(&mut c, e, &mut |_, _| true), Err(TmemError::NotPersistent(e)));
    let s = t.stats();
    assert_eq!((s.written_back_pages, s.stored_pages, s.pool_pages), (4, 0, 0));
    assert_eq!(t.scratch.iter().filter(|&&b| b != 0).count(), 0, "the writeback copy was scrubbed");
}

/// Flip one byte of the pool object behind `key`.
fn corrupt(t: &mut T, key: Key) {
    t.corrupt_object(key).unwrap();
}

#[test]
fn corrupt_stored_bytes_are_detected() {
    let mut c = lz4();
    let mut t = tmem(1000, 90);
    let p = pool(&mut t, PoolKind::Persistent, Backend::Zsmalloc);
    let e = pool(&mut t, PoolKind::Ephemeral, Backend::Zbud);
    t.put(&mut c, k(p, 0, 0), &small(1)).unwrap();
    t.put(&mut c, k(p, 0, 1), &small(2)).unwrap();
    t.put(&mut c, k(e, 0, 0), &small(3)).unwrap();
    corrupt(&mut t, k(p, 0, 0));
    corrupt(&mut t, k(e, 0, 0));

    assert_eq!(get(&mut t, &mut c, k(p, 0, 0)), Err(TmemError::Corrupt));
    assert!(t.contains(k(p, 0, 0)), "a persistent page stays for the caller to judge");
    assert_eq!(
        t.writeback_oldest(&mut c, p, &mut |_, _| panic!("a corrupt page reached the sink")),
        Err(TmemError::Corrupt)
    );
    assert_eq!(get(&mut t, &mut c, k(e, 0, 0)), Err(TmemError::Corrupt));
    assert!(!t.contains(k(e, 0, 0)), "an ephemeral get is exclusive, even when it fails");
    assert!(*get(&mut t, &mut c, k(p, 0, 1)).unwrap() == *small(2), "the neighbour is intact");
    assert_eq!(t.flush_page(k(p, 0, 0)), Ok(true));
    let s = t.stats();
    assert_eq!((s.corrupt, s.gets, s.get_hits, s.free_errors), (3, 3, 1, 0));
    consistent(&t);
}

#[test]
fn out_of_memory_drops_ephemeral_pages_and_retries_once() {
    let mut c = lz4();
    let mut t = tmem(1000, 90);
    let e = t.new_pool(PoolKind::Ephemeral, Some(Backend::Zbud), HostMemory::new(3)).unwrap();
    for i in 0..3 {
        t.put(&mut c, k(e, 0, i), &big(i.into())).unwrap();
    }
    t.put(&mut c, k(e, 0, 3), &big(3)).unwrap(); // no frame: drops e/0/0, retries
    assert!(!t.contains(k(e, 0, 0)) && t.contains(k(e, 0, 3)));
    let s = t.stats();
    assert_eq!((s.oom_retries, s.ephemeral_drops, s.put_failures), (1, 1, 0));

    let p = t.new_pool(PoolKind::Persistent, Some(Backend::Zbud), HostMemory::new(2)).unwrap();
    t.put(&mut c, k(p, 0, 0), &big(10)).unwrap();
    t.put(&mut c, k(p, 0, 1), &big(11)).unwrap();
    // Its own arena is full. The dropped ephemeral pages free frames elsewhere (in the kernel, one
    // allocator serves all pools, and that would have helped), so the retry fails too.
    assert_eq!(t.put(&mut c, k(p, 0, 2), &big(12)), Err(TmemError::OutOfMemory));
    assert!(!t.contains(k(p, 0, 2)));
    let s = t.stats();
    assert_eq!((s.oom_retries, s.put_failures, s.reject_alloc_fail), (2, 1, 1));
    assert_eq!(s.ephemeral_drops, 2, "one more dropped before the retry");
    consistent(&t);
}

#[test]
fn too_many_pools_is_an_error_not_a_wrap() {
    let mut t = tmem(10, 90);
    t.next_pool = u64::from(u32::MAX);
    assert_eq!(t.new_pool(PoolKind::Persistent, None, HostMemory::new(1)), Ok(PoolId(u32::MAX)));
    assert_eq!(t.new_pool(PoolKind::Persistent, None, HostMemory::new(1)), Err(TmemError::TooManyPools));
}

#[test]
fn accept_threshold_arithmetic() {
    assert_eq!(Config::new(100).accept_pages(), 90);
    assert_eq!(Config { accept_percent: 250, ..Config::new(7) }.accept_pages(), 7);
    assert_eq!(Config { accept_percent: 50, ..Config::new(u64::MAX) }.accept_pages(), u64::MAX / 2);
}

fn reclaiming(limit: u64, accept: u8, reclaim: EphemeralReclaim) -> T {
    Tmem::new(Config { accept_percent: accept, ephemeral_reclaim: reclaim, ..Config::new(limit) }.without_zv_rules())
}

/// Two zbud frames whose pages have mixed ages: F1 holds a (oldest) and e (newest), F2 holds c and d.
fn mixed_frames(t: &mut T, c: &mut Compressor) -> PoolId {
    let e = pool(t, PoolKind::Ephemeral, Backend::Zbud);
    for (i, name) in [(0, 'a'), (1, 'b'), (2, 'c'), (3, 'd')] {
        t.put(c, k(e, 0, i), &small(name as u64)).unwrap();
    }
    assert_eq!(t.total_pages(), 2, "two small pages per zbud frame");
    get(t, c, k(e, 0, 1)).unwrap(); // b leaves F1: a is alone there
    t.put(c, k(e, 0, 4), &small('e' as u64)).unwrap(); // e fills F1's free buddy
    assert_eq!(t.total_pages(), 2);
    t.set_limit(2, 100); // accept below 2: the next put must free exactly one frame first
    e
}

#[test]
fn zbud_frame_eviction_frees_a_frame_with_fewer_drops_than_object_order() {
    let mut c = lz4();
    let mut t = reclaiming(100, 90, EphemeralReclaim::ObjectOrder);
    let e = mixed_frames(&mut t, &mut c);
    t.put(&mut c, k(e, 0, 5), &small('f' as u64)).unwrap();
    // Object order: a (F1 keeps e), c (F2 keeps d), d: F2 freed. Three pages for one frame.
    assert_eq!([0, 2, 3, 4, 5].map(|i| t.contains(k(e, 0, i))), [false, false, false, true, true]);
    let s = t.stats();
    assert_eq!((s.ephemeral_drops, s.ephemeral_frames_freed, s.zbud_frames_evicted), (3, 1, 0));
    assert_eq!((s.drops_per_frame_milli(), s.frames_per_drop_milli()), (Some(3000), Some(333)));
    assert_eq!(t.total_pages(), 1, "f joined e in F1");
    consistent(&t);

    let mut t = reclaiming(100, 90, EphemeralReclaim::ZbudFrames);
    let e = mixed_frames(&mut t, &mut c);
    t.put(&mut c, k(e, 0, 5), &small('f' as u64)).unwrap();
    // zbud's LRU tail is F2 (F1 was allocated into last, by e): c and d go, a stays although older.
    assert_eq!([0, 2, 3, 4, 5].map(|i| t.contains(k(e, 0, i))), [true, false, false, true, true]);
    let s = t.stats();
    assert_eq!((s.ephemeral_drops, s.ephemeral_frames_freed, s.zbud_frames_evicted), (2, 1, 1));
    assert_eq!((s.drops_per_frame_milli(), s.frames_per_drop_milli()), (Some(2000), Some(500)));
    assert_eq!(t.pool_stats(e).unwrap().store.stored_pages, 3, "the store forgot the evicted pages");
    for (i, name) in [(0, 'a'), (4, 'e'), (5, 'f')] {
        assert!(*get(&mut t, &mut c, k(e, 0, i)).unwrap() == *small(name as u64), "no stale page served");
    }
    consistent(&t);
}

#[test]
fn zbud_frames_fall_back_to_object_order_where_a_pool_cannot_evict() {
    let mut c = lz4();
    let mut t = reclaiming(100, 90, EphemeralReclaim::ZbudFrames);
    let e = pool(&mut t, PoolKind::Ephemeral, Backend::Zsmalloc);
    let z = pool(&mut t, PoolKind::Ephemeral, Backend::Zbud);
    t.put(&mut c, k(e, 0, 0), &big(1)).unwrap(); // oldest, alone in a zsmalloc zspage
    t.put(&mut c, k(z, 0, 0), &big(2)).unwrap(); // one zbud frame
    let zspage = t.pool_stats(e).unwrap().pool_pages;
    assert!(zspage > 1, "a zspage of this class spans frames");
    t.set_limit(zspage + 1, 100);
    t.put(&mut c, k(z, 0, 1), &[0; PAGE_SIZE]).unwrap(); // full: the oldest page is zsmalloc's: dropped
    let s = t.stats();
    assert_eq!((s.ephemeral_drops, s.zbud_frames_evicted, s.zbud_evict_failures), (1, 0, 0));
    assert!(!t.contains(k(e, 0, 0)) && t.contains(k(z, 0, 0)));
    assert_eq!((s.ephemeral_frames_freed, t.total_pages()), (zspage, 1), "the whole zspage came free");
    consistent(&t);
}

#[test]
fn persistent_pages_are_never_evicted() {
    let mut c = lz4();
    let mut t = reclaiming(3, 100, EphemeralReclaim::ZbudFrames);
    let p = pool(&mut t, PoolKind::Persistent, Backend::Zbud);
    let e = pool(&mut t, PoolKind::Ephemeral, Backend::Zbud);
    t.put(&mut c, k(p, 0, 0), &big(0)).unwrap();
    t.put(&mut c, k(p, 0, 1), &big(1)).unwrap();
    t.put(&mut c, k(e, 0, 0), &big(2)).unwrap();
    t.put(&mut c, k(p, 0, 2), &big(3)).unwrap(); // full: e's frame evicted, then stored
    assert_eq!(t.put(&mut c, k(p, 0, 3), &big(4)), Err(TmemError::Full), "only persistent frames left");
    let s = t.stats();
    assert_eq!((s.ephemeral_drops, s.zbud_frames_evicted, s.persistent_pages), (1, 1, 3));
    assert!(t.pools.values().filter(|p| p.kind == PoolKind::Persistent).all(|p| p.by_handle.is_empty()));
    consistent(&t);
}

/// Stored bytes of `page` (the frame included), as the store would count them.
fn stored_size(c: &mut Compressor, page: &Page) -> usize {
    c.compress(page, PAGE_SIZE).unwrap().len()
}

#[test]
fn zv_max_zsize_refuses_poorly_compressing_persistent_pages_only() {
    let mut c = lz4();
    let page = big(7);
    let size = stored_size(&mut c, &page);
    let mut t = Tmem::new(Config { zv_max_zsize: size - 1, ..Config::new(100) });
    let p = pool(&mut t, PoolKind::Persistent, Backend::Zsmalloc);
    let e = pool(&mut t, PoolKind::Ephemeral, Backend::Zsmalloc);
    assert_eq!(t.put(&mut c, k(p, 0, 0), &page), Err(TmemError::Incompressible { size }));
    t.put(&mut c, k(e, 0, 0), &page).unwrap(); // zcache applied it to persistent pages only
    t.config.zv_max_zsize = size;
    t.put(&mut c, k(p, 0, 0), &page).unwrap(); // "greater zsize will be rejected": equal is kept
    let s = t.stats();
    assert_eq!((s.compress_poor, s.mean_compress_poor, s.reject_compress_poor, s.put_failures), (1, 0, 1, 1));
    assert_eq!(s.stored_pages, 2);
    assert_eq!(Config::new(1).zv_max_zsize, 3584);
    consistent(&t);
}

#[test]
fn zv_max_mean_zsize_refuses_big_pages_while_the_mean_is_poor() {
    let mut c = lz4();
    let (b0, b1, s0) = (big(0), big(1), small(2));
    let (big_size, small_size) = (stored_size(&mut c, &b1), stored_size(&mut c, &s0));
    let b0_size = stored_size(&mut c, &b0);
    let share = zbud::size_to_chunks(b0_size) + zbud::size_to_chunks(small_size) <= zbud::NCHUNKS;
    assert!(big_size > 2560 && small_size <= 2560 && share, "{big_size} {small_size}");
    let mut t = Tmem::new(Config::new(100)); // zcache's defaults: 3584 and 2560
    let p = pool(&mut t, PoolKind::Persistent, Backend::Zbud);
    t.put(&mut c, k(p, 0, 0), &b0).unwrap(); // no persistent page yet: no mean to judge
    // One page in one frame: mean 4096 > 2560, and this page is above 2560 too.
    assert_eq!(t.put(&mut c, k(p, 0, 1), &b1), Err(TmemError::Incompressible { size: big_size }));
    t.put(&mut c, k(p, 0, 2), &s0).unwrap(); // small pages always pass; it shares the frame
    assert_eq!(t.total_pages(), 1);
    t.put(&mut c, k(p, 0, 1), &b1).unwrap(); // mean 4096 / 2 = 2048: big pages welcome again
    let s = t.stats();
    assert_eq!((s.mean_compress_poor, s.compress_poor, s.reject_compress_poor, s.put_failures), (1, 0, 1, 1));
    assert_eq!(s.persistent_pages, 3);
    // Ephemeral pools are not judged by the mean.
    let e = pool(&mut t, PoolKind::Ephemeral, Backend::Zbud);
    t.put(&mut c, k(e, 0, 0), &b0).unwrap();
    t.put(&mut c, k(e, 0, 1), &b1).unwrap();
    assert_eq!(t.stats().mean_compress_poor, 1);
    assert_eq!(Config::new(1).zv_max_mean_zsize, 2560);
    consistent(&t);
}

#[test]
fn zv_page_count_policy_percent_caps_persistent_pages_above_the_cap() {
    let mut c = lz4();
    // 75 % of 4 pages of RAM: cap 3. zcache refuses only when *more* than 3 are held.
    let mut t = Tmem::new(Config { totalram_pages: 4, ..Config::new(100) });
    assert_eq!(t.config().zv_page_count_cap(), Some(3));
    let p = pool(&mut t, PoolKind::Persistent, Backend::Zsmalloc);
    let e = pool(&mut t, PoolKind::Ephemeral, Backend::Zbud);
    for i in 0..4 {
        t.put(&mut c, k(p, 0, i), &small(i.into())).unwrap();
    }
    let refused = Err(TmemError::PageCountPolicy { persistent_pages: 4, cap: 3 });
    assert_eq!(t.put(&mut c, k(p, 0, 4), &small(4)), refused);
    assert_eq!(t.put(&mut c, k(p, 0, 5), &[0; PAGE_SIZE]), refused, "checked before compression");
    t.put(&mut c, k(e, 0, 0), &small(9)).unwrap(); // ephemeral pages are not counted or capped
    // A replacing put flushes the old copy first: 3 held, so it is stored.
    t.put(&mut c, k(p, 0, 3), &small(33)).unwrap();
    t.flush_page(k(p, 0, 0)).unwrap();
    t.put(&mut c, k(p, 0, 4), &small(4)).unwrap();
    let s = t.stats();
    assert_eq!((s.page_count_policy_refused, s.put_failures, s.persistent_pages), (2, 2, 4));
    assert_eq!(Config::new(1).zv_page_count_cap(), None, "off until totalram_pages is known");
    assert_eq!(Config::new(1).zv_page_count_policy_percent, 75);
    assert_eq!(Config { totalram_pages: 1000, ..Config::new(1) }.zv_page_count_cap(), Some(750));
    consistent(&t);
}

#[test]
fn every_backend_stores_and_serves_both_kinds() {
    let mut c = lz4();
    let mut t = tmem(1000, 90);
    for backend in Backend::ALL {
        assert_eq!(Backend::from_name(backend.name()), Some(backend));
        for kind in [PoolKind::Persistent, PoolKind::Ephemeral] {
            let p = pool(&mut t, kind, backend);
            for i in 0..6 {
                let page = if i % 2 == 0 { big(i) } else { small(i) };
                t.put(&mut c, k(p, i % 2, i as u32), &page).unwrap();
            }
            assert_eq!(t.pool_stats(p).unwrap().backend, backend);
            for i in 0..6 {
                let page = if i % 2 == 0 { big(i) } else { small(i) };
                assert!(*get(&mut t, &mut c, k(p, i % 2, i as u32)).unwrap() == *page, "{backend:?} {kind:?}");
            }
            consistent(&t);
            assert_eq!(t.destroy_pool(p), Ok(if kind == PoolKind::Persistent { 6 } else { 0 }));
        }
    }
    assert_eq!(Backend::from_name("zram"), None);
    assert_eq!(t.stats().leaked_pages, 0);
}

// ---- compaction under pressure (module header) ----

/// A tmem with compaction under pressure at `threshold`, and a zsmalloc pool of `kind` holding 4 full
/// zspages of copies of one page (each its own object, oid = index), on 64 frames or (`exact`) on just
/// those zspages' frames. Returns the pool, the page, and the class's (pages per zspage, objects per
/// zspage, size).
fn four_zspages(threshold: Option<u8>, kind: PoolKind, exact: bool) -> (T, PoolId, Box<Page>, (u64, u64, u64)) {
    let mut c = lz4();
    let page = small(1);
    let class = Zsmalloc::new(HostMemory::new(1)).class_for(zs_stored_size(&page)).unwrap();
    let (pages, objs, size) = (class.pages_per_zspage as u64, class.objs_per_zspage as u64, class.size as u64);
    assert!(objs >= 3 && !class.huge, "{class:?}");
    let frames = if exact { 4 * pages as usize } else { 64 };
    let mut t = Tmem::new(Config { compact_threshold_percent: threshold, ..Config::new(1000) }.without_zv_rules());
    let p = t.new_pool(kind, Some(Backend::Zsmalloc), HostMemory::new(frames)).unwrap();
    for i in 0..4 * objs {
        t.put(&mut c, k(p, i, 0), &page).unwrap();
    }
    assert_eq!(t.total_pages(), 4 * pages);
    let f = t.pool_fragmentation(p).unwrap();
    assert_eq!(f, Fragmentation { free_bytes_in_partial: 0, pool_bytes: 4 * pages * 4096, floor_free_bytes: 0 });
    (t, p, page, (pages, objs, size))
}

/// The bytes a zsmalloc pool stores for `page` (LZ4 and the store's frame).
fn zs_stored_size(page: &Page) -> usize {
    let mut t = tmem(1000, 90);
    let q = pool(&mut t, PoolKind::Persistent, Backend::Zsmalloc);
    t.put(&mut lz4(), k(q, 0, 0), page).unwrap();
    t.stats().compr_data_size as usize
}

/// The `objs − 1` holes before the one that makes a zspage's worth: the objects after the first of each
/// zspage, round-robin over the 4 zspages (store order fills zspage `i / objs`).
fn spread_holes(objs: u64) -> Vec<u64> {
    (1..objs).flat_map(|j| (0..4).map(move |z| z * objs + j)).take(objs as usize - 1).collect()
}

/// How the last free is made: every path that frees a page asks the shrinker.
#[derive(Debug, Clone, Copy)]
enum LastFree {
    FlushPage,
    FlushObject,
    Writeback,
    EphemeralGet,
}

#[test]
fn a_zspages_worth_of_holes_triggers_one_compaction_on_every_free_path() {
    for last in [LastFree::FlushPage, LastFree::FlushObject, LastFree::Writeback, LastFree::EphemeralGet] {
        let mut c = lz4();
        let kind = if matches!(last, LastFree::EphemeralGet) { PoolKind::Ephemeral } else { PoolKind::Persistent };
        let (mut t, p, page, (pages, objs, size)) = four_zspages(Some(10), kind, false);
        for oid in spread_holes(objs) {
            assert_eq!(t.flush_page(k(p, oid, 0)), Ok(true));
        }
        let f = t.pool_fragmentation(p).unwrap();
        assert_eq!((f.free_bytes_in_partial, f.floor_free_bytes), ((objs - 1) * size, (objs - 1) * size), "{last:?}");
        assert_eq!((t.stats().compactions_triggered, t.pool_can_compact_pages(p)), (0, 0), "{last:?}: no excess yet");
        // The objs-th hole, in zspage 0's first object (the oldest page): now a whole zspage's worth is
        // free, 25 % of the pool above the floor, more than 10 %.
        match last {
            LastFree::FlushPage => assert_eq!(t.flush_page(k(p, 0, 0)), Ok(true)),
            LastFree::FlushObject => assert_eq!(t.flush_object(p, 0), Ok(1)),
            LastFree::Writeback => {
                let sink = &mut |key: Key, got: &Page| key == k(p, 0, 0) && *got == *page;
                assert_eq!(t.writeback_oldest(&mut c, p, sink), Ok(Some(k(p, 0, 0))));
            }
            LastFree::EphemeralGet => assert_eq!(get(&mut t, &mut c, k(p, 0, 0)).as_deref(), Ok(&*page)),
        }
        let s = t.stats();
        assert_eq!(
            (s.compactions_triggered, s.shrinker_pages_compacted, s.pages_compacted, s.limit_compactions),
            (1, pages, pages, 0),
            "{last:?}"
        );
        let after = t.pool_fragmentation(p).unwrap();
        // 3 × objs objects left: three full zspages, no free place at all.
        let _ = size;
        assert_eq!(
            after,
            Fragmentation { free_bytes_in_partial: 0, pool_bytes: 3 * pages * 4096, floor_free_bytes: 0 },
            "{last:?}: compacted to the floor"
        );
        assert_eq!(t.total_pages(), 3 * pages);
        let left: Vec<u64> = (1..4 * objs).filter(|oid| !spread_holes(objs).contains(oid)).collect();
        assert_eq!(left.len() as u64, 3 * objs);
        if kind == PoolKind::Persistent {
            for oid in left {
                assert_eq!(get(&mut t, &mut c, k(p, oid, 0)).as_deref(), Ok(&*page), "{last:?}: oid {oid}");
            }
        }
        consistent(&t);
    }
}

#[test]
fn below_the_threshold_or_switched_off_nothing_is_compacted() {
    // A zspage's worth of holes is 25 % of this pool: a threshold of 30 % does not fire, nor does off.
    for threshold in [Some(30), None] {
        let (mut t, p, _, (pages, objs, size)) = four_zspages(threshold, PoolKind::Persistent, false);
        for oid in spread_holes(objs).into_iter().chain([0]) {
            assert_eq!(t.flush_page(k(p, oid, 0)), Ok(true));
        }
        let f = t.pool_fragmentation(p).unwrap();
        assert_eq!((f.excess_bytes(), t.pool_can_compact_pages(p)), (objs * size, pages), "{threshold:?}");
        assert!(!t.wants_compaction(p));
        assert_eq!((t.stats().compactions_triggered, t.stats().pages_compacted), (0, 0), "{threshold:?}");
        // zram's manual compact still works, and counts only in pages_compacted.
        assert_eq!(t.compact(), Ok(pages));
        let s = t.stats();
        assert_eq!((s.compactions_triggered, s.shrinker_pages_compacted, s.pages_compacted), (0, 0, pages));
    }
}

#[test]
fn out_of_memory_compacts_before_it_refuses() {
    for (threshold, want) in [(Some(100), Ok(())), (None, Err(TmemError::OutOfMemory))] {
        let mut c = lz4();
        // The arena holds exactly the 4 zspages; 100 % never fires on a free.
        let (mut t, p, _, (pages, objs, _)) = four_zspages(threshold, PoolKind::Persistent, true);
        for oid in spread_holes(objs).into_iter().chain([0]) {
            assert_eq!(t.flush_page(k(p, oid, 0)), Ok(true));
        }
        assert_eq!(t.stats().compactions_triggered, 0);
        // A page of another class whose zspage fits in what compaction frees: no frame is free until then.
        let small_class = Zsmalloc::new(HostMemory::new(1)).class_for(zs_stored_size(&small(1))).unwrap();
        let other = (21..90)
            .map(|pct| {
                let mut page = Box::new([0; PAGE_SIZE]);
                ratio_page(7, pct, &mut page);
                page
            })
            .find(|page| {
                let class = Zsmalloc::new(HostMemory::new(1)).class_for(zs_stored_size(page)).unwrap();
                class != small_class && class.pages_per_zspage as u64 <= pages
            })
            .unwrap();
        let other_pages = Zsmalloc::new(HostMemory::new(1)).class_for(zs_stored_size(&other)).unwrap().pages_per_zspage;
        assert_eq!(t.put(&mut c, k(p, 999, 0), &other), want, "{threshold:?}");
        let s = t.stats();
        if want.is_ok() {
            assert_eq!((s.oom_retries, s.compactions_triggered, s.shrinker_pages_compacted), (1, 1, pages));
            assert_eq!(t.total_pages(), 3 * pages + other_pages as u64);
        } else {
            assert_eq!((s.oom_retries, s.compactions_triggered, s.reject_alloc_fail), (0, 0, 1));
        }
        consistent(&t);
    }
}

#[test]
fn fragmentation_is_reported_for_zsmalloc_pools_only() {
    let mut c = lz4();
    let mut t = tmem(1000, 90);
    let z = pool(&mut t, PoolKind::Ephemeral, Backend::Zbud);
    t.put(&mut c, k(z, 0, 0), &small(1)).unwrap();
    assert_eq!((t.pool_fragmentation(z), t.fragmentation(), t.pool_can_compact_pages(z)), (None, None, 0));
    assert_eq!(t.pool_fragmentation(PoolId(77)), None);
    let a = pool(&mut t, PoolKind::Persistent, Backend::Zsmalloc);
    let b = pool(&mut t, PoolKind::Ephemeral, Backend::Zsmalloc);
    t.put(&mut c, k(a, 0, 0), &small(2)).unwrap();
    t.put(&mut c, k(b, 0, 0), &big(3)).unwrap();
    let (fa, fb) = (t.pool_fragmentation(a).unwrap(), t.pool_fragmentation(b).unwrap());
    assert_eq!(t.fragmentation(), Some(fa.plus(fb)));
    assert_eq!(fa.pool_bytes + fb.pool_bytes + 4096, t.total_pages() * 4096, "zbud's frame is not in it");
    assert_eq!(Config::new(1).compact_threshold_percent, Some(Config::DEFAULT_COMPACT_THRESHOLD_PERCENT));
}

/// The memory picture's bars: every zsmalloc pool's classes summed by size, zbud's frames left out.
#[test]
fn zs_classes_sum_the_zsmalloc_pools_by_class() {
    let mut c = lz4();
    let mut t = tmem(1000, 90);
    assert!(t.zs_classes().is_empty(), "no pool, no class");
    let z = pool(&mut t, PoolKind::Ephemeral, Backend::Zbud);
    t.put(&mut c, k(z, 0, 0), &small(1)).unwrap();
    assert!(t.zs_classes().is_empty(), "zbud has no size classes");
    let a = pool(&mut t, PoolKind::Persistent, Backend::Zsmalloc);
    let b = pool(&mut t, PoolKind::Persistent, Backend::Zsmalloc);
    t.put(&mut c, k(a, 0, 0), &small(2)).unwrap();
    t.put(&mut c, k(b, 0, 0), &small(2)).unwrap();
    t.put(&mut c, k(b, 0, 1), &big(3)).unwrap();
    let classes = t.zs_classes();
    assert!(classes.windows(2).all(|w| w[0].class.size < w[1].class.size), "ascending, one row a size");
    let used: u64 = classes.iter().map(|c| c.obj_used).sum();
    assert_eq!(used, 3, "the three zsmalloc objects, in two pools");
    let frames: u64 = classes.iter().map(|c| c.pages_used).sum();
    assert_eq!(frames + 1, t.total_pages(), "every frame but zbud's");
    let same = classes.iter().find(|c| c.obj_used == 2).expect("both small(2) pages share a class");
    assert_eq!(same.zspages, 2, "one zspage in each pool");
}

/// tmem's own index grows with every page and object it holds and is gone with the pool: the figure the
/// equal-memory report prints beside the pool frames.
#[test]
fn index_bytes_follow_what_is_held() {
    let mut c = lz4();
    let mut t = tmem(64, 90);
    assert_eq!(t.index_bytes(), 0, "an empty tmem has no index");
    let p = pool(&mut t, PoolKind::Persistent, Backend::Zsmalloc);
    let empty = t.index_bytes();
    assert!(empty > 0, "a pool is an entry of the index");
    t.put(&mut c, k(p, 1, 0), &small(1)).unwrap();
    let one = t.index_bytes();
    t.put(&mut c, k(p, 1, 1), &small(2)).unwrap();
    let two = t.index_bytes();
    assert!(one > empty && two > one, "{empty} < {one} < {two}");
    assert!(two - one < one - empty, "a page of an existing object costs less than the first, which adds the object");
    t.put(&mut c, k(p, 2, 0), &small(3)).unwrap();
    assert!(t.index_bytes() - two > two - one, "a new object costs its own entry on top of the page's");
    t.destroy_pool(p).unwrap();
    assert_eq!(t.index_bytes(), 0, "destroying the pool empties the index");
}

thread_local! {
    /// What the metadata gate of this test thread admits, and the last size it was asked for.
    static HEAP_LEFT: core::cell::Cell<usize> = const { core::cell::Cell::new(usize::MAX) };
    static ASKED: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
}

fn test_gate(bytes: usize) -> bool {
    ASKED.with(|a| a.set(bytes));
    HEAP_LEFT.with(|h| h.get() >= bytes)
}

/// The metadata gate is asked before every put for tmem's map nodes plus the pool's table growth; a `false`
/// refuses the put before anything is allocated or stored, and the pages already held stay exact.
#[test]
fn a_put_the_heap_cannot_promise_is_refused_and_changes_nothing() {
    let mut c = lz4();
    let mut t = tmem(1000, 90);
    let p = pool(&mut t, PoolKind::Persistent, Backend::Zsmalloc);
    t.set_metadata_gate(Some(test_gate));
    HEAP_LEFT.with(|h| h.set(usize::MAX));
    for i in 0..40 {
        let growth = t.pools[&p.0].store.metadata_growth();
        t.put(&mut c, k(p, 1, i), &small(i.into())).unwrap();
        assert_eq!(ASKED.with(|a| a.get()), PUT_METADATA_BYTES + growth, "put {i}");
        // The empty pool's tables had to grow at the first put: the gate was told.
        assert!(i > 0 || growth > 0, "the first put grows the handle and zspage tables");
    }

    let before = t.stats();
    HEAP_LEFT.with(|h| h.set(PUT_METADATA_BYTES - 1));
    let r = t.put(&mut c, k(p, 2, 0), &small(99));
    assert!(matches!(r, Err(TmemError::NoMetadataMemory { bytes }) if bytes >= PUT_METADATA_BYTES), "{r:?}");
    // A replacing put that is refused drops the old copy, as every failed put does (module header).
    let r = t.put(&mut c, k(p, 1, 0), &small(98));
    assert!(matches!(r, Err(TmemError::NoMetadataMemory { .. })), "{r:?}");
    assert!(!t.contains(k(p, 1, 0)) && !t.contains(k(p, 2, 0)));
    let s = t.stats();
    assert_eq!((s.puts, s.put_failures, s.refused_metadata), (before.puts + 2, before.put_failures + 2, 2));
    assert_eq!((s.stored_pages, s.reject_alloc_fail), (before.stored_pages - 1, before.reject_alloc_fail));
    for i in 1..40 {
        assert!(*get(&mut t, &mut c, k(p, 1, i)).unwrap() == *small(i.into()), "page {i}");
    }
    consistent(&t);

    // Memory back: puts go through again; without a gate nothing is asked.
    HEAP_LEFT.with(|h| h.set(usize::MAX));
    t.put(&mut c, k(p, 2, 0), &small(99)).unwrap();
    t.set_metadata_gate(None);
    ASKED.with(|a| a.set(0));
    t.put(&mut c, k(p, 2, 1), &small(100)).unwrap();
    assert_eq!((ASKED.with(|a| a.get()), t.stats().refused_metadata), (0, 2));
    consistent(&t);
}

#[test]
fn without_zv_rules_turns_off_all_three() {
    let c = Config { totalram_pages: 1000, zv_max_zsize: 100, zv_max_mean_zsize: 200, ..Config::new(7) };
    let off = c.without_zv_rules();
    assert_eq!((off.zv_max_zsize, off.zv_max_mean_zsize, off.totalram_pages), (usize::MAX, usize::MAX, 0));
    assert_eq!(off.zv_page_count_cap(), None);
    assert_eq!(Config { zv_max_zsize: usize::MAX, zv_max_mean_zsize: usize::MAX, totalram_pages: 0, ..c }, off);
}

/// `btree_node` is std's internal `BTreeMap` node: parent pointer (8), parent index and length (2 + 2),
/// 11 keys and 11 values, 12 edge pointers, rounded up to 8.
#[test]
fn btree_node_is_the_internal_node_layout() {
    assert_eq!(btree_node(8, 24), 8 + 2 + 2 + 11 * 8 + 11 * 24 + 12 * 8 + 4);
    assert_eq!(btree_node(4, 4), 8 + 2 + 2 + 11 * 4 + 11 * 4 + 12 * 8 + 4);
    assert_eq!(btree_node(1, 1), 8 + 2 + 2 + 11 * 2 + 12 * 8 + 6);
    let maps = [
        btree_node(size_of::<u64>(), size_of::<BTreeMap<u32, Slot>>()),
        btree_node(size_of::<u32>(), size_of::<Slot>()),
        btree_node(size_of::<u64>(), size_of::<(u64, u32)>()),
        btree_node(size_of::<u64>(), size_of::<Key>()),
        btree_node(size_of::<u64>(), size_of::<(u64, u32)>()),
    ];
    assert_eq!(PUT_METADATA_BYTES, BTREE_INSERT_NODES * maps.iter().sum::<usize>());
    assert!(maps.iter().all(|&n| n >= 200 && n % 8 == 0), "{maps:?}");
}

/// `put_prepared` (compressed ahead, outside the lock) keeps exactly what `put` keeps: same answers,
/// same counters, the same bytes back, for same-filled, small, big and incompressible pages, under a
/// limit that makes the last puts refused.
#[test]
fn put_prepared_keeps_what_put_keeps() {
    let mut c = lz4();
    let mut direct = tmem(6, 90);
    let mut ahead = tmem(6, 90);
    let pd = pool(&mut direct, PoolKind::Persistent, Backend::Zsmalloc);
    let pa = pool(&mut ahead, PoolKind::Persistent, Backend::Zsmalloc);
    let mut pages: Vec<Box<Page>> = vec![Box::new([7; PAGE_SIZE]), small(1), noise(2)];
    pages.extend((3..30).map(big));
    let mut refused = 0;
    for (i, page) in pages.iter().enumerate() {
        let prepared = zstore::Prepared::new(&mut c, page).unwrap();
        let want = direct.put(&mut c, k(pd, 1, i as u32), page);
        assert_eq!(ahead.put_prepared(&prepared, k(pa, 1, i as u32), page), want, "page {i}");
        refused += usize::from(want.is_err());
    }
    assert!(refused > 0, "the limit was reached");
    assert_eq!(format!("{:?}", ahead.stats()), format!("{:?}", direct.stats()));
    assert!(ahead.stats().stored_pages >= 3);
    for (i, page) in pages.iter().enumerate() {
        let want = get(&mut direct, &mut c, k(pd, 1, i as u32));
        let got = get(&mut ahead, &mut c, k(pa, 1, i as u32));
        assert_eq!(got, want);
        if let Ok(bytes) = got {
            assert!(*bytes == **page, "page {i} came back changed");
        }
    }
    consistent(&ahead);
}

/// Free the pool object behind `key` behind tmem's back, so that tmem's own free of it fails.
fn free_behind_tmems_back(t: &mut T, key: Key) {
    let p = t.pools.get_mut(&key.pool.0).unwrap();
    let h = p.slot(key.oid, key.index).and_then(|s| s.entry.handle()).unwrap();
    let r = match &mut p.store {
        Store::Zsmalloc(z) => z.pool_mut().free(h),
        Store::Zbud(z) => z.pool_mut().free(h),
        Store::Xvmalloc(z) => z.pool_mut().free(h),
        Store::Xcfmalloc(z) => z.pool_mut().free(h),
    };
    r.unwrap();
}

#[test]
fn a_refused_free_is_counted_on_flush_and_on_destroy() {
    let mut c = lz4();
    let mut t = tmem(1000, 90);
    let p = pool(&mut t, PoolKind::Persistent, Backend::Zsmalloc);
    for i in 0..4 {
        t.put(&mut c, k(p, 1, i), &small(u64::from(i))).unwrap();
    }
    free_behind_tmems_back(&mut t, k(p, 1, 0));
    assert!(matches!(t.flush_page(k(p, 1, 0)), Err(TmemError::Store(_))), "{:?}", t.stats());
    assert_eq!(t.stats().free_errors, 1);
    free_behind_tmems_back(&mut t, k(p, 1, 1));
    free_behind_tmems_back(&mut t, k(p, 1, 2));
    assert_eq!(t.destroy_pool(p), Ok(3));
    let s = t.stats();
    assert_eq!((s.free_errors, s.destroyed_pools, s.destroyed_pages, s.stored_pages), (3, 1, 3, 0));
}

/// `index_bytes` counts each map entry at its element size: a pool, an object, a page's pampd, its place
/// in the global and the pool's store order, and (ephemeral zbud pools) its handle back-reference.
#[test]
fn index_bytes_count_each_entry_at_its_size() {
    let mut c = lz4();
    let mut t = tmem(64, 90);
    let pool_entry = size_of::<(u32, Pool<HostMemory>)>();
    let object = size_of::<(u64, BTreeMap<u32, Slot>)>();
    let page = size_of::<(u32, Slot)>() + size_of::<(u64, Key)>() + size_of::<(u64, (u64, u32))>();
    let back_ref = size_of::<(u64, (u64, u32))>();
    let p = pool(&mut t, PoolKind::Persistent, Backend::Zsmalloc);
    assert_eq!(t.index_bytes(), pool_entry as u64);
    for i in 0..3 {
        t.put(&mut c, k(p, 1, i), &small(u64::from(i))).unwrap();
    }
    t.put(&mut c, k(p, 2, 0), &small(9)).unwrap();
    assert_eq!(t.index_bytes(), (pool_entry + 2 * object + 4 * page) as u64);
    let e = pool(&mut t, PoolKind::Ephemeral, Backend::Zbud);
    t.put(&mut c, k(e, 5, 0), &small(10)).unwrap();
    t.put(&mut c, k(e, 5, 1), &small(11)).unwrap();
    let both = 2 * pool_entry + 3 * object + 6 * page + 2 * back_ref;
    assert_eq!(t.index_bytes(), both as u64);
}

//! Host tests: the three kinds of entry, the policy, corrupt and stale entries, and a randomised run
//! against a model over both pools.

use super::*;

use pagedata::sample::perl_pages;
use pagedata::{Rng, THREE_QUARTERS_FRESH, random_page, ratio_page};
use pagemem::HostMemory;
use std::collections::BTreeMap;
use zbud::Zbud;
use zsmalloc::Zsmalloc;

type Page = [u8; PAGE_SIZE];

const LZ4: Algorithm = Algorithm::Lz4;
const DEFLATE_1: Algorithm = Algorithm::Deflate { level: 1 };

fn zbud_store(frames: usize, policy: Policy) -> Zstore<Zbud<HostMemory>> {
    Zstore::new(Zbud::new(HostMemory::new(frames)), policy)
}

fn zs_store(frames: usize, policy: Policy) -> Zstore<Zsmalloc<HostMemory>> {
    Zstore::new(Zsmalloc::new(HostMemory::new(frames)), policy)
}

fn noise(seed: u64) -> Box<Page> {
    let mut p = Box::new([0; PAGE_SIZE]);
    random_page(seed, &mut p);
    p
}

/// The first perl page that is not same-filled.
fn perl_page() -> &'static Page {
    perl_pages().iter().find(|p| compress::same_filled(p).is_none()).unwrap()
}

fn invariants(s: &StoreStats) {
    assert_eq!(s.orig_data_size, s.stored_pages * PAGE_SIZE as u64, "{s:?}");
    assert!(s.same_pages + s.huge_pages <= s.stored_pages, "{s:?}");
}

#[test]
fn worked_example_from_the_header() {
    let mut c = Compressor::new(LZ4).unwrap();
    let mut z = zs_store(64, Policy::DEFAULT);
    let zero = [0u8; PAGE_SIZE];
    assert_eq!(z.store(&mut c, &zero), Ok(Entry::Same { word: 0 }));
    assert_eq!((z.stats().same_pages, z.pool().total_pages()), (1, 0), "no pool object for a zero page");

    let e = z.store(&mut c, perl_page()).unwrap();
    let Entry::Compressed { len, algorithm, .. } = e else { panic!("{e:?}") };
    assert_eq!((len, algorithm), (1781, 1), "the header's figure for the first perl page");
    assert_eq!(z.stats().compr_data_size, 1781);
    assert_eq!(z.stats().mem_used_total, z.pool().total_pages() * 4096);

    assert_eq!(z.store(&mut c, &noise(1)), Err(StoreError::Incompressible { size: 4119 }));
    let s = z.stats();
    assert_eq!((s.reject_compress_poor, s.stored_pages, s.orig_data_size), (1, 2, 8192));
    invariants(&s);
}

#[test]
fn every_perl_page_round_trips_through_both_pools_and_both_compressors() {
    for alg in [LZ4, DEFLATE_1] {
        let mut c = Compressor::new(alg).unwrap();
        let mut zb = zbud_store(4096, Policy::DEFAULT);
        let mut zs = zs_store(4096, Policy::DEFAULT);
        let pages = perl_pages();
        let mut entries = Vec::new();
        for p in pages {
            entries.push((zb.store(&mut c, p), zs.store(&mut c, p)));
        }
        let mut back = [0u8; PAGE_SIZE];
        for (p, (eb, es)) in pages.iter().zip(&entries) {
            if let Ok(e) = eb {
                back.fill(0xa5);
                zb.load(&mut c, e, &mut back).unwrap();
                assert!(back == *p);
            }
            if let Ok(e) = es {
                back.fill(0xa5);
                zs.load(&mut c, e, &mut back).unwrap();
                assert!(back == *p);
            }
        }
        let (sb, ss) = (zb.stats(), zs.stats());
        println!("{alg:?}: zbud {sb:?}\n{alg:?}: zsmalloc {ss:?}");
        invariants(&sb);
        invariants(&ss);
        // Both pools saw the same pages and the same policy: the same pages were kept, in the same bytes.
        assert_eq!(
            (sb.stored_pages, sb.same_pages, sb.compr_data_size, sb.reject_compress_poor),
            (ss.stored_pages, ss.same_pages, ss.compr_data_size, ss.reject_compress_poor)
        );
        assert_eq!(sb.stored_pages + sb.reject_compress_poor, pages.len() as u64);
        assert!(sb.same_pages > 0, "the sample has same-filled pages");
        assert!(ss.mem_used_total < sb.mem_used_total, "zsmalloc packs denser than zbud");
        for (eb, es) in entries {
            if let Ok(e) = eb {
                zb.free(e).unwrap();
            }
            if let Ok(e) = es {
                zs.free(e).unwrap();
            }
        }
        for s in [zb.stats(), zs.stats()] {
            assert_eq!((s.stored_pages, s.compr_data_size, s.same_pages, s.mem_used_total), (0, 0, 0, 0), "{s:?}");
        }
    }
}

#[test]
fn a_poor_page_is_rejected_or_kept_whole() {
    let mut c = Compressor::new(LZ4).unwrap();
    let page = noise(2);
    let whole = Policy { poor: PoorPage::StoreWhole, ..Policy::DEFAULT };

    let mut zs = zs_store(16, whole);
    let e = zs.store(&mut c, &page).unwrap();
    assert!(matches!(e, Entry::Whole { .. }));
    assert_eq!((zs.stats().huge_pages, zs.stats().compr_data_size), (1, 4096));
    let mut back = [0u8; PAGE_SIZE];
    zs.load(&mut c, &e, &mut back).unwrap();
    assert!(back == *page);
    zs.free(e).unwrap();
    assert_eq!(zs.stats().huge_pages, 0);

    // zbud cannot hold a whole page: the pool says so, and the store counts an allocation failure.
    let mut zb = zbud_store(16, whole);
    assert_eq!(zb.store(&mut c, &page), Err(StoreError::Pool(PoolError::TooLarge { size: 4096, max: zbud::MAX_SIZE })));
    let s = zb.stats();
    assert_eq!((s.reject_alloc_fail, s.stored_pages, s.mem_used_total), (1, 0, 0));

    // A lower threshold turns a 75 % page into a poor one.
    let mut p75 = [0u8; PAGE_SIZE];
    ratio_page(3, THREE_QUARTERS_FRESH, &mut p75);
    let strict = Policy { threshold: PAGE_SIZE / 2, poor: PoorPage::Reject };
    let mut z = zs_store(16, strict);
    assert!(matches!(z.store(&mut c, &p75), Err(StoreError::Incompressible { size }) if size > 2048 && size < 3584));
    let mut z = zs_store(16, Policy::DEFAULT);
    assert!(matches!(z.store(&mut c, &p75), Ok(Entry::Compressed { .. })));
}

#[test]
fn corrupt_stored_bytes_are_detected_not_served() {
    let mut c = Compressor::new(DEFLATE_1).unwrap();
    let mut z = zs_store(256, Policy::DEFAULT);
    let mut rng = Rng::new(9);
    // The first 200 pages that compress below the threshold.
    let entries: Vec<Entry> = perl_pages()
        .iter()
        .filter_map(|p| z.store(&mut c, p).ok().filter(|e| matches!(e, Entry::Compressed { .. })))
        .take(200)
        .collect();
    let mut back = [0u8; PAGE_SIZE];
    for e in &entries {
        let h = e.handle().unwrap();
        // Flip 1 to 4 random bits of the stored bytes, the way a stray write or bad RAM would.
        let flips = 1 + rng.below(4);
        let len = e.stored_len();
        let at: Vec<(usize, u8)> = (0..flips).map(|_| (rng.below(len), 1 << rng.below(8))).collect();
        z.pool_mut()
            .map(h, MapMode::ReadWrite, |obj| {
                for &(i, bit) in &at {
                    obj[i] ^= bit;
                }
            })
            .unwrap();
        let r = z.load(&mut c, e, &mut back);
        // Two flips of the same bit cancel out; everything else must be caught.
        let mut net = BTreeMap::new();
        for &(i, bit) in &at {
            *net.entry(i).or_insert(0u8) ^= bit;
        }
        if net.values().all(|&b| b == 0) {
            assert_eq!(r, Ok(()));
        } else {
            assert!(matches!(r, Err(StoreError::Corrupt | StoreError::UnknownAlgorithm(_))), "{r:?}");
        }
    }
    let s = z.stats();
    assert!(s.corrupt_loads >= 190, "{s:?}");
    for e in entries {
        z.free(e).unwrap();
    }
    assert_eq!(z.pool().total_pages(), 0, "corrupt entries still free cleanly");
}

/// A page kept whole has no frame and so no frame check: the entry keeps its Adler-32, and a load of
/// damaged raw bytes is refused as corrupt, counted, and leaves the entry to be freed as usual.
#[test]
fn a_damaged_whole_page_is_detected_not_served() {
    let mut c = Compressor::new(LZ4).unwrap();
    let whole = Policy { poor: PoorPage::StoreWhole, ..Policy::DEFAULT };
    let mut z = zs_store(64, whole);
    let mut back = [0u8; PAGE_SIZE];
    for (i, byte) in [0usize, 1, 2047, 4095].into_iter().enumerate() {
        let page = noise(10 + i as u64);
        let e = z.store(&mut c, &page).unwrap();
        let Entry::Whole { handle, check } = e else { panic!("{e:?}") };
        assert_eq!(check, compress::page_check(&page));
        z.pool_mut().map(handle, MapMode::ReadWrite, |obj| obj[byte] ^= 0x10).unwrap();
        assert_eq!(z.load(&mut c, &e, &mut back), Err(StoreError::Corrupt), "byte {byte} flipped");
        // Put back, the same bytes load again.
        z.pool_mut().map(handle, MapMode::ReadWrite, |obj| obj[byte] ^= 0x10).unwrap();
        z.load(&mut c, &e, &mut back).unwrap();
        assert!(back == *page);
        z.free(e).unwrap();
    }
    let s = z.stats();
    assert_eq!((s.corrupt_loads, s.loads, s.stored_pages, s.huge_pages), (4, 4, 0, 0), "{s:?}");
}

#[test]
fn a_stale_entry_is_refused_and_nothing_else_moves() {
    let mut c = Compressor::new(LZ4).unwrap();
    let mut z = zbud_store(16, Policy::DEFAULT);
    let keep = z.store(&mut c, perl_page()).unwrap();
    let gone = z.store(&mut c, perl_page()).unwrap();
    let h = gone.handle().unwrap();
    z.pool_mut().free(h).unwrap(); // behind the store's back, as an evicting pool would
    let before = z.stats();
    let mut back = [0u8; PAGE_SIZE];
    assert_eq!(z.load(&mut c, &gone, &mut back), Err(StoreError::Pool(PoolError::StaleHandle(h))));
    assert_eq!(z.free(gone), Err(StoreError::Pool(PoolError::StaleHandle(h))));
    assert_eq!(z.stats(), before);
    z.load(&mut c, &keep, &mut back).unwrap();
    assert!(back == *perl_page());
}

#[test]
fn a_full_pool_refuses_the_store_and_keeps_what_it_has() {
    let mut c = Compressor::new(LZ4).unwrap();
    let mut z = zs_store(4, Policy::DEFAULT);
    let mut kept = Vec::new();
    let mut refused = 0;
    for (i, p) in perl_pages().iter().enumerate().take(200) {
        match z.store(&mut c, p) {
            Ok(e) => kept.push((i, e)),
            Err(StoreError::Pool(PoolError::OutOfMemory)) => refused += 1,
            Err(StoreError::Incompressible { .. }) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    let s = z.stats();
    assert!(refused > 0 && s.reject_alloc_fail == refused, "{s:?}");
    assert_eq!(s.mem_used_total, 4 * 4096);
    let mut back = [0u8; PAGE_SIZE];
    for (i, e) in &kept {
        z.load(&mut c, e, &mut back).unwrap();
        assert!(back == perl_pages()[*i]);
    }
}

/// Random store/load/free over both pools and both compressors, against a map of what each entry must
/// give back; 100,000 operations each.
#[test]
fn random_operations_against_a_model() {
    for (seed, zs) in [(1u64, true), (2, false)] {
        let mut rng = Rng::new(seed);
        let mut comps = [Compressor::new(LZ4).unwrap(), Compressor::new(DEFLATE_1).unwrap()];
        let policy = Policy { poor: if zs { PoorPage::StoreWhole } else { PoorPage::Reject }, ..Policy::DEFAULT };
        let mut z: Box<dyn Store> =
            if zs { Box::new(zs_store(2048, policy)) } else { Box::new(zbud_store(2048, policy)) };
        let mut live: Vec<(Entry, Box<Page>)> = Vec::new();
        let mut page = Box::new([0u8; PAGE_SIZE]);
        let mut back = [0u8; PAGE_SIZE];
        let (mut kept_bytes, mut kept_same, mut kept_whole) = (0u64, 0u64, 0u64);
        for op in 0..100_000u64 {
            let c = &mut comps[rng.below(2)];
            match rng.below(10) {
                0..=4 if live.len() < 1500 => {
                    match rng.below(4) {
                        0 => page.copy_from_slice(&perl_pages()[rng.below(2048)]),
                        1 => ratio_page(rng.next_u64(), rng.below(101), &mut page),
                        2 => compress::fill_same(&mut page, if rng.below(2) == 0 { 0 } else { rng.next_u64() }),
                        _ => random_page(rng.next_u64(), &mut page),
                    }
                    match z.store(c, &page) {
                        Ok(e) => {
                            kept_bytes += e.stored_len() as u64;
                            kept_same += matches!(e, Entry::Same { .. }) as u64;
                            kept_whole += matches!(e, Entry::Whole { .. }) as u64;
                            live.push((e, page.clone()));
                        }
                        Err(StoreError::Incompressible { .. }) => assert!(!zs),
                        Err(e) => panic!("seed {seed} op {op}: {e:?}"),
                    }
                }
                0..=6 if !live.is_empty() => {
                    let (e, p) = &live[rng.below(live.len())];
                    z.load(c, e, &mut back).unwrap_or_else(|err| panic!("seed {seed} op {op}: {err:?}"));
                    assert!(back == **p, "seed {seed} op {op}");
                }
                _ if !live.is_empty() => {
                    let (e, _) = live.swap_remove(rng.below(live.len()));
                    kept_bytes -= e.stored_len() as u64;
                    kept_same -= matches!(e, Entry::Same { .. }) as u64;
                    kept_whole -= matches!(e, Entry::Whole { .. }) as u64;
                    z.free(e).unwrap();
                }
                _ => {}
            }
            let s = z.stats();
            assert_eq!(
                (s.stored_pages, s.compr_data_size, s.same_pages, s.huge_pages),
                (live.len() as u64, kept_bytes, kept_same, kept_whole),
                "seed {seed} op {op}"
            );
            invariants(&s);
        }
        for (e, _) in live {
            z.free(e).unwrap();
        }
        assert_eq!(z.stats().mem_used_total, 0);
    }
}

/// Object-safe view of a store, so one test body drives both pools.
trait Store {
    fn store(&mut self, c: &mut Compressor, page: &Page) -> Result<Entry, StoreError>;
    fn load(&mut self, c: &mut Compressor, e: &Entry, page: &mut Page) -> Result<(), StoreError>;
    fn free(&mut self, e: Entry) -> Result<(), StoreError>;
    fn stats(&self) -> StoreStats;
}

impl<P: ZPool> Store for Zstore<P> {
    fn store(&mut self, c: &mut Compressor, page: &Page) -> Result<Entry, StoreError> {
        Zstore::store(self, c, page)
    }
    fn load(&mut self, c: &mut Compressor, e: &Entry, page: &mut Page) -> Result<(), StoreError> {
        Zstore::load(self, c, e, page)
    }
    fn free(&mut self, e: Entry) -> Result<(), StoreError> {
        Zstore::free(self, e)
    }
    fn stats(&self) -> StoreStats {
        Zstore::stats(self)
    }
}

/// A chain-8 zsmalloc pool (Linux's default since 6.3) with zram's rule at its huge class size.
fn zram_store(frames: usize) -> Zstore<Zsmalloc<HostMemory>> {
    let config = zsmalloc::Config { max_pages_per_zspage: 8, ..zsmalloc::Config::default() };
    let pool = Zsmalloc::with_config(HostMemory::new(frames), config).unwrap();
    let policy = Policy::zram(pool.huge_class_size());
    Zstore::new(pool, policy)
}

#[test]
fn zram_policy_keeps_a_page_whole_from_the_huge_class_size_on() {
    assert_eq!(Policy::zram(3625), Policy { threshold: 3624, poor: PoorPage::StoreWhole });
    assert_eq!(Policy::zram(0), Policy { threshold: 0, poor: PoorPage::StoreWhole });
    assert_eq!(zram_store(1).policy(), Policy::zram(3625), "chain 8: zs_huge_class_size is 3625");

    // zram's test is `comp_len >= huge_class_size`: a page of exactly that many stored bytes is whole, and
    // with the threshold one byte higher the same page is compressed.
    let mut c = Compressor::new(LZ4).unwrap();
    let mut page = [0u8; PAGE_SIZE];
    ratio_page(3, THREE_QUARTERS_FRESH, &mut page);
    let size = c.compress(&page, compress::MAX_STORED).unwrap().len();
    assert!(size > 2048 && size < 3584, "a 75 % page: {size}");

    let mut at = zs_store(16, Policy::zram(size));
    let e = at.store(&mut c, &page).unwrap();
    assert!(matches!(e, Entry::Whole { .. }), "{e:?}");
    let s = at.stats();
    assert_eq!((s.huge_pages, s.compr_data_size, s.mem_used_total, s.reject_compress_poor), (1, 4096, 4096, 0));
    let mut back = [0u8; PAGE_SIZE];
    at.load(&mut c, &e, &mut back).unwrap();
    assert!(back == page);

    let mut above = zs_store(16, Policy::zram(size + 1));
    let e = above.store(&mut c, &page).unwrap();
    assert!(matches!(e, Entry::Compressed { len, .. } if len as usize == size), "{e:?}");
    assert_eq!((above.stats().huge_pages, above.stats().compr_data_size), (0, size as u64));

    // Nothing is refused for its size: a random page, which no compressor shrinks, is kept whole too.
    let e = above.store(&mut c, &noise(4)).unwrap();
    assert!(matches!(e, Entry::Whole { .. }), "{e:?}");
    assert_eq!(above.stats().reject_compress_poor, 0);
}

/// The `mm_stat` fields mean what zram's mean (module header): three pages, one of each kind.
#[test]
fn mm_stat_fields_count_as_zram_counts_them() {
    let mut c = Compressor::new(LZ4).unwrap();
    let mut z = zram_store(64);
    let same = z.store(&mut c, &[0x5a; PAGE_SIZE]).unwrap();
    let compressed = z.store(&mut c, perl_page()).unwrap();
    let whole = z.store(&mut c, &noise(5)).unwrap();
    assert_eq!(same, Entry::Same { word: 0x5a5a_5a5a_5a5a_5a5a });
    assert!(matches!(compressed, Entry::Compressed { len: 1781, .. }), "{compressed:?}");
    assert!(matches!(whole, Entry::Whole { .. }), "{whole:?}");

    // 1781 stored bytes + the 8-byte header = 1789 go to class 1792, which at chain 8 is 7 frames of 16
    // objects (7 · 4096 = 16 · 1792, no tail); the whole page takes one frame of the huge class.
    let class = z.pool().class_for(1781).unwrap();
    assert_eq!((class.size, class.pages_per_zspage, class.objs_per_zspage), (1792, 7, 16));
    let s = z.stats();
    assert_eq!(s.orig_data_size, 3 * 4096, "zram's pages_stored counts same-filled pages too");
    assert_eq!(s.compr_data_size, 1781 + 4096, "the stored bytes, and 4096 for the whole page");
    assert_eq!(s.mem_used_total, (7 + 1) * 4096, "the pool's frames");
    assert_eq!((s.same_pages, s.huge_pages, s.stored_pages), (1, 1, 3));
    assert_eq!((s.reject_compress_poor, s.reject_alloc_fail), (0, 0));
    invariants(&s);

    for e in [same, compressed, whole] {
        z.free(e).unwrap();
    }
    let s = z.stats();
    let fields = (s.orig_data_size, s.compr_data_size, s.mem_used_total, s.same_pages, s.huge_pages);
    assert_eq!(fields, (0, 0, 0, 0, 0));
}

/// The perl sample under zram's rule at chain 8: every page kept, and as many same-filled and whole
/// pages as Linux 6.18's zram counted on the same pages (`shared/anchors.md`: same_pages 10, huge_pages 1).
#[test]
fn the_perl_sample_under_zrams_rule_keeps_every_page() {
    let mut c = Compressor::new(LZ4).unwrap();
    let mut z = zram_store(4096);
    let pages = perl_pages();
    let mut stored_bytes = 0u64;
    let mut entries = Vec::new();
    for p in pages {
        let e = z.store(&mut c, p).unwrap();
        stored_bytes += e.stored_len() as u64;
        entries.push(e);
    }
    let s = z.stats();
    assert_eq!((s.stored_pages, s.orig_data_size), (2048, 2048 * 4096));
    assert_eq!((s.same_pages, s.huge_pages), (10, 1));
    assert_eq!(s.compr_data_size, stored_bytes);
    // Counted apart: the compressed pages' own sizes, and 4096 for the one whole page.
    let mut check = Compressor::new(LZ4).unwrap();
    let compressed: u64 = pages
        .iter()
        .filter(|p| compress::same_filled(p).is_none())
        .map(|p| check.compress(p, compress::MAX_STORED).unwrap().len() as u64)
        .filter(|&len| len < 3625)
        .sum();
    assert_eq!(s.compr_data_size, compressed + 4096);
    for e in entries {
        z.free(e).unwrap();
    }
    assert_eq!(z.stats().mem_used_total, 0);
}

#[test]
fn store_within_refuses_above_the_callers_limit_whatever_the_policy() {
    let mut c = Compressor::new(LZ4).unwrap();
    let mut page = Box::new([0; PAGE_SIZE]);
    ratio_page(7, THREE_QUARTERS_FRESH, &mut page);
    let size = c.compress(&page, PAGE_SIZE).unwrap().len();
    assert!((3257..=3584).contains(&size), "{size}: poor only for zram's rule (huge class 3257)");
    for policy in [Policy::DEFAULT, Policy::zram(3257)] {
        let mut z = zs_store(16, policy);
        assert_eq!(z.store_within(&mut c, &page, size - 1), Err(StoreError::Incompressible { size }));
        let s = z.stats();
        assert_eq!((s.stored_pages, s.reject_compress_poor, s.huge_pages, s.mem_used_total), (0, 1, 0, 0));
        // At the limit it is stored as `store` would store it.
        let e = z.store_within(&mut c, &page, size).unwrap();
        assert_eq!(e.stored_len(), if policy == Policy::DEFAULT { size } else { PAGE_SIZE });
        // A same-filled page needs no pool memory: no limit refuses it.
        assert_eq!(z.store_within(&mut c, &[9; PAGE_SIZE], 0), Ok(Entry::Same { word: 0x0909_0909_0909_0909 }));
        invariants(&z.stats());
    }
}

#[test]
fn evict_forgets_the_evicted_pages_and_a_refusal_changes_nothing() {
    let mut c = Compressor::new(LZ4).unwrap();
    let mut z = zbud_store(8, Policy::DEFAULT);
    let pages: Vec<Box<Page>> = (0..3)
        .map(|i| {
            let mut p = Box::new([0; PAGE_SIZE]);
            ratio_page(i, 20, &mut p);
            p
        })
        .collect();
    // Two small pages share the first zbud page, the third opens a second: LRU tail is the first.
    let entries: Vec<Entry> = pages.iter().map(|p| z.store(&mut c, p).unwrap()).collect();
    assert_eq!(z.pool().total_pages(), 2);
    let before = z.stats();
    assert_eq!(z.evict(&mut |_, _| false), Err(StoreError::Pool(PoolError::EvictRefused)));
    assert_eq!(z.stats(), before, "a refused eviction changes nothing");

    let mut seen = Vec::new();
    assert_eq!(
        z.evict(&mut |h, obj| {
            seen.push((h, obj.len()));
            true
        }),
        Ok(1)
    );
    let want: Vec<(Handle, usize)> = entries[..2].iter().map(|e| (e.handle().unwrap(), e.stored_len())).collect();
    assert_eq!(seen, want, "the two objects of the oldest page, first buddy first");
    let s = z.stats();
    assert_eq!(s.stored_pages, 1);
    assert_eq!(s.compr_data_size, entries[2].stored_len() as u64);
    assert_eq!(s.mem_used_total, PAGE_SIZE as u64);
    invariants(&s);
    let mut out = Box::new([0; PAGE_SIZE]);
    assert_eq!(z.load(&mut c, &entries[0], &mut out), Err(StoreError::Pool(PoolError::StaleHandle(want[0].0))));
    z.load(&mut c, &entries[2], &mut out).unwrap();
    assert!(*out == *pages[2], "the other page is intact");

    // zsmalloc cannot evict: refused, nothing moves.
    let mut zs = zs_store(8, Policy::DEFAULT);
    zs.store(&mut c, &pages[0]).unwrap();
    let before = zs.stats();
    assert_eq!(zs.evict(&mut |_, _| true), Err(StoreError::Pool(PoolError::EvictRefused)));
    assert_eq!(zs.stats(), before);
}

/// A page compressed ahead ([`Prepared`]) and kept with `store_prepared` is kept exactly as
/// `store_within` keeps it: same entries, same bytes back, same counters, under both policies and
/// every limit, for zero, same-filled, compressible, poor and random pages.
#[test]
fn prepared_stores_match_direct_stores() {
    let mut pages: Vec<Box<Page>> = vec![Box::new([0; PAGE_SIZE]), Box::new([0x5a; PAGE_SIZE]), Box::new(*perl_page())];
    for (i, pct) in [10usize, 40, 75, 90, 100].into_iter().enumerate() {
        let mut p = Box::new([0u8; PAGE_SIZE]);
        ratio_page(i as u64 + 3, pct, &mut p);
        pages.push(p);
    }
    pages.push(noise(9));
    for policy in [Policy::DEFAULT, Policy::zram(3264)] {
        for limit in [usize::MAX, 3000, 1200] {
            let (mut a, mut b) = (zs_store(64, policy), zs_store(64, policy));
            let mut c = Compressor::new(compress::Algorithm::Lz4).unwrap();
            for p in &pages {
                let direct = a.store_within(&mut c, p, limit);
                let prepared = Prepared::new(&mut c, p).unwrap();
                let ahead = b.store_prepared(&prepared, p, limit);
                assert_eq!(direct.is_ok(), ahead.is_ok(), "{prepared:?} limit {limit}");
                match (direct, ahead) {
                    (Ok(x), Ok(y)) => {
                        assert_eq!(core::mem::discriminant(&x), core::mem::discriminant(&y));
                        let (mut out_x, mut out_y) = ([0u8; PAGE_SIZE], [0u8; PAGE_SIZE]);
                        a.load(&mut c, &x, &mut out_x).unwrap();
                        b.load(&mut c, &y, &mut out_y).unwrap();
                        assert!(out_x == **p && out_y == **p, "both read back the page");
                    }
                    (Err(x), Err(y)) => assert_eq!(x, y),
                    _ => unreachable!(),
                }
            }
            assert_eq!(a.stats(), b.stats(), "policy {policy:?} limit {limit}");
        }
    }
}

/// A toy pool for the paths no real pool reaches: it keeps objects up to [`PAGE_SIZE`] in a `Vec`, evicts
/// the oldest one, reports a fixed compaction, and can fail every `map`.
#[derive(Debug, Default)]
struct Toy {
    objects: Vec<Option<Vec<u8>>>,
    fail_map: bool,
    compacted: u64,
}

impl ZPool for Toy {
    fn name(&self) -> &'static str {
        "toy"
    }
    fn max_size(&self) -> usize {
        PAGE_SIZE
    }
    fn malloc(&mut self, size: usize) -> Result<Handle, PoolError> {
        PoolError::check_size(size, PAGE_SIZE)?;
        self.objects.push(Some(vec![0; size]));
        Ok(Handle::from_raw(self.objects.len() as u64 - 1))
    }
    fn free(&mut self, handle: Handle) -> Result<(), PoolError> {
        let slot = self.objects.get_mut(handle.raw() as usize).ok_or(PoolError::StaleHandle(handle))?;
        slot.take().map(|_| ()).ok_or(PoolError::StaleHandle(handle))
    }
    fn map<R>(&mut self, handle: Handle, _mode: MapMode, f: impl FnOnce(&mut [u8]) -> R) -> Result<R, PoolError> {
        if self.fail_map {
            return Err(PoolError::Memory(pagemem::MemError::NoSlot));
        }
        match self.objects.get_mut(handle.raw() as usize) {
            Some(Some(obj)) => Ok(f(obj)),
            _ => Err(PoolError::StaleHandle(handle)),
        }
    }
    fn size_of(&self, handle: Handle) -> Result<usize, PoolError> {
        match self.objects.get(handle.raw() as usize) {
            Some(Some(obj)) => Ok(obj.len()),
            _ => Err(PoolError::StaleHandle(handle)),
        }
    }
    fn total_pages(&self) -> u64 {
        self.objects.iter().flatten().count() as u64
    }
    fn stats(&self) -> zpool::PoolStats {
        let live = self.objects.iter().flatten();
        zpool::PoolStats {
            objects: live.clone().count() as u64,
            object_bytes: live.map(|o| o.len() as u64).sum(),
            pages: self.total_pages(),
            pages_compacted: self.compacted,
            ..Default::default()
        }
    }
    fn metadata_growth(&self) -> usize {
        0
    }
    fn compact(&mut self) -> Result<u64, PoolError> {
        self.compacted += 3;
        Ok(3)
    }
    fn evict(&mut self, writeback: &mut dyn FnMut(Handle, &[u8]) -> bool) -> Result<u64, PoolError> {
        let k = self.objects.iter().position(Option::is_some).ok_or(PoolError::Empty)?;
        let obj = self.objects[k].clone().unwrap();
        if !writeback(Handle::from_raw(k as u64), &obj) {
            return Err(PoolError::EvictRefused);
        }
        self.objects[k] = None;
        Ok(1)
    }
}

#[test]
fn a_failed_write_gives_the_object_back_and_counts_a_rejection() {
    let mut c = Compressor::new(LZ4).unwrap();
    let mut z = Zstore::new(Toy { fail_map: true, ..Toy::default() }, Policy::DEFAULT);
    let e = z.store(&mut c, perl_page());
    assert_eq!(e, Err(StoreError::Pool(PoolError::Memory(pagemem::MemError::NoSlot))));
    let s = z.stats();
    assert_eq!((s.reject_alloc_fail, s.stored_pages, s.compr_data_size), (1, 0, 0));
    assert_eq!(z.pool().objects, vec![None], "the object was given back");
    z.store(&mut c, perl_page()).unwrap_err();
    assert_eq!(z.stats().reject_alloc_fail, 2);
}

#[test]
fn evicting_a_whole_page_forgets_it_as_a_huge_page() {
    let mut c = Compressor::new(LZ4).unwrap();
    let mut z =
        Zstore::new(Toy::default(), Policy { threshold: Policy::DEFAULT.threshold, poor: PoorPage::StoreWhole });
    let poor = noise(7);
    let whole = z.store(&mut c, &poor).unwrap();
    let small = z.store(&mut c, perl_page()).unwrap();
    assert!(matches!(whole, Entry::Whole { .. }) && matches!(small, Entry::Compressed { .. }));
    let s = z.stats();
    assert_eq!((s.stored_pages, s.huge_pages), (2, 1));
    let mut seen = Vec::new();
    assert_eq!(
        z.evict(&mut |_, obj| {
            seen.push(obj.to_vec());
            true
        }),
        Ok(1)
    );
    assert!(seen == [poor.to_vec()], "the whole page's raw bytes were written back");
    let s = z.stats();
    assert_eq!((s.stored_pages, s.huge_pages, s.compr_data_size), (1, 0, small.stored_len() as u64));
    invariants(&s);
    assert_eq!(z.evict(&mut |_, _| true), Ok(1));
    let s = z.stats();
    assert_eq!((s.stored_pages, s.huge_pages, s.compr_data_size, s.orig_data_size), (0, 0, 0, 0));
}

#[test]
fn compact_reports_the_pools_pages_and_stats_carry_its_total() {
    let mut z = Zstore::new(Toy::default(), Policy::DEFAULT);
    assert_eq!(z.compact(), Ok(3));
    assert_eq!(z.compact(), Ok(3));
    assert_eq!(z.stats().pages_compacted, 6);
}

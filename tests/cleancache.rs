//! cleancache on real frames over the virtio file disk: a page cache of 128 pages over a file set about
//! 4× its size, read by file scans and random reads, once without and once with cleancache (zbud and
//! zsmalloc), every page compared with its checksum from the verified file table. cleancache must save
//! disk reads, an invalidated inode must never be served from tmem, gets must be exclusive, and under
//! frontswap pressure on one shared tmem the ephemeral pages are the ones dropped.
#![no_std]
#![no_main]

extern crate alloc;

use core::sync::atomic::{AtomicU64, Ordering};

use compress::Algorithm;
use frame::Owner;
use swap::CacheMode;
use swap::Pattern;
use tmem::Backend;
use zkernel::harness::testing::Case;
use zkernel::mm::frames;
use zkernel::println;
use zkernel::swap::{Device, MemMode, SwapConfig};
use zkernel::workload::files::{FileResult, FileRun, FileSpec, print_run, run};
use zkernel::workload::swap_run::{PageSource, RunResult, RunSpec, SwapRun};
use zkernel::zcache;

zkernel::test_kernel!(
    "cleancache",
    &[
        Case::returns("no_cleancache_reads_the_disk", no_cleancache_reads_the_disk),
        Case::returns("cleancache_zbud_saves_disk_reads", cleancache_zbud_saves_disk_reads),
        Case::returns("cleancache_zsmalloc_saves_disk_reads", cleancache_zsmalloc_saves_disk_reads),
        Case::returns("invalidated_inode_never_served_from_tmem", invalidated_inode_never_served_from_tmem),
        Case::returns("gets_are_exclusive", gets_are_exclusive),
        Case::returns("ephemeral_pages_dropped_for_frontswap", ephemeral_pages_dropped_for_frontswap),
        Case::returns("zbud_frame_eviction_under_a_frontswap_storm", zbud_frame_eviction_under_a_frontswap_storm),
        Case::returns("frames_come_back", frames_come_back),
    ]
);

/// Disk reads of the run without cleancache.
static READS_OFF: AtomicU64 = AtomicU64::new(0);

fn spec(cleancache: Option<Backend>) -> FileSpec {
    FileSpec {
        cache_pages: 128,
        set_factor: 4,
        cleancache,
        tmem_limit_pages: 4096,
        ops: 200,
        invalidate_every: 20,
        seed: 11,
        algorithm: Algorithm::Lz4,
        cpus: 1,
    }
}

/// Run and check what every run must satisfy.
fn checked(spec: &FileSpec) -> FileResult {
    let r = run(spec).unwrap_or_else(|e| panic!("file run failed: {e}"));
    print_run(&r);
    let c = &r.cache;
    assert_eq!(r.mismatches, 0, "a page read wrong bytes");
    assert_eq!(r.stale_hits, 0, "an invalidated page came from tmem");
    assert!(r.set_pages >= 3 * spec.cache_pages as u64, "the file set is {} pages", r.set_pages);
    assert_eq!(c.hits + c.misses, r.reads);
    assert_eq!(c.misses, c.cleancache_hits + r.disk_reads, "every miss is a cleancache hit or one disk read");
    assert!(c.evictions > 0);
    match (&r.cleancache, spec.cleancache) {
        (None, None) => assert_eq!(c.cleancache_hits, 0),
        (Some(cc), Some(_)) => {
            assert_eq!(cc.succ_gets, c.cleancache_hits);
            assert_eq!(cc.succ_gets + cc.failed_gets, c.misses);
            assert_eq!(cc.puts, c.evictions - c.evict_map_errors, "every evicted page was offered");
            let after = r.tmem_after.expect("tmem stats");
            assert_eq!((after.stored_pages, after.pool_pages), (0, 0), "umount empties the pool");
        }
        _ => panic!("cleancache stats do not match the configuration"),
    }
    assert_eq!(frames::owned_by(Owner::PAGE_CACHE), 0, "the page cache gave its frames back");
    assert_eq!(frames::owned_by(Owner::POOL), 0, "tmem gave its frames back");
    r
}

fn no_cleancache_reads_the_disk() {
    let r = checked(&spec(None));
    assert_eq!(r.disk_reads, r.cache.misses);
    println!("  without cleancache: {} disk reads for {} reads", r.disk_reads, r.reads);
    READS_OFF.store(r.disk_reads, Ordering::Relaxed);
}

fn with_cleancache(backend: Backend) {
    let off = READS_OFF.load(Ordering::Relaxed);
    assert!(off > 0, "the run without cleancache comes first");
    let r = checked(&spec(Some(backend)));
    println!("  with cleancache ({}): {} disk reads instead of {off}", backend.name(), r.disk_reads);
    assert!(r.cache.cleancache_hits > 0);
    assert!(r.disk_reads < off, "cleancache must save disk reads: {} vs {off}", r.disk_reads);
}

fn cleancache_zbud_saves_disk_reads() {
    with_cleancache(Backend::Zbud);
}

fn cleancache_zsmalloc_saves_disk_reads() {
    with_cleancache(Backend::Zsmalloc);
}

fn invalidated_inode_never_served_from_tmem() {
    // Invalidate a file before every operation, and look into tmem after each one.
    let mut sp = spec(Some(Backend::Zbud));
    sp.invalidate_every = 1;
    sp.ops = 120;
    let mut f = FileRun::start(&sp).unwrap_or_else(|e| panic!("{e}"));
    while f.step().unwrap_or_else(|e| panic!("{e}")) {
        assert!(!f.cleancache_holds_stale(), "tmem holds a page of an invalidated inode");
    }
    let r = f.finish();
    print_run(&r);
    assert_eq!(r.invalidations, 120);
    assert_eq!(r.stale_hits, 0);
    assert_eq!(r.mismatches, 0);
    assert!(r.cleancache.expect("stats").invalidated_inodes >= 120);
}

fn gets_are_exclusive() {
    zcache::install(64, Algorithm::Lz4).expect("zcache free");
    let fs = zcache::cleancache::init_fs(None).expect("init_fs");
    let mut page = [0u8; 4096];
    pagedata::ratio_page(5, 40, &mut page);
    let mut out = [0u8; 4096];
    let (put, first, gone, second) = zcache::with(|z| {
        z.with_compressor(|tmem, _, cc, c| {
            let put = cc.put_page(tmem, c, fs, 7, 3, &page);
            let first = cc.get_page(tmem, c, fs, 7, 3, &mut out);
            let gone = !cc.contains(tmem, fs, 7, 3);
            let second = cc.get_page(tmem, c, fs, 7, 3, &mut out);
            (put, first, gone, second)
        })
        .expect("a compressor")
    })
    .expect("installed");
    assert_eq!(put, Ok(()));
    assert_eq!(first, Ok(true), "the first get hits");
    assert_eq!(out, page, "and returns the page");
    assert!(gone, "a hit removes tmem's copy");
    assert_eq!(second, Ok(false), "so a second get misses");
    zcache::with(|z| z.cleancache.invalidate_fs(&mut z.tmem, fs)).expect("installed").expect("umount");
    let t = zcache::uninstall().expect("installed");
    assert_eq!((t.stored_pages, t.pool_pages), (0, 0));
}

/// The storm both eviction cases run: one tmem of 96 pool frames; the page cache's evictions fill it
/// with ephemeral pages, then the swap workload's stores need the room. Returns both runs' results with
/// zcache removed again.
fn storm() -> (RunResult, FileResult) {
    zcache::install(96, Algorithm::Lz4).expect("zcache free");
    let mut files = FileRun::start(&spec(Some(Backend::Zbud))).unwrap_or_else(|e| panic!("{e}"));
    for _ in 0..60 {
        files.step().unwrap_or_else(|e| panic!("{e}"));
    }
    let ephemeral_before = zcache::stats().expect("installed").ephemeral_pages;
    assert!(ephemeral_before > 0, "cleancache holds pages before swapping starts");
    let swap_spec = RunSpec {
        swap: SwapConfig {
            region_pages: 384,
            budget_pages: 128,
            mode: MemMode::Fixed,
            device: Device::Disk,
            cache: CacheMode::Keep,
            tmem: Some(Backend::Zsmalloc),
            tmem_limit_pages: 96,
            slots: 2048,
            algorithm: Algorithm::Lz4,
        },
        pattern: Pattern::Random,
        accesses: 1024,
        write_every: 4,
        seed: 3,
        source: PageSource::Fresh(30),
    };
    let mut swap = SwapRun::start(&swap_spec).unwrap_or_else(|e| panic!("{e}"));
    let mut more = true;
    while more {
        more = false;
        for _ in 0..8 {
            more |= swap.step();
        }
        more |= files.step().unwrap_or_else(|e| panic!("{e}"));
    }
    let s = swap.finish().unwrap_or_else(|e| panic!("{e}"));
    let f = files.finish();
    zcache::uninstall();
    (s, f)
}

fn ephemeral_pages_dropped_for_frontswap() {
    let (s, f) = storm();
    zkernel::workload::swap::print_run(&s);
    print_run(&f);
    let t = f.tmem.expect("tmem stats");
    println!(
        "  ephemeral pages dropped: {} in all, {} of them for frontswap's stores",
        t.ephemeral_drops, s.stats.cleancache_dropped
    );
    assert_eq!(s.mismatches, 0);
    assert_eq!(f.mismatches, 0);
    assert_eq!(f.stale_hits, 0);
    assert!(s.stats.frontswap_stores > 0);
    // Counted at each frontswap store (tmem's drop counter before and after it), so these drops were
    // made for swapped pages, not for cleancache's own puts.
    assert!(s.stats.cleancache_dropped > 0, "frontswap's stores must push cleancache pages out");
    assert!(t.ephemeral_drops >= s.stats.cleancache_dropped);
}

/// The same storm as `ephemeral_pages_dropped_for_frontswap`, once with tmem dropping the oldest
/// cleancache pages one by one (object order) and once evicting whole zbud frames oldest first (zcache's
/// `zbud_evict_pages`). Frame eviction frees one frame per step and drops the one or two pages it held:
/// pages dropped per frame freed lies in 1..=2. Object order drops pages until a frame happens to
/// empty. Both figures are printed side by side; no stale page may be served in either mode.
fn zbud_frame_eviction_under_a_frontswap_storm() {
    let mut figures = alloc::vec::Vec::new();
    for reclaim in [tmem::EphemeralReclaim::ObjectOrder, tmem::EphemeralReclaim::ZbudFrames] {
        zcache::set_tunables(zcache::Tunables { ephemeral_reclaim: reclaim, ..zcache::Tunables::ZCACHE });
        let (s, f) = storm();
        zcache::set_tunables(zcache::Tunables::ZCACHE);
        let t = f.tmem.expect("tmem stats");
        assert_eq!((s.mismatches, f.mismatches, f.stale_hits), (0, 0, 0), "{reclaim:?}: a stale or wrong page");
        assert!(t.ephemeral_drops > 0, "{reclaim:?}: the storm must drop cleancache pages");
        let per_frame = t.drops_per_frame_milli().expect("frames were freed");
        println!(
            "  {reclaim:?}: {} cleancache pages dropped, {} frames freed for them ({} by zbud eviction): \
             {}.{:03} pages dropped per frame freed",
            t.ephemeral_drops,
            t.ephemeral_frames_freed,
            t.zbud_frames_evicted,
            per_frame / 1000,
            per_frame % 1000
        );
        match reclaim {
            tmem::EphemeralReclaim::ZbudFrames => {
                assert!(t.zbud_frames_evicted > 0, "frame eviction must evict zbud frames");
                assert!((1000..=2000).contains(&per_frame), "one frame per eviction, one or two pages in it");
            }
            tmem::EphemeralReclaim::ObjectOrder => assert_eq!(t.zbud_frames_evicted, 0),
        }
        figures.push(per_frame);
    }
    println!(
        "  pages dropped per frame freed: object order {}.{:03}, zbud frames {}.{:03}",
        figures[0] / 1000,
        figures[0] % 1000,
        figures[1] / 1000,
        figures[1] % 1000
    );
}

fn frames_come_back() {
    assert_eq!(frames::owned_by(Owner::PAGE_CACHE), 0);
    assert_eq!(frames::owned_by(Owner::POOL), 0);
    assert_eq!(frames::owned_by(Owner::WORKLOAD), 0);
    assert!(!zcache::installed());
}

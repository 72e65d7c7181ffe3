//! Host tests: a full report round-trips; unknown and missing fields, a missing prefix and broken JSON
//! are typed errors; the lines the hand-built kernel printed for the pools, swap and files workloads
//! differ from the typed ones in exactly the keys the header's table lists; the header's worked example
//! is what `to_line` prints.

use super::*;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

// ---------------------------------------------------------------------------------------------------
// Building reports
// ---------------------------------------------------------------------------------------------------

/// A report with every field set to a value that is not its default (distinct numbers, `true`,
/// non-empty strings and lists, every `Option` present), so a round trip covers every field.
fn full() -> Report {
    let mut c = 0u64;
    let mut n = move || {
        c += 1;
        c
    };
    let mut tmem = || TmemReport {
        puts: n(),
        puts_replaced: n(),
        put_failures: n(),
        refused_full: n(),
        reject_compress_poor: n(),
        reject_alloc_fail: n(),
        pool_limit_hit: n(),
        oom_retries: n(),
        gets: n(),
        get_hits: n(),
        get_misses: n(),
        flush_pages: n(),
        flush_objects: n(),
        flush_object_pages: n(),
        created_pools: n(),
        destroyed_pools: n(),
        destroyed_pages: n(),
        ephemeral_drops: n(),
        written_back_pages: n(),
        corrupt: n(),
        pages_compacted: n(),
        free_errors: n(),
        leaked_pages: n(),
        no_such_pool: n(),
        stored_pages: n(),
        persistent_pages: n(),
        ephemeral_pages: n(),
        same_pages: n(),
        compr_data_size: n(),
        pool_pages: n(),
        limit_pages: n(),
        accept_pages: n(),
        full: true,
        pools: n(),
        ephemeral_frames_freed: n(),
        zbud_frames_evicted: n(),
        zbud_evict_failures: n(),
        compress_poor: n(),
        mean_compress_poor: n(),
        page_count_policy_refused: n(),
        refused_metadata: n(),
        limit_compactions: n(),
        compactions_triggered: n(),
        shrinker_pages_compacted: n(),
    };
    let swap_run = |pattern: &str, t: TmemReport| SwapRunReport {
        pattern: pattern.into(),
        tmem: "zsmalloc".into(),
        region_pages: 3072,
        budget_pages: 1024,
        accesses: 15360,
        mismatches: 1,
        dirty_zero_fills: 2,
        io: 940,
        ms: 4410,
        swap: SwapStatsReport {
            faults: 9417,
            zero_fills: 3072,
            swapins: 6345,
            swapouts: 7393,
            disk_reads: 358,
            disk_writes: 582,
            frontswap_loads: 5987,
            frontswap_stores: 6811,
            frontswap_refused: 582,
            written_back_pages: 3,
            out_of_swap: 4,
            alloc_failures: 5,
            resident: 1024,
            peak_resident: 1025,
            slots_used: 7,
            peak_slots: 2049,
            peak_tmem_pages: 300,
            cleancache_dropped: 6,
            clean_reclaims_saved: 31,
            swapins_kept: 32,
            dirtied_after_swapin: 33,
            over_budget_steps: 34,
            raced_faults: 37,
            pages_lost: 38,
            writeback_failures: 39,
            swapout_failures: 41,
            zram_oom_steps: 42,
            peak_pool_pages: 35,
            peak_mem_pages: 36,
            zram_writes: 37,
            zram_reads: 38,
            zram_refused: 39,
        },
        tmem_stats: Some(t),
        tmem_index_bytes: 40,
        zram_table_bytes: 41,
        series: vec![SeriesPoint {
            access: 64,
            resident: 60,
            pool_pages: 3,
            stored_pages: 5,
            compr_data_size: 7000,
            disk_reads: 1,
            disk_writes: 2,
            frag_free_bytes: 900,
        }],
    };
    let file_run = |t: TmemReport| FileRunReport {
        cleancache: "zbud".into(),
        files: 23,
        set_pages: 712,
        cache_pages: 192,
        reads: 6080,
        hits: 3902,
        misses: 2178,
        cleancache_hits: 1587,
        disk_reads: 591,
        evictions: 1986,
        invalidated_files: 12,
        mismatches: 1,
        stale_hits: 2,
        disk_errors: 3,
        evict_map_errors: 4,
        invalidations: 97,
        alloc_retries: 5,
        uncached_reads: 6,
        free_errors: 7,
        cached_pages: 191,
        capacity: 192,
        ms: 2210,
        cpus: 2,
        cleancache_stats: Some(CleancacheReport {
            succ_gets: 1587,
            failed_gets: 591,
            puts: 1986,
            invalidates: 8,
            failed_puts: 9,
            corrupt_gets: 10,
            invalidated_pages: 11,
            invalidated_inodes: 12,
            invalidated_fs_pages: 13,
            invalidated_inode_pages: 14,
            inited_fs: 1,
            invalidated_fs: 1,
        }),
        tmem_stats: Some(t),
    };
    let (t1, t2, t3, t4) = (tmem(), tmem(), tmem(), tmem());
    Report {
        firmware: "UEFI".into(),
        cpus: 4,
        options: "workload=all compressor=deflate deflate_level=3".into(),
        memory: MemoryReport {
            regions: 7,
            usable_regions: 3,
            usable_bytes: 266584064,
            usable_frames: 65084,
            bootloader_bytes: 1048576,
            firmware_bytes: 4295491584,
            usable_end: 268304384,
            unordered: true,
        },
        frames: FramesReport {
            managed: 64870,
            free: 40632,
            used: 23908,
            per_cpu: 330,
            free_per_order: vec![2, 1, 1, 0, 1, 1, 0, 1, 0, 1, 39],
            allocs: 31250,
            frees: 7342,
            alloc_failures: 9,
        },
        heap: HeapReport { size: 16777216, used: 2359296, mapped: 4194304 },
        kmap: KmapReport { maps: 48211, unmaps: 48210, invlpg: 48209, max_depth: 2 },
        paging: PagingReport { maps: 1310, unmaps: 12, invlpg: 11, tables: 9 },
        breakpoints: 1,
        cpus_up: 4,
        tlb_shootdowns: 17,
        locks: vec![LockReport { name: "zcache".into(), acquisitions: 600_000, contentions: 200 }],
        pools: vec![PoolReport { huge_pages: 3, reject_alloc_fail: 1, mismatches: 2, ..example_pool() }],
        pool_table: vec![PoolTableRow { refused: 3, reserve_pages: 31, ..table_row("p75", "xcfmalloc", 7693) }],
        swap: Some(SwapReport {
            runs: vec![swap_run("zipf", t1)],
            io_avoided: vec![IoAvoidedReport {
                pattern: "zipf".into(),
                tmem: "zsmalloc".into(),
                io_without: 13738,
                io_with: 940,
                percent: 93.2,
            }],
            smp_runs: vec![SmpSwapRunReport {
                config: "tmem-zsmalloc".into(),
                pattern: "zipf".into(),
                cpus: 4,
                sharing: "shared".into(),
                accesses: 61440,
                mismatches: 1,
                io: 5200,
                ms: 41000,
                swap: swap_run("zipf", tmem()).swap,
            }],
        }),
        files: Some(FilesReport {
            runs: vec![file_run(t2)],
            disk_reads_without: 2178,
            disk_reads_with: 591,
            percent_avoided: 72.9,
        }),
        all: Some(AllReport {
            swap: swap_run("random", t3),
            files: file_run(t4),
            ephemeral_drops: 40,
            dropped_for_frontswap: 31,
        }),
        sweep: Some(SweepReport {
            region_pages: 3072,
            accesses: 15360,
            pages: "ramdisk".into(),
            points: vec![
                sweep_point("disk", 614, 20, true),
                SweepPoint { mismatches: 9, ..sweep_point("zram-zsmalloc", 614, 20, true) },
            ],
        }),
        soak: Some(SoakReport {
            seconds: 60,
            cpus: 4,
            rounds: 21,
            operations: 98_000,
            pages_verified: 61_000,
            device_faults: 300,
            frame_faults: 700,
            meta_faults: 70,
            pages_lost: 12,
            lost_expected: 12,
            mismatches: 1,
        }),
        failures: vec!["pools: zbud: 1 page did not read back".into(), "files: 2 stale hits".into()],
    }
}

/// A row of the allocator table: `stored` objects of 3091 B in `pool_pages` frames, no reserve, none refused.
fn table_row(workload: &str, pool: &str, pool_pages: u64) -> PoolTableRow {
    PoolTableRow {
        workload: workload.into(),
        pool: pool.into(),
        stored: 10_000,
        refused: 0,
        pool_pages,
        reserve_pages: 0,
        object_bytes: 30_910_000,
        metadata_bytes: 5_401_216,
    }
}

/// One sweep point with every counter set and distinct (`io` is the sum of its reads and writes).
fn sweep_point(config: &str, mem_pages: u64, percent: u64, fits: bool) -> SweepPoint {
    SweepPoint {
        config: config.into(),
        mem_pages,
        percent,
        io: 13738,
        disk_reads: 6345,
        disk_writes: 7393,
        fits,
        mismatches: 1,
        peak_pool_pages: 12,
        peak_resident: 602,
        clean_reclaims_saved: 211,
        ms: 5120,
    }
}

/// The zsmalloc pool of the header's worked example.
fn example_pool() -> PoolReport {
    PoolReport {
        pool: "zsmalloc".into(),
        compressor: "lz4".into(),
        pages: 2048,
        stored_pages: 1980,
        same_pages: 205,
        huge_pages: 0,
        reject_compress_poor: 68,
        reject_alloc_fail: 0,
        orig_data_size: 8110080,
        compr_data_size: 3514368,
        mem_used_total: 4096000,
        sparse_pages: 620,
        pages_compacted: 250,
        store_ns: 23817,
        load_ns: 9120,
        mismatches: 0,
    }
}

/// The boot part every old line shares, as a typed report (new keys at their defaults).
fn boot_part() -> Report {
    Report {
        firmware: "BIOS".into(),
        cpus: 4,
        options: String::new(),
        memory: MemoryReport {
            regions: 7,
            usable_regions: 3,
            usable_bytes: 266584064,
            usable_frames: 65084,
            bootloader_bytes: 1048576,
            firmware_bytes: 4295491584,
            usable_end: 268304384,
            unordered: false,
        },
        frames: FramesReport {
            managed: 64870,
            free: 40632,
            used: 23908,
            per_cpu: 330,
            free_per_order: vec![2, 1, 1, 0, 1, 1, 0, 1, 0, 1, 39],
            allocs: 31250,
            frees: 7342,
            alloc_failures: 0,
        },
        heap: HeapReport { size: 16777216, used: 2359296, mapped: 4194304 },
        kmap: KmapReport { maps: 48211, unmaps: 48211, invlpg: 48211, max_depth: 2 },
        paging: PagingReport { maps: 1310, unmaps: 12, invlpg: 12, tables: 9 },
        breakpoints: 0,
        ..Report::default()
    }
}

// ---------------------------------------------------------------------------------------------------
// Key paths
// ---------------------------------------------------------------------------------------------------

/// Every leaf of `v` with its key path: `a.b` for members, `a[3]` for the elements of a list of
/// objects. Scalars, lists of scalars, empty lists and `null` are leaves.
fn flatten(v: &Value) -> BTreeMap<String, Value> {
    fn walk(v: &Value, path: String, out: &mut BTreeMap<String, Value>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                    walk(x, p, out);
                }
            }
            Value::Array(a) if !a.is_empty() && a.iter().all(Value::is_object) => {
                for (i, x) in a.iter().enumerate() {
                    walk(x, format!("{path}[{i}]"), out);
                }
            }
            _ => {
                assert!(out.insert(path, v.clone()).is_none());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(v, String::new(), &mut out);
    out
}

/// `runs[3].x` → `runs[].x`, and the indices taken out, in order.
fn normalize(path: &str) -> (String, Vec<String>) {
    let (mut out, mut indices, mut rest) = (String::new(), Vec::new(), path);
    while let Some(open) = rest.find('[') {
        let close = open + rest[open..].find(']').expect("a `[` is closed");
        out.push_str(&rest[..=open]);
        out.push(']');
        indices.push(rest[open + 1..close].to_string());
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    (out, indices)
}

/// Put `indices` back into the `[]`s of `pattern`, in order.
fn with_indices(pattern: &str, indices: &[String]) -> String {
    let mut parts = pattern.split("[]");
    let mut out = parts.next().unwrap_or_default().to_string();
    for (part, i) in parts.zip(indices) {
        out.push_str(&format!("[{i}]{part}"));
    }
    assert_eq!(pattern.matches("[]").count(), indices.len(), "{pattern}");
    out
}

/// The header's rename table: (old key, new key or `None` when removed).
fn header_renames() -> Vec<(String, Option<String>)> {
    let src = include_str!("lib.rs");
    let start = src.find("//! | old key | new key | why |").expect("the rename table is in the header");
    let rows: Vec<_> = src[start..].lines().skip(2).take_while(|l| l.starts_with("//! | ")).collect();
    assert!(!rows.is_empty());
    rows.iter()
        .map(|row| {
            let cells: Vec<&str> = row.trim_start_matches("//! |").split(" | ").map(str::trim).collect();
            let key = |cell: &str| cell.strip_prefix('`').and_then(|c| c.strip_suffix('`')).map(String::from);
            let old = key(cells[0]).unwrap_or_else(|| panic!("old key of {row:?}"));
            let new = if cells[1] == "(removed)" { None } else { Some(key(cells[1]).expect("a new key")) };
            (old, new)
        })
        .collect()
}

/// What changed between the line the old kernel printed and the typed report that carries the same
/// figures: checks that every old key kept its name and value unless the header's table renames or
/// removes it (then the new key has the old value, or is absent), and returns the table rows used and
/// the keys that are new (normalized, sorted).
fn changes(old_line: &str, typed: &Report) -> (BTreeSet<String>, Vec<String>) {
    let old: Value = serde_json::from_str(old_line.strip_prefix(PREFIX).unwrap()).unwrap();
    let old = flatten(&old);
    let new = flatten(&serde_json::to_value(typed).unwrap());
    let renames = header_renames();
    let (mut used, mut reached) = (BTreeSet::new(), BTreeSet::new());
    for (path, value) in &old {
        let (pattern, indices) = normalize(path);
        match renames.iter().find(|(from, _)| *from == pattern) {
            Some((from, None)) => {
                assert!(!new.contains_key(path), "{path} is in the table as removed");
                used.insert(from.clone());
            }
            Some((from, Some(to))) => {
                let to = with_indices(to, &indices);
                assert_eq!(new.get(&to), Some(value), "{path} → {to}");
                assert!(!new.contains_key(path), "{path} was renamed but is still there");
                used.insert(from.clone());
                reached.insert(to);
            }
            None => {
                assert_eq!(new.get(path), Some(value), "{path} kept its name, so it must keep its value");
                reached.insert(path.clone());
            }
        }
    }
    let added: BTreeSet<String> = new.keys().filter(|k| !reached.contains(*k)).map(|k| normalize(k).0).collect();
    (used, added.into_iter().collect())
}

fn prefixed(prefix: &str, names: &[&str]) -> Vec<String> {
    names.iter().map(|n| format!("{prefix}{n}")).collect()
}

/// Keys new at the top and in `memory`, for every workload.
const NEW_BOOT_KEYS: [&str; 4] = ["failures", "memory.unordered", "memory.usable_end", "options"];

/// Every `TmemReport` field, in `tmem::TmemStats` order.
const TMEM_FIELDS: [&str; 44] = [
    "puts",
    "puts_replaced",
    "put_failures",
    "refused_full",
    "reject_compress_poor",
    "reject_alloc_fail",
    "pool_limit_hit",
    "oom_retries",
    "gets",
    "get_hits",
    "get_misses",
    "flush_pages",
    "flush_objects",
    "flush_object_pages",
    "created_pools",
    "destroyed_pools",
    "destroyed_pages",
    "ephemeral_drops",
    "written_back_pages",
    "corrupt",
    "pages_compacted",
    "free_errors",
    "leaked_pages",
    "no_such_pool",
    "stored_pages",
    "persistent_pages",
    "ephemeral_pages",
    "same_pages",
    "compr_data_size",
    "pool_pages",
    "limit_pages",
    "accept_pages",
    "full",
    "pools",
    "ephemeral_frames_freed",
    "zbud_frames_evicted",
    "zbud_evict_failures",
    "compress_poor",
    "mean_compress_poor",
    "page_count_policy_refused",
    "refused_metadata",
    "limit_compactions",
    "compactions_triggered",
    "shrinker_pages_compacted",
];

/// `SwapStatsReport` fields added with the equal-memory sweep (the swap cache, N, zram).
const NEW_SWAP_STATS: [&str; 14] = [
    "raced_faults",
    "pages_lost",
    "writeback_failures",
    "swapout_failures",
    "zram_oom_steps",
    "clean_reclaims_saved",
    "swapins_kept",
    "dirtied_after_swapin",
    "over_budget_steps",
    "peak_pool_pages",
    "peak_mem_pages",
    "zram_writes",
    "zram_reads",
    "zram_refused",
];

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn json_error(line: &str) -> (JsonCategory, String) {
    match from_line(line) {
        Err(Error::Json { category, message, .. }) => (category, message),
        other => panic!("expected a JSON error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------------
// The old kernel's lines, as its `format!` strings print them
// ---------------------------------------------------------------------------------------------------

/// `init::BootFacts::stats_json` up to and including `"breakpoints":0` (`free_per_order` is `{:?}` of
/// an array, hence the spaces).
const OLD_BOOT: &str = concat!(
    r#"{"firmware":"BIOS","cpus":4,"memory":{"regions":7,"usable_regions":3,"usable_bytes":266584064,"#,
    r#""usable_frames":65084,"bootloader_bytes":1048576,"firmware_bytes":4295491584},"#,
    r#""frames":{"managed":64870,"free":40632,"used":23908,"per_cpu":330,"#,
    r#""free_per_order":[2, 1, 1, 0, 1, 1, 0, 1, 0, 1, 39],"allocs":31250,"frees":7342,"alloc_failures":0},"#,
    r#""heap":{"size":16777216,"used":2359296,"mapped":4194304},"#,
    r#""kmap":{"maps":48211,"unmaps":48211,"invlpg":48211,"max_depth":2},"#,
    r#""paging":{"maps":1310,"unmaps":12,"invlpg":12,"tables":9},"breakpoints":0"#,
);

/// `workload=pools`: `"pools":` and `pooldemo::run`'s list, zsmalloc then zbud.
const OLD_POOLS: &str = concat!(
    r#","pools":[{"pool":"zsmalloc","compressor":"lz4","pages":2048,"stored_pages":1980,"same_pages":205,"#,
    r#""huge_pages":0,"reject_compress_poor":68,"reject_alloc_fail":0,"orig_data_size":8110080,"#,
    r#""compr_data_size":3514368,"mem_used_total":4096000,"pages_after_freeing_two_thirds":620,"#,
    r#""pages_compacted":250,"store_ns":23817,"load_ns":9120,"mismatches":0},"#,
    r#"{"pool":"zbud","compressor":"lz4","pages":2048,"stored_pages":1980,"same_pages":205,"#,
    r#""huge_pages":0,"reject_compress_poor":68,"reject_alloc_fail":0,"orig_data_size":8110080,"#,
    r#""compr_data_size":3514368,"mem_used_total":4358144,"pages_after_freeing_two_thirds":712,"#,
    r#""pages_compacted":0,"store_ns":15290,"load_ns":8034,"mismatches":0}]}"#,
);

/// `workload=swap` with the defaults (zipf; tmem off, then zsmalloc): `swapdemo::run_demo`.
const OLD_SWAP: &str = concat!(
    r#","swap":{"runs":[{"pattern":"zipf","tmem":"off","region_pages":3072,"budget_pages":1024,"#,
    r#""accesses":15360,"mismatches":0,"io":13738,"ms":5120,"swap":{"faults":9417,"zero_fills":3072,"#,
    r#""swapins":6345,"swapouts":7393,"disk_reads":6345,"disk_writes":7393,"frontswap_loads":0,"#,
    r#""frontswap_stores":0,"frontswap_refused":0,"written_back_pages":0,"out_of_swap":0,"alloc_failures":0,"#,
    r#""cleancache_dropped":0,"peak_resident":1024,"peak_slots":2049,"peak_tmem_pages":0}},"#,
    r#"{"pattern":"zipf","tmem":"zsmalloc","region_pages":3072,"budget_pages":1024,"#,
    r#""accesses":15360,"mismatches":0,"io":940,"ms":4410,"swap":{"faults":9417,"zero_fills":3072,"#,
    r#""swapins":6345,"swapouts":7393,"disk_reads":358,"disk_writes":582,"frontswap_loads":5987,"#,
    r#""frontswap_stores":6811,"frontswap_refused":582,"written_back_pages":0,"out_of_swap":0,"#,
    r#""alloc_failures":0,"cleancache_dropped":0,"peak_resident":1024,"peak_slots":2049,"peak_tmem_pages":300},"#,
    r#""tmem_stats":{"stored_pages":824,"same_pages":85,"pool_pages":300,"limit_pages":12974,"#,
    r#""orig_data_size":3375104,"compr_data_size":1148576,"ephemeral_drops":0,"refused_full":0,"#,
    r#""written_back_pages":0,"puts":7393,"gets":5987}}],"#,
    r#""io_avoided":[{"pattern":"zipf","tmem":"zsmalloc","io_without":13738,"io_with":940,"percent":93.2}]}}"#,
);

/// `workload=files` with the defaults (off, then zbud): `filecache::run_demo`.
const OLD_FILES: &str = concat!(
    r#","files":{"runs":[{"cleancache":"off","files":23,"set_pages":712,"cache_pages":192,"reads":6080,"#,
    r#""hits":3902,"misses":2178,"cleancache_hits":0,"disk_reads":2178,"evictions":1986,"#,
    r#""invalidated_files":12,"mismatches":0,"stale_hits":0},"#,
    r#"{"cleancache":"zbud","files":23,"set_pages":712,"cache_pages":192,"reads":6080,"#,
    r#""hits":3902,"misses":2178,"cleancache_hits":1587,"disk_reads":591,"evictions":1986,"#,
    r#""invalidated_files":12,"mismatches":0,"stale_hits":0,"#,
    r#""cleancache_stats":{"puts":1986,"failed_puts":0,"succ_gets":1587,"failed_gets":591,"#,
    r#""invalidates":0,"invalidated_inodes":12},"#,
    r#""tmem":{"ephemeral_pages":341,"pool_pages":190,"ephemeral_drops":0}}],"#,
    r#""disk_reads_without":2178,"disk_reads_with":591,"percent_avoided":72.9}}"#,
);

fn old_line(workload: &str) -> String {
    format!("{PREFIX}{OLD_BOOT}{workload}")
}

/// The old kernel's figures for `workload=pools` in the typed report.
fn typed_pools() -> Report {
    let zbud = PoolReport {
        pool: "zbud".into(),
        mem_used_total: 4358144,
        sparse_pages: 712,
        pages_compacted: 0,
        store_ns: 15290,
        load_ns: 8034,
        ..example_pool()
    };
    Report { pools: vec![example_pool(), zbud], ..boot_part() }
}

/// The old kernel's figures for `workload=swap` in the typed report.
fn typed_swap() -> Report {
    let off = SwapRunReport {
        pattern: "zipf".into(),
        tmem: "off".into(),
        region_pages: 3072,
        budget_pages: 1024,
        accesses: 15360,
        mismatches: 0,
        dirty_zero_fills: 0,
        io: 13738,
        ms: 5120,
        swap: SwapStatsReport {
            faults: 9417,
            zero_fills: 3072,
            swapins: 6345,
            swapouts: 7393,
            disk_reads: 6345,
            disk_writes: 7393,
            peak_resident: 1024,
            peak_slots: 2049,
            ..SwapStatsReport::default()
        },
        tmem_stats: None,
        tmem_index_bytes: 0,
        zram_table_bytes: 0,
        series: vec![],
    };
    let on = SwapRunReport {
        tmem: "zsmalloc".into(),
        io: 940,
        ms: 4410,
        swap: SwapStatsReport {
            disk_reads: 358,
            disk_writes: 582,
            frontswap_loads: 5987,
            frontswap_stores: 6811,
            frontswap_refused: 582,
            peak_tmem_pages: 300,
            ..off.swap
        },
        tmem_stats: Some(TmemReport {
            stored_pages: 824,
            same_pages: 85,
            pool_pages: 300,
            limit_pages: 12974,
            compr_data_size: 1148576,
            puts: 7393,
            gets: 5987,
            ..TmemReport::default()
        }),
        ..off.clone()
    };
    let avoided = IoAvoidedReport {
        pattern: "zipf".into(),
        tmem: "zsmalloc".into(),
        io_without: 13738,
        io_with: 940,
        percent: percent_avoided(13738, 940),
    };
    Report {
        swap: Some(SwapReport { runs: vec![off, on], io_avoided: vec![avoided], smp_runs: vec![] }),
        ..boot_part()
    }
}

/// The old kernel's figures for `workload=files` in the typed report.
fn typed_files() -> Report {
    let off = FileRunReport {
        cleancache: "off".into(),
        files: 23,
        set_pages: 712,
        cache_pages: 192,
        reads: 6080,
        hits: 3902,
        misses: 2178,
        cleancache_hits: 0,
        disk_reads: 2178,
        evictions: 1986,
        invalidated_files: 12,
        ..FileRunReport::default()
    };
    let on = FileRunReport {
        cleancache: "zbud".into(),
        cleancache_hits: 1587,
        disk_reads: 591,
        cleancache_stats: Some(CleancacheReport {
            puts: 1986,
            succ_gets: 1587,
            failed_gets: 591,
            invalidated_inodes: 12,
            ..CleancacheReport::default()
        }),
        tmem_stats: Some(TmemReport { ephemeral_pages: 341, pool_pages: 190, ..TmemReport::default() }),
        ..off.clone()
    };
    let files = FilesReport {
        runs: vec![off, on],
        disk_reads_without: 2178,
        disk_reads_with: 591,
        percent_avoided: percent_avoided(2178, 591),
    };
    Report { files: Some(files), ..boot_part() }
}

// ---------------------------------------------------------------------------------------------------
// Round trip and the line format
// ---------------------------------------------------------------------------------------------------

#[test]
fn a_full_report_round_trips() {
    let report = full();
    let line = to_line(&report);
    assert!(line.starts_with("@@stats {\"firmware\":\"UEFI\",\"cpus\":4,"));
    assert!(!line.contains('\n'));
    // Every leaf is set: no field round-trips only because it is the default.
    let leaves = flatten(&serde_json::to_value(&report).unwrap());
    let defaults: Vec<_> = leaves
        .iter()
        .filter(|(_, v)| matches!(v, Value::Null | Value::Bool(false)) || v.as_u64() == Some(0) || *v == "")
        .map(|(k, _)| k)
        .collect();
    assert_eq!(defaults, Vec::<&String>::new());
    // 37 boot leaves (7 top-level + memory 8 + frames 8 + heap 3 + kmap 4 + paging 4 + one lock 3), a pool 16, a pool
    // table row 8, a swap run 95 (11 + swap 32 + tmem 44 + one series point 8), an I/O-avoided entry 5, a file
    // run 79 (23 + cleancache 12 + tmem 44), files 3 more, all 2 more, a sweep 3 and 12 per point (two): 37 + 16
    // + 8 + (95 + 5 + 40) + (79 + 3) + (95 + 79 + 2) + (3 + 2 × 12) + soak 11 = 497, a multi-CPU swap run 40 (8 +
    // swap 32).
    assert_eq!(leaves.len(), 497);
    assert_eq!(from_line(&line), Ok(report));
}

#[test]
fn pool_table_rows_round_trip_and_are_absent_when_empty() {
    let rows = vec![
        table_row("p75", "zbud", 10_000),
        PoolTableRow { reserve_pages: 31, ..table_row("p75", "xcfmalloc", 7693) },
        PoolTableRow { stored: 9_724, refused: 276, ..table_row("uniform", "zbud", 9_724) },
    ];
    let report = Report { pool_table: rows.clone(), ..typed_pools() };
    let line = to_line(&report);
    assert!(line.contains(
        r#""pool_table":[{"workload":"p75","pool":"zbud","stored":10000,"refused":0,"pool_pages":10000,"reserve_pages":0,"object_bytes":30910000,"metadata_bytes":5401216},"#
    ));
    let back = from_line(&line).unwrap();
    assert_eq!(back.pool_table, rows);
    assert_eq!(back, report);
    // Without rows the member is left out, and a line without it reads back with none.
    let plain = to_line(&typed_pools());
    assert!(!plain.contains("pool_table"));
    assert_eq!(from_line(&plain).unwrap().pool_table, Vec::new());
    // A row keeps deny_unknown_fields and needs every field.
    let extra = line.replacen(r#""metadata_bytes":5401216}"#, r#""metadata_bytes":5401216,"ns":3}"#, 1);
    let e = from_line(&extra).unwrap_err().to_string();
    assert!(e.contains("unknown field `ns`"), "{e}");
    let short = line.replacen(r#","object_bytes":30910000"#, "", 1);
    let e = from_line(&short).unwrap_err().to_string();
    assert!(e.contains("missing field `object_bytes`"), "{e}");
}

#[test]
fn a_serial_line_end_is_accepted() {
    let report = typed_pools();
    assert_eq!(from_line(&format!("{}\r\n", to_line(&report))), Ok(report));
}

#[test]
fn absent_members_are_left_out_and_read_back_absent() {
    let report = boot_part();
    let line = to_line(&report);
    for key in ["\"pools\"", "\"swap\"", "\"files\"", "\"all\"", "\"sweep\"", "\"tmem_stats\""] {
        assert!(!line.contains(key), "{key} in {line}");
    }
    assert!(
        line.ends_with(r#""paging":{"maps":1310,"unmaps":12,"invlpg":12,"tables":9},"breakpoints":0,"failures":[]}"#)
    );
    assert_eq!(from_line(&line), Ok(report.clone()));
    // The old kernel printed `"all":null` when the run failed: that is `None` too.
    let with_null = line.replace(r#""breakpoints":0,"#, r#""breakpoints":0,"all":null,"#);
    assert_eq!(from_line(&with_null), Ok(report));
}

#[test]
fn a_sweep_report_round_trips_with_its_keys() {
    let sweep = SweepReport {
        region_pages: 3072,
        accesses: 15360,
        pages: "perl-heap".into(),
        points: vec![
            SweepPoint { io: 0, disk_reads: 0, disk_writes: 0, ..sweep_point("disk", 3072, 100, true) },
            sweep_point("zram-zsmalloc", 614, 20, false),
        ],
    };
    let report = Report { sweep: Some(sweep), ..boot_part() };
    let line = to_line(&report);
    let expected = concat!(
        r#""breakpoints":0,"sweep":{"region_pages":3072,"accesses":15360,"pages":"perl-heap","points":["#,
        r#"{"config":"disk","mem_pages":3072,"percent":100,"io":0,"disk_reads":0,"disk_writes":0,"fits":true,"#,
        r#""mismatches":1,"peak_pool_pages":12,"peak_resident":602,"clean_reclaims_saved":211,"ms":5120},"#,
        r#"{"config":"zram-zsmalloc","mem_pages":614,"percent":20,"io":13738,"disk_reads":6345,"#,
        r#""disk_writes":7393,"fits":false,"mismatches":1,"peak_pool_pages":12,"peak_resident":602,"#,
        r#""clean_reclaims_saved":211,"ms":5120}]},"failures":[]}"#,
    );
    assert!(line.ends_with(expected), "{line}");
    assert_eq!(from_line(&line), Ok(report.clone()));
    // A point without `fits` is refused: every field of a point is required.
    let bad = line.replacen(r#""fits":false,"#, "", 1);
    let (category, message) = json_error(&bad);
    assert_eq!(category, JsonCategory::Data);
    assert!(message.starts_with("missing field `fits`"), "{message}");
    // `"sweep":null` reads back as no sweep.
    let with_null = line.replacen(r#""sweep":{"#, r#""sweep":null,"x":{"#, 1);
    assert!(json_error(&with_null).1.starts_with("unknown field `x`"));
    let null_line = to_line(&boot_part()).replace(r#""breakpoints":0,"#, r#""breakpoints":0,"sweep":null,"#);
    assert_eq!(from_line(&null_line), Ok(boot_part()));
}

#[test]
fn passed_means_no_failures() {
    assert!(boot_part().passed());
    assert!(!full().passed());
}

// ---------------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------------

#[test]
fn an_unknown_field_is_refused_at_every_level() {
    let line = to_line(&full());
    let cases = [
        (r#"{"firmware":"#, r#"{"extra":1,"firmware":"#, "unknown field `extra`, expected one of `firmware`, "),
        (r#""managed":"#, r#""extra":1,"managed":"#, "unknown field `extra`, expected one of `managed`, "),
        (r#"{"pool":"#, r#"{"extra":1,"pool":"#, "unknown field `extra`, expected one of `pool`, "),
        (r#"{"puts":"#, r#"{"extra":1,"puts":"#, "unknown field `extra`, expected one of `puts`, "),
        (r#""succ_gets":"#, r#""extra":1,"succ_gets":"#, "unknown field `extra`, expected one of `succ_gets`, "),
        (r#""io_without":"#, r#""extra":1,"io_without":"#, "unknown field `extra`, expected one of `pattern`, "),
        (
            r#""ephemeral_drops":40"#,
            r#""extra":1,"ephemeral_drops":40"#,
            "unknown field `extra`, expected one of `swap`, ",
        ),
        (r#""points":"#, r#""extra":1,"points":"#, "unknown field `extra`, expected one of `region_pages`, "),
        (r#"{"config":"#, r#"{"extra":1,"config":"#, "unknown field `extra`, expected one of `config`, "),
    ];
    for (at, with, expected) in cases {
        assert!(line.contains(at), "{at}");
        let bad = line.replacen(at, with, 1);
        let (category, message) = json_error(&bad);
        assert_eq!(category, JsonCategory::Data, "{message}");
        assert!(message.starts_with(expected), "{message}");
    }
}

#[test]
fn a_missing_field_is_refused() {
    let line = to_line(&boot_part());
    let bad = line.replace(r#","failures":[]"#, "");
    // serde_json reports a missing field at the object's closing brace: the last column.
    let column = bad.len() - PREFIX.len();
    assert_eq!(json_error(&bad), (JsonCategory::Data, format!("missing field `failures` at line 1 column {column}")));
    let bad = line.replace(r#""tables":9"#, r#""tablez":9"#);
    let (category, message) = json_error(&bad);
    assert_eq!(category, JsonCategory::Data);
    assert!(message.starts_with("unknown field `tablez`, expected one of `maps`, `unmaps`, `invlpg`, `tables`"));
}

#[test]
fn a_wrong_type_is_refused() {
    let bad = to_line(&boot_part()).replace(r#""cpus":4"#, r#""cpus":"4""#);
    let (category, message) = json_error(&bad);
    assert_eq!(category, JsonCategory::Data);
    assert!(message.starts_with("invalid type: string \"4\", expected u64"), "{message}");
    let bad = to_line(&boot_part()).replace(r#""cpus":4"#, r#""cpus":-4"#);
    assert!(json_error(&bad).1.starts_with("invalid value: integer `-4`, expected u64"));
}

#[test]
fn a_line_without_the_prefix_is_refused() {
    let line = to_line(&boot_part());
    let json = line.strip_prefix(PREFIX).unwrap();
    assert_eq!(from_line(json), Err(Error::MissingPrefix));
    assert_eq!(from_line(&format!("@@stats{json}")), Err(Error::MissingPrefix));
    assert_eq!(from_line(&format!(" {line}")), Err(Error::MissingPrefix));
    assert_eq!(from_line(""), Err(Error::MissingPrefix));
    assert_eq!(Error::MissingPrefix.to_string(), "not a stats line: it does not start with \"@@stats \"");
}

#[test]
fn broken_json_is_a_typed_error() {
    assert_eq!(
        from_line("@@stats {\"firmware\":"),
        Err(Error::Json {
            category: JsonCategory::Eof,
            line: 1,
            column: 12,
            message: "EOF while parsing a value at line 1 column 12".into()
        })
    );
    assert_eq!(json_error("@@stats {]").0, JsonCategory::Syntax);
    assert_eq!(json_error("@@stats ").0, JsonCategory::Eof);
    let (category, message) = json_error(&format!("{} x", to_line(&boot_part())));
    assert_eq!((category, message.starts_with("trailing characters")), (JsonCategory::Syntax, true));
    let e = from_line("@@stats {]").unwrap_err();
    assert_eq!(e.to_string(), "stats line: key must be a string at line 1 column 2");
}

// ---------------------------------------------------------------------------------------------------
// percent_avoided
// ---------------------------------------------------------------------------------------------------

#[test]
fn percent_avoided_rounds_to_a_tenth() {
    let cases: [(u64, u64, f64); 12] = [
        (13738, 940, 93.2),
        (2178, 591, 72.9),
        (3, 2, 33.3),
        (3, 1, 66.7),
        (2, 1, 50.0),
        (8, 7, 12.5),
        (16, 15, 6.3),  // 6.25: a half goes away from zero
        (16, 17, -6.3), // -6.25
        (100, 150, -50.0),
        (7, 7, 0.0),
        (7, 0, 100.0),
        (0, 5, 0.0), // nothing to avoid
    ];
    for (without, with, expected) in cases {
        assert_eq!(percent_avoided(without, with), expected, "{without} {with}");
    }
    assert_eq!(percent_avoided(u64::MAX, 0), 100.0);
    // No overflow at the extremes: 1000 × u64::MAX is computed in i128.
    let most_negative = percent_avoided(1, u64::MAX);
    assert!(most_negative.is_finite() && most_negative < -1.8e21, "{most_negative}");
    // It prints short and reads back equal.
    assert_eq!(serde_json::to_string(&percent_avoided(3, 1)).unwrap(), "66.7");
    assert_eq!(serde_json::from_str::<f64>("66.7").unwrap(), percent_avoided(3, 1));
}

// ---------------------------------------------------------------------------------------------------
// The old kernel's lines
// ---------------------------------------------------------------------------------------------------

#[test]
fn pools_line_of_the_old_kernel() {
    let old = old_line(OLD_POOLS);
    // The old line no longer reads: the first thing missing is a new key of `memory`.
    assert!(json_error(&old).1.starts_with("missing field `usable_end`"));
    let (used, added) = changes(&old, &typed_pools());
    assert_eq!(used, BTreeSet::from(["pools[].pages_after_freeing_two_thirds".to_string()]));
    assert_eq!(added, sorted(prefixed("", &NEW_BOOT_KEYS)));
    assert_eq!(from_line(&to_line(&typed_pools())), Ok(typed_pools()));
}

#[test]
fn swap_line_of_the_old_kernel() {
    let old = old_line(OLD_SWAP);
    assert!(json_error(&old).1.starts_with("missing field `usable_end`"));
    let (used, added) = changes(&old, &typed_swap());
    assert_eq!(used, BTreeSet::from(["swap.runs[].tmem_stats.orig_data_size".to_string()]));
    let old_tmem = ["stored_pages", "same_pages", "pool_pages", "limit_pages", "compr_data_size", "ephemeral_drops"];
    let old_tmem = [&old_tmem[..], &["refused_full", "written_back_pages", "puts", "gets"]].concat();
    let new_tmem: Vec<&str> = TMEM_FIELDS.iter().copied().filter(|f| !old_tmem.contains(f)).collect();
    assert_eq!(new_tmem.len(), 34);
    let mut expected = prefixed("", &NEW_BOOT_KEYS);
    expected.extend(prefixed("swap.runs[].", &["dirty_zero_fills", "swap.resident", "swap.slots_used"]));
    expected.extend(prefixed("swap.runs[].", &["tmem_index_bytes", "zram_table_bytes"]));
    expected.extend(prefixed("swap.runs[].swap.", &NEW_SWAP_STATS));
    expected.extend(prefixed("swap.runs[].tmem_stats.", &new_tmem));
    assert_eq!(added, sorted(expected));
    assert_eq!(from_line(&to_line(&typed_swap())), Ok(typed_swap()));
}

#[test]
fn files_line_of_the_old_kernel() {
    let old = old_line(OLD_FILES);
    assert!(json_error(&old).1.starts_with("missing field `usable_end`"));
    let (used, added) = changes(&old, &typed_files());
    let moved = ["ephemeral_pages", "pool_pages", "ephemeral_drops"];
    assert_eq!(used, prefixed("files.runs[].tmem.", &moved).into_iter().collect());
    let mut expected = prefixed("", &NEW_BOOT_KEYS);
    let page_cache = ["disk_errors", "evict_map_errors", "invalidations", "alloc_retries", "uncached_reads"];
    expected.extend(prefixed("files.runs[].", &page_cache));
    expected.extend(prefixed("files.runs[].", &["free_errors", "cached_pages", "capacity", "ms", "cpus"]));
    let cleancache = ["corrupt_gets", "invalidated_pages", "invalidated_inode_pages", "inited_fs"];
    expected.extend(prefixed("files.runs[].cleancache_stats.", &cleancache));
    expected.extend(prefixed("files.runs[].cleancache_stats.", &["invalidated_fs", "invalidated_fs_pages"]));
    let new_tmem: Vec<&str> = TMEM_FIELDS.iter().copied().filter(|f| !moved.contains(f)).collect();
    assert_eq!(new_tmem.len(), 41);
    expected.extend(prefixed("files.runs[].tmem_stats.", &new_tmem));
    assert_eq!(added, sorted(expected));
    assert_eq!(from_line(&to_line(&typed_files())), Ok(typed_files()));
}

#[test]
fn every_row_of_the_rename_table_is_an_old_key() {
    let mut used = BTreeSet::new();
    for (line, typed) in [(OLD_POOLS, typed_pools()), (OLD_SWAP, typed_swap()), (OLD_FILES, typed_files())] {
        used.extend(changes(&old_line(line), &typed).0);
    }
    let table: BTreeSet<String> = header_renames().into_iter().map(|(old, _)| old).collect();
    assert_eq!(table.len(), 5);
    assert_eq!(used, table);
}

// ---------------------------------------------------------------------------------------------------
// The header's worked example
// ---------------------------------------------------------------------------------------------------

#[test]
fn worked_example_from_the_header() {
    let src = include_str!("lib.rs");
    let begin = src.find("//! EXAMPLE-BEGIN\n").expect("example start") + "//! EXAMPLE-BEGIN\n".len();
    let end = src.find("//! EXAMPLE-END").expect("example end");
    let line: String = src[begin..end].lines().map(|l| l.strip_prefix("//! ").expect("a header line")).collect();
    let expected = Report { options: "compressor=lz4".into(), pools: vec![example_pool()], ..boot_part() };
    assert_eq!(to_line(&expected), line);
    assert_eq!(from_line(&line), Ok(expected));
}

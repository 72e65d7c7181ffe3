//! Exact outcomes of the table's core on small hand-sized workloads, over the host arena.

use pagemem::HostMemory;

use super::*;

fn sized(sizes: &[usize]) -> Workload {
    Workload {
        key: "t".into(),
        label: "t".into(),
        objects: sizes.iter().enumerate().map(|(i, &s)| vec![i as u8; s]).collect(),
        repeat: 1,
        notes: Vec::new(),
    }
}

fn measure(kind: PoolKind, w: &Workload, frames: usize) -> Measured {
    kind.measure(w, HostMemory::new(frames)).unwrap()
}

#[test]
fn zbud_takes_a_page_for_every_object_above_a_half() {
    let m = measure(PoolKind::Zbud, &sized(&[3072; 100]), 200);
    assert_eq!((m.offered, m.stored, m.refused, m.verified), (100, 100, 0, 100));
    assert_eq!((m.total_pages, m.reserve_pages, m.stored_bytes), (100, 0, 307_200));
    assert_eq!(m.pages_per_stored(), 1.0);
    assert_eq!(m.ideal_per_stored(), 0.75);
    assert!((m.overhead_pct() - 100.0 / 3.0).abs() < 1e-9);
    assert_eq!((m.metadata_in_pages, m.metadata_side), (6400, 5600));
    assert_eq!(m.metadata(), 12_000);
    assert_eq!(m.pool, PoolKind::Zbud);
}

#[test]
fn a_size_above_max_size_is_refused_and_left_out() {
    // zbud's largest object is 4032 B, xvmalloc's 4092, xcfmalloc's 4080, zsmalloc's 4096.
    let w = sized(&[4033, 100, 4093, 4081, 4096]);
    let refused = |k: PoolKind| measure(k, &w, 64).refused;
    assert_eq!(refused(PoolKind::Zbud), 4);
    assert_eq!(refused(PoolKind::Xvmalloc), 2);
    assert_eq!(refused(PoolKind::Xcfmalloc), 3);
    assert_eq!(refused(PoolKind::Zsmalloc { chain: 4 }), 0);
    let m = measure(PoolKind::Zbud, &w, 64);
    assert_eq!((m.stored, m.stored_bytes, m.verified, m.total_pages, m.max_size), (1, 100, 1, 1, 4032));
}

#[test]
fn xcfmalloc_reserve_is_held_apart_from_the_ratio() {
    // 3072 B + 16 B header = 49 of a page's 64 units. a: a reserve page, 15 units left. b: those 15
    // (largest smaller block) + 34 units of a second reserve page, 30 left. c: those 30 + 19 of a third,
    // 45 left. d: those 45 + 4 of a fourth. 4 pages in use; the reserve is refilled to 32 *before* each
    // malloc, and d took a page from it: 31 held empty, 35 in all.
    let m = measure(PoolKind::Xcfmalloc, &sized(&[3072; 4]), 64);
    assert_eq!(m.reserve_pages, u64::from(xcfmalloc::DEFAULT_RESERVE_PAGES) - 1);
    assert_eq!((m.pool_pages(), m.total_pages), (4, 35));
    assert_eq!(m.pages_per_stored(), 1.0);
    assert_eq!(m.total_pages_per_stored(), 8.75);
    // The in-page metadata: 7 used blocks (a whole, b, c, d in two) x 16 B.
    assert_eq!(m.metadata_in_pages, 7 * 16);
}

#[test]
fn every_chain_zsmalloc_accepts_is_a_pool() {
    let all = PoolKind::all();
    assert_eq!(all.len(), 3 + 16);
    assert_eq!(all[3], PoolKind::Zsmalloc { chain: 1 });
    assert_eq!(all[18], PoolKind::Zsmalloc { chain: 16 });
    assert_eq!(PoolKind::Zsmalloc { chain: 4 }.label(), "zsmalloc chain 4 (default)");
    assert_eq!(PoolKind::Zsmalloc { chain: 8 }.key(), "zsmalloc-8");
    // 3072 B + an 8-B header = 3080, class 3088 (16-B steps). Chains of 1..=4 pages waste 1008, 2016,
    // 3024 and 944 B at their ends: 4 pages, 5 objects. 12 objects: 3 zspages, 12 pages.
    let m = measure(PoolKind::Zsmalloc { chain: 4 }, &sized(&[3072; 12]), 64);
    assert_eq!((m.stored, m.total_pages, m.metadata_in_pages), (12, 12, 96));
}

#[test]
fn a_chain_zsmalloc_refuses_is_an_error() {
    let e = PoolKind::Zsmalloc { chain: 17 }.measure(&sized(&[100]), HostMemory::new(8)).unwrap_err();
    assert!(e.starts_with("zsmalloc chain 17: "), "{e}");
}

#[test]
fn too_few_frames_is_an_error_not_a_figure() {
    // 10 objects of 3072 B need 10 zbud pages; the arena has 4.
    let e = PoolKind::Zbud.measure(&sized(&[3072; 10]), HostMemory::new(4)).unwrap_err();
    assert!(e.starts_with("zbud: malloc(3072) of object 4: "), "{e}");
}

#[test]
fn phases_out_of_order_are_errors() {
    let w = sized(&[1000; 3]);
    let mut t = Trial::new(PoolKind::Zbud, HostMemory::new(8), &w).unwrap();
    assert_eq!(t.verify().unwrap_err(), "zbud: Verify called when Fill is next");
    t.fill().unwrap();
    assert_eq!(t.fill().unwrap_err(), "zbud: Fill called when Verify is next");
    assert_eq!(t.free_all().unwrap_err(), "zbud: FreeAll called when Verify is next");
    t.verify().unwrap();
    let t2 = Trial::new(PoolKind::Xvmalloc, HostMemory::new(8), &w).unwrap();
    assert_eq!(t2.finish().unwrap_err(), "xvmalloc: Finish called when Fill is next");
    t.free_all().unwrap();
    let m = t.finish().unwrap();
    // Two 1000-B buddies in the first page, the third in a second.
    assert_eq!((m.stored, m.verified, m.total_pages), (3, 3, 2));
}

#[test]
fn three_quarter_pages_are_all_in_the_band_and_a_prefix_of_more() {
    let w = three_quarters(200).unwrap();
    assert_eq!(w.len(), 200);
    assert!(w.objects.iter().all(|o| BAND_75.contains(&o.len())));
    assert_eq!(three_quarters(200).unwrap().objects, w.objects);
    assert_eq!(three_quarters(50).unwrap().objects[..], w.objects[..50]);
}

#[test]
fn uniform_sizes_are_in_range_and_deterministic() {
    let w = uniform(1000, 7);
    assert!(w.objects.iter().all(|o| UNIFORM_SIZES.contains(&o.len())));
    assert_eq!(uniform(1000, 7).objects, w.objects);
    assert_ne!(uniform(1000, 8).objects, w.objects);
    assert_eq!(uniform(100, 7).objects[..], w.objects[..100]);
    let x8 = w.repeated("u8", "u x8", 8);
    assert_eq!((x8.len(), x8.object(1000).len()), (8000, w.objects[0].len()));
}

#[test]
fn compressed_pages_skip_same_filled_and_round_trip() {
    let mut pages = vec![[0u8; PAGE_SIZE]; 3];
    ratio_page(1, 50, &mut pages[1]);
    let w = compressed("f", "f", "test pages", &pages).unwrap();
    assert_eq!(w.objects.len(), 1);
    let mut back = [0u8; PAGE_SIZE];
    Compressor::new(Algorithm::Lz4).unwrap().decompress(&w.objects[0], &mut back).unwrap();
    assert_eq!(back, pages[1]);
    let e = compressed("f", "f", "zeroes", &pages[..1]).unwrap_err();
    assert_eq!(e, "zeroes: every one of its 1 pages is same-filled: no object to store");
}

#[test]
fn standard_workloads_in_table_order() {
    let mut pages = vec![[0u8; PAGE_SIZE]; 4];
    for (i, p) in pages.iter_mut().enumerate().skip(1) {
        ratio_page(i as u64, 30, p);
    }
    let ws = standard_workloads(20, Sample::perl(&pages, "four pages")).unwrap();
    let keys: Vec<&str> = ws.iter().map(|w| w.key.as_str()).collect();
    assert_eq!(keys, ["p75", "perl", "perl_x8", "uniform"]);
    let lens: Vec<usize> = ws.iter().map(Workload::len).collect();
    assert_eq!(lens, [20, 3, 3 * PERL_REPEAT, 20]);
    assert_eq!(ws[0].objects, three_quarters(20).unwrap().objects);
    assert_eq!(ws[3].objects, uniform(20, UNIFORM_SEED).objects);
    assert_eq!((ws[1].label.as_str(), ws[2].label.as_str()), ("(b) perl sample", "(b) perl sample x8"));
    let other = Sample { key: "ramdisk", name: "ramdisk", what: "the ramdisk", pages: &pages };
    let rd = standard_workloads(5, other).unwrap();
    assert_eq!((rd[2].key.as_str(), rd[2].label.as_str()), ("ramdisk_x8", "(b) ramdisk x8"));
    let mut seen = Vec::new();
    for_each_standard(20, Sample::perl(&pages, "four pages"), |w| {
        seen.push((w.key.clone(), w.len()));
        Ok(())
    })
    .unwrap();
    let expected: Vec<(String, usize)> = ws.iter().map(|w| (w.key.clone(), w.len())).collect();
    assert_eq!(seen, expected);
    let mut calls = 0;
    let e = for_each_standard(20, Sample::perl(&pages, "four pages"), |w| {
        calls += 1;
        if w.key == "perl" { Err("stop at perl".into()) } else { Ok(()) }
    })
    .unwrap_err();
    assert_eq!((e.as_str(), calls), ("stop at perl", 2));
    let e = standard_workloads(5, Sample::perl(&pages[..1], "one zero page")).unwrap_err();
    assert!(e.starts_with("one zero page: every one of its 1 pages"), "{e}");
}

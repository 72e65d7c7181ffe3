//! Frame allocator and page-memory costs on the host: the same code the kernel runs, without QEMU.
//!
//! Compare with the `bench_mm` kernel's figures (`cargo xtask bench` prints both): the difference is
//! what TCG, real page tables and kmap add.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use frame::{FrameAllocator, FrameInfo, Owner, PcpList, Pfn};
use pagemem::{HostMemory, PageMemory};

const FRAMES: u64 = 65_536; // 256 MiB, the QEMU machine's memory

fn allocator() -> FrameAllocator<'static> {
    let (start, end) = (Pfn(0x100), Pfn(0x100 + FRAMES));
    let table = vec![FrameInfo::reserved(); FrameAllocator::table_len(start, end)].leak();
    let mut a = FrameAllocator::new(table, start);
    a.add_free_range(start, end).unwrap();
    a
}

fn frames(c: &mut Criterion) {
    let mut a = allocator();
    c.bench_function("frame_alloc_free_buddy", |b| {
        b.iter(|| {
            let p = a.alloc(0, Owner::KMAP_TEST).unwrap();
            a.free(black_box(p), 0).unwrap();
        })
    });
    c.bench_function("frame_alloc_free_order3_buddy", |b| {
        b.iter(|| {
            let p = a.alloc(3, Owner::KMAP_TEST).unwrap();
            a.free(black_box(p), 3).unwrap();
        })
    });
    let mut pcp = PcpList::new();
    c.bench_function("frame_alloc_free_pcp", |b| {
        b.iter(|| {
            let p = pcp.alloc(&mut a, Owner::KMAP_TEST).unwrap();
            pcp.free(&mut a, black_box(p)).unwrap();
        })
    });
    let mut held = Vec::with_capacity(1000);
    c.bench_function("frame_alloc_1000_then_free_buddy", |b| {
        b.iter(|| {
            for _ in 0..1000 {
                held.push(a.alloc(0, Owner::KMAP_TEST).unwrap());
            }
            while let Some(p) = held.pop() {
                a.free(p, 0).unwrap();
            }
        })
    });
}

fn page_memory(c: &mut Criterion) {
    let mut m = HostMemory::new(64);
    let p = pagemem::FrameSource::alloc_frame(&mut m, Owner::POOL).unwrap();
    c.bench_function("host_with_page_read4k", |b| {
        b.iter(|| m.with_page(p, |s| black_box(s.iter().fold(0u64, |a, &x| a + x as u64))).unwrap())
    });
    let mut page = vec![0u8; 4096];
    let src = vec![7u8; 4096];
    c.bench_function("plain_copy_4k", |b| b.iter(|| page.copy_from_slice(black_box(&src))));
}

criterion_group!(benches, frames, page_memory);
criterion_main!(benches);

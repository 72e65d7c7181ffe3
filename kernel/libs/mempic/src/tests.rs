use super::*;

use std::collections::HashSet;

fn surface(buf: &mut [u8], w: u32, h: u32, format: PixelFormat) -> Surface<'_> {
    Surface::new(buf, w, h, w, 4, format).unwrap()
}

#[test]
fn every_colour_is_distinct_and_none_is_background_or_text() {
    let colours: HashSet<Rgb> = Category::ALL.iter().map(|c| c.colour()).collect();
    assert_eq!(colours.len(), Category::ALL.len());
    for c in [BACKGROUND, TEXT, DIM] {
        assert!(!colours.contains(&c), "{c:?} is a category colour");
        assert_eq!(Category::from_colour(c), None);
    }
    for c in Category::ALL {
        assert_eq!(Category::from_colour(c.colour()), Some(c));
    }
    let indices: HashSet<usize> = Category::ALL.iter().map(|&c| c as usize).collect();
    assert_eq!(indices, (0..12).collect(), "ALL lists every category once, indices 0..12");
}

#[test]
fn categories_follow_state_then_owner() {
    assert_eq!(Category::of(FrameState::Reserved, Owner::NONE), Category::Unmanaged);
    assert_eq!(Category::of(FrameState::Free, Owner::NONE), Category::Free);
    assert_eq!(Category::of(FrameState::PerCpu, Owner::NONE), Category::Free);
    let a = |o| Category::of(FrameState::Allocated, o);
    assert_eq!(a(Owner::ZSMALLOC), Category::Zsmalloc);
    assert_eq!(a(Owner::ZBUD), Category::Zbud);
    assert_eq!(a(Owner::XVMALLOC), Category::Xvmalloc);
    assert_eq!(a(Owner::XCFMALLOC), Category::Xcfmalloc);
    assert_eq!(a(Owner::POOL), Category::Pool);
    assert_eq!(a(Owner::WORKLOAD), Category::Workload);
    assert_eq!(a(Owner::PAGE_TABLE), Category::PageTable);
    assert_eq!(a(Owner::PAGE_CACHE), Category::PageCache);
    assert_eq!(a(Owner::DMA), Category::Dma);
    for o in [Owner::KERNEL, Owner::HEAP, Owner::STACK, Owner::FRAME_TABLE, Owner::KMAP_TEST] {
        assert_eq!(a(o), Category::Kernel);
    }
}

#[test]
fn worked_example_from_the_header() {
    let l = Layout::new(1280, 720, 65_504).unwrap();
    assert_eq!((l.cell, l.cols, l.frames_per_cell), (2, 256, 1));
    assert_eq!(l.map, Rect { x: 8, y: 28, w: 512, h: 512 });
    assert!(l.legend.x >= l.map.x + l.map.w);
    assert!(l.text.y + l.text.h <= 720);
}

#[test]
fn layouts_fit_the_screen_and_hold_every_frame() {
    for (w, h) in [(640, 480), (800, 600), (1024, 768), (1280, 720), (1280, 800), (1920, 1080), (2560, 1600)] {
        for frames in [1u64, 100, 4096, 32_768, 65_504, 131_072, 262_144, 1 << 20, 1 << 22] {
            let l = Layout::new(w, h, frames).unwrap_or_else(|e| panic!("{w}x{h} {frames}: {e}"));
            assert!(l.cols.is_power_of_two());
            assert!(l.cells() * l.frames_per_cell >= frames);
            let last = l.cell_rect(l.cells() - 1);
            assert!(l.map.contains(last.x, last.y) && last.y + last.h <= l.map.y + l.map.h, "{w}x{h} {frames}");
            for r in [l.map, l.legend, l.bars, l.text] {
                assert!(r.x + r.w <= w && r.y + r.h <= h, "{r:?} leaves {w}x{h}");
            }
            assert!(l.map.x + l.map.w <= l.legend.x, "map and panels overlap");
        }
    }
    assert_eq!(Layout::new(320, 200, 100), Err(PicError::ScreenTooSmall { width: 320, height: 200 }));
    assert_eq!(Layout::new(1280, 720, 0), Err(PicError::NoFrames));
}

#[test]
fn surface_refuses_short_buffers_and_odd_pixels() {
    let mut buf = vec![0u8; 100];
    assert!(matches!(Surface::new(&mut buf, 10, 10, 10, 4, PixelFormat::Rgb), Err(PicError::BufferTooShort { .. })));
    assert_eq!(Surface::new(&mut buf, 2, 2, 2, 2, PixelFormat::Bgr).unwrap_err(), PicError::BadPixelSize(2));
    assert!(Surface::new(&mut buf, 10, 10, 10, 1, PixelFormat::Grey).is_ok());
}

#[test]
fn bgr_writes_blue_first_and_reads_back_the_same_colour() {
    let mut buf = vec![0u8; 4 * 4 * 3];
    {
        let mut s = Surface::new(&mut buf, 4, 4, 4, 3, PixelFormat::Bgr).unwrap();
        s.fill(Rect { x: 1, y: 2, w: 1, h: 1 }, Rgb(10, 20, 30));
        assert_eq!(s.get(1, 2), Some(Rgb(10, 20, 30)));
        s.fill(Rect { x: 3, y: 3, w: 10, h: 10 }, Rgb(1, 2, 3)); // clipped, no panic
        assert_eq!(s.get(4, 0), None);
    }
    let at = (2 * 4 + 1) * 3;
    assert_eq!(&buf[at..at + 3], &[30, 20, 10]);
}

#[test]
fn each_frame_gets_its_cell_and_only_changed_cells_are_redrawn() {
    let (w, h) = (1280, 720);
    let mut buf = vec![0u8; (w * h * 4) as usize];
    let mut s = surface(&mut buf, w, h, PixelFormat::Bgr);
    let frames = 65_504u64;
    let mut p = Picture::new(Layout::new(w, h, frames).unwrap());
    p.clear(&mut s);
    let cat = |i: u64| match i % 7 {
        0 => Category::Zsmalloc,
        1 => Category::Workload,
        _ => Category::Free,
    };
    assert_eq!(p.draw_frames(&mut s, &(0..frames).map(cat).collect::<Vec<_>>()), frames, "first draw: every cell");
    for i in [0, 1, 2, 255, 256, 4097, frames - 1] {
        let r = p.layout.cell_rect(i);
        for (dx, dy) in [(0, 0), (r.w - 1, r.h - 1)] {
            assert_eq!(s.get(r.x + dx, r.y + dy), Some(cat(i).colour()), "frame {i}");
        }
    }
    assert_eq!(p.counts[Category::Zsmalloc as usize], frames.div_ceil(7));
    assert_eq!(p.draw_frames(&mut s, &(0..frames).map(cat).collect::<Vec<_>>()), 0, "nothing changed");
    let changed = |i: u64| if i == 300 || i == 301 { Category::PageTable } else { cat(i) };
    assert_eq!(p.draw_frames(&mut s, &(0..frames).map(changed).collect::<Vec<_>>()), 2);
    let r = p.layout.cell_rect(301);
    assert_eq!(s.get(r.x, r.y), Some(Category::PageTable.colour()));
}

#[test]
fn several_frames_a_cell_show_their_majority() {
    let (w, h) = (640, 480);
    let mut buf = vec![0u8; (w * h * 4) as usize];
    let mut s = surface(&mut buf, w, h, PixelFormat::Rgb);
    let frames = 1u64 << 20;
    let mut p = Picture::new(Layout::new(w, h, frames).unwrap());
    let per = p.layout.frames_per_cell;
    assert!(per > 1);
    // Cell 0: one frame in four is zbud, the rest workload; cell 1: all free.
    let cat = |i: u64| {
        if i >= per {
            Category::Free
        } else if i % 4 == 0 {
            Category::Zbud
        } else {
            Category::Workload
        }
    };
    p.draw_frames(&mut s, &(0..frames).map(cat).collect::<Vec<_>>());
    let (c0, c1) = (p.layout.cell_rect(0), p.layout.cell_rect(1));
    assert_eq!(s.get(c0.x, c0.y), Some(Category::Workload.colour()));
    assert_eq!(s.get(c1.x, c1.y), Some(Category::Free.colour()));
}

#[test]
fn legend_bars_and_text_draw_inside_their_panels() {
    let (w, h) = (1280, 720);
    let mut buf = vec![0u8; (w * h * 4) as usize];
    let mut s = surface(&mut buf, w, h, PixelFormat::Bgr);
    let mut p = Picture::new(Layout::new(w, h, 4096).unwrap());
    p.clear(&mut s);
    p.draw_frames(
        &mut s,
        &(0..4096).map(|i| if i < 100 { Category::Zsmalloc } else { Category::Free }).collect::<Vec<_>>(),
    );
    p.draw_legend(&mut s);
    let l = p.layout.legend;
    // The zsmalloc swatch is the 8th line of the legend.
    let row = Category::ALL.iter().position(|&c| c == Category::Zsmalloc).unwrap() as u32;
    assert_eq!(s.get(l.x + 5, l.y + row * LINE + 6), Some(Category::Zsmalloc.colour()));
    let bars = [
        ClassBar { size: 32, obj_allocated: 128, obj_used: 64, pages: 1 },
        ClassBar { size: 48, obj_allocated: 0, obj_used: 0, pages: 0 },
        ClassBar { size: 4096, obj_allocated: 10, obj_used: 10, pages: 10 },
    ];
    p.draw_bars(&mut s, "zsmalloc size classes", &bars);
    let b = p.layout.bars;
    let area_y = b.y + LINE + 2;
    let area_h = b.h - 2 * LINE - 4;
    // Class 32: half used, so its bar's top half is dim and its bottom half green.
    assert_eq!(s.get(b.x + 1, area_y + 2), Some(DIM));
    assert_eq!(s.get(b.x + 1, area_y + area_h - 2), Some(Category::Zsmalloc.colour()));
    // The empty class is left out: the second bar is class 4096, full.
    assert_eq!(s.get(b.x + 12 + 1, area_y + 2), Some(Category::Zsmalloc.colour()));
    p.draw_text(&mut s, &["stored 275 pages in 190 frames", "ratio 2.97"]);
    let t = p.layout.text;
    let lit = (t.x..t.x + 200).flat_map(|x| (t.y..t.y + LINE).map(move |y| (x, y)));
    assert!(lit.filter(|&(x, y)| s.get(x, y) != Some(BACKGROUND)).count() > 100, "the text left pixels");
}

#[test]
fn line_formats_numbers_and_pads() {
    let mut l = Line::new();
    l.push("ab");
    l.pad_to(5);
    l.num(42, 6);
    l.num(0, 0);
    assert_eq!(l.as_str(), "ab       420");
    let mut long = Line::new();
    for _ in 0..100 {
        long.push("xyz");
    }
    assert_eq!(long.as_str().len(), 128);
}

#[test]
fn present_copies_only_the_chunks_that_differ() {
    let mut back = vec![0u8; 300];
    let mut front = vec![0u8; 300];
    assert_eq!(present(&back, &mut front, 64), 0);
    back[5] = 1;
    back[130] = 2;
    back[299] = 3;
    assert_eq!(present(&back, &mut front, 64), 64 + 64 + 44, "chunks 0, 2 and the short last one");
    assert_eq!(front, back);
    assert_eq!(present(&back, &mut front, 64), 0, "nothing left to copy");
    let mut short = vec![9u8; 10];
    assert_eq!(present(&back, &mut short, 0), 10, "chunk 0 counts as 1; only the common length");
    assert_eq!(&short[..], &back[..10]);
}

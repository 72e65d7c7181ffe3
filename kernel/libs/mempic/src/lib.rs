//! mempic: the live memory picture — every physical frame as a coloured cell, zsmalloc's size classes
//! as occupancy bars, and the main counters as text, drawn into a linear framebuffer.
//!
//! # Why
//!
//! The run's counters say *how many* frames each subsystem holds; the picture shows *which* frames and
//! how they move: the workload's frames giving way to pool frames as reclaim compresses pages, page
//! tables appearing as a region is mapped, a zspage's frames scattered wherever the buddy allocator
//! had order-0 frames. The kernel (`kernel/src/workload/picture.rs`) reads the frame table and redraws
//! the picture every few hundred workload steps; this crate does all the drawing and is tested on the
//! host, so the kernel only hands it bytes to draw into.
//!
//! # Vocabulary
//!
//! | term | meaning |
//! |---|---|
//! | surface | the framebuffer: `height` rows of `stride` pixels, `bytes_per_pixel` bytes each, RGB, BGR or grey ([`Surface`]) |
//! | category | what a frame is used for, from its state and owner in the frame table ([`Category`]); one colour each |
//! | cell | the square of `cell` × `cell` pixels that shows one frame (or `frames_per_cell` frames, in order, on a small screen) |
//! | map | the grid of cells, one row per `cols` frames, lowest pfn at the top left ([`Layout::map`]) |
//! | shadow | the category each cell was last drawn with: a redraw touches only the cells that changed |
//!
//! # Layout (1280 × 720, the BIOS framebuffer; 256 MiB of RAM)
//!
//! ```text
//! (0,0) ┌────────────────────────────────────────────────────────────────────────────┐
//!       │ title: what runs, step k of n                                              │
//! (8,28)│ ┌──────── map: 256 cells a row ────────┐  legend: swatch, name, frames      │
//!       │ │ one 2×2 cell per frame,               │  ■ free           51234           │
//!       │ │ one row = 256 frames = 1 MiB          │  ■ zsmalloc         190           │
//!       │ │ 256 rows = 256 MiB                    │  …                                │
//!       │ │                                       │  zsmalloc size classes: bars      │
//!       │ └───────────────────────────────────────┘  counters: text lines             │
//!       └────────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! [`Layout::new`] picks the largest cell (1 to 8 pixels) whose map of `cols` = a power of two cells a
//! row fits in the left half, so a row is always a round amount of memory. Worked example: 65,504
//! frames on 1280 × 720: the left half is 632 pixels wide and 684 high; cells of 2 px give 256 cells a
//! row (512 px; 316 would fit, 256 is the power of two below), 256 rows (512 px ≤ 684): it fits, and
//! 3 px would need 128 a row and 512 rows (1536 px): it does not.
//!
//! # Contracts
//!
//! - Drawing never panics on any surface: pixels outside the surface are dropped, and a surface whose
//!   buffer is shorter than `stride × height × bytes_per_pixel` is refused by [`Surface::new`].
//! - Each [`Category`] has its own colour; the background and the text colours are none of them, so a
//!   screenshot's colours inside the map count the categories on screen (`cargo xtask test`'s
//!   `run_screenshot_swap`).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use frame::{FrameState, Owner};
use noto_sans_mono_bitmap::{FontWeight, RasterHeight, get_raster, get_raster_width};

#[cfg(test)]
mod tests;

/// A colour, 8 bits a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rgb(pub u8, pub u8, pub u8);

/// The picture's background (not a category colour).
pub const BACKGROUND: Rgb = Rgb(8, 8, 16);
/// Text (not a category colour).
pub const TEXT: Rgb = Rgb(236, 236, 236);
/// Dim text and the bars' empty part (not a category colour).
pub const DIM: Rgb = Rgb(120, 120, 136);

/// How the framebuffer stores a pixel (the bootloader's `PixelFormat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    /// Red, green, blue in that byte order (then padding).
    Rgb,
    /// Blue, green, red (QEMU's VGA and most GOP framebuffers).
    Bgr,
    /// One grey byte.
    Grey,
}

/// Why a surface or a layout cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PicError {
    /// The buffer is shorter than the geometry says.
    BufferTooShort { len: usize, needed: usize },
    /// Fewer bytes per pixel than the format needs, or more than 4.
    BadPixelSize(usize),
    /// The screen is too small for the picture's panels.
    ScreenTooSmall { width: u32, height: u32 },
    /// No frames to draw.
    NoFrames,
}

impl core::fmt::Display for PicError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PicError::BufferTooShort { len, needed } => write!(f, "framebuffer of {len} bytes, {needed} needed"),
            PicError::BadPixelSize(n) => write!(f, "{n} bytes per pixel is not supported"),
            PicError::ScreenTooSmall { width, height } => write!(f, "a {width}x{height} screen is too small"),
            PicError::NoFrames => write!(f, "no frames to draw"),
        }
    }
}

/// A linear framebuffer to draw into.
#[derive(Debug)]
pub struct Surface<'a> {
    buf: &'a mut [u8],
    pub width: u32,
    pub height: u32,
    /// Pixels per row in memory (≥ `width`).
    pub stride: u32,
    pub bytes_per_pixel: usize,
    pub format: PixelFormat,
}

impl<'a> Surface<'a> {
    pub fn new(
        buf: &'a mut [u8],
        width: u32,
        height: u32,
        stride: u32,
        bytes_per_pixel: usize,
        format: PixelFormat,
    ) -> Result<Self, PicError> {
        let min = if format == PixelFormat::Grey { 1 } else { 3 };
        if bytes_per_pixel < min || bytes_per_pixel > 4 {
            return Err(PicError::BadPixelSize(bytes_per_pixel));
        }
        let needed = stride.max(width) as usize * height as usize * bytes_per_pixel;
        if buf.len() < needed || stride < width {
            return Err(PicError::BufferTooShort { len: buf.len(), needed });
        }
        Ok(Surface { buf, width, height, stride, bytes_per_pixel, format })
    }

    fn encode(&self, c: Rgb) -> [u8; 4] {
        match self.format {
            PixelFormat::Rgb => [c.0, c.1, c.2, 0],
            PixelFormat::Bgr => [c.2, c.1, c.0, 0],
            PixelFormat::Grey => {
                let y = (u32::from(c.0) * 299 + u32::from(c.1) * 587 + u32::from(c.2) * 114) / 1000;
                [y as u8, 0, 0, 0]
            }
        }
    }

    /// The colour at (`x`, `y`), `None` outside (for tests and checks).
    pub fn get(&self, x: u32, y: u32) -> Option<Rgb> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let at = (y as usize * self.stride as usize + x as usize) * self.bytes_per_pixel;
        let p = &self.buf[at..at + self.bytes_per_pixel];
        Some(match self.format {
            PixelFormat::Rgb => Rgb(p[0], p[1], p[2]),
            PixelFormat::Bgr => Rgb(p[2], p[1], p[0]),
            PixelFormat::Grey => Rgb(p[0], p[0], p[0]),
        })
    }

    /// Fill a rectangle, clipped to the surface.
    pub fn fill(&mut self, r: Rect, c: Rgb) {
        let px = self.encode(c);
        let bpp = self.bytes_per_pixel;
        let x1 = (r.x.saturating_add(r.w)).min(self.width) as usize;
        let y1 = (r.y.saturating_add(r.h)).min(self.height);
        let x0 = (r.x as usize).min(x1);
        for y in r.y.min(y1)..y1 {
            let row = y as usize * self.stride as usize;
            for p in self.buf[(row + x0) * bpp..(row + x1) * bpp].chunks_exact_mut(bpp) {
                p.copy_from_slice(&px[..bpp]);
            }
        }
    }

    /// One pixel, dropped outside the surface.
    #[inline]
    fn put(&mut self, x: u32, y: u32, c: Rgb) {
        if x < self.width && y < self.height {
            let px = self.encode(c);
            let bpp = self.bytes_per_pixel;
            let at = (y as usize * self.stride as usize + x as usize) * bpp;
            self.buf[at..at + bpp].copy_from_slice(&px[..bpp]);
        }
    }

    /// Draw `text` with its top-left corner at (`x`, `y`) over `bg`; returns the x after the last glyph.
    /// Characters the font lacks are drawn as `?`.
    pub fn text(&mut self, x: u32, y: u32, text: &str, fg: Rgb, bg: Rgb) -> u32 {
        let w = get_raster_width(FontWeight::Regular, RasterHeight::Size16) as u32;
        let mut cx = x;
        for ch in text.chars() {
            let g = get_raster(ch, FontWeight::Regular, RasterHeight::Size16)
                .or_else(|| get_raster('?', FontWeight::Regular, RasterHeight::Size16));
            let Some(g) = g else { continue };
            for (dy, row) in g.raster().iter().enumerate() {
                for (dx, &v) in row.iter().enumerate() {
                    let mix = |a: u8, b: u8| {
                        ((u32::from(a) * (255 - u32::from(v)) + u32::from(b) * u32::from(v)) / 255) as u8
                    };
                    self.put(cx + dx as u32, y + dy as u32, Rgb(mix(bg.0, fg.0), mix(bg.1, fg.1), mix(bg.2, fg.2)));
                }
            }
            cx += w;
        }
        cx
    }
}

/// Copy to `front` the chunks of `chunk` bytes in which `back` differs from it; returns the bytes
/// copied. The picture is drawn into `back`, a copy in RAM, and only what changed reaches the
/// framebuffer: under QEMU's TCG each write to video memory is slow (its pages are tracked for the
/// display), while reading it and drawing in RAM are not. Lengths may differ: the shorter one counts.
pub fn present(back: &[u8], front: &mut [u8], chunk: usize) -> usize {
    let chunk = chunk.max(1);
    let len = back.len().min(front.len());
    let mut copied = 0;
    for (b, f) in back[..len].chunks(chunk).zip(front[..len].chunks_mut(chunk)) {
        if b != f {
            f.copy_from_slice(b);
            copied += b.len();
        }
    }
    copied
}

/// Width of one character of the picture's font, in pixels.
pub fn char_width() -> u32 {
    get_raster_width(FontWeight::Regular, RasterHeight::Size16) as u32
}

/// Height of one line of text, in pixels.
pub const LINE: u32 = 18;

/// A rectangle in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

impl Rect {
    pub fn contains(&self, x: u32, y: u32) -> bool {
        x >= self.x && y >= self.y && x < self.x + self.w && y < self.y + self.h
    }
}

/// What a frame is used for: one colour each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// Not managed by the frame allocator: firmware, the bootloader, the kernel image, the ramdisk,
    /// the early frames of the kmap window and the frame table.
    Unmanaged = 0,
    /// Free in the buddy lists or parked in a CPU's page list.
    Free,
    /// The kernel's own: heap, stacks, the frame table, anything owned by `Owner::KERNEL`.
    Kernel,
    /// Page tables allocated after boot.
    PageTable,
    /// A resident page of the swap workload's region.
    Workload,
    Zsmalloc,
    Zbud,
    Xvmalloc,
    Xcfmalloc,
    /// A pool frame of no named pool (`Owner::POOL`: test kernels).
    Pool,
    /// A page of the page cache (a file page).
    PageCache,
    /// A device's buffer: virtio queues and bounce buffers.
    Dma,
}

impl Category {
    /// Every category, in legend order.
    pub const ALL: [Category; 12] = [
        Category::Free,
        Category::Unmanaged,
        Category::Kernel,
        Category::PageTable,
        Category::Dma,
        Category::Workload,
        Category::PageCache,
        Category::Zsmalloc,
        Category::Zbud,
        Category::Xvmalloc,
        Category::Xcfmalloc,
        Category::Pool,
    ];

    /// The category of a frame in state `state` held by `owner`.
    pub fn of(state: FrameState, owner: Owner) -> Category {
        match state {
            FrameState::Reserved => Category::Unmanaged,
            FrameState::Free | FrameState::PerCpu => Category::Free,
            FrameState::Allocated => match owner {
                Owner::PAGE_TABLE => Category::PageTable,
                Owner::WORKLOAD => Category::Workload,
                Owner::ZSMALLOC => Category::Zsmalloc,
                Owner::ZBUD => Category::Zbud,
                Owner::XVMALLOC => Category::Xvmalloc,
                Owner::XCFMALLOC => Category::Xcfmalloc,
                Owner::POOL => Category::Pool,
                Owner::PAGE_CACHE => Category::PageCache,
                Owner::DMA => Category::Dma,
                _ => Category::Kernel,
            },
        }
    }

    /// The category's colour. All differ from each other, from [`BACKGROUND`], [`TEXT`] and [`DIM`].
    pub const fn colour(self) -> Rgb {
        match self {
            Category::Unmanaged => Rgb(72, 72, 72),
            Category::Free => Rgb(28, 34, 52),
            Category::Kernel => Rgb(200, 200, 170),
            Category::PageTable => Rgb(255, 200, 0),
            Category::Workload => Rgb(60, 120, 255),
            Category::Zsmalloc => Rgb(0, 220, 110),
            Category::Zbud => Rgb(255, 90, 180),
            Category::Xvmalloc => Rgb(170, 110, 255),
            Category::Xcfmalloc => Rgb(0, 200, 230),
            Category::Pool => Rgb(150, 190, 40),
            Category::PageCache => Rgb(255, 130, 30),
            Category::Dma => Rgb(230, 30, 30),
        }
    }

    /// The legend's name.
    pub const fn name(self) -> &'static str {
        match self {
            Category::Unmanaged => "not managed",
            Category::Free => "free",
            Category::Kernel => "kernel (heap, stacks)",
            Category::PageTable => "page tables",
            Category::Workload => "workload resident",
            Category::Zsmalloc => "zsmalloc",
            Category::Zbud => "zbud",
            Category::Xvmalloc => "xvmalloc",
            Category::Xcfmalloc => "xcfmalloc",
            Category::Pool => "pool (unnamed)",
            Category::PageCache => "page cache",
            Category::Dma => "DMA / bounce",
        }
    }

    /// The category whose colour is `c`, if any.
    pub fn from_colour(c: Rgb) -> Option<Category> {
        Category::ALL.into_iter().find(|k| k.colour() == c)
    }
}

/// Where everything goes on a screen of a given size ([`Layout::new`]; the module header's drawing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub width: u32,
    pub height: u32,
    /// Frames shown (the frame table's span).
    pub frames: u64,
    /// Cell side in pixels.
    pub cell: u32,
    /// Cells a row of the map (a power of two).
    pub cols: u32,
    /// Frames one cell stands for (1 unless the screen is too small for one cell a frame).
    pub frames_per_cell: u64,
    pub title: Rect,
    pub map: Rect,
    pub legend: Rect,
    pub bars: Rect,
    pub text: Rect,
}

const MARGIN: u32 = 8;
const TOP: u32 = 28;

impl Layout {
    /// The layout for `frames` frames on a `width` × `height` screen.
    pub fn new(width: u32, height: u32, frames: u64) -> Result<Layout, PicError> {
        if frames == 0 {
            return Err(PicError::NoFrames);
        }
        let small = PicError::ScreenTooSmall { width, height };
        if width < 480 || height < 400 {
            return Err(small);
        }
        let map_w = width / 2 - MARGIN - 8;
        let map_h = height - TOP - MARGIN;
        let pow2_below = |n: u32| if n == 0 { 0 } else { 1u32 << (31 - n.leading_zeros()) };
        let mut pick = None;
        for cell in (1..=8u32).rev() {
            let cols = pow2_below(map_w / cell);
            if cols == 0 {
                continue;
            }
            let rows = frames.div_ceil(u64::from(cols));
            if rows * u64::from(cell) <= u64::from(map_h) {
                pick = Some((cell, cols, 1u64, rows as u32));
                break;
            }
        }
        let (cell, cols, per, rows) = match pick {
            Some(p) => p,
            None => {
                // Several frames a cell: the smallest power of two that makes the map fit.
                let cols = pow2_below(map_w);
                let max_rows = u64::from(map_h);
                let mut per = 2u64;
                while frames.div_ceil(per).div_ceil(u64::from(cols)) > max_rows {
                    per *= 2;
                }
                (1, cols, per, frames.div_ceil(per).div_ceil(u64::from(cols)) as u32)
            }
        };
        let map = Rect { x: MARGIN, y: TOP, w: cols * cell, h: rows * cell };
        let px = map.x + map.w + 16;
        let pw = width - px - MARGIN;
        let legend = Rect { x: px, y: TOP, w: pw, h: LINE * Category::ALL.len() as u32 + 4 };
        let bars = Rect { x: px, y: legend.y + legend.h + 8, w: pw, h: 140 };
        let text_y = bars.y + bars.h + 8;
        if text_y + LINE * 4 > height {
            return Err(small);
        }
        let text = Rect { x: px, y: text_y, w: pw, h: height - text_y - MARGIN };
        let title = Rect { x: 0, y: 0, w: width, h: TOP - 4 };
        Ok(Layout { width, height, frames, cell, cols, frames_per_cell: per, title, map, legend, bars, text })
    }

    /// The map's cells.
    pub fn cells(&self) -> u64 {
        self.frames.div_ceil(self.frames_per_cell)
    }

    /// The rectangle of cell `i` (frames `i × frames_per_cell …`).
    pub fn cell_rect(&self, i: u64) -> Rect {
        let (row, col) = (i / u64::from(self.cols), i % u64::from(self.cols));
        Rect {
            x: self.map.x + col as u32 * self.cell,
            y: self.map.y + row as u32 * self.cell,
            w: self.cell,
            h: self.cell,
        }
    }
}

/// One zsmalloc size class for the bars: object places and objects in use in its zspages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassBar {
    /// Object size of the class in bytes.
    pub size: u32,
    pub obj_allocated: u64,
    pub obj_used: u64,
    /// Frames of the class's zspages.
    pub pages: u64,
}

/// The picture's state between redraws.
#[derive(Debug)]
pub struct Picture {
    pub layout: Layout,
    /// Category each cell was last drawn with (`u8::MAX`: not drawn yet).
    shadow: Vec<u8>,
    /// Frames per category at the last [`Picture::draw_frames`], indexed by `Category as usize`.
    pub counts: [u64; 12],
    /// The text and colour each line of the title, legend and counters was last drawn with: a line that
    /// did not change is not drawn again (text is the costly part of a redraw).
    drawn_lines: Vec<(u32, u32, Rgb, String)>,
}

impl Picture {
    pub fn new(layout: Layout) -> Picture {
        Picture { layout, shadow: vec![u8::MAX; layout.cells() as usize], counts: [0; 12], drawn_lines: Vec::new() }
    }

    /// Clear the screen and forget what was drawn (the next redraw draws everything).
    pub fn clear(&mut self, s: &mut Surface<'_>) {
        s.fill(Rect { x: 0, y: 0, w: s.width, h: s.height }, BACKGROUND);
        self.shadow.fill(u8::MAX);
        self.drawn_lines.clear();
    }

    /// Draw `text` at (`x`, `y`) on a line `width` pixels wide, unless that line already shows it.
    fn line(&mut self, s: &mut Surface<'_>, x: u32, y: u32, width: u32, text: &str, fg: Rgb) {
        match self.drawn_lines.iter_mut().find(|(lx, ly, _, _)| (*lx, *ly) == (x, y)) {
            Some((_, _, c, old)) if old == text && *c == fg => return,
            Some((_, _, c, old)) => {
                *c = fg;
                old.clear();
                old.push_str(text);
            }
            None => self.drawn_lines.push((x, y, fg, String::from(text))),
        }
        s.fill(Rect { x, y, w: width, h: LINE }, BACKGROUND);
        let max_chars = (width / char_width()) as usize;
        let end = text.char_indices().nth(max_chars).map_or(text.len(), |(at, _)| at);
        s.text(x, y, &text[..end], fg, BACKGROUND);
    }

    /// Draw the map from the categories of the frames in pfn order (at most `layout.frames` are read);
    /// only cells whose category changed are drawn. With several frames a cell, a cell shows the
    /// category most of its frames have (ties: the later in [`Category`] order). Returns the cells drawn.
    pub fn draw_frames(&mut self, s: &mut Surface<'_>, frames: &[Category]) -> u64 {
        let frames = &frames[..frames.len().min(self.layout.frames as usize)];
        self.counts = [0; 12];
        for &c in frames {
            self.counts[c as usize] += 1;
        }
        let per = self.layout.frames_per_cell as usize;
        let mut drawn = 0;
        for (cell, group) in frames.chunks(per).enumerate() {
            let best = if per == 1 {
                group[0]
            } else {
                let mut tally = [0u32; 12];
                for &c in group {
                    tally[c as usize] += 1;
                }
                let mut best = group[0];
                for c in Category::ALL {
                    if tally[c as usize] > tally[best as usize]
                        || (tally[c as usize] == tally[best as usize] && c > best)
                    {
                        best = c;
                    }
                }
                best
            };
            if self.shadow[cell] != best as u8 {
                self.shadow[cell] = best as u8;
                s.fill(self.layout.cell_rect(cell as u64), best.colour());
                drawn += 1;
            }
        }
        drawn
    }

    /// The title line.
    pub fn draw_title(&mut self, s: &mut Surface<'_>, title: &str) {
        let w = self.layout.title.w - MARGIN;
        self.line(s, MARGIN, 4, w, title, TEXT);
    }

    /// The legend: a swatch, the name and the frame count of each category (from the last map draw).
    pub fn draw_legend(&mut self, s: &mut Surface<'_>) {
        let r = self.layout.legend;
        for (i, c) in Category::ALL.into_iter().enumerate() {
            let y = r.y + i as u32 * LINE;
            s.fill(Rect { x: r.x, y: y + 2, w: 12, h: 12 }, c.colour());
            let n = self.counts[c as usize];
            let mut line = Line::new();
            line.push(c.name());
            line.pad_to(24);
            line.num(n, 7);
            line.push(" frames ");
            line.num(n * 4, 7);
            line.push(" KiB");
            let fg = if n == 0 { DIM } else { TEXT };
            self.line(s, r.x + 18, y, r.w - 18, line.as_str(), fg);
        }
    }

    /// zsmalloc's size classes as bars, smallest class on the left: a bar's full height is the class's
    /// object places, its coloured part the objects in use; under it, the class's frames. Classes with
    /// no zspage are left out. `heading` is the line above the bars.
    pub fn draw_bars(&mut self, s: &mut Surface<'_>, heading: &str, classes: &[ClassBar]) {
        let r = self.layout.bars;
        self.line(s, r.x, r.y, r.w, heading, TEXT);
        let area = Rect { x: r.x, y: r.y + LINE + 2, w: r.w, h: r.h - 2 * LINE - 4 };
        s.fill(area, BACKGROUND);
        let shown: Vec<&ClassBar> = classes.iter().filter(|c| c.obj_allocated > 0).collect();
        let below = area.y + area.h + 2;
        if shown.is_empty() {
            self.line(s, r.x, below, r.w, "(no zspage)", DIM);
            return;
        }
        let bw = (area.w / shown.len() as u32).clamp(1, 12);
        for (i, c) in shown.iter().enumerate() {
            let x = area.x + i as u32 * bw;
            let gap = u32::from(bw > 2);
            s.fill(Rect { x, y: area.y, w: bw - gap, h: area.h }, DIM);
            let used = (u64::from(area.h) * c.obj_used / c.obj_allocated) as u32;
            s.fill(Rect { x, y: area.y + area.h - used, w: bw - gap, h: used }, Category::Zsmalloc.colour());
        }
        let (lo, hi) = (shown[0].size, shown[shown.len() - 1].size);
        let used: u64 = shown.iter().map(|c| c.obj_used).sum();
        let places: u64 = shown.iter().map(|c| c.obj_allocated).sum();
        let pages: u64 = shown.iter().map(|c| c.pages).sum();
        let mut line = Line::new();
        line.num(shown.len() as u64, 0);
        line.push(" classes ");
        line.num(u64::from(lo), 0);
        line.push("..");
        line.num(u64::from(hi), 0);
        line.push(" B: ");
        line.num(used, 0);
        line.push(" of ");
        line.num(places, 0);
        line.push(" objects in ");
        line.num(pages, 0);
        line.push(" frames");
        self.line(s, r.x, below, r.w, line.as_str(), TEXT);
    }

    /// Counter lines under the bars (as many as fit; lines no longer given are cleared).
    pub fn draw_text(&mut self, s: &mut Surface<'_>, lines: &[&str]) {
        let r = self.layout.text;
        for i in 0..(r.h / LINE) as usize {
            self.line(s, r.x, r.y + i as u32 * LINE, r.w, lines.get(i).copied().unwrap_or(""), TEXT);
        }
    }
}

/// A short line built without `format!` (a fixed buffer: the picture allocates nothing per redraw).
#[derive(Debug)]
pub struct Line {
    buf: [u8; 128],
    len: usize,
}

impl Default for Line {
    fn default() -> Self {
        Self::new()
    }
}

impl Line {
    pub const fn new() -> Line {
        Line { buf: [0; 128], len: 0 }
    }

    /// Append `s` (cut at the buffer's end, on a character boundary).
    pub fn push(&mut self, s: &str) {
        for ch in s.chars() {
            let mut b = [0; 4];
            let e = ch.encode_utf8(&mut b).as_bytes();
            if self.len + e.len() > self.buf.len() {
                return;
            }
            self.buf[self.len..self.len + e.len()].copy_from_slice(e);
            self.len += e.len();
        }
    }

    /// Append `n` in decimal, right-aligned in `width` characters.
    pub fn num(&mut self, n: u64, width: usize) {
        let mut d = [0u8; 20];
        let mut i = d.len();
        let mut v = n;
        loop {
            i -= 1;
            d[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        for _ in (d.len() - i)..width {
            self.push(" ");
        }
        self.push(core::str::from_utf8(&d[i..]).unwrap_or("?"));
    }

    /// Pad with spaces to `col` characters.
    pub fn pad_to(&mut self, col: usize) {
        while self.as_str().chars().count() < col && self.len < self.buf.len() {
            self.push(" ");
        }
    }

    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

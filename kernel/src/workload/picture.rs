//! The live memory picture: every physical frame as a cell coloured by its owner, zsmalloc's size
//! classes as occupancy bars, and the main counters, on the bootloader's framebuffer, redrawn while a
//! workload runs. `cargo xtask run --display` shows it; `cargo xtask screenshot` saves it as a PNG.
//!
//! # How a redraw works
//!
//! | step | what | cost (256 MiB, TCG) |
//! |---|---|---|
//! | 1 | read the frame table (`mm::frames::scan`: 4096 entries copied per lock hold) and map each frame's state and owner to a [`mempic::Category`] | one pass over ~65,000 entries of 24 bytes |
//! | 2 | draw the cells whose category changed since the last redraw (the shadow in [`mempic::Picture`]) | a few hundred cells of 2 × 2 pixels |
//! | 3 | the legend (frames per category), zsmalloc's classes (`Tmem::zs_classes`), the counters | three panels of text and bars |
//!
//! A redraw runs every [`EVERY`] accesses of a swap run ([`step`], called by `SwapRun::step`), and once
//! more at the middle of each run, when it also prints a `picture:` line — the point
//! `cargo xtask screenshot` waits for. Each redraw is timed with the TSC: a swap run leaves that time
//! out of its own (`RunResult::cycles`, the report's `ms`), and [`finish`] prints the redraws and their
//! share of the workload's time, so what the picture costs is on the console, never guessed.
//!
//! Only the demo kernel starts the picture (`main.rs` → [`start`]); test kernels never draw, and
//! without a framebuffer [`step`] is one atomic load.
//!
//! Frames are coloured by category: free (and parked in a CPU's list), not managed (firmware, the
//! bootloader, the kernel image, the ramdisk, boot's early frames), the kernel's (heap, stacks), page
//! tables, DMA buffers, workload-resident pages, the page cache, and each pool under its own name
//! (`mm::KernelMemory` records a pool's frames under the pool's owner).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use mempic::{Category, ClassBar, Layout, Picture};
use spin::Mutex;

use crate::arch::tsc::rdtsc;
use crate::drivers::fb;
use crate::println;

/// Accesses between two redraws.
pub const EVERY: u64 = 1024;

static ON: AtomicBool = AtomicBool::new(false);

struct State {
    pic: Picture,
    /// What runs (the workload), for the title.
    what: String,
    redraws: u64,
    cycles: u64,
    cells: u64,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

/// Start the picture for the workload `what`, if there is a framebuffer; prints one line saying where
/// the map is (xtask's screenshot check reads it) or why there is no picture.
pub fn start(framebuffer: Result<fb::FbInfo, &'static str>, what: &str) {
    let info = match framebuffer {
        Ok(i) => i,
        Err(why) => {
            println!("picture: none ({why})");
            return;
        }
    };
    let Some(m) = crate::mm::facts() else { return };
    let frames = m.span.1.0 - m.span.0.0;
    let layout = match Layout::new(info.width, info.height, frames) {
        Ok(l) => l,
        Err(e) => {
            println!("picture: none ({e})");
            return;
        }
    };
    let l = layout;
    println!(
        "picture: {}x{} framebuffer ({:?}, {} B/px), {frames} frames from pfn {:#x}, {} a cell of {} px, {} cells a row; \
         map at ({},{}) {}x{}; redrawn every {EVERY} accesses",
        info.width,
        info.height,
        info.format,
        info.bytes_per_pixel,
        m.span.0.0,
        l.frames_per_cell,
        l.cell,
        l.cols,
        l.map.x,
        l.map.y,
        l.map.w,
        l.map.h
    );
    let mut pic = Picture::new(layout);
    fb::use_back_buffer();
    fb::with(|s| pic.clear(s));
    *STATE.lock() = Some(State { pic, what: String::from(what), redraws: 0, cycles: 0, cells: 0 });
    ON.store(true, Ordering::Release);
    redraw("boot done", 0, 0);
}

/// A swap run's access `i` of `total` (fill included) in configuration `run`: redraw every [`EVERY`]
/// accesses, and at the middle (announced on the console). Returns the TSC cycles the picture took,
/// which the run leaves out of its own time.
pub fn step(run: &str, i: u64, total: u64) -> u64 {
    if !ON.load(Ordering::Relaxed) {
        return 0;
    }
    let middle = i == total / 2;
    if !(i.is_multiple_of(EVERY) || middle) {
        return 0;
    }
    let t0 = rdtsc();
    redraw(run, i, total);
    if middle {
        let n = STATE.lock().as_ref().map_or(0, |s| s.redraws);
        println!("picture: drawn at access {i} of {total} of run {run} (redraw {n}; screenshot point)");
    }
    rdtsc() - t0
}

/// Redraw now, titled with the run and its progress.
pub fn redraw(run: &str, i: u64, total: u64) {
    if !ON.load(Ordering::Relaxed) {
        return;
    }
    let t0 = rdtsc();
    let mut cats: Vec<Category> = Vec::new();
    crate::mm::frames::scan(|_, state, owner| cats.push(Category::of(state, owner)));
    let classes: Vec<ClassBar> = crate::zcache::with(|z| z.tmem.zs_classes())
        .unwrap_or_default()
        .into_iter()
        .map(|c| ClassBar {
            size: c.class.size as u32,
            obj_allocated: c.obj_allocated,
            obj_used: c.obj_used,
            pages: c.pages_used,
        })
        .collect();
    let lines = counters();
    let Some(mut guard) = STATE.try_lock() else { return }; // another CPU is drawing: skip this one
    let Some(st) = guard.as_mut() else { return };
    let title = if total > 0 {
        format!("zkernel memory picture: {}, run {run}, access {i} of {total}", st.what)
    } else {
        format!("zkernel memory picture: {}, {run}", st.what)
    };
    let line_refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let cells = fb::with(|s| {
        let n = st.pic.draw_frames(s, &cats);
        st.pic.draw_title(s, &title);
        st.pic.draw_legend(s);
        st.pic.draw_bars(s, "zsmalloc size classes (tmem): objects used of places, smallest class left", &classes);
        st.pic.draw_text(s, &line_refs);
        n
    });
    st.redraws += 1;
    st.cells += cells.unwrap_or(0);
    st.cycles += rdtsc() - t0;
}

/// The counter lines under the bars.
fn counters() -> Vec<String> {
    let mut out = Vec::new();
    let f = crate::mm::frames::stats();
    out.push(format!("frames: {} managed, {} free, {} used, {} in CPU lists", f.managed, f.free, f.used, f.per_cpu));
    if let Some(s) = crate::swap::stats() {
        out.push(format!(
            "swap: {} resident, {} swap-outs, {} swap-ins; disk reads {} writes {}",
            s.resident, s.swapouts, s.swapins, s.disk_reads, s.disk_writes
        ));
        out.push(format!(
            "frontswap: {} stores, {} refused, {} loads, {} written back",
            s.frontswap_stores, s.frontswap_refused, s.frontswap_loads, s.written_back_pages
        ));
    }
    if let Some(t) = crate::zcache::stats() {
        let ratio = (t.stored_pages * 4096 * 100).checked_div(t.compr_data_size).unwrap_or(0);
        out.push(format!(
            "tmem: {} pages stored in {} pool frames (limit {}), ratio {}.{:02}",
            t.stored_pages,
            t.pool_pages,
            t.limit_pages,
            ratio / 100,
            ratio % 100
        ));
        if let Some(fr) = crate::zcache::fragmentation() {
            out.push(format!("zsmalloc: {} B free inside partly used zspages", fr.free_bytes_in_partial));
        }
    }
    out
}

/// Stop redrawing and print what the picture cost (`run_cycles`: the workload's time, picture included).
pub fn finish(run_cycles: u64) {
    if !ON.load(Ordering::Acquire) {
        return;
    }
    redraw("done", 0, 0);
    ON.store(false, Ordering::Release);
    if let Some(st) = STATE.lock().as_ref() {
        let per_mille = (st.cycles * 1000).checked_div(run_cycles).unwrap_or(0);
        println!(
            "picture: {} redraws, {} cells drawn, {} kcycles each on average ({}.{} % of the workload's time, left out of each swap run's ms)",
            st.redraws,
            st.cells,
            st.cycles.checked_div(st.redraws).unwrap_or(0) / 1000,
            per_mille / 10,
            per_mille % 10
        );
    }
}

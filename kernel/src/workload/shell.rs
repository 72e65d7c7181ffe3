//! The serial shell (`workload=shell`, `cargo xtask run --shell` or `--script FILE`): commands read from
//! COM1 run the swap and file workloads a few steps at a time over one tmem, and show the kernel's state
//! between the steps.
//!
//! # How it works
//!
//! | part | where |
//! |---|---|
//! | bytes in | `drivers::console::try_read_byte`, polled (the UART's interrupt stays off) |
//! | line editing, echo | `shell::LineEditor` (kernel/libs/shell; why not `noline` is in its header) |
//! | commands, errors | `shell::parse` and its table `shell::COMMANDS`, which `help` prints |
//! | running them | [`Session`] here: every figure is read from the kernel at that moment |
//!
//! The session installs one zcache (frontswap's persistent zsmalloc pool and cleancache's ephemeral
//! pool share its limit, as in `--workload all`), and starts the swap run at the first `swap N` and the
//! file run at the first `files N`; both keep their state between commands. `exit` ends them, checks
//! them as their own workloads do (a page that came back changed fails the run), prints them and returns
//! to `main`, which prints the `@@stats` report and powers off.
//!
//! # Contract
//!
//! A bad line gets one `error: …` line and the shell reads the next; a command whose workload fails
//! (a frame or a disk that gives out) prints `error: …` too and the failure is kept for the end of the
//! run. Nothing a user types can panic the kernel.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;

use shell::{Action, COMMANDS, Command, LineEditor, TraceArg};
use tmem::PoolKind;
use zstats::{FilesReport, Report, SwapReport, SwapRunReport};

use super::files::{self, FileRun, FileSpec};
use super::report::{self, Failures};
use super::swap::{self as swapdemo};
use super::swap_run::{RunSpec, SwapRun};
use crate::arch::tsc::centi_ns;
use crate::drivers::console;
use crate::init::BootFacts;
use crate::mm::{frames, trace};
use crate::{print, println, zcache};

/// The prompt; xtask's `--script` sends the next line when it sees it.
pub const PROMPT: &str = "zk> ";

/// One shell session: the workloads in progress and the specs they start from.
struct Session<'a> {
    facts: &'a BootFacts,
    swap_spec: RunSpec,
    file_spec: FileSpec,
    swap: Option<SwapRun>,
    files: Option<FileRun>,
    /// The file run's stream is finished.
    files_done: bool,
    failures: &'a mut Failures,
}

/// Run the shell until `exit`; the workloads' figures go into `report` and their failed checks into
/// `failures`.
pub fn run_shell(facts: &BootFacts, report: &mut Report, failures: &mut Failures) {
    let settings = &facts.settings;
    let alg = super::pools::algorithm(settings);
    let limit = settings.tmem_limit_pages(frames::stats().managed);
    let Some(slots) = swapdemo::slots(settings, failures) else { return };
    // One tmem for both workloads, as in `--workload all`: the pool on top of the resident budget,
    // since cleancache's frames in it are not the swap run's to give back.
    let (swap_spec, file_spec) = super::all::specs(facts, alg, limit, slots);
    if let Err(e) = zcache::install(limit, alg) {
        failures.add(format!("shell: {e}"));
        return;
    }
    println!(
        "shell: swap workload: region {} pages, memory {} pages, {} accesses after the fill; file workload: cache {} \
         pages, {} operations; one tmem of {limit} pool pages (frontswap zsmalloc, cleancache {}). Type `help`.",
        swap_spec.swap.region_pages,
        swap_spec.swap.budget_pages,
        swap_spec.accesses,
        file_spec.cache_pages,
        file_spec.ops,
        file_spec.cleancache.map_or("off", |b| b.name())
    );
    let mut s = Session { facts, swap_spec, file_spec, swap: None, files: None, files_done: false, failures };
    let mut editor = LineEditor::new();
    loop {
        print!("{PROMPT}");
        let line = read_line(&mut editor);
        match shell::parse(&line) {
            Ok(None) => {}
            Ok(Some(Command::Exit)) => break,
            Ok(Some(cmd)) => s.run(cmd),
            Err(e) => println!("error: {e}"),
        }
    }
    s.finish(report);
    trace::set_page(None);
    trace::set_file(None);
    if zcache::uninstall().is_none() {
        failures.add(String::from("shell: zcache still had live pools after both workloads ended"));
    }
}

/// Read one line from COM1, echoing as the editor says.
fn read_line(editor: &mut LineEditor) -> String {
    loop {
        let Some(byte) = console::try_read_byte() else {
            core::hint::spin_loop();
            continue;
        };
        match editor.feed(byte) {
            Action::Insert(b) => console::write_raw(&[b]),
            Action::Erase => console::write_raw(b"\x08 \x08"),
            Action::Kill(n) => (0..n).for_each(|_| console::write_raw(b"\x08 \x08")),
            Action::Line => {
                console::write_raw(b"\r\n");
                let line = editor.line().to_string();
                editor.clear();
                return line;
            }
            Action::Cancel => {
                console::write_raw(b"^C\r\n");
                return String::new();
            }
            Action::Full => console::write_raw(b"\x07"),
            Action::Ignored => {}
        }
    }
}

impl Session<'_> {
    fn run(&mut self, cmd: Command) {
        match cmd {
            Command::Help => help(),
            Command::Mem => mem(),
            Command::Pools => pools(),
            Command::Tmem => tmem_cmd(),
            Command::Swap(n) => self.swap_steps(n),
            Command::Files(n) => self.file_steps(n),
            Command::Compact => compact(),
            Command::Trace(t) => self.trace(t),
            Command::Stats => self.stats(),
            Command::Cpus => self.cpus(),
            // `run_shell` handles it.
            Command::Exit => {}
        }
    }

    fn swap_steps(&mut self, n: u64) {
        if self.swap.is_none() {
            match SwapRun::start(&self.swap_spec) {
                Ok(r) => self.swap = Some(r),
                Err(e) => return println!("error: swap: the workload could not start: {e}"),
            }
        }
        let Some(run) = self.swap.as_mut() else { return };
        let mut made = 0;
        while made < n && run.step() {
            made += 1;
        }
        let p = run.progress();
        let total = run.total_accesses();
        let Some(st) = crate::swap::stats() else { return println!("error: swap: no swapper installed") };
        println!(
            "swap: {made} accesses made, {} of {total} in all ({}); resident {} pages, swap-outs {}, swap-ins {}, \
             frontswap stores {} refused {} loads {}, disk reads {} writes {}; mismatches {}",
            p.accesses,
            if p.accesses <= self.swap_spec.swap.region_pages { "filling the region" } else { "after the fill" },
            st.resident,
            st.swapouts,
            st.swapins,
            st.frontswap_stores,
            st.frontswap_refused,
            st.frontswap_loads,
            st.disk_reads,
            st.disk_writes,
            p.mismatches
        );
        if made < n {
            println!("swap: the workload's {total} accesses are done; `exit` checks and reports it");
        }
    }

    fn file_steps(&mut self, n: u64) {
        if self.files.is_none() {
            match FileRun::start(&self.file_spec) {
                Ok(r) => self.files = Some(r),
                Err(e) => return println!("error: files: the workload could not start: {e}"),
            }
        }
        let Some(run) = self.files.as_mut() else { return };
        let mut made = 0;
        while made < n && !self.files_done {
            match run.step() {
                Ok(true) => made += 1,
                Ok(false) => self.files_done = true,
                Err(e) => {
                    self.failures.add(format!("shell: files: {e}"));
                    return println!("error: files: {e}");
                }
            }
        }
        let r = run.live_report();
        let (done, ops) = run.ops();
        println!(
            "files: {made} operations made, {done} of {ops} in all; {} reads: hits {}, misses {} = cleancache {} + \
             disk {}; {} pages cached; mismatches {}, stale {}",
            r.reads, r.hits, r.misses, r.cleancache_hits, r.disk_reads, r.cached_pages, r.mismatches, r.stale_hits
        );
        if let Some(c) = r.cleancache_stats {
            println!(
                "files: cleancache puts {} (refused {}), gets {} hit / {} missed",
                c.puts, c.failed_puts, c.succ_gets, c.failed_gets
            );
        }
        if self.files_done {
            println!("files: the workload's {ops} operations are done; `exit` checks and reports it");
        }
    }

    fn trace(&mut self, t: TraceArg) {
        let region = self.swap_spec.swap.region_pages;
        match t {
            TraceArg::Off => {
                trace::set_page(None);
                trace::set_file(None);
                println!("trace: off");
            }
            TraceArg::On | TraceArg::Page(_) => {
                let page = match t {
                    TraceArg::Page(p) => p,
                    _ => match self.facts.settings.trace() {
                        kopts::Trace::Page(p) => p,
                        _ => 0,
                    },
                };
                if page >= region {
                    return println!("error: `trace page {page}`: the swap region has pages 0 to {}", region - 1);
                }
                trace::set_page(Some(page));
                // Follow cleancache's pages of the first file too (inode 0), unless the options chose one.
                let file = match self.facts.settings.trace() {
                    kopts::Trace::File(i) => i,
                    _ => 0,
                };
                trace::set_file(Some(file));
                println!("trace: on: swap page {page}, cleancache pages of inode {file}");
            }
        }
    }

    fn stats(&self) {
        let mut r = self.facts.report();
        if let Some(run) = &self.swap {
            // The swapper and tmem live as long as the run; without them there are no figures to print,
            // and zeros would pass for some.
            let Some(live) = swap_live(run) else {
                println!("error: stats: the swap run's swapper or tmem is gone");
                return;
            };
            r.swap = Some(SwapReport { runs: vec![live], ..Default::default() });
        }
        if let Some(run) = &self.files {
            r.files = Some(FilesReport { runs: vec![run.live_report()], ..Default::default() });
        }
        println!("{}", zstats::to_line(&r));
    }

    fn cpus(&self) {
        self.facts.print_cpus();
        let f = frames::stats();
        let k = crate::mm::kmap::stats();
        println!(
            "cpus: {} frames parked in the per-CPU lists; kmap {} maps, {} unmaps, deepest nesting {}; this shell runs \
             on cpu{}",
            f.per_cpu,
            k.maps,
            k.unmaps,
            k.max_depth,
            crate::arch::cpu::id()
        );
        crate::init::print_locks();
    }

    /// End both runs, check and print them, and put them in the report.
    fn finish(&mut self, report: &mut Report) {
        if let Some(run) = self.swap.take() {
            match run.finish() {
                Ok(r) => {
                    swapdemo::print_run(&r);
                    swapdemo::check_run(&r, self.failures);
                    report.swap = Some(SwapReport { runs: vec![swapdemo::run_report(&r)], ..Default::default() });
                }
                Err(e) => self.failures.add(format!("shell: swap: {e}")),
            }
        }
        if let Some(run) = self.files.take() {
            let r = run.finish();
            files::print_run(&r);
            files::check_run(&r, self.failures);
            report.files = Some(FilesReport { runs: vec![files::run_report(&r)], ..Default::default() });
        }
    }
}

/// The swap run so far as a report object; `None` if its swapper or tmem is not installed.
fn swap_live(run: &SwapRun) -> Option<SwapRunReport> {
    let spec = run.spec();
    let p = run.progress();
    let st = crate::swap::stats()?;
    Some(SwapRunReport {
        pattern: spec.pattern.name().into(),
        tmem: swapdemo::backend_name(spec.swap.tmem).into(),
        region_pages: spec.swap.region_pages,
        budget_pages: spec.swap.budget_pages,
        accesses: p.accesses,
        mismatches: p.mismatches,
        dirty_zero_fills: p.dirty_zero_fills,
        io: st.io(),
        ms: centi_ns(run.cycles()) / 100_000_000,
        swap: report::swap_stats(&st),
        tmem_stats: zcache::stats().as_ref().map(report::tmem),
        tmem_index_bytes: zcache::index_bytes()?,
        zram_table_bytes: 0,
        series: run.series().to_vec(),
    })
}

fn help() {
    println!("commands:");
    for c in COMMANDS {
        let name = if c.args.is_empty() { c.name.to_string() } else { format!("{} {}", c.name, c.args) };
        println!("  {name:<20} {}", c.help);
    }
}

fn mem() {
    let f = frames::stats();
    println!(
        "mem: {} frames managed: free {}, used {}, in per-CPU lists {}; allocs {}, frees {}, failures {}",
        f.managed, f.free, f.used, f.per_cpu, f.allocs, f.frees, f.alloc_failures
    );
    print!("mem: free blocks by order:");
    for (order, n) in f.free_per_order.iter().enumerate() {
        print!(" {order}:{n}");
    }
    println!();
    // One pass over the frame table: each frame's owner (free and parked frames have none).
    let mut owners = [0u64; 16];
    if let Some(m) = crate::mm::facts() {
        for p in m.span.0.0..m.span.1.0 {
            if let Some(i) = frames::info(frame::Pfn(p)) {
                owners[(i.owner().0 as usize).min(owners.len() - 1)] += 1;
            }
        }
    }
    print!("mem: frames by owner:");
    for (o, &n) in owners.iter().enumerate().filter(|&(o, &n)| n > 0 && o > 0) {
        let name = if o == owners.len() - 1 { "other" } else { frame::Owner(o as u16).name() };
        print!(" {name} {n},");
    }
    println!(" none (free, parked or unmanaged) {}", owners[0]);
}

fn kind_name(k: PoolKind) -> &'static str {
    match k {
        PoolKind::Persistent => "persistent",
        PoolKind::Ephemeral => "ephemeral",
    }
}

fn pools() {
    let shown = zcache::with(|z| {
        let ids: alloc::vec::Vec<_> = z.tmem.pool_ids().collect();
        if ids.is_empty() {
            println!("pools: tmem holds no pool yet (`swap N` and `files N` create them)");
        }
        for id in ids {
            let Ok(p) = z.tmem.pool_stats(id) else { continue };
            println!(
                "pool {} ({}, {}): {} pages stored ({} same-filled) in {} frames; compressed {} bytes",
                id.0,
                kind_name(p.kind),
                p.backend.name(),
                p.stored_pages,
                p.store.same_pages,
                p.pool_pages,
                p.store.compr_data_size
            );
            if let Some(zs) = z.tmem.pool_zs_stats(id) {
                println!(
                    "  zsmalloc: {} zspages, objects {} used of {}, {} huge; {} frames compaction could free; {} \
                     spanning maps",
                    zs.zspages, zs.obj_used, zs.obj_allocated, zs.huge_objects, zs.freeable, zs.span_maps
                );
                println!("  class  size  frames/zspage  objs/zspage  zspages  used/allocated  freeable");
                for c in zs.classes.iter().filter(|c| c.zspages > 0) {
                    println!(
                        "  {:>5}  {:>4}  {:>13}  {:>11}  {:>7}  {:>7}/{:<7}  {:>8}",
                        c.class.index,
                        c.class.size,
                        c.class.pages_per_zspage,
                        c.class.objs_per_zspage,
                        c.zspages,
                        c.obj_used,
                        c.obj_allocated,
                        c.freeable
                    );
                }
            }
            if let Some(zb) = z.tmem.pool_zbud_stats(id) {
                println!(
                    "  zbud: {} frames with two objects, {} with one; {} chunks used; {} objects evicted",
                    zb.buddied_pages, zb.unbuddied_pages, zb.chunks_used, zb.objects_evicted
                );
            }
        }
    });
    if shown.is_none() {
        println!("error: pools: tmem is not installed");
    }
}

fn tmem_cmd() {
    let shown = zcache::with(|z| {
        let t = z.tmem.stats();
        println!(
            "tmem: {} pools; {} pages stored ({} persistent, {} ephemeral, {} same-filled) in {} pool frames of limit \
             {} (accept below {}){}",
            t.pools,
            t.stored_pages,
            t.persistent_pages,
            t.ephemeral_pages,
            t.same_pages,
            t.pool_pages,
            t.limit_pages,
            t.accept_pages,
            if t.full { ", FULL" } else { "" }
        );
        println!(
            "tmem: puts {} (failed {}, refused full {}), gets {} (hits {}, misses {}), flushes {}, ephemeral drops {}, \
             written back {}, compacted {} frames",
            t.puts,
            t.put_failures,
            t.refused_full,
            t.gets,
            t.get_hits,
            t.get_misses,
            t.flush_pages,
            t.ephemeral_drops,
            t.written_back_pages,
            t.pages_compacted
        );
        for id in z.tmem.pool_ids() {
            if let Ok(p) = z.tmem.pool_stats(id) {
                println!(
                    "  pool {} {:<10} {:<9} objects {:>5}  pages {:>6}  frames {:>5}",
                    id.0,
                    kind_name(p.kind),
                    p.backend.name(),
                    p.objects,
                    p.stored_pages,
                    p.pool_pages
                );
            }
        }
    });
    if shown.is_none() {
        println!("error: tmem: not installed");
    }
}

fn compact() {
    let r = zcache::with(|z| {
        let before = z.tmem.total_pages();
        let freed = z.tmem.compact();
        (before, freed, z.tmem.total_pages())
    });
    match r {
        Some((before, Ok(freed), after)) => {
            println!("compact: {freed} frames freed; pool frames {before} -> {after}")
        }
        Some((_, Err(e), _)) => println!("error: compact: {e}"),
        None => println!("error: compact: tmem is not installed"),
    }
}

//! The workloads: what `cargo xtask run` shows. Nothing else in the kernel depends on this room.
//!
//! | file | `--workload` | what |
//! |---|---|---|
//! | [`pools`] | `pools` (default) | store pages in every pool on real frames, read them back, compact; zram parity |
//! | [`pooltable`] | `pools` (default) | the seeds' allocator table of `cargo xtask bench --pools`, on real frames |
//! | [`swap`] + [`swap_run`] | `swap` | the same swap workload without and with tmem behind frontswap |
//! | [`files`] | `files` | the page cache over the file disk without and with cleancache |
//! | [`all`] | `all` | both workloads at once over one tmem |
//! | [`sweep`] | `sweep` | the swap workload at memory sizes 20–100 % of its region, every configuration (`cargo xtask bench --sweep`) |
//! | [`soak`] | `soak` | swap, tmem and zram rounds with device and frame faults injected (`cargo xtask soak`) |
//! | [`shell`] | `shell` | the serial shell: commands run the swap and file workloads step by step and show the kernel's state (`cargo xtask run --shell`, `--script FILE`) |
//! | [`picture`] | — | the live memory picture on the framebuffer, redrawn while a swap run goes on |
//! | [`report`] | — | the kernel's counters as `zstats` objects; the failures a run ends with |
//!
//! Every workload checks its own results (pages intact, nothing stale, nothing left behind) and adds a
//! line to the failures for each thing that does not hold; a run with any failure exits QEMU with the
//! failure code, so `cargo xtask run` fails too.

pub mod all;
pub mod files;
pub mod picture;
pub mod pools;
pub mod pooltable;
pub mod report;
pub mod shell;
pub mod soak;
pub mod swap;
pub mod swap_run;
pub mod swap_smp;
pub mod sweep;

use kopts::Workload;
use zstats::Report;

use crate::init::BootFacts;
use report::Failures;

/// Run the workload the options ask for; its figures go into `report`, and every check that did not
/// hold into `report.failures`.
pub fn run(facts: &BootFacts, report: &mut Report) {
    let mut failures = Failures::default();
    crate::zcache::set_tunables(tunables(&facts.settings));
    // The page trace the options ask for (`trace=page:N`, `trace=file:INODE`), from the first step on.
    match facts.settings.trace() {
        kopts::Trace::Page(p) => crate::mm::trace::set_page(Some(p)),
        kopts::Trace::File(i) => crate::mm::trace::set_file(Some(i)),
        kopts::Trace::Off => {}
    }
    match facts.settings.workload() {
        Workload::Pools => {
            pools::run(facts, report, &mut failures);
            pooltable::run(facts, report, &mut failures);
        }
        Workload::Swap => swap::run_demo(facts, report, &mut failures),
        Workload::Files => files::run_demo(facts, report, &mut failures),
        Workload::All => all::run_all(facts, report, &mut failures),
        Workload::Sweep => sweep::run_sweep(facts, report, &mut failures),
        Workload::Soak => soak::run_soak(facts, report, &mut failures),
        Workload::Shell => shell::run_shell(facts, report, &mut failures),
    }
    report.failures = failures.0;
}

/// zcache's tunables from the kernel options (`zv_max_zsize`, `zv_max_mean_zsize`,
/// `zv_page_count_policy_percent`, `ephemeral_reclaim`).
pub fn tunables(s: &kopts::Settings) -> crate::zcache::Tunables {
    crate::zcache::Tunables {
        zv_max_zsize: s.zv_max_zsize() as usize,
        zv_max_mean_zsize: s.zv_max_mean_zsize() as usize,
        zv_page_count_policy_percent: s.zv_page_count_policy_percent() as u32,
        ephemeral_reclaim: match s.ephemeral_reclaim() {
            kopts::EphemeralReclaim::Objects => tmem::EphemeralReclaim::ObjectOrder,
            kopts::EphemeralReclaim::ZbudFrames => tmem::EphemeralReclaim::ZbudFrames,
        },
    }
}

//! Per-CPU compression streams: each CPU owns one compressor per algorithm, with all its buffers, so
//! storing a page on the reclaim path allocates nothing (Linux's `drivers/block/zram/zcomp.c` and
//! zswap's per-CPU `crypto_acomp_ctx`).
//!
//! # Why per CPU
//!
//! A [`Compressor`] carries its algorithm state and its output buffer (about 31 KiB for LZ4, ~330 KiB
//! for deflate; `kernel/libs/compress`). Allocating that per page would be slow and, worse, would need
//! memory exactly when the kernel is short of it; one shared compressor would serialise every CPU on
//! one lock. So each CPU gets its own, built for every CPU that is up when zcache is installed
//! ([`prepare`], task context, heap to spare: zcomp's rule that no stream is ever built on the reclaim
//! or fault path) and kept for good. A stream still missing at first use (a pools demo's other
//! algorithm, a deflate level changed) is built then, from task context, and counted in
//! [`late_builds`]. The stream's lock is taken by its own CPU, and once by [`prepare`] on the CPU that
//! installs zcache; it exists so that a stream is never used twice at once (should an interrupt handler
//! ever compress: none does today).
//!
//! # Contract
//!
//! | call | gives | rule |
//! |---|---|---|
//! | [`with_stream`]`(alg, f)` | this CPU's compressor for `alg`, lent to `f` | not from interrupt context; `f` must not call `with_stream` again (it would spin on its own lock) |
//! | [`prepare`]`(alg)` | `alg`'s stream built for every CPU that is up | task context (zcache's `install`) |
//!
//! A deflate stream is rebuilt when another level is asked for; LZ4 has one stream per CPU.
//!
//! Creating a deflate stream builds miniz_oxide's 64 KiB state on the stack (about 80 KiB of stack
//! optimised; the workspace builds `compress`, `miniz_oxide` and `lz4_flex` optimised in debug too).

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::lock::{Lock, LockStats};
use compress::{Algorithm, CompressError, Compressor};
use x86_64::instructions::interrupts::without_interrupts;

use crate::mm::kmap::{MAX_CPUS, cpu_id};

/// One CPU's streams.
struct CpuStreams {
    lz4: Option<Compressor>,
    deflate: Option<Compressor>,
}

static STREAMS: [Lock<CpuStreams>; MAX_CPUS] =
    [const { Lock::new("streams", 45, CpuStreams { lz4: None, deflate: None }) }; MAX_CPUS];

/// Every CPU's stream lock, summed (each is taken by its own CPU only, so contention stays 0).
pub fn lock_stats() -> LockStats {
    LockStats::sum("streams", STREAMS.iter().map(Lock::stats))
}

static LATE_BUILDS: AtomicU64 = AtomicU64::new(0);

/// Streams built at first use instead of by [`prepare`].
pub fn late_builds() -> u64 {
    LATE_BUILDS.load(Ordering::Relaxed)
}

/// Build `alg`'s stream now for every CPU that is up (`arch::smp::online`), so that none is built on the
/// fault or reclaim path. Call from task context; a CPU that already has it keeps it.
pub fn prepare(alg: Algorithm) -> Result<(), CompressError> {
    for cpu in (0..MAX_CPUS).filter(|&c| crate::arch::smp::online(c)) {
        without_interrupts(|| {
            let mut s = STREAMS[cpu].lock();
            let slot = match alg {
                Algorithm::Lz4 => &mut s.lz4,
                Algorithm::Deflate { .. } => &mut s.deflate,
            };
            if slot.as_ref().is_none_or(|c| c.algorithm() != alg) {
                *slot = None;
                *slot = Some(Compressor::new(alg)?);
            }
            Ok::<(), CompressError>(())
        })?;
    }
    Ok(())
}

/// Run `f` with this CPU's compressor for `alg`, creating it on first use. `Err(BadLevel)` for a deflate
/// level outside 1..=10.
pub fn with_stream<R>(alg: Algorithm, f: impl FnOnce(&mut Compressor) -> R) -> Result<R, CompressError> {
    without_interrupts(|| {
        let mut cpu = STREAMS[cpu_id()].lock();
        let slot = match alg {
            Algorithm::Lz4 => &mut cpu.lz4,
            Algorithm::Deflate { .. } => &mut cpu.deflate,
        };
        if slot.as_ref().is_none_or(|c| c.algorithm() != alg) {
            *slot = None; // free the old stream before building the new one
            *slot = Some(Compressor::new(alg)?);
            LATE_BUILDS.fetch_add(1, Ordering::Relaxed);
        }
        Ok(f(slot.as_mut().expect("just created")))
    })
}

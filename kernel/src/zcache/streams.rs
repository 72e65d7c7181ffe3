//! Per-CPU compression streams: each CPU owns one compressor per algorithm, with all its buffers, so
//! storing a page on the reclaim path allocates nothing (Linux's `drivers/block/zram/zcomp.c` and
//! zswap's per-CPU `crypto_acomp_ctx`).
//!
//! # Why per CPU
//!
//! A [`Compressor`] carries its algorithm state and its output buffer (about 31 KiB for LZ4, ~330 KiB
//! for deflate; `kernel/libs/compress`). Allocating that per page would be slow and, worse, would need
//! memory exactly when the kernel is short of it; one shared compressor would serialise every CPU on
//! one lock. So each CPU gets its own, created on first use (from task context, with heap to spare)
//! and kept for good. The stream's lock is only ever taken by its own CPU; it exists so that a
//! stream is never used twice at once should an interrupt handler ever compress (none does today).
//!
//! # Contract
//!
//! | call | gives | rule |
//! |---|---|---|
//! | [`with_stream`]`(alg, f)` | this CPU's compressor for `alg`, lent to `f` | not from interrupt context; `f` must not call `with_stream` again (it would spin on its own lock) |
//!
//! A deflate stream is rebuilt when another level is asked for; LZ4 has one stream per CPU.
//!
//! Creating a deflate stream builds miniz_oxide's 64 KiB state on the stack (about 80 KiB of stack
//! optimised; the workspace builds `compress`, `miniz_oxide` and `lz4_flex` optimised in debug too).

use compress::{Algorithm, CompressError, Compressor};
use spin::Mutex;
use x86_64::instructions::interrupts::without_interrupts;

use crate::mm::kmap::{MAX_CPUS, cpu_id};

/// One CPU's streams.
struct CpuStreams {
    lz4: Option<Compressor>,
    deflate: Option<Compressor>,
}

static STREAMS: [Mutex<CpuStreams>; MAX_CPUS] =
    [const { Mutex::new(CpuStreams { lz4: None, deflate: None }) }; MAX_CPUS];

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
        }
        Ok(f(slot.as_mut().expect("just created")))
    })
}

//! Time stamp counter: cycle counts for benchmarks, turned into nanoseconds by calibrating the TSC
//! against the legacy PIT (channel 2, the PC speaker's timer, which runs at 1.193182 MHz everywhere).
//!
//! Figures measured this way are for comparing things in one run (kmap against a direct map, buddy
//! against per-CPU lists), never for asserting in tests: under TCG the guest's clock is the host's,
//! shared with everything else the host does.

use core::sync::atomic::{AtomicU64, Ordering};

use x86_64::instructions::port::Port;

/// The PIT's input clock in Hz.
const PIT_HZ: u64 = 1_193_182;

static TSC_HZ: AtomicU64 = AtomicU64::new(0);

/// Read the TSC.
#[inline(always)]
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC reads a counter into registers; it has no memory effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Measure the TSC frequency over `ms` milliseconds of PIT channel 2 (cached after the first call).
pub fn hz() -> u64 {
    let cached = TSC_HZ.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    let ms = 20u64;
    let count = (PIT_HZ * ms / 1000) as u16;
    let mut gate = Port::<u8>::new(0x61);
    let mut command = Port::<u8>::new(0x43);
    let mut channel2 = Port::<u8>::new(0x42);
    // SAFETY: ports 0x61 (speaker/gate control), 0x43 (PIT command) and 0x42 (PIT channel 2) belong to
    // the legacy PIT that no other zkernel code uses; the speaker output stays off (bit 1 clear).
    let (start, end) = unsafe {
        let g = gate.read();
        gate.write((g & !0x02) | 0x01); // gate channel 2 on, speaker off
        command.write(0b1011_0000); // channel 2, low then high byte, mode 0 (interrupt on terminal count)
        channel2.write(count as u8);
        channel2.write((count >> 8) as u8);
        let start = rdtsc();
        while gate.read() & 0x20 == 0 {} // OUT2 goes high when the count reaches 0
        (start, rdtsc())
    };
    let hz = (end - start) * 1000 / ms;
    TSC_HZ.store(hz, Ordering::Relaxed);
    hz
}

/// Nanoseconds for `cycles` TSC cycles, in hundredths (so 12.34 ns is 1234) to print without floats.
pub fn centi_ns(cycles: u64) -> u64 {
    (cycles as u128 * 100_000_000_000 / hz().max(1) as u128) as u64
}

/// Spin for at least `us` microseconds (TSC-timed; the first call measures the TSC, 20 ms).
/// Milliseconds in `cycles` TSC cycles.
pub fn cycles_to_ms(cycles: u64) -> u64 {
    (u128::from(cycles) * 1000 / u128::from(hz().max(1))) as u64
}

pub fn delay_us(us: u64) {
    let end = rdtsc() + hz() / 1_000_000 * us;
    while rdtsc() < end {
        core::hint::spin_loop();
    }
}

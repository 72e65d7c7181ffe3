//! The x86_64 architecture layer: descriptor tables, exceptions, the QEMU exit device, fault probes.
//!
//! One of the few places allowed to use `unsafe` (with a `// SAFETY:` line on every block): loading
//! descriptor tables, port I/O and the probe routines are things the compiler cannot check.

pub mod apic;
pub mod cpu;
pub mod exceptions;
pub mod gdt;
pub mod interrupts;
pub mod lock;
pub mod probe;
pub mod qemu;
pub mod smp;
pub mod tlb;
pub mod tsc;

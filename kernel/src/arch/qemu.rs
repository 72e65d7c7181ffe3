//! Leaving QEMU with a verdict: the `isa-debug-exit` device at port 0xf4.
//!
//! QEMU is started with `-device isa-debug-exit,iobase=0xf4,iosize=0x04`. A guest write of `value` to the
//! port makes QEMU exit with status `(value << 1) | 1`:
//!
//! | guest writes | QEMU exits | xtask reads it as |
//! |---|---|---|
//! | `0x10` ([`ExitCode::Success`]) | 33 | pass |
//! | `0x11` ([`ExitCode::Failed`]) | 35 | the kernel reported a failure |
//! | nothing, machine reset (`-no-reboot`) | 0 | no exit code written (triple fault?) |
//! | — | 1 | QEMU itself failed (bad option, missing firmware) |
//!
//! Status 1 can never be a guest's verdict, which is why success is not 0.

use x86_64::instructions::port::Port;

/// The port the `isa-debug-exit` device listens on.
pub const DEBUG_EXIT_PORT: u16 = 0xf4;

/// What the guest tells QEMU on the way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum ExitCode {
    Success = 0x10,
    Failed = 0x11,
}

/// Exit QEMU with `code`. Off QEMU (no device at the port) the CPU halts instead.
pub fn exit(code: ExitCode) -> ! {
    let mut port = Port::<u32>::new(DEBUG_EXIT_PORT);
    // SAFETY: port 0xf4 is the isa-debug-exit device xtask configures; on a machine without it, a write
    // to an unclaimed ISA port is ignored. Either way no memory is touched.
    unsafe { port.write(code as u32) };
    super::cpu::halt_forever()
}

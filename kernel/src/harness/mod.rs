//! The harness: the fatal path (exception reports, the panic handler) and the test-kernel runner.
//!
//! Dependencies run one way: `testing` → `fatal` → `arch`. arch reaches the fatal path only through the
//! handler `init` registers (`arch::interrupts::set_fatal_handler`), never by name.

pub mod fatal;
pub mod testing;

//! The fatal path: exception reports, the panic handler, and how a test kernel expects one of them.
//!
//! Everything that cannot continue ends here (xv6's `panic()`): [`fatal`] prints one report naming
//! what happened and where, then exits QEMU. The exit code is *failure* unless a test kernel declared
//! this exact event as its expected outcome (`testing::Outcome::Fatal`) and the event passed the case's
//! check — that is how `should_panic` and `double_fault` pass by dying the right way.

use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};

use super::testing;
use crate::arch::exceptions::describe_page_fault;
use crate::arch::gdt;
use crate::arch::qemu::{ExitCode, exit};
use crate::drivers::console;
use crate::println;

pub use crate::arch::exceptions::{FatalKind, FatalReport};

/// The event a test case expects to end it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    Panic,
    Exception(u8),
}

impl Expected {
    fn matches(self, kind: FatalKind) -> bool {
        match (self, kind) {
            (Expected::Panic, FatalKind::Panic) => true,
            (Expected::Exception(v), FatalKind::Exception { vector, .. }) => v == vector,
            _ => false,
        }
    }
}

/// A test's verdict on the report of the event it expected.
pub type Check = fn(&FatalReport<'_>) -> Result<(), &'static str>;

static IN_FATAL: AtomicBool = AtomicBool::new(false);

/// Print the report and exit QEMU. Never returns.
pub fn fatal(report: &FatalReport<'_>) -> ! {
    console::force_unlock();
    // The dying context never releases what it holds: the lock-order record must not blame the report.
    crate::arch::lock::forget_held();
    if IN_FATAL.swap(true, Ordering::SeqCst) {
        println!("FATAL: a second fatal event while reporting the first; giving up");
        exit(ExitCode::Failed);
    }
    print_report(report);
    match testing::expected_fatal() {
        Some((expected, check)) if expected.matches(report.kind) => match check(report) {
            Ok(()) => {
                testing::case_ended(true, "ended by the expected event");
                exit(ExitCode::Success)
            }
            Err(why) => {
                testing::case_ended(false, why);
                exit(ExitCode::Failed)
            }
        },
        Some(_) => {
            testing::case_ended(false, "ended by an event other than the expected one");
            exit(ExitCode::Failed)
        }
        None => {
            testing::case_ended(
                false,
                match report.kind {
                    FatalKind::Panic => "panicked",
                    FatalKind::Exception { .. } => "unhandled CPU exception",
                },
            );
            exit(ExitCode::Failed)
        }
    }
}

fn print_report(r: &FatalReport<'_>) {
    match r.kind {
        FatalKind::Panic => {
            match r.panic.and_then(|p| p.location()) {
                Some(l) => println!("PANIC at {}:{}:{} on CPU {}", l.file(), l.line(), l.column(), r.cpu),
                None => println!("PANIC at an unknown location on CPU {}", r.cpu),
            }
            if let Some(p) = r.panic {
                println!("  {}", p.message());
            }
        }
        FatalKind::Exception { vector, mnemonic, name } => {
            println!("EXCEPTION {mnemonic} {name} (vector {vector}) on CPU {}", r.cpu);
            if let Some(code) = r.error_code {
                println!("  error code {code:#x}");
            }
            println!("  RIP {:#018x}  RSP {:#018x}", r.rip, r.rsp);
            if let (Some(cr2), Some(code)) = (r.cr2, r.error_code) {
                println!("  CR2 {cr2:#018x}: {}", describe_page_fault(code));
            }
            let df = gdt::ist_stack_of(r.cpu, gdt::DOUBLE_FAULT_IST);
            if df.contains(&r.handler_rsp) {
                println!("  handled on CPU {}'s double-fault IST stack ({:#x}..{:#x})", r.cpu, df.start, df.end);
            }
        }
    }
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    fatal(&FatalReport {
        kind: FatalKind::Panic,
        error_code: None,
        rip: 0,
        rsp: 0,
        cr2: None,
        handler_rsp: crate::arch::cpu::stack_pointer(),
        cpu: crate::arch::cpu::id(),
        panic: Some(info),
    })
}

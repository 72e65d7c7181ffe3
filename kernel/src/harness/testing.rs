//! The test-kernel harness: each file in `tests/` is a bootable kernel with a table of cases.
//!
//! # Contract with xtask
//!
//! A test kernel prints one line per case, `case <name> ... ok` or `case <name> ... FAILED: <why>`,
//! and ends by writing 0x10 (all passed) or 0x11 (a case failed) to the isa-debug-exit port. xtask passes
//! a kernel only when QEMU exits 33 *and* the serial output agrees: one `ok` line per announced case
//! (`test kernel NAME: N case(s)`) and no `FAILED` line.
//!
//! A case either returns ([`Outcome::Returns`]) or is expected to end the kernel through the fatal path
//! ([`Outcome::Fatal`]): a panic, or a given exception, whose report must also pass the case's check.
//! A fatal case must be the last in its table, and a fatal case that returns has failed.
//!
//! ```ignore
//! zkernel::test_kernel!("boot_basic", &[
//!     Case::returns("heap_allocation_works", heap_allocation_works),
//! ]);
//! ```

use spin::Mutex;

use super::fatal::{Check, Expected};
use crate::arch::qemu::{ExitCode, exit};
use crate::println;

/// How a case is expected to end.
#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    /// The function returns; a failed assertion panics and fails the case.
    Returns,
    /// The case ends the kernel with this event, and the report passes the check.
    Fatal(Expected, Check),
}

/// One row of a test kernel's table.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    pub name: &'static str,
    pub run: fn(),
    pub outcome: Outcome,
}

impl Case {
    pub const fn returns(name: &'static str, run: fn()) -> Self {
        Self { name, run, outcome: Outcome::Returns }
    }

    pub const fn fatal(name: &'static str, run: fn(), expected: Expected, check: Check) -> Self {
        Self { name, run, outcome: Outcome::Fatal(expected, check) }
    }
}

struct State {
    current: Option<&'static str>,
    expected: Option<(Expected, Check)>,
}

static STATE: Mutex<State> = Mutex::new(State { current: None, expected: None });

/// The fatal event the running case expects, if any (read by the fatal path).
pub(crate) fn expected_fatal() -> Option<(Expected, Check)> {
    STATE.try_lock().and_then(|s| s.expected)
}

/// Called by the fatal path: close the running case's line, if a case is running.
pub(crate) fn case_ended(ok: bool, why: &str) {
    let current = STATE.try_lock().and_then(|s| s.current);
    if let Some(name) = current {
        if ok {
            println!("case {name} ... ok ({why})");
        } else {
            println!("case {name} ... FAILED: {why}");
        }
    }
}

/// Run every case in order, print one line each, and exit QEMU with the verdict.
pub fn run(kernel: &str, cases: &[Case]) -> ! {
    println!("test kernel {kernel}: {} case(s)", cases.len());
    for (i, case) in cases.iter().enumerate() {
        let fatal = match case.outcome {
            Outcome::Returns => None,
            Outcome::Fatal(e, c) => Some((e, c)),
        };
        if fatal.is_some() && i + 1 != cases.len() {
            println!("case {} ... FAILED: a case expecting a fatal event must be the last", case.name);
            exit(ExitCode::Failed);
        }
        {
            let mut s = STATE.lock();
            s.current = Some(case.name);
            s.expected = fatal;
        }
        (case.run)();
        if let Some((expected, _)) = fatal {
            println!("case {} ... FAILED: returned, but {expected:?} was expected to end it", case.name);
            exit(ExitCode::Failed);
        }
        STATE.lock().current = None;
        println!("case {} ... ok", case.name);
    }
    println!("test kernel {kernel}: all {} case(s) passed", cases.len());
    exit(ExitCode::Success)
}

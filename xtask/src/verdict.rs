//! Judging a QEMU run: exit status, timeout and serial output → pass or fail with a reason.
//!
//! | what happened | verdict |
//! |---|---|
//! | status 33 (guest wrote 0x10), a `case … ok` line, no `FAILED` line | pass |
//! | status 33 without any case line, with a `FAILED` line, or with fewer `ok` lines than announced cases | fail: output and status disagree |
//! | status 35 (guest wrote 0x11) | fail: the kernel reported failure |
//! | killed at the timeout | fail: timed out (hung guest) |
//! | status 0 | fail: no exit code written (triple fault/reset under `-no-reboot`, or power-off) |
//! | status 1 | fail: QEMU itself failed (bad option, missing firmware, KVM error) |
//! | any other status, or killed by a signal | fail: unexpected QEMU status |

use std::fmt;

/// Why a run did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// QEMU exited 35: the kernel wrote 0x11.
    KernelFailed,
    /// The run outlived its timeout and was killed.
    Timeout { secs: u64 },
    /// QEMU exited 0: the guest never wrote an exit code.
    NoExitCode,
    /// QEMU exited 1: QEMU's own error.
    QemuError,
    /// QEMU died of a signal, or exited with a status no guest can produce.
    Unexpected { status: Option<i32> },
    /// Status 33 but the serial output does not back it up.
    Inconsistent { why: &'static str },
}

impl Failure {
    /// The short name used in `tests/Cargo.toml`'s `harness-checks` table.
    pub fn key(&self) -> &'static str {
        match self {
            Failure::KernelFailed => "kernel-failed",
            Failure::Timeout { .. } => "timeout",
            Failure::NoExitCode => "no-exit-code",
            Failure::QemuError => "qemu-error",
            Failure::Unexpected { .. } => "unexpected-status",
            Failure::Inconsistent { .. } => "inconsistent",
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::KernelFailed => write!(f, "kernel reported failure (wrote 0x11, QEMU exit 35)"),
            Failure::Timeout { secs } => write!(f, "timed out after {secs} s: the guest hung and was killed"),
            Failure::NoExitCode => {
                write!(f, "no exit code written (QEMU exit 0: triple fault/reset under -no-reboot, or power-off)")
            }
            Failure::QemuError => write!(f, "QEMU error (exit 1): QEMU itself failed, see its stderr"),
            Failure::Unexpected { status: Some(s) } => write!(f, "unexpected QEMU exit status {s}"),
            Failure::Unexpected { status: None } => write!(f, "QEMU was killed by a signal"),
            Failure::Inconsistent { why } => write!(f, "exit 33 but {why}"),
        }
    }
}

impl std::error::Error for Failure {}

/// What the harness observed of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    /// QEMU's exit status; `None` when it died of a signal (including our kill at the timeout).
    pub status: Option<i32>,
    pub timed_out: bool,
    pub timeout_secs: u64,
    /// `case … ok` lines on the serial console.
    pub cases_ok: usize,
    /// `case … FAILED` lines.
    pub cases_failed: usize,
    /// The case count the kernel announced (`test kernel NAME: N case(s)`), if it did.
    pub cases_expected: Option<usize>,
}

/// The verdict from QEMU's exit alone (what `cargo xtask run` uses).
pub fn exit_verdict(status: Option<i32>, timed_out: bool, timeout_secs: u64) -> Result<(), Failure> {
    if timed_out {
        return Err(Failure::Timeout { secs: timeout_secs });
    }
    match status {
        Some(boot::EXIT_SUCCESS) => Ok(()),
        Some(boot::EXIT_FAILED) => Err(Failure::KernelFailed),
        Some(0) => Err(Failure::NoExitCode),
        Some(1) => Err(Failure::QemuError),
        status => Err(Failure::Unexpected { status }),
    }
}

/// The verdict on a test kernel: the exit verdict, and on success the serial output must agree.
pub fn classify(o: &Observed) -> Result<(), Failure> {
    exit_verdict(o.status, o.timed_out, o.timeout_secs)?;
    if o.cases_failed > 0 {
        Err(Failure::Inconsistent { why: "a case printed FAILED" })
    } else if o.cases_ok == 0 {
        Err(Failure::Inconsistent { why: "no `case … ok` line reached the serial console" })
    } else if o.cases_expected.is_some_and(|n| n != o.cases_ok) {
        Err(Failure::Inconsistent { why: "fewer `case … ok` lines than the kernel announced cases" })
    } else {
        Ok(())
    }
}

/// A serial line's case result: `Some((name, true))` for `case NAME ... ok…`.
pub fn parse_case_line(line: &str) -> Option<(&str, bool)> {
    let rest = line.strip_prefix("case ")?;
    let (name, result) = rest.split_once(" ... ")?;
    if result.starts_with("ok") {
        Some((name, true))
    } else if result.starts_with("FAILED") {
        Some((name, false))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(status: Option<i32>) -> Observed {
        Observed { status, timed_out: false, timeout_secs: 60, cases_ok: 1, cases_failed: 0, cases_expected: Some(1) }
    }

    #[test]
    fn only_33_with_case_lines_passes() {
        assert_eq!(classify(&obs(Some(33))), Ok(()));
        for s in [Some(0), Some(1), Some(2), Some(34), Some(35), Some(-1), None] {
            assert!(classify(&obs(s)).is_err(), "status {s:?} must not pass");
        }
    }

    #[test]
    fn each_failure_has_its_reason() {
        assert_eq!(classify(&obs(Some(35))), Err(Failure::KernelFailed));
        assert_eq!(classify(&obs(Some(0))), Err(Failure::NoExitCode));
        assert_eq!(classify(&obs(Some(1))), Err(Failure::QemuError));
        assert_eq!(classify(&obs(Some(7))), Err(Failure::Unexpected { status: Some(7) }));
        assert_eq!(classify(&obs(None)), Err(Failure::Unexpected { status: None }));
    }

    #[test]
    fn a_timeout_fails_whatever_the_status() {
        let mut o = obs(None);
        o.timed_out = true;
        o.timeout_secs = 5;
        assert_eq!(classify(&o), Err(Failure::Timeout { secs: 5 }));
        o.status = Some(33);
        assert_eq!(classify(&o), Err(Failure::Timeout { secs: 5 }));
        assert!(classify(&o).unwrap_err().to_string().contains("timed out after 5 s"));
    }

    #[test]
    fn exit_33_must_agree_with_the_output() {
        let mut o = obs(Some(33));
        o.cases_ok = 0;
        assert!(matches!(classify(&o), Err(Failure::Inconsistent { .. })));
        o.cases_ok = 3;
        o.cases_failed = 1;
        assert!(matches!(classify(&o), Err(Failure::Inconsistent { .. })));
        // A kernel that exits 33 after 2 of its 5 cases has not passed.
        o.cases_failed = 0;
        o.cases_ok = 2;
        o.cases_expected = Some(5);
        assert!(matches!(classify(&o), Err(Failure::Inconsistent { .. })));
        o.cases_ok = 5;
        assert_eq!(classify(&o), Ok(()));
    }

    #[test]
    fn keys_match_the_harness_check_table() {
        assert_eq!(Failure::KernelFailed.key(), "kernel-failed");
        assert_eq!(Failure::Timeout { secs: 1 }.key(), "timeout");
        assert_eq!(Failure::NoExitCode.key(), "no-exit-code");
    }

    #[test]
    fn case_lines() {
        assert_eq!(parse_case_line("case heap_works ... ok"), Some(("heap_works", true)));
        assert_eq!(parse_case_line("case p ... ok (ended by the expected event)"), Some(("p", true)));
        assert_eq!(parse_case_line("case x ... FAILED: boom"), Some(("x", false)));
        assert_eq!(parse_case_line("case x ... maybe"), None);
        assert_eq!(parse_case_line("test kernel x: 1 case(s)"), None);
    }
}

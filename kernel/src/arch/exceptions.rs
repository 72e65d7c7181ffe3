//! Exceptions as data: the table of CPU exception vectors, the report a fatal event produces, and the
//! page-fault error-code decoder. A leaf module: it knows no handler and no subsystem, so the fatal
//! path (`harness::fatal`) and the handlers (`arch::interrupts`) can both use it without a cycle.

use core::panic::PanicInfo;

use x86_64::structures::idt::PageFaultErrorCode;

/// Vector, mnemonic and name of each exception, for reports.
pub const EXCEPTIONS: &[(u8, &str, &str)] = &[
    (0, "#DE", "divide error"),
    (1, "#DB", "debug"),
    (2, "NMI", "non-maskable interrupt"),
    (3, "#BP", "breakpoint"),
    (4, "#OF", "overflow"),
    (5, "#BR", "bound range exceeded"),
    (6, "#UD", "invalid opcode"),
    (7, "#NM", "device not available"),
    (8, "#DF", "double fault"),
    (10, "#TS", "invalid TSS"),
    (11, "#NP", "segment not present"),
    (12, "#SS", "stack-segment fault"),
    (13, "#GP", "general protection fault"),
    (14, "#PF", "page fault"),
    (16, "#MF", "x87 floating-point error"),
    (17, "#AC", "alignment check"),
    (18, "#MC", "machine check"),
    (19, "#XM", "SIMD floating-point exception"),
    (20, "#VE", "virtualization exception"),
    (21, "#CP", "control protection exception"),
    (28, "#HV", "hypervisor injection exception"),
    (29, "#VC", "VMM communication exception"),
    (30, "#SX", "security exception"),
];

/// What ended the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FatalKind {
    /// A CPU exception with no way to continue.
    Exception { vector: u8, mnemonic: &'static str, name: &'static str },
    /// A Rust panic.
    Panic,
}

/// Everything the report prints; test checks read it too.
#[derive(Debug, Clone, Copy)]
pub struct FatalReport<'a> {
    pub kind: FatalKind,
    pub error_code: Option<u64>,
    /// Instruction pointer of the interrupted code (exceptions only).
    pub rip: u64,
    /// Stack pointer of the interrupted code (exceptions only).
    pub rsp: u64,
    /// Faulting address, for a page fault.
    pub cr2: Option<u64>,
    /// Where the handler itself runs: tells whether an IST stack was used.
    pub handler_rsp: u64,
    /// The CPU the event happened on (`arch::cpu::id`).
    pub cpu: usize,
    pub panic: Option<&'a PanicInfo<'a>>,
}

/// Decode a page-fault error code into words, e.g. "not-present write, kernel mode".
pub fn describe_page_fault(code: u64) -> PageFaultDescription {
    PageFaultDescription(PageFaultErrorCode::from_bits_truncate(code))
}

/// Display adaptor for a page-fault error code.
#[derive(Debug)]
pub struct PageFaultDescription(PageFaultErrorCode);

impl core::fmt::Display for PageFaultDescription {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Error-code bits (Intel SDM vol. 3, 4.7):
        //   bit 0 P    0 = page not present, 1 = protection violation
        //   bit 1 W/R  0 = read, 1 = write
        //   bit 2 U/S  0 = kernel mode, 1 = user mode
        //   bit 3 RSVD a reserved bit was set in a paging entry
        //   bit 4 I/D  instruction fetch
        let c = self.0;
        let what = if c.contains(PageFaultErrorCode::PROTECTION_VIOLATION) { "protection" } else { "not-present" };
        let access = if c.contains(PageFaultErrorCode::INSTRUCTION_FETCH) {
            "instruction fetch"
        } else if c.contains(PageFaultErrorCode::CAUSED_BY_WRITE) {
            "write"
        } else {
            "read"
        };
        let mode = if c.contains(PageFaultErrorCode::USER_MODE) { "user" } else { "kernel" };
        write!(f, "{what} {access}, {mode} mode")?;
        if c.contains(PageFaultErrorCode::MALFORMED_TABLE) {
            write!(f, ", reserved bit set in a page-table entry")?;
        }
        Ok(())
    }
}

//! Fault-tolerant memory probes: read or write a word and get `Err(Fault)` instead of a crash.
//!
//! # Why
//!
//! Tests must show that an access to an unmapped page *is* caught and reported (and later, that a
//! use after `kunmap` faults) without ending the test kernel. Linux solves the same problem for
//! `copy_from_user` with *exception tables*: a list of (faulting instruction, fixup) address pairs. When
//! a #PF or #GP hits an instruction in the list, the handler does not panic; it moves RIP to the fixup
//! code, which returns an error to the caller.
//!
//! # How
//!
//! `zk_probe_read_u64` / `zk_probe_write_u64` are a few lines of assembly, each with exactly one
//! instruction that may fault. [`exception_table`] pairs those instruction addresses with their fixups.
//! The #PF and #GP handlers call [`fixup`], which records the fault ([`Fault`]) and rewrites the saved
//! RIP. The probe returns two registers: `rax` = the value read, `rdx` = 0 on success, 1 after a fault.
//!
//! | symbol | instruction | on fault, resumes at |
//! |---|---|---|
//! | `zk_probe_read_insn` | `mov rax, [rdi]` | `zk_probe_read_fixup` (rax = 0, rdx = 1) |
//! | `zk_probe_write_insn` | `mov [rdi], rsi` | `zk_probe_write_fixup` (rdx = 1) |
//! | `zk_copy_insn` | `rep movsb` | `zk_copy_fixup` (rax = bytes not copied) |
//!
//! `zk_copy_bytes` is Linux's `copy_from_user` idea for region memory ([`copy_bytes`]): a fault on the
//! `rep movsb` first goes to the region's handler (`mm::fault::dispatch`, which may swap the page in;
//! the instruction then resumes where it stopped, RCX counting what is left); only a fault nobody
//! resolves — a page whose copy was lost — resumes at the fixup, and the copy returns how much it did
//! not do. The region turns that into a typed "page lost" error for the workload, where Linux sends
//! SIGBUS.
//!
//! The last-fault record is per CPU (one row per `cpu::id()`): a probe on one CPU never reads the fault
//! another CPU's probe caught at the same moment. The fix-up runs on the faulting CPU and the probe
//! reads the record right after, on the same CPU, with nothing in between that could probe again.

use core::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use x86_64::VirtAddr;

use super::cpu::MAX_CPUS;
use x86_64::structures::idt::InterruptStackFrame;

core::arch::global_asm!(
    r#"
    .pushsection .text.zk_probe, "ax"
    .global zk_probe_read_u64, zk_probe_read_insn, zk_probe_read_fixup
    .global zk_probe_write_u64, zk_probe_write_insn, zk_probe_write_fixup
zk_probe_read_u64:
    xor edx, edx
zk_probe_read_insn:
    mov rax, qword ptr [rdi]
    ret
zk_probe_read_fixup:
    xor eax, eax
    mov edx, 1
    ret
zk_probe_write_u64:
    xor edx, edx
zk_probe_write_insn:
    mov qword ptr [rdi], rsi
    xor eax, eax
    ret
zk_probe_write_fixup:
    xor eax, eax
    mov edx, 1
    ret
    .global zk_copy_bytes, zk_copy_insn, zk_copy_fixup
zk_copy_bytes:
    mov rcx, rdx
zk_copy_insn:
    rep movsb
    xor eax, eax
    ret
zk_copy_fixup:
    mov rax, rcx
    ret
    .popsection
"#
);

/// What the probe routines return in `rax:rdx`.
#[repr(C)]
struct ProbeRet {
    value: u64,
    faulted: u64,
}

unsafe extern "sysv64" {
    fn zk_probe_read_u64(addr: u64) -> ProbeRet;
    fn zk_probe_write_u64(addr: u64, value: u64) -> ProbeRet;
    fn zk_copy_bytes(dst: *mut u8, src: *const u8, len: usize) -> usize;
    static zk_copy_insn: u8;
    static zk_copy_fixup: u8;
    static zk_probe_read_insn: u8;
    static zk_probe_read_fixup: u8;
    static zk_probe_write_insn: u8;
    static zk_probe_write_fixup: u8;
}

/// One exception-table entry: a faulting instruction and where to resume.
#[derive(Debug, Clone, Copy)]
pub struct ExceptionTableEntry {
    pub insn: u64,
    pub fixup: u64,
}

/// The exception table (Linux: `__ex_table`), built from the probe symbols.
pub fn exception_table() -> [ExceptionTableEntry; 3] {
    [
        ExceptionTableEntry { insn: (&raw const zk_copy_insn) as u64, fixup: (&raw const zk_copy_fixup) as u64 },
        ExceptionTableEntry {
            insn: (&raw const zk_probe_read_insn) as u64,
            fixup: (&raw const zk_probe_read_fixup) as u64,
        },
        ExceptionTableEntry {
            insn: (&raw const zk_probe_write_insn) as u64,
            fixup: (&raw const zk_probe_write_fixup) as u64,
        },
    ]
}

/// A fault a probe caught.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// 14 for a page fault, 13 for a general-protection fault (e.g. a non-canonical address).
    pub vector: u8,
    /// The exception's error code (for #PF the P/W/U/RSVD/I bits).
    pub error_code: u64,
    /// CR2, the faulting linear address, for a page fault.
    pub address: Option<u64>,
}

static LAST_VECTOR: [AtomicU8; MAX_CPUS] = [const { AtomicU8::new(0) }; MAX_CPUS];
static LAST_CODE: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static LAST_ADDR: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(u64::MAX) }; MAX_CPUS];

/// Called by the #PF and #GP handlers: when the fault hit a probe, record it, move the saved RIP to the
/// fixup and return true (the handler then returns into the fixup).
pub(crate) fn fixup(frame: &mut InterruptStackFrame, vector: u8, error_code: u64, address: Option<u64>) -> bool {
    let rip = frame.instruction_pointer.as_u64();
    let Some(entry) = exception_table().into_iter().find(|e| e.insn == rip) else {
        return false;
    };
    let cpu = super::cpu::id();
    LAST_VECTOR[cpu].store(vector, Ordering::Relaxed);
    LAST_CODE[cpu].store(error_code, Ordering::Relaxed);
    LAST_ADDR[cpu].store(address.unwrap_or(u64::MAX), Ordering::Relaxed);
    // SAFETY: the new RIP is the fixup of the very probe routine that faulted; the fixup only sets rax and
    // rdx and returns to the probe's caller on the unchanged stack, which the sysv64 call left intact.
    unsafe { frame.as_mut().update(|f| f.instruction_pointer = VirtAddr::new(entry.fixup)) };
    true
}

fn last_fault() -> Fault {
    let cpu = super::cpu::id();
    let addr = LAST_ADDR[cpu].load(Ordering::Relaxed);
    Fault {
        vector: LAST_VECTOR[cpu].load(Ordering::Relaxed),
        error_code: LAST_CODE[cpu].load(Ordering::Relaxed),
        address: (addr != u64::MAX).then_some(addr),
    }
}

/// Copy `len` bytes from `src` to `dst` (Linux's `copy_from_user`/`copy_to_user` for region memory):
/// `Ok(())`, or `Err((done, fault))` when a fault no handler resolved stopped it after `done` bytes.
///
/// # Safety
///
/// Both ranges are memory the caller may read (`src`) and own (`dst`), except for pages whose faults a
/// region handler resolves or refuses: those are what the fixup is for. The ranges do not overlap.
pub unsafe fn copy_bytes(dst: *mut u8, src: *const u8, len: usize) -> Result<(), (usize, Fault)> {
    // SAFETY: the routine touches only `[src, src + len)` and `[dst, dst + len)`, as the caller
    // vouches; the direction flag is clear at every call (sysv64), so `rep movsb` copies upwards.
    let left = unsafe { zk_copy_bytes(dst, src, len) };
    if left == 0 { Ok(()) } else { Err((len - left, last_fault())) }
}

/// Read the `u64` at `addr`, or report the fault the read raised.
///
/// # Safety
///
/// If `addr` is mapped, reading it must be harmless: not device memory with read side effects, and
/// 8-byte aligned memory that may be read as plain bytes (a concurrent writer is the caller's concern).
pub unsafe fn read_u64(addr: u64) -> Result<u64, Fault> {
    // SAFETY: the routine touches only `[addr, addr + 8)`, which the caller vouches for, and turns a
    // #PF/#GP there into `faulted = 1` through the exception table.
    let r = unsafe { zk_probe_read_u64(addr) };
    if r.faulted == 0 { Ok(r.value) } else { Err(last_fault()) }
}

/// Write `value` to `addr`, or report the fault the write raised.
///
/// # Safety
///
/// If `addr` is mapped, the caller must own those 8 bytes: nothing else may rely on their contents.
pub unsafe fn write_u64(addr: u64, value: u64) -> Result<(), Fault> {
    // SAFETY: as for `read_u64`; the caller owns the target bytes.
    let r = unsafe { zk_probe_write_u64(addr, value) };
    if r.faulted == 0 { Ok(()) } else { Err(last_fault()) }
}

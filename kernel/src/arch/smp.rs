//! Starting the application processors: the real-mode trampoline, the AP's Rust entry, the park loop.
//!
//! # Why
//!
//! After reset only the boot CPU (BSP) runs; every other CPU (an *application processor*, AP) waits in
//! the "wait for SIPI" state. The boot CPU wakes one with INIT, then a STARTUP IPI whose vector `v` makes
//! the AP begin in **16-bit real mode** at physical address `v * 4096`, with `CS = v << 8, IP = 0`. So
//! the first instructions an AP runs must sit in a page below 1 MiB, and must climb the modes by hand:
//! real mode → 32-bit protected mode → 64-bit long mode with the kernel's page tables, then jump to
//! the kernel. That page is the *trampoline* (Linux: `arch/x86/realmode/rm/trampoline_64.S`).
//!
//! # The trampoline page
//!
//! The code below is assembled into the kernel image (section `.rodata.zk_ap_trampoline`, never run
//! there) and copied by `drivers::smp` to a low page that boot kept away from the frame allocator; the
//! page is identity-mapped while APs start (the instruction that turns paging on is fetched at the same
//! address before and after). Everything in it is addressed relative to the page's base, which the
//! code computes from `CS` (real mode) and keeps in EBX/RBX; the few absolute addresses (far-jump
//! targets, the GDT's base) are patched in by [`patch`].
//!
//! | step | mode | what |
//! |---|---|---|
//! | 1 | real, CS = page >> 4 | `cli`; EBX = page base; `lgdt` the trampoline's own GDT; CR0.PE = 1; far jump |
//! | 2 | 32-bit, flat | CR4.PAE; CR3 = kernel PML4 (must be < 4 GiB: checked); EFER.LME and NXE; CR0.PG; far jump |
//! | 3 | 64-bit | RSP = the AP's stack top, RDI = its CPU index, call [`ap_entry`] (in the kernel image) |
//! | 4 | Rust | CR0/CR4/EFER as the boot CPU has them; GS base → its per-CPU area; its GDT+TSS; IDT; APIC |
//!
//! The parameter block at the end of the page (labels `zk_ap_p_*`):
//!
//! | field | value |
//! |---|---|
//! | `far32` (m16:32) | page + offset of the 32-bit code, selector 0x08 |
//! | `far64` (m16:32) | page + offset of the 64-bit code, selector 0x18 |
//! | `cr3` | physical address of the kernel PML4 |
//! | `stack` | top of the AP's guard-paged kernel stack |
//! | `entry` | address of [`ap_entry`] |
//! | `cpu` | the AP's CPU index |
//! | `gdtr` | limit and base (page + offset) of the trampoline GDT: null, code32, data, code64 |
//!
//! # After start-up: parked, with a mailbox
//!
//! An AP that is up waits in [`park`]: interrupts on, `hlt`, woken by the wake IPI
//! (`arch::apic::WAKE_VECTOR`). Each CPU has a mailbox, one function pointer: [`run_on`] puts `f` in the
//! mailbox, sends the IPI and waits until the AP ran it; [`post`] does not wait (for a function that
//! never returns, like the double fault of tests/smp_boot.rs). A halted CPU costs the host nothing,
//! which matters under TCG on a 2-core machine.
//!
//! Example: with `-smp 4` the boot CPU (APIC id 0) starts CPUs 1, 2, 3 one after the other; each one's
//! `ap_entry` records its APIC id in its per-CPU area and sets `ONLINE[n]`, and the boot CPU waits for
//! that flag (at most [`START_TIMEOUT_MS`]) before it starts the next.
//!
//! # Contracts
//!
//! * One AP starts at a time (the parameter block is shared); the caller waits for [`start_ap`].
//! * Before `start_ap(n, …)`: `gdt::prepare(n, …)` built the AP's GDT and TSS, and the trampoline page is
//!   copied, patched and identity-mapped.
//! * A mailbox function runs on the AP with interrupts off and must not take a lock the boot CPU may
//!   hold while it waits in `run_on`.

use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use super::cpu::{self, MAX_CPUS};
use super::{apic, gdt, interrupts, tsc};

core::arch::global_asm!(
    r#"
    .section .rodata.zk_ap_trampoline, "a"
    .code16
    .global zk_ap_tramp_start
    .global zk_ap_tramp_end
    .global zk_ap_p_far32
    .global zk_ap_p_far64
    .global zk_ap_p_cr3
    .global zk_ap_p_stack
    .global zk_ap_p_entry
    .global zk_ap_p_cpu
    .global zk_ap_p_gdtr
    .global zk_ap_pm32
    .global zk_ap_lm64
    .global zk_ap_gdt
zk_ap_tramp_start:
    cli
    cld
    mov %cs, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    xor %ebx, %ebx
    mov %cs, %bx
    shl $4, %ebx
    lgdtl zk_ap_p_gdtr - zk_ap_tramp_start
    mov %cr0, %eax
    or $1, %eax
    mov %eax, %cr0
    ljmpl *zk_ap_p_far32 - zk_ap_tramp_start

    .code32
zk_ap_pm32:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %cr4, %eax
    or $0x20, %eax
    mov %eax, %cr4
    mov (zk_ap_p_cr3 - zk_ap_tramp_start)(%ebx), %eax
    mov %eax, %cr3
    mov $0xc0000080, %ecx
    rdmsr
    or $0x900, %eax
    wrmsr
    mov %cr0, %eax
    or $0x80000000, %eax
    mov %eax, %cr0
    ljmpl *(zk_ap_p_far64 - zk_ap_tramp_start)(%ebx)

    .code64
zk_ap_lm64:
    xor %eax, %eax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %ebx, %ebx
    mov (zk_ap_p_stack - zk_ap_tramp_start)(%rbx), %rsp
    mov (zk_ap_p_cpu - zk_ap_tramp_start)(%rbx), %rdi
    mov (zk_ap_p_entry - zk_ap_tramp_start)(%rbx), %rax
    xor %ebp, %ebp
    call *%rax
2:
    hlt
    jmp 2b

    .balign 8
zk_ap_gdt:
    .quad 0
    .quad 0x00cf9a000000ffff
    .quad 0x00cf92000000ffff
    .quad 0x00af9a000000ffff
zk_ap_gdt_end:
    .balign 8
zk_ap_p_far32:
    .long 0
    .word 0x08
    .word 0
zk_ap_p_far64:
    .long 0
    .word 0x18
    .word 0
zk_ap_p_cr3:
    .quad 0
zk_ap_p_stack:
    .quad 0
zk_ap_p_entry:
    .quad 0
zk_ap_p_cpu:
    .quad 0
    .word 0, 0, 0
zk_ap_p_gdtr:
    .word zk_ap_gdt_end - zk_ap_gdt - 1
    .long 0
    .word 0
zk_ap_tramp_end:
    .code64
    .text
    "#,
    options(att_syntax)
);

// The trampoline's labels, named as the assembler knows them.
#[allow(non_upper_case_globals)]
unsafe extern "C" {
    static zk_ap_tramp_start: u8;
    static zk_ap_tramp_end: u8;
    static zk_ap_p_far32: u8;
    static zk_ap_p_far64: u8;
    static zk_ap_p_cr3: u8;
    static zk_ap_p_stack: u8;
    static zk_ap_p_entry: u8;
    static zk_ap_p_cpu: u8;
    static zk_ap_p_gdtr: u8;
    static zk_ap_pm32: u8;
    static zk_ap_lm64: u8;
    static zk_ap_gdt: u8;
}

/// How long the boot CPU waits for one AP to report in. An AP takes well under a millisecond, but under
/// TCG on a loaded 2-core host its vCPU thread can wait for the host CPU for a long time.
pub const START_TIMEOUT_MS: u64 = 5000;

/// The trampoline's bytes, as assembled into the kernel image.
pub fn trampoline() -> &'static [u8] {
    let start = core::ptr::addr_of!(zk_ap_tramp_start);
    let end = core::ptr::addr_of!(zk_ap_tramp_end) as usize;
    // SAFETY: both symbols bound the trampoline in the read-only section the global_asm above emits;
    // the bytes between them are initialised and never written.
    unsafe { core::slice::from_raw_parts(start, end - start as usize) }
}

fn offset(sym: *const u8) -> usize {
    sym as usize - core::ptr::addr_of!(zk_ap_tramp_start) as usize
}

fn put(page: &mut [u8], at: *const u8, bytes: &[u8]) {
    let off = offset(at);
    page[off..off + bytes.len()].copy_from_slice(bytes);
}

/// Why an AP could not be started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartError {
    /// The trampoline page is not below 1 MiB or not page-aligned.
    BadPage(u64),
    /// The kernel's PML4 lies at or above 4 GiB: the 32-bit step cannot load it into CR3.
    Cr3Above4G(u64),
    /// The AP did not report in within [`START_TIMEOUT_MS`].
    Timeout { cpu: usize, apic_id: u32 },
}

/// Copy the trampoline into `page` (the bytes of the frame at physical `page_phys`) and fill the
/// parameter block for CPU `cpu` starting on the stack whose top is `stack_top`.
pub fn patch(page: &mut [u8; 4096], page_phys: u64, stack_top: u64, cpu: usize) -> Result<(), StartError> {
    if page_phys >= 0x10_0000 || !page_phys.is_multiple_of(4096) {
        return Err(StartError::BadPage(page_phys));
    }
    let cr3 = x86_64::registers::control::Cr3::read().0.start_address().as_u64();
    if cr3 >= 1 << 32 {
        return Err(StartError::Cr3Above4G(cr3));
    }
    let code = trampoline();
    page[..code.len()].copy_from_slice(code);
    let base = page_phys as u32;
    let abs = |sym: *const u8| base + offset(sym) as u32;
    put(page, core::ptr::addr_of!(zk_ap_p_far32), &abs(core::ptr::addr_of!(zk_ap_pm32)).to_le_bytes());
    put(page, core::ptr::addr_of!(zk_ap_p_far64), &abs(core::ptr::addr_of!(zk_ap_lm64)).to_le_bytes());
    put(page, core::ptr::addr_of!(zk_ap_p_cr3), &cr3.to_le_bytes());
    put(page, core::ptr::addr_of!(zk_ap_p_stack), &stack_top.to_le_bytes());
    put(page, core::ptr::addr_of!(zk_ap_p_entry), &(ap_entry as *const () as u64).to_le_bytes());
    put(page, core::ptr::addr_of!(zk_ap_p_cpu), &(cpu as u64).to_le_bytes());
    let gdtr_base = core::ptr::addr_of!(zk_ap_p_gdtr).wrapping_add(2);
    put(page, gdtr_base, &abs(core::ptr::addr_of!(zk_ap_gdt)).to_le_bytes());
    Ok(())
}

/// CR0, CR4 and EFER of the boot CPU, which each AP copies in [`ap_entry`].
static BOOT_CR0: AtomicU64 = AtomicU64::new(0);
static BOOT_CR4: AtomicU64 = AtomicU64::new(0);
static BOOT_EFER: AtomicU64 = AtomicU64::new(0);

static ONLINE: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
/// Each CPU's kernel stack `[bottom, top)` (the boot CPU's is the bootloader's).
static STACKS: [[AtomicU64; 2]; MAX_CPUS] = [const { [AtomicU64::new(0), AtomicU64::new(0)] }; MAX_CPUS];
static MAIL: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];
static DONE: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static WAKEUPS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// Whether CPU `cpu` is up (the boot CPU after [`boot_cpu_online`], an AP once its entry ran).
pub fn online(cpu: usize) -> bool {
    ONLINE.get(cpu).is_some_and(|o| o.load(Ordering::SeqCst))
}

/// How many CPUs are up.
pub fn online_count() -> usize {
    ONLINE.iter().filter(|o| o.load(Ordering::SeqCst)).count()
}

/// CPU `cpu`'s kernel stack `[bottom, top)` as recorded at start-up.
pub fn kernel_stack_of(cpu: usize) -> core::ops::Range<u64> {
    STACKS[cpu][0].load(Ordering::SeqCst)..STACKS[cpu][1].load(Ordering::SeqCst)
}

/// Wake-up interrupts CPU `cpu` took (the handler counts them).
pub fn wakeups(cpu: usize) -> u64 {
    WAKEUPS[cpu].load(Ordering::Relaxed)
}

/// Called by the wake-vector handler.
pub(super) fn count_wakeup() {
    WAKEUPS[cpu::id()].fetch_add(1, Ordering::Relaxed);
}

/// The boot CPU after its local APIC is enabled: record its APIC id and stack, mark it up.
pub fn boot_cpu_online(stack: core::ops::Range<u64>) {
    cpu::set_apic_id(apic::id());
    STACKS[0][0].store(stack.start, Ordering::SeqCst);
    STACKS[0][1].store(stack.end, Ordering::SeqCst);
    ONLINE[0].store(true, Ordering::SeqCst);
}

/// Start AP `cpu` (APIC id `apic_id`) at the trampoline in physical page `page` (`page * 4096` < 1 MiB),
/// on the stack `stack`; wait until it reports in. INIT, 10 ms, STARTUP, 200 µs, STARTUP (the second is
/// ignored by an AP that already left wait-for-SIPI), as the Intel SDM's MP start-up algorithm says.
pub fn start_ap(cpu: usize, apic_id: u32, page: u8, stack: core::ops::Range<u64>) -> Result<(), StartError> {
    BOOT_CR0.store(x86_64::registers::control::Cr0::read_raw(), Ordering::SeqCst);
    BOOT_CR4.store(x86_64::registers::control::Cr4::read_raw(), Ordering::SeqCst);
    BOOT_EFER.store(x86_64::registers::model_specific::Efer::read_raw(), Ordering::SeqCst);
    STACKS[cpu][0].store(stack.start, Ordering::SeqCst);
    STACKS[cpu][1].store(stack.end, Ordering::SeqCst);
    apic::send_init(apic_id);
    tsc::delay_us(10_000);
    for _ in 0..2 {
        if online(cpu) {
            break;
        }
        apic::send_startup(apic_id, page);
        tsc::delay_us(200);
    }
    let deadline = tsc::rdtsc() + tsc::hz() / 1000 * START_TIMEOUT_MS;
    while !online(cpu) {
        if tsc::rdtsc() > deadline {
            return Err(StartError::Timeout { cpu, apic_id });
        }
        core::hint::spin_loop();
    }
    Ok(())
}

/// The AP's first Rust code, called by the trampoline's 64-bit step on the AP's own stack.
extern "C" fn ap_entry(cpu: u64) -> ! {
    let cpu = cpu as usize;
    // SAFETY: the boot CPU runs with these control registers and the AP shares its page tables and
    // code; the trampoline set only the subset needed to get here (PE, PG, PAE, LME, NXE), all of which
    // the boot CPU's values contain too.
    unsafe {
        x86_64::registers::control::Cr4::write_raw(BOOT_CR4.load(Ordering::SeqCst));
        x86_64::registers::model_specific::Efer::write_raw(BOOT_EFER.load(Ordering::SeqCst));
        x86_64::registers::control::Cr0::write_raw(BOOT_CR0.load(Ordering::SeqCst));
    }
    cpu::install(cpu);
    gdt::load(cpu);
    interrupts::load();
    apic::enable_local();
    cpu::set_apic_id(apic::id());
    ONLINE[cpu].store(true, Ordering::SeqCst);
    park(cpu)
}

/// Wait for work: interrupts on and `hlt` until the wake IPI, then run what the mailbox holds.
fn park(cpu: usize) -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        let work = MAIL[cpu].swap(0, Ordering::SeqCst);
        if work != 0 {
            // From its first job on, this CPU may cache any translation: TLB shootdowns include it.
            super::tlb::mark_active();
            // SAFETY: the mailbox holds 0 or a value stored from a `fn(usize)` by `post`.
            let f: fn(usize) = unsafe { core::mem::transmute::<usize, fn(usize)>(work) };
            f(cpu);
            DONE[cpu].fetch_add(1, Ordering::SeqCst);
            continue;
        }
        // `sti; hlt`: an IPI that arrived since the check above is taken right after `sti`'s shadow, so
        // it wakes the `hlt` and no wake-up is lost.
        x86_64::instructions::interrupts::enable_and_hlt();
    }
}

/// Why [`run_on`] or [`post`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailError {
    /// The CPU is not up (or is the caller itself).
    NotOnline(usize),
    /// Its mailbox still holds work.
    Busy(usize),
}

/// Put `f` in CPU `cpu`'s mailbox and wake it; returns the count of finished jobs before this one.
pub fn post(cpu: usize, f: fn(usize)) -> Result<u64, MailError> {
    if cpu == 0 || !online(cpu) || cpu == cpu::id() {
        return Err(MailError::NotOnline(cpu));
    }
    let before = DONE[cpu].load(Ordering::SeqCst);
    MAIL[cpu].compare_exchange(0, f as usize, Ordering::SeqCst, Ordering::SeqCst).map_err(|_| MailError::Busy(cpu))?;
    let apic_id = cpu::apic_id_of(cpu).ok_or(MailError::NotOnline(cpu))?;
    apic::send_ipi(apic_id, apic::WAKE_VECTOR);
    Ok(before)
}

/// Run `f(cpu)` on the first `n` online CPUs — this one (the boot CPU) and `n - 1` parked APs — at
/// once, and wait until every one returned. Returns how many CPUs ran it (fewer than `n` when fewer are
/// up). `f` learns its CPU from its argument; what it works on comes through statics, since a mailbox
/// holds a plain function pointer.
pub fn run_on_first(n: usize, f: fn(usize)) -> usize {
    let me = cpu::id();
    let mut waiting = [None; MAX_CPUS];
    let mut ran = 1;
    for c in (0..MAX_CPUS).filter(|&c| c != me && online(c)).take(n.saturating_sub(1)) {
        match post(c, f) {
            Ok(before) => {
                waiting[c] = Some(before);
                ran += 1;
            }
            Err(e) => panic!("smp: cpu{c} refused a job: {e:?}"),
        }
    }
    // This CPU may cache any translation too (it is shot down as the boot CPU always is).
    f(me);
    for (c, before) in waiting.iter().enumerate() {
        if let Some(before) = *before {
            while DONE[c].load(Ordering::SeqCst) == before {
                core::hint::spin_loop();
            }
        }
    }
    ran
}

/// [`run_on_first`] on every online CPU.
pub fn run_on_all(f: fn(usize)) -> usize {
    run_on_first(MAX_CPUS, f)
}

/// Run `f(cpu)` on CPU `cpu` and wait until it returned.
pub fn run_on(cpu: usize, f: fn(usize)) -> Result<(), MailError> {
    let before = post(cpu, f)?;
    while DONE[cpu].load(Ordering::SeqCst) == before {
        core::hint::spin_loop();
    }
    Ok(())
}

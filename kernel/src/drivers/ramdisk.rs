//! The bootloader's ramdisk: the page file `cargo xtask run --pages FILE` hands the kernel, mapped by the
//! bootloader next to the kernel and read-only for the kernel's lifetime.
//!
//! Its bytes are checked against the FNV-1a 64 checksum xtask computed (`ramdisk_fnv` option), so a
//! page file that is not the one given can be told apart and refused.

use bootloader_api::BootInfo;

/// Where the ramdisk is mapped and whether its bytes match xtask's checksum.
#[derive(Debug, Clone, Copy)]
pub struct Ramdisk {
    addr: u64,
    len: u64,
    /// `Some(true)` when the FNV-1a checksum matches the `ramdisk_fnv` option, `Some(false)` when it does
    /// not, `None` when no checksum was given.
    pub verified: Option<bool>,
}

impl Ramdisk {
    /// The ramdisk the bootloader describes, if it loaded one (and it is not empty); checked against
    /// `expected_fnv` when given.
    pub fn from_boot_info(boot_info: &BootInfo, expected_fnv: Option<u64>) -> Option<Ramdisk> {
        let addr = boot_info.ramdisk_addr.into_option()?;
        if boot_info.ramdisk_len == 0 {
            return None;
        }
        let mut r = Ramdisk { addr, len: boot_info.ramdisk_len, verified: None };
        r.verified = expected_fnv.map(|e| fnv1a::fnv1a64(r.bytes()) == e);
        Some(r)
    }

    /// The ramdisk's bytes.
    pub fn bytes(&self) -> &'static [u8] {
        // SAFETY: a `Ramdisk` is only made from the boot info, whose `ramdisk_addr`/`ramdisk_len` describe
        // a mapping the bootloader made for the kernel's lifetime; no code in zkernel writes to it.
        unsafe { core::slice::from_raw_parts(self.addr as *const u8, self.len as usize) }
    }

    /// Where it is mapped.
    pub fn addr(&self) -> u64 {
        self.addr
    }

    /// Its length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it holds no bytes (never true for one `from_boot_info` made).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of whole 4 KiB pages.
    pub fn pages(&self) -> u64 {
        self.len / 4096
    }
}

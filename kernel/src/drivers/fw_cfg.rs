//! QEMU's firmware configuration device (fw_cfg): where the kernel options and the CPU count come from.
//!
//! The legacy I/O interface is two ports: write a 16-bit key to the selector, then read the item's bytes
//! one at a time from the data port. The byte formats (signature, file directory) are decoded by the
//! host-tested `kopts` crate; this file only moves bytes.
//!
//! | port | width | use |
//! |---|---|---|
//! | 0x510 | u16 | selector: which item to read (resets the read offset) |
//! | 0x511 | u8 | data: the next byte of the selected item |

use kopts::{DIR_ENTRY_LEN, FW_CFG_FILE_DIR, FW_CFG_NB_CPUS, FW_CFG_SIGNATURE, FwCfgFile};
use x86_64::instructions::port::Port;

const SELECTOR_PORT: u16 = 0x510;
const DATA_PORT: u16 = 0x511;

/// A handle on the fw_cfg device, proven present by its signature.
#[derive(Debug)]
pub struct FwCfg {
    selector: Port<u16>,
    data: Port<u8>,
}

impl FwCfg {
    /// Find the device: `None` when the signature is not `QEMU` (not running under QEMU).
    pub fn detect() -> Option<Self> {
        let mut dev = FwCfg { selector: Port::new(SELECTOR_PORT), data: Port::new(DATA_PORT) };
        let mut sig = [0u8; 4];
        dev.read_item(FW_CFG_SIGNATURE, &mut sig);
        (&sig == b"QEMU").then_some(dev)
    }

    fn select(&mut self, key: u16) {
        // SAFETY: 0x510 is the fw_cfg selector on QEMU's PC machines; selecting an item only sets the
        // device's read cursor. Off QEMU the write goes to an unclaimed port and is ignored.
        unsafe { self.selector.write(key) };
    }

    fn read_bytes(&mut self, buf: &mut [u8]) {
        for b in buf {
            // SAFETY: 0x511 is the fw_cfg data port; reading it advances the device's cursor and touches
            // no memory. Off QEMU it reads 0xff.
            *b = unsafe { self.data.read() };
        }
    }

    /// Read the first `buf.len()` bytes of item `key`.
    pub fn read_item(&mut self, key: u16, buf: &mut [u8]) {
        self.select(key);
        self.read_bytes(buf);
    }

    /// The number of CPUs QEMU was started with (`-smp N`).
    pub fn cpu_count(&mut self) -> u16 {
        let mut b = [0u8; 2];
        self.read_item(FW_CFG_NB_CPUS, &mut b);
        u16::from_le_bytes(b)
    }

    /// Look a file up by name in the fw_cfg directory.
    pub fn find_file(&mut self, name: &str) -> Option<FwCfgFile> {
        let mut count = [0u8; 4];
        self.read_item(FW_CFG_FILE_DIR, &mut count);
        let count = kopts::dir_count(count);
        // The directory is read in one pass: the cursor moves on entry by entry.
        (0..count).find_map(|_| {
            let mut entry = [0u8; DIR_ENTRY_LEN];
            self.read_bytes(&mut entry);
            let file = FwCfgFile::parse(&entry);
            (file.name() == name).then_some(file)
        })
    }

    /// Read a file into `buf`; returns the bytes read (at most `buf.len()`).
    pub fn read_file(&mut self, file: &FwCfgFile, buf: &mut [u8]) -> usize {
        let n = buf.len().min(file.size as usize);
        self.read_item(file.select, &mut buf[..n]);
        n
    }
}

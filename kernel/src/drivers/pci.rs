//! PCI configuration space through the legacy I/O ports 0xCF8/0xCFC, for `virtio-drivers`' PCI code.
//!
//! # How configuration space is reached
//!
//! Every PCI function has 256 bytes of *configuration space*: vendor and device IDs, the command
//! register (memory decoding, bus mastering), the six BARs (where the firmware placed the device's
//! register blocks in the physical address space) and a linked list of capabilities (virtio puts the
//! locations of its register blocks there). It is not in memory: on a PC it is reached through two
//! 32-bit I/O ports. Write the address of a 4-byte register to `CONFIG_ADDRESS`, then read or write
//! `CONFIG_DATA`:
//!
//! ```text
//!  31  30    24 23    16 15    11 10     8 7        2 1 0
//! +---+--------+--------+--------+--------+----------+---+
//! | E |reserved|  bus   | device |function| register | 0 |   CONFIG_ADDRESS (port 0xCF8)
//! +---+--------+--------+--------+--------+----------+---+
//!   E = enable: the next access to CONFIG_DATA (port 0xCFC) goes to this register
//! ```
//!
//! q35 also offers PCIe's memory-mapped ECAM (4 KiB per function), but the I/O ports are simpler: no
//! mapping, no ACPI MCFG table to read. Firmware (SeaBIOS or OVMF) has already enumerated the bus and
//! assigned every BAR an address before the bootloader ran, so zkernel only reads them.
//!
//! # Contract
//!
//! * The address/data pair is two port accesses: a lock (taken with interrupts off) keeps another
//!   access from slipping in between.
//! * Writing configuration space can move a BAR under a driver's mappings, so [`PortCam::new`] is
//!   `unsafe`: its caller is the one owner of configuration space (the virtio-blk probe).

use spin::Mutex;
use virtio_drivers::transport::pci::bus::{ConfigurationAccess, DeviceFunction};
use x86_64::instructions::interrupts::without_interrupts;
use x86_64::instructions::port::Port;

/// `CONFIG_ADDRESS`: which register the next data access reaches.
const CONFIG_ADDRESS: u16 = 0xcf8;
/// `CONFIG_DATA`: the selected 32-bit register.
const CONFIG_DATA: u16 = 0xcfc;

static LOCK: Mutex<()> = Mutex::new(());

/// The `CONFIG_ADDRESS` value for a register of a function (the layout drawn in the module header).
pub const fn config_address(df: DeviceFunction, register: u8) -> u32 {
    0x8000_0000
        | (df.bus as u32) << 16
        | ((df.device & 0x1f) as u32) << 11
        | ((df.function & 0x7) as u32) << 8
        | (register & 0xfc) as u32
}

/// Configuration access through ports 0xCF8/0xCFC (PCI's "configuration mechanism #1").
#[derive(Debug)]
pub struct PortCam(());

impl PortCam {
    /// # Safety
    ///
    /// The caller is the only code that writes PCI configuration space (through this value and its
    /// clones), so no BAR moves under a mapping someone else relies on.
    pub unsafe fn new() -> Self {
        PortCam(())
    }

    fn access<R>(df: DeviceFunction, register: u8, f: impl FnOnce(&mut Port<u32>) -> R) -> R {
        without_interrupts(|| {
            let _guard = LOCK.lock();
            let mut address = Port::<u32>::new(CONFIG_ADDRESS);
            let mut data = Port::<u32>::new(CONFIG_DATA);
            // SAFETY: 0xCF8 is the PC's PCI configuration address port; selecting a register has no
            // effect beyond the next access to 0xCFC, which the lock reserves for this caller.
            unsafe { address.write(config_address(df, register)) };
            f(&mut data)
        })
    }
}

impl ConfigurationAccess for PortCam {
    fn read_word(&self, df: DeviceFunction, register: u8) -> u32 {
        // SAFETY: reading configuration space has no side effects on memory (a missing function reads as
        // all ones).
        Self::access(df, register, |data| unsafe { data.read() })
    }

    fn write_word(&mut self, df: DeviceFunction, register: u8, value: u32) {
        // SAFETY: `PortCam::new`'s caller owns configuration space, so changes (BAR sizing, the command
        // register) happen only where that owner decides.
        Self::access(df, register, |data| unsafe { data.write(value) })
    }

    unsafe fn unsafe_clone(&self) -> Self {
        PortCam(())
    }
}

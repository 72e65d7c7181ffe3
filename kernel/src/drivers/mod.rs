//! Device drivers: port I/O and PCI devices. Drivers may use `unsafe`, each block justified.
//!
//! | file | device |
//! |---|---|
//! | `acpi` | the ACPI tables through the I/O region: the MADT's CPUs and local APIC address |
//! | `fb` | the bootloader's framebuffer (VBE or GOP), drawn on by the memory picture |
//! | `console` | the serial console: COM1 (16550 UART), `print!`/`println!`, the `log` facade |
//! | `fw_cfg` | QEMU's firmware configuration device: kernel options, CPU count |
//! | `pci` | PCI configuration space through ports 0xCF8/0xCFC |
//! | `virtio_hal` | the memory devices touch: DMA frames and BAR windows in the I/O region |
//! | `virtio_blk` | virtio-blk disks (swap, files), a page per request, polled |
//! | `smp` | the other CPUs: MADT, local APIC, INIT-SIPI-SIPI through the real-mode trampoline |

pub mod acpi;
pub mod console;
pub mod fb;
pub mod fw_cfg;
pub mod pci;
pub mod ramdisk;
pub mod smp;
pub mod virtio_blk;
pub mod virtio_hal;

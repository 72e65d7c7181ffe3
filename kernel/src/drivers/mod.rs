//! Device drivers: port I/O and PCI devices. Drivers may use `unsafe`, each block justified.
//!
//! | file | device |
//! |---|---|
//! | `console` | the serial console: COM1 (16550 UART), `print!`/`println!`, the `log` facade |
//! | `fw_cfg` | QEMU's firmware configuration device: kernel options, CPU count |
//! | `pci` | PCI configuration space through ports 0xCF8/0xCFC |
//! | `virtio_hal` | the memory devices touch: DMA frames and BAR windows in the I/O region |
//! | `virtio_blk` | virtio-blk disks (swap, files), a page per request, polled |

pub mod console;
pub mod fw_cfg;
pub mod pci;
pub mod ramdisk;
pub mod virtio_blk;
pub mod virtio_hal;

//! Device drivers: port I/O and, later, PCI devices. Drivers may use `unsafe`, each block justified.

pub mod fw_cfg;

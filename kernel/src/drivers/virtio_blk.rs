//! virtio-blk disks over PCI: the swap device and the file disk of design.md, read and written a page
//! at a time, by polling.
//!
//! # virtio-blk and the virtqueue
//!
//! A virtio device is a device QEMU emulates with a guest interface designed for emulation: no fake
//! hardware registers to poke byte by byte, but shared-memory *virtqueues*. A virtqueue is three arrays
//! in guest RAM that both sides see:
//!
//! | part | written by | holds |
//! |---|---|---|
//! | descriptor table | driver | buffers: physical address, length, device-writable flag, next descriptor |
//! | available ring | driver | heads of descriptor chains the device may now process |
//! | used ring | device | heads of chains it has finished, with the bytes it wrote |
//!
//! The driver builds a chain, publishes its head in the available ring and *notifies* the device (one
//! register write); the device processes the chain and publishes the head in the used ring. A
//! virtio-blk request is a chain of three buffers:
//!
//! ```text
//!  [ header: type (IN = read, OUT = write), sector ] -> [ data: 4096 bytes ] -> [ status: 1 byte ]
//!    device reads                                       device writes (IN)      device writes
//!                                                       or reads (OUT)
//! ```
//!
//! Sectors are 512 bytes, so page `i` is sectors `8 i .. 8 i + 8`. The `virtio-drivers` crate builds the
//! rings and chains; this file finds the devices, owns their memory, and turns pages into requests.
//!
//! # Why bounce buffers
//!
//! The device reads and writes the buffers by physical address, behind the CPU's back. A caller's page
//! might be a kmap slot (remapped as soon as the caller is done), a heap buffer straddling two unrelated
//! frames, or a stack buffer: handing its address to a device is how DMA corrupts memory. So each disk
//! owns a *bounce page* in the DMA window of the I/O region (`virtio_hal`): [`BlkDisk::write_page`]
//! copies the caller's bytes in and then submits, [`BlkDisk::read_page`] submits and then copies out.
//! The request header and status byte live in a second DMA page next to it. The device only ever sees
//! memory the driver allocated for it, which is what lets `virtio_hal`'s `share` translate addresses
//! safely. The copy costs a `memcpy` of 4 KiB per request, small next to a device round trip.
//!
//! # Polling
//!
//! zkernel never enables interrupts, so after the notify the driver spins on the used ring until its
//! request appears, with a time limit ([`REQUEST_TIMEOUT_SECS`]) measured with the TSC. A request that
//! times out leaves its bounce page with the device, so the disk is marked broken ([`BlkError::Broken`]
//! for every later request) rather than reusing memory the device may still write.
//!
//! # When the device misbehaves
//!
//! | what | the driver's answer |
//! |---|---|
//! | the device reports an error (status byte) | that request fails ([`BlkError::Device`]); the disk goes on |
//! | no completion within [`REQUEST_TIMEOUT_SECS`] | the disk is marked broken: the device still owns the bounce page and may write it at any time, so no later request may reuse it ([`BlkError::Broken`] from then on) |
//! | a completion for another request (wrong token) | marked broken too: the driver has one request in flight, so the device answered for something it was never given, and nothing it says can be trusted — resetting the queue would hide that |
//!
//! [`Injection`] makes each of these happen on purpose (kernel options `blk_fail_*`, or a test kernel
//! directly): the *n*th request, or every *n*th, of reads, writes or both fails with an I/O error,
//! never completes, or completes with a wrong token. The swap subsystem's answers to them — a failed
//! swap-out keeps the page resident, a failed writeback keeps it in tmem, a failed swap-in loses that one
//! page — are tested in tests/device_faults.rs.
//!
//! # Telling disks apart
//!
//! xtask attaches each disk with `serial=NAME` (`swap`, `files`); the driver asks each device for its
//! ID string (`VIRTIO_BLK_T_GET_ID`) at probe time and [`disk`] finds disks by it.
//!
//! # Contract
//!
//! * [`probe`] runs once, from `init::init` after memory management is up; later calls return the
//!   same count.
//! * Bad input is an error, never a panic: an index past the end is [`BlkError::OutOfRange`], a write
//!   to a read-only disk [`BlkError::ReadOnly`], a device failure [`BlkError::Device`].
//! * [`BlkStats`] counts pages that were transferred; `errors` counts requests that returned an error
//!   (refused ones included).
//! * A disk lives for the kernel's lifetime (`&'static`); requests take no frames: the bounce page and
//!   the virtqueue are allocated at probe time.

use alloc::string::String;
use alloc::vec::Vec;
use core::ptr::NonNull;

use spin::{Mutex, Once};
use virtio_drivers::device::blk::{BlkReq, BlkResp, SECTOR_SIZE, VirtIOBlk};
use virtio_drivers::transport::DeviceType;
use virtio_drivers::transport::pci::bus::{Command, DeviceFunction, PciError, PciRoot};
use virtio_drivers::transport::pci::{PciTransport, VirtioPciError, virtio_device_type};

use super::pci::PortCam;
use super::virtio_hal::{self, IoMapError, ZkHal};
use crate::arch::tsc;

/// Bytes of one page, the unit of every request.
pub const PAGE_SIZE: usize = 4096;
const SECTORS_PER_PAGE: u64 = (PAGE_SIZE / SECTOR_SIZE) as u64;
/// How long a request may take before the disk is declared broken.
pub const REQUEST_TIMEOUT_SECS: u64 = 10;
/// Offset of the status byte in the header page (the request header is at 0).
const RESP_OFFSET: usize = 64;

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlkError {
    /// The page index is not below the disk's capacity (in pages).
    OutOfRange { index: u64, capacity: u64 },
    /// The disk was attached read-only.
    ReadOnly,
    /// The device did not complete a request within [`REQUEST_TIMEOUT_SECS`].
    Timeout,
    /// An earlier request timed out; the disk takes no more requests.
    Broken,
    /// The device or the virtqueue reported an error.
    Device(virtio_drivers::Error),
    /// An I/O error made on purpose ([`Injection`]).
    Injected,
}

/// How an injected fault shows ([`Injection`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// The request fails with an I/O error; the disk goes on.
    Error,
    /// The request never completes: the disk is marked broken at once (as a real timeout would after
    /// [`REQUEST_TIMEOUT_SECS`]).
    Timeout,
    /// The device answers for another request: the disk is marked broken.
    WrongToken,
}

/// Which requests an [`Injection`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultOp {
    Any,
    Read,
    Write,
}

/// Device fault injection: of the requests `op` selects (counted from 1 after it is set), the `at`-th
/// fails (0: none), and every `every`-th fails (0: none), as `kind` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Injection {
    pub every: u64,
    pub at: u64,
    pub kind: FaultKind,
    pub op: FaultOp,
}

/// An injection in force, and what it did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InjectionState {
    pub injection: Option<Injection>,
    /// Requests it counted.
    pub seen: u64,
    /// Requests it failed.
    pub injected: u64,
}

impl From<virtio_drivers::Error> for BlkError {
    fn from(e: virtio_drivers::Error) -> Self {
        BlkError::Device(e)
    }
}

/// Per-disk counters (zram's `io_stat` names where they exist).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlkStats {
    /// Pages read successfully.
    pub reads: u64,
    /// Pages written successfully.
    pub writes: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// Requests that returned an error, refused ones (out of range, read-only) included.
    pub errors: u64,
}

/// Two DMA pages lent to the device for every request: the data page, then a page holding the request
/// header (offset 0) and the status byte (offset [`RESP_OFFSET`]).
#[derive(Debug)]
struct Bounce {
    pa: u64,
    va: NonNull<u8>,
}

// SAFETY: the bounce pages are reached only through the owning `BlkDisk`, which is behind a lock.
unsafe impl Send for Bounce {}

impl Bounce {
    const PAGES: usize = 2;

    fn new() -> Result<Self, IoMapError> {
        let (pa, va) = virtio_hal::dma_alloc_pages(Self::PAGES)?;
        let b = Bounce { pa, va };
        // SAFETY: both pages are freshly mapped, zeroed, aligned and this value's alone; writing whole
        // values initialises the header and the status before any reference to them is formed.
        unsafe {
            b.req_ptr().write(BlkReq::default());
            b.resp_ptr().write(BlkResp::default());
        }
        Ok(b)
    }

    fn req_ptr(&self) -> *mut BlkReq {
        // The header page is the second of the two pages.
        self.va.as_ptr().wrapping_add(PAGE_SIZE).cast()
    }

    fn resp_ptr(&self) -> *mut BlkResp {
        self.va.as_ptr().wrapping_add(PAGE_SIZE + RESP_OFFSET).cast()
    }

    /// The data page, the request header and the status byte.
    fn parts(&mut self) -> (&mut [u8; PAGE_SIZE], &mut BlkReq, &mut BlkResp) {
        // SAFETY: the three lie in disjoint parts of the two pages this value owns (mapped and
        // initialised in `new`); `&mut self` makes these the only references. The device writes them
        // only between a submit and its completion, inside one `BlkDisk` request that holds them.
        unsafe { (&mut *self.va.as_ptr().cast(), &mut *self.req_ptr(), &mut *self.resp_ptr()) }
    }
}

impl Drop for Bounce {
    fn drop(&mut self) {
        // SAFETY: a bounce is dropped only when its disk was never completed (probe failed after the
        // device was reset by dropping its driver), so no request references the pages.
        let freed = unsafe { virtio_hal::dma_free_pages(self.pa, self.va, Self::PAGES) };
        if !freed {
            log::warn!("virtio-blk: bounce pages at {:#x} could not be freed", self.pa);
        }
    }
}

/// One virtio-blk disk.
pub struct BlkDisk {
    name: String,
    location: DeviceFunction,
    // Field order is drop order: the driver (which resets the device) goes before the bounce pages.
    blk: VirtIOBlk<ZkHal, PciTransport>,
    bounce: Bounce,
    capacity_pages: u64,
    readonly: bool,
    stats: BlkStats,
    broken: bool,
    timeout_cycles: u64,
    inject: InjectionState,
}

impl core::fmt::Debug for BlkDisk {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BlkDisk")
            .field("name", &self.name)
            .field("location", &self.location)
            .field("capacity_pages", &self.capacity_pages)
            .field("readonly", &self.readonly)
            .field("stats", &self.stats)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl BlkDisk {
    /// The device's ID string (xtask sets it to the disk's name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the device sits on the PCI bus (`bus:device.function`).
    pub fn location(&self) -> DeviceFunction {
        self.location
    }

    /// Whole 4 KiB pages on the disk (a trailing partial page is not used).
    pub fn capacity_pages(&self) -> u64 {
        self.capacity_pages
    }

    pub fn readonly(&self) -> bool {
        self.readonly
    }

    pub fn stats(&self) -> BlkStats {
        self.stats
    }

    /// Make requests fail on purpose from now on (`None`: stop); the counts start again.
    pub fn set_injection(&mut self, injection: Option<Injection>) {
        self.inject = InjectionState { injection, seen: 0, injected: 0 };
    }

    /// The injection in force and what it did.
    pub fn injection(&self) -> InjectionState {
        self.inject
    }

    /// Whether the disk refuses every request after a timeout or a wrong-token answer.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// An injected fault for this request, if it is one.
    fn injected(&mut self, index: u64, write: bool) -> Result<(), BlkError> {
        let Some(inj) = self.inject.injection else { return Ok(()) };
        let counted = match inj.op {
            FaultOp::Any => true,
            FaultOp::Read => !write,
            FaultOp::Write => write,
        };
        if !counted || self.broken {
            return Ok(());
        }
        self.inject.seen += 1;
        let n = self.inject.seen;
        if !(n == inj.at || (inj.every != 0 && n.is_multiple_of(inj.every))) {
            return Ok(());
        }
        self.inject.injected += 1;
        let what = if write { "write" } else { "read" };
        match inj.kind {
            FaultKind::Error => Err(BlkError::Injected),
            FaultKind::Timeout => {
                self.broken = true;
                log::error!(
                    "virtio-blk {}: {what} of page {index} never completed (injected); the disk is marked broken",
                    self.name
                );
                Err(BlkError::Timeout)
            }
            FaultKind::WrongToken => {
                self.broken = true;
                log::error!(
                    "virtio-blk {}: the device answered another request than the {what} of page {index} (injected); the disk is marked broken",
                    self.name
                );
                Err(BlkError::Device(virtio_drivers::Error::WrongToken))
            }
        }
    }

    /// Read page `index` into `buf`.
    pub fn read_page(&mut self, index: u64, buf: &mut [u8; PAGE_SIZE]) -> Result<(), BlkError> {
        let r = self
            .check(index, false)
            .and_then(|()| self.injected(index, false))
            .and_then(|()| self.transfer(index, false));
        match r {
            Ok(()) => {
                buf.copy_from_slice(self.bounce.parts().0);
                self.stats.reads += 1;
                self.stats.bytes_read += PAGE_SIZE as u64;
            }
            Err(_) => self.stats.errors += 1,
        }
        r
    }

    /// Write `buf` to page `index`.
    pub fn write_page(&mut self, index: u64, buf: &[u8; PAGE_SIZE]) -> Result<(), BlkError> {
        let r = self.check(index, true).and_then(|()| self.injected(index, true)).and_then(|()| {
            self.bounce.parts().0.copy_from_slice(buf);
            self.transfer(index, true)
        });
        match r {
            Ok(()) => {
                self.stats.writes += 1;
                self.stats.bytes_written += PAGE_SIZE as u64;
            }
            Err(_) => self.stats.errors += 1,
        }
        r
    }

    fn check(&self, index: u64, write: bool) -> Result<(), BlkError> {
        if self.broken {
            return Err(BlkError::Broken);
        }
        if index >= self.capacity_pages {
            return Err(BlkError::OutOfRange { index, capacity: self.capacity_pages });
        }
        if write && self.readonly {
            return Err(BlkError::ReadOnly);
        }
        Ok(())
    }

    /// One request between page `index` and the bounce page, polled to completion.
    fn transfer(&mut self, index: u64, write: bool) -> Result<(), BlkError> {
        let Self { blk, bounce, broken, timeout_cycles, .. } = self;
        let (data, req, resp) = bounce.parts();
        let sector = (index * SECTORS_PER_PAGE) as usize;
        // SAFETY: `req`, `data` and `resp` live in this disk's bounce pages; they stay untouched until
        // the matching `complete_*` below, or forever if the device never answers (the disk is then
        // marked broken and its bounce pages are never used or freed again).
        let token = unsafe {
            if write {
                blk.write_blocks_nb(sector, req, data, resp)
            } else {
                blk.read_blocks_nb(sector, req, data, resp)
            }
        }?;
        let deadline = tsc::rdtsc().saturating_add(*timeout_cycles);
        loop {
            match blk.peek_used() {
                Some(t) if t == token => break,
                Some(t) => {
                    // One request is in flight: an answer for another one means the device (or the ring)
                    // is not what the driver thinks. Nothing it says can be trusted any more.
                    *broken = true;
                    log::error!(
                        "virtio-blk: completion for token {t} while waiting for {token} (page {index}); the disk is marked broken"
                    );
                    return Err(BlkError::Device(virtio_drivers::Error::WrongToken));
                }
                None if tsc::rdtsc() > deadline => {
                    *broken = true;
                    log::error!("virtio-blk: request for page {index} timed out; the disk is marked broken");
                    return Err(BlkError::Timeout);
                }
                None => core::hint::spin_loop(),
            }
        }
        // SAFETY: the same buffers as were submitted with `token`, which the device has completed.
        unsafe {
            if write {
                blk.complete_write_blocks(token, req, data, resp)
            } else {
                blk.complete_read_blocks(token, req, data, resp)
            }
        }?;
        Ok(())
    }
}

/// Why a device found on the bus was not attached.
#[derive(Debug, Clone)]
pub enum ProbeError {
    Pci(PciError),
    Transport(VirtioPciError),
    Virtio(virtio_drivers::Error),
    Memory(IoMapError),
}

struct Disk {
    name: String,
    disk: &'static Mutex<BlkDisk>,
}

static DISKS: Once<Vec<Disk>> = Once::new();

/// Find every virtio-blk device on PCI bus 0 and attach it; returns how many were attached. Runs once.
pub fn probe() -> usize {
    DISKS.call_once(probe_bus).len()
}

/// The disk whose ID string is `name` (`"swap"`, `"files"`); `None` before [`probe`] or if absent.
pub fn disk(name: &str) -> Option<&'static Mutex<BlkDisk>> {
    DISKS.get()?.iter().find(|d| d.name == name).map(|d| d.disk)
}

/// Every attached disk, in bus order.
pub fn disks() -> impl Iterator<Item = &'static Mutex<BlkDisk>> {
    DISKS.get().into_iter().flatten().map(|d| d.disk)
}

fn probe_bus() -> Vec<Disk> {
    // SAFETY: the probe runs once (`Once`) and is the only code that writes PCI configuration space.
    let mut root = PciRoot::new(unsafe { PortCam::new() });
    let found: Vec<DeviceFunction> = root
        .enumerate_bus(0)
        .filter(|(_, info)| virtio_device_type(info) == Some(DeviceType::Block))
        .map(|(df, _)| df)
        .collect();
    let mut disks = Vec::new();
    for df in found {
        match attach(&mut root, df) {
            Ok(disk) => {
                log::info!(
                    "virtio-blk {df}: \"{}\", {} pages of 4 KiB ({} MiB){}",
                    disk.name,
                    disk.capacity_pages,
                    disk.capacity_pages >> 8,
                    if disk.readonly { ", read-only" } else { "" }
                );
                let name = disk.name.clone();
                disks.push(Disk { name, disk: alloc::boxed::Box::leak(alloc::boxed::Box::new(Mutex::new(disk))) });
            }
            Err(e) => log::warn!("virtio-blk {df}: not attached: {e:?}"),
        }
    }
    if disks.is_empty() {
        log::info!("virtio-blk: no disks on PCI bus 0");
    }
    disks
}

fn attach(root: &mut PciRoot<PortCam>, df: DeviceFunction) -> Result<BlkDisk, ProbeError> {
    // Decode the BARs and let the device master the bus (DMA); no INTx: the driver polls.
    let (_, command) = root.get_status_command(df);
    root.set_command(df, command | Command::MEMORY_SPACE | Command::BUS_MASTER | Command::INTERRUPT_DISABLE);
    // Map each memory BAR once, whole; the transport's register blocks are found inside them.
    for (i, bar) in root.bars(df).map_err(ProbeError::Pci)?.iter().enumerate() {
        if let Some((addr, size)) = bar.as_ref().and_then(|b| b.memory_address_size())
            && addr != 0
            && size <= virtio_hal::MAX_BAR_BYTES
        {
            // SAFETY: the firmware assigned this BAR to the device; nothing else maps or moves it.
            let va = unsafe { virtio_hal::map_bar(addr, size) }.map_err(ProbeError::Memory)?;
            log::debug!("virtio-blk {df}: BAR{i} at {addr:#x} ({size} bytes) mapped uncached at {va:#x}");
        }
    }
    let transport = PciTransport::new::<ZkHal, _>(root, df).map_err(ProbeError::Transport)?;
    let mut bounce = Bounce::new().map_err(ProbeError::Memory)?;
    let mut blk = VirtIOBlk::<ZkHal, _>::new(transport).map_err(ProbeError::Virtio)?;
    // The ID string goes through the bounce data page, like every other device write.
    let id: &mut [u8; 20] = (&mut bounce.parts().0[..20]).try_into().expect("20 bytes");
    let name = match blk.device_id(id) {
        Ok(n) => String::from_utf8_lossy(&id[..n]).into_owned(),
        Err(e) => {
            log::warn!("virtio-blk {df}: no ID string ({e:?}); the disk has no name");
            String::new()
        }
    };
    Ok(BlkDisk {
        name,
        location: df,
        capacity_pages: blk.capacity() / SECTORS_PER_PAGE,
        readonly: blk.readonly(),
        blk,
        bounce,
        stats: BlkStats::default(),
        broken: false,
        timeout_cycles: tsc::hz().saturating_mul(REQUEST_TIMEOUT_SECS),
        inject: InjectionState::default(),
    })
}

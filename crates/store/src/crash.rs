//! A test seam: an in-memory [`redb::StorageBackend`] that can be made to
//! "crash", to check what survives a power cut at any point of a commit.
//!
//! [`CrashingBackend`] keeps two images: what the last completed
//! `sync_data` made durable, and what reads currently see (durable plus the
//! writes since). Arm it with a [`CrashPoint`]; the armed write or sync
//! fails, and from then on every operation fails with an I/O error, as if
//! the machine had died. [`CrashingBackend::recover`] then gives a fresh
//! backend holding only the durable image (every unsynced write lost);
//! [`CrashingBackend::recover_torn`] also keeps a random subset of the
//! unsynced writes, each whole, partly (per 512-byte sector) or not at all,
//! which is what a disk may do to writes it was never asked to make durable.
//!
//! Not for production: the whole database lives in memory, twice.

use std::sync::{Arc, Mutex, MutexGuard};

/// Unsynced operations one backend records before refusing more (a bound
/// on the test seam's memory; redb syncs far more often than this).
pub const CRASH_UNSYNCED_OPS_MAX: usize = 1 << 20;

/// The granularity at which [`CrashingBackend::recover_torn`] tears a write.
/// redb only assumes single bytes are written atomically, so any split is fair.
const SECTOR_BYTES: usize = 512;

/// When the armed backend fails, counted from [`CrashingBackend::arm`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashPoint {
    /// The `n`th mutation (`write` or `set_len`, 1-based) fails and is not applied.
    Write(u64),
    /// The `n`th `sync_data` (1-based) fails; what it should have made durable is not.
    Sync(u64),
}

#[derive(Clone, Debug)]
enum DiskOp {
    Write { offset: usize, data: Vec<u8> },
    SetLen(usize),
}

#[derive(Debug, Default)]
struct Disk {
    durable: Vec<u8>,
    visible: Vec<u8>,
    unsynced: Vec<DiskOp>,
    /// The mutation that was refused when the crash struck: the disk may have
    /// half-written it, so a torn recovery may keep part of it.
    in_flight: Option<DiskOp>,
    writes: u64,
    syncs: u64,
    armed: Option<CrashPoint>,
    crashed: bool,
}

/// An in-memory storage backend that can crash on demand (see the module
/// docs). Clones share one disk, so a test keeps a clone to arm it and to
/// recover after redb has taken the other.
#[derive(Clone, Debug, Default)]
pub struct CrashingBackend {
    disk: Arc<Mutex<Disk>>,
}

fn crashed_error() -> std::io::Error {
    std::io::Error::other("simulated crash: the disk is gone")
}

fn apply(image: &mut Vec<u8>, op: &DiskOp) {
    match op {
        DiskOp::Write { offset, data } => {
            let end = offset.saturating_add(data.len());
            if image.len() < end {
                image.resize(end, 0);
            }
            image[*offset..end].copy_from_slice(data);
        }
        DiskOp::SetLen(len) => image.resize(*len, 0),
    }
}

fn to_usize(value: u64) -> Result<usize, std::io::Error> {
    usize::try_from(value).map_err(|_| std::io::Error::other("offset does not fit in memory"))
}

/// A tiny deterministic generator (splitmix64), so torn recoveries replay from a seed.
struct Splitmix(u64);

impl Splitmix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl CrashingBackend {
    /// An empty, unarmed disk.
    pub fn new() -> CrashingBackend {
        CrashingBackend::default()
    }

    fn disk(&self) -> Result<MutexGuard<'_, Disk>, std::io::Error> {
        self.disk.lock().map_err(|_| std::io::Error::other("crash backend lock poisoned"))
    }

    /// Fail at `point`, counting writes and syncs from now.
    pub fn arm(&self, point: CrashPoint) {
        if let Ok(mut disk) = self.disk() {
            disk.writes = 0;
            disk.syncs = 0;
            disk.armed = Some(point);
        }
    }

    /// True once the armed point was reached.
    pub fn crashed(&self) -> bool {
        self.disk().map(|disk| disk.crashed).unwrap_or(true)
    }

    /// Mutations (`write`, `set_len`) and syncs since the last [`CrashingBackend::arm`]
    /// (or since creation): a dry run tells how many crash points a workload has.
    pub fn counts(&self) -> (u64, u64) {
        self.disk().map(|disk| (disk.writes, disk.syncs)).unwrap_or_default()
    }

    /// A fresh, unarmed backend holding only what was durable: every write
    /// since the last completed sync is lost.
    pub fn recover(&self) -> CrashingBackend {
        let durable = self.disk().map(|disk| disk.durable.clone()).unwrap_or_default();
        CrashingBackend::with_image(durable)
    }

    /// Like [`CrashingBackend::recover`], but each unsynced write (including
    /// the one the crash interrupted) independently survives whole, is lost,
    /// or survives sector by sector at random, as chosen by `seed`.
    pub fn recover_torn(&self, seed: u64) -> CrashingBackend {
        let Ok(disk) = self.disk() else { return CrashingBackend::new() };
        let mut rng = Splitmix(seed);
        let mut image = disk.durable.clone();
        for op in disk.unsynced.iter().chain(disk.in_flight.as_ref()) {
            match rng.next() % 3 {
                0 => apply(&mut image, op),
                1 => {}
                _ => match op {
                    DiskOp::Write { offset, data } => {
                        for (i, sector) in data.chunks(SECTOR_BYTES).enumerate() {
                            if rng.next().is_multiple_of(2) {
                                let sector = DiskOp::Write { offset: offset + i * SECTOR_BYTES, data: sector.to_vec() };
                                apply(&mut image, &sector);
                            }
                        }
                    }
                    DiskOp::SetLen(_) => apply(&mut image, op),
                },
            }
        }
        CrashingBackend::with_image(image)
    }

    fn with_image(image: Vec<u8>) -> CrashingBackend {
        let disk = Disk { durable: image.clone(), visible: image, ..Disk::default() };
        CrashingBackend { disk: Arc::new(Mutex::new(disk)) }
    }

    /// Record a mutation, or crash if it is the armed one.
    fn mutate(&self, op: DiskOp) -> Result<(), std::io::Error> {
        let mut disk = self.disk()?;
        if disk.crashed {
            return Err(crashed_error());
        }
        disk.writes += 1;
        if disk.armed == Some(CrashPoint::Write(disk.writes)) {
            disk.crashed = true;
            disk.in_flight = Some(op);
            return Err(crashed_error());
        }
        if disk.unsynced.len() >= CRASH_UNSYNCED_OPS_MAX {
            return Err(std::io::Error::other("too many unsynced writes for the crash backend"));
        }
        apply(&mut disk.visible, &op);
        disk.unsynced.push(op);
        Ok(())
    }
}

impl redb::StorageBackend for CrashingBackend {
    fn len(&self) -> Result<u64, std::io::Error> {
        let disk = self.disk()?;
        if disk.crashed {
            return Err(crashed_error());
        }
        Ok(disk.visible.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        let disk = self.disk()?;
        if disk.crashed {
            return Err(crashed_error());
        }
        let start = to_usize(offset)?;
        let source = start
            .checked_add(out.len())
            .and_then(|end| disk.visible.get(start..end))
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "read past the end"))?;
        out.copy_from_slice(source);
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        self.mutate(DiskOp::SetLen(to_usize(len)?))
    }

    fn sync_data(&self) -> Result<(), std::io::Error> {
        let mut disk = self.disk()?;
        if disk.crashed {
            return Err(crashed_error());
        }
        disk.syncs += 1;
        if disk.armed == Some(CrashPoint::Sync(disk.syncs)) {
            disk.crashed = true;
            return Err(crashed_error());
        }
        let Disk { durable, unsynced, .. } = &mut *disk;
        for op in unsynced.drain(..) {
            apply(durable, &op);
        }
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        self.mutate(DiskOp::Write { offset: to_usize(offset)?, data: data.to_vec() })
    }
}

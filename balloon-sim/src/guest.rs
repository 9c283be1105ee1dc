//! Guest-physical memory that the driver and the device share: the bytes of the virtqueues and of
//! the buffers they point at (the kernel's DMA-coherent allocations and `vb->pfns`/`vb->stats`).
//! Page frames themselves have no bytes in the model; the page allocator tracks their state.

use sim_core::sync::Mutex;

/// Byte order of the guest CPU, which a legacy (pre-VERSION_1) device follows for its rings and
/// buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Endian {
    /// x86, arm64, ppc64le.
    Little,
    /// s390x, ppc64 big-endian.
    Big,
}

/// Bytes a split ring lives in, as both sides of a queue reach them: ksim's [`GuestMemory`], or
/// (in the cross-check) the memory an independent device implementation owns, so the driver and
/// that device work on one memory rather than on copies. Multi-byte fields are read and written
/// whole, in the byte order asked for (a legacy ring follows the guest's).
pub trait RingMemory {
    /// Copies `out.len()` bytes from `addr`; `None` when the range leaves the memory.
    fn read(&self, addr: u64, out: &mut [u8]) -> Option<()>;
    /// Copies `data` to `addr`; `None` when the range leaves the memory.
    fn write(&self, addr: u64, data: &[u8]) -> Option<()>;

    /// A `u16` at `addr` in byte order `endian` (0 outside the memory).
    fn read_u16(&self, addr: u64, endian: Endian) -> u16 {
        let mut b = [0; 2];
        let _ = self.read(addr, &mut b);
        match endian {
            Endian::Little => u16::from_le_bytes(b),
            Endian::Big => u16::from_be_bytes(b),
        }
    }

    /// A `u32` at `addr`.
    fn read_u32(&self, addr: u64, endian: Endian) -> u32 {
        let mut b = [0; 4];
        let _ = self.read(addr, &mut b);
        match endian {
            Endian::Little => u32::from_le_bytes(b),
            Endian::Big => u32::from_be_bytes(b),
        }
    }

    /// A `u64` at `addr`.
    fn read_u64(&self, addr: u64, endian: Endian) -> u64 {
        let mut b = [0; 8];
        let _ = self.read(addr, &mut b);
        match endian {
            Endian::Little => u64::from_le_bytes(b),
            Endian::Big => u64::from_be_bytes(b),
        }
    }

    /// Writes a `u16`.
    fn write_u16(&self, addr: u64, value: u16, endian: Endian) {
        let b = match endian {
            Endian::Little => value.to_le_bytes(),
            Endian::Big => value.to_be_bytes(),
        };
        let _ = self.write(addr, &b);
    }

    /// Writes a `u32`.
    fn write_u32(&self, addr: u64, value: u32, endian: Endian) {
        let b = match endian {
            Endian::Little => value.to_le_bytes(),
            Endian::Big => value.to_be_bytes(),
        };
        let _ = self.write(addr, &b);
    }

    /// Writes a `u64`.
    fn write_u64(&self, addr: u64, value: u64, endian: Endian) {
        let b = match endian {
            Endian::Little => value.to_le_bytes(),
            Endian::Big => value.to_be_bytes(),
        };
        let _ = self.write(addr, &b);
    }
}

/// The shared bytes. Accesses are whole little fields, each atomic with respect to the others
/// (a facade mutex, invisible to lockdep: the device is not kernel code).
#[derive(Debug)]
pub struct GuestMemory {
    bytes: Mutex<Vec<u8>>,
}

impl GuestMemory {
    /// `size` bytes of zeroed memory.
    pub fn new(size: usize) -> GuestMemory {
        GuestMemory { bytes: Mutex::new(vec![0; size]) }
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.bytes.lock().len()
    }

    /// Whether the region is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies `out.len()` bytes from `addr`; `None` when the range leaves the region.
    pub fn read(&self, addr: u64, out: &mut [u8]) -> Option<()> {
        let bytes = self.bytes.lock();
        let start = usize::try_from(addr).ok()?;
        let end = start.checked_add(out.len())?;
        out.copy_from_slice(bytes.get(start..end)?);
        Some(())
    }

    /// Copies `data` to `addr`; `None` when the range leaves the region.
    pub fn write(&self, addr: u64, data: &[u8]) -> Option<()> {
        let mut bytes = self.bytes.lock();
        let start = usize::try_from(addr).ok()?;
        let end = start.checked_add(data.len())?;
        bytes.get_mut(start..end)?.copy_from_slice(data);
        Some(())
    }

    /// A `u16` at `addr` in byte order `endian` (0 outside the region).
    pub fn read_u16(&self, addr: u64, endian: Endian) -> u16 {
        RingMemory::read_u16(self, addr, endian)
    }

    /// A `u32` at `addr`.
    pub fn read_u32(&self, addr: u64, endian: Endian) -> u32 {
        RingMemory::read_u32(self, addr, endian)
    }

    /// A `u64` at `addr`.
    pub fn read_u64(&self, addr: u64, endian: Endian) -> u64 {
        RingMemory::read_u64(self, addr, endian)
    }

    /// Writes a `u16`.
    pub fn write_u16(&self, addr: u64, value: u16, endian: Endian) {
        RingMemory::write_u16(self, addr, value, endian)
    }

    /// Writes a `u32`.
    pub fn write_u32(&self, addr: u64, value: u32, endian: Endian) {
        RingMemory::write_u32(self, addr, value, endian)
    }

    /// Writes a `u64`.
    pub fn write_u64(&self, addr: u64, value: u64, endian: Endian) {
        RingMemory::write_u64(self, addr, value, endian)
    }
}

impl RingMemory for GuestMemory {
    fn read(&self, addr: u64, out: &mut [u8]) -> Option<()> {
        GuestMemory::read(self, addr, out)
    }

    fn write(&self, addr: u64, data: &[u8]) -> Option<()> {
        GuestMemory::write(self, addr, data)
    }
}

/// The driver's handle on the shared memory (`vdev->mem` is reference counted).
impl RingMemory for sim_core::sync::Arc<GuestMemory> {
    fn read(&self, addr: u64, out: &mut [u8]) -> Option<()> {
        GuestMemory::read(self, addr, out)
    }

    fn write(&self, addr: u64, data: &[u8]) -> Option<()> {
        GuestMemory::write(self, addr, data)
    }
}

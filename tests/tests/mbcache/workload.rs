//! A workload shaped like ext2/ext3 extended-attribute block sharing: many inodes set xattrs
//! whose values fall on few distinct keys, so each setxattr walks the index with
//! find_first/find_next looking for a block to share, creates a block when none fits, and the
//! last inode leaving a block frees it (get + free) while others may be looking it up.
//!
//! A task is a step machine (one mbcache call per step) so one thread can interleave many tasks
//! deterministically, and a thread per task can run them under shuttle.

use mbcache_sim::{bdev_address, CacheRef, Handle, MbError, Registry};
use sim_core::mm::Gfp;
use sim_core::sync::atomic::{AtomicU64, Ordering};
use sim_core::Cx;

/// Distinct xattr value hashes: few, so blocks are shared.
pub const KEYS: u64 = 3;

/// The shared filesystem state a task sees.
#[derive(Debug)]
pub struct Fs<'a> {
    pub registry: &'a Registry,
    pub cache: CacheRef,
    /// The next block number to allocate.
    pub next_block: &'a AtomicU64,
}

/// What a run of tasks did, to show the workload did what it claims.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub shared: u64,
    pub walked_on: u64,
    pub created: u64,
    pub freed: u64,
    pub blocked: u64,
    pub oopses: u64,
}

/// One inode's task.
#[derive(Debug)]
pub struct Task {
    rng: u64,
    walk: Option<(Handle, u32)>,
    steps_left: u32,
}

impl Task {
    /// A task whose choices follow `seed`, for `steps` steps.
    pub fn new(seed: u64, steps: u32) -> Task {
        Task { rng: seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1, walk: None, steps_left: steps }
    }

    fn next(&mut self) -> u64 {
        // xorshift64*: the workload's choices; the checkers own the interleaving.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 16
    }

    /// Whether the task has steps left (or a handle to give back).
    pub fn running(&self) -> bool {
        self.steps_left > 0 || self.walk.is_some()
    }

    fn create_block(&mut self, fs: &Fs<'_>, cx: &Cx, key: u32, stats: &mut Stats) -> Result<(), MbError> {
        let entry = fs.registry.alloc(cx, fs.cache)?;
        let block = fs.next_block.fetch_add(1, Ordering::SeqCst);
        match fs.registry.insert(cx, &entry, bdev_address(0), block, &[key]) {
            Ok(()) | Err(MbError::Errno(_)) => {}
            Err(other) => return Err(other),
        }
        stats.created += 1;
        fs.registry.release(cx, entry)
    }

    /// One mbcache call. `Err(WouldBlock)` leaves the task as it was (retry later).
    pub fn step(&mut self, fs: &Fs<'_>, cx: &Cx, stats: &mut Stats) -> Result<(), MbError> {
        let bdev = bdev_address(0);
        if let Some((handle, key)) = self.walk.take() {
            if self.steps_left == 0 || self.next().is_multiple_of(3) {
                // This block fits: the inode shares it (its refcount lives in the block).
                stats.shared += 1;
                return fs.registry.release(cx, handle);
            }
            return match fs.registry.find_next(cx, handle.clone(), 0, bdev, key) {
                Ok(Some(next)) => {
                    stats.walked_on += 1;
                    self.walk = Some((next, key));
                    Ok(())
                }
                Ok(None) | Err(MbError::Errno(_)) => self.create_block(fs, cx, key, stats),
                Err(MbError::WouldBlock) => {
                    stats.blocked += 1;
                    self.walk = Some((handle, key));
                    Err(MbError::WouldBlock)
                }
                Err(oops) => Err(oops),
            };
        }
        self.steps_left -= 1;
        let key = (self.next() % KEYS) as u32;
        match self.next() % 10 {
            0..=4 => match fs.registry.find_first(cx, fs.cache, 0, bdev, key)? {
                Some(handle) => {
                    self.walk = Some((handle, key));
                    Ok(())
                }
                None => self.create_block(fs, cx, key, stats),
            },
            5..=7 => {
                // The last inode using some block drops it.
                let blocks = fs.next_block.load(Ordering::SeqCst).max(1);
                let block = self.next() % blocks;
                match fs.registry.get(cx, fs.cache, bdev, block) {
                    Ok(Some(handle)) => {
                        stats.freed += 1;
                        fs.registry.free(cx, handle)
                    }
                    Ok(None) => Ok(()),
                    Err(MbError::WouldBlock) => {
                        stats.blocked += 1;
                        self.steps_left += 1;
                        Err(MbError::WouldBlock)
                    }
                    Err(other) => Err(other),
                }
            }
            8 => {
                let gfp = if self.next().is_multiple_of(2) { Gfp::GFP_NOFS } else { Gfp::GFP_KERNEL };
                fs.registry.shrink_fn(cx, (self.next() % 4) as i32, gfp).map(|_| ())
            }
            _ => self.create_block(fs, cx, key, stats),
        }
    }
}

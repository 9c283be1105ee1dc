//! CPU masks, per-CPU data and the cpulist text format: models include/linux/percpu.h,
//! include/linux/cpumask.h and lib/bitmap.c's `bitmap_parselist` / `bitmap_scnlistprintf`.
//!
//! - [`CpuMask`] is a `cpumask_t` of a run-time size (`nr_cpu_ids`, 1..=[`NR_CPUS_MAX`]), with
//!   the cpumask.h operations ksim needs: set/clear/test, weight, iteration in ascending CPU
//!   order, and/or/andnot, `cpumask_subset`, `cpumask_equal`.
//! - [`cpulist_parse`] is `cpulist_parse()` / `bitmap_parselist()` exactly as Linux 3.x
//!   parses a cpulist (the parser kernel/taskstats.c feeds with the
//!   `TASKSTATS_CMD_ATTR_REGISTER_CPUMASK` string), quirks included: an empty string or an empty
//!   group between commas selects CPU 0, and numbers wrap modulo 2^32.
//!   [`cpulist_parse_2_6_18`] is the stricter `simple_strtoul`-based parser of Linux 2.6.18;
//!   [`cpulist_parse_with`] picks one by [`CpulistSyntax`].
//! - [`cpulist_format`] is `bitmap_scnlistprintf()` / `cpulist_scnprintf()`: `"0-3,5,7-8"`.
//! - [`PerCpu`] is a `DEFINE_PER_CPU` variable: one value per possible CPU, reached by CPU id.
//!
//! Left out: the per-CPU allocator (chunks, `__percpu` pointers, `this_cpu_*` operations and the
//! preemption rules around them), CPU hotplug and the online/present/active masks (every CPU of
//! a [`PerCpu`] or a full mask is "possible"), `cpumask_var_t` off-stack allocation, the
//! difference between `NR_CPUS` and `nr_cpu_ids` (the caller passes whichever size the modelled
//! kernel used as the mask size), the hexadecimal `bitmap_parse()` format, the user-copy variant
//! `bitmap_parselist_user()` (and its `-EFAULT`), the bits a failed parse has already set in the
//! caller's mask (a failed parse here returns only the errno), the `used/group` syntax that
//! Linux 4.10 added, and the `N`/`all` keywords of later kernels.

use std::fmt;

use crate::Errno;

/// A CPU number, as the kernel's `unsigned int cpu`.
pub type CpuId = u32;

/// The largest CPU count ksim models (`CONFIG_NR_CPUS` under x86-64 `MAXSMP` in Linux 3.x).
pub const NR_CPUS_MAX: u32 = 4096;

const WORD_BITS: u32 = u64::BITS;

/// Panics unless `nr` is a CPU count ksim can model; only a bug in ksim can pass another.
fn check_nr_cpus(nr: u32, what: &str) {
    assert!((1..=NR_CPUS_MAX).contains(&nr), "{what}: CPU count {nr} is outside 1..={NR_CPUS_MAX}");
}

/// A set of CPUs, `cpumask_t`, sized for `nr_cpu_ids` CPUs.
///
/// Bits at and above `nr_cpu_ids` are always clear, so the derived `PartialEq` and `Hash`
/// compare exactly the CPUs in the mask (and its size). `Debug` shows the cpulist form.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CpuMask {
    nr_cpu_ids: u32,
    words: Vec<u64>,
}

impl CpuMask {
    /// An empty mask for `nr_cpu_ids` CPUs (`cpumask_clear`).
    ///
    /// Panics if `nr_cpu_ids` is 0 or above [`NR_CPUS_MAX`].
    pub fn new(nr_cpu_ids: u32) -> CpuMask {
        check_nr_cpus(nr_cpu_ids, "CpuMask::new");
        let nr_words = nr_cpu_ids.div_ceil(WORD_BITS) as usize;
        CpuMask { nr_cpu_ids, words: vec![0; nr_words] }
    }

    /// A mask with every CPU below `nr_cpu_ids` set (`cpumask_setall`, or `cpu_possible_mask`
    /// when every CPU is possible).
    ///
    /// Panics if `nr_cpu_ids` is 0 or above [`NR_CPUS_MAX`].
    pub fn full(nr_cpu_ids: u32) -> CpuMask {
        let mut mask = CpuMask::new(nr_cpu_ids);
        for word in &mut mask.words {
            *word = u64::MAX;
        }
        mask.clear_tail();
        mask
    }

    /// A mask for `nr_cpu_ids` CPUs holding exactly `cpus`.
    ///
    /// Panics like [`CpuMask::set`] if a CPU is out of range.
    pub fn from_cpus(nr_cpu_ids: u32, cpus: impl IntoIterator<Item = CpuId>) -> CpuMask {
        let mut mask = CpuMask::new(nr_cpu_ids);
        for cpu in cpus {
            mask.set(cpu);
        }
        mask
    }

    /// The number of CPUs the mask is sized for.
    pub fn nr_cpu_ids(&self) -> u32 {
        self.nr_cpu_ids
    }

    /// Adds `cpu` (`cpumask_set_cpu`).
    ///
    /// Panics if `cpu >= nr_cpu_ids()`: only a bug in ksim can name a CPU that does not exist.
    pub fn set(&mut self, cpu: CpuId) {
        self.check_cpu(cpu, "set");
        self.words[(cpu / WORD_BITS) as usize] |= 1u64 << (cpu % WORD_BITS);
    }

    /// Removes `cpu` (`cpumask_clear_cpu`).
    ///
    /// Panics if `cpu >= nr_cpu_ids()`: only a bug in ksim can name a CPU that does not exist.
    pub fn clear(&mut self, cpu: CpuId) {
        self.check_cpu(cpu, "clear");
        self.words[(cpu / WORD_BITS) as usize] &= !(1u64 << (cpu % WORD_BITS));
    }

    /// Whether `cpu` is in the mask (`cpumask_test_cpu`); a CPU beyond the mask is not.
    pub fn test(&self, cpu: CpuId) -> bool {
        cpu < self.nr_cpu_ids && self.words[(cpu / WORD_BITS) as usize] & (1u64 << (cpu % WORD_BITS)) != 0
    }

    /// The number of CPUs in the mask (`cpumask_weight`).
    pub fn weight(&self) -> u32 {
        self.words.iter().map(|word| word.count_ones()).sum()
    }

    /// Whether no CPU is in the mask (`cpumask_empty`).
    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&word| word == 0)
    }

    /// The CPUs in the mask in ascending order (`for_each_cpu`).
    pub fn iter(&self) -> CpuMaskIter<'_> {
        CpuMaskIter { mask: self, from: 0 }
    }

    /// The lowest CPU in the mask (`cpumask_first`), or `None` for an empty mask where the
    /// kernel would return `nr_cpu_ids`.
    pub fn first(&self) -> Option<CpuId> {
        self.find_next(0)
    }

    /// The CPUs in both masks (`cpumask_and`).
    ///
    /// Panics if the masks are sized for different CPU counts.
    pub fn and(&self, other: &CpuMask) -> CpuMask {
        self.combine(other, "and", |a, b| a & b)
    }

    /// The CPUs in either mask (`cpumask_or`).
    ///
    /// Panics if the masks are sized for different CPU counts.
    pub fn or(&self, other: &CpuMask) -> CpuMask {
        self.combine(other, "or", |a, b| a | b)
    }

    /// The CPUs in `self` but not in `other` (`cpumask_andnot`).
    ///
    /// Panics if the masks are sized for different CPU counts.
    pub fn andnot(&self, other: &CpuMask) -> CpuMask {
        self.combine(other, "andnot", |a, b| a & !b)
    }

    fn combine(&self, other: &CpuMask, what: &str, op: impl Fn(u64, u64) -> u64) -> CpuMask {
        check_same_size(self, other, what);
        let words = self.words.iter().zip(&other.words).map(|(&a, &b)| op(a, b)).collect();
        let mut mask = CpuMask { nr_cpu_ids: self.nr_cpu_ids, words };
        mask.clear_tail();
        mask
    }

    /// The lowest CPU `>= from` in the mask (`find_next_bit`).
    fn find_next(&self, from: CpuId) -> Option<CpuId> {
        if from >= self.nr_cpu_ids {
            return None;
        }
        let mut index = (from / WORD_BITS) as usize;
        let mut word = self.words[index] & (u64::MAX << (from % WORD_BITS));
        loop {
            if word != 0 {
                // `index` < 4096 / 64, so the product fits in a u32.
                return Some(index as u32 * WORD_BITS + word.trailing_zeros());
            }
            index += 1;
            word = *self.words.get(index)?;
        }
    }

    /// Keeps the bits at and above `nr_cpu_ids` clear, the invariant `PartialEq` relies on.
    fn clear_tail(&mut self) {
        let used = self.nr_cpu_ids % WORD_BITS;
        if used != 0 {
            if let Some(last) = self.words.last_mut() {
                *last &= (1u64 << used) - 1;
            }
        }
    }

    fn check_cpu(&self, cpu: CpuId, what: &str) {
        assert!(
            cpu < self.nr_cpu_ids,
            "CpuMask::{what}: CPU {cpu} is out of range for a mask of {} CPUs",
            self.nr_cpu_ids
        );
    }
}

fn check_same_size(a: &CpuMask, b: &CpuMask, what: &str) {
    assert_eq!(a.nr_cpu_ids, b.nr_cpu_ids, "cpumask {what}: masks sized for different CPU counts");
}

/// Whether every CPU of `a` is also in `b` (`cpumask_subset`).
///
/// Panics if the masks are sized for different CPU counts.
pub fn cpumask_subset(a: &CpuMask, b: &CpuMask) -> bool {
    check_same_size(a, b, "subset");
    a.words.iter().zip(&b.words).all(|(&x, &y)| x & !y == 0)
}

/// Whether `a` and `b` hold the same CPUs (`cpumask_equal`).
///
/// Panics if the masks are sized for different CPU counts.
pub fn cpumask_equal(a: &CpuMask, b: &CpuMask) -> bool {
    check_same_size(a, b, "equal");
    a.words == b.words
}

/// The CPUs of a [`CpuMask`] in ascending order, from [`CpuMask::iter`].
#[derive(Clone, Debug)]
pub struct CpuMaskIter<'a> {
    mask: &'a CpuMask,
    from: CpuId,
}

impl Iterator for CpuMaskIter<'_> {
    type Item = CpuId;

    fn next(&mut self) -> Option<CpuId> {
        match self.mask.find_next(self.from) {
            Some(cpu) => {
                self.from = cpu + 1;
                Some(cpu)
            }
            None => {
                self.from = self.mask.nr_cpu_ids;
                None
            }
        }
    }
}

impl<'a> IntoIterator for &'a CpuMask {
    type Item = CpuId;
    type IntoIter = CpuMaskIter<'a>;

    fn into_iter(self) -> CpuMaskIter<'a> {
        self.iter()
    }
}

impl fmt::Display for CpuMask {
    /// The cpulist form, as [`cpulist_format`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (low, high) in runs(self) {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if low == high {
                write!(f, "{low}")?;
            } else {
                write!(f, "{low}-{high}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for CpuMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CpuMask({}/{}: \"{}\")", self.weight(), self.nr_cpu_ids, self)
    }
}

/// The maximal runs of consecutive CPUs in `mask`, lowest first, as `(first, last)` pairs.
fn runs(mask: &CpuMask) -> impl Iterator<Item = (CpuId, CpuId)> + '_ {
    let mut cpus = mask.iter().peekable();
    std::iter::from_fn(move || {
        let low = cpus.next()?;
        let mut high = low;
        while cpus.peek() == Some(&(high + 1)) {
            high += 1;
            cpus.next();
        }
        Some((low, high))
    })
}

/// The end of one group in both parsers: `a-b` with `a > b` is EINVAL, a CPU at or past
/// `nr_cpu_ids` is ERANGE (checked in that order, as both kernels do), else the range is set.
fn set_group(mask: &mut CpuMask, a: u32, b: u32, nr_cpu_ids: u32) -> Result<(), Errno> {
    if a > b {
        return Err(Errno::EINVAL);
    }
    if b >= nr_cpu_ids {
        return Err(Errno::ERANGE);
    }
    for cpu in a..=b {
        mask.set(cpu);
    }
    Ok(())
}

/// `bitmap_scnlistprintf()`: the CPUs of `mask` as a cpulist, runs of two or more consecutive
/// CPUs as `first-last`, joined by commas: `"0-3,5,7-8"`. An empty mask gives `""`.
///
/// The kernel writes into a caller's buffer and truncates to its size; this returns the whole
/// string. [`cpulist_parse`] reads it back to the same mask unless the mask is empty.
pub fn cpulist_format(mask: &CpuMask) -> String {
    mask.to_string()
}

/// Which kernel's `bitmap_parselist()` a cpulist is parsed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CpulistSyntax {
    /// Linux 2.6.18 and the other 2.6 kernels with the `simple_strtoul()` parser:
    /// [`cpulist_parse_2_6_18`].
    Linux2_6_18,
    /// Linux 3.0 and later 3.x kernels: [`cpulist_parse`].
    Linux3,
}

/// `cpulist_parse()` of the kernel named by `syntax`.
///
/// Panics if `nr_cpu_ids` is 0 or above [`NR_CPUS_MAX`].
pub fn cpulist_parse_with(syntax: CpulistSyntax, text: &str, nr_cpu_ids: u32) -> Result<CpuMask, Errno> {
    match syntax {
        CpulistSyntax::Linux2_6_18 => cpulist_parse_2_6_18(text, nr_cpu_ids),
        CpulistSyntax::Linux3 => cpulist_parse(text, nr_cpu_ids),
    }
}

/// [`cpulist_parse`] over raw bytes, for a C string that need not be UTF-8 (a netlink
/// attribute's payload): bytes 128..=255 are read as the kernel reads them, so Latin-1's
/// no-break space (160) is whitespace. Everything from the first NUL on is ignored.
///
/// Panics if `nr_cpu_ids` is 0 or above [`NR_CPUS_MAX`].
pub fn cpulist_parse_bytes(bytes: &[u8], nr_cpu_ids: u32) -> Result<CpuMask, Errno> {
    let bytes = &bytes[..bytes.iter().position(|&c| c == 0).unwrap_or(bytes.len())];
    let bytes = &bytes[..bytes.iter().position(|&c| c == b'\n').unwrap_or(bytes.len())];
    parselist_3(bytes, nr_cpu_ids)
}

/// The kernel's `isspace()` on one byte: lib/ctype.c marks 9..=13, 32 and 160 (Latin-1
/// no-break space) `_S`. Bytes 128..=255 are looked up as unsigned, whatever `char`'s sign.
fn kernel_isspace(c: u8) -> bool {
    matches!(c, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ' | 0xa0)
}

/// The bytes a C function taking `const char *` sees of `text`: everything before the first
/// NUL, as `strlen()` would measure it.
fn c_string(text: &str) -> &[u8] {
    let bytes = text.as_bytes();
    match bytes.iter().position(|&c| c == 0) {
        Some(nul) => &bytes[..nul],
        None => bytes,
    }
}

// Source read for the two parsers (facts only; the Rust is written anew):
//
// - Linux 3.x: lib/bitmap.c, `__bitmap_parselist()` and its wrapper `bitmap_parselist()`, as
//   in the v3.2 tree (GitHub mirror x86-8/linux-3.2, commit 2226e115c51b). This buffer-walking
//   form came with Mike Travis's commit 4b060420a596 (2011-05, merged for Linux 3.0, adding the
//   `is_user` path for /proc/irq/*/smp_affinity_list); its state is `exp_digit`, `in_range`,
//   `totaldigits`. What it does at the edges, statement by statement:
//   * `bitmap_parselist()`: `len = strchr(bp, '\n') ? nl - bp : strlen(bp)`; so the newline and
//     the NUL are never read by the loop.
//   * `while (buflen)` body: `isspace(c)` -> `continue`; then `totaldigits && c &&
//     isspace(old_c)` -> `-EINVAL`; then `c == '\0' || c == ','` -> `break`; `'-'` with
//     `exp_digit || in_range` -> `-EINVAL`, else `b = 0, in_range = 1, exp_digit = 1`;
//     `!isdigit(c)` -> `-EINVAL`; `b = b * 10 + (c - '0')` in `unsigned` (wraps mod 2^32).
//   * after the loop: `!(a <= b)` -> `-EINVAL`, then `b >= nmaskbits` -> `-ERANGE`, then bits
//     `a..=b` are set with no test that the group held a digit: `""` and `","` give CPU 0,
//     `"0-"` is `0-0`. The outer loop runs `while (buflen && c == ',')`, so a trailing comma
//     is not an extra group.
//   * Android trees (e.g. CyanogenMod/lge-kernel-mako, a 3.4 kernel) carry a variant with
//     `at_start` and an `if (!at_start)` guard that makes `""` an empty mask; mainline 3.x
//     does not, and this follows mainline. Later mainline (the `ndigits` rework, Linux 4.x)
//     skips empty groups and rejects `"0-"`; not modelled.
// - Linux 2.6.18: lib/bitmap.c `bitmap_parselist()` from Paul Jackson's 2004 patch, read in
//   the 2.6.24 tree (HelloWangDiSheng/Linux-2.6.24-LatestModified-, commit 58d1b3e2f17e) and
//   identical to the patch as posted: `isdigit(*bp)` else `-EINVAL`; `a = b =
//   simple_strtoul(bp, &bp, 10)`; on `'-'` skip it, `isdigit` else `-EINVAL`, read `b`;
//   `a <= b` else `-EINVAL`; `b >= nmaskbits` -> `-ERANGE`; skip one `','`; loop while
//   `*bp != '\0' && *bp != '\n'`. lib/vsprintf.c `simple_strtoul()` accumulates in `unsigned
//   long` without an overflow check.
// - lib/ctype.c `_ctype[]`: `_S` on 9..=13, 32 and 160.

/// `cpulist_parse()` of Linux 3.x: `bitmap_parselist()` in lib/bitmap.c.
///
/// Reads `text` as the C string the kernel gets (it ends at the first NUL), and only up to the
/// first newline. The list is groups separated by `,`; a group is a decimal number `a` or a range
/// `a-b`. Whitespace may lead or trail; once any digit has been read, whitespace followed by
/// anything but more whitespace is embedded whitespace, even around a comma (`"1, 2"`).
/// Errors, as the kernel returns them:
///
/// - `EINVAL` for a byte that is not a digit, `,`, `-` or whitespace; for `-` with no digit
///   before it in its group or a second `-` in a group; for embedded whitespace; for a range
///   whose first number is larger than its last;
/// - `ERANGE` for a number `>= nr_cpu_ids` (checked after the order of the range).
///
/// `nr_cpu_ids` is the kernel's `nmaskbits`. `cpulist_parse()` passes `nr_cpumask_bits`, which
/// is `NR_CPUS` unless `CONFIG_CPUMASK_OFFSTACK` makes it `nr_cpu_ids`; pass the size the
/// modelled kernel used.
///
/// Quirks kept: `""`, `","` or whitespace alone select CPU 0, as does each empty group
/// (`"1,,2"` is CPUs 0-2); a trailing comma adds nothing; `"a-"` means `a-0` (so `"0-"` is CPU 0
/// and `"2-"` is `EINVAL`); numbers wrap modulo 2^32 (`"4294967297"` is CPU 1). Groups are
/// checked in order, so `"1,4,x"` with 4 CPUs gives `ERANGE`, not `EINVAL`.
///
/// Panics if `nr_cpu_ids` is 0 or above [`NR_CPUS_MAX`].
pub fn cpulist_parse(text: &str, nr_cpu_ids: u32) -> Result<CpuMask, Errno> {
    // bitmap_parselist() hands __bitmap_parselist() a length of strchr(bp, '\n') - bp when the
    // string has a newline and strlen(bp) otherwise, so neither the newline nor the NUL is read.
    let bytes = c_string(text);
    let bytes = match bytes.iter().position(|&c| c == b'\n') {
        Some(newline) => &bytes[..newline],
        None => bytes,
    };
    parselist_3(bytes, nr_cpu_ids)
}

/// `__bitmap_parselist()` of Linux 3.x over a buffer of `buf.len()` bytes. Reading a
/// NUL ends the group and the list, as in the `bitmap_parselist_user()` path; through
/// [`cpulist_parse`] no NUL or newline ever reaches it.
///
/// The state, as lib/bitmap.c keeps it:
/// - `c` / `old_c`: the byte just read and the one before, carried across groups;
/// - `seen_digit`: whether any digit has been read in the whole string (the kernel counts them
///   in `int totaldigits` and only tests it against zero);
/// - `expect_digit`: at the start of a group or right after its `-` (`exp_digit`);
/// - `in_range`: a `-` has been read in this group; `a`, `b`: the group's bounds.
fn parselist_3(buf: &[u8], nr_cpu_ids: u32) -> Result<CpuMask, Errno> {
    let mut mask = CpuMask::new(nr_cpu_ids);
    let mut rest = buf.iter().copied();
    let mut c: u8 = 0;
    let mut seen_digit = false;
    loop {
        let mut expect_digit = true;
        let mut in_range = false;
        // `unsigned a, b`: the kernel accumulates in 32 bits and wraps silently.
        let mut a: u32 = 0;
        let mut b: u32 = 0;
        for byte in rest.by_ref() {
            let old_c = c;
            c = byte;
            if kernel_isspace(c) {
                continue;
            }
            // Embedded whitespace: a space already read after some digit, now followed by a
            // byte other than NUL. The test comes before the `,` check, so "1 ,2" fails too,
            // and `seen_digit` is not per group, so "1, 2" fails as well.
            if seen_digit && c != 0 && kernel_isspace(old_c) {
                return Err(Errno::EINVAL);
            }
            if c == 0 || c == b',' {
                break;
            }
            if c == b'-' {
                if expect_digit || in_range {
                    return Err(Errno::EINVAL);
                }
                b = 0;
                in_range = true;
                expect_digit = true;
                continue;
            }
            if !c.is_ascii_digit() {
                return Err(Errno::EINVAL);
            }
            b = b.wrapping_mul(10).wrapping_add(u32::from(c - b'0'));
            if !in_range {
                a = b;
            }
            expect_digit = false;
            seen_digit = true;
        }
        // No test that a digit followed the `-` (`expect_digit` is not looked at here), and
        // none that the group held a digit at all: an empty group is a = b = 0, CPU 0.
        set_group(&mut mask, a, b, nr_cpu_ids)?;
        // The kernel loops `while (buflen && c == ',')`: a comma that is the last byte ends
        // the list without an empty group after it, and a NUL ends it in any case.
        if !(c == b',' && rest.len() > 0) {
            return Ok(mask);
        }
    }
}

/// `simple_strtoul(p, &end, 10)` of Linux 2.6.18 stored into an `unsigned int`: the digits at
/// the start of `bytes[at..]` as a number modulo 2^32, and the index after them.
///
/// The kernel accumulates in `unsigned long` without an overflow check and the caller keeps
/// the low 32 bits; `(x mod 2^64) mod 2^32 == x mod 2^32`, so wrapping in 32 bits gives the same
/// value on 32- and 64-bit kernels. Base 10 takes no `0x` prefix and stops at the first byte
/// that is not `0`..=`9`.
fn strtoul_10(bytes: &[u8], mut at: usize) -> (u32, usize) {
    let mut value: u32 = 0;
    while let Some(&c) = bytes.get(at) {
        if !c.is_ascii_digit() {
            break;
        }
        value = value.wrapping_mul(10).wrapping_add(u32::from(c - b'0'));
        at += 1;
    }
    (value, at)
}

/// `cpulist_parse()` of Linux 2.6.18: the `bitmap_parselist()` lib/bitmap.c had from 2004 until
/// Linux 3.0, built on `simple_strtoul()`.
///
/// Reads `text` as a C string (it ends at the first NUL). Each group must start with a digit;
/// a `-` must be followed by a digit; after a group one `,` is skipped; the list ends at a NUL
/// or a newline where a group would start. Anything else where a group must start is `EINVAL`,
/// so unlike [`cpulist_parse`] this rejects `""`, `","`, `"1,,2"`, `"0-"`, and whitespace
/// anywhere (a newline ends the list only after a group or its comma). A range whose first
/// number is larger is `EINVAL`, a number `>= nr_cpu_ids` is `ERANGE`, and numbers wrap modulo
/// 2^32 (`"4294967297"` is CPU 1). Groups are checked in order. Linux 2.6.18's `cpulist_parse()`
/// passes `NR_CPUS` as the mask size.
///
/// Panics if `nr_cpu_ids` is 0 or above [`NR_CPUS_MAX`].
pub fn cpulist_parse_2_6_18(text: &str, nr_cpu_ids: u32) -> Result<CpuMask, Errno> {
    let bytes = c_string(text);
    // Reading at or past the end is reading the terminating NUL.
    let at = |i: usize| bytes.get(i).copied().unwrap_or(0);
    let mut mask = CpuMask::new(nr_cpu_ids);
    let mut p = 0;
    loop {
        if !at(p).is_ascii_digit() {
            return Err(Errno::EINVAL);
        }
        let (a, next) = strtoul_10(bytes, p);
        p = next;
        let mut b = a;
        if at(p) == b'-' {
            p += 1;
            if !at(p).is_ascii_digit() {
                return Err(Errno::EINVAL);
            }
            let (last, next) = strtoul_10(bytes, p);
            b = last;
            p = next;
        }
        set_group(&mut mask, a, b, nr_cpu_ids)?;
        if at(p) == b',' {
            p += 1;
        }
        if matches!(at(p), 0 | b'\n') {
            return Ok(mask);
        }
    }
}

/// A per-CPU variable (`DEFINE_PER_CPU(T, name)`): one `T` for each possible CPU.
///
/// `per_cpu(var, cpu)` is [`PerCpu::get`] / [`PerCpu::get_mut`], and
/// `for_each_possible_cpu(cpu)` over it is [`PerCpu::iter`] or
/// [`PerCpu::for_each_possible_cpu`]. Which CPU is "this" CPU, and the preemption rules that go
/// with it, belong to the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PerCpu<T> {
    slots: Vec<T>,
}

impl<T> PerCpu<T> {
    /// One value for each of CPUs `0..nr_cpus`, made by `init(cpu)` in ascending CPU order.
    ///
    /// Panics if `nr_cpus` is 0 or above [`NR_CPUS_MAX`].
    pub fn new(nr_cpus: u32, init: impl FnMut(CpuId) -> T) -> PerCpu<T> {
        check_nr_cpus(nr_cpus, "PerCpu::new");
        PerCpu { slots: (0..nr_cpus).map(init).collect() }
    }

    /// The number of possible CPUs.
    pub fn nr_cpus(&self) -> u32 {
        // At most NR_CPUS_MAX slots, checked in `new`.
        self.slots.len() as u32
    }

    /// `per_cpu(var, cpu)` for reading.
    ///
    /// Panics if `cpu >= nr_cpus()`: only a bug in ksim can name a CPU that does not exist.
    pub fn get(&self, cpu: CpuId) -> &T {
        self.check_cpu(cpu);
        &self.slots[cpu as usize]
    }

    /// `per_cpu(var, cpu)` for writing.
    ///
    /// Panics if `cpu >= nr_cpus()`: only a bug in ksim can name a CPU that does not exist.
    pub fn get_mut(&mut self, cpu: CpuId) -> &mut T {
        self.check_cpu(cpu);
        &mut self.slots[cpu as usize]
    }

    /// Every CPU's value with its CPU id, in ascending CPU order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (CpuId, &T)> + DoubleEndedIterator + '_ {
        // At most NR_CPUS_MAX slots, checked in `new`, so every index fits a CpuId.
        self.slots.iter().enumerate().map(|(cpu, value)| (cpu as CpuId, value))
    }

    /// Every CPU's value, mutably, with its CPU id, in ascending CPU order.
    pub fn iter_mut(&mut self) -> impl ExactSizeIterator<Item = (CpuId, &mut T)> + DoubleEndedIterator + '_ {
        self.slots.iter_mut().enumerate().map(|(cpu, value)| (cpu as CpuId, value))
    }

    /// `for_each_possible_cpu(cpu) { f(cpu, &per_cpu(var, cpu)) }`, in ascending CPU order.
    pub fn for_each_possible_cpu(&self, mut f: impl FnMut(CpuId, &T)) {
        for (cpu, value) in self.iter() {
            f(cpu, value);
        }
    }

    /// `for_each_possible_cpu(cpu) { f(cpu, &mut per_cpu(var, cpu)) }`, in ascending CPU order.
    pub fn for_each_possible_cpu_mut(&mut self, mut f: impl FnMut(CpuId, &mut T)) {
        for (cpu, value) in self.iter_mut() {
            f(cpu, value);
        }
    }

    /// The possible CPUs, all of `0..nr_cpus()` (`cpu_possible_mask`).
    pub fn possible_mask(&self) -> CpuMask {
        CpuMask::full(self.nr_cpus())
    }

    fn check_cpu(&self, cpu: CpuId) {
        assert!(
            (cpu as usize) < self.slots.len(),
            "PerCpu: CPU {cpu} is out of range for {} possible CPUs",
            self.slots.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    use CpulistSyntax::{Linux2_6_18, Linux3};

    /// The expected result of a parse: the mask in cpulist form, or the errno.
    type Expected = Result<&'static str, Errno>;

    const EINVAL: Errno = Errno::EINVAL;
    const ERANGE: Errno = Errno::ERANGE;

    /// (input, nr_cpu_ids, what the kernel returns). Comments name the branch.
    const LINUX3_TABLE: &[(&str, u32, Expected)] = &[
        ("0", 4, Ok("0")),
        ("0-3", 4, Ok("0-3")),
        ("0-3,5", 8, Ok("0-3,5")),
        ("1-1", 4, Ok("1")),
        ("007", 8, Ok("7")),
        ("3,1,2", 4, Ok("1-3")),
        ("0-2,1-3", 4, Ok("0-3")),
        ("4095", 4096, Ok("4095")),
        ("0-4095", 4096, Ok("0-4095")),
        // Leading and trailing whitespace of every kind isspace() knows.
        (" 1,2 ", 4, Ok("1-2")),
        ("\t0-3\t", 4, Ok("0-3")),
        ("1\u{b}\u{c}\r", 4, Ok("1")),
        // Embedded whitespace, even around a separator.
        ("1 2", 4, Err(EINVAL)),
        ("0 - 3", 4, Err(EINVAL)),
        ("1 ,2", 4, Err(EINVAL)),
        ("1, 2", 4, Err(EINVAL)),
        // Whitespace before any digit is leading whitespace, even after a comma.
        (" ,1", 4, Ok("0-1")),
        // Ranges.
        ("3-1", 4, Err(EINVAL)),
        ("5-2", 4, Err(EINVAL)),
        // The order check comes before the range check.
        ("5-4", 4, Err(EINVAL)),
        ("2-5", 4, Err(ERANGE)),
        ("4", 4, Err(ERANGE)),
        ("1,4", 4, Err(ERANGE)),
        ("1,4,x", 4, Err(ERANGE)),
        // Misplaced '-'.
        ("-", 4, Err(EINVAL)),
        ("-1", 4, Err(EINVAL)),
        ("1--2", 4, Err(EINVAL)),
        ("0-3-", 4, Err(EINVAL)),
        ("1,-2", 4, Err(EINVAL)),
        // A '-' with nothing after it means "-0".
        ("0-", 4, Ok("0")),
        ("2-", 4, Err(EINVAL)),
        ("0-,2", 4, Ok("0,2")),
        ("1-2,3-", 4, Err(EINVAL)),
        // Bytes that are not digits.
        ("a", 4, Err(EINVAL)),
        ("1,a", 4, Err(EINVAL)),
        ("+1", 4, Err(EINVAL)),
        ("0x1", 4, Err(EINVAL)),
        ("1;2", 4, Err(EINVAL)),
        ("\u{a0}1", 4, Err(EINVAL)),
        // Empty groups select CPU 0; a trailing comma adds nothing.
        ("", 4, Ok("0")),
        ("  ", 4, Ok("0")),
        (",", 4, Ok("0")),
        ("1,,2", 4, Ok("0-2")),
        (",1", 4, Ok("0-1")),
        ("1,", 4, Ok("1")),
        ("2,,", 4, Ok("0,2")),
        // The newline ends the string, the NUL ends the C string.
        ("0\n", 4, Ok("0")),
        ("0\n1", 4, Ok("0")),
        ("1\r\n", 4, Ok("1")),
        ("\n1", 4, Ok("0")),
        ("1\u{0}junk", 4, Ok("1")),
        ("\u{0}1", 4, Ok("0")),
        ("1\u{0}\n", 4, Ok("1")),
        // Numbers wrap modulo 2^32.
        ("99999999999999999999", 4, Err(ERANGE)),
        ("99999999999999999999", 4096, Err(ERANGE)),
        ("4294967296", 4, Ok("0")),
        ("4294967297-4294967299", 4, Ok("1-3")),
        ("18446744073709551618", 4, Ok("2")),
        ("4294967295", 4096, Err(ERANGE)),
    ];

    const LINUX2_6_18_TABLE: &[(&str, u32, Expected)] = &[
        ("0", 4, Ok("0")),
        ("0-3", 4, Ok("0-3")),
        ("0-3,5", 8, Ok("0-3,5")),
        ("007", 8, Ok("7")),
        ("3,1,2", 4, Ok("1-3")),
        ("0-4095", 4096, Ok("0-4095")),
        ("1,", 4, Ok("1")),
        ("1,\n", 4, Ok("1")),
        ("0\n", 4, Ok("0")),
        ("0\njunk", 4, Ok("0")),
        ("1\u{0}junk", 4, Ok("1")),
        ("", 4, Err(EINVAL)),
        ("\u{0}1", 4, Err(EINVAL)),
        ("\n", 4, Err(EINVAL)),
        (",", 4, Err(EINVAL)),
        ("1,,2", 4, Err(EINVAL)),
        (" 1", 4, Err(EINVAL)),
        ("1 ", 4, Err(EINVAL)),
        ("1 2", 4, Err(EINVAL)),
        ("3-1", 4, Err(EINVAL)),
        ("5-4", 4, Err(EINVAL)),
        ("4", 4, Err(ERANGE)),
        ("2-5", 4, Err(ERANGE)),
        ("1,4", 4, Err(ERANGE)),
        ("1,4,x", 4, Err(ERANGE)),
        ("0-", 4, Err(EINVAL)),
        ("0-\n", 4, Err(EINVAL)),
        ("-1", 4, Err(EINVAL)),
        ("1--2", 4, Err(EINVAL)),
        ("1-2-3", 4, Err(EINVAL)),
        ("a", 4, Err(EINVAL)),
        ("12x", 16, Err(EINVAL)),
        ("0x1", 4, Err(EINVAL)),
        ("99999999999999999999", 4096, Err(ERANGE)),
        ("4294967297", 4, Ok("1")),
        ("4294967296-4294967299", 4, Ok("0-3")),
    ];

    fn check_table(syntax: CpulistSyntax, table: &[(&str, u32, Expected)]) {
        let mut failures = Vec::new();
        for &(text, nr, expected) in table {
            let got = cpulist_parse_with(syntax, text, nr);
            if let Ok(mask) = &got {
                assert_eq!(mask.nr_cpu_ids(), nr, "{syntax:?} {text:?}: mask size");
            }
            let got = got.map(|mask| cpulist_format(&mask));
            if got.as_deref().map_err(|&e| e) != expected {
                failures.push(format!("{syntax:?} {text:?} nr={nr}: got {got:?}, kernel gives {expected:?}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn linux3_parser_matches_the_kernel_on_every_table_row() {
        assert!(LINUX3_TABLE.len() >= 25);
        check_table(Linux3, LINUX3_TABLE);
    }

    #[test]
    fn linux2_6_18_parser_matches_the_kernel_on_every_table_row() {
        assert!(LINUX2_6_18_TABLE.len() >= 10);
        check_table(Linux2_6_18, LINUX2_6_18_TABLE);
    }

    #[test]
    fn cpulist_parse_is_the_linux3_syntax() {
        for &(text, nr, _) in LINUX3_TABLE.iter().chain(LINUX2_6_18_TABLE) {
            assert_eq!(cpulist_parse(text, nr), cpulist_parse_with(Linux3, text, nr));
            assert_eq!(cpulist_parse_2_6_18(text, nr), cpulist_parse_with(Linux2_6_18, text, nr));
        }
    }

    #[test]
    fn the_two_syntaxes_disagree_on_empty_groups_and_whitespace() {
        for text in ["", ",", "1,,2", " 1", "1 ", "0-"] {
            assert!(cpulist_parse(text, 4).is_ok(), "{text:?}");
            assert_eq!(cpulist_parse_2_6_18(text, 4), Err(EINVAL), "{text:?}");
        }
    }

    #[test]
    fn a_nul_in_the_buffer_ends_the_linux3_list_like_the_user_copy_path() {
        // Through __bitmap_parselist() with a length past the NUL, as bitmap_parselist_user()
        // calls it: the NUL ends the group and the list.
        assert_eq!(parselist_3(b"1\x00,2", 4).map(|m| m.to_string()), Ok("1".into()));
        // Whitespace before the NUL is trailing, not embedded.
        assert_eq!(parselist_3(b"1 \x00", 4).map(|m| m.to_string()), Ok("1".into()));
        // A NUL right away is an empty group: CPU 0.
        assert_eq!(parselist_3(b"\x00", 4).map(|m| m.to_string()), Ok("0".into()));
        // Without the NUL the same bytes would go on to the next group.
        assert_eq!(parselist_3(b"1,2", 4).map(|m| m.to_string()), Ok("1-2".into()));
    }

    #[test]
    fn the_kernel_isspace_treats_latin1_no_break_space_as_whitespace() {
        assert_eq!(parselist_3(b"\xa01\xa0", 4).map(|m| m.to_string()), Ok("1".into()));
        assert_eq!(parselist_3(b"1\xa02", 4), Err(EINVAL));
        // Other high bytes are not digits.
        assert_eq!(parselist_3(b"1\xc2", 4), Err(EINVAL));
    }

    #[test]
    fn empty_mask_formats_as_the_empty_string() {
        assert_eq!(cpulist_format(&CpuMask::new(8)), "");
        assert_eq!(CpuMask::new(8).to_string(), "");
    }

    #[test]
    fn format_joins_runs_with_commas_and_dashes() {
        let mask = CpuMask::from_cpus(16, [0, 1, 2, 3, 5, 7, 8, 15]);
        assert_eq!(cpulist_format(&mask), "0-3,5,7-8,15");
        let mask = CpuMask::from_cpus(200, [62, 63, 64, 65, 127, 128, 199]);
        assert_eq!(cpulist_format(&mask), "62-65,127-128,199");
        assert_eq!(cpulist_format(&CpuMask::full(4096)), "0-4095");
    }

    #[test]
    fn debug_shows_the_cpulist() {
        let mask = CpuMask::from_cpus(8, [0, 1, 2, 5]);
        assert_eq!(format!("{mask:?}"), "CpuMask(4/8: \"0-2,5\")");
    }

    #[test]
    fn empty_mask_round_trips_only_to_cpu_0_or_einval() {
        let text = cpulist_format(&CpuMask::new(4));
        assert_eq!(cpulist_parse(&text, 4), Ok(CpuMask::from_cpus(4, [0])));
        assert_eq!(cpulist_parse_2_6_18(&text, 4), Err(EINVAL));
    }

    #[test]
    fn set_clear_and_test_track_single_cpus_across_word_boundaries() {
        let mut mask = CpuMask::new(130);
        for cpu in [0, 63, 64, 127, 128, 129] {
            assert!(!mask.test(cpu));
            mask.set(cpu);
            assert!(mask.test(cpu));
        }
        assert_eq!(mask.weight(), 6);
        mask.clear(64);
        assert!(!mask.test(64));
        assert!(mask.test(63) && mask.test(127));
        assert_eq!(mask.weight(), 5);
        assert_eq!(mask.iter().collect::<Vec<_>>(), vec![0, 63, 127, 128, 129]);
    }

    #[test]
    fn test_of_a_cpu_beyond_the_mask_is_false() {
        let mask = CpuMask::full(4);
        assert!(mask.test(3));
        assert!(!mask.test(4));
        assert!(!mask.test(u32::MAX));
    }

    #[test]
    #[should_panic(expected = "CPU 4 is out of range for a mask of 4 CPUs")]
    fn set_of_a_cpu_beyond_the_mask_panics() {
        CpuMask::new(4).set(4);
    }

    #[test]
    #[should_panic(expected = "CPU 70 is out of range for a mask of 65 CPUs")]
    fn clear_of_a_cpu_beyond_the_mask_panics() {
        CpuMask::full(65).clear(70);
    }

    #[test]
    #[should_panic(expected = "outside 1..=4096")]
    fn a_mask_of_zero_cpus_panics() {
        CpuMask::new(0);
    }

    #[test]
    #[should_panic(expected = "outside 1..=4096")]
    fn a_mask_above_nr_cpus_max_panics() {
        CpuMask::new(NR_CPUS_MAX + 1);
    }

    #[test]
    fn full_mask_has_exactly_nr_cpu_ids_cpus() {
        for nr in [1, 2, 63, 64, 65, 127, 128, 129, 4095, 4096] {
            let full = CpuMask::full(nr);
            assert_eq!(full.weight(), nr);
            assert_eq!(full.first(), Some(0));
            assert_eq!(full.iter().last(), Some(nr - 1));
            assert!(!full.test(nr));
            // No stray bit above nr_cpu_ids: equal to the mask built one CPU at a time.
            assert_eq!(full, CpuMask::from_cpus(nr, 0..nr));
        }
    }

    #[test]
    fn first_is_the_lowest_cpu_or_none() {
        assert_eq!(CpuMask::new(200).first(), None);
        assert_eq!(CpuMask::from_cpus(200, [150, 70]).first(), Some(70));
        assert_eq!(CpuMask::from_cpus(200, [199]).first(), Some(199));
    }

    #[test]
    fn is_empty_follows_set_and_clear() {
        let mut mask = CpuMask::new(100);
        assert!(mask.is_empty());
        mask.set(99);
        assert!(!mask.is_empty());
        mask.clear(99);
        assert!(mask.is_empty());
        assert_eq!(mask, CpuMask::new(100));
    }

    #[test]
    fn and_or_andnot_combine_cpu_by_cpu() {
        let a = CpuMask::from_cpus(70, [0, 1, 2, 64, 69]);
        let b = CpuMask::from_cpus(70, [1, 2, 3, 69]);
        assert_eq!(a.and(&b).to_string(), "1-2,69");
        assert_eq!(a.or(&b).to_string(), "0-3,64,69");
        assert_eq!(a.andnot(&b).to_string(), "0,64");
        assert_eq!(b.andnot(&a).to_string(), "3");
        assert_eq!(a.and(&b).weight(), 3);
        assert_eq!(a.or(&b).weight(), 6);
        assert_eq!(a.andnot(&CpuMask::full(70)), CpuMask::new(70));
    }

    #[test]
    fn subset_holds_only_when_every_cpu_is_in_the_other_mask() {
        let small = CpuMask::from_cpus(130, [1, 65, 129]);
        let big = CpuMask::from_cpus(130, [0, 1, 65, 100, 129]);
        assert!(cpumask_subset(&small, &big));
        assert!(!cpumask_subset(&big, &small));
        assert!(cpumask_subset(&CpuMask::new(130), &small));
        assert!(cpumask_subset(&small, &small));
        let mut almost = small.clone();
        almost.set(128);
        assert!(!cpumask_subset(&almost, &big));
    }

    #[test]
    fn equal_compares_cpus() {
        let a = CpuMask::from_cpus(64, [3, 63]);
        let b = CpuMask::from_cpus(64, [63, 3]);
        assert!(cpumask_equal(&a, &b));
        assert!(!cpumask_equal(&a, &CpuMask::from_cpus(64, [3])));
    }

    #[test]
    #[should_panic(expected = "masks sized for different CPU counts")]
    fn combining_masks_of_different_sizes_panics() {
        let _ = CpuMask::new(4).or(&CpuMask::new(8));
    }

    #[test]
    #[should_panic(expected = "masks sized for different CPU counts")]
    fn subset_of_masks_of_different_sizes_panics() {
        cpumask_subset(&CpuMask::new(4), &CpuMask::new(8));
    }

    #[test]
    fn masks_of_different_sizes_are_not_equal_values() {
        assert_ne!(CpuMask::from_cpus(4, [1]), CpuMask::from_cpus(8, [1]));
    }

    #[test]
    fn percpu_init_runs_once_per_cpu_in_ascending_order() {
        let mut seen = Vec::new();
        let pc = PerCpu::new(5, |cpu| {
            seen.push(cpu);
            cpu * 10
        });
        assert_eq!(seen, vec![0, 1, 2, 3, 4]);
        assert_eq!(pc.nr_cpus(), 5);
        assert_eq!(*pc.get(3), 30);
    }

    #[test]
    fn percpu_get_mut_changes_only_that_cpu() {
        let mut pc = PerCpu::new(4, |_| 0u64);
        *pc.get_mut(2) += 7;
        let values: Vec<(CpuId, u64)> = pc.iter().map(|(cpu, &v)| (cpu, v)).collect();
        assert_eq!(values, vec![(0, 0), (1, 0), (2, 7), (3, 0)]);
    }

    #[test]
    fn percpu_iteration_visits_every_possible_cpu_in_order() {
        let mut pc = PerCpu::new(70, u64::from);
        pc.for_each_possible_cpu_mut(|cpu, v| *v += u64::from(cpu));
        let mut visited = Vec::new();
        pc.for_each_possible_cpu(|cpu, &v| {
            assert_eq!(v, 2 * u64::from(cpu));
            visited.push(cpu);
        });
        assert_eq!(visited, (0..70).collect::<Vec<_>>());
        assert_eq!(pc.iter().len(), 70);
        assert_eq!(pc.iter().next_back().map(|(cpu, _)| cpu), Some(69));
        for (cpu, v) in pc.iter_mut() {
            *v = u64::from(cpu) + 1;
        }
        assert_eq!(pc.iter().map(|(_, &v)| v).sum::<u64>(), (1..=70).sum::<u64>());
        assert_eq!(pc.possible_mask(), CpuMask::full(70));
    }

    #[test]
    #[should_panic(expected = "PerCpu: CPU 4 is out of range for 4 possible CPUs")]
    fn percpu_get_of_a_cpu_that_does_not_exist_panics() {
        let pc = PerCpu::new(4, |_| ());
        pc.get(4);
    }

    #[test]
    fn percpu_debug_shows_the_values() {
        let pc = PerCpu::new(2, |cpu| cpu + 1);
        assert_eq!(format!("{pc:?}"), "PerCpu { slots: [1, 2] }");
    }

    /// A deterministic spread of masks: sizes around word boundaries and patterns of runs.
    fn sample_masks() -> Vec<CpuMask> {
        let mut masks = Vec::new();
        for nr in [1u32, 2, 3, 63, 64, 65, 128, 129, 1000, 4096] {
            masks.push(CpuMask::full(nr));
            masks.push(CpuMask::from_cpus(nr, [nr - 1]));
            masks.push(CpuMask::from_cpus(nr, (0..nr).step_by(2)));
            masks.push(CpuMask::from_cpus(nr, (0..nr).filter(|c| c % 7 < 3)));
            masks.push(CpuMask::from_cpus(nr, (0..nr).filter(|c| c % 64 == 63 || c % 64 == 0)));
        }
        masks
    }

    #[test]
    fn every_sample_mask_round_trips_through_both_parsers() {
        for mask in sample_masks() {
            let text = cpulist_format(&mask);
            for syntax in [Linux3, Linux2_6_18] {
                assert_eq!(
                    cpulist_parse_with(syntax, &text, mask.nr_cpu_ids()).as_ref(),
                    Ok(&mask),
                    "{syntax:?} {text:?}"
                );
            }
        }
    }

    fn arb_mask() -> impl Strategy<Value = CpuMask> {
        (1u32..=300).prop_flat_map(|nr| {
            proptest::collection::btree_set(0..nr, 0..40).prop_map(move |cpus| CpuMask::from_cpus(nr, cpus))
        })
    }

    proptest! {
        #[test]
        fn nonempty_masks_round_trip_through_format_and_parse(mask in arb_mask()) {
            prop_assume!(!mask.is_empty());
            let text = cpulist_format(&mask);
            prop_assert_eq!(cpulist_parse(&text, mask.nr_cpu_ids()), Ok(mask.clone()));
            prop_assert_eq!(cpulist_parse_2_6_18(&text, mask.nr_cpu_ids()), Ok(mask.clone()));
            // Trailing newline, as written to a file, changes nothing.
            prop_assert_eq!(cpulist_parse(&format!("{text}\n"), mask.nr_cpu_ids()), Ok(mask));
        }

        #[test]
        fn iteration_weight_and_test_agree_with_a_set_model(
            nr in 1u32..=300,
            cpus in proptest::collection::vec(0u32..300, 0..60),
        ) {
            let model: BTreeSet<CpuId> = cpus.into_iter().filter(|&c| c < nr).collect();
            let mask = CpuMask::from_cpus(nr, model.iter().copied());
            prop_assert_eq!(mask.iter().collect::<Vec<_>>(), model.iter().copied().collect::<Vec<_>>());
            prop_assert_eq!(mask.weight() as usize, model.len());
            prop_assert_eq!(mask.first(), model.first().copied());
            for cpu in 0..nr {
                prop_assert_eq!(mask.test(cpu), model.contains(&cpu));
            }
        }

        #[test]
        fn set_operations_agree_with_a_set_model(
            nr in 1u32..=200,
            xs in proptest::collection::btree_set(0u32..200, 0..50),
            ys in proptest::collection::btree_set(0u32..200, 0..50),
        ) {
            let xs: BTreeSet<CpuId> = xs.into_iter().filter(|&c| c < nr).collect();
            let ys: BTreeSet<CpuId> = ys.into_iter().filter(|&c| c < nr).collect();
            let a = CpuMask::from_cpus(nr, xs.iter().copied());
            let b = CpuMask::from_cpus(nr, ys.iter().copied());
            prop_assert_eq!(a.and(&b), CpuMask::from_cpus(nr, xs.intersection(&ys).copied()));
            prop_assert_eq!(a.or(&b), CpuMask::from_cpus(nr, xs.union(&ys).copied()));
            prop_assert_eq!(a.andnot(&b), CpuMask::from_cpus(nr, xs.difference(&ys).copied()));
            prop_assert_eq!(cpumask_subset(&a, &b), xs.is_subset(&ys));
            prop_assert_eq!(cpumask_equal(&a, &b), xs == ys);
            prop_assert!(cpumask_subset(&a.and(&b), &a));
            prop_assert!(cpumask_subset(&a, &a.or(&b)));
        }

        #[test]
        fn whatever_linux_2_6_18_accepts_linux3_accepts_the_same(
            text in "[0-9,\\- \n]{0,12}",
            nr in 1u32..=64,
        ) {
            if let Ok(old) = cpulist_parse_2_6_18(&text, nr) {
                prop_assert_eq!(cpulist_parse(&text, nr), Ok(old));
            }
        }

        #[test]
        fn parsers_never_panic_and_results_fit_the_mask(text in "\\PC{0,40}", nr in 1u32..=NR_CPUS_MAX) {
            for syntax in [Linux3, Linux2_6_18] {
                match cpulist_parse_with(syntax, &text, nr) {
                    Ok(mask) => prop_assert_eq!(mask.nr_cpu_ids(), nr),
                    Err(e) => prop_assert!(e == EINVAL || e == ERANGE, "{:?}", e),
                }
            }
        }

        #[test]
        fn linux3_byte_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let result = parselist_3(&bytes, 64);
            prop_assert!(matches!(result, Ok(_) | Err(Errno::EINVAL) | Err(Errno::ERANGE)));
        }
    }
}

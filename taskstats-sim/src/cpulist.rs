//! lib/bitmap.c `bitmap_parselist()` as `cpulist_parse()` calls it, for taskstats' cpumask
//! attribute. A stand-in for `sim_core::percpu::cpulist_parse` until that lands on main: same
//! contract (`Result<mask, Errno>`, `-EINVAL` on bad syntax, `-ERANGE` past `nr_cpu_ids`).
//! Left out: the `:used/group` stride syntax of later kernels.

use std::collections::BTreeSet;

use sim_core::Errno;

/// A set of CPUs, in ascending order.
pub type CpuSet = BTreeSet<u32>;

/// Mirrors bitmap_parselist(): comma-separated CPUs and `a-b` ranges; whitespace around the
/// list is skipped as the kernel's `isspace()` loop does.
pub fn cpulist_parse(text: &[u8], nr_cpu_ids: u32) -> Result<CpuSet, Errno> {
    let text: Vec<u8> = text.iter().copied().take_while(|&c| c != 0).collect();
    let mut mask = CpuSet::new();
    let trimmed = trim(&text);
    if trimmed.is_empty() {
        return Ok(mask);
    }
    for piece in trimmed.split(|&c| c == b',') {
        let piece = trim(piece);
        let (a, b) = match piece.iter().position(|&c| c == b'-') {
            Some(dash) => (number(&piece[..dash])?, number(&piece[dash + 1..])?),
            None => {
                let a = number(piece)?;
                (a, a)
            }
        };
        if a > b {
            return Err(Errno::EINVAL);
        }
        if b >= u64::from(nr_cpu_ids) {
            return Err(Errno::ERANGE);
        }
        for cpu in a..=b {
            mask.insert(cpu as u32);
        }
    }
    Ok(mask)
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|c| !c.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &bytes[start..end.max(start)]
}

fn number(digits: &[u8]) -> Result<u64, Errno> {
    if digits.is_empty() || digits.len() > 9 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(Errno::EINVAL);
    }
    Ok(digits.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_commas_and_errors_match_bitmap_parselist() {
        assert_eq!(cpulist_parse(b"0-2,5\0", 8).unwrap(), [0, 1, 2, 5].into_iter().collect());
        assert_eq!(cpulist_parse(b"\0", 8).unwrap(), CpuSet::new());
        assert_eq!(cpulist_parse(b"3-1", 8), Err(Errno::EINVAL));
        assert_eq!(cpulist_parse(b"x", 8), Err(Errno::EINVAL));
        assert_eq!(cpulist_parse(b"8", 8), Err(Errno::ERANGE));
        assert_eq!(cpulist_parse(b"1,,2", 8), Err(Errno::EINVAL));
    }
}

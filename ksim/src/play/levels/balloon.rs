//! balloon levels.

use super::super::level::Level;

/// The balloon levels, easiest first.
pub(crate) fn levels() -> Vec<Level> {
    Vec::new()
}

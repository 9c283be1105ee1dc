//! fs/mbcache.c as an executable model (being written).
#![forbid(unsafe_code)]

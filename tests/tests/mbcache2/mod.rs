//! mbcache2 (fs/mbcache.c from 4.6 on, with ext4's xattr block sharing): the property test with
//! coverage marks, the zoo (its loom column from the ordinary build), and the shuttle models of its concurrent paths.

#[cfg(not(loom))]
mod gen;
#[cfg(not(any(loom, shuttle)))]
mod incremental;
#[cfg(not(loom))]
mod loom;
#[cfg(not(any(loom, shuttle)))]
mod property;
#[cfg(not(loom))]
mod shuttle;
#[cfg(not(any(loom, shuttle)))]
mod threaded;
#[cfg(not(any(loom, shuttle)))]
mod zoo;

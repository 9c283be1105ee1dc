//! mbcache2 (fs/mbcache.c from 4.6 on, with ext4's xattr block sharing): the property test with
//! coverage marks, the zoo (its loom column from the ordinary build), and the shuttle models of its concurrent paths.

mod gen;
mod incremental;
mod loom;
mod property;
mod reference_windows;
mod reuse;
mod shuttle;
mod threaded;
mod zoo;

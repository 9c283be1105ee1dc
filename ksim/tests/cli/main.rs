//! Tests that run the built `ksim` binary, as a user would.
//!
//! They live in the ksim package, not in ksim-tests: cargo sets `CARGO_BIN_EXE_<name>` only for
//! the integration tests of the package that owns the binary (a dependency's binaries are not
//! built for dependants without the unstable artifact dependencies).

mod commands;
mod guide;
mod netlink;
mod play;
mod support;
mod threaded;

//! Kernel error numbers (include/uapi/asm-generic/errno-base.h and errno.h) as a Rust type.
//!
//! Models return `Result<T, Errno>` for everything a caller, a guest or a user can cause, exactly
//! where the kernel function they mirror returns `-E...`. Panics are kept for what only a bug in
//! ksim itself can cause.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A kernel errno. The numeric value is the one Linux uses on x86-64 and arm64.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Errno(i32);

macro_rules! errnos {
    ($($name:ident = $value:expr, $text:expr;)*) => {
        impl Errno {
            $(
                #[doc = $text]
                pub const $name: Errno = Errno($value);
            )*

            /// The symbolic name, `"EINVAL"`, or `None` for a number ksim does not name.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some(stringify!($name)),)*
                    _ => None,
                }
            }

            /// The C library's message for this errno.
            pub fn message(self) -> &'static str {
                match self.0 {
                    $($value => $text,)*
                    _ => "Unknown error",
                }
            }

            /// Looks an errno up by its symbolic name.
            pub fn from_name(name: &str) -> Option<Errno> {
                match name {
                    $(stringify!($name) => Some(Errno($value)),)*
                    _ => None,
                }
            }
        }
    };
}

errnos! {
    EPERM = 1, "Operation not permitted";
    ENOENT = 2, "No such file or directory";
    ESRCH = 3, "No such process";
    EINTR = 4, "Interrupted system call";
    EIO = 5, "Input/output error";
    E2BIG = 7, "Argument list too long";
    EBADF = 9, "Bad file descriptor";
    EAGAIN = 11, "Resource temporarily unavailable";
    ENOMEM = 12, "Cannot allocate memory";
    EACCES = 13, "Permission denied";
    EFAULT = 14, "Bad address";
    EBUSY = 16, "Device or resource busy";
    EEXIST = 17, "File exists";
    ENODEV = 19, "No such device";
    ENOTDIR = 20, "Not a directory";
    EINVAL = 22, "Invalid argument";
    ENOSPC = 28, "No space left on device";
    ERANGE = 34, "Numerical result out of range";
    EDEADLK = 35, "Resource deadlock avoided";
    ENOSYS = 38, "Function not implemented";
    ENODATA = 61, "No data available";
    EPROTO = 71, "Protocol error";
    EMSGSIZE = 90, "Message too long";
    EOPNOTSUPP = 95, "Operation not supported";
    ENOBUFS = 105, "No buffer space available";
    ECONNREFUSED = 111, "Connection refused";
    ENOTSUPP = 524, "Operation is not supported";
}

impl Errno {
    /// The positive errno number (`EINVAL` is 22).
    pub fn number(self) -> i32 {
        self.0
    }

    /// The errno for a positive number, as a kernel function's `-ret` would give it.
    pub fn from_number(number: i32) -> Errno {
        Errno(number.abs())
    }

    /// The value a kernel function returns for this error: `-number`.
    pub fn to_kernel_return(self) -> i32 {
        -self.0
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "Errno({})", self.0),
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} ({})", self, self.message())
    }
}

impl std::error::Error for Errno {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_names_and_numbers_round_trip() {
        assert_eq!(Errno::EINVAL.number(), 22);
        assert_eq!(Errno::ECONNREFUSED.number(), 111);
        assert_eq!(Errno::from_name("ESRCH"), Some(Errno::ESRCH));
        assert_eq!(Errno::from_number(-12), Errno::ENOMEM);
        assert_eq!(Errno::ENOMEM.to_kernel_return(), -12);
        assert_eq!(format!("{:?}", Errno::from_number(4000)), "Errno(4000)");
        assert_eq!(Errno::EBUSY.to_string(), "EBUSY (Device or resource busy)");
    }
}

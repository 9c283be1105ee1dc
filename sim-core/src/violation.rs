//! Findings as values: a [`Violation`] is what a checker reports, and its [`ViolationKind`] is
//! what the zoo, shrinking and replay compare.
//!
//! A kind prints as a short stable string (`invariant:balloon-pfn-not-held`,
//! `lockdep:circular-locking`, `rcu:use-after-free`) which artifacts and reports store, and parses
//! back from it. Comparisons are on the typed value.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A name inside a kind: static in model code, owned when read back from a file.
pub type KindName = Cow<'static, str>;

/// What sort of finding a [`Violation`] is.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ViolationKind {
    /// A subsystem invariant broke; the subsystem may name which (`invariant:managed-pages-not-conserved`).
    Invariant(Option<KindName>),
    /// The model and its reference model disagree on an operation's outcome.
    Mismatch,
    /// Model code panicked: a bug in ksim, or a kernel `BUG()` the model did not name.
    Panic,
    /// The model reached a kernel `BUG()`/`BUG_ON()`.
    Bug,
    /// An operation never finished: every task waits.
    Hang,
    /// A liveness property failed: the system did not converge within its bound.
    Liveness,
    /// An object was used after it was freed (slab, RCU, kref, page).
    UseAfterFree,
    /// An object was freed twice.
    DoubleFree,
    /// An object outlived its owner's teardown.
    Leak,
    /// A poisoned `list_head` link was followed.
    ListPoison,
    /// A lockdep report, by lockdep's kind (`circular-locking`, `inconsistent-lock-state`).
    Lockdep(KindName),
    /// A finding of another sim-core detector (`rcu`, `kref`, `lockset`, `page`, ...), by detector
    /// and kind: `rcu:dereference-outside-read-side`.
    Detector(KindName, KindName),
    /// A subsystem's own finding, by name (`duplicate-listener`, `host-finding`).
    Finding(KindName),
}

impl ViolationKind {
    /// A named invariant of a subsystem.
    pub const fn invariant(name: &'static str) -> ViolationKind {
        ViolationKind::Invariant(Some(Cow::Borrowed(name)))
    }

    /// A lockdep report of `kind`.
    pub const fn lockdep(kind: &'static str) -> ViolationKind {
        ViolationKind::Lockdep(Cow::Borrowed(kind))
    }

    /// A subsystem's own finding.
    pub const fn finding(name: &'static str) -> ViolationKind {
        ViolationKind::Finding(Cow::Borrowed(name))
    }

    /// A sim-core detector's finding.
    pub const fn detector(detector: &'static str, kind: &'static str) -> ViolationKind {
        ViolationKind::Detector(Cow::Borrowed(detector), Cow::Borrowed(kind))
    }

    fn word(&self) -> Option<&'static str> {
        Some(match self {
            ViolationKind::Invariant(None) => "invariant",
            ViolationKind::Mismatch => "mismatch",
            ViolationKind::Panic => "panic",
            ViolationKind::Bug => "BUG",
            ViolationKind::Hang => "hang",
            ViolationKind::Liveness => "liveness",
            ViolationKind::UseAfterFree => "use-after-free",
            ViolationKind::DoubleFree => "double-free",
            ViolationKind::Leak => "leak",
            ViolationKind::ListPoison => "list-poison",
            _ => return None,
        })
    }

    const WORDS: [ViolationKind; 10] = [
        ViolationKind::Invariant(None),
        ViolationKind::Mismatch,
        ViolationKind::Panic,
        ViolationKind::Bug,
        ViolationKind::Hang,
        ViolationKind::Liveness,
        ViolationKind::UseAfterFree,
        ViolationKind::DoubleFree,
        ViolationKind::Leak,
        ViolationKind::ListPoison,
    ];
}

impl fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(word) = self.word() {
            return f.write_str(word);
        }
        match self {
            ViolationKind::Invariant(Some(name)) => write!(f, "invariant:{name}"),
            ViolationKind::Lockdep(kind) => write!(f, "lockdep:{kind}"),
            ViolationKind::Detector(detector, kind) => write!(f, "{detector}:{kind}"),
            ViolationKind::Finding(name) => f.write_str(name),
            _ => unreachable!("every one-word kind is printed above"),
        }
    }
}

impl fmt::Debug for ViolationKind {
    /// The printed kind, quoted: a violation's debug text reads as its report does.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_string())
    }
}

impl FromStr for ViolationKind {
    type Err = std::convert::Infallible;

    /// Parses what [`fmt::Display`] prints; any other word is a subsystem [`ViolationKind::Finding`].
    fn from_str(text: &str) -> Result<ViolationKind, Self::Err> {
        let owned = |s: &str| Cow::Owned(s.to_string());
        if let Some(kind) = ViolationKind::WORDS.into_iter().find(|kind| kind.word() == Some(text)) {
            return Ok(kind);
        }
        Ok(match text.split_once(':') {
            Some(("invariant", name)) => ViolationKind::Invariant(Some(owned(name))),
            Some(("lockdep", kind)) => ViolationKind::Lockdep(owned(kind)),
            Some((detector, kind)) => ViolationKind::Detector(owned(detector), owned(kind)),
            None => ViolationKind::Finding(owned(text)),
        })
    }
}

impl From<&str> for ViolationKind {
    fn from(text: &str) -> ViolationKind {
        let Ok(kind) = text.parse();
        kind
    }
}

impl From<String> for ViolationKind {
    fn from(text: String) -> ViolationKind {
        ViolationKind::from(text.as_str())
    }
}

/// Compares what is written to it with a string, without building the written text.
struct SameText<'a> {
    rest: &'a str,
    same: bool,
}

impl fmt::Write for SameText<'_> {
    fn write_str(&mut self, piece: &str) -> fmt::Result {
        match self.rest.strip_prefix(piece) {
            Some(rest) => self.rest = rest,
            None => self.same = false,
        }
        Ok(())
    }
}

impl PartialEq<str> for ViolationKind {
    /// Whether the kind prints as `other`.
    fn eq(&self, other: &str) -> bool {
        let mut text = SameText { rest: other, same: true };
        let _ = fmt::Write::write_fmt(&mut text, format_args!("{self}"));
        text.same && text.rest.is_empty()
    }
}

impl PartialEq<&str> for ViolationKind {
    fn eq(&self, other: &&str) -> bool {
        self == *other
    }
}

impl Serialize for ViolationKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ViolationKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ViolationKind, D::Error> {
        Ok(ViolationKind::from(String::deserialize(deserializer)?))
    }
}

/// A broken invariant or another finding of a checker, as a value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// What sort of finding it is.
    pub kind: ViolationKind,
    /// What is wrong, with the state needed to understand it.
    pub message: String,
}

impl Violation {
    /// A violation of `kind` with `message`.
    pub fn new(kind: impl Into<ViolationKind>, message: impl Into<String>) -> Violation {
        Violation { kind: kind.into(), message: message.into() }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_prints_and_parses_back_to_itself() {
        let kinds = [
            ViolationKind::Invariant(None),
            ViolationKind::invariant("balloon-pfn-not-held"),
            ViolationKind::Mismatch,
            ViolationKind::Bug,
            ViolationKind::ListPoison,
            ViolationKind::lockdep("circular-locking"),
            ViolationKind::detector("rcu", "use-after-free"),
            ViolationKind::finding("duplicate-listener"),
        ];
        for kind in kinds {
            let text = kind.to_string();
            assert_eq!(ViolationKind::from(text.as_str()), kind, "{text}");
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(serde_json::from_str::<ViolationKind>(&json).unwrap(), kind);
        }
        assert_eq!(ViolationKind::lockdep("circular-locking").to_string(), "lockdep:circular-locking");
        assert_ne!(ViolationKind::UseAfterFree, ViolationKind::detector("rcu", "use-after-free"));
        assert!(ViolationKind::lockdep("circular-locking") == "lockdep:circular-locking");
        assert!(ViolationKind::lockdep("circular-locking") != "lockdep:circular");
        assert!(ViolationKind::lockdep("circular") != "lockdep:circular-locking");
    }
}

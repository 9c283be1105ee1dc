//! Fixes as data and kernel versions as presets.
//!
//! Every behavioural difference between the kernel versions a subsystem models is one row of that
//! subsystem's [`FixTable`]: the switch name, the upstream commit title and id (or an explicit
//! [`Commit::Unverified`]), the version it landed in, the symptom without it and its CVE. A preset
//! is a kernel version: `--kernel 3.4` means every fix that landed by 3.4. The seed listings keep
//! named presets ([`NamedPreset`]), which are versions too.
//!
//! A model holds a [`Fixes<T>`] (one bit per row of `T`'s table) and asks it
//! `fixes.on(MY_FIX)`, which costs one bit test. It serialises as the list of the switches that
//! are on, so an artifact stays readable and survives reordering the table.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A kernel version: `major.minor.patch`, optionally a release candidate (`2.6.19-rc4`).
/// Release candidates order before their release: `2.6.19-rc3 < 2.6.19-rc4 < 2.6.19`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KernelVersion {
    major: u16,
    minor: u16,
    patch: u16,
    /// 0 for a release, N for -rcN.
    rc: u16,
}

impl KernelVersion {
    /// The release `major.minor.patch`.
    pub const fn new(major: u16, minor: u16, patch: u16) -> KernelVersion {
        KernelVersion { major, minor, patch, rc: 0 }
    }

    /// The release candidate `major.minor.patch-rcN` (`rc` ≥ 1).
    pub const fn rc(major: u16, minor: u16, patch: u16, rc: u16) -> KernelVersion {
        KernelVersion { major, minor, patch, rc }
    }

    fn key(&self) -> (u16, u16, u16, u16) {
        let rc = if self.rc == 0 { u16::MAX } else { self.rc };
        (self.major, self.minor, self.patch, rc)
    }
}

impl PartialOrd for KernelVersion {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for KernelVersion {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.major == 2 || self.patch != 0 {
            write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        } else {
            write!(f, "{}.{}", self.major, self.minor)?;
        }
        if self.rc != 0 {
            write!(f, "-rc{}", self.rc)?;
        }
        Ok(())
    }
}

impl FromStr for KernelVersion {
    type Err = String;

    /// Parses `4.9`, `2.6.19`, `2.6.19-rc4`, `v3.8` or `linux-3.4`.
    fn from_str(text: &str) -> Result<KernelVersion, String> {
        let bad = || format!("'{text}' is not a kernel version (expected e.g. 4.9, 2.6.19 or 2.6.19-rc4)");
        let body = text.strip_prefix("linux-").or_else(|| text.strip_prefix('v')).unwrap_or(text);
        let (numbers, rc) = match body.split_once("-rc") {
            Some((numbers, rc)) => (numbers, rc.parse::<u16>().ok().filter(|&rc| rc > 0).ok_or_else(bad)?),
            None => (body, 0),
        };
        let parts: Vec<u16> = numbers
            .split('.')
            .map(|part| part.parse::<u16>())
            .collect::<Result<_, _>>()
            .map_err(|_| bad())?;
        match parts[..] {
            [major, minor] => Ok(KernelVersion { major, minor, patch: 0, rc }),
            [major, minor, patch] => Ok(KernelVersion { major, minor, patch, rc }),
            _ => Err(bad()),
        }
    }
}

impl Serialize for KernelVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KernelVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<KernelVersion, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The upstream commit a fix is, as far as it could be verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Commit {
    /// An abbreviated commit id (12 hex digits) whose title was checked against the commit.
    Id(&'static str),
    /// No commit id could be verified: the title is what is known (a patch mail, a shortlog).
    Unverified,
}

impl Commit {
    /// The id, or `"unverified"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Commit::Id(id) => id,
            Commit::Unverified => "unverified",
        }
    }
}

/// One behavioural difference between kernel versions: a row of a [`FixTable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fix {
    /// The switch name, as `--fix-off` takes it (`"duplicate-listener-check"`).
    pub name: &'static str,
    /// The upstream commit title, as upstream spells it.
    pub title: &'static str,
    /// The upstream commit.
    pub commit: Commit,
    /// The first kernel release (or release candidate) that has it.
    pub landed_in: KernelVersion,
    /// The CVE, if any.
    pub cve: Option<&'static str>,
    /// What goes wrong without it, in a sentence.
    pub symptom: &'static str,
}

/// A named preset: a seed listing's kernel, by the name the docs and the zoo use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NamedPreset {
    /// The name, as `--kernel` also takes it (`"linux-2.6.19"`).
    pub name: &'static str,
    /// The kernel version it stands for: every fix landed by then is on.
    pub version: KernelVersion,
    /// Which seed listing it models and what is notable about it.
    pub description: &'static str,
}

/// A subsystem's fixes and the kernel versions it models.
#[derive(Clone, Copy, Debug)]
pub struct FixTable {
    /// The subsystem's name (for error lines).
    pub subsystem: &'static str,
    /// The oldest kernel version modelled (the oldest seed).
    pub oldest: KernelVersion,
    /// The newest kernel version modelled: beyond it the code changed in ways the model lacks.
    pub newest: KernelVersion,
    /// Every fix; a [`FixId`] is an index into it.
    pub fixes: &'static [Fix],
    /// The named presets, oldest first; the last is the default.
    pub presets: &'static [NamedPreset],
}

/// The most fixes one table can hold (one bit each).
pub const FIXES_MAX: usize = 64;

/// A row of a fix table, by position; its name is kept to check the position against the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixId {
    index: u8,
    name: &'static str,
}

impl FixId {
    /// Row `index` of the table, whose switch is named `name` ([`FixTable::validate`] checks it).
    pub const fn new(index: u8, name: &'static str) -> FixId {
        FixId { index, name }
    }

    /// The switch name.
    pub const fn name(&self) -> &'static str {
        self.name
    }
}

impl FixTable {
    /// The row named `name`.
    pub fn find(&self, name: &str) -> Option<(usize, &'static Fix)> {
        self.fixes.iter().enumerate().find(|(_, fix)| fix.name == name)
    }

    /// The default preset's version.
    pub fn default_version(&self) -> KernelVersion {
        self.presets.last().map_or(self.newest, |preset| preset.version)
    }

    /// Resolves `--kernel`: a named preset or a version within the modelled range.
    pub fn version(&self, kernel: &str) -> Result<KernelVersion, String> {
        if let Some(preset) = self.presets.iter().find(|preset| preset.name == kernel) {
            return Ok(preset.version);
        }
        let names: Vec<&str> = self.presets.iter().map(|preset| preset.name).collect();
        let version: KernelVersion = kernel
            .parse()
            .map_err(|error| format!("{}: {error}; or a preset: {}", self.subsystem, names.join(", ")))?;
        if version < self.oldest || version > self.newest {
            return Err(format!(
                "{}: kernel {version} is outside the modelled range {} to {} (presets: {})",
                self.subsystem,
                self.oldest,
                self.newest,
                names.join(", ")
            ));
        }
        Ok(version)
    }

    /// The bits of the fixes landed by `version`.
    pub fn bits_at(&self, version: KernelVersion) -> u64 {
        self.fixes
            .iter()
            .enumerate()
            .filter(|(_, fix)| fix.landed_in <= version)
            .fold(0, |bits, (index, _)| bits | 1 << index)
    }

    /// The names of the fixes whose bit is set in `bits`, in table order.
    pub fn names(&self, bits: u64) -> Vec<&'static str> {
        self.fixes
            .iter()
            .enumerate()
            .filter(|(index, _)| bits >> index & 1 == 1)
            .map(|(_, fix)| fix.name)
            .collect()
    }

    /// Checks the table's own consistency: names unique, at most [`FIXES_MAX`] rows, each fix
    /// landed within the modelled range (after the oldest), commit ids 12 hex digits, presets in
    /// range and oldest first, and each `ids` entry naming its own row. Subsystems call it from a
    /// unit test.
    pub fn validate(&self, ids: &[FixId]) -> Result<(), String> {
        let fail = |what: String| Err(format!("{} fix table: {what}", self.subsystem));
        if self.fixes.len() > FIXES_MAX {
            return fail(format!("{} rows, at most {FIXES_MAX}", self.fixes.len()));
        }
        for (index, fix) in self.fixes.iter().enumerate() {
            if self.fixes[..index].iter().any(|other| other.name == fix.name) {
                return fail(format!("switch {} twice", fix.name));
            }
            if fix.landed_in <= self.oldest || fix.landed_in > self.newest {
                return fail(format!(
                    "{} landed in {}, outside {}..{}",
                    fix.name, fix.landed_in, self.oldest, self.newest
                ));
            }
            if let Commit::Id(id) = fix.commit {
                if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
                    return fail(format!("{}: commit id {id:?} is not 12 lowercase hex digits", fix.name));
                }
            }
        }
        if self.presets.windows(2).any(|pair| pair[0].version > pair[1].version) {
            return fail("presets not oldest first".into());
        }
        if let Some(preset) = self.presets.iter().find(|p| p.version < self.oldest || p.version > self.newest)
        {
            return fail(format!("preset {} outside the modelled range", preset.name));
        }
        for id in ids {
            if self.fixes.get(usize::from(id.index)).map(|fix| fix.name) != Some(id.name) {
                return fail(format!("FixId {} does not name row {}", id.name, id.index));
            }
        }
        if ids.len() != self.fixes.len() {
            return fail(format!("{} FixIds for {} rows", ids.len(), self.fixes.len()));
        }
        Ok(())
    }
}

/// A subsystem's fix table, as a type, so that [`Fixes`] of two subsystems cannot be mixed up.
pub trait FixTableOf: 'static {
    /// The table.
    const TABLE: &'static FixTable;
}

/// Which fixes of table `T` are on.
pub struct Fixes<T: FixTableOf> {
    bits: u64,
    table: PhantomData<fn() -> T>,
}

impl<T: FixTableOf> Fixes<T> {
    fn from_bits(bits: u64) -> Fixes<T> {
        Fixes { bits, table: PhantomData }
    }

    /// No fix: the oldest behaviour the model has.
    pub fn none() -> Fixes<T> {
        Fixes::from_bits(0)
    }

    /// Every fix in the table.
    pub fn all() -> Fixes<T> {
        Fixes::from_bits(T::TABLE.bits_at(T::TABLE.newest))
    }

    /// The kernel as of `version`: every fix landed by then.
    pub fn at(version: KernelVersion) -> Fixes<T> {
        Fixes::from_bits(T::TABLE.bits_at(version))
    }

    /// The named preset or version `kernel` (None: not a preset name nor a modelled version).
    pub fn preset(kernel: &str) -> Option<Fixes<T>> {
        T::TABLE.version(kernel).ok().map(Fixes::at)
    }

    /// `--kernel` (a preset name or a version; None: the default preset) with `fixes_off`
    /// switched off. An unknown name is an error line naming the valid ones.
    pub fn parse(kernel: Option<&str>, fixes_off: &[String]) -> Result<Fixes<T>, String> {
        let table = T::TABLE;
        let version = match kernel {
            Some(kernel) => table.version(kernel)?,
            None => table.default_version(),
        };
        let mut fixes = Fixes::at(version);
        for name in fixes_off {
            let Some((index, _)) = table.find(name) else {
                let names: Vec<&str> = table.fixes.iter().map(|fix| fix.name).collect();
                return Err(format!(
                    "{}: no fix named '{name}'; fixes: {}",
                    table.subsystem,
                    names.join(", ")
                ));
            };
            fixes.bits &= !(1 << index);
        }
        Ok(fixes)
    }

    /// Whether `fix` is on. One bit test: model hot paths may call it freely.
    #[inline]
    pub fn on(&self, fix: FixId) -> bool {
        debug_assert_eq!(T::TABLE.fixes[usize::from(fix.index)].name, fix.name, "FixId out of its table");
        self.bits >> fix.index & 1 == 1
    }

    /// Switches `fix` on or off.
    pub fn set(&mut self, fix: FixId, on: bool) {
        if on {
            self.bits |= 1 << fix.index;
        } else {
            self.bits &= !(1 << fix.index);
        }
    }

    /// The same set with `fix` switched off.
    pub fn without(mut self, fix: FixId) -> Fixes<T> {
        self.set(fix, false);
        self
    }

    /// The names of the fixes that are on, in table order.
    pub fn names_on(&self) -> Vec<&'static str> {
        T::TABLE.names(self.bits)
    }

    /// Whether the fix named `name` is on (false for a name not in the table), without building
    /// [`Fixes::names_on`]'s list: checkers that ask per operation stay allocation-free.
    pub fn on_named(&self, name: &str) -> bool {
        T::TABLE
            .fixes
            .iter()
            .position(|fix| fix.name == name)
            .is_some_and(|index| self.bits >> index & 1 == 1)
    }
}

impl<T: FixTableOf> Clone for Fixes<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: FixTableOf> Copy for Fixes<T> {}

impl<T: FixTableOf> PartialEq for Fixes<T> {
    fn eq(&self, other: &Self) -> bool {
        self.bits == other.bits
    }
}

impl<T: FixTableOf> Eq for Fixes<T> {}

impl<T: FixTableOf> fmt::Debug for Fixes<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.names_on()).finish()
    }
}

impl<T: FixTableOf> Serialize for Fixes<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.names_on())
    }
}

impl<'de, T: FixTableOf> Deserialize<'de> for Fixes<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Fixes<T>, D::Error> {
        let names = Vec::<String>::deserialize(deserializer)?;
        let mut bits = 0;
        for name in &names {
            let (index, _) = T::TABLE.find(name).ok_or_else(|| {
                serde::de::Error::custom(format!("{}: no fix named '{name}'", T::TABLE.subsystem))
            })?;
            bits |= 1 << index;
        }
        Ok(Fixes::from_bits(bits))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: FixId = FixId::new(0, "a");
    const B: FixId = FixId::new(1, "b");

    struct Demo;
    impl FixTableOf for Demo {
        const TABLE: &'static FixTable = &FixTable {
            subsystem: "demo",
            oldest: KernelVersion::rc(2, 6, 19, 3),
            newest: KernelVersion::new(4, 5, 0),
            fixes: &[
                Fix {
                    name: "a",
                    title: "a fix",
                    commit: Commit::Unverified,
                    landed_in: KernelVersion::new(2, 6, 19),
                    cve: None,
                    symptom: "",
                },
                Fix {
                    name: "b",
                    title: "b fix",
                    commit: Commit::Id("0123456789ab"),
                    landed_in: KernelVersion::new(3, 4, 0),
                    cve: None,
                    symptom: "",
                },
            ],
            presets: &[
                NamedPreset { name: "seed", version: KernelVersion::rc(2, 6, 19, 3), description: "" },
                NamedPreset { name: "linux-3.8", version: KernelVersion::new(3, 8, 0), description: "" },
            ],
        };
    }

    #[test]
    fn versions_parse_print_and_order_with_release_candidates_first() {
        let rc4: KernelVersion = "2.6.19-rc4".parse().unwrap();
        assert_eq!(rc4, KernelVersion::rc(2, 6, 19, 4));
        assert!(KernelVersion::rc(2, 6, 19, 3) < rc4 && rc4 < KernelVersion::new(2, 6, 19));
        assert!(KernelVersion::new(2, 6, 39) < "3.0".parse().unwrap());
        assert_eq!("linux-3.4".parse::<KernelVersion>().unwrap().to_string(), "3.4");
        assert_eq!("v4.9".parse::<KernelVersion>().unwrap(), KernelVersion::new(4, 9, 0));
        assert_eq!(rc4.to_string(), "2.6.19-rc4");
        for bad in ["1", "4.x", "4.9-rc0", "", "4.9.1.2.3", "linux"] {
            assert!(bad.parse::<KernelVersion>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn a_version_means_every_fix_landed_by_then() {
        assert_eq!(Fixes::<Demo>::parse(Some("2.6.19"), &[]).unwrap().names_on(), ["a"]);
        assert_eq!(Fixes::<Demo>::parse(Some("2.6.19-rc4"), &[]).unwrap().names_on(), Vec::<&str>::new());
        assert_eq!(Fixes::<Demo>::parse(None, &[]).unwrap(), Fixes::all());
        let off = Fixes::<Demo>::parse(Some("seed"), &[]).unwrap();
        assert!(!off.on(A) && !off.on(B));
        let without = Fixes::<Demo>::parse(Some("4.0"), &["a".into()]).unwrap();
        assert!(!without.on(A) && without.on(B));
    }

    #[test]
    fn on_named_agrees_with_names_on_and_knows_no_stranger() {
        for kernel in ["2.6.19-rc4", "2.6.19"] {
            let fixes = Fixes::<Demo>::parse(Some(kernel), &[]).unwrap();
            for fix in Demo::TABLE.fixes {
                assert_eq!(
                    fixes.on_named(fix.name),
                    fixes.names_on().contains(&fix.name),
                    "{kernel} {}",
                    fix.name
                );
            }
            assert!(!fixes.on_named("no-such-fix"));
        }
    }

    #[test]
    fn bad_kernels_and_names_are_one_line_naming_the_choices() {
        let error = Fixes::<Demo>::parse(Some("1.0"), &[]).unwrap_err();
        assert!(error.contains("outside the modelled range 2.6.19-rc3 to 4.5"), "{error}");
        let error = Fixes::<Demo>::parse(Some("linux-9"), &[]).unwrap_err();
        assert!(error.contains("seed, linux-3.8"), "{error}");
        let error = Fixes::<Demo>::parse(None, &["c".into()]).unwrap_err();
        assert!(error.contains("fixes: a, b") && !error.contains('\n'), "{error}");
    }

    #[test]
    fn fixes_serialise_as_the_names_that_are_on() {
        let fixes = Fixes::<Demo>::all().without(A);
        let json = serde_json::to_string(&fixes).unwrap();
        assert_eq!(json, r#"["b"]"#);
        assert_eq!(serde_json::from_str::<Fixes<Demo>>(&json).unwrap(), fixes);
        assert!(serde_json::from_str::<Fixes<Demo>>(r#"["zz"]"#).is_err());
    }

    #[test]
    fn validate_catches_a_misnumbered_id_and_passes_the_demo_table() {
        Demo::TABLE.validate(&[A, B]).unwrap();
        assert!(Demo::TABLE.validate(&[A, FixId::new(0, "b")]).is_err());
        assert!(Demo::TABLE.validate(&[A]).is_err());
    }
}

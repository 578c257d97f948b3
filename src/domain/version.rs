//! Product and version of an IWSVA / IWSS 6.5 installation, parsed from the strings the appliance shows.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Which Trend Micro product a version belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Product {
    /// InterScan Web Security Virtual Appliance (has `/usr/iwss/iwsvafw.sh`).
    #[serde(rename = "IWSVA")]
    Iwsva,
    /// InterScan Web Security Suite for Linux (no appliance firewall script).
    #[serde(rename = "IWSS")]
    Iwss,
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Iwsva => "IWSVA",
            Self::Iwss => "IWSS",
        })
    }
}

/// A release level: base version (6.5), service pack, patch and build.
///
/// Fields compare in that order, so `6.5 < SP1 < SP2 < SP2 Patch 4 < SP3 < SP3 Patch 1`. The build
/// number only orders releases of the same service pack and patch (an absent build sorts first).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Release {
    /// Base product version, `6.5` read as `6.5.0`.
    pub base: semver::Version,
    /// Service pack number, 0 for none.
    pub service_pack: u32,
    /// Patch number within the service pack (IWSS patches count here too), 0 for none.
    pub patch: u32,
    /// Build number (`_Build_Linux_3312`), when the string names it.
    pub build: Option<u32>,
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.base.major, self.base.minor)?;
        if self.base.patch != 0 {
            write!(f, ".{}", self.base.patch)?;
        }
        if self.service_pack > 0 {
            write!(f, " SP{}", self.service_pack)?;
        }
        if self.patch > 0 {
            write!(f, " Patch {}", self.patch)?;
        }
        if let Some(build) = self.build {
            write!(f, " Build {build}")?;
        }
        Ok(())
    }
}

/// A product together with its release, e.g. `IWSVA 6.5 SP3 Patch 1 Build 3312`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version {
    pub product: Product,
    pub release: Release,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.product, self.release)
    }
}

impl Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_version(&text, None).map_err(serde::de::Error::custom)
    }
}

/// Build of IWSVA 6.5 SP3 Patch 1 (KB 1120273); from it on the firewall restarts through init.d.
pub const SP3_PATCH1_BUILD: u32 = 3312;

impl Version {
    /// Whether the tool knows this release: IWSVA and IWSS 6.5 (any service pack, patch, build).
    pub fn is_known(&self) -> bool {
        self.release.base.major == 6 && self.release.base.minor == 5
    }

    /// Whether this is IWSVA 6.5 SP3 before SP3 Patch 1 (build 3312), where the article restarts the
    /// firewall with `/usr/iwss/iwsvafw.sh restart` instead of `/etc/init.d/iptables restart`.
    pub fn is_iwsva_sp3_before_patch1(&self) -> bool {
        let r = &self.release;
        self.product == Product::Iwsva
            && self.is_known()
            && r.service_pack == 3
            && r.patch == 0
            && r.build.is_none_or(|b| b < SP3_PATCH1_BUILD)
    }

    /// Whether this level writes no `tcp_rfc1337` line and defaults to 0 (IWSVA 6.5 SP3, IWSS 6.5
    /// Patch 3, and later). Informational: the effective value is always computed from the files.
    pub fn defaults_rfc1337_off(&self) -> bool {
        let r = &self.release;
        match self.product {
            Product::Iwsva => r.service_pack >= 3 || r.base > semver::Version::new(6, 5, 0),
            Product::Iwss => r.patch >= 3 || r.service_pack > 0 || r.base > semver::Version::new(6, 5, 0),
        }
    }
}

/// Why a version string could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VersionError {
    #[error("no IWSVA/IWSS version found in {0:?}")]
    NotFound(String),
    #[error("{0:?} names no product (IWSVA or IWSS); set `product` in the configuration")]
    NoProduct(String),
}

/// Digits at the start of `s`, as a number, and how many bytes they take.
fn leading_number(s: &str) -> Option<(u64, usize)> {
    let len = s.bytes().take_while(u8::is_ascii_digit).count();
    (len > 0).then(|| (s[..len].parse().unwrap_or(u64::MAX), len))
}

/// The number after the first `keyword` in `lower` (lower-cased text) that does not follow a
/// letter, skipping one optional ` ` or `_` and the given infixes (`_linux`).
fn number_after(lower: &str, keywords: &[&str], infixes: &[&str]) -> Option<u32> {
    for keyword in keywords {
        let mut from = 0;
        while let Some(pos) = lower[from..].find(keyword) {
            let at = from + pos;
            from = at + keyword.len();
            if lower[..at].chars().next_back().is_some_and(|c| c.is_ascii_alphabetic()) {
                continue;
            }
            let mut rest = &lower[from..];
            for infix in infixes {
                if let Some(r) = rest.strip_prefix(infix) {
                    rest = r;
                }
            }
            let rest = rest.strip_prefix([' ', '_']).unwrap_or(rest);
            if let Some((n, _)) = leading_number(rest) {
                return u32::try_from(n).ok();
            }
        }
    }
    None
}

/// Finds `IWSVA` or `IWSS` as a word; returns the product and where its name ends.
fn find_product(lower: &str) -> Option<(Product, usize)> {
    let is_word_char = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    let mut best: Option<(Product, usize, usize)> = None;
    for (name, product) in [("iwsva", Product::Iwsva), ("iwss", Product::Iwss)] {
        let mut from = 0;
        while let Some(pos) = lower[from..].find(name) {
            let at = from + pos;
            let end = at + name.len();
            from = end;
            if !is_word_char(lower[..at].chars().next_back()) && !is_word_char(lower[end..].chars().next()) {
                if best.is_none_or(|(_, a, _)| at < a) {
                    best = Some((product, at, end));
                }
                break;
            }
        }
    }
    best.map(|(p, _, end)| (p, end))
}

/// Parses one version string, e.g. `6.5-SP2_Build_Linux_1548`,
/// `IWSVA 6.5-SP3_Build_Linux_3312 $Date: 11/04/2015 16:06:48 PM$`, `IWSVA 6.5 SP3 Patch 1 Build 3312`
/// or `IWSS 6.5 Patch 3`. `default_product` applies when the string names none.
pub fn parse_version(text: &str, default_product: Option<Product>) -> Result<Version, VersionError> {
    let text_trimmed = text.trim();
    // `$Date: ...$` carries digits that are not part of the version.
    let cleaned = text_trimmed.find("$Date").map_or(text_trimmed, |i| &text_trimmed[..i]);
    let lower = cleaned.to_ascii_lowercase();
    let named = find_product(&lower);
    // The version number: the first `N.N[.N]` after the product name, or anywhere without one.
    let start = named.map_or(0, |(_, end)| end);
    let mut base = None;
    let mut offset = start;
    while offset < lower.len() {
        let rest = &lower[offset..];
        let Some(pos) = rest.find(|c: char| c.is_ascii_digit()) else {
            break;
        };
        let at = offset + pos;
        let (major, l1) = leading_number(&lower[at..]).expect("a digit");
        let after_major = &lower[at + l1..];
        if let Some((minor, l2)) = after_major.strip_prefix('.').and_then(leading_number) {
            let mut end = at + l1 + 1 + l2;
            let micro = match lower[end..].strip_prefix('.').and_then(leading_number) {
                Some((micro, l3)) => {
                    end += 1 + l3;
                    micro
                }
                None => 0,
            };
            base = Some((semver::Version::new(major, minor, micro), end));
            break;
        }
        offset = at + l1;
    }
    let (base, end) = base.ok_or_else(|| VersionError::NotFound(text_trimmed.to_string()))?;
    let product = named
        .map(|(p, _)| p)
        .or(default_product)
        .ok_or_else(|| VersionError::NoProduct(text_trimmed.to_string()))?;
    let rest = &lower[end..];
    Ok(Version {
        product,
        release: Release {
            base,
            service_pack: number_after(rest, &["sp", "service pack", "service_pack", "servicepack"], &[]).unwrap_or(0),
            patch: number_after(rest, &["patch"], &[]).unwrap_or(0),
            build: number_after(rest, &["build"], &["_linux", " linux"]),
        },
    })
}

/// Reads the version from a version file's text: the first line that holds one wins.
/// Returns the 1-based line number with the version.
pub fn parse_version_file(text: &str, default_product: Option<Product>) -> Result<(usize, Version), VersionError> {
    let mut first_error = None;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match parse_version(line, default_product) {
            Ok(v) => return Ok((i + 1, v)),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| VersionError::NotFound(String::new())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        parse_version(text, None).unwrap()
    }

    #[test]
    fn parses_the_forms_the_appliance_shows() {
        let a = parse_version("6.5-SP2_Build_Linux_1548", Some(Product::Iwsva)).unwrap();
        assert_eq!(a.to_string(), "IWSVA 6.5 SP2 Build 1548");
        let b = v("IWSVA 6.5-SP3_Build_Linux_3312 $Date: 11/04/2015 16:06:48 PM$");
        assert_eq!(b.to_string(), "IWSVA 6.5 SP3 Build 3312");
        let c = v("IWSVA 6.5 SP3 Patch 1 Build 3312");
        assert_eq!(c.to_string(), "IWSVA 6.5 SP3 Patch 1 Build 3312");
        let d = v("IWSS 6.5 Patch 3");
        assert_eq!(
            (d.product, d.release.patch, d.release.service_pack),
            (Product::Iwss, 3, 0)
        );
        assert_eq!(v("iwsva 6.5").to_string(), "IWSVA 6.5");
    }

    #[test]
    fn bare_version_without_product_is_an_error_not_a_guess() {
        assert_eq!(
            parse_version("6.5-SP2_Build_Linux_1548", None),
            Err(VersionError::NoProduct("6.5-SP2_Build_Linux_1548".into()))
        );
        assert!(matches!(parse_version("hello", None), Err(VersionError::NotFound(_))));
        assert!(matches!(parse_version("", None), Err(VersionError::NotFound(_))));
    }

    #[test]
    fn total_order_follows_service_packs_and_patches() {
        let chain = [
            "IWSVA 6.5",
            "IWSVA 6.5 SP1",
            "IWSVA 6.5-SP2_Build_Linux_1548",
            "IWSVA 6.5-SP2_Build_Linux_1707",
            "IWSVA 6.5 SP2 Patch 4 Build 1749",
            "IWSVA 6.5 SP2 Patch 4 Build 1784",
            "IWSVA 6.5-SP3_Build_Linux_1900",
            "IWSVA 6.5 SP3 Patch 1 Build 3312",
            "IWSVA 7.0",
        ];
        for pair in chain.windows(2) {
            assert!(v(pair[0]).release < v(pair[1]).release, "{} < {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn sp3_restart_rule_depends_on_build_3312() {
        assert!(v("IWSVA 6.5-SP3_Build_Linux_1900").is_iwsva_sp3_before_patch1());
        assert!(v("IWSVA 6.5 SP3").is_iwsva_sp3_before_patch1());
        assert!(!v("IWSVA 6.5-SP3_Build_Linux_3312").is_iwsva_sp3_before_patch1());
        assert!(!v("IWSVA 6.5 SP3 Patch 1").is_iwsva_sp3_before_patch1());
        assert!(!v("IWSVA 6.5 SP2").is_iwsva_sp3_before_patch1());
        assert!(!v("IWSS 6.5 Patch 3").is_iwsva_sp3_before_patch1());
    }

    #[test]
    fn rfc1337_default_levels() {
        assert!(!v("IWSVA 6.5 SP2").defaults_rfc1337_off());
        assert!(v("IWSVA 6.5 SP3").defaults_rfc1337_off());
        assert!(!v("IWSS 6.5 Patch 2").defaults_rfc1337_off());
        assert!(v("IWSS 6.5 Patch 3").defaults_rfc1337_off());
    }

    #[test]
    fn version_file_first_parsable_line_wins() {
        let (line, ver) = parse_version_file("# product\n\nIWSS 6.5 Patch 2\nIWSS 7.0\n", None).unwrap();
        assert_eq!((line, ver.release.patch), (3, 2));
    }

    #[test]
    fn serde_round_trip() {
        let a = v("IWSVA 6.5 SP3 Patch 1 Build 3312");
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<Version>(&json).unwrap(), a);
    }
}

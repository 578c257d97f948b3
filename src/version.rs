//! Product and version of an IWSVA / IWSS 6.5 installation, parsed from the strings the appliance shows.

use std::cmp::Ordering;
use std::fmt;
use std::sync::OnceLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

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

impl Product {
    fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_uppercase().as_str() {
            "IWSVA" => Some(Self::Iwsva),
            "IWSS" => Some(Self::Iwss),
            _ => None,
        }
    }
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
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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

impl Ord for Release {
    fn cmp(&self, other: &Self) -> Ordering {
        (&self.base, self.service_pack, self.patch, self.build).cmp(&(
            &other.base,
            other.service_pack,
            other.patch,
            other.build,
        ))
    }
}

impl PartialOrd for Release {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
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
    /// Whether this is IWSVA 6.5 SP3 before SP3 Patch 1 (build 3312), where the article restarts the
    /// firewall with `/usr/iwss/iwsvafw.sh restart` instead of `/etc/init.d/iptables restart`.
    pub fn is_iwsva_sp3_before_patch1(&self) -> bool {
        let r = &self.release;
        self.product == Product::Iwsva
            && r.base.major == 6
            && r.base.minor == 5
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

fn version_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"(?ix)
            (?:\b(?P<product>IWSVA|IWSS)\b[^0-9\n]*?)?
            \b(?P<major>\d+)\.(?P<minor>\d+)(?:\.(?P<micro>\d+))?
            (?P<rest>[^\n]*)",
        )
        .expect("static regex")
    })
}

fn rest_regexes() -> &'static [Regex; 3] {
    static RE: OnceLock<[Regex; 3]> = OnceLock::new();
    RE.get_or_init(|| {
        [
            Regex::new(r"(?i)(?:^|[^A-Z])(?:SP|Service[ _]?Pack)[ _]?(\d+)").expect("static regex"),
            Regex::new(r"(?i)\bPatch[ _]?(\d+)").expect("static regex"),
            Regex::new(r"(?i)Build(?:[ _]Linux)?[ _]?(\d+)").expect("static regex"),
        ]
    })
}

/// Parses one version string, e.g. `6.5-SP2_Build_Linux_1548`,
/// `IWSVA 6.5-SP3_Build_Linux_3312 $Date: 11/04/2015 16:06:48 PM$`, `IWSVA 6.5 SP3 Patch 1 Build 3312`
/// or `IWSS 6.5 Patch 3`. `default_product` applies when the string names none.
pub fn parse_version(text: &str, default_product: Option<Product>) -> Result<Version, VersionError> {
    let text_trimmed = text.trim();
    // `$Date: ...$` carries digits that are not part of the version.
    let cleaned = match text_trimmed.find("$Date") {
        Some(i) => &text_trimmed[..i],
        None => text_trimmed,
    };
    let caps = version_regex()
        .captures(cleaned)
        .ok_or_else(|| VersionError::NotFound(text_trimmed.to_string()))?;
    let num = |name: &str| -> u64 { caps.name(name).and_then(|m| m.as_str().parse().ok()).unwrap_or(0) };
    let product = caps
        .name("product")
        .and_then(|m| Product::from_name(m.as_str()))
        .or(default_product)
        .ok_or_else(|| VersionError::NoProduct(text_trimmed.to_string()))?;
    let rest = caps.name("rest").map_or("", |m| m.as_str());
    let [sp_re, patch_re, build_re] = rest_regexes();
    let grab = |re: &Regex| -> Option<u32> {
        re.captures(rest)
            .and_then(|c| c.get(1))
            .and_then(|m| m.as_str().parse().ok())
    };
    Ok(Version {
        product,
        release: Release {
            base: semver::Version::new(num("major"), num("minor"), num("micro")),
            service_pack: grab(sp_re).unwrap_or(0),
            patch: grab(patch_re).unwrap_or(0),
            build: grab(build_re),
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

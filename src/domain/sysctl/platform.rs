//! The platforms whose programs apply sysctl files on an appliance, and which of them may run
//! a given appliance: what `sysctl -p` and the kernel make of a file depends on them.

use serde::Serialize;

use super::procps::{Kernel, Procps};
use super::systemd::Systemd;
use crate::domain::version::{Product, Version};

/// An appliance's operating system, as far as sysctl files are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Platform {
    /// RHEL/CentOS 7: procps-ng 3.3.10, systemd 219, kernel 3.10 (IWSVA 6.5; IWSS 6.5 before Patch 3, and
    /// Patch 3 upgraded in place on RHEL 7.6-7.9).
    #[serde(rename = "rhel7")]
    Rhel7,
    /// RHEL 8: procps-ng 3.3.15, systemd 239, kernel 4.18 (IWSS 6.5 Patch 3).
    #[serde(rename = "rhel8")]
    Rhel8,
    /// A current system: procps-ng 4.0, systemd 252, kernel 6.x.
    #[serde(rename = "current")]
    Current,
}

impl Platform {
    /// Every platform the tool knows: the targets when the appliance is not known.
    pub const ALL: [Platform; 3] = [Platform::Rhel7, Platform::Rhel8, Platform::Current];

    /// The procps-ng whose `sysctl -p` and `sysctl --system` read the files.
    pub fn procps(self) -> Procps {
        match self {
            Platform::Rhel7 => Procps::V3_3_10,
            Platform::Rhel8 => Procps::V3_3_15,
            Platform::Current => Procps::V4,
        }
    }

    /// The systemd whose `systemd-sysctl` applies the files at boot.
    pub fn systemd(self) -> Systemd {
        match self {
            Platform::Rhel7 => Systemd::V219,
            Platform::Rhel8 => Systemd::V239,
            Platform::Current => Systemd::V252,
        }
    }

    /// The kernel that reads what procps writes.
    pub fn kernel(self) -> Kernel {
        match self {
            Platform::Rhel7 => Kernel::V3_10,
            Platform::Rhel8 => Kernel::V4_18,
            Platform::Current => Kernel::V6,
        }
    }

    /// The platform and its programs, for reports.
    pub fn name(self) -> &'static str {
        match self {
            Platform::Rhel7 => "RHEL 7 (procps-ng 3.3.10, systemd 219, kernel 3.10)",
            Platform::Rhel8 => "RHEL 8 (procps-ng 3.3.15, systemd 239, kernel 4.18)",
            Platform::Current => "a current system (procps-ng 4.0, systemd 252, kernel 6)",
        }
    }

    /// The platforms that may run an appliance of `version`: IWSVA 6.5 and IWSS 6.5 before
    /// Patch 3 run RHEL/CentOS 7; IWSS 6.5 Patch 3 runs RHEL 8, or RHEL 7 when the root's
    /// `/etc/redhat-release` (`release`, when known) says 7; anything else may be any of them.
    pub fn targets(version: &Version, release: Option<&str>) -> Vec<Platform> {
        if !version.is_known() {
            return Platform::ALL.to_vec();
        }
        let patch3 = version.product == Product::Iwss && version.release.patch >= 3;
        if version.product == Product::Iwsva || !patch3 {
            return vec![Platform::Rhel7];
        }
        match release.and_then(rhel_major) {
            Some(7) => vec![Platform::Rhel7],
            Some(8) => vec![Platform::Rhel8],
            _ => vec![Platform::Rhel7, Platform::Rhel8],
        }
    }
}

/// The files that say which release of the operating system a root runs.
pub const RELEASE_FILES: [&str; 2] = ["/etc/redhat-release", "/etc/os-release"];

/// The major version a release file names: `/etc/redhat-release` (`CentOS Linux release 7.9.2009
/// (Core)`) or `/etc/os-release` (`VERSION_ID="8.10"`).
pub fn rhel_major(release: &str) -> Option<u32> {
    let rest = match release.find("release ") {
        Some(at) => &release[at + "release ".len()..],
        None => {
            let line = release.lines().find_map(|l| l.trim().strip_prefix("VERSION_ID="))?;
            line.trim_matches(|c| c == '"' || c == '\'')
        }
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

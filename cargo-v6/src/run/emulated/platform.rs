//! `--platform OS/ARCH[/VARIANT]`: which image of an index runs, and which qemu-user binary
//! runs it.

use std::fmt;

/// A platform as OCI names it (`linux/arm64`, `linux/arm/v7`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetPlatform {
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`, `arm`, ...
    pub architecture: String,
    /// `v7` for `linux/arm/v7`; none when not given.
    pub variant: Option<String>,
}

/// The architectures a qemu-user binary runs, with the name qemu gives them: Debian's
/// `qemu-user-static` installs `qemu-<name>-static`.
const QEMU_NAMES: &[(&str, &str)] = &[
    ("amd64", "x86_64"),
    ("arm64", "aarch64"),
    ("arm", "arm"),
    ("386", "i386"),
    ("ppc64le", "ppc64le"),
    ("s390x", "s390x"),
    ("riscv64", "riscv64"),
];

impl TargetPlatform {
    /// Parses `OS/ARCH[/VARIANT]`; the error says what is expected. Only architectures qemu-user
    /// can run are accepted (see [`QEMU_NAMES`]), and only `linux`: an algorithm image is a
    /// Linux image.
    pub fn parse(text: &str) -> Result<TargetPlatform, String> {
        let known = || {
            QEMU_NAMES
                .iter()
                .map(|(arch, _)| format!("linux/{arch}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let parts: Vec<&str> = text.split('/').collect();
        let (os, architecture, variant) = match parts[..] {
            [os, arch] => (os, arch, None),
            [os, arch, variant] if !variant.is_empty() => (os, arch, Some(variant)),
            _ => {
                return Err(format!(
                    "`{text}` is not OS/ARCH[/VARIANT]: expected one of {}",
                    known()
                ));
            }
        };
        if os != "linux" || !QEMU_NAMES.iter().any(|(arch, _)| *arch == architecture) {
            return Err(format!(
                "`{text}`: unknown platform; expected one of {} (arm with a variant, e.g. linux/arm/v7)",
                known()
            ));
        }
        Ok(TargetPlatform {
            os: os.to_owned(),
            architecture: architecture.to_owned(),
            variant: variant.map(str::to_owned),
        })
    }

    /// The platform this program runs on (`linux/amd64` on x86-64).
    pub fn host() -> TargetPlatform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        TargetPlatform {
            os: std::env::consts::OS.to_owned(),
            architecture: architecture.to_owned(),
            variant: None,
        }
    }

    /// Whether this machine runs it without emulation (same OS and architecture; the variant is
    /// not compared: a host runs its own architecture's variants).
    pub fn is_host(&self) -> bool {
        let host = TargetPlatform::host();
        self.os == host.os && self.architecture == host.architecture
    }

    /// The qemu-user binary that runs this architecture: `qemu-aarch64-static` for arm64.
    pub fn qemu_binary(&self) -> String {
        let name = QEMU_NAMES
            .iter()
            .find(|(arch, _)| *arch == self.architecture)
            .map_or(self.architecture.as_str(), |(_, qemu)| qemu);
        format!("qemu-{name}-static")
    }

    /// As oci-spec has it, to find it in an index.
    pub fn oci(&self) -> crate::oci::manifest::Platform {
        let mut platform = crate::oci::manifest::Platform::default();
        platform.set_os(self.os.as_str().into());
        platform.set_architecture(self.architecture.as_str().into());
        platform.set_variant(self.variant.clone());
        platform
    }

    /// Whether an index entry's or image config's platform is this one. An entry without a
    /// variant matches a platform given without one; `arm64` images often name `v8`, which
    /// a platform without a variant accepts too.
    pub fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        os == self.os
            && architecture == self.architecture
            && match (&self.variant, variant) {
                (None, _) => true,
                (Some(wanted), Some(given)) => wanted == given,
                (Some(_), None) => false,
            }
    }
}

impl fmt::Display for TargetPlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_parse_and_name_their_qemu_binary() {
        let arm64 = TargetPlatform::parse("linux/arm64").unwrap();
        assert_eq!(arm64.qemu_binary(), "qemu-aarch64-static");
        assert_eq!(arm64.to_string(), "linux/arm64");
        assert!(arm64.matches("linux", "arm64", Some("v8")));
        assert!(!arm64.matches("linux", "amd64", None));
        let amd64 = TargetPlatform::parse("linux/amd64").unwrap();
        assert_eq!(amd64.qemu_binary(), "qemu-x86_64-static");
        let arm = TargetPlatform::parse("linux/arm/v7").unwrap();
        assert_eq!(arm.qemu_binary(), "qemu-arm-static");
        assert!(arm.matches("linux", "arm", Some("v7")));
        assert!(!arm.matches("linux", "arm", Some("v6")));
        assert!(!arm.matches("linux", "arm", None));
        for (bad, says) in [
            ("linux/sparc", "`linux/sparc`: unknown platform"),
            ("windows/amd64", "unknown platform"),
            ("arm64", "is not OS/ARCH"),
            ("linux/arm/", "is not OS/ARCH"),
            ("linux/arm/v7/x", "is not OS/ARCH"),
        ] {
            let error = TargetPlatform::parse(bad).unwrap_err();
            assert!(error.contains(says), "{bad}: {error}");
            assert!(error.contains("linux/arm64"), "{error}");
        }
        assert_eq!(TargetPlatform::host().os, "linux");
    }
}

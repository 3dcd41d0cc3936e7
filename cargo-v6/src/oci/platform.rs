//! The platforms an assembled image is made for, as `[build] platforms` and `--platform`
//! name them: `linux/amd64` and `linux/arm64`, the two vantage6's own base images are built
//! for (its Makefile's `PLATFORMS ?= linux/arm64,linux/amd64`). Others have no manylinux
//! wheels that the resolver picks for them, so they are refused when read.

/// A platform an image is assembled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Platform {
    /// `linux/amd64` (x86-64).
    LinuxAmd64,
    /// `linux/arm64` (AArch64; `linux/arm64/v8` is the same).
    LinuxArm64,
}

impl Platform {
    /// Every platform, in the order an index lists them.
    pub const ALL: [Platform; 2] = [Platform::LinuxAmd64, Platform::LinuxArm64];

    /// `linux/amd64`, `linux/arm64` or `linux/arm64/v8`; the error is the help to show.
    pub fn parse(text: &str) -> Result<Platform, String> {
        match text {
            "linux/amd64" => Ok(Platform::LinuxAmd64),
            "linux/arm64" | "linux/arm64/v8" => Ok(Platform::LinuxArm64),
            _ => Err(format!(
                "`{text}`: images are assembled for \"linux/amd64\" and \"linux/arm64\""
            )),
        }
    }

    /// The OCI `architecture` (`amd64`, `arm64`).
    pub fn architecture(self) -> &'static str {
        match self {
            Platform::LinuxAmd64 => "amd64",
            Platform::LinuxArm64 => "arm64",
        }
    }

    /// The OCI `os`.
    pub fn os(self) -> &'static str {
        "linux"
    }

    /// The platform of the machine cargo v6 runs on, when it is one of these.
    pub fn host() -> Option<Platform> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Platform::LinuxAmd64),
            "aarch64" => Some(Platform::LinuxArm64),
            _ => None,
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os(), self.architecture())
    }
}

impl serde::Serialize for Platform {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_read_and_print_as_docker_writes_them() {
        for platform in Platform::ALL {
            assert_eq!(Platform::parse(&platform.to_string()), Ok(platform));
        }
        assert_eq!(Platform::parse("linux/arm64/v8"), Ok(Platform::LinuxArm64));
        let refused = Platform::parse("linux/s390x").unwrap_err();
        assert!(refused.contains("linux/amd64"), "{refused}");
    }
}

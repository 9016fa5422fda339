//! The server-version matrix, read from `images/versions.toml` (the one place it lives).

use serde::Deserialize;
use std::sync::LazyLock;

use crate::{Error, Result, bail};

/// The environment variable that picks the server version for the tests and the harness's defaults.
pub const VERSION_ENV: &str = "CLUSTER_VERSION";

/// One server version of the matrix and the Debian recipe its node image is built from.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Version {
    /// Short name used on the command line and in image tags, e.g. `redis-7.0`.
    pub name: String,
    /// Human-readable server and version, e.g. `Redis 7.0.15`.
    pub server: String,
    /// Debian suite the root filesystem is bootstrapped from.
    pub suite: String,
    /// Further suites whose packages the build may pick (e.g. backports).
    #[serde(default)]
    pub extra_suites: Vec<String>,
    /// Debian packages installed into the build root.
    pub packages: Vec<String>,
    /// Path of the server binary inside the image.
    pub server_bin: String,
    /// Path of the command-line client inside the image.
    pub cli_bin: String,
    /// Whether this is the version used when none is asked for.
    #[serde(default)]
    pub default: bool,
    /// Whether apt must accept this suite's expired Release file (the suite alone, not the others).
    #[serde(default)]
    pub insecure_release_date: bool,
    /// An upstream image of the same server version (e.g. `redis:7.0.15`), for machines with a registry:
    /// The CLI's matrix run with upstream images runs the matrix on these instead of the Debian builds.
    #[serde(default)]
    pub image: Option<String>,
}

#[derive(Deserialize)]
struct Matrix {
    version: Vec<Version>,
}

static MATRIX: LazyLock<Vec<Version>> = LazyLock::new(|| {
    let text = include_str!("../../images/versions.toml");
    let matrix: Matrix = toml::from_str(text).expect("images/versions.toml is valid (checked by a unit test)");
    matrix.version
});

impl Version {
    /// Every version of the matrix, in file order.
    pub fn all() -> &'static [Version] {
        &MATRIX
    }

    /// The version with this name, or an error that lists the known ones.
    pub fn named(name: &str) -> Result<&'static Version> {
        Self::all().iter().find(|v| v.name == name).ok_or_else(|| {
            Error::refused(format!(
                "unknown server version `{name}`; known versions: {}",
                Self::names().join(", ")
            ))
        })
    }

    /// The default version of the matrix.
    pub fn default_version() -> &'static Version {
        Self::all()
            .iter()
            .find(|v| v.default)
            .expect("the matrix marks one default version")
    }

    /// The version named by `$CLUSTER_VERSION`, or the default one when it is unset.
    pub fn from_env() -> Result<&'static Version> {
        match std::env::var(VERSION_ENV) {
            Ok(name) if !name.is_empty() => Self::named(&name).map_err(|e| e.context(format!("${VERSION_ENV}"))),
            Ok(_) | Err(std::env::VarError::NotPresent) => Ok(Self::default_version()),
            Err(e) => bail!(Refused, "${VERSION_ENV}: {e}"),
        }
    }

    /// The names of all versions, in file order.
    pub fn names() -> Vec<&'static str> {
        Self::all().iter().map(|v| v.name.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_has_six_unique_versions_and_one_default() {
        let names = Version::names();
        assert_eq!(names.len(), 6, "{names:?}");
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "duplicate names in {names:?}");
        assert_eq!(Version::default_version().name, "redis-7.0");
        assert_eq!(Version::all().iter().filter(|v| v.default).count(), 1);
    }

    #[test]
    fn unknown_version_names_the_known_ones() {
        let err = Version::named("redis-5.0").unwrap_err().to_string();
        assert!(err.contains("unknown server version `redis-5.0`"), "{err}");
        assert!(err.contains("valkey-9.1"), "{err}");
    }

    #[test]
    fn valkey_versions_use_valkey_binaries() {
        for v in Version::all() {
            let server = if v.name.starts_with("valkey") {
                "valkey"
            } else {
                "redis"
            };
            assert_eq!(v.server_bin, format!("/usr/bin/{server}-server"), "{}", v.name);
            assert_eq!(v.cli_bin, format!("/usr/bin/{server}-cli"), "{}", v.name);
        }
    }

    #[test]
    fn only_forky_skips_the_release_date_check() {
        for v in Version::all() {
            assert_eq!(v.insecure_release_date, v.suite == "forky", "{}", v.name);
        }
    }
}

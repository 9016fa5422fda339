//! Clusters that need credentials: a password on every node, ACL users and TLS, set by a server config file (and
//! the TLS files) copied into each node's container before it starts (never on a command line or in a label, both
//! of which `docker inspect` shows), the credentials the harness connects with ([`Access`]), and the files under
//! the target dir that keep both for later commands (the CLI's `info`, `join`, ...) and for host clients.
//!
//! With users, the harness has one of its own, [`HARNESS_USER`], with every right; replicas authenticate to their
//! masters as it, so `default` can be turned off.
//!
//! Just over 600 lines, 60 of them tests: the parsing of users, the server config written from them and the files
//! read back by later commands are one format, kept in one place (TLS certificates live in [`crate::security::tls`]).

use std::collections::hash_map::RandomState;
use std::fmt::Write as _;
use std::hash::BuildHasher;
use std::path::{Path, PathBuf};

use crate::engine::docker::PrivateFile;
use crate::security::tls::{self, Certificates, ClientAuth};
use crate::{Error, Remedy, Result, bail};

/// The ACL user the harness itself (and replication) uses on clusters with users.
pub const HARNESS_USER: &str = "cluster-tests";
/// Where the server config lies inside a node's container; the server is started with it as its first argument.
pub(crate) const CONFIG_PATH: &str = "/cluster-tests/node.conf";
/// The server config kept for nodes that join later.
const CONFIG_FILE: &str = "node.conf";
/// The credentials kept for the harness's later commands.
const ACCESS_FILE: &str = "access.toml";
/// The TLS files kept for host clients (`redis-cli --tls --cacert ca.crt --cert client.crt --key client.key`) and,
/// the node's, for nodes that join later.
const CA_FILE: &str = "ca.crt";
const CLIENT_CERT_FILE: &str = "client.crt";
const CLIENT_KEY_FILE: &str = "client.key";
const NODE_CERT_FILE: &str = "node.crt";
const NODE_KEY_FILE: &str = "node.key";

/// An ACL user loaded on every node: `NAME:PASSWORD:RULES`, RULES in the servers' ACL syntax (e.g.
/// `~* +@read`).
#[derive(Clone, PartialEq, Eq)]
pub struct AclUser {
    /// User name.
    pub name: String,
    /// Its password.
    pub password: String,
    /// Its rules, as `ACL SETUSER` takes them (`on` and the password are added).
    pub rules: String,
}

impl std::fmt::Debug for AclUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AclUser")
            .field("name", &self.name)
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

impl AclUser {
    /// A user with these rules.
    pub fn new(name: impl Into<String>, password: impl Into<String>, rules: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            password: password.into(),
            rules: rules.into(),
        }
    }

    /// Parses `NAME:PASSWORD:RULES` (the rules may contain `:`).
    pub fn parse(text: &str) -> Result<Self> {
        let mut parts = text.splitn(3, ':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(name), Some(password), Some(rules)) => Ok(Self::new(name, password, rules)),
            _ => bail!(
                Refused,
                "a user is NAME:PASSWORD:RULES, e.g. `reader:secret:~* +@read` (got `{}`)",
                redact(text)
            ),
        }
    }

    fn validate(&self) -> Result<()> {
        if !is_token(&self.name) || self.name == HARNESS_USER {
            bail!(
                Refused,
                "user name `{}` must be letters, digits, `-` or `_`, and not `{HARNESS_USER}` (the harness's own)",
                self.name
            );
        }
        check_password(&self.password, &format!("the password of user `{}`", self.name))?;
        if self
            .rules
            .chars()
            .any(|c| !(c == ' ' || c.is_ascii_graphic()) || "\"'\\".contains(c))
        {
            bail!(
                Refused,
                "the rules of user `{}` must be printable ASCII without quotes or backslashes",
                self.name
            );
        }
        Ok(())
    }

    /// Its line in a server config.
    fn config_line(&self) -> String {
        format!("user {} on >{} {}", self.name, self.password, self.rules)
    }
}

/// The users of an ACL file: its `user NAME on >PASSWORD RULES...` lines (blank lines and `#` comments skipped).
pub fn parse_acl_file(text: &str) -> Result<Vec<AclUser>> {
    let mut users = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let password = words.iter().find_map(|w| w.strip_prefix('>'));
        match (words.as_slice(), password) {
            (["user", name, rules @ ..], Some(password)) => {
                let rules: Vec<&str> = rules
                    .iter()
                    .copied()
                    .filter(|w| !w.starts_with('>') && *w != "on")
                    .collect();
                users.push(AclUser::new(*name, password, rules.join(" ")));
            }
            _ => bail!(
                Refused,
                "line {} of the ACL file is not `user NAME on >PASSWORD RULES...`: `{}`",
                n + 1,
                redact(line)
            ),
        }
    }
    Ok(users)
}

/// The credentials the harness connects to a cluster's nodes with: user, password, and TLS. `Debug` shows no
/// secret.
#[derive(Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Access {
    user: Option<String>,
    password: Option<String>,
    tls: Option<TlsClient>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("tls", &self.tls)
            .finish()
    }
}

/// How a client reaches a TLS cluster: the CA that signed the nodes' certificate, and a client certificate the
/// nodes accept (needed where they require one), PEM-encoded.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TlsClient {
    ca: String,
    client_cert: Option<String>,
    client_key: Option<String>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("client_certificate", &self.client_cert.is_some())
            .finish_non_exhaustive()
    }
}

impl TlsClient {
    /// The cluster's CA certificate (PEM), to verify the nodes with.
    pub fn ca_pem(&self) -> &str {
        &self.ca
    }

    /// The client certificate and its key (PEM), if this client presents one.
    pub fn client_pem(&self) -> Option<(&str, &str)> {
        self.client_cert.as_deref().zip(self.client_key.as_deref())
    }

    /// The `redis` crate's form of these certificates.
    pub fn redis_certificates(&self) -> redis::TlsCertificates {
        redis::TlsCertificates {
            client_tls: self.client_pem().map(|(cert, key)| redis::ClientTlsConfig {
                client_cert: cert.as_bytes().to_vec(),
                client_key: key.as_bytes().to_vec(),
            }),
            root_cert: Some(self.ca.as_bytes().to_vec()),
        }
    }
}

impl Access {
    /// Credentials of `user` (`None`: `default`) with `password`, e.g. for a user of the test's own.
    pub fn new(user: Option<&str>, password: &str) -> Self {
        Self {
            user: user.map(str::to_owned),
            password: Some(password.to_owned()),
            tls: None,
        }
    }

    /// The same way in (TLS) as another user: `cluster.access().as_user(Some("reader"), "pw")`.
    pub fn as_user(&self, user: Option<&str>, password: &str) -> Self {
        Self {
            tls: self.tls.clone(),
            ..Self::new(user, password)
        }
    }

    /// The same credentials without a client certificate (to see a mutual-TLS cluster refuse it).
    pub fn without_client_certificate(&self) -> Self {
        let mut access = self.clone();
        if let Some(tls) = &mut access.tls {
            (tls.client_cert, tls.client_key) = (None, None);
        }
        access
    }

    /// How to reach the nodes over TLS, if they speak only TLS.
    pub fn tls(&self) -> Option<&TlsClient> {
        self.tls.as_ref()
    }

    /// The TLS files and arguments a command-line client in a container of its own needs.
    pub(crate) fn cli_tls(&self) -> (Vec<PrivateFile>, &'static [&'static str]) {
        let Some(tls) = &self.tls else {
            return (Vec::new(), &[]);
        };
        let file = |(path, contents): (&str, &str)| PrivateFile {
            path: path.to_owned(),
            contents: contents.as_bytes().to_vec(),
        };
        match tls.client_pem() {
            Some((cert, key)) => (tls::client_files(&tls.ca, cert, key).map(file).to_vec(), &tls::CLI_ARGS),
            // The CA alone: `--tls --cacert <ca>`.
            None => (vec![file(tls::client_files(&tls.ca, "", "")[0])], &tls::CLI_ARGS[..3]),
        }
    }

    /// The URL scheme of the nodes: `rediss` with TLS, else `redis`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "rediss" } else { "redis" }
    }

    /// The ACL user, if not `default`.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The password, if the cluster needs one.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// The `redis` crate's settings for these credentials.
    pub fn redis_settings(&self) -> redis::RedisConnectionInfo {
        let mut settings = redis::RedisConnectionInfo::default();
        if let Some(user) = &self.user {
            settings = settings.set_username(user);
        }
        if let Some(password) = &self.password {
            settings = settings.set_password(password);
        }
        settings
    }
}

/// What a cluster's nodes are told about credentials, from its spec.
#[derive(Clone, Default)]
pub(crate) struct Credentials {
    pub(crate) password: Option<String>,
    pub(crate) users: Vec<AclUser>,
    pub(crate) default_user_off: bool,
    /// TLS only, and whether clients must present a certificate.
    pub(crate) tls: Option<ClientAuth>,
}

impl Credentials {
    /// Whether the nodes need any: then they get a config file, and the harness credentials.
    pub(crate) fn any(&self) -> bool {
        self.password.is_some() || !self.users.is_empty() || self.default_user_off || self.tls.is_some()
    }

    /// Refuses what the server config cannot hold.
    pub(crate) fn validate(&self) -> Result<()> {
        if let Some(password) = &self.password {
            check_password(password, "the password")?;
        }
        for user in &self.users {
            user.validate()?;
        }
        // One pass with a set: 200,000 users are checked in milliseconds, not minutes.
        let mut seen = std::collections::HashSet::with_capacity(self.users.len());
        if let Some(twice) = self.users.iter().find(|u| !seen.insert(u.name.as_str())) {
            bail!(Refused, "user `{}` is given twice", twice.name);
        }
        Ok(())
    }

    /// The secrets of the cluster `name` made with these: its nodes' config and TLS files, and the harness's
    /// credentials, to be kept in `dir`.
    pub(crate) fn secrets(&self, name: &str, dir: PathBuf) -> Result<Secrets> {
        let certificates = self.tls.map(|_| Certificates::generate(name)).transpose()?;
        let tls = certificates.as_ref().map(|c| TlsClient {
            ca: c.ca.clone(),
            client_cert: Some(c.client_cert.clone()),
            client_key: Some(c.client_key.clone()),
        });
        let mut config = self.tls.map(tls::server_config).unwrap_or_default();
        if let Some(password) = &self.password {
            writeln!(config, "requirepass {password}").ok();
        }
        // With users (or `default` off), the harness and replication use a user of their own.
        let harness = (!self.users.is_empty() || self.default_user_off).then(|| {
            let password = self.password.clone().unwrap_or_else(generate_password);
            AclUser::new(HARNESS_USER, password, "~* +@all")
        });
        for user in harness.iter().chain(&self.users) {
            writeln!(config, "{}", user.config_line()).ok();
        }
        if self.default_user_off {
            writeln!(config, "user default off").ok();
        }
        let access = match harness {
            Some(h) => {
                writeln!(config, "masteruser {HARNESS_USER}\nmasterauth {}", h.password).ok();
                Access {
                    user: Some(h.name),
                    password: Some(h.password),
                    tls,
                }
            }
            None => {
                if let Some(password) = &self.password {
                    writeln!(config, "masterauth {password}").ok();
                }
                Access {
                    user: None,
                    password: self.password.clone(),
                    tls,
                }
            }
        };
        Ok(Secrets {
            dir,
            config,
            access,
            certificates,
        })
    }
}

/// A cluster's secrets, kept in files under its directory (mode 0600, the directory 0700).
#[derive(Clone)]
pub(crate) struct Secrets {
    pub(crate) dir: PathBuf,
    config: String,
    pub(crate) access: Access,
    certificates: Option<Certificates>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("dir", &self.dir)
            .field("access", &self.access)
            .finish_non_exhaustive()
    }
}

impl Secrets {
    /// Writes them to their directory (made if missing; it and its parent made mode 0700, see [`private_dir`]).
    pub(crate) fn save(&self) -> Result<()> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let failed = |e: std::io::Error| Error::other(format!("writing {}: {e}", self.dir.display()));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(failed)?;
        private_dir(&self.dir)?;
        let access = toml::to_string(&self.access).map_err(|e| Error::other(e.to_string()))?;
        let mut files = vec![(CONFIG_FILE, &self.config), (ACCESS_FILE, &access)];
        if let Some(c) = &self.certificates {
            files.extend([
                (CA_FILE, &c.ca),
                (CLIENT_CERT_FILE, &c.client_cert),
                (CLIENT_KEY_FILE, &c.client_key),
                (NODE_CERT_FILE, &c.node_cert),
                (NODE_KEY_FILE, &c.node_key),
            ]);
        }
        for (name, text) in files {
            let path = self.dir.join(name);
            // Written afresh, so the mode is 0600 even where an earlier file of that name was not.
            std::fs::remove_file(&path).ok();
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(failed)?;
            std::io::Write::write_all(&mut file, text.as_bytes()).map_err(failed)?;
        }
        Ok(())
    }

    /// Reads the secrets of the cluster `name` back from `dir`.
    pub(crate) fn load(name: &str, dir: &Path) -> Result<Self> {
        let read = |file: &str| {
            std::fs::read_to_string(dir.join(file)).map_err(|e| {
                Error::other(format!(
                    "cluster `{name}` needs credentials, kept in {}, which cannot be read ({e})",
                    dir.join(file).display()
                ))
                .with_remedy(Remedy::RemoveCluster)
            })
        };
        let access: Access = toml::from_str(&read(ACCESS_FILE)?)
            .map_err(|e| Error::other(format!("{}: {e}", dir.join(ACCESS_FILE).display())))?;
        let certificates = match &access.tls {
            Some(_) => Some(Certificates {
                ca: read(CA_FILE)?,
                node_cert: read(NODE_CERT_FILE)?,
                node_key: read(NODE_KEY_FILE)?,
                client_cert: read(CLIENT_CERT_FILE)?,
                client_key: read(CLIENT_KEY_FILE)?,
            }),
            None => None,
        };
        Ok(Self {
            dir: dir.to_owned(),
            config: read(CONFIG_FILE)?,
            access,
            certificates,
        })
    }

    /// Whether the nodes speak only TLS.
    pub(crate) fn tls(&self) -> bool {
        self.certificates.is_some()
    }

    /// The TLS arguments of a command-line client run in a node's container.
    pub(crate) fn cli_args(&self) -> &'static [&'static str] {
        if self.tls() { &tls::CLI_ARGS } else { &[] }
    }

    /// The TLS material, if the nodes speak TLS.
    pub(crate) fn certificates(&self) -> Option<&Certificates> {
        self.certificates.as_ref()
    }

    /// Where a host client finds the TLS files, if the nodes speak only TLS.
    pub(crate) fn tls_files(&self) -> Option<TlsFiles> {
        self.tls().then(|| TlsFiles {
            ca: self.dir.join(CA_FILE),
            cert: self.dir.join(CLIENT_CERT_FILE),
            key: self.dir.join(CLIENT_KEY_FILE),
        })
    }

    /// The files of a node: its config (`settings` first), and its TLS files.
    pub(crate) fn node_files(&self, settings: &str) -> Vec<PrivateFile> {
        let file = |path: &str, contents: &str| PrivateFile {
            path: path.to_owned(),
            contents: contents.as_bytes().to_vec(),
        };
        let mut files = vec![file(CONFIG_PATH, &format!("{settings}{}", self.config))];
        if let Some(c) = &self.certificates {
            files.extend(c.node_files().map(|(path, contents)| file(path, contents)));
        }
        files
    }
}

/// Where a TLS cluster's CA, client certificate and key are kept, for host clients: `redis-cli --tls --cacert
/// <ca> --cert <cert> --key <key>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA certificate.
    pub ca: PathBuf,
    /// A client certificate the nodes accept.
    pub cert: PathBuf,
    /// Its key.
    pub key: PathBuf,
}

/// Where a cluster's secrets are kept: `<target dir>/cluster-tests/<name>`. The target dir is `$CARGO_TARGET_DIR`,
/// else the one this program was built in (the nearest ancestor holding cargo's `CACHEDIR.TAG`), else the
/// system's temporary directory.
pub(crate) fn secrets_dir(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            exe.ancestors()
                .find(|d| d.join("CACHEDIR.TAG").is_file())
                .map(Path::to_owned)
        })
        .unwrap_or_else(std::env::temp_dir);
    target.join("cluster-tests").join(name)
}

/// The files a cluster's secrets are kept in: all [`Secrets::save`] writes.
const SECRET_FILES: [&str; 7] = [
    CONFIG_FILE,
    ACCESS_FILE,
    CA_FILE,
    CLIENT_CERT_FILE,
    CLIENT_KEY_FILE,
    NODE_CERT_FILE,
    NODE_KEY_FILE,
];

/// Makes `dir` and its parent (`.../cluster-tests`) private (mode 0700), so no other local user can swap a
/// certificate or the credentials; refuses a symbolic link, or a directory another user owns (its mode cannot be
/// set), as one made beforehand by someone else.
fn private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let parent = dir.parent().filter(|p| p.file_name() == Some("cluster-tests".as_ref()));
    for d in [Some(dir), parent].into_iter().flatten() {
        let refuse = |why: String| {
            Error::refused(format!(
                "{} {why}, so the cluster's secrets are not kept there; remove it, or set CARGO_TARGET_DIR to a \
                 directory of your own",
                d.display()
            ))
        };
        let meta = std::fs::symlink_metadata(d).map_err(|e| refuse(format!("cannot be read ({e})")))?;
        if !meta.is_dir() {
            return Err(refuse("is not a directory (a symbolic link?)".into()));
        }
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| refuse(format!("cannot be made private, mode 0700 ({e}); another user's?")))?;
    }
    Ok(())
}

/// Removes the secrets of cluster `name` kept in `dir`, as a removed container's label names it: only the files
/// [`Secrets::save`] writes, then the directory if nothing else is in it; only in a directory where
/// [`secrets_dir`] puts them (`.../cluster-tests/<name>`), whatever the label says.
pub(crate) fn remove_secrets(name: &str, dir: &Path) {
    let parent = dir.parent().and_then(Path::file_name);
    if dir.file_name() == Some(name.as_ref()) && parent == Some("cluster-tests".as_ref()) {
        for file in SECRET_FILES {
            std::fs::remove_file(dir.join(file)).ok();
        }
        std::fs::remove_dir(dir).ok();
    }
}

/// A random password: 32 hex digits from the OS-seeded keys of std's hasher (128 bits).
pub fn generate_password() -> String {
    let half = |n: u8| RandomState::new().hash_one((n, std::time::SystemTime::now()));
    format!("{:016x}{:016x}", half(0), half(1))
}

/// Refuses a password the server config cannot hold as one word: it must be 1 to 256 printable ASCII characters
/// without spaces, quotes or backslashes (the config's word separators and escapes).
fn check_password(password: &str, what: &str) -> Result<()> {
    if password.is_empty() || password.len() > 256 {
        bail!(Refused, "{what} must be 1 to 256 characters long");
    }
    if let Some(bad) = password.chars().find(|c| !c.is_ascii_graphic() || "\"'\\".contains(*c)) {
        bail!(
            Refused,
            "{what} holds {}, which a server config cannot hold in a password; use printable ASCII without spaces, \
             quotes or backslashes",
            if bad.is_ascii_graphic() {
                format!("`{bad}`")
            } else {
                format!("the character U+{:04X}", u32::from(bad))
            }
        );
    }
    Ok(())
}

fn is_token(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// `text` with what may be a password cut out, for messages.
fn redact(text: &str) -> String {
    text.split_whitespace()
        .map(|w| {
            if w.starts_with('>') || w.contains(':') {
                "***"
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_the_config_cannot_hold_are_refused_with_the_reason() {
        assert!(check_password("s3cr3t-!@#$%^&*()", "p").is_ok());
        for (bad, says) in [
            ("two words", "U+0020"),
            ("quo\"te", "`\"`"),
            ("back\\slash", "`\\`"),
            ("new\nline", "U+000A"),
            ("", "1 to 256"),
        ] {
            let e = check_password(bad, "the password").unwrap_err().to_string();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }

    #[test]
    fn a_user_given_twice_is_found_among_200000_at_once() {
        let mut users: Vec<AclUser> = (0..200_000)
            .map(|i| AclUser::new(format!("u{i}"), "pw", "~* +@all"))
            .collect();
        let credentials = |users: Vec<AclUser>| Credentials {
            users,
            ..Credentials::default()
        };
        let started = std::time::Instant::now();
        credentials(users.clone()).validate().unwrap();
        users.push(AclUser::new("u123", "pw", "~* +@all"));
        let err = credentials(users).validate().unwrap_err();
        assert!(err.to_string().contains("user `u123` is given twice"), "{err}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn users_parse_from_flags_and_acl_files() {
        let flag = AclUser::parse("reader:pw:~* +@read +cluster|slots").unwrap();
        assert_eq!(flag, AclUser::new("reader", "pw", "~* +@read +cluster|slots"));
        assert!(AclUser::parse("reader").is_err());
        let file =
            parse_acl_file("# readers\nuser reader on >pw ~* +@read\n\nuser writer >w2 on ~app:* +@all\n").unwrap();
        assert_eq!(
            file,
            vec![
                AclUser::new("reader", "pw", "~* +@read"),
                AclUser::new("writer", "w2", "~app:* +@all")
            ]
        );
        let e = parse_acl_file("user reader on ~* +@read\n").unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn configs_set_passwords_users_and_replication_credentials() {
        let password = Credentials {
            password: Some("pw".into()),
            ..Credentials::default()
        };
        let secrets = password.secrets("c", PathBuf::new()).unwrap();
        assert_eq!(secrets.config, "requirepass pw\nmasterauth pw\n");
        assert_eq!((secrets.access.user(), secrets.access.password()), (None, Some("pw")));

        let users = Credentials {
            users: vec![AclUser::new("reader", "r", "~* +@read")],
            default_user_off: true,
            ..Credentials::default()
        };
        let secrets = users.secrets("c", PathBuf::new()).unwrap();
        let harness = secrets.access.password().unwrap().to_owned();
        assert_eq!(harness.len(), 32);
        assert_eq!(
            secrets.config,
            format!(
                "user {HARNESS_USER} on >{harness} ~* +@all\nuser reader on >r ~* +@read\nuser default off\n\
                 masteruser {HARNESS_USER}\nmasterauth {harness}\n"
            )
        );
        assert!(!format!("{secrets:?}").contains(&harness));
    }
}

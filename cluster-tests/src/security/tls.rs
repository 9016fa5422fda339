//! TLS for a cluster: a CA of its own, one certificate every node serves and presents to the others (replication
//! and the cluster bus are TLS too), and one for clients, all made by rcgen; and the server directives that turn
//! TLS on with the plain-text port off.
//!
//! The node certificate names the addresses clients reach nodes at in a pod, `127.0.0.1`, `::1` and `localhost`;
//! the servers do not check each other's names, only that the CA signed them.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Where a node's TLS files lie inside its container.
const CA_PATH: &str = "/cluster-tests/ca.crt";
const CERT_PATH: &str = "/cluster-tests/node.crt";
const KEY_PATH: &str = "/cluster-tests/node.key";

/// The TLS arguments of a `redis-cli` (or `valkey-cli`) in a container holding TLS files at a node's paths (a
/// node's own container, or a client's given [`client_files`]).
pub(crate) const CLI_ARGS: [&str; 7] = ["--tls", "--cacert", CA_PATH, "--cert", CERT_PATH, "--key", KEY_PATH];

/// A client's TLS files, at the paths [`CLI_ARGS`] name: the CA, and its certificate and key.
pub(crate) fn client_files<'a>(ca: &'a str, cert: &'a str, key: &'a str) -> [(&'static str, &'a str); 3] {
    [(CA_PATH, ca), (CERT_PATH, cert), (KEY_PATH, key)]
}

/// Whether the nodes ask clients for a certificate too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ClientAuth {
    /// Any client may connect; it checks the nodes' certificate against the CA.
    None,
    /// Mutual TLS: a client must present a certificate the cluster's CA signed.
    Required,
    /// A client may present a certificate (then one the CA signed) or none (`tls-auth-clients optional`).
    Optional,
}

/// A cluster's TLS material, PEM-encoded.
#[derive(Clone)]
pub(crate) struct Certificates {
    pub(crate) ca: String,
    pub(crate) node_cert: String,
    pub(crate) node_key: String,
    pub(crate) client_cert: String,
    pub(crate) client_key: String,
}

impl Certificates {
    /// A fresh CA for the cluster `name`, and the node and client certificates it signs.
    pub(crate) fn generate(name: &str) -> Result<Self> {
        let failed = |e: rcgen::Error| Error::other(format!("making the TLS certificates of cluster `{name}`: {e}"));
        let ca_key = KeyPair::generate().map_err(failed)?;
        let mut ca = CertificateParams::default();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca.distinguished_name
            .push(DnType::CommonName, format!("cluster-tests CA of {name}"));
        let ca_cert = ca.self_signed(&ca_key).map_err(failed)?;
        let issuer = Issuer::new(ca, ca_key);

        let leaf = |common_name: String, names: Vec<String>, usages: Vec<ExtendedKeyUsagePurpose>| {
            let key = KeyPair::generate()?;
            let mut params = CertificateParams::new(names)?;
            params.distinguished_name.push(DnType::CommonName, common_name);
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
            params.extended_key_usages = usages;
            Ok::<_, rcgen::Error>((params.signed_by(&key, &issuer)?.pem(), key.serialize_pem()))
        };
        // Nodes are clients of each other too (replication, the bus): the node certificate serves both ends.
        let (node_cert, node_key) = leaf(
            format!("{name} node"),
            ["127.0.0.1", "::1", "localhost"].map(String::from).to_vec(),
            vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth],
        )
        .map_err(failed)?;
        let (client_cert, client_key) = leaf(
            format!("{name} client"),
            Vec::new(),
            vec![ExtendedKeyUsagePurpose::ClientAuth],
        )
        .map_err(failed)?;
        Ok(Self {
            ca: ca_cert.pem(),
            node_cert,
            node_key,
            client_cert,
            client_key,
        })
    }

    /// Writes the CA, the node certificate and key and the client certificate and key into `dir` (made if
    /// missing) under the names client test suites look for: `ca.crt`, `redis.crt`, `redis.key`, `client.crt`,
    /// `client.key` (keys mode 0600). Returns the paths written.
    pub(crate) fn write_conventional(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        use std::os::unix::fs::OpenOptionsExt;
        let failed = |path: &Path, e: std::io::Error| Error::other(format!("writing {}: {e}", path.display()));
        std::fs::create_dir_all(dir).map_err(|e| failed(dir, e))?;
        let files = [
            ("ca.crt", &self.ca, 0o644),
            ("redis.crt", &self.node_cert, 0o644),
            ("redis.key", &self.node_key, 0o600),
            ("client.crt", &self.client_cert, 0o644),
            ("client.key", &self.client_key, 0o600),
        ];
        let mut written = Vec::new();
        for (name, text, mode) in files {
            let path = dir.join(name);
            // Written afresh, so the mode is the one given even where an earlier file of that name was not.
            std::fs::remove_file(&path).ok();
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&path)
                .map_err(|e| failed(&path, e))?;
            std::io::Write::write_all(&mut file, text.as_bytes()).map_err(|e| failed(&path, e))?;
            written.push(path);
        }
        Ok(written)
    }

    /// A node's TLS files: path in its container and contents.
    pub(crate) fn node_files(&self) -> [(&'static str, &str); 3] {
        client_files(&self.ca, &self.node_cert, &self.node_key)
    }
}

/// The server config lines that turn TLS on for clients, replication and the bus.
pub(crate) fn server_config(client_auth: ClientAuth) -> String {
    let auth = match client_auth {
        ClientAuth::None => "no",
        ClientAuth::Required => "yes",
        ClientAuth::Optional => "optional",
    };
    format!(
        "tls-cert-file {CERT_PATH}\ntls-key-file {KEY_PATH}\ntls-ca-cert-file {CA_PATH}\ntls-replication yes\n\
         tls-cluster yes\ntls-auth-clients {auth}\n"
    )
}

/// The server arguments of the node listening on `port`: TLS, with a plain-text port beside it or none, or plain
/// text (no TLS directive then, which a server built without TLS would refuse).
pub(crate) fn port_args(port: u16, tls: bool, plain: Option<u16>) -> Vec<String> {
    let port = port.to_string();
    if tls {
        let plain = plain.map_or_else(|| "0".to_owned(), |p| p.to_string());
        vec!["--port".into(), plain, "--tls-port".into(), port]
    } else {
        vec!["--port".into(), port]
    }
}

/// Recognises, in the last words of a node that stopped at start, a server built without TLS.
pub(crate) fn lacks_tls(log: &str) -> bool {
    let log = log.to_ascii_lowercase();
    // "Bad directive or wrong number of arguments ... tls-port" (built without TLS, Redis 6.0), "TLS ... not
    // supported" or a missing TLS connection type (Redis 7.2+, Valkey 8+). Not "Failed to configure TLS" or
    // "Failed listening on port N (tls)": servers with TLS say those of a bad certificate or a port in use.
    log.contains("tls")
        && (log.contains("bad directive")
            || log.contains("not supported")
            || log.contains("unsupported")
            || log.contains("connection type"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_are_pem_and_differ_per_cluster() {
        let a = Certificates::generate("a").unwrap();
        let b = Certificates::generate("b").unwrap();
        for pem in [&a.ca, &a.node_cert, &a.client_cert] {
            assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
        }
        for pem in [&a.node_key, &a.client_key] {
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        }
        assert_ne!(a.ca, b.ca);
        assert_ne!(a.node_key, b.node_key);
    }

    #[test]
    fn a_server_without_tls_is_told_from_other_failures() {
        assert!(lacks_tls(
            "*** FATAL CONFIG FILE ERROR (Redis 6.0.16) ***\n>>> 'tls-port \"7001\"'\nBad directive or wrong number of \
             arguments"
        ));
        assert!(lacks_tls("# Missing implement of connection type tls"));
        assert!(!lacks_tls("# Failed listening on port 7001 (tls), aborting."));
        assert!(!lacks_tls("# Failed to configure TLS. Check logs for more info."));
        assert!(!lacks_tls("# Can't open the append-only file: Permission denied"));
    }

    #[test]
    fn the_plain_port_is_off_with_tls() {
        assert_eq!(port_args(7001, true, None), ["--port", "0", "--tls-port", "7001"]);
        assert_eq!(
            port_args(7001, true, Some(17001)),
            ["--port", "17001", "--tls-port", "7001"]
        );
        assert_eq!(port_args(7001, false, None), ["--port", "7001"]);
        let config = server_config(ClientAuth::None);
        assert!(
            config.contains("tls-replication yes\ntls-cluster yes\ntls-auth-clients no\n"),
            "{config}"
        );
        assert!(server_config(ClientAuth::Required).contains("tls-auth-clients yes\n"));
        assert!(server_config(ClientAuth::Optional).contains("tls-auth-clients optional\n"));
    }
}

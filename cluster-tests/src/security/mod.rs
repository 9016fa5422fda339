//! Credentials: passwords, ACL users, the harness's own user, and the cluster's TLS certificates.

pub(crate) mod credentials;
pub(crate) mod tls;

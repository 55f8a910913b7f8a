//! A throwaway certificate authority and a server certificate for Google's storage and OAuth hosts.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// What the proxy serves and what clients must trust.
pub struct GoogleCertificates {
    pub ca_pem: String,
    pub server_config: Arc<rustls::ServerConfig>,
}

pub const HOSTS: [&str; 3] = ["storage.googleapis.com", "oauth2.googleapis.com", "www.googleapis.com"];

pub fn google_certificates() -> GoogleCertificates {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "parley test CA (throwaway)");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca_params.self_signed(&ca_key).unwrap();

    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf_params = CertificateParams::new(HOSTS.iter().map(|h| h.to_string()).collect::<Vec<_>>()).unwrap();
    leaf_params.distinguished_name.push(DnType::CommonName, HOSTS[0]);
    let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).unwrap();

    let chain: Vec<CertificateDer<'static>> = vec![leaf.der().clone(), ca.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let mut server = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    // The fake behind the proxy speaks HTTP/1.1 only.
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    GoogleCertificates { ca_pem: ca.pem(), server_config: Arc::new(server) }
}

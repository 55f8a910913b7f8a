//! Google Cloud Storage without the internet: a fake of the GCS JSON API and Google's OAuth token endpoint
//! ([`fake`]), reached through a local CONNECT proxy ([`proxy`]) that terminates TLS with certificates for
//! Google's hosts signed by a throwaway CA ([`certs`]). parley, started as a child process with `HTTPS_PROXY`
//! pointing at the proxy and `SSL_CERT_FILE` at the CA, runs the unchanged `cloud-storage` crate against it.

pub mod certs;
pub mod fake;
pub mod proxy;

use std::path::PathBuf;

pub use fake::FakeGcs;

/// The committed test-only service account (a throwaway RSA key).
pub fn service_account_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gcs/service-account.json")
}

/// The fake, the proxy in front of it, and the CA file a client must trust.
pub struct FakeGoogle {
    pub gcs: FakeGcs,
    pub proxy: proxy::ConnectProxy,
    /// Holds the CA file.
    _dir: tempfile::TempDir,
    pub ca_file: PathBuf,
}

impl FakeGoogle {
    pub async fn start() -> FakeGoogle {
        let certs = certs::google_certificates();
        let gcs = FakeGcs::start(&service_account_path()).await;
        let proxy = proxy::ConnectProxy::start(certs.server_config.clone(), gcs.addr).await;
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, &certs.ca_pem).unwrap();
        FakeGoogle { gcs, proxy, _dir: dir, ca_file }
    }

    /// The environment a child process needs to reach the fake as if it were Google.
    pub fn env(&self, bucket: &str) -> Vec<(String, String)> {
        vec![
            ("FIREBASE_STORAGE_BUCKET".into(), bucket.into()),
            ("FIREBASE_SERVICE_ACCOUNT_KEY_PATH".into(), service_account_path().display().to_string()),
            ("HTTPS_PROXY".into(), format!("http://127.0.0.1:{}", self.proxy.port)),
            ("NO_PROXY".into(), "127.0.0.1,localhost".into()),
            ("SSL_CERT_FILE".into(), self.ca_file.display().to_string()),
        ]
    }
}

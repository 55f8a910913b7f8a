//! Google Cloud Storage through the `cloud-storage` crate. The crate would read credentials lazily from
//! process-wide variables (and a `.env` file) and panic on first use without them, so parley builds the client
//! only when a bucket is configured, reads and checks the service-account file at start-up, and supplies
//! access tokens itself ([`ServiceAccountTokens`], a `TokenCache` signing the OAuth JWT with ring).

use std::collections::HashMap;
use std::path::Path;

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde::Deserialize;
use tokio::sync::RwLock;

use super::storage::{RecordingMeta, StorageError, StorageSetupError};

const SCOPE: &str = "https://www.googleapis.com/auth/devstorage.read_write";
const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

/// The fields of a service-account JSON key parley uses.
#[derive(Deserialize)]
struct KeyFile {
    client_email: String,
    private_key: String,
    #[serde(default)]
    token_uri: Option<String>,
}

/// Signs OAuth assertions for one service account and caches the access token.
pub struct ServiceAccountTokens {
    client_email: String,
    token_uri: String,
    key: RsaKeyPair,
    rng: SystemRandom,
    cached: RwLock<Option<(String, u64)>>,
}

impl ServiceAccountTokens {
    /// Reads and checks a service-account key file.
    pub fn from_file(path: &Path) -> Result<ServiceAccountTokens, StorageSetupError> {
        let shown = path.display();
        let text = std::fs::read_to_string(path)
            .map_err(|e| StorageSetupError(format!("cannot read FIREBASE_SERVICE_ACCOUNT_KEY_PATH {shown}: {e}")))?;
        let file: KeyFile = serde_json::from_str(&text).map_err(|e| {
            StorageSetupError(format!("{shown} is not a service-account key (client_email, private_key): {e}"))
        })?;
        let der = pem_body(&file.private_key)
            .ok_or_else(|| StorageSetupError(format!("{shown}: private_key is not a PEM block")))?;
        let key = RsaKeyPair::from_pkcs8(&der)
            .map_err(|e| StorageSetupError(format!("{shown}: private_key is not a usable RSA key: {e}")))?;
        Ok(ServiceAccountTokens {
            client_email: file.client_email,
            token_uri: file.token_uri.unwrap_or_else(|| DEFAULT_TOKEN_URI.to_string()),
            key,
            rng: SystemRandom::new(),
            cached: RwLock::new(None),
        })
    }

    /// The signed JWT assertion for a token request at `now`.
    fn assertion(&self, now: u64) -> cloud_storage::Result<String> {
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let header = b64(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = serde_json::json!({
            "iss": self.client_email, "scope": SCOPE, "aud": self.token_uri, "iat": now, "exp": now + 3600,
        });
        let signing_input = format!("{header}.{}", b64(claims.to_string().as_bytes()));
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &self.rng, signing_input.as_bytes(), &mut signature)
            .map_err(|_| cloud_storage::Error::Other("signing the OAuth assertion failed".into()))?;
        Ok(format!("{signing_input}.{}", b64(&signature)))
    }
}

/// The base64 body of a PEM block.
fn pem_body(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok().filter(|b| !b.is_empty())
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

#[async_trait::async_trait]
impl cloud_storage::TokenCache for ServiceAccountTokens {
    async fn token_and_exp(&self) -> Option<(String, u64)> {
        self.cached.read().await.clone()
    }

    async fn set_token(&self, token: String, exp: u64) -> cloud_storage::Result<()> {
        *self.cached.write().await = Some((token, exp));
        Ok(())
    }

    async fn scope(&self) -> String {
        SCOPE.to_string()
    }

    async fn fetch_token(&self, client: &reqwest::Client) -> cloud_storage::Result<(String, u64)> {
        let issued = now();
        let assertion = self.assertion(issued)?;
        let response = client
            .post(&self.token_uri)
            .form(&[("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", &assertion)])
            .send()
            .await?;
        if !response.status().is_success() {
            // Shaped like Google's own error bodies so `classify` reads the status the same way.
            let error = serde_json::json!({"error": {
                "code": response.status().as_u16(),
                "message": format!("token request refused: {}", response.text().await.unwrap_or_default()),
            }});
            return Err(cloud_storage::Error::Other(error.to_string()));
        }
        let token: TokenResponse = response.json().await?;
        Ok((token.access_token, issued + token.expires_in))
    }
}

/// A bucket and the client that writes to it.
pub struct Gcs {
    bucket: String,
    client: cloud_storage::Client,
}

impl std::fmt::Debug for Gcs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gcs").field("bucket", &self.bucket).finish_non_exhaustive()
    }
}

impl Gcs {
    pub fn new(bucket: &str, credentials: &Path) -> Result<Gcs, StorageSetupError> {
        let tokens = ServiceAccountTokens::from_file(credentials)?;
        Ok(Gcs { bucket: bucket.to_string(), client: cloud_storage::Client::with_cache(tokens) })
    }

    /// Uploads `file` (streamed, not read into memory) as `key`, or `meta.size_bytes` bytes of it from `offset`
    /// (a recording in a lane), then records the metadata on the object.
    pub async fn put(
        &self,
        key: &str,
        file: &Path,
        offset: Option<u64>,
        meta: &RecordingMeta,
    ) -> Result<(), StorageError> {
        use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
        let spool = |e: std::io::Error| StorageError::permanent(format!("spool file: {e}"));
        let mut handle = tokio::fs::File::open(file).await.map_err(spool)?;
        let whole = handle.metadata().await.map(|m| m.len()).map_err(spool)?;
        let (start, length) = match offset {
            Some(offset) => (offset, meta.size_bytes),
            None => (0, whole),
        };
        if start.checked_add(length).is_none_or(|end| end > whole) {
            return Err(StorageError::permanent(format!(
                "spool file: holds {whole} bytes, the recording is {length} from {start}"
            )));
        }
        handle.seek(std::io::SeekFrom::Start(start)).await.map_err(spool)?;
        // 64 KiB reads (the default is 4 KiB): a few system calls per recording, not dozens.
        let body = tokio_util::io::ReaderStream::with_capacity(handle.take(length), 64 * 1024);
        let mut object = self
            .client
            .object()
            .create_streamed(&self.bucket, body, Some(length), key, &meta.content_type)
            .await
            .map_err(classify)?;
        object.metadata = Some(metadata(meta));
        self.client.object().update(&object).await.map_err(classify)?;
        Ok(())
    }

    pub async fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        self.client.object().download(&self.bucket, key).await.map_err(classify)
    }
}

fn metadata(meta: &RecordingMeta) -> HashMap<String, String> {
    let mut m = HashMap::from([
        ("user_id".to_string(), meta.user_id.clone()),
        ("session_id".to_string(), meta.session_id.clone()),
        ("role".to_string(), meta.role.clone()),
        ("turn".to_string(), meta.turn_id.to_string()),
        ("size_bytes".to_string(), meta.size_bytes.to_string()),
        ("content_type".to_string(), meta.content_type.clone()),
        ("uploaded_at".to_string(), chrono::Utc::now().to_rfc3339()),
    ]);
    if let Some(d) = meta.duration_seconds {
        m.insert("duration_seconds".to_string(), format!("{d:.3}"));
    }
    m
}

/// Network trouble, throttling and server errors are worth retrying; refusals (auth, permissions, a missing
/// bucket) are not. The crate reports most HTTP failures as the response body text, which for Google is
/// `{"error":{"code":N,...}}`: the status is read from there.
fn classify(e: cloud_storage::Error) -> StorageError {
    let retry_status = |code: u16| code >= 500 || code == 429 || code == 408;
    let message = e.to_string();
    let transient = match &e {
        cloud_storage::Error::Reqwest(r) => r.status().is_none_or(|s| retry_status(s.as_u16())),
        cloud_storage::Error::Google(g) => retry_status(g.error.code),
        cloud_storage::Error::Other(body) => serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["error"]["code"].as_u64())
            .is_none_or(|code| retry_status(code as u16)),
        _ => false,
    };
    StorageError { transient, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_bodies_decode_and_garbage_does_not() {
        let pem = "-----BEGIN PRIVATE KEY-----\nAAEC\nAwQ=\n-----END PRIVATE KEY-----\n";
        assert_eq!(pem_body(pem), Some(vec![0, 1, 2, 3, 4]));
        assert_eq!(pem_body("-----BEGIN X-----\n-----END X-----"), None);
        assert_eq!(pem_body("not pem at all !!"), None);
    }

    #[test]
    fn a_missing_or_malformed_key_file_is_a_clear_start_up_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = ServiceAccountTokens::from_file(&dir.path().join("nope.json")).err().unwrap();
        assert!(missing.0.contains("cannot read FIREBASE_SERVICE_ACCOUNT_KEY_PATH"), "{missing}");
        let bad = dir.path().join("bad.json");
        std::fs::write(
            &bad,
            r#"{"client_email":"x@y","private_key":"-----BEGIN PRIVATE KEY-----\nAAEC\n-----END PRIVATE KEY-----"}"#,
        )
        .unwrap();
        let err = ServiceAccountTokens::from_file(&bad).err().unwrap();
        assert!(err.0.contains("not a usable RSA key"), "{err}");
    }
}

//! A fake of the parts of Google Cloud Storage parley uses: the OAuth token endpoint (checking the signed JWT
//! assertion against the test service account's key) and the JSON API's media upload, object update and media
//! download, with injectable outages.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine as _;
use serde_json::{Value, json};

/// One stored object.
#[derive(Debug, Clone)]
pub struct StoredObject {
    pub bytes: Vec<u8>,
    pub content_type: String,
    pub metadata: HashMap<String, String>,
}

#[derive(Default)]
struct State {
    objects: HashMap<String, StoredObject>,
    /// Upload requests still to refuse with 503.
    failing_uploads: usize,
    refused_uploads: usize,
    tokens_issued: usize,
    unauthorized: usize,
}

/// The running fake.
pub struct FakeGcs {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    server: actix_web::dev::ServerHandle,
}

const TOKEN: &str = "fake-access-token";

struct Verifier {
    public_key: Vec<u8>,
    client_email: String,
    token_uri: String,
}

impl FakeGcs {
    pub async fn start(service_account: &Path) -> FakeGcs {
        let sa: Value = serde_json::from_str(&std::fs::read_to_string(service_account).unwrap()).unwrap();
        let pem = sa["private_key"].as_str().unwrap();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD.decode(body).unwrap();
        let key = ring::signature::RsaKeyPair::from_pkcs8(&der).unwrap();
        let verifier = Arc::new(Verifier {
            public_key: ring::signature::KeyPair::public_key(&key).as_ref().to_vec(),
            client_email: sa["client_email"].as_str().unwrap().into(),
            token_uri: sa["token_uri"].as_str().unwrap().into(),
        });
        let state: Arc<Mutex<State>> = Arc::default();
        let (s, v) = (state.clone(), verifier.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(s.clone()))
                .app_data(web::Data::new(v.clone()))
                .app_data(web::PayloadConfig::new(64 << 20))
                .route("/token", web::post().to(token))
                .route("/upload/storage/v1/b/{bucket}/o", web::post().to(upload))
                .route("/storage/v1/b/{bucket}/o/{name:.*}", web::put().to(update))
                .route("/storage/v1/b/{bucket}/o/{name:.*}", web::get().to(download))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        FakeGcs { addr, state, server: handle }
    }

    /// Refuses the next `n` uploads with 503.
    pub fn fail_next_uploads(&self, n: usize) {
        self.state.lock().unwrap().failing_uploads = n;
    }

    pub fn objects(&self) -> HashMap<String, StoredObject> {
        self.state.lock().unwrap().objects.clone()
    }

    pub fn refused_uploads(&self) -> usize {
        self.state.lock().unwrap().refused_uploads
    }

    pub fn tokens_issued(&self) -> usize {
        self.state.lock().unwrap().tokens_issued
    }

    pub fn unauthorized_requests(&self) -> usize {
        self.state.lock().unwrap().unauthorized
    }

    pub async fn stop(&self) {
        self.server.stop(false).await;
    }
}

type Shared = web::Data<Arc<Mutex<State>>>;

fn google_error(status: u16, message: &str) -> HttpResponse {
    let body =
        json!({"error": {"code": status, "message": message, "errors": [{"message": message, "reason": "fake"}]}});
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).json(body)
}

/// The OAuth token endpoint: a JWT-bearer grant whose assertion is signed by the service account's key.
async fn token(
    state: Shared,
    verifier: web::Data<Arc<Verifier>>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    if form.get("grant_type").map(String::as_str) != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
        return HttpResponse::BadRequest().json(json!({"error": "unsupported_grant_type"}));
    }
    let Some(assertion) = form.get("assertion") else {
        return HttpResponse::BadRequest().json(json!({"error": "invalid_request"}));
    };
    let parts: Vec<&str> = assertion.split('.').collect();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (Some(claims), Some(signature)) =
        (parts.get(1).and_then(|c| b64.decode(c).ok()), parts.get(2).and_then(|s| b64.decode(s).ok()))
    else {
        return HttpResponse::BadRequest()
            .json(json!({"error": "invalid_grant", "error_description": "malformed JWT"}));
    };
    let signed = format!("{}.{}", parts[0], parts[1]);
    let key =
        ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, &verifier.public_key);
    let claims: Value = serde_json::from_slice(&claims).unwrap_or(Value::Null);
    let valid = key.verify(signed.as_bytes(), &signature).is_ok()
        && claims["iss"] == verifier.client_email.as_str()
        && claims["aud"] == verifier.token_uri.as_str()
        && claims["scope"].as_str().is_some_and(|s| s.contains("devstorage"));
    if !valid {
        return HttpResponse::BadRequest()
            .json(json!({"error": "invalid_grant", "error_description": "bad assertion"}));
    }
    state.lock().unwrap().tokens_issued += 1;
    HttpResponse::Ok().json(json!({"access_token": TOKEN, "expires_in": 3599, "token_type": "Bearer"}))
}

fn authorized(req: &HttpRequest, state: &Shared) -> bool {
    let ok = req.headers().get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {TOKEN}"));
    if !ok {
        state.lock().unwrap().unauthorized += 1;
    }
    ok
}

fn object_json(bucket: &str, name: &str, o: &StoredObject) -> Value {
    let now = chrono::Utc::now().to_rfc3339();
    json!({
        "kind": "storage#object", "id": format!("{bucket}/{name}/1"),
        "selfLink": format!("https://www.googleapis.com/storage/v1/b/{bucket}/o/{name}"),
        "name": name, "bucket": bucket, "generation": "1", "metageneration": "1",
        "contentType": o.content_type, "timeCreated": now, "updated": now, "storageClass": "STANDARD",
        "timeStorageClassUpdated": now, "size": o.bytes.len().to_string(), "md5Hash": "AAAAAAAAAAAAAAAAAAAAAA==",
        "mediaLink": format!("https://storage.googleapis.com/download/storage/v1/b/{bucket}/o/{name}?alt=media"),
        "crc32c": "AAAAAA==", "etag": "CAE=", "metadata": o.metadata,
    })
}

async fn upload(req: HttpRequest, state: Shared, bucket: web::Path<String>, body: web::Bytes) -> HttpResponse {
    if !authorized(&req, &state) {
        return google_error(401, "Invalid Credentials");
    }
    let query: HashMap<String, String> =
        url::form_urlencoded::parse(req.query_string().as_bytes()).into_owned().collect();
    let (Some("media"), Some(name)) = (query.get("uploadType").map(String::as_str), query.get("name")) else {
        return google_error(400, "uploadType=media and name are required");
    };
    let mut s = state.lock().unwrap();
    if s.failing_uploads > 0 {
        s.failing_uploads -= 1;
        s.refused_uploads += 1;
        return google_error(503, "Service Unavailable (fake outage)");
    }
    let content_type = req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let object = StoredObject { bytes: body.to_vec(), content_type, metadata: HashMap::new() };
    let json = object_json(&bucket, name, &object);
    s.objects.insert(name.clone(), object);
    HttpResponse::Ok().json(json)
}

fn decode_name(raw: &str) -> String {
    percent_encoding::percent_decode_str(raw).decode_utf8_lossy().into_owned()
}

async fn update(
    req: HttpRequest,
    state: Shared,
    path: web::Path<(String, String)>,
    body: web::Json<Value>,
) -> HttpResponse {
    if !authorized(&req, &state) {
        return google_error(401, "Invalid Credentials");
    }
    let (bucket, name) = path.into_inner();
    let name = decode_name(&name);
    let mut s = state.lock().unwrap();
    let Some(object) = s.objects.get_mut(&name) else {
        return google_error(404, "No such object");
    };
    if let Some(m) = body["metadata"].as_object() {
        object.metadata = m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect();
    }
    HttpResponse::Ok().json(object_json(&bucket, &name, object))
}

async fn download(req: HttpRequest, state: Shared, path: web::Path<(String, String)>) -> HttpResponse {
    if !authorized(&req, &state) {
        return google_error(401, "Invalid Credentials");
    }
    let name = decode_name(&path.1);
    let s = state.lock().unwrap();
    match s.objects.get(&name) {
        Some(o) if req.query_string().contains("alt=media") => {
            HttpResponse::Ok().content_type(o.content_type.clone()).body(o.bytes.clone())
        }
        Some(o) => HttpResponse::Ok().json(object_json(&path.0, &name, o)),
        None => google_error(404, "No such object"),
    }
}

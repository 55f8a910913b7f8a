//! The web pages in `web/`, compiled into the binary so a release build serves them from anywhere: the client
//! at `/` (web/index.html), its scripts, worklets and styles at `/assets/{name}` (web/assets/), and the status
//! page at `/status`.
//!
//! Caching: every response carries a strong `ETag` (a hash of the file, computed at compile time) and
//! `Cache-Control: no-cache`, so a browser revalidates each load and gets a `304` while the binary is the same.
//! The files reference each other by fixed names, so this is what keeps a new deployment from mixing old and
//! new modules, at the cost of one conditional request per file.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::api_error::ApiError;

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// The client's Content-Security-Policy: nothing but this origin's own files. Recordings (`audioUrl`) may
/// live in a storage bucket, so media may come from any https origin.
const INDEX_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    media-src 'self' blob: https:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
    frame-ancestors 'none'; form-action 'self'";

/// A file served from memory.
#[derive(Debug)]
pub struct Asset {
    /// The file name, as in the URL (`/assets/{name}`).
    pub name: &'static str,
    pub content_type: &'static str,
    /// The file, compiled in.
    pub body: &'static [u8],
    /// FNV-1a of `body`, the ETag.
    pub hash: u64,
}

/// FNV-1a, 64 bits: cheap enough to run at compile time over every asset.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

macro_rules! asset {
    ($name:literal, $content_type:expr, $path:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_bytes!($path),
            hash: fnv1a(include_bytes!($path)),
        }
    };
    ($name:literal, $content_type:expr) => {
        asset!($name, $content_type, concat!("../../web/assets/", $name))
    };
}

const INDEX: Asset = asset!("index.html", HTML, "../../web/index.html");
const STATUS: Asset = asset!("status.html", HTML, "../../web/status.html");

/// Everything under `/assets/`; `web/assets/` holds exactly these files (a test checks).
pub const ASSETS: &[Asset] = &[
    asset!("api.js", JS),
    asset!("app.css", CSS),
    asset!("app.js", JS),
    asset!("audio.js", JS),
    asset!("auth.js", JS),
    asset!("capture-worklet.js", JS),
    asset!("capture.js", JS),
    asset!("connection.js", JS),
    asset!("conversation.js", JS),
    asset!("dispatch.js", JS),
    asset!("dom.js", JS),
    asset!("errors.js", JS),
    asset!("feedback.js", JS),
    asset!("history.js", JS),
    asset!("mp3.js", JS),
    asset!("mse-player.js", JS),
    asset!("pipelines.js", JS),
    asset!("playback-worklet.js", JS),
    asset!("player.js", JS),
    asset!("resampler.js", JS),
    asset!("setup.js", JS),
    asset!("status-figures.js", JS),
    asset!("status.js", JS),
    asset!("ui.js", JS),
];

/// The asset's bytes, or `304 Not Modified` when the browser already holds this version.
fn serve(req: &HttpRequest, asset: &Asset) -> HttpResponse {
    let etag = format!("\"{:016x}\"", asset.hash);
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag || tag.trim() == "*"));
    let mut res = if fresh { HttpResponse::NotModified() } else { HttpResponse::Ok() };
    res.insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-cache")))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")));
    if fresh { res.finish() } else { res.content_type(asset.content_type).body(asset.body) }
}

/// `GET /`: the web client.
pub async fn index(req: HttpRequest) -> HttpResponse {
    let mut res = serve(&req, &INDEX);
    res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(INDEX_CSP));
    res
}

/// `GET /assets/{name}`: the client's scripts, worklets and styles.
pub async fn asset(req: HttpRequest, name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    ASSETS
        .iter()
        .find(|a| a.name == name.as_str())
        .map(|a| serve(&req, a))
        .ok_or_else(|| ApiError::not_found("not_found", format!("no asset {:?}", name.as_str())))
}

/// `GET /status`: live server figures (the voice figures from `/metrics` and `/readyz`, the machine's from
/// `/api/metrics`), refreshed every 5 seconds.
pub async fn status(req: HttpRequest) -> HttpResponse {
    serve(&req, &STATUS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_web_assets_is_served_and_nothing_else() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/web/assets");
        let mut on_disk: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        on_disk.sort();
        let served: Vec<String> = ASSETS.iter().map(|a| a.name.to_string()).collect();
        assert_eq!(served, on_disk, "ASSETS (sorted by name) lists exactly web/assets/");
    }

    #[test]
    fn etags_change_with_the_content() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(fnv1a(b"app.js v1"), fnv1a(b"app.js v2"));
    }
}

//! The web pages in `web/`, compiled into the binary so a release build serves them from anywhere.

use actix_web::HttpResponse;

const STATUS_HTML: &str = include_str!("../../web/status.html");

/// `GET /status`: live server figures, refreshed every 5 seconds from `/api/metrics`.
pub async fn status() -> HttpResponse {
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(STATUS_HTML)
}

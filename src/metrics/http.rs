//! Middleware counting HTTP requests and timing them by route *pattern* (`/api/history`, not the full URL),
//! so label cardinality stays bounded whatever clients request.

use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

use super::Metrics;

/// Records every request in [`Metrics::http_requests_total`] and [`Metrics::http_request_duration_seconds`]
/// (wrap it with `middleware::from_fn`, closing over the metrics).
pub async fn track_requests<B: MessageBody>(
    metrics: Arc<Metrics>,
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    let method = req.method().to_string();
    let started = Instant::now();
    let result = next.call(req).await;
    {
        let m = &metrics;
        let (route, status) = match &result {
            Ok(res) => {
                (res.request().match_pattern().unwrap_or_else(|| "unmatched".to_string()), res.status().as_u16())
            }
            Err(e) => ("unmatched".to_string(), e.as_response_error().status_code().as_u16()),
        };
        m.http_requests_total.with_label_values(&[route.as_str(), method.as_str(), &status.to_string()]).inc();
        m.http_request_duration_seconds.with_label_values(&[route.as_str()]).observe(started.elapsed().as_secs_f64());
    }
    result
}

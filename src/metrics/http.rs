//! Middleware counting HTTP requests and timing them by route *pattern* (`/api/history`, not the full URL),
//! so label cardinality stays bounded whatever clients request.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web::Data;

use super::Metrics;

/// Records every request in [`Metrics::http_requests`] and [`Metrics::http_request_duration`].
pub async fn track_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let metrics = req.app_data::<Data<Metrics>>().cloned();
    let method = req.method().to_string();
    let started = Instant::now();
    let result = next.call(req).await;
    if let Some(m) = metrics {
        let (route, status) = match &result {
            Ok(res) => {
                (res.request().match_pattern().unwrap_or_else(|| "unmatched".to_string()), res.status().as_u16())
            }
            Err(e) => ("unmatched".to_string(), e.as_response_error().status_code().as_u16()),
        };
        m.http_requests.with_label_values(&[route.as_str(), method.as_str(), &status.to_string()]).inc();
        m.http_request_duration.with_label_values(&[route.as_str()]).observe(started.elapsed().as_secs_f64());
    }
    result
}

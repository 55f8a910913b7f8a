//! The page's files as a browser gets them: content types (module scripts and worklets must be JavaScript),
//! the client's Content-Security-Policy, and revalidation with ETags.

use crate::harness::server;

#[actix_web::test]
async fn the_page_and_its_assets_are_served_with_types_csp_and_revalidating_etags() {
    let server = server::start(|_| {}).await;
    let client = awc::Client::new();
    let mut res = client.get(server.url("/")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let header = |res: &awc::ClientResponse<_>, name: &str| {
        res.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
    };
    assert_eq!(header(&res, "content-type"), "text/html; charset=utf-8");
    assert!(header(&res, "content-security-policy").contains("script-src 'self'"));
    let html = String::from_utf8(res.body().await.unwrap().to_vec()).unwrap();
    assert!(html.contains(r#"<script type="module" src="/assets/app.js">"#), "{html}");

    for (path, content_type) in [
        ("/assets/app.js", "text/javascript; charset=utf-8"),
        ("/assets/capture-worklet.js", "text/javascript; charset=utf-8"),
        ("/assets/playback-worklet.js", "text/javascript; charset=utf-8"),
        ("/assets/app.css", "text/css; charset=utf-8"),
    ] {
        let res = client.get(server.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(header(&res, "content-type"), content_type, "{path}");
        assert_eq!(header(&res, "cache-control"), "no-cache", "{path}");
        let etag = header(&res, "etag");
        assert!(etag.starts_with('"') && etag.len() == 18, "{path}: {etag}");
        let again = client.get(server.url(path)).insert_header(("if-none-match", etag.as_str())).send().await.unwrap();
        assert_eq!(again.status(), 304, "{path} revalidates");
    }
    let (status, body) = server.get_json("/assets/missing.js").await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    let (status, _) = server.get_json("/assets/..%2Fstatus.html").await;
    assert_eq!(status, 404, "only listed files are served");
    server.stop().await;
}

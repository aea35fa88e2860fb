//! The dashboard: one HTML page, one stylesheet and one script, compiled into the binary (no
//! CDN, no build step) and served at `/`, `/dashboard.css` and `/dashboard.js`. The page talks
//! to the `/api` on the same port with Basic credentials it keeps in `sessionStorage`.
//! Every file goes out with a strict Content-Security-Policy (no inline script or style) and
//! `nosniff`.

use warp::Filter;
use warp::http::{HeaderValue, header};
use warp::reply::Response;

/// What the dashboard's files may load: only themselves (and `data:` images).
pub const CSP: &str =
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'";

/// The header the page sends with every API request; a 401 to such a request comes without
/// `WWW-Authenticate`, so the browser shows the page's login form rather than its own dialog.
pub const SCRIPT_HEADER: &str = "x-requested-with";

const FILES: &[(&str, &str, &str)] = &[
    ("", include_str!("../static/index.html"), "text/html; charset=utf-8"),
    ("dashboard.js", include_str!("../static/dashboard.js"), "text/javascript; charset=utf-8"),
    ("dashboard.css", include_str!("../static/dashboard.css"), "text/css; charset=utf-8"),
];

/// The body and content type of the file at `path` (without its leading `/`).
pub fn file(path: &str) -> Option<(&'static str, &'static str)> {
    let path = if path == "index.html" { "" } else { path };
    FILES.iter().find(|(name, _, _)| *name == path).map(|(_, body, mime)| (*body, *mime))
}

/// GET (or HEAD) of one of the dashboard's files; any other path is left to the next filter.
pub fn files() -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::get().or(warp::head()).unify().and(warp::path::full()).and_then(|path: warp::path::FullPath| async move {
        let (body, mime) = file(path.as_str().trim_start_matches('/')).ok_or_else(warp::reject::not_found)?;
        let mut resp = Response::new(body.into());
        let headers = resp.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        Ok::<_, warp::Rejection>(resp)
    })
}

/// Drop the Basic challenge from a 401 answered to the page's own script.
pub fn without_challenge(from_script: Option<String>, mut resp: Response) -> Response {
    if from_script.is_some_and(|v| v.eq_ignore_ascii_case("XMLHttpRequest")) {
        resp.headers_mut().remove(header::WWW_AUTHENTICATE);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_by_path() {
        let (html, mime) = file("").unwrap();
        assert!(html.contains("dashboard.js") && mime.starts_with("text/html"));
        assert_eq!(file("index.html").unwrap().1, mime);
        assert!(file("dashboard.js").unwrap().1.starts_with("text/javascript"));
        assert!(file("dashboard.css").unwrap().1.starts_with("text/css"));
        assert!(file("api").is_none() && file("../Cargo.toml").is_none());
    }

    #[tokio::test]
    async fn served_beside_other_routes_with_their_headers() {
        let other = warp::path("api").map(|| Response::new("api".into()));
        let both = other.or(files()).unify();
        for path in ["/", "/index.html", "/dashboard.js", "/dashboard.css"] {
            let resp = warp::test::request().method("GET").path(path).reply(&both).await;
            assert_eq!(resp.status(), 200, "{path}");
            assert_eq!(resp.headers()[header::CONTENT_SECURITY_POLICY], CSP);
            assert_eq!(resp.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        }
        let resp = warp::test::request().method("GET").path("/api").reply(&both).await;
        assert_eq!(resp.body().as_ref(), b"api");
        let resp = warp::test::request().method("POST").path("/").reply(&both).await;
        assert_ne!(resp.status(), 200);
        let resp = warp::test::request().method("GET").path("/nothing").reply(&both).await;
        assert_eq!(resp.status(), 404);
    }

    #[test]
    fn the_challenge_is_dropped_for_the_page_only() {
        let challenged = || {
            let mut resp = Response::new("".into());
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
            resp
        };
        let resp = without_challenge(Some("XMLHttpRequest".into()), challenged());
        assert!(resp.headers().get(header::WWW_AUTHENTICATE).is_none());
        let resp = without_challenge(None, challenged());
        assert!(resp.headers().get(header::WWW_AUTHENTICATE).is_some());
    }

    #[test]
    fn the_page_needs_no_unsafe_inline() {
        let (html, _) = file("").unwrap();
        for bad in ["<style", "style=", "<script>", "javascript:"] {
            assert!(!html.contains(bad), "index.html contains {bad:?}");
        }
        // no inline event handler attribute (` onclick=` and the like)
        let handler = html.split(" on").skip(1).any(|rest| {
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
            !name.is_empty() && rest[name.len()..].starts_with('=')
        });
        assert!(!handler, "index.html has an inline event handler");
        let (js, _) = file("dashboard.js").unwrap();
        assert!(!js.contains("innerHTML") && !js.contains("alert(") && !js.contains("confirm("));
    }
}

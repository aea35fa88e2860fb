//! The UI, compiled into the binary (a LAN may have no internet: no CDN).

const FILES: &[(&str, &str, &str)] = &[
    ("index.html", include_str!("../static/index.html"), "text/html; charset=utf-8"),
    ("app.js", include_str!("../static/app.js"), "text/javascript; charset=utf-8"),
    ("files.js", include_str!("../static/files.js"), "text/javascript; charset=utf-8"),
    ("markdown.js", include_str!("../static/markdown.js"), "text/javascript; charset=utf-8"),
    ("style.css", include_str!("../static/style.css"), "text/css; charset=utf-8"),
    ("favicon.svg", include_str!("../static/favicon.svg"), "image/svg+xml"),
    // marked (MIT) and DOMPurify (Apache-2.0 / MPL-2.0), vendored: see static/vendor/*LICENSE*
    ("vendor/marked.umd.js", include_str!("../static/vendor/marked.umd.js"), "text/javascript; charset=utf-8"),
    ("vendor/purify.min.js", include_str!("../static/vendor/purify.min.js"), "text/javascript; charset=utf-8"),
];

/// The body and content type of a static file.
pub fn get(path: &str) -> Option<(&'static str, &'static str)> {
    FILES.iter().find(|(name, _, _)| *name == path).map(|(_, body, mime)| (*body, *mime))
}

//! Shared files: what an upload is called and how a download is served.
//!
//! `FileMeta` is what the room message and the files stream record of one upload; the
//! functions below clean what the browser sends (a name, a media type) and decide how the
//! bytes are served back: an image the browser can show (PNG, JPEG, GIF, WebP, checked by its
//! first bytes) inline, everything else (SVG included, which can carry script) as an
//! attachment. `Transfers` caps the uploads and downloads a front end holds in memory at once.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// Longest file name kept, in bytes (a longer one is cut on a character boundary).
pub const MAX_NAME_BYTES: usize = 200;
/// Uploads a front end reads and stores at once (each holds up to the size limit in memory).
pub const CONCURRENT_UPLOADS: usize = 4;
/// Downloads a front end reads from the broker and sends at once.
pub const CONCURRENT_DOWNLOADS: usize = 8;

/// One shared file, as the room message refers to it (`file` in its JSON body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    /// The file's id, also the id of the room message that shows it.
    pub id: String,
    pub name: String,
    /// Its media type, as the uploader's browser named it (cleaned).
    #[serde(rename = "type")]
    pub content_type: String,
    /// Bytes.
    pub size: u64,
    /// Where it is in the room's files stream.
    pub offset: u64,
}

/// The name to keep for an uploaded file: its last path component, without control
/// characters, at most [`MAX_NAME_BYTES`]; an empty one is refused.
pub fn clean_name(raw: &str) -> Result<String, ApiError> {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut name: String = last.chars().filter(|c| !c.is_control()).collect::<String>().trim().to_owned();
    if name.len() > MAX_NAME_BYTES {
        let mut cut = MAX_NAME_BYTES;
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        name.truncate(cut);
    }
    if name.is_empty() || name == "." || name == ".." {
        return Err(ApiError::Unprocessable("the file needs a name".into()));
    }
    Ok(name)
}

/// A media type as `type/subtype` in lower case (parameters dropped), or
/// `application/octet-stream` for anything else.
pub fn clean_type(raw: Option<&str>) -> String {
    let essence = raw.unwrap_or_default().split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let token = |s: &str| {
        !s.is_empty() && s.len() <= 63 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    match essence.split_once('/') {
        Some((t, s)) if token(t) && token(s) => essence,
        _ => "application/octet-stream".to_owned(),
    }
}

/// The image type the browser may show inline, when `content_type` names one and `bytes`
/// start as that format does; None for everything else (SVG included: it can run script).
pub fn inline_image(content_type: &str, bytes: &[u8]) -> Option<&'static str> {
    let (ty, magic): (&'static str, &[&[u8]]) = match content_type {
        "image/png" => ("image/png", &[b"\x89PNG\r\n\x1a\n"]),
        "image/jpeg" => ("image/jpeg", &[b"\xff\xd8\xff"]),
        "image/gif" => ("image/gif", &[b"GIF87a", b"GIF89a"]),
        "image/webp" => {
            return (bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP").then_some("image/webp");
        }
        _ => return None,
    };
    magic.iter().any(|m| bytes.starts_with(m)).then_some(ty)
}

/// A `Content-Disposition` value: `inline` or `attachment`, with the name as an ASCII fallback
/// and in full as RFC 8187 `filename*`.
pub fn disposition(name: &str, inline: bool) -> String {
    let kind = if inline { "inline" } else { "attachment" };
    let fallback: String =
        name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect();
    let mut encoded = String::with_capacity(name.len() * 3);
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("{kind}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// How many uploads and downloads this front end serves at once: each holds a whole file in
/// memory, so these caps bound the memory files can take (a request over the cap waits its
/// turn before its body is read).
#[derive(Debug)]
pub struct Transfers {
    uploads: Arc<Semaphore>,
    downloads: Arc<Semaphore>,
}

impl Default for Transfers {
    fn default() -> Self {
        Transfers {
            uploads: Arc::new(Semaphore::new(CONCURRENT_UPLOADS)),
            downloads: Arc::new(Semaphore::new(CONCURRENT_DOWNLOADS)),
        }
    }
}

impl Transfers {
    pub async fn upload(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.uploads.clone().acquire_owned().await.map_err(|_| ApiError::Internal("uploads closed".into()))
    }

    pub async fn download(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.downloads.clone().acquire_owned().await.map_err(|_| ApiError::Internal("downloads closed".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_paths_and_control_characters() {
        assert_eq!(clean_name("C:\\Users\\me\\photo.png").ok().as_deref(), Some("photo.png"));
        assert_eq!(clean_name("../../etc/passwd").ok().as_deref(), Some("passwd"));
        assert_eq!(clean_name("a\u{0}b\nc.txt").ok().as_deref(), Some("abc.txt"));
        assert!(clean_name("  ").is_err());
        assert!(clean_name("dir/").is_err());
        assert!(clean_name("..").is_err());
        let long = "é".repeat(150);
        let cut = clean_name(&long).unwrap_or_default();
        assert!(cut.len() <= MAX_NAME_BYTES && cut.chars().all(|c| c == 'é'));
    }

    #[test]
    fn types_are_cleaned() {
        assert_eq!(clean_type(Some("Image/PNG; charset=x")), "image/png");
        assert_eq!(clean_type(Some("text/html")), "text/html");
        assert_eq!(clean_type(Some("nonsense")), "application/octet-stream");
        assert_eq!(clean_type(Some("a/b\r\nx: y")), "application/octet-stream");
        assert_eq!(clean_type(None), "application/octet-stream");
    }

    #[test]
    fn only_real_raster_images_are_inline() {
        assert_eq!(inline_image("image/png", b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(inline_image("image/png", b"<html><script>"), None);
        assert_eq!(inline_image("image/gif", b"GIF89a.."), Some("image/gif"));
        assert_eq!(inline_image("image/webp", b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(inline_image("image/svg+xml", b"<svg xmlns='http://www.w3.org/2000/svg'/>"), None);
        assert_eq!(inline_image("text/html", b"\x89PNG\r\n\x1a\n"), None);
    }

    #[test]
    fn dispositions_quote_safely() {
        assert_eq!(disposition("a b.png", true), "inline; filename=\"a b.png\"; filename*=UTF-8''a%20b.png");
        assert_eq!(disposition("x\".svg", false), "attachment; filename=\"x_.svg\"; filename*=UTF-8''x%22.svg");
        assert!(disposition("été.txt", false).ends_with("UTF-8''%C3%A9t%C3%A9.txt"));
    }
}

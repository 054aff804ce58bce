//! `--web DIR`: a built web page (the collaborative editor) served on the relay's port.

use std::path::{Path, PathBuf};

use http_body_util::Full;
use hyper::{
    Response, StatusCode,
    body::Bytes,
    header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue},
};

/// A folder of static files answered for plain `GET`s: `/` and paths without an extension
/// (the page's own routes) get `index.html`; nothing outside the folder, and no hidden file,
/// is ever read.
#[derive(Debug, Clone)]
pub struct WebRoot {
    folder: PathBuf,
}

impl WebRoot {
    /// Serves `folder`, which must hold an `index.html` (checked here, so that a wrong path
    /// fails at start rather than on the first visit).
    pub fn new(folder: impl Into<PathBuf>) -> std::io::Result<Self> {
        let folder = folder.into();
        let index = folder.join("index.html");
        if !index.is_file() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "{} has no index.html (build the page first)",
                    folder.display()
                ),
            ));
        }
        Ok(Self { folder })
    }

    /// The file for a request `path`, or `None` if there is none (a 404).
    pub async fn answer(&self, path: &str) -> Option<Response<Full<Bytes>>> {
        let file = self.file_for(path)?;
        let bytes = tokio::fs::read(&file).await.ok()?;
        let mut response = Response::new(Full::new(Bytes::from(bytes)));
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type(&file)));
        // Vite names assets by their hash: they never change. The page itself may.
        let cache = if path.starts_with("/assets/") {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
        *response.status_mut() = StatusCode::OK;
        Some(response)
    }

    /// The file a path names inside the folder; `None` for `..`, hidden or empty segments.
    fn file_for(&self, path: &str) -> Option<PathBuf> {
        let mut file = self.folder.clone();
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        for segment in &segments {
            if segment.starts_with('.') || segment.contains('\\') || segment.contains('%') {
                return None;
            }
            file.push(segment);
        }
        let is_route = segments.last().is_none_or(|last| !last.contains('.'));
        if is_route {
            return Some(self.folder.join("index.html"));
        }
        Some(file)
    }
}

/// The content type for a file, by its extension.
fn content_type(file: &Path) -> &'static str {
    match file
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
    {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "wasm" => "application/wasm",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_folder_and_routes_get_the_page() {
        let root = WebRoot {
            folder: PathBuf::from("/srv/page"),
        };
        let file = |path: &str| root.file_for(path).map(|f| f.display().to_string());
        assert_eq!(file("/").as_deref(), Some("/srv/page/index.html"));
        assert_eq!(file("/doc/123").as_deref(), Some("/srv/page/index.html"));
        assert_eq!(
            file("/assets/app.js").as_deref(),
            Some("/srv/page/assets/app.js")
        );
        for outside in [
            "/../etc/passwd",
            "/assets/../../x.js",
            "/.env",
            "/a%2e%2e/x.js",
            "/a\\b.js",
        ] {
            assert_eq!(file(outside), None, "{outside}");
        }
    }

    #[test]
    fn wasm_is_served_as_wasm() {
        assert_eq!(content_type(Path::new("a/b.wasm")), "application/wasm");
        assert_eq!(
            content_type(Path::new("index.html")),
            "text/html; charset=utf-8"
        );
    }
}

//! The HTTP boot server: static files from `[deploy] http_root` (iPXE
//! scripts, kernels, ramdisks, images for agents), GET and HEAD, single
//! byte ranges, no directory listings, nothing outside the root.

use std::net::TcpListener;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Maps a request path to a file under `root`: `None` when it is not a
/// regular file inside the root (missing, a directory, or escaping).
pub fn resolve(root: &Path, request_path: &str) -> Option<PathBuf> {
    let decoded = percent_encoding::percent_decode_str(request_path)
        .decode_utf8()
        .ok()?
        .to_string();
    if decoded.contains('\0') || decoded.contains('\\') {
        return None;
    }
    let mut path = root.to_path_buf();
    for component in Path::new(decoded.trim_start_matches('/')).components() {
        match component {
            Component::Normal(part) => path.push(part),
            Component::CurDir => {}
            _ => return None,
        }
    }
    let canonical_root = root.canonicalize().ok()?;
    let canonical = path.canonicalize().ok()?;
    (canonical.starts_with(&canonical_root) && canonical.is_file()).then_some(canonical)
}

/// What a `Range` header asks of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No range (or one this server ignores): the whole file.
    Whole,
    /// Bytes `start..=end`.
    Part(u64, u64),
    /// Outside the file: 416.
    Unsatisfiable,
}

/// Interprets a `Range: bytes=…` header against a file of `size` bytes.
pub fn parse_range(value: Option<&str>, size: u64) -> RangeRequest {
    match parse_range_inner(value, size) {
        Ok(None) => RangeRequest::Whole,
        Ok(Some((start, end))) => RangeRequest::Part(start, end),
        Err(Unsatisfiable) => RangeRequest::Unsatisfiable,
    }
}

struct Unsatisfiable;

fn parse_range_inner(value: Option<&str>, size: u64) -> Result<Option<(u64, u64)>, Unsatisfiable> {
    let Some(value) = value else {
        return Ok(None);
    };
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    // Several ranges would need multipart replies: serve the whole file.
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((start, end)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let (start, end) = (start.trim(), end.trim());
    if start.is_empty() {
        let Ok(suffix) = end.parse::<u64>() else {
            return Ok(None);
        };
        if suffix == 0 || size == 0 {
            return Err(Unsatisfiable);
        }
        let len = suffix.min(size);
        return Ok(Some((size - len, size - 1)));
    }
    let Ok(start) = start.parse::<u64>() else {
        return Ok(None);
    };
    if start >= size {
        return Err(Unsatisfiable);
    }
    let end = if end.is_empty() {
        size - 1
    } else {
        match end.parse::<u64>() {
            Ok(end) if end >= start => end.min(size - 1),
            _ => return Ok(None),
        }
    };
    Ok(Some((start, end)))
}

const CHUNK: usize = 256 * 1024;

async fn handle(req: HttpRequest, root: web::Data<Arc<PathBuf>>) -> HttpResponse {
    let head = req.method() == actix_web::http::Method::HEAD;
    if req.method() != actix_web::http::Method::GET && !head {
        return HttpResponse::MethodNotAllowed()
            .insert_header((header::ALLOW, "GET, HEAD"))
            .finish();
    }
    let Some(path) = resolve(&root, req.path()) else {
        return HttpResponse::NotFound()
            .content_type("text/plain")
            .body("Not Found\n");
    };
    let Ok(mut file) = tokio::fs::File::open(&path).await else {
        return HttpResponse::NotFound()
            .content_type("text/plain")
            .body("Not Found\n");
    };
    let size = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    let range = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok());
    let (status, start, end) = match parse_range(range, size) {
        RangeRequest::Unsatisfiable => {
            return HttpResponse::build(StatusCode::RANGE_NOT_SATISFIABLE)
                .insert_header((header::CONTENT_RANGE, format!("bytes */{size}")))
                .finish();
        }
        RangeRequest::Part(start, end) => (StatusCode::PARTIAL_CONTENT, start, end),
        RangeRequest::Whole => (StatusCode::OK, 0, size.saturating_sub(1)),
    };
    let length = if size == 0 { 0 } else { end - start + 1 };
    let mut builder = HttpResponse::build(status);
    builder
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header((header::CONTENT_TYPE, "application/octet-stream"));
    if status == StatusCode::PARTIAL_CONTENT {
        builder.insert_header((header::CONTENT_RANGE, format!("bytes {start}-{end}/{size}")));
    }
    if head {
        // The body is never sent for HEAD; its declared size gives the
        // Content-Length.
        let empty = futures::stream::empty::<Result<web::Bytes, std::io::Error>>();
        return builder.no_chunking(length).streaming(empty);
    }
    if start > 0 && file.seek(std::io::SeekFrom::Start(start)).await.is_err() {
        return HttpResponse::InternalServerError().finish();
    }
    let stream = futures::stream::unfold((file, length), |(mut file, left)| async move {
        if left == 0 {
            return None;
        }
        let want = usize::try_from(left).map_or(CHUNK, |l| l.min(CHUNK));
        let mut buf = vec![0u8; want];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((
                    Ok::<_, std::io::Error>(web::Bytes::from(buf)),
                    (file, left - n as u64),
                ))
            }
            Err(err) => Some((Err(err), (file, 0))),
        }
    });
    builder.no_chunking(length).streaming(stream.boxed_local())
}

/// Serves `root` on `listener` until the returned server is stopped.
pub fn serve(listener: TcpListener, root: PathBuf) -> std::io::Result<actix_web::dev::Server> {
    let root = web::Data::new(Arc::new(root));
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(root.clone())
            .default_service(web::to(handle))
    })
    .workers(2)
    .shutdown_timeout(5)
    .disable_signals()
    .listen(listener)?
    .run();
    Ok(server)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeRequest::*;
        assert_eq!(parse_range(None, 10), Whole);
        assert_eq!(parse_range(Some("bytes=0-3"), 10), Part(0, 3));
        assert_eq!(parse_range(Some("bytes=5-"), 10), Part(5, 9));
        assert_eq!(parse_range(Some("bytes=-4"), 10), Part(6, 9));
        assert_eq!(parse_range(Some("bytes=8-100"), 10), Part(8, 9));
        assert_eq!(parse_range(Some("bytes=10-"), 10), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-1,3-4"), 10), Whole);
        assert_eq!(parse_range(Some("items=0-1"), 10), Whole);
    }

    #[test]
    fn resolve_stays_inside() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("d")).expect("mkdir");
        std::fs::write(root.join("d/f"), b"x").expect("write");
        std::fs::write(dir.path().join("outside"), b"x").expect("write");
        assert!(resolve(&root, "/d/f").is_some());
        assert!(resolve(&root, "/d/%66").is_some());
        assert!(resolve(&root, "/d").is_none());
        assert!(resolve(&root, "/../outside").is_none());
        assert!(resolve(&root, "/d/%2e%2e/%2e%2e/outside").is_none());
    }
}

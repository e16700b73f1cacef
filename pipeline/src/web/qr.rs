//! The QR code of an enterprise's public page, as PNG and SVG for the enterprise to print.
//! Only a published colour code gets one (404 otherwise); that takes one query, not the
//! page's two.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use qrcode::{EcLevel, QrCode};

use super::api::published_page;
use super::{Failure, Form, Shared, WebError};

/// The QR code of `url`, with medium error correction (it survives a smudge).
fn code(url: &str) -> Result<QrCode, WebError> {
    QrCode::with_error_correction_level(url.as_bytes(), EcLevel::M)
        .map_err(|e| WebError::Qr(e.to_string()))
}

/// `url`'s QR code as a PNG of at least 360 × 360 pixels, with its quiet zone.
pub fn png_of(url: &str) -> Result<Vec<u8>, WebError> {
    let img = code(url)?
        .render::<image::Luma<u8>>()
        .min_dimensions(360, 360)
        .build();
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| WebError::Qr(e.to_string()))?;
    Ok(out.into_inner())
}

/// `url`'s QR code as an SVG document.
pub fn svg_of(url: &str) -> Result<String, WebError> {
    Ok(code(url)?
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(240, 240)
        .build())
}

fn image(content_type: &'static str, name: String, body: impl IntoResponse) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CACHE_CONTROL, "public, max-age=3600".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// The QR code of the public page `raw` names, drawn by `draw`, as a file `{uscc}-qr.{ext}`.
async fn qr<B: IntoResponse>(
    app: &Shared,
    raw: &str,
    (ext, content_type): (&str, &'static str),
    draw: fn(&str) -> Result<B, WebError>,
) -> Result<Response, Failure> {
    let page = |e| Failure(e, Form::Html);
    let (uscc, url) = published_page(app, raw).await.map_err(page)?;
    let body = draw(&url).map_err(page)?;
    Ok(image(content_type, format!("{uscc}-qr.{ext}"), body))
}

/// `/c/{uscc}/qr.png`.
pub async fn png(State(app): State<Shared>, Path(raw): Path<String>) -> Result<Response, Failure> {
    qr(&app, &raw, ("png", "image/png"), png_of).await
}

/// `/c/{uscc}/qr.svg`.
pub async fn svg(State(app): State<Shared>, Path(raw): Path<String>) -> Result<Response, Failure> {
    qr(&app, &raw, ("svg", "image/svg+xml"), svg_of).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_and_svg_hold_a_code() {
        let url = "https://credit.example.gov.cn/c/91330106MA2AB3CD4Y";
        let png = png_of(url).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let img = image::load_from_memory(&png).unwrap();
        assert!(img.width() >= 360 && img.width() == img.height());
        let svg = svg_of(url).unwrap();
        assert!(svg.contains("<svg") && svg.contains("<path"), "{svg}");
    }
}

//! The web console's static assets (plain HTML, CSS and JavaScript under
//! `crates/strom-broker/console/`), built into the binary: no CDN, no build step, works
//! offline. The page talks to the JSON API under `/api/`; `charts.js` draws the Charts page
//! as inline SVG from `/api/history`.

use bytes::Bytes;
use hyper::StatusCode;

use super::{response, HttpError, HttpResponse};

const INDEX_HTML: &str = include_str!("../../console/index.html");
const APP_JS: &str = include_str!("../../console/app.js");
const CHARTS_JS: &str = include_str!("../../console/charts.js");
const SCHEMAS_JS: &str = include_str!("../../console/schemas.js");
const APP_CSS: &str = include_str!("../../console/app.css");

pub fn index() -> HttpResponse {
    response(
        StatusCode::OK,
        "text/html; charset=utf-8",
        Bytes::from_static(INDEX_HTML.as_bytes()),
    )
}

pub fn asset(file: &str) -> Result<HttpResponse, HttpError> {
    let (content_type, body) = match file {
        "app.js" => ("text/javascript; charset=utf-8", APP_JS),
        "charts.js" => ("text/javascript; charset=utf-8", CHARTS_JS),
        "schemas.js" => ("text/javascript; charset=utf-8", SCHEMAS_JS),
        "app.css" => ("text/css; charset=utf-8", APP_CSS),
        _ => return Err(HttpError::not_found(format!("no console file `{file}`"))),
    };
    Ok(response(
        StatusCode::OK,
        content_type,
        Bytes::from_static(body.as_bytes()),
    ))
}

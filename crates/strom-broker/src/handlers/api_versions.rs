//! ApiVersions: the versions of every API this broker serves.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use strom_protocol::versions::SUPPORTED_APIS;
use strom_protocol::ErrorCode;

use super::{respond, Outcome};

fn api_keys() -> Vec<ApiVersion> {
    SUPPORTED_APIS
        .iter()
        .map(|(key, min, max)| {
            ApiVersion::default()
                .with_api_key(*key as i16)
                .with_min_version(*min)
                .with_max_version(*max)
        })
        .collect()
}

pub fn handle(_request: &ApiVersionsRequest, _version: i16) -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(0)
        .with_api_keys(api_keys())
}

/// A client asked for an ApiVersions version we do not serve: answer in the v0 format with
/// UNSUPPORTED_VERSION and our list, so it can retry with a version we know.
pub fn unsupported_version(correlation_id: i32) -> Outcome {
    let response = ApiVersionsResponse::default()
        .with_error_code(ErrorCode::UnsupportedVersion.code())
        .with_api_keys(api_keys());
    respond(ApiKey::ApiVersions, 0, correlation_id, &response)
}

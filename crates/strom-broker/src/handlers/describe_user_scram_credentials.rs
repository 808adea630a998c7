//! DescribeUserScramCredentials: which users have SCRAM credentials, with mechanism and
//! iteration count (never the keys).

use std::sync::Arc;

use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;
use strom_protocol::ErrorCode;

use crate::state::Broker;

pub fn handle(
    broker: &Arc<Broker>,
    request: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    let users = broker.image().scram_users();
    let result = |user: &str| {
        let base = DescribeUserScramCredentialsResult::default()
            .with_user(StrBytes::from_string(user.to_string()));
        match users.get(user) {
            Some(infos) => base.with_credential_infos(
                infos
                    .iter()
                    .map(|(mechanism, iterations)| {
                        CredentialInfo::default()
                            .with_mechanism(*mechanism)
                            .with_iterations(*iterations)
                    })
                    .collect(),
            ),
            None => base
                .with_error_code(ErrorCode::ResourceNotFound.code())
                .with_error_message(Some(StrBytes::from_string(format!(
                    "Attempt to describe a user credential that does not exist: {user}"
                )))),
        }
    };
    let results = match request.users {
        None => users.keys().map(|u| result(u)).collect(),
        Some(wanted) if wanted.is_empty() => users.keys().map(|u| result(u)).collect(),
        Some(wanted) => {
            let mut seen = std::collections::HashSet::new();
            wanted
                .iter()
                .map(|u| {
                    let name = u.name.to_string();
                    if !seen.insert(name.clone()) {
                        return DescribeUserScramCredentialsResult::default()
                            .with_user(StrBytes::from_string(name))
                            .with_error_code(ErrorCode::DuplicateResource.code());
                    }
                    result(&name)
                })
                .collect()
        }
    };
    DescribeUserScramCredentialsResponse::default().with_results(results)
}

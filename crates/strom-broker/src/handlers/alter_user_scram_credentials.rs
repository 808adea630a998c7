//! AlterUserScramCredentials: add, replace and remove SCRAM credentials. Clients send the
//! salted password (never the password); the broker derives and stores the RFC 5802 keys.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;
use strom_controller::MetadataRecord;
use strom_protocol::ErrorCode;
use tracing::warn;

use crate::sasl::hex;
use crate::sasl::scram::{ScramCredential, ScramMechanism, ITERATIONS_MAX, ITERATIONS_MIN};
use crate::state::Broker;

pub async fn handle(
    broker: &Arc<Broker>,
    request: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    let image = broker.image();
    // One result per user; the first error for a user wins and drops all its changes.
    let mut errors: BTreeMap<String, (ErrorCode, String)> = BTreeMap::new();
    let mut count: HashMap<(String, i8), usize> = HashMap::new();
    for (user, mechanism) in request
        .deletions
        .iter()
        .map(|d| (d.name.to_string(), d.mechanism))
        .chain(
            request
                .upsertions
                .iter()
                .map(|u| (u.name.to_string(), u.mechanism)),
        )
    {
        *count.entry((user, mechanism)).or_default() += 1;
    }
    let mut records = Vec::new();
    let mut users: Vec<String> = Vec::new();
    let fail = |errors: &mut BTreeMap<String, (ErrorCode, String)>,
                user: &str,
                code: ErrorCode,
                message: String| {
        errors.entry(user.to_string()).or_insert((code, message));
    };
    for deletion in &request.deletions {
        let user = deletion.name.to_string();
        users.push(user.clone());
        if user.is_empty() {
            fail(
                &mut errors,
                &user,
                ErrorCode::UnacceptableCredential,
                "Username must not be empty".into(),
            );
        } else if ScramMechanism::from_code(deletion.mechanism).is_none() {
            fail(
                &mut errors,
                &user,
                ErrorCode::UnsupportedSaslMechanism,
                format!("Unknown SCRAM mechanism {}", deletion.mechanism),
            );
        } else if count[&(user.clone(), deletion.mechanism)] > 1 {
            fail(
                &mut errors,
                &user,
                ErrorCode::DuplicateResource,
                "A user credential cannot be altered twice in the same request".into(),
            );
        } else if image.scram_credential(&user, deletion.mechanism).is_none() {
            fail(
                &mut errors,
                &user,
                ErrorCode::ResourceNotFound,
                "Attempt to delete a user credential that does not exist".into(),
            );
        } else {
            records.push(MetadataRecord::RemoveUserScramCredential {
                user: user.clone(),
                mechanism: deletion.mechanism,
            });
        }
    }
    for upsertion in &request.upsertions {
        let user = upsertion.name.to_string();
        users.push(user.clone());
        let Some(mechanism) = ScramMechanism::from_code(upsertion.mechanism) else {
            fail(
                &mut errors,
                &user,
                ErrorCode::UnsupportedSaslMechanism,
                format!("Unknown SCRAM mechanism {}", upsertion.mechanism),
            );
            continue;
        };
        if user.is_empty() {
            fail(
                &mut errors,
                &user,
                ErrorCode::UnacceptableCredential,
                "Username must not be empty".into(),
            );
        } else if count[&(user.clone(), upsertion.mechanism)] > 1 {
            fail(
                &mut errors,
                &user,
                ErrorCode::DuplicateResource,
                "A user credential cannot be altered twice in the same request".into(),
            );
        } else if !(ITERATIONS_MIN..=ITERATIONS_MAX).contains(&upsertion.iterations) {
            fail(
                &mut errors,
                &user,
                ErrorCode::UnacceptableCredential,
                format!("Iterations must be in {ITERATIONS_MIN}..={ITERATIONS_MAX}"),
            );
        } else if upsertion.salt.is_empty() || upsertion.salted_password.is_empty() {
            fail(
                &mut errors,
                &user,
                ErrorCode::UnacceptableCredential,
                "Salt and salted password must not be empty".into(),
            );
        } else {
            let credential = ScramCredential::from_salted_password(
                mechanism,
                upsertion.salt.to_vec(),
                upsertion.iterations as u32,
                &upsertion.salted_password,
            );
            records.push(MetadataRecord::UserScramCredential {
                user: user.clone(),
                mechanism: upsertion.mechanism,
                salt: hex(&credential.salt),
                iterations: upsertion.iterations,
                stored_key: hex(&credential.stored_key),
                server_key: hex(&credential.server_key),
            });
        }
    }
    records.retain(|r| match r {
        MetadataRecord::UserScramCredential { user, .. }
        | MetadataRecord::RemoveUserScramCredential { user, .. } => !errors.contains_key(user),
        _ => true,
    });
    if !records.is_empty() {
        // The message goes into the response's error_message, so text is all it needs.
        let failure = crate::admin::write_records(broker, records, |quorum, records| {
            quorum.alter_scram_credentials(records)
        })
        .await
        .err();
        if let Some(message) = failure {
            warn!(%message, "cannot store SCRAM credentials");
            for user in &users {
                fail(
                    &mut errors,
                    user,
                    ErrorCode::KafkaStorageError,
                    message.clone(),
                );
            }
        }
    }
    users.sort();
    users.dedup();
    let results = users
        .into_iter()
        .map(|user| {
            let result = AlterUserScramCredentialsResult::default()
                .with_user(StrBytes::from_string(user.clone()));
            match errors.get(&user) {
                Some((code, message)) => result
                    .with_error_code(code.code())
                    .with_error_message(Some(StrBytes::from_string(message.clone()))),
                None => result,
            }
        })
        .collect();
    AlterUserScramCredentialsResponse::default().with_results(results)
}

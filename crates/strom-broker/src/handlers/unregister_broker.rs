//! UnregisterBroker (API key 64, v0, KIP-631): a broker leaves the cluster for good.
//! Requires ALTER on the cluster (CLUSTER_AUTHORIZATION_FAILED otherwise).
//!
//! On a Raft cluster the active controller decides
//! ([`strom_controller::RaftQuorum::unregister_broker`]): the broker is taken out of every
//! leadership and ISR, its registration removed (Metadata and DescribeCluster stop listing
//! it) and, when it is an observer, it leaves the Raft membership (DescribeQuorum stops
//! listing it). As in Kafka its replicas are not moved: `strom cluster decommission` moves
//! them first. A broker that is not registered: BROKER_ID_NOT_REGISTERED. The answer waits
//! until this node's own image no longer lists the broker.
//!
//! A single-node broker is the only broker of its cluster: unregistering itself is refused
//! (INVALID_REQUEST); any other id is not registered.

use std::sync::Arc;

use kafka_protocol::messages::{UnregisterBrokerRequest, UnregisterBrokerResponse};
use kafka_protocol::protocol::StrBytes;
use strom_controller::RaftQuorumError;
use strom_protocol::ErrorCode;
use tracing::{info, warn};

use crate::metadata::{wait_for_local_image, Metadata};
use crate::state::Broker;

pub async fn handle(
    broker: &Arc<Broker>,
    request: UnregisterBrokerRequest,
) -> UnregisterBrokerResponse {
    let broker_id = request.broker_id.0;
    let outcome = match broker.metadata() {
        Metadata::Local(_) if broker_id == broker.config().node_id => Err((
            ErrorCode::InvalidRequest,
            "a single-node broker cannot unregister itself".to_string(),
        )),
        Metadata::Local(_) => Err(not_registered(broker_id)),
        Metadata::Raft(raft) => match raft.unregister_broker(broker_id).await {
            Ok(()) => {
                info!(broker_id, "broker unregistered");
                if let Err(error) =
                    wait_for_local_image(broker, |image| image.broker(broker_id).is_none()).await
                {
                    warn!(%error, "installing the image after unregistering a broker failed");
                }
                Ok(())
            }
            Err(RaftQuorumError::BrokerNotRegistered { .. }) => Err(not_registered(broker_id)),
            Err(error) => {
                warn!(broker_id, %error, "unregistering a broker failed");
                let code = match &error {
                    RaftQuorumError::NotLeader { .. } | RaftQuorumError::NoQuorum => {
                        ErrorCode::NotController
                    }
                    RaftQuorumError::Timeout { .. } => ErrorCode::RequestTimedOut,
                    _ => ErrorCode::UnknownServerError,
                };
                Err((code, error.to_string()))
            }
        },
    };
    match outcome {
        Ok(()) => UnregisterBrokerResponse::default(),
        Err((code, message)) => refused(code.code(), message),
    }
}

fn not_registered(broker_id: i32) -> (ErrorCode, String) {
    (
        ErrorCode::BrokerIdNotRegistered,
        format!("broker {broker_id} is not registered"),
    )
}

/// The answer refusing the request with `code`.
pub fn refused(code: i16, message: String) -> UnregisterBrokerResponse {
    UnregisterBrokerResponse::default()
        .with_error_code(code)
        .with_error_message(Some(StrBytes::from_string(message)))
}

//! DescribeCluster: the brokers and the active controller.

use std::sync::Arc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;
use strom_protocol::ErrorCode;

use crate::state::Broker;

/// Endpoint types of DescribeCluster v1+.
const ENDPOINT_TYPE_BROKERS: i8 = 1;

pub fn handle(
    broker: &Arc<Broker>,
    request: DescribeClusterRequest,
    version: i16,
    advertised: super::Advertised,
) -> DescribeClusterResponse {
    let image = broker.image();
    let mut response = DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(
            image.cluster_id().unwrap_or_default().to_string(),
        ))
        .with_cluster_authorized_operations(if request.include_cluster_authorized_operations {
            (1 << 4)
                | (1 << 7)
                | (1 << 8)
                | (1 << 9)
                | (1 << 10)
                | (1 << 11)
                | (1 << 12)
                | (1 << 13)
        } else {
            i32::MIN
        });
    if version >= 1 {
        response = response.with_endpoint_type(ENDPOINT_TYPE_BROKERS);
        if request.endpoint_type != ENDPOINT_TYPE_BROKERS {
            return response
                .with_error_code(ErrorCode::UnsupportedEndpointType.code())
                .with_error_message(Some(StrBytes::from_static_str(
                    "only broker endpoints (endpoint_type 1) are served",
                )));
        }
    }
    // Live brokers only, as in Metadata, unless a v2 client asks for the fenced ones too
    // (KIP-1073), which are then marked.
    let include_fenced = version >= 2 && request.include_fenced_brokers;
    let brokers: Vec<DescribeClusterBroker> = super::broker_endpoints(broker, &image, &advertised)
        .into_iter()
        .filter_map(|b| {
            let fenced = !image.is_broker_unfenced(b.broker_id);
            (include_fenced || !fenced).then(|| {
                DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(b.broker_id))
                    .with_host(b.host)
                    .with_port(b.port)
                    .with_rack(b.rack)
                    .with_is_fenced(fenced)
            })
        })
        .collect();
    let node_id = broker.config().node_id;
    // The active controller when it is a live broker, else this node (which forwards);
    // see `metadata::controller_id`.
    let controller_id = match broker.metadata().active_controller(node_id) {
        Some(active)
            if brokers
                .iter()
                .any(|b| b.broker_id.0 == active && !b.is_fenced) =>
        {
            active
        }
        Some(_) => node_id,
        None => -1,
    };
    response
        .with_controller_id(BrokerId(controller_id))
        .with_brokers(brokers)
}

//! The request schemas, one module per API, grouped by concept, and the lookup by API key.

mod admin;
mod cluster;
mod data;
mod groups;
mod security;
mod transactions;

use super::schema::Message;
use kafka_protocol::messages::ApiKey;

/// Every schema, in the order the brief asked for them; tests iterate over this.
pub(super) const ALL: &[&Message] = &[
    &data::produce::REQUEST,
    &data::fetch::REQUEST,
    &data::list_offsets::REQUEST,
    &cluster::metadata::REQUEST,
    &cluster::api_versions::REQUEST,
    &admin::create_topics::REQUEST,
    &admin::delete_topics::REQUEST,
    &transactions::init_producer_id::REQUEST,
    &data::offset_for_leader_epoch::REQUEST,
    &admin::describe_configs::REQUEST,
    &admin::create_partitions::REQUEST,
    &cluster::describe_cluster::REQUEST,
    &groups::find_coordinator::REQUEST,
    &groups::join_group::REQUEST,
    &groups::sync_group::REQUEST,
    &groups::heartbeat::REQUEST,
    &groups::leave_group::REQUEST,
    &groups::offset_commit::REQUEST,
    &groups::offset_fetch::REQUEST,
    &groups::list_groups::REQUEST,
    &groups::describe_groups::REQUEST,
    &groups::delete_groups::REQUEST,
    &groups::offset_delete::REQUEST,
    &admin::alter_configs::REQUEST,
    &admin::incremental_alter_configs::REQUEST,
    &admin::describe_log_dirs::REQUEST,
    &admin::alter_replica_log_dirs::REQUEST,
    &data::delete_records::REQUEST,
    &cluster::sasl_handshake::REQUEST,
    &cluster::sasl_authenticate::REQUEST,
    &cluster::describe_user_scram_credentials::REQUEST,
    &cluster::alter_user_scram_credentials::REQUEST,
    &groups::consumer_group_heartbeat::REQUEST,
    &groups::consumer_group_describe::REQUEST,
    &transactions::add_partitions_to_txn::REQUEST,
    &transactions::add_offsets_to_txn::REQUEST,
    &transactions::end_txn::REQUEST,
    &transactions::txn_offset_commit::REQUEST,
    &transactions::describe_producers::REQUEST,
    &transactions::write_txn_markers::REQUEST,
    &transactions::describe_transactions::REQUEST,
    &transactions::list_transactions::REQUEST,
    &security::create_acls::REQUEST,
    &security::describe_acls::REQUEST,
    &security::delete_acls::REQUEST,
    &security::describe_client_quotas::REQUEST,
    &security::alter_client_quotas::REQUEST,
    &admin::elect_leaders::REQUEST,
    &admin::alter_partition_reassignments::REQUEST,
    &admin::list_partition_reassignments::REQUEST,
    &cluster::describe_quorum::REQUEST,
    &cluster::unregister_broker::REQUEST,
];

/// The schema of `api_key`'s request body, if there is one.
pub(super) fn schema_for(api_key: ApiKey) -> Option<&'static Message> {
    ALL.iter()
        .copied()
        .find(|message| message.api_key == api_key)
}

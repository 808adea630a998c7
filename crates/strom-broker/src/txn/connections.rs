//! Connections from the transaction code to other brokers (WriteTxnMarkers to a partition
//! leader, AddPartitionsToTxn to a coordinator), kept open and shared between requests:
//! a transaction on a cluster sends one or both per transaction, and a new connection
//! each time costs a TCP connect and an ApiVersions round trip (and SASL) before the
//! request. A connection multiplexes concurrent requests; a closed one is replaced.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use parking_lot::Mutex;
use strom_client::connection::Connection;
use strom_client::ClientError;

use crate::state::Broker;

/// Open connections by (client id, address); the client id names the broker and purpose.
fn cache() -> &'static Mutex<HashMap<(String, String), Connection>> {
    static CACHE: OnceLock<Mutex<HashMap<(String, String), Connection>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// An open connection to `address` as `client_id`: the cached one, or a new one (the
/// connect runs with no lock held).
pub async fn connection(
    broker: &Broker,
    address: &str,
    client_id: String,
    timeout: Duration,
) -> Result<Connection, ClientError> {
    let key = (client_id, address.to_string());
    if let Some(open) = cache().lock().get(&key).filter(|c| !c.is_closed()) {
        return Ok(open.clone());
    }
    let config = crate::inter_broker::connection_config(
        broker.inter_broker_security(),
        key.0.clone(),
        timeout,
        timeout,
    );
    let connection = Connection::connect(address, config).await?;
    cache().lock().insert(key, connection.clone());
    Ok(connection)
}

/// Drops the cached connection to `address` after a failed request on it, so the next
/// request connects afresh.
pub fn forget(client_id: &str, address: &str) {
    cache()
        .lock()
        .remove(&(client_id.to_string(), address.to_string()));
}

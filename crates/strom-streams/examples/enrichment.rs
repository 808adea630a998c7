//! Enrichment: each order (`orders`, key customer id, JSON value) joined with the
//! customer's current row (`customers`, a compacted topic read as a table) and written as
//! JSON to `orders-enriched`; orders of unknown customers go through with `"name": null`.
//!
//! cargo run -p strom-streams --example enrichment -- 127.0.0.1:9092

use serde::{Deserialize, Serialize};
use strom_streams::{Serdes, StreamsApp, StreamsBuilder, StreamsConfig, Topology};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Order {
    order_id: String,
    amount_cents: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Customer {
    name: String,
    tier: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct EnrichedOrder {
    order_id: String,
    amount_cents: i64,
    name: Option<String>,
    tier: Option<String>,
}

fn topology() -> Topology {
    let builder = StreamsBuilder::new();
    let customers = builder.table("customers", Serdes::string(), Serdes::json::<Customer>());
    builder
        .stream("orders", Serdes::string(), Serdes::json::<Order>())
        .left_join_table(&customers, |order, customer| EnrichedOrder {
            order_id: order.order_id.clone(),
            amount_cents: order.amount_cents,
            name: customer.map(|c| c.name.clone()),
            tier: customer.map(|c| c.tier.clone()),
        })
        .to("orders-enriched", Serdes::string(), Serdes::json());
    match builder.build() {
        Ok(topology) => topology,
        Err(error) => panic!("enrichment topology: {error}"),
    }
}

#[tokio::main]
async fn main() {
    let bootstrap = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9092".to_string());
    let app = StreamsApp::start(topology(), StreamsConfig::new("enrichment", &bootstrap));
    println!("enrichment running against {bootstrap}; Ctrl-C stops it");
    let _ = tokio::signal::ctrl_c().await;
    if let Err(error) = app.close().await {
        eprintln!("enrichment stopped: {error}");
    }
}

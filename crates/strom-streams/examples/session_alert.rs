//! A fraud-style alert: card payments (`payments`, key card number, JSON value) grouped
//! into sessions of activity (no payment for 5 minutes ends one); a session with at least
//! 3 payments totalling over 1000.00 raises one alert, when the session closes, on
//! `fraud-alerts` (JSON).
//!
//! cargo run -p strom-streams --example session_alert -- 127.0.0.1:9092

use serde::{Deserialize, Serialize};
use strom_streams::{Serdes, SessionWindows, StreamsApp, StreamsBuilder, StreamsConfig, Topology};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Payment {
    amount_cents: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Activity {
    payments: u32,
    total_cents: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Alert {
    card: String,
    from_ms: i64,
    to_ms: i64,
    payments: u32,
    total_cents: i64,
}

fn topology() -> Topology {
    let builder = StreamsBuilder::new();
    builder
        .stream("payments", Serdes::string(), Serdes::json::<Payment>())
        .group_by_key()
        .windowed_by_session(SessionWindows::with_inactivity_gap(5 * 60_000).grace(30_000))
        .aggregate(
            Activity::default,
            |_card, payment, activity| Activity {
                payments: activity.payments + 1,
                total_cents: activity.total_cents + payment.amount_cents,
            },
            |_card, a, b| Activity {
                payments: a.payments + b.payments,
                total_cents: a.total_cents + b.total_cents,
            },
            Serdes::json(),
        )
        .suppress_until_window_closes()
        .filter(|_, activity| activity.payments >= 3 && activity.total_cents > 100_000)
        .to_stream()
        .flat_map(|session, activity| {
            activity.clone().map(|activity| {
                (
                    session.key.clone(),
                    Alert {
                        card: session.key.clone(),
                        from_ms: session.start_ms,
                        to_ms: session.end_ms,
                        payments: activity.payments,
                        total_cents: activity.total_cents,
                    },
                )
            })
        })
        .to("fraud-alerts", Serdes::string(), Serdes::json());
    match builder.build() {
        Ok(topology) => topology,
        Err(error) => panic!("session alert topology: {error}"),
    }
}

#[tokio::main]
async fn main() {
    let bootstrap = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9092".to_string());
    let app = StreamsApp::start(topology(), StreamsConfig::new("fraud-alerts", &bootstrap));
    println!("session alerts running against {bootstrap}; Ctrl-C stops it");
    let _ = tokio::signal::ctrl_c().await;
    if let Err(error) = app.close().await {
        eprintln!("session alert stopped: {error}");
    }
}

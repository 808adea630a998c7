//! The PostgreSQL sink: records of `topics` into tables (`table.name.format`, `${topic}` by
//! default), in batches, as `insert` or `upsert` (by the record key's or value's fields),
//! creating a table from the first record's schema when `auto.create` is true. Config keys
//! are those of Confluent's JDBC sink.
//!
//! Values are JSON: Kafka Connect's JsonConverter envelope (`{"schema":..,"payload":..}`,
//! whose struct schema gives the column types) or a plain JSON object (types inferred).
//! Rows reach the database as one JSON array per table and batch, turned into rows by
//! `json_populate_recordset` with the table's own column types.
//!
//! Exactly-once: each batch's rows and the consumer positions it reached are written in one
//! database transaction (table `strom_connect_offsets`), and a task starts from the
//! positions stored there, so a crash anywhere neither loses nor repeats a row.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::watch;
use tokio_postgres::NoTls;
use tracing::warn;

use crate::error::{ConnectError, Result};
use crate::errors::{ErrorHandler, Stage};
use crate::file_connectors::required;
use crate::plugins::Config;
use crate::sink::{self, SinkWriter};
use crate::transforms::ConnectRecord;
use crate::worker::{Control, TaskContext};

const OFFSETS_TABLE: &str = "strom_connect_offsets";
/// The advisory lock key under which tasks run DDL.
const DDL_LOCK: i64 = 0x5354_524f_4d43;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InsertMode {
    Insert,
    Upsert,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PkMode {
    None,
    RecordKey,
    RecordValue,
}

struct Settings {
    connection: tokio_postgres::Config,
    table_format: String,
    insert_mode: InsertMode,
    pk_mode: PkMode,
    pk_fields: Vec<String>,
    auto_create: bool,
    delete_enabled: bool,
    batch_size: usize,
    max_retries: u32,
    retry_backoff: Duration,
}

fn bad(message: impl Into<String>) -> ConnectError {
    ConnectError::bad_request(message)
}

fn database(context: &str) -> impl Fn(tokio_postgres::Error) -> ConnectError + '_ {
    move |source| ConnectError::Postgres {
        context: context.to_string(),
        detail: match source.as_db_error() {
            Some(db) => format!("{} ({})", db.message(), db.code().code()),
            None => source.to_string(),
        },
        source,
    }
}

/// `jdbc:postgresql://host:port/database?user=..&password=..` (the `jdbc:` prefix optional).
pub fn parse_url(url: &str) -> Result<tokio_postgres::Config> {
    let rest = url
        .strip_prefix("jdbc:")
        .unwrap_or(url)
        .strip_prefix("postgresql://")
        .or_else(|| url.strip_prefix("postgres://"))
        .ok_or_else(|| {
            bad(format!(
                "Invalid value {url} for configuration connection.url: expected jdbc:postgresql://HOST[:PORT]/DATABASE"
            ))
        })?;
    let (address, rest) = rest.split_once('/').unwrap_or((rest, ""));
    let (database, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut config = tokio_postgres::Config::new();
    let (host, port) = match address.rsplit_once(':') {
        Some((host, port)) => (
            host,
            port.parse::<u16>()
                .map_err(|_| bad(format!("Invalid port in connection.url {url}")))?,
        ),
        None => (address, 5432),
    };
    if host.is_empty() {
        return Err(bad(format!("No host in connection.url {url}")));
    }
    config.host(host).port(port);
    if !database.is_empty() {
        config.dbname(database);
    }
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("user", user)) => {
                config.user(user);
            }
            Some(("password", password)) => {
                config.password(password);
            }
            _ => {}
        }
    }
    config.connect_timeout(Duration::from_secs(10));
    Ok(config)
}

fn settings(config: &Config) -> Result<Settings> {
    let mut connection = parse_url(required(config, "connection.url")?)?;
    if let Some(user) = config.get("connection.user").filter(|u| !u.is_empty()) {
        connection.user(user);
    }
    if let Some(password) = config.get("connection.password") {
        connection.password(password);
    }
    if connection.get_user().is_none() {
        connection.user("postgres");
    }
    let get = |key: &str, default: &str| config.get(key).cloned().unwrap_or(default.to_string());
    let insert_mode = match get("insert.mode", "insert").as_str() {
        "insert" => InsertMode::Insert,
        "upsert" => InsertMode::Upsert,
        other => {
            return Err(bad(format!(
                "Invalid value {other} for configuration insert.mode: must be insert or upsert"
            )))
        }
    };
    let pk_mode = match get("pk.mode", "none").as_str() {
        "none" => PkMode::None,
        "record_key" => PkMode::RecordKey,
        "record_value" => PkMode::RecordValue,
        other => return Err(bad(format!("Invalid value {other} for configuration pk.mode: must be none, record_key or record_value"))),
    };
    let pk_fields: Vec<String> = get("pk.fields", "")
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect();
    if insert_mode == InsertMode::Upsert && pk_mode == PkMode::None {
        return Err(bad(
            "insert.mode=upsert needs pk.mode record_key or record_value",
        ));
    }
    if pk_mode == PkMode::RecordValue && pk_fields.is_empty() {
        return Err(bad("pk.mode=record_value needs pk.fields"));
    }
    let number = |key: &str, default: u64| -> Result<u64> {
        get(key, &default.to_string()).parse().map_err(|_| {
            bad(format!(
                "Invalid value for configuration {key}: not a number"
            ))
        })
    };
    Ok(Settings {
        connection,
        table_format: get("table.name.format", "${topic}"),
        insert_mode,
        pk_mode,
        pk_fields,
        auto_create: get("auto.create", "false") == "true",
        delete_enabled: get("delete.enabled", "false") == "true",
        batch_size: number("batch.size", 3000)?.clamp(1, 100_000) as usize,
        max_retries: number("max.retries", 10)?.min(1000) as u32,
        retry_backoff: Duration::from_millis(number("retry.backoff.ms", 3000)?.min(600_000)),
    })
}

/// Validates the keys that only this connector has (for create and `/config/validate`).
pub fn check(config: &Config) -> Vec<(&'static str, String)> {
    let mut errors = Vec::new();
    if let Some(url) = config.get("connection.url") {
        if let Err(error) = parse_url(url) {
            errors.push(("connection.url", error.to_string()));
        }
    }
    if config.contains_key("connection.url") {
        // The other keys, checked apart from the URL (whose error is reported above).
        let mut others = config.clone();
        others.insert(
            "connection.url".into(),
            "jdbc:postgresql://localhost/check".into(),
        );
        if let Err(error) = settings(&others) {
            let key = [
                "insert.mode",
                "pk.mode",
                "pk.fields",
                "batch.size",
                "max.retries",
                "retry.backoff.ms",
            ]
            .into_iter()
            .find(|k| error.to_string().contains(k))
            .unwrap_or("pk.mode");
            if key != "connection.url" {
                errors.push((key, error.to_string()));
            }
        }
    }
    errors.dedup();
    errors
}

fn quote(identifier: &str) -> String {
    identifier
        .split('.')
        .map(|part| format!("\"{}\"", part.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(".")
}

/// A column type from a Connect schema type.
fn schema_type(schema: &Value) -> &'static str {
    match schema["type"].as_str().unwrap_or("string") {
        "int8" | "int16" => "smallint",
        "int32" => "integer",
        "int64" => "bigint",
        "float32" => "real",
        "float64" => "double precision",
        "boolean" => "boolean",
        "struct" | "array" | "map" => "jsonb",
        _ => "text",
    }
}

/// A column type guessed from a JSON value.
fn inferred_type(value: &Value) -> &'static str {
    match value {
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "bigint",
        Value::Number(_) => "double precision",
        Value::Object(_) | Value::Array(_) => "jsonb",
        _ => "text",
    }
}

/// A record's fields, and column types when its schema says.
struct Parsed {
    fields: Map<String, Value>,
    types: BTreeMap<String, &'static str>,
}

fn parse_json(bytes: &[u8], what: &str) -> Result<Value> {
    serde_json::from_slice(bytes).map_err(|e| bad(format!("the record {what} is not JSON: {e}")))
}

/// The payload and schema of an envelope, or the value as is.
fn unwrap_envelope(value: Value) -> (Value, Option<Value>) {
    match value {
        Value::Object(mut object)
            if object.len() == 2
                && object.contains_key("schema")
                && object.contains_key("payload") =>
        {
            let payload = object.remove("payload").unwrap_or(Value::Null);
            (payload, object.remove("schema"))
        }
        other => (other, None),
    }
}

fn parse_struct(value: Value, what: &str) -> Result<Parsed> {
    let (payload, schema) = unwrap_envelope(value);
    let Value::Object(fields) = payload else {
        return Err(bad(format!(
            "the record {what} is not a JSON object (a struct)"
        )));
    };
    let mut types = BTreeMap::new();
    if let Some(list) = schema.as_ref().and_then(|s| s["fields"].as_array()) {
        for field in list {
            if let Some(name) = field["field"].as_str() {
                types.insert(name.to_string(), schema_type(field));
            }
        }
    }
    for (name, value) in &fields {
        types
            .entry(name.clone())
            .or_insert_with(|| inferred_type(value));
    }
    Ok(Parsed { fields, types })
}

/// The primary-key fields a record contributes from its key (pk.mode=record_key).
fn key_fields(settings: &Settings, key: Option<&[u8]>) -> Result<Parsed> {
    let key = key.ok_or_else(|| bad("pk.mode=record_key and a record has no key"))?;
    let value = serde_json::from_slice(key)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(key).into_owned()));
    let (payload, schema) = unwrap_envelope(value);
    if payload.is_object() {
        let reassembled = match schema {
            Some(schema) => serde_json::json!({"schema": schema, "payload": payload}),
            None => payload,
        };
        let mut parsed = parse_struct(reassembled, "key")?;
        if !settings.pk_fields.is_empty() {
            parsed.fields.retain(|k, _| settings.pk_fields.contains(k));
        }
        return Ok(parsed);
    }
    let [name] = settings.pk_fields.as_slice() else {
        return Err(bad(
            "a primitive record key needs exactly one name in pk.fields",
        ));
    };
    let column_type = schema
        .as_ref()
        .map(schema_type)
        .unwrap_or_else(|| inferred_type(&payload));
    Ok(Parsed {
        fields: [(name.clone(), payload)].into_iter().collect(),
        types: [(name.clone(), column_type)].into(),
    })
}

/// One table's pending writes of a batch, in record order.
#[derive(Default, Clone)]
struct TableBatch {
    rows: Vec<Map<String, Value>>,
    deletes: Vec<Map<String, Value>>,
    types: BTreeMap<String, &'static str>,
    pk: Vec<String>,
}

impl TableBatch {
    /// Adds one record's row (or delete), or says which converter stage could not read it;
    /// nothing is kept from a record that fails.
    fn add(
        &mut self,
        settings: &Settings,
        record: &ConnectRecord,
    ) -> std::result::Result<(), (Stage, ConnectError)> {
        let key = match settings.pk_mode {
            PkMode::RecordKey => Some(
                key_fields(settings, record.key.as_deref())
                    .map_err(|error| (Stage::KeyConverter, error))?,
            ),
            _ => None,
        };
        let Some(value) = record.value.as_deref() else {
            if let (true, Some(key)) = (settings.delete_enabled, key) {
                self.remember_pk(key.fields.keys());
                self.deletes.push(key.fields);
            }
            return Ok(());
        };
        let mut parsed = parse_json(value, "value")
            .and_then(|value| parse_struct(value, "value"))
            .map_err(|error| (Stage::ValueConverter, error))?;
        if let Some(key) = key {
            self.remember_pk(key.fields.keys());
            parsed.types.extend(key.types);
            parsed.fields.extend(key.fields);
        } else if settings.pk_mode == PkMode::RecordValue {
            self.remember_pk(settings.pk_fields.iter());
        }
        for (name, column_type) in parsed.types {
            self.types.entry(name).or_insert(column_type);
        }
        self.rows.push(parsed.fields);
        Ok(())
    }

    fn remember_pk<'a>(&mut self, names: impl Iterator<Item = &'a String>) {
        if self.pk.is_empty() {
            self.pk = names.cloned().collect();
        }
    }

    fn pk_of(&self, row: &Map<String, Value>) -> String {
        self.pk
            .iter()
            .map(|k| row.get(k).cloned().unwrap_or(Value::Null).to_string())
            .collect::<Vec<_>>()
            .join("\u{0}")
    }
}

struct PostgresSink {
    settings: Settings,
    connector: String,
    db: tokio_postgres::Client,
    created: HashSet<String>,
}

impl SinkWriter for PostgresSink {
    /// The positions stored with the rows (exactly-once); the group's are for lag
    /// monitoring only.
    async fn stored_offsets(
        &mut self,
        _partitions: &[(String, i32)],
    ) -> Result<Option<BTreeMap<(String, i32), i64>>> {
        // Tasks starting together would race on CREATE TABLE IF NOT EXISTS (a duplicate
        // pg_type row); DDL runs under one advisory lock.
        self.db
            .batch_execute(&format!(
                "BEGIN; SELECT pg_advisory_xact_lock({DDL_LOCK}); CREATE TABLE IF NOT EXISTS {OFFSETS_TABLE} (connector text NOT NULL, topic text NOT NULL, \
                 kafka_partition integer NOT NULL, next_offset bigint NOT NULL, \
                 PRIMARY KEY (connector, topic, kafka_partition)); COMMIT"
            ))
            .await
            .map_err(database("create the offsets table"))?;
        let stored = self
            .db
            .query(
                &format!("SELECT topic, kafka_partition, next_offset FROM {OFFSETS_TABLE} WHERE connector = $1"),
                &[&self.connector],
            )
            .await
            .map_err(database("read stored offsets"))?
            .into_iter()
            .map(|row| ((row.get::<_, String>(0), row.get::<_, i32>(1)), row.get::<_, i64>(2)))
            .collect();
        Ok(Some(stored))
    }

    async fn put(
        &mut self,
        records: &[ConnectRecord],
        errors: &ErrorHandler,
        _control: &mut watch::Receiver<Control>,
    ) -> Result<()> {
        let settings = &self.settings;
        for chunk in records.chunks(settings.batch_size) {
            // Records the converters cannot read go to the error handler (errors.tolerance,
            // the dead-letter queue); their offsets still count as done.
            let mut tables: BTreeMap<String, TableBatch> = BTreeMap::new();
            let mut next: BTreeMap<(String, i32), i64> = BTreeMap::new();
            for record in chunk {
                let table = settings.table_format.replace("${topic}", &record.topic);
                if let Err((stage, error)) = tables.entry(table).or_default().add(settings, record)
                {
                    errors.failed(record, stage, &error).await?;
                }
                if let (Some(partition), Some(offset)) = (record.partition, record.offset) {
                    next.insert((record.original_topic.clone(), partition), offset + 1);
                }
            }
            tables.retain(|_, batch| !batch.rows.is_empty() || !batch.deletes.is_empty());
            let mut attempt = 0;
            loop {
                match write_batch(
                    &mut self.db,
                    settings,
                    &self.connector,
                    tables.clone(),
                    &next,
                    &mut self.created,
                )
                .await
                {
                    Ok(()) => break,
                    Err(error) if self.db.is_closed() && attempt < settings.max_retries => {
                        attempt += 1;
                        warn!(%error, attempt, "PostgreSQL connection lost; retrying the batch");
                        tokio::time::sleep(settings.retry_backoff).await;
                        if let Ok(fresh) = connect(settings).await {
                            self.db = fresh;
                        }
                    }
                    Err(error) => return Err(error),
                }
            }
        }
        Ok(())
    }
}

/// Runs one task until stopped.
pub async fn run(
    context: TaskContext,
    config: Config,
    task_count: u32,
    control: watch::Receiver<Control>,
) -> Result<()> {
    let settings = settings(&config)?;
    let db = connect(&settings).await?;
    let writer = PostgresSink {
        settings,
        connector: context.connector.clone(),
        db,
        created: HashSet::new(),
    };
    sink::run(context, config, task_count, control, writer).await
}

async fn connect(settings: &Settings) -> Result<tokio_postgres::Client> {
    let (client, connection) = settings
        .connection
        .connect(NoTls)
        .await
        .map_err(database("connect to PostgreSQL"))?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            warn!(%error, "PostgreSQL connection ended");
        }
    });
    Ok(client)
}

async fn write_batch(
    db: &mut tokio_postgres::Client,
    settings: &Settings,
    connector: &str,
    tables: BTreeMap<String, TableBatch>,
    next: &BTreeMap<(String, i32), i64>,
    created: &mut HashSet<String>,
) -> Result<()> {
    let transaction = db.transaction().await.map_err(database("begin"))?;
    for (table, mut batch) in tables {
        if batch.pk.is_empty() && settings.pk_mode == PkMode::RecordValue {
            batch.pk = settings.pk_fields.clone();
        }
        if settings.auto_create && !created.contains(&table) && !batch.types.is_empty() {
            let mut columns: Vec<String> = batch
                .types
                .iter()
                .map(|(name, column_type)| {
                    let not_null = if batch.pk.contains(name) {
                        " NOT NULL"
                    } else {
                        ""
                    };
                    format!("{} {column_type}{not_null}", quote(name))
                })
                .collect();
            if !batch.pk.is_empty() {
                let pk: Vec<String> = batch.pk.iter().map(|k| quote(k)).collect();
                columns.push(format!("PRIMARY KEY ({})", pk.join(", ")));
            }
            transaction
                .batch_execute(&format!(
                    "SELECT pg_advisory_xact_lock({DDL_LOCK}); CREATE TABLE IF NOT EXISTS {} ({})",
                    quote(&table),
                    columns.join(", ")
                ))
                .await
                .map_err(database("create the table"))?;
            created.insert(table.clone());
        }
        let quoted_table = quote(&table);
        if settings.insert_mode == InsertMode::Upsert {
            // One write per key, the last: ON CONFLICT cannot touch a row twice.
            let mut last: BTreeMap<String, (usize, bool)> = BTreeMap::new();
            for (index, row) in batch.rows.iter().enumerate() {
                last.insert(batch.pk_of(row), (index, false));
            }
            let row_count = batch.rows.len();
            for (index, row) in batch.deletes.iter().enumerate() {
                last.insert(batch.pk_of(row), (row_count + index, true));
            }
            let keep: BTreeSet<usize> = last.values().map(|(i, _)| *i).collect();
            let all: Vec<Map<String, Value>> = std::mem::take(&mut batch.rows)
                .into_iter()
                .chain(std::mem::take(&mut batch.deletes))
                .collect();
            for (index, row) in all.into_iter().enumerate() {
                if keep.contains(&index) {
                    if index < row_count {
                        batch.rows.push(row);
                    } else {
                        batch.deletes.push(row);
                    }
                }
            }
        }
        if !batch.rows.is_empty() {
            let columns: BTreeSet<&String> = batch.rows.iter().flat_map(|r| r.keys()).collect();
            let list: Vec<String> = columns.iter().map(|c| quote(c)).collect();
            let list = list.join(", ");
            let mut sql = format!(
                "INSERT INTO {quoted_table} ({list}) SELECT {list} FROM json_populate_recordset(NULL::{quoted_table}, $1::text::json)"
            );
            if settings.insert_mode == InsertMode::Upsert {
                let pk: Vec<String> = batch.pk.iter().map(|k| quote(k)).collect();
                let updates: Vec<String> = columns
                    .iter()
                    .filter(|c| !batch.pk.contains(c))
                    .map(|c| format!("{0} = EXCLUDED.{0}", quote(c)))
                    .collect();
                if updates.is_empty() {
                    sql.push_str(&format!(" ON CONFLICT ({}) DO NOTHING", pk.join(", ")));
                } else {
                    sql.push_str(&format!(
                        " ON CONFLICT ({}) DO UPDATE SET {}",
                        pk.join(", "),
                        updates.join(", ")
                    ));
                }
            }
            let json =
                Value::Array(batch.rows.into_iter().map(Value::Object).collect()).to_string();
            transaction
                .execute(sql.as_str(), &[&json])
                .await
                .map_err(database("write rows"))?;
        }
        if !batch.deletes.is_empty() && !batch.pk.is_empty() {
            let pk: Vec<String> = batch.pk.iter().map(|k| quote(k)).collect();
            let pk = pk.join(", ");
            let sql = format!(
                "DELETE FROM {quoted_table} WHERE ({pk}) IN (SELECT {pk} FROM json_populate_recordset(NULL::{quoted_table}, $1::text::json))"
            );
            let json =
                Value::Array(batch.deletes.into_iter().map(Value::Object).collect()).to_string();
            transaction
                .execute(sql.as_str(), &[&json])
                .await
                .map_err(database("delete rows"))?;
        }
    }
    for ((topic, partition), offset) in next {
        transaction
            .execute(
                &format!(
                    "INSERT INTO {OFFSETS_TABLE} (connector, topic, kafka_partition, next_offset) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (connector, topic, kafka_partition) DO UPDATE SET next_offset = EXCLUDED.next_offset"
                ),
                &[&connector, &topic, &partition, &offset],
            )
            .await
            .map_err(database("store offsets"))?;
    }
    transaction.commit().await.map_err(database("commit"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_jdbc_urls_when_parsed_should_find_host_port_database_and_user() {
        let config =
            parse_url("jdbc:postgresql://127.0.0.1:5433/shop?user=app&password=pw").unwrap();
        assert_eq!(config.get_ports(), &[5433]);
        assert_eq!(config.get_dbname(), Some("shop"));
        assert_eq!(config.get_user(), Some("app"));
        assert!(parse_url("jdbc:mysql://x/y").is_err());
        assert!(parse_url("jdbc:postgresql://h:port/db").is_err());
    }

    #[test]
    fn given_an_envelope_when_parsed_should_type_columns_from_its_schema() {
        let value = serde_json::json!({
            "schema": {"type": "struct", "fields": [
                {"field": "id", "type": "int32"}, {"field": "name", "type": "string"},
                {"field": "tags", "type": "array"}]},
            "payload": {"id": 1, "name": "a", "tags": ["x"]}
        });
        let parsed = parse_struct(value, "value").unwrap();
        assert_eq!(parsed.types["id"], "integer");
        assert_eq!(parsed.types["name"], "text");
        assert_eq!(parsed.types["tags"], "jsonb");
        assert!(parse_struct(serde_json::json!([1]), "value").is_err());
    }
}

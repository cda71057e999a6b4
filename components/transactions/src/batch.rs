//! An accepted batch: stored, keyed, queued — in an order that a crash or a
//! down backend can never leave half-done without a way to finish.
//!
//! The batch id is a hash of the file's bytes, so uploading the same file
//! again is the same batch: every write below is an overwrite and every
//! message carries the id `<batch>:<index>`, which the worker uses to drop
//! redeliveries. A failed step answers 503 with the backend that failed;
//! retrying the upload redoes the steps, duplicating nothing.
//!
//! Steps: the file → object `batches/<id>.json` in the blobstore;
//! `batch:<id>` = `accepting` → `client:<_id>` (60 s TTL) for each record →
//! publish every record (confirmed) → `batch:<id>` = `queued`. The worker
//! then stores the results, each with the client's whole record, as
//! objects too (one per batch of messages it takes).

use corral_sdk::bindings::corral::platform::keyvalue_ext;
use corral_sdk::bindings::corral::platform::messaging::{self, Message};
use corral_sdk::bindings::wasi::keyvalue::{batch as kv_batch, store};
use corral_sdk::http::{Error, Response};
use corral_sdk::{blob, config, log, time};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::record::Record;

/// The seed keeps each client's basic data in Redis for 60 s.
pub const CLIENT_TTL_MS: u64 = 60_000;

fn bucket_name() -> String {
    config::get_or("bucket", "transactions")
}

fn container_name() -> String {
    config::get_or("container", "transactions")
}

fn unavailable(backend: &str, detail: String) -> Error {
    log::error("batch", &format!("{backend} unavailable: {detail}"));
    Error::new(
        503,
        "backend_unavailable",
        format!("{backend} is unavailable ({detail}); nothing is lost: retry the same upload"),
    )
    .with_field(backend)
    .with_header("retry-after", "5")
}

/// A key-value failure as a 503 (for `.map_err(kv_unavailable)?`).
fn kv_unavailable(e: store::Error) -> Error {
    let detail = match e {
        store::Error::NoSuchStore => "no such bucket".into(),
        store::Error::AccessDenied => "access denied".into(),
        store::Error::Other(m) => m,
    };
    unavailable("keyvalue", detail)
}

pub fn batch_id(file: &[u8]) -> String {
    let digest = Sha256::digest(file);
    digest[..12].iter().map(|b| format!("{b:02x}")).collect()
}

pub fn submit(file: &[u8], records: &[Record]) -> Result<Response, Error> {
    let id = batch_id(file);
    let bucket = store::open(&bucket_name()).map_err(kv_unavailable)?;
    let key = format!("batch:{id}");
    let previous = bucket
        .get(&key)
        .map_err(kv_unavailable)?
        .and_then(|v| serde_json::from_slice::<serde_json::Value>(&v).ok());
    if previous.as_ref().and_then(|p| p["state"].as_str()) == Some("queued") {
        log::info(
            "batch",
            &format!("batch={id} uploaded again; already queued"),
        );
        return Ok(accepted(&id, records.len(), true));
    }
    let state = |state: &str| {
        serde_json::to_vec(&json!({
            "batch": id,
            "state": state,
            "total": records.len(),
            "ids": records.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            "accepted_at": time::now_rfc3339(),
        }))
        .expect("serializable")
    };
    let started = time::now_millis();
    blob::open_or_create(&container_name())
        .and_then(|container| container.put(&format!("batches/{id}.json"), file))
        .map_err(|e| unavailable("blobstore", e.0))?;
    bucket
        .set(&key, &state("accepting"))
        .map_err(kv_unavailable)?;
    let stored_at = time::now_millis();
    let clients: Vec<(String, Vec<u8>)> = records
        .iter()
        .map(|record| {
            let client = json!({
                "_id": record.id, "cliente": record.cliente, "email": record.email,
                "isActive": record.is_active, "endereco": record.endereco, "batch": id,
            });
            let value = serde_json::to_vec(&client).expect("serializable");
            (format!("client:{}", record.id), value)
        })
        .collect();
    // One call (one backend round trip) per 1000 keys, the host's batch limit.
    for chunk in clients.chunks(1000) {
        keyvalue_ext::set_many_with_ttl(&bucket, chunk, CLIENT_TTL_MS).map_err(kv_unavailable)?;
    }
    let keyed_at = time::now_millis();
    let messages: Vec<Message> = records
        .iter()
        .enumerate()
        .map(|(index, record)| Message {
            body: serde_json::to_vec(&json!({ "batch": id, "index": index, "record": record }))
                .expect("serializable"),
            content_type: Some("application/json".into()),
            headers: vec![("batch".into(), id.clone())],
            message_id: Some(format!("{id}:{index}")),
        })
        .collect();
    let queue = config::get_or("queue", "transactions");
    for chunk in messages.chunks(2500) {
        messaging::publish_batch(&queue, chunk)
            .map_err(|e| unavailable("messaging", e.detail().to_owned()))?;
    }
    let published_at = time::now_millis();
    bucket.set(&key, &state("queued")).map_err(kv_unavailable)?;
    log::info(
        "batch",
        &format!(
            "batch={id} records={} queued (object {} ms, client keys {} ms, publish {} ms)",
            records.len(),
            stored_at - started,
            keyed_at - stored_at,
            published_at - keyed_at
        ),
    );
    Ok(accepted(&id, records.len(), false))
}

fn accepted(id: &str, records: usize, duplicate: bool) -> Response {
    Response::json(
        202,
        &json!({
            "batch": id,
            "records": records,
            "duplicate": duplicate,
            "status_url": format!("/api/transactions/{id}"),
        }),
    )
}

/// `GET /api/transactions/{batch}`: counts and each record's result, as the
/// worker recorded them under `result:<batch>:<index>`. Without
/// `with_records` only the counts: a poller's answer stays a few hundred
/// bytes instead of ~100 bytes per record.
pub fn status(id: &str, with_records: bool) -> Result<Response, Error> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(
            Error::bad_request("bad_batch_id", "a batch id is hexadecimal").with_field("batch"),
        );
    }
    let bucket = store::open(&bucket_name()).map_err(kv_unavailable)?;
    let Some(batch) = bucket.get(&format!("batch:{id}")).map_err(kv_unavailable)? else {
        return Err(Error::new(404, "unknown_batch", format!("no batch {id}")).with_field("batch"));
    };
    let batch = serde_json::from_slice::<serde_json::Value>(&batch).unwrap_or_default();
    let total = batch["total"].as_u64().unwrap_or(0) as usize;
    let keys: Vec<String> = (0..total).map(|i| format!("result:{id}:{i}")).collect();
    // The host takes at most 1000 keys per batch call.
    let mut results = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(1000) {
        results.append(&mut kv_batch::get_many(&bucket, chunk).map_err(kv_unavailable)?);
    }
    let (mut processed, mut flagged) = (0, 0);
    let mut records = Vec::with_capacity(if with_records { total } else { 0 });
    for (index, found) in results.into_iter().enumerate() {
        let result = found.and_then(|(_, v)| serde_json::from_slice::<serde_json::Value>(&v).ok());
        let flags = result.as_ref().map(|r| r["flags"].clone());
        let object = result.as_ref().map(|r| r["object"].clone());
        if result.is_some() {
            processed += 1;
        }
        if flags
            .as_ref()
            .and_then(|f| f.as_array())
            .is_some_and(|f| !f.is_empty())
        {
            flagged += 1;
        }
        if with_records {
            let id = batch["ids"][index].clone();
            records.push(match flags {
                Some(flags) => json!({
                    "index": index,
                    "_id": id,
                    "status": "processed",
                    "flags": flags,
                    "object": object,
                }),
                None => json!({ "index": index, "_id": id, "status": "pending" }),
            });
        }
    }
    let mut answer = json!({
        "batch": id,
        "state": batch["state"],
        "accepted_at": batch["accepted_at"],
        "total": total,
        "processed": processed,
        "flagged": flagged,
        "pending": total - processed,
    });
    if with_records {
        answer["records"] = json!(records);
    }
    Ok(Response::json(200, &answer))
}

/// `GET /api/clients/{_id}`: the client's basic data while its key lives
/// (60 s after the upload), with the milliseconds it has left.
pub fn client(id: &str) -> Result<Response, Error> {
    let id = corral_sdk::http::percent_decode(id);
    let bucket = store::open(&bucket_name()).map_err(kv_unavailable)?;
    let key = format!("client:{id}");
    // Both calls are made before either error is answered (the first one's).
    let (value, ttl) = (bucket.get(&key), keyvalue_ext::ttl(&bucket, &key));
    let (value, ttl) = (value.map_err(kv_unavailable)?, ttl.map_err(kv_unavailable)?);
    match value.and_then(|v| serde_json::from_slice::<serde_json::Value>(&v).ok()) {
        Some(client) => Ok(Response::json(
            200,
            &json!({ "client": client, "ttl_ms": ttl }),
        )),
        None => Err(Error::new(
            404,
            "unknown_client",
            format!("no cached data for client {id} (it expires 60 s after an upload)"),
        )
        .with_field("_id")),
    }
}

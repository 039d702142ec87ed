//! The stack's schema registry is real and speaks the Confluent REST API: a schema
//! registered under a subject is fetched back by its id, as Confluent deserializers do.

use crate::common;

use common::{stack_env, unique_name};
use serde_json::{json, Value};

#[tokio::test]
async fn a_schema_registered_through_ccompat_is_fetched_back_by_id() {
    let base = stack_env("SCHEMA_REGISTRY_URL");
    let http = reqwest::Client::new();
    let subject = format!("{}-value", unique_name("stack_registry"));
    let schema = json!({
        "type": "record", "name": "Probe", "namespace": "cdc.test",
        "fields": [{"name": "id", "type": "long"}]
    });

    let resp = http
        .post(format!("{base}/subjects/{subject}/versions"))
        .header("Content-Type", "application/vnd.schemaregistry.v1+json")
        .json(&json!({ "schema": schema.to_string() }))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "register: {}", resp.status());
    let id = resp.json::<Value>().await.unwrap()["id"]
        .as_i64()
        .expect("an integer id");

    let fetched: Value = http
        .get(format!("{base}/schemas/ids/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let back: Value = serde_json::from_str(fetched["schema"].as_str().unwrap()).unwrap();
    assert_eq!(back, schema);

    let compat: Value = http
        .get(format!("{base}/config"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(compat["compatibilityLevel"], "BACKWARD");

    let _ = http
        .delete(format!("{base}/subjects/{subject}"))
        .send()
        .await;
    let _ = http
        .delete(format!("{base}/subjects/{subject}?permanent=true"))
        .send()
        .await;
}

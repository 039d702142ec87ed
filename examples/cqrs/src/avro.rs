//! Decoding the agent's records as a Confluent deserializer does: byte 0 is a magic 0, bytes
//! 1-4 the id of the schema the record was written with, the rest one Avro datum. The writer
//! schema is fetched once per id from the registry (`GET /schemas/ids/{id}`); decoding with
//! "the latest schema of the subject" instead would misread records written before a change.

use std::collections::HashMap;

use anyhow::{bail, Context};
use apache_avro::types::Value;
use apache_avro::Schema;

/// A decoder with a cache of the writer schemas it has met.
pub struct AvroDecoder {
    registry_url: String,
    http: reqwest::Client,
    schemas: HashMap<u32, Schema>,
}

impl AvroDecoder {
    /// A decoder fetching schemas from the Confluent-compatible registry API at `registry_url`
    /// (for Apicurio: `http://host:port/apis/ccompat/v7`).
    pub fn new(registry_url: &str) -> Self {
        Self {
            registry_url: registry_url.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            schemas: HashMap::new(),
        }
    }

    /// Decodes one Confluent-framed record (a key or a value).
    pub async fn decode(&mut self, bytes: &[u8]) -> anyhow::Result<Value> {
        if bytes.len() < 5 || bytes[0] != 0 {
            bail!("not a Confluent-framed Avro record (magic byte 0 and a schema id expected)");
        }
        let id = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
        if !self.schemas.contains_key(&id) {
            let schema = self.fetch(id).await?;
            self.schemas.insert(id, schema);
        }
        let schema = &self.schemas[&id];
        apache_avro::from_avro_datum(schema, &mut &bytes[5..], None)
            .with_context(|| format!("decoding a record written with schema id {id}"))
    }

    async fn fetch(&self, id: u32) -> anyhow::Result<Schema> {
        #[derive(serde::Deserialize)]
        struct SchemaById {
            schema: String,
        }
        let url = format!("{}/schemas/ids/{id}", self.registry_url);
        let body: SchemaById = self
            .http
            .get(&url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .with_context(|| format!("fetching schema {id} from {url}"))?
            .json()
            .await
            .with_context(|| format!("reading schema {id} from {url}"))?;
        Schema::parse_str(&body.schema).with_context(|| format!("parsing schema {id}"))
    }
}

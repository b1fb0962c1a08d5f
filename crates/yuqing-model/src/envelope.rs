use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Version of the message schema. A consumer rejects messages with a newer
/// major version to `items.dead` instead of misreading them.
pub const SCHEMA_VERSION: u32 = 1;

/// The JSON envelope of every message on the bus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub schema_version: u32,
    /// What the payload is: `item.raw`, `item.analyzed`, `crawl.task`.
    pub kind: String,
    pub produced_at: DateTime<Utc>,
    pub payload: T,
}

#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("invalid message JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error(
        "message schema_version {found} is newer than this build understands ({SCHEMA_VERSION})"
    )]
    UnsupportedVersion { found: u32 },
    #[error("expected a `{expected}` message, got `{found}`")]
    WrongKind { expected: String, found: String },
}

impl<T: Serialize + DeserializeOwned> Envelope<T> {
    pub fn new(kind: &str, payload: T) -> Self {
        Envelope {
            schema_version: SCHEMA_VERSION,
            kind: kind.to_string(),
            produced_at: Utc::now(),
            payload,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing plain data structures to JSON cannot fail.
        serde_json::to_vec(self).expect("envelope serializes")
    }

    /// Decodes an envelope of the expected kind and a schema this build reads.
    pub fn from_bytes(bytes: &[u8], expected_kind: &str) -> Result<Self, EnvelopeError> {
        #[derive(Deserialize)]
        struct Header {
            schema_version: u32,
            kind: String,
        }
        let header: Header = serde_json::from_slice(bytes)?;
        if header.schema_version > SCHEMA_VERSION {
            return Err(EnvelopeError::UnsupportedVersion {
                found: header.schema_version,
            });
        }
        if header.kind != expected_kind {
            return Err(EnvelopeError::WrongKind {
                expected: expected_kind.to_string(),
                found: header.kind,
            });
        }
        Ok(serde_json::from_slice(bytes)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_checks_version_and_kind() {
        let e = Envelope::new("test", vec![1u32, 2]);
        let bytes = e.to_bytes();
        let back: Envelope<Vec<u32>> = Envelope::from_bytes(&bytes, "test").unwrap();
        assert_eq!(back.payload, vec![1, 2]);
        assert!(matches!(
            Envelope::<Vec<u32>>::from_bytes(&bytes, "other"),
            Err(EnvelopeError::WrongKind { .. })
        ));
        let newer = br#"{"schema_version":99,"kind":"test","produced_at":"2024-01-01T00:00:00Z","payload":[]}"#;
        assert!(matches!(
            Envelope::<Vec<u32>>::from_bytes(newer, "test"),
            Err(EnvelopeError::UnsupportedVersion { found: 99 })
        ));
        assert!(matches!(
            Envelope::<Vec<u32>>::from_bytes(b"{not json", "test"),
            Err(EnvelopeError::Json(_))
        ));
    }
}

//! How records become bytes in sled and back: JSON, every record stamped with the schema
//! version this build writes (`"v": N`, the first field). The records themselves know
//! nothing of versions; a later lowtouch reads `v` to migrate.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StoreError;
use crate::record::SCHEMA_VERSION;

/// A record as written: the schema version, then the record's own fields.
#[derive(Serialize)]
struct Stamped<'a, T> {
    v: u32,
    #[serde(flatten)]
    record: &'a T,
}

/// `value` as stored under `key` (the key names the record in an error).
pub(super) fn encode<T: Serialize>(key: &[u8], value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(&Stamped {
        v: SCHEMA_VERSION,
        record: value,
    })
    .map_err(|e| StoreError::Corrupt {
        key: printable(key),
        source: e,
    })
}

/// The record stored under `key`; its `v` was checked when the store opened.
pub(super) fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        key: printable(key),
        source: e,
    })
}

/// A key as a person reads it: its parts (joined by NUL in sled) joined by `/`.
fn printable(key: &[u8]) -> String {
    String::from_utf8_lossy(key).replace('\0', "/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Thing {
        name: String,
    }

    #[test]
    fn a_record_is_written_with_the_schema_version_first_and_read_back_without_it() {
        let bytes = encode(b"k", &Thing { name: "a".into() }).unwrap();
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            format!(r#"{{"v":{SCHEMA_VERSION},"name":"a"}}"#)
        );
        let back: Thing = decode(b"k", &bytes).unwrap();
        assert_eq!(back, Thing { name: "a".into() });
    }
}

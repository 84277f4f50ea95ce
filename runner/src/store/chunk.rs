//! Metric samples stored in chunks: the samples of one daemon that arrive together (a
//! data-processor batch, at most [`MAX_SPAN_US`] of time) as one sled value — a table of
//! the series' names, then 18 bytes per sample (series index, time, value). A sample a
//! record of its own cost a sled key, a JSON document and a tree update; a chunk costs
//! that once per batch. Pure: bytes in, bytes out.

/// The longest time a chunk covers: a reader of `[from, to]` starts its scan this much
/// before `from`.
pub const MAX_SPAN_US: i64 = 60_000_000;

const VERSION: u8 = 1;

/// One sample: source, name, time (µs), value.
pub type Sample<'a> = (&'a str, &'a str, i64, f64);

/// Encodes samples (one daemon's) into a chunk.
pub fn encode(samples: &[Sample<'_>]) -> Vec<u8> {
    let mut series: Vec<(&str, &str)> = Vec::new();
    let mut index = Vec::with_capacity(samples.len());
    for (source, name, _, _) in samples {
        let i = match series.iter().position(|s| s == &(*source, *name)) {
            Some(i) => i,
            None => {
                series.push((source, name));
                series.len() - 1
            }
        };
        index.push(i as u16);
    }
    let mut out = Vec::with_capacity(8 + series.len() * 32 + samples.len() * 18);
    out.push(VERSION);
    out.extend_from_slice(&(series.len() as u16).to_le_bytes());
    for (source, name) in &series {
        for text in [source, name] {
            out.extend_from_slice(&(text.len() as u16).to_le_bytes());
            out.extend_from_slice(text.as_bytes());
        }
    }
    out.extend_from_slice(&(samples.len() as u32).to_le_bytes());
    for (i, (_, _, at, value)) in index.iter().zip(samples) {
        out.extend_from_slice(&i.to_le_bytes());
        out.extend_from_slice(&at.to_le_bytes());
        out.extend_from_slice(&value.to_le_bytes());
    }
    out
}

/// Why a chunk cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a metric chunk is damaged: {0}")]
pub struct ChunkError(pub &'static str);

/// Decodes a chunk: (source, name, time, value) for every sample, in the order stored.
pub fn decode(bytes: &[u8]) -> Result<Vec<(String, String, i64, f64)>, ChunkError> {
    let mut at = 0usize;
    let mut take = |n: usize| -> Result<&[u8], ChunkError> {
        let part = bytes.get(at..at + n).ok_or(ChunkError("it ends early"))?;
        at += n;
        Ok(part)
    };
    if take(1)?[0] != VERSION {
        return Err(ChunkError("an unknown version"));
    }
    let series_count = u16::from_le_bytes(take(2)?.try_into().unwrap_or_default()) as usize;
    let mut series = Vec::with_capacity(series_count);
    for _ in 0..series_count {
        let mut pair = [String::new(), String::new()];
        for text in &mut pair {
            let len = u16::from_le_bytes(take(2)?.try_into().unwrap_or_default()) as usize;
            *text = String::from_utf8(take(len)?.to_vec())
                .map_err(|_| ChunkError("a name that is not UTF-8"))?;
        }
        series.push(pair);
    }
    let count = u32::from_le_bytes(take(4)?.try_into().unwrap_or_default()) as usize;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let i = u16::from_le_bytes(take(2)?.try_into().unwrap_or_default()) as usize;
        let t = i64::from_le_bytes(take(8)?.try_into().unwrap_or_default());
        let v = f64::from_le_bytes(take(8)?.try_into().unwrap_or_default());
        let [source, name] = series
            .get(i)
            .ok_or(ChunkError("a series it does not name"))?;
        out.push((source.clone(), name.clone(), t, v));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn samples_round_trip() {
        let samples = [
            ("MatchingEnginePrimary", "internal_latency_us", 10, 42.0),
            ("system", "load1", 11, 0.5),
            ("MatchingEnginePrimary", "internal_latency_us", 12, 7.0),
        ];
        let bytes = encode(&samples);
        assert_eq!(
            bytes.len(),
            1 + 2 + (2 + 21 + 2 + 19) + (2 + 6 + 2 + 5) + 4 + 3 * 18
        );
        let back = decode(&bytes).unwrap();
        assert_eq!(back.len(), 3);
        assert_eq!(
            back[2],
            (
                "MatchingEnginePrimary".into(),
                "internal_latency_us".into(),
                12,
                7.0
            )
        );
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode(&[9]).is_err());
    }

    proptest! {
        #[test]
        fn any_bytes_decode_or_fail_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }
    }
}

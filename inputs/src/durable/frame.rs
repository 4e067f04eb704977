//! Checksummed, versioned frames: how records and snapshots sit in files.
//!
//! A frame is `[len: u32 LE][crc32 of body: u32 LE][body]`, where the body is a format version
//! byte followed by the record encoded with bincode (serde). Reading stops at the first frame
//! that is incomplete, too long or fails its checksum: that is where a crash tore the file.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The format of frame bodies. Readers refuse bodies of another version.
pub const VERSION: u8 = 2;

/// Largest body accepted when reading (a corrupt length must not allocate gigabytes).
pub const MAX_BODY: usize = 1 << 30;

/// Appends `value` as one frame.
pub fn write<T: Serialize>(out: &mut Vec<u8>, value: &T) -> Result<(), String> {
    let start = out.len();
    out.extend_from_slice(&[0u8; 8]);
    out.push(VERSION);
    bincode::serialize_into(&mut *out, value).map_err(|e| format!("encoding a record: {e}"))?;
    let body = &out[start + 8..];
    let len = u32::try_from(body.len()).map_err(|_| "record larger than 4 GiB".to_string())?;
    let crc = crc32fast::hash(body);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// Why reading stopped before the end.
#[derive(Debug, PartialEq, Eq)]
pub enum Stop {
    /// Fewer bytes than a header or the body it announces: a torn write.
    Torn,
    /// The body does not match its checksum.
    Checksum,
    /// The checksum matched but the body did not decode (or has another version).
    Undecodable(String),
}

/// Values read, each with the offset just past its frame.
pub type Frames<T> = Vec<(T, usize)>;

/// Reads frames from `bytes` until the end or a bad frame; returns the values, and where and
/// why reading stopped early (if it did).
pub fn read_all<T: DeserializeOwned>(bytes: &[u8]) -> (Frames<T>, Option<(usize, Stop)>) {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        match read_one(&bytes[at..]) {
            Ok((value, n)) => {
                at += n;
                out.push((value, at));
            }
            Err(stop) => return (out, Some((at, stop))),
        }
    }
    (out, None)
}

fn read_one<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, usize), Stop> {
    if bytes.len() < 8 {
        return Err(Stop::Torn);
    }
    let len = u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
    if len == 0 || len > MAX_BODY {
        return Err(Stop::Checksum);
    }
    if bytes.len() < 8 + len {
        return Err(Stop::Torn);
    }
    let body = &bytes[8..8 + len];
    if crc32fast::hash(body) != crc {
        return Err(Stop::Checksum);
    }
    if body[0] != VERSION {
        return Err(Stop::Undecodable(format!(
            "format version {} (this build reads {VERSION})",
            body[0]
        )));
    }
    let value = bincode::deserialize(&body[1..]).map_err(|e| Stop::Undecodable(e.to_string()))?;
    Ok((value, 8 + len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_and_flipped_tails_stop_reading_at_the_last_whole_frame() {
        let mut buf = Vec::new();
        for i in 0..3u64 {
            write(&mut buf, &(i, format!("record {i}"))).unwrap();
        }
        let whole = buf.len();
        let (all, stop) = read_all::<(u64, String)>(&buf);
        assert_eq!(all.len(), 3);
        assert!(stop.is_none());
        // Every truncation point keeps exactly the whole frames before it.
        for cut in 0..whole {
            let (got, stop) = read_all::<(u64, String)>(&buf[..cut]);
            assert!(got.iter().all(|(_, end)| *end <= cut));
            if got.last().map(|(_, e)| *e) != Some(cut) && cut > 0 {
                assert!(stop.is_some(), "cut at {cut} not detected");
            }
        }
        // A flipped bit in the last frame's body is caught by the checksum.
        let mut flipped = buf.clone();
        let last = flipped.len() - 2;
        flipped[last] ^= 0x10;
        let (got, stop) = read_all::<(u64, String)>(&flipped);
        assert_eq!(got.len(), 2);
        assert_eq!(stop.map(|s| s.1), Some(Stop::Checksum));
    }
}

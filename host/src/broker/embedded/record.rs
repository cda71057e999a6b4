//! How a stored message is laid out in the embedded queue's file.
//!
//! A small hand-rolled binary format (length-prefixed fields, then the body)
//! rather than JSON: bodies are arbitrary bytes and should not be inflated
//! or re-encoded. The first byte is a version, so that the layout can change
//! without misreading old files.

use crate::broker::Message;

const VERSION: u8 = 1;

/// A message and the attempt it will be delivered as.
#[derive(Debug, Clone)]
pub struct Record {
    pub message: Message,
    pub attempt: u32,
}

#[derive(Debug, thiserror::Error)]
#[error("corrupt queue record: {0}")]
pub struct Corrupt(&'static str);

impl Record {
    pub fn encode(&self) -> Vec<u8> {
        let m = &self.message;
        let mut out = Vec::with_capacity(m.body.len() + 64);
        out.push(VERSION);
        out.extend_from_slice(&self.attempt.to_le_bytes());
        put_opt(&mut out, m.content_type.as_deref());
        put_opt(&mut out, m.message_id.as_deref());
        out.extend_from_slice(&(m.headers.len() as u32).to_le_bytes());
        for (name, value) in &m.headers {
            put(&mut out, name.as_bytes());
            put(&mut out, value.as_bytes());
        }
        out.extend_from_slice(&m.body);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, Corrupt> {
        let mut r = Reader(bytes);
        if r.take(1)? != [VERSION] {
            return Err(Corrupt("unknown version"));
        }
        let attempt = r.u32()?;
        let content_type = r.opt_string()?;
        let message_id = r.opt_string()?;
        let count = r.u32()?;
        let mut headers = Vec::new();
        for _ in 0..count {
            headers.push((r.string()?, r.string()?));
        }
        Ok(Self {
            message: Message {
                body: r.0.to_vec(),
                content_type,
                headers,
                message_id,
            },
            attempt,
        })
    }
}

/// A record with the queue it belongs to (for the delayed table, whose key
/// is the due time).
pub fn encode_routed(queue: &str, record: &Record) -> Vec<u8> {
    let mut out = Vec::new();
    put(&mut out, queue.as_bytes());
    out.extend_from_slice(&record.encode());
    out
}

pub fn decode_routed(bytes: &[u8]) -> Result<(String, Record), Corrupt> {
    let mut r = Reader(bytes);
    let queue = r.string()?;
    Ok((queue, Record::decode(r.0)?))
}

fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn put_opt(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        None => out.push(0),
        Some(value) => {
            out.push(1);
            put(out, value.as_bytes());
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Corrupt> {
        if self.0.len() < n {
            return Err(Corrupt("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, Corrupt> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }

    fn string(&mut self) -> Result<String, Corrupt> {
        let len = self.u32()? as usize;
        String::from_utf8(self.take(len)?.to_vec()).map_err(|_| Corrupt("not UTF-8"))
    }

    fn opt_string(&mut self) -> Result<Option<String>, Corrupt> {
        match self.take(1)? {
            [0] => Ok(None),
            [1] => Ok(Some(self.string()?)),
            _ => Err(Corrupt("bad option tag")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        Record {
            message: Message {
                body: vec![0, 1, 2, 255],
                content_type: Some("application/json".into()),
                headers: vec![("a".into(), "1".into()), ("b".into(), String::new())],
                message_id: None,
            },
            attempt: 3,
        }
    }

    #[test]
    fn records_round_trip() {
        let r = record();
        let back = Record::decode(&r.encode()).unwrap();
        assert_eq!(back.attempt, 3);
        assert_eq!(back.message.body, r.message.body);
        assert_eq!(back.message.headers, r.message.headers);
        assert_eq!(back.message.content_type, r.message.content_type);
        assert_eq!(back.message.message_id, None);
        let (queue, back) = decode_routed(&encode_routed("jobs", &r)).unwrap();
        assert_eq!(queue, "jobs");
        assert_eq!(back.encode(), r.encode());
    }

    #[test]
    fn truncated_records_are_reported() {
        let bytes = record().encode();
        assert!(Record::decode(&bytes[..7]).is_err());
        assert!(Record::decode(&[9]).is_err());
    }
}

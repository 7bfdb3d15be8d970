//! Server-Sent Events parsing for `weft watch` (the `/events` stream):
//! bytes in, whole events out, chunk boundaries anywhere (even inside a
//! UTF-8 character).
//!
//! Guarantees: memory is bounded by [`SSE_EVENT_BYTES_MAX`]; an event
//! larger than that is an error, never an unbounded buffer. Comment lines
//! (`:` keep-alives) and fields other than `event`/`data` are skipped.

/// The largest event (all its lines) accepted.
pub const SSE_EVENT_BYTES_MAX: usize = 1024 * 1024;

/// One event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field (`message` when absent).
    pub event: String,
    /// The `data:` lines, joined by `\n`.
    pub data: String,
}

/// The stream broke the bound.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("an event of more than {SSE_EVENT_BYTES_MAX} bytes")]
pub struct SseTooLarge;

/// An incremental parser.
#[derive(Debug, Default)]
pub struct SseParser {
    buffer: Vec<u8>,
}

impl SseParser {
    /// Feed a chunk; the events it completes.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, SseTooLarge> {
        // CR LF and LF both end lines; dropping CRs makes them one case.
        self.buffer.extend(chunk.iter().copied().filter(|&b| b != b'\r'));
        let mut events = Vec::new();
        while let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
            let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
            if let Some(event) = parse_block(&String::from_utf8_lossy(&block)) {
                events.push(event);
            }
        }
        if self.buffer.len() > SSE_EVENT_BYTES_MAX {
            self.buffer.clear();
            return Err(SseTooLarge);
        }
        Ok(events)
    }
}

fn parse_block(block: &str) -> Option<SseEvent> {
    let mut event = None;
    let mut data: Option<String> = None;
    for line in block.lines() {
        if line.is_empty() || line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event = Some(value.to_owned()),
            "data" => match &mut data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => data = Some(value.to_owned()),
            },
            _ => {}
        }
    }
    let data = data?;
    Some(SseEvent { event: event.unwrap_or_else(|| "message".into()), data })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_are_reassembled() {
        let stream =
            "event: sync\ndata: {\"a\":\n\n: keep-alive\n\nevent: state_mutation\r\ndata: é1\r\ndata: 2\r\n\r\n";
        let bytes = stream.as_bytes();
        for cut in 0..bytes.len() {
            let mut parser = SseParser::default();
            let mut events = parser.push(&bytes[..cut]).unwrap();
            events.extend(parser.push(&bytes[cut..]).unwrap());
            assert_eq!(
                events,
                vec![
                    SseEvent { event: "sync".into(), data: "{\"a\":".into() },
                    SseEvent { event: "state_mutation".into(), data: "é1\n2".into() },
                ],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn data_without_event_name_is_a_message() {
        let mut parser = SseParser::default();
        assert_eq!(parser.push(b"data:x\n\n").unwrap(), vec![SseEvent { event: "message".into(), data: "x".into() }]);
    }

    #[test]
    fn an_endless_event_is_refused() {
        let mut parser = SseParser::default();
        let line = vec![b'x'; 64 * 1024];
        let mut result = Ok(Vec::new());
        for _ in 0..20 {
            result = parser.push(&line);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(SseTooLarge));
    }
}

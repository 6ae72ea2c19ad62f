//! The event trace as Chrome/Perfetto trace JSON (`chrome://tracing`, ui.perfetto.dev): one track
//! per DMA stream (semaphore) and one for compute, so the software pipeline's overlap is visible.

use super::{Event, EventKind};
use std::collections::BTreeMap;

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Chrome trace JSON of `events` for kernel `name`. Times are the interpreter's logical clock,
/// written as microseconds.
pub fn chrome_trace_json(name: &str, events: &[Event]) -> String {
    let mut tracks: BTreeMap<&str, usize> = BTreeMap::new();
    tracks.insert("compute", 0);
    for e in events {
        let n = tracks.len();
        tracks.entry(e.track.as_str()).or_insert(n);
    }
    let mut items = Vec::new();
    items.push(format!(r#"{{"name":"process_name","ph":"M","pid":1,"tid":0,"args":{{"name":"{}"}}}}"#, escape(name)));
    for (track, tid) in &tracks {
        items.push(format!(
            r#"{{"name":"thread_name","ph":"M","pid":1,"tid":{tid},"args":{{"name":"{}"}}}}"#,
            escape(track)
        ));
    }
    for e in events {
        let cat = match e.kind {
            EventKind::Dma => "dma",
            EventKind::Compute => "compute",
            EventKind::BlockCopy => "block_copy",
        };
        items.push(format!(
            r#"{{"name":"{}","cat":"{cat}","ph":"X","pid":1,"tid":{},"ts":{},"dur":{},"args":{{"bytes":{},"loc":"{}"}}}}"#,
            escape(&e.name),
            tracks[e.track.as_str()],
            e.start,
            e.end.saturating_sub(e.start).max(1),
            e.bytes,
            escape(&e.loc.to_string())
        ));
    }
    format!("{{\"traceEvents\":[\n{}\n],\"displayTimeUnit\":\"ns\"}}\n", items.join(",\n"))
}

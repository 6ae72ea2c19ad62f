//! `rpa trace`: one batch on interpret mode with event tracing, written as a single Chrome/Perfetto
//! trace. Each launched kernel is a process (pid 1, 2, 3 in launch order, named after the case and
//! the kernel); its tracks (threads) are `compute` and one per DMA semaphore, as
//! `rpa_dsl::interpret::trace::chrome_trace_json` writes them. Times are the interpreter's logical
//! clock; each kernel's events are shifted to start where the previous kernel's end, since the
//! kernels run one after the other.

use super::run::case_label;
use super::show::batch_or_default;
use super::{failed, CliError, CliResult, TraceArgs};
use crate::rpa::launch;
use crate::rpa::RpaCase;
use rpa_dsl::interpret::trace::chrome_trace_json;
use rpa_dsl::interpret::Event;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Events per track of one kernel of a merged trace.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelTracks {
    pub pid: u64,
    /// `decode`, `prefill` or `mixed`.
    pub case: String,
    pub kernel: String,
    /// `(track name, complete events)`, in track order (compute first).
    pub tracks: Vec<(String, usize)>,
}

/// Merges the per-kernel traces into one trace JSON (see the module documentation).
pub fn merge(traces: &[(RpaCase, String, Vec<Event>)]) -> Result<(Value, Vec<KernelTracks>), String> {
    let mut all = Vec::new();
    let mut summary = Vec::new();
    let mut offset = 0u64;
    for (i, (case, name, events)) in traces.iter().enumerate() {
        let pid = i as u64 + 1;
        let text = chrome_trace_json(name, events);
        let mut v: Value = serde_json::from_str(&text).map_err(|e| format!("trace of {name}: {e}"))?;
        let items = v.get_mut("traceEvents").and_then(Value::as_array_mut).ok_or("trace without traceEvents")?;
        let mut threads = BTreeMap::new();
        let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
        let mut end = offset;
        for e in items.iter_mut() {
            e["pid"] = json!(pid);
            let tid = e["tid"].as_u64().unwrap_or(0);
            match e["ph"].as_str() {
                Some("M") if e["name"] == "process_name" => {
                    e["args"]["name"] = json!(format!("rpa-{}: {name}", case_label(*case)));
                }
                Some("M") if e["name"] == "thread_name" => {
                    threads.insert(tid, e["args"]["name"].as_str().unwrap_or("?").to_string());
                }
                Some("X") => {
                    let ts = e["ts"].as_u64().unwrap_or(0) + offset;
                    e["ts"] = json!(ts);
                    end = end.max(ts + e["dur"].as_u64().unwrap_or(0));
                    *counts.entry(tid).or_default() += 1;
                }
                _ => {}
            }
        }
        all.push(json!({"name": "process_sort_index", "ph": "M", "pid": pid, "tid": 0, "args": {"sort_index": pid}}));
        all.append(items);
        summary.push(KernelTracks {
            pid,
            case: case_label(*case).to_string(),
            kernel: name.clone(),
            tracks: threads.iter().map(|(tid, t)| (t.clone(), counts.get(tid).copied().unwrap_or(0))).collect(),
        });
        offset = end;
    }
    let trace = json!({
        "traceEvents": all,
        "displayTimeUnit": "ns",
        "otherData": {"clock": "the interpreter's logical clock (instructions weighted by vector work), not wall time"},
    });
    Ok((trace, summary))
}

/// `rpa trace`.
pub fn command(a: &TraceArgs) -> CliResult {
    let batch = batch_or_default(&a.batch)?;
    println!("rpa trace — backend: interpret, event trace");
    println!("  batch           {}", batch.describe());
    if let Some(note) = &batch.reordered {
        println!("  note            {note}");
    }
    batch.validate().map_err(failed)?;
    let out = launch::run_traced(&batch.inputs, &batch.opts).map_err(failed)?;
    let (trace, summary) = merge(&out.report.traces).map_err(CliError::Failed)?;
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| CliError::Failed(format!("{}: {e}", dir.display())))?;
    }
    let text = serde_json::to_string(&trace).expect("serializable") + "\n";
    std::fs::write(&a.out, text).map_err(|e| CliError::Failed(format!("{}: {e}", a.out.display())))?;
    for k in &summary {
        let total: usize = k.tracks.iter().map(|t| t.1).sum();
        println!("  pid {} rpa-{:<8} {} — {total} events", k.pid, k.case, k.kernel);
        for (track, n) in &k.tracks {
            println!("      {track:<20} {n:>7} events");
        }
    }
    println!(
        "  wrote           {} (open it in ui.perfetto.dev or chrome://tracing; one process per kernel)",
        a.out.display()
    );
    Ok(())
}

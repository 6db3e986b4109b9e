//! A part's history for the scanner: the assembly events, each with who
//! recorded it and from where, found in the audit log. A connect's audit
//! entry names its event id; a disconnect or remove names the two ends, and
//! is matched to the disconnect event of that pair written in the seconds
//! before it was audited.

use serde_json::{Value, json};

use crate::db::{assembly::AssemblyRow, audit::AuditRow};

/// Seconds between an event and its audit entry still taken as a match.
const WINDOW_S: i64 = 120;

fn secs(t: &str) -> Option<i64> {
    t.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

/// Whether `audit` describes the event `row`.
fn describes(audit: &AuditRow, detail: &Value, row: &AssemblyRow) -> bool {
    let (Some(a), Some(b)) = (row.part_number.as_deref(), row.connected_to.as_deref()) else { return false };
    let connected = row.connection_status.as_deref() != Some("disconnected");
    let pair = |s: &str, t: &str| (s == a && t == b) || (s == b && t == a);
    let close = match (secs(&audit.at), row.scan_time.as_deref().and_then(secs)) {
        (Some(at), Some(ev)) => (0..=WINDOW_S).contains(&(at - ev)),
        _ => false,
    };
    match audit.action.as_str() {
        "scan.connect" => connected && detail.get("event_id").and_then(Value::as_i64) == Some(row.id),
        "scan.disconnect" => {
            let s = detail.get("source").and_then(Value::as_str).unwrap_or("");
            let t = detail.get("target").and_then(Value::as_str).unwrap_or("");
            !connected && close && pair(s, t)
        }
        "scan.remove" => {
            let ended = detail.get("ended").and_then(Value::as_array).cloned().unwrap_or_default();
            !connected
                && close
                && ended
                    .iter()
                    .filter_map(Value::as_str)
                    .any(|e| e.split_once(" -> ").is_some_and(|(s, t)| pair(s, t)))
        }
        _ => false,
    }
}

/// The events of `rows` (newest first) as the page shows them, each with
/// `operator`, `client` and `uid` from the matching entry of `audit`.
pub fn annotate(rows: &[AssemblyRow], audit: &[AuditRow]) -> Vec<Value> {
    let details: Vec<Value> = audit
        .iter()
        .map(|a| a.detail.as_deref().and_then(|d| serde_json::from_str(d).ok()).unwrap_or(Value::Null))
        .collect();
    let mut used = vec![false; audit.len()];
    rows.iter()
        .map(|r| {
            let found = (0..audit.len()).find(|&i| !used[i] && describes(&audit[i], &details[i], r));
            let who = found.map(|i| {
                // A remove ends several connections with one entry; a connect is one event.
                if audit[i].action != "scan.remove" {
                    used[i] = true;
                }
                &audit[i]
            });
            json!({
                "id": r.id,
                "source": r.part_number,
                "source_type": r.part_type,
                "target": r.connected_to,
                "target_type": r.connected_to_type,
                "status": r.connection_status.as_deref().unwrap_or("connected"),
                "at": r.scan_time,
                "operator": who.and_then(|w| w.operator.clone()),
                "client": who.and_then(|w| w.client.clone()),
                "uid": who.and_then(|w| w.uid),
                "action": who.map(|w| w.action.clone()),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, a: &str, b: &str, at: &str, status: &str) -> AssemblyRow {
        AssemblyRow {
            id,
            part_number: Some(a.into()),
            part_type: None,
            polarization: None,
            scan_time: Some(at.into()),
            connected_to: Some(b.into()),
            connected_to_type: None,
            connected_polarization: None,
            connected_scan_time: Some(at.into()),
            connection_status: Some(status.into()),
        }
    }

    fn audit(at: &str, action: &str, op: &str, client: Option<&str>, detail: Value) -> AuditRow {
        AuditRow {
            at: at.into(),
            uid: None,
            operator: Some(op.into()),
            client: client.map(str::to_owned),
            action: action.into(),
            detail: Some(detail.to_string()),
        }
    }

    #[test]
    fn events_get_their_operator_and_client() {
        let rows = vec![
            row(3, "LNA1", "CXS1", "2026-01-01T10:05:00Z", "disconnected"),
            row(2, "ANT1", "LNA1", "2026-01-01T10:01:00Z", "connected"),
            row(1, "LNA1", "CXS1", "2026-01-01T10:00:00Z", "connected"),
        ];
        let log = vec![
            audit(
                "2026-01-01T10:05:01Z",
                "scan.remove",
                "ann",
                Some("10.0.0.9"),
                json!({"part": "LNA1", "ended": ["LNA1 -> CXS1"]}),
            ),
            audit(
                "2026-01-01T10:01:00Z",
                "scan.connect",
                "bob",
                None,
                json!({"source": "ANT1", "target": "LNA1", "event_id": 2}),
            ),
            audit("2026-01-01T10:00:00Z", "scan.connect", "ann", Some("10.0.0.9"), json!({"event_id": 1})),
        ];
        let out = annotate(&rows, &log);
        assert_eq!(out[0]["operator"], "ann");
        assert_eq!(out[0]["client"], "10.0.0.9");
        assert_eq!(out[1]["operator"], "bob");
        assert_eq!(out[1]["client"], Value::Null);
        assert_eq!(out[2]["operator"], "ann");
        // Too late to be this event's entry.
        let late = vec![audit(
            "2026-01-01T11:00:00Z",
            "scan.disconnect",
            "x",
            None,
            json!({"source": "LNA1", "target": "CXS1"}),
        )];
        assert_eq!(annotate(&rows[..1], &late)[0]["operator"], Value::Null);
    }
}

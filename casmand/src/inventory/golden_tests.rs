//! The golden data of the Python tool: the current-state rule and the ASCII
//! chains view must reproduce `legacy/golden/*` from the real assembly log.
//! Skipped (with a note) when `shared/legacy` is absent.

use std::{collections::HashMap, error::Error as StdError};

use sqlx::{Connection, sqlite::SqliteConnectOptions, sqlite::SqliteConnection};

use super::*;

type TestResult = Result<(), Box<dyn StdError>>;

/// `(event, polarization as stored)` for every row of a legacy assembly log.
async fn load_events(
    name: &str,
) -> Result<Option<(Vec<Event>, HashMap<i64, Option<String>>)>, Box<dyn StdError>> {
    let Some(path) = legacy_file(name) else { return Ok(None) };
    let opts = SqliteConnectOptions::new().filename(&path).read_only(true).immutable(true);
    let mut conn = SqliteConnection::connect_with(&opts).await?;
    type Row = (i64, String, Option<String>, Option<String>, Option<String>, String, Option<String>, String);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, part_number, part_type, polarization, scan_time, connected_to, connected_to_type, \
         connection_status FROM assembly \
         WHERE part_number IS NOT NULL AND connected_to IS NOT NULL ORDER BY id",
    )
    .fetch_all(&mut conn)
    .await?;
    conn.close().await?;
    let pols = rows.iter().map(|r| (r.0, r.3.clone())).collect();
    let events = rows
        .into_iter()
        .map(|(id, part_number, part_type, _, scan_time, connected_to, connected_to_type, status)| Event {
            id,
            clock: 0,
            part_number,
            part_type,
            connected_to,
            connected_to_type,
            scan_time: scan_time.unwrap_or_default(),
            connected: status == "connected",
        })
        .collect();
    Ok(Some((events, pols)))
}

/// The quoted fields of a golden line `   ('A', 'B', 'time', 'TYPE', '1')`.
fn quoted(line: &str) -> Vec<String> {
    line.split('\'').skip(1).step_by(2).map(str::to_owned).collect()
}

#[tokio::test]
async fn current_state_matches_golden() -> TestResult {
    let Some((events, pols)) = load_events("assembled_casm-2026-01.db").await? else { return Ok(()) };
    let Some(golden) = legacy_file("golden/assembled_casm-2026-01.current_state.txt") else { return Ok(()) };
    let golden = std::fs::read_to_string(golden)?;
    assert_eq!(events.len(), 165);

    let expected: Vec<Vec<String>> = golden.lines().filter(|l| l.starts_with("   ('")).map(quoted).collect();
    assert!(golden.contains("current connected rows: 75"));
    assert_eq!(expected.len(), 75);

    let edges = current_edges(&events);
    let got: Vec<Vec<String>> = edges
        .iter()
        .map(|e| {
            let pol = pols.get(&e.event_id).cloned().flatten().unwrap_or_default();
            vec![
                e.source.clone(),
                e.target.clone(),
                e.scan_time.clone(),
                e.source_type.clone().unwrap_or_default(),
                pol,
            ]
        })
        .collect();
    assert_eq!(got, expected);

    // "multi-out: {}" and "multi-in: {}": one edge out and in per part.
    for e in &edges {
        assert_eq!(outgoing(&edges, &e.source).len(), 1, "{}", e.source);
        assert_eq!(incoming(&edges, &e.target).len(), 1, "{}", e.target);
    }

    // Every golden chain traces back out of the edges.
    let chains: Vec<&str> = golden
        .lines()
        .skip_while(|l| *l != "chains:")
        .skip(1)
        .take_while(|l| l.starts_with("    "))
        .map(str::trim)
        .collect();
    assert_eq!(chains.len(), 28);
    for chain in chains {
        let parts: Vec<&str> = chain.split(" -> ").collect();
        let traced = trace_chain(parts[parts.len() / 2], &edges);
        assert_eq!(traced.parts, parts);
        assert!(!traced.cyclic);
        assert_eq!(
            traced.snap_port.map(|p| p.to_string()).as_deref(),
            parts.last().filter(|p| p.starts_with("SNAP")).copied()
        );
    }
    Ok(())
}

#[tokio::test]
async fn ascii_chains_match_golden() -> TestResult {
    let Some((events, _)) = load_events("assembled_casm-2026-01.db").await? else { return Ok(()) };
    let Some(golden) = legacy_file("golden/assembled_casm-2026-01.ascii_chains.txt") else { return Ok(()) };
    let golden = std::fs::read_to_string(golden)?;
    let text = ascii_chains(&current_edges(&events));
    assert_eq!(format!("{text}\n"), golden);
    Ok(())
}

#[tokio::test]
async fn every_legacy_id_classifies() -> TestResult {
    let Some((events, pols)) = load_events("assembled_casm-2026-01.db").await? else { return Ok(()) };
    for e in &events {
        for id in [&e.part_number, &e.connected_to] {
            assert!(matches!(classify_part_id(id), PartId::Current(_) | PartId::Snap(_)), "{id}");
        }
    }
    // Stored polarizations: 1, 2, X, N/A; all normalise.
    for pol in pols.values() {
        assert_ne!(normalize_legacy_polarization(pol.as_deref()), LegacyPol::Unrecognised, "{pol:?}");
    }
    // The dev log: historic ids, no connection_status (all connected).
    let Some(path) = legacy_file("assembled_casm-2025-08-dev.db") else { return Ok(()) };
    let opts = SqliteConnectOptions::new().filename(&path).read_only(true).immutable(true);
    let mut conn = SqliteConnection::connect_with(&opts).await?;
    let rows: Vec<(i64, String, String, String)> =
        sqlx::query_as("SELECT id, part_number, connected_to, scan_time FROM assembly ORDER BY id")
            .fetch_all(&mut conn)
            .await?;
    conn.close().await?;
    let events: Vec<Event> = rows
        .into_iter()
        .map(|(id, a, b, t)| Event {
            id,
            clock: 0,
            part_number: a,
            part_type: None,
            connected_to: b,
            connected_to_type: None,
            scan_time: t,
            connected: true,
        })
        .collect();
    assert_eq!(current_edges(&events).len(), 6);
    for e in &events {
        let id = classify_part_id(&e.part_number);
        assert!(matches!(id, PartId::Historic { format: HistoricFormat::PolarizationFirst, .. }), "{id:?}");
    }
    Ok(())
}

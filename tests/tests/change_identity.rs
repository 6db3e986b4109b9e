//! Every change casmand acknowledges carries its identity (site, sequence,
//! hybrid logical clock) in the same transaction as the change: scans
//! acknowledged just before a SIGKILL have theirs after the restart, the
//! sequence has no gap and goes on after the restart, the clock strictly
//! increases, refused scans take no number, and writes by another program
//! carry none.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use casman_tests::{Daemon, DaemonOpts, sqlite};

fn query(d: &Daemon, db: &str, sql: &str) -> Vec<Vec<String>> {
    sqlite(&d.data_dir.join(db), sql)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split('|').map(str::to_owned).collect())
        .collect()
}

/// (event id, site id, seq, hlc) of every event, in id order; the site id is
/// empty for an event without identity.
fn events(d: &Daemon) -> Vec<(i64, String, i64, i64)> {
    query(
        d,
        "assembled_casm.db",
        "SELECT a.id, COALESCE(s.site_id, ''), COALESCE(o.seq, 0), COALESCE(o.hlc, 0)
           FROM assembly a LEFT JOIN event_origin o ON o.event_id = a.id LEFT JOIN sites s ON s.code = o.site
          ORDER BY a.id",
    )
    .into_iter()
    .map(|r| (r[0].parse().unwrap(), r[1].clone(), r[2].parse().unwrap(), r[3].parse().unwrap()))
    .collect()
}

#[test]
fn acknowledged_changes_keep_their_identity_through_a_kill() {
    let mut d = Daemon::start_with(DaemonOpts::default().env("CASMAN_SITE_ID", "alpha"));
    d.ctl_ok(&["parts", "add", "ANTENNA", "4", "1"]);
    d.ctl_ok(&["parts", "add", "LNA", "4", "1"]);
    // parts.db: eight parts inserted, stamped as alpha, sequence 1..8.
    let parts = query(
        &d,
        "parts.db",
        "SELECT s.site_id, c.seq, c.tbl, c.op FROM change_log c JOIN sites s ON s.code = c.site ORDER BY c.seq",
    );
    assert_eq!(parts.len(), 8, "{parts:?}");
    for (i, r) in parts.iter().enumerate() {
        assert_eq!(r, &vec!["alpha".to_owned(), (i + 1).to_string(), "parts".into(), "insert".into()]);
    }
    d.ctl_ok(&["scan", "connect", "ANT00001P1", "LNA00001P1"]);
    d.ctl_ok(&["scan", "connect", "ANT00002P1", "LNA00002P1"]);
    // Refused (LNA00001P1 already receives): nothing written, no number taken.
    d.ctl_err(&["scan", "connect", "ANT00003P1", "LNA00001P1"], 1);
    d.ctl_ok(&["scan", "disconnect", "ANT00002P1", "LNA00002P1"]);
    // Acknowledged, then the daemon is killed at once.
    d.ctl_ok(&["scan", "connect", "ANT00003P1", "LNA00003P1"]);
    d.kill();
    d.restart();
    d.ctl_ok(&["scan", "connect", "ANT00004P1", "LNA00004P1"]);
    // Another program's write carries no identity.
    sqlite(
        &d.data_dir.join("assembled_casm.db"),
        "INSERT INTO assembly (part_number, part_type, polarization, scan_time, connected_to, connected_to_type,
             connected_polarization, connected_scan_time, connection_status)
         VALUES ('ANT00002P1', 'ANTENNA', 'P1', '2026-01-01T00:00:00Z', 'LNA00002P1', 'LNA', 'P1',
                 '2026-01-01T00:00:00Z', 'connected')",
    );
    let ev = events(&d);
    assert_eq!(ev.len(), 6, "{ev:?}");
    let stamped: Vec<_> = ev.iter().filter(|e| !e.1.is_empty()).collect();
    assert_eq!(stamped.len(), 5, "{ev:?}");
    assert!(stamped.iter().all(|e| e.1 == "alpha"));
    assert_eq!(stamped.iter().map(|e| e.2).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
    assert!(stamped.windows(2).all(|w| w[0].3 < w[1].3), "{ev:?}");
    assert!(ev.last().unwrap().1.is_empty(), "{ev:?}");
    // The clock is near real time (ms * 65536 + counter).
    let now_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let last_ms = stamped.last().unwrap().3 >> 16;
    assert!(last_ms <= now_ms && last_ms > now_ms - 600_000, "{last_ms} vs {now_ms}");
}

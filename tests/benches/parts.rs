//! Parts benchmarks: generation of 1 and of 1000 parts through the socket and
//! listing 100k parts, each as a median and as a ratio to raw sqlx doing the
//! same rows in the same process (same pragmas: WAL, synchronous=FULL).
//!
//! Run: `cargo bench -p casman-tests --bench parts`

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use casman_proto::v1::{AddPartsRequest, ListPartsRequest, parts_client::PartsClient};
use common::{Bench, median, raw_pool, report};

/// A parts row as the baseline reads it.
type RawPart = (i64, String, Option<String>, Option<String>, Option<String>, Option<String>);

const SCHEMA: &str = "CREATE TABLE parts (id INTEGER PRIMARY KEY, part_number TEXT UNIQUE, part_type TEXT,
    polarization TEXT, date_created TEXT, date_modified TEXT)";

async fn raw_insert(pool: &sqlx::SqlitePool, start: &mut u32, n: u32) {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
    for _ in 0..n {
        *start += 1;
        sqlx::query("INSERT INTO parts (part_number, part_type, polarization, date_created, date_modified) VALUES (?, 'LNA', 'P1', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')")
            .bind(format!("LNA{:05}P1", *start))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let bench = Bench::start().await;
    let client = PartsClient::new(bench.channel.clone());
    let raw_dir = tempfile::tempdir().unwrap();
    let pool = raw_pool(raw_dir.path().join("raw.db")).await;
    sqlx::query(SCHEMA).execute(&pool).await.unwrap();
    let mut raw_next = 0u32;

    let add = |t: &'static str, n: u32, pol: &'static str| {
        let mut c = client.clone();
        async move {
            c.add_parts(AddPartsRequest { part_type: t.into(), count: n, polarization: pol.into() })
                .await
                .unwrap();
        }
    };

    let one = median(201, || add("ANTENNA", 1, "1")).await;
    let raw_one = median(201, || {
        let pool = pool.clone();
        let mut s = raw_next;
        raw_next += 1;
        async move { raw_insert(&pool, &mut s, 1).await }
    })
    .await;
    report("parts add 1 part (socket round trip)", one, "raw sqlx insert 1 row (1 tx)", raw_one);

    let thousand = median(15, || add("LNA", 1000, "1")).await;
    let raw_thousand = median(15, || {
        let pool = pool.clone();
        let mut s = raw_next;
        raw_next += 1000;
        async move { raw_insert(&pool, &mut s, 1000).await }
    })
    .await;
    report("parts add 1000 parts (one request)", thousand, "raw sqlx insert 1000 rows (1 tx)", raw_thousand);

    // Bring both to 100k rows, then list them all.
    let have: u32 = 201 + 15_000;
    let batches = (100_000 - have).div_ceil(1000);
    for _ in 0..batches {
        add("COAXSHORT", 1000, "2").await;
    }
    let total = have + batches * 1000;
    let rest = total - raw_next;
    let mut s = raw_next;
    raw_insert(&pool, &mut s, rest).await;
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM parts").fetch_one(&pool).await.unwrap();
    let list = median(7, || {
        let mut c = client.clone();
        async move {
            let mut stream = c.list_parts(ListPartsRequest::default()).await.unwrap().into_inner();
            let mut n = 0;
            while let Some(page) = stream.message().await.unwrap() {
                n += page.parts.len();
            }
            assert!(n >= 100_000);
        }
    })
    .await;
    let raw_list = median(7, || {
        let pool = pool.clone();
        async move {
            let rows: Vec<RawPart> =
                sqlx::query_as("SELECT id, part_number, part_type, polarization, date_created, date_modified FROM parts ORDER BY date_created DESC, id DESC")
                    .fetch_all(&pool)
                    .await
                    .unwrap();
            assert!(rows.len() >= 100_000);
        }
    })
    .await;
    report(
        &format!("parts list of {rows} parts (streamed)"),
        list,
        "raw sqlx select of the same rows",
        raw_list,
    );
    bench.stop().await;
}

//! Assembly benchmarks: connect/disconnect round trips through the socket
//! (median latency with one client; throughput with 1, 4 and 16 concurrent
//! clients, synchronous=FULL), each against the same transaction run in
//! process without gRPC; and chain lookup on a log of 100k rows.
//!
//! Run: `cargo bench -p casman-tests --bench assembly`

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Instant;

use casman_proto::v1::{
    AddPartsRequest, ConnectRequest, DisconnectRequest, GetChainRequest, assembly_client::AssemblyClient,
    parts_client::PartsClient,
};
use casmand::{
    db::{Databases, scans},
    inventory::{PartType, Polarization},
};
use common::{Bench, median, report};

async fn cycles_grpc(c: &mut AssemblyClient<tonic::transport::Channel>, k: u32, n: u32) {
    let (a, l) = (format!("ANT{k:05}P1"), format!("LNA{k:05}P1"));
    for _ in 0..n {
        c.connect(ConnectRequest { source: a.clone(), target: l.clone() }).await.unwrap();
        c.disconnect(DisconnectRequest { a: a.clone(), b: l.clone() }).await.unwrap();
    }
}

async fn cycles_local(dbs: &Databases, k: u32, n: u32) {
    let (a, l) = (format!("ANT{k:05}P1"), format!("LNA{k:05}P1"));
    for _ in 0..n {
        let s = scans::resolve(&dbs.parts, &a).await.unwrap();
        let t = scans::resolve(&dbs.parts, &l).await.unwrap();
        scans::connect(&dbs.assembled, &s, &t).await.unwrap();
        scans::disconnect(&dbs.assembled, &a, &l).await.unwrap();
    }
}

/// Events per second of `clients` concurrent clients doing `n` cycles each.
async fn throughput_grpc(client: &AssemblyClient<tonic::transport::Channel>, clients: u32, n: u32) -> f64 {
    let t = Instant::now();
    let tasks: Vec<_> = (1..=clients)
        .map(|k| {
            let mut c = client.clone();
            tokio::spawn(async move { cycles_grpc(&mut c, k, n).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    f64::from(clients * n * 2) / t.elapsed().as_secs_f64()
}

async fn throughput_local(dbs: &Databases, clients: u32, n: u32) -> f64 {
    let t = Instant::now();
    let tasks: Vec<_> = (1..=clients)
        .map(|k| {
            let dbs = dbs.clone();
            tokio::spawn(async move { cycles_local(&dbs, k, n).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    f64::from(clients * n * 2) / t.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // --- latency and throughput -------------------------------------------------
    let bench = Bench::start().await;
    let mut parts = PartsClient::new(bench.channel.clone());
    for t in ["ANTENNA", "LNA"] {
        parts
            .add_parts(AddPartsRequest { part_type: t.into(), count: 16, polarization: "1".into() })
            .await
            .unwrap();
    }
    let mut client = AssemblyClient::new(bench.channel.clone());
    let local_dir = tempfile::tempdir().unwrap();
    let dbs = Databases::open(local_dir.path(), &jiff::tz::TimeZone::UTC).await.unwrap();
    for t in [PartType::Antenna, PartType::Lna] {
        casmand::db::parts::generate(&dbs.parts, &dbs.state, t, Polarization::P1, 16, 1..=99_999)
            .await
            .unwrap();
    }

    let connect = median(101, || {
        let mut c = client.clone();
        async move {
            c.connect(ConnectRequest { source: "ANT00001P1".into(), target: "LNA00001P1".into() })
                .await
                .unwrap();
            c.disconnect(DisconnectRequest { a: "ANT00001P1".into(), b: "LNA00001P1".into() }).await.unwrap();
        }
    })
    .await;
    let local = median(101, || cycles_local(&dbs, 1, 1)).await;
    report("connect+disconnect, 1 client (socket)", connect / 2, "same transactions in process", local / 2);

    for clients in [1, 4, 16] {
        let n = 160 / clients;
        let grpc = throughput_grpc(&client, clients, n).await;
        let loc = throughput_local(&dbs, clients, n).await;
        println!(
            "throughput, {clients:>2} concurrent clients: {grpc:>8.0} events/s via socket | {loc:>8.0} events/s in process | ratio {:.2}",
            loc / grpc
        );
    }
    cycles_grpc(&mut client, 1, 1).await;
    bench.stop().await;

    // --- chain lookup on 100k rows -------------------------------------------------
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let big = Databases::open(&data, &jiff::tz::TimeZone::UTC).await.unwrap();
    let mut tx = big.assembled.writer().await.begin().await.unwrap();
    let prefixes = ["ANT", "LNA", "CXS", "CXL", "BAC"];
    let chains = 20_000u32;
    for n in 1..=chains {
        let ids: Vec<String> = prefixes
            .iter()
            .map(|p| format!("{p}{n:05}P1"))
            .chain(std::iter::once(format!(
                "SNAP{}{}{:02}",
                1 + n % 4,
                (b'A' + (n % 11) as u8) as char,
                n % 12
            )))
            .collect();
        for w in ids.windows(2) {
            sqlx::query(
                "INSERT INTO assembly (part_number, part_type, polarization, scan_time, connected_to, connected_to_type,
                 connected_polarization, connected_scan_time, connection_status)
                 VALUES (?, 'X', 'P1', '2026-01-01T00:00:00Z', ?, 'Y', 'P1', '2026-01-01T00:00:00Z', 'connected')",
            )
            .bind(&w[0])
            .bind(&w[1])
            .execute(&mut *tx)
            .await
            .unwrap();
        }
    }
    tx.commit().await.unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM assembly")
        .fetch_one(&*big.assembled.reader().await)
        .await
        .unwrap();
    big.close().await;
    let bench = Bench::start_in(dir).await;
    let client = AssemblyClient::new(bench.channel.clone());
    let mut k = 0u32;
    let grpc = median(201, || {
        k = k % chains + 97;
        let mut c = client.clone();
        async move {
            let r = c.get_chain(GetChainRequest { part: format!("CXS{k:05}P1") }).await.unwrap().into_inner();
            assert_eq!(r.parts.len(), 6);
        }
    })
    .await;
    let assembled = casmand::db::Db::open(
        "assembled_casm.db",
        bench.dir.path().join("data/assembled_casm.db"),
        &casmand::db::ASSEMBLED_MIGRATIONS,
    )
    .await
    .unwrap();
    let mut k = 0u32;
    let local = median(201, || {
        k = k % chains + 97;
        let db = assembled.clone();
        async move {
            let c = casmand::db::assembly::trace(&db, &format!("CXS{k:05}P1")).await.unwrap();
            assert_eq!(c.parts.len(), 6);
        }
    })
    .await;
    let full = median(5, || {
        let db = assembled.clone();
        async move {
            let edges = casmand::db::assembly::current(&db).await.unwrap();
            assert!(edges.len() >= 100_000);
        }
    })
    .await;
    report(&format!("chain lookup, {rows} assembly rows (socket)"), grpc, "same trace in process", local);
    report("  (for scale) current state of all rows", full, "chain lookup in process", local);
    bench.stop().await;
}

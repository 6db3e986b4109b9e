//! Shared pieces of the benchmarks: an in-process casmand on a temp directory
//! and socket, a raw-sqlx baseline database with the same pragmas, medians.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::PathBuf,
    str::FromStr,
    time::{Duration, Instant},
};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::oneshot;
use tonic::transport::Channel;

/// A daemon running inside the bench process.
pub struct Bench {
    pub dir: tempfile::TempDir,
    pub channel: Channel,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Bench {
    pub async fn start() -> Bench {
        Self::start_in(tempfile::tempdir().unwrap()).await
    }

    /// Starts a daemon whose data directory (`<dir>/data`) may hold databases.
    pub async fn start_in(dir: tempfile::TempDir) -> Bench {
        let socket = dir.path().join("casmand.sock");
        let overrides = casmand::config::Overrides {
            data_dir: Some(dir.path().join("data")),
            socket: Some(socket.clone()),
            ..Default::default()
        };
        let loaded = casmand::config::load(None, &overrides).unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            casmand::run(loaded, async move {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        let start = Instant::now();
        let channel = loop {
            if let Ok(c) = casman_proto::client::connect(&socket).await {
                let mut d = casman_proto::v1::daemon_client::DaemonClient::new(c.clone());
                if d.get_status(casman_proto::v1::GetStatusRequest {}).await.is_ok() {
                    break c;
                }
            }
            assert!(start.elapsed() < Duration::from_secs(30), "daemon did not start");
            tokio::task::yield_now().await;
        };
        Bench { dir, channel, stop: Some(tx), task: Some(task) }
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

/// A database with casmand's pragmas, for the raw-sqlx baseline.
pub async fn raw_pool(path: PathBuf) -> sqlx::SqlitePool {
    let opts = SqliteConnectOptions::from_str("sqlite://")
        .unwrap()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(10));
    SqlitePoolOptions::new().max_connections(1).connect_with(opts).await.unwrap()
}

/// Runs `f` `n` times and returns the median duration.
pub async fn median<F, Fut>(n: usize, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f().await;
        times.push(t.elapsed());
    }
    times.sort();
    times[n / 2]
}

/// Prints one result line: the measured median, the baseline, the ratio.
pub fn report(what: &str, measured: Duration, baseline_what: &str, baseline: Duration) {
    println!(
        "{what:<44} median {:>10.3} ms | {baseline_what:<34} {:>10.3} ms | ratio {:>6.2}",
        measured.as_secs_f64() * 1e3,
        baseline.as_secs_f64() * 1e3,
        measured.as_secs_f64() / baseline.as_secs_f64().max(1e-9)
    );
}

//! `notify.command`: a program run once per event, without a shell, with
//! the event's JSON on stdin and a few environment variables
//! (`CASMAN_EVENT`, `CASMAN_DATABASE`, `CASMAN_SITE`, `CASMAN_MESSAGE`,
//! `CASMAN_TIME`), killed if it runs longer than `notify.timeout`.

use std::{path::Path, process::Stdio, time::Duration};

use tokio::io::AsyncWriteExt;

/// Why a run of the command failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// It could not be started.
    #[error("notify.command {program}: cannot be run: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// It ran longer than `notify.timeout` and was killed.
    #[error("notify.command {program}: still running after {timeout}; killed")]
    Timeout {
        /// The program.
        program: String,
        /// `notify.timeout`.
        timeout: String,
    },
    /// It ended with a failure status.
    #[error("notify.command {program}: exited with {status}")]
    Status {
        /// The program.
        program: String,
        /// Its exit status.
        status: std::process::ExitStatus,
    },
}

/// The environment a run gets beside its own: `CASMAN_EVENT`, ...
pub fn environment(json: &serde_json::Value) -> Vec<(&'static str, String)> {
    let s = |k: &str| json.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
    vec![
        ("CASMAN_EVENT", s("event")),
        ("CASMAN_DATABASE", s("database")),
        ("CASMAN_SITE", s("site")),
        ("CASMAN_MESSAGE", s("message")),
        ("CASMAN_TIME", s("time")),
    ]
}

/// Runs `program` with `json` on stdin; at most `timeout`.
pub async fn run(program: &Path, json: &serde_json::Value, timeout: Duration) -> Result<(), CommandError> {
    let name = program.display().to_string();
    let mut child = tokio::process::Command::new(program)
        .envs(environment(json))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| CommandError::Spawn { program: name.clone(), source })?;
    let body = format!("{json}\n");
    let ran = tokio::time::timeout(timeout, async {
        if let Some(mut stdin) = child.stdin.take() {
            // A program that does not read its stdin is not an error.
            let _ = stdin.write_all(body.as_bytes()).await;
            drop(stdin);
        }
        child.wait().await
    })
    .await;
    match ran {
        Err(_) => {
            let _ = child.kill().await;
            Err(CommandError::Timeout { program: name, timeout: casman_proto::duration::format(timeout) })
        }
        Ok(Err(source)) => Err(CommandError::Spawn { program: name, source }),
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(CommandError::Status { program: name, status }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_names_the_event() {
        let json = serde_json::json!({"event": "disk_full", "database": null, "site": "s", "message": "m", "time": "t"});
        let env = environment(&json);
        assert!(env.contains(&("CASMAN_EVENT", "disk_full".to_owned())));
        assert!(env.contains(&("CASMAN_DATABASE", String::new())));
    }

    #[tokio::test]
    async fn the_command_reads_the_event_on_stdin() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let out = dir.path().join("out");
        let script = dir.path().join("notify.sh");
        std::fs::write(
            &script,
            format!("#!/bin/sh\ncat > {}\necho \"$CASMAN_EVENT\" >> {}\n", out.display(), out.display()),
        )?;
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        let json = serde_json::json!({"event": "index_lost", "database": "parts.db"});
        run(&script, &json, Duration::from_secs(10)).await?;
        let got = std::fs::read_to_string(&out)?;
        assert!(
            got.starts_with("{\"") && got.contains("\"index_lost\"") && got.ends_with("index_lost\n"),
            "{got}"
        );
        let failing = dir.path().join("fail.sh");
        std::fs::write(&failing, "#!/bin/sh\nexit 3\n")?;
        std::fs::set_permissions(&failing, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        let err = run(&failing, &json, Duration::from_secs(10)).await.err().map(|e| e.to_string());
        assert!(err.as_deref().is_some_and(|e| e.contains("exit status: 3")), "{err:?}");
        Ok(())
    }
}

//! Receiving rendered label files from casmand and writing them where the
//! operator asked: every file is received completely, written to a
//! temporary file beside its destination, and renamed into place only when
//! all of them were written, so a refused or broken request leaves no file.

use std::{
    io::Write,
    os::unix::fs::PermissionsExt,
    path::{Component, Path, PathBuf},
};

use casman_proto::v1::RenderLabelsResponse;
use tempfile::NamedTempFile;
use tonic::Streaming;

use crate::error::CtlError;

/// One file received from casmand.
#[derive(Debug, Default)]
pub struct Received {
    /// Relative path proposed by casmand (CAsMan's names).
    pub name: String,
    /// Contents.
    pub data: Vec<u8>,
    /// Ids on it, in order.
    pub ids: Vec<String>,
    /// Pages (PDF).
    pub pages: u32,
}

/// One file written.
#[derive(Debug)]
pub struct Written {
    /// Where.
    pub path: PathBuf,
    /// Ids on it, in order.
    pub ids: Vec<String>,
    /// Pages (PDF), else 0.
    pub pages: u32,
}

/// Where the files go.
#[derive(Debug, Clone)]
pub enum Dest {
    /// Each file under this directory, at the relative path casmand proposes.
    Dir(PathBuf),
    /// Exactly one file, here.
    File(PathBuf),
}

/// Reads the whole stream. Fails if it breaks off or ends without a file.
pub async fn receive(mut stream: Streaming<RenderLabelsResponse>) -> Result<Vec<Received>, CtlError> {
    let mut files: Vec<Received> = Vec::new();
    while let Some(msg) = stream.message().await? {
        match files.last_mut() {
            Some(f) if f.name == msg.file => f.data.extend_from_slice(&msg.data),
            _ => files.push(Received {
                name: msg.file,
                data: msg.data,
                ids: msg.part_numbers,
                pages: msg.pages,
            }),
        }
    }
    if files.is_empty() {
        return Err(CtlError::Io("casmand sent no label file".into()));
    }
    Ok(files)
}

/// A relative path of plain components only (casmand's proposed names).
fn safe_relative(name: &str) -> Result<PathBuf, CtlError> {
    let p = PathBuf::from(name);
    if name.is_empty() || !p.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(CtlError::Io(format!("casmand proposed an unsafe file name {name:?}")));
    }
    Ok(p)
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> CtlError {
    CtlError::Io(format!("{}: {e}", path.display()))
}

/// Writes `files` to `dest`: all to temporary files first, then renamed.
pub fn write(files: Vec<Received>, dest: &Dest) -> Result<Vec<Written>, CtlError> {
    let targets: Vec<PathBuf> = match dest {
        Dest::File(path) if files.len() == 1 => vec![path.clone()],
        Dest::File(path) => {
            return Err(CtlError::Usage(format!(
                "--out {} names one file, but the labels make {} files; give a directory",
                path.display(),
                files.len()
            )));
        }
        Dest::Dir(dir) => {
            files.iter().map(|f| safe_relative(&f.name).map(|p| dir.join(p))).collect::<Result<_, _>>()?
        }
    };
    let mut staged: Vec<(NamedTempFile, PathBuf, Received)> = Vec::with_capacity(files.len());
    for (f, target) in files.into_iter().zip(targets) {
        let dir = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        // Mode 0666 less the umask, like any file the operator creates
        // (tempfile's default is 0600). No fsync: labels are regenerated
        // at will, and one fsync per image made a 100-image run take a minute.
        let mut tmp = tempfile::Builder::new()
            .prefix(".casmanctl-labels")
            .permissions(std::fs::Permissions::from_mode(0o666))
            .tempfile_in(dir)
            .map_err(|e| io_err(dir, e))?;
        tmp.write_all(&f.data).map_err(|e| io_err(&target, e))?;
        staged.push((tmp, target, f));
    }
    staged
        .into_iter()
        .map(|(tmp, target, f)| {
            tmp.persist(&target).map_err(|e| io_err(&target, e.error))?;
            Ok(Written { path: target, ids: f.ids, pages: f.pages })
        })
        .collect()
}

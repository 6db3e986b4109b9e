//! Compiles `casman/v1/*.proto` with protox (pure Rust, no system `protoc`) and
//! generates prost messages and tonic clients/servers. The encoded descriptor set
//! is written next to the generated code for gRPC reflection.

use std::{env, fs, io, path::PathBuf};

use prost::Message;

fn main() -> io::Result<()> {
    let dir = PathBuf::from("casman/v1");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut protos: Vec<PathBuf> = fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "proto"))
        .collect();
    protos.sort();
    for p in &protos {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    let fds = protox::compile(&protos, ["."]).map_err(|e| io::Error::other(e.to_string()))?;
    let out = PathBuf::from(env::var_os("OUT_DIR").ok_or_else(|| io::Error::other("OUT_DIR unset"))?);
    fs::write(out.join("casman_descriptor.bin"), fds.encode_to_vec())?;
    // `prost::Name` on every message: clients look a message up by its full
    // name in the descriptor set (casmanctl prints `--json` from it).
    let mut config = tonic_prost_build::Config::new();
    config.enable_type_names();
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Clients are built on our own Unix-socket channel; no generated
        // `connect` constructor (it would clash with the `Connect` rpc).
        .build_transport(false)
        .compile_fds_with_config(fds, config)
}

//! Compiles `proto/**.proto` with protox (a pure-Rust protobuf compiler), so building needs no system `protoc`.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "auth/common/v1/common.proto",
    "auth/token/v1/token.proto",
    "auth/user/v1/user.proto",
    "auth/mfa/v1/mfa.proto",
    "auth/mfa/v1/passkey.proto",
    "auth/sso/v1/sso.proto",
    "auth/notification/v1/notification.proto",
    "auth/notification/v1/events.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files: Vec<PathBuf> = PROTOS.iter().map(|p| root.join(p)).collect();
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let descriptors = protox::compile(&files, [&root])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}

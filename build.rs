//! Compiles `proto/` with protox (pure Rust, no system protoc) into tonic and
//! prost code, and writes the descriptor set (with comments) that reflection
//! serves. Reruns when `proto/` or `migrations/` change (migrations are
//! embedded by `sqlx::migrate!`).

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-changed=migrations");
    let mut files: Vec<PathBuf> = std::fs::read_dir("proto/bosun/v1")?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|path| path.extension().is_some_and(|ext| ext == "proto"));
    files.sort();
    let descriptors = protox::Compiler::new(["proto"])?
        .include_imports(true)
        .include_source_info(true)
        .open_files(&files)?
        .file_descriptor_set();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("bosun_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    // Bad bytes in a request are INVALID_ARGUMENT, not INTERNAL: see src/codec.rs.
    tonic_prost_build::configure()
        .codec_path("crate::codec::BosunCodec")
        .compile_fds(descriptors)?;
    events_server();
    Ok(())
}

/// The Events server bosun serves: the same routes and messages as
/// events.proto's, except that Watch replies with `events::wire`'s
/// WatchResponse, whose events are encoded once for every stream (the same
/// bytes on the wire; see src/events/wire.rs).
fn events_server() {
    use tonic_build::manual::{Builder, Method, Service};
    let method = |name: &str, route: &str, input: &str, output: &str| {
        Method::builder()
            .name(name)
            .route_name(route)
            .input_type(format!("crate::pb::{input}"))
            .output_type(output)
            .codec_path("crate::codec::BosunCodec")
    };
    let service = Service::builder()
        .name("Events")
        .package("bosun.v1")
        .method(
            method(
                "watch",
                "Watch",
                "WatchRequest",
                "crate::events::wire::WatchResponse",
            )
            .server_streaming()
            .build(),
        )
        .method(
            method(
                "get_head",
                "GetHead",
                "GetHeadRequest",
                "crate::pb::GetHeadResponse",
            )
            .build(),
        )
        .method(
            method(
                "list_events",
                "ListEvents",
                "ListEventsRequest",
                "crate::pb::ListEventsResponse",
            )
            .build(),
        )
        .build();
    Builder::new().build_client(false).compile(&[service]);
}

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
    Ok(())
}

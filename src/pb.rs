//! The API contract: Rust code generated from `proto/` by build.rs, and the
//! encoded descriptor set that reflection serves.

#![allow(clippy::all, clippy::pedantic)]

tonic::include_proto!("bosun.v1");

/// Every file of `proto/` and its imports, encoded, with source comments.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/bosun_descriptor.bin"));

//! gRPC reflection, so grpcurl and other tools can list and call bosun's
//! services without the .proto files.

use anyhow::Context;

use crate::pb;

/// Reflection v1 and v1alpha over every bosun and health descriptor, plus
/// google.rpc's error details so grpcurl can print ErrorInfo and BadRequest.
pub(super) fn reflection() -> anyhow::Result<(
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
    tonic_reflection::server::v1alpha::ServerReflectionServer<
        impl tonic_reflection::server::v1alpha::ServerReflection,
    >,
)> {
    let descriptor_sets = [
        pb::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_types::pb::FILE_DESCRIPTOR_SET,
    ];
    let mut v1 = tonic_reflection::server::Builder::configure();
    let mut v1alpha = tonic_reflection::server::Builder::configure();
    for set in descriptor_sets {
        v1 = v1.register_encoded_file_descriptor_set(set);
        v1alpha = v1alpha.register_encoded_file_descriptor_set(set);
    }
    Ok((
        v1.build_v1().context("cannot build reflection v1")?,
        v1alpha
            .build_v1alpha()
            .context("cannot build reflection v1alpha")?,
    ))
}

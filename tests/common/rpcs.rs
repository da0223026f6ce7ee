//! Every bosun RPC, read from the descriptor set the server itself serves
//! (`bosun::pb::FILE_DESCRIPTOR_SET`), so a new RPC shows up in the tests
//! that walk them without anyone listing it; and a raw-bytes gRPC client to
//! send any request bytes, well-formed or not, to any of them.

use std::collections::HashMap;

use bosun::pb::FILE_DESCRIPTOR_SET;
use prost::Message;
use prost::bytes::{Buf, BufMut};
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FileDescriptorSet};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic::{Request, Status};

/// One RPC of a bosun service.
#[derive(Debug, Clone)]
pub struct Rpc {
    /// `Service/Method`, e.g. `Lessons/RecordLesson`.
    pub name: String,
    /// `/bosun.v1.Lessons/RecordLesson`.
    pub path: String,
    /// The request message's full name, e.g. `.bosun.v1.RecordLessonRequest`.
    pub input: String,
    pub server_streaming: bool,
}

/// What kind of value a request field holds, as far as bad input goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    Bytes,
    Enum,
    /// A signed integer of 32 bits (varint on the wire).
    Int32,
    Int64,
    Double,
    Bool,
    Timestamp,
    Duration,
    FieldMask,
}

/// One leaf field of a request, reached through message fields.
#[derive(Debug, Clone)]
pub struct Leaf {
    /// Field numbers from the request down to the leaf.
    pub numbers: Vec<u32>,
    /// The dotted path a BadRequest violation names (without list indexes).
    pub path: String,
    pub kind: Kind,
    /// A repeated field: a spoil adds an element.
    pub repeated: bool,
    /// The oneof the field belongs to, if any: a request that does not
    /// decode can only be named by the oneof.
    pub oneof: Option<String>,
    /// The innermost repeated message the leaf is inside: how many field
    /// numbers reach it, and its path. A spoil plants a whole valid element
    /// there with the bad field in it.
    pub element: Option<(usize, String)>,
    /// Marked "Output only" or "Read-only" in the proto: a request may carry
    /// it, bosun ignores it.
    pub output_only: bool,
}

/// The descriptor set, decoded once per call site.
pub struct Descriptors {
    messages: HashMap<String, DescriptorProto>,
    output_only: std::collections::HashSet<(String, String)>,
    pub rpcs: Vec<Rpc>,
}

impl Descriptors {
    pub fn load() -> Self {
        let set = FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("descriptor set");
        let mut messages = HashMap::new();
        let mut output_only = std::collections::HashSet::new();
        let mut rpcs = Vec::new();
        for file in &set.file {
            let package = file.package();
            for message in &file.message_type {
                collect(&format!(".{package}"), message, &mut messages);
            }
            for location in file.source_code_info.iter().flat_map(|info| &info.location) {
                // [4, message index, 2, field index]: a top-level message's field.
                let comment = location.leading_comments();
                if let [4, message, 2, field] = location.path[..]
                    && (comment.trim_start().starts_with("Output only")
                        || comment.trim_start().starts_with("Read-only"))
                {
                    let message = &file.message_type[message as usize];
                    let field = &message.field[field as usize];
                    output_only.insert((
                        format!(".{package}.{}", message.name()),
                        field.name().to_string(),
                    ));
                }
            }
            if package != "bosun.v1" {
                continue;
            }
            for service in &file.service {
                for method in &service.method {
                    rpcs.push(Rpc {
                        name: format!("{}/{}", service.name(), method.name()),
                        path: format!("/{package}.{}/{}", service.name(), method.name()),
                        input: method.input_type().to_string(),
                        server_streaming: method.server_streaming(),
                    });
                }
            }
        }
        Self {
            messages,
            output_only,
            rpcs,
        }
    }

    /// Every leaf field of `message` (bosun messages are walked into, to a
    /// few levels; well-known types are leaves).
    pub fn leaves(&self, message: &str) -> Vec<Leaf> {
        let mut leaves = Vec::new();
        self.walk(message, &mut Vec::new(), "", (false, None), 0, &mut leaves);
        leaves
    }

    fn walk(
        &self,
        message: &str,
        numbers: &mut Vec<u32>,
        prefix: &str,
        (output_only, element): (bool, Option<(usize, String)>),
        depth: usize,
        leaves: &mut Vec<Leaf>,
    ) {
        let descriptor = &self.messages[message];
        for field in &descriptor.field {
            let path = format!("{prefix}{}", field.name());
            let output_only = output_only
                || self
                    .output_only
                    .contains(&(message.to_string(), field.name().to_string()));
            numbers.push(field.number() as u32);
            let kind = match (field.r#type(), field.type_name()) {
                (Type::String, _) => Some(Kind::String),
                (Type::Bytes, _) => Some(Kind::Bytes),
                (Type::Enum, _) => Some(Kind::Enum),
                (Type::Int32 | Type::Sint32 | Type::Sfixed32, _) => Some(Kind::Int32),
                (Type::Int64 | Type::Sint64 | Type::Sfixed64, _) => Some(Kind::Int64),
                (Type::Double | Type::Float, _) => Some(Kind::Double),
                (Type::Bool, _) => Some(Kind::Bool),
                (Type::Message, ".google.protobuf.Timestamp") => Some(Kind::Timestamp),
                (Type::Message, ".google.protobuf.Duration") => Some(Kind::Duration),
                (Type::Message, ".google.protobuf.FieldMask") => Some(Kind::FieldMask),
                (Type::Message, name) if name.starts_with(".bosun.") && depth < 3 => {
                    let element = if field.label() == Label::Repeated {
                        Some((numbers.len() - 1, path.clone()))
                    } else {
                        element.clone()
                    };
                    self.walk(
                        name,
                        numbers,
                        &format!("{path}."),
                        (output_only, element),
                        depth + 1,
                        leaves,
                    );
                    None
                }
                (other, name) => panic!("{message}.{}: no bad values for {other:?} {name}", path),
            };
            if let Some(kind) = kind {
                leaves.push(Leaf {
                    numbers: numbers.clone(),
                    path,
                    kind,
                    repeated: field.label() == Label::Repeated,
                    oneof: field.oneof_index.map(|index| {
                        format!("{prefix}{}", descriptor.oneof_decl[index as usize].name())
                    }),
                    element: element.clone(),
                    output_only,
                });
            }
            numbers.pop();
        }
    }
}

fn collect(prefix: &str, message: &DescriptorProto, into: &mut HashMap<String, DescriptorProto>) {
    let name = format!("{prefix}.{}", message.name());
    for nested in &message.nested_type {
        collect(&name, nested, into);
    }
    into.insert(name, message.clone());
}

/// Sends raw request bytes and hands back raw response bytes.
#[derive(Debug, Clone, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self {
        RawCodec
    }

    fn decoder(&mut self) -> Self {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(buf.copy_to_bytes(buf.remaining()).to_vec()))
    }
}

/// Calls `rpc` with `body` as the request's bytes and `token` (if any) as
/// bearer. A server-streaming RPC counts as answered by its first message
/// (or its status); one that says nothing for 5 s counts as accepted.
pub async fn call_raw(
    channel: &Channel,
    rpc: &Rpc,
    body: Vec<u8>,
    token: Option<&str>,
) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|err| Status::unavailable(err.to_string()))?;
    let mut request = Request::new(body);
    if let Some(token) = token {
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
    }
    let path = rpc.path.parse().expect("path");
    if !rpc.server_streaming {
        return grpc.unary(request, path, RawCodec).await.map(drop);
    }
    let mut stream = grpc
        .server_streaming(request, path, RawCodec)
        .await?
        .into_inner();
    match tokio::time::timeout(std::time::Duration::from_secs(5), stream.message()).await {
        Ok(first) => first.map(drop),
        Err(_) => Ok(()),
    }
}

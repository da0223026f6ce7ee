//! The protobuf codec of every bosun service and client: prost's, except
//! that a message that does not decode (a string field that is not UTF-8, a
//! truncated or malformed message) is bad input, not a server fault.
//!
//! tonic's stock codec answers such a request INTERNAL with prost's text;
//! here it is INVALID_ARGUMENT, ErrorInfo reason `MALFORMED_MESSAGE`, and a
//! BadRequest violation naming the field prost failed on (its path in the
//! request, e.g. `lesson.lesson_type`; `request` when prost names none).
//! build.rs points the generated code at [`BosunCodec`].

use std::marker::PhantomData;

use prost::Message;
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic_prost::ProstEncoder;

use crate::error::{CommonError, Violations, to_status};

/// prost's codec with decode failures answered as bad input.
#[derive(Debug, Clone)]
pub struct BosunCodec<T, U> {
    _types: PhantomData<(T, U)>,
}

impl<T, U> Default for BosunCodec<T, U> {
    fn default() -> Self {
        Self {
            _types: PhantomData,
        }
    }
}

impl<T, U> Codec for BosunCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = BosunDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        BosunDecoder { _type: PhantomData }
    }
}

/// Decodes with prost; a failure names the field it failed on.
#[derive(Debug)]
pub struct BosunDecoder<U> {
    _type: PhantomData<U>,
}

impl<U: Message + Default> Decoder for BosunDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf).map(Some).map_err(|err| {
            let (field, description) = describe(&err);
            to_status(CommonError::MalformedMessage(Violations::one(
                field,
                description,
            )))
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}

/// The request field a decode error is about, and what is wrong with it.
///
/// prost only displays its error: `failed to decode Protobuf message: ` then
/// one `Message.field: ` per nesting level, innermost first, then the
/// description.
fn describe(err: &prost::DecodeError) -> (String, String) {
    let text = err.to_string();
    let mut rest = text
        .strip_prefix("failed to decode Protobuf message: ")
        .unwrap_or(&text);
    let mut fields = Vec::new();
    while let Some((head, tail)) = rest.split_once(": ") {
        match head.split_once('.') {
            Some((message, field)) if is_ident(message) && is_ident(field) => {
                fields.push(field.trim_start_matches("r#"));
                rest = tail;
            }
            _ => break,
        }
    }
    fields.reverse();
    let field = if fields.is_empty() {
        "request".to_string()
    } else {
        fields.join(".")
    };
    (field, format!("malformed protobuf: {rest}"))
}

fn is_ident(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '#')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb;

    fn field_of(bytes: &[u8]) -> (String, String) {
        describe(&pb::RecordLessonRequest::decode(bytes).unwrap_err())
    }

    #[test]
    fn names_the_field_prost_failed_on() {
        // lesson (2) { lesson_type (4): 0xff }: not UTF-8, one level down.
        let nested = [0x12, 0x03, 0x22, 0x01, 0xff];
        let (field, description) = field_of(&nested);
        assert_eq!(field, "lesson.lesson_type");
        assert!(description.contains("UTF-8"), "{description}");
        // request_id (1): 0xc3 0x28 is not UTF-8 either.
        assert_eq!(field_of(&[0x0a, 0x02, 0xc3, 0x28]).0, "request_id");
        // A length running past the end names no field.
        assert_eq!(field_of(&[0x0a, 0x7f]).0, "request_id");
        assert_eq!(field_of(&[0x0f]).0, "request");
    }
}

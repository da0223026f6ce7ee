//! Domain enums <-> proto enums. `proto_enum!` maps variants of the same
//! name; the proto's UNSPECIFIED maps to `None`. Reading a request's raw enum
//! number names the field when the number is unknown.

use crate::error::Violations;

/// A domain enum with a proto twin.
pub trait ProtoEnum: Sized + Copy {
    /// The proto value (an i32 on the wire).
    fn to_pb(self) -> i32;
    /// `None` for UNSPECIFIED and for numbers the proto does not define.
    fn from_pb(raw: i32) -> Option<Self>;
    /// Whether `raw` is a number the proto defines (UNSPECIFIED included).
    fn is_known(raw: i32) -> bool;
}

/// The proto number of an optional value (UNSPECIFIED for `None`).
pub fn optional_to_pb<E: ProtoEnum>(value: Option<E>) -> i32 {
    value.map_or(0, E::to_pb)
}

/// An optional enum from a request: UNSPECIFIED is `None`, an unknown number
/// is a violation on `field`.
pub fn optional_from_pb<E: ProtoEnum>(
    violations: &mut Violations,
    field: &str,
    raw: i32,
) -> Option<E> {
    if !E::is_known(raw) {
        violations.add(field, format!("unknown enum value {raw}"));
        return None;
    }
    E::from_pb(raw)
}

/// A required enum from a request: UNSPECIFIED and unknown numbers are
/// violations on `field`.
pub fn required_from_pb<E: ProtoEnum>(
    violations: &mut Violations,
    field: &str,
    raw: i32,
) -> Option<E> {
    let value = optional_from_pb(violations, field, raw);
    if value.is_none() && E::is_known(raw) {
        violations.add(field, "is required");
    }
    value
}

macro_rules! proto_enum {
    ($domain:ty => $pb:ty { $($variant:ident),+ $(,)? }) => {
        impl $crate::proto_enum::ProtoEnum for $domain {
            fn to_pb(self) -> i32 {
                match self { $(Self::$variant => <$pb>::$variant as i32),+ }
            }

            fn from_pb(raw: i32) -> Option<Self> {
                match <$pb>::try_from(raw).ok()? {
                    $(<$pb>::$variant => Some(Self::$variant),)+
                    <$pb>::Unspecified => None,
                }
            }

            fn is_known(raw: i32) -> bool {
                <$pb>::try_from(raw).is_ok()
            }
        }
    };
}

pub(crate) use proto_enum;

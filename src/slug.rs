//! Closed sets of values stored as text slugs (in the database and in event
//! payloads): `slug_enum!` declares the enum with its slugs, `as_str`,
//! `parse` and `ALL`, and serde in the same spelling.

macro_rules! slug_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $slug:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name { $(#[serde(rename = $slug)] $variant),+ }

        impl $name {
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The slug stored in the database and in event payloads.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $slug),+ }
            }

            pub fn parse(slug: &str) -> Option<Self> {
                match slug { $($slug => Some(Self::$variant),)+ _ => None }
            }
        }
    };
}

pub(crate) use slug_enum;

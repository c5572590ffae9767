//! The one canonical binary encoding (SPEC §1).
//!
//! Everything that goes on the wire, to disk, under a hash or under a signature
//! is encoded with this serde format, so every value has exactly one encoding:
//!
//! * integers are fixed-width little-endian (no varints, so no overlong forms);
//! * `bool` is one byte, 0 or 1; `Option` is a tag byte 0 or 1, then the value;
//! * enums are a one-byte variant index, then the variant's fields;
//! * sequences, byte strings and strings are a `u32` LE length, then the items;
//! * structs and tuples are their fields in order, with no names or lengths;
//! * floats, chars, maps and self-describing input are refused.
//!
//! Decoding reads from a borrowed slice, checks that the input is no longer than
//! the type's [`Wire::MAX_ENCODED_LEN`] before it starts, checks every length
//! prefix against the bytes actually left before anything is allocated, and
//! rejects trailing bytes. Collections with a protocol bound use
//! [`BoundedVec`]/[`BoundedBytes`], which refuse an over-limit length prefix
//! before allocating.

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};
use serde::{ser, Deserialize, Serialize};
use std::fmt;
use std::marker::PhantomData;

/// A type with a canonical encoding and a hard size limit.
pub trait Wire: Serialize + DeserializeOwned {
    /// Inputs longer than this are refused before decoding starts.
    const MAX_ENCODED_LEN: usize;
}

/// A bare integer (a stored counter, a day): eight little-endian bytes.
impl Wire for u64 {
    const MAX_ENCODED_LEN: usize = 8;
}

/// Why bytes could not be decoded (or, for programming errors, encoded).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("input of {len} bytes exceeds the {limit}-byte limit for {type_name}")]
    InputTooLong { type_name: &'static str, len: usize, limit: usize },
    #[error("input ended early: needed {needed} more bytes, {remaining} left")]
    UnexpectedEnd { needed: usize, remaining: usize },
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
    #[error("length prefix {len} exceeds its limit of {limit}")]
    LengthOverLimit { len: usize, limit: usize },
    #[error("invalid bool byte {0:#04x} (must be 0 or 1)")]
    InvalidBool(u8),
    #[error("invalid option tag {0:#04x} (must be 0 or 1)")]
    InvalidOptionTag(u8),
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    #[error("values nest deeper than {0} levels")]
    TooDeep(usize),
    #[error("the codec does not support {0}")]
    Unsupported(&'static str),
    #[error("{0}")]
    Invalid(String),
}

impl ser::Error for CodecError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        CodecError::Invalid(msg.to_string())
    }
}

impl de::Error for CodecError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        CodecError::Invalid(msg.to_string())
    }
}

/// Encodes a value of a protocol type. Protocol types only use shapes the codec
/// supports (checked by the round-trip tests of every type), so this cannot fail.
pub fn encode<T: Wire>(value: &T) -> Vec<u8> {
    to_bytes(value).expect("protocol types only use codec-supported shapes")
}

/// Encodes a list of protocol values (the bytes of a `Vec<T>`).
pub fn encode_list<T: Wire>(items: &[T]) -> Vec<u8> {
    to_bytes(items).expect("protocol types only use codec-supported shapes")
}

/// Encodes any serde value, failing on shapes the codec refuses (floats, maps, ...).
pub fn to_bytes<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    value.serialize(&mut Serializer { out: &mut out })?;
    Ok(out)
}

/// Appends the encoding to `out` (for hashing several values without copies).
pub fn encode_into<T: Wire>(value: &T, out: &mut Vec<u8>) {
    value.serialize(&mut Serializer { out }).expect("protocol types only use codec-supported shapes");
}

/// Decodes exactly one value of `T` from `bytes`.
pub fn decode<T: Wire>(bytes: &[u8]) -> Result<T, CodecError> {
    if bytes.len() > T::MAX_ENCODED_LEN {
        return Err(CodecError::InputTooLong {
            type_name: short_type_name::<T>(),
            len: bytes.len(),
            limit: T::MAX_ENCODED_LEN,
        });
    }
    from_bytes_unbounded(bytes)
}

/// Decodes without the whole-input limit; length prefixes are still checked
/// against the bytes present. For types that are not [`Wire`] (tests, storage keys).
pub fn from_bytes_unbounded<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, CodecError> {
    let mut de = Deserializer { input: bytes, depth: 0 };
    let value = T::deserialize(&mut de)?;
    if !de.input.is_empty() {
        return Err(CodecError::TrailingBytes(de.input.len()));
    }
    Ok(value)
}

fn short_type_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    full.rsplit("::").next().unwrap_or(full)
}

// ---------------------------------------------------------------------------
// Serializer

struct Serializer<'a> {
    out: &'a mut Vec<u8>,
}

impl Serializer<'_> {
    fn put_len(&mut self, len: usize) -> Result<(), CodecError> {
        let len = u32::try_from(len).map_err(|_| CodecError::Unsupported("lengths over u32::MAX"))?;
        self.out.extend_from_slice(&len.to_le_bytes());
        Ok(())
    }
    fn put_variant(&mut self, index: u32) -> Result<(), CodecError> {
        let tag = u8::try_from(index).map_err(|_| CodecError::Unsupported("enums with over 256 variants"))?;
        self.out.push(tag);
        Ok(())
    }
}

impl<'a, 'b> ser::Serializer for &'a mut Serializer<'b> {
    type Ok = ();
    type Error = CodecError;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = ser::Impossible<(), CodecError>;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    fn is_human_readable(&self) -> bool {
        false
    }
    fn serialize_bool(self, v: bool) -> Result<(), CodecError> {
        self.out.push(v as u8);
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), CodecError> {
        self.out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_i16(self, v: i16) -> Result<(), CodecError> {
        self.out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_i32(self, v: i32) -> Result<(), CodecError> {
        self.out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_i64(self, v: i64) -> Result<(), CodecError> {
        self.out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Result<(), CodecError> {
        self.out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), CodecError> {
        self.out.push(v);
        Ok(())
    }
    fn serialize_u16(self, v: u16) -> Result<(), CodecError> {
        self.out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_u32(self, v: u32) -> Result<(), CodecError> {
        self.out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_u64(self, v: u64) -> Result<(), CodecError> {
        self.out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Result<(), CodecError> {
        self.out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_f32(self, _: f32) -> Result<(), CodecError> {
        Err(CodecError::Unsupported("floats"))
    }
    fn serialize_f64(self, _: f64) -> Result<(), CodecError> {
        Err(CodecError::Unsupported("floats"))
    }
    fn serialize_char(self, _: char) -> Result<(), CodecError> {
        Err(CodecError::Unsupported("chars"))
    }
    fn serialize_str(self, v: &str) -> Result<(), CodecError> {
        self.serialize_bytes(v.as_bytes())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), CodecError> {
        self.put_len(v.len())?;
        self.out.extend_from_slice(v);
        Ok(())
    }
    fn serialize_none(self) -> Result<(), CodecError> {
        self.out.push(0);
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), CodecError> {
        self.out.push(1);
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), CodecError> {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), CodecError> {
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, index: u32, _: &'static str) -> Result<(), CodecError> {
        self.put_variant(index)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, value: &T) -> Result<(), CodecError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        value: &T,
    ) -> Result<(), CodecError> {
        self.put_variant(index)?;
        value.serialize(self)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Self, CodecError> {
        let len = len.ok_or(CodecError::Unsupported("sequences of unknown length"))?;
        self.put_len(len)?;
        Ok(self)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self, CodecError> {
        Ok(self)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self, CodecError> {
        Ok(self)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self, CodecError> {
        self.put_variant(index)?;
        Ok(self)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, CodecError> {
        // Map iteration order is not canonical; protocol types use sorted Vecs.
        Err(CodecError::Unsupported("maps"))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, CodecError> {
        Ok(self)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self, CodecError> {
        self.put_variant(index)?;
        Ok(self)
    }
}

macro_rules! compound {
    ($($trait:ident :: $method:ident),*) => {$(
        impl<'a, 'b> ser::$trait for &'a mut Serializer<'b> {
            type Ok = ();
            type Error = CodecError;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CodecError> {
                value.serialize(&mut **self)
            }
            fn end(self) -> Result<(), CodecError> {
                Ok(())
            }
        }
    )*};
}
compound!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

macro_rules! compound_struct {
    ($($trait:ident),*) => {$(
        impl<'a, 'b> ser::$trait for &'a mut Serializer<'b> {
            type Ok = ();
            type Error = CodecError;
            fn serialize_field<T: Serialize + ?Sized>(&mut self, _: &'static str, value: &T) -> Result<(), CodecError> {
                value.serialize(&mut **self)
            }
            fn end(self) -> Result<(), CodecError> {
                Ok(())
            }
        }
    )*};
}
compound_struct!(SerializeStruct, SerializeStructVariant);

// ---------------------------------------------------------------------------
// Deserializer

/// Deepest nesting of structs, sequences, options and enums a decode accepts.
/// Recursive types (quorum sets) would otherwise let a small input overflow the stack.
pub const MAX_DEPTH: usize = 48;

struct Deserializer<'de> {
    input: &'de [u8],
    depth: usize,
}

impl<'de> Deserializer<'de> {
    fn nested<R>(&mut self, f: impl FnOnce(&mut Self) -> Result<R, CodecError>) -> Result<R, CodecError> {
        if self.depth >= MAX_DEPTH {
            return Err(CodecError::TooDeep(MAX_DEPTH));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }
    fn take(&mut self, n: usize) -> Result<&'de [u8], CodecError> {
        if self.input.len() < n {
            return Err(CodecError::UnexpectedEnd { needed: n, remaining: self.input.len() });
        }
        let (head, tail) = self.input.split_at(n);
        self.input = tail;
        Ok(head)
    }
    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    /// A length prefix, checked against the bytes left: every item of every
    /// sequence the protocol uses takes at least one byte, so a longer prefix
    /// is a lie and nothing is allocated for it.
    fn take_len(&mut self) -> Result<usize, CodecError> {
        let len = u32::from_le_bytes(self.take_array()?) as usize;
        if len > self.input.len() {
            return Err(CodecError::LengthOverLimit { len, limit: self.input.len() });
        }
        Ok(len)
    }
}

macro_rules! de_int {
    ($($method:ident $visit:ident $ty:ty),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
            visitor.$visit(<$ty>::from_le_bytes(self.take_array()?))
        }
    )*};
}

impl<'de> de::Deserializer<'de> for &mut Deserializer<'de> {
    type Error = CodecError;

    fn is_human_readable(&self) -> bool {
        false
    }
    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, CodecError> {
        Err(CodecError::Unsupported("self-describing decoding"))
    }
    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        match self.take(1)?[0] {
            0 => visitor.visit_bool(false),
            1 => visitor.visit_bool(true),
            other => Err(CodecError::InvalidBool(other)),
        }
    }
    de_int!(
        deserialize_i8 visit_i8 i8, deserialize_i16 visit_i16 i16, deserialize_i32 visit_i32 i32,
        deserialize_i64 visit_i64 i64, deserialize_i128 visit_i128 i128,
        deserialize_u8 visit_u8 u8, deserialize_u16 visit_u16 u16, deserialize_u32 visit_u32 u32,
        deserialize_u64 visit_u64 u64, deserialize_u128 visit_u128 u128
    );
    fn deserialize_f32<V: Visitor<'de>>(self, _: V) -> Result<V::Value, CodecError> {
        Err(CodecError::Unsupported("floats"))
    }
    fn deserialize_f64<V: Visitor<'de>>(self, _: V) -> Result<V::Value, CodecError> {
        Err(CodecError::Unsupported("floats"))
    }
    fn deserialize_char<V: Visitor<'de>>(self, _: V) -> Result<V::Value, CodecError> {
        Err(CodecError::Unsupported("chars"))
    }
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        let len = self.take_len()?;
        let bytes = self.take(len)?;
        visitor.visit_borrowed_str(std::str::from_utf8(bytes).map_err(|_| CodecError::InvalidUtf8)?)
    }
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        self.deserialize_str(visitor)
    }
    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        let len = self.take_len()?;
        visitor.visit_borrowed_bytes(self.take(len)?)
    }
    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        self.deserialize_bytes(visitor)
    }
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        match self.take(1)?[0] {
            0 => visitor.visit_none(),
            1 => self.nested(|de| visitor.visit_some(de)),
            other => Err(CodecError::InvalidOptionTag(other)),
        }
    }
    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        visitor.visit_unit()
    }
    fn deserialize_unit_struct<V: Visitor<'de>>(self, _: &'static str, visitor: V) -> Result<V::Value, CodecError> {
        visitor.visit_unit()
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &'static str, visitor: V) -> Result<V::Value, CodecError> {
        self.nested(|de| visitor.visit_newtype_struct(de))
    }
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        let len = self.take_len()?;
        self.nested(|de| visitor.visit_seq(Items { de, left: len }))
    }
    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, CodecError> {
        self.nested(|de| visitor.visit_seq(Items { de, left: len }))
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, CodecError> {
        self.nested(|de| visitor.visit_seq(Items { de, left: len }))
    }
    fn deserialize_map<V: Visitor<'de>>(self, _: V) -> Result<V::Value, CodecError> {
        Err(CodecError::Unsupported("maps"))
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, CodecError> {
        self.nested(|de| visitor.visit_seq(Items { de, left: fields.len() }))
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, CodecError> {
        self.nested(|de| visitor.visit_enum(de))
    }
    fn deserialize_identifier<V: Visitor<'de>>(self, _: V) -> Result<V::Value, CodecError> {
        Err(CodecError::Unsupported("identifiers"))
    }
    fn deserialize_ignored_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, CodecError> {
        Err(CodecError::Unsupported("skipping values"))
    }
}

struct Items<'a, 'de> {
    de: &'a mut Deserializer<'de>,
    left: usize,
}

impl<'de> de::SeqAccess<'de> for Items<'_, 'de> {
    type Error = CodecError;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, CodecError> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.de).map(Some)
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

impl<'de> de::EnumAccess<'de> for &mut Deserializer<'de> {
    type Error = CodecError;
    type Variant = Self;
    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), CodecError> {
        let tag = u32::from(self.take(1)?[0]);
        let value = seed.deserialize(IntoDeserializer::<CodecError>::into_deserializer(tag))?;
        Ok((value, self))
    }
}

impl<'de> de::VariantAccess<'de> for &mut Deserializer<'de> {
    type Error = CodecError;
    fn unit_variant(self) -> Result<(), CodecError> {
        Ok(())
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, CodecError> {
        seed.deserialize(self)
    }
    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, CodecError> {
        visitor.visit_seq(Items { de: self, left: len })
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, CodecError> {
        visitor.visit_seq(Items { de: self, left: fields.len() })
    }
}

// ---------------------------------------------------------------------------
// Bounded collections

/// A `Vec` with at most `N` items, enforced when built and when decoded
/// (an over-limit length prefix is refused before any item is read).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BoundedVec<T, const N: usize>(Vec<T>);

impl<T, const N: usize> Default for BoundedVec<T, N> {
    fn default() -> Self {
        BoundedVec(Vec::new())
    }
}

/// A value did not fit its protocol bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{len} items exceed the limit of {limit}")]
pub struct TooMany {
    pub len: usize,
    pub limit: usize,
}

impl<T, const N: usize> BoundedVec<T, N> {
    pub const LIMIT: usize = N;
    pub fn new() -> Self {
        BoundedVec(Vec::new())
    }
    pub fn try_from_vec(items: Vec<T>) -> Result<Self, TooMany> {
        if items.len() > N {
            return Err(TooMany { len: items.len(), limit: N });
        }
        Ok(BoundedVec(items))
    }
    pub fn try_push(&mut self, item: T) -> Result<(), TooMany> {
        if self.0.len() >= N {
            return Err(TooMany { len: self.0.len() + 1, limit: N });
        }
        self.0.push(item);
        Ok(())
    }
    pub fn as_slice(&self) -> &[T] {
        &self.0
    }
    /// The items in place, for edits that keep the length (so the bound holds).
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.0
    }
    pub fn into_vec(self) -> Vec<T> {
        self.0
    }
    /// The first `N` items of `items`: only for collections whose bound holds
    /// by construction elsewhere (say where, at the call), never for input.
    pub fn from_iter_capped(items: impl IntoIterator<Item = T>) -> Self {
        BoundedVec(items.into_iter().take(N).collect())
    }
    /// Each item transformed (the length, and so the bound, is unchanged).
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> BoundedVec<U, N> {
        BoundedVec(self.0.into_iter().map(f).collect())
    }
    /// Keeps the items `keep` accepts, in order (shrinking keeps the bound).
    pub fn retain(&mut self, keep: impl FnMut(&T) -> bool) {
        self.0.retain(keep);
    }
    /// Pushes `item`, first dropping the oldest (front) items to make room:
    /// for windows of the most recent records.
    pub fn push_evicting_front(&mut self, item: T) {
        if N == 0 {
            return;
        }
        while self.0.len() >= N {
            self.0.remove(0);
        }
        self.0.push(item);
    }
}

impl<T, const N: usize> std::ops::Deref for BoundedVec<T, N> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T, const N: usize> TryFrom<Vec<T>> for BoundedVec<T, N> {
    type Error = TooMany;
    fn try_from(items: Vec<T>) -> Result<Self, TooMany> {
        Self::try_from_vec(items)
    }
}

impl<'a, T, const N: usize> IntoIterator for &'a BoundedVec<T, N> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<T: fmt::Debug, const N: usize> fmt::Debug for BoundedVec<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<T: Serialize, const N: usize> Serialize for BoundedVec<T, N> {
    fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de, T: Deserialize<'de>, const N: usize> Deserialize<'de> for BoundedVec<T, N> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T, const N: usize>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>, const N: usize> Visitor<'de> for V<T, N> {
            type Value = BoundedVec<T, N>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a sequence of at most {N} items")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let hint = seq.size_hint().unwrap_or(0);
                if hint > N {
                    return Err(de::Error::custom(CodecError::LengthOverLimit { len: hint, limit: N }));
                }
                let mut items = Vec::with_capacity(hint);
                while let Some(item) = seq.next_element()? {
                    if items.len() == N {
                        return Err(de::Error::custom(CodecError::LengthOverLimit { len: N + 1, limit: N }));
                    }
                    items.push(item);
                }
                Ok(BoundedVec(items))
            }
        }
        d.deserialize_seq(V::<T, N>(PhantomData))
    }
}

/// A byte string of at most `N` bytes (hex in human-readable formats).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct BoundedBytes<const N: usize>(Vec<u8>);

impl<const N: usize> BoundedBytes<N> {
    pub fn new() -> Self {
        BoundedBytes(Vec::new())
    }
    pub fn try_from_slice(bytes: &[u8]) -> Result<Self, TooMany> {
        Self::try_from_vec(bytes.to_vec())
    }
    pub fn try_from_vec(bytes: Vec<u8>) -> Result<Self, TooMany> {
        if bytes.len() > N {
            return Err(TooMany { len: bytes.len(), limit: N });
        }
        Ok(BoundedBytes(bytes))
    }
    /// The first `N` bytes (for text meant for people, where a cut is harmless).
    pub fn truncated(bytes: &[u8]) -> Self {
        BoundedBytes(bytes[..bytes.len().min(N)].to_vec())
    }
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }
}

impl<const N: usize> std::ops::Deref for BoundedBytes<N> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl<const N: usize> fmt::Debug for BoundedBytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", crate::hex::encode(&self.0))
    }
}

impl<const N: usize> Serialize for BoundedBytes<N> {
    fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&crate::hex::encode(&self.0))
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de, const N: usize> Deserialize<'de> for BoundedBytes<N> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const N: usize>;
        impl<'de, const N: usize> Visitor<'de> for V<N> {
            type Value = BoundedBytes<N>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "at most {N} bytes")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
                BoundedBytes::try_from_slice(v)
                    .map_err(|e| E::custom(CodecError::LengthOverLimit { len: e.len, limit: N }))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                let bytes = crate::hex::decode(v).map_err(E::custom)?;
                BoundedBytes::try_from_vec(bytes)
                    .map_err(|e| E::custom(CodecError::LengthOverLimit { len: e.len, limit: N }))
            }
        }
        if d.is_human_readable() {
            d.deserialize_str(V::<N>)
        } else {
            d.deserialize_bytes(V::<N>)
        }
    }
}

/// A fixed-size byte array: raw bytes in the codec, hex in human-readable formats.
pub(crate) mod fixed_bytes {
    use super::*;

    pub fn serialize<S: ser::Serializer, const N: usize>(bytes: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            return s.serialize_str(&crate::hex::encode(bytes));
        }
        use ser::SerializeTuple;
        let mut t = s.serialize_tuple(N)?;
        for b in bytes {
            t.serialize_element(b)?;
        }
        t.end()
    }

    pub fn deserialize<'de, D: de::Deserializer<'de>, const N: usize>(d: D) -> Result<[u8; N], D::Error> {
        struct V<const N: usize>;
        impl<'de, const N: usize> Visitor<'de> for V<N> {
            type Value = [u8; N];
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{N} bytes")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<[u8; N], A::Error> {
                let mut out = [0u8; N];
                for (i, slot) in out.iter_mut().enumerate() {
                    *slot = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(i, &self))?;
                }
                Ok(out)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<[u8; N], E> {
                let bytes = crate::hex::decode(v).map_err(E::custom)?;
                bytes.try_into().map_err(|b: Vec<u8>| E::invalid_length(b.len(), &self))
            }
        }
        if d.is_human_readable() {
            d.deserialize_str(V::<N>)
        } else {
            d.deserialize_tuple(N, V::<N>)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Shape {
        Empty,
        One(u32),
        Pair(u8, bool),
        Named { a: Option<u16>, b: BoundedVec<u8, 4> },
    }
    impl Wire for Shape {
        const MAX_ENCODED_LEN: usize = 64;
    }

    #[test]
    fn integers_are_fixed_width_little_endian() {
        assert_eq!(to_bytes(&0x0102_0304u32).unwrap(), vec![4, 3, 2, 1]);
        assert_eq!(to_bytes(&1u64).unwrap(), vec![1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(to_bytes(&Some(7u8)).unwrap(), vec![1, 7]);
        assert_eq!(to_bytes(&vec![9u8, 8]).unwrap(), vec![2, 0, 0, 0, 9, 8]);
    }

    #[test]
    fn enum_variants_are_one_byte_tags() {
        assert_eq!(encode(&Shape::Empty), vec![0]);
        assert_eq!(encode(&Shape::One(5)), vec![1, 5, 0, 0, 0]);
        assert_eq!(encode(&Shape::Pair(3, true)), vec![2, 3, 1]);
        let named = Shape::Named { a: None, b: BoundedVec::try_from_vec(vec![1, 2]).unwrap() };
        assert_eq!(encode(&named), vec![3, 0, 2, 0, 0, 0, 1, 2]);
        assert_eq!(decode::<Shape>(&[3, 0, 2, 0, 0, 0, 1, 2]).unwrap(), named);
    }

    #[test]
    fn non_canonical_tags_are_rejected() {
        assert_eq!(decode::<Shape>(&[2, 3, 2]), Err(CodecError::InvalidBool(2)));
        assert_eq!(decode::<Shape>(&[3, 2, 0, 0, 0, 0, 0]), Err(CodecError::InvalidOptionTag(2)));
        assert!(matches!(decode::<Shape>(&[9]), Err(CodecError::Invalid(_))));
    }

    #[test]
    fn trailing_and_truncated_input_is_rejected() {
        assert_eq!(decode::<Shape>(&[0, 0]), Err(CodecError::TrailingBytes(1)));
        assert_eq!(decode::<Shape>(&[1, 5, 0]), Err(CodecError::UnexpectedEnd { needed: 4, remaining: 2 }));
        assert!(decode::<Shape>(&[]).is_err());
    }

    #[test]
    fn bounded_vec_refuses_over_limit_prefix_before_reading_items() {
        // Five items declared (limit 4) and present: refused by the bound.
        let bytes = [3, 0, 5, 0, 0, 0, 1, 2, 3, 4, 5];
        assert!(matches!(decode::<Shape>(&bytes), Err(CodecError::Invalid(m)) if m.contains("exceeds its limit of 4")));
        // A huge prefix with nothing behind it: refused against the bytes left.
        let bytes = [3, 0, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(decode::<Shape>(&bytes), Err(CodecError::LengthOverLimit { len: u32::MAX as usize, limit: 0 }));
    }

    #[test]
    fn whole_input_limit_applies_before_decoding() {
        let long = vec![0u8; 65];
        assert!(matches!(decode::<Shape>(&long), Err(CodecError::InputTooLong { len: 65, limit: 64, .. })));
    }

    #[test]
    fn unsupported_shapes_are_refused() {
        assert_eq!(to_bytes(&1.5f64), Err(CodecError::Unsupported("floats")));
        let mut m = std::collections::BTreeMap::new();
        m.insert(1u8, 2u8);
        assert_eq!(to_bytes(&m), Err(CodecError::Unsupported("maps")));
    }

    #[derive(Debug, Serialize, Deserialize)]
    struct Tree {
        children: Vec<Tree>,
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        // Each level is a length prefix of 1; 100,000 levels fit in 400 KB.
        let mut bytes = Vec::new();
        for _ in 0..100_000 {
            bytes.extend_from_slice(&1u32.to_le_bytes());
        }
        bytes.extend_from_slice(&0u32.to_le_bytes());
        let r: Result<Tree, _> = from_bytes_unbounded(&bytes);
        assert_eq!(r.unwrap_err(), CodecError::TooDeep(MAX_DEPTH));
    }

    #[test]
    fn invalid_utf8_is_rejected() {
        let r: Result<String, _> = from_bytes_unbounded(&[2, 0, 0, 0, 0xff, 0xfe]);
        assert_eq!(r, Err(CodecError::InvalidUtf8));
    }
}

//! [`json_text`]: serde_json's exact compact text, written faster for flat catalog records.

use std::fmt;

use serde::Serialize;

/// The JSON text of `value`, byte for byte what `serde_json::to_string` writes: the outbox
/// stores an operation's columns in this form on every write.
///
/// Faster for the flat objects of catalog records: strings with nothing to escape are copied
/// whole instead of byte by byte, ids are written without a temporary string, integers without
/// the formatting machinery. Anything it does not handle itself (a float, 128-bit integers,
/// enum variants with data, non-string map keys) is left to serde_json for the whole value, as
/// is every error.
///
/// ```
/// use pos_tenancy::json_text;
/// let v = serde_json::json!({"name": "Oil \"filter\"", "qty": -3, "tags": [true, null]});
/// assert_eq!(json_text(&v)?, serde_json::to_string(&v)?);
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn json_text<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    let mut out = String::with_capacity(768);
    match value.serialize(JsonText { out: &mut out }) {
        Ok(()) => Ok(out),
        Err(Fallback) => serde_json::to_string(value),
    }
}

/// What [`JsonText`] leaves to serde_json.
#[derive(Debug)]
struct Fallback;

impl fmt::Display for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("left to serde_json")
    }
}

impl std::error::Error for Fallback {}

impl serde::ser::Error for Fallback {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Fallback
    }
}

/// The bytes JSON escapes: control characters, the quote and the backslash.
const ESCAPED: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = b < 0x20 || b == b'"' as usize || b == b'\\' as usize;
        b += 1;
    }
    t
};

/// Appends `s` as a JSON string's contents, escaped as serde_json escapes.
fn push_escaped(out: &mut String, s: &str) {
    // Short strings (keys, codes) byte by byte through a table; long ones with no early exit,
    // so the check runs over whole vectors of bytes.
    let plain = if s.len() < 16 {
        s.bytes().all(|b| !ESCAPED[usize::from(b)])
    } else {
        s.bytes()
            .fold(true, |ok, b| ok & (b >= 0x20) & (b != b'"') & (b != b'\\'))
    };
    if plain {
        out.push_str(s);
        return;
    }
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            0x0c => "\\f",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x00..=0x1f => "",
            _ => continue,
        };
        // Only ASCII bytes are escaped, so `i` is a character boundary.
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

fn push_u64(out: &mut String, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        out.push(char::from(d));
    }
}

/// Escapes what a `Display` writes (ids: `collect_str`), with no temporary string.
struct Escaping<'a>(&'a mut String);

impl fmt::Write for Escaping<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        push_escaped(self.0, s);
        Ok(())
    }
}

/// A serde serializer writing serde_json's compact form into a string (see [`json_text`]).
struct JsonText<'a> {
    out: &'a mut String,
}

/// An object or array being written.
struct Compound<'a> {
    out: &'a mut String,
    first: bool,
}

impl Compound<'_> {
    #[inline]
    fn separate(&mut self) {
        if !std::mem::take(&mut self.first) {
            self.out.push(',');
        }
    }
}

type Unsupported = serde::ser::Impossible<(), Fallback>;

impl<'a> serde::Serializer for JsonText<'a> {
    type Ok = ();
    type Error = Fallback;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Unsupported;
    type SerializeTupleStruct = Unsupported;
    type SerializeTupleVariant = Unsupported;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Unsupported;

    fn serialize_bool(self, v: bool) -> Result<(), Fallback> {
        self.out.push_str(if v { "true" } else { "false" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), Fallback> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i16(self, v: i16) -> Result<(), Fallback> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i32(self, v: i32) -> Result<(), Fallback> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i64(self, v: i64) -> Result<(), Fallback> {
        if v < 0 {
            self.out.push('-');
        }
        push_u64(self.out, v.unsigned_abs());
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), Fallback> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u16(self, v: u16) -> Result<(), Fallback> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u32(self, v: u32) -> Result<(), Fallback> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u64(self, v: u64) -> Result<(), Fallback> {
        push_u64(self.out, v);
        Ok(())
    }
    fn serialize_f32(self, _: f32) -> Result<(), Fallback> {
        Err(Fallback)
    }
    fn serialize_f64(self, _: f64) -> Result<(), Fallback> {
        Err(Fallback)
    }
    fn serialize_char(self, v: char) -> Result<(), Fallback> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), Fallback> {
        self.out.push('"');
        push_escaped(self.out, v);
        self.out.push('"');
        Ok(())
    }
    fn collect_str<T: fmt::Display + ?Sized>(self, v: &T) -> Result<(), Fallback> {
        use fmt::Write;
        self.out.push('"');
        write!(Escaping(self.out), "{v}").map_err(|_| Fallback)?;
        self.out.push('"');
        Ok(())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), Fallback> {
        Err(Fallback)
    }
    fn serialize_none(self) -> Result<(), Fallback> {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), Fallback> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Fallback> {
        self.out.push_str("null");
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Fallback> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Fallback> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), Fallback> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Fallback> {
        Err(Fallback)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Compound<'a>, Fallback> {
        self.out.push('[');
        Ok(Compound {
            out: self.out,
            first: true,
        })
    }
    fn serialize_tuple(self, _: usize) -> Result<Unsupported, Fallback> {
        Err(Fallback)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Unsupported, Fallback> {
        Err(Fallback)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Unsupported, Fallback> {
        Err(Fallback)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Compound<'a>, Fallback> {
        self.out.push('{');
        Ok(Compound {
            out: self.out,
            first: true,
        })
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Compound<'a>, Fallback> {
        self.serialize_map(None)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Unsupported, Fallback> {
        Err(Fallback)
    }
}

impl serde::ser::SerializeSeq for Compound<'_> {
    type Ok = ();
    type Error = Fallback;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Fallback> {
        self.separate();
        v.serialize(JsonText { out: self.out })
    }
    fn end(self) -> Result<(), Fallback> {
        self.out.push(']');
        Ok(())
    }
}

impl serde::ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = Fallback;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Fallback> {
        self.separate();
        let start = self.out.len();
        key.serialize(JsonText { out: self.out })?;
        // serde_json quotes integer and boolean keys, or refuses the key: its business.
        if !self.out[start..].starts_with('"') {
            return Err(Fallback);
        }
        self.out.push(':');
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Fallback> {
        v.serialize(JsonText { out: self.out })
    }
    fn end(self) -> Result<(), Fallback> {
        self.out.push('}');
        Ok(())
    }
}

impl serde::ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = Fallback;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), Fallback> {
        self.separate();
        self.out.push('"');
        push_escaped(self.out, key);
        self.out.push_str("\":");
        v.serialize(JsonText { out: self.out })
    }
    fn end(self) -> Result<(), Fallback> {
        self.out.push('}');
        Ok(())
    }
}

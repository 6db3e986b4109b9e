//! The part of HPACK (RFC 7541) the authority rewrite needs: a decoder that
//! follows the client's dynamic table, and an encoder that writes every field
//! as a literal without indexing, so the server's decoder table never changes
//! and cannot drift from what the client believes.

use std::{collections::HashMap, sync::LazyLock};

use super::huffman_table::{ENCODE_CODE_LENGTHS, ENCODE_CODES};

/// Why a header block could not be decoded.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum HpackError {
    /// The block ended inside a field.
    #[error("header block truncated")]
    Truncated,
    /// An integer does not fit.
    #[error("integer overflow in header block")]
    Overflow,
    /// A table index that names nothing.
    #[error("header table index {0} out of range")]
    BadIndex(usize),
    /// A Huffman string that is not valid.
    #[error("invalid Huffman string")]
    Huffman,
    /// A table size update above the limit the server announced.
    #[error("dynamic table size {0} above the limit {MAX_TABLE_SIZE}")]
    TableSize(usize),
}

/// One decoded header field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Lower-case name (`:authority`, `content-type`, ...).
    pub name: Vec<u8>,
    /// Value.
    pub value: Vec<u8>,
    /// The client asked that the field never be indexed (kept on re-encoding).
    pub never_indexed: bool,
}

/// The limit of the dynamic table: SETTINGS_HEADER_TABLE_SIZE's default,
/// which the HTTP/2 server of tonic (h2) announces unchanged.
pub const MAX_TABLE_SIZE: usize = 4096;

const STATIC: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// Follows the dynamic table of one connection's client encoder.
#[derive(Debug, Default)]
pub struct Decoder {
    /// Newest first.
    table: std::collections::VecDeque<(Vec<u8>, Vec<u8>)>,
    size: usize,
    max: Option<usize>,
}

impl Decoder {
    fn max(&self) -> usize {
        self.max.unwrap_or(MAX_TABLE_SIZE)
    }

    fn entry(&self, index: usize) -> Result<(Vec<u8>, Vec<u8>), HpackError> {
        match index {
            0 => Err(HpackError::BadIndex(0)),
            1..=61 => {
                let (n, v) = STATIC[index - 1];
                Ok((n.as_bytes().to_vec(), v.as_bytes().to_vec()))
            }
            _ => self.table.get(index - 62).cloned().ok_or(HpackError::BadIndex(index)),
        }
    }

    fn insert(&mut self, name: Vec<u8>, value: Vec<u8>) {
        let size = name.len() + value.len() + 32;
        self.size += size;
        self.table.push_front((name, value));
        self.evict();
        // An entry larger than the table empties it (RFC 7541 §4.4).
    }

    fn evict(&mut self) {
        while self.size > self.max() {
            match self.table.pop_back() {
                Some((n, v)) => self.size -= n.len() + v.len() + 32,
                None => {
                    self.size = 0;
                    break;
                }
            }
        }
    }

    /// Decodes one complete header block, updating the table as the client's
    /// encoder did.
    pub fn decode(&mut self, mut block: &[u8]) -> Result<Vec<Field>, HpackError> {
        let mut fields = Vec::new();
        while let Some(&first) = block.first() {
            if first & 0x80 != 0 {
                let index = integer(&mut block, 7)?;
                let (name, value) = self.entry(index)?;
                fields.push(Field { name, value, never_indexed: false });
            } else if first & 0x40 != 0 {
                let (name, value) = self.literal(&mut block, 6)?;
                self.insert(name.clone(), value.clone());
                fields.push(Field { name, value, never_indexed: false });
            } else if first & 0x20 != 0 {
                let size = integer(&mut block, 5)?;
                if size > MAX_TABLE_SIZE {
                    return Err(HpackError::TableSize(size));
                }
                self.max = Some(size);
                self.evict();
            } else {
                let never_indexed = first & 0x10 != 0;
                let (name, value) = self.literal(&mut block, 4)?;
                fields.push(Field { name, value, never_indexed });
            }
        }
        Ok(fields)
    }

    fn literal(&self, block: &mut &[u8], prefix: u8) -> Result<(Vec<u8>, Vec<u8>), HpackError> {
        let index = integer(block, prefix)?;
        let name = if index == 0 { string(block)? } else { self.entry(index)?.0 };
        Ok((name, string(block)?))
    }
}

/// Reads an integer with an N-bit prefix (RFC 7541 §5.1).
fn integer(block: &mut &[u8], prefix: u8) -> Result<usize, HpackError> {
    let (&first, rest) = block.split_first().ok_or(HpackError::Truncated)?;
    *block = rest;
    let mask = (1u16 << prefix) as usize - 1;
    let mut value = first as usize & mask;
    if value < mask {
        return Ok(value);
    }
    let mut shift = 0u32;
    loop {
        let (&b, rest) = block.split_first().ok_or(HpackError::Truncated)?;
        *block = rest;
        if shift > 28 {
            return Err(HpackError::Overflow);
        }
        value = value.checked_add(((b & 0x7f) as usize) << shift).ok_or(HpackError::Overflow)?;
        shift += 7;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
}

/// Reads a string literal, Huffman-coded or not (RFC 7541 §5.2).
fn string(block: &mut &[u8]) -> Result<Vec<u8>, HpackError> {
    let huffman = block.first().ok_or(HpackError::Truncated)? & 0x80 != 0;
    let len = integer(block, 7)?;
    if block.len() < len {
        return Err(HpackError::Truncated);
    }
    let (raw, rest) = block.split_at(len);
    *block = rest;
    if huffman { huffman_decode(raw) } else { Ok(raw.to_vec()) }
}

/// (code length, code) -> byte.
static HUFFMAN: LazyLock<HashMap<(u8, u32), u8>> = LazyLock::new(|| {
    (0..=255u8).map(|b| ((ENCODE_CODE_LENGTHS[b as usize], ENCODE_CODES[b as usize]), b)).collect()
});

fn huffman_decode(raw: &[u8]) -> Result<Vec<u8>, HpackError> {
    let mut out = Vec::with_capacity(raw.len() * 8 / 5);
    let (mut code, mut len) = (0u32, 0u8);
    for byte in raw {
        for bit in (0..8).rev() {
            code = (code << 1) | u32::from((byte >> bit) & 1);
            len += 1;
            if let Some(&b) = HUFFMAN.get(&(len, code)) {
                out.push(b);
                (code, len) = (0, 0);
            } else if len >= 30 {
                // Only EOS is 30 bits long, and EOS may not appear in a string.
                return Err(HpackError::Huffman);
            }
        }
    }
    // Padding: fewer than 8 bits, all ones (a prefix of EOS).
    if len >= 8 || code != (1u32 << len) - 1 {
        return Err(HpackError::Huffman);
    }
    Ok(out)
}

/// Encodes `fields` as literals without indexing (or never indexed, as the
/// client asked), with a literal name and no Huffman coding: the receiving
/// decoder's dynamic table is never touched.
pub fn encode(fields: &[Field]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in fields {
        out.push(if f.never_indexed { 0x10 } else { 0x00 });
        put_string(&mut out, &f.name);
        put_string(&mut out, &f.value);
    }
    out
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    put_integer(out, 7, 0x00, s.len());
    out.extend_from_slice(s);
}

fn put_integer(out: &mut Vec<u8>, prefix: u8, flags: u8, mut value: usize) {
    let mask = (1usize << prefix) - 1;
    if value < mask {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | mask as u8);
    value -= mask;
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or(0)).collect()
    }

    fn pairs(fields: &[Field]) -> Vec<(String, String)> {
        fields
            .iter()
            .map(|f| (String::from_utf8_lossy(&f.name).into(), String::from_utf8_lossy(&f.value).into()))
            .collect()
    }

    fn strs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| ((*a).into(), (*b).into())).collect()
    }

    /// RFC 7541 C.4: three requests with Huffman coding on one connection,
    /// the second and third referring to entries the first added.
    #[test]
    fn decodes_the_rfc_huffman_request_examples() -> Result<(), HpackError> {
        let mut d = Decoder::default();
        let first = d.decode(&hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"))?;
        assert_eq!(
            pairs(&first),
            strs(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com")
            ])
        );
        let second = d.decode(&hex("8286 84be 5886 a8eb 1064 9cbf"))?;
        assert_eq!(pairs(&second)[3], (":authority".into(), "www.example.com".into()));
        assert_eq!(pairs(&second)[4], ("cache-control".into(), "no-cache".into()));
        let third = d.decode(&hex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"))?;
        assert_eq!(pairs(&third)[4], ("custom-key".into(), "custom-value".into()));
        assert_eq!(d.size, 164);
        Ok(())
    }

    /// RFC 7541 C.3: the same without Huffman coding.
    #[test]
    fn decodes_the_rfc_plain_request_example() -> Result<(), HpackError> {
        let mut d = Decoder::default();
        let first = d.decode(&hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"))?;
        assert_eq!(pairs(&first)[3], (":authority".into(), "www.example.com".into()));
        Ok(())
    }

    #[test]
    fn encoding_round_trips_without_touching_the_table() -> Result<(), HpackError> {
        let long = "x".repeat(300);
        let fields = vec![
            Field { name: b":authority".to_vec(), value: b"localhost".to_vec(), never_indexed: false },
            Field { name: b"x-long".to_vec(), value: long.into_bytes(), never_indexed: true },
        ];
        let mut d = Decoder::default();
        assert_eq!(d.decode(&encode(&fields))?, fields);
        assert!(d.table.is_empty());
        Ok(())
    }

    #[test]
    fn refuses_bad_input() {
        let mut d = Decoder::default();
        assert_eq!(d.decode(&[0x80 | 70]), Err(HpackError::BadIndex(70)));
        assert_eq!(d.decode(&[0x41, 0x05, b'a']), Err(HpackError::Truncated));
        assert_eq!(d.decode(&[0x3f, 0xe1, 0x7f]), Err(HpackError::TableSize(16384)));
        // Huffman padding of more than 7 bits.
        assert_eq!(d.decode(&[0x00, 0x81, 0xff, 0x00]), Err(HpackError::Huffman));
    }
}

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{hpack::Decoder, *};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn lit(out: &mut Vec<u8>, first: u8, name: &str, value: &str) {
    out.push(first);
    out.push(name.len() as u8);
    out.extend_from_slice(name.as_bytes());
    out.push(value.len() as u8);
    out.extend_from_slice(value.as_bytes());
}

/// A request as grpcio writes it: `:authority` and a custom header added to
/// the dynamic table (literal with incremental indexing, new name).
fn first_block(authority: &str) -> Vec<u8> {
    let mut b = vec![0x83, 0x86]; // :method POST, :scheme http
    lit(&mut b, 0x40, ":path", "/grpc.health.v1.Health/Check");
    lit(&mut b, 0x40, ":authority", authority);
    lit(&mut b, 0x40, "te", "trailers");
    b
}

/// The second request refers to the entries the first added (62 = newest).
fn second_block() -> Vec<u8> {
    vec![0x83, 0x86, 0x80 | 64, 0x80 | 63, 0x80 | 62]
}

/// Pushes `input` through an [`AuthorityFix`] and returns what h2 would read.
async fn through(input: Vec<u8>) -> io::Result<Vec<u8>> {
    let (mut client, server) = tokio::io::duplex(64);
    let writer = tokio::spawn(async move {
        // Small writes: frames arrive split at every possible point.
        for chunk in input.chunks(7) {
            client.write_all(chunk).await?;
        }
        client.shutdown().await
    });
    let mut fix = AuthorityFix::new(server);
    let mut out = Vec::new();
    fix.read_to_end(&mut out).await?;
    writer.await.map_err(io::Error::other)??;
    Ok(out)
}

/// Splits h2's input into frames and decodes each header block.
/// A decoded header block: the HEADERS frame's flags and the fields.
type Block = (u8, Vec<(String, String)>);

fn header_blocks(bytes: &[u8]) -> Result<Vec<Block>, hpack::HpackError> {
    let mut rest = &bytes[PREFACE.len()..];
    let mut decoder = Decoder::default();
    let mut blocks = Vec::new();
    let mut block = Vec::new();
    let mut first_flags = 0;
    while rest.len() >= FRAME_HEADER_LEN {
        let len = usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
        let (kind, flags) = (rest[3], rest[4]);
        let payload = &rest[FRAME_HEADER_LEN..FRAME_HEADER_LEN + len];
        assert!(len <= MAX_FRAME);
        if kind == HEADERS {
            first_flags = flags;
            let start = if flags & PRIORITY != 0 { 5 } else { 0 };
            block.extend_from_slice(&payload[start..]);
        } else if kind == CONTINUATION {
            block.extend_from_slice(payload);
        }
        if (kind == HEADERS || kind == CONTINUATION) && flags & END_HEADERS != 0 {
            let fields = decoder.decode(&block)?;
            blocks.push((
                first_flags,
                fields
                    .into_iter()
                    .map(|f| {
                        (String::from_utf8_lossy(&f.name).into(), String::from_utf8_lossy(&f.value).into())
                    })
                    .collect(),
            ));
            block.clear();
        }
        rest = &rest[FRAME_HEADER_LEN + len..];
    }
    Ok(blocks)
}

fn authority(fields: &[(String, String)]) -> Option<&str> {
    fields.iter().find(|(n, _)| n == ":authority").map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn rewrites_a_path_authority_on_every_request() -> Result<(), Box<dyn std::error::Error>> {
    let mut input = PREFACE.to_vec();
    input.extend(frame(0x4, 0, 0, &[0, 3, 0, 0, 0, 100])); // SETTINGS
    input.extend(frame(HEADERS, END_HEADERS, 1, &first_block("%2Frun%2Fcasman%2Fcasmand.sock")));
    input.extend(frame(0x0, END_STREAM, 1, &[0, 0, 0, 0, 0]));
    // Second request: padded and with priority, split into HEADERS + CONTINUATION.
    let block = second_block();
    let mut payload = vec![3]; // pad length
    payload.extend_from_slice(&[0, 0, 0, 0, 15]);
    payload.extend_from_slice(&block[..2]);
    payload.extend_from_slice(&[0, 0, 0]);
    input.extend(frame(HEADERS, PADDED | PRIORITY | END_STREAM, 3, &payload));
    input.extend(frame(CONTINUATION, END_HEADERS, 3, &block[2..]));
    let out = through(input).await?;
    assert!(out.starts_with(PREFACE));
    let blocks = header_blocks(&out)?;
    assert_eq!(blocks.len(), 2);
    assert_eq!(authority(&blocks[0].1), Some("localhost"));
    assert_eq!(authority(&blocks[1].1), Some("localhost"));
    assert!(blocks[1].1.contains(&(":path".into(), "/grpc.health.v1.Health/Check".into())));
    assert!(blocks[1].1.contains(&("te".into(), "trailers".into())));
    assert_eq!(blocks[1].0 & (END_STREAM | PRIORITY), END_STREAM | PRIORITY);
    // The DATA frame is passed through unchanged.
    assert!(out.windows(14).any(|w| w == frame(0x0, END_STREAM, 1, &[0, 0, 0, 0, 0]).as_slice()));
    Ok(())
}

#[tokio::test]
async fn a_raw_path_authority_is_rewritten_too() -> Result<(), Box<dyn std::error::Error>> {
    let mut input = PREFACE.to_vec();
    input.extend(frame(HEADERS, END_HEADERS | END_STREAM, 1, &first_block("/run/casman/casmand.sock")));
    let blocks = header_blocks(&through(input).await?)?;
    assert_eq!(authority(&blocks[0].1), Some("localhost"));
    Ok(())
}

#[tokio::test]
async fn a_valid_authority_passes_byte_for_byte() -> Result<(), Box<dyn std::error::Error>> {
    let mut input = PREFACE.to_vec();
    input.extend(frame(0x4, 0, 0, &[]));
    input.extend(frame(HEADERS, END_HEADERS, 1, &first_block("localhost")));
    input.extend(frame(0x0, 0, 1, &vec![7; 40_000][..MAX_FRAME]));
    input.extend(frame(HEADERS, END_HEADERS | END_STREAM, 3, &second_block()));
    assert_eq!(through(input.clone()).await?, input);
    Ok(())
}

#[tokio::test]
async fn a_large_block_is_split_at_the_frame_size() -> Result<(), Box<dyn std::error::Error>> {
    let mut block = first_block("%2Ftmp%2Fx.sock");
    // A 20 000-byte value, as a never-indexed literal (length 20000 = 127 + 19873).
    block.push(0x10);
    block.push(6);
    block.extend_from_slice(b"x-long");
    block.extend_from_slice(&[0x7f, 0xa1, 0x9b, 0x01]);
    block.extend(std::iter::repeat_n(b'v', 20_000));
    let mut input = PREFACE.to_vec();
    input.extend(frame(HEADERS, 0, 1, &block[..10_000]));
    input.extend(frame(CONTINUATION, END_HEADERS, 1, &block[10_000..]));
    let blocks = header_blocks(&through(input).await?)?;
    assert_eq!(authority(&blocks[0].1), Some("localhost"));
    assert_eq!(blocks[0].1.last().map(|(_, v)| v.len()), Some(20_000));
    Ok(())
}

#[tokio::test]
async fn a_client_that_is_not_http2_passes_untouched() -> Result<(), Box<dyn std::error::Error>> {
    let mut input = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    input.extend(frame(HEADERS, END_HEADERS, 1, &first_block("%2Fx")));
    assert_eq!(through(input.clone()).await?, input);
    Ok(())
}

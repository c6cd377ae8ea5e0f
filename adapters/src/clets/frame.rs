//! CLETS framing (ICD §6): a 4-byte big-endian length, then that many ASCII bytes, at most 8 KiB.
//!
//! Both directions use the same framing. A reader that finds the connection closed exactly on a frame
//! boundary reports a clean end (`Ok(None)`); a connection closed anywhere else is
//! [`FrameError::Truncated`]. An oversize length is refused before any payload is read, so a corrupt or
//! hostile length cannot make the reader allocate more than [`MAX_FRAME_LEN`] bytes.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest payload a CLETS frame may carry, in bytes (ICD §0: a CLETS frame is at most 8 KiB).
pub const MAX_FRAME_LEN: usize = 8 * 1024;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The frame's length is over [`MAX_FRAME_LEN`]. When reading, the payload was not consumed, so the
    /// connection is no longer usable.
    #[error("CLETS frame of {len} bytes is over the {MAX_FRAME_LEN}-byte maximum")]
    TooLong {
        /// The announced (reading) or given (writing) payload length.
        len: usize,
    },
    /// The payload holds a byte above `0x7F`. When reading, the whole payload was consumed, so the
    /// connection is still in step.
    #[error("CLETS frame holds the non-ASCII byte 0x{byte:02X} at offset {offset}")]
    NotAscii {
        /// Offset of the first offending byte within the payload.
        offset: usize,
        /// The offending byte.
        byte: u8,
    },
    /// The peer closed the connection inside a frame (in its length or its payload).
    #[error("connection closed in the middle of a CLETS frame")]
    Truncated,
    /// Reading or writing the socket failed.
    #[error("CLETS frame I/O failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads one frame and returns its payload.
///
/// Returns `Ok(None)` when the peer closed the connection cleanly before the next frame's length.
/// The payload is checked to be ASCII, so callers may turn it into a `str` without further checks.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<Vec<u8>>, FrameError> {
    let mut header = [0u8; 4];
    let mut filled = 0;
    while filled < header.len() {
        let n = r.read(&mut header[filled..]).await?;
        if n == 0 {
            return if filled == 0 {
                Ok(None)
            } else {
                Err(FrameError::Truncated)
            };
        }
        filled += n;
    }
    let len = u32::from_be_bytes(header) as usize;
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLong { len });
    }
    let mut payload = vec![0u8; len];
    match r.read_exact(&mut payload).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(FrameError::Truncated);
        }
        Err(e) => return Err(e.into()),
    }
    check_ascii(&payload)?;
    Ok(Some(payload))
}

/// Writes one frame carrying `payload` and flushes it.
///
/// The payload is checked (length and ASCII) before anything is written, so a refused payload leaves the
/// connection untouched.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, payload: &[u8]) -> Result<(), FrameError> {
    check_payload(payload)?;
    let mut buf = Vec::with_capacity(4 + payload.len());
    // The length fits in u32: check_payload bounded it by MAX_FRAME_LEN.
    buf.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    buf.extend_from_slice(payload);
    w.write_all(&buf).await?;
    w.flush().await?;
    Ok(())
}

/// Checks that `payload` may be sent as one frame: at most [`MAX_FRAME_LEN`] bytes, all ASCII.
pub fn check_payload(payload: &[u8]) -> Result<(), FrameError> {
    if payload.len() > MAX_FRAME_LEN {
        return Err(FrameError::TooLong { len: payload.len() });
    }
    check_ascii(payload)
}

fn check_ascii(payload: &[u8]) -> Result<(), FrameError> {
    match payload.iter().position(|b| !b.is_ascii()) {
        Some(offset) => Err(FrameError::NotAscii {
            offset,
            byte: payload[offset],
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(payload: &[u8]) -> Vec<u8> {
        let mut v = (payload.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(payload);
        v
    }

    /// A written frame reads back as the same payload, and the stream then ends cleanly.
    #[tokio::test]
    async fn written_frame_reads_back_identically() {
        let mut wire = Vec::new();
        write_frame(&mut wire, b"EPO.CA034025J.00010ABCDEFGHIJKLMNO.")
            .await
            .unwrap();
        write_frame(&mut wire, b"").await.unwrap();
        assert_eq!(&wire[..4], &[0, 0, 0, 35]);
        let mut r = wire.as_slice();
        assert_eq!(
            read_frame(&mut r).await.unwrap().unwrap(),
            b"EPO.CA034025J.00010ABCDEFGHIJKLMNO."
        );
        assert_eq!(read_frame(&mut r).await.unwrap().unwrap(), b"");
        assert!(read_frame(&mut r).await.unwrap().is_none());
    }

    /// A frame of exactly 8 KiB is accepted; one byte more is `TooLong` both ways.
    #[tokio::test]
    async fn frame_limit_is_8_kib() {
        let max = vec![b'A'; MAX_FRAME_LEN];
        let mut wire = Vec::new();
        write_frame(&mut wire, &max).await.unwrap();
        assert_eq!(
            read_frame(&mut wire.as_slice()).await.unwrap().unwrap().len(),
            MAX_FRAME_LEN
        );

        let over = vec![b'A'; MAX_FRAME_LEN + 1];
        let mut out = Vec::new();
        assert!(matches!(
            write_frame(&mut out, &over).await,
            Err(FrameError::TooLong { len: 8193 })
        ));
        assert!(out.is_empty(), "nothing is written for a refused payload");
        assert!(matches!(
            read_frame(&mut framed(&over).as_slice()).await,
            Err(FrameError::TooLong { len: 8193 })
        ));
    }

    /// A length announcing gigabytes is refused without reading or allocating the payload.
    #[tokio::test]
    async fn huge_length_is_refused_before_reading() {
        let wire = [0xFFu8, 0xFF, 0xFF, 0xFF];
        assert!(matches!(
            read_frame(&mut wire.as_slice()).await,
            Err(FrameError::TooLong { .. })
        ));
    }

    /// Non-ASCII payloads are refused when written and when read, naming the offending byte.
    #[tokio::test]
    async fn non_ascii_is_refused() {
        let payload = "NAM/PEÑA, JOSE.".as_bytes();
        let mut out = Vec::new();
        assert!(matches!(
            write_frame(&mut out, payload).await,
            Err(FrameError::NotAscii { offset: 6, byte: 0xC3 })
        ));
        assert!(matches!(
            read_frame(&mut framed(payload).as_slice()).await,
            Err(FrameError::NotAscii { offset: 6, byte: 0xC3 })
        ));
    }

    /// A stream that ends inside the length or inside the payload is `Truncated`, not a clean end.
    #[tokio::test]
    async fn stream_ending_mid_frame_is_truncated() {
        let partial_len = [0u8, 0];
        assert!(matches!(
            read_frame(&mut partial_len.as_slice()).await,
            Err(FrameError::Truncated)
        ));
        let mut partial_payload = framed(b"ACK.EPO");
        partial_payload.truncate(8);
        assert!(matches!(
            read_frame(&mut partial_payload.as_slice()).await,
            Err(FrameError::Truncated)
        ));
    }

    /// A length that arrives split over several reads is reassembled.
    #[tokio::test]
    async fn length_split_across_reads_is_reassembled() {
        let mut mock = tokio_test_reader(&[&[0, 0], &[0, 3], b"A", b"BC"]);
        assert_eq!(read_frame(&mut mock).await.unwrap().unwrap(), b"ABC");
    }

    /// A reader that yields the given chunks one read at a time.
    fn tokio_test_reader(chunks: &[&[u8]]) -> impl AsyncRead + Unpin {
        let (client, mut server) = tokio::io::duplex(64);
        let chunks: Vec<Vec<u8>> = chunks.iter().map(|c| c.to_vec()).collect();
        tokio::spawn(async move {
            for c in chunks {
                server.write_all(&c).await.unwrap();
                server.flush().await.unwrap();
                tokio::task::yield_now().await;
            }
        });
        client
    }
}

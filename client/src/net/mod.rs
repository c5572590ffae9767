//! The IO shell shared by phones and nodes: QUIC/TLS pinned to node keys
//! (SPEC §2) and one request/response per bidirectional stream.

pub mod tls;

use std::time::Duration;
use watt_core::codec::decode;
use watt_core::wire::{check_frame_len, encode_frame, Request, Response, MAX_FRAME};

/// Why a request to a node got no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("connection lost: {0}")]
    Lost(String),
    #[error("no answer within {0} ms")]
    Timeout(u64),
    #[error("the node closed the stream without an answer")]
    NoAnswer,
    #[error("malformed answer: {0}")]
    Malformed(String),
}

/// Reads one length-prefixed frame; `Ok(None)` when the stream ended cleanly
/// before a frame began. The length is checked before anything is read.
pub async fn read_frame(recv: &mut quinn::RecvStream, limit: usize) -> Result<Option<Vec<u8>>, &'static str> {
    read_frame_charged(recv, limit, |_| true).await
}

/// [`read_frame`], holding memory only for bytes that arrived: a length
/// prefix costs its sender four bytes, so the buffer grows with the body
/// received (doubling, capped at the declared length), never from the prefix
/// alone, and never more than twice what arrived. `charge` is asked for each growth of the buffer before it happens;
/// when it refuses, reading stops with `"over_budget"` and the caller drops
/// what was read.
pub async fn read_frame_charged(
    recv: &mut quinn::RecvStream,
    limit: usize,
    mut charge: impl FnMut(usize) -> bool,
) -> Result<Option<Vec<u8>>, &'static str> {
    let mut len = [0u8; 4];
    match recv.read_exact(&mut len).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(quinn::ReadExactError::FinishedEarly(_)) => return Err("truncated_frame"),
        // The connection went away: a close, not misbehaviour.
        Err(quinn::ReadExactError::ReadError(_)) => return Ok(None),
    }
    let n = check_frame_len(len, limit).map_err(|_| "oversize_frame")?;
    let mut body: Vec<u8> = Vec::new();
    while body.len() < n {
        let chunk = match recv.read_chunk(n - body.len(), true).await {
            Ok(Some(c)) => c.bytes,
            Ok(None) => return Err("truncated_frame"),
            Err(_) => return Ok(None),
        };
        let needed = body.len() + chunk.len();
        if needed > body.capacity() {
            let grown = needed.max(body.capacity().saturating_mul(2)).min(n);
            if !charge(grown - body.capacity()) {
                return Err("over_budget");
            }
            body.reserve_exact(grown - body.len());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// One request on a fresh bidirectional stream, its answer decoded.
pub async fn request(conn: &quinn::Connection, req: &Request) -> Result<Response, NetError> {
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| NetError::Lost(e.to_string()))?;
    send.write_all(&encode_frame(req)).await.map_err(|e| NetError::Lost(e.to_string()))?;
    let _ = send.finish();
    let body = read_frame(&mut recv, MAX_FRAME)
        .await
        .map_err(|e| NetError::Malformed(e.to_string()))?
        .ok_or(NetError::NoAnswer)?;
    decode::<Response>(&body).map_err(|e| NetError::Malformed(e.to_string()))
}

/// `request` with a deadline.
pub async fn request_within(conn: &quinn::Connection, req: &Request, timeout: Duration) -> Result<Response, NetError> {
    match tokio::time::timeout(timeout, request(conn, req)).await {
        Ok(r) => r,
        Err(_) => Err(NetError::Timeout(timeout.as_millis() as u64)),
    }
}

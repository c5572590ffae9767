//! Every protocol type has exactly one encoding: encode → decode is the
//! identity, every strict prefix fails, trailing bytes fail, and the decoder
//! never panics on arbitrary bytes.

use crate::codec::{decode, encode, CodecError, Wire};
use crate::ledger::*;
use crate::scp::*;
use crate::wire::*;
use proptest::prelude::*;

fn check_canonical<T: Wire + PartialEq + std::fmt::Debug>(value: &T) -> Result<(), TestCaseError> {
    let bytes = encode(value);
    prop_assert!(bytes.len() <= T::MAX_ENCODED_LEN, "encoding of {} bytes over the type limit", bytes.len());
    let back: T = decode(&bytes).map_err(|e| TestCaseError::fail(format!("decode failed: {e}")))?;
    prop_assert_eq!(&back, value);
    // Re-encoding gives the same bytes: one value, one encoding.
    prop_assert_eq!(encode(&back), bytes.clone());
    // A truncated encoding never decodes.
    for cut in [0, bytes.len() / 2, bytes.len().saturating_sub(1)] {
        if cut < bytes.len() {
            prop_assert!(decode::<T>(&bytes[..cut]).is_err(), "prefix of {cut} bytes decoded");
        }
    }
    // Trailing bytes are refused.
    let mut longer = bytes.clone();
    longer.push(0);
    if longer.len() <= T::MAX_ENCODED_LEN {
        prop_assert_eq!(decode::<T>(&longer).unwrap_err(), CodecError::TrailingBytes(1));
    }
    Ok(())
}

macro_rules! round_trip {
    ($($name:ident: $ty:ty),* $(,)?) => {$(
        proptest! {
            #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
            #[test]
            fn $name(value in any::<$ty>()) {
                check_canonical(&value)?;
            }
        }
    )*};
}

impl Wire for Operation {
    const MAX_ENCODED_LEN: usize = Transaction::MAX_ENCODED_LEN;
}

round_trip!(
    ledger_header: LedgerHeader,
    scp_value: ScpValue,
    operation: Operation,
    transaction: Transaction,
    tx_set: TxSet,
    tx_result: TxResult,
    account_entry: AccountEntry,
    state_proof: StateProof,
    quorum_set: QuorumSet,
    envelope: Envelope,
    request: Request,
    response: Response,
    header_push: HeaderPush,
    externalize_proof: ExternalizeProof,
    peer_message: PeerMessage,
    params: Params,
    genesis: Genesis,
);

proptest! {
    // Arbitrary bytes never panic any decoder, and whatever does decode re-encodes to the same bytes.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        macro_rules! try_all { ($($ty:ty),*) => {$(
            if let Ok(v) = decode::<$ty>(&bytes) { prop_assert_eq!(encode(&v), bytes.clone()); }
        )*}}
        try_all!(LedgerHeader, ScpValue, Transaction, TxSet, TxResult, AccountEntry, StateProof,
                 QuorumSet, Envelope, Request, Response, HeaderPush, ExternalizeProof, PeerMessage, Params, Genesis);
    }
}

#[test]
fn over_limit_inputs_are_refused_before_decoding() {
    let big = vec![0u8; LedgerHeader::MAX_ENCODED_LEN + 1];
    assert!(matches!(decode::<LedgerHeader>(&big), Err(CodecError::InputTooLong { .. })));
    let big = vec![0u8; Request::MAX_ENCODED_LEN + 1];
    assert!(matches!(decode::<Request>(&big), Err(CodecError::InputTooLong { .. })));
}

#[test]
fn over_limit_length_prefix_is_refused() {
    // A Headers response claiming 1,025 headers (limit 1,024): refused before
    // any header is read, even though the bytes would be there.
    let mut bytes = vec![2u8]; // Response::Headers
    bytes.extend_from_slice(&1025u32.to_le_bytes());
    bytes.resize(bytes.len() + 1025 * 200, 0);
    let err = decode::<Response>(&bytes).unwrap_err();
    assert!(err.to_string().contains("exceeds its limit of 1024"), "{err}");
}

#[test]
fn quorum_set_nesting_bomb_is_refused() {
    // Inner sets nested 10,000 deep: a clear error, not a stack overflow.
    let mut bytes = Vec::new();
    for _ in 0..10_000 {
        bytes.extend_from_slice(&1u32.to_le_bytes()); // threshold
        bytes.extend_from_slice(&0u32.to_le_bytes()); // no validators
        bytes.extend_from_slice(&1u32.to_le_bytes()); // one inner set
    }
    assert!(matches!(decode::<QuorumSet>(&bytes), Err(CodecError::InputTooLong { .. }) | Err(CodecError::TooDeep(_))));
    let small = &bytes[..12 * 200];
    assert!(matches!(decode::<QuorumSet>(small), Err(CodecError::TooDeep(_))));
}

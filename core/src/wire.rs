//! Messages on the wire (SPEC §2): phone requests and responses on ALPN
//! `watt/1`, peer messages on `watt-peer/1`, and the length-prefixed frames
//! that carry them.

use crate::address::{AccountId, NodeId};
use crate::codec::{self, BoundedBytes, BoundedVec, CodecError, Wire};
use crate::crypto::{Hash256, NetworkId, Signature};
use crate::ledger::state::NodeEntry;
use crate::ledger::{
    AccountEntry, LedgerHeader, MerklePath, StateKey, StateProof, Transaction, TxResult, TxSet, Upgrade,
};
use crate::scp::{Ballot, Envelope, Pledges, QuorumSet, Statement, Value};
use serde::{Deserialize, Serialize};

pub const ALPN_PHONE: &[u8] = b"watt/1";
pub const ALPN_PEER: &[u8] = b"watt-peer/1";

/// Largest frame of any kind (proofs and catch-up batches).
pub const MAX_FRAME: usize = 4 * 1024 * 1024;
/// Largest frame of everything else.
pub const MAX_SMALL_FRAME: usize = 64 * 1024;
/// Most headers in one `GetHeaders` answer.
pub const MAX_HEADERS_PER_REQUEST: u32 = 1024;

/// The signed CONFIRM/EXTERNALIZE statements of slot `slot`, all for one
/// value, whose signers form a quorum (SPEC §4). Proves header `slot - 1`.
///
/// The value is carried once and each signer's statement by what it adds
/// (its kind, counters and quorum-set hash): the envelopes rebuild exactly,
/// so every signature still covers the statement its validator signed, at
/// half the bytes of a list of full envelopes (a phone downloads this on
/// every open).
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalizeProof {
    pub slot: u64,
    pub value: Value,
    pub commits: BoundedVec<SignedCommit, 1000>,
}

impl Wire for ExternalizeProof {
    const MAX_ENCODED_LEN: usize = MAX_FRAME;
}

/// One signer's CONFIRM or EXTERNALIZE statement without the slot and value.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedCommit {
    pub node_id: NodeId,
    pub pledge: CommitPledge,
    pub signature: Signature,
}

/// The fields of [`Pledges::Confirm`] / [`Pledges::Externalize`] other than the value.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommitPledge {
    Confirm { counter: u32, n_prepared: u32, n_commit: u32, n_h: u32, quorum_set_hash: Hash256 },
    Externalize { counter: u32, n_h: u32, commit_quorum_set_hash: Hash256 },
}

/// Why envelopes cannot form one [`ExternalizeProof`]: the proof verifier's
/// own reasons (wrong slot, not a commit, mixed values, too many).
pub use crate::scp::proof::ProofError as ProofShapeError;

impl ExternalizeProof {
    /// Compacts signed CONFIRM/EXTERNALIZE envelopes of `slot` for one value
    /// (none gives an empty proof, which never verifies).
    pub fn from_envelopes(slot: u64, envelopes: &[Envelope]) -> Result<ExternalizeProof, ProofShapeError> {
        let mut value: Option<&Value> = None;
        let mut commits = Vec::with_capacity(envelopes.len());
        for e in envelopes {
            let node = e.statement.node_id;
            if e.statement.slot_index != slot {
                return Err(ProofShapeError::WrongSlot(node));
            }
            let (v, pledge) = match &e.statement.pledges {
                Pledges::Confirm { ballot, n_prepared, n_commit, n_h, quorum_set_hash } => (
                    &ballot.value,
                    CommitPledge::Confirm {
                        counter: ballot.counter,
                        n_prepared: *n_prepared,
                        n_commit: *n_commit,
                        n_h: *n_h,
                        quorum_set_hash: *quorum_set_hash,
                    },
                ),
                Pledges::Externalize { commit, n_h, commit_quorum_set_hash } => (
                    &commit.value,
                    CommitPledge::Externalize {
                        counter: commit.counter,
                        n_h: *n_h,
                        commit_quorum_set_hash: *commit_quorum_set_hash,
                    },
                ),
                _ => return Err(ProofShapeError::NotCommit(node)),
            };
            match value {
                None => value = Some(v),
                Some(first) if first != v => return Err(ProofShapeError::MixedValues),
                Some(_) => {}
            }
            commits.push(SignedCommit { node_id: node, pledge, signature: e.signature });
        }
        Ok(ExternalizeProof {
            slot,
            value: value.cloned().unwrap_or_else(|| Value(BoundedBytes::new())),
            commits: BoundedVec::try_from_vec(commits).map_err(|_| ProofShapeError::TooMany)?,
        })
    }

    /// The signed envelopes, exactly as their validators signed them.
    pub fn envelopes(&self) -> Vec<Envelope> {
        self.commits
            .iter()
            .map(|c| {
                let ballot = |counter: u32| Ballot { counter, value: self.value.clone() };
                let pledges = match &c.pledge {
                    CommitPledge::Confirm { counter, n_prepared, n_commit, n_h, quorum_set_hash } => Pledges::Confirm {
                        ballot: ballot(*counter),
                        n_prepared: *n_prepared,
                        n_commit: *n_commit,
                        n_h: *n_h,
                        quorum_set_hash: *quorum_set_hash,
                    },
                    CommitPledge::Externalize { counter, n_h, commit_quorum_set_hash } => Pledges::Externalize {
                        commit: ballot(*counter),
                        n_h: *n_h,
                        commit_quorum_set_hash: *commit_quorum_set_hash,
                    },
                };
                Envelope {
                    statement: Statement { node_id: c.node_id, slot_index: self.slot, pledges },
                    signature: c.signature,
                }
            })
            .collect()
    }

    pub fn signers(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.commits.iter().map(|c| c.node_id)
    }
}

/// A validator in the directory with its sparse-Merkle proof against the
/// header `Response::Nodes` names, so a phone believes only proven entries.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub node_id: NodeId,
    pub entry: NodeEntry,
    pub proof: StateProof,
}

/// A quorum-set change and the proof that the then-trusted set adopted it.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvenUpgrade {
    pub upgrade: Upgrade,
    pub proof: ExternalizeProof,
}

/// Why a node refused a transaction.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxRejection {
    Malformed,
    BadSignature,
    WrongNetwork,
    BadSequence {
        expected: u64,
    },
    InsufficientFee,
    InsufficientBalance,
    PoolFull,
    Duplicate,
    Expired,
    AlreadyAttested,
    /// Accepted once, then dropped from a full pool for a better fee
    /// (`GetTx` says so, so the sender knows to resubmit).
    Evicted,
    /// Encoded larger than the network's `max_tx_bytes` (SPEC §3).
    TooLarge,
    /// Checked against the last closed ledger, the operation would fail for
    /// this reason: refused before it costs a place (attestations: a bad
    /// anchor or day, or a first tap without a valid invite or over the cap).
    WouldFail(crate::ledger::OpFailure),
}

/// A phone's request (one per bidirectional stream).
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    Hello {
        network_id: NetworkId,
        client_version: u32,
    },
    GetLatest,
    GetHeaders {
        from: u64,
        count: u32,
    },
    GetAccount {
        account: AccountId,
    },
    SubmitTx(Transaction),
    GetTx {
        hash: Hash256,
    },
    /// One page of the validator directory: validator-set members first, then
    /// other announced nodes, each group by id, after `after` (None: from the start).
    GetNodes {
        after: Option<NodeId>,
    },
    GetQsetChanges {
        from: u64,
    },
    Subscribe,
    /// Any state entry (sectors, provers, day records) with its proof.
    GetEntry {
        key: StateKey,
    },
    /// Header `seq` with the externalize proof of slot `seq + 1`, answered
    /// as `Latest`: a phone proves an old header in one answer instead of
    /// walking the chain down to it.
    GetProvenHeader {
        seq: u64,
    },
    /// Fork evidence a phone found: two valid externalize proofs of `slot`
    /// for different values. Validators keep it and show it to operators.
    ReportFork {
        slot: u64,
        a: ExternalizeProof,
        b: ExternalizeProof,
    },
}

impl Wire for Request {
    const MAX_ENCODED_LEN: usize = MAX_FRAME;
}

/// A node's answer; each carries what the phone needs to verify it (SPEC §7).
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    Hello {
        network_id: NetworkId,
        genesis_hash: Hash256,
        node_id: NodeId,
        latest_seq: u64,
        protocol_version: u32,
    },
    /// Header `proof.slot - 1` and the externalize proof of `proof.slot`.
    Latest {
        header: LedgerHeader,
        proof: ExternalizeProof,
    },
    Headers {
        headers: BoundedVec<LedgerHeader, { MAX_HEADERS_PER_REQUEST as usize }>,
    },
    Account {
        header_seq: u64,
        entry: Option<AccountEntry>,
        proof: StateProof,
    },
    TxAccepted {
        hash: Hash256,
    },
    TxRejected {
        hash: Hash256,
        reason: TxRejection,
    },
    /// A transaction's result with its path under the header's `results_hash`.
    Tx {
        header_seq: u64,
        result: TxResult,
        path: MerklePath,
    },
    TxUnknown {
        hash: Hash256,
    },
    Nodes {
        header_seq: u64,
        nodes: BoundedVec<NodeInfo, 1000>,
        /// Where the next page starts (`GetNodes { after }`); None on the last page.
        next: Option<NodeId>,
    },
    QsetChanges {
        changes: BoundedVec<ProvenUpgrade, 64>,
    },
    Subscribed,
    Error {
        message: BoundedBytes<1024>,
    },
    /// The encoded `StateEntry` under the key (or absence), proven against
    /// header `header_seq`'s `state_root`.
    Entry {
        header_seq: u64,
        entry: Option<BoundedBytes<MAX_ENTRY_BYTES>>,
        proof: StateProof,
    },
    /// The fork evidence for `slot` checked out and is kept.
    ForkReported {
        slot: u64,
    },
}

/// Most encoded bytes of directory entries in one `Nodes` page: a quorum set
/// can be ~40 KB, so a page is cut by bytes as well as by count.
pub const MAX_NODES_PAGE_BYTES: usize = 512 * 1024;

/// Largest state entry a node serves (`StateEntry::MAX_ENCODED_LEN`).
pub const MAX_ENTRY_BYTES: usize = 128 * 1024;

impl Wire for Response {
    const MAX_ENCODED_LEN: usize = MAX_FRAME;
}

impl Response {
    /// An error answer; a message over the 1,024-byte field is cut there.
    pub fn error(message: &str) -> Response {
        Response::Error { message: BoundedBytes::truncated(message.as_bytes()) }
    }
}

/// Server-pushed on the subscription stream.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderPush {
    pub header: LedgerHeader,
    pub proof: ExternalizeProof,
}

impl Wire for HeaderPush {
    const MAX_ENCODED_LEN: usize = MAX_FRAME;
}

/// One closed ledger for catch-up: its header, tx set, the externalize proof
/// of its slot (which carries the value), and the proof set its value's
/// `prev_proof_hash` names (whose signers are the participation counted).
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatchupLedger {
    pub header: LedgerHeader,
    pub tx_set: TxSet,
    pub proof: ExternalizeProof,
    pub prev_proof: BoundedVec<Envelope, 1000>,
}

/// Validator-to-validator messages.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerMessage {
    Hello { network_id: NetworkId, genesis_hash: Hash256, node_id: NodeId, ledger_seq: u64 },
    Envelope(Envelope),
    Transaction(Transaction),
    GetTxSet { hash: Hash256 },
    TxSet(TxSet),
    GetQuorumSet { hash: Hash256 },
    QuorumSet(QuorumSet),
    GetProofSet { hash: Hash256 },
    ProofSet { slot: u64, envelopes: BoundedVec<Envelope, 1000> },
    DontHave { hash: Hash256 },
    GetCatchup { from: u64, count: u32 },
    Catchup { ledgers: BoundedVec<CatchupLedger, 64> },
}

impl Wire for PeerMessage {
    const MAX_ENCODED_LEN: usize = MAX_FRAME;
}

/// Encodes `msg` as one frame: `u32` LE length, then the canonical bytes.
pub fn encode_frame<T: Wire>(msg: &T) -> Vec<u8> {
    let body = codec::encode(msg);
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the {limit}-byte limit")]
    TooLarge { len: usize, limit: usize },
    #[error("bad frame: {0}")]
    Codec(#[from] CodecError),
}

/// Checks a frame's length prefix before its body is read or allocated.
pub fn check_frame_len(prefix: [u8; 4], limit: usize) -> Result<usize, FrameError> {
    let len = u32::from_le_bytes(prefix) as usize;
    if len > limit.min(MAX_FRAME) {
        return Err(FrameError::TooLarge { len, limit: limit.min(MAX_FRAME) });
    }
    Ok(len)
}

/// Sans-IO frame reassembly: feed bytes as they arrive, take whole frames out.
/// The buffer never grows past one frame of `limit` bytes plus its prefix.
#[derive(Debug)]
pub struct FrameReader {
    buf: Vec<u8>,
    limit: usize,
}

impl FrameReader {
    pub fn new(limit: usize) -> FrameReader {
        FrameReader { buf: Vec::new(), limit: limit.min(MAX_FRAME) }
    }

    /// Appends bytes; refuses them as soon as a length prefix is over the limit.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), FrameError> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= 4 {
            let mut p = [0u8; 4];
            p.copy_from_slice(&self.buf[..4]);
            check_frame_len(p, self.limit)?;
        }
        Ok(())
    }

    /// The next whole frame's body, if one has arrived.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let mut p = [0u8; 4];
        p.copy_from_slice(&self.buf[..4]);
        let len = check_frame_len(p, self.limit)?;
        if self.buf.len() < 4 + len {
            return Ok(None);
        }
        let body = self.buf[4..4 + len].to_vec();
        self.buf.drain(..4 + len);
        Ok(Some(body))
    }
}

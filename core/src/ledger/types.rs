//! Ledger objects (SPEC §3): headers, consensus values, transactions and
//! their operations, tx sets, results and state entries.

use crate::address::{AccountId, NodeId};
use crate::amount::Amount;
use crate::codec::{encode, BoundedBytes, BoundedVec, Wire};
use crate::crypto::{hash_tagged, Domain, Hash256, Keypair, NetworkId, PublicKey, Signature, SignatureError};
use crate::scp::{Envelope, QuorumSet};
use serde::{Deserialize, Serialize};

/// Most operations in one transaction.
pub const MAX_OPS: usize = 100;
/// Most members of a security circle.
pub const MAX_CIRCLE: usize = 5;
/// Largest opaque device-integrity token (Play Integrity / App Attest).
pub const MAX_DEVICE_TOKEN: usize = 4096;
/// Largest seal proof (SPEC §6: hundreds of KB per 64 MiB sector).
pub const MAX_SEAL_PROOF: usize = 2 * 1024 * 1024;
/// Largest PoSt reveal (SPEC §6: about 200 KB at defaults).
pub const MAX_POST_PROOF: usize = 512 * 1024;
/// Most transactions in one tx set (ordinary + attestation lanes, SPEC §9 defaults).
pub const MAX_TXSET_TXS: usize = 6000;
/// Largest encoded tx set (a catch-up frame).
pub const MAX_TXSET_BYTES: usize = 4 * 1024 * 1024;

/// A closed ledger's header; `hash = H(header)`.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerHeader {
    pub seq: u64,
    pub prev_hash: Hash256,
    /// Unix milliseconds (SPEC §1 says seconds; sub-second devnet ledgers
    /// need milliseconds to keep close times strictly increasing).
    pub close_time: u64,
    pub tx_set_hash: Hash256,
    pub results_hash: Hash256,
    pub state_root: Hash256,
    /// The VRF output agreed for this ledger: the source of all protocol randomness.
    pub rand: Hash256,
    pub prev_proof_hash: Hash256,
    pub day: u64,
    pub protocol_version: u32,
    pub params_hash: Hash256,
}

impl Wire for LedgerHeader {
    const MAX_ENCODED_LEN: usize = 256;
}

impl LedgerHeader {
    pub fn hash(&self) -> Hash256 {
        hash_tagged(Domain::LedgerHeader, &encode(self))
    }
}

/// A VRF proof (bytes, so the scheme can be named by `protocol_version`).
pub type VrfProof = BoundedBytes<128>;

/// A change that a slot's quorum adopts with the ledger (SPEC §4, §8).
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Upgrade {
    ProtocolVersion(u32),
    /// A validator's quorum set changes; phones follow only upgrades proven by
    /// the set they already trust (SPEC §7).
    QuorumSet {
        node_id: NodeId,
        quorum_set: QuorumSet,
    },
}

/// The value SCP agrees on for slot `s` (SPEC §4).
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScpValue {
    pub prev_header_hash: Hash256,
    pub tx_set_hash: Hash256,
    /// Unix milliseconds.
    pub close_time: u64,
    pub proposer: NodeId,
    pub rand: Hash256,
    pub rand_proof: VrfProof,
    pub prev_proof_hash: Hash256,
    pub upgrades: BoundedVec<Upgrade, 8>,
}

impl Wire for ScpValue {
    const MAX_ENCODED_LEN: usize = crate::scp::statement::MAX_VALUE_LEN;
}

/// `Attest`: the daily "I am not a robot" tap (SPEC §5).
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attest {
    pub day: u64,
    pub anchor_seq: u64,
    pub anchor_hash: Hash256,
    /// The inviter's consent; a first tap (a new key, or a wallet) needs one.
    pub invite: Option<Invite>,
    pub device_token: Option<BoundedBytes<MAX_DEVICE_TOKEN>>,
}

/// An inviter's consent to one invitee's first tap (SPEC §5): the inviter's
/// signature over `network_id ‖ "watt/v1/invite" ‖ invitee ‖ expiry_day`,
/// made by the inviter's app and handed over as a QR code or a link. It
/// names the invitee, so nobody else can use it, and it expires.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    pub inviter: AccountId,
    /// The last day on which the invitee's first tap may use it.
    pub expiry_day: u64,
    pub signature: Signature,
}

impl Wire for Invite {
    const MAX_ENCODED_LEN: usize = 32 + 8 + 64;
}

/// The text form of an invite, for QR codes and links.
pub const INVITE_PREFIX: &str = "watt-invite:";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    #[error("an invite starts with {INVITE_PREFIX:?}")]
    Prefix,
    #[error("the invite is not valid hex or not an invite: {0}")]
    Malformed(String),
}

impl Invite {
    fn signed_bytes(invitee: &AccountId, expiry_day: u64) -> Vec<u8> {
        let mut b = Vec::with_capacity(40);
        b.extend_from_slice(&invitee.0 .0);
        b.extend_from_slice(&expiry_day.to_le_bytes());
        b
    }

    /// The inviter's app signs an invite for `invitee`, valid through `expiry_day`.
    pub fn sign(inviter: &Keypair, network: &NetworkId, invitee: &AccountId, expiry_day: u64) -> Invite {
        let signature = inviter.sign(network, Domain::Invite, &Self::signed_bytes(invitee, expiry_day));
        Invite { inviter: AccountId(inviter.public()), expiry_day, signature }
    }

    /// Checks that the inviter signed this invite for `invitee` on `network`.
    pub fn verify(&self, network: &NetworkId, invitee: &AccountId) -> Result<(), SignatureError> {
        let bytes = Self::signed_bytes(invitee, self.expiry_day);
        crate::crypto::verify(self.inviter.public_key(), network, Domain::Invite, &bytes, &self.signature)
    }

    pub fn to_text(&self) -> String {
        format!("{INVITE_PREFIX}{}", crate::hex::encode(&encode(self)))
    }

    pub fn from_text(s: &str) -> Result<Invite, InviteError> {
        let hex = s.trim().strip_prefix(INVITE_PREFIX).ok_or(InviteError::Prefix)?;
        if hex.len() > 2 * Invite::MAX_ENCODED_LEN {
            return Err(InviteError::Malformed(format!("{} characters is too long", hex.len())));
        }
        let bytes = crate::hex::decode(hex).map_err(|e| InviteError::Malformed(e.to_string()))?;
        crate::codec::decode(&bytes).map_err(|e| InviteError::Malformed(e.to_string()))
    }
}

/// Sector sizes the protocol knows (SPEC §6).
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SectorSize {
    Mib1,
    Mib16,
    Mib64,
    Mib256,
}

impl SectorSize {
    pub const fn bytes(self) -> u64 {
        match self {
            SectorSize::Mib1 => 1 << 20,
            SectorSize::Mib16 => 16 << 20,
            SectorSize::Mib64 => 64 << 20,
            SectorSize::Mib256 => 256 << 20,
        }
    }
}

/// Every phase-1 operation (SPEC §3, §6).
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operation {
    Pay {
        to: AccountId,
        amount: Amount,
    },
    Attest(Attest),
    SetSecurityCircle {
        members: BoundedVec<AccountId, MAX_CIRCLE>,
    },
    SetReferrer {
        account: AccountId,
    },
    AnnounceNode {
        node_id: NodeId,
        vrf_key: PublicKey,
        addresses: BoundedVec<BoundedBytes<128>, 4>,
        quorum_set: QuorumSet,
        /// The node key's signature over the announcing account, so nobody can
        /// announce a node whose key they do not hold.
        proof_of_key: Signature,
    },
    Participation {
        node_id: NodeId,
        envelopes: BoundedVec<Envelope, 64>,
    },
    PledgeLock {
        amount: Amount,
    },
    PledgeUnlock {
        amount: Amount,
    },
    SectorPreCommit {
        sector_number: u64,
        size: SectorSize,
        ticket_seq: u64,
        comm_d: Hash256,
        comm_r: Hash256,
        comm_c: Hash256,
        comm_r_last: Hash256,
    },
    SectorProveCommit {
        sector_number: u64,
        proof: BoundedBytes<MAX_SEAL_PROOF>,
    },
    PostCommit {
        period: u64,
        chain_root: Hash256,
    },
    PostReveal {
        period: u64,
        proof: BoundedBytes<MAX_POST_PROOF>,
    },
    SectorDeclareFault {
        sectors: BoundedVec<u64, 1024>,
    },
    SectorTerminate {
        sectors: BoundedVec<u64, 1024>,
    },
}

impl Operation {
    pub fn is_attestation(&self) -> bool {
        matches!(self, Operation::Attest(_))
    }
}

/// What the source signs.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionBody {
    pub source: AccountId,
    pub seq_num: u64,
    pub fee: Amount,
    pub max_ledger: Option<u64>,
    pub ops: BoundedVec<Operation, MAX_OPS>,
}

/// A signed transaction; the signature covers `network_id ‖ tag ‖ body`.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    pub body: TransactionBody,
    pub signature: Signature,
}

impl Wire for Transaction {
    const MAX_ENCODED_LEN: usize = MAX_SEAL_PROOF + 64 * 1024;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxFormError {
    #[error("a transaction needs 1 to {MAX_OPS} operations, this one has {0}")]
    OpCount(usize),
    #[error("attestations travel alone: an Attest must be the only operation")]
    MixedAttestation,
    #[error(transparent)]
    Signature(#[from] SignatureError),
}

impl TransactionBody {
    pub fn sign(self, key: &Keypair, network: &NetworkId) -> Transaction {
        let signature = key.sign(network, Domain::Transaction, &encode_body(&self));
        Transaction { body: self, signature }
    }
}

impl Transaction {
    /// The transaction's id: `H(tag ‖ body)`. The signature is left out, so an id
    /// cannot be changed by re-signing.
    pub fn hash(&self) -> Hash256 {
        hash_tagged(Domain::Transaction, &encode_body(&self.body))
    }

    /// Shape and signature checks that need no ledger state.
    pub fn check_form(&self, network: &NetworkId) -> Result<(), TxFormError> {
        self.check_shape()?;
        crate::crypto::verify(
            self.body.source.public_key(),
            network,
            Domain::Transaction,
            &encode_body(&self.body),
            &self.signature,
        )?;
        Ok(())
    }

    /// [`Transaction::check_form`] without the signature, for a transaction
    /// whose very signature was checked already.
    pub fn check_shape(&self) -> Result<(), TxFormError> {
        let n = self.body.ops.len();
        if n == 0 || n > MAX_OPS {
            return Err(TxFormError::OpCount(n));
        }
        if n > 1 && self.body.ops.iter().any(Operation::is_attestation) {
            return Err(TxFormError::MixedAttestation);
        }
        Ok(())
    }

    /// [`Transaction::check_form`], skipping the signature when `verified`
    /// says this exact signature over this body was checked before.
    pub fn check_form_with(
        &self,
        network: &NetworkId,
        verified: &dyn Fn(&Transaction) -> bool,
    ) -> Result<(), TxFormError> {
        if verified(self) {
            self.check_shape()
        } else {
            self.check_form(network)
        }
    }

    /// Attestations go in their own fee-free lane (SPEC §3).
    pub fn is_attestation(&self) -> bool {
        self.body.ops.len() == 1 && self.body.ops[0].is_attestation()
    }

    /// Fee per operation, the congestion ordering key (SPEC §3).
    pub fn fee_per_op(&self) -> u64 {
        self.body.fee.units() / (self.body.ops.len().max(1) as u64)
    }
}

fn encode_body(b: &TransactionBody) -> Vec<u8> {
    crate::codec::to_bytes(b).expect("transaction bodies only use codec-supported shapes")
}

/// The transactions of one ledger, bound to the ledger they follow.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxSet {
    pub prev_header_hash: Hash256,
    pub txs: BoundedVec<Transaction, MAX_TXSET_TXS>,
}

impl Wire for TxSet {
    const MAX_ENCODED_LEN: usize = MAX_TXSET_BYTES;
}

impl TxSet {
    pub fn hash(&self) -> Hash256 {
        hash_tagged(Domain::TxSet, &encode(self))
    }
}

/// Why a transaction did not take effect as a whole.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxFailure {
    /// Bad shape or signature (never in a valid tx set).
    Malformed,
    BadSequence,
    NoSourceAccount,
    /// The fee could not be paid.
    InsufficientFee,
    Expired,
    /// Attestations travel fee-free: a fee on one is refused.
    FeeNotAllowed,
}

/// Why an operation failed (its transaction's fee is still charged, SPEC §3).
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpFailure {
    Underfunded,
    BelowOpeningBalance,
    AlreadyAttested,
    BadAnchor,
    BadDay,
    InviterNotEligible,
    NewAccountLimit,
    CircleTooSoon,
    BadCircle,
    ReferrerWindowClosed,
    NoSuchAccount,
    BadProof,
    NotOwner,
    Overflow,
    /// A sector with that number exists (and has not lapsed).
    SectorExists,
    NoSuchSector,
    /// The sector is not in a state this operation applies to.
    BadSectorState,
    /// The ticket's ledger is not within `ticket_window` ledgers.
    BadTicket,
    /// The ledger whose `rand` this operation needs has not closed yet.
    TooEarly,
    WindowClosed,
    /// The prover already committed (or revealed) this period.
    AlreadyCommitted,
    NoPostCommit,
    /// The prover has no sectors this period's proof would cover.
    NoSectors,
    TooManySectors,
    /// A validator-set member's VRF key changes only with the validator set.
    KeyFixed,
    /// The invite is not the named inviter's signature for this invitee, or expired.
    BadInvite,
}

#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxOutcome {
    Success,
    /// Not applied: no fee, no sequence number used.
    Rejected(TxFailure),
    /// Fee charged and sequence used; operation `index` failed, so none took effect.
    OpFailed {
        index: u32,
        reason: OpFailure,
    },
}

/// One transaction's outcome, committed under the header's `results_hash`.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxResult {
    pub tx_hash: Hash256,
    pub fee_charged: Amount,
    pub outcome: TxOutcome,
}

impl Wire for TxResult {
    const MAX_ENCODED_LEN: usize = 64;
}

impl TxResult {
    /// The leaf committed under `results_hash`.
    pub fn leaf(&self) -> Hash256 {
        hash_tagged(Domain::TxResults, &encode(self))
    }
}

/// An account's state entry (SPEC §3).
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AccountEntry {
    pub balance: Amount,
    pub seq_num: u64,
    pub created_day: u64,
    pub last_attest_day: Option<u64>,
    /// The attestation day before `last_attest_day` (a grace-window tap for
    /// yesterday can precede today's), so a restart can rebuild the
    /// undistributed days' attester sets from accounts alone.
    pub prev_attest_day: Option<u64>,
    pub referrer: Option<AccountId>,
    pub security_circle: BoundedVec<AccountId, MAX_CIRCLE>,
    pub circle_changed_day: Option<u64>,
    pub pledge_locked: Amount,
    /// Pledge being unlocked and the day it returns to the balance.
    pub pledge_unlocking: Amount,
    pub unlock_day: u64,
    /// Invitations used on `invites_day`.
    pub invites_day: u64,
    pub invites_used: u32,
    pub flags: u32,
}

impl AccountEntry {
    /// Founding accounts (genesis) are past probation from day 0.
    pub const FLAG_FOUNDING: u32 = 1;
    /// Passed its own invited first attestation (SPEC §5). An account that
    /// exists only because it was paid into is a *wallet*: it holds and sends
    /// WATT but earns nothing until then.
    pub const FLAG_MINER: u32 = 2;

    /// A miner: a founding account, or one admitted by an invited first tap.
    pub fn is_miner(&self) -> bool {
        self.flags & (Self::FLAG_FOUNDING | Self::FLAG_MINER) != 0
    }
}

impl Wire for AccountEntry {
    const MAX_ENCODED_LEN: usize = 512;
}

/// A Merkle path in a binary tree (SPEC §1 Merkle trees): the leaf's index
/// and its siblings from the bottom up.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerklePath {
    pub index: u64,
    pub siblings: BoundedVec<Hash256, 64>,
}

/// A sparse-Merkle proof of presence or absence of a key (SPEC §3 State): the
/// leaf found on the key's path (if any) and the siblings from that leaf's
/// depth up to the root; compressed paths make it short.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateProof {
    pub leaf: Option<(Hash256, Hash256)>,
    pub siblings: BoundedVec<Hash256, 256>,
}

impl Wire for StateProof {
    const MAX_ENCODED_LEN: usize = 72 + 4 + 256 * 32;
}

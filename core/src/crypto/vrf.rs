//! The ledger's randomness beacon (SPEC §4): a VRF (schnorrkel sr25519) of the
//! proposer over `rand_{s-1} ‖ s`. Unlike a signature, a VRF output is unique
//! for a key and input, so a proposer cannot grind it.

use super::hash::{Domain, Hash256, TaggedHasher};
use super::keys::PublicKey;
use schnorrkel::vrf::{VRFPreOut, VRFProof};

/// `rand_proof`: the 32-byte VRF pre-output followed by the 64-byte proof.
pub const VRF_PROOF_LEN: usize = 96;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VrfError {
    #[error("the VRF key is not a valid sr25519 public key")]
    BadKey,
    #[error("the VRF proof is malformed")]
    Malformed,
    #[error("the VRF proof does not verify for this key and input")]
    Invalid,
    #[error("the VRF output does not match its proof")]
    WrongOutput,
}

pub struct VrfKeypair(schnorrkel::Keypair);

/// The proof's nonce comes from the secret key and the input alone (merlin
/// mixes the key into it, as Ed25519 derives its nonce): the same slot
/// proven twice gives the same proof, so a restarted validator nominates
/// the value it nominated before, and a simulation replays bit for bit.
/// This is the extra entropy schnorrkel would add, and it adds none.
struct NoExtraEntropy;

impl rand_core::RngCore for NoExtraEntropy {
    fn next_u32(&mut self) -> u32 {
        0
    }
    fn next_u64(&mut self) -> u64 {
        0
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        dest.fill(0);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        dest.fill(0);
        Ok(())
    }
}

impl rand_core::CryptoRng for NoExtraEntropy {}

fn transcript(prev_rand: &Hash256, slot: u64) -> impl schnorrkel::context::SigningTranscript {
    let mut msg = [0u8; 40];
    msg[..32].copy_from_slice(&prev_rand.0);
    msg[32..].copy_from_slice(&slot.to_le_bytes());
    schnorrkel::signing_context(Domain::Vrf.tag()).bytes(&msg)
}

fn output(preout: &VRFPreOut, pk: &schnorrkel::PublicKey, prev_rand: &Hash256, slot: u64) -> Result<Hash256, VrfError> {
    let io = preout.attach_input_hash(pk, transcript(prev_rand, slot)).map_err(|_| VrfError::Malformed)?;
    let bytes: [u8; 32] = io.make_bytes(b"watt-rand");
    let mut h = TaggedHasher::new(Domain::Vrf);
    h.update(&bytes);
    Ok(h.finalize())
}

impl VrfKeypair {
    /// The VRF key of a node, derived from its node seed.
    pub fn from_seed(seed: &[u8; 32]) -> VrfKeypair {
        let mut h = TaggedHasher::new(Domain::Vrf);
        h.update(seed);
        let mini = schnorrkel::MiniSecretKey::from_bytes(&h.finalize().0).expect("32 bytes make a mini secret key");
        VrfKeypair(mini.expand_to_keypair(schnorrkel::ExpansionMode::Ed25519))
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.public.to_bytes())
    }

    /// The output and proof for slot `slot` after `prev_rand`.
    pub fn prove(&self, prev_rand: &Hash256, slot: u64) -> (Hash256, [u8; VRF_PROOF_LEN]) {
        // `vrf_sign` with its proof transcript's entropy made explicit.
        let extra = schnorrkel::context::attach_rng(merlin::Transcript::new(b"VRF"), NoExtraEntropy);
        let (io, proof, _) = self.0.vrf_sign_extra(transcript(prev_rand, slot), extra);
        let preout = io.to_preout();
        let rand = output(&preout, &self.0.public, prev_rand, slot).expect("own pre-output is valid");
        let mut out = [0u8; VRF_PROOF_LEN];
        out[..32].copy_from_slice(&preout.to_bytes());
        out[32..].copy_from_slice(&proof.to_bytes());
        (rand, out)
    }
}

/// Checks that `rand` is the VRF output of `key` for `prev_rand ‖ slot`.
pub fn vrf_verify(
    key: &PublicKey,
    prev_rand: &Hash256,
    slot: u64,
    rand: &Hash256,
    proof: &[u8],
) -> Result<(), VrfError> {
    if proof.len() != VRF_PROOF_LEN {
        return Err(VrfError::Malformed);
    }
    let pk = schnorrkel::PublicKey::from_bytes(&key.0).map_err(|_| VrfError::BadKey)?;
    let preout = VRFPreOut::from_bytes(&proof[..32]).map_err(|_| VrfError::Malformed)?;
    let vproof = VRFProof::from_bytes(&proof[32..]).map_err(|_| VrfError::Malformed)?;
    pk.vrf_verify(transcript(prev_rand, slot), &preout, &vproof).map_err(|_| VrfError::Invalid)?;
    if &output(&preout, &pk, prev_rand, slot)? != rand {
        return Err(VrfError::WrongOutput);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vrf_output_verifies_and_is_bound_to_key_and_input() {
        let k = VrfKeypair::from_seed(&[1; 32]);
        let prev = Hash256([5; 32]);
        let (rand, proof) = k.prove(&prev, 7);
        assert_eq!(vrf_verify(&k.public(), &prev, 7, &rand, &proof), Ok(()));
        // Unique: proving again gives the same output, and the same proof
        // (a restarted validator and a replayed simulation nominate the same value).
        assert_eq!(k.prove(&prev, 7), (rand, proof));
        assert!(vrf_verify(&k.public(), &prev, 8, &rand, &proof).is_err());
        assert!(vrf_verify(&k.public(), &Hash256([6; 32]), 7, &rand, &proof).is_err());
        assert!(vrf_verify(&VrfKeypair::from_seed(&[2; 32]).public(), &prev, 7, &rand, &proof).is_err());
        assert_eq!(vrf_verify(&k.public(), &prev, 7, &Hash256([0; 32]), &proof), Err(VrfError::WrongOutput));
        let mut bad = proof;
        bad[40] ^= 1;
        assert!(vrf_verify(&k.public(), &prev, 7, &rand, &bad).is_err());
        assert_eq!(vrf_verify(&k.public(), &prev, 7, &rand, &proof[..10]), Err(VrfError::Malformed));
    }
}

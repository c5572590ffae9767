//! A node that lies (for the client tests and the Kotlin JVM test): it
//! speaks `watt/1` under its own node key, forwards each request to an
//! honest validator and tampers with the answer as told.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use watt_core::address::NodeId;
use watt_core::amount::{Amount, UNITS_PER_WATT};
use watt_core::codec::{decode, encode, BoundedBytes};
use watt_core::crypto::{Keypair, NetworkId};
use watt_core::ledger::{Genesis, ScpValue};
use watt_core::scp::{Pledges, Value};
use watt_core::wire::{encode_frame, ExternalizeProof, Request, Response, MAX_FRAME};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lie {
    TooFewSigners,
    ForgedSignature,
    WrongStateProof,
    StaleHeader,
    ConflictingChain,
    /// Says it never heard of any transaction.
    TxUnknown,
    /// Says it took each submitted transaction, and drops it.
    DropsTransactions,
}

/// A server that speaks `watt/1` under its own node key, forwards each
/// request to an honest validator and tampers with the answer.
pub struct LyingNode {
    pub address: SocketAddr,
    pub node_id: NodeId,
    pub lie: Arc<Mutex<Lie>>,
    _endpoint: quinn::Endpoint,
}

struct Forger {
    network: NetworkId,
    validator_keys: Vec<Keypair>,
    first_latest: Response,
}

impl Forger {
    fn tamper(&self, lie: Lie, answer: Response) -> Response {
        match (lie, answer) {
            (Lie::TooFewSigners, Response::Latest { header, mut proof }) => {
                let mut commits = proof.commits.into_vec();
                commits.truncate(1);
                proof.commits = commits.try_into().unwrap();
                Response::Latest { header, proof }
            }
            (Lie::ForgedSignature, Response::Latest { header, mut proof }) => {
                let mut commits = proof.commits.into_vec();
                commits[0].signature.0[10] ^= 0x40;
                proof.commits = commits.try_into().unwrap();
                Response::Latest { header, proof }
            }
            (Lie::WrongStateProof, Response::Account { header_seq, entry, proof }) => {
                let entry = entry.map(|mut e| {
                    e.balance = Amount(e.balance.units() + 500 * UNITS_PER_WATT);
                    e
                });
                Response::Account { header_seq, entry, proof }
            }
            (Lie::StaleHeader, Response::Latest { .. }) => self.first_latest.clone(),
            (Lie::ConflictingChain, Response::Latest { header, proof }) => self.conflicting(header, proof),
            (Lie::TxUnknown, Response::Tx { result, .. }) => Response::TxUnknown { hash: result.tx_hash },
            (_, other) => other,
        }
    }

    /// Another header for the same seq, with an externalize proof re-signed
    /// by the real validator keys (a compromised quorum): valid on its own.
    fn conflicting(&self, header: watt_core::ledger::LedgerHeader, proof: ExternalizeProof) -> Response {
        let mut forged = header;
        forged.close_time += 1;
        let mut envelopes = proof.envelopes();
        for env in envelopes.iter_mut() {
            let ballot = match &mut env.statement.pledges {
                Pledges::Externalize { commit, .. } => commit,
                Pledges::Confirm { ballot, .. } => ballot,
                _ => panic!("proof envelopes commit"),
            };
            let mut value: ScpValue = decode(ballot.value.as_bytes()).expect("value decodes");
            value.prev_header_hash = forged.hash();
            ballot.value = Value(BoundedBytes::try_from_vec(encode(&value)).expect("value fits"));
            let key = self
                .validator_keys
                .iter()
                .find(|k| NodeId(k.public()) == env.statement.node_id)
                .expect("a validator's key");
            *env = env.statement.clone().sign(key, &self.network);
        }
        let proof = ExternalizeProof::from_envelopes(proof.slot, &envelopes).expect("one value");
        Response::Latest { header: forged, proof }
    }
}

impl LyingNode {
    /// Starts on a loopback port, forwarding to validator `upstream` at
    /// `upstream_addr`; `validator_keys` re-sign conflicting chains.
    pub async fn start(
        genesis: &Genesis,
        validator_keys: Vec<Keypair>,
        upstream: usize,
        upstream_addr: SocketAddr,
    ) -> LyingNode {
        let upstream_id = genesis.validators[upstream].node_id;
        // An id below every validator's: a phone that asks nodes in id order asks the liar first.
        let key = loop {
            let k = Keypair::generate().unwrap();
            if genesis.validators.iter().all(|v| NodeId(k.public()) < v.node_id) {
                break k;
            }
        };
        let node_id = NodeId(key.public());
        let server = watt_node::tls::server_config(&key, watt_node::tls::AllowedPeers::default()).unwrap();
        let endpoint = quinn::Endpoint::server(server, "127.0.0.1:0".parse().unwrap()).unwrap();
        let address = endpoint.local_addr().unwrap();
        let client_ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        let cfg = watt_client::net::tls::phone_client_config(&upstream_id).unwrap();
        let up = client_ep.connect_with(cfg, upstream_addr, "watt-node").unwrap().await.expect("upstream connects");
        let first_latest = loop {
            match watt_client::net::request(&up, &Request::GetLatest).await {
                Ok(r @ Response::Latest { .. }) => break r,
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        let forger = Arc::new(Forger { network: genesis.network_id(), validator_keys, first_latest });
        let lie = Arc::new(Mutex::new(Lie::TooFewSigners));
        let (accept, lie2) = (endpoint.clone(), lie.clone());
        tokio::spawn(async move {
            let _client_ep = client_ep;
            while let Some(incoming) = accept.accept().await {
                let (up, forger, lie) = (up.clone(), forger.clone(), lie2.clone());
                tokio::spawn(async move {
                    let Ok(conn) = incoming.await else { return };
                    while let Ok((mut send, mut recv)) = conn.accept_bi().await {
                        let (up, forger, lie) = (up.clone(), forger.clone(), lie.clone());
                        tokio::spawn(async move {
                            let Ok(Some(body)) = watt_client::net::read_frame(&mut recv, MAX_FRAME).await else {
                                return;
                            };
                            let Ok(req) = decode::<Request>(&body) else { return };
                            let mode = *lie.lock().unwrap();
                            if let (Lie::DropsTransactions, Request::SubmitTx(tx)) = (mode, &req) {
                                let taken = Response::TxAccepted { hash: tx.hash() };
                                let _ = send.write_all(&encode_frame(&taken)).await;
                                let _ = send.finish();
                                return;
                            }
                            let Ok(answer) = watt_client::net::request(&up, &req).await else { return };
                            let _ = send.write_all(&encode_frame(&forger.tamper(mode, answer))).await;
                            let _ = send.finish();
                        });
                    }
                });
            }
        });
        LyingNode { address, node_id, lie, _endpoint: endpoint }
    }
}

//! QUIC/TLS identity (SPEC §2): each node's certificate is self-signed with
//! its Ed25519 node key, and peers are authenticated by that key itself,
//! pinned by `N...` id as libp2p-tls does. No CA, no "accept any".

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use std::collections::HashSet;
use std::sync::{Arc, RwLock};
pub use watt_client::net::tls::{certificate_key, phone_client_config, provider, transport, Link, TlsError};
use watt_client::net::tls::{pinned_client_builder, verify_signature};
use watt_core::address::NodeId;
use watt_core::crypto::Keypair;
use watt_core::wire::{ALPN_PEER, ALPN_PHONE};

/// The node key as PKCS#8 v2 (the form ring and rcgen read).
fn pkcs8(key: &Keypair) -> Vec<u8> {
    let mut der = vec![0x30, 0x53, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
    der.extend_from_slice(key.seed().expose());
    der.extend_from_slice(&[0xa1, 0x23, 0x03, 0x21, 0x00]);
    der.extend_from_slice(&key.public().0);
    der
}

/// A self-signed certificate for the node key.
pub fn node_certificate(key: &Keypair) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), TlsError> {
    let der = pkcs8(key);
    let pk = PrivatePkcs8KeyDer::from(der.clone());
    let kp = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pk, &rcgen::PKCS_ED25519)
        .map_err(|e| TlsError::Cert(e.to_string()))?;
    let params =
        rcgen::CertificateParams::new(vec!["watt-node".to_string()]).map_err(|e| TlsError::Cert(e.to_string()))?;
    let cert = params.self_signed(&kp).map_err(|e| TlsError::Cert(e.to_string()))?;
    Ok((cert.der().clone(), PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der))))
}

/// Which node keys may connect as peers. Phones connect without a certificate.
#[derive(Debug, Clone, Default)]
pub struct AllowedPeers(Arc<RwLock<HashSet<NodeId>>>);

impl AllowedPeers {
    pub fn new(peers: impl IntoIterator<Item = NodeId>) -> AllowedPeers {
        AllowedPeers(Arc::new(RwLock::new(peers.into_iter().collect())))
    }
    pub fn contains(&self, n: &NodeId) -> bool {
        self.0.read().map(|s| s.contains(n)).unwrap_or(false)
    }
    pub fn insert(&self, n: NodeId) {
        if let Ok(mut s) = self.0.write() {
            s.insert(n);
        }
    }
}

#[derive(Debug)]
struct PinnedClients(AllowedPeers);

impl ClientCertVerifier for PinnedClients {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match certificate_key(end_entity) {
            Some(k) if self.0.contains(&NodeId(k)) => Ok(ClientCertVerified::assertion()),
            _ => Err(rustls::Error::General("client certificate is not a known peer's node key".into())),
        }
    }
    fn client_auth_mandatory(&self) -> bool {
        false // phones are anonymous; peers are checked again by ALPN after the handshake
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("TLS 1.2 is not used".into()))
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_signature(m, c, d)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// The node's server config: peers (pinned) and phones (anonymous).
pub fn server_config(key: &Keypair, peers: AllowedPeers) -> Result<quinn::ServerConfig, TlsError> {
    let (cert, private) = node_certificate(key)?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(Arc::new(PinnedClients(peers)))
        .with_single_cert(vec![cert], private)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    tls.alpn_protocols = vec![ALPN_PEER.to_vec(), ALPN_PHONE.to_vec()];
    let quic = QuicServerConfig::try_from(tls).map_err(|e| TlsError::Config(e.to_string()))?;
    let mut cfg = quinn::ServerConfig::with_crypto(Arc::new(quic));
    cfg.transport_config(transport(Link::Accepted));
    Ok(cfg)
}

/// A client config for connecting to the node `expected`, as a peer
/// (presenting our own node certificate) or as a phone (anonymous).
pub fn client_config(expected: &NodeId, as_peer: Option<&Keypair>) -> Result<quinn::ClientConfig, TlsError> {
    let builder = pinned_client_builder(expected)?;
    let mut tls = match as_peer {
        Some(key) => {
            let (cert, private) = node_certificate(key)?;
            builder.with_client_auth_cert(vec![cert], private).map_err(|e| TlsError::Config(e.to_string()))?
        }
        None => builder.with_no_client_auth(),
    };
    tls.alpn_protocols = vec![if as_peer.is_some() { ALPN_PEER.to_vec() } else { ALPN_PHONE.to_vec() }];
    let quic = QuicClientConfig::try_from(tls).map_err(|e| TlsError::Config(e.to_string()))?;
    let mut cfg = quinn::ClientConfig::new(Arc::new(quic));
    cfg.transport_config(transport(if as_peer.is_some() { Link::Peer } else { Link::Phone }));
    Ok(cfg)
}

/// The ALPN and, for peers, the node id a connection authenticated with.
pub fn connection_identity(conn: &quinn::Connection) -> (Option<Vec<u8>>, Option<NodeId>) {
    let alpn = conn
        .handshake_data()
        .and_then(|h| h.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|h| h.protocol);
    let node = conn
        .peer_identity()
        .and_then(|i| i.downcast::<Vec<CertificateDer<'static>>>().ok())
        .and_then(|certs| certs.first().and_then(certificate_key))
        .map(NodeId);
    (alpn, node)
}

/// A client endpoint bound to an ephemeral loopback or any port.
pub fn client_endpoint(bind: std::net::SocketAddr) -> std::io::Result<quinn::Endpoint> {
    quinn::Endpoint::client(bind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use watt_core::crypto::SecretSeed;

    #[test]
    fn certificate_carries_the_node_key() {
        let k = Keypair::from_seed(SecretSeed::from_bytes([3; 32])).unwrap();
        let (cert, _) = node_certificate(&k).unwrap();
        assert_eq!(certificate_key(&cert), Some(k.public()));
    }
}

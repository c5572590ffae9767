//! The verifying half of the QUIC/TLS identity of SPEC §2: a node's
//! certificate is self-signed with its Ed25519 node key and a client pins
//! that key (`N...` id), as libp2p-tls does. No CA, no "accept any". Making
//! certificates is the node's business (`watt-node`); phones only verify.

use quinn::crypto::rustls::QuicClientConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;
use std::time::Duration;
use watt_core::address::NodeId;
use watt_core::crypto::PublicKey;
use watt_core::wire::{ALPN_PHONE, MAX_FRAME};

/// OID 1.3.101.112 (Ed25519).
const ED25519_OID: &str = "1.3.101.112";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot make the node certificate: {0}")]
    Cert(String),
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// The one crypto provider everything uses (ring, SPEC §2).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The Ed25519 key a certificate was made for, if it is one.
pub fn certificate_key(cert: &CertificateDer<'_>) -> Option<PublicKey> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let spki = &parsed.tbs_certificate.subject_pki;
    if spki.algorithm.algorithm.to_id_string() != ED25519_OID {
        return None;
    }
    let bytes: [u8; 32] = spki.subject_public_key.data.as_ref().try_into().ok()?;
    Some(PublicKey(bytes))
}

/// Checks a TLS 1.3 handshake signature with the certificate's key.
pub fn verify_signature(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    rustls::crypto::verify_tls13_signature(message, cert, dss, &provider().signature_verification_algorithms)
}

/// Accepts only the server whose certificate carries this node key.
#[derive(Debug)]
pub struct PinnedServer(pub PublicKey);

impl ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match certificate_key(end_entity) {
            Some(k) if k == self.0 => Ok(ServerCertVerified::assertion()),
            _ => Err(rustls::Error::General("server is not the pinned node key".into())),
        }
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

/// Unread bytes one stream may carry: a whole frame and its prefix.
const STREAM_WINDOW: u32 = MAX_FRAME as u32 + 4;
/// Unread bytes one connection may carry across its streams.
const CONNECTION_WINDOW: u32 = 4 * STREAM_WINDOW;

/// Whose end of a QUIC connection the settings are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// A validator's link it dialed to a peer: long-lived, so kept alive
    /// (which also keeps the accepting side's end open), and the dialer's
    /// sending direction MTU-probed: blocks of transactions and catch-up are large.
    Peer,
    /// What a node accepts, peers and phones alike (the role is known only
    /// after the handshake). No keep-alive and no MTU probes: a phone pays for
    /// every packet, and a peer that dialed keeps the link alive itself. The
    /// accepting validator sends to such a peer in 1200-byte packets, a few
    /// percent more packet headers on its half of the link.
    Accepted,
    /// A phone's connection: no keep-alive (it lives while the app asks or
    /// follows) and no MTU probes (a phone's messages are small, and probing
    /// both ways cost ~11 KB per connection, more than a phone's sync).
    Phone,
}

/// QUIC transport limits (SPEC §2): idle 30 s, keep-alive 10 s for peer
/// links, bounded concurrent streams.
pub fn transport(link: Link) -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    t.max_idle_timeout(Some(Duration::from_secs(30).try_into().expect("30 s is a valid idle timeout")));
    if link == Link::Peer {
        t.keep_alive_interval(Some(Duration::from_secs(10)));
    } else {
        // 1200 bytes is every QUIC path's minimum: no probe is needed for it.
        t.mtu_discovery_config(None);
    }
    t.max_concurrent_bidi_streams(64u32.into());
    t.max_concurrent_uni_streams(16u32.into());
    // What a sender may have in flight before it is read: one whole frame
    // per stream, a few per connection (quinn's default connection window is
    // unbounded). What has been read is charged by the reader (`read_frame_charged`).
    t.stream_receive_window(STREAM_WINDOW.into());
    t.receive_window(CONNECTION_WINDOW.into());
    Arc::new(t)
}

/// A rustls client builder that accepts only `expected`'s key, TLS 1.3 only.
pub fn pinned_client_builder(
    expected: &NodeId,
) -> Result<rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert>, TlsError> {
    Ok(rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedServer(expected.0))))
}

/// A phone's (anonymous) client config for the node `expected` on `watt/1`.
pub fn phone_client_config(expected: &NodeId) -> Result<quinn::ClientConfig, TlsError> {
    let mut tls = pinned_client_builder(expected)?.with_no_client_auth();
    tls.alpn_protocols = vec![ALPN_PHONE.to_vec()];
    let quic = QuicClientConfig::try_from(tls).map_err(|e| TlsError::Config(e.to_string()))?;
    let mut cfg = quinn::ClientConfig::new(Arc::new(quic));
    cfg.transport_config(transport(Link::Phone));
    Ok(cfg)
}

//! One connection attempt: TCP (with `TCP_NODELAY`), TLS, SASL, ready for binding.
//!
//! tokio-xmpp 6's own connectors leave Nagle on (40 ms per round trip), offer
//! SCRAM only in its `-PLUS` form over TLS 1.3 and so fall back to PLAIN on
//! servers without tls-exporter, and retry authentication failures forever.
//! This module does the same steps with those three fixed (the SASL exchange
//! itself is `login`'s); `worker` decides what to do with each attempt's outcome.

use std::borrow::Cow;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use sasl::common::ChannelBinding;
use tokio::io::BufStream;
use tokio::net::TcpStream;
use tokio_rustls::rustls::{self, RootCertStore, pki_types::ServerName};
use tokio_xmpp::connect::DnsConfig;
use tokio_xmpp::jid::Jid;
use tokio_xmpp::parsers::{ns, starttls};
use tokio_xmpp::stanzastream::Connection;
use tokio_xmpp::xmlstream::{
    PendingFeaturesRecv, ReadError, RecvFeaturesError, StreamHeader, Timeouts, XmppStream,
    XmppStreamElement, initiate_stream,
};

use super::login;
use super::stanza_limit::{StanzaLimit, TooLarge};
use super::{Failure, Liveness, SaslCondition, Settings};

/// How long one attempt (DNS, TCP, TLS, SASL) may take before it counts as failed.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);

/// The certificate roots TLS trusts.
#[derive(Clone, Debug)]
pub struct Trust(Arc<RootCertStore>);

impl Trust {
    /// The platform's roots; honours `SSL_CERT_FILE` and `SSL_CERT_DIR` (rustls-native-certs).
    pub fn system() -> Self {
        let loaded = rustls_native_certs::load_native_certs();
        for error in &loaded.errors {
            tracing::warn!("certificate store: {error}");
        }
        let mut roots = RootCertStore::empty();
        let (added, ignored) = roots.add_parsable_certificates(loaded.certs);
        tracing::debug!("trusting {added} system certificates ({ignored} unparsable)");
        Self(Arc::new(roots))
    }

    /// Exactly the certificates in a PEM file (tests, pinned private servers).
    pub fn from_pem_file(path: &std::path::Path) -> io::Result<Self> {
        let pem = std::fs::read(path)?;
        let mut roots = RootCertStore::empty();
        for cert in rustls_pemfile_certs(&pem) {
            roots
                .add(cert)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
        if roots.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "no certificate in file",
            ));
        }
        Ok(Self(Arc::new(roots)))
    }

    fn client_config(&self, direct_tls: bool) -> Arc<rustls::ClientConfig> {
        let mut config = rustls::ClientConfig::builder()
            .with_root_certificates(self.0.clone())
            .with_no_client_auth();
        if direct_tls {
            // XEP-0368: direct TLS endpoints may share a port with HTTPS and route by ALPN.
            config.alpn_protocols = vec![b"xmpp-client".to_vec()];
        }
        Arc::new(config)
    }

    /// TLS for HTTPS (file sharing), trusting the same roots as XMPP does.
    pub fn http_config(&self) -> rustls::ClientConfig {
        let mut config = rustls::ClientConfig::builder()
            .with_root_certificates(self.0.clone())
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        config
    }
}

fn rustls_pemfile_certs(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .collect()
}

type TlsStream = BufStream<StanzaLimit<tokio_rustls::client::TlsStream<TcpStream>>>;

/// Connects, secures and authenticates one stream; the caller binds it.
pub async fn connect(settings: &Settings) -> Result<Connection, Failure> {
    match tokio::time::timeout(ATTEMPT_TIMEOUT, connect_inner(settings)).await {
        Ok(result) => result,
        Err(_) => Err(Failure::Timeout),
    }
}

async fn connect_inner(settings: &Settings) -> Result<Connection, Failure> {
    let domain = settings.jid.domain().as_str().to_owned();
    let tcp = resolve(settings).await?;
    tcp.set_nodelay(true)
        .map_err(|e| Failure::Lost(e.to_string()))?;
    let (pending, binding) = if settings.direct_tls {
        let tls = tls_handshake(settings, &domain, tcp).await?;
        let binding = channel_binding(&tls);
        let pending = initiate(
            BufStream::new(StanzaLimit::new(tls)),
            &domain,
            settings.liveness,
        )
        .await?;
        (pending, binding)
    } else {
        starttls(settings, &domain, tcp).await?
    };
    let (features, stream): (_, XmppStream<TlsStream>) =
        pending.recv_features().await.map_err(lost)?;

    let choice = login::choose(
        &features.sasl_mechanisms,
        features.sasl_cb.as_ref(),
        binding,
    )?;
    let username = settings
        .jid
        .node()
        .map(|n| n.as_str().to_owned())
        .ok_or(Failure::Refused {
            condition: SaslCondition::NotAuthorized,
            text: None,
        })?;
    let stream = {
        // Nothing of the exchange goes to the log, at any level.
        let _quiet = crate::logging::quiet_stream();
        login::authenticate(stream, choice, &username, settings.password.expose()).await?
    };
    let stream = stream
        .send_header(header(&domain))
        .await
        .map_err(|e| Failure::Lost(e.to_string()))?;
    let (features, stream): (_, XmppStream<TlsStream>) =
        stream.recv_features().await.map_err(lost)?;
    Ok(Connection {
        stream: stream.box_stream(),
        features,
        identity: Jid::from(settings.jid.clone()),
    })
}

async fn resolve(settings: &Settings) -> Result<TcpStream, Failure> {
    let domain = settings.jid.domain().as_str();
    let default_port = if settings.direct_tls { 5223 } else { 5222 };
    let dns = match (&settings.host, settings.port) {
        (Some(host), port) => DnsConfig::no_srv(host, port.unwrap_or(default_port)),
        (None, Some(port)) => DnsConfig::no_srv(domain, port),
        (None, None) if settings.direct_tls => DnsConfig::srv_xmpps(domain),
        (None, None) => DnsConfig::srv_default_client(domain),
    };
    let target = dns.to_string();
    dns.resolve().await.map_err(|e| match e {
        tokio_xmpp::Error::DnsNet(_) | tokio_xmpp::Error::DnsProto(_) | tokio_xmpp::Error::Idna => {
            Failure::UnknownHost(target)
        }
        tokio_xmpp::Error::Io(io) => Failure::Unreachable(format!("{target}: {io}")),
        // tokio-xmpp reports "every address refused" as Disconnected.
        other => Failure::Unreachable(format!("{target}: {other}")),
    })
}

async fn starttls(
    settings: &Settings,
    domain: &str,
    tcp: TcpStream,
) -> Result<(PendingFeaturesRecv<TlsStream>, ChannelBinding), Failure> {
    let pending = initiate(
        BufStream::new(StanzaLimit::new(tcp)),
        domain,
        settings.liveness,
    )
    .await?;
    let (features, mut stream): (_, XmppStream<BufStream<StanzaLimit<TcpStream>>>) =
        pending.recv_features().await.map_err(lost)?;
    if !features.can_starttls() {
        return Err(Failure::NoTls);
    }
    stream
        .send(&XmppStreamElement::Starttls(starttls::Nonza::Request(
            starttls::Request,
        )))
        .await
        .map_err(|e| Failure::Lost(e.to_string()))?;
    loop {
        match stream
            .next()
            .await
            .map(|r| r.and_then(|e| e.into_read_error()))
        {
            Some(Ok(XmppStreamElement::Starttls(starttls::Nonza::Proceed(_)))) => break,
            Some(Ok(_)) | Some(Err(ReadError::SoftTimeout)) => continue,
            Some(Err(ReadError::HardError(e))) => return Err(Failure::Lost(e.to_string())),
            Some(Err(ReadError::ParseError(e))) => return Err(Failure::Protocol(e.to_string())),
            // Closed before TLS started: a network or server problem, not a policy.
            None | Some(Err(ReadError::StreamFooterReceived)) => {
                return Err(Failure::Lost("closed before TLS started".into()));
            }
        }
    }
    let tcp = stream.into_inner().into_inner().into_inner();
    let tls = tls_handshake(settings, domain, tcp).await?;
    let binding = channel_binding(&tls);
    Ok((
        initiate(
            BufStream::new(StanzaLimit::new(tls)),
            domain,
            settings.liveness,
        )
        .await?,
        binding,
    ))
}

async fn tls_handshake(
    settings: &Settings,
    domain: &str,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, Failure> {
    // RFC 7590: the certificate must match the JID's domain, whatever host we connected to.
    let name = ServerName::try_from(domain.to_owned())
        .map_err(|e| Failure::UnknownHost(format!("{domain}: {e}")))?;
    tokio_rustls::TlsConnector::from(settings.trust.client_config(settings.direct_tls))
        .connect(name, tcp)
        .await
        .map_err(|e| match tls_error(&e) {
            Some(rustls::Error::InvalidCertificate(reason)) => {
                Failure::Certificate(format!("{reason:?}"))
            }
            Some(other) => Failure::Protocol(format!("TLS: {other}")),
            None => Failure::Lost(e.to_string()),
        })
}

fn tls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

/// tls-exporter (RFC 9266) on TLS 1.3; nothing on 1.2 (rustls has no tls-unique).
fn channel_binding(tls: &tokio_rustls::client::TlsStream<TcpStream>) -> ChannelBinding {
    let (_, conn) = tls.get_ref();
    tracing::info!("TLS: {:?}", conn.protocol_version());
    if conn.protocol_version() != Some(rustls::ProtocolVersion::TLSv1_3) {
        return ChannelBinding::None;
    }
    match conn.export_keying_material(vec![0u8; 32], b"EXPORTER-Channel-Binding", None) {
        Ok(data) => ChannelBinding::TlsExporter(data),
        Err(_) => ChannelBinding::None,
    }
}

fn header(domain: &str) -> StreamHeader<'static> {
    StreamHeader {
        to: Some(Cow::Owned(domain.to_owned())),
        from: None,
        id: None,
    }
}

async fn initiate<S: tokio::io::AsyncBufRead + tokio::io::AsyncWrite + Unpin>(
    io: S,
    domain: &str,
    liveness: Liveness,
) -> Result<PendingFeaturesRecv<S>, Failure> {
    // The stream keeps these timeouts for its whole life: the crate probes a
    // silent server after `read_timeout` and gives up after `response_timeout`.
    let timeouts = Timeouts {
        read_timeout: liveness.probe_after,
        response_timeout: liveness.answer_within,
    };
    initiate_stream(io, ns::JABBER_CLIENT, header(domain), timeouts)
        .await
        .map_err(|e| Failure::Lost(e.to_string()))
}

fn lost(e: RecvFeaturesError) -> Failure {
    match e {
        // An endless element is the server's doing, not the network's.
        RecvFeaturesError::Io(io) if io.get_ref().is_some_and(|e| e.is::<TooLarge>()) => {
            Failure::Protocol(io.to_string())
        }
        RecvFeaturesError::Io(io) => Failure::Lost(io.to_string()),
        // e.g. host-unknown when the server does not serve the JID's domain.
        RecvFeaturesError::StreamError(error) => Failure::Protocol(error.to_string()),
    }
}

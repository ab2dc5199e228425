//! A scripted XMPP server on loopback, over direct TLS with the test CA, for
//! what no real server does: a SASL exchange that lies or asks too much.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test support: failing loudly is the point

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

const GEN_CERTS: &str = include_str!("../prosody/gen-certs.sh");

/// What the server answers to the client's SCRAM-SHA-1 response.
#[derive(Clone, Copy, Debug)]
pub enum Script {
    /// A challenge asking for this many PBKDF2 iterations, then nothing.
    Iterations(u64),
    /// `<success/>` with a server signature that is not the right one.
    WrongSignature,
    /// `<success/>` with no server signature at all.
    NoSignature,
    /// Stream features that never end: this many bytes of one `<mechanism>`'s text.
    EndlessFeatures(usize),
}

pub struct FakeServer {
    pub port: u16,
    dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl FakeServer {
    pub async fn start(script: Script) -> Self {
        let (dir, acceptor) = tls_acceptor();
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            // One client, bounded in time: the test is over after it.
            let Ok(Ok((tcp, _))) =
                tokio::time::timeout(Duration::from_secs(20), listener.accept()).await
            else {
                return;
            };
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                return;
            };
            let _ = tokio::time::timeout(Duration::from_secs(20), exchange(&mut tls, script)).await;
        });
        Self { port, dir, task }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }
}

/// A throwaway CA and a localhost certificate, and a TLS acceptor with it.
fn tls_acceptor() -> (tempfile::TempDir, tokio_rustls::TlsAcceptor) {
    let dir = tempfile::Builder::new()
        .prefix("tern-fake-")
        .tempdir()
        .unwrap();
    std::fs::write(dir.path().join("gen-certs.sh"), GEN_CERTS).unwrap();
    let out = Command::new("sh")
        .arg(dir.path().join("gen-certs.sh"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let certs: Vec<CertificateDer> =
        CertificateDer::pem_file_iter(dir.path().join("localhost.crt"))
            .unwrap()
            .map(Result::unwrap)
            .collect();
    let key = PrivateKeyDer::from_pem_file(dir.path().join("localhost.key")).unwrap();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    (dir, tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// An HTTPS file server that misbehaves: it answers every PUT with
/// `303 See Other` to a place whose GET succeeds (a broken or hostile upload
/// service), and a GET of `/stall…` with the start of a large file, after
/// which it says nothing for 40 s while holding the connection open.
pub struct FakeHttps {
    pub port: u16,
    dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl FakeHttps {
    pub async fn start() -> Self {
        let (dir, acceptor) = tls_acceptor();
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            // A few requests, each bounded in time.
            for _ in 0..8 {
                let Ok(Ok((tcp, _))) =
                    tokio::time::timeout(Duration::from_secs(20), listener.accept()).await
                else {
                    return;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let _ =
                        tokio::time::timeout(Duration::from_secs(45), answer(&mut tls, port)).await;
                });
            }
        });
        Self { port, dir, task }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }
}

impl Drop for FakeHttps {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer<S: AsyncReadExt + AsyncWriteExt + Unpin>(s: &mut S, port: u16) {
    let mut buf = String::new();
    if !read_until(s, &mut buf, "\r\n\r\n").await {
        return;
    }
    let head_end = buf.find("\r\n\r\n").unwrap() + 4;
    let length: usize = buf[..head_end]
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    // Take the whole body before answering, as a server would.
    let mut body = buf.len() - head_end;
    let mut chunk = vec![0u8; 65536];
    while body < length {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => body += n,
        }
    }
    if buf.starts_with("GET /stall") {
        let head = "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n";
        let _ = s.write_all(head.as_bytes()).await;
        let _ = s.write_all(&[b'x'; 1000]).await;
        let _ = s.flush().await;
        tokio::time::sleep(Duration::from_secs(40)).await;
        return;
    }
    let response = if buf.starts_with("PUT") {
        format!(
            "HTTP/1.1 303 See Other\r\nLocation: https://localhost:{port}/elsewhere\r\nContent-Length: 0\r\n\r\n"
        )
    } else {
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_owned()
    };
    let _ = s.write_all(response.as_bytes()).await;
    let _ = s.flush().await;
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads until `marker` has arrived; returns all read so far.
async fn read_until<S: AsyncReadExt + Unpin>(s: &mut S, buf: &mut String, marker: &str) -> bool {
    let mut chunk = [0u8; 4096];
    for _ in 0..1000 {
        if buf.contains(marker) {
            return true;
        }
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.push_str(&String::from_utf8_lossy(&chunk[..n])),
        }
    }
    false
}

/// The base64 text of the first `<name ...>…</name>` in `buf`.
fn payload(buf: &str, name: &str) -> Vec<u8> {
    let start = buf.find(&format!("<{name}")).unwrap();
    let open_end = start + buf[start..].find('>').unwrap() + 1;
    let close = open_end + buf[open_end..].find(&format!("</{name}>")).unwrap();
    BASE64.decode(buf[open_end..close].trim()).unwrap()
}

async fn exchange<S: AsyncReadExt + AsyncWriteExt + Unpin>(s: &mut S, script: Script) {
    let mut buf = String::new();
    if !read_until(s, &mut buf, "<stream:stream").await || !read_until(s, &mut buf, ">").await {
        return;
    }
    let header = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
        xmlns:stream='http://etherx.jabber.org/streams' id='fake' from='localhost' version='1.0'>";
    if let Script::EndlessFeatures(bytes) = script {
        let start =
            "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>";
        let _ = s.write_all(format!("{header}{start}").as_bytes()).await;
        let chunk = vec![b'A'; 65536];
        let mut sent = 0;
        while sent < bytes {
            if s.write_all(&chunk).await.is_err() {
                break;
            }
            sent += chunk.len();
        }
        println!("fake server: sent {sent} bytes of one element before the client left");
        let _ = read_until(s, &mut buf, "never comes").await;
        return;
    }
    let features = format!(
        "{header}<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
        <mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>"
    );
    let _ = s.write_all(features.as_bytes()).await;
    buf.clear();
    if !read_until(s, &mut buf, "</auth>").await {
        return;
    }
    let client_first = String::from_utf8(payload(&buf, "auth")).unwrap();
    let nonce = client_first
        .split(',')
        .find_map(|p| p.strip_prefix("r="))
        .unwrap()
        .to_owned();
    let iterations = match script {
        Script::Iterations(i) => i,
        _ => 4096,
    };
    let server_first = format!(
        "r={nonce}fakeserver,s={},i={iterations}",
        BASE64.encode(b"salt-of-the-fake")
    );
    let challenge = format!(
        "<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{}</challenge>",
        BASE64.encode(server_first)
    );
    let _ = s.write_all(challenge.as_bytes()).await;
    buf.clear();
    if !read_until(s, &mut buf, "</response>").await {
        return;
    }
    let success = match script {
        Script::WrongSignature => format!(
            "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{}</success>",
            BASE64.encode(format!("v={}", BASE64.encode([0u8; 20])))
        ),
        _ => "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>".to_owned(),
    };
    let _ = s.write_all(success.as_bytes()).await;
    // Whatever the client does next (a new stream header if it believed us),
    // answer it as a server would, so that only the client's check stops it.
    buf.clear();
    if read_until(s, &mut buf, "<stream:stream").await && read_until(s, &mut buf, ">").await {
        let features = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
            xmlns:stream='http://etherx.jabber.org/streams' id='fake2' from='localhost' version='1.0'>\
            <stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>";
        let _ = s.write_all(features.as_bytes()).await;
        let _ = read_until(s, &mut buf, "never comes").await;
    }
}

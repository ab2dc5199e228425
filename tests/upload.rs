//! File sharing (XEP-0363) against the test Prosody's upload component:
//! discovery with its limit, slots, streamed uploads and downloads that come
//! back byte-identical, refusals before any upload, and hostile names.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "support/client.rs"]
mod client;
#[path = "support/prosody.rs"]
mod prosody;
#[path = "support/raw.rs"]
mod raw;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use client::{Client, settings, sign_in};
use prosody::Prosody;
use tern::store::Direction;
use tern::transfer::Http;
use tern::xmpp::Slot;
use tern::xmpp::{Event, SlotError, Trust, UploadService};

const MIB: u64 = 1024 * 1024;

async fn upload_service(client: &mut Client) -> UploadService {
    match client
        .next_event(Duration::from_secs(10), |e| {
            matches!(e, Event::UploadService(_))
        })
        .await
    {
        Some(Event::UploadService(Some(service))) => service,
        other => panic!("no upload service discovered: {other:?}"),
    }
}

async fn slot(client: &mut Client, id: &str, name: &str, size: u64) -> Result<Slot, SlotError> {
    client.handle.request_slot(
        id.to_string(),
        name.to_string(),
        size,
        "application/octet-stream".to_string(),
    );
    match client
        .next_event(
            Duration::from_secs(10),
            |e| matches!(e, Event::Slot { id: got, .. } if got == id),
        )
        .await
    {
        Some(Event::Slot { result, .. }) => result,
        _ => panic!("no answer to the slot request {id}"),
    }
}

/// A file of `size` bytes of a pattern that catches shifted or dropped chunks.
fn sample_file(dir: &std::path::Path, name: &str, size: u64) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for i in 0..size {
        file.write_all(&[(i % 251) as u8]).unwrap();
    }
    file.flush().unwrap();
    path
}

/// The process's resident memory, in KiB (Linux).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_and_downloads_round_trip_byte_identical() {
    let server = Prosody::start(&[("alice", "alicepass")]);
    let mut alice = sign_in(&server, "alice").await;
    let service = upload_service(&mut alice).await;
    println!(
        "upload service {} limit {:?}",
        service.jid, service.max_size
    );
    assert_eq!(service.jid.as_str(), "upload.localhost");
    assert_eq!(service.max_size, Some(10 * MIB));

    let http = Http::new(&Trust::from_pem_file(&server.ca()).unwrap()).unwrap();
    let files = tempfile::tempdir().unwrap();
    let downloads = tempfile::tempdir().unwrap();
    for (n, size) in [1, MIB, 9 * MIB].into_iter().enumerate() {
        let path = sample_file(files.path(), &format!("sample-{n}.bin"), size);
        let slot = slot(
            &mut alice,
            &format!("t{n}"),
            &format!("sample-{n}.bin"),
            size,
        )
        .await
        .expect("a slot");
        assert!(slot.put.starts_with("https://") && slot.get.starts_with("https://"));

        // Sample the memory while the upload runs (9 MiB: it must not grow with the file).
        let (peak, running) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(true)));
        let idle = rss_kib();
        let sampler = {
            let (peak, running) = (peak.clone(), running.clone());
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(120);
                while running.load(Ordering::SeqCst) && Instant::now() < deadline {
                    peak.fetch_max(rss_kib(), Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        let sent = Arc::new(AtomicU64::new(0));
        let progress = {
            let sent = sent.clone();
            Arc::new(move |n: u64| sent.store(n, Ordering::SeqCst))
        };
        let t0 = Instant::now();
        http.upload(&slot, &path, "application/octet-stream", progress)
            .await
            .expect("upload");
        let took = t0.elapsed();
        running.store(false, Ordering::SeqCst);
        sampler.join().unwrap();
        assert_eq!(
            sent.load(Ordering::SeqCst),
            size,
            "progress reached the size"
        );
        println!(
            "uploaded {size} bytes in {took:?} ({:.1} MiB/s); RSS idle {idle} KiB, peak {} KiB (+{} KiB)",
            size as f64 / MIB as f64 / took.as_secs_f64(),
            peak.load(Ordering::SeqCst),
            peak.load(Ordering::SeqCst).saturating_sub(idle)
        );

        let saved = http
            .download(&slot.get, downloads.path(), None, Arc::new(|_| {}))
            .await
            .expect("download");
        assert_eq!(
            saved.file_name().unwrap().to_str().unwrap(),
            format!("sample-{n}.bin")
        );
        assert!(
            std::fs::read(&saved).unwrap() == std::fs::read(&path).unwrap(),
            "{size} bytes came back different"
        );
    }
    // The same file again lands beside the first, not over it.
    let again = http
        .download(
            &slot(&mut alice, "t9", "sample-0.bin", 1)
                .await
                .map(|s| s.get)
                .unwrap_or_default(),
            downloads.path(),
            None,
            Arc::new(|_| {}),
        )
        .await;
    // (An unused slot's GET is 404: nothing is saved, nothing is overwritten.)
    assert!(again.is_err());
    assert_eq!(std::fs::read_dir(downloads.path()).unwrap().count(), 3);

    // For comparison (printed, not asserted): curl -T of the same 9 MiB to a
    // slot of the same service, when curl is installed.
    let path = files.path().join("sample-2.bin");
    let curl_slot = slot(&mut alice, "curl", "curl.bin", 9 * MIB).await.unwrap();
    let mut curl = std::process::Command::new("curl");
    curl.args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(server.ca())
        .arg("-T")
        .arg(&path);
    for (name, value) in &curl_slot.headers {
        curl.arg("-H").arg(format!("{name}: {value}"));
    }
    curl.arg(&curl_slot.put);
    let t0 = Instant::now();
    match curl.output() {
        Ok(out) if out.status.success() => println!(
            "curl -T uploaded {} bytes in {:?} ({:.1} MiB/s), HTTP {}",
            9 * MIB,
            t0.elapsed(),
            9.0 / t0.elapsed().as_secs_f64(),
            String::from_utf8_lossy(&out.stdout)
        ),
        other => println!("curl not run: {other:?}"),
    }

    // Over the limit: refused before any request reaches the service.
    let refused = slot(&mut alice, "big", "big.bin", 10 * MIB + 1).await;
    assert_eq!(refused, Err(SlotError::TooLarge { max: 10 * MIB }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_and_schemes_write_nothing_outside_the_folder() {
    let server = Prosody::start(&[("alice", "alicepass")]);
    let mut alice = sign_in(&server, "alice").await;
    upload_service(&mut alice).await;
    let http = Http::new(&Trust::from_pem_file(&server.ca()).unwrap()).unwrap();
    let files = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let downloads = root.path().join("downloads");
    std::fs::create_dir(&downloads).unwrap();

    // The service is asked for a safe name; the link it gives back is then
    // downloaded under a safe name too, inside the folder.
    let path = sample_file(files.path(), "payload", 64);
    let slot = slot(&mut alice, "evil", "../../.bashrc", 64).await.unwrap();
    http.upload(&slot, &path, "text/plain", Arc::new(|_| {}))
        .await
        .unwrap();
    let saved = http
        .download(&slot.get, &downloads, None, Arc::new(|_| {}))
        .await
        .unwrap();
    println!("'../../.bashrc' was saved as {}", saved.display());
    assert_eq!(saved.parent().unwrap(), downloads);
    assert!(
        !saved
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with('.')
    );
    assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 1);

    // Over a download limit: refused, and no partial file is left.
    let limited = http
        .download(&slot.get, &downloads, Some(10), Arc::new(|_| {}))
        .await;
    assert!(matches!(
        limited,
        Err(tern::transfer::Error::TooLarge { limit: 10 })
    ));
    // Other schemes are never fetched.
    for url in [
        "http://localhost/x.png",
        "file:///etc/passwd",
        "javascript:alert(1)",
    ] {
        let refused = http.download(url, &downloads, None, Arc::new(|_| {})).await;
        assert!(
            matches!(refused, Err(tern::transfer::Error::Scheme(_))),
            "{url}"
        );
    }
    assert_eq!(std::fs::read_dir(&downloads).unwrap().count(), 1);
}

/// What other clients see of a shared file: the link as body and as OOB data
/// (XEP-0066), as Conversations sends it; and Tern shows such a message from
/// them as an attachment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_file_is_a_body_link_with_the_same_oob_url() {
    let server = Prosody::start_with_roster(
        &[("alice", "alicepass"), ("bob", "bobpass")],
        &prosody::alice_and_bob(),
    );
    let mut alice = sign_in(&server, "alice").await;
    upload_service(&mut alice).await;
    let http = Http::new(&Trust::from_pem_file(&server.ca()).unwrap()).unwrap();
    let files = tempfile::tempdir().unwrap();
    let path = sample_file(files.path(), "photo.jpg", 1000);
    let slot = slot(&mut alice, "share", "photo.jpg", 1000).await.unwrap();
    http.upload(&slot, &path, "image/jpeg", Arc::new(|_| {}))
        .await
        .unwrap();

    let mut bob = raw::Raw::connect(settings(
        &server.address(),
        &server.ca(),
        "bob@localhost",
        "bobpass",
    ))
    .await;
    alice
        .handle
        .share_file("bob@localhost".parse().unwrap(), slot.get.clone());
    let got = bob
        .next_message(Duration::from_secs(10), |m| !m.bodies.is_empty())
        .await
        .expect("bob got the link");
    let body = got.get_best_body(vec![]).map(|(_, b)| b.clone()).unwrap();
    assert_eq!(body, slot.get);
    let oob = got
        .payloads
        .iter()
        .find(|p| p.is("x", "jabber:x:oob"))
        .expect("OOB data");
    let url = oob.get_child("url", "jabber:x:oob").map(|u| u.text());
    assert_eq!(url.as_deref(), Some(slot.get.as_str()));
    let sent = alice
        .store
        .page(
            &tern::conversation::Id::chat_of("alice@localhost", "bob@localhost").unwrap(),
            None,
            10,
        )
        .unwrap();
    assert!(sent.records[0].attachment && sent.records[0].body == slot.get);

    // The other way: a link with OOB data from another client is an
    // attachment; a bare link, or OOB naming another URL, is not.
    let link = slot.get.clone();
    bob.send_message_xml(&format!(
        "<message to='alice@localhost' type='chat' id='f1'><body>{link}</body><x xmlns='jabber:x:oob'><url>{link}</url></x></message>"
    ))
    .await;
    bob.send_message_xml(&format!(
        "<message to='alice@localhost' type='chat' id='f2'><body>{link}</body></message>"
    ))
    .await;
    bob.send_message_xml(&format!(
        "<message to='alice@localhost' type='chat' id='f3'><body>{link}</body><x xmlns='jabber:x:oob'><url>https://elsewhere.example/x.jpg</url></x></message>"
    ))
    .await;
    let mut seen = std::collections::HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.len() < 3 && Instant::now() < deadline {
        if let Some(Event::Messages(records)) = alice
            .next_event(Duration::from_secs(1), |e| matches!(e, Event::Messages(_)))
            .await
        {
            for r in records.into_iter().filter(|r| r.direction == Direction::In) {
                seen.insert(r.id.clone(), r.attachment);
            }
        }
    }
    assert_eq!(seen.get("f1"), Some(&true));
    assert_eq!(seen.get("f2"), Some(&false));
    assert_eq!(seen.get("f3"), Some(&false));
}

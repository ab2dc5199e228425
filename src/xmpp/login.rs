//! SASL sign-in on a secured stream: which mechanism (by what the server
//! announces, XEP-0440), the exchange itself with the server's proof checked,
//! and refusals as the server gave them.
//!
//! tokio-xmpp 6's `client_login` accepts `<success/>` without checking the
//! SCRAM server signature in it (so a server that does not know the password
//! is believed), reports a refusal without its text, and computes whatever
//! PBKDF2 iteration count the server asks for. This module runs the same
//! exchange with the `sasl` crate's mechanisms and does all three.

use std::collections::BTreeSet;
use std::str::FromStr;

use futures::{SinkExt, StreamExt};
use sasl::client::Mechanism;
use sasl::client::mechanisms::{Plain, Scram};
use sasl::common::scram::{Sha1, Sha256};
use sasl::common::{ChannelBinding, Credentials};
use tokio::io::{AsyncBufRead, AsyncWrite};
use tokio_xmpp::parsers::sasl::{
    Auth, DefinedCondition, Failure as SaslFailure, Mechanism as XmppMechanism, Nonza, Response,
};
use tokio_xmpp::parsers::sasl_cb::{SaslChannelBinding, Type as BindingType};
use tokio_xmpp::xmlstream::{InitiatingStream, ReadError, XmppStream, XmppStreamElement};

use super::{Failure, SaslCondition};

/// The most PBKDF2 iterations a server may ask for (RFC 7677 asks for at
/// least 4,096; servers use 4,096 to 100,000). Each costs the same work, so an
/// absurd count would freeze the sign-in for minutes.
pub const MAX_ITERATIONS: u32 = 1_000_000;

/// How Tern will sign in.
#[derive(Debug)]
pub struct Choice {
    pub mechanism: &'static str,
    /// The gs2 flag and the binding data: `p=tls-exporter` with `-PLUS`;
    /// otherwise `n` or `y` (see [`choose`]).
    pub binding: ChannelBinding,
}

/// Picks the mechanism: SCRAM with channel binding when the server offers
/// `-PLUS` and announces a binding type we can compute on this connection
/// (`tls-exporter`, on TLS 1.3: `ours` holds its data); plain SCRAM otherwise;
/// PLAIN (inside TLS) only when the server offers no SCRAM at all.
///
/// The gs2 flag for plain SCRAM follows RFC 5802 §6: `n` when the server
/// offered `-PLUS` that we will not use (ejabberd 23.01 offers it over TLS 1.3
/// without saying which binding, and knows only `tls-unique`, which TLS 1.3
/// does not have); `y` when we could bind but the server offered no `-PLUS`,
/// so that a server which does support it refuses, which detects an attacker
/// who stripped the `-PLUS` mechanisms.
pub fn choose(
    offered: &BTreeSet<String>,
    announced: Option<&SaslChannelBinding>,
    ours: ChannelBinding,
) -> Result<Choice, Failure> {
    let first = |names: &[&'static str]| names.iter().copied().find(|m| offered.contains(*m));
    let plus = first(&["SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS"]);
    let can_bind = matches!(ours, ChannelBinding::TlsExporter(_))
        && announced.is_some_and(|a| a.types.contains(&BindingType::TlsExporter));
    if let (Some(mechanism), true) = (plus, can_bind) {
        return Ok(Choice {
            mechanism,
            binding: ours,
        });
    }
    if let Some(mechanism) = first(&["SCRAM-SHA-256", "SCRAM-SHA-1"]) {
        let binding = match (plus, ours) {
            (None, ChannelBinding::TlsExporter(_)) => ChannelBinding::Unsupported,
            _ => ChannelBinding::None,
        };
        return Ok(Choice { mechanism, binding });
    }
    if offered.contains("PLAIN") {
        tracing::warn!("the server offers no SCRAM mechanism; signing in with PLAIN inside TLS");
        return Ok(Choice {
            mechanism: "PLAIN",
            binding: ChannelBinding::None,
        });
    }
    Err(Failure::NoMechanism)
}

/// Runs the SASL exchange; on success the stream is ready for its restart.
pub async fn authenticate<S: AsyncBufRead + AsyncWrite + Unpin>(
    mut stream: XmppStream<S>,
    choice: Choice,
    username: &str,
    password: &str,
) -> Result<InitiatingStream<S>, Failure> {
    let binding_name = match &choice.binding {
        ChannelBinding::TlsExporter(_) => "tls-exporter",
        ChannelBinding::Unsupported => "none (flag y)",
        _ => "none (flag n)",
    };
    let credentials = Credentials::default()
        .with_username(username)
        .with_password(password)
        .with_channel_binding(choice.binding);
    let scram = choice.mechanism.starts_with("SCRAM-");
    let mut mechanism: Box<dyn Mechanism + Send> = match choice.mechanism {
        "SCRAM-SHA-256" | "SCRAM-SHA-256-PLUS" => {
            Box::new(Scram::<Sha256>::from_credentials(credentials).map_err(sasl_error)?)
        }
        "SCRAM-SHA-1" | "SCRAM-SHA-1-PLUS" => {
            Box::new(Scram::<Sha1>::from_credentials(credentials).map_err(sasl_error)?)
        }
        _ => Box::new(Plain::from_credentials(credentials).map_err(sasl_error)?),
    };
    tracing::info!(
        "signing in with {} (channel binding: {binding_name})",
        choice.mechanism
    );
    let name =
        XmppMechanism::from_str(choice.mechanism).map_err(|e| Failure::Protocol(e.to_string()))?;
    send(
        &mut stream,
        Nonza::Auth(Auth {
            mechanism: name,
            data: mechanism.initial(),
        }),
    )
    .await?;
    let mut challenges = 0u32;
    // Whether the server's proof (SCRAM `v=`) has been checked.
    let mut proven = !scram;
    loop {
        let element = match stream
            .next()
            .await
            .map(|r| r.and_then(|e| e.into_read_error()))
        {
            Some(Ok(element)) => element,
            Some(Err(ReadError::SoftTimeout)) => continue,
            Some(Err(ReadError::HardError(e))) => return Err(Failure::Lost(e.to_string())),
            Some(Err(ReadError::ParseError(e))) => return Err(Failure::Protocol(e.to_string())),
            Some(Err(ReadError::StreamFooterReceived)) | None => {
                return Err(Failure::Lost("closed during sign-in".into()));
            }
        };
        let XmppStreamElement::Sasl(nonza) = element else {
            return Err(Failure::Protocol("unexpected data during sign-in".into()));
        };
        match nonza {
            Nonza::Challenge(challenge) => {
                challenges += 1;
                let response = match (scram, challenges) {
                    (true, 1) => {
                        check_iterations(&challenge.data)?;
                        mechanism.response(&challenge.data).map_err(sasl_error)?
                    }
                    // Some servers send the final message as a challenge
                    // (RFC 6120 §6.3.10 allows both): check it, answer empty.
                    (true, 2) => {
                        mechanism.success(&challenge.data).map_err(unproven)?;
                        proven = true;
                        Vec::new()
                    }
                    _ => return Err(Failure::Protocol("too many SASL challenges".into())),
                };
                send(&mut stream, Nonza::Response(Response { data: response })).await?;
            }
            Nonza::Success(success) => {
                if !proven {
                    mechanism.success(&success.data).map_err(unproven)?;
                }
                return Ok(stream.initiate_reset());
            }
            Nonza::Failure(failure) => return Err(refused(failure)),
            _ => {}
        }
    }
}

async fn send<S: AsyncBufRead + AsyncWrite + Unpin>(
    stream: &mut XmppStream<S>,
    nonza: Nonza,
) -> Result<(), Failure> {
    stream
        .send(&XmppStreamElement::Sasl(nonza))
        .await
        .map_err(|e| Failure::Lost(e.to_string()))
}

/// Refuses a SCRAM server-first-message asking for an absurd amount of work.
fn check_iterations(challenge: &[u8]) -> Result<(), Failure> {
    let text = String::from_utf8_lossy(challenge);
    let iterations = text
        .split(',')
        .find_map(|part| part.strip_prefix("i="))
        .and_then(|i| i.parse::<u64>().ok());
    match iterations {
        Some(i) if i >= 1 && i <= u64::from(MAX_ITERATIONS) => Ok(()),
        Some(i) => {
            tracing::warn!("the server asks for {i} PBKDF2 iterations; refusing");
            Err(Failure::Protocol(format!(
                "the server asks for {i} password hashing rounds (at most {MAX_ITERATIONS} are accepted)"
            )))
        }
        None => Err(Failure::Protocol("an unreadable SCRAM challenge".into())),
    }
}

fn sasl_error(e: sasl::client::MechanismError) -> Failure {
    Failure::Protocol(format!("sign-in: {e}"))
}

/// The server accepted us but could not prove that it knows the password:
/// it is not the server the account is on (or not honest about it).
fn unproven(e: sasl::client::MechanismError) -> Failure {
    tracing::warn!("the server's SCRAM proof is wrong: {e}");
    Failure::ServerUnproven
}

fn refused(failure: SaslFailure) -> Failure {
    let text = failure
        .texts
        .into_values()
        .map(|t| t.trim().to_owned())
        .find(|t| !t.is_empty());
    let condition = match failure.defined_condition {
        DefinedCondition::NotAuthorized => SaslCondition::NotAuthorized,
        DefinedCondition::AccountDisabled => SaslCondition::AccountDisabled,
        DefinedCondition::CredentialsExpired => SaslCondition::CredentialsExpired,
        DefinedCondition::TemporaryAuthFailure => SaslCondition::Temporary,
        other => SaslCondition::Method(condition_name(&other)),
    };
    tracing::info!("sign-in refused: {condition:?} {text:?}");
    Failure::Refused { condition, text }
}

/// A condition's element name, as RFC 6120 §6.5 spells it.
fn condition_name(condition: &DefinedCondition) -> String {
    match condition {
        DefinedCondition::Aborted => "aborted",
        DefinedCondition::AccountDisabled => "account-disabled",
        DefinedCondition::CredentialsExpired => "credentials-expired",
        DefinedCondition::EncryptionRequired => "encryption-required",
        DefinedCondition::IncorrectEncoding => "incorrect-encoding",
        DefinedCondition::InvalidAuthzid => "invalid-authzid",
        DefinedCondition::InvalidMechanism => "invalid-mechanism",
        DefinedCondition::MalformedRequest => "malformed-request",
        DefinedCondition::MechanismTooWeak => "mechanism-too-weak",
        DefinedCondition::NotAuthorized => "not-authorized",
        DefinedCondition::TemporaryAuthFailure => "temporary-auth-failure",
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offered(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn announced(types: &[BindingType]) -> SaslChannelBinding {
        SaslChannelBinding {
            types: types.to_vec(),
        }
    }

    fn exporter() -> ChannelBinding {
        ChannelBinding::TlsExporter(vec![7; 32])
    }

    /// Every row: what the server offers × the binding types it announces ×
    /// TLS 1.3 (exporter data) or 1.2 (none) → mechanism and gs2 header.
    #[test]
    fn mechanism_and_binding_over_the_whole_table() {
        let ejabberd = [
            "SCRAM-SHA-512-PLUS",
            "SCRAM-SHA-512",
            "SCRAM-SHA-256-PLUS",
            "SCRAM-SHA-256",
            "SCRAM-SHA-1-PLUS",
            "SCRAM-SHA-1",
            "PLAIN",
            "X-OAUTH2",
        ];
        let prosody_13 = ["SCRAM-SHA-1", "PLAIN"];
        let prosody_12 = ["SCRAM-SHA-1-PLUS", "SCRAM-SHA-1", "PLAIN"];
        let exporter_only = announced(&[BindingType::TlsExporter]);
        let unique_only = announced(&[BindingType::TlsUnique]);
        let both = announced(&[BindingType::TlsUnique, BindingType::TlsExporter]);
        type Row<'a> = (
            &'a [&'a str],
            Option<&'a SaslChannelBinding>,
            bool,
            &'a str,
            &'a [u8],
        );
        let table: Vec<Row> = vec![
            // ejabberd 23.01 over TLS 1.3: -PLUS offered, nothing announced.
            (&ejabberd, None, true, "SCRAM-SHA-256", b"n,,"),
            (&ejabberd, Some(&unique_only), true, "SCRAM-SHA-256", b"n,,"),
            (
                &ejabberd,
                Some(&exporter_only),
                true,
                "SCRAM-SHA-256-PLUS",
                b"p=tls-exporter,,",
            ),
            (
                &ejabberd,
                Some(&both),
                true,
                "SCRAM-SHA-256-PLUS",
                b"p=tls-exporter,,",
            ),
            // TLS 1.2: no exporter data, so never -PLUS, whatever is announced.
            (&ejabberd, Some(&both), false, "SCRAM-SHA-256", b"n,,"),
            (&ejabberd, None, false, "SCRAM-SHA-256", b"n,,"),
            // No -PLUS offered: "y" when we could have bound, "n" when not.
            (&prosody_13, None, true, "SCRAM-SHA-1", b"y,,"),
            (
                &prosody_13,
                Some(&exporter_only),
                true,
                "SCRAM-SHA-1",
                b"y,,",
            ),
            (&prosody_13, None, false, "SCRAM-SHA-1", b"n,,"),
            (
                &prosody_12,
                Some(&unique_only),
                false,
                "SCRAM-SHA-1",
                b"n,,",
            ),
            (&prosody_12, Some(&unique_only), true, "SCRAM-SHA-1", b"n,,"),
            (
                &prosody_12,
                Some(&exporter_only),
                true,
                "SCRAM-SHA-1-PLUS",
                b"p=tls-exporter,,",
            ),
            (&["PLAIN"], None, true, "PLAIN", b"n,,"),
        ];
        for (i, (offer, announce, tls13, mechanism, header)) in table.into_iter().enumerate() {
            let ours = if tls13 {
                exporter()
            } else {
                ChannelBinding::None
            };
            let choice = choose(&offered(offer), announce, ours).unwrap();
            assert_eq!(choice.mechanism, mechanism, "row {i}");
            assert_eq!(choice.binding.header(), header, "row {i}");
        }
    }

    #[test]
    fn nothing_acceptable_is_an_error() {
        for offer in [&["ANONYMOUS", "EXTERNAL"][..], &["X-OAUTH2"][..], &[][..]] {
            assert_eq!(
                choose(&offered(offer), None, exporter()).unwrap_err(),
                Failure::NoMechanism
            );
        }
    }

    #[test]
    fn iteration_counts_are_bounded() {
        assert!(check_iterations(b"r=abc,s=c2FsdA==,i=4096").is_ok());
        assert!(check_iterations(b"r=abc,s=c2FsdA==,i=1000000").is_ok());
        assert!(check_iterations(b"r=abc,s=c2FsdA==,i=1000001").is_err());
        assert!(check_iterations(b"r=abc,s=c2FsdA==,i=4294967296000").is_err());
        assert!(check_iterations(b"r=abc,s=c2FsdA==,i=0").is_err());
        assert!(check_iterations(b"r=abc,s=c2FsdA==").is_err());
        assert!(check_iterations(b"\xff\xfe").is_err());
    }

    #[test]
    fn refusals_keep_the_server_s_words() {
        let failure = |condition, text: &str| {
            let mut texts = std::collections::BTreeMap::new();
            if !text.is_empty() {
                texts.insert(String::new(), text.to_owned());
            }
            refused(SaslFailure {
                defined_condition: condition,
                texts,
            })
        };
        assert_eq!(
            failure(DefinedCondition::NotAuthorized, ""),
            Failure::Refused {
                condition: SaslCondition::NotAuthorized,
                text: None
            }
        );
        assert_eq!(
            failure(DefinedCondition::AccountDisabled, " Banned for spam "),
            Failure::Refused {
                condition: SaslCondition::AccountDisabled,
                text: Some("Banned for spam".into())
            }
        );
        assert_eq!(
            failure(
                DefinedCondition::MalformedRequest,
                "Invalid channel binding"
            ),
            Failure::Refused {
                condition: SaslCondition::Method("malformed-request".into()),
                text: Some("Invalid channel binding".into())
            }
        );
    }
}

//! The account screen: address, password and advanced connection settings.

use std::str::FromStr;

use iced::widget::{Space, button, checkbox, column, container, row, text, text_input};
use iced::{Alignment, Element, Fill, Length, Task};

use crate::fl;
use crate::theme;
use crate::xmpp::{BareJid, Password};

/// The form, as typed.
#[derive(Debug, Clone, Default)]
pub struct State {
    jid: String,
    password: String,
    host: String,
    port: String,
    direct_tls: bool,
    advanced: bool,
    status: Status,
    /// No credential store answers: offer to keep the password in a file.
    no_keyring: bool,
    remember_in_file: bool,
    /// "Remember my password" unticked (it is ticked by default).
    forget: bool,
    /// Adding an account from the main window: the form can be left.
    adding: bool,
}

/// Where the password goes once it signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    CredentialStore,
    /// The profile's password file: the warned opt-in without a credential store.
    File,
    /// Asked again at the next start (and any kept copy is removed).
    Nowhere,
}

/// What the screen tells the user under the button.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Status {
    #[default]
    Idle,
    Connecting,
    Error(String),
}

#[derive(Debug, Clone)]
pub enum Message {
    Jid(String),
    Password(String),
    Host(String),
    Port(String),
    DirectTls(bool),
    ToggleAdvanced,
    Remember(bool),
    RememberInFile(bool),
    Submit,
    OpenSettings,
    Cancel,
}

/// A validated sign-in request.
#[derive(Debug, Clone)]
pub struct Login {
    pub jid: BareJid,
    pub password: Password,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub direct_tls: bool,
    pub keep: Keep,
}

pub enum Event {
    Submit(Login),
    OpenSettings,
    /// The user leaves the form (adding an account only).
    Cancel,
}

pub const JID_INPUT: &str = "login-jid";
pub const PASSWORD_INPUT: &str = "login-password";
pub const HOST_INPUT: &str = "login-host";
pub const PORT_INPUT: &str = "login-port";

impl State {
    /// A form prefilled from a saved account.
    pub fn prefilled(jid: &str, host: Option<&str>, port: Option<u16>, direct_tls: bool) -> Self {
        Self {
            jid: jid.to_string(),
            host: host.unwrap_or_default().to_string(),
            port: port.map(|p| p.to_string()).unwrap_or_default(),
            direct_tls,
            advanced: host.is_some() || port.is_some() || direct_tls,
            ..Self::default()
        }
    }

    /// The form for adding an account from the main window: the same
    /// fields and advanced settings, and a way back.
    pub fn adding() -> Self {
        Self {
            adding: true,
            ..Self::default()
        }
    }

    pub fn is_adding(&self) -> bool {
        self.adding
    }

    pub fn set_status(&mut self, status: Status) {
        self.status = status;
    }

    pub fn status(&self) -> &Status {
        &self.status
    }

    /// No credential store answers: says so, and offers the file instead.
    pub fn set_no_keyring(&mut self) {
        self.no_keyring = true;
    }

    /// Whether the form says that no credential store answers.
    pub fn no_keyring(&self) -> bool {
        self.no_keyring
    }

    /// Which field should have focus when the screen appears.
    pub fn first_empty_field(&self) -> &'static str {
        if self.jid.trim().is_empty() {
            JID_INPUT
        } else {
            PASSWORD_INPUT
        }
    }

    pub fn update(&mut self, message: Message) -> (Task<Message>, Option<Event>) {
        match message {
            Message::Jid(v) => self.jid = v,
            Message::Password(v) => self.password = v,
            Message::Host(v) => self.host = v,
            Message::Port(v) => self.port = v,
            Message::DirectTls(v) => self.direct_tls = v,
            Message::ToggleAdvanced => self.advanced = !self.advanced,
            Message::Remember(v) => self.forget = !v,
            Message::RememberInFile(v) => self.remember_in_file = v,
            Message::OpenSettings => return (Task::none(), Some(Event::OpenSettings)),
            Message::Cancel => return (Task::none(), Some(Event::Cancel)),
            Message::Submit => {
                if self.status == Status::Connecting {
                    return (Task::none(), None);
                }
                match self.validate() {
                    Ok(login) => {
                        self.status = Status::Connecting;
                        return (Task::none(), Some(Event::Submit(login)));
                    }
                    Err(e) => self.status = Status::Error(e),
                }
            }
        }
        (Task::none(), None)
    }

    fn validate(&self) -> Result<Login, String> {
        let jid = BareJid::from_str(self.jid.trim())
            .ok()
            .filter(|j| j.node().is_some())
            .ok_or_else(|| fl!("login-error-jid"))?;
        if self.password.is_empty() {
            return Err(fl!("login-error-password"));
        }
        let host = Some(self.host.trim().to_string()).filter(|h| !h.is_empty());
        let port = match self.port.trim() {
            "" => None,
            p => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| fl!("login-error-port"))?,
            ),
        };
        Ok(Login {
            jid,
            password: Password::new(self.password.clone()),
            host,
            port,
            direct_tls: self.direct_tls,
            keep: match (self.no_keyring, self.remember_in_file, self.forget) {
                (true, true, _) => Keep::File,
                (true, false, _) | (false, _, true) => Keep::Nowhere,
                (false, _, false) => Keep::CredentialStore,
            },
        })
    }

    pub fn view(&self) -> Element<'_, Message> {
        let connecting = self.status == Status::Connecting;
        let field = |label: String, input: iced::widget::TextInput<'static, Message>| {
            column![text(label).size(13), input.padding(8).style(theme::input)].spacing(4)
        };
        let jid = text_input(&fl!("login-jid-placeholder"), &self.jid)
            .id(JID_INPUT)
            .on_input_maybe((!connecting).then_some(Message::Jid))
            .on_submit(Message::Submit);
        let password = text_input("", &self.password)
            .id(PASSWORD_INPUT)
            .secure(true)
            .on_input_maybe((!connecting).then_some(Message::Password))
            .on_submit(Message::Submit);

        let mut form = column![
            text(if self.adding {
                fl!("accounts-add-title")
            } else {
                fl!("app-name")
            })
            .size(28),
            text(fl!("login-subtitle"))
                .size(14)
                .style(theme::muted_text),
            Space::new().height(8),
            field(fl!("login-jid"), jid),
            field(fl!("login-password"), password),
            button(text(if self.advanced {
                fl!("login-advanced-hide")
            } else {
                fl!("login-advanced-show")
            }))
            .padding(0)
            .style(theme::link_button)
            .on_press(Message::ToggleAdvanced),
        ]
        .spacing(12);

        if self.advanced {
            let host = text_input(&fl!("login-host-placeholder"), &self.host)
                .id(HOST_INPUT)
                .on_input_maybe((!connecting).then_some(Message::Host))
                .on_submit(Message::Submit);
            let port = text_input(&fl!("login-port-placeholder"), &self.port)
                .id(PORT_INPUT)
                .on_input_maybe((!connecting).then_some(Message::Port))
                .on_submit(Message::Submit);
            form = form.push(
                row![
                    field(fl!("login-host"), host).width(Fill),
                    field(fl!("login-port"), port).width(Length::Fixed(110.0)),
                ]
                .spacing(8),
            );
            form = form.push(
                checkbox(self.direct_tls)
                    .label(fl!("login-direct-tls"))
                    .on_toggle_maybe((!connecting).then_some(Message::DirectTls))
                    .size(16)
                    .text_size(13),
            );
        }

        let submit = button(
            container(text(if connecting {
                fl!("login-connecting")
            } else {
                fl!("login-submit")
            }))
            .center_x(Fill),
        )
        .width(Fill)
        .padding(10)
        .style(theme::primary_button)
        .on_press_maybe((!connecting).then_some(Message::Submit));
        if self.no_keyring {
            let mut remember = column![
                text(fl!("login-no-keyring"))
                    .size(12)
                    .style(theme::muted_text),
                checkbox(self.remember_in_file)
                    .label(fl!("login-remember-file"))
                    .on_toggle_maybe((!connecting).then_some(Message::RememberInFile))
                    .size(16)
                    .text_size(13),
            ]
            .spacing(8);
            if self.remember_in_file {
                remember = remember.push(
                    container(text(fl!("login-remember-file-warning")).size(12))
                        .padding(8)
                        .width(Fill)
                        .style(theme::warning_banner),
                );
            }
            form = form.push(remember);
        } else {
            form = form.push(
                checkbox(!self.forget)
                    .label(fl!("login-remember"))
                    .on_toggle_maybe((!connecting).then_some(Message::Remember))
                    .size(16)
                    .text_size(13),
            );
        }
        form = form.push(submit);

        if let Status::Error(error) = &self.status {
            form = form.push(
                container(text(error.clone()).size(13))
                    .padding(10)
                    .width(Fill)
                    .style(theme::error_banner),
            );
        }

        let settings = if self.adding {
            button(text(fl!("accounts-add-cancel")).size(13))
                .padding(0)
                .style(theme::link_button)
                .on_press(Message::Cancel)
        } else {
            button(text(fl!("settings")).size(13))
                .padding(0)
                .style(theme::link_button)
                .on_press(Message::OpenSettings)
        };
        container(
            column![
                container(form)
                    .padding(28)
                    .width(Length::Fixed(400.0))
                    .style(theme::card),
                settings,
            ]
            .spacing(12)
            .align_x(Alignment::Center),
        )
        .center(Fill)
        .align_y(Alignment::Center)
        .style(theme::backdrop)
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submit(state: &mut State) -> Option<Login> {
        state.update(Message::Submit).1.and_then(|e| match e {
            Event::Submit(login) => Some(login),
            Event::OpenSettings | Event::Cancel => None,
        })
    }

    #[test]
    fn validation_reports_each_problem() {
        let mut s = State::default();
        let _ = s.update(Message::Jid("not a jid@@".into()));
        let _ = s.update(Message::Password("pw".into()));
        assert!(submit(&mut s).is_none());
        assert!(matches!(s.status(), Status::Error(_)));

        let _ = s.update(Message::Jid("example.org".into()));
        assert!(submit(&mut s).is_none(), "a domain alone is not an account");

        let _ = s.update(Message::Jid(" alice@example.org ".into()));
        let _ = s.update(Message::Password(String::new()));
        assert!(submit(&mut s).is_none());

        let _ = s.update(Message::Password("pw".into()));
        let _ = s.update(Message::Port("99999".into()));
        assert!(submit(&mut s).is_none());

        let _ = s.update(Message::Port("5223".into()));
        let _ = s.update(Message::Host(" xmpp.example.org ".into()));
        let _ = s.update(Message::DirectTls(true));
        let login = submit(&mut s).unwrap();
        assert_eq!(login.jid.as_str(), "alice@example.org");
        assert_eq!(login.host.as_deref(), Some("xmpp.example.org"));
        assert_eq!(login.port, Some(5223));
        assert!(login.direct_tls);
        assert_eq!(login.keep, Keep::CredentialStore);
        assert_eq!(s.status(), &Status::Connecting);
        // A second press while connecting does nothing.
        assert!(submit(&mut s).is_none());
    }

    fn keep_after(setup: impl FnOnce(&mut State)) -> Keep {
        let mut s = State::prefilled("alice@example.org", None, None, false);
        let _ = s.update(Message::Password("pw".into()));
        setup(&mut s);
        submit(&mut s).unwrap().keep
    }

    #[test]
    fn where_the_password_goes() {
        // With a credential store: there, unless "Remember my password" is unticked.
        assert_eq!(keep_after(|_| {}), Keep::CredentialStore);
        assert_eq!(
            keep_after(|s| {
                let _ = s.update(Message::Remember(false));
            }),
            Keep::Nowhere
        );
        // The file offer ticked while not shown (cannot happen in the view): ignored.
        assert_eq!(
            keep_after(|s| {
                let _ = s.update(Message::RememberInFile(true));
            }),
            Keep::CredentialStore
        );
        // Without one: nowhere, unless the warned file offer is ticked.
        assert_eq!(keep_after(State::set_no_keyring), Keep::Nowhere);
        assert_eq!(
            keep_after(|s| {
                s.set_no_keyring();
                let _ = s.update(Message::RememberInFile(true));
            }),
            Keep::File
        );
    }
}

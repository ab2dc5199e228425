//! Making a room and, for its owners, changing it: the "Create a room"
//! dialog (a private group or a public channel) and a room's settings, with
//! its destruction.

use iced::widget::{
    Space, button, checkbox, column, container, pick_list, radio, row, text, text_input,
};
use iced::{Alignment, Element, Fill, Task};

use crate::conversation as talk;
use crate::fl;
use crate::theme;
use crate::xmpp::BareJid;
use crate::xmpp::room::{RoomRequest, RoomSettings};

pub const NAME_INPUT: &str = "create-room-name";

/// What kind of room the dialog makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kind {
    /// For invited members, who see each other's addresses.
    #[default]
    Group,
    /// Listed and open to anyone.
    Channel,
}

/// The "Create a room" dialog.
#[derive(Debug, Clone)]
pub struct Create {
    pub account: Option<BareJid>,
    name: String,
    /// The room's local part: follows the name until the user changes it.
    address: String,
    address_edited: bool,
    service: String,
    kind: Kind,
    nick: String,
    error: Option<String>,
    /// The room asked for, waiting for the answer.
    pub waiting: Option<talk::Id>,
}

#[derive(Debug, Clone)]
pub enum CreateMessage {
    Account(super::super::chat::AccountChoice),
    Name(String),
    Address(String),
    Service(String),
    Kind(Kind),
    Nick(String),
    Submit,
    Close,
}

pub enum CreateEvent {
    Create {
        room: talk::Id,
        nick: String,
        settings: RoomSettings,
    },
    Close,
}

/// An address's local part made from a room's name: lower case, words
/// joined by dashes, only what every service accepts.
pub fn local_part(name: &str) -> String {
    let mut out = String::new();
    for word in name.split_whitespace() {
        let word: String = word
            .chars()
            .flat_map(char::to_lowercase)
            .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .collect();
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push('-');
        }
        out.push_str(&word);
    }
    out.chars().take(64).collect()
}

impl Create {
    /// The dialog for `account`, on its room service when one is known, with
    /// the address's local part given (a room that was not found, say).
    pub fn new(
        account: Option<BareJid>,
        service: Option<&BareJid>,
        nick: String,
        address: Option<&BareJid>,
    ) -> Self {
        let (local, service) = match address {
            Some(room) => (
                room.node().map(|n| n.to_string()).unwrap_or_default(),
                room.domain().to_string(),
            ),
            None => (
                String::new(),
                service.map(ToString::to_string).unwrap_or_default(),
            ),
        };
        Self {
            account,
            name: String::new(),
            address_edited: !local.is_empty(),
            address: local,
            service,
            kind: Kind::default(),
            nick,
            error: None,
            waiting: None,
        }
    }

    /// A service found for the account after the dialog opened.
    pub fn service_found(&mut self, service: &BareJid) {
        if self.service.trim().is_empty() {
            self.service = service.to_string();
        }
    }

    /// The room's answer: joined (the dialog closes) or why not.
    pub fn failed(&mut self, why: String) {
        self.waiting = None;
        self.error = Some(why);
    }

    pub fn update(
        &mut self,
        message: CreateMessage,
        default_nick: impl Fn(&BareJid) -> String,
    ) -> (Task<CreateMessage>, Option<CreateEvent>) {
        match message {
            CreateMessage::Account(super::super::chat::AccountChoice(account)) => {
                if self.account.as_ref().map(&default_nick).as_deref() == Some(self.nick.as_str()) {
                    self.nick = account.as_ref().map(&default_nick).unwrap_or_default();
                }
                self.account = account;
            }
            CreateMessage::Name(name) => {
                if !self.address_edited {
                    self.address = local_part(&name);
                }
                self.name = name;
                self.error = None;
            }
            CreateMessage::Address(address) => {
                self.address_edited = !address.is_empty();
                self.address = address;
                self.error = None;
            }
            CreateMessage::Service(service) => {
                self.service = service;
                self.error = None;
            }
            CreateMessage::Kind(kind) => self.kind = kind,
            CreateMessage::Nick(nick) => {
                self.nick = nick;
                self.error = None;
            }
            CreateMessage::Close => return (Task::none(), Some(CreateEvent::Close)),
            CreateMessage::Submit => return (Task::none(), self.submit()),
        }
        (Task::none(), None)
    }

    fn submit(&mut self) -> Option<CreateEvent> {
        if self.waiting.is_some() {
            return None;
        }
        let name = self.name.trim();
        if name.is_empty() {
            self.error = Some(fl!("room-create-no-name"));
            return None;
        }
        let address = format!("{}@{}", self.address.trim(), self.service.trim());
        let room = address
            .parse::<BareJid>()
            .ok()
            .filter(|r| r.node().is_some());
        let (Some(account), Some(room)) = (self.account.clone(), room) else {
            self.error = Some(fl!("room-create-invalid"));
            return None;
        };
        let nick = self.nick.trim().to_string();
        if nick.is_empty() {
            self.error = Some(fl!("room-error-nick-invalid"));
            return None;
        }
        let settings = match self.kind {
            Kind::Group => RoomSettings::private_group(name),
            Kind::Channel => RoomSettings::public_channel(name),
        };
        let id = talk::Id::room(account, room);
        self.waiting = Some(id.clone());
        self.error = None;
        Some(CreateEvent::Create {
            room: id,
            nick,
            settings,
        })
    }

    pub fn view<'a>(&'a self, accounts: &[BareJid]) -> Element<'a, CreateMessage> {
        let input = |placeholder: String, value: &str, on: fn(String) -> CreateMessage| {
            text_input(&placeholder, value)
                .on_input(on)
                .on_submit(CreateMessage::Submit)
                .size(13)
                .padding([4, 8])
                .style(theme::input)
        };
        let mut form = column![text(fl!("room-create-title")).size(17)].spacing(8);
        if accounts.len() > 1 {
            let choices: Vec<super::super::chat::AccountChoice> = accounts
                .iter()
                .map(|a| super::super::chat::AccountChoice(Some(a.clone())))
                .collect();
            form = form.push(
                pick_list(
                    choices,
                    Some(super::super::chat::AccountChoice(self.account.clone())),
                    CreateMessage::Account,
                )
                .text_size(13)
                .padding([4, 8]),
            );
        }
        let label = |label: String| text(label).size(12).style(theme::muted_text);
        form = form
            .push(label(fl!("room-create-name")))
            .push(input(fl!("room-create-name"), &self.name, CreateMessage::Name).id(NAME_INPUT))
            .push(label(fl!("room-create-address-label")))
            .push(
                row![
                    input(
                        fl!("room-create-address"),
                        &self.address,
                        CreateMessage::Address
                    ),
                    text("@").size(14),
                    input(
                        fl!("room-create-service"),
                        &self.service,
                        CreateMessage::Service
                    ),
                ]
                .spacing(6)
                .align_y(Alignment::Center),
            )
            .push(label(fl!("room-create-nick")))
            .push(input(
                fl!("room-join-nick"),
                &self.nick,
                CreateMessage::Nick,
            ))
            .push(
                column![
                    radio(
                        fl!("room-create-group"),
                        Kind::Group,
                        Some(self.kind),
                        CreateMessage::Kind
                    )
                    .size(14)
                    .text_size(13),
                    text(fl!("room-create-group-about"))
                        .size(12)
                        .style(theme::muted_text),
                    radio(
                        fl!("room-create-channel"),
                        Kind::Channel,
                        Some(self.kind),
                        CreateMessage::Kind
                    )
                    .size(14)
                    .text_size(13),
                    text(fl!("room-create-channel-about"))
                        .size(12)
                        .style(theme::muted_text),
                ]
                .spacing(6),
            );
        if let Some(error) = &self.error {
            form = form.push(text(error.clone()).size(12).style(|t| text::Style {
                color: Some(theme::danger_text(t)),
            }));
        }
        let submit = button(
            text(if self.waiting.is_some() {
                fl!("room-create-creating")
            } else {
                fl!("room-create-submit")
            })
            .size(13),
        )
        .padding([4, 12])
        .style(theme::primary_button)
        .on_press_maybe(self.waiting.is_none().then_some(CreateMessage::Submit));
        form = form.push(
            row![
                submit,
                button(text(fl!("contacts-add-cancel")).size(13))
                    .padding([4, 8])
                    .style(theme::link_button)
                    .on_press(CreateMessage::Close),
            ]
            .spacing(8),
        );
        panel(form.into())
    }
}

/// A room's settings, for its owner.
#[derive(Debug, Clone)]
pub struct Settings {
    pub room: talk::Id,
    /// As the room sent them (`None`: asked, not answered yet).
    loaded: Option<RoomSettings>,
    /// As the owner is changing them.
    edited: RoomSettings,
    saving: bool,
    /// "Saved", or what the room refused.
    notice: Option<String>,
    /// "Destroy" was pressed once: pressed again, it destroys.
    confirm_destroy: bool,
    destroy_reason: String,
}

#[derive(Debug, Clone)]
pub enum SettingsMessage {
    Name(String),
    Description(String),
    MembersOnly(bool),
    Persistent(bool),
    Public(bool),
    Moderated(bool),
    AddressesVisible(bool),
    Invites(bool),
    Password(String),
    Save,
    Destroy,
    DestroyReason(String),
    Close,
}

pub enum SettingsEvent {
    Request(talk::Id, RoomRequest),
    Close,
}

impl Settings {
    /// The panel for `room`, asking the room for its settings.
    pub fn open(room: talk::Id) -> (Self, SettingsEvent) {
        let ask = SettingsEvent::Request(room.clone(), RoomRequest::Settings);
        (
            Self {
                room,
                loaded: None,
                edited: RoomSettings::default(),
                saving: false,
                notice: None,
                confirm_destroy: false,
                destroy_reason: String::new(),
            },
            ask,
        )
    }

    pub fn on_settings(&mut self, settings: RoomSettings) {
        self.edited = settings.clone();
        self.loaded = Some(settings);
    }

    pub fn on_configured(&mut self) {
        self.saving = false;
        self.loaded = Some(self.edited.clone());
        self.notice = Some(fl!("room-settings-saved"));
    }

    pub fn on_refused(&mut self, why: String) {
        self.saving = false;
        self.notice = Some(fl!("room-refused", reason = why));
    }

    /// Only what the owner changed goes to the room.
    fn changes(&self) -> RoomSettings {
        let Some(loaded) = &self.loaded else {
            return RoomSettings::default();
        };
        fn changed<T: PartialEq + Clone>(now: &Option<T>, was: &Option<T>) -> Option<T> {
            (now != was).then(|| now.clone()).flatten()
        }
        let e = &self.edited;
        RoomSettings {
            name: changed(&e.name, &loaded.name),
            description: changed(&e.description, &loaded.description),
            members_only: changed(&e.members_only, &loaded.members_only),
            persistent: changed(&e.persistent, &loaded.persistent),
            public: changed(&e.public, &loaded.public),
            moderated: changed(&e.moderated, &loaded.moderated),
            addresses_visible: changed(&e.addresses_visible, &loaded.addresses_visible),
            invites: changed(&e.invites, &loaded.invites),
            password: changed(&e.password, &loaded.password),
        }
    }

    pub fn update(
        &mut self,
        message: SettingsMessage,
    ) -> (Task<SettingsMessage>, Option<SettingsEvent>) {
        let e = &mut self.edited;
        // Only what the room offers can be changed.
        fn set<T>(slot: &mut Option<T>, value: T) {
            if slot.is_some() {
                *slot = Some(value);
            }
        }
        match message {
            SettingsMessage::Name(v) => set(&mut e.name, v),
            SettingsMessage::Description(v) => set(&mut e.description, v),
            SettingsMessage::MembersOnly(v) => set(&mut e.members_only, v),
            SettingsMessage::Persistent(v) => set(&mut e.persistent, v),
            SettingsMessage::Public(v) => set(&mut e.public, v),
            SettingsMessage::Moderated(v) => set(&mut e.moderated, v),
            SettingsMessage::AddressesVisible(v) => set(&mut e.addresses_visible, v),
            SettingsMessage::Invites(v) => set(&mut e.invites, v),
            SettingsMessage::Password(v) => set(&mut e.password, v),
            SettingsMessage::DestroyReason(v) => self.destroy_reason = v,
            SettingsMessage::Close => return (Task::none(), Some(SettingsEvent::Close)),
            SettingsMessage::Save => {
                let changes = self.changes();
                if self.saving || changes == RoomSettings::default() {
                    return (Task::none(), None);
                }
                self.saving = true;
                self.notice = None;
                let request = RoomRequest::Configure(changes);
                return (
                    Task::none(),
                    Some(SettingsEvent::Request(self.room.clone(), request)),
                );
            }
            SettingsMessage::Destroy => {
                if !self.confirm_destroy {
                    self.confirm_destroy = true;
                    return (Task::none(), None);
                }
                let reason = Some(self.destroy_reason.trim().to_string()).filter(|r| !r.is_empty());
                return (
                    Task::none(),
                    Some(SettingsEvent::Request(
                        self.room.clone(),
                        RoomRequest::Destroy { reason },
                    )),
                );
            }
        }
        self.notice = None;
        (Task::none(), None)
    }

    pub fn view(&self) -> Element<'_, SettingsMessage> {
        let mut form = column![
            text(fl!("room-settings-title")).size(17),
            text(self.room.bare().to_string())
                .size(12)
                .style(theme::muted_text),
        ]
        .spacing(10);
        if self.loaded.is_none() {
            form = form.push(text(fl!("room-settings-loading")).size(13));
            if let Some(notice) = &self.notice {
                form = form.push(text(notice.clone()).size(12));
            }
            form = form.push(
                button(text(fl!("room-panel-close")).size(13))
                    .padding([4, 8])
                    .style(theme::link_button)
                    .on_press(SettingsMessage::Close),
            );
            return panel(form.into());
        }
        let e = &self.edited;
        let field = |label: String, value: &Option<String>, on: fn(String) -> SettingsMessage| {
            value.as_ref().map(|v| {
                column![
                    text(label).size(12).style(theme::muted_text),
                    text_input("", v)
                        .on_input(on)
                        .on_submit(SettingsMessage::Save)
                        .size(13)
                        .padding([4, 8])
                        .style(theme::input),
                ]
                .spacing(4)
            })
        };
        let toggle = |label: String, value: Option<bool>, on: fn(bool) -> SettingsMessage| {
            value.map(|v| {
                checkbox(v)
                    .label(label)
                    .on_toggle(on)
                    .size(14)
                    .text_size(13)
            })
        };
        form = form
            .push(field(
                fl!("room-create-name"),
                &e.name,
                SettingsMessage::Name,
            ))
            .push(field(
                fl!("room-settings-description"),
                &e.description,
                SettingsMessage::Description,
            ))
            .push(toggle(
                fl!("room-settings-members-only"),
                e.members_only,
                SettingsMessage::MembersOnly,
            ))
            .push(toggle(
                fl!("room-settings-public"),
                e.public,
                SettingsMessage::Public,
            ))
            .push(toggle(
                fl!("room-settings-persistent"),
                e.persistent,
                SettingsMessage::Persistent,
            ))
            .push(toggle(
                fl!("room-settings-moderated"),
                e.moderated,
                SettingsMessage::Moderated,
            ))
            .push(toggle(
                fl!("room-settings-addresses"),
                e.addresses_visible,
                SettingsMessage::AddressesVisible,
            ))
            .push(toggle(
                fl!("room-settings-invites"),
                e.invites,
                SettingsMessage::Invites,
            ))
            .push(e.password.as_ref().map(|v| {
                column![
                    text(fl!("room-settings-password"))
                        .size(12)
                        .style(theme::muted_text),
                    text_input(&fl!("room-settings-password-none"), v)
                        .on_input(SettingsMessage::Password)
                        .secure(true)
                        .size(13)
                        .padding([4, 8])
                        .style(theme::input),
                ]
                .spacing(4)
            }));
        if let Some(notice) = &self.notice {
            form = form.push(text(notice.clone()).size(12));
        }
        let unchanged = self.changes() == RoomSettings::default();
        form = form.push(
            row![
                button(
                    text(if self.saving {
                        fl!("room-settings-saving")
                    } else {
                        fl!("room-settings-save")
                    })
                    .size(13)
                )
                .padding([4, 12])
                .style(theme::primary_button)
                .on_press_maybe((!self.saving && !unchanged).then_some(SettingsMessage::Save)),
                button(text(fl!("room-panel-close")).size(13))
                    .padding([4, 8])
                    .style(theme::link_button)
                    .on_press(SettingsMessage::Close),
            ]
            .spacing(8),
        );
        let mut danger = column![Space::new().height(12)].spacing(6);
        if self.confirm_destroy {
            danger = danger
                .push(text(fl!("room-destroy-confirm")).size(13))
                .push(
                    text_input(&fl!("room-destroy-reason"), &self.destroy_reason)
                        .on_input(SettingsMessage::DestroyReason)
                        .size(13)
                        .padding([4, 8])
                        .style(theme::input),
                );
        }
        danger = danger.push(
            button(text(fl!("room-destroy")).size(13))
                .padding([4, 12])
                .style(theme::danger_button)
                .on_press(SettingsMessage::Destroy),
        );
        form = form.push(danger);
        panel(form.into())
    }
}

/// A dialog in the conversation's place, narrow enough to read.
fn panel<M: 'static>(content: Element<'_, M>) -> Element<'_, M> {
    container(container(iced::widget::scrollable(content)).max_width(520))
        .padding([18, 24])
        .width(Fill)
        .height(Fill)
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rooms_address_is_made_from_its_name_until_the_user_writes_one() {
        assert_eq!(local_part("  Family Dinner!  "), "family-dinner");
        assert_eq!(local_part("Café Über"), "café-über");
        assert_eq!(local_part("<>&"), "");
        let account: BareJid = "alice@example.org".parse().unwrap();
        let service: BareJid = "muc.example.org".parse().unwrap();
        let nick = |a: &BareJid| a.node().unwrap().to_string();
        let mut create = Create::new(Some(account.clone()), Some(&service), "alice".into(), None);
        let _ = create.update(CreateMessage::Name("Book Club".into()), nick);
        assert_eq!(create.address, "book-club");
        let _ = create.update(CreateMessage::Address("books".into()), nick);
        let _ = create.update(CreateMessage::Name("Book Club 2".into()), nick);
        assert_eq!(create.address, "books", "written by the user: kept");
        let _ = create.update(CreateMessage::Kind(Kind::Channel), nick);
        let (_, event) = create.update(CreateMessage::Submit, nick);
        let Some(CreateEvent::Create {
            room,
            nick: asked,
            settings,
        }) = event
        else {
            panic!("no create");
        };
        assert_eq!(room.bare().to_string(), "books@muc.example.org");
        assert_eq!(asked, "alice");
        assert_eq!(settings, RoomSettings::public_channel("Book Club 2"));
        // Pressed again while waiting: nothing more.
        assert!(create.update(CreateMessage::Submit, nick).1.is_none());
        create.failed("taken".into());
        assert!(create.waiting.is_none());
    }

    #[test]
    fn a_create_without_a_name_or_a_service_says_so() {
        let account: BareJid = "alice@example.org".parse().unwrap();
        let nick = |a: &BareJid| a.node().unwrap().to_string();
        let mut create = Create::new(Some(account), None, "alice".into(), None);
        assert!(create.update(CreateMessage::Submit, nick).1.is_none());
        assert!(create.error.is_some());
        let _ = create.update(CreateMessage::Name("Team".into()), nick);
        assert!(
            create.update(CreateMessage::Submit, nick).1.is_none(),
            "no service"
        );
        create.service_found(&"conference.example.org".parse().unwrap());
        let (_, event) = create.update(CreateMessage::Submit, nick);
        assert!(matches!(event, Some(CreateEvent::Create { room, .. })
            if room.bare().to_string() == "team@conference.example.org"));
    }

    #[test]
    fn settings_send_only_what_the_owner_changed_and_destroy_asks_twice() {
        let room = talk::Id::room(
            "alice@example.org".parse().unwrap(),
            "study@muc.example.org".parse().unwrap(),
        );
        let (mut settings, ask) = Settings::open(room.clone());
        assert!(matches!(
            ask,
            SettingsEvent::Request(_, RoomRequest::Settings)
        ));
        settings.on_settings(RoomSettings {
            invites: None,
            ..RoomSettings::public_channel("Study")
        });
        // Nothing changed: nothing to save.
        assert!(settings.update(SettingsMessage::Save).1.is_none());
        let _ = settings.update(SettingsMessage::MembersOnly(true));
        let _ = settings.update(SettingsMessage::Password("hush".into()));
        // Not offered by this room: stays unoffered.
        let _ = settings.update(SettingsMessage::Invites(true));
        let (_, event) = settings.update(SettingsMessage::Save);
        let Some(SettingsEvent::Request(_, RoomRequest::Configure(changes))) = event else {
            panic!("nothing saved");
        };
        assert_eq!(
            changes,
            RoomSettings {
                members_only: Some(true),
                password: Some("hush".into()),
                ..RoomSettings::default()
            }
        );
        settings.on_configured();
        assert!(settings.update(SettingsMessage::Save).1.is_none(), "saved");
        assert!(
            settings.update(SettingsMessage::Destroy).1.is_none(),
            "asks first"
        );
        let _ = settings.update(SettingsMessage::DestroyReason(" moving on ".into()));
        let (_, event) = settings.update(SettingsMessage::Destroy);
        assert!(
            matches!(event, Some(SettingsEvent::Request(_, RoomRequest::Destroy { reason }))
            if reason.as_deref() == Some("moving on"))
        );
    }
}

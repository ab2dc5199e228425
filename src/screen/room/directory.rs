//! The public rooms a service lists, searched by name, address and
//! description; a room chosen opens the join form, filled in.

use iced::widget::{Space, button, column, container, row, scrollable, text, text_input};
use iced::{Alignment, Element, Fill, Task};

use crate::fl;
use crate::theme;
use crate::xmpp::BareJid;
use crate::xmpp::room::Listing;

pub const SEARCH_INPUT: &str = "room-directory-search";

/// How many rooms are drawn at once: the rest are reached by searching.
const SHOWN: usize = 200;

/// The directory of one account's room service.
#[derive(Debug, Clone)]
pub struct Directory {
    pub account: BareJid,
    /// The service as typed (the account's own, to begin with).
    service: String,
    search: String,
    /// What the service listed, details filled in as they come.
    rooms: Vec<Listing>,
    /// The service asked, not answered yet.
    loading: Option<BareJid>,
    error: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Message {
    Service(String),
    Search(String),
    /// Ask the service (again).
    Load,
    Join(BareJid),
    Close,
}

pub enum Event {
    /// Ask this service for its rooms.
    Browse {
        account: BareJid,
        service: BareJid,
    },
    /// Join this room (the join form, filled in).
    Join {
        account: BareJid,
        room: BareJid,
    },
    Close,
}

impl Directory {
    /// The directory of `service` (`None`: the account's server has no room
    /// service the worker found; the user may type one).
    pub fn new(account: BareJid, service: Option<&BareJid>) -> Self {
        Self {
            account,
            service: service.map(ToString::to_string).unwrap_or_default(),
            search: String::new(),
            rooms: Vec::new(),
            loading: None,
            error: None,
        }
    }

    /// Asks for the service's list, when there is one to ask.
    pub fn load(&mut self) -> Option<Event> {
        let Ok(service) = self.service.trim().parse::<BareJid>() else {
            self.error = Some(fl!("room-directory-invalid"));
            return None;
        };
        if service.node().is_some() {
            self.error = Some(fl!("room-directory-invalid"));
            return None;
        }
        self.error = None;
        self.loading = Some(service.clone());
        Some(Event::Browse {
            account: self.account.clone(),
            service,
        })
    }

    pub fn update(&mut self, message: Message) -> (Task<Message>, Option<Event>) {
        let event = match message {
            Message::Service(service) => {
                self.service = service;
                None
            }
            Message::Search(search) => {
                self.search = search;
                None
            }
            Message::Load => self.load(),
            Message::Join(room) => Some(Event::Join {
                account: self.account.clone(),
                room,
            }),
            Message::Close => Some(Event::Close),
        };
        (Task::none(), event)
    }

    /// The service's list, or why there is none.
    pub fn on_rooms(&mut self, service: &BareJid, rooms: Result<Vec<Listing>, String>) {
        if self.loading.as_ref() != Some(service) {
            return;
        }
        self.loading = None;
        match rooms {
            Ok(rooms) => self.rooms = rooms,
            Err(why) => {
                self.rooms.clear();
                self.error = Some(fl!("room-directory-failed", reason = why));
            }
        }
    }

    /// One listed room's details.
    pub fn on_listing(&mut self, listing: Listing) {
        if let Some(known) = self.rooms.iter_mut().find(|r| r.room == listing.room) {
            // The list's name stands where the room gives none.
            let name = listing.name.clone().or_else(|| known.name.take());
            *known = Listing { name, ..listing };
        }
    }

    /// The rooms the search finds, the busiest first.
    pub fn found(&self) -> Vec<&Listing> {
        let words: Vec<String> = self
            .search
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
        let mut found: Vec<&Listing> = self
            .rooms
            .iter()
            .filter(|listing| {
                let haystack = format!(
                    "{} {} {}",
                    listing.room,
                    listing.name.as_deref().unwrap_or_default(),
                    listing.description.as_deref().unwrap_or_default()
                )
                .to_lowercase();
                words.iter().all(|w| haystack.contains(w.as_str()))
            })
            .collect();
        found.sort_by(|a, b| {
            b.occupants
                .unwrap_or(0)
                .cmp(&a.occupants.unwrap_or(0))
                .then_with(|| a.room.cmp(&b.room))
        });
        found
    }

    pub fn view(&self) -> Element<'_, Message> {
        let service = row![
            text_input(&fl!("room-directory-service"), &self.service)
                .on_input(Message::Service)
                .on_submit(Message::Load)
                .size(13)
                .padding([4, 8])
                .style(theme::input),
            button(text(fl!("room-directory-load")).size(13))
                .padding([4, 12])
                .style(theme::primary_button)
                .on_press_maybe(self.loading.is_none().then_some(Message::Load)),
            button(text(fl!("room-panel-close")).size(13))
                .padding([4, 8])
                .style(theme::link_button)
                .on_press(Message::Close),
        ]
        .spacing(8)
        .align_y(Alignment::Center);
        let search = text_input(&fl!("room-directory-search"), &self.search)
            .id(SEARCH_INPUT)
            .on_input(Message::Search)
            .size(13)
            .padding([4, 8])
            .style(theme::input);
        let found = self.found();
        let status = if self.loading.is_some() {
            fl!("room-directory-loading")
        } else if let Some(error) = &self.error {
            error.clone()
        } else {
            fl!(
                "room-directory-count",
                shown = found.len(),
                count = self.rooms.len()
            )
        };
        let mut list = column![].spacing(2);
        for listing in found.into_iter().take(SHOWN) {
            list = list.push(row_view(listing));
        }
        column![
            text(fl!("room-directory-title")).size(17),
            service,
            search,
            text(status).size(12).style(theme::muted_text),
            scrollable(list).height(Fill),
        ]
        .spacing(10)
        .padding([14, 18])
        .width(Fill)
        .height(Fill)
        .into()
    }
}

/// One room: its name (or address), address, description, how many are
/// in it, and whether it needs a password or membership.
fn row_view(listing: &Listing) -> Element<'_, Message> {
    let title = listing
        .name
        .clone()
        .unwrap_or_else(|| listing.room.to_string());
    let mut marks = Vec::new();
    if listing.members_only {
        marks.push(fl!("room-directory-members"));
    }
    if listing.password {
        marks.push(fl!("room-directory-password"));
    }
    let mut about = column![
        text(title).size(14),
        text(listing.room.to_string())
            .size(12)
            .style(theme::muted_text),
    ]
    .spacing(2)
    .width(Fill);
    if let Some(description) = &listing.description {
        about = about.push(
            text(description.lines().next().unwrap_or_default().to_string())
                .size(12)
                .wrapping(text::Wrapping::None),
        );
    }
    if !marks.is_empty() {
        about = about.push(text(marks.join(" · ")).size(11).style(theme::muted_text));
    }
    let count = listing
        .occupants
        .map(|count| fl!("room-people", count = count))
        .unwrap_or_default();
    let line = row![
        container(about).clip(true).width(Fill),
        text(count).size(12).style(theme::muted_text),
        Space::new().width(8),
        button(text(fl!("room-join-submit")).size(13))
            .padding([4, 12])
            .style(theme::primary_button)
            .on_press(Message::Join(listing.room.clone())),
    ]
    .spacing(8)
    .align_y(Alignment::Center);
    container(line)
        .padding([6, 8])
        .width(Fill)
        .style(theme::header)
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(room: &str, name: Option<&str>, occupants: Option<u32>) -> Listing {
        Listing {
            room: room.parse().unwrap(),
            name: name.map(str::to_string),
            description: None,
            occupants,
            password: false,
            members_only: false,
        }
    }

    #[test]
    fn the_search_finds_by_every_word_and_the_busiest_come_first() {
        let account: BareJid = "alice@example.org".parse().unwrap();
        let service: BareJid = "muc.example.org".parse().unwrap();
        let mut directory = Directory::new(account, Some(&service));
        assert!(matches!(directory.load(), Some(Event::Browse { .. })));
        directory.on_rooms(
            &service,
            Ok(vec![
                listing("rust@muc.example.org", Some("Rust"), None),
                listing("xmpp@muc.example.org", Some("XMPP talk"), None),
                listing("quiet@muc.example.org", None, None),
            ]),
        );
        // Details: a description to search, counts to sort by; the list's
        // name stays where the room gives none.
        directory.on_listing(Listing {
            description: Some("Clients, servers and Rust".into()),
            ..listing("xmpp@muc.example.org", None, Some(40))
        });
        directory.on_listing(listing("rust@muc.example.org", Some("Rust!"), Some(3)));
        // A room not listed is not added.
        directory.on_listing(listing("other@muc.example.org", Some("Other"), Some(999)));
        let all: Vec<String> = directory
            .found()
            .iter()
            .map(|l| l.room.to_string())
            .collect();
        assert_eq!(
            all,
            [
                "xmpp@muc.example.org",
                "rust@muc.example.org",
                "quiet@muc.example.org"
            ]
        );
        assert_eq!(directory.found()[0].name.as_deref(), Some("XMPP talk"));
        let _ = directory.update(Message::Search("RUST".into()));
        assert_eq!(directory.found().len(), 2, "by name and by description");
        let _ = directory.update(Message::Search("rust servers".into()));
        assert_eq!(directory.found().len(), 1, "every word");
        let _ = directory.update(Message::Search("quiet@".into()));
        assert_eq!(directory.found().len(), 1, "by address");
    }

    #[test]
    fn an_answer_for_another_service_or_an_odd_service_is_not_taken() {
        let account: BareJid = "alice@example.org".parse().unwrap();
        let mut directory = Directory::new(account, None);
        assert!(directory.load().is_none(), "no service yet");
        let _ = directory.update(Message::Service("room@muc.example.org".into()));
        assert!(directory.load().is_none(), "a room is not a service");
        let _ = directory.update(Message::Service("muc.example.org".into()));
        assert!(directory.load().is_some());
        let other: BareJid = "muc.elsewhere.org".parse().unwrap();
        directory.on_rooms(&other, Ok(vec![listing("a@muc.elsewhere.org", None, None)]));
        assert!(directory.rooms.is_empty());
        let service: BareJid = "muc.example.org".parse().unwrap();
        directory.on_rooms(&service, Err("not allowed".into()));
        assert!(directory.error.is_some());
        assert!(directory.loading.is_none());
    }
}

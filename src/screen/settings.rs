//! The settings screen: appearance, notifications, files and history. Each
//! change applies at once and is saved; there is no "OK" to forget.

use std::fmt;
use std::path::PathBuf;

use iced::widget::{Space, button, column, container, pick_list, row, scrollable, text, toggler};
use iced::{Alignment, Element, Fill, Length, Task};

use crate::config::{
    AppearanceConfig, Config, FilesConfig, HistoryConfig, NotificationsConfig, ThemeChoice,
};
use crate::fl;
use crate::theme;

/// The part of the configuration this screen edits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preferences {
    pub appearance: AppearanceConfig,
    pub notifications: NotificationsConfig,
    pub files: FilesConfig,
    pub history: HistoryConfig,
}

impl Preferences {
    pub fn of(config: &Config) -> Self {
        Self {
            appearance: config.appearance.clone(),
            notifications: config.notifications,
            files: config.files.clone(),
            history: config.history,
        }
    }

    /// Writes these preferences into `config`, leaving accounts alone.
    pub fn apply_to(&self, config: &mut Config) {
        config.appearance = self.appearance.clone();
        config.notifications = self.notifications;
        config.files = self.files.clone();
        config.history = self.history;
    }
}

pub struct State {
    preferences: Preferences,
    /// The languages Tern ships, as tags (`en`, `zh-CN`).
    languages: Vec<String>,
    /// Whether the folder picker is open (a second click would open another).
    picking: bool,
    /// Why the last change could not be saved.
    error: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Message {
    Theme(ThemeOption),
    Language(LanguageOption),
    Notifications(bool),
    NotificationContent(bool),
    ChooseDownloadDir,
    DownloadDirChosen(Option<PathBuf>),
    DefaultDownloadDir,
    AutoImages(bool),
    ImageLimit(Bytes),
    CatchUpDays(Days),
    CatchUpMessages(Count),
    Close,
}

pub enum Event {
    /// Apply and save these preferences.
    Changed(Preferences),
    Close,
}

impl State {
    pub fn new(preferences: Preferences, languages: Vec<String>) -> Self {
        Self {
            preferences,
            languages,
            picking: false,
            error: None,
        }
    }

    pub fn set_error(&mut self, error: Option<String>) {
        self.error = error;
    }

    pub fn update(&mut self, message: Message) -> (Task<Message>, Option<Event>) {
        let p = &mut self.preferences;
        match message {
            Message::Theme(ThemeOption(choice)) => p.appearance.theme = choice,
            Message::Language(LanguageOption(language)) => p.appearance.language = language,
            Message::Notifications(on) => p.notifications.enabled = on,
            Message::NotificationContent(on) => p.notifications.show_content = on,
            Message::ChooseDownloadDir => {
                if self.picking {
                    return (Task::none(), None);
                }
                self.picking = true;
                let pick = rfd::AsyncFileDialog::new()
                    .set_title(fl!("settings-download-dir-title"))
                    .set_directory(p.files.download_dir())
                    .pick_folder();
                let task = Task::perform(pick, |folder| {
                    Message::DownloadDirChosen(folder.map(|f| f.path().to_path_buf()))
                });
                return (task, None);
            }
            Message::DownloadDirChosen(folder) => {
                self.picking = false;
                match folder {
                    Some(folder) => p.files.download_dir = Some(folder),
                    None => return (Task::none(), None),
                }
            }
            Message::DefaultDownloadDir => p.files.download_dir = None,
            Message::AutoImages(on) => p.files.auto_download_images = on,
            Message::ImageLimit(Bytes(limit)) => p.files.auto_download_max_bytes = limit,
            Message::CatchUpDays(Days(days)) => p.history.catch_up_days = days,
            Message::CatchUpMessages(Count(count)) => p.history.catch_up_messages = count,
            Message::Close => return (Task::none(), Some(Event::Close)),
        }
        (Task::none(), Some(Event::Changed(self.preferences.clone())))
    }

    pub fn view(&self) -> Element<'_, Message> {
        let p = &self.preferences;

        let themes: Vec<ThemeOption> = [ThemeChoice::System, ThemeChoice::Light, ThemeChoice::Dark]
            .into_iter()
            .map(ThemeOption)
            .collect();
        let mut languages = vec![LanguageOption(None)];
        languages.extend(
            self.languages
                .iter()
                .map(|l| LanguageOption(Some(l.clone()))),
        );
        let appearance = section(
            fl!("settings-appearance"),
            vec![
                setting(
                    fl!("settings-theme"),
                    None,
                    pick_list(
                        themes,
                        Some(ThemeOption(p.appearance.theme)),
                        Message::Theme,
                    )
                    .text_size(13)
                    .into(),
                ),
                setting(
                    fl!("settings-language"),
                    None,
                    pick_list(
                        languages,
                        Some(LanguageOption(p.appearance.language.clone())),
                        Message::Language,
                    )
                    .text_size(13)
                    .into(),
                ),
            ],
        );

        let notifications = section(
            fl!("settings-notifications"),
            vec![
                setting(
                    fl!("settings-notifications-enabled"),
                    Some(fl!("settings-notifications-enabled-hint")),
                    switch(p.notifications.enabled, Some(Message::Notifications)),
                ),
                setting(
                    fl!("settings-notifications-content"),
                    Some(fl!("settings-notifications-content-hint")),
                    switch(
                        p.notifications.show_content,
                        p.notifications
                            .enabled
                            .then_some(Message::NotificationContent),
                    ),
                ),
            ],
        );

        let folder = p.files.download_dir();
        let mut folder_buttons = row![
            button(text(fl!("settings-download-dir-choose")).size(13))
                .padding([5, 10])
                .style(theme::secondary_button)
                .on_press_maybe((!self.picking).then_some(Message::ChooseDownloadDir)),
        ]
        .spacing(8)
        .align_y(Alignment::Center);
        if p.files.download_dir.is_some() {
            folder_buttons = folder_buttons.push(
                button(text(fl!("settings-download-dir-default")).size(13))
                    .padding(0)
                    .style(theme::link_button)
                    .on_press(Message::DefaultDownloadDir),
            );
        }
        let files = section(
            fl!("settings-files"),
            vec![
                setting(
                    fl!("settings-download-dir"),
                    Some(folder.display().to_string()),
                    folder_buttons.into(),
                ),
                setting(
                    fl!("settings-auto-images"),
                    Some(fl!("settings-auto-images-hint")),
                    switch(p.files.auto_download_images, Some(Message::AutoImages)),
                ),
                setting(
                    fl!("settings-image-limit"),
                    None,
                    pick_list(
                        with_current(&Bytes::CHOICES, Bytes(p.files.auto_download_max_bytes)),
                        Some(Bytes(p.files.auto_download_max_bytes)),
                        Message::ImageLimit,
                    )
                    .text_size(13)
                    .into(),
                ),
            ],
        );

        let history = section(
            fl!("settings-history"),
            vec![
                setting(
                    fl!("settings-catch-up-days"),
                    Some(fl!("settings-catch-up-hint")),
                    pick_list(
                        with_current(&Days::CHOICES, Days(p.history.catch_up_days)),
                        Some(Days(p.history.catch_up_days)),
                        Message::CatchUpDays,
                    )
                    .text_size(13)
                    .into(),
                ),
                setting(
                    fl!("settings-catch-up-messages"),
                    None,
                    pick_list(
                        with_current(&Count::CHOICES, Count(p.history.catch_up_messages)),
                        Some(Count(p.history.catch_up_messages)),
                        Message::CatchUpMessages,
                    )
                    .text_size(13)
                    .into(),
                ),
            ],
        );

        let header = container(
            row![
                button(text(fl!("settings-back")).size(13))
                    .padding([5, 10])
                    .style(theme::secondary_button)
                    .on_press(Message::Close),
                text(fl!("settings-title")).size(20),
            ]
            .spacing(16)
            .align_y(Alignment::Center),
        )
        .padding([12, 20])
        .width(Fill)
        .style(theme::header);

        let mut sections = column![].spacing(20).max_width(640);
        if let Some(error) = &self.error {
            sections = sections.push(
                container(text(fl!("settings-save-error", error = error.clone())).size(13))
                    .padding(10)
                    .width(Fill)
                    .style(theme::error_banner),
            );
        }
        let body = container(sections.extend([appearance, notifications, files, history]))
            .center_x(Fill)
            .padding([20, 20]);

        column![header, scrollable(body).height(Fill)]
            .height(Fill)
            .into()
    }
}

/// A titled card of settings.
fn section<'a>(title: String, rows: Vec<Element<'a, Message>>) -> Element<'a, Message> {
    column![
        text(title).size(15),
        container(column(rows).spacing(14))
            .padding(16)
            .width(Fill)
            .style(theme::card),
    ]
    .spacing(8)
    .into()
}

/// One setting: its name (and a hint under it) on the left, its control on the right.
fn setting<'a>(
    label: String,
    hint: Option<String>,
    control: Element<'a, Message>,
) -> Element<'a, Message> {
    let mut words = column![text(label).size(14)].spacing(2).width(Fill);
    if let Some(hint) = hint {
        words = words.push(text(hint).size(12).style(theme::muted_text));
    }
    row![words, Space::new().width(12), control]
        .align_y(Alignment::Center)
        .into()
}

fn switch<'a>(on: bool, message: Option<fn(bool) -> Message>) -> Element<'a, Message> {
    toggler(on)
        .on_toggle_maybe(message)
        .size(20)
        .width(Length::Shrink)
        .into()
}

/// The usual choices, plus the current value when it was set by hand in the file.
fn with_current<T: Copy + PartialEq + Ord>(choices: &[T], current: T) -> Vec<T> {
    let mut all = choices.to_vec();
    if !all.contains(&current) {
        all.push(current);
        all.sort();
    }
    all
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThemeOption(pub ThemeChoice);

impl fmt::Display for ThemeOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&match self.0 {
            ThemeChoice::System => fl!("settings-theme-system"),
            ThemeChoice::Light => fl!("settings-theme-light"),
            ThemeChoice::Dark => fl!("settings-theme-dark"),
        })
    }
}

/// A language tag, or `None` for the system's language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanguageOption(pub Option<String>);

impl fmt::Display for LanguageOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Each language by its own name, so that it can be found when the
        // interface speaks one the user cannot read.
        match self.0.as_deref() {
            None => f.write_str(&fl!("settings-language-system")),
            Some("en") => f.write_str("English"),
            Some("zh-CN") => f.write_str("简体中文"),
            Some(other) => f.write_str(other),
        }
    }
}

/// The largest image loaded by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bytes(pub u64);

impl Bytes {
    const CHOICES: [Bytes; 7] = [
        Bytes(1_000_000),
        Bytes(2_000_000),
        Bytes(5_000_000),
        Bytes(10_000_000),
        Bytes(25_000_000),
        Bytes(50_000_000),
        Bytes(100_000_000),
    ];
}

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 >= 1_000_000 && self.0.is_multiple_of(1_000_000) {
            write!(f, "{} MB", self.0 / 1_000_000)
        } else {
            f.write_str(&crate::sharing::human_size(self.0))
        }
    }
}

/// How many days of history a first sign-in fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Days(pub u32);

impl Days {
    const CHOICES: [Days; 6] = [Days(1), Days(7), Days(30), Days(90), Days(180), Days(365)];
}

impl fmt::Display for Days {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&fl!("settings-days", count = self.0))
    }
}

/// How many messages a first sign-in fetches at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Count(pub usize);

impl Count {
    const CHOICES: [Count; 5] = [
        Count(100),
        Count(500),
        Count(1000),
        Count(5000),
        Count(10000),
    ];
}

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&fl!("settings-messages", count = self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changed(state: &mut State, message: Message) -> Preferences {
        match state.update(message).1 {
            Some(Event::Changed(p)) => p,
            _ => panic!("no change reported"),
        }
    }

    #[test]
    fn each_control_changes_its_preference_and_reports_it() {
        let config = Config::default();
        let mut s = State::new(Preferences::of(&config), vec!["en".into(), "zh-CN".into()]);
        let p = changed(&mut s, Message::Theme(ThemeOption(ThemeChoice::Dark)));
        assert_eq!(p.appearance.theme, ThemeChoice::Dark);
        let p = changed(
            &mut s,
            Message::Language(LanguageOption(Some("zh-CN".into()))),
        );
        assert_eq!(p.appearance.language.as_deref(), Some("zh-CN"));
        let p = changed(&mut s, Message::NotificationContent(false));
        assert!(!p.notifications.show_content && p.notifications.enabled);
        let p = changed(&mut s, Message::DownloadDirChosen(Some("/tmp/in".into())));
        assert_eq!(
            p.files.download_dir.as_deref(),
            Some(std::path::Path::new("/tmp/in"))
        );
        let p = changed(&mut s, Message::DefaultDownloadDir);
        assert_eq!(p.files.download_dir, None);
        let p = changed(&mut s, Message::ImageLimit(Bytes(25_000_000)));
        assert_eq!(p.files.auto_download_max_bytes, 25_000_000);
        let p = changed(&mut s, Message::CatchUpDays(Days(7)));
        assert_eq!(p.history.catch_up_days, 7);
        let p = changed(&mut s, Message::CatchUpMessages(Count(100)));
        assert_eq!(p.history.catch_up_messages, 100);
        // A cancelled folder picker changes nothing.
        assert!(s.update(Message::DownloadDirChosen(None)).1.is_none());
        assert!(matches!(s.update(Message::Close).1, Some(Event::Close)));

        let mut config = Config::default();
        p.apply_to(&mut config);
        assert_eq!(Preferences::of(&config), p);
    }

    #[test]
    fn a_value_set_by_hand_is_offered_with_the_usual_ones() {
        let all = with_current(&Days::CHOICES, Days(14));
        assert_eq!(all.len(), Days::CHOICES.len() + 1);
        assert!(all.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(
            with_current(&Days::CHOICES, Days(30)).len(),
            Days::CHOICES.len()
        );
        assert_eq!(Bytes(10_000_000).to_string(), "10 MB");
        assert_eq!(Bytes(10_485_760).to_string(), "10.5 MB");
    }
}

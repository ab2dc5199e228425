//! Tern's look: one light and one dark palette, and every widget style as a named function.

use iced::theme::{Mode, Palette};
use iced::widget::{button, container, text, text_editor, text_input};
use iced::{Background, Border, Color, Shadow, Theme, color};

use crate::xmpp::Availability;

/// The theme for a system colour scheme (light unless the system says dark).
pub fn for_mode(mode: Mode) -> Theme {
    match mode {
        Mode::Dark => Theme::custom(
            "Tern Dark",
            Palette {
                background: color!(0x1b1e24),
                text: color!(0xe6e8eb),
                primary: color!(0x4c9bf0),
                success: color!(0x3fb37f),
                warning: color!(0xe0a43a),
                danger: color!(0xe5534b),
            },
        ),
        Mode::Light | Mode::None => Theme::custom(
            "Tern Light",
            Palette {
                background: color!(0xffffff),
                text: color!(0x1d2127),
                primary: color!(0x1f6fd1),
                success: color!(0x1f8f5f),
                warning: color!(0xb7791f),
                danger: color!(0xc9362f),
            },
        ),
    }
}

/// Links in messages: a blue readable on both palettes.
pub const LINK: Color = color!(0x3d8bd9);

/// Secondary text: times, previews, hints.
pub fn muted(theme: &Theme) -> Color {
    let p = theme.extended_palette();
    p.background.base.text.scale_alpha(0.6)
}

pub fn danger_text(theme: &Theme) -> Color {
    theme.palette().danger
}

/// Secondary text as a text style.
pub fn muted_text(theme: &Theme) -> text::Style {
    text::Style {
        color: Some(muted(theme)),
    }
}

/// A chat's unsent draft in the conversation list, marked as Gajim and most
/// messengers do: in the warning red, so it is not taken for a sent message.
pub fn draft_text(theme: &Theme) -> text::Style {
    text::Style {
        color: Some(danger_text(theme)),
    }
}

/// The colour of a presence dot.
pub fn availability(theme: &Theme, a: Availability) -> Color {
    let p = theme.palette();
    match a {
        Availability::Chat | Availability::Available => p.success,
        Availability::Away | Availability::ExtendedAway => p.warning,
        Availability::DoNotDisturb => p.danger,
        Availability::Offline => muted(theme).scale_alpha(0.6),
    }
}

/// A consistent colour for a JID (XEP-0392 style: hue from a hash), readable on both palettes.
pub fn jid_color(theme: &Theme, jid: &str) -> Color {
    // FNV-1a: stable across runs and platforms, unlike std's hasher.
    let hash = jid.bytes().fold(0x811c9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    let hue = (hash % 360) as f32;
    let dark = theme.extended_palette().is_dark;
    let (s, l) = if dark { (0.55, 0.68) } else { (0.65, 0.38) };
    hsl(hue, s, l)
}

fn hsl(h: f32, s: f32, l: f32) -> Color {
    let c = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let x = c * (1.0 - ((h / 60.0) % 2.0 - 1.0).abs());
    let m = l - c / 2.0;
    let (r, g, b) = match h as u32 {
        0..60 => (c, x, 0.0),
        60..120 => (x, c, 0.0),
        120..180 => (0.0, c, x),
        180..240 => (0.0, x, c),
        240..300 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    Color::from_rgb(r + m, g + m, b + m)
}

/// The left pane's background.
pub fn sidebar(theme: &Theme) -> container::Style {
    let p = theme.extended_palette();
    container::Style {
        background: Some(Background::Color(p.background.weakest.color)),
        border: Border {
            color: p.background.weak.color,
            width: 0.0,
            radius: 0.0.into(),
        },
        ..container::Style::default()
    }
}

/// The bar above the messages.
pub fn header(theme: &Theme) -> container::Style {
    let p = theme.extended_palette();
    container::Style {
        background: Some(Background::Color(p.background.base.color)),
        border: Border {
            color: p.background.weak.color,
            width: 1.0,
            radius: 0.0.into(),
        },
        ..container::Style::default()
    }
}

/// The sign-in card.
pub fn card(theme: &Theme) -> container::Style {
    let p = theme.extended_palette();
    container::Style {
        background: Some(Background::Color(p.background.base.color)),
        border: Border {
            color: p.background.strong.color,
            width: 1.0,
            radius: 8.0.into(),
        },
        shadow: Shadow {
            color: Color::BLACK.scale_alpha(0.12),
            offset: iced::Vector::new(0.0, 2.0),
            blur_radius: 12.0,
        },
        ..container::Style::default()
    }
}

/// The window behind the sign-in card.
pub fn backdrop(theme: &Theme) -> container::Style {
    container::Style {
        background: Some(Background::Color(
            theme.extended_palette().background.weak.color,
        )),
        ..container::Style::default()
    }
}

/// An unread count.
pub fn badge(theme: &Theme) -> container::Style {
    let p = theme.extended_palette();
    container::Style {
        background: Some(Background::Color(p.primary.base.color)),
        text_color: Some(p.primary.base.text),
        border: Border {
            radius: 9.0.into(),
            ..Border::default()
        },
        ..container::Style::default()
    }
}

/// A round presence dot.
pub fn dot(color: Color) -> impl Fn(&Theme) -> container::Style {
    move |_| container::Style {
        background: Some(Background::Color(color)),
        border: Border {
            radius: 5.0.into(),
            ..Border::default()
        },
        ..container::Style::default()
    }
}

/// An error banner.
pub fn error_banner(theme: &Theme) -> container::Style {
    let p = theme.extended_palette();
    banner(theme, p.danger.weak.color, p.danger.base.color)
}

/// A warning the user should read before going on (a password kept in a file).
pub fn warning_banner(theme: &Theme) -> container::Style {
    let p = theme.extended_palette();
    banner(theme, p.warning.weak.color, p.warning.base.color)
}

fn banner(theme: &Theme, fill: Color, edge: Color) -> container::Style {
    container::Style {
        background: Some(Background::Color(fill.scale_alpha(0.25))),
        text_color: Some(theme.extended_palette().background.base.text),
        border: Border {
            color: edge,
            width: 1.0,
            radius: 6.0.into(),
        },
        ..container::Style::default()
    }
}

/// A row in the conversation or contact list.
pub fn list_item(selected: bool) -> impl Fn(&Theme, button::Status) -> button::Style {
    move |theme, status| {
        let p = theme.extended_palette();
        let background = match (selected, status) {
            (true, _) => Some(Background::Color(p.primary.weak.color.scale_alpha(0.35))),
            (false, button::Status::Hovered) => Some(Background::Color(p.background.weak.color)),
            _ => None,
        };
        button::Style {
            background,
            text_color: p.background.base.text,
            border: Border {
                radius: 6.0.into(),
                ..Border::default()
            },
            ..button::Style::default()
        }
    }
}

/// A tab of the left pane (Chats / Contacts).
pub fn tab(active: bool) -> impl Fn(&Theme, button::Status) -> button::Style {
    move |theme, status| {
        let p = theme.extended_palette();
        button::Style {
            background: match (active, status) {
                (true, _) => Some(Background::Color(
                    p.background.strong.color.scale_alpha(0.5),
                )),
                (false, button::Status::Hovered) => {
                    Some(Background::Color(p.background.weak.color))
                }
                _ => None,
            },
            text_color: if active {
                p.background.base.text
            } else {
                muted(theme)
            },
            border: Border {
                radius: 6.0.into(),
                ..Border::default()
            },
            ..button::Style::default()
        }
    }
}

/// A quiet text button ("Retry now", "Advanced").
pub fn link_button(theme: &Theme, status: button::Status) -> button::Style {
    let p = theme.extended_palette();
    button::Style {
        background: None,
        text_color: match status {
            button::Status::Hovered | button::Status::Pressed => p.primary.strong.color,
            _ => p.primary.base.color,
        },
        ..button::Style::default()
    }
}

pub fn primary_button(theme: &Theme, status: button::Status) -> button::Style {
    let mut style = button::primary(theme, status);
    style.border.radius = 6.0.into();
    style
}

/// A button for an action that destroys something (deleting history).
pub fn danger_button(theme: &Theme, status: button::Status) -> button::Style {
    let mut style = button::danger(theme, status);
    style.border.radius = 6.0.into();
    style
}

/// A button beside others that is not the main action (Back, Choose…).
pub fn secondary_button(theme: &Theme, status: button::Status) -> button::Style {
    let p = theme.extended_palette();
    let background = match status {
        button::Status::Hovered | button::Status::Pressed => p.background.strong.color,
        _ => p.background.weak.color,
    };
    button::Style {
        background: Some(Background::Color(background)),
        text_color: match status {
            button::Status::Disabled => muted(theme),
            _ => p.background.base.text,
        },
        border: Border {
            color: p.background.strong.color,
            width: 1.0,
            radius: 6.0.into(),
        },
        ..button::Style::default()
    }
}

pub fn input(theme: &Theme, status: text_input::Status) -> text_input::Style {
    let mut style = text_input::default(theme, status);
    style.border.radius = 6.0.into();
    style
}

pub fn composer(theme: &Theme, status: text_editor::Status) -> text_editor::Style {
    let mut style = text_editor::default(theme, status);
    style.border.radius = 8.0.into();
    style
}

/// A room message that mentions the user: marked at its edge, softly filled.
pub fn mention(theme: &Theme) -> container::Style {
    let p = theme.extended_palette();
    container::Style {
        background: Some(Background::Color(Color {
            a: 0.12,
            ..p.primary.base.color
        })),
        border: Border {
            color: p.primary.base.color,
            width: 0.0,
            radius: 6.0.into(),
        },
        ..container::Style::default()
    }
}

/// A shared file in the conversation: a quiet card around its preview or name.
pub fn attachment(theme: &Theme) -> container::Style {
    let p = theme.extended_palette();
    container::Style {
        background: Some(Background::Color(p.background.weak.color)),
        border: Border {
            color: p.background.strong.color,
            width: 1.0,
            radius: 8.0.into(),
        },
        ..container::Style::default()
    }
}

/// An image preview that opens the image when clicked.
pub fn image_button(_theme: &Theme, status: button::Status) -> button::Style {
    button::Style {
        background: None,
        border: Border {
            radius: 6.0.into(),
            ..Border::default()
        },
        shadow: match status {
            button::Status::Hovered => Shadow {
                color: Color::BLACK.scale_alpha(0.25),
                offset: iced::Vector::new(0.0, 1.0),
                blur_radius: 6.0,
            },
            _ => Shadow::default(),
        },
        ..button::Style::default()
    }
}

/// Where dragged files can be dropped.
pub fn drop_zone(theme: &Theme) -> container::Style {
    let p = theme.extended_palette();
    container::Style {
        background: Some(Background::Color(p.background.base.color)),
        text_color: Some(p.primary.strong.color),
        border: Border {
            color: p.primary.base.color,
            width: 2.0,
            radius: 12.0.into(),
        },
        ..container::Style::default()
    }
}

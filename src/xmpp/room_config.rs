//! A room's configuration form (`muc#roomconfig`, XEP-0045 §10.2) read into
//! [`RoomSettings`] and filled from them, and a room's disco#info read into
//! a directory [`Listing`] (`muc#roominfo`, §6.4).
//!
//! Rooms' forms differ between services (Prosody has no
//! `passwordprotectedroom`, ejabberd has both it and `roomsecret`), so only
//! the fields a room's own form has are read or filled, and every other
//! field goes back as the room sent it.

use tokio_xmpp::parsers::data_forms::{DataForm, DataFormType, Field, FieldType};
use tokio_xmpp::parsers::disco::DiscoInfoResult;

use super::BareJid;
use super::room::{Listing, RoomSettings};

const CONFIG: &str = "http://jabber.org/protocol/muc#roomconfig";
const INFO: &str = "http://jabber.org/protocol/muc#roominfo";

const NAME: &str = "muc#roomconfig_roomname";
const DESCRIPTION: &str = "muc#roomconfig_roomdesc";
const MEMBERS_ONLY: &str = "muc#roomconfig_membersonly";
const PERSISTENT: &str = "muc#roomconfig_persistentroom";
const PUBLIC: &str = "muc#roomconfig_publicroom";
const MODERATED: &str = "muc#roomconfig_moderatedroom";
const WHOIS: &str = "muc#roomconfig_whois";
const INVITES: &str = "muc#roomconfig_allowinvites";
const SECRET: &str = "muc#roomconfig_roomsecret";
const PROTECTED: &str = "muc#roomconfig_passwordprotectedroom";

/// How much of a room's name or description is kept from a form.
const MAX_TEXT: usize = 1024;

fn field<'a>(form: &'a DataForm, var: &str) -> Option<&'a Field> {
    form.fields.iter().find(|f| f.var.as_deref() == Some(var))
}

fn text(form: &DataForm, var: &str) -> Option<String> {
    let field = field(form, var)?;
    let value = field.values.join("\n");
    Some(value.chars().take(MAX_TEXT).collect())
}

fn flag(form: &DataForm, var: &str) -> Option<bool> {
    let field = field(form, var)?;
    Some(matches!(
        field.values.first().map(|v| v.trim()),
        Some("1" | "true")
    ))
}

/// What the room's configuration form says.
pub fn settings_from_form(form: &DataForm) -> RoomSettings {
    let protected = flag(form, PROTECTED);
    let password = text(form, SECRET).map(|secret| {
        // Where the room says the password is off, an old secret is not one.
        if protected == Some(false) {
            String::new()
        } else {
            secret
        }
    });
    RoomSettings {
        name: text(form, NAME),
        description: text(form, DESCRIPTION),
        members_only: flag(form, MEMBERS_ONLY),
        persistent: flag(form, PERSISTENT),
        public: flag(form, PUBLIC),
        moderated: flag(form, MODERATED),
        addresses_visible: field(form, WHOIS)
            .map(|f| f.values.first().is_some_and(|v| v.trim() == "anyone")),
        invites: flag(form, INVITES),
        password,
    }
}

/// The room's form (as it sent it) submitted with `settings` in the fields
/// it has; what `settings` leaves out, and fields the room has and Tern
/// does not know, go back unchanged. The fields the settings asked for that
/// the form lacks are returned, for the log.
pub fn fill_form(form: DataForm, settings: &RoomSettings) -> (DataForm, Vec<&'static str>) {
    let bool_value = |on: bool| if on { "1" } else { "0" }.to_string();
    let mut wanted: Vec<(&'static str, String)> = Vec::new();
    if let Some(name) = &settings.name {
        wanted.push((NAME, name.clone()));
    }
    if let Some(description) = &settings.description {
        wanted.push((DESCRIPTION, description.clone()));
    }
    for (var, value) in [
        (MEMBERS_ONLY, settings.members_only),
        (PERSISTENT, settings.persistent),
        (PUBLIC, settings.public),
        (MODERATED, settings.moderated),
        (INVITES, settings.invites),
    ] {
        if let Some(on) = value {
            wanted.push((var, bool_value(on)));
        }
    }
    if let Some(visible) = settings.addresses_visible {
        let value = if visible { "anyone" } else { "moderators" };
        wanted.push((WHOIS, value.to_string()));
    }
    if let Some(password) = &settings.password {
        wanted.push((SECRET, password.clone()));
        // Only where the room has the switch (ejabberd); Prosody goes by
        // whether the secret is empty.
        if field(&form, PROTECTED).is_some() {
            wanted.push((PROTECTED, bool_value(!password.is_empty())));
        }
    }
    let mut missing = Vec::new();
    let mut fields: Vec<Field> = form
        .fields
        .into_iter()
        // §3.3 of XEP-0004: fixed fields are not sent back.
        .filter(|f| f.type_ != FieldType::Fixed && f.var.is_some())
        .collect();
    for (var, value) in wanted {
        match fields.iter_mut().find(|f| f.var.as_deref() == Some(var)) {
            Some(field) => field.values = vec![value],
            None => missing.push(var),
        }
    }
    let mut submit = DataForm::new(DataFormType::Submit, CONFIG, Vec::new());
    for field in fields {
        if field.var.as_deref() == Some("FORM_TYPE") {
            continue;
        }
        let mut sent = Field::new(field.var.as_deref().unwrap_or_default(), field.type_);
        sent.values = field.values;
        submit.fields.push(sent);
    }
    (submit, missing)
}

/// A room's disco#info as the directory shows it.
pub fn listing(room: BareJid, info: &DiscoInfoResult) -> Listing {
    let form = info
        .extensions
        .iter()
        .find(|form| form.form_type() == Some(INFO));
    let name = info
        .identities
        .iter()
        .find(|i| i.category == "conference")
        .and_then(|i| i.name.clone())
        .filter(|n| !n.trim().is_empty())
        .map(|n| n.chars().take(MAX_TEXT).collect());
    Listing {
        room,
        name,
        description: form
            .and_then(|f| text(f, "muc#roominfo_description"))
            .filter(|d| !d.trim().is_empty()),
        occupants: form
            .and_then(|f| field(f, "muc#roominfo_occupants"))
            .and_then(|f| f.values.first())
            .and_then(|v| v.trim().parse().ok()),
        password: info.features.contains("muc_passwordprotected"),
        members_only: info.features.contains("muc_membersonly"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_xmpp::minidom::Element;

    /// Prosody 0.12's form, cut to the fields that matter here.
    const PROSODY_FORM: &str = "<x xmlns='jabber:x:data' type='form'>\
        <field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/muc#roomconfig</value></field>\
        <field type='fixed'><value>Room information</value></field>\
        <field var='muc#roomconfig_roomname' type='text-single'><value>Study</value></field>\
        <field var='muc#roomconfig_roomdesc' type='text-single'/>\
        <field var='muc#roomconfig_persistentroom' type='boolean'><value>0</value></field>\
        <field var='muc#roomconfig_publicroom' type='boolean'><value>1</value></field>\
        <field var='muc#roomconfig_roomsecret' type='text-private'><value>hush</value></field>\
        <field var='muc#roomconfig_membersonly' type='boolean'><value>false</value></field>\
        <field var='muc#roomconfig_moderatedroom' type='boolean'><value>0</value></field>\
        <field var='muc#roomconfig_whois' type='list-single'><value>moderators</value>\
          <option><value>moderators</value></option><option><value>anyone</value></option></field>\
        <field var='muc#roomconfig_historylength' type='text-single'><value>20</value></field>\
        </x>";

    fn prosody_form() -> DataForm {
        let element: Element = PROSODY_FORM.parse().unwrap();
        DataForm::try_from(element).unwrap()
    }

    #[test]
    fn a_rooms_form_reads_into_what_it_offers() {
        let settings = settings_from_form(&prosody_form());
        assert_eq!(
            settings,
            RoomSettings {
                name: Some("Study".into()),
                description: Some(String::new()),
                members_only: Some(false),
                persistent: Some(false),
                public: Some(true),
                moderated: Some(false),
                addresses_visible: Some(false),
                // Not in this form: not offered.
                invites: None,
                password: Some("hush".into()),
            }
        );
    }

    #[test]
    fn a_private_group_fills_the_rooms_own_fields_and_keeps_the_rest() {
        let (submit, missing) = fill_form(prosody_form(), &RoomSettings::private_group("Family"));
        assert_eq!(submit.type_, DataFormType::Submit);
        assert_eq!(submit.form_type(), Some(CONFIG));
        let value = |var: &str| field(&submit, var).map(|f| f.values.clone());
        assert_eq!(value(NAME), Some(vec!["Family".to_string()]));
        assert_eq!(value(MEMBERS_ONLY), Some(vec!["1".to_string()]));
        assert_eq!(value(PERSISTENT), Some(vec!["1".to_string()]));
        assert_eq!(value(PUBLIC), Some(vec!["0".to_string()]));
        assert_eq!(value(WHOIS), Some(vec!["anyone".to_string()]));
        assert_eq!(value(SECRET), Some(vec![String::new()]));
        // What Tern does not set goes back as it was; the fixed text does not.
        assert_eq!(
            value("muc#roomconfig_historylength"),
            Some(vec!["20".into()])
        );
        assert!(submit.fields.iter().all(|f| f.type_ != FieldType::Fixed));
        // Prosody has no switch for the password, nor (here) for invites.
        assert_eq!(missing, vec![INVITES]);
        assert!(field(&submit, PROTECTED).is_none());
        // What was read back is what was asked, where the room offers it.
        let read = settings_from_form(&submit);
        assert_eq!(read.members_only, Some(true));
        assert_eq!(read.addresses_visible, Some(true));
    }

    #[test]
    fn where_the_room_has_a_password_switch_it_follows_the_password() {
        let mut form = prosody_form();
        form.fields
            .push(Field::new(PROTECTED, FieldType::Boolean).with_value("1"));
        let settings = RoomSettings {
            password: Some(String::new()),
            ..RoomSettings::default()
        };
        let (submit, missing) = fill_form(form.clone(), &settings);
        assert!(missing.is_empty());
        assert_eq!(field(&submit, PROTECTED).unwrap().values, vec!["0"]);
        // A switch that is off makes any old secret no password at all.
        let read = settings_from_form(&submit);
        assert_eq!(read.password.as_deref(), Some(""));
        // Nothing asked: the form goes back as it came.
        let (unchanged, _) = fill_form(form.clone(), &RoomSettings::default());
        assert_eq!(settings_from_form(&unchanged), settings_from_form(&form));
    }

    #[test]
    fn a_rooms_info_reads_into_its_listing() {
        let xml = "<query xmlns='http://jabber.org/protocol/disco#info'>\
            <identity category='conference' type='text' name='The Study'/>\
            <feature var='http://jabber.org/protocol/muc'/>\
            <feature var='muc_passwordprotected'/>\
            <x xmlns='jabber:x:data' type='result'>\
              <field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/muc#roominfo</value></field>\
              <field var='muc#roominfo_description'><value>Quiet, please</value></field>\
              <field var='muc#roominfo_occupants'><value>12</value></field>\
            </x></query>";
        let element: Element = xml.parse().unwrap();
        let info = DiscoInfoResult::try_from(element).unwrap();
        let room: BareJid = "study@muc.example.org".parse().unwrap();
        let listing = listing(room.clone(), &info);
        assert_eq!(
            listing,
            Listing {
                room,
                name: Some("The Study".into()),
                description: Some("Quiet, please".into()),
                occupants: Some(12),
                password: true,
                members_only: false,
            }
        );
        // A count that is no number is no count.
        let odd = xml.replace("<value>12</value>", "<value>many</value>");
        let info = DiscoInfoResult::try_from(odd.parse::<Element>().unwrap()).unwrap();
        assert_eq!(listing_occupants(&info), None);
    }

    fn listing_occupants(info: &DiscoInfoResult) -> Option<u32> {
        listing("r@muc.example.org".parse().unwrap(), info).occupants
    }
}

app-name = Tern
app-opening = Opening your history…

## Sign-in
login-subtitle = Sign in with your XMPP (Jabber) account
login-jid = Address
login-jid-placeholder = you@example.org
login-password = Password
login-advanced-show = Show advanced settings
login-advanced-hide = Hide advanced settings
login-host = Server
login-host-placeholder = found via DNS
login-port = Port
login-port-placeholder = 5222
login-direct-tls = Use direct TLS (XEP-0368) instead of STARTTLS
login-submit = Sign in
login-connecting = Signing in…
login-error-jid = Enter your full address, like you@example.org.
login-error-password = Enter your password.
login-error-port = The port must be a number from 1 to 65535.

## Connection
conn-online = Online
conn-connecting = Connecting…
conn-retrying = { $reason } — retrying in { $seconds } s
conn-offline = Offline
conn-offline-reason = Offline: { $reason }
conn-retry = Retry now
accounts-title = Accounts
accounts-add = Add account
accounts-all = All accounts
chat-via = { $detail } · via { $account }
accounts-add-cancel = Cancel
accounts-add-title = Add an account
notification-for-account = { $title } (to { $account })
accounts-remove = Remove
accounts-remove-ask = Remove { $account } from Tern? It is signed out and forgotten on this computer; the account itself stays on its server. Its messages on this computer:
accounts-remove-keep = Keep them
accounts-remove-delete = Delete them
accounts-choose = Open the chat with { $peer } from which account?
accounts-choose-with = With { $account }
sign-out = Sign out

failure-not-authorized = Wrong address or password.
failure-account-disabled = This account is disabled on its server.
failure-credentials-expired = The password of this account has expired: set a new one with your provider.
failure-temporary = The server cannot check your password right now; Tern will try again.
failure-refused = The server refused the sign-in ({ $condition }).
failure-server-said = { $reason } The server said: “{ $text }”
failure-server-unproven = The server could not prove that it knows your password, so Tern did not sign in: it may not be your account's server.
preview-encrypted = Encrypted message
message-encrypted = An encrypted message ({ $kind }). Tern cannot read encrypted messages yet: read it on a device that can.
failure-no-mechanism = The server offers no sign-in method Tern trusts.
failure-unknown-host = Server not found ({ $host }).
failure-unreachable = The server cannot be reached ({ $detail }).
failure-timeout = The server did not answer in time.
failure-certificate = The server's certificate is not trusted ({ $detail }).
failure-no-tls = The server does not offer encryption; Tern will not connect without it.
failure-lost = The connection was lost ({ $detail }).
failure-protocol = The server sent something unexpected ({ $detail }).

## Presence
presence-available = Available
presence-chat = Free to chat
presence-away = Away
presence-xa = Not available
presence-dnd = Busy
presence-offline = Offline
# The presence choice when the accounts announce different ones.
presence-several = Several
# Above the presence and status that go to every account (when there are several).
presence-every-account = On every account
status-placeholder = Status message

## Lists
tab-chats = Chats
tab-chats-unread = Chats ({ $count })
tab-contacts = Contacts ({ $count })
chats-empty = No conversations yet. Pick someone under Contacts to start one.
contacts-empty = Your contact list is empty.
contacts-add = + Add contact
contacts-add-jid = Address, like friend@example.org
contacts-add-name = Name (optional)
contacts-add-submit = Add
contacts-add-cancel = Cancel
contacts-add-error = Enter a valid address other than your own.
contacts-request = { $jid } wants to add you as a contact.
contacts-request-to = { $jid } wants to add { $account } as a contact.
contacts-accept = Accept
contacts-decline = Decline
tab-contacts-requests = Contacts ({ $count }) · { $requests } new
contacts-ungrouped = Other contacts
preview-you = You: { $text }
preview-draft = Draft: { $text }

## Conversation
chat-none-title = Start a chat
chat-none-hint = Choose a conversation or a contact on the left.
chat-empty = No messages with { $name } yet. Say hello!
chat-composer-placeholder = Message { $name }
chat-send = Send
chat-load-older = Load older messages
chat-loading-older = Loading…
chat-today = Today
chat-yesterday = Yesterday

## Delivery
state-pending = Waiting to be sent
state-sent = Sent to the server
state-delivered = Delivered
state-failed = Not delivered
message-failed = Not delivered: { $reason }
message-retry = Retry
message-shortened = Shortened: the whole message has { $total } characters.
message-copy-whole = Copy the whole message

## Errors that stop Tern
fatal-profile-in-use = This profile is already open in another Tern window. Close it, or start Tern with another --profile.
fatal-history = The message history cannot be opened: { $error }

## Files
attach-tooltip = Send a file
attach-title = Send files
drop-files = Drop files to send them to { $name }
upload-waiting = Waiting for the server…
upload-progress = { $percent } %
upload-cancel = Cancel
upload-retry = Retry
upload-dismiss = Dismiss
upload-failed = Upload failed: { $reason }
upload-no-tls = File sharing needs a secure connection, which could not be set up.
upload-no-service = Your server does not offer file sharing.
upload-offline = Not connected: try again once online.
upload-too-large = This file is { $size }; your server takes files up to { $max }.
upload-too-large-plain = Your server takes files up to { $max }.
upload-refused = The server refused the file: { $reason }
paste-name = Pasted image
paste-failed = Cannot send the pasted image: { $reason }
preview-loading = Loading preview…
preview-load = Show image
preview-failed = No preview: { $reason }
file-download = Download
file-downloading = Downloading… { $size }
file-downloading-of = Downloading… { $size } ({ $percent } %)
file-download-failed = Download failed: { $reason }
file-open = Open
file-show-folder = Show in folder
file-program-not-opened = A program: Tern does not run it. Open it from its folder only if you trust it.
preview-file = 📎 { $name }

## Notifications
notification-room = { $nick } in { $room }
notification-new-message = New message
notification-new-messages = { $count } new messages
notification-more = { $preview } (+{ $more } more)
notification-file = Sent a file
notification-open = Open chat

## Credentials
login-no-keyring = No credential store is available (such as GNOME Keyring or KWallet), so Tern cannot keep your password: enter it to sign in.
login-keyring-error = Your saved password could not be read: { $error }
login-remember-file = Keep the password in a file on this computer
login-remember-file-warning = The file is readable by your user account only, but it is not encrypted: anyone who gets a copy of it (a backup, an administrator) can read your password.
login-file-error = The password could not be kept in a file: { $error }

## Settings
settings = Settings
settings-title = Settings
settings-back = ← Back
settings-appearance = Appearance
settings-theme = Theme
settings-theme-system = Follow the system
settings-theme-light = Light
settings-theme-dark = Dark
settings-language = Language
settings-language-system = Follow the system
settings-notifications = Notifications
settings-notifications-enabled = Notify about new messages
settings-notifications-enabled-hint = When Tern's window is not in front.
settings-notifications-content = Show the message in notifications
settings-notifications-content-hint = Otherwise only who wrote is shown.
settings-files = Files
settings-download-dir = Download folder
settings-download-dir-title = Where to save downloaded files
settings-download-dir-choose = Choose…
settings-download-dir-default = Use the Downloads folder
settings-auto-images = Load images from contacts by themselves
settings-auto-images-hint = Secure links only; images from people outside your contacts load when you click them.
settings-image-limit = Largest image loaded by itself
settings-history = History
settings-catch-up-days = On a first sign-in on this computer, fetch
settings-catch-up-hint = Older messages load from the server when you scroll up.
settings-catch-up-messages = At most
settings-days = { $count ->
    [one] the last day
   *[other] the last { $count } days
}
settings-messages = { $count ->
    [one] { $count } message
   *[other] { $count } messages
}
settings-save-error = The settings could not be saved: { $error }
keyring-save-error = Your password could not be kept in the credential store ({ $error }): Tern will ask for it at the next start.
dismiss = Dismiss
login-remember = Remember my password on this computer

# The connection worker hit a bug
worker-restarted = Tern's connection stopped on a bug and was started again. Your messages are safe; if this keeps happening, please report it with the log.
worker-stopped = Tern's connection keeps stopping on a bug, so it stays offline until Tern is restarted. Your messages are safe; please report this with the log.

# Group chats (rooms).
room-join = + Join a room
room-join-address = Room address, like team@conference.example.org
room-join-nick = Your nickname in the room
room-join-password = Password (if the room has one)
room-join-submit = Join
room-join-invalid = Enter a room address, like team@conference.example.org.
room-joining = Joining…
room-not-joined = Not in this room
room-people = { $count ->
    [one] 1 person
   *[other] { $count } people
}
room-leave = Leave
room-role-moderators = Moderators
room-role-participants = Participants
room-role-visitors = Visitors
room-role-others = Others
room-error-nick = That nickname is taken in this room: choose another.
room-error-nick-invalid = Choose a nickname (letters, digits, spaces).
room-error-password = The room needs a password, or the password is wrong.
room-error-members = This room is for its members only: ask an owner to add you.
room-error-banned = You are banned from this room.
room-error-not-found = There is no such room on that service.
room-error-full = The room is full.
room-error-unreachable = The room's service cannot be reached ({ $reason }).
room-error-offline = Not connected: the room is joined once the account is online.
room-error-other = The room refused: { $reason }
room-left-kicked = You were removed from the room. { $reason }
room-left-banned = You were banned from the room. { $reason }
room-left-member = You were removed from the room: it is for members only now.
room-left-shutdown = The room's service went away; it is joined again when it is back.
room-private = Private messages, through { $room }
room-command-nobody = Nobody called “{ $nick }” is in the room.
room-command-no-address = The room does not show { $nick }'s address: give it instead (name@example.org).
room-command-address = “{ $address }” is not an address (name@example.org).
room-command-unknown = Unknown command /{ $command }. To send it as a message, begin with //.
room-refused = The room refused: { $reason }
room-invited = { $by } invites you into this room.
room-invited-reason = { $by } invites you into this room: “{ $reason }”
room-invited-decline = Decline
room-browse = Public rooms
room-create = New room
room-create-offer = Create this room
room-error-exists = A room with this address exists already: choose another address.
room-left-destroyed = The room was destroyed by its owner. { $reason }
room-left-destroyed-moved = The room was destroyed by its owner; it goes on at { $room }. { $reason }
room-panel-close = Close
room-directory-title = Public rooms
room-directory-service = Room service, like conference.example.org
room-directory-load = List rooms
room-directory-search = Search by name, address or description
room-directory-loading = Asking the service for its rooms…
room-directory-count = { $shown } of { $count } rooms
room-directory-failed = The service did not list its rooms: { $reason }
room-directory-invalid = Enter a room service's address, like conference.example.org.
room-directory-members = members only
room-directory-password = password
room-create-title = Create a room
room-create-name = Name
room-create-address = address
room-create-service = room service
room-create-group = Private group
room-create-group-about = For the people you invite; everyone in it sees each other's addresses.
room-create-channel = Public channel
room-create-channel-about = Listed on the service and open to anyone; only moderators see addresses.
room-create-submit = Create
room-create-creating = Creating…
room-create-no-name = Give the room a name.
room-create-invalid = Enter an address and a room service, like team @ conference.example.org.
room-settings = Room settings
room-settings-title = Room settings
room-settings-loading = Asking the room for its settings…
room-settings-description = Description
room-settings-members-only = Only members may enter
room-settings-public = Listed in the service's directory
room-settings-persistent = Stays when everyone has left
room-settings-moderated = Only people with a voice may speak
room-settings-addresses = Everyone sees the others' addresses
room-settings-invites = Anyone in the room may invite others
room-settings-password = Password
room-settings-password-none = No password
room-settings-save = Save
room-settings-saving = Saving…
room-settings-saved = Saved.
room-destroy = Destroy room
room-destroy-confirm = Everyone is removed and the room is gone for good. Press again to destroy it.
room-destroy-reason = Reason (told to everyone in it)
room-error-gone = This room was destroyed by its owner. { $reason }
room-create-address-label = Address
room-create-nick = Your nickname
room-notify-all = Notify: all messages
room-notify-mentions = Notify: mentions
room-notify-never = Notify: never
chat-unread-marker = New messages
room-activity-joined = { $names } joined
room-activity-left = { $names } left
room-activity-renamed = { $old } is now { $new }
room-activity-kicked = { $name } was removed from the room
room-activity-banned = { $name } was banned from the room
room-activity-no-member = { $name } is no longer a member
room-names-two = { $first } and { $second }
# Between the names of a list, before its last "and".
room-names-separator = {", "}
room-names-many = { $first } and { $last }
room-names-more = { $first } and { $count ->
    [one] 1 other
   *[other] { $count } others
}
room-images = Load images
room-images-tooltip = Images shared in this room load by themselves, as a contact's do. Leave it off in rooms of people you do not know: loading an image tells its server that you are reading.

//! A room's own archive (XEP-0313 on the room's JID): what the room said
//! while we were away, fetched after each join that has a position there, in
//! order, each message once. Older pages come through `archive::fetch_older`.

use super::archive::ARCHIVE_PAGE;
use super::incoming::reported;
use super::*;
use crate::conversation::Id as ConversationId;

/// Pages one catch-up of a room asks for before it stops (20,000 messages):
/// a bound on a room that pages on and on. The position stays where the
/// last page ended, so the next join goes on from there.
pub(super) const ROOM_CATCH_UP_PAGES: usize = 200;

/// A catch-up from one room's archive in progress (by query id in `Worker`).
pub(super) struct RoomCatchUp {
    pub(super) room: BareJid,
    /// The archive id the page being fetched starts after.
    after: Option<String>,
    /// The time the query starts from, when the archive forgot our position.
    start: Option<chrono::DateTime<Utc>>,
    /// The time the last stored message went under: the archive's stamps
    /// have whole seconds, and its order is the true one.
    last_time: Option<chrono::DateTime<Utc>>,
    /// Results of the page now arriving (see `archive::ARCHIVE_PAGE`).
    page_results: usize,
    pages_asked: usize,
    /// What this page stored, for the UI at the page's end.
    shown: Vec<Record>,
    stored: usize,
}

impl Worker {
    /// Asks the room's archive for everything after our position in it.
    pub(super) fn start_room_catch_up(
        &mut self,
        room: BareJid,
        pending: &mut Requests<Pending>,
    ) -> Vec<Stanza> {
        let conversation = ConversationId::room(self.account.clone(), room.clone());
        let after = match self.store.room_cursor(&conversation) {
            Ok(Some(after)) => after,
            Ok(None) => return vec![],
            Err(e) => {
                tracing::warn!("cannot read {room}'s archive position: {e}");
                return vec![];
            }
        };
        // Whatever the archive stamps, it goes after what we have.
        let last_time = self
            .store
            .page(&conversation, None, 1)
            .ok()
            .and_then(|page| page.records.last().map(|r| r.time));
        tracing::debug!("catching up with {room}'s archive after {after}");
        let catch_up = RoomCatchUp {
            room,
            after: Some(after),
            start: None,
            last_time,
            page_results: 0,
            pages_asked: 0,
            shown: Vec::new(),
            stored: 0,
        };
        self.ask_room_page(requests::new_id(), catch_up, pending)
    }

    /// Asks for the next page of a room's catch-up, kept under `query_id`.
    fn ask_room_page(
        &mut self,
        query_id: String,
        mut catch_up: RoomCatchUp,
        pending: &mut Requests<Pending>,
    ) -> Vec<Stanza> {
        catch_up.pages_asked += 1;
        catch_up.page_results = 0;
        let to = Jid::from(catch_up.room.clone());
        let query = self.archive_query(&query_id, catch_up.after.clone(), None, catch_up.start);
        let id = pending.add(
            Some(to.clone()),
            Pending::RoomArchive(query_id.clone()),
            Some(REPLY_TIMEOUT),
            Instant::now(),
        );
        self.room_catch_ups.insert(query_id, catch_up);
        vec![Iq::from_set(id, query).with_to(to).into()]
    }

    /// One message of a room's catch-up; whether the app is there.
    pub(super) fn on_room_archive_result(
        &mut self,
        from: Option<&Jid>,
        result: ArchiveResult,
    ) -> bool {
        let Some(query_id) = result.queryid.as_ref().map(|q| q.0.clone()) else {
            return true;
        };
        let Some(catch_up) = self.room_catch_ups.get_mut(&query_id) else {
            return true;
        };
        let room = catch_up.room.clone();
        // Only the room speaks for its archive (a query id can be guessed).
        if from.is_none_or(|f| f.as_str() != room.as_str()) {
            tracing::warn!("ignoring {room}'s archive results from {from:?}");
            return true;
        }
        catch_up.page_results += 1;
        if catch_up.page_results > ARCHIVE_PAGE {
            if catch_up.page_results == ARCHIVE_PAGE + 1 {
                tracing::warn!(
                    "{room}'s archive sent more than the {ARCHIVE_PAGE} results asked for"
                );
            }
            return true;
        }
        let Some(mut new) = self.archived_room_message(&room, result.forwarded, result.id, true)
        else {
            return true;
        };
        let Some(catch_up) = self.room_catch_ups.get_mut(&query_id) else {
            return true;
        };
        if let Some(last) = catch_up.last_time {
            new.time = new.time.max(last);
        }
        catch_up.last_time = Some(new.time);
        match self.store.insert(new) {
            Ok(Some(record)) => {
                catch_up.stored += 1;
                catch_up.shown.push(record);
            }
            // What came live since the join, or the reflection of ours.
            Ok(None) => {}
            Err(e) => tracing::error!("could not store a message of {room}'s archive: {e}"),
        }
        true
    }

    /// The end of a page of a room's catch-up (`fin`), or its failure
    /// (`None`, with the error if the room sent one).
    pub(super) fn on_room_archive_page(
        &mut self,
        query_id: &str,
        fin: Option<Fin>,
        error: Option<&StanzaError>,
        pending: &mut Requests<Pending>,
    ) -> (bool, Vec<Stanza>) {
        let Some(mut catch_up) = self.room_catch_ups.remove(query_id) else {
            return (true, vec![]);
        };
        let room = catch_up.room.clone();
        let conversation = ConversationId::room(self.account.clone(), room.clone());
        let shown = std::mem::take(&mut catch_up.shown);
        let alive = shown.is_empty() || self.emit(Event::Messages(reported(shown)));
        let Some(fin) = fin else {
            if let Some(error) = error {
                // The archive no longer has our position: from the time of
                // the newest message we hold instead (copies are dropped).
                if error.defined_condition == DefinedCondition::ItemNotFound
                    && catch_up.after.is_some()
                    && catch_up.pages_asked == 1
                {
                    tracing::warn!("{room}'s archive no longer knows our position");
                    catch_up.after = None;
                    catch_up.start = catch_up.last_time;
                    return (
                        alive,
                        self.ask_room_page(query_id.to_owned(), catch_up, pending),
                    );
                }
                // No archive (any more): the next join asks for the room's
                // history instead, and nothing moves the position meanwhile.
                tracing::warn!(
                    "{room}'s archive refused: {:?}; its join history is all there is",
                    error.defined_condition
                );
                if let Err(e) = self.store.clear_room_cursor(&conversation) {
                    tracing::warn!("cannot reset {room}'s archive position: {e}");
                }
            } else {
                // No answer, or no <fin/>: the position stays where the last
                // complete page left it, and the next join goes on from there.
                tracing::warn!("{room}'s archive catch-up cut short");
            }
            return (alive, vec![]);
        };
        if catch_up.page_results > ARCHIVE_PAGE {
            tracing::warn!("{room}'s archive catch-up cut short: a page larger than asked for");
            return (alive, vec![]);
        }
        // The page is stored: the position moves to its end.
        if let Some(last) = &fin.set.last
            && let Err(e) = self.store.set_room_cursor(&conversation, last)
        {
            tracing::warn!("cannot store {room}'s archive position: {e}");
            return (alive, vec![]);
        }
        match fin.set.last {
            Some(last) if !fin.complete && catch_up.after.as_ref() != Some(&last) => {
                if catch_up.pages_asked >= ROOM_CATCH_UP_PAGES {
                    tracing::warn!(
                        "{room}'s archive catch-up stopped after {} pages; the next join goes on",
                        catch_up.pages_asked
                    );
                    return (alive, vec![]);
                }
                catch_up.after = Some(last);
                catch_up.start = None;
                (
                    alive,
                    self.ask_room_page(query_id.to_owned(), catch_up, pending),
                )
            }
            _ => {
                tracing::info!(
                    "{room}'s archive catch-up done ({} messages)",
                    catch_up.stored
                );
                // From here on the room's live messages move the position.
                if let Some(state) = self.rooms.get_mut(&room)
                    && state.joined
                {
                    state.synced = true;
                }
                (alive, vec![])
            }
        }
    }
}

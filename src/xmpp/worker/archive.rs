//! Archive sync (XEP-0313): the catch-up after each new session, and older pages fetched on demand.

use super::incoming::{
    ARCHIVED_STEP, content, message_time, receipt_for, reported, stamp_time, stored_form,
};
use super::*;

/// A catch-up to try again (see `catch_up_cut_short`).
pub(super) struct CatchUpRetry {
    pub(super) at: Instant,
    /// Attempts cut short so far in this session.
    pub(super) attempts: u32,
}

/// Catch-ups cut short in one session before the worker waits for the next.
pub(super) const CATCH_UP_RETRIES: u32 = 8;

/// The first wait before a catch-up cut short is tried again; it doubles.
pub(super) const CATCH_UP_BACKOFF: Duration = Duration::from_secs(5);

pub(super) const CATCH_UP_BACKOFF_MAX: Duration = Duration::from_secs(300);

/// Archive pages one catch-up asks for before it stops (and, when that is
/// not the end, tries again later from where it got): a bound on a server
/// that pages on and on.
pub(super) const CATCH_UP_PAGES: usize = 500;

/// Older history of one conversation being fetched from its archive.
pub(super) struct OlderFetch {
    pub(super) conversation: crate::conversation::Id,
    /// The page's messages, oldest first, stored when the page is complete.
    pub(super) messages: Vec<NewMessage>,
    /// Pages fetched that held only copies of what we have.
    pub(super) empty_pages: u32,
    /// The oldest message shown: everything fetched goes before it.
    pub(super) before: Option<chrono::DateTime<Utc>>,
}

/// Pages of copies a fetch of older history skips before it gives up.
pub(super) const OLDER_EMPTY_PAGES: u32 = 5;

/// Messages asked of the server's archive per query page.
pub(super) const ARCHIVE_PAGE: usize = 100;

/// A catch-up from the server's archive (XEP-0313) in progress.
pub(super) struct CatchUp {
    /// The `queryid` results must carry; anything else is ignored.
    pub(super) query_id: String,
    pub(super) direction: Paging,
    /// Forward only: the time the last result was stored under.
    pub(super) last_time: Option<chrono::DateTime<Utc>>,
    /// Messages stored (forward) or collected (backward) by this catch-up so far.
    pub(super) stored: usize,
    /// Backward only: the pages collected so far, newest first. They are stored
    /// oldest first at the end, so that messages the archive stamped with the
    /// same second keep their order.
    pub(super) pages: Vec<Vec<NewMessage>>,
    /// Backward only: the newest archive id, where the next catch-up resumes.
    pub(super) newest: Option<String>,
    /// Forward only: messages the archive listed so far. It lists a message
    /// twice when its sender sent it again (an unacknowledged message after a
    /// reconnection); the first listing is where it belongs.
    pub(super) listed: HashSet<String>,
    /// Results of the page now arriving; a server sending more than
    /// [`ARCHIVE_PAGE`] is not believed (they would all be held in memory).
    pub(super) page_results: usize,
    /// Whether live messages wait for this catch-up (see `start_catch_up`).
    pub(super) holds_live: bool,
    /// Forward only: the archive id the page being fetched starts after.
    pub(super) after: Option<String>,
    /// The time the query starts from: the window of a first sign-in, or
    /// when the archive was last found empty.
    pub(super) start: Option<chrono::DateTime<Utc>>,
    /// Pages asked for so far (see `CATCH_UP_PAGES`).
    pub(super) pages_asked: usize,
}

pub(super) enum Paging {
    /// Everything after the last archive id we stored (normal sign-in).
    Forward,
    /// A first sign-in: newest pages first, back to a bounded window.
    Backward { limit: usize },
}

/// A query for the page of history before the archive id `before` (empty:
/// the newest), up to the second `end` when given (XEP-0313 §4.1.1): with
/// `with` in the account's archive, everything in a room's.
pub(super) fn older_query(
    query_id: &str,
    with: Option<&BareJid>,
    before: String,
    end: Option<chrono::DateTime<Utc>>,
) -> ArchiveQuery {
    let mut fields = Vec::new();
    if let Some(peer) = with {
        fields.push(Field::new("with", FieldType::JidSingle).with_value(peer.as_str()));
    }
    if let Some(end) = end {
        fields.push(Field::text_single(
            "end",
            &end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ));
    }
    ArchiveQuery {
        queryid: Some(QueryId(query_id.to_owned())),
        node: None,
        form: Some(DataForm::new(DataFormType::Submit, ns::MAM, fields)),
        set: Some(SetQuery {
            max: Some(ARCHIVE_PAGE),
            after: None,
            before: Some(before),
            index: None,
        }),
        flip_page: false,
    }
}

/// Whom an older page is filtered on: the peer in the account's archive;
/// nobody in a room's own archive, which holds only the room.
fn older_with(conversation: &crate::conversation::Id) -> Option<BareJid> {
    (conversation.kind() != Kind::Room).then(|| conversation.bare())
}

impl Worker {
    /// After the roster: initial presence, then catch-up from the archive.
    ///
    /// The order matters. Once the server has our presence it delivers new
    /// messages live; what it archived before (including messages sent while
    /// we had signed in but were not yet available, which Prosody does not
    /// always deliver later) comes from the catch-up query that follows.
    pub(super) fn announce(&mut self, pending: &mut Requests<Pending>) -> Vec<Stanza> {
        let mut stanzas = vec![self.own_presence().into()];
        stanzas.extend(self.start_catch_up(pending, true));
        stanzas.extend(self.fetch_bookmarks(pending));
        // XEP-0363 §2: the upload service is one of our server's items.
        let domain = Jid::from(self.account.domain().to_owned());
        let id = pending.add(
            Some(domain.clone()),
            Pending::DiscoItems,
            Some(REPLY_TIMEOUT),
            Instant::now(),
        );
        let query = Iq::from_get(
            id,
            DiscoItemsQuery {
                node: None,
                rsm: None,
            },
        )
        .with_to(domain);
        stanzas.push(query.into());
        stanzas
    }

    /// Starts catching up from the archive: after our last archive id, or, on a
    /// first sign-in, the newest messages back to the configured window.
    /// `holds_live`: live messages wait until it ends (the first catch-up of a
    /// session; a retry after one was cut short lets them through).
    pub(super) fn start_catch_up(
        &mut self,
        pending: &mut Requests<Pending>,
        holds_live: bool,
    ) -> Vec<Stanza> {
        let position = match self.store.archive_position(self.account.as_str()) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("cannot read the archive position: {e}");
                self.store_deferred();
                return vec![];
            }
        };
        // A window reaching past chrono's range (a hand-edited config) starts at its edge.
        let window_start = Utc::now()
            .checked_sub_signed(chrono::Duration::days(i64::from(self.window.days)))
            .unwrap_or(chrono::DateTime::<Utc>::MIN_UTC);
        let (paging, after, start) = match position {
            Some(ArchivePosition::After(id)) => (Paging::Forward, Some(id), None),
            Some(ArchivePosition::Since(time)) => (Paging::Forward, None, Some(time)),
            None => (
                Paging::Backward {
                    limit: self.window.max_messages,
                },
                None,
                Some(window_start),
            ),
        };
        let catch_up = CatchUp {
            query_id: requests::new_id(),
            direction: paging,
            last_time: None,
            stored: 0,
            pages: vec![Vec::new()],
            newest: None,
            listed: HashSet::new(),
            page_results: 0,
            holds_live,
            after: after.clone(),
            start,
            pages_asked: 1,
        };
        let query = match &catch_up.direction {
            Paging::Forward => self.archive_query(&catch_up.query_id, after, None, start),
            Paging::Backward { .. } => {
                self.archive_query(&catch_up.query_id, None, Some(String::new()), start)
            }
        };
        tracing::debug!("archive catch-up starts ({})", catch_up.query_id);
        self.catch_up = Some(catch_up);
        self.archive_iq(query, pending)
    }

    pub(super) fn archive_query(
        &self,
        query_id: &str,
        after: Option<String>,
        before: Option<String>,
        start: Option<chrono::DateTime<Utc>>,
    ) -> ArchiveQuery {
        let form = start.map(|start| {
            DataForm::new(
                DataFormType::Submit,
                ns::MAM,
                vec![Field::text_single(
                    "start",
                    &start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                )],
            )
        });
        ArchiveQuery {
            queryid: Some(QueryId(query_id.to_string())),
            node: None,
            form,
            set: Some(SetQuery {
                max: Some(ARCHIVE_PAGE),
                after,
                before,
                index: None,
            }),
            flip_page: false,
        }
    }

    pub(super) fn archive_iq(
        &mut self,
        query: ArchiveQuery,
        pending: &mut Requests<Pending>,
    ) -> Vec<Stanza> {
        let id = pending.add(None, Pending::Archive, Some(REPLY_TIMEOUT), Instant::now());
        vec![Iq::from_set(id, query).into()]
    }

    /// One message from an archive (XEP-0313 §4.2).
    pub(super) fn on_archive_result(
        &mut self,
        from: Option<&Jid>,
        result: ArchiveResult,
    ) -> (bool, Vec<Stanza>) {
        if let Some(query) = &result.queryid {
            if self.older.contains_key(&query.0) {
                self.on_older_result(from, result);
                return (true, vec![]);
            }
            if self.room_catch_ups.contains_key(&query.0) {
                return (self.on_room_archive_result(from, result), vec![]);
            }
        }
        // Results come from our own archive, for the query we are running.
        if from.is_some_and(|f| f.as_str() != self.account.as_str()) {
            tracing::warn!("ignoring archive results from {from:?}");
            return (true, vec![]);
        }
        let Some(catch_up) = &mut self.catch_up else {
            tracing::warn!("ignoring archive results with no query running");
            return (true, vec![]);
        };
        if result.queryid.as_ref().map(|q| q.0.as_str()) != Some(catch_up.query_id.as_str()) {
            tracing::warn!(
                "ignoring archive results for another query ({:?})",
                result.queryid
            );
            return (true, vec![]);
        }
        catch_up.page_results += 1;
        if catch_up.page_results > ARCHIVE_PAGE {
            if catch_up.page_results == ARCHIVE_PAGE + 1 {
                tracing::warn!("the archive sent more than the {ARCHIVE_PAGE} results asked for");
            }
            return (true, vec![]);
        }
        let backfill = matches!(catch_up.direction, Paging::Backward { .. });
        let mut inner = result.forwarded.message;
        let Some((peer, sent_by_us)) = self.archived_with(&inner) else {
            return (true, vec![]);
        };
        // Prosody archives receipts too: one that reached us while we were
        // away (or went to a resource of ours that no longer existed) is here.
        if !sent_by_us && let Ok(Some(receipt)) = inner.extract_payload::<Receipt>() {
            self.update_state(&self.chat(&peer), &receipt.id, Delivery::Delivered, None);
        }
        let Some((body, encryption)) = content(&inner) else {
            return (true, vec![]);
        };
        let mut time = match &result.forwarded.delay {
            Some(delay) => stamp_time(&delay.stamp),
            None => message_time(&mut inner),
        };
        if !sent_by_us {
            let stamped = time;
            time = self.in_order(&peer, time, true);
            tracing::trace!(
                "archive stamp {stamped} placed at {time} (session mark {:?})",
                self.session
            );
        }
        // Forward, the archive's order is the true one, across directions too
        // (a reply from our phone in the same second as what it answered).
        if let Some(catch_up) = &mut self.catch_up
            && matches!(catch_up.direction, Paging::Forward)
        {
            if let Some(last) = catch_up.last_time {
                time = time.max(last);
            }
            catch_up.last_time = Some(time);
        }
        let receipt = receipt_for(&mut inner);
        let other = if sent_by_us { &inner.to } else { &inner.from };
        let conversation = match other {
            Some(other) => self.conversation_with(&other.clone(), &inner),
            None => self.chat(&peer),
        };
        let mut new = stored_form(&conversation, &mut inner, body, time, sent_by_us);
        if !sent_by_us {
            new.sender = super::incoming::private_sender(&conversation, &inner);
        }
        tracing::trace!("archived message {} from {peer} at {time}", new.id);
        new.encryption = encryption;
        new.archive_id = Some(result.id);
        // Back-fill of a first sign-in is history, not news.
        new.unread &= !backfill;
        if backfill {
            if let Some(catch_up) = &mut self.catch_up {
                catch_up.stored += 1;
                if let Some(page) = catch_up.pages.last_mut() {
                    page.push(new);
                }
            }
            return (true, vec![]);
        }
        // A moved copy goes just after: same-time records keep storing order,
        // and it was stored before what the archive listed ahead of it.
        let (copy_id, copy_time) = (new.id.clone(), new.time + ARCHIVED_STEP);
        let listed_before = match &mut self.catch_up {
            Some(catch_up) => !catch_up.listed.insert(copy_id.clone()),
            None => false,
        };
        let alive = match self.store.insert(new) {
            Ok(Some(record)) => {
                if let Some(catch_up) = &mut self.catch_up {
                    catch_up.stored += 1;
                }
                self.emit(Event::Messages(reported([record])))
            }
            // A copy of what came live this session: the archive's order says
            // where it goes, after what the archive listed before it.
            Ok(None) if listed_before => true,
            Ok(None) if !sent_by_us => match self.session.map(|mark| {
                self.store
                    .move_after(&self.chat(&peer), &copy_id, copy_time, mark)
            }) {
                Some(Ok(Some((record, moved)))) => {
                    // What the archive lists next goes after this copy, wherever it is.
                    if let Some(catch_up) = &mut self.catch_up {
                        catch_up.last_time = catch_up.last_time.max(Some(record.time));
                    }
                    if moved {
                        tracing::trace!(
                            "moved {copy_id} from {peer} to {copy_time} (archive order)"
                        );
                        self.emit_updated(record)
                    } else {
                        true
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!("cannot reorder a message: {e}");
                    true
                }
                _ => true,
            },
            Ok(None) => true,
            Err(e) => {
                tracing::error!("could not store an archived message: {e}");
                return (true, vec![]);
            }
        };
        // A message we missed live has now arrived: say so, as we would have then.
        let replies = match receipt {
            Some(receipt) if !sent_by_us && self.contacts.contains(&peer) => vec![receipt],
            _ => vec![],
        };
        (alive, replies)
    }

    /// Who an archived message was exchanged with, and whether we sent it;
    /// `None` for what is not a one-to-one chat with someone else.
    pub(super) fn archived_with(&self, inner: &Message) -> Option<(BareJid, bool)> {
        if !matches!(inner.type_, MessageType::Chat | MessageType::Normal) {
            return None;
        }
        let sent_by_us = inner
            .from
            .as_ref()
            .is_some_and(|f| f.to_bare() == self.account);
        let peer = match (sent_by_us, &inner.to, &inner.from) {
            (true, Some(to), _) => to.to_bare(),
            (false, _, Some(from)) => from.to_bare(),
            _ => return None,
        };
        (peer != self.account).then_some((peer, sent_by_us))
    }

    /// Asks the conversation's archive for the page before `before`.
    ///
    /// From an archive id, RSM pages back from exactly there; from a time only
    /// (a message we sent from here has no id in our archive) the page ends at
    /// that second, and copies of what we hold are dropped on storing.
    pub(super) fn fetch_older(
        &mut self,
        conversation: crate::conversation::Id,
        before: Option<Oldest>,
        pending: &mut Requests<Pending>,
    ) -> Vec<Stanza> {
        if conversation.account() != &self.account || conversation.kind() == Kind::Private {
            // Nothing to page: say so, or the view waits for ever.
            tracing::debug!("no archive to page for {conversation:?}");
            self.emit(Event::History {
                conversation,
                records: vec![],
                more: false,
            });
            return vec![];
        }
        if self.older.values().any(|f| f.conversation == conversation) {
            return vec![]; // one at a time; the running one answers
        }
        let query_id = requests::new_id();
        let shown_from = before.as_ref().map(|b| b.time);
        let (before_id, end) = match before {
            Some(Oldest {
                archive_id: Some(id),
                ..
            }) => (id, None),
            // The end is inclusive but whole seconds: round up, never miss
            // what shares the oldest message's second (copies are dropped).
            Some(Oldest { time, .. }) => (String::new(), Some(time + chrono::Duration::seconds(1))),
            None => (String::new(), None),
        };
        tracing::debug!("fetching older history of {conversation:?} ({query_id})");
        let query = older_query(
            &query_id,
            older_with(&conversation).as_ref(),
            before_id,
            end,
        );
        self.older.insert(
            query_id.clone(),
            OlderFetch {
                conversation,
                messages: Vec::new(),
                empty_pages: 0,
                before: shown_from,
            },
        );
        self.older_iq(query_id, query, pending)
    }

    pub(super) fn older_iq(
        &mut self,
        query_id: String,
        query: ArchiveQuery,
        pending: &mut Requests<Pending>,
    ) -> Vec<Stanza> {
        // A room's archive is the room's; the account's is our server's.
        let to = self
            .older
            .get(&query_id)
            .filter(|f| f.conversation.kind() == Kind::Room)
            .map(|f| Jid::from(f.conversation.bare()));
        let id = pending.add(
            to.clone(),
            Pending::Older(query_id),
            Some(REPLY_TIMEOUT),
            Instant::now(),
        );
        let iq = Iq::from_set(id, query);
        vec![
            match to {
                Some(to) => iq.with_to(to),
                None => iq,
            }
            .into(),
        ]
    }

    /// One message of older history: kept with its fetch until the page ends.
    pub(super) fn on_older_result(&mut self, from: Option<&Jid>, result: ArchiveResult) {
        let Some(fetch) = result.queryid.as_ref().and_then(|q| self.older.get(&q.0)) else {
            return;
        };
        let conversation = fetch.conversation.clone();
        if conversation.kind() == Kind::Room {
            let room = conversation.bare();
            // Only the room speaks for its archive.
            if from.is_none_or(|f| f.as_str() != room.as_str()) {
                tracing::warn!("ignoring {room}'s older history from {from:?}");
                return;
            }
            let Some(new) = self.archived_room_message(&room, result.forwarded, result.id, false)
            else {
                return;
            };
            if let Some(fetch) = result.queryid.and_then(|q| self.older.get_mut(&q.0))
                && fetch.messages.len() < ARCHIVE_PAGE
            {
                fetch.messages.push(new);
            }
            return;
        }
        // Results from the account's archive come from the account.
        if from.is_some_and(|f| f.as_str() != self.account.as_str()) {
            tracing::warn!("ignoring archive results from {from:?}");
            return;
        }
        let expected = conversation.bare();
        let mut inner = result.forwarded.message;
        let Some((peer, sent_by_us)) = self.archived_with(&inner) else {
            return;
        };
        // We asked for one peer; the archive must not slip in another.
        if peer != expected {
            tracing::warn!("ignoring older history with {peer} in a fetch for {expected}");
            return;
        }
        let Some((body, encryption)) = content(&inner) else {
            return;
        };
        // History: its stamps are the order; nothing here is news.
        let time = match &result.forwarded.delay {
            Some(delay) => stamp_time(&delay.stamp),
            None => message_time(&mut inner),
        };
        let mut new = stored_form(&self.chat(&peer), &mut inner, body, time, sent_by_us);
        new.encryption = encryption;
        new.archive_id = Some(result.id);
        new.unread = false;
        if let Some(fetch) = result.queryid.and_then(|q| self.older.get_mut(&q.0)) {
            // We asked for a page; a server sending more is not believed.
            if fetch.messages.len() < ARCHIVE_PAGE {
                fetch.messages.push(new);
            }
        }
    }

    /// A page of older history ended (or failed): store it and tell the UI.
    ///
    /// A page of nothing but copies (paging from a second that many messages
    /// share) is skipped: the next page back is asked for at once.
    pub(super) fn on_older_page(
        &mut self,
        query_id: &str,
        fin: Option<Fin>,
        pending: &mut Requests<Pending>,
    ) -> (bool, Vec<Stanza>) {
        let Some(mut fetch) = self.older.remove(query_id) else {
            return (true, vec![]);
        };
        let mut records = Vec::new();
        let messages = std::mem::take(&mut fetch.messages);
        let count = messages.len();
        for (i, mut message) in messages.into_iter().enumerate() {
            // Archive stamps have whole seconds: older messages that share a
            // second with the oldest shown would be stored after it. They all
            // go before it, in the archive's order.
            if let Some(before) = fetch.before {
                let gap = i64::try_from(count - i).unwrap_or(0);
                message.time = message
                    .time
                    .min(before - chrono::Duration::microseconds(gap));
            }
            match self.store.insert(message) {
                Ok(Some(record)) => records.push(record),
                Ok(None) => {}
                Err(e) => tracing::error!("could not store older history: {e}"),
            }
        }
        let more = fin.as_ref().is_none_or(|f| !f.complete);
        if records.is_empty()
            && more
            && fetch.empty_pages < OLDER_EMPTY_PAGES
            && let Some(first) = fin.and_then(|f| f.set.first)
        {
            fetch.empty_pages += 1;
            let with = older_with(&fetch.conversation);
            let query = older_query(query_id, with.as_ref(), first.item, None);
            self.older.insert(query_id.to_owned(), fetch);
            return (true, self.older_iq(query_id.to_owned(), query, pending));
        }
        tracing::debug!(
            "older history of {:?}: {} new, more: {more}",
            fetch.conversation,
            records.len()
        );
        let alive = self.emit(Event::History {
            conversation: fetch.conversation,
            records: reported(records),
            more,
        });
        (alive, vec![])
    }

    /// The end of an archive page: remember how far we got, ask for the next one.
    pub(super) fn on_archive_page(
        &mut self,
        fin: Option<Fin>,
        pending: &mut Requests<Pending>,
    ) -> Vec<Stanza> {
        let Some(mut catch_up) = self.catch_up.take() else {
            return vec![];
        };
        let Some(fin) = fin else {
            self.catch_up_cut_short(catch_up, "an archive page without <fin/>");
            return vec![];
        };
        // What it sent beyond the page was dropped: the page's end is not where we are.
        if catch_up.page_results > ARCHIVE_PAGE {
            self.catch_up_cut_short(catch_up, "an archive page larger than asked for");
            return vec![];
        }
        catch_up.page_results = 0;
        // The page's messages arrived (and were stored) before its <fin/>.
        let next = match catch_up.direction {
            Paging::Forward => {
                if let Some(last) = &fin.set.last {
                    self.after_flush.cursor = Some(last.clone());
                }
                match (fin.complete, fin.set.last) {
                    (true, _) => None,
                    // A page that ends where it began would be asked for again forever.
                    (false, Some(last)) if catch_up.after.as_ref() != Some(&last) => {
                        if catch_up.pages_asked >= CATCH_UP_PAGES {
                            self.catch_up_cut_short(catch_up, "too many archive pages at once");
                            return vec![];
                        }
                        catch_up.after = Some(last.clone());
                        catch_up.pages_asked += 1;
                        Some(self.archive_query(&catch_up.query_id, Some(last), None, None))
                    }
                    (false, _) => {
                        self.catch_up_cut_short(catch_up, "the archive's pages do not advance");
                        return vec![];
                    }
                }
            }
            Paging::Backward { limit } => {
                // The first page back is the newest: catch-up resumes after it next time.
                if catch_up.newest.is_none() {
                    catch_up.newest = fin.set.last.clone();
                }
                catch_up.pages.push(Vec::new());
                match (fin.complete, fin.set.first) {
                    (false, Some(first))
                        if catch_up.stored < limit && catch_up.pages_asked < CATCH_UP_PAGES =>
                    {
                        catch_up.pages_asked += 1;
                        Some(self.archive_query(
                            &catch_up.query_id,
                            None,
                            Some(first.item),
                            catch_up.start,
                        ))
                    }
                    _ => None,
                }
            }
        };
        match next {
            Some(query) => {
                self.catch_up = Some(catch_up);
                self.archive_iq(query, pending)
            }
            None => {
                tracing::info!("archive catch-up done ({} messages)", catch_up.stored);
                self.synced = true;
                self.catch_up_retry = None;
                self.store_backfill(catch_up);
                self.store_deferred();
                vec![]
            }
        }
    }

    /// A catch-up that ended before the archive's end (an error, a page
    /// without `<fin/>`, no answer, pages that do not advance). The position
    /// stays after the last page stored, live messages are let through (shown,
    /// but not moving the position), and the catch-up is tried again later.
    pub(super) fn catch_up_cut_short(&mut self, catch_up: CatchUp, why: &str) {
        let attempts = self.catch_up_retry.as_ref().map_or(0, |r| r.attempts) + 1;
        if attempts > CATCH_UP_RETRIES {
            tracing::warn!("archive catch-up cut short ({why}); given up until the next session");
            self.catch_up_retry = None;
        } else {
            let wait = CATCH_UP_BACKOFF
                .saturating_mul(1 << (attempts - 1).min(6))
                .min(CATCH_UP_BACKOFF_MAX);
            tracing::warn!(
                "archive catch-up cut short ({why}); trying again in {} s",
                wait.as_secs()
            );
            self.catch_up_retry = Some(CatchUpRetry {
                at: Instant::now() + wait,
                attempts,
            });
        }
        self.store_backfill(catch_up);
        self.store_deferred();
    }

    /// Starts the catch-up again if one was cut short and its time has come.
    pub(super) fn retry_catch_up(
        &mut self,
        pending: &mut Requests<Pending>,
        now: Instant,
    ) -> Vec<Stanza> {
        match &self.catch_up_retry {
            Some(retry) if retry.at <= now && self.catch_up.is_none() => {
                tracing::info!("archive catch-up: attempt {}", retry.attempts + 1);
                // The attempt count stays until a catch-up completes.
                if let Some(retry) = &mut self.catch_up_retry {
                    retry.at = now + CATCH_UP_BACKOFF_MAX;
                }
                self.start_catch_up(pending, false)
            }
            _ => vec![],
        }
    }

    /// Stores a first sign-in's history, oldest page first; once it is on
    /// disk, the next catch-up resumes after the newest of it. An archive that
    /// had nothing in the window: the next catch-up takes all since then.
    pub(super) fn store_backfill(&mut self, catch_up: CatchUp) {
        if let Paging::Backward { .. } = catch_up.direction {
            match (catch_up.newest, catch_up.start) {
                (Some(newest), _) => self.after_flush.cursor = Some(newest),
                // Only a complete answer proves the window empty.
                (None, Some(start)) if self.synced => {
                    if let Err(e) = self.store.set_archive_since(self.account.as_str(), start) {
                        tracing::warn!("cannot store the archive position: {e}");
                    }
                }
                _ => {}
            }
        }
        let mut shown = Vec::new();
        for message in catch_up.pages.into_iter().rev().flatten() {
            match self.store.insert(message) {
                Ok(Some(record)) => shown.push(record),
                Ok(None) => {}
                Err(e) => tracing::error!("could not store an archived message: {e}"),
            }
        }
        if !shown.is_empty() {
            self.emit(Event::Backfill(reported(shown)));
        }
    }

    /// The archive refused a query: an unknown position means our cursor
    /// expired (start again from the window); anything else, try again later.
    pub(super) fn on_archive_error(
        &mut self,
        error: &StanzaError,
        pending: &mut Requests<Pending>,
    ) -> Vec<Stanza> {
        let Some(catch_up) = self.catch_up.take() else {
            return vec![];
        };
        let forward = matches!(catch_up.direction, Paging::Forward);
        if forward
            && catch_up.after.is_some()
            && catch_up.pages_asked == 1
            && error.defined_condition == DefinedCondition::ItemNotFound
        {
            tracing::warn!("the archive no longer knows our position");
            self.store_backfill(catch_up);
            self.store_deferred();
            return self.restart_from_window(pending);
        }
        let why = format!("the archive refused a page: {:?}", error.defined_condition);
        self.catch_up_cut_short(catch_up, &why);
        vec![]
    }

    /// Forgets the archive position and fetches the first-sign-in window instead.
    pub(super) fn restart_from_window(&mut self, pending: &mut Requests<Pending>) -> Vec<Stanza> {
        self.after_flush.cursor = None;
        if let Err(e) = self.store.clear_archive_cursor(self.account.as_str()) {
            tracing::warn!("cannot reset the archive position: {e}");
            return vec![];
        }
        self.start_catch_up(pending, false)
    }
}

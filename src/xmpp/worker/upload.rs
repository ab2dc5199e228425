//! Finding the server's file sharing service (service discovery) and asking it for upload slots (XEP-0363).

use super::*;

/// Items of our server asked about when looking for its upload service.
pub(super) const DISCO_ITEMS_MAX: usize = 32;

impl Worker {
    /// Our server's items: ask each what it is, looking for file sharing.
    pub(super) fn on_disco_items(
        &mut self,
        items: Option<DiscoItemsResult>,
        pending: &mut Requests<Pending>,
    ) -> (bool, Vec<Stanza>) {
        let items = items.map(|r| r.items).unwrap_or_default();
        let mut stanzas = Vec::new();
        for item in items
            .into_iter()
            .filter(|i| i.node.is_none())
            .take(DISCO_ITEMS_MAX)
        {
            let id = pending.add(
                Some(item.jid.clone()),
                Pending::DiscoInfo(item.jid.clone()),
                Some(REPLY_TIMEOUT),
                Instant::now(),
            );
            let query = Iq::from_get(id, DiscoInfoQuery { node: None }).with_to(item.jid);
            stanzas.push(query.into());
        }
        self.discovering = stanzas.len();
        if stanzas.is_empty() {
            let alive = self.emit(Event::UploadService(None))
                && self.emit(Event::Directory(crate::xmpp::room::Directory::Service(
                    None,
                )));
            return (alive, vec![]);
        }
        (true, stanzas)
    }

    /// One item's identity: the first that does XEP-0363 is our upload service.
    pub(super) fn on_disco_info(&mut self, jid: Jid, info: Option<DiscoInfoResult>) -> bool {
        self.discovering = self.discovering.saturating_sub(1);
        if !self.on_room_service(&jid, info.as_ref()) {
            return false;
        }
        if self.upload.is_some() {
            return true;
        }
        if let Some(info) = info.filter(|i| i.features.contains(ns::HTTP_UPLOAD)) {
            // §2: the limit, if any, is in a form of the XEP's namespace.
            let max_size = info
                .extensions
                .iter()
                .filter(|form| form.form_type() == Some(ns::HTTP_UPLOAD))
                .flat_map(|form| form.fields.iter())
                .find(|field| field.var.as_deref() == Some("max-file-size"))
                .and_then(|field| field.values.first())
                .and_then(|value| value.trim().parse::<u64>().ok());
            match max_size {
                Some(max) => tracing::info!("file sharing at {jid}, up to {max} bytes"),
                None => tracing::info!("file sharing at {jid}, no size limit given"),
            }
            let service = UploadService { jid, max_size };
            self.upload = Some(service.clone());
            return self.emit(Event::UploadService(Some(service)));
        }
        if self.discovering == 0 {
            tracing::info!("the server offers no file sharing");
            return self.emit(Event::UploadService(None));
        }
        true
    }

    /// Asks the upload service for a slot; refuses at once what it could not take.
    pub(super) fn request_slot(
        &mut self,
        id: String,
        name: String,
        size: u64,
        content_type: String,
        pending: &mut Requests<Pending>,
    ) -> Vec<Stanza> {
        let Some(service) = self.upload.clone() else {
            self.emit(Event::Slot {
                id,
                result: Err(SlotError::NoService),
            });
            return vec![];
        };
        if let Some(max) = service.max_size
            && size > max
        {
            self.emit(Event::Slot {
                id,
                result: Err(SlotError::TooLarge { max }),
            });
            return vec![];
        }
        let iq_id = pending.add(
            Some(service.jid.clone()),
            Pending::Slot(id),
            Some(REPLY_TIMEOUT),
            Instant::now(),
        );
        let request = SlotRequest {
            filename: crate::file_name::safe_file_name(&name),
            size,
            content_type: Some(content_type),
        };
        vec![Iq::from_get(iq_id, request).with_to(service.jid).into()]
    }

    /// The service's slot: only HTTPS places are used (XEP-0363 §11).
    pub(super) fn on_slot(&mut self, id: String, slot: Option<SlotResult>) -> bool {
        let result = match slot {
            Some(slot)
                if slot.put.url.starts_with("https://") && slot.get.url.starts_with("https://") =>
            {
                Ok(crate::xmpp::Slot {
                    put: slot.put.url,
                    get: slot.get.url,
                    headers: slot
                        .put
                        .headers
                        .into_iter()
                        .map(|h| (h.name.as_str().to_owned(), h.value))
                        .collect(),
                })
            }
            Some(_) => Err(SlotError::Refused("the slot is not https".into())),
            None => Err(SlotError::Refused("an unreadable slot".into())),
        };
        self.emit(Event::Slot { id, result })
    }
}

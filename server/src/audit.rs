//! `weft-relay docs history`: a document's changes, newest first, each with the author its
//! writer claimed and the user whose connection delivered it to this relay.
//!
//! What the record guarantees: with tokens on, the relay writes down, with the change (in
//! its SQLite transaction, or with the retry if that write failed), the subject of the token whose connection first delivered it.
//! A peer cannot forge that: it names the token, not anything the peer says. It vouches
//! for who *delivered* the change, not who wrote it: the author in a change is what the
//! writing device claims, and a change written by ana can reach the relay through bo's
//! device (device to device, then bo syncs). So an author that differs from the deliverer
//! is shown, for a person to judge. Changes that came through another relay are recorded
//! as delivered by that relay's token.

use weft::{ChangeInfo, DocumentId, Repo, store::Arrival};

/// One change with its arrival record, if the relay has one.
pub(crate) struct Entry {
    pub(crate) change: ChangeInfo,
    pub(crate) arrival: Option<Arrival>,
}

/// The newest `limit` changes of `id` with their arrival records.
pub(crate) async fn history(
    repo: &Repo,
    id: DocumentId,
    limit: usize,
) -> Result<Vec<Entry>, weft::Error> {
    let handle = repo.find(id).await?;
    let page = handle.history(None, limit).await?;
    let hashes = page.changes.iter().map(|change| change.hash).collect();
    let mut arrivals = repo.arrivals(id, hashes).await?.into_iter().peekable();
    Ok(page
        .changes
        .into_iter()
        .map(|change| {
            let arrival = arrivals.next_if(|arrival| arrival.change == change.hash);
            Entry { change, arrival }
        })
        .collect())
}

impl Entry {
    /// Whether the author the change claims is not the user who delivered it.
    fn disputed(&self) -> bool {
        match (&self.change.author, &self.arrival) {
            (Some(author), Some(arrival)) => *author != arrival.user,
            _ => false,
        }
    }

    /// One line for a person: time, hash, author, deliverer, size, message.
    pub(crate) fn text(&self) -> String {
        let change = &self.change;
        let mut line = format!(
            "{}  {}  author={}  delivered-by={}  ops={}",
            utc(change.time),
            change.hash,
            change.author.as_deref().unwrap_or("-"),
            self.arrival.as_ref().map_or("-", |a| a.user.as_str()),
            change.ops,
        );
        if let Some(message) = &change.message {
            line.push_str(&format!("  {message:?}"));
        }
        if self.disputed() {
            line.push_str("  (the author it claims did not deliver it)");
        }
        line
    }

    /// One JSON object.
    pub(crate) fn json(&self) -> serde_json::Value {
        let change = &self.change;
        serde_json::json!({
            "hash": change.hash.to_string(),
            "time": change.time,
            "author": change.author,
            "delivered_by": self.arrival.as_ref().map(|a| &a.user),
            "received_at_ms": self.arrival.as_ref().map(|a| a.received_at),
            "ops": change.ops,
            "message": change.message,
            "deps": change.deps.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "disputed": self.disputed(),
        })
    }
}

/// `seconds` since the Unix epoch as an ISO 8601 UTC time (`-` for an unstamped change).
fn utc(seconds: i64) -> String {
    if seconds == 0 {
        return "-".to_owned();
    }
    let (days, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Days to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn times_read_as_utc() {
        assert_eq!(utc(0), "-");
        assert_eq!(utc(1), "1970-01-01T00:00:01Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_795_000_000), "2026-11-18T11:06:40Z");
    }
}

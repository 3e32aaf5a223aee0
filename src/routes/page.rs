//! Keyset paging for every list a client can ask for: `limit` (1..=100, default 50) and an opaque
//! `cursor` taken from the previous page's `nextCursor`, newest first. A cursor names the last row
//! seen, not an offset, so rows inserted meanwhile never shift a page or show up twice, and every
//! page is an index range scan however deep it is.

use chrono::{DateTime, SecondsFormat, Utc};
use uuid::Uuid;

use crate::error::ApiError;
use crate::store::Keyset;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 100;

pub struct Page {
    pub limit: u32,
    cursor: Option<String>,
}

fn invalid_cursor() -> ApiError {
    ApiError::bad_request("invalid_cursor", "cursor: not a cursor this API returned")
}

/// Hex of a small text: opaque to clients, and any change to it shows as a 400.
fn encode(text: String) -> String {
    hex::encode(text)
}

fn decode(cursor: &str) -> Result<String, ApiError> {
    hex::decode(cursor).ok().and_then(|bytes| String::from_utf8(bytes).ok()).ok_or_else(invalid_cursor)
}

pub fn time_cursor(at: DateTime<Utc>, id: Uuid) -> String {
    encode(format!("t:{}/{id}", at.to_rfc3339_opts(SecondsFormat::Nanos, true)))
}

pub fn version_cursor(version: i64) -> String {
    encode(format!("v:{version}"))
}

impl Page {
    /// `limit` outside 1..=100 is a 400 `invalid_query` (as a non-numeric one already is).
    pub fn parse(limit: Option<u32>, cursor: Option<String>) -> Result<Page, ApiError> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::bad_request("invalid_query", format!("limit: must be from 1 to {MAX_LIMIT}")));
        }
        Ok(Page { limit, cursor: cursor.filter(|c| !c.is_empty()) })
    }

    /// Rows to fetch: one more than the page, to learn whether another page follows.
    pub fn fetch(&self) -> u32 {
        self.limit + 1
    }

    /// The (time, id) position after which this page starts, for lists ordered by both.
    pub fn after_time(&self) -> Result<Option<Keyset>, ApiError> {
        let Some(cursor) = &self.cursor else { return Ok(None) };
        let text = decode(cursor)?;
        let (at, id) = text.strip_prefix("t:").and_then(|rest| rest.split_once('/')).ok_or_else(invalid_cursor)?;
        let at = DateTime::parse_from_rfc3339(at).map_err(|_| invalid_cursor())?.with_timezone(&Utc);
        let id = Uuid::parse_str(id).map_err(|_| invalid_cursor())?;
        Ok(Some(Keyset { at, id }))
    }

    /// The ledger version below which this page starts.
    pub fn after_version(&self) -> Result<Option<i64>, ApiError> {
        let Some(cursor) = &self.cursor else { return Ok(None) };
        let text = decode(cursor)?;
        let version = text.strip_prefix("v:").and_then(|v| v.parse::<i64>().ok()).filter(|v| *v > 0);
        version.map(Some).ok_or_else(invalid_cursor)
    }

    /// Keeps the page out of the `fetch()` rows and, when more follow, the cursor of its last row.
    pub fn finish<T>(&self, mut rows: Vec<T>, cursor_of: impl Fn(&T) -> String) -> (Vec<T>, Option<String>) {
        let more = rows.len() > self.limit as usize;
        rows.truncate(self.limit as usize);
        let next = if more { rows.last().map(cursor_of) } else { None };
        (rows, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let at = DateTime::parse_from_rfc3339("2026-12-15T10:11:12.123456789Z").unwrap().with_timezone(&Utc);
        let id = Uuid::new_v4();
        let page = Page::parse(None, Some(time_cursor(at, id))).unwrap();
        assert_eq!(page.limit, DEFAULT_LIMIT);
        let keyset = page.after_time().unwrap().unwrap();
        assert_eq!((keyset.at, keyset.id), (at, id));
        assert_eq!(Page::parse(Some(7), Some(version_cursor(42))).unwrap().after_version().unwrap(), Some(42));
        assert!(Page::parse(None, Some(String::new())).unwrap().after_time().unwrap().is_none());
        for bad in ["zz", "abc", &hex::encode("t:yesterday/x"), &version_cursor(5), &hex::encode("v:0")] {
            let page = Page::parse(None, Some(bad.to_string())).unwrap();
            let time_err = page.after_time().is_err();
            let version_err = page.after_version().is_err();
            assert!(time_err && (version_err || *bad == version_cursor(5)), "{bad}");
        }
        for limit in [0, 101] {
            assert!(Page::parse(Some(limit), None).is_err(), "{limit}");
        }
        assert!(Page::parse(Some(100), None).is_ok());
    }

    #[test]
    fn finish_tells_whether_another_page_follows() {
        let page = Page::parse(Some(2), None).unwrap();
        assert_eq!(page.finish(vec![1, 2, 3], |n| n.to_string()), (vec![1, 2], Some("2".into())));
        assert_eq!(page.finish(vec![1, 2], |n| n.to_string()), (vec![1, 2], None));
        assert_eq!(page.finish(Vec::<u8>::new(), |n| n.to_string()), (vec![], None));
    }
}

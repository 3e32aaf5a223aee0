//! Keyset paging for every list a client can ask for: `limit` (1..=100, default 50) and an opaque
//! `cursor` taken from the previous page's `nextCursor`, newest first. A cursor names the last row
//! seen, not an offset, so rows inserted meanwhile never shift a page or show up twice, and every
//! page is an index range scan however deep it is.
//!
//! A cursor is the hex of a small text: `t:<unix seconds>.<nanoseconds>/<uuid>` for lists ordered
//! by (time, id), `v:<version>` for the ledger. Every string its documented `pattern` admits is a
//! position the API accepts (any position is a valid place to continue from), and everything else
//! is a 400 `invalid_cursor`: the contract and the code agree on exactly which cursors exist.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::error::ApiError;
use crate::store::Keyset;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 100;

/// The documented `pattern`s of the two kinds of cursors (the `#[param]` attributes below must
/// spell them as literals; a test holds them equal). Either admits the empty string: the first page.
#[cfg(test)]
const TIME_CURSOR_PATTERN: &str = "^(743a(3[0-9]){1,11}2e(3[0-9]){9}2f(3[0-9]|6[1-6]){8}2d(3[0-9]|6[1-6]){4}2d(3[0-9]|6[1-6]){4}2d(3[0-9]|6[1-6]){4}2d(3[0-9]|6[1-6]){12})?$";
#[cfg(test)]
const VERSION_CURSOR_PATTERN: &str = "^(763a3[1-9](3[0-9]){0,17})?$";

/// `limit` and `cursor` of a list ordered by time (the inventory, the seed pair history).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1 to 100 (default 50); outside that range 400 `invalid_query`.
    #[param(minimum = 1, maximum = 100, default = 50)]
    pub limit: Option<u32>,
    /// The previous page's `nextCursor`; omit it (or send it empty) for the newest page. Pages are
    /// keyset-based, newest first, so rows added meanwhile never shift or repeat a page. Opaque:
    /// anything but a cursor of this list is 400 `invalid_cursor`.
    #[param(
        pattern = "^(743a(3[0-9]){1,11}2e(3[0-9]){9}2f(3[0-9]|6[1-6]){8}2d(3[0-9]|6[1-6]){4}2d(3[0-9]|6[1-6]){4}2d(3[0-9]|6[1-6]){4}2d(3[0-9]|6[1-6]){12})?$"
    )]
    pub cursor: Option<String>,
}

/// `limit` and `cursor` of the ledger, ordered by balance version.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VersionPageQuery {
    /// Page size, 1 to 100 (default 50); outside that range 400 `invalid_query`.
    #[param(minimum = 1, maximum = 100, default = 50)]
    pub limit: Option<u32>,
    /// The previous page's `nextCursor`; omit it (or send it empty) for the newest page. Opaque:
    /// anything but a cursor of this list is 400 `invalid_cursor`.
    #[param(pattern = "^(763a3[1-9](3[0-9]){0,17})?$")]
    pub cursor: Option<String>,
}

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

/// Lowercase hex only, as the documented patterns say (`hex::decode` would take uppercase too).
fn decode(cursor: &str) -> Result<String, ApiError> {
    if !cursor.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(invalid_cursor());
    }
    hex::decode(cursor).ok().and_then(|bytes| String::from_utf8(bytes).ok()).ok_or_else(invalid_cursor)
}

fn digits(text: &str, lengths: std::ops::RangeInclusive<usize>) -> bool {
    lengths.contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit())
}

pub fn time_cursor(at: DateTime<Utc>, id: Uuid) -> String {
    encode(format!("t:{}.{:09}/{id}", at.timestamp(), at.timestamp_subsec_nanos()))
}

pub fn version_cursor(version: i64) -> String {
    encode(format!("v:{version}"))
}

/// The (time, id) a time cursor's text names, when it has exactly the documented shape.
fn parse_time(text: &str) -> Option<Keyset> {
    let (at, id) = text.strip_prefix("t:")?.split_once('/')?;
    let (secs, nanos) = at.split_once('.')?;
    if !digits(secs, 1..=11) || !digits(nanos, 9..=9) {
        return None;
    }
    let is_hyphenated_lowercase = id.len() == 36 && !id.bytes().any(|b| b.is_ascii_uppercase());
    let id = Uuid::parse_str(id).ok().filter(|_| is_hyphenated_lowercase)?;
    let at = DateTime::from_timestamp(secs.parse().ok()?, nanos.parse().ok()?)?;
    Some(Keyset { at, id })
}

/// The version a ledger cursor's text names: 1 to 18 digits, no leading zero.
fn parse_version(text: &str) -> Option<i64> {
    let version = text.strip_prefix("v:")?;
    (digits(version, 1..=18) && !version.starts_with('0')).then(|| version.parse().ok())?
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
        parse_time(&decode(cursor)?).map(Some).ok_or_else(invalid_cursor)
    }

    /// The ledger version below which this page starts.
    pub fn after_version(&self) -> Result<Option<i64>, ApiError> {
        let Some(cursor) = &self.cursor else { return Ok(None) };
        parse_version(&decode(cursor)?).map(Some).ok_or_else(invalid_cursor)
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

    /// The documented patterns and the decoders agree: every cursor the API makes matches its
    /// pattern, and strings built to match a pattern decode (any position is a page start).
    #[test]
    fn cursors_are_exactly_what_the_documented_patterns_admit() {
        let time = regex::Regex::new(TIME_CURSOR_PATTERN).unwrap();
        let version = regex::Regex::new(VERSION_CURSOR_PATTERN).unwrap();
        let (query, version_query) = (
            serde_json::to_value(<PageQuery as utoipa::IntoParams>::into_params(|| None)).unwrap(),
            serde_json::to_value(<VersionPageQuery as utoipa::IntoParams>::into_params(|| None)).unwrap(),
        );
        assert_eq!(query[1]["schema"]["pattern"], TIME_CURSOR_PATTERN, "the #[param] literal is the constant");
        assert_eq!(version_query[1]["schema"]["pattern"], VERSION_CURSOR_PATTERN);

        for (secs, nanos) in [(0, 0), (1_796_233_451, 712_475_982), (99_999_999_999, 999_999_999)] {
            let at = DateTime::from_timestamp(secs, nanos).unwrap();
            let cursor = time_cursor(at, Uuid::new_v4());
            assert!(time.is_match(&cursor) && !version.is_match(&cursor), "{cursor}");
            let keyset = Page::parse(None, Some(cursor)).unwrap().after_time().unwrap().unwrap();
            assert_eq!(keyset.at, at);
        }
        for v in [1, 42, 999_999_999_999_999_999] {
            let cursor = version_cursor(v);
            assert!(version.is_match(&cursor) && !time.is_match(&cursor), "{cursor}");
        }
        // Hand-made texts of the documented shapes, as a tester generating from the pattern would.
        let made = [
            ("t:00000000000.000000000/00000000-0000-0000-0000-000000000000", true),
            ("t:5.123456789/ffffffff-ffff-ffff-ffff-ffffffffffff", true),
            ("v:100000000000000000", false),
        ];
        for (text, is_time) in made {
            let cursor = hex::encode(text);
            let page = Page::parse(None, Some(cursor.clone())).unwrap();
            if is_time {
                assert!(time.is_match(&cursor) && page.after_time().is_ok(), "{text}");
            } else {
                assert!(version.is_match(&cursor) && page.after_version().is_ok(), "{text}");
            }
        }
        // Near misses are refused by both.
        for text in [
            "t:5.12345678/ffffffff-ffff-ffff-ffff-ffffffffffff",
            "t:5.123456789/FFFFFFFF-ffff-ffff-ffff-ffffffffffff",
            "v:0",
            "v:01",
        ] {
            let cursor = hex::encode(text);
            assert!(!time.is_match(&cursor) && !version.is_match(&cursor), "{text}");
            let page = Page::parse(None, Some(cursor)).unwrap();
            assert!(page.after_time().is_err() && page.after_version().is_err(), "{text}");
        }
        let upper = version_cursor(7).to_uppercase();
        assert!(!version.is_match(&upper) && Page::parse(None, Some(upper)).unwrap().after_version().is_err());
    }

    #[test]
    fn finish_tells_whether_another_page_follows() {
        let page = Page::parse(Some(2), None).unwrap();
        assert_eq!(page.finish(vec![1, 2, 3], |n| n.to_string()), (vec![1, 2], Some("2".into())));
        assert_eq!(page.finish(vec![1, 2], |n| n.to_string()), (vec![1, 2], None));
        assert_eq!(page.finish(Vec::<u8>::new(), |n| n.to_string()), (vec![], None));
    }
}

//! Money is integer cents everywhere inside the service. JSON carries major units (`12.5` means
//! 12.50) because that is what the existing front ends send and show, so the conversion happens
//! exactly once, at the edge, on the *text* of the number: parsing through `f64` would silently
//! accept `0.1 + 0.2`-style noise and round over-precise amounts instead of refusing them.

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use std::fmt;

/// The largest amount the API accepts or shows in one field: 100,000,000.00.
pub const MAX_CENTS: i64 = 10_000_000_000;

/// An exact amount of money in cents. Signed, because ledger rows carry debits as negatives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cents(pub i64);

impl Cents {
    pub const ZERO: Cents = Cents(0);

    pub fn as_i64(self) -> i64 {
        self.0
    }
}

impl std::ops::Neg for Cents {
    type Output = Cents;
    fn neg(self) -> Cents {
        Cents(-self.0)
    }
}

impl fmt::Display for Cents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

/// Serialized as a JSON number in major units. `f64` holds every cent value up to 2^53 exactly
/// enough that the shortest round-trip form is the 2-decimal one (`1999` → `19.99`).
impl Serialize for Cents {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0 as f64 / 100.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("must be a number, not a string, null or other JSON value")]
    NotANumber,
    #[error("must be a plain decimal number with at most 2 decimals")]
    TooPrecise,
    #[error("must not be negative")]
    Negative,
    #[error("must be greater than 0")]
    Zero,
    #[error("must be at most 100000000.00")]
    TooLarge,
}

/// Parses the JSON text of a number (`"12.5"`, `"3"`, `"0.07"`) into exact cents.
///
/// Exponent notation is refused rather than expanded: no client of this API writes money that
/// way, and `1e-7` is exactly the kind of over-precise value we must reject.
pub fn parse_major_units(text: &str) -> Result<Cents, MoneyError> {
    let text = text.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let first = digits.chars().next();
    if !matches!(first, Some('0'..='9')) {
        return Err(MoneyError::NotANumber);
    }
    if !whole.chars().all(|c| c.is_ascii_digit())
        || !fraction.chars().all(|c| c.is_ascii_digit())
        || (digits.contains('.') && fraction.is_empty())
    {
        return Err(MoneyError::TooPrecise);
    }
    let fraction = fraction.trim_end_matches('0');
    if fraction.len() > 2 {
        return Err(MoneyError::TooPrecise);
    }
    let whole = whole.trim_start_matches('0');
    if whole.len() > 9 {
        return Err(MoneyError::TooLarge);
    }
    let whole: i64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| MoneyError::TooLarge)? };
    let cents_part: i64 = format!("{fraction:0<2}").parse().unwrap_or(0);
    let cents = whole * 100 + cents_part;
    if negative && cents != 0 {
        return Err(MoneyError::Negative);
    }
    if cents > MAX_CENTS {
        return Err(MoneyError::TooLarge);
    }
    Ok(Cents(cents))
}

fn deserialize_cents<'de, D: Deserializer<'de>>(d: D) -> Result<Cents, D::Error> {
    let raw = Box::<RawValue>::deserialize(d)?;
    parse_major_units(raw.get()).map_err(de::Error::custom)
}

/// A strictly positive amount: deposits, withdrawals, prices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Amount(Cents);

impl Amount {
    pub fn new(cents: Cents) -> Result<Self, MoneyError> {
        match cents.0 {
            c if c < 0 => Err(MoneyError::Negative),
            0 => Err(MoneyError::Zero),
            c if c > MAX_CENTS => Err(MoneyError::TooLarge),
            _ => Ok(Amount(cents)),
        }
    }

    pub fn cents(self) -> Cents {
        self.0
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Amount::new(deserialize_cents(d)?).map_err(de::Error::custom)
    }
}

/// An amount that may be zero: an item's `value` (a skin can be worth nothing in cash).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct NonNegative(Cents);

impl NonNegative {
    pub fn cents(self) -> Cents {
        self.0
    }
}

impl<'de> Deserialize<'de> for NonNegative {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_cents(d).map(NonNegative)
    }
}

/// How money looks in the OpenAPI document: a JSON number in major units with at most 2 decimals.
/// One schema per meaning, so a reader sees the range each field really has.
mod schema {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::{RefOr, Schema};
    use utoipa::{PartialSchema, ToSchema};

    use super::{Amount, Cents, NonNegative, MAX_CENTS};

    const MAX_MAJOR: f64 = MAX_CENTS as f64 / 100.0;
    const FORMAT_NOTE: &str = "A JSON **number** in major units with at most 2 decimals (`12.5` means 12.50). \
        Strings, `null`, exponent notation (`1e2`) and a non-zero third decimal (`1.001`) are refused with 400. \
        `multipleOf` is meant in exact decimal arithmetic, as JSON Schema defines it; validators that divide \
        in binary floating point may wrongly refuse amounts such as `0.07` (with Ajv, set `multipleOfPrecision: 2`).";

    fn money(description: &str) -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(Type::Number)
            .multiple_of(Some(0.01))
            .description(Some(format!("{description} {FORMAT_NOTE}")))
    }

    impl PartialSchema for Amount {
        fn schema() -> RefOr<Schema> {
            money("A strictly positive amount of money (price, top-up, deduction, payment), 0.01 to 100000000.00.")
                .exclusive_minimum(Some(0))
                .maximum(Some(MAX_MAJOR))
                .examples([12.5, 1.0, 0.5])
                .into()
        }
    }

    impl ToSchema for Amount {
        fn name() -> std::borrow::Cow<'static, str> {
            "Money".into()
        }
    }

    impl PartialSchema for NonNegative {
        fn schema() -> RefOr<Schema> {
            money(
                "An item's cash value, 0 to 100000000.00; unlike `Money` it may be `0` (a skin worth nothing in cash).",
            )
            .minimum(Some(0))
            .maximum(Some(MAX_MAJOR))
            .examples([0.5, 0.0])
            .into()
        }
    }

    impl ToSchema for NonNegative {
        fn name() -> std::borrow::Cow<'static, str> {
            "ItemValue".into()
        }
    }

    /// A signed ledger amount: positive for credits, negative for debits.
    impl PartialSchema for Cents {
        fn schema() -> RefOr<Schema> {
            money("A signed ledger amount: positive for credits, negative for debits.")
                .minimum(Some(-MAX_MAJOR))
                .maximum(Some(MAX_MAJOR))
                .examples([7.25, -1.0])
                .into()
        }
    }

    impl ToSchema for Cents {
        fn name() -> std::borrow::Cow<'static, str> {
            "SignedMoney".into()
        }
    }

    /// Only names a schema: a user's balance is `Cents` in the code, never negative on the wire.
    pub struct Balance;

    impl PartialSchema for Balance {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .schema_type(Type::Number)
                .multiple_of(Some(0.01))
                .minimum(Some(0))
                .description(Some("A user's balance in major units with at most 2 decimals. Never negative."))
                .examples([2.5, 0.0])
                .into()
        }
    }

    impl ToSchema for Balance {}
}

pub use schema::Balance;

#[cfg(test)]
mod tests {
    use super::*;

    fn amount(json: &str) -> Result<Amount, String> {
        serde_json::from_str::<Amount>(json).map_err(|e| e.to_string())
    }

    #[test]
    fn parses_major_units_exactly() {
        assert_eq!(parse_major_units("12.5"), Ok(Cents(1250)));
        assert_eq!(parse_major_units("19.99"), Ok(Cents(1999)));
        assert_eq!(parse_major_units("0.07"), Ok(Cents(7)));
        assert_eq!(parse_major_units("3"), Ok(Cents(300)));
        assert_eq!(parse_major_units("3.10"), Ok(Cents(310)));
        assert_eq!(parse_major_units("3.000"), Ok(Cents(300)));
        assert_eq!(parse_major_units("100000000.00"), Ok(Cents(MAX_CENTS)));
        assert_eq!(parse_major_units("0"), Ok(Cents(0)));
        assert_eq!(parse_major_units("-0"), Ok(Cents(0)));
    }

    #[test]
    fn refuses_what_is_not_exact_money() {
        assert_eq!(parse_major_units("12.345"), Err(MoneyError::TooPrecise));
        assert_eq!(parse_major_units("0.001"), Err(MoneyError::TooPrecise));
        assert_eq!(parse_major_units("1e2"), Err(MoneyError::TooPrecise));
        assert_eq!(parse_major_units("1."), Err(MoneyError::TooPrecise));
        assert_eq!(parse_major_units("-5"), Err(MoneyError::Negative));
        assert_eq!(parse_major_units("100000000.01"), Err(MoneyError::TooLarge));
        assert_eq!(parse_major_units("99999999999999999999"), Err(MoneyError::TooLarge));
        assert_eq!(parse_major_units("\"10\""), Err(MoneyError::NotANumber));
        assert_eq!(parse_major_units("null"), Err(MoneyError::NotANumber));
        assert_eq!(parse_major_units("true"), Err(MoneyError::NotANumber));
        assert_eq!(parse_major_units("{}"), Err(MoneyError::NotANumber));
    }

    #[test]
    fn amount_must_be_positive() {
        assert_eq!(amount("10.5").unwrap().cents(), Cents(1050));
        assert!(amount("0").unwrap_err().contains("greater than 0"));
        assert!(amount("-1").unwrap_err().contains("negative"));
        assert!(amount("\"10\"").unwrap_err().contains("must be a number"));
        assert!(amount("null").unwrap_err().contains("must be a number"));
        assert!(amount("1.001").unwrap_err().contains("at most 2 decimals"));
    }

    #[test]
    fn item_value_may_be_zero() {
        let v: NonNegative = serde_json::from_str("0").unwrap();
        assert_eq!(v.cents(), Cents(0));
    }

    #[test]
    fn serializes_as_major_units() {
        let json = |c| serde_json::to_string(&Cents(c)).unwrap();
        assert_eq!(json(1250), "12.5");
        assert_eq!(json(1999), "19.99");
        assert_eq!(json(7), "0.07");
        assert_eq!(json(300), "3.0");
        assert_eq!(json(MAX_CENTS), "100000000.0");
        assert_eq!(json(-1999), "-19.99");
    }

    #[test]
    fn every_cent_value_round_trips_through_json() {
        for c in (0..200_000).chain(MAX_CENTS - 200_000..=MAX_CENTS) {
            let text = serde_json::to_string(&Cents(c)).unwrap();
            assert_eq!(parse_major_units(&text), Ok(Cents(c)), "{text}");
        }
    }
}

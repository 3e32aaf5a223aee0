use serde::{de, Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::money::{Amount, Cents, NonNegative};

/// `money`: a cash prize, claimable into the balance; `skin`: an item that can also be withdrawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ItemKind {
    Money,
    Skin,
}

impl ItemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Money => "money",
            ItemKind::Skin => "skin",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "money" => Some(ItemKind::Money),
            "skin" => Some(ItemKind::Skin),
            _ => None,
        }
    }
}

/// One prize of a case.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[schema(examples(json!({
    "id": "1d0e8f2b-4c3a-4d6e-9f70-8b9c0d1e2f3a", "name": "AK-47 | Redline",
    "image": "https://cdn.example.com/items/ak-redline.png", "rarity": "classified", "kind": "skin",
    "value": 12.5, "weight": 1, "chance": 25.0
})))]
pub struct Item {
    pub id: Uuid,
    #[schema(examples("AK-47 | Redline"))]
    pub name: String,
    /// Image URL; may be the empty string.
    pub image: String,
    #[schema(examples("classified"))]
    pub rarity: String,
    pub kind: ItemKind,
    #[schema(value_type = NonNegative)]
    pub value: Cents,
    /// Relative drop weight inside its case.
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub weight: u32,
    /// Drop chance in percent, `weight / Σ weights × 100`, rounded to 2 decimals (display only;
    /// the draw uses the integer weights).
    #[schema(minimum = 0, maximum = 100, multiple_of = 0.01)]
    pub chance: f64,
}

/// An active (not deleted) case.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[schema(examples(json!({
    "id": "5b0f2a9e-8c1d-4f3e-9a77-2d6c1e0b4a10", "name": "Starter case",
    "image": "https://cdn.example.com/cases/starter.png", "price": 1.0,
    "items": [
        { "id": "0c9d7e1a-3b2f-4c5d-8e6f-7a8b9c0d1e2f", "name": "Half a coin",
          "image": "https://cdn.example.com/items/coin.png", "rarity": "common", "kind": "money",
          "value": 0.5, "weight": 3, "chance": 75.0 },
        { "id": "1d0e8f2b-4c3a-4d6e-9f70-8b9c0d1e2f3a", "name": "AK-47 | Redline",
          "image": "https://cdn.example.com/items/ak-redline.png", "rarity": "classified",
          "kind": "skin", "value": 12.5, "weight": 1, "chance": 25.0 }
    ]
})))]
pub struct Case {
    pub id: Uuid,
    #[schema(examples("Starter case"))]
    pub name: String,
    /// Image URL; may be the empty string.
    pub image: String,
    /// Price of one opening.
    #[schema(value_type = Amount)]
    pub price: Cents,
    /// The case's items, in pick order.
    #[schema(min_items = 1, max_items = 100)]
    pub items: Vec<Item>,
}

impl Case {
    /// Builds a case from stored rows, filling in each item's chance from the weights.
    pub fn new(id: Uuid, name: String, image: String, price: Cents, mut items: Vec<Item>) -> Self {
        set_chances(&mut items);
        Case { id, name, image, price, items }
    }
}

/// `chance = weight / total` in percent, rounded to 2 decimals.
pub fn set_chances(items: &mut [Item]) {
    let total: u64 = items.iter().map(|i| u64::from(i.weight)).sum();
    for item in items {
        item.chance = chance_percent(item.weight, total);
    }
}

pub fn chance_percent(weight: u32, total: u64) -> f64 {
    if total == 0 {
        return 0.0;
    }
    (f64::from(weight) * 10_000.0 / total as f64).round() / 100.0
}

pub const MAX_ITEMS: usize = 100;
pub const MAX_WEIGHT: u32 = 1_000_000;

/// Full definition of a case (create or replace): the body of `POST /api/admin/cases` and
/// `PUT /api/admin/cases/{id}`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[schema(as = CaseInput, examples(json!({
    "name": "Starter case", "image": "https://cdn.example.com/cases/starter.png", "price": 1.0,
    "items": [
        { "name": "Half a coin", "image": "https://cdn.example.com/items/coin.png", "rarity": "common",
          "kind": "money", "value": 0.5, "weight": 3 },
        { "name": "AK-47 | Redline", "image": "https://cdn.example.com/items/ak-redline.png",
          "rarity": "classified", "kind": "skin", "value": 12.5, "weight": 1 }
    ]
})))]
pub struct CaseDraft {
    // The `pattern` of the names and the rarity: at least one character that `str::trim` keeps,
    // Rust's `White_Space` set spelled out (a regex `\S` differs between dialects, e.g. on
    // U+001C–U+001F, which Python counts as space and Rust does not).
    /// 1 to 100 characters, not only white space.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub name: String,
    /// Image URL; may be empty or left out.
    #[serde(default)]
    #[schema(max_length = 2048, default = "")]
    pub image: String,
    pub price: Amount,
    /// 1 to 100 items; their order is the pick order.
    #[schema(min_items = 1, max_items = 100)]
    pub items: Vec<ItemDraft>,
}

/// An item as an admin defines it; the server assigns `id` and computes `chance`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[schema(as = ItemInput)]
pub struct ItemDraft {
    /// 1 to 100 characters, not only white space.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub name: String,
    /// Image URL; may be empty or left out.
    #[serde(default)]
    #[schema(max_length = 2048, default = "")]
    pub image: String,
    /// 1 to 32 characters, not only white space.
    #[schema(
        min_length = 1,
        max_length = 32,
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub rarity: String,
    pub kind: ItemKind,
    pub value: NonNegative,
    /// Relative drop weight, a whole number (`3` or `3.0`) from 1 to 1000000.
    #[serde(deserialize_with = "whole_number")]
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub weight: u32,
}

/// A JSON number with no fractional part, in `u32`: JSON Schema's `integer` includes `3.0`, and
/// so do clients that compute weights in floating point.
fn whole_number<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    struct Whole;
    impl de::Visitor<'_> for Whole {
        type Value = u32;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            write!(f, "a whole number from 1 to {MAX_WEIGHT}")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u32, E> {
            u32::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u32, E> {
            u32::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<u32, E> {
            if v.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&v) {
                Ok(v as u32)
            } else {
                Err(E::invalid_value(de::Unexpected::Float(v), &self))
            }
        }
    }
    d.deserialize_any(Whole)
}

impl CaseDraft {
    pub fn validate(&self) -> Result<(), String> {
        check_text("name", &self.name, 1, 100)?;
        check_text("image", &self.image, 0, 2048)?;
        validate_items(&self.items)
    }
}

pub fn validate_items(items: &[ItemDraft]) -> Result<(), String> {
    if items.is_empty() || items.len() > MAX_ITEMS {
        return Err(format!("items: a case needs 1 to {MAX_ITEMS} items, got {}", items.len()));
    }
    for (i, item) in items.iter().enumerate() {
        check_text(&format!("items[{i}].name"), &item.name, 1, 100)?;
        check_text(&format!("items[{i}].image"), &item.image, 0, 2048)?;
        check_text(&format!("items[{i}].rarity"), &item.rarity, 1, 32)?;
        if !(1..=MAX_WEIGHT).contains(&item.weight) {
            return Err(format!("items[{i}].weight: must be a whole number from 1 to {MAX_WEIGHT}"));
        }
    }
    Ok(())
}

fn check_text(field: &str, value: &str, min: usize, max: usize) -> Result<(), String> {
    let len = value.trim().chars().count();
    if len < min || value.chars().count() > max {
        return Err(format!("{field}: must be {min} to {max} characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(weight: u32) -> Item {
        Item {
            id: Uuid::nil(),
            name: "x".into(),
            image: String::new(),
            rarity: "common".into(),
            kind: ItemKind::Money,
            value: Cents(0),
            weight,
            chance: 0.0,
        }
    }

    #[test]
    fn chances_are_percent_with_two_decimals() {
        let case = Case::new(Uuid::nil(), "c".into(), String::new(), Cents(100), vec![item(1), item(2), item(3)]);
        let chances: Vec<f64> = case.items.iter().map(|i| i.chance).collect();
        assert_eq!(chances, vec![16.67, 33.33, 50.0]);
    }

    #[test]
    fn drafts_are_validated() {
        let draft: CaseDraft = serde_json::from_str(
            r#"{"name":"Starter","image":"","price":1.5,"items":[{"name":"5 coins","image":"","rarity":"common","kind":"money","value":0,"weight":3}]}"#,
        )
        .unwrap();
        assert!(draft.validate().is_ok());
        let mut bad = draft.clone();
        bad.items.clear();
        assert!(bad.validate().unwrap_err().contains("1 to 100 items"));
        let mut bad = draft.clone();
        bad.items[0].weight = 0;
        assert!(bad.validate().unwrap_err().contains("weight"));
        let mut bad = draft;
        bad.name = "  ".into();
        assert!(bad.validate().unwrap_err().starts_with("name"));
        assert!(serde_json::from_str::<ItemDraft>(r#"{"name":"a","rarity":"r","kind":"gem","value":1,"weight":1}"#)
            .is_err());
        let weight = |w: &str| {
            let json = format!(r#"{{"name":"a","rarity":"r","kind":"skin","value":1,"weight":{w}}}"#);
            serde_json::from_str::<ItemDraft>(&json).map(|item| item.weight).map_err(|e| e.to_string())
        };
        assert_eq!(weight("3"), Ok(3));
        assert_eq!(weight("999999.0"), Ok(999_999), "JSON Schema's integer includes integer-valued floats");
        for bad in ["1.5", "-1", "\"3\"", "null", "4294967296", "1e100"] {
            assert!(weight(bad).unwrap_err().contains("a whole number from 1 to 1000000"), "{bad}");
        }
    }
}

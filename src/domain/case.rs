use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::{Amount, Cents, NonNegative};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Item {
    pub id: Uuid,
    pub name: String,
    pub image: String,
    pub rarity: String,
    pub kind: ItemKind,
    pub value: Cents,
    pub weight: u32,
    /// Percent, 2 decimals; derived from the weights of the case the item belongs to.
    pub chance: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Case {
    pub id: Uuid,
    pub name: String,
    pub image: String,
    pub price: Cents,
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

/// The body of `POST /api/admin/cases` and `PUT /api/admin/cases/:id`.
#[derive(Clone, Debug, Deserialize)]
pub struct CaseDraft {
    pub name: String,
    #[serde(default)]
    pub image: String,
    pub price: Amount,
    pub items: Vec<ItemDraft>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ItemDraft {
    pub name: String,
    #[serde(default)]
    pub image: String,
    pub rarity: String,
    pub kind: ItemKind,
    pub value: NonNegative,
    pub weight: u32,
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
        assert!(serde_json::from_str::<ItemDraft>(r#"{"name":"a","rarity":"r","kind":"skin","value":1,"weight":1.5}"#)
            .is_err());
    }
}

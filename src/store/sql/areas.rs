// The SQL both stores share, one module per area. `store/postgres/mod.rs` and `store/sqlite.rs`
// each `include!` this file, so every area is compiled once per backend against that backend's
// `Db` and hooks (listed in store.rs). `cargo fmt` does not follow `include!`: .ci/run
// rustfmt-checks these files itself.

mod rows {
    include!("rows.rs");
}
mod writes {
    include!("writes.rs");
}
mod users {
    include!("users.rs");
}
mod cases {
    include!("cases.rs");
}
mod fair {
    include!("fair.rs");
}
mod opens {
    include!("opens.rs");
}
mod inventory {
    include!("inventory.rs");
}
mod ledger {
    include!("ledger.rs");
}
mod store {
    include!("store.rs");
}

pub use store::SqlStore;

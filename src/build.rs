//! Rebuilds the crate when a migration file is added or changed: refinery embeds the migrations
//! at compile time, and cargo does not otherwise notice a new file in `migrations/`.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}

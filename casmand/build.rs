//! Embedded migrations must be rebuilt when a migration file changes:
//! `sqlx::migrate!` alone does not tell cargo about new files.
fn main() {
    for db in ["parts", "assembled", "state"] {
        println!("cargo:rerun-if-changed=../migrations/{db}");
    }
}

//! Conflicts of the change exchange as the views of a part show them
//! (`chain`, `history`, the scanner card).

use super::Context;
use crate::{
    db::{ASSEMBLED_DB, PARTS_DB, changes::Conflict},
    error::Result,
};

/// Whether conflict `c` is about `part` (a part number such as
/// `ANT00002P1`; rows of parts.db are named by an antenna or board number,
/// which the part number of its polarizations begins with).
fn concerns(c: &Conflict, part: &str) -> bool {
    let names = |key: &str| {
        key == part || part.strip_prefix(key).is_some_and(|rest| rest.len() == 2 && rest.starts_with('P'))
    };
    names(&c.subject) || c.with.iter().any(|w| names(w))
}

impl Context {
    /// The conflicts standing in either database about any of `parts`
    /// (read from the exchange's cache: no file is scanned).
    pub async fn conflicts_concerning(&self, parts: &[&str]) -> Result<Vec<Conflict>> {
        let mut out = Vec::new();
        for db in [ASSEMBLED_DB, PARTS_DB] {
            for c in self.backups().conflicts(db).await? {
                if parts.iter().any(|p| concerns(&c, p)) {
                    out.push(c);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(subject: &str, with: &str) -> Conflict {
        Conflict { kind: "k".into(), subject: subject.into(), with: vec![with.into()], detail: String::new() }
    }

    #[test]
    fn a_conflict_concerns_its_parts_and_the_polarizations_of_its_rows() {
        assert!(concerns(&c("LNA00001P1", "ANT00002P1"), "ANT00002P1"));
        assert!(concerns(&c("ANT00002", "ANT00001"), "ANT00001P2"));
        assert!(!concerns(&c("ANT00002", "ANT00001"), "ANT000011P1"));
        assert!(!concerns(&c("LNA00001P1", "ANT00002P1"), "LNA00001P2"));
    }
}

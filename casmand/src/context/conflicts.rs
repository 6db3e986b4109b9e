//! Conflicts of the change exchange as the views of a part show them
//! (`chain`, `history`, the scanner card).

use super::Context;
use crate::{
    db::{ASSEMBLED_DB, PARTS_DB, changes::Conflict},
    error::Result,
};

impl Context {
    /// The conflicts standing in either database about any of `parts`
    /// (read from the exchange's cache: no file is scanned).
    pub async fn conflicts_concerning(&self, parts: &[&str]) -> Result<Vec<Conflict>> {
        let mut all = self.standing_conflicts().await?;
        all.retain(|c| parts.iter().any(|p| c.concerns(p)));
        Ok(all)
    }

    /// Every conflict standing in either database (from the exchange's
    /// cache).
    pub async fn standing_conflicts(&self) -> Result<Vec<Conflict>> {
        let mut out = self.backups().conflicts(ASSEMBLED_DB).await?;
        out.extend(self.backups().conflicts(PARTS_DB).await?);
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
        assert!(c("LNA00001P1", "ANT00002P1").concerns("ANT00002P1"));
        assert!(c("ANT00002", "ANT00001").concerns("ANT00001P2"));
        assert!(!c("ANT00002", "ANT00001").concerns("ANT000011P1"));
        assert!(!c("LNA00001P1", "ANT00002P1").concerns("LNA00001P2"));
    }
}

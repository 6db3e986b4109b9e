//! The codes by which the kept current state of assembled_casm.db keys a
//! part (migrations/assembled/0005): a standard part number as a small
//! integer, anything else as its text, a NULL end as -1.

use crate::inventory::{PartNumber, PartType, Polarization};

/// The SQL expression coding the part id `x` (a column, `NEW.part_number`,
/// `value`): for `<ABBR><5 digits>P<1|2>` with ABBR one of the six type
/// prefixes, the type's CAsMan number × 1,000,000 + number × 10 +
/// polarization (`ANT00001P1` → 1000011, 3 bytes on disk instead of 10);
/// for any other id its text (integers sort before text, so no code is ever
/// an id); for NULL, -1.
///
/// The migration writes this expression out in a trigger (it must work for
/// the Python tool, without casmand's code); the tests below check both
/// copies against this one.
pub fn part_code(x: &str) -> String {
    format!(
        "CASE WHEN {x} IS NULL THEN -1 ELSE COALESCE(CASE WHEN {x} GLOB \
         '[A-Z][A-Z][A-Z][0-9][0-9][0-9][0-9][0-9]P[12]' THEN CASE substr({x}, 1, 3) \
         WHEN 'ANT' THEN 1000000 WHEN 'LNA' THEN 2000000 WHEN 'CXS' THEN 3000000 WHEN 'CXL' THEN 4000000 \
         WHEN 'BAC' THEN 5000000 WHEN 'SNP' THEN 6000000 END \
         + CAST(substr({x}, 4, 5) || substr({x}, 10) AS INTEGER) END, \
         CAST({x} AS TEXT)) END"
    )
}

/// The part number an integer code stands for (the inverse of
/// [`part_code`] on the standard numbers); `None` for -1 (a NULL end) and
/// for any integer no standard number codes to.
pub fn decode(code: i64) -> Option<PartNumber> {
    let code = u32::try_from(code).ok()?;
    let config = u8::try_from(code / 1_000_000).ok()?;
    let part_type = PartType::ALL.into_iter().find(|t| t.config_number() == config)?;
    let pol = Polarization::ALL.into_iter().find(|p| u32::from(p.number()) == code % 10)?;
    PartNumber::new(part_type, (code % 1_000_000) / 10, pol).ok()
}

/// `IN (…)` over the codes of the part ids in the JSON array bound as `?n`.
pub fn codes_of_json(n: u8) -> String {
    format!("(SELECT {} FROM json_each(?{n}))", part_code("value"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use sqlx::{Connection, SqliteConnection};

    use super::*;

    fn squash(s: &str) -> String {
        s.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn every_copy_in_the_migration_is_this_expression() {
        let sql = squash(include_str!("../../../migrations/assembled/0005_coded_pairs.sql"));
        let copies = sql.matches("CASE WHEN ").count() / 2;
        let mut found = 0;
        for end in ["NEW.a", "NEW.b"] {
            found += sql.matches(&squash(&part_code(end))).count();
        }
        // Both ends, in the trigger of `pair_event`.
        assert_eq!(found, 2);
        assert_eq!(copies, found, "a coded end that is not this expression");
    }

    async fn code_in_sql(conn: &mut SqliteConnection, id: Option<&str>) -> (String, String) {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT typeof(c), CAST(c AS TEXT) FROM (SELECT {} AS c FROM (SELECT ?1 AS id))",
            part_code("id")
        )))
        .bind(id)
        .fetch_one(conn)
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn standard_numbers_are_integers_and_everything_else_its_text() {
        let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        for t in PartType::ALL {
            for (p, digit) in [(Polarization::P1, 1), (Polarization::P2, 2)] {
                for n in [1, 7, 12_500, 99_999] {
                    let id = PartNumber::new(t, n, p).unwrap().to_string();
                    let want = i64::from(t.config_number()) * 1_000_000 + i64::from(n) * 10 + digit;
                    let got = code_in_sql(&mut conn, Some(&id)).await;
                    assert_eq!(got, ("integer".to_owned(), want.to_string()), "{id}");
                    assert_eq!(decode(want), Some(PartNumber::parse_stored(&id).unwrap()), "{id}");
                }
            }
        }
        for id in [
            "SNAP1A05",
            "SNAP010105",
            "ant00001p1",
            "ANT00001P3",
            "XYZ00001P1",
            "ANT0001P1",
            "ANT00001P1 ",
            "1000011",
        ] {
            assert_eq!(code_in_sql(&mut conn, Some(id)).await, ("text".to_owned(), id.to_owned()), "{id}");
        }
        assert_eq!(code_in_sql(&mut conn, None).await, ("integer".to_owned(), "-1".to_owned()));
        // Integers no standard number codes to: a NULL end, number 00000, no
        // such type or polarization.
        for code in [-1, 0, 1_000_001, 1_000_013, 7_000_011, 1_000_000_011, i64::MAX] {
            assert_eq!(decode(code), None, "{code}");
        }
    }
}

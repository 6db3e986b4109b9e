//! `casmanctl sync revert KEY`: every site back to a stored version's state
//! by compensating changes, previewed as a diff and confirmed first.

use casman_proto::v1::{RevertRequest, RevertResponse, RevertStep};
use serde_json::Value;

use crate::{client::Conn, error::CtlError, output};

/// Previews the revert to `key`; unless `preview` only, asks (or takes
/// `--yes`) and writes exactly what was previewed.
pub async fn revert(
    conn: &Conn,
    key: String,
    preview: bool,
    yes: bool,
    as_json: bool,
) -> Result<(), CtlError> {
    let req = RevertRequest { key: key.clone(), confirm: String::new() };
    let shown = conn.sync().revert(conn.request(req)).await?.into_inner();
    if !as_json || preview || shown.total == 0 {
        say(&shown, as_json);
    }
    if preview || shown.total == 0 {
        return Ok(());
    }
    super::prompt::confirm(
        &format!(
            "Reverting writes these {} change(s) to {}; every site takes them at its next sync",
            shown.total, shown.database
        ),
        yes,
    )?;
    let req = RevertRequest { key, confirm: shown.digest };
    let done = conn.sync().revert(conn.request(req)).await?.into_inner();
    say(&done, as_json);
    Ok(())
}

fn say(r: &RevertResponse, as_json: bool) {
    if as_json {
        output::json(&output::message(r));
        return;
    }
    if !r.applied {
        let mut t = output::table(["table", "key", "action", "what changes"]);
        for s in &r.steps {
            t.add_row([s.table.clone(), s.key.clone(), s.action.clone(), what(s)]);
        }
        if !r.steps.is_empty() {
            crate::output::say!("{t}");
        }
        if r.total > r.steps.len() as u64 {
            crate::output::say!("... and {} more", r.total - r.steps.len() as u64);
        }
    }
    crate::output::say!("{}", r.message);
}

/// The fields a step changes, `field: now -> then`; a whole row for a row
/// removed or restored.
fn what(s: &RevertStep) -> String {
    let parse = |j: &str| serde_json::from_str::<Value>(j).ok().and_then(|v| v.as_object().cloned());
    let show = |v: Option<&Value>| match v {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    match (parse(&s.before), parse(&s.after)) {
        (Some(now), Some(then)) => then
            .iter()
            .filter(|(k, v)| now.get(*k) != Some(*v))
            .map(|(k, v)| format!("{k}: {} -> {}", show(now.get(k)), show(Some(v))))
            .collect::<Vec<_>>()
            .join(", "),
        (Some(row), None) | (None, Some(row)) => row
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| format!("{k}={}", show(Some(v))))
            .collect::<Vec<_>>()
            .join(" "),
        (None, None) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_names_the_fields_it_changes() {
        let s = RevertStep {
            table: "antenna_positions".into(),
            key: "ANT00002".into(),
            action: "change".into(),
            before: r#"{"antenna_number":"ANT00002","grid_code":"CN002E04","height":null}"#.into(),
            after: r#"{"antenna_number":"ANT00002","grid_code":"CN002E03","height":null}"#.into(),
        };
        assert_eq!(what(&s), "grid_code: CN002E04 -> CN002E03");
        let gone = RevertStep { before: String::new(), action: "restore".into(), ..s };
        assert_eq!(what(&gone), "antenna_number=ANT00002 grid_code=CN002E03");
    }
}

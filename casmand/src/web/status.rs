//! `/status`: the daemon, the last backup of each database, writes not yet
//! backed up, pending (failed) backups and the object-store quota.

use axum::{extract::State, response::Html};

use super::{PageResult, Web, html};
use crate::{
    backup::quota::{fractions, level, storage_gb, thousands},
    db::{ASSEMBLED_DB, PARTS_DB, sync_state},
};

pub(super) async fn page(State(web): State<Web>) -> PageResult {
    let ctx = &web.ctx;
    let st = ctx.status().await;
    let mut body = String::from("<table class=\"kv\">");
    body.push_str(&html::row("Version", &html::esc(st.version)));
    body.push_str(&html::row("Site", &html::esc(&st.site_id)));
    body.push_str(&html::row("Started", &html::esc(&st.started_at)));
    body.push_str(&html::row("Data directory", &html::esc(&st.data_dir.display().to_string())));
    let backend = if st.backend.enabled {
        format!("{} — {}", html::esc(st.backend.kind), html::esc(&st.backend.location))
    } else {
        "none (backups are off)".to_owned()
    };
    body.push_str(&html::row("Backups to", &backend));
    body.push_str("</table>");

    body.push_str(
        "<h2>Backups</h2><div class=\"table-wrap\"><table class=\"list\" id=\"backups\"><thead><tr>\
         <th>Database</th><th>Size</th><th>Last backup</th><th>Version</th><th>Writes since</th>\
         <th>Oldest unsaved write</th></tr></thead><tbody>",
    );
    for db in &st.databases {
        if db.name != PARTS_DB && db.name != ASSEMBLED_DB {
            continue;
        }
        let a = sync_state::activity(&ctx.dbs().state, &db.name).await?;
        body.push_str(&format!(
            "<tr><td>{}</td><td>{} KiB</td><td>{}</td><td class=\"key\">{}</td><td>{}</td><td>{}</td></tr>",
            html::esc(&db.name),
            db.size_bytes.div_ceil(1024),
            a.last_backup_at.as_deref().map_or_else(|| "never".to_owned(), html::esc),
            html::or_dash(a.last_backup_key.as_deref().unwrap_or("")),
            a.writes_since_backup,
            html::or_dash(a.first_unsaved_write_at.as_deref().unwrap_or(""))
        ));
    }
    body.push_str("</tbody></table></div>");

    let pending = sync_state::pending(&ctx.dbs().state).await?;
    body.push_str("<h2>Pending work</h2>");
    if pending.is_empty() {
        body.push_str("<p class=\"muted\" id=\"pending\">Nothing pending: every wanted backup landed.</p>");
    } else {
        body.push_str(
            "<div class=\"table-wrap\"><table class=\"list\" id=\"pending\"><thead><tr><th>Database</th>\
             <th>Reason</th><th>First failed</th><th>Attempts</th><th>Next attempt</th><th>Last error</th>\
             </tr></thead><tbody>",
        );
        for p in &pending {
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                html::esc(&p.database),
                html::esc(&p.reason),
                html::esc(&p.first_failed_at),
                p.attempts,
                html::or_dash(p.next_attempt_at.as_deref().unwrap_or("")),
                html::or_dash(p.last_error.as_deref().unwrap_or(""))
            ));
        }
        body.push_str("</tbody></table></div>");
    }

    let q = ctx.backups().quota().report().await;
    body.push_str("<h2>Quota</h2>");
    if !q.enforced {
        body.push_str(
            "<p class=\"muted\">Not enforced for this backend (limits apply to r2 and s3 only).</p>",
        );
    }
    body.push_str(&format!(
        "<div class=\"table-wrap\"><table class=\"list\" id=\"quota\"><thead><tr><th>{}</th><th>Fleet use</th>\
         <th>Limit</th><th>Share</th></tr></thead><tbody>",
        html::esc(&q.fleet.month)
    ));
    let used = [
        format!("{:.3} GB", storage_gb(q.fleet.storage_bytes)),
        thousands(q.fleet.class_a),
        thousands(q.fleet.class_b),
    ];
    let limits = [
        format!("{} GB", q.limits.storage_gb),
        thousands(q.limits.class_a_operations),
        thousands(q.limits.class_b_operations),
    ];
    for (i, (resource, fraction)) in fractions(&q.fleet, &q.limits).into_iter().enumerate() {
        let lvl = level(fraction, &q.limits);
        body.push_str(&format!(
            "<tr class=\"level-{}\"><td>{}</td><td>{}</td><td>{}</td><td>{} {:.1}%</td></tr>",
            lvl.as_str(),
            html::esc(resource.as_str()),
            used.get(i).map_or("", String::as_str),
            limits.get(i).map_or("", String::as_str),
            lvl.symbol(),
            fraction * 100.0
        ));
    }
    body.push_str(&format!(
        "</tbody></table></div><p class=\"muted\">This site this month: {} backup(s), {} restore(s).</p>",
        q.backups, q.restores
    ));
    Ok(Html(html::page("Status", "status", &body)))
}

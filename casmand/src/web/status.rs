//! `/status`: the backups' health (the problems `casmanctl status --check`
//! reports), the daemon, the last backup of each database, writes not yet
//! backed up, conflicts between sites' changes, pending (failed) backups and
//! the object-store quota; and
//! `/metrics`, the same figures in the Prometheus text format
//! ([`crate::metrics`]).

use axum::{
    extract::State,
    http::{StatusCode, header},
    response::{Html, IntoResponse, Response},
};
use maud::html;

use super::{PageResult, Web, html::or_dash, html::row};
use crate::{
    backup::quota::{fractions, level, storage_gb, thousands},
    db::{ASSEMBLED_DB, PARTS_DB, sync_state},
};

/// `/metrics`: computed on request from state.db and the backup service.
pub(super) async fn metrics(State(web): State<Web>) -> Response {
    match crate::metrics::gather(&web.ctx).await {
        Ok(s) => (
            [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE), (header::CACHE_CONTROL, "no-store")],
            crate::metrics::render(&s, jiff::Timestamp::now()),
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "/metrics: could not read the backup state");
            (StatusCode::INTERNAL_SERVER_ERROR, format!("could not read the backup state: {e}\n"))
                .into_response()
        }
    }
}

pub(super) async fn page(State(web): State<Web>) -> PageResult {
    let ctx = &web.ctx;
    let st = ctx.status().await;
    let problems = crate::metrics::problems(&crate::metrics::gather(ctx).await?, jiff::Timestamp::now());
    let mut activity = Vec::new();
    for db in st.databases.iter().filter(|db| db.name == PARTS_DB || db.name == ASSEMBLED_DB) {
        activity.push((db, sync_state::activity(&ctx.dbs().state, &db.name).await?));
    }
    let pending = sync_state::pending(&ctx.dbs().state).await?;
    let q = ctx.backups().quota().report().await;
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
    let mut conflicts = ctx.backups().conflicts(ASSEMBLED_DB).await?;
    conflicts.extend(ctx.backups().conflicts(PARTS_DB).await?);
    let data_dir = st.data_dir.display().to_string();
    let body = html! {
        h2 { "Health" }
        @if problems.is_empty() {
            p class="muted" id="health" { "ok: backups are healthy." }
        } @else {
            ul class="problems" id="health" {
                @for p in &problems { li { (p) } }
            }
        }
        table class="kv" {
            (row("Version", st.version))
            (row("Site", &st.site_id))
            (row("Started", &st.started_at))
            (row("Data directory", &data_dir))
            @if st.backend.enabled {
                (row("Backups to", html! { (st.backend.kind) " — " (st.backend.location) }))
            } @else {
                (row("Backups to", "none (backups are off)"))
            }
        }
        h2 { "Backups" }
        div class="table-wrap" {
            table class="list" id="backups" {
                thead { tr {
                    th { "Database" } th { "Size" } th { "Last backup" } th { "Version" } th { "Writes since" }
                    th { "Oldest unsaved write" }
                } }
                tbody {
                    @for (db, a) in &activity {
                        tr {
                            td { (db.name) }
                            td { (db.size_bytes.div_ceil(1024)) " KiB" }
                            td { (a.last_backup_at.as_deref().unwrap_or("never")) }
                            td class="key" { (or_dash(a.last_backup_key.as_deref().unwrap_or(""))) }
                            td { (a.writes_since_backup) }
                            td { (or_dash(a.first_unsaved_write_at.as_deref().unwrap_or(""))) }
                        }
                    }
                }
            }
        }
        h2 { "Conflicts between sites" }
        @if conflicts.is_empty() {
            p class="muted" id="conflicts" { "None: the sites' changes combine without breaking a rule." }
        } @else {
            ul class="problems" id="conflicts" {
                @for c in &conflicts { li { (c.detail) } }
            }
        }
        h2 { "Pending work" }
        @if pending.is_empty() {
            p class="muted" id="pending" { "Nothing pending: every wanted backup landed." }
        } @else {
            div class="table-wrap" {
                table class="list" id="pending" {
                    thead { tr {
                        th { "Database" } th { "Reason" } th { "First failed" } th { "Attempts" }
                        th { "Next attempt" } th { "Last error" }
                    } }
                    tbody {
                        @for p in &pending {
                            tr {
                                td { (p.database) }
                                td { (p.reason) }
                                td { (p.first_failed_at) }
                                td { (p.attempts) }
                                td { (or_dash(p.next_attempt_at.as_deref().unwrap_or(""))) }
                                td { (or_dash(p.last_error.as_deref().unwrap_or(""))) }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Quota" }
        @if !q.enforced {
            p class="muted" { "Not enforced for this backend (limits apply to r2 and s3 only)." }
        }
        div class="table-wrap" {
            table class="list" id="quota" {
                thead { tr { th { (q.fleet.month) } th { "Fleet use" } th { "Limit" } th { "Share" } } }
                tbody {
                    @for (i, (resource, fraction)) in fractions(&q.fleet, &q.limits).into_iter().enumerate() {
                        @let lvl = level(fraction, &q.limits);
                        tr class={ "level-" (lvl.as_str()) } {
                            td { (resource.as_str()) }
                            td { (used.get(i).map_or("", String::as_str)) }
                            td { (limits.get(i).map_or("", String::as_str)) }
                            td { (lvl.symbol()) " " (format!("{:.1}%", fraction * 100.0)) }
                        }
                    }
                }
            }
        }
        p class="muted" {
            "This site this month: " (q.backups) " backup(s), " (q.restores) " restore(s)."
        }
    };
    Ok(Html(super::html::layout("Status", "status", body).into_string()))
}

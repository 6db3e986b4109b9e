//! `casman.v1.Database`: print, clear, adoption report.

use std::pin::Pin;

use casman_proto::v1::{
    AdoptionReport, ClearDatabaseRequest, ClearDatabaseResponse, GetAdoptionReportRequest,
    GetAdoptionReportResponse, NullableString, PrintDatabaseRequest, TableDump, TableRow, TableRowCount,
    ValueChanges, database_server::Database,
};
use futures_util::Stream;
use tokio_stream::{StreamExt, wrappers::ReceiverStream};
use tonic::{Request, Response, Status};

use crate::{
    authz,
    context::Context,
    db::{ASSEMBLED_DB, PARTS_DB, adopt, whole},
    error::Error,
};

/// Implementation of the Database service.
#[derive(Debug, Clone)]
pub struct DatabaseApi {
    ctx: Context,
}

impl DatabaseApi {
    /// A service over the daemon's context.
    pub fn new(ctx: Context) -> Self {
        DatabaseApi { ctx }
    }
}

/// One page of a table, as the API sends it: its rows as messages, or
/// `packed` (see `PrintDatabaseRequest.packed`).
fn table_dump(p: whole::TablePage, packed: bool) -> TableDump {
    let (rows, (packed_text, packed_ends, packed_nulls), p) = if packed {
        let (values, p) = p.into_packed();
        (Vec::new(), values, p)
    } else {
        let rows = p
            .rows()
            .map(|row| TableRow {
                values: row
                    .map(|v| NullableString { is_null: v.is_none(), value: v.unwrap_or_default().to_owned() })
                    .collect(),
            })
            .collect();
        (rows, Default::default(), p)
    };
    TableDump {
        database: p.database.to_owned(),
        table: p.table,
        columns: p.columns,
        rows,
        table_rows: p.table_rows,
        continuation: p.continuation,
        packed_text,
        packed_ends,
        packed_nulls,
    }
}

type DumpStream = Pin<Box<dyn Stream<Item = Result<TableDump, Status>> + Send>>;

#[tonic::async_trait]
impl Database for DatabaseApi {
    type PrintDatabaseStream = DumpStream;

    async fn print_database(
        &self,
        req: Request<PrintDatabaseRequest>,
    ) -> Result<Response<DumpStream>, Status> {
        let r = req.into_inner();
        let packed = r.packed;
        let names = if r.databases.is_empty() {
            vec![PARTS_DB.to_owned(), ASSEMBLED_DB.to_owned()]
        } else {
            r.databases
        };
        let dbs = names.iter().map(|n| self.ctx.inventory_db(n).cloned()).collect::<Result<Vec<_>, _>>()?;
        // Pages flow through a small channel: the daemon holds at most a few
        // pages per client, however large the table and however slow the
        // client.
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        tokio::spawn(async move {
            for db in dbs {
                if let Err(e) = whole::dump(&db, r.limit, &tx).await {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            }
        });
        let stream = ReceiverStream::new(rx)
            .map(move |page| page.map(|p| table_dump(p, packed)).map_err(Status::from));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn clear_database(
        &self,
        req: Request<ClearDatabaseRequest>,
    ) -> Result<Response<ClearDatabaseResponse>, Status> {
        let caller = super::caller::of(&req)?;
        let r = req.into_inner();
        let name = self.ctx.inventory_db(&r.database)?.name;
        if r.confirm.trim() == name {
            authz::require_admin(caller.peer, self.ctx.admin_gid(), &format!("clearing {name}"))?;
        }
        let cleared = self.ctx.clear_database(&caller, name, &r.confirm).await?;
        Ok(Response::new(ClearDatabaseResponse {
            rows_deleted: cleared.rows_deleted,
            safety_copy: cleared.safety_copy.display().to_string(),
        }))
    }

    async fn get_adoption_report(
        &self,
        _req: Request<GetAdoptionReportRequest>,
    ) -> Result<Response<GetAdoptionReportResponse>, Status> {
        let mut reports = Vec::new();
        for db in [&self.ctx.dbs().parts, &self.ctx.dbs().assembled] {
            let report = adopt::report(db).await.map_err(Error::from)?;
            reports.push(match report {
                None => AdoptionReport { database: db.name.to_owned(), adopted: false, ..Default::default() },
                Some(r) => AdoptionReport {
                    database: r.database,
                    adopted: true,
                    adopted_at: r.adopted_at,
                    original_copy: r.original_copy,
                    timezone: r.timezone,
                    tables: r
                        .tables
                        .into_iter()
                        .map(|t| TableRowCount { table: t.table, rows_before: t.before, rows_after: t.after })
                        .collect(),
                    added_tables: r.added_tables,
                    added_columns: r.added_columns,
                    changes: r
                        .changes
                        .into_iter()
                        .map(|c| ValueChanges {
                            table: c.table,
                            column: c.column,
                            reason: c.reason,
                            count: c.count,
                        })
                        .collect(),
                    historic_ids: r.historic_ids,
                    notes: r.notes,
                },
            });
        }
        Ok(Response::new(GetAdoptionReportResponse { reports }))
    }
}

//! `casman.v1.Parts`: part generation and lookups.

use std::pin::Pin;

use casman_proto::v1::{
    AddPartsRequest, AddPartsResponse, CountPartsRequest, CountPartsResponse, GetPartRequest,
    ListPartsRequest, ListPartsResponse, Part, PartCount, parts_server::Parts,
};
use futures_util::Stream;
use tonic::{Request, Response, Status};

use crate::{
    context::Context,
    db::{
        paged::TextRows,
        parts::{self, PartFilter, PartRow},
    },
    error::Error,
    inventory::{PartId, PartType, Polarization, classify_part_id},
};

/// Parts per streamed page.
const PAGE: usize = 1000;

/// Implementation of the Parts service.
#[derive(Debug, Clone)]
pub struct PartsApi {
    ctx: Context,
}

impl PartsApi {
    /// A service over the daemon's context.
    pub fn new(ctx: Context) -> Self {
        PartsApi { ctx }
    }
}

/// Converts a stored row to the API message.
pub fn part_message(r: PartRow) -> Part {
    let historic = historic(&r.part_number);
    Part {
        id: r.id,
        part_number: r.part_number,
        part_type: r.part_type.unwrap_or_default(),
        polarization: r.polarization.unwrap_or_default(),
        date_created: r.date_created.unwrap_or_default(),
        date_modified: r.date_modified.unwrap_or_default(),
        historic,
    }
}

/// A row of [`parts::list_paged`] as the API sends it.
fn listed_part<'a>(id: i64, values: impl Iterator<Item = Option<&'a str>>) -> Part {
    let mut v = values.map(|v| v.unwrap_or_default().to_owned());
    let mut next = || v.next().unwrap_or_default();
    let part_number = next();
    Part {
        id,
        historic: historic(&part_number),
        part_number,
        part_type: next(),
        polarization: next(),
        date_created: next(),
        date_modified: next(),
    }
}

/// Whether a part number is in a historic format (adopted, never generated).
fn historic(number: &str) -> bool {
    matches!(classify_part_id(number), PartId::Historic { .. } | PartId::Unrecognised(_))
}

fn optional<T>(s: &str, parse: impl Fn(&str) -> Result<T, Error>) -> Result<Option<T>, Error> {
    if s.trim().is_empty() { Ok(None) } else { parse(s).map(Some) }
}

fn since(s: &str) -> Result<Option<String>, Error> {
    optional(s, |s| {
        humantime::parse_duration(s.trim())
            .map(crate::timestamp::ago)
            .map_err(|e| Error::invalid(format!("since {s:?}: {e}; use a duration such as 7d or 12h")))
    })
}

type PartStream = Pin<Box<dyn Stream<Item = Result<ListPartsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Parts for PartsApi {
    async fn add_parts(&self, req: Request<AddPartsRequest>) -> Result<Response<AddPartsResponse>, Status> {
        let caller = super::caller::of(&req)?;
        let r = req.into_inner();
        let part_type = PartType::parse(&r.part_type)?;
        let pol = Polarization::parse(&r.polarization)?;
        let rows = self.ctx.add_parts(&caller, part_type, pol, r.count).await?;
        Ok(Response::new(AddPartsResponse { parts: rows.into_iter().map(part_message).collect() }))
    }

    type ListPartsStream = PartStream;

    async fn list_parts(&self, req: Request<ListPartsRequest>) -> Result<Response<PartStream>, Status> {
        let r = req.into_inner();
        let filter = PartFilter {
            part_type: optional(&r.part_type, PartType::parse)?,
            polarization: optional(&r.polarization, Polarization::parse)?,
            since: since(&r.since)?,
            pattern: Some(r.pattern).filter(|p| !p.trim().is_empty()),
            limit: r.limit,
        };
        // Read and sent page by page: memory stays bounded by a page however
        // many parts there are, and a slow client holds back the reading.
        let db = self.ctx.dbs().parts.clone();
        let pages = |pages: Vec<TextRows>| {
            let parts =
                pages.iter().flat_map(|p| p.rows().map(|(id, values)| listed_part(id, values))).collect();
            vec![ListPartsResponse { parts }]
        };
        Ok(Response::new(super::streaming::paged(move |tx| {
            super::streaming::send_pages(tx, pages, move |page| async move {
                parts::list_paged(&db, &filter, PAGE, page).await
            })
        })))
    }

    async fn get_part(&self, req: Request<GetPartRequest>) -> Result<Response<Part>, Status> {
        let number = req.into_inner().part_number;
        match parts::get(&self.ctx.dbs().parts, &number).await? {
            Some(row) => Ok(Response::new(part_message(row))),
            None => Err(Error::NotFound(format!("part {:?} is not in parts.db", number.trim())).into()),
        }
    }

    async fn count_parts(
        &self,
        _req: Request<CountPartsRequest>,
    ) -> Result<Response<CountPartsResponse>, Status> {
        let counts = parts::count(&self.ctx.dbs().parts).await?;
        let total = counts.iter().map(|c| c.2 as u64).sum();
        Ok(Response::new(CountPartsResponse {
            counts: counts
                .into_iter()
                .map(|(t, p, n)| PartCount {
                    part_type: t.unwrap_or_default(),
                    polarization: p.unwrap_or_default(),
                    count: n as u64,
                })
                .collect(),
            total,
        }))
    }
}

//! `casman.v1.Labels`: renders label sheets and images and streams the files.

use std::pin::Pin;

use casman_proto::v1::{RenderLabelsRequest, RenderLabelsResponse, labels_server::Labels};
use futures_util::Stream;
use tonic::{Request, Response, Status};

use crate::{
    context::Context,
    error::Error,
    labels::{Format, LabelFile, Selection, render},
};

/// Bytes per streamed chunk.
const CHUNK: usize = 256 * 1024;

/// Implementation of the Labels service.
#[derive(Debug, Clone)]
pub struct LabelsApi {
    ctx: Context,
}

impl LabelsApi {
    /// A service over the daemon's context.
    pub fn new(ctx: Context) -> Self {
        LabelsApi { ctx }
    }
}

/// The messages of one file: its chunks, the first naming its ids and pages.
fn chunks(file: LabelFile) -> Vec<RenderLabelsResponse> {
    let mut out: Vec<RenderLabelsResponse> = file
        .data
        .chunks(CHUNK)
        .map(|c| RenderLabelsResponse { file: file.path.clone(), data: c.to_vec(), ..Default::default() })
        .collect();
    if out.is_empty() {
        out.push(RenderLabelsResponse { file: file.path.clone(), ..Default::default() });
    }
    out[0].part_numbers = file.ids;
    out[0].pages = file.pages;
    out
}

type FileStream = Pin<Box<dyn Stream<Item = Result<RenderLabelsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Labels for LabelsApi {
    type RenderLabelsStream = FileStream;

    async fn render_labels(&self, req: Request<RenderLabelsRequest>) -> Result<Response<FileStream>, Status> {
        let r = req.into_inner();
        let format = Format::parse(&r.format)?;
        let selection = if r.part_numbers.is_empty() {
            Selection::range(&r.part_type, &r.start, &r.end, &r.polarization)?
        } else if !r.part_type.trim().is_empty() {
            return Err(Error::invalid("give either a part type and range or part numbers, not both").into());
        } else {
            Selection::list(&r.part_numbers)?
        };
        let cfg = self.ctx.config().labels.clone();
        // Rendering is CPU work: off the async threads. Every file is made
        // before the first is sent, so a refusal comes before any bytes.
        let files = tokio::task::spawn_blocking(move || render(&cfg, &selection, format, r.single_file))
            .await
            .map_err(|e| Error::internal("rendering labels", e))??;
        let messages: Vec<Result<RenderLabelsResponse, Status>> =
            files.into_iter().flat_map(chunks).map(Ok).collect();
        Ok(Response::new(Box::pin(futures_util::stream::iter(messages))))
    }
}

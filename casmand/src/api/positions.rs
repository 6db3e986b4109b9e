//! `casman.v1.Positions`: antenna grid positions, coordinates, layout views.

use std::collections::BTreeMap;

use casman_proto::v1::{
    AntennaPosition, AssignPositionRequest, AssignPositionResponse, CsvProblem,
    GenerateGridCoordinatesRequest, GenerateGridCoordinatesResponse, GetGridLayoutRequest,
    GetGridLayoutResponse, GetPositionRequest, GetPositionResponse, GridCell, GridCoordinate,
    ListPositionsRequest, ListPositionsResponse, LoadCoordinatesRequest, LoadCoordinatesResponse,
    PlotGridRequest, PlotGridResponse, RemovePositionRequest, RemovePositionResponse,
    positions_server::Positions,
};
use tonic::{Request, Response, Status};

use crate::{
    context::Context,
    db::{
        as_of::At,
        positions::{self, CoordinateRow, PositionRow},
    },
    error::Error,
    inventory::{
        CoordinateParams, GridCode, GridLayout, antenna_base, core_grid_code as grid_code, date_or_today,
        generate_grid_positions, grid_positions_csv, grid_svg, kernel_index, parse_grid_positions,
        parse_skipping_bad_rows,
    },
};

/// Implementation of the Positions service.
#[derive(Debug, Clone)]
pub struct PositionsApi {
    ctx: Context,
}

impl PositionsApi {
    /// A service over the daemon's context.
    pub fn new(ctx: Context) -> Self {
        PositionsApi { ctx }
    }

    /// Every assigned position by grid code (at `at` when given; rows whose
    /// code does not parse are left out).
    async fn assignments(
        &self,
        at: Option<&At>,
    ) -> Result<(Vec<PositionRow>, BTreeMap<GridCode, String>), Error> {
        let rows = positions::list(&self.ctx.dbs().parts, None, at).await?;
        let map = rows
            .iter()
            .filter_map(|r| GridCode::parse(&r.grid_code).ok().map(|c| (c, r.antenna_number.clone())))
            .collect();
        Ok((rows, map))
    }
}

fn kernel_of(grid: &str) -> Option<u32> {
    GridCode::parse(grid).ok().and_then(kernel_index).map(u32::from)
}

/// Converts a stored row to the API message.
pub fn position_message(r: PositionRow) -> AntennaPosition {
    AntennaPosition {
        kernel_index: kernel_of(&r.grid_code),
        id: r.id,
        antenna_number: r.antenna_number,
        array_id: r.array_id,
        row_offset: i32::try_from(r.row_offset).unwrap_or_default(),
        east_col: u32::try_from(r.east_col).unwrap_or_default(),
        grid_code: r.grid_code,
        assigned_at: r.assigned_at,
        notes: r.notes.unwrap_or_default(),
        latitude: r.latitude,
        longitude: r.longitude,
        height: r.height,
        coordinate_system: r.coordinate_system.unwrap_or_default(),
    }
}

fn coordinate_message(c: CoordinateRow) -> GridCoordinate {
    GridCoordinate {
        grid_code: c.grid_code,
        latitude: c.latitude,
        longitude: c.longitude,
        height: c.height,
        coordinate_system: c.coordinate_system.unwrap_or_default(),
        notes: c.notes.unwrap_or_default(),
    }
}

fn coordinate_params(r: &GenerateGridCoordinatesRequest) -> Result<CoordinateParams, Error> {
    let mut p = CoordinateParams::new(date_or_today(&r.date)?);
    let [odd, even] = &mut p.column_steps_m;
    let checks: [(&str, Option<f64>, f64, &mut f64); 6] = [
        ("reference latitude", r.reference_latitude, 90.0, &mut p.reference_latitude),
        ("reference longitude", r.reference_longitude, 180.0, &mut p.reference_longitude),
        ("height", r.reference_height, 100_000.0, &mut p.reference_height),
        ("row pitch", r.row_pitch_m, 1_000.0, &mut p.row_pitch_m),
        ("odd column step", r.column_step_odd_m, 1_000.0, odd),
        ("even column step", r.column_step_even_m, 1_000.0, even),
    ];
    for (what, value, limit, slot) in checks {
        if let Some(v) = value {
            if !v.is_finite() || v.abs() > limit {
                return Err(Error::invalid(format!("{what} {v}: must be a number within -{limit}..{limit}")));
            }
            *slot = v;
        }
    }
    if p.reference_latitude.abs() >= 90.0 {
        return Err(Error::invalid("reference latitude: must be strictly between -90 and 90"));
    }
    if !r.coordinate_system.trim().is_empty() {
        p.coordinate_system = r.coordinate_system.trim().to_owned();
    }
    Ok(p)
}

#[tonic::async_trait]
impl Positions for PositionsApi {
    async fn assign_position(
        &self,
        req: Request<AssignPositionRequest>,
    ) -> Result<Response<AssignPositionResponse>, Status> {
        let caller = super::caller::of(&req)?;
        let r = req.into_inner();
        let antenna = antenna_base(&r.antenna)?;
        let code = grid_code(&r.grid_code)?;
        let notes = Some(r.notes.trim()).filter(|n| !n.is_empty());
        let a = self.ctx.assign_position(&caller, &antenna, code, notes, r.force).await?;
        let mut message = format!("Assigned {antenna} to {code}");
        if let Some(p) = &a.previous {
            message.push_str(&format!("; moved from {p}"));
        }
        if let Some(e) = &a.evicted {
            message.push_str(&format!("; evicted {e}, which now has no position"));
        }
        Ok(Response::new(AssignPositionResponse {
            position: Some(position_message(a.row)),
            previous_grid_code: a.previous.unwrap_or_default(),
            evicted_antenna: a.evicted.unwrap_or_default(),
            message,
        }))
    }

    async fn remove_position(
        &self,
        req: Request<RemovePositionRequest>,
    ) -> Result<Response<RemovePositionResponse>, Status> {
        let caller = super::caller::of(&req)?;
        let antenna = antenna_base(&req.into_inner().antenna)?;
        let removed = self.ctx.remove_position(&caller, &antenna).await?;
        let message = match &removed {
            Some(r) => format!("Removed {antenna} from {}", r.grid_code),
            None => format!("{antenna} had no position; nothing removed"),
        };
        Ok(Response::new(RemovePositionResponse {
            removed: removed.is_some(),
            position: removed.map(position_message),
            message,
        }))
    }

    async fn get_position(
        &self,
        req: Request<GetPositionRequest>,
    ) -> Result<Response<GetPositionResponse>, Status> {
        let r = req.into_inner();
        let (query, at) = (r.query, At::optional(&r.as_of)?);
        let at = at.as_ref();
        let parts = &self.ctx.dbs().parts;
        let (row, code) = if query.trim().to_ascii_uppercase().starts_with("ANT") {
            let antenna = antenna_base(&query)?;
            let row = positions::get_by_antenna(parts, &antenna, at).await?.ok_or_else(|| {
                Error::NotFound(format!(
                    "antenna {antenna} has no grid position (assign one with positions assign)"
                ))
            })?;
            let code = GridCode::parse(&row.grid_code).ok();
            (Some(row), code)
        } else {
            let code = grid_code(&query)?;
            (positions::get_by_grid(parts, code, at).await?, Some(code))
        };
        let coordinate = match code {
            Some(c) => positions::coordinate(parts, c, at).await?.map(coordinate_message),
            None => None,
        };
        Ok(Response::new(GetPositionResponse {
            grid_code: code
                .map(|c| c.to_string())
                .or_else(|| row.as_ref().map(|r| r.grid_code.clone()))
                .unwrap_or_default(),
            kernel_index: code.and_then(kernel_index).map(u32::from),
            position: row.map(position_message),
            coordinate,
        }))
    }

    async fn list_positions(
        &self,
        req: Request<ListPositionsRequest>,
    ) -> Result<Response<ListPositionsResponse>, Status> {
        let r = req.into_inner();
        let at = At::optional(&r.as_of)?;
        let array = r.array_id.trim().to_ascii_uppercase();
        let array_id = match array.as_bytes() {
            [] => None,
            [a] if a.is_ascii_uppercase() => Some(char::from(*a)),
            _ => return Err(Error::invalid(format!("array {array:?}: expected one letter, e.g. C")).into()),
        };
        let rows = positions::list(&self.ctx.dbs().parts, array_id, at.as_ref()).await?;
        Ok(Response::new(ListPositionsResponse {
            positions: rows.into_iter().map(position_message).collect(),
        }))
    }

    async fn get_grid_layout(
        &self,
        req: Request<GetGridLayoutRequest>,
    ) -> Result<Response<GetGridLayoutResponse>, Status> {
        let at = At::optional(&req.into_inner().as_of)?;
        let layout = GridLayout::core();
        let (rows, map) = self.assignments(at.as_ref()).await?;
        let cells = layout
            .positions()
            .map(|code| GridCell {
                grid_code: code.to_string(),
                row_offset: code.row_offset(),
                east_col: code.east_col(),
                kernel_index: layout.kernel_index(code).map(u32::from),
                antenna_number: map.get(&code).cloned().unwrap_or_default(),
            })
            .collect();
        let outside = rows
            .into_iter()
            .filter(|r| GridCode::parse(&r.grid_code).map_or(true, |c| !layout.contains(c)))
            .map(position_message)
            .collect();
        Ok(Response::new(GetGridLayoutResponse {
            array_id: layout.array_id.to_string(),
            rows: layout
                .rows()
                .filter_map(|r| GridCode::new(layout.array_id, r, 1).ok().map(|c| c.row_label()))
                .collect(),
            columns: layout.east_columns,
            cells,
            outside,
        }))
    }

    async fn plot_grid(&self, _req: Request<PlotGridRequest>) -> Result<Response<PlotGridResponse>, Status> {
        let layout = GridLayout::core();
        let (_, map) = self.assignments(None).await?;
        let assigned = map.keys().filter(|c| layout.contains(**c)).count();
        Ok(Response::new(PlotGridResponse {
            svg: grid_svg(&layout, &map),
            positions: u32::try_from(layout.positions().count()).unwrap_or(u32::MAX),
            assigned: u32::try_from(assigned).unwrap_or(u32::MAX),
        }))
    }

    async fn generate_grid_coordinates(
        &self,
        req: Request<GenerateGridCoordinatesRequest>,
    ) -> Result<Response<GenerateGridCoordinatesResponse>, Status> {
        let params = coordinate_params(&req.into_inner())?;
        let rows = generate_grid_positions(&params);
        Ok(Response::new(GenerateGridCoordinatesResponse {
            csv: grid_positions_csv(&rows)?,
            rows: u32::try_from(rows.len()).unwrap_or(u32::MAX),
        }))
    }

    async fn load_coordinates(
        &self,
        req: Request<LoadCoordinatesRequest>,
    ) -> Result<Response<LoadCoordinatesResponse>, Status> {
        let caller = super::caller::of(&req)?;
        let r = req.into_inner();
        let (file, bad) = if r.skip_bad_rows {
            parse_skipping_bad_rows(&r.csv, parse_grid_positions).map_err(Error::from)?
        } else {
            (parse_grid_positions(&r.csv).map_err(Error::from)?, Vec::new())
        };
        let mut bad_lines: Vec<u64> = bad.iter().map(|e| e.line).collect();
        bad_lines.dedup();
        let load = self.ctx.load_coordinates(&caller, &file, bad_lines.len(), &r.source).await?;
        let done = load.done;
        Ok(Response::new(LoadCoordinatesResponse {
            loaded: u32::try_from(done.loaded).unwrap_or(u32::MAX),
            skipped: u32::try_from(load.skipped).unwrap_or(u32::MAX),
            positions_updated: u32::try_from(done.positions_updated).unwrap_or(u32::MAX),
            errors: bad
                .into_iter()
                .map(|e| CsvProblem { line: e.line, field: e.field, value: e.value, rule: e.rule })
                .collect(),
            blank_lines: file.skipped_lines,
        }))
    }
}

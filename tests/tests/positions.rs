//! Antenna grid positions, coordinates and the grid views (spec sections 5,
//! acceptance cases 16-22), against the real binaries.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use casman_tests::Daemon;
use serde_json::Value;

/// The legacy CAsMan file `name`, when the shared folder is present.
fn legacy(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/legacy").join(name);
    if p.exists() {
        Some(p)
    } else {
        casman_tests::skip(&format!("{} is absent", p.display()));
        None
    }
}

/// The rows of `table` in parts.db, as `database print` shows them.
fn table(d: &Daemon, name: &str) -> Value {
    let dump = d.ctl_json(&["database", "print", "--parts"]);
    dump["tables"].as_array().unwrap().iter().find(|t| t["table"] == name).unwrap()["rows"].clone()
}

fn daemon_with_antennas(n: &str) -> Daemon {
    let d = Daemon::start();
    d.ctl_ok(&["parts", "add", "ANTENNA", n, "1"]);
    d
}

#[test]
fn assign_refuses_then_force_moves_and_reports_evictions() {
    let d = daemon_with_antennas("4");
    d.ctl_ok(&["parts", "add", "ANTENNA", "5", "2"]);
    let a = d.ctl_json(&["positions", "assign", "ant00001p1", "cn002e03", "--notes", "first"]);
    let p = &a["position"];
    assert_eq!(p["antenna_number"], "ANT00001");
    assert_eq!(
        (p["array_id"].as_str(), p["row_offset"].as_i64(), p["east_col"].as_i64()),
        (Some("C"), Some(2), Some(3))
    );
    assert_eq!(p["grid_code"], "CN002E03");
    assert_eq!(p["kernel_index"], 116);
    assert_eq!(p["notes"], "first");
    assert!(p["assigned_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(p["latitude"], Value::Null);
    assert_eq!((a["previous_grid_code"].as_str(), a["evicted_antenna"].as_str()), (Some(""), Some("")));

    // The antenna already has a position; the position is occupied.
    let e = d.ctl_err(&["positions", "assign", "ANT00001", "CC000E01"], 1);
    assert!(e.contains("ANT00001") && e.contains("already assigned to CN002E03"), "{e}");
    let e = d.ctl_err(&["positions", "assign", "ANT00002P1", "CN002E03"], 1);
    assert!(e.contains("CN002E03") && e.contains("already occupied by ANT00001"), "{e}");

    // --force both ways: the antenna moves, the occupant is evicted.
    d.ctl_ok(&["positions", "assign", "ANT00002", "CC000E01"]);
    let a = d.ctl_json(&["positions", "assign", "ANT00002", "CN002E03", "--force"]);
    assert_eq!(a["previous_grid_code"], "CC000E01");
    assert_eq!(a["evicted_antenna"], "ANT00001");
    let msg = a["message"].as_str().unwrap();
    assert!(msg.contains("moved from CC000E01") && msg.contains("evicted ANT00001"), "{msg}");
    let e = d.ctl_err(&["positions", "show", "ANT00001"], 1);
    assert!(e.contains("ANT00001 has no grid position"), "{e}");
    assert_eq!(d.ctl_json(&["positions", "show", "CC000E01"])["position"], Value::Null);
    let human = d.ctl_ok(&["positions", "assign", "ANT00001", "CN002E03", "--force"]);
    assert!(human.contains("Assigned ANT00001 to CN002E03; evicted ANT00002"), "{human}");

    // Invalid codes and antennas (InvalidArgument exits 2).
    let e = d.ctl_err(&["positions", "assign", "ANT00003", "INVALID"], 2);
    assert!(e.contains("\"INVALID\"") && e.contains("does not match pattern"), "{e}");
    let e = d.ctl_err(&["positions", "assign", "ANT00003", "CC001E01"], 2);
    assert!(e.contains("Center row must use offset 000"), "{e}");
    let e = d.ctl_err(&["positions", "assign", "ANTP100001", "CC000E02"], 2);
    assert!(e.contains("ANTP100001"), "{e}");
    // Unknown antenna: NotFound, naming it. A P2-only antenna is accepted.
    let e = d.ctl_err(&["positions", "assign", "ANT00099", "CC000E02"], 1);
    assert!(e.contains("ANT00099P1") && e.contains("ANT00099P2"), "{e}");
    d.ctl_ok(&["positions", "assign", "ANT00005P2", "CC000E02"]);
    assert_eq!(d.ctl_json(&["positions", "show", "ANT00005P1"])["grid_code"], "CC000E02");
}

#[test]
fn lookups_list_order_filter_and_remove() {
    let d = daemon_with_antennas("5");
    for (ant, code) in [
        ("ANT00001P1", "CC000E01"),
        ("ANT00002", "CS005E02"),
        ("ANT00003", "CN010E03"),
        ("ANT00004", "CN010E01"),
    ] {
        d.ctl_ok(&["positions", "assign", ant, code]);
    }
    // Center and south rows.
    let s = d.ctl_json(&["positions", "show", "ANT00002"]);
    assert_eq!(s["position"]["row_offset"], -5);
    assert_eq!(s["grid_code"], "CS005E02");
    let s = d.ctl_json(&["positions", "show", "cc000e01"]);
    assert_eq!(s["position"]["antenna_number"], "ANT00001");
    assert_eq!(s["position"]["row_offset"], 0);
    assert_eq!(s["kernel_index"], 126);
    // With and without suffix, any case.
    for q in ["ANT00003", "ANT00003P1", "ant00003p2"] {
        assert_eq!(d.ctl_json(&["positions", "show", q])["grid_code"], "CN010E03", "{q}");
    }
    // A valid, empty position (beyond the core: expansion allowed).
    let s = d.ctl_json(&["positions", "show", "CN099E05"]);
    assert_eq!((s["position"].clone(), s["kernel_index"].clone()), (Value::Null, Value::Null));
    let list = d.ctl_json(&["positions", "list"]);
    let codes: Vec<&str> =
        list["positions"].as_array().unwrap().iter().map(|p| p["grid_code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["CN010E01", "CN010E03", "CC000E01", "CS005E02"]);
    assert_eq!(d.ctl_json(&["positions", "list", "--array", "C"])["positions"].as_array().unwrap().len(), 4);
    assert!(d.ctl_json(&["positions", "list", "--array", "A"])["positions"].as_array().unwrap().is_empty());
    let human = d.ctl_ok(&["positions", "list"]);
    assert!(human.contains("CN010E01") && human.contains("4 position(s)"), "{human}");

    // Remove: existing (with suffix), then again (success, nothing removed).
    let r = d.ctl_json(&["positions", "remove", "ANT00003P1"]);
    assert_eq!((r["removed"].as_bool(), r["position"]["grid_code"].as_str()), (Some(true), Some("CN010E03")));
    let r = d.ctl_json(&["positions", "remove", "ANT00003"]);
    assert_eq!((r["removed"].as_bool(), r["position"].clone()), (Some(false), Value::Null));
    assert_eq!(table(&d, "antenna_positions").as_array().unwrap().len(), 3);
}

#[test]
fn core_grid_table_has_258_cells_with_kernel_indices() {
    let d = daemon_with_antennas("2");
    d.ctl_ok(&["positions", "assign", "ANT00001", "CC000E01"]);
    d.ctl_ok(&["positions", "assign", "ANT00002", "CN099E05"]);
    let g = d.ctl_json(&["positions", "grid"]);
    let rows = g["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 43);
    assert_eq!(
        (rows[0].as_str(), rows[21].as_str(), rows[42].as_str()),
        (Some("N021"), Some("C000"), Some("S021"))
    );
    assert_eq!(g["columns"], 6);
    let cells = g["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 258);
    assert_eq!(
        (cells[0]["grid_code"].as_str(), cells[0]["kernel_index"].as_u64()),
        (Some("CN021E01"), Some(0))
    );
    assert_eq!(cells[126]["grid_code"], "CC000E01");
    assert_eq!(cells[126]["antenna_number"], "ANT00001");
    assert_eq!(cells[255]["kernel_index"], 255);
    assert_eq!(
        (cells[256]["kernel_index"].clone(), cells[257]["kernel_index"].clone()),
        (Value::Null, Value::Null)
    );
    assert_eq!(g["outside"][0]["grid_code"], "CN099E05");
    let human = d.ctl_ok(&["positions", "grid"]);
    assert!(human.contains("N021") && human.contains("S021") && human.contains("ANT00001"), "{human}");
    assert!(human.contains("1 of 258 positions assigned"), "{human}");
}

/// A small well-formedness check: tags balance and attribute quotes pair up.
/// Returns the number of elements.
fn well_formed(doc: &str) -> Result<usize, String> {
    let mut stack: Vec<String> = Vec::new();
    let mut elements = 0;
    let body = doc.trim_start();
    let mut rest = match body.strip_prefix("<?xml") {
        Some(r) => &r[r.find("?>").ok_or("unclosed declaration")? + 2..],
        None => body,
    };
    while let Some(open) = rest.find('<') {
        let close = rest[open..].find('>').ok_or("unclosed tag")? + open;
        let tag = &rest[open + 1..close];
        if tag.contains('<') {
            return Err(format!("'<' inside tag {tag}"));
        }
        if let Some(name) = tag.strip_prefix('/') {
            let top = stack.pop().ok_or_else(|| format!("stray </{name}>"))?;
            if top != name.trim() {
                return Err(format!("</{name}> closes <{top}>"));
            }
        } else {
            if !tag.matches('"').count().is_multiple_of(2) {
                return Err(format!("unbalanced quotes in <{tag}>"));
            }
            elements += 1;
            if !tag.ends_with('/') {
                stack.push(tag.split_whitespace().next().unwrap_or_default().to_owned());
            }
        }
        rest = &rest[close + 1..];
    }
    if stack.is_empty() { Ok(elements) } else { Err(format!("unclosed {stack:?}")) }
}

#[test]
fn plot_writes_an_svg_with_one_element_per_core_position() {
    let d = daemon_with_antennas("3");
    d.ctl_ok(&["positions", "assign", "ANT00001", "CN021E01"]);
    d.ctl_ok(&["positions", "assign", "ANT00002", "CS021E06"]);
    let out = d.dir.path().join("grid.svg");
    let r = d.ctl_json(&["grid", "plot", "-o", out.to_str().unwrap()]);
    assert_eq!((r["positions"].as_u64(), r["assigned"].as_u64()), (Some(258), Some(2)));
    let svg = std::fs::read_to_string(&out).unwrap();
    assert!(svg.contains("<svg") && svg.contains("xmlns=\"http://www.w3.org/2000/svg\""));
    let elements = well_formed(&svg).unwrap();
    assert!(elements > 258 * 3, "{elements}");
    assert_eq!(svg.matches("<g class=\"position").count(), 258);
    assert_eq!(svg.matches("<g class=\"position assigned\"").count(), 2);
    assert!(svg.contains(">ANT00001<") && svg.contains(">ANT00002<") && svg.contains(">k 126<"));
    assert!(svg.contains("id=\"CC000E01\"") && svg.contains("2 of 258 positions assigned"));
    // Without -o the SVG goes to stdout.
    assert!(d.ctl_ok(&["grid", "plot"]).starts_with("<?xml"));
}

#[test]
fn generated_coordinates_load_and_reach_assigned_antennas() {
    let d = daemon_with_antennas("1");
    d.ctl_ok(&["positions", "assign", "ANT00001", "CC000E01"]);
    let csv = d.dir.path().join("grid_positions.csv");
    let r = d.ctl_json(&["grid", "coordinates", "-o", csv.to_str().unwrap(), "--date", "2026-02-06"]);
    assert_eq!(r["rows"], 258);
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 259);
    assert_eq!(lines[0], "grid_code,latitude,longitude,height,coordinate_system,notes");
    assert!(lines[1].starts_with("CS021E01,37.234191511,-118.283416000,1183.81,WGS84,"), "{}", lines[1]);
    assert!(lines[258].starts_with("CN021E06,"), "{}", lines[258]);
    if let Some(legacy) = legacy("grid_positions.csv") {
        // Regenerating reproduces every row of CAsMan's file but the hand-edited one.
        let theirs = std::fs::read_to_string(legacy).unwrap();
        let mut differ = Vec::new();
        for (a, b) in lines.iter().zip(theirs.lines()) {
            if a.trim_end() != b.trim_end() {
                differ.push(b.split(',').next().unwrap().to_owned());
            }
        }
        assert_eq!(differ, ["CS021E06"]);
    }
    // Parameters change the output.
    let other =
        d.ctl_ok(&["grid", "coordinates", "--ref-lat", "37.5", "--ref-lon", "-118.0", "--height", "1000"]);
    assert!(other.contains("CC000E01,37.500000000,-118.000000000,1000.00,WGS84"), "{other}");

    let r = d.ctl_json(&["database", "load-coordinates", "--csv", csv.to_str().unwrap()]);
    assert_eq!(
        (r["loaded"].as_u64(), r["skipped"].as_u64(), r["positions_updated"].as_u64()),
        (Some(258), Some(0), Some(1))
    );
    let p = &d.ctl_json(&["positions", "show", "ANT00001"])["position"];
    assert_eq!((p["latitude"].as_f64(), p["longitude"].as_f64()), (Some(37.234286), Some(-118.283416)));
    assert_eq!(p["coordinate_system"], "WGS84");
    // A later assignment picks up the loaded coordinates too.
    d.ctl_ok(&["positions", "assign", "ANT00001", "CN001E02", "--force"]);
    let p = &d.ctl_json(&["positions", "show", "ANT00001"])["position"];
    assert!(p["latitude"].as_f64().unwrap() > 37.234286);
    assert_eq!(table(&d, "grid_positions").as_array().unwrap().len(), 258);
}

#[test]
fn load_coordinates_reports_like_casman() {
    // Acceptance case 22.
    let d = Daemon::start();
    let dir = d.dir.path();
    let one = dir.join("one.csv");
    std::fs::write(
        &one,
        "grid_code,latitude,longitude,height,coordinate_system,notes\nCN001E01,37.1,-118.2,1183.81,WGS84,\n",
    )
    .unwrap();
    let out = d.ctl_ok(&["database", "load-coordinates", "--csv", one.to_str().unwrap()]);
    assert!(out.contains("Loaded:  1 position(s)") && out.contains("[OK]"), "{out}");
    // Codes no antenna stands on are loaded all the same; indented rows and a
    // whitespace-only line (skipped).
    let three = dir.join("three.csv");
    std::fs::write(
        &three,
        "grid_code,latitude,longitude,height,coordinate_system,notes\n  CN001E02, 37.1,-118.2,1183.81,WGS84,a\n  \
         CN001E03,37.1,-118.3,1183.81,,\n  CS001E01,37.0,-118.2,1183.81,WGS84,c\n   \n",
    )
    .unwrap();
    let r = d.ctl_json(&["database", "load-coordinates", "--csv", three.to_str().unwrap()]);
    assert_eq!((r["loaded"].as_u64(), r["skipped"].as_u64()), (Some(3), Some(1)));
    assert_eq!(r["blank_lines"], serde_json::json!([5]));
    assert_eq!(table(&d, "grid_positions").as_array().unwrap().len(), 4);
    // Default path: ./grid_positions.csv, read by casmanctl in its own directory.
    let e = d.ctl_err(&["database", "load-coordinates", "--csv", dir.join("nope.csv").to_str().unwrap()], 1);
    assert!(e.contains("CSV file not found") && e.contains("nope.csv"), "{e}");
    let out = d.ctl_cmd().current_dir(dir).args(["database", "load-coordinates"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("CSV file not found: grid_positions.csv"));
    std::fs::copy(&one, dir.join("grid_positions.csv")).unwrap();
    let out = d.ctl_cmd().current_dir(dir).args(["database", "load-coordinates"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn bad_coordinate_rows_write_nothing_unless_skipped() {
    let d = daemon_with_antennas("1");
    d.ctl_ok(&["positions", "assign", "ANT00001", "CN001E01"]);
    let good = d.dir.path().join("good.csv");
    std::fs::write(&good, "grid_code,latitude,longitude,height\nCC000E01,37.2,-118.2,1183\n").unwrap();
    d.ctl_ok(&["database", "load-coordinates", "--csv", good.to_str().unwrap()]);
    let before = (table(&d, "grid_positions"), table(&d, "antenna_positions"));

    let bad = d.dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "grid_code,latitude,longitude,height\nCC000E01,40.0,-118.2,1183\nCN001E01,37.3,-118.2,1183\n\
         CX001E01,37.3,-118.2,1183\nCN001E02,abc,-118.2,1183\n",
    )
    .unwrap();
    let e = d.ctl_err(&["database", "load-coordinates", "--csv", bad.to_str().unwrap()], 2);
    assert!(
        e.contains("line 4") && e.contains("CX001E01") && e.contains("line 5") && e.contains("latitude"),
        "{e}"
    );
    assert!(e.contains("nothing was loaded"), "{e}");
    assert_eq!((table(&d, "grid_positions"), table(&d, "antenna_positions")), before);

    let r = d.ctl_json(&["database", "load-coordinates", "--csv", bad.to_str().unwrap(), "--skip-bad-rows"]);
    assert_eq!(
        (r["loaded"].as_u64(), r["skipped"].as_u64(), r["positions_updated"].as_u64()),
        (Some(2), Some(2), Some(1))
    );
    let lines: Vec<u64> =
        r["errors"].as_array().unwrap().iter().map(|e| e["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, [4, 5]);
    assert_eq!(d.ctl_json(&["positions", "show", "ANT00001"])["position"]["latitude"], 37.3);
    assert_eq!(d.ctl_json(&["positions", "show", "CC000E01"])["coordinate"]["latitude"], 40.0);
    let human =
        d.ctl_ok(&["database", "load-coordinates", "--csv", bad.to_str().unwrap(), "--skip-bad-rows"]);
    assert!(human.contains("skipped line 4"), "{human}");
}

#[test]
fn legacy_grid_positions_csv_loads() {
    let Some(path) = legacy("grid_positions.csv") else { return };
    let d = Daemon::start();
    let r = d.ctl_json(&["database", "load-coordinates", "--csv", path.to_str().unwrap()]);
    assert_eq!((r["loaded"].as_u64(), r["skipped"].as_u64()), (Some(258), Some(0)));
    // The hand-edited row with a leading space in its latitude.
    let c = &d.ctl_json(&["positions", "show", "CS021E06"])["coordinate"];
    assert_eq!((c["latitude"].as_f64(), c["longitude"].as_f64()), (Some(37.234330957), Some(-118.283468134)));
    assert_eq!(c["notes"], "manually edited outrigger on 2026-02-04");
}

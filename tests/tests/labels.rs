//! Barcode labels end to end: sheets and images made by the real casmand and
//! written by the real casmanctl decode, with an independent decoder (zbar's
//! `zbarimg`), to exactly the requested ids in order. PDF pages are
//! rasterized by poppler's `pdftoppm` and checked by `qpdf --check`; SVG by
//! librsvg's `rsvg-convert`. tests/run installs the four tools (Debian
//! zbar-tools, poppler-utils, qpdf, librsvg2-bin); without them a test says
//! so and passes, except under `CI=true`, where it fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

use casman_tests::{Daemon, DaemonOpts};

const TOOLS: [(&str, &str); 4] = [
    ("zbarimg", "zbar-tools"),
    ("pdftoppm", "poppler-utils"),
    ("qpdf", "qpdf"),
    ("rsvg-convert", "librsvg2-bin"),
];

/// Whether the decoding tools are installed; under CI their absence fails.
fn tools_present() -> bool {
    let missing: Vec<&str> = TOOLS
        .iter()
        .filter(|(cmd, _)| {
            Command::new("sh")
                .arg("-c")
                .arg(format!("command -v {cmd}"))
                .output()
                .map_or(true, |o| !o.status.success())
        })
        .map(|(_, pkg)| *pkg)
        .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!("needs the Debian packages {} (tests/run installs them)", missing.join(", "));
    casman_tests::skip(&msg);
    false
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Code 128 symbols zbar finds in `files`, in file order.
fn zbar(files: &[PathBuf]) -> Vec<String> {
    let out = Command::new("zbarimg")
        .args(["-q", "--raw", "-Sdisable", "-Scode128.enable"])
        .args(files)
        .stdin(Stdio::null())
        .output()
        .expect("zbarimg");
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}

/// A grey image read from a binary PGM (what `pdftoppm -gray` writes).
struct Pgm {
    width: usize,
    height: usize,
    px: Vec<u8>,
}

impl Pgm {
    fn read(path: &Path) -> Pgm {
        let bytes = std::fs::read(path).unwrap();
        // "P5" WS width WS height WS maxval single-WS data
        let mut fields = Vec::new();
        let mut i = 0;
        while fields.len() < 4 {
            while bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            let start = i;
            while !bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            fields.push(String::from_utf8_lossy(&bytes[start..i]).into_owned());
        }
        assert_eq!(fields[0], "P5", "{}", path.display());
        let (width, height) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
        Pgm { width, height, px: bytes[i + 1..].to_vec() }
    }

    /// The region (x, y, w, h) as a PGM file; `None` if it is blank.
    fn crop(&self, (x, y, w, h): (usize, usize, usize, usize), out: &Path) -> Option<PathBuf> {
        let mut data = Vec::with_capacity(w * h);
        for row in y..(y + h).min(self.height) {
            let start = row * self.width + x;
            data.extend_from_slice(&self.px[start..start + w.min(self.width - x)]);
        }
        if data.iter().all(|&p| p > 200) {
            return None;
        }
        let mut file = format!("P5\n{} {}\n255\n", w.min(self.width - x), data.len() / w.min(self.width - x))
            .into_bytes();
        file.extend(data);
        std::fs::write(out, file).unwrap();
        Some(out.to_path_buf())
    }
}

/// Rasterizes `pdf` at 300 dpi and decodes every label cell by cell, in
/// sheet order (rows left to right, top to bottom), for labels of
/// `label_w × label_h` px on the default layout (0.5 in margins, 0.25 in
/// gaps, 3 per row). Returns the ids of each page.
fn decode_sheet(pdf: &Path, label_w: usize, label_h: usize) -> Vec<Vec<String>> {
    run(Command::new("qpdf").arg("--check").arg(pdf));
    let dir = tempfile::tempdir().unwrap();
    run(Command::new("pdftoppm").args(["-r", "300", "-gray"]).arg(pdf).arg(dir.path().join("page")));
    let mut pages: Vec<PathBuf> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
    pages.sort();
    let (margin, gap, pad) = (150, 75, 30);
    pages
        .iter()
        .enumerate()
        .map(|(p, page)| {
            let img = Pgm::read(page);
            let mut cells = Vec::new();
            for row in 0.. {
                let y = margin + row * (label_h + gap);
                if y + label_h > img.height - margin {
                    break;
                }
                for col in 0..3 {
                    let x = margin + col * (label_w + gap);
                    let out = dir.path().join(format!("cell-{p}-{row:02}-{col}.pgm"));
                    cells.extend(img.crop((x - pad, y - pad, label_w + 2 * pad, label_h + 2 * pad), &out));
                }
            }
            let ids = zbar(&cells);
            assert_eq!(
                ids.len(),
                cells.len(),
                "page {} of {}: {} labels, {} decoded: {ids:?}",
                p + 1,
                pdf.display(),
                cells.len(),
                ids.len()
            );
            // The whole page holds no symbol besides those of its cells.
            assert_eq!(zbar(std::slice::from_ref(page)).len(), cells.len(), "page {}", p + 1);
            ids
        })
        .collect()
}

fn ids(prefix: &str, range: std::ops::RangeInclusive<u32>, pol: u32) -> Vec<String> {
    range.map(|n| format!("{prefix}{n:05}P{pol}")).collect()
}

/// Width and height from a PNG's IHDR.
fn png_size(path: &Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[1..4], b"PNG", "{}", path.display());
    let be = |r: &[u8]| u32::from_be_bytes([r[0], r[1], r[2], r[3]]);
    (be(&b[16..20]), be(&b[20..24]))
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn add_fifty_antennas_and_print_their_labels_with_one_command() {
    if !tools_present() {
        return;
    }
    let d = Daemon::start();
    d.ctl_ok(&["parts", "add", "ANTENNA", "3", "1"]);
    let sheet = d.dir.path().join("batch.pdf");
    let v = d.ctl_json(&["parts", "add", "ANTENNA", "50", "1", "--labels", sheet.to_str().unwrap()]);
    let expected = ids("ANT", 4..=53, 1);
    assert_eq!(v["parts"], serde_json::json!(expected));
    assert_eq!(v["labels"]["pages"], 2, "{v}");
    let pages = decode_sheet(&sheet, 360, 225);
    assert_eq!(pages.len(), 2);
    assert_eq!(pages[0].len(), 30, "30 labels per Letter page (3 × 10)");
    assert_eq!(pages.concat(), expected, "the sheet holds exactly the new parts, in order");
}

#[test]
fn ranges_make_sheets_of_both_polarizations_in_order() {
    if !tools_present() {
        return;
    }
    let d = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    // One file: 2 × 50 labels, P2 starting on a new page: 2 + 2 pages.
    let all = dir.path().join("all.pdf");
    d.ctl_ok(&["labels", "ANT", "1", "50", "--out", all.to_str().unwrap()]);
    let pages = decode_sheet(&all, 360, 225);
    assert_eq!(pages.len(), 4);
    assert_eq!(pages[..2].concat(), ids("ANT", 1..=50, 1));
    assert_eq!(pages[2..].concat(), ids("ANT", 1..=50, 2));

    // CAsMan's printpages: one file per polarization, CAsMan's names, in
    // $CASMAN_BARCODE_DIR.
    let barcodes = dir.path().join("barcodes");
    std::fs::create_dir(&barcodes).unwrap();
    for (t, a, b) in [("ANTENNA", "1", "2"), ("LNA", "1", "1"), ("COAXSHORT", "7", "9")] {
        let out = d
            .ctl_cmd()
            .env("CASMAN_BARCODE_DIR", &barcodes)
            .args(["barcode", "printpages", "--part-type", t, "--start-number", a, "--end-number", b])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(
        files_in(&barcodes),
        [
            "ANTENNA_P1_00001_00002.pdf",
            "ANTENNA_P2_00001_00002.pdf",
            "COAXSHORT_P1_00007_00009.pdf",
            "COAXSHORT_P2_00007_00009.pdf",
            "LNA_P1_00001_00001.pdf",
            "LNA_P2_00001_00001.pdf",
        ]
    );
    assert_eq!(decode_sheet(&barcodes.join("ANTENNA_P2_00001_00002.pdf"), 360, 225), [ids("ANT", 1..=2, 2)]);
    assert_eq!(
        decode_sheet(&barcodes.join("COAXSHORT_P1_00007_00009.pdf"), 300, 102),
        [ids("CXS", 7..=9, 1)]
    );

    // SNAP ports by chassis, slot, port.
    let ports = dir.path().join("ports.pdf");
    d.ctl_ok(&["labels", "SNAP", "1A10", "1B01", "--out", ports.to_str().unwrap()]);
    assert_eq!(decode_sheet(&ports, 360, 225), [["SNAP1A10", "SNAP1A11", "SNAP1B00", "SNAP1B01"]]);
}

#[test]
fn interleaved_sheets_and_a4_follow_the_configuration() {
    if !tools_present() {
        return;
    }
    let d =
        Daemon::start_with(DaemonOpts::default().config(
            "[labels]\npolarizations = \"interleaved\"\npage_size = \"a4\"\ncoax_use_barcode = false\n",
        ));
    let pdf = d.dir.path().join("i.pdf");
    d.ctl_ok(&["labels", "LNA", "1", "40", "--out", pdf.to_str().unwrap()]);
    let pages = decode_sheet(&pdf, 360, 225);
    // 80 labels, 30 per page, P1 and P2 side by side: 3 pages.
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [30, 30, 20]);
    let expected: Vec<String> =
        (1..=40).flat_map(|n| [format!("LNA{n:05}P1"), format!("LNA{n:05}P2")]).collect();
    assert_eq!(pages.concat(), expected);
    let text = String::from_utf8_lossy(&std::fs::read(&pdf).unwrap()).into_owned();
    assert!(text.contains("/MediaBox [0 0 595.27"), "A4 media box");

    // CAsMan's text-only coax labels: the coax size, and no barcode at all.
    let imgs = d.dir.path().join("coax");
    d.ctl_ok(&[
        "labels",
        "CXS",
        "1",
        "1",
        "--polarization",
        "1",
        "--format",
        "png",
        "--out",
        imgs.to_str().unwrap(),
    ]);
    let png = imgs.join("COAXSHORT/P1/CXS00001P1.png");
    assert_eq!(png_size(&png), (300, 102));
    assert_eq!(zbar(&[png]), Vec::<String>::new());
}

#[test]
fn png_and_svg_labels_are_cas_man_sized_and_decode() {
    if !tools_present() {
        return;
    }
    let d = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    let imgs = dir.path().join("imgs");
    d.ctl_ok(&["labels", "ANT", "1", "2", "--format", "png", "--out", imgs.to_str().unwrap()]);
    d.ctl_ok(&[
        "labels",
        "CXL",
        "5",
        "5",
        "--polarization",
        "2",
        "--format",
        "png",
        "--out",
        imgs.to_str().unwrap(),
    ]);
    assert_eq!(
        files_in(&imgs),
        [
            "ANTENNA/P1/ANT00001P1.png",
            "ANTENNA/P1/ANT00002P1.png",
            "ANTENNA/P2/ANT00001P2.png",
            "ANTENNA/P2/ANT00002P2.png",
            "COAXLONG/P2/CXL00005P2.png",
        ]
    );
    for f in files_in(&imgs) {
        let path = imgs.join(&f);
        let id = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let size = if id.starts_with("CX") { (300, 102) } else { (360, 225) };
        assert_eq!(png_size(&path), size, "{f}");
        assert_eq!(zbar(&[path]), [id], "{f}");
    }

    let svgs = dir.path().join("svgs");
    d.ctl_ok(&[
        "labels",
        "BAC",
        "41",
        "42",
        "--polarization",
        "1",
        "--format",
        "svg",
        "--out",
        svgs.to_str().unwrap(),
    ]);
    assert_eq!(files_in(&svgs), ["BACBOARD/P1/BAC00041P1.svg", "BACBOARD/P1/BAC00042P1.svg"]);
    for f in files_in(&svgs) {
        let png = dir.path().join(format!("{}.png", f.replace('/', "_")));
        run(Command::new("rsvg-convert")
            .args(["--dpi-x", "300", "--dpi-y", "300", "-o"])
            .arg(&png)
            .arg(svgs.join(&f)));
        // 1.2 in × 300 dpi: rsvg-convert rounds its floating-point product
        // up, so it may give one pixel more.
        let (w, h) = png_size(&png);
        assert!((360..=361).contains(&w) && (225..=226).contains(&h), "{f} at 300 dpi: {w} × {h}");
        let id = Path::new(&f).file_stem().unwrap().to_str().unwrap().to_owned();
        assert_eq!(zbar(&[png]), [id], "{f}");
    }
}

#[test]
fn bad_input_is_refused_and_writes_no_file() {
    let d = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.pdf");
    let out_s = out.to_str().unwrap();
    let ctl_in_dir = |args: &[&str]| {
        d.ctl_cmd().env("CASMAN_BARCODE_DIR", dir.path()).current_dir(dir.path()).args(args).output().unwrap()
    };
    let cases: [(&[&str], &str); 7] = [
        (
            &["barcode", "printpages", "--part-type", "ANTENNA", "--start-number", "5", "--end-number", "3"],
            "Start number must be less than or equal to end number",
        ),
        (&["labels", "ANT", "9", "2", "--out", out_s], "Start number must be less than"),
        (&["labels", "WIDGET", "1", "2", "--out", out_s], "unknown part type \"WIDGET\""),
        (&["labels", "ANT", "99999", "100000", "--out", out_s], "100000 is out of range 1-99999"),
        (
            &["labels", "ANT", "1", "2", "--polarization", "3", "--out", out_s],
            "expected 1, 2, P1, P2 or both",
        ),
        (&["labels", "SNAP", "1A00", "5A00"], "SNAP port"),
        (&["parts", "add", "ANTENNA", "0", "1", "--labels", out_s], "count"),
    ];
    for (args, message) in cases {
        let o = ctl_in_dir(args);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert_eq!(files_in(dir.path()), Vec::<String>::new(), "{args:?} left a file");
    }
    // More files than one --out file can hold: refused, nothing written.
    let o = ctl_in_dir(&["labels", "ANT", "1", "2", "--format", "png", "--out", "one.png"]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(files_in(dir.path()), Vec::<String>::new());
}

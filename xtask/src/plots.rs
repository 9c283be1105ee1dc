//! `cargo xtask plots`: the guide's pictures of how an operation's cost grows with the work it
//! does. The size-swept benches (taskstats' exit against listeners and TGID query against
//! threads, mbcache's operations against entries, mbcache2's get + put against entries, the
//! balloon against guest memory), each a model beside a native baseline, run with short criterion
//! settings; their medians are read back from criterion's own results (`target/criterion/**/new/`)
//! and drawn, one SVG per bench group, into `guide/src/plots/`, and printed as a table in the
//! guide's form. `--no-run` draws from the results already there (after a longer `cargo bench`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

/// The benches whose groups sweep a size, and the criterion options of a short run of them.
const BENCHES: [&str; 4] = ["taskstats", "mbcache", "mbcache2", "balloon"];
const SHORT_RUN: [&str; 4] = ["--warm-up-time", "0.3", "--measurement-time", "1"];

/// Where the pictures go, under the workspace root.
pub(crate) const PLOTS_DIR: &str = "guide/src/plots";

/// One benchmark's median: its group, its series (criterion's function id, with any part of the
/// parameter after the size, as the balloon's page size), the size it ran at and its label.
#[derive(Debug, Clone, PartialEq)]
struct Point {
    group: String,
    series: String,
    size: f64,
    size_label: String,
    median_ns: f64,
}

/// Runs the benches (unless `run` is false), then draws every size-swept group found and
/// prints the table. Returns the pictures written.
pub(crate) fn plots(cargo: &str, root: &Path, run: bool) -> Result<Vec<PathBuf>, String> {
    if run {
        run_benches(cargo, root)?;
    }
    let results = root.join("target/criterion");
    let points = read_results(&results)?;
    let groups = swept_groups(points);
    if groups.is_empty() {
        return Err(format!(
            "no size-swept results under {}: run `cargo xtask plots` without --no-run",
            results.display()
        ));
    }
    let out = root.join(PLOTS_DIR);
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut written = Vec::new();
    for (group, points) in &groups {
        let path = out.join(format!("{}.svg", group.replace('/', "-")));
        draw(group, points, &path)?;
        written.push(path);
    }
    print!("{}", table(&groups));
    Ok(written)
}

/// `cargo bench -p ksim-benches --bench <each>` with [`SHORT_RUN`]'s settings.
fn run_benches(cargo: &str, root: &Path) -> Result<(), String> {
    let mut command = Command::new(cargo);
    command.current_dir(root).args(["bench", "--locked", "-p", "ksim-benches"]);
    for bench in BENCHES {
        command.args(["--bench", bench]);
    }
    // Criterion's own report goes to stderr, so that stdout is the table alone.
    command.arg("--").args(SHORT_RUN).stdout(std::io::stderr());
    eprintln!("==> xtask plots: {command:?}");
    let status = command.status().map_err(|e| format!("{cargo}: {e}"))?;
    if !status.success() {
        return Err(format!("the benches failed ({status})"));
    }
    Ok(())
}

/// Every benchmark under `dir` whose parameter starts with a size ([`parse_size`]): criterion
/// keeps each one's description in `new/benchmark.json` and its estimates in
/// `new/estimates.json`, beside each other.
fn read_results(dir: &Path) -> Result<Vec<Point>, String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(at) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&at) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.ends_with("new/benchmark.json") {
                found.push(path);
            }
        }
    }
    found.sort();
    let mut points = Vec::new();
    for described in found {
        let estimates = described.with_file_name("estimates.json");
        if let Some(point) = point_of(&read_json(&described)?, &read_json(&estimates)?) {
            points.push(point);
        }
    }
    Ok(points)
}

fn read_json(path: &Path) -> Result<serde_json::Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The point a benchmark's description and estimates make; None when its parameter is not a
/// size (a single measurement, as the lock benches' rows).
fn point_of(described: &serde_json::Value, estimates: &serde_json::Value) -> Option<Point> {
    let group = described["group_id"].as_str()?.to_string();
    let function = described["function_id"].as_str()?;
    let (size, size_label, rest) = parse_size(described["value_str"].as_str()?)?;
    let series = match rest {
        Some(rest) => format!("{function}, {rest}"),
        None => function.to_string(),
    };
    let median_ns = estimates["median"]["point_estimate"].as_f64()?;
    Some(Point { group, series, size, size_label, median_ns })
}

/// A parameter's size: its leading number, which may be followed by a binary unit that is kept
/// in the label only (`16GiB` is 16, labelled `16GiB`; the axis names the unit, [`size_axis`]),
/// and what follows a `/` (the balloon's page size).
fn parse_size(value: &str) -> Option<(f64, String, Option<String>)> {
    let (first, rest) = match value.split_once('/') {
        Some((first, rest)) => (first, Some(rest.to_string())),
        None => (value, None),
    };
    let digits = first.find(|c: char| !c.is_ascii_digit()).unwrap_or(first.len());
    let number: f64 = first[..digits].parse().ok()?;
    match &first[digits..] {
        "" | "KiB" | "MiB" | "GiB" => Some((number, first.to_string(), rest)),
        _ => None,
    }
}

/// The groups with a series measured at two sizes or more, each group's points by series and
/// size.
fn swept_groups(points: Vec<Point>) -> BTreeMap<String, Vec<Point>> {
    let mut groups: BTreeMap<String, Vec<Point>> = BTreeMap::new();
    for point in points {
        groups.entry(point.group.clone()).or_default().push(point);
    }
    groups.retain(|_, points| {
        let mut sizes: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        for p in points.iter() {
            sizes.entry(&p.series).or_default().push(p.size);
        }
        sizes.values().any(|sizes| sizes.len() >= 2)
    });
    for points in groups.values_mut() {
        points.sort_by(|a, b| a.series.cmp(&b.series).then(a.size.total_cmp(&b.size)));
    }
    groups
}

/// What a group's sizes count, for the picture's x axis.
fn size_axis(group: &str) -> &'static str {
    match group {
        "taskstats/exit" => "listeners on the exiting CPU",
        "taskstats/tgid_query" => "threads in the group",
        "balloon" => "guest memory (GiB)",
        g if g.starts_with("mbcache") => "entries in the cache",
        _ => "size",
    }
}

/// One group's picture: time per operation (log scale) against size, a line per series. The
/// size axis is logarithmic when three sizes or more span a factor of ten or more and none is
/// zero (two sizes, as the balloon's guests, are clearer on a linear axis).
fn draw(group: &str, points: &[Point], path: &Path) -> Result<(), String> {
    let low = points.iter().map(|p| p.size).fold(f64::INFINITY, f64::min);
    let high = points.iter().map(|p| p.size).fold(0.0, f64::max);
    let mut sizes: Vec<f64> = points.iter().map(|p| p.size).collect();
    sizes.sort_by(f64::total_cmp);
    sizes.dedup();
    let pad = (high - low).max(1.0) * 0.05;
    if low > 0.0 && high / low >= 10.0 && sizes.len() >= 3 {
        draw_on(group, points, path, (low / 1.5..high * 1.5).log_scale())
    } else {
        draw_on(group, points, path, (low - pad)..(high + pad))
    }
}

fn draw_on<X>(group: &str, points: &[Point], path: &Path, x: X) -> Result<(), String>
where
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    let failed = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let area = SVGBackend::new(path, (760, 440)).into_drawing_area();
    area.fill(&WHITE).map_err(|e| failed(&e))?;
    let mut series: Vec<&str> = points.iter().map(|p| p.series.as_str()).collect();
    series.dedup();
    let low = points.iter().map(|p| p.median_ns).fold(f64::INFINITY, f64::min);
    // Room above the highest line for the legend in the upper left: a quarter decade a series.
    let high =
        points.iter().map(|p| p.median_ns).fold(0.0, f64::max) * 10f64.powf(0.25 * series.len() as f64);
    let mut chart = ChartBuilder::on(&area)
        .caption(format!("{group}: time per operation, model and native"), ("sans-serif", 18))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(78)
        .build_cartesian_2d(x, (low / 2.0..high * 2.0).log_scale())
        .map_err(|e| failed(&e))?;
    chart
        .configure_mesh()
        .x_desc(size_axis(group))
        .y_desc("median time (log scale)")
        .x_label_formatter(&|size| size_text(*size))
        .y_label_formatter(&|ns| duration_text(*ns))
        .draw()
        .map_err(|e| failed(&e))?;
    for (index, name) in series.into_iter().enumerate() {
        let color = Palette99::pick(index).to_rgba();
        let line: Vec<(f64, f64)> =
            points.iter().filter(|p| p.series == name).map(|p| (p.size, p.median_ns)).collect();
        chart
            .draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))
            .map_err(|e| failed(&e))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        chart
            .draw_series(line.into_iter().map(|at| Circle::new(at, 3, color.filled())))
            .map_err(|e| failed(&e))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| failed(&e))?;
    area.present().map_err(|e| failed(&e))
}

/// A size as an axis writes it: whole numbers without a fraction, thousands and millions as
/// `k` and `M` when they are round.
fn size_text(size: f64) -> String {
    match size {
        s if s >= 1e6 && s % 1e6 == 0.0 => format!("{:.0}M", s / 1e6),
        s if s >= 1e3 && s % 1e3 == 0.0 => format!("{:.0}k", s / 1e3),
        s if s.fract() == 0.0 => format!("{s:.0}"),
        s => format!("{s:.1}"),
    }
}

/// A median as the guide writes it: ns, µs or ms, three figures or so.
fn duration_text(ns: f64) -> String {
    let (value, unit) = match ns {
        ns if ns >= 1e6 => (ns / 1e6, "ms"),
        ns if ns >= 1e3 => (ns / 1e3, "µs"),
        ns => (ns, "ns"),
    };
    if value >= 100.0 {
        format!("{value:.0} {unit}")
    } else {
        format!("{value:.1} {unit}")
    }
}

/// The guide's table of the same medians: per group and size, each model series beside the
/// group's native series at that size (a series named `native...`), and their ratio.
fn table(groups: &BTreeMap<String, Vec<Point>>) -> String {
    let mut out =
        String::from("| work | size | series | model | native | ratio |\n|---|---|---|---|---|---|\n");
    for (group, points) in groups {
        let native_at = |p: &Point| {
            points.iter().find(|n| {
                n.series.starts_with("native")
                    && n.size == p.size
                    && n.series.split_once(", ").map(|s| s.1) == p.series.split_once(", ").map(|s| s.1)
            })
        };
        for p in points.iter().filter(|p| !p.series.starts_with("native")) {
            let (native, ratio) = match native_at(p) {
                Some(n) => (duration_text(n.median_ns), format!("{:.1}×", p.median_ns / n.median_ns)),
                None => ("-".to_string(), "-".to_string()),
            };
            out.push_str(&format!(
                "| {group} | {} | {} | {} | {native} | {ratio} |\n",
                p.size_label,
                p.series,
                duration_text(p.median_ns)
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_size_is_a_leading_number_with_an_optional_binary_unit_and_a_rest_after_a_slash() {
        assert_eq!(parse_size("16"), Some((16.0, "16".to_string(), None)));
        assert_eq!(parse_size("16GiB/4KiB"), Some((16.0, "16GiB".to_string(), Some("4KiB".to_string()))));
        assert_eq!(parse_size("seeds-0-20"), None);
        assert_eq!(parse_size("12abc"), None);
        assert_eq!(parse_size(""), None);
    }

    #[test]
    fn sizes_are_written_whole_and_round_thousands_short() {
        let written: Vec<String> = [0.0, 16.0, 1000.0, 1500.0, 1e6, 2.5].into_iter().map(size_text).collect();
        assert_eq!(written, ["0", "16", "1k", "1500", "1M", "2.5"]);
    }

    #[test]
    fn a_point_needs_a_size_and_a_median() {
        let described =
            serde_json::json!({"group_id": "balloon", "function_id": "virtqueue", "value_str": "1GiB/64KiB"});
        let estimates = serde_json::json!({"median": {"point_estimate": 4.5e6}});
        let point = point_of(&described, &estimates).expect("a size and a median");
        assert_eq!((point.series.as_str(), point.size, point.median_ns), ("virtqueue, 64KiB", 1.0, 4.5e6));
        let single = serde_json::json!({"group_id": "spinlock", "function_id": "native", "value_str": null});
        assert_eq!(point_of(&single, &estimates), None);
        assert_eq!(point_of(&described, &serde_json::json!({})), None);
    }

    fn point(group: &str, series: &str, size: f64, median_ns: f64) -> Point {
        Point { group: group.into(), series: series.into(), size, size_label: size.to_string(), median_ns }
    }

    #[test]
    fn the_table_sets_each_model_series_beside_the_native_at_its_size_and_page_size() {
        let groups = swept_groups(vec![
            point("g", "model", 1.0, 2000.0),
            point("g", "native", 1.0, 100.0),
            point("g", "model", 16.0, 9000.0),
            point("g", "native", 16.0, 300.0),
            point("g", "model, 4KiB", 16.0, 50.0),
            point("single", "model", 1.0, 5.0),
        ]);
        assert_eq!(groups.keys().collect::<Vec<_>>(), ["g"], "a group of one size is no curve");
        let text = table(&groups);
        assert!(text.contains("| g | 1 | model | 2.0 µs | 100 ns | 20.0× |"), "{text}");
        assert!(text.contains("| g | 16 | model | 9.0 µs | 300 ns | 30.0× |"), "{text}");
        assert!(text.contains("| g | 16 | model, 4KiB | 50.0 ns | - | - |"), "{text}");
    }

    /// A criterion tree as a run leaves it: each benchmark's `new/benchmark.json` and
    /// `new/estimates.json` (and a `base/` copy, which is not read).
    fn write_result(root: &Path, dir: &str, described: serde_json::Value, median_ns: f64) {
        for kept in ["new", "base"] {
            let at = root.join(dir).join(kept);
            std::fs::create_dir_all(&at).unwrap();
            std::fs::write(at.join("benchmark.json"), described.to_string()).unwrap();
            let estimates = serde_json::json!({"median": {"point_estimate": median_ns}});
            std::fs::write(at.join("estimates.json"), estimates.to_string()).unwrap();
        }
    }

    #[test]
    fn results_are_read_from_every_new_directory_and_single_rows_are_left_out() {
        let root = std::env::temp_dir().join(format!("xtask-plots-tree-{}", std::process::id()));
        let bench = |group: &str, function: &str, value: Option<&str>| serde_json::json!({"group_id": group, "function_id": function, "value_str": value});
        write_result(&root, "taskstats_exit/model/0", bench("taskstats/exit", "model", Some("0")), 3300.0);
        write_result(&root, "taskstats_exit/model/16", bench("taskstats/exit", "model", Some("16")), 7100.0);
        write_result(&root, "taskstats_exit/native/0", bench("taskstats/exit", "native", Some("0")), 92.0);
        write_result(&root, "spinlock/native", bench("spinlock", "native", None), 5.2);
        let points = read_results(&root).unwrap();
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(points.len(), 3, "one point per benchmark with a size, base/ not read: {points:?}");
        let groups = swept_groups(points);
        assert_eq!(groups.keys().collect::<Vec<_>>(), ["taskstats/exit"]);
        let sizes: Vec<(&str, f64, f64)> =
            groups["taskstats/exit"].iter().map(|p| (p.series.as_str(), p.size, p.median_ns)).collect();
        assert_eq!(sizes, [("model", 0.0, 3300.0), ("model", 16.0, 7100.0), ("native", 0.0, 92.0)]);
    }

    #[test]
    fn a_picture_is_written_with_every_series_named() {
        let dir = std::env::temp_dir().join(format!("xtask-plots-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("g.svg");
        let points = [
            point("g", "model", 1.0, 2000.0),
            point("g", "model", 16.0, 9000.0),
            point("g", "native", 1.0, 100.0),
        ];
        draw("taskstats/exit", &points, &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
        for text in ["model", "native", "listeners on the exiting CPU"] {
            assert!(svg.contains(text), "{text} missing from the picture");
        }
    }
}

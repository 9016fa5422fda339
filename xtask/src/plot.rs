//! The pictures, as SVG files drawn with plotters: a check's timeline (`check --plot`) and create's cost by
//! cluster size (`bench --scale --plot`).

use std::path::Path;

use cluster_tests::faults::checker::CheckReport;
use cluster_tests::faults::timeline::{BUCKET, Bucket};
use cluster_tests::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

const OK: RGBColor = RGBColor(46, 139, 87);
const FAIL: RGBColor = RGBColor(200, 40, 40);
const UNKNOWN: RGBColor = RGBColor(230, 150, 20);
const LOST: RGBColor = RGBColor(0, 0, 0);
/// The shade of a fault's window on the writes plot: one rectangle of this colour per fault.
pub const WINDOW: RGBColor = RGBColor(120, 120, 200);
/// The same window on the latency plot.
const WINDOW_LATENCY: RGBColor = RGBColor(150, 150, 210);
const FONT: &str = "sans-serif";

/// What drawing on the SVG backend gives.
type Drawn = std::result::Result<(), DrawingAreaErrorKind<std::io::Error>>;

fn drawing(e: DrawingAreaErrorKind<std::io::Error>) -> Error {
    Error::other(format!("drawing the plot: {e}"))
}

/// Draws `report`'s timeline to `path`: writes answered per 100 ms by outcome with each fault's window shaded
/// (its kind and node), the takeover and the recovery marked, and the lost writes where they were
/// acknowledged; below it, the median and the slowest latency of acknowledged writes per 100 ms.
pub fn timeline(report: &CheckReport, title: &str, path: &Path) -> Result<()> {
    let root = SVGBackend::new(path, (1200, 760)).into_drawing_area();
    root.fill(&WHITE).map_err(drawing)?;
    let (top, bottom) = root.split_vertically(440);
    writes(report, title, &top).map_err(drawing)?;
    latency(report, &bottom).map_err(drawing)?;
    root.present().map_err(drawing)?;
    Ok(())
}

fn end_of(report: &CheckReport) -> f64 {
    report
        .seconds
        .max(report.timeline.buckets.len() as f64 * BUCKET.as_secs_f64())
}

fn writes(report: &CheckReport, title: &str, area: &DrawingArea<SVGBackend<'_>, Shift>) -> Drawn {
    let t = &report.timeline;
    let width = BUCKET.as_secs_f64();
    let peak = t
        .buckets
        .iter()
        .map(|b| b.ok.max(b.fail).max(b.unknown))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let top = peak * 1.4; // room above the lines for the labels and the legend
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..end_of(report), 0.0..top)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("seconds from the start")
        .y_desc("writes answered per 100 ms")
        .draw()?;
    for round in &report.rounds {
        let (from, to) = (round.at, round.at + round.recovered);
        let kind = format!("{:?}", round.fault).to_lowercase();
        chart.draw_series([Rectangle::new([(from, 0.0), (to, top)], WINDOW.mix(0.25).filled())])?;
        chart.draw_series([Text::new(
            format!("{kind} {}", round.port),
            (from, top * 0.97),
            (FONT, 14),
        )])?;
        let marks = round
            .takeover
            .map(|t| (from + t, "takeover"))
            .into_iter()
            .chain([(to, "ready")]);
        for (at, what) in marks {
            chart.draw_series([PathElement::new([(at, 0.0), (at, top * 0.9)], WINDOW.stroke_width(2))])?;
            chart.draw_series([Text::new(what, (at, top * 0.92), (FONT, 12))])?;
        }
    }
    let lost = lost_per_bucket(report);
    let pick = |f: fn(&Bucket) -> usize| t.buckets.iter().map(f).collect::<Vec<_>>();
    let series = [
        ("ok", OK, pick(|b| b.ok)),
        ("fail", FAIL, pick(|b| b.fail)),
        ("unknown", UNKNOWN, pick(|b| b.unknown)),
        ("lost (when acknowledged)", LOST, lost.clone()),
    ];
    for (name, color, counts) in series {
        let points = counts.iter().enumerate().map(|(i, n)| (i as f64 * width, *n as f64));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    let marked = lost.iter().enumerate().filter(|(_, n)| **n > 0);
    chart.draw_series(marked.map(|(i, n)| Cross::new((i as f64 * width, *n as f64), 4, LOST.stroke_width(2))))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// How many of the lost writes were acknowledged in each 100 ms.
fn lost_per_bucket(report: &CheckReport) -> Vec<usize> {
    let t = &report.timeline;
    let mut lost = vec![0; t.buckets.len()];
    for at in &t.lost {
        let i = ((at / BUCKET.as_secs_f64()) as usize).min(lost.len().saturating_sub(1));
        if let Some(n) = lost.get_mut(i) {
            *n += 1;
        }
    }
    lost
}

fn latency(report: &CheckReport, area: &DrawingArea<SVGBackend<'_>, Shift>) -> Drawn {
    let width = BUCKET.as_secs_f64();
    let mut per: Vec<Vec<f64>> = vec![Vec::new(); report.timeline.buckets.len().max(1)];
    for (at, took) in &report.timeline.latencies {
        let i = ((at / width) as usize).min(per.len() - 1);
        per[i].push(took * 1000.0);
    }
    let slowest = per.iter().flatten().copied().fold(1.0, f64::max);
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..end_of(report), (0.05..slowest * 2.0).log_scale())?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("seconds from the start")
        .y_desc("latency of acknowledged writes, ms")
        .draw()?;
    for round in &report.rounds {
        let (from, to) = (round.at, round.at + round.recovered);
        chart.draw_series([Rectangle::new(
            [(from, 0.05), (to, slowest * 2.0)],
            WINDOW_LATENCY.mix(0.2).filled(),
        )])?;
    }
    let stat = |pick: fn(&mut Vec<f64>) -> f64| {
        let mut per = per.clone();
        per.iter_mut()
            .enumerate()
            .filter(|(_, l)| !l.is_empty())
            .map(|(i, l)| (i as f64 * width, pick(l)))
            .collect::<Vec<_>>()
    };
    let median = stat(|l| {
        l.sort_by(f64::total_cmp);
        l[l.len() / 2]
    });
    let max = stat(|l| l.iter().copied().fold(0.0, f64::max));
    for (name, color, points) in [("median per 100 ms", OK, median), ("slowest per 100 ms", FAIL, max)] {
        chart
            .draw_series(points.iter().map(|p| Circle::new(*p, 2, color.filled())))?
            .label(name)
            .legend(move |(x, y)| Circle::new((x + 10, y), 3, color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// One cluster size of `bench --scale`: nodes, seconds to ready, harness CPU seconds.
pub type ScaleRow = (usize, f64, f64);

/// Draws `bench --scale`'s figures to `path`: seconds to ready and the harness's CPU seconds against the number
/// of nodes.
pub fn scale(rows: &[ScaleRow], title: &str, path: &Path) -> Result<()> {
    let root = SVGBackend::new(path, (900, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(drawing)?;
    let nodes = rows.iter().map(|r| r.0).max().unwrap_or(1) as f64;
    let most = rows.iter().map(|r| r.1.max(r.2)).fold(1.0, f64::max);
    let draw = || -> Drawn {
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 20))
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..nodes * 1.05, 0.0..most * 1.15)?;
        chart
            .configure_mesh()
            .x_desc("nodes (masters with one replica each)")
            .y_desc("seconds")
            .draw()?;
        let series = [
            ("ready", OK, rows.iter().map(|r| (r.0 as f64, r.1)).collect::<Vec<_>>()),
            ("harness CPU", FAIL, rows.iter().map(|r| (r.0 as f64, r.2)).collect()),
        ];
        for (name, color, points) in series {
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
                .label(name)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
            chart.draw_series(points.into_iter().map(|p| Circle::new(p, 4, color.filled())))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()
    };
    draw().map_err(drawing)
}

#[cfg(test)]
mod tests {
    use cluster_tests::faults::checker::{FaultKind, RoundReport};
    use cluster_tests::faults::timeline::Timeline;

    use super::*;

    fn parsed(path: &Path) -> String {
        let svg = std::fs::read_to_string(path).expect("the plot was written");
        roxmltree::Document::parse(&svg).expect("the plot is well-formed SVG");
        svg
    }

    #[test]
    fn a_timeline_parses_as_svg_with_one_shaded_window_per_fault() {
        let round = |fault, port, at| RoundReport {
            fault,
            port,
            at,
            takeover: Some(2.0),
            recovered: 2.5,
        };
        let buckets = (0..100)
            .map(|i| Bucket {
                ok: 50 + i % 7,
                fail: i % 3,
                unknown: i % 2,
            })
            .collect();
        let report = CheckReport {
            fault: FaultKind::Mixed,
            seed: 1,
            wait: 0,
            attempted: 5000,
            acknowledged: 4900,
            failed: 60,
            unknown: 40,
            lost: 2,
            lost_keys: vec![],
            unexpected: 0,
            longest_stall: 2.0,
            seconds: 10.0,
            rounds: vec![
                round(FaultKind::Pause, 7002, 1.5),
                round(FaultKind::Partition, 7003, 5.0),
            ],
            promise_broken: false,
            timeline: Timeline {
                buckets,
                latencies: (0..1000)
                    .map(|i| (i as f64 / 100.0, 0.001 * (1 + i % 5) as f64))
                    .collect(),
                lost: vec![5.5, 5.6],
            },
            workload: None,
        };
        let path = std::env::temp_dir().join(format!("timeline-{}.svg", std::process::id()));
        timeline(&report, "a test", &path).expect("drawn");
        let svg = parsed(&path);
        std::fs::remove_file(&path).ok();
        let doc = roxmltree::Document::parse(&svg).expect("parsed");
        let windows = doc
            .descendants()
            .filter(|n| n.has_tag_name("rect") && n.attribute("fill") == Some("#7878C8"))
            .count();
        assert_eq!(windows, report.rounds.len(), "one shaded window per fault");
        for label in ["pause 7002", "partition 7003", "takeover", "lost (when acknowledged)"] {
            assert!(
                doc.descendants().any(|n| n.text().is_some_and(|t| t.trim() == label)),
                "{label}"
            );
        }
    }

    #[test]
    fn the_scale_plot_parses_as_svg_with_both_series() {
        let path = std::env::temp_dir().join(format!("scale-{}.svg", std::process::id()));
        scale(&[(6, 2.9, 0.4), (12, 4.1, 0.7), (30, 7.5, 1.6)], "a test", &path).expect("drawn");
        let svg = parsed(&path);
        std::fs::remove_file(&path).ok();
        assert!(svg.contains("ready") && svg.contains("harness CPU"), "{svg:.200}");
    }
}

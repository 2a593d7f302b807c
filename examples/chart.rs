//! Draws the side-by-side benchmark's sweep as an SVG: requests/s against requests in flight per connection, one line per server, log x axis.
//!
//! `cargo run --release --example chart -- SWEEP.csv CHART.svg`, where the
//! CSV is what `benches/side_by_side.sh` writes: a `depth,server,rps` header,
//! then one row per server and depth.

use std::collections::BTreeMap;
use std::error::Error;

use plotters::prelude::*;

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(input), Some(output)) = (args.next(), args.next()) else {
        return Err("usage: chart SWEEP.csv CHART.svg".into());
    };
    let text = std::fs::read_to_string(&input).map_err(|err| format!("{input}: {err}"))?;
    let series = read(&text)?;
    if series.is_empty() {
        return Err(format!("{input}: no rows").into());
    }

    let points = series.iter().flat_map(|(_, points)| points.iter());
    let (mut x_min, mut x_max, mut y_max) = (f64::MAX, f64::MIN, 0f64);
    for &(x, y) in points {
        x_min = x_min.min(x);
        x_max = x_max.max(x);
        y_max = y_max.max(y);
    }
    // A log axis needs a span; a single depth still gets one.
    if x_max <= x_min {
        x_max = x_min * 2.0;
    }

    let root = SVGBackend::new(&output, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Requests/s by requests in flight per connection (4 connections)",
            ("sans-serif", 20),
        )
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(80)
        // Base 2: the sweep doubles (or quadruples) its depth, so every
        // depth it ran gets a labelled tick.
        .build_cartesian_2d((x_min..x_max).log_scale().base(2.0), 0f64..y_max * 1.1)?;
    chart
        .configure_mesh()
        .x_desc("requests in flight per connection")
        .y_desc("requests/s")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    for (i, (server, points)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))?
            .label(server.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(
            points
                .iter()
                .map(|&point| Circle::new(point, 3, color.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// One server's name and its (depth, rps) points.
type Series = (String, Vec<(f64, f64)>);

/// Each server's (depth, rps) points, sorted by depth, servers in the order
/// they first appear (which is the order the script ran them in).
fn read(text: &str) -> Result<Vec<Series>, Box<dyn Error>> {
    let mut order: Vec<String> = Vec::new();
    let mut by_server: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let [depth, server, rps] = fields[..] else {
            return Err(format!("line {}: not depth,server,rps: {line}", n + 1).into());
        };
        let number = |field: &str| {
            field
                .parse::<f64>()
                .map_err(|err| format!("line {}: `{field}`: {err}", n + 1))
        };
        let point = (number(depth)?, number(rps)?);
        if !by_server.contains_key(server) {
            order.push(server.to_owned());
        }
        by_server.entry(server.to_owned()).or_default().push(point);
    }
    Ok(order
        .into_iter()
        .map(|server| {
            let mut points = by_server.remove(&server).unwrap_or_default();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            (server, points)
        })
        .collect())
}

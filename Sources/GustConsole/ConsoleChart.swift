import Foundation

/// The app page's charts, drawn on the server as SVG so that they need no
/// script (the Content Security Policy allows none inline, and no chart
/// library is fetched): line charts of series over the last minutes, with gaps
/// where there is no value, and bar charts. Only numbers reach the SVG; every
/// label goes through the template's escaping. Each chart carries a title and
/// a description that says in words what it shows, for a screen reader.
struct ConsoleChart {
    static let width = 300.0
    static let height = 80.0

    /// One line: its legend name, its CSS class (the colour), and its values oldest first (nil: a gap).
    struct Series {
        var name: String
        var style: String
        var values: [Double?]
    }

    /// A line chart's template values: `path` per series (`M x,y L x,y …`), scaled so the largest value
    /// of any series is at the top; `top` is that value as `unit` says it.
    static func lines(id: String, title: String, description: String, series: [Series], unit: (Double) -> String) -> [String: Any] {
        let top = max(series.flatMap { $0.values.compactMap { $0 } }.max() ?? 0, 0)
        let scale = Scale(width: width, height: height, top: top)
        let drawn = series.map { line -> [String: Any] in
            var path = ""
            var drawing = false
            for (index, value) in line.values.enumerated() {
                guard let value else {
                    drawing = false
                    continue
                }
                // A lone point (the first minute with calls, say) still shows: a short dash, inside the box.
                let isolated = (index + 1 >= line.values.count || line.values[index + 1] == nil) && !drawing
                let dash = scale.x(index, of: line.values.count) + 8 > width ? "h-8" : "h8"
                path += (drawing ? "L" : "M") + scale.point(index, of: line.values.count, value) + (isolated ? dash : "")
                drawing = true
            }
            return ["name": line.name, "style": line.style, "path": path]
        }
        return [
            "id": id, "title": title, "description": description, "series": drawn, "top": unit(top),
            "hasData": series.contains { $0.values.contains { $0 != nil } },
        ]
    }

    /// A bar per value, oldest first, each with its own label (its `<title>`, a tooltip and a screen reader's text).
    static func bars(id: String, title: String, description: String, bars: [(label: String, value: Double)], unit: (Double) -> String) -> [String: Any] {
        let top = bars.map(\.value).max() ?? 0
        let scale = Scale(width: width, height: height, top: top)
        let slot = width / Double(max(bars.count, 1))
        let drawn = bars.enumerated().map { index, bar -> [String: Any] in
            let barHeight = max(scale.extent(bar.value), 1)
            return [
                "x": Scale.format(Double(index) * slot + slot * 0.15), "y": Scale.format(height - barHeight), "width": Scale.format(slot * 0.7),
                "height": Scale.format(barHeight), "label": "\(bar.label): \(unit(bar.value))",
            ]
        }
        return ["id": id, "title": title, "description": description, "bars": drawn, "top": unit(top), "hasData": !bars.isEmpty]
    }

    /// `12 ms`, `1.4 s`.
    static func milliseconds(_ value: Double) -> String {
        value >= 1000 ? String(format: "%.1f s", value / 1000) : "\(Int(value.rounded())) ms"
    }

    static func seconds(_ value: Double) -> String { String(format: "%.1f s", value) }

    static func count(_ value: Double) -> String { String(Int(value.rounded())) }

    /// Where a value lands in a chart `width` × `height` user units: the one scaling every chart
    /// of the console (line, bar, and the overview's sparkline) draws with. `top` sits one unit
    /// below the top edge, zero one unit above the bottom; points spread over the whole width.
    struct Scale {
        var width: Double
        var height: Double
        /// The value drawn at the top: the largest one, or 1 when none is above zero.
        var top: Double

        init(width: Double, height: Double, top: Double) {
            self.width = width
            self.height = height
            self.top = top > 0 ? top : 1
        }

        /// How far above the baseline `value` stands.
        func extent(_ value: Double) -> Double { (value / top) * (height - 2) }

        func x(_ index: Int, of count: Int) -> Double { Double(index) * (count > 1 ? width / Double(count - 1) : width) }

        /// `x,y` of the `index`th of `count` values, as SVG paths and polylines take it.
        func point(_ index: Int, of count: Int, _ value: Double) -> String {
            "\(Self.format(x(index, of: count))),\(Self.format(height - 1 - extent(value)))"
        }

        /// At most one decimal, none when it is whole: `12`, `4.5`.
        static func format(_ value: Double) -> String {
            let rounded = (value * 10).rounded() / 10
            return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
        }
    }
}

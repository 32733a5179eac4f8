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
        let scale = top > 0 ? top : 1
        let drawn = series.map { line -> [String: Any] in
            let step = line.values.count > 1 ? width / Double(line.values.count - 1) : width
            var path = ""
            var drawing = false
            for (index, value) in line.values.enumerated() {
                guard let value else {
                    drawing = false
                    continue
                }
                let x = Double(index) * step
                let y = height - 1 - (value / scale) * (height - 2)
                // A lone point (the first minute with calls, say) still shows: a short dash, inside the box.
                let isolated = (index + 1 >= line.values.count || line.values[index + 1] == nil) && !drawing
                let dash = x + 8 > width ? "h-8" : "h8"
                path += (drawing ? "L" : "M") + "\(format(x)),\(format(y))" + (isolated ? dash : "")
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
        let scale = top > 0 ? top : 1
        let slot = width / Double(max(bars.count, 1))
        let drawn = bars.enumerated().map { index, bar -> [String: Any] in
            let barHeight = max((bar.value / scale) * (height - 2), 1)
            return [
                "x": format(Double(index) * slot + slot * 0.15), "y": format(height - barHeight), "width": format(slot * 0.7),
                "height": format(barHeight), "label": "\(bar.label): \(unit(bar.value))",
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

    private static func format(_ value: Double) -> String {
        let rounded = (value * 10).rounded() / 10
        return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
    }
}

/// A tiny line chart as the `points` of an SVG polyline, drawn on the server so
/// a page needs no script to show it: `width` × `height` user units, the largest
/// value at the top.
struct Sparkline {
    static let width = 120.0
    static let height = 24.0

    static func points(_ values: [Int]) -> String {
        guard values.count > 1 else { return "0,\(height) \(width),\(height)" }
        let top = Double(max(values.max() ?? 0, 1))
        let step = width / Double(values.count - 1)
        return values.enumerated().map { index, value in
            let x = Double(index) * step
            let y = height - 1 - (Double(value) / top) * (height - 2)
            return "\(format(x)),\(format(y))"
        }.joined(separator: " ")
    }

    private static func format(_ value: Double) -> String {
        let rounded = (value * 10).rounded() / 10
        return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
    }
}

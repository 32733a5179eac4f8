/// A tiny line chart as the `points` of an SVG polyline, drawn on the server so
/// a page needs no script to show it: `width` × `height` user units, the largest
/// value at the top.
struct Sparkline {
    static let width = 120.0
    static let height = 24.0

    static func points(_ values: [Int]) -> String {
        guard values.count > 1 else { return "0,\(height) \(width),\(height)" }
        let scale = ConsoleChart.Scale(width: width, height: height, top: Double(values.max() ?? 0))
        return values.enumerated().map { index, value in scale.point(index, of: values.count, Double(value)) }.joined(separator: " ")
    }
}

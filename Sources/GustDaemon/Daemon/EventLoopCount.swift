/// How many SwiftNIO event loops gustd serves with (`--event-loops`). It must
/// be known before the loops are made, which is before any task runs: gustd
/// installs them as Swift Concurrency's executor first thing (Sources/gustd/main.swift),
/// before ArgumentParser reads the command line. So the option is read here
/// from the raw arguments too; ArgumentParser reads it again and says what is
/// wrong with a bad value, and gustd then exits before serving anything.
public enum EventLoopCount {
    /// The largest count taken: far more threads than any machine's cores only adds switching.
    public static let range = 1...256

    /// How many loops serve: `--event-loops N` if given, else half of `cores`, at least one. On a
    /// host running Gust the instances share the cores with gustd and need a large share of each
    /// call's CPU, and a loop with work waiting batches it instead of sleeping and being woken:
    /// on 2 cores one loop answered 1.4× the calls two did, and as many health checks
    /// (docs/benchmarks.md, "Half the cores for event loops").
    public static func chosen(in arguments: some Sequence<String>, cores: Int) -> Int {
        requested(in: arguments) ?? byDefault(cores: cores)
    }

    /// The count without `--event-loops`: half of `cores`, at least one, at most what the option takes.
    public static func byDefault(cores: Int) -> Int {
        min(max(1, cores / 2), range.upperBound)
    }

    /// The value of the last `--event-loops N` or `--event-loops=N` before a `--`, if it is a count in `range`.
    public static func requested(in arguments: some Sequence<String>) -> Int? {
        var found: Int?
        var iterator = arguments.makeIterator()
        while let argument = iterator.next(), argument != "--" {
            let value: String?
            if argument == "--event-loops" {
                value = iterator.next()
            } else if argument.hasPrefix("--event-loops=") {
                value = String(argument.dropFirst("--event-loops=".count))
            } else {
                continue
            }
            found = value.flatMap { Int($0) }.flatMap { range.contains($0) ? $0 : nil }
        }
        return found
    }
}

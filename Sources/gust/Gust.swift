import ArgumentParser
import GustCLI

@main
enum Gust {
    static func main() async {
        await (GustCommand.self as any AsyncParsableCommand.Type).main()
    }
}

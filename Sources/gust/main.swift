import ArgumentParser
import GustCLI

await GustCommand.main()

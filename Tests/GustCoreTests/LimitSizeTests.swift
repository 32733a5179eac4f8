import GustCore
import Testing

/// How `gust limits` and gustd's flags read sizes, CPU shares and process counts.
@Suite struct LimitSizeTests {
    @Test func sizesUseBinaryUnits() throws {
        #expect(try LimitSize.parseBytes("64M") == 64 << 20)
        #expect(try LimitSize.parseBytes("256m") == 256 << 20)
        #expect(try LimitSize.parseBytes("1G") == 1 << 30)
        #expect(try LimitSize.parseBytes("1GiB") == 1 << 30)
        #expect(try LimitSize.parseBytes("512KB") == 512 << 10)
        #expect(try LimitSize.parseBytes("1.5G") == 3 << 29)
        #expect(try LimitSize.parseBytes("4096") == 4096)
        #expect(try LimitSize.parseBytes("none") == nil)
        #expect(try LimitSize.parseBytes("0") == nil)
        for bad in ["", "M", "-1M", "1X", "1 M M", "abc", "1e3M"] {
            #expect(throws: GustError.self, "\(bad)") { try LimitSize.parseBytes(bad) }
        }
    }

    /// `--memory 256` is 256 bytes, as Docker and Kubernetes read it, where a Lambda user means
    /// megabytes: no instance starts in that, so a limit refuses it and says to write the unit.
    @Test func limitsRefuseSizesNoInstanceCouldRunIn() throws {
        #expect(try LimitSize.parseMemory("16M") == 16 << 20)
        #expect(try LimitSize.parseMemory("none") == nil)
        #expect(try LimitSize.parseTmp("1M") == 1 << 20)
        #expect(try LimitSize.parseDisk("1M") == 1 << 20)
        let memory = #expect(throws: GustError.self) { try LimitSize.parseMemory("256") }
        #expect(memory?.message == "'256' is 256 bytes, too little memory for an instance (at least 16M): write the unit, as in 256M or 1G.")
        #expect(throws: GustError.self) { try LimitSize.parseMemory("15M") }
        #expect(throws: GustError.self) { try LimitSize.parseTmp("64K") }
        #expect(throws: GustError.self) { try LimitSize.parseDisk("100") }

        for change in [LimitsChange(memory: "256"), LimitsChange(tmp: "64"), LimitsChange(disk: "1")] {
            #expect(throws: GustError.self, "\(change)") { try change.applied(to: AppLimits(), ceilings: nil) }
        }
    }

    @Test func sizesPrintTheirShortestExactForm() {
        #expect(LimitSize.format(64 << 20) == "64M")
        #expect(LimitSize.format(1 << 30) == "1G")
        #expect(LimitSize.format(3 << 29) == "1.5G")
        #expect(LimitSize.format(1000) == "1000B")
        #expect(LimitSize.spoken(64 << 20) == "64 MB")
        #expect(LimitSize.spoken(1000) == "1000 bytes")
    }

    @Test func cpuSharesAreThousandthsOfACore() throws {
        #expect(try LimitSize.parseCPU("0.5") == 500)
        #expect(try LimitSize.parseCPU("2") == 2000)
        #expect(try LimitSize.parseCPU("250m") == 250)
        #expect(try LimitSize.parseCPU("0.2") == 200)
        #expect(try LimitSize.parseCPU("none") == nil)
        // 1e19 thousandths do not fit an Int: the console (inside gustd) trapped on `cpu=10000000000000000`.
        for bad in ["0.001", "-1", "half", "1.5.2", "", "10000000000000000", "1e300", "inf", "1025", "99999999999999999999m"] {
            #expect(throws: GustError.self, "\(bad)") { try LimitSize.parseCPU(bad) }
        }
        #expect(LimitSize.formatCPU(500) == "0.5")
        #expect(LimitSize.formatCPU(2000) == "2")
    }

    /// `default` is gustd's value: a scoped caller could otherwise reach, through it, a default above
    /// the ceiling (or none at all) that it may not write.
    @Test func aScopedDefaultIsHeldUnderTheCeilingsToo() throws {
        let ceilings = AppLimits(memory: 512 << 20, pids: 128)
        let own = AppLimits(memory: 256 << 20)
        for (defaults, saying) in [(AppLimits(memory: 1 << 30), "--memory default (gustd's 1G, ceiling 512M)"),
                                   (AppLimits(), "--memory default (gustd's none, ceiling 512M)")] {
            let error = #expect(throws: GustError.self) {
                try LimitsChange(memory: "default").applied(to: own, ceilings: ceilings, defaults: defaults, cores: 2)
            }
            #expect(error?.message.contains(saying) == true, "\(error?.message ?? "")")
        }
        // Within the ceiling, or a limit without one, or an admin (no ceilings): taken.
        #expect(try LimitsChange(memory: "default").applied(to: own, ceilings: ceilings, defaults: AppLimits(memory: 512 << 20), cores: 2).memory == nil)
        #expect(try LimitsChange(tmp: "default").applied(to: AppLimits(tmp: 8 << 20), ceilings: ceilings, defaults: AppLimits(), cores: 2).tmp == nil)
        #expect(try LimitsChange(memory: "default").applied(to: own, ceilings: nil, defaults: AppLimits(), cores: 2).memory == nil)
    }

    @Test func processCountsLeaveARuntimeItsThreads() throws {
        #expect(try LimitSize.parsePids("64") == 64)
        #expect(throws: GustError.self) { try LimitSize.parsePids("4") }
        #expect(throws: GustError.self) { try LimitSize.parsePids("lots") }
    }

    @Test func anAppsOwnLimitsWinOverDefaultsAndCeilingsNameWhatIsOver() {
        let own = AppLimits(memory: 1 << 30, cpuMillis: 500)
        let defaults = AppLimits(memory: 256 << 20, cpuMillis: 1000, pids: 64, tmp: 64 << 20, disk: 1 << 30)
        #expect(own.over(defaults) == AppLimits(memory: 1 << 30, cpuMillis: 500, pids: 64, tmp: 64 << 20, disk: 1 << 30))
        let ceilings = AppLimits(memory: 512 << 20, cpuMillis: 500)
        #expect(own.exceeding(ceilings) == ["--memory 1G (ceiling 512M)"])
        #expect(AppLimits(pids: 10_000).exceeding(ceilings).isEmpty, "no ceiling set: no cap")
        #expect(defaults.summary == "memory 256M, cpu 1, pids 64, tmp 64M, disk 1G")
    }

    /// Each limit goes through its own parser, whoever writes it: gustd's flags (`parsed`), an app's
    /// change (`default` clears it) and the admin's ceilings (`merged`).
    @Test func eachLimitIsReadByItsOwnParser() throws {
        let written = LimitsChange(memory: "256M", cpu: "0.5", pids: "64", tmp: "8M", disk: "2G")
        let limits = AppLimits(memory: 256 << 20, cpuMillis: 500, pids: 64, tmp: 8 << 20, disk: 2 << 30)
        #expect(try written.parsed() == limits)
        #expect(try LimitsChange(memory: "none", cpu: "none", pids: "none", tmp: "none", disk: "none").parsed() == AppLimits())
        #expect(throws: GustError.self) { try LimitsChange(memory: "1G", cpu: "lots").parsed() }
        #expect(try LimitsChange(cpu: "default").applied(to: limits, ceilings: nil) == AppLimits(memory: 256 << 20, pids: 64, tmp: 8 << 20, disk: 2 << 30))
        let kept = try LimitsChange(tmp: "16M").merged(into: limits) { text, current, parse in try text.flatMap(parse) ?? current }
        #expect(kept == AppLimits(memory: 256 << 20, cpuMillis: 500, pids: 64, tmp: 16 << 20, disk: 2 << 30))
    }

    /// `--cpu 100` is 100 CPUs, as Docker and Kubernetes read it, where its writer meant 100m or
    /// 100 %: on a machine with fewer it limits nothing, so an app's change refuses it (as
    /// `docker run --cpus` does) and says how to write a share.
    @Test func anAppsCPULimitIsAtMostTheMachinesCores() throws {
        let refused = #expect(throws: GustError.self) { try LimitsChange(cpu: "100").applied(to: AppLimits(), ceilings: nil, cores: 2) }
        #expect(refused?.message == "--cpu 100 is 100 CPUs, and this machine has 2: write 0.5 for half of one, up to 2, or 100m for a tenth of one.")
        #expect(try LimitsChange(cpu: "2").applied(to: AppLimits(), ceilings: nil, cores: 2).cpuMillis == 2000)
        #expect(try LimitsChange(cpu: "100m").applied(to: AppLimits(), ceilings: nil, cores: 2).cpuMillis == 100)
        // Another limit changed leaves an earlier CPU limit be, whatever the machine.
        #expect(try LimitsChange(pids: "64").applied(to: AppLimits(cpuMillis: 8000), ceilings: nil, cores: 2).cpuMillis == 8000)
    }
}

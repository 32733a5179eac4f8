import GustManifests
import Testing

@Suite struct KubernetesNameTests {
    @Test func aNameThatIsAlreadyALabelIsKept() {
        #expect(KubernetesName.label("cats") == "cats")
        #expect(KubernetesName.label("cats-nightly-report") == "cats-nightly-report")
    }

    /// Whatever the input, the output is an RFC 1123 label starting with a letter, within the length asked.
    @Test(arguments: [
        "cats-", "a--b", "nightly_report", "Send Mail", "Report", "../../etc", "-x-", "9lives", "", "é", "a\nb",
        String(repeating: "a", count: 80), "cats-" + String(repeating: "x_", count: 40),
    ])
    func anythingBecomesALabel(_ raw: String) {
        for maxLength in [KubernetesName.maxLength, KubernetesName.maxCronJobLength] {
            let label = KubernetesName.label(raw, maxLength: maxLength)
            #expect(KubernetesName.isLabel(label), "\(label)")
            #expect(label.count <= maxLength)
            #expect(label.first?.isLetter == true)
        }
    }

    /// Names that clean up alike keep apart through the hash of the original.
    @Test func namesThatCleanUpAlikeStayDistinct() {
        let names = ["a_b", "a-b", "a.b", "A-b", "a b"].map { KubernetesName.label("cats-" + $0) }
        #expect(Set(names).count == names.count, "\(names)")
        #expect(KubernetesName.label("cats-a_b") == KubernetesName.label("cats-a_b"))
        #expect(KubernetesName.label("cats-a_b").hasPrefix("cats-a-b-"))
    }

    @Test func aNamespaceIsCheckedNotChanged() {
        #expect(KubernetesName.isLabel("prod"))
        #expect(KubernetesName.isLabel("team-a1"))
        for bad in ["", "Prod", "-a", "a-", "a_b", "a.b", String(repeating: "a", count: 64)] {
            #expect(!KubernetesName.isLabel(bad), "\(bad)")
        }
    }
}

import GustCore
import Testing

/// RFC 3492's encoding of a label's code points into the letters, digits and hyphen DNS allows.
struct PunycodeTests {
    /// The RFC's own samples (section 7.1) and names from the Public Suffix List.
    @Test func labelsEncodeAsTheRFCSays() {
        let samples: [(String, String)] = [
            ("ليهمابتكلموشعربي؟", "egbpdaj6bu4bxfgehfvwxn"),  // (A) Arabic (Egyptian)
            ("他们为什么不说中文", "ihqwcrb4cv8a8dqg056pqjye"),  // (B) Chinese (simplified)
            ("Pročprostěnemluvíčesky", "Proprostnemluvesky-uyb24dma41a"),  // (D) Czech
            ("почемужеонинеговорятпорусски", "b1abfaaepdrnnbgefbadotcwatmq2g4l"),  // (I) Russian
            ("3年B組金八先生", "3B-ww4c5e180e575a65lsy2b"),  // (L)
            ("公司", "55qx5d"),
            ("рф", "p1ai"),
            ("ákŋoluokta", "koluokta-7ya57h"),
            ("ø", "pda"),
        ]
        for (label, encoded) in samples {
            #expect(Punycode.encode(label) == encoded, "\(label)")
        }
    }

    @Test func aNameTakesTheACEPrefixOnlyOnLabelsBeyondASCII() {
        #expect(Punycode.asciiName("政府.香港") == "xn--mxtq1m.xn--j6w193g")
        #expect(Punycode.asciiName("aéroport.ci") == "xn--aroport-bya.ci")
        #expect(Punycode.asciiName("co.uk") == "co.uk")
    }
}

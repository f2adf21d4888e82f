import Foundation
import Indexing
import TestSupport
import Testing

/// `evindex --help` and every subcommand's help explain every option and show examples.
struct HelpTests {
    /// `--version` prints the version every `JobStarted` records, and nothing else.
    @Test func versionIsTheOneRunsRecord() throws {
        let r = try Support.evindex(["--version"])
        #expect(r.status == 0 && r.stderr.isEmpty)
        #expect(r.text == IndexJob.version + "\n", "\(r.text)")
    }

    @Test func everySubcommandExplainsEveryOptionWithAnExample() throws {
        let top = try Support.evindex(["--help"])
        #expect(top.status == 0)
        // SUBCOMMANDS: "  name   abstract" lines.
        guard let start = top.text.range(of: "SUBCOMMANDS:") else {
            Issue.record("no SUBCOMMANDS in --help: \(top.text)")
            return
        }
        // The list ends at the first blank line.
        let listed = top.text[start.upperBound...].split(separator: "\n", omittingEmptySubsequences: false).dropFirst().prefix { !$0.isEmpty }
        let commands = listed.compactMap { line -> String? in
            // A continuation of an abstract is indented further.
            guard line.hasPrefix("  "), !line.hasPrefix("   "), let word = line.split(separator: " ").first else { return nil }
            return String(word)
        }.filter { $0 != "help" }
        #expect(
            Set(commands).isSuperset(of: ["run", "ls", "du", "log", "runs", "show", "diff", "export", "import", "replay", "verify", "why"]),
            "\(commands)")
        for command in commands {
            let help = try Support.evindex(["help", command])
            #expect(help.status == 0, "\(command)")
            #expect(help.text.contains("Examples:"), "evindex help \(command) shows no example")
            guard let options = help.text.range(of: "OPTIONS:") else { continue }
            let lines = help.text[options.upperBound...].split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            for (i, line) in lines.enumerated() where line.hasPrefix("  -") {
                // The option's text follows on its line after a gap, or on the next,
                // further indented line.
                let sameLine =
                    line.dropFirst(2).range(of: "  ") != nil
                    && !line.dropFirst(2)[line.dropFirst(2).range(of: "  ")!.upperBound...].trimmingCharacters(in: .whitespaces).isEmpty
                let nextLine =
                    i + 1 < lines.count && lines[i + 1].hasPrefix("        ")
                    && !lines[i + 1].trimmingCharacters(in: .whitespaces).isEmpty
                #expect(sameLine || nextLine, "evindex help \(command): \(line) has no explanation")
            }
        }
    }
}

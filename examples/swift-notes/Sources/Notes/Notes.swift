// A notes list kept on the device with weft, synced through a relay when one is given:
//   swift run notes <file.db> [ws://relay:8080] [token] [automerge:list-url]
// Adds a note from standard input, prints the list, and prints it again on every change
// until interrupted.
import Foundation
import Weft

/// Prints the list whenever it changes (called on a weft thread).
final class ListPrinter: DocumentListener, @unchecked Sendable {
    let list: Document
    init(list: Document) { self.list = list }

    func onEvent(event: DocumentEvent) throws {
        if case .changed(let remotePeer, _) = event {
            print(remotePeer.map { "changed by \($0):" } ?? "changed here:")
            try printNotes(list)
        }
    }
}

func printNotes(_ list: Document) throws {
    let count = try list.length(path: "/notes")
    for index in 0..<count {
        guard case .text(let title)? = try list.get(path: "/notes/\(index)/title") else { continue }
        let done = (try list.get(path: "/notes/\(index)/done")) == .bool(value: true)
        print(" \(done ? "✓" : "·") \(title)")
    }
}

@main
struct Notes {
    static func main() async throws {
        let args = CommandLine.arguments.dropFirst()
        guard let path = args.first else {
            print("usage: notes <file.db> [relay-url] [token] [list-url]")
            return
        }
        // Text positions in UTF-16 units, as `String.utf16` and `NSRange` count them.
        let repo = try await Repo.open(path: path, options: RepoOptions(textUnit: .utf16CodeUnit))
        var connection: Connection?
        if args.count > 1 {
            let relay = args[args.startIndex + 1]
            let token = args.count > 2 ? args[args.startIndex + 2] : nil
            connection = try repo.connect(url: relay, token: token)
        }
        let list: Document
        do {
            if args.count > 3 {
                list = try await repo.find(idOrUrl: args[args.startIndex + 3])
            } else if let first = try await repo.list().first {
                list = try await repo.find(idOrUrl: first.url)
            } else {
                list = try await repo.create()
                try await list.put(path: "/notes", value: .list)
            }
        } catch WeftError.DocumentNotFound(let message) {
            print("no such list: \(message)")
            return
        }
        print("list: \(list.url()) (share it to open the same list elsewhere)")
        let subscription = try list.subscribe(listener: ListPrinter(list: list))

        print("new note (empty for none): ", terminator: "")
        if let title = readLine(), !title.isEmpty {
            // One change, committed to SQLite before `apply` returns; newest first, so index
            // 0 is the new note throughout, whatever other devices do meanwhile.
            try await list.apply(edits: [
                .insert(path: "/notes/0", value: .map),
                .put(path: "/notes/0/title", value: .text(value: title)),
                .put(path: "/notes/0/done", value: .bool(value: false)),
            ])
        }
        try printNotes(list)
        if let connection {
            do {
                try await connection.waitConnected(timeoutMs: 5_000)
                print("syncing with \(connection.url()); Ctrl-C to stop")
                try await Task.sleep(nanoseconds: .max)
            } catch WeftError.Unauthorized(let message) {
                print("the relay refused the token: \(message)")
            } catch WeftError.Timeout(let message) {
                print("offline for now (\(message)); the note is saved and syncs next time")
            }
        }
        subscription.cancel()
        try await repo.shutdown()
    }
}

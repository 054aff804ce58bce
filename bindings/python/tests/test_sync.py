"""weft from Python, as an app uses it: repos in SQLite files syncing through a real
weft-relay process, offline edits, listeners, and the errors bad input raises."""

import asyncio
import threading

import pytest

import weft
from weft import Value
from conftest import Relay, eventually, run


async def connected(repo, relay, token):
    connection = repo.connect(relay.url, token)
    await connection.wait_connected(10_000)
    return connection


async def found(repo, url):
    """The document, once a peer has it (a find before the relay has it raises)."""
    for _ in range(100):
        try:
            return await repo.find(url)
        except weft.WeftError.DocumentNotFound:
            await asyncio.sleep(0.1)
    pytest.fail(f"{url} never arrived")


def test_two_repos_sync_through_the_relay(relay, tmp_path):
    token = relay.token("--write", "*")

    async def scenario():
        alice = await weft.Repo.open(str(tmp_path / "alice.db"))
        bob = await weft.Repo.open(str(tmp_path / "bob.db"))
        await connected(alice, relay, token)
        await connected(bob, relay, token)

        doc = await alice.create()
        await doc.apply([
            weft.Edit.PUT("/title", Value.STR("groceries")),
            weft.Edit.PUT("/items", Value.LIST()),
            weft.Edit.INSERT("/items/-", Value.STR("milk")),
            weft.Edit.PUT("/visits", Value.COUNTER(0)),
            weft.Edit.PUT("/notes", Value.TEXT("buy 🥛 today")),
        ])
        on_bob = await found(bob, doc.url())
        await eventually("bob has alice's title", lambda: on_bob.get("/title") == Value.STR("groceries"))
        assert on_bob.get("/items/0") == Value.STR("milk")
        assert on_bob.get("/notes") == Value.TEXT("buy 🥛 today")

        # Both edit at once; counters add up and text merges.
        await asyncio.gather(
            doc.increment("/visits", 2),
            on_bob.increment("/visits", 3),
            doc.splice_text("/notes", 0, 0, "alice: "),
            on_bob.splice_text("/notes", 6, 0, "2 "),  # after "buy 🥛" in code points
        )
        expected = "alice: buy 🥛 2 today"
        for side in (doc, on_bob):
            await eventually("both converge", lambda: side.get("/visits") == Value.COUNTER(5)
                             and side.get("/notes") == Value.TEXT(expected))
        assert doc.to_json() == on_bob.to_json()
        assert sorted(doc.heads()) == sorted(on_bob.heads())

        # What bob has is on disk: reopened, the file still holds it.
        await bob.shutdown()
        reopened = await weft.Repo.open(str(tmp_path / "bob.db"))
        again = await reopened.find(doc.url())
        assert again.get("/notes") == Value.TEXT(expected)
        assert [info.url for info in await reopened.list()] == [doc.url()]
        await reopened.shutdown()
        await alice.shutdown()

    run(scenario())


def test_a_change_made_offline_arrives_after_reconnecting(relay, tmp_path):
    token = relay.token("--write", "*")

    async def scenario():
        alice = await weft.Repo.open(str(tmp_path / "alice.db"))
        bob = await weft.Repo.open(str(tmp_path / "bob.db"))
        to_relay = await connected(alice, relay, token)
        await connected(bob, relay, token)
        doc = await alice.create()
        await doc.put("/n", Value.INT(1))
        on_bob = await found(bob, doc.url())

        # The relay goes away: alice notices, and keeps working.
        relay.stop()
        await eventually("alice sees she is offline",
                         lambda: isinstance(to_relay.state(), weft.ConnectionState.OFFLINE))
        await doc.put("/offline", Value.STR("written without a network"))
        await asyncio.sleep(1)
        assert on_bob.get("/offline") is None, "nothing can have reached bob"

        # It comes back on the same port with the same data: both reconnect by themselves.
        relay.start()
        await to_relay.wait_connected(60_000)
        await eventually("bob gets alice's offline change",
                         lambda: on_bob.get("/offline") == Value.STR("written without a network"),
                         timeout=45)
        await alice.shutdown()
        await bob.shutdown()

    run(scenario(), timeout=120)


def test_a_listener_is_called_for_remote_changes(relay, tmp_path):
    token = relay.token("--write", "*")

    class Recorder(weft.DocumentListener):
        def __init__(self, doc):
            self.doc = doc
            self.seen = []
            self.remote = threading.Event()

        def on_event(self, event):
            if isinstance(event, weft.DocumentEvent.CHANGED) and event.remote_peer is not None:
                # The document can be read from inside the listener.
                self.seen.append((event.remote_peer, self.doc.get("/from")))
                self.remote.set()

    class States(weft.ConnectionListener):
        def __init__(self):
            self.states = []

        def on_state(self, state):
            self.states.append(state)

    async def scenario():
        alice = weft.Repo.in_memory()
        bob = await weft.Repo.open(str(tmp_path / "bob.db"))
        states = States()
        connection = alice.connect(relay.url, token)
        watching = connection.subscribe(states)
        await connection.wait_connected(10_000)
        await connected(bob, relay, token)
        doc = await alice.create()
        await doc.put("/from", Value.STR("alice"))
        recorder = Recorder(doc)
        subscription = doc.subscribe(recorder)

        on_bob = await found(bob, doc.url())
        await on_bob.put("/from", Value.STR("bob"))
        await asyncio.get_running_loop().run_in_executor(None, recorder.remote.wait, 15)
        assert recorder.seen, "the listener was called for bob's change"
        peer, value = recorder.seen[-1]
        assert value == Value.STR("bob")
        assert peer, "the event names the peer it came through"

        # Closed, the listener hears nothing more.
        subscription.cancel()
        count = len(recorder.seen)
        await on_bob.put("/from", Value.STR("bob again"))
        await eventually("alice has bob's second change", lambda: doc.get("/from") == Value.STR("bob again"))
        await asyncio.sleep(0.3)
        assert len(recorder.seen) == count

        await connection.disconnect()
        await eventually("the state listener saw it stop",
                         lambda: bool(states.states) and states.states[-1].is_stopped())
        assert states.states[0].is_connecting()
        assert any(state.is_connected() for state in states.states)
        watching.cancel()
        await bob.shutdown()

    run(scenario())


def test_two_devices_sync_directly_without_a_relay(tmp_path):
    async def scenario():
        alice = await weft.Repo.open(str(tmp_path / "alice.db"))
        bob = weft.Repo.in_memory()
        server = await alice.listen("127.0.0.1:0")
        assert server.url().startswith("ws://127.0.0.1:")
        connection = bob.connect(server.url())
        await connection.wait_connected(10_000)
        doc = await bob.create()
        await doc.put("/hello", Value.STR("from bob"))
        on_alice = await found(alice, doc.url())
        await eventually("alice has it", lambda: on_alice.get("/hello") == Value.STR("from bob"))
        await connection.disconnect()
        await server.stop()
        await alice.shutdown()

    run(scenario())


def test_bad_input_raises_clear_exceptions(relay, tmp_path):
    async def scenario():
        repo = await weft.Repo.open(str(tmp_path / "repo.db"))

        # A wrong token: refused, and dialling stops.
        connection = repo.connect(relay.url, "not-a-token")
        with pytest.raises(weft.WeftError.Unauthorized, match="refused by the peer: unauthorized"):
            await connection.wait_connected(10_000)
        assert isinstance(connection.state(), weft.ConnectionState.REFUSED)

        # No token where one is required: the same.
        with pytest.raises(weft.WeftError.Unauthorized, match="a token is required"):
            await repo.connect(relay.url).wait_connected(10_000)

        # An invalid URL.
        with pytest.raises(weft.WeftError.InvalidPeerUrl, match="the scheme must be ws:// or wss://"):
            repo.connect("http://127.0.0.1:1")
        with pytest.raises(weft.WeftError.InvalidPeerUrl):
            repo.connect("not a url")

        # Unknown and malformed documents.
        unknown = (await weft.Repo.in_memory().create()).url()
        with pytest.raises(weft.WeftError.DocumentNotFound, match="not found"):
            await repo.find(unknown)
        with pytest.raises(weft.WeftError.InvalidDocumentId, match="bad checksum"):
            await repo.find(unknown[:-1] + ("a" if unknown[-1] != "a" else "b"))  # mistyped
        with pytest.raises(weft.WeftError.InvalidDocumentId, match="not an automerge URL|base58"):
            await repo.delete("automerge-ish")
        with pytest.raises(weft.WeftError.InvalidDocument):
            await repo.import_document(b"not automerge")

        # Paths that do not fit.
        doc = await repo.create()
        await doc.put("/n", Value.INT(1))
        with pytest.raises(weft.WeftError.InvalidPath, match="/n is a value"):
            doc.get("/n/deeper")
        with pytest.raises(weft.WeftError.InvalidPath, match="starts with '/'"):
            await doc.put("n", Value.INT(2))
        with pytest.raises(weft.WeftError.InvalidPath, match="this is not a counter"):
            await doc.increment("/n", 1)
        assert doc.get("/n") == Value.INT(1), "a failed edit changes nothing"

        # An address this device cannot listen on.
        server = await repo.listen("127.0.0.1:0")
        with pytest.raises(weft.WeftError.Network, match="cannot listen on 127.0.0.1"):
            await repo.listen(f"127.0.0.1:{server.port()}")

        # Closed repos say so, and stop what they ran.
        await asyncio.gather(repo.shutdown(), repo.shutdown())
        with pytest.raises(weft.WeftError.Closed):
            await repo.create()
        with pytest.raises(weft.WeftError.Closed):
            repo.connect(relay.url)
        with pytest.raises(weft.WeftError.Closed):
            await repo.listen("127.0.0.1:0")
        elsewhere = weft.Repo.in_memory()
        with pytest.raises(weft.WeftError.Timeout, match="not connected after"):
            await elsewhere.connect(server.url()).wait_connected(1_000)
        await elsewhere.shutdown()

    run(scenario())


def test_weft_logs_reach_a_python_listener():
    class Collector(weft.LogListener):
        def __init__(self):
            self.records = []

        def on_log(self, level, target, message):
            self.records.append((level, target, message))

    def ended(collector):
        """Debug records of the listener about connections that ended."""
        return [r for r in collector.records if r[1] == "weft::net::listener" and "connection ended" in r[2]]

    async def connect_and_leave(server):
        visitor = weft.Repo.in_memory()
        await visitor.connect(server.url()).wait_connected(10_000)
        await visitor.shutdown()

    async def scenario():
        collector = Collector()
        weft.set_log_listener(collector, weft.LogLevel.DEBUG)
        try:
            host = weft.Repo.in_memory()
            server = await host.listen("127.0.0.1:0")
            await connect_and_leave(server)
            await eventually("a debug record of the connection ending", lambda: ended(collector))
            assert ended(collector)[0][0] == weft.LogLevel.DEBUG

            # At INFO, no more debug records; info records still come, with their fields,
            # and a token in a URL stays out of them.
            weft.set_log_listener(collector, weft.LogLevel.INFO)
            collector.records.clear()
            await connect_and_leave(server)
            dialler = host.connect("ws://127.0.0.1:9/?token=secret")  # nothing listens there
            await eventually("an info record from the dialler", lambda: any(
                target == "weft::net::client" and "dialling again" in message
                for _, target, message in collector.records))
            assert not ended(collector)
            assert not any(level == weft.LogLevel.DEBUG for level, _, _ in collector.records)
            message = next(m for _, t, m in collector.records if t == "weft::net::client")
            assert "url=ws://127.0.0.1:9/" in message and "secret" not in message
            assert dialler.url() == "ws://127.0.0.1:9/", "Connection.url() keeps the token out too"
            await host.shutdown()
        finally:
            weft.clear_log_listener()

    run(scenario())


def test_documents_are_listed_found_exported_and_deleted(tmp_path):
    async def scenario():
        repo = await weft.Repo.open(str(tmp_path / "repo.db"))
        first, second = await repo.create(), await repo.create()
        await first.put("/title", Value.STR("first"))
        assert first.url() == "automerge:" + first.id()
        listed = await repo.list()
        assert sorted(info.id for info in listed) == sorted([first.id(), second.id()])
        assert all(info.url == "automerge:" + info.id and info.stored_bytes > 0 for info in listed)

        # Found by id or by URL; exported bytes import elsewhere as a copy.
        assert (await repo.find(first.id())).get("/title") == Value.STR("first")
        copy = await weft.Repo.in_memory().import_document(await first.export())
        assert copy.to_json() == first.to_json() and copy.id() != first.id()

        await repo.delete(second.url())
        assert [info.id for info in await repo.list()] == [first.id()]
        with pytest.raises(weft.WeftError.DocumentNotFound):
            await repo.find(second.id())
        await repo.shutdown()

    run(scenario())

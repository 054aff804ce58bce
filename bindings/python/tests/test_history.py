"""A document's history from Python: authors and messages that travel through a real
weft-relay, the document at a time, blame, undo and redo around another user's edits, and
restoring an earlier state."""

import json

import weft
from weft import Value
from conftest import eventually, run
from test_sync import connected, found


def test_history_undo_and_restore_through_the_relay(relay, tmp_path):
    token = relay.token("--write", "*")

    async def scenario():
        ana = await weft.Repo.open(str(tmp_path / "ana.db"), weft.RepoOptions(author="ana"))
        bo = await weft.Repo.open(str(tmp_path / "bo.db"), weft.RepoOptions(author="bo"))
        await connected(ana, relay, token)
        await connected(bo, relay, token)

        doc = await ana.create()
        await doc.apply_with_message([
            weft.Edit.PUT("/title", Value.STR("Draft")),
            weft.Edit.PUT("/body", Value.TEXT("Hello world")),
        ], "first draft")
        first_draft = doc.heads()
        on_bo = await found(bo, doc.url())
        await eventually("bo has the draft", lambda: on_bo.get("/body") == Value.TEXT("Hello world"))

        # Interleaved edits: bo adds a word, then ana rewrites the greeting.
        await on_bo.splice_text("/body", 6, 0, "big ")
        await eventually("ana has bo's word", lambda: doc.get("/body") == Value.TEXT("Hello big world"))
        await doc.splice_text("/body", 0, 5, "Hi")
        await eventually("bo has ana's greeting", lambda: on_bo.get("/body") == Value.TEXT("Hi big world"))

        # The history names each author, newest first, on both sides.
        page = await on_bo.history(None, 10)
        assert [(c.author, c.message) for c in page.changes] == [
            ("ana", None), ("bo", None), ("ana", "first draft"), ("ana", None),
        ]
        assert page.next is None
        assert all(c.time > 1_700_000_000 for c in page.changes)
        older = await doc.history(None, 2)
        rest = await doc.history(older.next, 10)
        assert [c.hash for c in older.changes + rest.changes] == [c.hash for c in page.changes]

        # Blame: who wrote which part of the text.
        spans = await doc.blame("/body")
        # "Hi" (ana's rewrite) and the space after it (her first draft) are one run of ana's.
        assert [(s.start, s.end, s.author) for s in spans] == [(0, 3, "ana"), (3, 7, "bo"), (7, 12, "ana")]
        assert len(spans[0].changes) == 2

        # Ana's undo takes back her greeting only; bo's word stays, on both sides.
        assert doc.can_undo() and not doc.can_redo()
        assert await doc.undo()
        for side in (doc, on_bo):
            await eventually("the greeting is back", lambda: side.get("/body") == Value.TEXT("Hello big world"))
        assert await doc.redo()
        await eventually("bo sees the redo", lambda: on_bo.get("/body") == Value.TEXT("Hi big world"))

        # The document as it was: by heads, and by time.
        assert json.loads(await doc.to_json_at(first_draft)) == {"title": "Draft", "body": "Hello world"}
        assert await doc.heads_at_time(1_000_000_000) == []

        # What changed since the first draft, as patches that turn its text into today's.
        patches = await doc.diff(first_draft, doc.heads())
        assert patches and all(p.path.startswith("/body") for p in patches)
        assert apply_to_text("Hello world", "/body", patches) == "Hi big world"
        created = await doc.diff([], first_draft)
        assert weft.Patch.PUT("/title", Value.STR("Draft"), False) in created
        # A new text arrives empty, then its content.
        body = [p for p in created if p.path == "/body"]
        assert body == [
            weft.Patch.PUT("/body", Value.TEXT(""), False),
            weft.Patch.SPLICE_TEXT("/body", 0, "Hello world"),
        ]

        # Restore the first draft: one new change that reaches bo.
        await doc.restore(first_draft)
        await eventually("bo has the first draft again", lambda: on_bo.get("/body") == Value.TEXT("Hello world"))
        assert (await doc.history(None, 1)).changes[0].message == "restore"

        # Bad input.
        for bad in (
            lambda: doc.to_json_at(["not a hash"]),
            lambda: doc.restore(["00" * 32]),
            lambda: doc.diff(["00" * 32], doc.heads()),
        ):
            try:
                await bad()
                raise AssertionError("accepted")
            except weft.WeftError.InvalidPath:
                pass

        await bo.shutdown()
        await ana.shutdown()

    run(scenario())


def apply_to_text(text, path, patches):
    """Applies a diff's patches of the text at `path` to `text`, in order."""
    for patch in patches:
        if isinstance(patch, weft.Patch.SPLICE_TEXT) and patch.path == path:
            text = text[:patch.index] + patch.text + text[patch.index:]
        elif isinstance(patch, weft.Patch.DELETE) and patch.path.startswith(path + "/"):
            index = int(patch.path.rsplit("/", 1)[1])
            text = text[:index] + text[index + patch.count:]
        else:
            raise AssertionError(f"unexpected patch {patch}")
    return text

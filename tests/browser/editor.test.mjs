// The collaborative editor (examples/collab-editor) used as people use it: in Debian's
// chromium, typing with the keyboard, against real weft-relay processes serving the page.
import assert from "node:assert/strict"
import { join } from "node:path"
import { after, before, describe, test } from "node:test"

import { artifactsDir, launchChromium, mintToken, startRelay, startRelayOn } from "./rig.mjs"

const WAIT_MS = 15_000

let browser
before(async () => {
  browser = await launchChromium()
})
after(async () => {
  await browser?.close()
})

/** A relay started before a `describe`'s tests and removed after them: `suite.relay`. */
function relayForSuite(name, flags = []) {
  const suite = {}
  before(async () => {
    suite.relay = await startRelay(name, flags)
  })
  after(async () => {
    await suite.relay?.remove()
  })
  return suite
}

/** A person: a browser context of their own (own IndexedDB and localStorage) with a page. */
async function person(name) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 600 } })
  const who = { name, context, errors: [] }
  await newTab(who)
  return who
}

/** Gives `who` a new tab (same browser storage), whose errors are collected too. */
async function newTab(who) {
  who.page = await who.context.newPage()
  who.page.on("pageerror", (error) => who.errors.push(error.message))
}

/** Opens the editor at `address` and waits for the editor to show a document. */
async function open(who, address) {
  await who.page.goto(address)
  await editorShown(who)
}

/** Reloads the page and waits for the editor to show the document again. */
async function reload(who) {
  await who.page.reload()
  await editorShown(who)
}

async function editorShown({ page }) {
  await page.waitForFunction(() => window.weftEditor?.text() !== undefined, null, { timeout: WAIT_MS })
}

/** A person who opened a new document on `relay`, is online, and typed `words` into it. */
async function personWriting(relay, name, words) {
  const who = await person(name)
  await open(who, `${relay.httpUrl}?name=${name}`)
  await waitForConnection(who, "online")
  await typeAtEnd(who, words)
  return who
}

/** Closes each person's browser context, after checking that their pages threw nothing. */
async function leave(...people) {
  assert.deepEqual(people.flatMap(({ errors }) => errors), [])
  for (const { context } of people) await context.close()
}

const text = ({ page }) => page.evaluate(() => window.weftEditor.text())
const connection = ({ page }) => page.evaluate(() => window.weftEditor.connection())
const documentUrl = ({ page }) => page.evaluate(() => window.weftEditor.url())

async function waitForConnection({ page }, state) {
  await page.waitForFunction((wanted) => window.weftEditor?.connection() === wanted, state, { timeout: WAIT_MS })
  // What the person sees agrees with it.
  assert.equal(await page.getAttribute("#connection", "data-state"), state)
}

/**
 * Takes a person's browser off the network and waits until the page has closed its relay
 * link: chromium keeps an open WebSocket working when it is set offline, and the page
 * says "offline" as soon as it starts closing it, while the link may still carry a message
 * or two (a slow CI machine once delivered a document through it).
 */
async function goOffline(person) {
  await person.context.setOffline(true)
  await waitForConnection(person, "offline")
  await person.page.waitForFunction(() => window.weftEditor.repo.peers.length === 0, null, { timeout: WAIT_MS })
}

async function waitForText({ page }, predicate, what) {
  try {
    await page.waitForFunction(predicate, null, { timeout: WAIT_MS })
  } catch (error) {
    throw new Error(`${what}; the editor shows ${JSON.stringify(await page.evaluate(() => window.weftEditor?.text()))}`, {
      cause: error,
    })
  }
}

/** Waits until everyone's editor shows the same text, and returns it. */
async function waitForSameText(...people) {
  const deadline = Date.now() + WAIT_MS
  for (;;) {
    const texts = await Promise.all(people.map(text))
    if (texts.every((shown) => shown === texts[0])) return texts[0]
    if (Date.now() > deadline) assert.fail(`the editors still differ: ${JSON.stringify(texts)}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/** Waits until the page says every edit is in IndexedDB. */
async function waitUntilSaved({ page }) {
  await page.waitForFunction(() => window.weftEditor.saved(), null, { timeout: WAIT_MS })
  assert.equal(await page.textContent("#saved"), "saved in this browser")
}

/** Types `words` at the end of the text (as a person would: click, Ctrl+End, type). */
async function typeAtEnd({ page }, words) {
  await page.click(".cm-content")
  await page.keyboard.press("Control+End")
  await page.keyboard.type(words, { delay: 5 })
}

async function typeAtStart({ page }, words) {
  await page.click(".cm-content")
  await page.keyboard.press("Control+Home")
  await page.keyboard.type(words, { delay: 5 })
}

describe("with an anonymous relay (local development)", () => {
  const suite = relayForSuite("anonymous", ["--anonymous", "read-write"])

  test("two people type at once into one document, converge, and see each other", async () => {
    const alice = await personWriting(suite.relay, "Alice", "Shared notes\n")
    const bob = await person("Bob")
    const url = await documentUrl(alice)
    assert.match(url, /^automerge:/)
    // The share link is the page's address with the document's URL.
    assert.equal(await alice.page.inputValue("#share-link"), `${suite.relay.httpUrl}#${url}`)
    // The name came from the address and left it (so does a token).
    assert.ok(!alice.page.url().includes("name="), alice.page.url())

    await open(bob, `${await alice.page.inputValue("#share-link")}`.replace("#", "?name=Bob#"))
    await waitForText(bob, () => window.weftEditor.text().startsWith("Shared notes\n"), "Bob gets Alice's text")

    // Both type at the same moment, in different places, many keystrokes each.
    await Promise.all([typeAtStart(alice, "alice was here. "), typeAtEnd(bob, "bob was here too. ")])
    assert.equal(await waitForSameText(alice, bob), "alice was here. Shared notes\nbob was here too. ")

    // Both type at the same spot at the same moment: characters may interleave (each
    // keystroke lands where that person's cursor is), but both see the same text and no
    // keystroke is lost.
    await Promise.all([typeAtEnd(alice, "AAAA AAAA "), typeAtEnd(bob, "bbbb bbbb ")])
    const both = await waitForSameText(alice, bob)
    const typedAtEnd = both.slice("alice was here. Shared notes\nbob was here too. ".length)
    assert.equal([...typedAtEnd].sort().join(""), [..."AAAA AAAA bbbb bbbb "].sort().join(""), both)

    // Presence: each sees the other's name, in the list and on a cursor in the text.
    await alice.page.waitForSelector(".remote-caret-label >> text=Bob", { timeout: WAIT_MS })
    await bob.page.waitForSelector(".remote-caret-label >> text=Alice", { timeout: WAIT_MS })
    assert.equal(await alice.page.textContent("#people"), "Bob")
    assert.equal(await bob.page.textContent("#people"), "Alice")

    await alice.page.screenshot({ path: join(artifactsDir, "editor-two-people.png") })
    // When Bob leaves, Alice stops showing him.
    await leave(bob)
    await alice.page.waitForFunction(() => document.querySelector("#people").textContent === "", null, {
      timeout: WAIT_MS,
    })
    await leave(alice)
  })

  test("a tab that loses the network keeps editing, and its edits merge when it is back", async () => {
    const alice = await personWriting(suite.relay, "Alice", "Line one\n")
    const bob = await person("Bob")
    await open(bob, `${suite.relay.httpUrl}?name=Bob#${await documentUrl(alice)}`)
    await waitForText(bob, () => window.weftEditor.text() === "Line one\n", "Bob gets the first line")

    await goOffline(bob)
    await typeAtEnd(bob, "typed offline by bob. ")
    await typeAtStart(alice, "typed online by alice. ")
    // Nothing crosses while Bob is offline (so what follows shows a merge, not live sync).
    await alice.page.waitForTimeout(1500)
    assert.ok(!(await text(alice)).includes("bob"), await text(alice))
    assert.ok(!(await text(bob)).includes("alice"), await text(bob))

    await bob.context.setOffline(false)
    await waitForConnection(bob, "online")
    const merged = await waitForSameText(alice, bob)
    assert.equal(merged, "typed online by alice. Line one\ntyped offline by bob. ")
    // Back online, they see each other again.
    await bob.page.waitForSelector("#people >> text=Alice", { timeout: WAIT_MS })
    await alice.page.waitForSelector("#people >> text=Bob", { timeout: WAIT_MS })
    await bob.page.screenshot({ path: join(artifactsDir, "editor-after-offline-merge.png") })
    await leave(alice, bob)
  })

  test("edits made with no connection survive reloads and reach the relay later", async () => {
    const alice = await personWriting(suite.relay, "Alice", "kept in the browser. ")
    await waitUntilSaved(alice)
    const url = await documentUrl(alice)
    const carol = await person("Carol")
    await open(carol, `${suite.relay.httpUrl}?name=Carol#${url}`)
    await waitForText(carol, () => window.weftEditor.text() === "kept in the browser. ", "Carol gets the first words")

    // Cut Alice's page off the relay (the page itself still loads), then edit and reload
    // twice: whatever the editor shows afterwards came from IndexedDB.
    await alice.page.routeWebSocket(/.*/, (socket) => socket.close({ code: 1001, reason: "cut by the test" }))
    await reload(alice)
    assert.equal(await text(alice), "kept in the browser. ")
    await typeAtEnd(alice, "typed while cut off. ")
    await waitForConnection(alice, "offline")
    await waitUntilSaved(alice)
    await reload(alice)
    assert.equal(await text(alice), "kept in the browser. typed while cut off. ")
    // Carol, online all along, has not seen it.
    assert.equal(await text(carol), "kept in the browser. ")
    await alice.page.close()

    // A new tab of the same browser (same storage, not cut off) brings the relay, and so
    // Carol, up to date.
    await newTab(alice)
    await open(alice, `${suite.relay.httpUrl}#${url}`)
    await waitForConnection(alice, "online")
    await waitForText(carol, () => window.weftEditor.text() === "kept in the browser. typed while cut off. ", "Carol gets it")
    await leave(alice, carol)
  })

  test("a link opened while offline opens once the network is back", async () => {
    const alice = await personWriting(suite.relay, "Alice", "made by alice. ")
    await waitUntilSaved(alice)
    const url = await documentUrl(alice)

    const bob = await person("Bob")
    await open(bob, `${suite.relay.httpUrl}?name=Bob`)
    await waitForConnection(bob, "online")
    await goOffline(bob)
    await bob.page.evaluate((link) => {
      location.hash = link
    }, url)
    await bob.page.waitForSelector("#message >> text=not in this browser yet", { timeout: WAIT_MS })
    await bob.context.setOffline(false)
    await waitForText(bob, () => window.weftEditor.text() === "made by alice. ", "the document opens once online")
    await leave(alice, bob)
  })

  test("a new document, the document list, and an unknown link", async () => {
    const alice = await personWriting(suite.relay, "Alice", "First document")
    const first = await documentUrl(alice)

    await alice.page.click("#new-document")
    await alice.page.waitForFunction((previous) => window.weftEditor.url() && window.weftEditor.url() !== previous, first, {
      timeout: WAIT_MS,
    })
    assert.equal(await text(alice), "")
    await typeAtEnd(alice, "Second document\nwith two lines")
    const second = await documentUrl(alice)
    assert.equal(alice.page.url(), `${suite.relay.httpUrl}#${second}`)
    await alice.page.waitForFunction(() => document.querySelectorAll("#documents a").length === 2, null, { timeout: WAIT_MS })
    assert.deepEqual(await alice.page.$$eval("#documents a", (links) => links.map((link) => link.textContent)), [
      "Second document",
      "First document",
    ])

    await alice.page.click("#documents a >> text=First document")
    await waitForText(alice, () => window.weftEditor.text() === "First document", "the first document opens again")
    assert.equal(await documentUrl(alice), first)

    // A link to a document nobody has says so instead of showing an empty editor.
    await alice.page.goto(`${suite.relay.httpUrl}#automerge:4NMNnkMhL8jXrdJ9jamS58PAVdXu`)
    await alice.page.waitForSelector("#message >> text=Neither this browser nor the relay has this document yet", {
      timeout: WAIT_MS,
    })
    assert.equal(await alice.page.evaluate(() => window.weftEditor.text()), undefined)
    // And a link that is not a document link says that.
    await alice.page.goto(`${suite.relay.httpUrl}#not-a-document`)
    await alice.page.waitForSelector("#message >> text=is not a document link", { timeout: WAIT_MS })
    await leave(alice)
  })
})

describe("with a relay that stops and comes back", () => {
  const suite = relayForSuite("restarted", ["--anonymous", "read-write"])

  test("the page keeps trying through a relay outage and network changes, and catches up", async () => {
    const alice = await personWriting(suite.relay, "Alice", "before the outage. ")
    await waitUntilSaved(alice)
    const url = await documentUrl(alice)

    await suite.relay.stop()
    await waitForConnection(alice, "offline")
    // Let the page's retries start failing, then the network drops and comes back while
    // the relay is still down (this once stopped the retries for good).
    await alice.page.waitForTimeout(3000)
    await alice.context.setOffline(true)
    await typeAtEnd(alice, "during the outage. ")
    await alice.context.setOffline(false)
    await alice.page.waitForTimeout(3000)
    assert.equal(await connection(alice), "offline")

    suite.relay = await startRelayOn("restarted", suite.relay.dataDir, suite.relay.address, ["--anonymous", "read-write"])
    await waitForConnection(alice, "online")
    const bob = await person("Bob")
    await open(bob, `${suite.relay.httpUrl}?name=Bob#${url}`)
    await waitForText(bob, () => window.weftEditor.text() === "before the outage. during the outage. ", "Bob gets it all")
    await leave(alice, bob)
  })
})

describe("with a relay that requires tokens", () => {
  const suite = relayForSuite("tokens")

  test("the page asks for a token once, and one in the address works too", async () => {
    const token = mintToken(suite.relay.dataDir)
    const alice = await person("Alice")
    await open(alice, `${suite.relay.httpUrl}?name=Alice`)
    await waitForConnection(alice, "refused")
    await alice.page.waitForSelector("#token-dialog[open]", { timeout: WAIT_MS })
    assert.match(await alice.page.textContent("#token-reason"), /token/)

    // A wrong token is refused again (after the page reloaded with it), and asked for again.
    await alice.page.fill("#token", "not-a-token")
    await Promise.all([alice.page.waitForEvent("load"), alice.page.click("#token-form button[type=submit]")])
    await waitForConnection(alice, "refused")
    await alice.page.waitForSelector("#token-dialog[open]", { timeout: WAIT_MS })

    await alice.page.fill("#token", token)
    await Promise.all([alice.page.waitForEvent("load"), alice.page.click("#token-form button[type=submit]")])
    await waitForConnection(alice, "online")
    await typeAtEnd(alice, "behind a token. ")
    const url = await documentUrl(alice)

    // The token is remembered: a later visit needs nothing.
    await waitUntilSaved(alice)
    await reload(alice)
    await waitForConnection(alice, "online")

    // Bob comes with the token in the link; it leaves the address bar and works.
    const bob = await person("Bob")
    await open(bob, `${suite.relay.httpUrl}?token=${encodeURIComponent(token)}&name=Bob#${url}`)
    await waitForConnection(bob, "online")
    assert.ok(!bob.page.url().includes("token="), bob.page.url())
    await waitForText(bob, () => window.weftEditor.text() === "behind a token. ", "Bob gets the text")
    await leave(alice, bob)
  })
})

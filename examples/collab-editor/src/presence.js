// Other people in the document: their names, and their cursors and selections drawn in the
// editor. Carried by automerge-repo's `Presence` (ephemeral messages through the relay,
// heartbeats, and forgetting peers that went quiet); never stored in the document.
import * as A from "@automerge/automerge"
import { Presence } from "@automerge/automerge-repo"
import { StateEffect, StateField } from "@codemirror/state"
import { Decoration, EditorView, WidgetType } from "@codemirror/view"

import { NAME_LENGTH, isColour } from "./settings.js"

const UNKNOWN_COLOUR = "#777777"
const HEARTBEAT_MS = 2000
const FORGET_AFTER_MS = 7000

const showPeers = StateEffect.define()

class Caret extends WidgetType {
  constructor(name, colour) {
    super()
    this.name = name
    this.colour = colour
  }
  eq(other) {
    return other.name === this.name && other.colour === this.colour
  }
  toDOM() {
    const caret = document.createElement("span")
    caret.className = "remote-caret"
    caret.style.borderColor = this.colour
    const label = document.createElement("span")
    label.className = "remote-caret-label"
    label.style.background = this.colour
    label.textContent = this.name
    caret.append(label)
    return caret
  }
  ignoreEvent() {
    return true
  }
}

/** The editor extension that draws other people's cursors. */
export const remoteCursors = StateField.define({
  create: () => Decoration.none,
  update(decorations, transaction) {
    decorations = decorations.map(transaction.changes)
    for (const effect of transaction.effects) {
      if (effect.is(showPeers)) decorations = decorationsFor(effect.value, transaction.state.doc.length)
    }
    return decorations
  },
  provide: (field) => EditorView.decorations.from(field),
})

function decorationsFor(peers, length) {
  const ranges = []
  for (const { name, colour, anchor, head } of peers) {
    const from = Math.min(anchor, head, length)
    const to = Math.min(Math.max(anchor, head), length)
    if (from < to) {
      ranges.push(Decoration.mark({ attributes: { style: `background-color: ${colour}33` } }).range(from, to))
    }
    ranges.push(Decoration.widget({ widget: new Caret(name, colour), side: 1 }).range(Math.min(head, length)))
  }
  return Decoration.set(ranges, true)
}

/**
 * Shares this person's name, colour and selection on `handle`, and keeps the editor's
 * remote cursors and the `people` element up to date. Returns a function that stops it.
 */
export function sharePresence({ handle, path, view, name, colour, people }) {
  // All of this person's state is one channel, `me`, sent again at every heartbeat instead
  // of an empty heartbeat. automerge-repo's Presence sends its state to a peer it does not
  // know, but not to one that knew it before a reconnection (or that joined while its
  // messages could not get through): that peer would never learn the name. Resending
  // makes everyone whole within a heartbeat, whatever was lost.
  const me = { name, colour, selection: null }
  const presence = new Presence({ handle })
  presence.start({ initialState: { me }, heartbeatMs: HEARTBEAT_MS, peerTtlMs: FORGET_AFTER_MS })
  const share = () => presence.broadcast("me", { ...me })
  const resend = setInterval(share, HEARTBEAT_MS)

  // Selections travel as automerge cursors, which stay on the same characters while text
  // is inserted before them, on both sides, whatever order the changes arrive in.
  const cursorAt = (index) => A.getCursor(handle.doc(), path, index < view.state.doc.length ? index : "end")
  const shareSelection = () => {
    const { anchor, head } = view.state.selection.main
    try {
      me.selection = { anchor: cursorAt(anchor), head: cursorAt(head) }
      share()
    } catch {
      // The text object does not exist yet (a document still arriving); nothing to share.
    }
  }

  // Drawn after the current editor update has finished: a local edit changes the document,
  // whose change event arrives while CodeMirror is still applying that edit.
  let drawing = false
  const scheduleRender = () => {
    if (drawing) return
    drawing = true
    queueMicrotask(() => {
      drawing = false
      if (presence.running) render()
    })
  }

  const render = () => {
    const peers = []
    const names = []
    for (const state of Object.values(presence.getPeerStates().value)) {
      // Whatever a peer sends is untrusted: a name is shown as text, cut to length, and a
      // colour (which goes into a style) must be one of ours.
      const { name, colour, selection } = state.value?.me ?? {}
      if (typeof name !== "string" || !name.trim()) continue
      const peerName = name.slice(0, NAME_LENGTH)
      const peerColour = isColour(colour) ? colour : UNKNOWN_COLOUR
      names.push({ name: peerName, colour: peerColour })
      if (!selection) continue
      try {
        peers.push({
          name: peerName,
          colour: peerColour,
          anchor: A.getCursorPosition(handle.doc(), path, selection.anchor),
          head: A.getCursorPosition(handle.doc(), path, selection.head),
        })
      } catch {
        // Their cursor is on text this replica has not received yet; drawn once it has.
      }
    }
    view.dispatch({ effects: showPeers.of(peers) })
    people.replaceChildren(
      ...names.map(({ name: peerName, colour: peerColour }) => {
        const person = document.createElement("span")
        person.className = "person"
        person.style.background = peerColour
        person.textContent = peerName
        return person
      }),
    )
  }

  for (const event of ["update", "snapshot", "goodbye", "pruning"]) presence.on(event, scheduleRender)
  handle.on("change", scheduleRender)

  return {
    /** Call when the local selection or text changed. */
    selectionChanged: shareSelection,
    /** Call when the person renamed themselves. */
    rename(newName, newColour) {
      me.name = newName
      me.colour = newColour
      share()
    },
    stop() {
      clearInterval(resend)
      for (const event of ["update", "snapshot", "goodbye", "pruning"]) presence.off(event, scheduleRender)
      handle.off("change", scheduleRender)
      presence.stop()
      people.replaceChildren()
    },
  }
}

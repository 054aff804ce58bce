// Whether every edit of the open document is in this browser's IndexedDB. automerge-repo
// writes at most every 100 ms on its own; this writes as soon as an edit is made (one write
// at a time, the last one covering whatever came meanwhile) and shows "saving…" until the
// write has completed, so a person (or a test) can tell when closing the tab loses nothing.

const LABELS = { saving: "saving…", saved: "saved in this browser", failed: "not saved" }

/** Tracks `handle`'s writes into `element`; returns a function that stops tracking. */
export function trackSaving({ repo, handle, element }) {
  let writing = false
  let changedMeanwhile = false
  let stopped = false

  const show = (state, detail) => {
    if (stopped) return // a write of the previous document ending after a switch
    element.dataset.state = state
    element.textContent = LABELS[state]
    element.title = detail ?? ""
  }

  const save = async () => {
    if (writing) {
      changedMeanwhile = true
      return
    }
    writing = true
    show("saving")
    try {
      do {
        changedMeanwhile = false
        await repo.flush([handle.documentId])
      } while (changedMeanwhile)
      show("saved")
    } catch (error) {
      // Kept in memory and retried with the next edit; the person is told meanwhile.
      show("failed", error?.message)
    } finally {
      writing = false
    }
  }

  handle.on("change", save)
  // A document that just arrived from the relay may not be written yet.
  void save()
  return () => {
    stopped = true
    handle.off("change", save)
  }
}
